/* Which devices a VM has and where, and how they are wired: the one place that decides
 * a VM's port map, its MMIO map and its interrupt lines.
 *
 * Wiring, as on a PC with an IOAPIC (and as QEMU's MADT describes it): ISA IRQ n goes to
 * PIC input n and IOAPIC pin n, except IRQ 0 (the PIT), which reaches IOAPIC pin 2; the
 * PIC's INTR output is LINT0 of vCPU 0's local APIC (the virtual wire, ExtINT). */
#include "vmm/dev/platform.h"
#include "vmm/dev/debug_exit.h"
#include "vmm/dev/pci_devices.h"
#include "vmm/vm.h"
#include "vmm/sched.h"
#include "vmm/guest_acpi.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "arch/x86/tsc.h"
#include "drivers/cmos_clock.h"

/* The shortest gap between device wake-ups of a vCPU (see vm_platform_poll). */
#define VM_DEVICE_MIN_WAKE_NS 50000ull

/* Until main.c reads the host clock (and in host tests), a valid date. */
struct wall_time host_boot_time = {.year = 2026, .month = 1, .day = 1};

static bool attach_first(struct vm *vm)
{
    if (uart16550_attach(&vm->com1, &vm->bus, UART16550_COM1, &vm->console, "com1") < 0)
        return false;
    return debug_exit_attach(&vm->bus, DEBUG_EXIT_PORT) >= 0;
}

bool vm_platform_attach(struct vm *vm)
{
    vm_bus_init(&vm->bus, vm->name);
    vm_console_init(&vm->console, vm->name);
    return attach_first(vm);
}

static bool platform_start(struct vm *vm, bool restart);

bool vm_platform_restart(struct vm *vm)
{
    /* Every range goes, so whatever the guest moved (the xAPIC window, BARs) is back
     * where power-on puts it; the unclaimed-port log stays, it is the VM's. The VM's
     * clock runs on, and so does the battery-backed RTC with its CMOS RAM. */
    struct vm_pc *pc = &vm->pc;
    struct rtc_cmos rtc = pc->rtc;
    uint64_t t0_ns = pc->t0_ns, tsc_at_zero = pc->tsc_at_zero;
    vm_bus_destroy(&vm->bus);
    memset(pc, 0, sizeof(*pc));
    pc->t0_ns = t0_ns;
    pc->tsc_at_zero = tsc_at_zero;
    bool ok = attach_first(vm) && platform_start(vm, true);
    if (ok) {
        pc->rtc = rtc;
        rtc_cmos_system_reset(&pc->rtc);
    }
    return ok;
}

static uint64_t vm_now_ns(void *ctx)
{
    const struct vm_pc *pc = ctx;
    return time_ns() - pc->t0_ns;
}

static void route_irq(void *ctx, unsigned line, bool high)
{
    struct vm_pc *pc = ctx;
    if (line < 16)
        pic8259_set_irq(&pc->pic, line, high);
    vioapic_set_irq(&pc->ioapic, line == 0 ? 2 : line, high);
}

static void pic_intr_changed(void *ctx, bool high)
{
    struct vm *vm = ctx;
    if (vm->vcpu_count)
        vlapic_set_lint(&vm->vcpus[0]->lapic, 0, high);
}

/* A vCPU gained something to do: it looks before its next entry, and the CPU it runs
 * or waits on is told. */
static void kick_vcpu(void *ctx, uint32_t index)
{
    struct vm *vm = ctx;
    if (index >= vm->vcpu_count)
        return;
    struct vcpu *v = vm->vcpus[index];
    __atomic_store_n(&v->arch.recheck, 1, __ATOMIC_RELEASE);
    int32_t cpu = __atomic_load_n(&v->arch.loaded_cpu, __ATOMIC_ACQUIRE);
    if (cpu < 0)
        cpu = __atomic_load_n(&v->sched.cpu, __ATOMIC_ACQUIRE);
    if (cpu >= 0 && (uint32_t)cpu != this_cpu()->cpu_id)
        sched_kick_cpu((uint32_t)cpu);
}

/* The host queued input for COM1 (any CPU): the next device poll moves it into the
 * receive FIFO, and vCPU 0 polls now. The order of the stores pairs with the check at
 * the end of vm_platform_poll, so a poll running meanwhile cannot hide the input. */
static void uart_input_ready(void *ctx)
{
    struct vm *vm = ctx;
    __atomic_store_n(&vm->pc.uart_input, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&vm->pc.next_deadline, 0, __ATOMIC_SEQ_CST);
    kick_vcpu(vm, 0);
}

/* The vCPU whose exit is being handled on this CPU, for the xAPIC window. */
static uint32_t current_vcpu_index(void *ctx)
{
    (void)ctx;
    const struct vcpu *v = this_cpu()->current_vcpu;
    return v ? v->id : 0;
}

