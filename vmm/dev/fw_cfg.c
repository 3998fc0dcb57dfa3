/* fw_cfg's traditional interface: select an item, then read it a byte at a time. */
#include "vmm/dev/fw_cfg.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

#define MAX_CPU_COUNT 0xffff

static void PRINTF_LIKE(3, 4) log_once(struct fw_cfg *fc, uint32_t what, const char *fmt, ...)
{
    if (fc->logged & what)
        return;
    fc->logged |= what;
    va_list ap;
    va_start(ap, fmt);
    kprintf("VM %s: fw_cfg: ", fc->vm_name);
    kvprintf(fmt, ap);
    kprintf(" (logged once)\n");
    va_end(ap);
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* The item a key selects, or false for a key with none. */
static bool item(const struct fw_cfg *fc, uint16_t key, const uint8_t **data, uint32_t *size)
{
    if (key & FW_CFG_ARCH_LOCAL)
        return false; /* QEMU's x86 items (ACPI tables, e820): Keel has none */
    key &= (uint16_t)~FW_CFG_WRITE_CHANNEL;
    switch (key) {
    case FW_CFG_SIGNATURE: *data = fc->signature; *size = sizeof(fc->signature); return true;
    case FW_CFG_ID: *data = fc->id; *size = sizeof(fc->id); return true;
    case FW_CFG_RAM_SIZE: *data = fc->ram_size; *size = sizeof(fc->ram_size); return true;
    case FW_CFG_NB_CPUS: *data = fc->nb_cpus; *size = sizeof(fc->nb_cpus); return true;
    case FW_CFG_MAX_CPUS: *data = fc->max_cpus; *size = sizeof(fc->max_cpus); return true;
    case FW_CFG_FILE_DIR: *data = fc->dir; *size = 4 + FW_CFG_DIR_ENTRY * fc->nfiles; return true;
    default:
        if (key >= FW_CFG_FILE_FIRST && key < FW_CFG_FILE_FIRST + fc->nfiles) {
            const struct fw_cfg_file *f = &fc->files[key - FW_CFG_FILE_FIRST];
            *data = f->data;
            *size = f->size;
            return true;
        }
        return false;
    }
}

static void build_dir(struct fw_cfg *fc)
{
    memset(fc->dir, 0, sizeof(fc->dir));
    put_be(fc->dir, fc->nfiles, 4);
    for (unsigned i = 0; i < fc->nfiles; i++) {
        uint8_t *e = fc->dir + 4 + FW_CFG_DIR_ENTRY * i;
        put_be(e, fc->files[i].size, 4);
        put_be(e + 4, FW_CFG_FILE_FIRST + i, 2);
        memcpy(e + 8, fc->files[i].name, FW_CFG_MAX_FILE_PATH);
    }
}

int fw_cfg_file_select(const struct fw_cfg *fc, const char *name)
{
    for (unsigned i = 0; i < fc->nfiles; i++)
        if (!strcmp(fc->files[i].name, name))
            return (int)(FW_CFG_FILE_FIRST + i);
    return -1;
}

int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data, uint32_t size)
{
    size_t len = strnlen(name, FW_CFG_MAX_FILE_PATH);
    const char *why = NULL;
    if (!len || len >= FW_CFG_MAX_FILE_PATH)
        why = "names are 1 to 55 characters";
    else if (fw_cfg_file_select(fc, name) >= 0)
        why = "a file of that name exists";
    else if (size && !data)
        why = "no data";
    if (why) {
        kprintf("VM %s: fw_cfg: file \"%.*s\" not added: %s\n", fc->vm_name, (int)MIN(len, 60), name, why);
        return -BUS_EINVAL;
    }
    if (fc->nfiles == FW_CFG_MAX_FILES) {
        kprintf("VM %s: fw_cfg: file \"%s\" not added: all %u slots used\n", fc->vm_name, name, FW_CFG_MAX_FILES);
        return -BUS_EFULL;
    }
    /* Sorted by name, as QEMU keeps its directory; selectors follow the order. */
    unsigned at = 0;
    while (at < fc->nfiles && strcmp(fc->files[at].name, name) < 0)
        at++;
    memmove(&fc->files[at + 1], &fc->files[at], (fc->nfiles - at) * sizeof(fc->files[0]));
    memset(&fc->files[at], 0, sizeof(fc->files[at]));
    memcpy(fc->files[at].name, name, len);
    fc->files[at].data = data;
    fc->files[at].size = size;
    fc->nfiles++;
    build_dir(fc);
    return 0;
}

static void select_key(struct fw_cfg *fc, uint16_t key)
{
    const uint8_t *data;
    uint32_t size;
    fc->selector = key;
    fc->offset = 0;
    if (item(fc, key, &data, &size))
        return;
    fc->unknown_selects++;
    log_once(fc, FW_CFG_LOG_UNKNOWN, "unknown key 0x%04x selected; it reads as zeros", key);
}

static struct bus_result fw_cfg_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    struct fw_cfg *fc = dev;
    if (offset == 0) {
        log_once(fc, FW_CFG_LOG_ACCESS, "the selector (0x510) read; it is write-only");
        *value = ~0ull;
        return BUS_OK;
    }
    (void)width; /* 1: a wider access here runs past 0x511 and the bus splits it */
    const uint8_t *data;
    uint32_t size;
    if (item(fc, fc->selector, &data, &size) && fc->offset < size) {
        *value = data[fc->offset++];
    } else {
        /* Past the end, or no such item: zeros; the offset stops counting. */
        *value = 0;
    }
    return BUS_OK;
}

static struct bus_result fw_cfg_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    struct fw_cfg *fc = dev;
    if (offset == 0 && width == 2) {
        select_key(fc, (uint16_t)value);
    } else if (offset == 0) {
        log_once(fc, FW_CFG_LOG_ACCESS, "a %u-byte write to the selector (0x510): it takes 16-bit writes only",
                 width);
    } else {
        log_once(fc, FW_CFG_LOG_WRITE, "data port write (key 0x%04x) ignored: items are read-only", fc->selector);
    }
    return BUS_OK;
}

static const struct bus_ops fw_cfg_ops = {.read = fw_cfg_read, .write = fw_cfg_write};

int fw_cfg_attach(struct fw_cfg *fc, struct vm_bus *bus, unsigned cpus, unsigned max_cpus, uint64_t ram_size,
                  const char *vm_name)
{
    memset(fc, 0, sizeof(*fc));
    fc->vm_name = vm_name;
    if (!cpus || cpus > MAX_CPU_COUNT || max_cpus < cpus || max_cpus > MAX_CPU_COUNT) {
        kprintf("VM %s: fw_cfg: bad CPU counts (%u of at most %u)\n", vm_name, cpus, max_cpus);
        return -BUS_EINVAL;
    }
    memcpy(fc->signature, "QEMU", 4);
    put_le(fc->id, FW_CFG_ID_TRADITIONAL, 4);
    put_le(fc->ram_size, ram_size, 8);
    put_le(fc->nb_cpus, cpus, 2);
    put_le(fc->max_cpus, max_cpus, 2);
    build_dir(fc);
    /* Byte reads of the data port, 16-bit writes of the selector; widths 1 and 2 both
     * reach the handler so a wrong one is seen and logged, not split. */
    int id = vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = FW_CFG_PORT, .len = FW_CFG_PORTS,
                                                  .widths = BUS_WIDTH_1 | BUS_WIDTH_2, .ops = &fw_cfg_ops,
                                                  .dev = fc, .owner = "fw_cfg"});
    return id < 0 ? id : 0;
}
