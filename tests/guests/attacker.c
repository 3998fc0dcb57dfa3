/* attacker: tries to reach beyond its VM. The first attempts must be contained by Keel
 * WITHOUT stopping the VM (each prints "attacker: blocked: ..."); the last one, chosen
 * with attack=<name>, must make Keel stop the VM with an EPT-violation report.
 *
 * Options:
 *   attack=ram-end-read (default) | ram-end-write | host-read | lapic-write | reset |
 *          restart
 *     restart: the first boot leaves a mark in CMOS RAM (the shutdown status byte a
 *     BIOS reads after a reset) and resets through 0xCF9; Keel must start the VM again
 *     from its image, whose second boot finds the mark, says so and exits with code 0.
 *   cf9=skip     do not write the reset port (bare hardware and QEMU really reset)
 *   lenient=1    run the fatal attempt even when an earlier attempt was not blocked
 *                (by default that ends the run with exit code 0x7f before it)
 * Under Keel it also abuses the virtual PC: IPIs and INIT-SIPI floods to APIC IDs it
 * lacks, the LAPIC timer at its fastest, the APIC base moved onto RAM or past the
 * physical address width, an IOAPIC pin redirected to a missing vCPU, an unknown
 * fw_cfg key and an ACPI sleep state a VM does not have.
 * Any attempt that gets through prints "attacker: NOT BLOCKED: ..."; getting past the
 * fatal attempt exits with code 0x7f. */
#include <stdarg.h>
#include "guest.h"

const char guest_prefix[] = "attacker:";

#define CPUID1_EDX_PAT (1u << 16)
#define CPUID_EXT_EDX_NX (1u << 20)
#define CPUID_EXT_EDX_LM (1u << 29)
#define EFER_NXE (1ull << 11)
#define CR4_VMXE (1u << 13)
#define CR4_OSXSAVE (1u << 18)
#define CPUID1_ECX_XSAVE (1u << 26)
#define FC_VMX_OUTSIDE_SMX (1ull << 2)

#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_DATA 0xCFC
#define RESET_CONTROL_PORT 0xCF9
#define RESET_HARD 0x06 /* SYS_RST | RST_CPU */
#define RESET_GRACE_SPINS 10000000u

#define HOST_PROBE_GPA 0x40000000u
#define LAPIC_TPR_GPA 0xFEE00080u
#define MMIO_HOLE_GPA 0xFED00000u /* where a PC has its HPET; Keel's VMs have nothing there */

static unsigned attempts, blocked_count, skipped;

static void report(const char *verdict, const char *fmt, va_list ap)
{
    printf("attacker: %s: ", verdict);
    vprintf(fmt, ap);
    printf("\n");
}

