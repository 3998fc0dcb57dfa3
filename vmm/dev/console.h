/* A VM's console line: what its UART and its console hypercall write becomes Keel
 * console lines "<vm name>: <text>", one per guest line. */
#ifndef KEEL_VMM_DEV_CONSOLE_H
#define KEEL_VMM_DEV_CONSOLE_H

#include "vmm/lib/types.h"

#define VM_CONSOLE_LINE_MAX 160

struct vm_console {
    const char *name; /* the VM's, must outlive the console */
    uint32_t len;
    char line[VM_CONSOLE_LINE_MAX];
};

void vm_console_init(struct vm_console *c, const char *name);
void vm_console_putc(struct vm_console *c, char ch);
void vm_console_write(struct vm_console *c, const char *buf, size_t len);
/* Emits a partial line (when the VM stops mid-line). */
void vm_console_flush(struct vm_console *c);

#endif
