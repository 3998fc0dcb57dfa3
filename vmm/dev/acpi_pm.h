/* The ACPI fixed power-management hardware of a PC chipset: the PM timer, the PM1a
 * event (status/enable) and control registers, the SCI, and the reset control
 * register at port 0xCF9, which the FADT also names as the ACPI reset register.
 *
 * Layout: QEMU's q35 (ICH9) one, at 0x600: PM1a_EVT_BLK 0x600-0x603, PM1a_CNT_BLK
 * 0x604-0x605, PM_TMR_BLK 0x608-0x60B. Kernels written for QEMU hard-code it
 * (outw(0x604, 0x2000) to power off), so the same port block and the same sleep-type
 * value for S5 (0, as in QEMU's DSDT) let them run unchanged; the FADT and DSDT that
 * Keel builds name exactly these (the constants below).
 *
 * Emulated: the 24-bit PM timer at 3.579545 MHz (TMR_VAL_EXT clear), TMR_STS when its
 * bit 23 changes, PWRBTN_STS (the host can press the button), the enable bits, SCI_EN
 * (set at attach: there is no SMI command port, the machine is born in ACPI mode),
 * SLP_TYP/SLP_EN: S5 powers the VM off, any other sleep type is refused and logged
 * once; the SCI on IRQ 9 as a level; 0xCF9 bit 2 resets the VM (bits 1 and 3 read
 * back). Left out: sleeping states other than S5, GPE blocks, the bus-master and
 * global-lock bits (they read 0), SMI. */
#ifndef KEEL_VMM_DEV_ACPI_PM_H
#define KEEL_VMM_DEV_ACPI_PM_H

#include "vmm/dev/bus.h"
#include "vmm/dev/clock.h"
#include "vmm/dev/irq.h"

#define ACPI_PM_BASE 0x600
#define ACPI_PM1_EVT_OFF 0
#define ACPI_PM1_EVT_LEN 4
#define ACPI_PM1_CNT_OFF 4
#define ACPI_PM1_CNT_LEN 2
#define ACPI_PM_TMR_OFF 8
#define ACPI_PM_TMR_LEN 4
#define ACPI_PM_TMR_HZ 3579545ull
#define ACPI_PM_TMR_BITS 24
#define ACPI_PM_SCI_IRQ 9
#define ACPI_PM_SLP_TYP_S5 0 /* the _S5 package's value */
#define ACPI_PM_RCR_PORT 0xcf9
#define ACPI_PM_RESET_VALUE 0x06 /* the FADT's RESET_VALUE for RESET_REG = port 0xCF9 */

/* PM1 status and enable bits. */
#define ACPI_PM1_TMR BIT(0)
#define ACPI_PM1_BM BIT(4)
#define ACPI_PM1_GBL BIT(5)
#define ACPI_PM1_PWRBTN BIT(8)
#define ACPI_PM1_SLPBTN BIT(9)
#define ACPI_PM1_RTC BIT(10)
#define ACPI_PM1_WAK BIT(15)
/* PM1 control bits. */
#define ACPI_PM1_SCI_EN BIT(0)
#define ACPI_PM1_SLP_TYP_SHIFT 10
#define ACPI_PM1_SLP_EN BIT(13)

enum acpi_pm_logged {
    ACPI_LOG_SLEEP = BIT(0),    /* a sleep type other than S5 */
    ACPI_LOG_TIMER = BIT(1),    /* a write to the read-only PM timer */
    ACPI_LOG_RESERVED = BIT(2), /* reserved enable or control bits set */
};

struct acpi_pm {
    uint16_t sts, en, cnt;
    uint8_t rcr;         /* 0xCF9 bits 1 (SYS_RST) and 3 (FULL_RST) */
    uint64_t tmr_seen;   /* how many times bit 23 changed when TMR_STS was last brought up to date */
    bool sci_high;
    struct dev_clock clock;
    struct irq_sink irq;
    const char *vm_name;
    uint32_t logged; /* enum acpi_pm_logged */
};

/* Resets the registers and puts the PM1 event, PM1 control and PM timer blocks at base
 * (ACPI_PM_BASE on Keel's PC) on the bus. Port 0xCF9 is not registered here: it sits
 * inside the PCI host's 0xCF8 dword, so the PCI host forwards its byte accesses to
 * acpi_pm_rcr_ops (or acpi_pm_attach_rcr() claims it on a board without one). Returns
 * 0 or a negative bus error. */
int acpi_pm_attach(struct acpi_pm *pm, struct vm_bus *bus, const struct dev_clock *clock,
                   const struct irq_sink *irq, uint16_t base, const char *vm_name);

/* The reset control register, byte-wide; dev is the struct acpi_pm. */
extern const struct bus_ops acpi_pm_rcr_ops;
int acpi_pm_attach_rcr(struct acpi_pm *pm, struct vm_bus *bus);

/* The PM timer's count now (24 bits). */
uint32_t acpi_pm_timer(const struct acpi_pm *pm);

/* VM time (ns) at which TMR_STS would raise the SCI, or CLOCK_NEVER. */
uint64_t acpi_pm_deadline(struct acpi_pm *pm);
void acpi_pm_poll(struct acpi_pm *pm);

/* The host presses the power button: PWRBTN_STS, and the SCI if the guest enabled it. */
void acpi_pm_power_button(struct acpi_pm *pm);

#endif
