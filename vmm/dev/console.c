/* Guest console lines: assembled per VM, queued with the VM's name in front, with
 * control bytes replaced so a guest cannot forge or garble Keel's own lines. */
#include "vmm/dev/console.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"
#include "vmm/lib/config.h"

void vm_console_init(struct vm_console *c, const char *name)
{
    c->name = name;
    c->len = 0;
    c->lock = (spinlock_t)SPINLOCK_INIT;
    /* A console made again (a device re-created at a VM's restart, its memory cleared)
     * leaves the drain first, so no CPU reads the queue while it starts afresh. */
    console_remove_source(&c->out);
    console_buffer_init(&c->out, name, c->storage, sizeof(c->storage));
    console_add_source(&c->out);
}

static void flush_line(struct vm_console *c)
{
    char text[CONFIG_NAME_MAX + 2 + VM_CONSOLE_LINE_MAX];
    int n = ksnprintf(text, sizeof(text), "%s: %.*s", c->name, (int)c->len, c->line);
    c->len = 0;
    console_put_line(&c->out, text, MIN((size_t)n, sizeof(text) - 1));
}

static void putc_locked(struct vm_console *c, char ch)
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

void vm_console_putc(struct vm_console *c, char ch)
{
    spin_lock(&c->lock);
    putc_locked(c, ch);
    spin_unlock(&c->lock);
}

void vm_console_write(struct vm_console *c, const char *buf, size_t len)
{
    spin_lock(&c->lock);
    for (size_t i = 0; i < len; i++)
        putc_locked(c, buf[i]);
    spin_unlock(&c->lock);
}

void vm_console_flush(struct vm_console *c)
{
    spin_lock(&c->lock);
    if (c->len)
        flush_line(c);
    spin_unlock(&c->lock);
}

void vm_console_release(struct vm_console *c)
{
    console_remove_source(&c->out);
}