static void blocked(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void blocked(const char *fmt, ...)
{
    va_list ap;
    attempts++;
    blocked_count++;
    va_start(ap, fmt);
    report("blocked", fmt, ap);
    va_end(ap);
}

static void not_blocked(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void not_blocked(const char *fmt, ...)
{
    va_list ap;
    attempts++;
    va_start(ap, fmt);
    report("NOT BLOCKED", fmt, ap);
    va_end(ap);
}

static void skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void skip(const char *fmt, ...)
{
    va_list ap;
    skipped++;
    va_start(ap, fmt);
    report("skipped", fmt, ap);
    va_end(ap);
}

static void attack_feature_control(void)
{
    uint64_t fc = 0;
    int f = rdmsr_safe(MSR_IA32_FEATURE_CONTROL, &fc);
    if (f >= 0)
        fc = 0;
    /* Try to enable VMX for ourselves. */
    uint64_t want = fc | FEATURE_CONTROL_LOCK | FC_VMX_OUTSIDE_SMX;
    f = wrmsr_safe(MSR_IA32_FEATURE_CONTROL, want);
    if (f == VEC_GP)
        blocked("WRMSR IA32_FEATURE_CONTROL=0x%llx raised #GP", want);
    else
        not_blocked("WRMSR IA32_FEATURE_CONTROL=0x%llx did not raise #GP", want);
}

/* Writes `val`, reads it back and restores the old value. Keel must either refuse the
 * write (#GP) or keep it in this VM's own copy of the MSR. */
static void attack_msr(const char *name, uint32_t msr, uint64_t val)
{
    uint64_t orig = 0, back = 0;
    int f = rdmsr_safe(msr, &orig);
    if (f >= 0) {
        blocked("RDMSR %s raised %s, so no write attempted", name, fault_name(f));
        return;
    }
    f = wrmsr_safe(msr, val);
    if (f >= 0) {
        blocked("WRMSR %s=0x%llx raised %s", name, val, fault_name(f));
        return;
    }
    f = rdmsr_safe(msr, &back);
    (void)wrmsr_safe(msr, orig);
    if (f < 0 && back == val)
        blocked("WRMSR %s=0x%llx changed only this VM's view (read back equal, restored "
                "0x%llx)", name, val, orig);
    else if (f >= 0)
        not_blocked("WRMSR %s=0x%llx succeeded but reading it back raised %s", name, val,
                    fault_name(f));
    else
        not_blocked("WRMSR %s=0x%llx read back 0x%llx: not this VM's own MSR", name, val,
                    back);
}

static void attack_msrs(void)
{
    struct cpuid_regs std = cpuid(1, 0);
    uint32_t ext_max = cpuid(0x80000000u, 0).eax;
    struct cpuid_regs ext = { 0, 0, 0, 0 };
    if (ext_max >= 0x80000001u && ext_max < 0x80000100u)
        ext = cpuid(0x80000001u, 0);
    bool lm = ext.edx & CPUID_EXT_EDX_LM;

    if (lm) {
        uint64_t efer = 0;
        if (rdmsr_safe(MSR_EFER, &efer) >= 0)
            efer = 0;
        /* NXE is inert with paging off, so flipping it is harmless. */
        attack_msr("EFER", MSR_EFER, (ext.edx & CPUID_EXT_EDX_NX) ? efer ^ EFER_NXE : efer);
    } else {
        skip("WRMSR EFER (CPUID reports no long mode)");
    }
    if (std.edx & CPUID1_EDX_PAT)
        attack_msr("PAT", MSR_IA32_PAT, 0x0007010600070106ull); /* WT entries become WC */
    else
        skip("WRMSR PAT (CPUID reports no PAT)");
    if (lm) {
        attack_msr("FS_BASE", MSR_FS_BASE, 0x00007F00DEAD0000ull);
        attack_msr("GS_BASE", MSR_GS_BASE, 0xFFFF8000BEEF0000ull);
        attack_msr("LSTAR", MSR_LSTAR, 0xFFFFFFFF8BAD0000ull);
    } else {
        skip("WRMSR FS_BASE, GS_BASE, LSTAR (CPUID reports no long mode)");
    }
}

static uint8_t vmxon_region[4096] __attribute__((aligned(4096)));

static bool under_keel(void)
{
    struct cpuid_regs r = cpuid(KEEL_CPUID_BASE, 0);
    return r.ebx == KEEL_SIGNATURE_EBX && r.ecx == KEEL_SIGNATURE_ECX &&
           r.edx == KEEL_SIGNATURE_EDX;
}

static void attack_vmxon(void)
{
    /* A real attacker sets CR4.VMXE first. Keel must refuse it (#GP) or keep it in the
     * CR4 read shadow. Only tried under Keel: QEMU 7.2's TCG retries such a write
     * forever instead of raising #GP. VMXON below exits to Keel either way, since the
     * CPU's real CR4.VMXE is set throughout VMX operation. */
    uint32_t cr4 = read_cr4();
    volatile bool vmxe_set = false;
    if (under_keel()) {
        int f = fault_arm(VEC_GP);
        if (f < 0) {
            write_cr4(cr4 | CR4_VMXE);
            fault_disarm();
            vmxe_set = true;
        }
        printf("attacker: setting CR4.VMXE %s\n",
               vmxe_set ? "was accepted (this VM's view)" : "raised #GP");
    }

    uint64_t region = (uint32_t)(uintptr_t)vmxon_region;
    int f = fault_arm(VEC_UD);
    if (f < 0) {
        __asm__ volatile("vmxon %0" ::"m"(region) : "cc", "memory");
        fault_disarm();
    }
    if (vmxe_set)
        write_cr4(cr4);
    if (f == VEC_UD)
        blocked("VMXON raised #UD");
    else
        not_blocked("VMXON completed without #UD");
}

/* Each returns the vector of the fault the instruction raised, or -1. */
static __attribute__((noinline)) int try_xsetbv(uint32_t xcr0)
{
    int f = fault_arm(VEC_GP);
    if (f < 0) {
        __asm__ volatile("xsetbv" ::"c"(0), "a"(xcr0), "d"(0) : "memory");
        fault_disarm();
    }
    return f;
}

static __attribute__((noinline)) int try_write_cr4(uint32_t cr4)
{
    int f = fault_arm(VEC_GP);
    if (f < 0) {
        write_cr4(cr4);
        fault_disarm();
    }
    return f;
}

/* XCR0 values XSETBV must refuse with #GP (SDM XSETBV): Keel runs XSETBV for the guest,
 * and 0x23 (AVX-512 opmask alone) once passed its check and faulted in Keel itself. */
static void attack_xsetbv(void)
{
    struct cpuid_regs std = cpuid(1, 0);
    if (!(std.ecx & CPUID1_ECX_XSAVE)) {
        skip("XSETBV with invalid XCR0 values (CPUID reports no XSAVE)");
        return;
    }
    uint32_t cr4 = read_cr4();
    int f = try_write_cr4(cr4 | CR4_OSXSAVE);
    if (f >= 0) {
        skip("XSETBV with invalid XCR0 values (setting CR4.OSXSAVE raised %s)", fault_name(f));
        return;
    }
    static const uint32_t bad[] = {0x23, 0x63, 0xe3, 0x5, 0xb, 0x2, 0x400};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = try_xsetbv(bad[i]);
        if (f == VEC_GP)
            blocked("XSETBV XCR0=0x%x raised #GP", bad[i]);
        else
            not_blocked("XSETBV XCR0=0x%x %s", bad[i], f < 0 ? "was accepted" : fault_name(f));
    }
    write_cr4(cr4);
}

/* CR4 bits the CPU does not offer: setting one must be #GP, not a bit kept in the read
 * shadow so the guest believes it has the feature. Only under Keel: QEMU's TCG does not
 * always raise #GP for them. */
static void attack_cr4_bits(void)
{
    if (!under_keel()) {
        skip("CR4 bits the CPU lacks (only checked under Keel)");
        return;
    }
    struct cpuid_regs l7 = cpuid(0, 0).eax >= 7 ? cpuid(7, 0) : (struct cpuid_regs){0, 0, 0, 0};
    static const struct {
        uint32_t bit, cpuid7_ecx;
        const char *name;
    } bits[] = {{11, 1u << 2, "UMIP"}, {12, 1u << 16, "LA57"}, {22, 1u << 3, "PKE"}, {31, 0, "reserved bit 31"}};
    uint32_t cr4 = read_cr4();
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
        if (bits[i].cpuid7_ecx && (l7.ecx & bits[i].cpuid7_ecx))
            continue; /* offered: setting it is legitimate */
        int f = try_write_cr4(cr4 | (1u << bits[i].bit));
        uint32_t now = read_cr4();
        write_cr4(cr4);
        if (f == VEC_GP)
            blocked("setting CR4.%s (bit %u, not offered) raised #GP", bits[i].name, bits[i].bit);
        else
            not_blocked("setting CR4.%s (bit %u, not offered) %s (CR4 reads 0x%x)", bits[i].name, bits[i].bit,
                        f < 0 ? "was accepted" : fault_name(f), now);
    }
}