/* What a PC BIOS leaves in the 8259s (as SeaBIOS does): vectors 0x08-0x0F and
 * 0x70-0x77, every input masked but the cascade. Keel boots kernels directly, so it is
 * their firmware: an OS that uses the IOAPIC must not meet an unprogrammed PIC on the
 * virtual wire. Written through the ports, as the BIOS would. */
static void bios_pic_setup(struct vm *vm)
{
    static const struct {
        uint16_t port;
        uint8_t value;
    } post[] = {
        {0x20, 0x11}, {0x21, 0x08}, {0x21, 0x04}, {0x21, 0x01}, /* master: ICW1-4 */
        {0xa0, 0x11}, {0xa1, 0x70}, {0xa1, 0x02}, {0xa1, 0x01}, /* slave */
        {0x21, 0xfb}, {0xa1, 0xff},                             /* masks */
    };
    for (size_t i = 0; i < ARRAY_SIZE(post); i++) {
        uint64_t v = post[i].value;
        vm_bus_access(&vm->bus, BUS_PIO, post[i].port, 1, true, &v);
    }
}

bool vm_platform_start(struct vm *vm)
{
    return platform_start(vm, false);
}

static bool platform_start(struct vm *vm, bool restart)
{
    struct vm_pc *pc = &vm->pc;
    pc->lock = (spinlock_t)SPINLOCK_INIT;
    if (!restart) {
        pc->tsc_at_zero = rdtsc();
        pc->t0_ns = time_ns();
    }
    pc->clock = (struct dev_clock){.now_ns = vm_now_ns, .ctx = pc};
    pc->irq = (struct irq_sink){.set = route_irq, .ctx = pc};
    pc->next_deadline = CLOCK_NEVER;
    uint64_t tsc = tsc_calibrated() ? tsc_hz() : 1000000000ull;
    struct apic_bus_config ac = {
        .vm_name = vm->name,
        .clock = &pc->clock,
        .tsc_hz = tsc,
        .tsc_at_zero = pc->tsc_at_zero, /* guests see the host's TSC, unoffset */
        .timer_hz = VM_APIC_TIMER_HZ(tsc),
        .ram_size = vm->mem.size,
        .ram_high_size = vm->mem.high_size,
        .phys_bits = 39,
        .kick = kick_vcpu,
        .kick_ctx = vm,
    };
    if (!apic_bus_init(&pc->apic, &ac))
        return false;
    for (uint32_t i = 0; i < vm->vcpu_count; i++)
        if (!apic_bus_add_vcpu(&pc->apic, &vm->vcpus[i]->lapic, i))
            return false;
    vioapic_init(&pc->ioapic, &pc->apic, vm->name, VIOAPIC_DEFAULT_ID);
    struct rtc_cmos_config rc = {
        .time = {.year = host_boot_time.year, .month = host_boot_time.month, .day = host_boot_time.day,
                 .hour = host_boot_time.hour, .minute = host_boot_time.minute, .second = host_boot_time.second},
        .ram_below_4g = vm->mem.size,
        .ram_above_4g = vm->mem.high_size,
        .cpus = vm->vcpu_count,
    };
    if (apic_bus_attach_mmio(&pc->apic, &vm->bus, current_vcpu_index, vm) < 0 ||
        vioapic_attach(&pc->ioapic, &vm->bus, VIOAPIC_BASE) < 0 ||
        pic8259_attach(&pc->pic, &vm->bus, vm->name, pic_intr_changed, vm) < 0 ||
        pit8254_attach(&pc->pit, &vm->bus, &pc->clock, &pc->irq, vm->name) < 0 ||
        rtc_cmos_attach(&pc->rtc, &vm->bus, &pc->clock, &pc->irq, &rc, vm->name) < 0 ||
        acpi_pm_attach(&pc->pm, &vm->bus, &pc->clock, &pc->irq, ACPI_PM_BASE, vm->name) < 0 ||
        fw_cfg_attach(&pc->fw, &vm->bus, vm->vcpu_count, vm->vcpu_count, vm->ram_size, vm->name) < 0 ||
        pci_host_attach(&pc->pci, &vm->bus, &acpi_pm_rcr_ops, &pc->pm, vm->name) < 0 ||
        i8042_attach(&pc->kbc, &vm->bus, &pc->irq, vm->name) < 0 || port92_attach(&pc->port92, &vm->bus, vm->name) < 0 ||
        !vm_pci_devices_attach(vm))
        return false;
    /* Keel's EPT never changes a RAM mapping, so the flush page has nothing to drop. */
    if (vm->cfg && vm->cfg->testdev) {
        if (pc_testdev_attach(&pc->testdev, &vm->bus, &pc->irq, NULL, NULL, vm->name) < 0)
            return false;
        pc->has_testdev = true;
    }
    uart16550_connect(&vm->com1, &pc->irq, UART16550_COM1_IRQ, uart_input_ready, vm);
    bios_pic_setup(vm);
    static const struct {
        uint16_t base, len;
        bool reads; /* a read may move an event too */
    } timed[] = {{0x20, 2, true},
                 {0x40, 4, true},
                 {0x61, 1, true},
                 {0x70, 2, true},
                 {0xa0, 2, true},
                 {ACPI_PM_BASE, ACPI_PM_TMR_OFF, true},
                 {ACPI_PM_BASE + ACPI_PM_TMR_OFF, ACPI_PM_TMR_LEN, false}};
    for (size_t i = 0; i < ARRAY_SIZE(timed); i++)
        for (uint32_t p = timed[i].base; p < (uint32_t)timed[i].base + timed[i].len; p++) {
            pc->timed_ports[p / 64] |= 1ull << (p % 64);
            if (timed[i].reads)
                pc->timed_reads[p / 64] |= 1ull << (p % 64);
        }
    /* The firmware tables, where a PC BIOS leaves them (found by the RSDP scan); a VM
     * with less than 1 MiB of RAM has no BIOS area to hold them. */
    void *area = vm_gpa_map(vm, GUEST_ACPI_AREA, GUEST_ACPI_MAX_SIZE);
    if (!area) {
        kprintf("VM %s: no ACPI tables: its RAM ends below the BIOS area at 0xe0000\n", vm->name);
        pc->started = true;
        return true;
    }
    int used = guest_acpi_build(area, GUEST_ACPI_MAX_SIZE,
                                GUEST_ACPI_AREA,
                                &(struct guest_acpi_cfg){.vcpus = vm->vcpu_count, .lapic_base = XAPIC_DEFAULT_BASE,
                                                         .ioapic_base = VIOAPIC_BASE, .ioapic_id = VIOAPIC_DEFAULT_ID,
                                                         .pm_base = ACPI_PM_BASE, .i8042 = true, .pci_root = true,
                                                         .pci_slots = pci_host_slots(&pc->pci)},
                                &pc->rsdp);
    if (used < 0) {
        kprintf("VM %s: its ACPI tables do not fit (%d)\n", vm->name, used);
        return false;
    }
    pc->started = true;
    return true;
}

