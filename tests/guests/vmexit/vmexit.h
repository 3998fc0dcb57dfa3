/* The vmexit guest's shared pieces: interrupt vectors and counters, the local APIC, the
 * ACPI facts it needs, the second CPU, and the test table. */
#ifndef VMEXIT_H
#define VMEXIT_H

#include "guest.h"

/* Vectors. Each interrupt the tests cause has its own, so a stray one is noticed. */
#define VEC_SELF_IPI 0xB0
#define VEC_TIMER 0xB1
#define VEC_IPI 0xB2
#define VEC_SPURIOUS 0xFF

#define LAPIC_ID 0x020
#define LAPIC_VERSION 0x030
#define LAPIC_TPR 0x080
#define LAPIC_EOI 0x0B0
#define LAPIC_SVR 0x0F0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_DIV 0x3E0

#define LVT_MASKED (1u << 16)
#define LVT_TIMER_TSC_DEADLINE (2u << 17)
#define TIMER_DIVIDE_BY_1 0xB
#define ICR_INIT (5u << 8)
#define ICR_STARTUP (6u << 8)
#define ICR_LEVEL (1u << 15)
#define ICR_ASSERT (1u << 14)
#define ICR_SELF (1u << 18)
#define ICR_PENDING (1u << 12)

#define MSR_IA32_APIC_BASE 0x1Bu
#define MSR_TSC_DEADLINE 0x6E0u
#define MSR_KERNEL_GS_BASE 0xC0000102u
#define MSR_X2APIC_SELF_IPI 0x83Fu

/* What the interrupt handlers (intr.c) count and time. */
struct intr_counts {
    volatile uint32_t self_ipi, timer, ipi, spurious;
    volatile uint64_t timer_tsc;    /* TSC when the latest timer interrupt's handler ran */
    volatile uint64_t eoi_ticks;    /* summed cost of the self-IPI handler's EOI write */
};
extern struct intr_counts counts;

/* intr.c: the IDT (exception stubs of entry.asm, the vectors above) on this CPU. */
void intr_init(void);
void intr_load_idt(void);
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }

/* lapic.c: the BSP's local APIC, xAPIC by MMIO until lapic_enable_x2apic; the AP's,
 * always xAPIC. */
void lapic_init(void);        /* finds the base in IA32_APIC_BASE (BSP) */
void lapic_enable(void);      /* software-enabled, LVTs masked, TPR 0 */
void lapic_enable_x2apic(void); /* BSP only, for the x2apic_ tests; there is no way back */
uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t val);
void lapic_write_mmio(uint32_t reg, uint32_t val); /* xAPIC whatever the BSP's mode (AP) */
uint32_t lapic_id(void);
/* Writes the ICR and waits, bounded, until the APIC has sent it; false if it stays pending. */
bool lapic_send(uint32_t dest, uint32_t low);
static inline void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }

/* acpi.c: the PM timer's port from the FADT and the enabled CPUs of the MADT. */
#define ACPI_MAX_CPUS 8
struct acpi_facts {
    uint16_t pm_timer_port;  /* 0: no FADT or no PM timer */
    uint32_t ncpus;
    uint8_t apic_ids[ACPI_MAX_CPUS];
};
void acpi_find(struct acpi_facts *out);

/* smp.c: the second CPU. */
/* Starts the first AP of the MADT by INIT-SIPI-SIPI; its APIC ID, or -1 with a message. */
int32_t smp_start_ap(const struct acpi_facts *acpi, uint32_t bsp_id);
extern volatile uint32_t ap_ipis_done; /* bumped by the AP after each VEC_IPI's EOI */

/* TSC ticks to spin, for delays whose length only needs an order of magnitude. */
void spin_ticks(uint64_t ticks);

/* main.c: what the tests may use. */
struct vmexit_env {
    bool hypervisor;      /* Keel or KVM, by leaf 0x40000000: VMCALL is answered */
    bool keel;            /* leaf 0x40000000 says KeelKeelKeel */
    bool tsc_deadline;    /* CPUID.1:ECX[24] */
    bool x2apic;          /* CPUID.1:ECX[21] */
    int32_t ap_id;        /* APIC ID of the started AP, -1 without one */
    uint16_t pm_timer_port;
    uint64_t fresh_start, fresh_end; /* RAM no one has touched, for ept_first_touch */
};
extern struct vmexit_env env;

/* tests.c: the table. Each test's body runs `iterations` times per batch; extra figures
 * (the IPI send, the EOI, a timer's lateness) are summed into `extra` and printed per
 * iteration after the test's line. */
struct vmexit_test {
    const char *name;
    void (*body)(void);
    const char *(*unavailable)(void); /* why it cannot run here, or NULL */
    void (*setup)(void);
    bool one_batch;                   /* consumes something: never repeat a batch */
    volatile uint32_t *irqs;          /* bumped once per iteration by its interrupt, or NULL */
};
enum extra_figure { EXTRA_IPI, EXTRA_EOI, EXTRA_LATENCY, EXTRA_COUNT };
extern uint64_t extra[EXTRA_COUNT];
extern const struct vmexit_test vmexit_tests[];
extern const uint32_t vmexit_test_count;

#endif