#define VIRTUAL_HOST_BRIDGE_ID 0x12378086u /* Keel's (and QEMU's) i440FX at 00:00.0 */

static uint32_t pci_id(unsigned dev)
{
    outl(PCI_CONFIG_ADDRESS, 0x80000000u | dev << 11);
    return inl(PCI_CONFIG_DATA);
}

/* PCI configuration space is the VM's own: a virtual host bridge at 00:00.0 whose ID
 * register stays read-only, and none of the host's devices anywhere on bus 0. */
static void attack_pci(void)
{
    uint32_t saved = inl(PCI_CONFIG_ADDRESS);
    outl(PCI_CONFIG_ADDRESS, 0x80000000u);
    outl(PCI_CONFIG_DATA, 0xFFFFFFFFu);
    uint32_t id = inl(PCI_CONFIG_DATA);
    unsigned others = 0;
    for (unsigned dev = 1; dev < 32; dev++)
        others += pci_id(dev) != 0xFFFFFFFFu;
    outl(PCI_CONFIG_ADDRESS, saved);
    if ((id == 0xFFFFFFFFu || id == VIRTUAL_HOST_BRIDGE_ID) && !others)
        blocked("OUT to 0xCF8/0xCFC: PCI bus 0 shows only the VM's own host bridge (00:00.0 ID 0x%08x)", id);
    else
        not_blocked("OUT to 0xCF8/0xCFC reached PCI device 00:00.0 (ID 0x%08x) and %u more devices", id, others);
}

