#include "guest.h"
#include "intr.h"
#include "report.h"
#include "smp.h"
#include "timing.h"

#define AP_MAX (ACPI_MAX_CPUS - 1)
#define AP_STACK_BYTES 4096
#define PAGE 4096u
#define LOW_MEMORY_END 0xA0000u
#define MB_INFO_BYTES 128u /* the Multiboot 1 info structure with every optional field */
#define AP_ARRIVAL_MS 2000 /* TCG runs a vCPU per host thread on a shared machine */
#define IPI_WAIT_MS 1000

/* Used by trampoline.asm. */
uint32_t ap_stack_tops[AP_MAX];
volatile uint32_t ap_next_slot;
const uint32_t ap_slot_limit = AP_MAX;
void ap_main(uint32_t slot) __attribute__((noreturn));

extern const uint8_t tramp_start[], tramp_end[];
extern const uint8_t __bss_end[];

static uint8_t ap_stacks[AP_MAX][AP_STACK_BYTES] __attribute__((aligned(16)));
static volatile uint32_t ap_arrived;
static volatile uint32_t ap_apic_id[AP_MAX];
static uint32_t ap_count; /* APs that arrived, in slot order */

/* The mailbox an AP reads when VEC_WAKE arrives: "send `vector` to `dest`". */
static volatile uint32_t mbox_to = ~0u, mbox_dest, mbox_vector, mbox_sent;

static void ap_wake(void)
{
    if (mbox_to != lapic_id())
        return;
    mbox_to = ~0u;
    if (lapic_send(mbox_dest, mbox_vector))
        mbox_sent++;
}

void ap_main(uint32_t slot)
{
    intr_load_idt();
    lapic_enable();
    ap_apic_id[slot] = lapic_id();
    __atomic_fetch_add(&ap_arrived, 1, __ATOMIC_SEQ_CST);
    /* Halted with interrupts on: IPIs wake it; STI's one-instruction shadow keeps a wake-up
     * from slipping in between the check and HLT. */
    for (;;)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
}

struct range {
    uint32_t start, end;
};

static bool overlaps(uint32_t a, uint32_t b, struct range r)
{
    return a < r.end && r.start < b;
}

struct page_probe {
    uint32_t page;
    bool inside;
};

static void in_available(const struct mb_mmap_entry *e, void *arg)
{
    struct page_probe *p = arg;
    if (e->type == MB_MMAP_AVAILABLE && e->addr <= p->page && e->addr + e->len >= p->page + PAGE)
        p->inside = true;
}

/* A page below 640 KiB that the Multiboot memory map (without one: mem_lower) says is
 * RAM and that holds neither the boot information nor the image; 0 when there is none. */
static uint32_t trampoline_page(void)
{
    const struct mb_info *mb = mb_info();
    if (!mb)
        return 0;
    bool map = mb->flags & MB_INFO_MMAP;
    uint32_t lower, upper, lower_end = 0;
    if (!map && mb_memory(&lower, &upper))
        lower_end = lower * 1024;
    struct range busy[4] = {
        { (uint32_t)(uintptr_t)mb, (uint32_t)(uintptr_t)mb + MB_INFO_BYTES },
        { map ? mb->mmap_addr : 0, map ? mb->mmap_addr + mb->mmap_length : 0 },
        { 0x100000, (uint32_t)(uintptr_t)__bss_end },
        { 0, 0 },
    };
    if (mb->flags & MB_INFO_CMDLINE)
        busy[3] = (struct range){ mb->cmdline, mb->cmdline + (uint32_t)strlen(mb_cmdline()) + 1 };
    for (uint32_t page = PAGE; page < LOW_MEMORY_END; page += PAGE) {
        bool clash = false;
        for (int i = 0; i < 4; i++)
            clash |= overlaps(page, page + PAGE, busy[i]);
        struct page_probe probe = { page, page + PAGE <= lower_end };
        if (map)
            mb_mmap_walk(in_available, &probe);
        if (!clash && probe.inside)
            return page;
    }
    return 0;
}

