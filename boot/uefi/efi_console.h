/* printf-style output on the UEFI console (ConOut; OVMF mirrors it on the serial
 * port). Usable only while boot services run. */
#ifndef KEEL_BOOT_UEFI_EFI_CONSOLE_H
#define KEEL_BOOT_UEFI_EFI_CONSOLE_H

#include <efi.h>
#include "vmm/lib/types.h"

void efi_console_init(EFI_SYSTEM_TABLE *st);

/* Formats like kprintf (vmm/lib/console.h); "\n" becomes "\r\n". Long output is cut at
 * 512 characters. */
void efi_printf(const char *fmt, ...) PRINTF_LIKE(1, 2);

#endif
