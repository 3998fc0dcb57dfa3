/* A VM's console line: what its UART and its console hypercall write becomes Keel
 * console lines "<vm name>: <text>", one per guest line, queued in the VM's own
 * console buffer (vmm/lib/console_buffer.h) so that the writing vCPU never waits for
 * the physical UART. A VM that writes faster than the UART sends loses lines, counted
 * (`out.lost_bytes`) and reported in the line stream and in its report. */
#ifndef KEEL_VMM_DEV_CONSOLE_H
#define KEEL_VMM_DEV_CONSOLE_H

#include "vmm/lib/types.h"
#include "vmm/lib/spinlock.h"
#include "vmm/lib/console_buffer.h"

#define VM_CONSOLE_LINE_MAX 160
/* About 400 full lines: a burst of 16 KiB (bochs-noisy-neighbour's chatty VMs) gets
 * through whole while the UART sends 11 KiB a second. */
#define VM_CONSOLE_BUFFER (32u * 1024)

struct vm_console {
    const char *name; /* the VM's, must outlive the console */
    spinlock_t lock;  /* the line being assembled, shared by the VM's vCPUs */
    uint32_t len;
    char line[VM_CONSOLE_LINE_MAX];
    struct console_buffer out;
    uint8_t storage[VM_CONSOLE_BUFFER];
};

void vm_console_init(struct vm_console *c, const char *name);
void vm_console_putc(struct vm_console *c, char ch);
void vm_console_write(struct vm_console *c, const char *buf, size_t len);
/* Before the console's memory is freed (a VM that could not start). */
void vm_console_release(struct vm_console *c);
/* Emits a partial line (when the VM stops mid-line). */
void vm_console_flush(struct vm_console *c);

#endif
