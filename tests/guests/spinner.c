/* spinner: a CPU hog with interrupts off. It never yields, halts or takes an interrupt,
 * so other VMs on its CPU only progress if Keel preempts it (VMX-preemption timer).
 * Options: n=<iterations> (default 200000000), reports=<progress lines> (default 10).
 * It times every chunk of CHUNK iterations with RDTSC; the slowest chunk shows how long
 * the guest was descheduled, the fastest what the loop costs when it runs alone. */
#include "guest.h"

const char guest_prefix[] = "spinner:";

#define CHUNK 4096u

int main(uint32_t magic, uint32_t info_gpa)
{
    (void)info_gpa;
    if (magic != MB_BOOT_MAGIC) {
        printf("spinner: FAIL: EAX=0x%08x at entry, want 0x%08x\n", magic, MB_BOOT_MAGIC);
        return GUEST_EXIT_BAD_BOOT;
    }
    uint32_t n = cmdline_u32("n", 200000000u, 1, 0xFFFFFFFFu);
    uint32_t reports = cmdline_u32("reports", 10, 1, 1000);
    uint32_t every = n / reports ? n / reports : 1;

    cli();
    printf("spinner: interrupts off, spinning n=%u iterations\n", n);
    uint64_t start = rdtsc(), fastest = ~0ull, slowest = 0;
    uint32_t done = 0;
    uint64_t next_report = every; /* 64-bit: stepping past n must not wrap */
    while (done < n) {
        uint32_t chunk = n - done < CHUNK ? n - done : CHUNK;
        uint64_t t0 = rdtsc();
        for (uint32_t i = chunk; i; i--)
            __asm__ volatile(""); /* keeps the empty loop */
        uint64_t dt = rdtsc() - t0;
        if (chunk == CHUNK) {
            fastest = dt < fastest ? dt : fastest;
            slowest = dt > slowest ? dt : slowest;
        }
        done += chunk;
        if (done >= next_report || done == n) {
            printf("spinner: %u/%u iterations, %llu ticks so far\n", done, n, rdtsc() - start);
            while (next_report <= done)
                next_report += every;
        }
    }
    if (slowest)
        printf("spinner: chunk of %u iterations: fastest %llu ticks, slowest %llu ticks\n",
               CHUNK, fastest, slowest);
    printf("spinner: done after %llu ticks\n", rdtsc() - start);
    return GUEST_EXIT_OK;
}
