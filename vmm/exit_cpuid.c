/* CPUID as the guest sees it: the real CPU, minus what a guest cannot have (VMX, SMX,
 * MONITOR, the performance counters, the speculation-control MSRs Keel does not pass
 * through), plus the hypervisor bit and Keel's own leaves, and the truth about the
 * virtual PC: a local APIC with x2APIC and TSC-deadline (vmm/dev/vlapic.h), an
 * always-running APIC timer, an invariant TSC at the rate Keel calibrated, and a
 * topology of one package with one thread per core and one core per vCPU, whose APIC
 * IDs are the vCPU indices. */
#include "vmm/exit_handlers.h"
#include "vmm/hypercall_abi.h"
#include "vmm/vm.h"
#include "vmm/dev/apic_defs.h"
#include "arch/x86/tsc.h"

#define CPUID1_ECX_MONITOR BIT(3)
#define CPUID1_ECX_VMX BIT(5)
#define CPUID1_ECX_SMX BIT(6)
#define CPUID1_ECX_X2APIC BIT(21)
#define CPUID1_ECX_TSC_DEADLINE BIT(24)
#define CPUID1_ECX_OSXSAVE BIT(27)
#define CPUID1_ECX_HYPERVISOR BIT(31)
#define CPUID1_EDX_APIC BIT(9)
#define CPUID1_EDX_HTT BIT(28)
/* Features whose MSRs Keel does not offer, so a guest that trusted CPUID would take #GP
 * on a plain RDMSR/WRMSR (Linux does, for the thermal interrupt MSR 0x19B): the debug
 * store (DS, DTES64, DS-CPL), thermal monitoring and clock control (ACPI, TM, TM2, PBE),
 * Enhanced SpeedStep (EST), xTPR updates and the performance capabilities MSR (PDCM). */
#define CPUID1_EDX_NO_MSRS (BIT(21) | BIT(22) | BIT(29) | BIT(31))
#define CPUID1_ECX_NO_MSRS (BIT(2) | BIT(4) | BIT(7) | BIT(8) | BIT(14) | BIT(15))
#define CPUID6_EAX_ARAT BIT(2)
#define CPUID_80000007_EDX_INVARIANT_TSC BIT(8)
#define CR4_OSXSAVE BIT(18)
/* CPUID.7.0:EDX: IBRS/IBPB, STIBP, L1D_FLUSH, ARCH_CAPABILITIES, CORE_CAPABILITIES,
 * SSBD. Each names an MSR a guest WRMSR or RDMSR gets #GP for (vmm/guest-state.md). */
#define CPUID7_EDX_SPEC_CTRL_MSRS (BIT(26) | BIT(27) | BIT(28) | BIT(29) | BIT(30) | BIT(31))
/* CPUID.7.0:EBX[1]: IA32_TSC_ADJUST (MSR 0x3B), which Keel does not offer: Linux reads
 * it with a plain RDMSR when this bit says it is there. */
#define CPUID7_EBX_TSC_ADJUST BIT(1)
/* CPUID.0xD.1:EAX[3]: XSAVES/XRSTORS and IA32_XSS, which Keel does not offer either; with
 * it Linux sizes a compacted area from components Keel never enables and warns. */
#define CPUIDD1_EAX_XSAVES BIT(3)
/* CPUID.0xD.1:EAX[1]: XSAVEC. Linux then uses the compacted format and checks its size
 * against CPUID.0xD.1:EBX, which Bochs gives in the standard format; hidden, the guest
 * uses the standard format, whose size the CPU reports right. */
#define CPUIDD1_EAX_XSAVEC BIT(1)
#define CPUID_LEAF_XSAVE 0xd
#define CPUID_LEAF_CACHE 0x4
#define CPUID_LEAF_POWER 0x6
#define CPUID_LEAF_PMU 0xa
#define CPUID_LEAF_TOPOLOGY 0xb
#define CPUID_LEAF_TSC 0x15
#define CPUID_LEAF_FREQ 0x16
#define CPUID_LEAF_TOPOLOGY2 0x1f
#define CPUID_LEAF_POWER_MGMT 0x80000007u
/* Leaves 0x15 and 0x16 are Keel's answer whatever the CPU has, so the guest always
 * finds them: the basic range reaches at least here. */
