/* Which devices a VM has and where, and how they are wired: the one place that decides
 * a VM's port map, its MMIO map and its interrupt lines.
 *
 * Wiring, as on a PC with an IOAPIC (and as QEMU's MADT describes it): ISA IRQ n goes to
 * PIC input n and IOAPIC pin n, except IRQ 0 (the PIT), which reaches IOAPIC pin 2; the
 * PIC's INTR output is LINT0 of vCPU 0's local APIC (the virtual wire, ExtINT). */
#include "vmm/dev/platform.h"
#include "vmm/dev/debug_exit.h"
#include "vmm/vm.h"
#include "vmm/sched.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "arch/x86/tsc.h"
#include "drivers/cmos_clock.h"

/* Until main.c reads the host clock (and in host tests), a valid date. */
struct wall_time host_boot_time = {.year = 2026, .month = 1, .day = 1};

bool vm_platform_attach(struct vm *vm)
{
    vm_bus_init(&vm->bus, vm->name);
    vm_console_init(&vm->console, vm->name);
    if (uart16550_attach(&vm->com1, &vm->bus, UART16550_COM1, &vm->console, "com1") < 0)
        return false;
    return debug_exit_attach(&vm->bus, DEBUG_EXIT_PORT) >= 0;
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
        cpu = v->home_cpu;
    if (cpu >= 0 && (uint32_t)cpu != this_cpu()->cpu_id)
        sched_kick_cpu((uint32_t)cpu);
}

/* The vCPU whose exit is being handled on this CPU, for the xAPIC window. */
static uint32_t current_vcpu_index(void *ctx)
{
    (void)ctx;
    const struct vcpu *v = this_cpu()->current_vcpu;
    return v ? v->id : 0;
}

bool vm_platform_start(struct vm *vm)
{
    struct vm_pc *pc = &vm->pc;
    pc->lock = (spinlock_t)SPINLOCK_INIT;
    pc->tsc_at_zero = rdtsc();
    pc->t0_ns = time_ns();
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
        .ram_size = vm->ram_size,
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
        .ram_below_4g = MIN(vm->ram_size, 0xe0000000ull),
        .ram_above_4g = vm->ram_size > 0xe0000000ull ? vm->ram_size - 0xe0000000ull : 0,
        .cpus = vm->vcpu_count,
    };
    if (apic_bus_attach_mmio(&pc->apic, &vm->bus, current_vcpu_index, vm) < 0 ||
        vioapic_attach(&pc->ioapic, &vm->bus, VIOAPIC_BASE) < 0 ||
        pic8259_attach(&pc->pic, &vm->bus, vm->name, pic_intr_changed, vm) < 0 ||
        pit8254_attach(&pc->pit, &vm->bus, &pc->clock, &pc->irq, vm->name) < 0 ||
        rtc_cmos_attach(&pc->rtc, &vm->bus, &pc->clock, &pc->irq, &rc, vm->name) < 0 ||
        acpi_pm_attach(&pc->pm, &vm->bus, &pc->clock, &pc->irq, ACPI_PM_BASE, vm->name) < 0 ||
        fw_cfg_attach(&pc->fw, &vm->bus, vm->vcpu_count, vm->vcpu_count, vm->ram_size, vm->name) < 0 ||
        pci_host_attach(&pc->pci, &vm->bus, &acpi_pm_rcr_ops, &pc->pm, vm->name) < 0)
        return false;
    static const struct {
        uint16_t base, len;
    } timed[] = {{0x40, 4}, {0x61, 1}, {0x70, 2}, {ACPI_PM_BASE, ACPI_PM_TMR_OFF + ACPI_PM_TMR_LEN}};
    for (size_t i = 0; i < ARRAY_SIZE(timed); i++)
        for (uint32_t p = timed[i].base; p < (uint32_t)timed[i].base + timed[i].len; p++)
            pc->timed_ports[p / 64] |= 1ull << (p % 64);
    pc->started = true;
    return true;
}

void vm_platform_programmed(struct vm *vm, struct vcpu *v)
{
    vm_platform_poll(vm);
    v->arch.recheck = 1;
}

uint64_t vm_platform_poll(struct vm *vm)
{
    struct vm_pc *pc = &vm->pc;
    if (!pc->started)
        return CLOCK_NEVER;
    spin_lock(&pc->lock);
    uint64_t now = clock_now_ns(&pc->clock);
    uint64_t next = CLOCK_NEVER;
    uint64_t d = pit8254_deadline(&pc->pit);
    if (d <= now) {
        pit8254_poll(&pc->pit);
        d = pit8254_deadline(&pc->pit);
    }
    next = MIN(next, d);
    d = rtc_cmos_deadline(&pc->rtc);
    if (d <= now) {
        rtc_cmos_poll(&pc->rtc);
        d = rtc_cmos_deadline(&pc->rtc);
    }
    next = MIN(next, d);
    d = acpi_pm_deadline(&pc->pm);
    if (d <= now) {
        acpi_pm_poll(&pc->pm);
        d = acpi_pm_deadline(&pc->pm);
    }
    next = MIN(next, d);
    __atomic_store_n(&pc->next_deadline, next, __ATOMIC_RELEASE);
    spin_unlock(&pc->lock);
    return next;
}
