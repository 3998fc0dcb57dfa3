/* Power-off and reset. Each method is announced and the console flushed before it is
 * tried, because a method that works ends the machine mid-line. Every wait is a
 * bounded count of port-0x80 writes (about 1 us each on PC hardware), so a method that
 * silently does nothing costs a moment, never a hang. */
#include "drivers/power.h"
#include "drivers/pci.h"
#include "arch/x86/cpu.h"
#include "arch/x86/paging.h"
#include "vmm/lib/console.h"

#define DELAY_PORT 0x80
#define RESET_CONTROL_PORT 0xcf9
#define KBC_STATUS_PORT 0x64
#define KBC_COMMAND_PORT 0x64
#define KBC_STATUS_INPUT_FULL BIT(1)
#define KBC_CMD_PULSE_RESET 0xfe

#define ACPI_ENABLE_WAIT_US 3000000u /* firmware may take its time to hand over */
#define METHOD_WAIT_US 500000u       /* how long a method gets to take effect */

static struct {
    bool s5_valid;
    uint8_t slp_typ_a, slp_typ_b;
    struct acpi_reg pm1a, pm1b;
    uint32_t smi_cmd;
    uint8_t acpi_enable;
    bool reset_supported;
    struct acpi_reg reset_reg;
    uint8_t reset_value;
    bool no_8042; /* inverted so the zeroed default (no FADT seen) still tries it */
} pw;

static void io_delay(void)
{
    outb(DELAY_PORT, 0);
}

static void wait_us(uint32_t us)
{
    while (us--)
        io_delay();
}

static void map_if_memory(const struct acpi_reg *r)
{
    if (r->present && r->space == ACPI_GAS_MEMORY)
        paging_map_mmio(ALIGN_DOWN(r->address, PAGE_SIZE), PAGE_SIZE);
}

void power_init(const struct acpi_info *acpi)
{
    pw.s5_valid = false;
    pw.reset_supported = false;
    pw.pm1a.present = pw.pm1b.present = false;
    pw.smi_cmd = 0;
    pw.no_8042 = false;
    if (!acpi || !acpi->have_fadt)
        return;
    pw.s5_valid = acpi->s5_valid && acpi->pm1a_cnt.present;
    pw.slp_typ_a = acpi->slp_typ_a;
    pw.slp_typ_b = acpi->slp_typ_b;
    pw.pm1a = acpi->pm1a_cnt;
    pw.pm1b = acpi->pm1b_cnt;
    pw.smi_cmd = acpi->smi_cmd <= 0xffff ? acpi->smi_cmd : 0;
    pw.acpi_enable = acpi->acpi_enable;
    pw.reset_supported = acpi->reset_supported;
    pw.reset_reg = acpi->reset_reg;
    pw.reset_value = acpi->reset_value;
    pw.no_8042 = !acpi->has_8042;
    map_if_memory(&pw.pm1a);
    map_if_memory(&pw.pm1b);
    if (pw.reset_supported)
        map_if_memory(&pw.reset_reg);
}

static uint16_t pm1_read(const struct acpi_reg *r)
{
    if (r->space == ACPI_GAS_MEMORY)
        return mmio_read16(r->address);
    return inw((uint16_t)r->address);
}

static void pm1_write(const struct acpi_reg *r, uint16_t v)
{
    if (r->space == ACPI_GAS_MEMORY)
        mmio_write16(r->address, v);
    else
        outw((uint16_t)r->address, v);
}

static void announce(const char *what)
{
    kprintf("POWER: %s\n", what);
    console_flush();
}

/* ---- power-off ------------------------------------------------------------------- */

static void ensure_acpi_mode(void)
{
    if (pm1_read(&pw.pm1a) & ACPI_PM1_SCI_EN)
        return;
    if (!pw.smi_cmd || !pw.acpi_enable)
        return; /* no way to ask; hardware may be in ACPI mode for good */
    outb((uint16_t)pw.smi_cmd, pw.acpi_enable);
    for (uint32_t i = 0; i < ACPI_ENABLE_WAIT_US; i += 10) {
        if (pm1_read(&pw.pm1a) & ACPI_PM1_SCI_EN)
            return;
        wait_us(10);
    }
    kprintf("POWER: firmware did not enter ACPI mode (SCI_EN still 0), trying S5 anyway\n");
    console_flush();
}

