/* Port I/O exits: decode the qualification and hand the access to the VM's device bus
 * (vmm/dev/bus.h says what unclaimed ports and odd widths do). String I/O (INS/OUTS)
 * stops the VM: no device here needs it. */
#include "vmm/exit_dispatch.h"
#include "vmm/dev/bus.h"

#define IOQ_SIZE(q) (((q) & 7) + 1)
#define IOQ_IN(q) (((q) >> 3) & 1)
#define IOQ_STRING(q) (((q) >> 4) & 1)
#define IOQ_PORT(q) ((uint16_t)((q) >> 16))

enum exit_action exit_device_result(struct vcpu *v, struct bus_result r)
{
    if (r.action == BUS_EXIT_CODE)
        vm_stop_with_code(v->vm, r.code, r.why);
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

    uint64_t mask = size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
    uint64_t value = v->regs.rax & mask;
    struct bus_result r = vm_bus_pio(&vm->bus, port, size, !in, &value);
    if (__builtin_expect(r.action != BUS_DONE, 0))
        return exit_device_result(v, r);

    /* IN AL/AX merge into RAX; IN EAX is a 32-bit register write, which clears the
     * upper half of RAX. */
    if (in)
        v->regs.rax = (size == 4 ? 0 : v->regs.rax & ~mask) | (value & mask);
    vcpu_skip_instruction(v);
    return EXIT_RESUME;
}