static void attack_reset(void)
{
    /* Under Keel the reset port is the VM's own (it resets the VM, see attack=reset):
     * no longer an attack on the host. */
    if (under_keel())
        return;
    if (cmdline_opt_is("cf9", "skip")) {
        skip("OUT 0x%02x to reset port 0x%x (cf9=skip)", RESET_HARD, RESET_CONTROL_PORT);
        return;
    }
    outb(RESET_CONTROL_PORT, RESET_HARD);
    /* A real reset is not instantaneous; give it time to take effect. */
    for (volatile uint32_t i = 0; i < RESET_GRACE_SPINS; i++)
        ;
    blocked("OUT 0x%02x to reset port 0x%x ignored (still running)", RESET_HARD,
            RESET_CONTROL_PORT);
}

/* ---- The virtual PC, abused (under Keel only: on a real machine or QEMU these reach
 * real hardware or real firmware) ----
 * Each is tried twice: Keel handles it, and logs it once per VM. Interrupts stay off
 * throughout, so whatever an attempt leaves pending in the local APIC is never taken. */
#define LAPIC_GPA 0xFEE00000u
#define LAPIC_IRR 0x200
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_DIV 0x3E0
#define LAPIC_SVR 0x0F0
#define ICR_FIXED 0x000u
#define ICR_INIT 0x500u
#define ICR_SIPI 0x600u
#define ICR_ASSERT 0x4000u
#define LVT_PERIODIC (1u << 17)
#define MSR_APIC_BASE 0x1Bu
#define APIC_BASE_EN (1u << 11)
#define IOAPIC_GPA 0xFEC00000u
#define MISSING_APIC_ID 0x7Fu
#define FLOOD 1000u
#define AP_PARK_PAGE 0x90000u /* an AP started by the flood below halts here */
#define FW_CFG_SELECTOR 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_BOGUS_KEY 0x1234
#define PM1A_CNT 0x604
#define PM1_SLP_EN (1u << 13)
#define PM1_SLP_TYP_S1 (1u << 10)
#define PIT_CMD 0x43
#define PIT_CH0 0x40
#define VEC_PROBE 0x52   /* the IPIs' */
#define VEC_TIMER 0x53
#define VEC_IOAPIC 0x54

static volatile uint32_t *lapic_reg(uint32_t off)
{
    return (volatile uint32_t *)(uintptr_t)(LAPIC_GPA + off);
}

static bool irr_has(uint8_t vec)
{
    return *lapic_reg(LAPIC_IRR + (vec / 32u) * 0x10u) & (1u << (vec % 32u));
}

static void send_ipi(uint32_t dest, uint32_t low)
{
    *lapic_reg(LAPIC_ICR_HI) = dest << 24;
    *lapic_reg(LAPIC_ICR_LO) = low;
}

static void ioapic_write(uint32_t reg, uint32_t val)
{
    *(volatile uint32_t *)(uintptr_t)IOAPIC_GPA = reg;
    *(volatile uint32_t *)(uintptr_t)(IOAPIC_GPA + 0x10) = val;
}

static void spin(uint32_t n)
{
    for (volatile uint32_t i = 0; i < n; i++)
        ;
}

