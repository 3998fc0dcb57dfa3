/* The devices every VM gets on its bus, and their wiring (vmm/dev/platform.c). */
#ifndef KEEL_VMM_DEV_PLATFORM_H
#define KEEL_VMM_DEV_PLATFORM_H

#include "vmm/lib/types.h"
#include "drivers/cmos_clock.h"

struct vm;

/* The host's time of day at boot (main.c reads it); each VM's RTC starts there. */
extern struct wall_time host_boot_time;

/* Sets up the VM's bus and console and registers COM1 (a 16550 at 0x3F8) and the
 * debug-exit port at 0xF4. False when one could not be registered (the bus said why). */
bool vm_platform_attach(struct vm *vm);
/* Once its vCPUs exist: the local APICs and their bus, the IOAPIC, the PIC, PIT, RTC,
 * ACPI PM registers, fw_cfg and the PCI host bridge, wired as on a PC. */
bool vm_platform_start(struct vm *vm);
/* A restart: every device back to its power-on state on a fresh bus, the ACPI tables
 * written again (RAM was zeroed); the console keeps its line. With no vCPU running. */
bool vm_platform_restart(struct vm *vm);
/* Runs the device timers that are due (the PIT's IRQ 0, the RTC, the PM timer's
 * overflow) and returns VM time of the next one (CLOCK_NEVER: none). */
uint64_t vm_platform_poll(struct vm *vm);
/* After an access to a port of a device with timers (vm_pc.timed_ports), from the exit
 * of vCPU v: the device's next event may have moved. */
struct vcpu;
void vm_platform_programmed(struct vm *vm, struct vcpu *v);

#endif
