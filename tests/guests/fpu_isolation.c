/* fpu-isolation: vector-register isolation between VMs that share a CPU. It fills
 * XMM0-7 (all of YMM0-7 when AVX can be enabled) with a pattern derived from seed=N,
 * then for rounds=N rounds: VMCALL KEEL_HC_YIELD so that other vCPUs run on this CPU,
 * check every register still holds its pattern, load the next round's pattern. Several
 * copies with different seeds on one CPU catch a hypervisor that fails to save or
 * restore a guest's SSE/AVX state, or leaks one guest's registers into another.
 *
 * With spin=N it is CPU-bound instead: each round spins N iterations with the pattern
 * in the registers (so the scheduler preempts and migrates it mid-round) and asks
 * VM_INFO which host CPU it is on; ticks=T ends the run after T TSC ticks rather than
 * after `rounds`, so copies side by side show their share of the CPUs as rounds done;
 * forbid_cpu=C fails the run if it ever finds itself on host CPU C.
 *
 * The guest is built with -mgeneral-regs-only, so the compiler never touches the vector
 * registers itself: between a load and the next store only the asm below does. The
 * comparisons work on the memory images the asm stores. */
#include "guest.h"

const char guest_prefix[] = "fpu-isolation:";

#define NREGS 8

#define CPUID1_EDX_FXSR (1u << 24)
#define CPUID1_EDX_SSE2 (1u << 26)
#define CPUID1_ECX_XSAVE (1u << 26)
#define CPUID1_ECX_AVX (1u << 28)

#define CR0_MP (1u << 1)
#define CR0_EM (1u << 2)
#define CR0_TS (1u << 3)
#define CR4_OSFXSR (1u << 9)
#define CR4_OSXMMEXCPT (1u << 10)
#define CR4_OSXSAVE (1u << 18)

#define XCR0_X87_SSE_AVX 7u

/* One YMM register image: d[0..3] is the XMM part, d[4..7] the upper half. */
struct vec {
    uint32_t d[8];
};

static struct vec want[NREGS], got[NREGS];

static inline void write_cr0(uintptr_t v)
{
    __asm__ volatile("mov %0, %%cr0" ::"r"(v) : "memory");
}

static inline void xsetbv(uint32_t idx, uint64_t v)
{
    __asm__ volatile("xsetbv" ::"c"(idx), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline uint64_t xgetbv(uint32_t idx)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(idx));
    return ((uint64_t)hi << 32) | lo;
}

/* Register numbers are part of the instructions, hence one unrolled block per width.
 * The struct vec stride is 32 bytes either way. */
static void load_xmm(const struct vec *v)
{
    __asm__ volatile("movdqu 0(%0), %%xmm0\n\t"
                     "movdqu 32(%0), %%xmm1\n\t"
                     "movdqu 64(%0), %%xmm2\n\t"
                     "movdqu 96(%0), %%xmm3\n\t"
                     "movdqu 128(%0), %%xmm4\n\t"
                     "movdqu 160(%0), %%xmm5\n\t"
                     "movdqu 192(%0), %%xmm6\n\t"
                     "movdqu 224(%0), %%xmm7" ::"r"(v)
                     : "memory");
}

static void store_xmm(struct vec *v)
{
    __asm__ volatile("movdqu %%xmm0, 0(%0)\n\t"
                     "movdqu %%xmm1, 32(%0)\n\t"
                     "movdqu %%xmm2, 64(%0)\n\t"
                     "movdqu %%xmm3, 96(%0)\n\t"
                     "movdqu %%xmm4, 128(%0)\n\t"
                     "movdqu %%xmm5, 160(%0)\n\t"
                     "movdqu %%xmm6, 192(%0)\n\t"
                     "movdqu %%xmm7, 224(%0)" ::"r"(v)
                     : "memory");
}

static void load_ymm(const struct vec *v)
{
    __asm__ volatile("vmovdqu 0(%0), %%ymm0\n\t"
                     "vmovdqu 32(%0), %%ymm1\n\t"
                     "vmovdqu 64(%0), %%ymm2\n\t"
                     "vmovdqu 96(%0), %%ymm3\n\t"
                     "vmovdqu 128(%0), %%ymm4\n\t"
                     "vmovdqu 160(%0), %%ymm5\n\t"
                     "vmovdqu 192(%0), %%ymm6\n\t"
                     "vmovdqu 224(%0), %%ymm7" ::"r"(v)
                     : "memory");
}

static void store_ymm(struct vec *v)
{
    __asm__ volatile("vmovdqu %%ymm0, 0(%0)\n\t"
                     "vmovdqu %%ymm1, 32(%0)\n\t"
                     "vmovdqu %%ymm2, 64(%0)\n\t"
                     "vmovdqu %%ymm3, 96(%0)\n\t"
                     "vmovdqu %%ymm4, 128(%0)\n\t"
                     "vmovdqu %%ymm5, 160(%0)\n\t"
                     "vmovdqu %%ymm6, 192(%0)\n\t"
                     "vmovdqu %%ymm7, 224(%0)" ::"r"(v)
                     : "memory");
}