void vm_platform_programmed(struct vm *vm, struct vcpu *v)
{
    vm_platform_poll(vm);
    v->arch.recheck = 1;
}

/* A device's deadline is never in the past: one that is due reads as the device's own
 * "now", which is later than any reading taken before asking it. Compared with such a
 * reading it would never be due, and a PIT's edges would pile up undelivered. */
static bool due(const struct vm_pc *pc, uint64_t deadline)
{
    return deadline != CLOCK_NEVER && deadline <= clock_now_ns(&pc->clock);
}

static bool irq0_live(const struct vm_pc *pc)
{
    return !(pc->pic.chip[0].imr & 1) || !(pc->ioapic.redir[2] & BIT(16));
}

uint64_t vm_platform_poll(struct vm *vm)
{
    struct vm_pc *pc = &vm->pc;
    if (!pc->started)
        return CLOCK_NEVER;
    spin_lock(&pc->lock);
    uint64_t now = clock_now_ns(&pc->clock);
    uint64_t next = CLOCK_NEVER;
    /* The PIT counts whether or not anyone listens; its edges matter (and bound the
     * guest's run) only while IRQ 0 can reach a vCPU. Unmasking it is a write to the
     * PIC or the IOAPIC, after which this runs again. */
    if (irq0_live(pc)) {
        uint64_t d = pit8254_deadline(&pc->pit);
        if (due(pc, d)) {
            pit8254_poll(&pc->pit);
            d = pit8254_deadline(&pc->pit);
        }
        next = MIN(next, d);
    }
    if (__atomic_exchange_n(&pc->uart_input, 0, __ATOMIC_SEQ_CST))
        uart16550_poll(&vm->com1);
    uint64_t d;
    d = rtc_cmos_deadline(&pc->rtc);
    if (due(pc, d)) {
        rtc_cmos_poll(&pc->rtc);
        d = rtc_cmos_deadline(&pc->rtc);
    }
    next = MIN(next, d);
    d = acpi_pm_deadline(&pc->pm);
    if (due(pc, d)) {
        acpi_pm_poll(&pc->pm);
        d = acpi_pm_deadline(&pc->pm);
    }
    next = MIN(next, d);
    /* However fast a guest programs its devices, their events take a vCPU out of guest
     * mode at most every VM_DEVICE_MIN_WAKE_NS (a faster PIT's edges coalesce). */
    if (next != CLOCK_NEVER && next < now + VM_DEVICE_MIN_WAKE_NS)
        next = now + VM_DEVICE_MIN_WAKE_NS;
    __atomic_store_n(&pc->next_deadline, next, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&pc->uart_input, __ATOMIC_SEQ_CST))
        __atomic_store_n(&pc->next_deadline, 0, __ATOMIC_SEQ_CST);
    spin_unlock(&pc->lock);
    return next;
}
