/* TSC-based time and boot-time calibration (see timer.h). */
#include "drivers/timer.h"
#include "arch/x86/tsc.h"
#include "drivers/timer_math.h"
#include "drivers/hpet.h"
#include "drivers/pit.h"
#include "arch/x86/lapic.h"
#include "drivers/acpi.h"
#include "arch/x86/cpu.h"
#include "vmm/lib/console.h"

#define WINDOW_MS 50
#define WINDOW_FS (WINDOW_MS * (FS_PER_SEC / 1000))

#define TSC_HZ_MIN 1000000ull       /* Bochs at a very low ips still clears this */
#define TSC_HZ_MAX 100000000000ull

/* A reference that has not moved after this many polls is not there. */
#define STUCK_POLLS 4096
#define MAX_POLLS 100000000ull

static const char HPET_REF[] = "HPET";
static const char PIT_REF[] = "PIT";

struct window {
    uint64_t tsc;   /* TSC ticks in the window */
    uint64_t lapic; /* LAPIC timer clocks in the window, divide 1; 0 if unknown */
    uint64_t fs;    /* the window's length by the reference clock */
};

static uint64_t lapic_rate;
static struct lapic_timer_state fw_timer;
static bool fw_timer_saved;

static uint32_t lapic_count(bool use_lapic)
{
    return use_lapic ? lapic_timer_current() : 0;
}

/* The timer counts down; one that reached 0 ran out inside the window and says nothing. */
static uint64_t lapic_elapsed(bool use_lapic, uint32_t start, uint32_t end)
{
    return use_lapic && end != 0 ? start - end : 0;
}

static const char *measure_hpet(struct window *w, bool use_lapic)
{
    const struct hpet_caps *c = hpet_caps();
    uint64_t target = WINDOW_FS / c->period_fs;

    uint64_t h0 = hpet_read();
    uint64_t t0 = rdtsc();
    uint32_t l0 = lapic_count(use_lapic);
    uint64_t h, ticks = 0;
    for (uint64_t polls = 0;; polls++) {
        h = hpet_read();
        ticks = hpet_ticks_between(h0, h);
        if (ticks >= target)
            break;
        if ((polls == STUCK_POLLS && ticks == 0) || polls == MAX_POLLS)
            return "HPET counter does not advance";
    }
    uint64_t t1 = rdtsc();
    uint32_t l1 = lapic_count(use_lapic);

    w->tsc = t1 - t0;
    w->lapic = lapic_elapsed(use_lapic, l0, l1);
    w->fs = ticks * c->period_fs;
    return NULL;
}

static const char *measure_pit(struct window *w, bool use_lapic)
{
    uint16_t count = (uint16_t)(PIT_HZ * WINDOW_MS / 1000);
    const char *err = NULL;

    pit_ch2_start(count);
    uint64_t t0 = rdtsc();
    uint32_t l0 = lapic_count(use_lapic);
    /* Programming mode 0 drives OUT2 low; high already means nothing answers. */
    if (pit_ch2_expired()) {
        err = "PIT channel 2 output stuck high";
    } else {
        uint16_t last = pit_ch2_read();
        for (uint64_t polls = 1; !pit_ch2_expired(); polls++) {
            if (polls % STUCK_POLLS == 0) {
                uint16_t now = pit_ch2_read();
                if (now == last || polls >= MAX_POLLS) {
                    err = "PIT channel 2 does not count";
                    break;
                }
                last = now;
            }
        }
    }
    uint64_t t1 = rdtsc();
    uint32_t l1 = lapic_count(use_lapic);
    pit_ch2_stop();
    if (err)
        return err;

    w->tsc = t1 - t0;
    w->lapic = lapic_elapsed(use_lapic, l0, l1);
    w->fs = muldiv64(count, FS_PER_SEC, PIT_HZ);
    return NULL;
}

