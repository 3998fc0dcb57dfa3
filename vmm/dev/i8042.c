/* The 8042 keyboard controller without devices behind it. Every command completes at
 * once, so the input buffer is never full (IBF reads 0) and a reply is in the output
 * buffer by the time the guest polls the status register. */
#include "vmm/dev/i8042.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_AUX_DISABLE 0xa7
#define CMD_AUX_ENABLE 0xa8
#define CMD_AUX_TEST 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_KBD_TEST 0xab
#define CMD_KBD_DISABLE 0xad
#define CMD_KBD_ENABLE 0xae
#define CMD_READ_OUTPORT 0xd0
#define CMD_WRITE_OUTPORT 0xd1
#define CMD_WRITE_KBD_OBUF 0xd2
#define CMD_WRITE_AUX_OBUF 0xd3
#define CMD_WRITE_AUX 0xd4
#define CMD_PULSE_FIRST 0xf0
#define SELF_TEST_OK 0x55
#define INTERFACE_OK 0x00
#define POWER_ON_CTR (I8042_CTR_KBDINT | I8042_CTR_SYS | I8042_CTR_AUXDIS | I8042_CTR_XLATE)

static void PRINTF_LIKE(3, 4) log_once(struct i8042 *k, uint32_t what, const char *fmt, ...)
{
    if (k->logged & what)
        return;
    k->logged |= what;
    va_list ap;
    va_start(ap, fmt);
    kprintf("VM %s: i8042: ", k->vm_name);
    kvprintf(fmt, ap);
    kprintf(" (logged once)\n");
    va_end(ap);
}

/* The interrupt lines follow the output buffer: high while it holds a byte for a
 * source whose interrupt the command byte enables. */
static void update_irqs(struct i8042 *k)
{
    bool full = k->status & I8042_STR_OBF, aux = k->status & I8042_STR_AUXDATA;
    bool kbd_irq = full && !aux && (k->ctr & I8042_CTR_KBDINT);
    bool aux_irq = full && aux && (k->ctr & I8042_CTR_AUXINT);
    if (kbd_irq != k->kbd_irq) {
        k->kbd_irq = kbd_irq;
        irq_set(&k->irq, I8042_KBD_IRQ, kbd_irq);
    }
    if (aux_irq != k->aux_irq) {
        k->aux_irq = aux_irq;
        irq_set(&k->irq, I8042_AUX_IRQ, aux_irq);
    }
}

static void reply(struct i8042 *k, uint8_t byte, bool aux)
{
    k->obuf = byte;
    k->status |= I8042_STR_OBF;
    if (aux)
        k->status |= I8042_STR_AUXDATA;
    else
        k->status &= ~I8042_STR_AUXDATA;
    update_irqs(k);
}

static void set_ctr(struct i8042 *k, uint8_t ctr)
{
    k->ctr = ctr;
    /* The system flag in the status register is the command byte's. */
    if (ctr & I8042_CTR_SYS)
        k->status |= I8042_STR_SYS;
    else
        k->status &= ~I8042_STR_SYS;
    update_irqs(k);
}

static struct bus_result write_out_port(struct i8042 *k, uint8_t value)
{
    if (!(value & I8042_OUT_A20))
        log_once(k, I8042_LOG_A20, "A20 gate cleared through the output port; guest memory does not wrap at 1 MiB");
    if (!(value & I8042_OUT_RESET))
        return bus_reset("i8042 reset (output port written)");
    k->out_port = value;
    return BUS_OK;
}