static bool start_ap(uint32_t id, uint32_t vector)
{
    uint32_t before = ap_arrived;
    if (!lapic_send(id, ICR_INIT | ICR_LEVEL | ICR_ASSERT))
        return false;
    delay_us(10000);
    if (!lapic_send(id, ICR_INIT | ICR_LEVEL))
        return false;
    /* Two SIPIs as the MP specification says; the second is ignored by an AP that has
     * left wait-for-SIPI. */
    for (int i = 0; i < 2; i++) {
        if (!lapic_send(id, ICR_STARTUP | vector))
            return false;
        delay_us(200);
    }
    uint64_t dl = deadline_ms(AP_ARRIVAL_MS);
    while (ap_arrived == before && !expired(dl))
        __asm__ volatile("pause");
    return true;
}

void smp_start_check(const struct acpi_info *acpi, uint32_t bsp_id)
{
    if (!acpi->madt_ok) {
        fail("smp-start", "no valid MADT to take the CPUs from");
        return;
    }
    bool bsp_listed = false;
    for (uint32_t i = 0; i < acpi->ncpus; i++)
        bsp_listed |= acpi->apic_ids[i] == bsp_id;
    if (!bsp_listed) {
        fail("smp-start", "the BSP's APIC ID %u is not among the MADT's enabled CPUs", bsp_id);
        return;
    }
    if (acpi->ncpus == 1) {
        ok("smp-start: the MADT has 1 CPU (the BSP, APIC ID %u): no AP to start", bsp_id);
        return;
    }
    uint32_t page = trampoline_page();
    if (!page) {
        fail("smp-start", "no free page below 640 KiB in the Multiboot memory information");
        return;
    }
    memcpy((void *)(uintptr_t)page, tramp_start, (size_t)(tramp_end - tramp_start));
    for (uint32_t i = 0; i < AP_MAX; i++)
        ap_stack_tops[i] = (uint32_t)(uintptr_t)ap_stacks[i + 1];
    wake_hook = ap_wake;

    uint64_t t0 = rdtsc();
    uint32_t want = acpi->ncpus - 1;
    for (uint32_t i = 0; i < acpi->ncpus; i++) {
        uint32_t id = acpi->apic_ids[i];
        if (id == bsp_id)
            continue;
        if (id > 0xFE) {
            fail("smp-start", "APIC ID %u needs x2APIC; this guest starts xAPIC CPUs", id);
            continue;
        }
        uint32_t before = ap_arrived;
        if (!start_ap(id, page >> 12))
            fail("smp-start", "the ICR stayed busy sending INIT/SIPI to APIC ID %u", id);
        else if (ap_arrived == before)
            fail("smp-start", "APIC ID %u did not arrive within %u ms of its SIPIs", id,
                 AP_ARRIVAL_MS);
    }
    uint32_t ms = tsc_to_us(rdtsc() - t0) / 1000;
    ap_count = ap_arrived;
    if (ap_count > AP_MAX)
        ap_count = AP_MAX;

    /* Every AP must be one the MADT lists, and each only once. */
    char ids[ACPI_MAX_CPUS * 4 + 1];
    uint32_t len = 0, matched = 0;
    for (uint32_t s = 0; s < ap_count; s++) {
        uint32_t id = ap_apic_id[s];
        bool listed = false, dup = false;
        for (uint32_t i = 0; i < acpi->ncpus; i++)
            listed |= acpi->apic_ids[i] == id && id != bsp_id;
        for (uint32_t t = 0; t < s; t++)
            dup |= ap_apic_id[t] == id;
        matched += listed && !dup;
        if (len + 4 < sizeof(ids)) {
            uint32_t v = id, n = 0;
            char d[3];
            do { d[n++] = (char)('0' + v % 10); v /= 10; } while (v && n < 3);
            ids[len++] = ' ';
            while (n)
                ids[len++] = d[--n];
        }
    }
    ids[len] = '\0';
    note("trampoline at 0x%x (SIPI vector 0x%02x); APs by arrival: APIC IDs%s", page,
         page >> 12, len ? ids : " (none)");
    if (ap_count == want && matched == want)
        ok("smp-start: %u of %u APs reached 32-bit protected mode from the real-mode "
           "trampoline, APIC IDs as in the MADT, in %u ms", ap_count, want, ms);
    else
        fail("smp-start", "%u of %u APs arrived, %u with an APIC ID the MADT lists once",
             ap_count, want, matched);
}

