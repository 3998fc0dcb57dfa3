/* The interrupt descriptor table and the C side of interrupt/exception entry. */
#ifndef KEEL_ARCH_X86_TRAP_H
#define KEEL_ARCH_X86_TRAP_H

#include "vmm/lib/types.h"

/* Saved by isr.asm; the layout must match its push order. */
struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;
};

#define VECTOR_NMI 2
#define VECTOR_DOUBLE_FAULT 8
#define VECTOR_MACHINE_CHECK 18
#define VECTOR_FIRST_IRQ 32
#define VECTOR_SPURIOUS 0xff

typedef void (*irq_handler_t)(struct trap_frame *f);

/* Fills the shared IDT; idt_load() then installs it on the calling CPU. */
void idt_init(void);
void idt_load(void);
/* Routes an interrupt vector (>= 32) to a handler; the handler sends the EOI. */
void irq_register(uint8_t vector, irq_handler_t handler);

/* Called from isr.asm. */
void trap_dispatch(struct trap_frame *f);
/* Prints everything known about a CPU exception and stops this CPU. */
NORETURN void exception_fatal(const struct trap_frame *f);
const char *exception_name(uint64_t vector);

#endif
