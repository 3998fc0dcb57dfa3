/* Virtual machines and their vCPUs, as the generic hypervisor sees them. A VM owns one
 * contiguous block of host RAM mapped at guest-physical 0 by the backend's second-stage
 * translation; a vCPU is loaded on at most one CPU at a time. What the CPU backend
 * keeps for each (VMCS, EPT, swapped registers) is in arch/x86/vcpu_arch.h. */
#ifndef KEEL_VMM_VM_H
#define KEEL_VMM_VM_H

#include "vmm/lib/types.h"
#include "vmm/lib/spinlock.h"
#include "vmm/lib/config.h"
#include "arch/x86/vcpu_arch.h"
#include "boot/bootinfo.h"
#include "arch/x86/vcpu_backend.h"
#include "vmm/dev/bus.h"
#include "vmm/dev/console.h"
#include "vmm/dev/uart16550.h"
#include "vmm/dev/apic_bus.h"
#include "vmm/dev/vlapic.h"
#include "vmm/dev/vioapic.h"
#include "vmm/dev/pic8259.h"
#include "vmm/dev/pit8254.h"
#include "vmm/dev/rtc_cmos.h"
#include "vmm/dev/acpi_pm.h"
#include "vmm/dev/fw_cfg.h"
#include "vmm/dev/pci_host.h"
#include "vmm/dev/i8042.h"
#include "vmm/dev/port92.h"
#include "vmm/dev/pc_testdev.h"
#include "vmm/dev/dev_ram.h"
#include "vmm/dev/msi_apic.h"
#include "vmm/dev/virtio_blk.h"
#include "vmm/dev/virtio_console.h"
#include "vmm/sched_vcpu.h"

enum vm_state {
    VM_CREATED = 0,
    VM_RUNNING,
    VM_STOPPED,
};

struct vcpu;

/* The virtual PC every VM gets (vmm/dev/platform.c wires it): interrupt controllers,
 * timers, firmware interfaces. Legacy devices are reached from any of the VM's vCPUs,
 * so their accesses hold `lock`; the LAPICs are per vCPU and need none. */
struct vm_pc {
    spinlock_t lock;
    bool started;             /* vm_platform_start has wired it */
    struct dev_clock clock;   /* VM time: ns since the VM was created */
    uint64_t t0_ns;           /* host time_ns() at creation */
    uint64_t tsc_at_zero;     /* host (and guest) TSC at creation */
    uint64_t next_deadline;   /* VM time of the next device event (CLOCK_NEVER: none) */
    uint32_t uart_input;      /* the host queued COM1 input: the next poll moves it in */
    struct irq_sink irq;      /* ISA IRQ / GSI lines, to the PIC and the IOAPIC */
    /* Ports of devices with timers: a write there may move the next device event, and
     * so may a read of those also in timed_reads (the RTC's register C, a PIC poll).
     * Reading the PM timer's count moves nothing, and Linux does it often. */
    uint64_t timed_ports[BUS_PORTS / 64];
    uint64_t timed_reads[BUS_PORTS / 64];
    struct apic_bus apic;
    struct vioapic ioapic;
    struct pic8259 pic;
    struct pit8254 pit;
    struct rtc_cmos rtc;
    struct acpi_pm pm;
    struct fw_cfg fw;
    struct pci_host pci;
    struct i8042 kbc;
    struct port92 port92;
    /* PCI functions (vmm/dev/pci_devices.c) and their MSI path to the APIC bus. */
    struct msi_apic msi;
    bool has_blk, has_vcon;
    struct virtio_blk blk;
    struct virtio_console vcon;
    gpa_t rsdp; /* where its ACPI tables start */
    bool has_testdev;       /* testdev = on */
    struct pc_testdev testdev; /* last: its 64 KiB of MMIO scratch */
};

struct vm {
    uint32_t id;
    char name[CONFIG_NAME_MAX + 1];
    const struct vm_config *cfg;
    uint32_t entry_kind; /* enum config_entry */

    /* Its RAM: ram_size bytes in all, laid out as a PC's (vmm/dev/dev_ram.h): the part
     * below 4 GiB in one host block (ram_hpa, mem.hva), the rest at 4 GiB in another
     * (high_hpa, mem.high_hva; 0 and NULL when the VM has none). */
    hpa_t ram_hpa;
    hpa_t high_hpa;
    uint64_t ram_size;
    struct dev_ram mem;
    /* Its virtio-blk disk (NULL: none): a private copy of the image unless read-only,
     * so writes reach only this VM's disk and are lost when it goes. */
    uint8_t *disk;
    uint64_t disk_size;
    hpa_t disk_copy; /* the copy's pages, 0 when the image itself is used */
    struct vm_arch arch;

