/* storm: a VM-exit storm with an exact account. It repeats a mix of exiting
 * instructions n times, checks each one's result, and counts every exit it causes from
 * its first instruction to its last, so that a test can compare the counts with the
 * per-VM report Keel prints when the VM stops (tests/system/bochs-exit-storm.sh).
 *
 * Options: n=<iterations> (default 1000), mix=<letters> (default cciorwvh), one exit
 * per letter and iteration, in order:
 *   c  CPUID leaf 0x40000000: the signature must be Keel's
 *   o  OUT to the UART scratch register (0x3FF), a new value each time
 *   i  IN from the UART scratch register: must read back the last value written
 *   w  WRMSR IA32_SYSENTER_ESP (0x175), which Keel keeps in the guest's VMCS
 *   r  RDMSR IA32_SYSENTER_ESP: must read back the last value written
 *   v  VMCALL VM_INFO with size 0: must return -EINVAL (no guest memory touched)
 *   h  HLT with interrupts enabled (STI; HLT; CLI): Keel yields the CPU and resumes
 *
 * Exits the guest does not choose (the preemption timer, external interrupts) are not
 * counted here. Exits it does choose but does not make in the mix are: the UART
 * driver's port accesses (start-up and printf; uart_port_accesses), the CONSOLE_WRITE
 * that prints the final line, and the EXIT hypercall that stops the VM.
 *
 * Output lines, for scripts:
 *   storm: n=<n> mix=<mix>
 *   storm: mix done: cpuid=A io=B rdmsr=C wrmsr=D vmcall=E hlt=F ticks=T mismatches=M
 *   storm: exits cpuid=A io=B rdmsr=C wrmsr=D vmcall=E hlt=F
 * The "mix done" counts are those of the mix alone, the "exits" line (printed with one
 * CONSOLE_WRITE hypercall, so that it is counted in itself) is the whole run's total,
 * including the exit hypercall that follows it. Exit code 0 (EXIT hypercall) when every
 * result was right, else 1. */
#include "guest.h"

const char guest_prefix[] = "storm:";

#define DEFAULT_MIX "cciorwvh"
#define MIX_MAX 64
#define MIX_EXITS_MAX 4000000000u
#define MISMATCH_REPORTS 5
#define UART_SCR (COM1_BASE + 7)
#define MSR_SYSENTER_ESP 0x175u

struct counts {
    uint32_t cpuid, io, rdmsr, wrmsr, vmcall, hlt;
};

/* Exits made outside the UART driver; the driver keeps its own count. */
static struct counts made;
static uint32_t mismatches;

static void mismatch(const char *what, uint32_t iter, uint32_t got, uint32_t want)
{
    if (mismatches++ < MISMATCH_REPORTS)
        printf("storm: FAIL: iteration %u: %s returned 0x%x, want 0x%x\n", iter, what, got, want);
}

static bool keel_signature(void)
{
    struct cpuid_regs r = cpuid(KEEL_CPUID_BASE, 0);
    made.cpuid++;
    return r.ebx == KEEL_SIGNATURE_EBX && r.ecx == KEEL_SIGNATURE_ECX && r.edx == KEEL_SIGNATURE_EDX;
}

#define MIX_LETTERS "coiwrvh"

static bool mix_valid(const char *m, size_t len)
{
    if (!len || len > MIX_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        const char *l = MIX_LETTERS;
        while (*l && *l != m[i])
            l++;
        if (!*l)
            return false;
    }
    return true;
}

/* What the scratch register and the MSR hold. Both are written before the mix starts,
 * so every read in it has a known answer. */
static uint8_t scr = 0x5a;
static uint32_t esp = 0x00100000u;

static void mix_prepare(void)
{
    outb(UART_SCR, scr);
    made.io++;
    wrmsr(MSR_SYSENTER_ESP, esp);
    made.wrmsr++;
}

