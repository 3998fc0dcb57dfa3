/* printf-style output on the UEFI console (ConOut; OVMF mirrors it on the serial
 * port). Usable only while boot services run. */
#ifndef KEEL_BOOT_UEFI_EFI_CONSOLE_H
#define KEEL_BOOT_UEFI_EFI_CONSOLE_H

#include <efi.h>
#include "vmm/types.h"

void efi_console_init(EFI_SYSTEM_TABLE *st);

/* Supports %s %c %d %u %x and %p, with an 'l', 'll' or 'z' length modifier, a '0'
 * flag and a width. "\n" becomes "\r\n". */
void efi_printf(const char *fmt, ...) PRINTF_LIKE(1, 2);

#endif
