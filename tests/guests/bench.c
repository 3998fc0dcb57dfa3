/* bench: VM-exit round-trip cost. Times N CPUID exits (leaf 0) and N VMCALL exits
 * (VM_INFO with a too-small size: Keel rejects it before touching guest memory, so the
 * batch measures the bare exit path) with RDTSC, then N port exits of three kinds: IN
 * from the UART's LSR, OUT to the UART's scratch register, IN from an unclaimed port.
 * Option: n=<count> (default 10000). Output lines, for scripts:
 *   bench: cpuid N=<n> total=<ticks> per_exit=<ticks>
 *   bench: vmcall N=<n> total=<ticks> per_exit=<ticks>
 *   bench: in-uart N=<n> total=<ticks> per_exit=<ticks>
 *   bench: out-uart N=<n> total=<ticks> per_exit=<ticks>
 *   bench: in-unclaimed N=<n> total=<ticks> per_exit=<ticks> */
#include "guest.h"

const char guest_prefix[] = "bench:";

#define WARMUP 16
#define UART_LSR 0x3fd
#define UART_SCR 0x3ff
#define UNCLAIMED_PORT 0x2f0

static inline void cpuid_exit(void)
{
    uint32_t a = 0, b, c = 0, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
}

static inline uint32_t vmcall_exit(void)
{
    return (uint32_t)keel_hypercall(KEEL_HC_VM_INFO, 0, 0, 0);
}

static void report(const char *what, uint32_t n, uint64_t total)
{
    printf("bench: %s N=%u total=%llu per_exit=%llu\n", what, n, total, udiv64_32(total, n));
}

int main(uint32_t magic, uint32_t info_gpa)
{
    (void)info_gpa;
    if (magic != MB_BOOT_MAGIC) {
        printf("bench: FAIL: EAX=0x%08x at entry, want 0x%08x\n", magic, MB_BOOT_MAGIC);
        return GUEST_EXIT_BAD_BOOT;
    }
    uint32_t n = cmdline_u32("n", 10000, 1, 100000000u);

    for (int i = 0; i < WARMUP; i++)
        cpuid_exit();
    uint64_t t0 = rdtsc();
    for (uint32_t i = 0; i < n; i++)
        cpuid_exit();
    uint64_t t1 = rdtsc();
    report("cpuid", n, t1 - t0);

    /* The first VMCALL runs under a recovery point: outside Keel it raises #UD. */
    volatile uint32_t first = 0;
    int f = fault_arm(VEC_UD);
    if (f >= 0) {
        printf("bench: FAIL: VMCALL raised %s: not running under Keel\n", fault_name(f));
        return GUEST_EXIT_FAIL;
    }
    first = vmcall_exit();
    fault_disarm();
    if ((int32_t)first != -(int32_t)KEEL_EINVAL)
        printf("bench: note: VM_INFO with size 0 returned %d, expected -EINVAL\n",
               (int32_t)first);

    for (int i = 0; i < WARMUP; i++)
        vmcall_exit();
    t0 = rdtsc();
    for (uint32_t i = 0; i < n; i++)
        vmcall_exit();
    t1 = rdtsc();
    report("vmcall", n, t1 - t0);

    /* The UART pair is what a guest's console costs per byte; the unclaimed port is
     * the path every probe of absent hardware takes. */
    for (int i = 0; i < WARMUP; i++)
        (void)inb(UART_LSR);
    t0 = rdtsc();
    for (uint32_t i = 0; i < n; i++)
        (void)inb(UART_LSR);
    t1 = rdtsc();
    report("in-uart", n, t1 - t0);

    for (int i = 0; i < WARMUP; i++)
        outb(UART_SCR, (uint8_t)i);
    t0 = rdtsc();
    for (uint32_t i = 0; i < n; i++)
        outb(UART_SCR, (uint8_t)i);
    t1 = rdtsc();
    report("out-uart", n, t1 - t0);

    for (int i = 0; i < WARMUP; i++)
        (void)inb(UNCLAIMED_PORT);
    t0 = rdtsc();
    for (uint32_t i = 0; i < n; i++)
        (void)inb(UNCLAIMED_PORT);
    t1 = rdtsc();
    report("in-unclaimed", n, t1 - t0);
    return GUEST_EXIT_OK;
}
