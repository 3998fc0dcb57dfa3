/* state-leak: the guest half of vmm/guest-state.md's audit. A 64-bit ELF guest (CR8 exists
 * only in 64-bit mode) that checks every piece of architectural state a guest can change
 * and the VMCS does not switch:
 *   - at entry, that it holds its power-on value: nothing left over from a VM that ran on
 *     this CPU before;
 *   - then, for rounds=N rounds: load a pattern derived from seed=S and the round into
 *     every item, yield to the other vCPUs on this CPU (VMCALL YIELD), and check every item
 *     still holds it: nothing changed by a VM that ran in between.
 * With xsave=1 it enables every XSAVE component it knows (x87, SSE, AVX: XCR0 = 7) and
 * checks the YMM upper halves too; with xsave=0 it never runs XSETBV, so its XCR0 stays 1,
 * the case where only the x87 state used to be switched. Run two or more copies with
 * different seeds and xsave settings on one CPU (tests/system/bochs-state-leak.sh).
 *
 * There is no IDT: a fault is a triple fault, which Keel reports as such. Exit code 0 when
 * everything held, 1 when an item changed (each one printed), 3 when not entered by Keel's
 * ELF64 loader. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "arch/x86/cpu.h"
#include "arch/x86/msr.h"
#include "printf.h"
#include "uart.h"
#include "vmm/hypercall_abi.h"

_Static_assert(sizeof(void *) == 8, "state-leak must be built with -m64");

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_BAD_BOOT 3
#define DEBUG_EXIT_PORT 0xF4
#define MB_BOOT_MAGIC 0x2BADB002u
#define MB_INFO_CMDLINE (1u << 2)


#define NXMM 16

__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "    mov %rax, %rsi\n" /* leak_main(info, magic) */
        "    sub $8, %rsp\n"   /* Keel enters with RSP = 8 mod 16, as after a call */
        "    call leak_main\n"
        "1:  cli\n"
        "    hlt\n"
        "    jmp 1b\n");

