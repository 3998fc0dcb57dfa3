/* Exception handling for test guests: an IDT for vectors 0-31 and recovery points.
 *
 * A guest that expects an instruction to fault arms a recovery point first:
 *
 *     if (fault_arm(VEC_GP) < 0) {
 *         wrmsr(0x3A, 0);       // may fault
 *         fault_disarm();
 *         ...no fault...
 *     } else {
 *         ...#GP was raised; fault_last holds the details...
 *     }
 *
 * fault_arm works like setjmp: it returns -1 when armed, and returns the vector a second
 * time if that exception fires before fault_disarm (which also disarms it). Locals changed
 * between the two returns must be volatile. Any other exception is unexpected: the
 * handler prints vector, error code, EIP and CR2, then exits with GUEST_EXIT_FAULT. */
#ifndef GUEST_FAULT_H
#define GUEST_FAULT_H

#include <stdint.h>

struct fault_record {
    int vector;          /* -1 until the first caught fault */
    uint32_t error_code; /* 0 for vectors without one */
    uint32_t eip;        /* address of the faulting instruction */
};

/* The most recent caught fault. */
extern volatile struct fault_record fault_last;

void idt_init(void);
int fault_arm(int vector) __attribute__((returns_twice));
void fault_disarm(void);

/* Name of an exception vector ("#GP"), or "#??" outside 0-31. */
const char *fault_name(int vector);

/* MSR accesses that report a fault instead of dying: they return -1 when the
 * instruction completed, or the vector of the fault it raised. */
int rdmsr_safe(uint32_t msr, uint64_t *val);
int wrmsr_safe(uint32_t msr, uint64_t val);

#endif