#define CPUID_MIN_BASIC_MAX CPUID_LEAF_FREQ
#define TOPO_SMT 1
#define TOPO_CORE 2

#ifdef KEEL_HOST_TEST
/* Host tests play the CPU, so the answers (and VMX/hypervisor bits) are known. */
void host_test_cpuid(uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d);
#endif

static inline void hardware_cpuid(struct guest_regs *r, uint32_t leaf, uint32_t subleaf)
{
    uint32_t a = leaf, b, c = subleaf, d;
#ifdef KEEL_HOST_TEST
    host_test_cpuid(&a, &b, &c, &d);
#else
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
#endif
    r->rax = a;
    r->rbx = b;
    r->rcx = c;
    r->rdx = d;
}

static void set_regs(struct guest_regs *r, uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
    r->rax = a;
    r->rbx = b;
    r->rcx = c;
    r->rdx = d;
}

static uint32_t vcpus_of(const struct vcpu *v)
{
    uint32_t n = v->vm->vcpu_count;
    return n ? n : 1;
}

/* The TSC rate the guest sees (Keel does not scale it), or 0 before calibration, when
 * Keel does not know it and leaves 0x15, 0x16 and 0x40000010 say so. */
static uint64_t guest_tsc_hz(void)
{
    return tsc_calibrated() ? tsc_hz() : 0;
}

/* Bits needed for an index below n: the width of a topology level's ID field. */
static uint32_t id_bits(uint32_t n)
{
    uint32_t bits = 0;
    while ((1u << bits) < n)
        bits++;
    return bits;
}

static uint32_t leaf1_ecx(struct vcpu *v, uint32_t ecx)
{
    ecx &= ~(CPUID1_ECX_VMX | CPUID1_ECX_SMX | CPUID1_ECX_MONITOR | CPUID1_ECX_NO_MSRS);
    ecx |= CPUID1_ECX_HYPERVISOR | CPUID1_ECX_X2APIC | CPUID1_ECX_TSC_DEADLINE;
    /* OSXSAVE mirrors CR4 of whoever executes CPUID: here Keel, so recompute it. */
    ecx &= ~CPUID1_ECX_OSXSAVE;
    if (vcpu_guest_cr4(v) & CR4_OSXSAVE)
        ecx |= CPUID1_ECX_OSXSAVE;
    return ecx;
}

static void leaf1(struct vcpu *v, struct guest_regs *r)
{
    uint32_t n = vcpus_of(v);
    r->rcx = leaf1_ecx(v, (uint32_t)r->rcx);
    /* EBX: the initial APIC ID and the package's addressable logical processors (valid
     * with HTT, which says the package has more than one); brand and CLFLUSH stay. */
    r->rbx = (r->rbx & 0xffffu) | (uint64_t)(n > 0xff ? 0xff : n) << 16 | (uint64_t)(v->id & 0xff) << 24;
    r->rdx |= CPUID1_EDX_APIC;
    r->rdx &= ~(uint64_t)CPUID1_EDX_NO_MSRS;
    if (n > 1)
        r->rdx |= CPUID1_EDX_HTT;
    else
        r->rdx &= ~(uint64_t)CPUID1_EDX_HTT;
}

/* Deterministic cache parameters: the CPU's caches, shared as on a package with one
 * thread per core: L1 and L2 private to a core, L3 and beyond shared by all. */
static void leaf4(struct vcpu *v, struct guest_regs *r)
{
    uint32_t eax = (uint32_t)r->rax;
    if ((eax & 0x1f) == 0) /* no cache at this index: the CPU's zeros stand */
        return;
    uint32_t n = vcpus_of(v);
    uint32_t level = (eax >> 5) & 7;
    uint32_t sharing = level >= 3 ? n - 1 : 0;
    eax &= 0x3fffu;
    eax |= (sharing > 0xfff ? 0xfff : sharing) << 14;
    eax |= (n - 1 > 0x3f ? 0x3f : n - 1) << 26;
    r->rax = eax;
}

/* Leaves 0xB and 0x1F: the SMT level (one thread), the core level (one core per vCPU),
 * then the invalid level; EDX is the x2APIC ID at every subleaf. */