static struct bus_result command(struct i8042 *k, uint8_t cmd)
{
    k->pending = 0;
    switch (cmd) {
    case CMD_READ_CTR:
        reply(k, k->ctr, false);
        break;
    case CMD_WRITE_CTR:
    case CMD_WRITE_OUTPORT:
    case CMD_WRITE_KBD_OBUF:
    case CMD_WRITE_AUX_OBUF:
    case CMD_WRITE_AUX:
        k->pending = cmd;
        break;
    case CMD_AUX_DISABLE:
        set_ctr(k, k->ctr | I8042_CTR_AUXDIS);
        break;
    case CMD_AUX_ENABLE:
        set_ctr(k, k->ctr & ~I8042_CTR_AUXDIS);
        break;
    case CMD_AUX_TEST:
    case CMD_KBD_TEST:
        reply(k, INTERFACE_OK, false);
        break;
    case CMD_SELF_TEST:
        k->status |= I8042_STR_SYS;
        reply(k, SELF_TEST_OK, false);
        break;
    case CMD_KBD_DISABLE:
        set_ctr(k, k->ctr | I8042_CTR_KBDDIS);
        break;
    case CMD_KBD_ENABLE:
        set_ctr(k, k->ctr & ~I8042_CTR_KBDDIS);
        break;
    case CMD_READ_OUTPORT:
        reply(k, k->out_port, false);
        break;
    default:
        if (cmd >= CMD_PULSE_FIRST) {
            /* Bits 3:0 clear pulse output-port lines low; bit 0 is the reset line. */
            if (!(cmd & I8042_OUT_RESET))
                return bus_reset("i8042 reset (command 0xFE)");
            break;
        }
        log_once(k, I8042_LOG_COMMAND, "command 0x%x not emulated, ignored", cmd);
        break;
    }
    return BUS_OK;
}

static struct bus_result data_write(struct i8042 *k, uint8_t value)
{
    uint8_t cmd = k->pending;
    k->pending = 0;
    switch (cmd) {
    case CMD_WRITE_CTR:
        set_ctr(k, value);
        break;
    case CMD_WRITE_OUTPORT:
        return write_out_port(k, value);
    case CMD_WRITE_KBD_OBUF:
        reply(k, value, false);
        break;
    case CMD_WRITE_AUX_OBUF:
        reply(k, value, true);
        break;
    default:
        /* A byte for the keyboard (no command pending) or the mouse (0xD4): neither is
         * plugged in, so nobody answers. */
        break;
    }
    return BUS_OK;
}

static struct bus_result data_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)offset;
    (void)width;
    struct i8042 *k = dev;
    /* Reading empties the buffer; the byte stays readable, as on the part. */
    *value = k->obuf;
    k->status &= ~(I8042_STR_OBF | I8042_STR_AUXDATA);
    update_irqs(k);
    return BUS_OK;
}

static struct bus_result data_port_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)offset;
    (void)width;
    struct i8042 *k = dev;
    k->status &= ~I8042_STR_CMD;
    return data_write(k, (uint8_t)value);
}

static struct bus_result status_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)offset;
    (void)width;
    *value = ((struct i8042 *)dev)->status;
    return BUS_OK;
}

static struct bus_result command_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)offset;
    (void)width;
    struct i8042 *k = dev;
    k->status |= I8042_STR_CMD;
    return command(k, (uint8_t)value);
}

static const struct bus_ops data_ops = {.read = data_read, .write = data_port_write};
static const struct bus_ops command_ops = {.read = status_read, .write = command_write};

void i8042_reset(struct i8042 *k)
{
    k->status = I8042_STR_UNLOCKED;
    k->out_port = I8042_OUT_RESET | I8042_OUT_A20;
    k->obuf = 0;
    k->pending = 0;
    set_ctr(k, POWER_ON_CTR); /* also lowers any line the old state held high */
}

int i8042_attach(struct i8042 *k, struct vm_bus *bus, const struct irq_sink *irq, const char *vm_name)
{
    memset(k, 0, sizeof(*k));
    k->irq = *irq;
    k->vm_name = vm_name;
    i8042_reset(k);
    static const struct {
        uint16_t port;
        const struct bus_ops *ops;
    } ports[] = {{I8042_DATA_PORT, &data_ops}, {I8042_CMD_PORT, &command_ops}};
    for (unsigned i = 0; i < ARRAY_SIZE(ports); i++) {
        int id = vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = ports[i].port, .len = 1,
                                                      .widths = BUS_WIDTH_1, .ops = ports[i].ops, .dev = k,
                                                      .owner = "i8042"});
        if (id < 0)
            return id;
    }
    return 0;
}
