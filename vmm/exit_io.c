/* Port I/O exits: decode the qualification and hand the access to the VM's device bus
 * (vmm/dev/bus.h says what unclaimed ports and odd widths do). String I/O (INS/OUTS)
 * stops the VM: no device here needs it. */
#include "vmm/exit_dispatch.h"
#include "vmm/dev/bus.h"

#define IOQ_SIZE(q) (((q) & 7) + 1)
#define IOQ_SIZE_CODE(q) ((q) & 7)
#define IOQ_IN(q) (((q) >> 3) & 1)
#define IOQ_STRING(q) (((q) >> 4) & 1)
#define IOQ_PORT(q) ((uint16_t)((q) >> 16))

/* By the qualification's size code (0, 1, 3 for 1, 2, 4 bytes): the bytes an access
 * moves, and what an IN keeps of RAX (IN EAX is a 32-bit register write, which clears
 * the upper half). Tables, because on this path every instruction shows. */
static const uint64_t io_bytes[8] = {0xff, 0xffff, 0, 0xffffffffu};
static const uint64_t in_keeps[8] = {~0xffull, ~0xffffull, 0, 0};

enum exit_action exit_device_result(struct vcpu *v, struct bus_result r)
{
    if (bus_action(r) == BUS_EXIT_CODE)
        vm_stop_with_code(v->vm, bus_code(r), r.why);
    else
        vm_stop(v->vm, "%s", r.why);
    return EXIT_STOPPED;
}

enum exit_action handle_io(struct vcpu *v, const struct vmexit *e)
{
    struct vm *vm = v->vm;
    uint64_t q = e->qualification;
    uint16_t port = IOQ_PORT(q);
    unsigned size = IOQ_SIZE(q);
    bool in = IOQ_IN(q);

    if (IOQ_STRING(q)) {
        /* No emulated device needs INS/OUTS; doing them right means walking guest page
         * tables, so refuse loudly instead of guessing. */
        vm_stop(vm, "string I/O (%s) at port 0x%x is not supported", in ? "INS" : "OUTS", port);
        return EXIT_STOPPED;
    }

    uint64_t mask = io_bytes[IOQ_SIZE_CODE(q)];
    uint64_t value = v->regs.rax & mask;
    struct bus_result r = vm_bus_pio(&vm->bus, port, size, !in, &value);
    if (__builtin_expect(bus_action(r) != BUS_DONE, 0))
        return exit_device_result(v, r);

    if (in)
        v->regs.rax = (v->regs.rax & in_keeps[IOQ_SIZE_CODE(q)]) | (value & mask);
    vcpu_skip_instruction(v);
    return EXIT_RESUME;
}