static void attack_ipis(void)
{
    *lapic_reg(LAPIC_SVR) = 0x1FF; /* software-enabled, spurious vector 0xFF */
    for (int round = 0; round < 2; round++)
        send_ipi(MISSING_APIC_ID, ICR_FIXED | VEC_PROBE);
    if (irr_has(VEC_PROBE))
        not_blocked("an IPI to APIC ID 0x%x came back to this vCPU", MISSING_APIC_ID);
    else
        blocked("IPIs to APIC ID 0x%x, which the VM lacks, reached nobody", MISSING_APIC_ID);
    /* A flood: each one costs an exit, and the VMs beside this one must not notice. */
    for (uint32_t i = 0; i < FLOOD; i++)
        send_ipi(MISSING_APIC_ID, ICR_FIXED | VEC_PROBE);
    blocked("%u more IPIs to APIC ID 0x%x: still running, and nobody got them", FLOOD, MISSING_APIC_ID);
    /* INIT and SIPI: to APIC ID 1 (this VM's AP when it has one, parked at a HLT loop)
     * and to an ID it lacks, again and again. */
    volatile uint8_t *park = (volatile uint8_t *)(uintptr_t)AP_PARK_PAGE;
    park[0] = 0xFA; /* cli */
    park[1] = 0xF4; /* hlt */
    park[2] = 0xEB; /* jmp back to the hlt */
    park[3] = 0xFD;
    for (uint32_t i = 0; i < FLOOD / 10; i++) {
        send_ipi(1, ICR_INIT | ICR_ASSERT);
        send_ipi(1, ICR_SIPI | (AP_PARK_PAGE >> 12));
        send_ipi(MISSING_APIC_ID, ICR_INIT | ICR_ASSERT);
        send_ipi(MISSING_APIC_ID, ICR_SIPI | (AP_PARK_PAGE >> 12));
    }
    blocked("%u INIT-SIPI pairs to APIC IDs 1 and 0x%x: this vCPU still runs", FLOOD / 10, MISSING_APIC_ID);
}

/* The LAPIC timer at its fastest: periodic, divide by 1, a count of 1, for a while. */
static void attack_timer(void)
{
    *lapic_reg(LAPIC_TIMER_DIV) = 0xB;
    *lapic_reg(LAPIC_LVT_TIMER) = LVT_PERIODIC | VEC_TIMER;
    *lapic_reg(LAPIC_TIMER_INIT) = 1;
    spin(RESET_GRACE_SPINS / 20);
    *lapic_reg(LAPIC_TIMER_INIT) = 1; /* again: still logged once */
    spin(RESET_GRACE_SPINS / 20);
    bool fired = irr_has(VEC_TIMER);
    *lapic_reg(LAPIC_TIMER_INIT) = 0;
    *lapic_reg(LAPIC_LVT_TIMER) = 1u << 16;
    if (fired)
        blocked("LAPIC timer periodic with count 1, divide 1: it fired, at a rate Keel bounds");
    else
        not_blocked("LAPIC timer periodic with count 1 never fired");
}

static void attack_apic_base(void)
{
    uint64_t base = 0;
    rdmsr_safe(MSR_APIC_BASE, &base);
    for (int round = 0; round < 2; round++)
        wrmsr_safe(MSR_APIC_BASE, 0x100000u | (base & 0xFFFu)); /* onto RAM at 1 MiB */
    uint64_t now = 0;
    rdmsr_safe(MSR_APIC_BASE, &now);
    if ((now & ~0xFFFull) == (base & ~0xFFFull))
        blocked("IA32_APIC_BASE moved onto RAM at 0x100000: refused, still 0x%llx", now & ~0xFFFull);
    else
        not_blocked("IA32_APIC_BASE moved onto RAM: now 0x%llx", now);
    int f = wrmsr_safe(MSR_APIC_BASE, (1ull << 50) | (base & 0xFFFu));
    if (f == VEC_GP)
        blocked("IA32_APIC_BASE at 2^50, beyond the physical address width: #GP");
    else
        not_blocked("IA32_APIC_BASE at 2^50 was taken (fault %d)", f);
    wrmsr_safe(MSR_APIC_BASE, base);
}

