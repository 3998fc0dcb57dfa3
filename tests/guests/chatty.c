/* chatty: a VM whose exits are slow. It writes calls=N (default 8) blocks of bytes=N
 * (default 2048, at most 4096) bytes of 63-character lines to its console, through the
 * console hypercall (via=hypercall, default: one exit per block) or the UART (via=uart:
 * one exit per byte). Its own guest time stays tiny while Keel spends milliseconds per
 * block on the physical console: a neighbour on its CPU must still get its turns
 * (tests/system/bochs-noisy-neighbour.sh). It times every block with RDTSC and reports
 * the fastest and the slowest: through the hypercall, the fastest block is one exit that
 * nothing preempted, the cost a scheduler cannot split. */
#include "guest.h"

const char guest_prefix[] = "chatty:";

#define LINE 64

static char block[KEEL_CONSOLE_MAX];

int main(uint32_t magic, uint32_t info_gpa)
{
    (void)info_gpa;
    if (magic != MB_BOOT_MAGIC) {
        printf("chatty: FAIL: EAX=0x%08x at entry, want 0x%08x\n", magic, MB_BOOT_MAGIC);
        return GUEST_EXIT_BAD_BOOT;
    }
    uint32_t calls = cmdline_u32("calls", 8, 1, 1000);
    uint32_t bytes = cmdline_u32("bytes", 2048, LINE, KEEL_CONSOLE_MAX);
    bool uart = cmdline_opt_is("via", "uart");
    for (uint32_t i = 0; i < bytes; i++)
        block[i] = i % LINE == LINE - 1 ? '\n' : (char)('a' + i % 26);

    printf("chatty: %u blocks of %u bytes via %s\n", calls, bytes, uart ? "the UART" : "the console hypercall");
    uint64_t start = rdtsc(), fastest = ~0ull, slowest = 0;
    for (uint32_t c = 0; c < calls; c++) {
        uint64_t t0 = rdtsc();
        if (uart) {
            for (uint32_t i = 0; i < bytes; i++)
                outb(0x3F8, (uint8_t)block[i]);
        } else {
            int32_t rc = keel_console_write(block, bytes);
            if (rc != (int32_t)bytes) {
                printf("chatty: FAIL: console hypercall returned %d for %u bytes\n", rc, bytes);
                return GUEST_EXIT_FAIL;
            }
        }
        uint64_t dt = rdtsc() - t0;
        fastest = dt < fastest ? dt : fastest;
        slowest = dt > slowest ? dt : slowest;
    }
    printf("chatty: done: fastest block %llu ticks, slowest %llu ticks, all %llu ticks\n", fastest, slowest,
           rdtsc() - start);
    return GUEST_EXIT_OK;
}
