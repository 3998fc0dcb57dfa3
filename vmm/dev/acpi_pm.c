/* ACPI fixed hardware (ACPI 6.x, 4.8 "ACPI Hardware Specification": PM1 event and
 * control registers, the PM timer) and the ICH's reset control register. The timer is
 * the VM clock scaled to 3.579545 MHz; TMR_STS follows from how often its top bit has
 * changed, so nothing ticks. */
#include "vmm/dev/acpi_pm.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"
#include "vmm/lib/time_math.h"

#define TMR_MASK ((1u << ACPI_PM_TMR_BITS) - 1)
#define TMR_MSB_SHIFT (ACPI_PM_TMR_BITS - 1)
#define EN_BITS (ACPI_PM1_TMR | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | ACPI_PM1_RTC)
#define SCI_SOURCES EN_BITS
#define SLP_TYP_MASK (7u << ACPI_PM1_SLP_TYP_SHIFT)
#define CNT_STORED (ACPI_PM1_SCI_EN | BIT(1) | SLP_TYP_MASK) /* SCI_EN, BM_RLD, SLP_TYP */
#define CNT_WRITE_ONLY (BIT(2) | ACPI_PM1_SLP_EN)            /* GBL_RLS, SLP_EN */
#define RCR_RST_CPU 0x04
#define RCR_STORED 0x0a

static void PRINTF_LIKE(3, 4) log_once(struct acpi_pm *pm, uint32_t what, const char *fmt, ...)
{
    if (pm->logged & what)
        return;
    pm->logged |= what;
    va_list ap;
    va_start(ap, fmt);
    kprintf("VM %s: ACPI PM: ", pm->vm_name);
    kvprintf(fmt, ap);
    kprintf(" (logged once)\n");
    va_end(ap);
}

static uint64_t ticks_at(uint64_t ns)
{
    return muldiv64(ns, ACPI_PM_TMR_HZ, NS_PER_SEC);
}

uint32_t acpi_pm_timer(const struct acpi_pm *pm)
{
    return (uint32_t)ticks_at(clock_now_ns(&pm->clock)) & TMR_MASK;
}

/* Brings TMR_STS up to date and drives the SCI from status, enables and SCI_EN. */
static void update(struct acpi_pm *pm)
{
    uint64_t toggles = ticks_at(clock_now_ns(&pm->clock)) >> TMR_MSB_SHIFT;
    if (toggles > pm->tmr_seen)
        pm->sts |= ACPI_PM1_TMR;
    pm->tmr_seen = toggles;
    bool sci = (pm->cnt & ACPI_PM1_SCI_EN) && (pm->sts & pm->en & SCI_SOURCES);
    if (sci != pm->sci_high) {
        pm->sci_high = sci;
        irq_set(&pm->irq, ACPI_PM_SCI_IRQ, sci);
    }
}

uint64_t acpi_pm_deadline(struct acpi_pm *pm)
{
    update(pm);
    if (!(pm->en & ACPI_PM1_TMR) || (pm->sts & ACPI_PM1_TMR) || !(pm->cnt & ACPI_PM1_SCI_EN))
        return CLOCK_NEVER;
    uint64_t tick = (pm->tmr_seen + 1) << TMR_MSB_SHIFT;
    uint64_t ns = muldiv64(tick, NS_PER_SEC, ACPI_PM_TMR_HZ);
    return ticks_at(ns) < tick ? ns + 1 : ns;
}

void acpi_pm_poll(struct acpi_pm *pm)
{
    update(pm);
}

void acpi_pm_power_button(struct acpi_pm *pm)
{
    pm->sts |= ACPI_PM1_PWRBTN;
    update(pm);
}

/* Byte i of a little-endian register file of up to 8 bytes. */
static uint64_t bytes_of(uint64_t file, uint64_t offset, unsigned width)
{
    uint64_t v = file >> (offset * 8);
    return width >= 8 ? v : v & ((1ull << (width * 8)) - 1);
}

static struct bus_result evt_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    struct acpi_pm *pm = dev;
    update(pm);
    *value = bytes_of(pm->sts | (uint32_t)pm->en << 16, offset, width);
    return BUS_OK;
}

static struct bus_result evt_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    struct acpi_pm *pm = dev;
    update(pm);
    for (unsigned i = 0; i < width; i++) {
        unsigned at = (unsigned)offset + i;
        uint16_t b = (uint16_t)((value >> (8 * i)) & 0xff);
        if (at < 2) {
            pm->sts &= (uint16_t)~(b << (8 * at)); /* write 1 to clear */
        } else {
            unsigned sh = 8 * (at - 2);
            uint16_t want = (uint16_t)(b << sh);
            if (want & ~EN_BITS)
                log_once(pm, ACPI_LOG_RESERVED, "PM1_EN write sets reserved bits 0x%04x; they stay 0",
                         (unsigned)(want & ~EN_BITS));
            pm->en = (uint16_t)((pm->en & ~(0xff << sh)) | (want & EN_BITS));
        }
    }
    update(pm);
    return BUS_OK;
}

