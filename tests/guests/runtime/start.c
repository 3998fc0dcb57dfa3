#include "guest.h"

/* Called from entry.asm with the loader's EAX and EBX. */
__attribute__((noreturn)) void runtime_start(uint32_t magic, uint32_t info_gpa);

void runtime_start(uint32_t magic, uint32_t info_gpa)
{
    uart_init();
    idt_init();
    mb_init(magic, info_gpa);
    debug_exit((uint32_t)main(magic, info_gpa));
}

void debug_exit(uint32_t code)
{
    uart_drain();
    outl(DEBUG_EXIT_PORT, code);
    printf("%s debug-exit port 0x%x did not stop the VM (code %u); halting\n", guest_prefix,
           DEBUG_EXIT_PORT, code);
    uart_drain();
    for (;;) {
        cli();
        hlt();
    }
}
