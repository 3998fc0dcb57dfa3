/* The virtual 16550 UART at 0x3F8 every VM gets. */
#ifndef KEEL_VMM_VUART_H
#define KEEL_VMM_VUART_H

#include "vmm/vm.h"

#define VUART_BASE 0x3f8
#define VUART_PORTS 8

uint8_t vuart_read(struct vm *vm, uint16_t offset);
void vuart_write(struct vm *vm, uint16_t offset, uint8_t value);
/* Emits a partial line (when the VM stops mid-line). */
void vuart_flush(struct vm *vm);
/* Console output on behalf of a VM, with its name as prefix; used by the hypercall. */
void vm_console_write(struct vm *vm, const char *buf, size_t len);

#endif
