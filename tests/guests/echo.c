/* echo: a VM that reads its UART. It polls COM1's line status for received data (no
 * interrupts), gathers a line, and prints it back as `echo: got '<line>'`; the line
 * `quit` ends it with exit code 0. Keel's operator console feeds it what the user
 * types once it is attached (tests/system/bochs-monitor.sh); under QEMU, -serial
 * stdio does the same. It waits as long as it takes: run it with a timeout. */
#include "guest.h"

const char guest_prefix[] = "echo:";

#define LSR (COM1_BASE + 5)
#define LSR_DR 0x01
#define LINE 80
/* Between two looks at the UART: each look is an exit under a hypervisor. */
#define POLL_SPINS 2000u

static bool received(void)
{
    return inb(LSR) & LSR_DR;
}

int main(uint32_t magic, uint32_t info_gpa)
{
    (void)info_gpa;
    if (magic != MB_BOOT_MAGIC) {
        printf("echo: FAIL: EAX=0x%08x at entry, want 0x%08x\n", magic, MB_BOOT_MAGIC);
        return GUEST_EXIT_BAD_BOOT;
    }
    char line[LINE + 1];
    uint32_t len = 0;
    printf("echo: ready: type a line ('quit' ends)\n");
    for (;;) {
        while (!received())
            for (volatile uint32_t i = 0; i < POLL_SPINS; i++)
                ;
        char c = (char)inb(COM1_BASE);
        if (c != '\r' && c != '\n') {
            if (len < LINE && c >= 0x20 && c < 0x7f)
                line[len++] = c;
            continue;
        }
        if (!len)
            continue;
        line[len] = 0;
        printf("echo: got '%s'\n", line);
        if (len == 4 && line[0] == 'q' && line[1] == 'u' && line[2] == 'i' && line[3] == 't')
            return GUEST_EXIT_OK;
        len = 0;
    }
}
