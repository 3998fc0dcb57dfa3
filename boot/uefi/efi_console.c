/* UEFI console output (see efi_console.h). The core's formatter writes ASCII; the
 * firmware takes UCS-2, so the text is widened in chunks. */
#include "boot/uefi/efi_console.h"
#include "vmm/lib/console.h"

static SIMPLE_TEXT_OUTPUT_INTERFACE *con_out;

void efi_console_init(EFI_SYSTEM_TABLE *st)
{
    con_out = st->ConOut;
}

static void output(CHAR16 *text, unsigned *len)
{
    text[*len] = 0;
    if (*len && con_out)
        uefi_call_wrapper(con_out->OutputString, 2, con_out, text);
    *len = 0;
}

void efi_printf(const char *fmt, ...)
{
    char line[512];
    CHAR16 wide[128];
    unsigned n = 0;
    va_list ap;

    va_start(ap, fmt);
    kvsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    for (const char *p = line; *p; p++) {
        if (n + 3 > ARRAY_SIZE(wide))
            output(wide, &n);
        if (*p == '\n')
            wide[n++] = L'\r';
        wide[n++] = (CHAR16)(unsigned char)*p;
    }
    output(wide, &n);
}