/* ---- instructions: Keel's own wrappers, plus the few only a guest needs ---- */
static inline uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static inline void xsetbv0(uint64_t v)
{
    __asm__ volatile("xsetbv" ::"c"(0), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static int64_t vmcall(uint64_t fn)
{
    uint64_t ret;
    __asm__ volatile("vmcall" : "=a"(ret) : "a"(fn), "b"(0), "c"(0) : "memory");
    return (int64_t)ret;
}

/* ---- the state, as one image the checks compare field by field ---- */
struct vec {
    uint64_t q[4]; /* q[0..1]: the XMM part, q[2..3]: the YMM upper half */
};

struct state {
    struct vec v[NXMM];
    uint32_t mxcsr;
    uint16_t fcw;
    uint64_t xcr0;
    uint64_t cr2, cr8;
    uint64_t dr[4], dr6, dr7;
    uint64_t star, lstar, cstar, fmask, kernel_gs_base;
    uint64_t tsc_aux, tsc_aux_rdtscp;
    uint32_t pkru;
};

static bool have_avx, have_rdtscp, have_pku, use_xsave;
static bool ymm_live; /* XCR0 has AVX: the checks cover the YMM upper halves */

static void load_vectors(const struct vec *v)
{
#define LOAD_X(n) __asm__ volatile("movdqu %0, %%xmm" #n ::"m"(v[n].q[0]))
#define LOAD_Y(n) __asm__ volatile("vmovdqu %0, %%ymm" #n ::"m"(v[n].q[0]))
    if (ymm_live) {
        LOAD_Y(0); LOAD_Y(1); LOAD_Y(2); LOAD_Y(3); LOAD_Y(4); LOAD_Y(5); LOAD_Y(6); LOAD_Y(7);
        LOAD_Y(8); LOAD_Y(9); LOAD_Y(10); LOAD_Y(11); LOAD_Y(12); LOAD_Y(13); LOAD_Y(14); LOAD_Y(15);
    } else {
        LOAD_X(0); LOAD_X(1); LOAD_X(2); LOAD_X(3); LOAD_X(4); LOAD_X(5); LOAD_X(6); LOAD_X(7);
        LOAD_X(8); LOAD_X(9); LOAD_X(10); LOAD_X(11); LOAD_X(12); LOAD_X(13); LOAD_X(14); LOAD_X(15);
    }
}

static void store_vectors(struct vec *v)
{
#define STORE_X(n) __asm__ volatile("movdqu %%xmm" #n ", %0" : "=m"(v[n].q[0]))
#define STORE_Y(n) __asm__ volatile("vmovdqu %%ymm" #n ", %0" : "=m"(v[n].q[0]))
    if (ymm_live) {
        STORE_Y(0); STORE_Y(1); STORE_Y(2); STORE_Y(3); STORE_Y(4); STORE_Y(5); STORE_Y(6); STORE_Y(7);
        STORE_Y(8); STORE_Y(9); STORE_Y(10); STORE_Y(11); STORE_Y(12); STORE_Y(13); STORE_Y(14); STORE_Y(15);
    } else {
        STORE_X(0); STORE_X(1); STORE_X(2); STORE_X(3); STORE_X(4); STORE_X(5); STORE_X(6); STORE_X(7);
        STORE_X(8); STORE_X(9); STORE_X(10); STORE_X(11); STORE_X(12); STORE_X(13); STORE_X(14); STORE_X(15);
    }
}

static uint32_t rdpkru(void)
{
    uint32_t a, d;
    __asm__ volatile("rdpkru" : "=a"(a), "=d"(d) : "c"(0));
    return a;
}

static void wrpkru(uint32_t v)
{
    __asm__ volatile("wrpkru" ::"a"(v), "c"(0), "d"(0));
}

static void read_state(struct state *s)
{
    __builtin_memset(s, 0, sizeof *s);
    store_vectors(s->v);
    __asm__ volatile("stmxcsr %0" : "=m"(s->mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(s->fcw));
    s->xcr0 = xgetbv0();
    s->cr2 = read_cr2();
    s->cr8 = read_cr8();
    s->dr[0] = read_dr0();
    s->dr[1] = read_dr1();
    s->dr[2] = read_dr2();
    s->dr[3] = read_dr3();
    s->dr6 = read_dr6();
    s->dr7 = read_dr7();
    s->star = rdmsr(MSR_STAR);
    s->lstar = rdmsr(MSR_LSTAR);
    s->cstar = rdmsr(MSR_CSTAR);
    s->fmask = rdmsr(MSR_FMASK);
    s->kernel_gs_base = rdmsr(MSR_KERNEL_GS_BASE);
    if (have_rdtscp) {
        uint32_t lo, hi, aux;
        s->tsc_aux = rdmsr(MSR_TSC_AUX);
        __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
        s->tsc_aux_rdtscp = aux;
    }
    if (have_pku)
        s->pkru = rdpkru();
}

static void write_state(const struct state *s)
{
    load_vectors(s->v);
    __asm__ volatile("ldmxcsr %0" ::"m"(s->mxcsr));
    __asm__ volatile("fldcw %0" ::"m"(s->fcw));
    write_cr2(s->cr2);
    write_cr8(s->cr8);
    write_dr0(s->dr[0]);
    write_dr1(s->dr[1]);
    write_dr2(s->dr[2]);
    write_dr3(s->dr[3]);
    write_dr6(s->dr6);
    write_dr7(s->dr7);
    wrmsr(MSR_STAR, s->star);
    wrmsr(MSR_LSTAR, s->lstar);
    wrmsr(MSR_CSTAR, s->cstar);
    wrmsr(MSR_FMASK, s->fmask);
    wrmsr(MSR_KERNEL_GS_BASE, s->kernel_gs_base);
    if (have_rdtscp)
        wrmsr(MSR_TSC_AUX, s->tsc_aux);
    if (have_pku)
        wrpkru(s->pkru);
}

/* splitmix64: a different, well-mixed value for every (seed, round, item). */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Canonical lower-half addresses at or above 1 TiB: never touched by this guest, so the
 * breakpoints DR7 enables there never fire. */
static uint64_t far_address(uint64_t p)
{
    return (1ull << 40) | (p & 0x3ffffffff000ull);
}

static void pattern(struct state *s, uint64_t seed, uint32_t round)
{
    uint64_t k = mix(seed) ^ ((uint64_t)round << 32);
    __builtin_memset(s, 0, sizeof *s);
    for (int i = 0; i < NXMM; i++)
        for (int j = 0; j < 4; j++)
            s->v[i].q[j] = ymm_live || j < 2 ? mix(k + (uint64_t)(i * 4 + j)) : 0;
    uint64_t p = mix(k + 100);
    s->mxcsr = 0x1f80u ^ (uint32_t)((p & 3) << 13) ^ (uint32_t)((p >> 8) & 0x3f); /* RC, sticky flags */
    s->fcw = (uint16_t)(0x007f | (((p >> 16) & 0xf) << 8));                      /* PC, RC */
    s->xcr0 = use_xsave ? (have_avx ? 7 : 3) : 1;
    s->cr2 = mix(k + 101);
    s->cr8 = (p >> 24) & 0xf;
    for (int i = 0; i < 4; i++)
        s->dr[i] = far_address(mix(k + 102 + (uint64_t)i));
    s->dr6 = 0xffff0ff0ull | ((p >> 28) & 0xf);
    s->dr7 = 0x400ull | ((p >> 32) & 0xff); /* L0-3/G0-3 on, execute breakpoints */
    s->star = mix(k + 110);
    s->lstar = far_address(mix(k + 111)) | (p & 0xfff);
    s->cstar = far_address(mix(k + 112)) | ((p >> 12) & 0xfff);
    s->fmask = mix(k + 113) & 0xffffffffull;
    s->kernel_gs_base = far_address(mix(k + 114));
    if (have_rdtscp)
        s->tsc_aux = s->tsc_aux_rdtscp = mix(k + 115) & 0xffffffffull;
    if (have_pku)
        s->pkru = (uint32_t)mix(k + 116) & ~3u; /* key 0, this guest's own pages, stays open */
}

static uint64_t seed;
static unsigned failures;

static void differ(const char *when, const char *item, int index, uint64_t got, uint64_t want)
{
    static const char *const parts[4] = {" bits 63:0", " bits 127:64", " bits 191:128", " bits 255:192"};
    failures++;
    if (index >= 100)
        printf("state-leak: FAIL: seed %lu: %s: %s%d%s holds 0x%lx want 0x%lx\n", seed, when, item,
               (index - 100) / 4, parts[index % 4], got, want);
    else if (index >= 0)
        printf("state-leak: FAIL: seed %lu: %s: %s%d holds 0x%lx want 0x%lx\n", seed, when, item, index, got, want);
    else
        printf("state-leak: FAIL: seed %lu: %s: %s holds 0x%lx want 0x%lx\n", seed, when, item, got, want);
}

/* Compares every item; returns how many are checked. */
static unsigned compare(const char *when, const struct state *got, const struct state *want)
{
    unsigned items = 0;
#define CMP(field, name)                                                                           \
    do {                                                                                           \
        items++;                                                                                   \
        if (got->field != want->field)                                                             \
            differ(when, name, -1, (uint64_t)got->field, (uint64_t)want->field);                   \
    } while (0)
    for (int i = 0; i < NXMM; i++) {
        for (int j = 0; j < 4; j++) {
            if (j >= 2 && !ymm_live)
                continue;
            items++;
            if (got->v[i].q[j] != want->v[i].q[j])
                differ(when, j < 2 ? "xmm" : "ymm", 100 + i * 4 + j, got->v[i].q[j], want->v[i].q[j]);
        }
    }
    CMP(mxcsr, "MXCSR");
    CMP(fcw, "x87 FCW");
    CMP(xcr0, "XCR0");
    CMP(cr2, "CR2");
    CMP(cr8, "CR8");
    for (int i = 0; i < 4; i++) {
        items++;
        if (got->dr[i] != want->dr[i])
            differ(when, "DR", i, got->dr[i], want->dr[i]);
    }
    CMP(dr6, "DR6");
    CMP(dr7, "DR7");
    CMP(star, "STAR");
    CMP(lstar, "LSTAR");
    CMP(cstar, "CSTAR");
    CMP(fmask, "FMASK");
    CMP(kernel_gs_base, "KERNEL_GS_BASE");
    if (have_rdtscp) {
        CMP(tsc_aux, "TSC_AUX (RDMSR)");
        CMP(tsc_aux_rdtscp, "TSC_AUX (RDTSCP)");
    }
    if (have_pku)
        CMP(pkru, "PKRU");
#undef CMP
    return items;
}

/* The values a CPU has at power-on (SDM vol. 3, "Initialization"), with XCR0 = 1 and
 * 0 for everything not listed there. */
static void power_on(struct state *s)
{
    __builtin_memset(s, 0, sizeof *s);
    s->mxcsr = 0x1f80;
    s->fcw = 0x037f;
    s->xcr0 = 1;
    s->dr6 = 0xffff0ff0ull;
    s->dr7 = 0x400;
}

static uint64_t option(const char *cmdline, const char *key, uint64_t def)
{
    for (const char *p = cmdline; p && *p; p++) {
        if (p != cmdline && p[-1] != ' ')
            continue;
        const char *k = key, *q = p;
        while (*k && *q == *k)
            k++, q++;
        if (*k || *q != '=')
            continue;
        uint64_t v = 0;
        for (q++; *q >= '0' && *q <= '9'; q++)
            v = v * 10 + (uint64_t)(*q - '0');
        return v;
    }
    return def;
}

__attribute__((noreturn)) static void leave(unsigned code)
{
    uart_drain();
    outb(DEBUG_EXIT_PORT, (uint8_t)code);
    for (;;)
        __asm__ volatile("cli; hlt");
}

__attribute__((used, noreturn)) void leak_main(uint64_t info, uint64_t magic)
{
    uart_init();
    if ((uint32_t)magic != MB_BOOT_MAGIC) {
        printf("state-leak: FAIL: RAX=0x%lx at entry, want 0x%x\n", magic, MB_BOOT_MAGIC);
        leave(EXIT_BAD_BOOT);
    }
    const uint32_t *mbi = (const uint32_t *)(uintptr_t)info;
    const char *cmdline = (mbi[0] & MB_INFO_CMDLINE) ? (const char *)(uintptr_t)mbi[4] : "";
    seed = option(cmdline, "seed", 1);
    uint32_t rounds = (uint32_t)option(cmdline, "rounds", 100);
    use_xsave = option(cmdline, "xsave", 0) != 0;

    struct cpuid_regs r = cpuid(1, 0);
    bool have_xsave = r.ecx & (1u << 26);
    have_avx = have_xsave && (r.ecx & (1u << 28));
    have_pku = cpuid(7, 0).ecx & (1u << 3);
    have_rdtscp = cpuid(0x80000001u, 0).edx & (1u << 27);

    /* SSE on, as any OS does first; XGETBV needs CR4.OSXSAVE. Neither changes state the
     * audit checks. */
    write_cr0((read_cr0() & ~(CR0_EM | CR0_TS)) | CR0_MP);
    write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
    if (have_xsave)
        write_cr4(read_cr4() | CR4_OSXSAVE);
    else
        use_xsave = false;
    if (have_pku)
        write_cr4(read_cr4() | CR4_PKE);

    struct state want, got;
    power_on(&want);
    read_state(&got);
    if (!have_xsave)
        got.xcr0 = 1;
    unsigned items = compare("at start", &got, &want);
    printf("state-leak: seed %lu, xsave=%d (AVX %s, RDTSCP %s, PKU %s): %u items at their power-on values%s\n", seed,
           use_xsave, have_avx ? "yes" : "no", have_rdtscp ? "yes" : "no", have_pku ? "yes" : "no", items,
           failures ? ": NO" : "");

    if (use_xsave) {
        /* The components XSETBV enables start in their initial state too: the YMM upper
         * halves are zero, whatever another VM left in them. */
        xsetbv0(have_avx ? 7 : 3);
        ymm_live = have_avx;
        power_on(&want);
        want.xcr0 = have_avx ? 7 : 3;
        read_state(&got);
        items = compare("at start, after XSETBV", &got, &want);
        printf("state-leak: seed %lu: XCR0 0x%lx: %u items at their initial values%s\n", seed, want.xcr0, items,
               failures ? ": NO" : "");
    }
    for (uint32_t round = 0; round < rounds; round++) {
        pattern(&want, seed, round);
        write_state(&want);
        int64_t rc = vmcall(KEEL_HC_YIELD);
        read_state(&got);
        if (!have_xsave)
            got.xcr0 = 1;
        unsigned before = failures;
        compare("after a yield", &got, &want);
        if (rc != 0 || failures != before) {
            printf("state-leak: FAIL: seed %lu: round %u of %u (yield returned %ld)\n", seed, round, rounds, rc);
            leave(EXIT_FAIL);
        }
    }
    /* Everything stays loaded with this guest's last pattern: the next VM's start check
     * shows whether Keel switched it away. */
    printf("state-leak: seed %lu: %u rounds, %u items intact after every yield%s\n", seed, rounds, items,
           failures ? ", but the start state was not clean" : "");
    leave(failures ? EXIT_FAIL : EXIT_OK);
}
