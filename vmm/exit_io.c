/* Port I/O. Each VM sees a 16550 at 0x3F8 and a debug-exit port at 0xF4; every other
 * port reads as all-ones (nothing there) and swallows writes. The first use of each of
 * the first few such ports is logged, so a guest probing hardware is visible; further
 * ports are only counted (in the VM's report), so a port sweep cannot flood the
 * console. String I/O (INS/OUTS) stops the VM: no device here needs it. */
#include "vmm/exit_dispatch.h"
#include "vmm/lib/console.h"
#include "vmm/vuart.h"

#define DEBUG_EXIT_PORT 0xf4
#define DEBUG_EXIT_PORTS 4 /* QEMU's isa-debug-exit iosize=4 */

#define IOQ_SIZE(q) (((q) & 7) + 1)
#define IOQ_IN(q) (((q) >> 3) & 1)
#define IOQ_STRING(q) (((q) >> 4) & 1)
#define IOQ_PORT(q) ((uint16_t)((q) >> 16))

static void log_unclaimed_once(struct vm *vm, uint16_t port, bool in, unsigned size)
{
    uint8_t bit = (uint8_t)(1u << (port & 7));
    if (vm->ports_seen[port >> 3] & bit)
        return;
    vm->ports_seen[port >> 3] |= bit;
    if (vm->ports_logged == UNCLAIMED_PORTS_LOGGED) {
        vm->ports_unlogged++;
        return;
    }
    vm->ports_logged++;
    kprintf("VM %s: %s of %u byte(s) at unclaimed port 0x%x (reads all-ones, writes ignored; logged once)%s\n",
            vm->name, in ? "read" : "write", size, port,
            vm->ports_logged == UNCLAIMED_PORTS_LOGGED ? "; further unclaimed ports are counted, not logged" : "");
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

    uint32_t mask = size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
    uint32_t out = (uint32_t)v->regs.rax & mask;
    uint32_t result = mask;

    if (port >= VUART_BASE && port < VUART_BASE + VUART_PORTS) {
        if (in)
            result = vuart_read(vm, port - VUART_BASE);
        else
            vuart_write(vm, port - VUART_BASE, (uint8_t)out);
    } else if (port >= DEBUG_EXIT_PORT && port < DEBUG_EXIT_PORT + DEBUG_EXIT_PORTS) {
        if (!in) {
            vm_stop_with_code(vm, (out << 1) | 1, "debug-exit port");
            return EXIT_STOPPED;
        }
    } else {
        log_unclaimed_once(vm, port, in, size);
    }

    /* IN AL/AX merge into RAX; IN EAX is a 32-bit register write, which clears the
     * upper half of RAX. */
    if (in)
        v->regs.rax = (size == 4 ? 0 : v->regs.rax & ~(uint64_t)mask) | (result & mask);
    vcpu_skip_instruction(v);
    return EXIT_RESUME;
}