/* Newer CPUs state their TSC (and crystal = LAPIC timer) rates; the last resort. */
static bool cpuid_rates(uint64_t *tsc, uint64_t *lapic)
{
    uint32_t max = cpuid(0, 0).eax;
    *tsc = *lapic = 0;
    if (max >= 0x15) {
        struct cpuid_regs r = cpuid(0x15, 0);
        if (r.eax && r.ebx && r.ecx) {
            *lapic = r.ecx;
            *tsc = muldiv64(r.ecx, r.ebx, r.eax);
        }
    }
    if (*tsc == 0 && max >= 0x16) {
        struct cpuid_regs r = cpuid(0x16, 0);
        *tsc = (uint64_t)(r.eax & 0xffff) * 1000000;
    }
    return *tsc != 0;
}

static bool tsc_invariant(void)
{
    if (cpuid(0x80000000, 0).eax < 0x80000007)
        return false;
    return cpuid(0x80000007, 0).edx & BIT(8);
}

static uint64_t round_mhz(uint64_t hz)
{
    return (hz + 500000) / 1000000;
}

void timer_calibrate(const struct acpi_info *acpi)
{
    bool use_lapic = lapic_mode() != LAPIC_MODE_NONE;
    struct lapic_timer_state saved;
    hpa_t hpet_base = acpi && acpi->have_hpet ? acpi->hpet_address : 0;
    if (use_lapic) {
        lapic_timer_save(&saved);
        if (!fw_timer_saved) {
            fw_timer = saved;
            fw_timer_saved = true;
        }
        lapic_timer_set_divide(1);
        lapic_timer_start(LAPIC_SPURIOUS_VECTOR, LAPIC_TIMER_ONESHOT, 0xffffffffu, true);
    }

    struct window w;
    const char *ref = NULL, *hpet_err = NULL, *pit_err = NULL;
    if (hpet_base && hpet_init(hpet_base)) {
        hpet_err = measure_hpet(&w, use_lapic);
        if (!hpet_err)
            ref = HPET_REF;
    }
    if (!ref) {
        pit_err = measure_pit(&w, use_lapic);
        if (!pit_err)
            ref = PIT_REF;
    }

    if (use_lapic)
        lapic_timer_restore(&saved);
    hpet_restore();

    if (hpet_err)
        kprintf("TIMER: %s, falling back to the PIT\n", hpet_err);
    if (pit_err)
        kprintf("TIMER: %s\n", pit_err);

    uint64_t tsc = 0, lapic = 0;
    const char *how = NULL;
    if (ref) {
        tsc = hz_from_window(w.tsc, w.fs);
        lapic = hz_from_window(w.lapic, w.fs);
        if (tsc >= TSC_HZ_MIN && tsc <= TSC_HZ_MAX)
            how = ref == HPET_REF ? "calibrated against HPET" : "calibrated against PIT";
        else
            kprintf("TIMER: the %s says the TSC runs at %llu Hz, which cannot be right\n", ref,
                    (unsigned long long)tsc);
    }
    if (!how) {
        if (cpuid_rates(&tsc, &lapic) && tsc >= TSC_HZ_MIN && tsc <= TSC_HZ_MAX) {
            how = "from CPUID, not measured";
        } else {
            tsc = 1000000000ull;
            lapic = 0;
            how = "guessed: no usable reference clock, delays will be wrong";
        }
    }

    tsc_set_rate(tsc);
    lapic_rate = lapic;

    if (lapic)
        kprintf("TIMER: TSC %llu MHz, LAPIC timer %llu MHz (%s)\n",
                (unsigned long long)round_mhz(tsc), (unsigned long long)round_mhz(lapic), how);
    else
        kprintf("TIMER: TSC %llu MHz, LAPIC timer rate unknown (%s)\n",
                (unsigned long long)round_mhz(tsc), how);
    if (!tsc_invariant())
        kprintf("TIMER: CPUID does not promise an invariant TSC; time may drift with power states\n");
}

void timer_restore_firmware_state(void)
{
    if (fw_timer_saved)
        lapic_timer_restore_if_changed(&fw_timer);
    hpet_restore();
    lapic_restore_firmware_state();
}

uint64_t lapic_timer_hz(void)
{
    return lapic_rate;
}
