/* A CPU backend for host tests, in the style of Hafnium's arch/fake: struct
 * vcpu_backend over plain memory, so vm.c, the scheduler and the generic exit handlers
 * run on the host exactly as Keel calls them. Guest registers live in a per-vCPU
 * table, injected exceptions are recorded, and "running" a slice calls the test's
 * script. fake_exit() plays one exit the way a backend's run loop does: the generic
 * handler from the table handed to init, then the step over the instruction. */
#ifndef KEEL_TESTS_FAKE_BACKEND_H
#define KEEL_TESTS_FAKE_BACKEND_H

#include "arch/x86/vcpu_backend.h"

#define FAKE_MAX_VCPUS 64

struct fake_vcpu {
    struct vcpu *v;
    uint64_t reg[VCPU_REG_COUNT];
    int injected_vector; /* -1: none */
    bool injected_has_error;
    uint32_t injected_error;
    bool created, destroyed;
    /* Interrupts: whether the guest could take one now, what was injected (in order),
     * the interrupt window, INIT and SIPI. */
    bool blocked;
    uint8_t intr[32];
    unsigned nintr, nmis;
    bool window, nmi_window;
    unsigned inits, resets;
    int sipi_vector; /* -1: none */
    int loads, unloads;
};

struct fake_backend_state {
    /* What the tests set. */
    bool init_fails, cpu_on_fails, vm_create_fails, vcpu_create_fails;
    uint64_t cr4_allowed, xcr0_supported;
    bool paging_off_guests;
    bool no_nmi_window; /* a CPU without NMI-window exiting */
    /* A slice on the calling CPU; NULL: every slice ends with EXIT_YIELD. */
    enum exit_action (*run)(struct vcpu *v, uint64_t slice_tsc);
    /* What the backend saw. */
    const vcpu_exit_fn *handlers;
    int inits, cpu_ons, cpu_offs, vm_creates, vm_destroys, vcpu_creates, vcpu_destroys, runs, loads, unloads;
    /* The RAM ranges of the last vm_create (the first two). */
    unsigned ram_ranges;
    struct vm_ram_range ram[2];
    struct vcpu_boot last_boot;
    struct fake_vcpu vcpus[FAKE_MAX_VCPUS];
    unsigned nvcpus;
};

extern struct fake_backend_state fake;
extern const struct vcpu_backend fake_backend;

/* Forgets everything: defaults are a CPU that allows CR4.PAE/OSFXSR/OSXSAVE... (0x3707ff),
 * XCR0 x87|SSE|AVX, real-mode guests allowed. */
void fake_backend_reset(void);
/* The vCPU's fake state (created on first use). */
struct fake_vcpu *fake_vcpu(struct vcpu *v);
/* One exit of kind `id`, decoded as `e`, with an instruction of `len` bytes: returns
 * EXIT_RESUME, EXIT_YIELD or EXIT_STOPPED, and advances RIP as a backend would. */
enum exit_action fake_exit(struct vcpu *v, enum vcpu_exit id, struct exit_info *e, unsigned len);

#endif