/* PIT IRQ 0 reaches IOAPIC pin 2, redirected to an APIC ID the VM lacks. */
static void attack_ioapic(void)
{
    ioapic_write(0x10 + 2 * 2 + 1, MISSING_APIC_ID << 24);
    ioapic_write(0x10 + 2 * 2, VEC_IOAPIC);
    outb(PIT_CMD, 0x34); /* channel 0, mode 2 */
    outb(PIT_CH0, 0xA9); /* 1193 ticks: 1 kHz */
    outb(PIT_CH0, 0x04);
    spin(RESET_GRACE_SPINS / 20);
    ioapic_write(0x10 + 2 * 2, 1u << 16);
    outb(PIT_CMD, 0x30); /* mode 0, no count: no more edges */
    if (irr_has(VEC_IOAPIC))
        not_blocked("IOAPIC pin 2 redirected to APIC ID 0x%x reached this vCPU", MISSING_APIC_ID);
    else
        blocked("IOAPIC pin 2 redirected to APIC ID 0x%x: PIT interrupts reached nobody", MISSING_APIC_ID);
}

static void attack_firmware(void)
{
    uint32_t got = 0;
    for (int round = 0; round < 2; round++) {
        outw(FW_CFG_SELECTOR, FW_CFG_BOGUS_KEY);
        for (int i = 0; i < 4; i++)
            got |= inb(FW_CFG_DATA);
    }
    if (!got)
        blocked("fw_cfg key 0x%x, which does not exist, reads zeros", FW_CFG_BOGUS_KEY);
    else
        not_blocked("fw_cfg key 0x%x read 0x%x", FW_CFG_BOGUS_KEY, got);
    /* S1 through PM1a_CNT: not a sleep state a VM has. */
    for (int round = 0; round < 2; round++)
        outw(PM1A_CNT, PM1_SLP_TYP_S1 | PM1_SLP_EN);
    blocked("ACPI sleep state S1 through PM1a_CNT refused: still running");
}

static void attack_platform(void)
{
    if (!under_keel())
        return;
    attack_ipis();
    attack_timer();
    attack_apic_base();
    attack_ioapic();
    attack_firmware();
}

/* The VM's RAM size: Keel's own figure when the hypercall works, else the Multiboot map. */
static uint64_t ram_size(void)
{
    uint64_t end = mb_ram_end();
    static struct keel_vm_info info;
    if (!under_keel())
        return end;
    int f = fault_arm(VEC_UD);
    if (f < 0) {
        int32_t r = keel_vm_info(&info, sizeof(info));
        fault_disarm();
        if (r == 0 && info.memory_bytes > end)
            end = info.memory_bytes;
    }
    return end;
}

#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71
#define CMOS_SHUTDOWN_STATUS 0x0f
#define RESTART_MARK 0x4b

static uint8_t cmos_read(uint8_t reg)
{
    outb(CMOS_INDEX, reg);
    return inb(CMOS_DATA);
}

static void cmos_write(uint8_t reg, uint8_t value)
{
    outb(CMOS_INDEX, reg);
    outb(CMOS_DATA, value);
}

static int restart_attempt(void)
{
    if (cmos_read(CMOS_SHUTDOWN_STATUS) == RESTART_MARK) {
        cmos_write(CMOS_SHUTDOWN_STATUS, 0);
        printf("attacker: restarted: second boot after the reset found its CMOS mark\n");
        return GUEST_EXIT_OK;
    }
    cmos_write(CMOS_SHUTDOWN_STATUS, RESTART_MARK);
    printf("attacker: first boot: resetting through port 0x%x; Keel must restart this VM\n", RESET_CONTROL_PORT);
    uart_drain();
    outb(RESET_CONTROL_PORT, RESET_HARD);
    for (volatile uint32_t i = 0; i < RESET_GRACE_SPINS; i++)
        ;
    printf("attacker: NOT BLOCKED: restart: the VM still runs after a hard reset\n");
    return GUEST_EXIT_NOT_BLOCKED;
}

