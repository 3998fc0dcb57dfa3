/* Port I/O exits: decode the qualification and hand the access to the VM's device bus
 * (vmm/dev/bus.h says what unclaimed ports and odd widths do). String I/O (INS/OUTS)
 * stops the VM: no device here needs it. */
#include "vmm/exit_handlers.h"
#include "vmm/dev/platform.h"

/* By access size (1, 2, 4 bytes): the bytes an access moves, and what an IN keeps of
 * RAX (IN EAX is a 32-bit register write, which clears the upper half). Tables,
 * because on this path every instruction shows. */
static const uint64_t io_bytes[8] = {[1] = 0xff, [2] = 0xffff, [4] = 0xffffffffu};
static const uint64_t in_keeps[8] = {[1] = ~0xffull, [2] = ~0xffffull, [4] = 0};

enum exit_action exit_device_result(struct vcpu *v, struct bus_result r)
{
    switch (bus_action(r)) {
    case BUS_EXIT_CODE: vm_stop_with_code(v->vm, bus_code(r), r.why); break;
    case BUS_POWER_OFF: vm_stop(v->vm, "powered off by the guest (%s)", r.why); break;
    case BUS_RESET: return vm_reset(v, r.why); /* on_reset says what happens */
    default: vm_stop(v->vm, "%s", r.why); break;
    }
    return EXIT_STOPPED;
}

/* A timer device's next event may have moved: after a write, or a read of the RTC's
 * register C (which lets its next interrupt come) or a PIC poll. Not after a read of
 * the PM timer's count. */
static __attribute__((noinline)) void timer_port_accessed(struct vm *vm, struct vcpu *v, uint16_t port, bool in)
{
    if (!in || vm->pc.timed_reads[port / 64] & (1ull << (port % 64)))
        vm_platform_programmed(vm, v);
}

enum exit_action exit_io(struct vcpu *v, struct exit_info *e)
{
    struct vm *vm = v->vm;
    uint16_t port = e->io.port;
    unsigned size = e->io.size & 7;
    bool in = e->io.in;

    if (e->io.string) {
        /* No emulated device needs INS/OUTS; doing them right means walking guest page
         * tables, so refuse loudly instead of guessing. */
        vm_stop(vm, "string I/O (%s) at port 0x%x is not supported", in ? "INS" : "OUTS", port);
        return EXIT_STOPPED;
    }

    uint64_t mask = io_bytes[size];
    uint64_t value = v->arch.regs.rax & mask;
    /* Legacy devices are the VM's, reached from every vCPU; one vCPU needs no lock. */
    bool shared = vm->vcpu_count > 1;
    if (__builtin_expect(shared, 0))
        spin_lock(&vm->pc.lock);
    struct bus_result r = vm_bus_pio(&vm->bus, port, size, !in, &value);
    if (__builtin_expect(shared, 0))
        spin_unlock(&vm->pc.lock);
    if (__builtin_expect(bus_action(r) != BUS_DONE, 0))
        return exit_device_result(v, r);

    if (in)
        v->arch.regs.rax = (v->arch.regs.rax & in_keeps[size]) | (value & mask);
    if (__builtin_expect(vm->pc.timed_ports[port / 64] & (1ull << (port % 64)), 0))
        timer_port_accessed(vm, v, port, in);
    return EXIT_NEXT;
}
