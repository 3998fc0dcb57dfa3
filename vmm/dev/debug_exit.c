/* The debug-exit port: stateless, so its range carries no device pointer. */
#include "vmm/dev/debug_exit.h"

/* Nothing to read: as an absent device, but deliberately so, hence not logged. */
static struct bus_result debug_exit_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)dev;
    (void)offset;
    (void)width;
    *value = ~0ull;
    return BUS_OK;
}

static struct bus_result debug_exit_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)dev;
    (void)offset;
    (void)width;
    return bus_exit(((uint32_t)value << 1) | 1, "debug-exit port");
}

static const struct bus_ops debug_exit_ops = {.read = debug_exit_read, .write = debug_exit_write};

int debug_exit_attach(struct vm_bus *bus, uint16_t base)
{
    return vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = base, .len = DEBUG_EXIT_PORTS,
                                                .widths = BUS_WIDTH_1 | BUS_WIDTH_2 | BUS_WIDTH_4,
                                                .ops = &debug_exit_ops, .owner = "debug-exit"});
}