static int fatal_attempt(void)
{
    size_t len;
    const char *name = cmdline_opt("attack", &len);
    if (!name) {
        name = "ram-end-read";
        len = strlen(name);
    }
    uint64_t ram = ram_size();
    bool write = false;
    uint64_t gpa;
    if (len == 12 && !strncmp(name, "ram-end-read", len)) {
        gpa = ram;
    } else if (len == 13 && !strncmp(name, "ram-end-write", len)) {
        gpa = ram;
        write = true;
    } else if (len == 9 && !strncmp(name, "host-read", len)) {
        gpa = HOST_PROBE_GPA;
        if (ram > gpa) {
            printf("attacker: FAIL: host-read needs less than 1 GiB of RAM (have 0x%llx)\n",
                   ram);
            return GUEST_EXIT_FAIL;
        }
    } else if (len == 5 && !strncmp(name, "reset", len)) {
        /* A hard reset through 0xCF9 ends this VM's run (Keel resets or stops it) and
         * nothing else's. */
        printf("attacker: fatal attempt: reset, writing 0x%02x to port 0x%x; Keel must stop or reset this VM "
               "now\n", RESET_HARD, RESET_CONTROL_PORT);
        uart_drain();
        outb(RESET_CONTROL_PORT, RESET_HARD);
        for (volatile uint32_t i = 0; i < RESET_GRACE_SPINS; i++)
            ;
        printf("attacker: NOT BLOCKED: reset: the VM still runs after a hard reset\n");
        return GUEST_EXIT_NOT_BLOCKED;
    } else if (len == 7 && !strncmp(name, "restart", len)) {
        return restart_attempt();
    } else if (len == 11 && !strncmp(name, "lapic-write", len)) {
        /* The local APIC page is the VM's own virtual LAPIC: a TPR of 0xff there must not
         * reach the host's APIC (it would mask Keel's own interrupts on this CPU, which
         * the other VMs on it would show). Then the fatal part: a write to the hole
         * above the APIC pages, where no device is. */
        volatile uint32_t *tpr = (volatile uint32_t *)(uintptr_t)LAPIC_TPR_GPA;
        *tpr = 0xff;
        uint32_t back = *tpr;
        printf("attacker: %s: local APIC TPR write of 0xff reads back 0x%x from the VM's own LAPIC\n",
               back == 0xff ? "blocked" : "FAIL", back);
        *tpr = 0;
        gpa = MMIO_HOLE_GPA;
        write = true;
    } else {
        printf("attacker: FAIL: unknown attack '%.*s' (ram-end-read, ram-end-write, "
               "host-read, lapic-write, reset, restart)\n", (int)len, name);
        return GUEST_EXIT_FAIL;
    }
    if (!ram || gpa > 0xFFFFFFFFull) {
        printf("attacker: FAIL: cannot aim %.*s: RAM size 0x%llx unknown or beyond 4 GiB\n",
               (int)len, name, ram);
        return GUEST_EXIT_FAIL;
    }

    volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)gpa;
    printf("attacker: fatal attempt: %.*s, %s gpa 0x%08llx (RAM is 0x%llx bytes); Keel must "
           "stop this VM now\n", (int)len, name, write ? "writing" : "reading", gpa, ram);
    uart_drain();
    uint8_t seen = 0;
    if (write)
        *p = 0;
    else
        seen = *p;
    if (write)
        printf("attacker: NOT BLOCKED: %.*s: writing gpa 0x%08llx went through\n", (int)len,
               name, gpa);
    else
        printf("attacker: NOT BLOCKED: %.*s: reading gpa 0x%08llx went through (read 0x%02x)\n",
               (int)len, name, gpa, seen);
    return GUEST_EXIT_NOT_BLOCKED;
}

int main(uint32_t magic, uint32_t info_gpa)
{
    (void)info_gpa;
    if (magic != MB_BOOT_MAGIC) {
        printf("attacker: FAIL: EAX=0x%08x at entry, want 0x%08x\n", magic, MB_BOOT_MAGIC);
        return GUEST_EXIT_BAD_BOOT;
    }
    printf("attacker: starting; every attempt below must be contained\n");
    attack_feature_control();
    attack_msrs();
    attack_vmxon();
    attack_xsetbv();
    attack_cr4_bits();
    attack_pci();
    attack_reset();
    attack_platform();

    printf("attacker: %u of %u attempts blocked, %u skipped\n", blocked_count, attempts,
           skipped);
    if (blocked_count != attempts && !cmdline_opt_is("lenient", "1")) {
        printf("attacker: NOT BLOCKED: %u attempts got through; stopping before the fatal "
               "attempt\n", attempts - blocked_count);
        return GUEST_EXIT_NOT_BLOCKED;
    }
    return fatal_attempt();
}