/* A 32-bit finaliser (bijective): neighbouring inputs give unrelated outputs. */
static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

/* Distinct for every (round, register, dword), and for every seed at a given position:
 * the outer input differs by seed * odd constant, a bijection. */
static void make_pattern(uint32_t seed, uint32_t round)
{
    for (uint32_t i = 0; i < NREGS; i++)
        for (uint32_t k = 0; k < 8; k++)
            want[i].d[k] = mix(seed * 0x9e3779b1u ^ mix(round * 64u + i * 8u + k + 1u));
}

static bool under_keel(void)
{
    struct cpuid_regs r = cpuid(KEEL_CPUID_BASE, 0);
    return r.ebx == KEEL_SIGNATURE_EBX && r.ecx == KEEL_SIGNATURE_ECX &&
           r.edx == KEEL_SIGNATURE_EDX;
}

/* AVX needs CR4.OSXSAVE and XCR0 bits 1-2. Any step may be refused (#GP from the CR4
 * write or XSETBV, #UD from the first VEX instruction); that only means AVX is not
 * offered to this VM, and the XMM part is still checked. */
static bool enable_avx(uint32_t cpuid1_ecx)
{
    if (!(cpuid1_ecx & CPUID1_ECX_XSAVE) || !(cpuid1_ecx & CPUID1_ECX_AVX)) {
        printf("fpu-isolation: AVX not offered (CPUID.1:ECX XSAVE=%u AVX=%u); checking XMM only\n",
               (cpuid1_ecx & CPUID1_ECX_XSAVE) ? 1u : 0u, (cpuid1_ecx & CPUID1_ECX_AVX) ? 1u : 0u);
        return false;
    }
    uintptr_t cr4 = read_cr4();
    const char *refused = NULL;
    int f = fault_arm(VEC_GP);
    if (f < 0) {
        write_cr4(cr4 | CR4_OSXSAVE);
        fault_disarm();
    } else {
        refused = "setting CR4.OSXSAVE";
    }
    if (!refused && !(read_cr4() & CR4_OSXSAVE)) {
        refused = "CR4.OSXSAVE (did not stick)";
        f = -1;
    }
    if (!refused) {
        f = fault_arm(VEC_GP);
        if (f < 0) {
            xsetbv(0, XCR0_X87_SSE_AVX);
            fault_disarm();
            if ((xgetbv(0) & XCR0_X87_SSE_AVX) != XCR0_X87_SSE_AVX) {
                refused = "XSETBV XCR0=0x7 (did not stick)";
                f = -1;
            }
        } else {
            refused = "XSETBV XCR0=0x7";
        }
    }
    if (!refused) {
        f = fault_arm(VEC_UD);
        if (f < 0) {
            store_ymm(got);
            fault_disarm();
        } else {
            refused = "VMOVDQU ymm";
        }
    }
    if (refused) {
        if (f >= 0)
            printf("fpu-isolation: AVX not offered: %s raised %s; checking XMM only\n", refused,
                   fault_name(f));
        else
            printf("fpu-isolation: AVX not offered: %s; checking XMM only\n", refused);
        write_cr4(cr4);
        return false;
    }
    return true;
}

static void print_mismatch(uint32_t round, uint32_t reg, int half, const uint32_t *g, const uint32_t *w)
{
    printf("fpu-isolation: FAIL: round %u register %s%u%s holds 0x%08x%08x%08x%08x want "
           "0x%08x%08x%08x%08x\n",
           round, half ? "ymm" : "xmm", reg, half ? " upper half" : "", g[3], g[2], g[1], g[0], w[3],
           w[2], w[1], w[0]);
}

/* Prints every register that lost its pattern; returns how many did. */
static uint32_t check(uint32_t round, bool avx)
{
    uint32_t bad = 0;
    for (uint32_t i = 0; i < NREGS; i++) {
        for (int half = 0; half < (avx ? 2 : 1); half++) {
            const uint32_t *g = &got[i].d[half * 4], *w = &want[i].d[half * 4];
            if (g[0] != w[0] || g[1] != w[1] || g[2] != w[2] || g[3] != w[3]) {
                print_mismatch(round, i, half, g, w);
                bad++;
            }
        }
    }
    return bad;
}