static void try_acpi_s5(void)
{
    if (!pw.s5_valid) {
        announce("ACPI S5 unavailable (no FADT PM1a_CNT or \\_S5_ sleep type)");
        return;
    }
    kprintf("POWER: trying ACPI S5 (PM1a_CNT %s 0x%lx, SLP_TYP %u/%u)\n",
            pw.pm1a.space == ACPI_GAS_MEMORY ? "mem" : "io", pw.pm1a.address, pw.slp_typ_a,
            pw.slp_typ_b);
    console_flush();
    ensure_acpi_mode();

    /* SLP_TYP first, then SLP_EN, a before b: the order the spec's sleep sequence uses. */
    uint16_t a = pm1_read(&pw.pm1a) & ~(ACPI_PM1_SLP_TYP_MASK | ACPI_PM1_SLP_EN);
    a |= (uint16_t)(pw.slp_typ_a << ACPI_PM1_SLP_TYP_SHIFT);
    uint16_t b = 0;
    if (pw.pm1b.present) {
        b = pm1_read(&pw.pm1b) & ~(ACPI_PM1_SLP_TYP_MASK | ACPI_PM1_SLP_EN);
        b |= (uint16_t)(pw.slp_typ_b << ACPI_PM1_SLP_TYP_SHIFT);
    }
    pm1_write(&pw.pm1a, a);
    if (pw.pm1b.present)
        pm1_write(&pw.pm1b, b);
    pm1_write(&pw.pm1a, a | ACPI_PM1_SLP_EN);
    if (pw.pm1b.present)
        pm1_write(&pw.pm1b, b | ACPI_PM1_SLP_EN);
    wait_us(METHOD_WAIT_US);
    announce("ACPI S5 did not power off");
}

static void try_emulator_ports(void)
{
    announce("trying the Bochs/QEMU shutdown port 0x8900");
    static const char cmd[] = "Shutdown";
    for (size_t i = 0; i < sizeof cmd - 1; i++)
        outb(0x8900, (uint8_t)cmd[i]);
    wait_us(1000);

    announce("trying QEMU's PIIX ACPI port 0x604");
    outw(0x604, 0x2000);
    wait_us(1000);

    announce("trying the Bochs/old QEMU ACPI port 0xb004");
    outw(0xb004, 0x2000);
    wait_us(1000);
}

NORETURN void power_off(void)
{
    console_flush();
    cli();
    try_acpi_s5();
    try_emulator_ports();
    announce("power-off failed, halting this CPU");
    cpu_halt_forever();
}

/* ---- reset ----------------------------------------------------------------------- */

static void write_reset_reg(void)
{
    const struct acpi_reg *r = &pw.reset_reg;
    switch (r->space) {
    case ACPI_GAS_IO:
        outb((uint16_t)r->address, pw.reset_value);
        break;
    case ACPI_GAS_MEMORY:
        mmio_write8(r->address, pw.reset_value);
        break;
    case ACPI_GAS_PCI_CONFIG: {
        /* Segment 0, bus 0; device in bits 47:32, function in 31:16, offset in 15:0. */
        struct pci_addr a = {.seg = 0,
                             .bus = 0,
                             .dev = (uint8_t)((r->address >> 32) & 0x1f),
                             .fn = (uint8_t)((r->address >> 16) & 0x7)};
        pci_write8(a, (uint16_t)(r->address & 0xffff), pw.reset_value);
        break;
    }
    default:
        break;
    }
}

static NORETURN void triple_fault(void)
{
    struct {
        uint16_t limit;
        uint64_t base;
    } PACKED empty_idt = {0, 0};
    /* With no IDT every exception is a fault while delivering a fault: the CPU shuts
     * down, which a PC turns into a reset. */
    __asm__ volatile("lidt %0; int3" ::"m"(empty_idt) : "memory");
    cpu_halt_forever();
}

NORETURN void power_reset(void)
{
    cli();
    console_flush();

    if (pw.reset_supported) {
        kprintf("POWER: reset via the ACPI reset register (%s 0x%lx <- 0x%x)\n",
                pw.reset_reg.space == ACPI_GAS_IO       ? "io"
                : pw.reset_reg.space == ACPI_GAS_MEMORY ? "mem"
                                                        : "pci",
                pw.reset_reg.address, pw.reset_value);
        console_flush();
        write_reset_reg();
        wait_us(METHOD_WAIT_US);
    }

    announce("reset via port 0xcf9");
    outb(RESET_CONTROL_PORT, 0x02); /* select a hard reset ... */
    wait_us(10);
    outb(RESET_CONTROL_PORT, 0x06); /* ... and trigger it */
    wait_us(METHOD_WAIT_US);

    if (!pw.no_8042) {
        announce("reset via the keyboard controller");
        for (uint32_t i = 0; i < 100000 && (inb(KBC_STATUS_PORT) & KBC_STATUS_INPUT_FULL); i++)
            io_delay();
        outb(KBC_COMMAND_PORT, KBC_CMD_PULSE_RESET);
        wait_us(METHOD_WAIT_US);
    }

    announce("reset via triple fault");
    triple_fault();
}