static struct bus_result cnt_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    struct acpi_pm *pm = dev;
    *value = bytes_of(pm->cnt, offset, width);
    return BUS_OK;
}

static struct bus_result cnt_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    struct acpi_pm *pm = dev;
    uint16_t v = (uint16_t)(value << (8 * offset)), touched = (uint16_t)(((1u << (8 * width)) - 1) << (8 * offset));
    if (v & touched & ~(CNT_STORED | CNT_WRITE_ONLY))
        log_once(pm, ACPI_LOG_RESERVED, "PM1_CNT write sets reserved bits 0x%04x; they stay 0",
                 (unsigned)(v & touched & ~(CNT_STORED | CNT_WRITE_ONLY)));
    pm->cnt = (uint16_t)((pm->cnt & ~(touched & CNT_STORED)) | (v & touched & CNT_STORED));
    update(pm);
    if (!(v & touched & ACPI_PM1_SLP_EN))
        return BUS_OK;
    unsigned typ = (pm->cnt & SLP_TYP_MASK) >> ACPI_PM1_SLP_TYP_SHIFT;
    if (typ == ACPI_PM_SLP_TYP_S5)
        return bus_power_off("ACPI sleep state S5 (soft off)");
    log_once(pm, ACPI_LOG_SLEEP, "sleep type %u refused: only S5 (type %u) is supported; the VM keeps running", typ,
             ACPI_PM_SLP_TYP_S5);
    return BUS_OK;
}

static struct bus_result tmr_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    struct acpi_pm *pm = dev;
    *value = bytes_of(acpi_pm_timer(pm), offset, width);
    return BUS_OK;
}

static struct bus_result tmr_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)offset;
    (void)width;
    log_once(dev, ACPI_LOG_TIMER, "PM timer written (0x%lx); it is read-only", value);
    return BUS_OK;
}

static struct bus_result rcr_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)offset;
    (void)width;
    struct acpi_pm *pm = dev;
    *value = pm->rcr;
    return BUS_OK;
}

static struct bus_result rcr_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)offset;
    (void)width;
    struct acpi_pm *pm = dev;
    /* RST_CPU starts the reset; SYS_RST and FULL_RST only say which kind, and every
     * kind restarts the VM the same way. */
    if (value & RCR_RST_CPU) {
        pm->rcr = 0;
        return bus_reset("reset control register (port 0xCF9)");
    }
    pm->rcr = (uint8_t)value & RCR_STORED;
    return BUS_OK;
}

static const struct bus_ops evt_ops = {.read = evt_read, .write = evt_write};
static const struct bus_ops cnt_ops = {.read = cnt_read, .write = cnt_write};
static const struct bus_ops tmr_ops = {.read = tmr_read, .write = tmr_write};
const struct bus_ops acpi_pm_rcr_ops = {.read = rcr_read, .write = rcr_write};

int acpi_pm_attach_rcr(struct acpi_pm *pm, struct vm_bus *bus)
{
    int id = vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = ACPI_PM_RCR_PORT, .len = 1,
                                                  .widths = BUS_WIDTH_1, .ops = &acpi_pm_rcr_ops, .dev = pm,
                                                  .owner = "reset control"});
    return id < 0 ? id : 0;
}

int acpi_pm_attach(struct acpi_pm *pm, struct vm_bus *bus, const struct dev_clock *clock,
                   const struct irq_sink *irq, uint16_t base, const char *vm_name)
{
    memset(pm, 0, sizeof(*pm));
    pm->clock = *clock;
    pm->irq = *irq;
    pm->vm_name = vm_name;
    pm->cnt = ACPI_PM1_SCI_EN;
    pm->tmr_seen = ticks_at(clock_now_ns(clock)) >> TMR_MSB_SHIFT;
    static const struct {
        uint16_t off, len;
        uint32_t widths;
        const struct bus_ops *ops;
        const char *owner;
    } blocks[] = {
        {ACPI_PM1_EVT_OFF, ACPI_PM1_EVT_LEN, BUS_WIDTH_1 | BUS_WIDTH_2 | BUS_WIDTH_4, &evt_ops, "ACPI PM1a event"},
        {ACPI_PM1_CNT_OFF, ACPI_PM1_CNT_LEN, BUS_WIDTH_1 | BUS_WIDTH_2, &cnt_ops, "ACPI PM1a control"},
        {ACPI_PM_TMR_OFF, ACPI_PM_TMR_LEN, BUS_WIDTH_1 | BUS_WIDTH_2 | BUS_WIDTH_4, &tmr_ops, "ACPI PM timer"},
    };
    for (unsigned i = 0; i < ARRAY_SIZE(blocks); i++) {
        int id = vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = (uint64_t)base + blocks[i].off,
                                                      .len = blocks[i].len, .widths = blocks[i].widths,
                                                      .ops = blocks[i].ops, .dev = pm, .owner = blocks[i].owner});
        if (id < 0)
            return id;
    }
    return 0;
}