static void topology_leaf(struct vcpu *v, struct guest_regs *r, uint32_t subleaf)
{
    uint32_t n = vcpus_of(v);
    if (subleaf == 0)
        set_regs(r, 0, 1, TOPO_SMT << 8 | subleaf, v->id);
    else if (subleaf == 1)
        set_regs(r, id_bits(n), n, TOPO_CORE << 8 | subleaf, v->id);
    else
        set_regs(r, 0, 0, subleaf & 0xff, v->id);
}

/* Leaf 0x15: TSC = crystal * EBX / EAX, with the crystal at the TSC's own rate. */
static void tsc_leaf(struct guest_regs *r)
{
    uint64_t hz = guest_tsc_hz();
    if (hz == 0 || hz > UINT32_MAX)
        set_regs(r, 0, 0, 0, 0); /* not enumerated: ECX cannot hold the crystal's rate */
    else
        set_regs(r, 1, 1, (uint32_t)hz, 0);
}

/* Leaf 0x16: base and maximum frequency, and the bus (reference) clock, in MHz. */
static void freq_leaf(struct guest_regs *r)
{
    uint64_t hz = guest_tsc_hz();
    uint32_t mhz = (uint32_t)(hz / 1000000u);
    set_regs(r, mhz, mhz, (uint32_t)(VM_APIC_TIMER_HZ(hz) / 1000000u), 0);
}

/* Leaves 0 to 0x1f, most of which Keel edits. Kept out of line so the common leaves need
 * no saved registers. */
/* Leaves 0xb to 0x1f: the topology and TSC leaves are Keel's; the others exist as far
 * as the CPU's basic range goes, which leaf 0 may have stretched. */
static void high_basic_leaf(struct vcpu *v, struct guest_regs *r, uint32_t leaf, uint32_t subleaf, uint32_t host_max)
{
    if (leaf == CPUID_LEAF_TOPOLOGY || (leaf == CPUID_LEAF_TOPOLOGY2 && host_max >= CPUID_LEAF_TOPOLOGY2))
        topology_leaf(v, r, subleaf);
    else if (leaf == CPUID_LEAF_TSC)
        tsc_leaf(r);
    else if (leaf == CPUID_LEAF_FREQ)
        freq_leaf(r);
    else if (leaf > host_max)
        set_regs(r, 0, 0, 0, 0); /* past the CPU's range, inside the guest's: nothing there */
    else {
        hardware_cpuid(r, leaf, subleaf);
        if (leaf == CPUID_LEAF_XSAVE && subleaf == 1) {
            r->rax &= ~(uint64_t)(CPUIDD1_EAX_XSAVES | CPUIDD1_EAX_XSAVEC);
            r->rcx = r->rdx = 0; /* no IA32_XSS components */
        }
    }
}

/* Leaves 0 to 0x1f, most of which Keel edits. Kept out of line so the common leaves need
 * no saved registers. Leaves 1 to 0xa are inside the basic range of every CPU with VMX,
 * so only leaf 0 and those above need the CPU's highest basic leaf. */
static void low_leaf_into(struct vcpu *v, struct guest_regs *r, uint32_t leaf, uint32_t subleaf)
{
    if (leaf == 0 || leaf > CPUID_LEAF_PMU) {
        hardware_cpuid(r, 0, 0);
        uint32_t host_max = (uint32_t)r->rax;
        if (leaf == 0)
            r->rax = host_max < CPUID_MIN_BASIC_MAX ? CPUID_MIN_BASIC_MAX : host_max;
        else
            high_basic_leaf(v, r, leaf, subleaf, host_max);
        return;
    }
    hardware_cpuid(r, leaf, subleaf);
    if (leaf == 1) {
        leaf1(v, r);
    } else if (leaf == CPUID_LEAF_CACHE) {
        leaf4(v, r);
    } else if (leaf == CPUID_LEAF_POWER) {
        /* The virtual LAPIC timer runs on in every C-state the guest can ask for. The
         * rest (turbo, thermal and power-limit interrupts, HWP, APERF/MPERF, the energy
         * bias) names MSRs Keel does not offer. */
        set_regs(r, CPUID6_EAX_ARAT, 0, 0, 0);
    } else if (leaf == 7 && subleaf == 0) {
        r->rdx &= ~(uint64_t)CPUID7_EDX_SPEC_CTRL_MSRS;
        r->rbx &= ~(uint64_t)CPUID7_EBX_TSC_ADJUST;
    } else if (leaf == CPUID_LEAF_PMU) {
        /* No counters: RDPMC exits with #GP, so leaf 0xa must not promise any. */
        r->rax = r->rbx = r->rcx = r->rdx = 0;
    }
}