    volatile uint32_t state; /* enum vm_state */
    volatile bool paused;    /* by the monitor: none of its vCPUs is runnable */
    bool stop_claimed;       /* set by the first vm_stop, on whichever CPU */
    bool has_exit_code;
    uint32_t exit_code;
    char stop_reason[200];
    uint32_t stats_dumps; /* exit-statistics dumps so far (vmm/stats.h) */

    /* What a restart loads again: the image as Keel holds it, and vCPU 0's boot state. */
    const void *image;
    size_t image_size;
    const void *initrd; /* entry = linux: its initrd (NULL: none) */
    size_t initrd_size;
    struct vcpu_boot boot;
    /* A reset by the guest (on_reset = restart): every vCPU parks (resets its own CPU
     * state and stops running) when it sees reset_gen move; the last one to park
     * restarts the VM (RAM, image, devices) and clears resetting, vCPU 0 then runs. */
    volatile uint32_t reset_gen;
    volatile uint32_t reset_parked;
    volatile bool resetting;
    uint32_t resets;           /* restarts so far, for the report */
    uint32_t resets_in_burst;  /* since burst_start_ns: bounds a reset loop */
    uint64_t burst_start_ns;
    char reset_reason[64];

    struct vm_bus bus;          /* its ports and MMIO ranges (vmm/dev/platform.c) */
    /* MSRs Keel does not offer that the guest tried (each gets #GP): the first
     * VM_MSRS_LOGGED are named once in the log, the rest counted in the report. */
#define VM_MSRS_LOGGED 8
    uint32_t msrs_logged[VM_MSRS_LOGGED];
    uint32_t msrs_logged_count;
    uint32_t msrs_unlogged;
    struct vm_console console;  /* the line its UART and console hypercall write */
    struct uart16550 com1;
    struct vm_pc pc;
    uint32_t vcpu_count;
    struct vcpu *vcpus[MAX_VCPUS];
};

struct vcpu {
    struct vcpu_arch arch; /* first: see arch/x86/vcpu_arch.h */
    struct vm *vm;
    uint32_t id;
    struct sched_vcpu sched; /* its share, CPUs, run queue and times (vmm/sched.c) */
    bool nmi_pending;
    bool extint_msg; /* an ExtINT message arrived: the vector comes from the PIC */
    volatile uint32_t activity; /* enum vcpu_activity: an AP waits for its SIPI */
    volatile bool halted;       /* HLT with interrupts on: runnable again at an event */
    uint32_t reset_gen;         /* the VM's reset_gen when this vCPU last parked */
    uint64_t mtrr_def_type;     /* IA32_MTRR_DEF_TYPE as the guest wrote it (0 at reset) */
    /* Its local APIC; CR8 is its TPR, so a guest never reaches the host APIC's. */
    struct vlapic lapic;
};

STATIC_ASSERT(offsetof(struct vcpu, arch) == 0, "the backend finds its part at the vCPU's address");

/* Guest memory for loaders, hypercalls and devices: the host view of [gpa, gpa+len), or
 * NULL when any byte of it lies outside the VM's RAM (or the range crosses from one
 * part of it to the other). The core's way in; device models get the same struct
 * dev_ram and use dev_ram_span; nothing else computes a host address from a GPA. */
static inline void *vm_gpa_map(const struct vm *vm, gpa_t gpa, uint64_t len)
{
    return dev_ram_span(&vm->mem, gpa, len);
}

extern struct vm *vms[MAX_VMS];
extern uint32_t vm_count;

/* Creates every VM the configuration declares that fits; reports those that do not. */
void vms_create(const struct keel_config *cfg, const struct bootinfo *bi);
/* Stops a VM: records why, prints its report, and kicks its vCPUs that are loaded on
 * other CPUs out of guest mode (an IPI; a guest running with interrupts masked in a
 * way that delays the exit still loses its CPU at the end of its slice). Callable from
 * any CPU; only the first stop counts. */
void vm_stop(struct vm *vm, const char *fmt, ...) PRINTF_LIKE(2, 3);
void vm_stop_with_code(struct vm *vm, uint32_t code, const char *why);
/* Restarts allowed within VM_RESET_BURST_NS; one more stops the VM as a reset loop. */
#define VM_RESET_BURST 8
#define VM_RESET_BURST_NS 10000000000ull
/* The guest reset the machine (why: how). on_reset = stop: the VM stops; restart: every
 * vCPU is told to park (vm_reset_park), and the VM starts again from its image. Returns
 * how the vCPU whose exit this is goes on. */
enum exit_action vm_reset(struct vcpu *v, const char *why);
/* From the EVENTS handler, on the vCPU's own CPU, while vm->resetting or when reset_gen
 * moved: parks the vCPU; the last to park restarts the VM. */
enum exit_action vm_reset_park(struct vcpu *v);
/* Number of VMs not yet stopped. */
uint32_t vms_running(void);
void vm_print_report(const struct vm *vm);
/* The VM's exit statistics: every vCPU's summed. */
void vm_sum_stats(const struct vm *vm, struct vcpu_stats *sum);

#endif