static void run_mix(const char *mix, size_t len, uint32_t n)
{
    for (uint32_t it = 0; it < n; it++) {
        for (size_t k = 0; k < len; k++) {
            switch (mix[k]) {
            case 'c': {
                struct cpuid_regs r = cpuid(KEEL_CPUID_BASE, 0);
                made.cpuid++;
                if (r.ebx != KEEL_SIGNATURE_EBX)
                    mismatch("CPUID 0x40000000 EBX", it, r.ebx, KEEL_SIGNATURE_EBX);
                break;
            }
            case 'o':
                scr = (uint8_t)(scr * 5 + 1 + it);
                outb(UART_SCR, scr);
                made.io++;
                break;
            case 'i': {
                uint8_t v = inb(UART_SCR);
                made.io++;
                if (v != scr)
                    mismatch("IN from the UART scratch register", it, v, scr);
                break;
            }
            case 'w':
                esp = (esp + 0x1000u + it) & 0x7ffffff0u;
                wrmsr(MSR_SYSENTER_ESP, esp);
                made.wrmsr++;
                break;
            case 'r': {
                uint64_t v = rdmsr(MSR_SYSENTER_ESP);
                made.rdmsr++;
                if (v != esp)
                    mismatch("RDMSR IA32_SYSENTER_ESP", it, (uint32_t)v, esp);
                break;
            }
            case 'v': {
                int32_t rc = keel_hypercall(KEEL_HC_VM_INFO, 0, 0, 0);
                made.vmcall++;
                if (rc != -(int32_t)KEEL_EINVAL)
                    mismatch("VMCALL VM_INFO with size 0", it, (uint32_t)rc, -(uint32_t)KEEL_EINVAL);
                break;
            }
            case 'h':
                __asm__ volatile("sti; hlt; cli" ::: "memory");
                made.hlt++;
                break;
            }
        }
    }
}

/* The final line is built in memory, as printing it through the UART would change the
 * very count it reports. */
struct line {
    char s[200];
    uint32_t len;
};

static void put_str(struct line *l, const char *s)
{
    while (*s && l->len < sizeof(l->s) - 1)
        l->s[l->len++] = *s++;
}

static void put_u32(struct line *l, const char *key, uint32_t v)
{
    char digits[12], *p = digits + sizeof(digits);
    *--p = 0;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put_str(l, key);
    put_str(l, p);
}

int main(uint32_t magic, uint32_t info_gpa)
{
    (void)info_gpa;
    if (magic != MB_BOOT_MAGIC) {
        printf("storm: FAIL: EAX=0x%08x at entry, want 0x%08x\n", magic, MB_BOOT_MAGIC);
        return GUEST_EXIT_BAD_BOOT;
    }
    /* Everything below exits only under a hypervisor that traps it; Keel's signature
     * says this one does (and that VMCALL will not raise #UD). */
    if (!keel_signature()) {
        printf("storm: FAIL: CPUID 0x40000000 has no Keel signature: not running under Keel\n");
        return GUEST_EXIT_FAIL;
    }
    uint32_t n = cmdline_u32("n", 1000, 1, 100000000u);
    size_t len;
    const char *mix = cmdline_opt("mix", &len);
    if (!mix) {
        mix = DEFAULT_MIX;
        len = strlen(DEFAULT_MIX);
    } else if (!mix_valid(mix, len)) {
        printf("storm: option mix: bad value '%.*s' (want 1..%u of the letters %s); using %s\n",
               (int)len, mix, MIX_MAX, MIX_LETTERS, DEFAULT_MIX);
        mix = DEFAULT_MIX;
        len = strlen(DEFAULT_MIX);
    }
    /* The counts are 32-bit, with room left for start-up and output. */
    if ((uint64_t)n * len > MIX_EXITS_MAX) {
        uint32_t fit = MIX_EXITS_MAX / (uint32_t)len;
        printf("storm: n=%u with a mix of %u makes more than %u exits; using n=%u\n", n, (uint32_t)len,
               MIX_EXITS_MAX, fit);
        n = fit;
    }
    printf("storm: n=%u mix=%.*s\n", n, (int)len, mix);

    mix_prepare();
    struct counts before = made;
    uint64_t t0 = rdtsc();
    run_mix(mix, len, n);
    uint64_t t1 = rdtsc();
    printf("storm: mix done: cpuid=%u io=%u rdmsr=%u wrmsr=%u vmcall=%u hlt=%u ticks=%llu mismatches=%u\n",
           made.cpuid - before.cpuid, made.io - before.io, made.rdmsr - before.rdmsr,
           made.wrmsr - before.wrmsr, made.vmcall - before.vmcall, made.hlt - before.hlt, t1 - t0,
           mismatches);

    /* Still to come: the CONSOLE_WRITE of the line below and the EXIT hypercall. */
    struct line l = {.len = 0};
    put_u32(&l, "storm: exits cpuid=", made.cpuid);
    put_u32(&l, " io=", made.io + uart_port_accesses);
    put_u32(&l, " rdmsr=", made.rdmsr);
    put_u32(&l, " wrmsr=", made.wrmsr);
    put_u32(&l, " vmcall=", made.vmcall + 2);
    put_u32(&l, " hlt=", made.hlt);
    put_str(&l, "\n");
    keel_console_write(l.s, l.len);
    keel_hypercall(KEEL_HC_EXIT, mismatches ? GUEST_EXIT_FAIL : GUEST_EXIT_OK, 0, 0);
    printf("storm: FAIL: the EXIT hypercall returned\n");
    return GUEST_EXIT_FAIL;
}
