/* The PC's 8042 keyboard controller at 0x60 (data) and 0x64 (status/command), with no
 * keyboard or mouse behind it: enough for a kernel's controller probe (Linux's i8042
 * driver: flush, self-test, command byte, AUX port checks) and for the reset line that
 * kernels pulse to reboot.
 *
 * Emulated: the status register (OBF, SYS, CMD/DATA, unlocked, AUXDATA), a one-byte
 * output buffer raising IRQ 1 (or IRQ 12 for AUX data) as a level while full and its
 * interrupt is enabled in the command byte; commands 0x20 (read command byte), 0x60
 * (write it), 0xA7/0xA8 (AUX port disable/enable), 0xA9 (AUX interface test: ok),
 * 0xAA (self-test: 0x55), 0xAB (keyboard interface test: ok), 0xAD/0xAE (keyboard
 * disable/enable), 0xD0/0xD1 (read/write the output port: bit 0 clear resets the VM),
 * 0xD2/0xD3 (echo a byte as keyboard/AUX data, the loop-back Linux's AUX probe uses),
 * 0xD4 (a byte for the mouse, which is absent: dropped), 0xF0-0xFF (pulse output-port
 * lines: an even command, 0xFE among them, pulses the reset line and resets the VM).
 * Left out: any keyboard or mouse (bytes written for them are dropped, so a driver
 * probing for one times out, as with nothing plugged in), the A20 gate (guest memory
 * never wraps at 1 MiB; a guest clearing it is logged once), the controller RAM beyond
 * the command byte, the input port, password and other vendor commands (logged once). */
#ifndef KEEL_VMM_DEV_I8042_H
#define KEEL_VMM_DEV_I8042_H

#include "vmm/dev/bus.h"
#include "vmm/dev/irq.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define I8042_KBD_IRQ 1
#define I8042_AUX_IRQ 12

/* Status register. */
#define I8042_STR_OBF 0x01
#define I8042_STR_IBF 0x02
#define I8042_STR_SYS 0x04
#define I8042_STR_CMD 0x08 /* the last write was to the command port */
#define I8042_STR_UNLOCKED 0x10
#define I8042_STR_AUXDATA 0x20

/* Command byte ("CTR"). */
#define I8042_CTR_KBDINT 0x01
#define I8042_CTR_AUXINT 0x02
#define I8042_CTR_SYS 0x04
#define I8042_CTR_KBDDIS 0x10
#define I8042_CTR_AUXDIS 0x20
#define I8042_CTR_XLATE 0x40

/* Output port. */
#define I8042_OUT_RESET 0x01 /* low: the CPU's reset line asserted */
#define I8042_OUT_A20 0x02

enum i8042_logged {
    I8042_LOG_COMMAND = BIT(0), /* a command this model does not have */
    I8042_LOG_A20 = BIT(1),     /* A20 gate cleared */
};

struct i8042 {
    uint8_t status, ctr, out_port;
    uint8_t obuf;
    uint8_t pending; /* the command whose data byte the next 0x60 write is, or 0 */
    struct irq_sink irq;
    bool kbd_irq, aux_irq; /* the levels driven */
    const char *vm_name;
    uint32_t logged; /* enum i8042_logged */
};

/* Power-on state (as firmware leaves it: keyboard interrupt, system flag and
 * translation on, AUX port disabled, A20 on) and the two ports on the bus, byte-wide.
 * Returns 0 or a negative bus error. */
int i8042_attach(struct i8042 *k, struct vm_bus *bus, const struct irq_sink *irq, const char *vm_name);

/* Power-on state again, for a VM that restarts; the bus ranges stay. */
void i8042_reset(struct i8042 *k);

#endif
