#include "fault.h"
#include "guest.h"

#define IDT_VECTORS 32
#define CODE_SELECTOR 0x08
#define GATE_INTERRUPT32 0x8E /* present, DPL 0, 32-bit interrupt gate */

struct idt_gate {
    uint16_t offset_lo;
    uint16_t selector;
    uint8_t zero;
    uint8_t type;
    uint16_t offset_hi;
} __attribute__((packed));

struct idt_desc {
    uint16_t limit;
    uint32_t base;
} __attribute__((packed));

/* Layout pushed by isr.asm: PUSHAD, then the stub's vector and error code, then the CPU's frame. */
struct fault_frame {
    uint32_t edi, esi, ebp, esp, ebx, edx, ecx, eax;
    uint32_t vector, error_code;
    uint32_t eip, cs, eflags;
};

/* Saved by fault_arm (isr.asm), restored when an expected fault resumes. */
struct fault_ctx {
    uint32_t ebx, esi, edi, ebp, esp, eip;
};

struct fault_ctx fault_ctx;
volatile int fault_expect = -1;
volatile struct fault_record fault_last = { .vector = -1 };

extern const uint32_t isr_stub_table[IDT_VECTORS];
static struct idt_gate idt[IDT_VECTORS];

static const char *const names[IDT_VECTORS] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO", "#TS",
    "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
    "#22", "#23", "#24", "#25", "#26", "#27", "#HV", "#VC", "#SX", "#31",
};

const char *fault_name(int vector)
{
    return vector >= 0 && vector < IDT_VECTORS ? names[vector] : "#??";
}

void idt_init(void)
{
    for (int v = 0; v < IDT_VECTORS; v++) {
        uint32_t addr = isr_stub_table[v];
        idt[v] = (struct idt_gate){
            .offset_lo = (uint16_t)addr,
            .selector = CODE_SELECTOR,
            .type = GATE_INTERRUPT32,
            .offset_hi = (uint16_t)(addr >> 16),
        };
    }
    struct idt_desc d = { .limit = sizeof(idt) - 1, .base = (uint32_t)(uintptr_t)idt };
    __asm__ volatile("lidt %0" ::"m"(d));
}

void fault_disarm(void)
{
    fault_expect = -1;
}

/* Called by isr.asm. Returns (into the recovery code) only for the armed vector. */
uint32_t fault_dispatch(struct fault_frame *f)
{
    int v = (int)f->vector;
    if (v == fault_expect) {
        fault_expect = -1;
        fault_last.vector = v;
        fault_last.error_code = f->error_code;
        fault_last.eip = f->eip;
        return (uint32_t)v;
    }
    fault_expect = -1; /* a fault while reporting must not resume somewhere stale */
    printf("%s unexpected exception %d %s error=0x%x eip=0x%08x cr2=0x%08x eflags=0x%x\n",
           guest_prefix, v, fault_name(v), f->error_code, f->eip, read_cr2(), f->eflags);
    debug_exit(GUEST_EXIT_FAULT);
}

int rdmsr_safe(uint32_t msr, uint64_t *val)
{
    int v = fault_arm(VEC_GP);
    if (v < 0) {
        *val = rdmsr(msr);
        fault_disarm();
    }
    return v;
}

int wrmsr_safe(uint32_t msr, uint64_t val)
{
    int v = fault_arm(VEC_GP);
    if (v < 0) {
        wrmsr(msr, val);
        fault_disarm();
    }
    return v;
}
