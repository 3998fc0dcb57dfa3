/* Which devices a VM has and where: the one place that decides a VM's port map. */
#include "vmm/dev/platform.h"
#include "vmm/dev/debug_exit.h"
#include "vmm/vm.h"

bool vm_platform_attach(struct vm *vm)
{
    vm_bus_init(&vm->bus, vm->name);
    vm_console_init(&vm->console, vm->name);
    if (uart16550_attach(&vm->com1, &vm->bus, UART16550_COM1, &vm->console, "com1") < 0)
        return false;
    return debug_exit_attach(&vm->bus, DEBUG_EXIT_PORT) >= 0;
}