/* Waits with interrupts on until *counter passes `before`; the microseconds it took,
 * or -1 on timeout. */
static int32_t wait_count(volatile uint32_t *counter, uint32_t before, uint32_t ms)
{
    uint64_t t0 = rdtsc(), dl = deadline_ms(ms);
    sti();
    while (*counter == before && !expired(dl))
        __asm__ volatile("pause");
    cli();
    return *counter != before ? (int32_t)tsc_to_us(rdtsc() - t0) : -1;
}

/* Has the AP `from` send `vector` to `to` and waits for it there. */
static int32_t relay(uint32_t from, uint32_t to)
{
    uint32_t before = counts.ipi[to];
    mbox_dest = to;
    mbox_vector = VEC_IPI;
    mbox_to = from;
    if (!lapic_send(from, VEC_WAKE))
        return -1;
    return wait_count(&counts.ipi[to], before, IPI_WAIT_MS);
}

void ipi_check(uint32_t bsp_id)
{
    uint32_t before = counts.self;
    int32_t us = lapic_send(0, ICR_SELF | VEC_SELF) ? wait_count(&counts.self, before, 100) : -1;
    if (us < 0)
        fail("ipi-self", "vector 0x%x sent with the self shorthand never arrived", VEC_SELF);
    else
        ok("ipi-self: vector 0x%x through the self shorthand arrived in %d us", VEC_SELF, us);

    if (!ap_count) {
        skip("ipi-bsp-ap: no AP running");
        skip("ipi-ap-bsp: no AP running");
        return;
    }
    uint32_t arrived = 0, slowest = 0;
    for (uint32_t s = 0; s < ap_count; s++) {
        uint32_t id = ap_apic_id[s];
        before = counts.ipi[id];
        us = lapic_send(id, VEC_IPI) ? wait_count(&counts.ipi[id], before, IPI_WAIT_MS) : -1;
        if (us < 0) {
            fail("ipi-bsp-ap", "vector 0x%x to APIC ID %u was not taken within %u ms", VEC_IPI,
                 id, IPI_WAIT_MS);
            continue;
        }
        arrived++;
        if ((uint32_t)us > slowest)
            slowest = (uint32_t)us;
    }
    if (arrived == ap_count)
        ok("ipi-bsp-ap: vector 0x%x reached all %u APs, the slowest in %u us", VEC_IPI,
           ap_count, slowest);

    uint32_t ap = ap_apic_id[0];
    us = relay(ap, bsp_id);
    if (us < 0)
        fail("ipi-ap-bsp", "APIC ID %u was asked to send vector 0x%x to the BSP; it did not "
             "arrive (AP woken %u times, sent %u)", ap, VEC_IPI, counts.wake[ap], mbox_sent);
    else
        ok("ipi-ap-bsp: APIC ID %u sent vector 0x%x to the BSP (APIC ID %u), taken %d us after "
           "the wake-up IPI", ap, VEC_IPI, bsp_id, us);

    if (ap_count < 2) {
        skip("ipi-ap-ap: only one AP");
        return;
    }
    uint32_t ap2 = ap_apic_id[1];
    us = relay(ap, ap2);
    if (us < 0)
        fail("ipi-ap-ap", "vector 0x%x from APIC ID %u to APIC ID %u did not arrive", VEC_IPI,
             ap, ap2);
    else
        ok("ipi-ap-ap: APIC ID %u sent vector 0x%x to APIC ID %u, taken in %d us", ap, VEC_IPI,
           ap2, us);
}