int main(uint32_t magic, uint32_t info_gpa)
{
    (void)info_gpa;
    if (magic != MB_BOOT_MAGIC) {
        printf("fpu-isolation: FAIL: EAX=0x%08x at entry, want 0x%08x\n", magic, MB_BOOT_MAGIC);
        return GUEST_EXIT_BAD_BOOT;
    }
    uint32_t seed = cmdline_u32("seed", 1, 0, 0xFFFFFFFFu);
    uint32_t rounds = cmdline_u32("rounds", 200, 1, 10000000u);
    uint32_t spin = cmdline_u32("spin", 0, 0, 0xFFFFFFFFu);
    uint32_t ticks = cmdline_u32("ticks", 0, 0, 0xFFFFFFFFu);
    uint32_t forbid_cpu = cmdline_u32("forbid_cpu", 0xFFFFFFFFu, 0, 0xFFFFFFFFu);

    struct cpuid_regs c1 = cpuid(1, 0);
    if (!(c1.edx & CPUID1_EDX_FXSR) || !(c1.edx & CPUID1_EDX_SSE2)) {
        printf("fpu-isolation: FAIL: CPUID.1:EDX has no %s\n",
               (c1.edx & CPUID1_EDX_FXSR) ? "SSE2" : "FXSR");
        return GUEST_EXIT_FAIL;
    }
    /* SSE instructions raise #UD with CR0.EM or without CR4.OSFXSR, #NM with CR0.TS. */
    write_cr0((read_cr0() & ~(uintptr_t)(CR0_EM | CR0_TS)) | CR0_MP);
    write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
    bool avx = enable_avx(c1.ecx);

    bool keel = under_keel();
    if (ticks)
        printf("fpu-isolation: seed %u, rounds for %u ticks, spinning %u per round, %s%s\n", seed, ticks, spin,
               avx ? "AVX on: checking YMM0-7" : "checking XMM0-7", keel ? "" : "; not under Keel");
    else
        printf("fpu-isolation: seed %u, %u rounds, %s%s\n", seed, rounds,
               avx ? "AVX on: checking YMM0-7" : "checking XMM0-7",
               keel ? "" : "; not under Keel: no VMCALL, nothing else runs in between");

    make_pattern(seed, 0);
    if (avx)
        load_ymm(want);
    else
        load_xmm(want);
    static struct keel_vm_info info;
    uint32_t last_cpu = 0xFFFFFFFFu, cpu_changes = 0, cpus_seen = 0;
    uint64_t start = rdtsc();
    uint32_t r = 1;
    for (; ticks ? rdtsc() - start < ticks : r <= rounds; r++) {
        if (keel && !spin) {
            int32_t rc = keel_hypercall(KEEL_HC_YIELD, 0, 0, 0);
            if (rc != 0) {
                printf("fpu-isolation: FAIL: round %u: YIELD returned %d\n", r, rc);
                return GUEST_EXIT_FAIL;
            }
        }
        for (uint32_t i = spin; i; i--)
            __asm__ volatile(""); /* keeps the empty loop */
        if (keel && spin) {
            int32_t rc = keel_vm_info(&info, sizeof(info));
            if (rc != 0) {
                printf("fpu-isolation: FAIL: round %u: VM_INFO returned %d\n", r, rc);
                return GUEST_EXIT_FAIL;
            }
            if (info.host_cpu == forbid_cpu) {
                printf("fpu-isolation: FAIL: round %u: running on host CPU %u, which keel.cfg forbids\n", r,
                       info.host_cpu);
                return GUEST_EXIT_FAIL;
            }
            cpu_changes += last_cpu != 0xFFFFFFFFu && info.host_cpu != last_cpu;
            last_cpu = info.host_cpu;
            if (info.host_cpu < 32)
                cpus_seen |= 1u << info.host_cpu;
        }
        if (avx)
            store_ymm(got);
        else
            store_xmm(got);
        uint32_t bad = check(r, avx);
        if (bad) {
            printf("fpu-isolation: FAIL: seed %u: %u register part(s) changed in round %u of %u\n",
                   seed, bad, r, rounds);
            return GUEST_EXIT_FAIL;
        }
        make_pattern(seed, r);
        if (avx)
            load_ymm(want);
        else
            load_xmm(want);
    }
    /* Before any output: a console line costs more than a round. */
    uint64_t elapsed = rdtsc() - start;
    rounds = r - 1;
    printf("fpu-isolation: seed %u: %u rounds, XMM0-7 intact%s\n", seed, rounds,
           avx ? ", YMM upper halves intact" : "");
    if (keel && spin)
        printf("fpu-isolation: spun %u rounds in %llu ticks on host CPUs 0x%x, %u changes of CPU; vm_info: weight %u, "
               "running %llu, waiting %llu, blocked %llu ticks, %u migrations\n",
               rounds, elapsed, cpus_seen, cpu_changes, info.weight, info.run_tsc, info.wait_tsc,
               info.blocked_tsc, info.migrations);
    return GUEST_EXIT_OK;
}
