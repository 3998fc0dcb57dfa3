/* Guest console lines: assembled per VM, printed with the VM's name in front, with
 * control bytes replaced so a guest cannot forge or garble Keel's own lines. */
#include "vmm/dev/console.h"
#include "vmm/lib/console.h"

void vm_console_init(struct vm_console *c, const char *name)
{
    c->name = name;
    c->len = 0;
}

static void flush_line(struct vm_console *c)
{
    kprintf("%s: %.*s\n", c->name, (int)c->len, c->line);
    c->len = 0;
}

void vm_console_putc(struct vm_console *c, char ch)
{
    if (ch == '\r')
        return;
    if (ch == '\n') {
        flush_line(c);
        return;
    }
    if ((unsigned char)ch < 0x20 || (unsigned char)ch >= 0x7f)
        ch = '?';
    c->line[c->len++] = ch;
    if (c->len == VM_CONSOLE_LINE_MAX)
        flush_line(c);
}

void vm_console_write(struct vm_console *c, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        vm_console_putc(c, buf[i]);
}

void vm_console_flush(struct vm_console *c)
{
    if (c->len)
        flush_line(c);
}