/* The basic leaves the vCPU may keep (struct vcpu_cpuid_cache): no subleaves, and an
 * answer that depends on nothing the guest can change and on no particular core of a
 * hybrid CPU. Leaf 1 is not one: OSXSAVE follows the guest's CR4. 0x15 and 0x16 are
 * kept once the TSC rate is known. */
#define CPUID_KEPT (BIT(0) | BIT(2) | BIT(3) | BIT(5) | BIT(CPUID_LEAF_POWER) | BIT(8) | BIT(9) | BIT(CPUID_LEAF_PMU))
#define CPUID_KEPT_WITH_TSC_RATE (BIT(CPUID_LEAF_TSC) | BIT(CPUID_LEAF_FREQ))
STATIC_ASSERT(CPUID_LEAF_TOPOLOGY2 < VCPU_CPUID_CACHED, "the basic leaves fit the vCPU's CPUID cache");

static __attribute__((noinline)) void low_leaf(struct vcpu *v, uint32_t leaf, uint32_t subleaf)
{
    struct guest_regs *r = &v->arch.regs;
    low_leaf_into(v, r, leaf, subleaf);
    uint32_t kept = CPUID_KEPT | (guest_tsc_hz() ? CPUID_KEPT_WITH_TSC_RATE : 0);
    if (kept & BIT(leaf)) {
        struct vcpu_cpuid_cache *c = &v->arch.cpuid;
        c->a[leaf] = (uint32_t)r->rax;
        c->b[leaf] = (uint32_t)r->rbx;
        c->c[leaf] = (uint32_t)r->rcx;
        c->d[leaf] = (uint32_t)r->rdx;
        c->known |= BIT(leaf);
    }
}

static __attribute__((noinline)) void keel_leaf(struct guest_regs *r, uint32_t leaf)
{
    if (leaf == KEEL_CPUID_BASE)
        set_regs(r, KEEL_CPUID_MAX, KEEL_SIGNATURE_EBX, KEEL_SIGNATURE_ECX, KEEL_SIGNATURE_EDX);
    else if (leaf == KEEL_CPUID_ABI)
        set_regs(r, KEEL_ABI_VERSION, 0, 0, 0);
    else if (leaf == KEEL_CPUID_TIMING) {
        uint64_t hz = guest_tsc_hz();
        set_regs(r, (uint32_t)(hz / 1000u), (uint32_t)(VM_APIC_TIMER_HZ(hz) / 1000u), 0, 0);
    } else
        set_regs(r, 0, 0, 0, 0);
}

/* Leaves past the basic range: the CPU's. Out of line, as CPUID clobbers EBX, which
 * leaf 0's path would otherwise have to save. */
static __attribute__((noinline)) void other_leaf(struct guest_regs *r, uint32_t leaf)
{
    hardware_cpuid(r, leaf, (uint32_t)r->rcx);
    if (leaf == CPUID_LEAF_POWER_MGMT)
        r->rdx |= CPUID_80000007_EDX_INVARIANT_TSC; /* one TSC timeline, never stopping */
}

/* The backend answers the leaves the vCPU keeps before it gets here. */
enum exit_action exit_cpuid(struct vcpu *v, struct exit_info *e)
{
    (void)e;
    struct guest_regs *r = &v->arch.regs;
    uint32_t leaf = (uint32_t)r->rax;
    if (leaf - KEEL_CPUID_BASE <= 0xff)
        keel_leaf(r, leaf);
    else if (leaf <= CPUID_LEAF_TOPOLOGY2)
        low_leaf(v, leaf, (uint32_t)r->rcx);
    else
        other_leaf(r, leaf);
    return EXIT_NEXT;
}
