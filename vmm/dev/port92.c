/* Port 0x92: a stored A20 bit and a reset trigger on bit 0. */
#include "vmm/dev/port92.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

static struct bus_result port92_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)offset;
    (void)width;
    *value = ((struct port92 *)dev)->value;
    return BUS_OK;
}

static struct bus_result port92_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)offset;
    (void)width;
    struct port92 *p = dev;
    p->value = (uint8_t)value & (PORT92_RESET | PORT92_A20);
    if (!(p->value & PORT92_A20) && !p->logged_a20) {
        p->logged_a20 = true;
        kprintf("VM %s: port 0x92: A20 gate cleared; guest memory does not wrap at 1 MiB (logged once)\n",
                p->vm_name);
    }
    /* The chipset resets on bit 0 rising. The stored bit is always 0 (the reset clears
     * it, as it does on the chipset), so any write with it set is a rising edge. */
    if (p->value & PORT92_RESET) {
        p->value &= ~PORT92_RESET;
        return bus_reset("port 0x92 fast reset");
    }
    return BUS_OK;
}

static const struct bus_ops port92_ops = {.read = port92_read, .write = port92_write};

void port92_reset(struct port92 *p)
{
    p->value = PORT92_A20;
}

int port92_attach(struct port92 *p, struct vm_bus *bus, const char *vm_name)
{
    memset(p, 0, sizeof(*p));
    p->vm_name = vm_name;
    port92_reset(p);
    int id = vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = PORT92_PORT, .len = 1,
                                                  .widths = BUS_WIDTH_1, .ops = &port92_ops, .dev = p,
                                                  .owner = "port 0x92"});
    return id < 0 ? id : 0;
}
