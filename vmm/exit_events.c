/* Exits caused by events rather than instructions: host interrupts, the end of a
 * slice, guest-physical accesses outside what the VM may touch, and guest faults or
 * failed entries the backend has put into words. */
#include "vmm/exit_handlers.h"
#include "vmm/lib/console.h"
#include "arch/x86/percpu.h"

enum exit_action exit_interrupt(struct vcpu *v, struct exit_info *e)
{
    if (__builtin_expect(e->why != NULL, 0))
        kprintf("VM %s: %s\n", v->vm->name, e->why);
    /* The interrupt may be the kick of a vm_stop on another CPU, or the scheduler's
     * (vmm/sched.c, sched_on_kick) asking for the CPU back. */
    if (__atomic_load_n(&v->vm->state, __ATOMIC_ACQUIRE) == VM_STOPPED)
        return EXIT_STOPPED;
    return __atomic_load_n(&this_cpu()->sched_preempt, __ATOMIC_ACQUIRE) ? EXIT_YIELD : EXIT_RESUME;
}

enum exit_action exit_slice_end(struct vcpu *v, struct exit_info *e)
{
    (void)v;
    (void)e;
    return EXIT_YIELD;
}

enum exit_action exit_fatal(struct vcpu *v, struct exit_info *e)
{
    vm_stop(v->vm, "%s", e->why);
    return EXIT_STOPPED;
}

enum exit_action exit_memory(struct vcpu *v, struct exit_info *e)
{
    gpa_t gpa = e->mem.gpa;
    const char *access = e->mem.write ? "write" : e->mem.fetch ? "instruction fetch" : "read";
    const struct bus_range *dev = vm_bus_find(&v->vm->bus, BUS_MMIO, gpa);
    if (dev && e->mem.fetch) {
        vm_stop(v->vm, "instruction fetch from the MMIO range of %s at guest-physical 0x%lx (code cannot run from "
                "device registers) at rip 0x%lx", dev->owner, gpa, vcpu_rip(v));
        return EXIT_STOPPED;
    }
    if (dev)
        return exit_mmio(v, gpa, e->mem.write, dev);
    const struct dev_ram *ram = &v->vm->mem;
    const char *where = dev_ram_holds(ram, gpa) ? "inside its RAM but not permitted" : "outside its RAM";
    if (ram->high_size)
        vm_stop(v->vm,
                "EPT violation: %s at guest-physical 0x%lx (%s, RAM is 0x%lx bytes and 0x%lx at 4 GiB) at rip 0x%lx",
                access, gpa, where, ram->size, ram->high_size, vcpu_rip(v));
    else
        vm_stop(v->vm, "EPT violation: %s at guest-physical 0x%lx (%s, RAM is 0x%lx bytes) at rip 0x%lx", access,
                gpa, where, ram->size, vcpu_rip(v));
    return EXIT_STOPPED;
}
