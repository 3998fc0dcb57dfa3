/* platform: checks the PC platform a guest sees, the same way under plain QEMU
 * (`qemu-system-x86_64 -kernel platform.elf -smp N`) and under Keel. It uses no Keel
 * hypercall: everything is found the way an OS finds it, and it prints through COM1 only.
 *
 * Contract. One line per check, in this order:
 *     platform: ok <what>...               the check passed
 *     platform: FAIL <what>: <detail>      it failed
 *     platform: skip <what>: <why>         the platform lacks an optional feature
 * with <what> one of tsc-calibration, rsdp, rsdt, xsdt, madt, madt-ioapic, madt-irq0,
 * fadt, dsdt, s5, fwcfg, fwcfg-cpus, fwcfg-ram, lapic, pm-timer, smp-start, ipi-self,
 * ipi-bsp-ap, ipi-ap-bsp, ipi-ap-ap, nmi, nmi-blocked, lapic-timer-oneshot, lapic-timer-periodic,
 * tsc-deadline, irq0-ioapic, irq0-pic, testdev, uart-irq, rtc, rtc-advance, acpi-mode (a failed step may
 * leave out the checks that depend on it), other lines being plain `platform: <text>`;
 * then
 *     platform: summary: <k> ok, <m> failed, <s> skipped
 * and the machine ends:
 *   - all passed: `platform: all checks passed; powering off through ACPI S5`, then
 *     SLP_TYP (from the DSDT's _S5_) | SLP_EN to PM1a_CNT: QEMU exits with status 0 and
 *     reports a guest shutdown; if the machine is still on a second later, `platform:
 *     FAIL poweroff: ...` and the debug-exit below;
 *   - otherwise: `platform: <m> checks failed; debug-exit with code 1`: code 1 to port
 *     0xF4 (QEMU status 3). An unexpected CPU exception is code 2 (status 5).
 * Every wait is bounded by the TSC, itself calibrated against PIT channel 2 (a PIT
 * that does not count is a failed check, and the TSC is then taken to run at 1 GHz).
 * APs start in a real-mode trampoline copied to a free page below 640 KiB, then run
 * in 32-bit protected mode with interrupts on, halted between IPIs. */
#include "guest.h"
#include "acpi.h"
#include "fwcfg.h"
#include "intr.h"
#include "irq0.h"
#include "lapic_timer.h"
#include "report.h"
#include "rtc.h"
#include "nmi.h"
#include "smp.h"
#include "testdev.h"
#include "uart_irq.h"
#include "timing.h"

const char guest_prefix[] = "platform:";

#define MSR_APIC_BASE 0x1Bu
#define APIC_BASE_ENABLE (1u << 11)
#define APIC_BASE_X2APIC (1u << 10)
#define APIC_BASE_ADDR 0xFFFFF000u
#define CPUID1_EDX_APIC (1u << 9)

/* The local APIC the MADT names must be the one this CPU has, in xAPIC mode. */
static bool check_lapic(const struct acpi_info *acpi, uint32_t *base)
{
    if (!(cpuid(1, 0).edx & CPUID1_EDX_APIC)) {
        fail("lapic", "CPUID.1:EDX[9] says there is no local APIC");
        return false;
    }
    uint64_t msr = rdmsr(MSR_APIC_BASE);
    *base = (uint32_t)msr & APIC_BASE_ADDR;
    if (!(msr & APIC_BASE_ENABLE) || (msr & APIC_BASE_X2APIC)) {
        fail("lapic", "IA32_APIC_BASE 0x%llx: want xAPIC mode (bit 11 set, bit 10 clear)", msr);
        return false;
    }
    if (acpi->madt_ok && acpi->lapic_addr != *base) {
        fail("lapic", "IA32_APIC_BASE says 0x%x, the MADT 0x%x", *base, acpi->lapic_addr);
        return false;
    }
    intr_init(*base);
    lapic_enable();
    ok("lapic: xAPIC at 0x%x, version 0x%x, BSP APIC ID %u", *base,
       lapic_read(LAPIC_VERSION) & 0xFF, lapic_id());
    return true;
}

int main(uint32_t magic, uint32_t info_gpa)
{
    (void)info_gpa;
    if (magic != MB_BOOT_MAGIC) {
        printf("platform: FAIL boot: EAX=0x%08x at entry, want 0x%08x\n", magic, MB_BOOT_MAGIC);
        return GUEST_EXIT_BAD_BOOT;
    }
    note("checking the platform (%s)", *cmdline_args() ? cmdline_args() : "no options");

    timing_calibrate();
    static struct acpi_info acpi;
    acpi_check(&acpi);
    if (acpi.fadt_ok)
        pm_timer_init(acpi.pm_tmr, acpi.pm_tmr_ext);
    fwcfg_check(&acpi);

    uint32_t lapic_base;
    if (check_lapic(&acpi, &lapic_base)) {
        uint32_t bsp = lapic_id();
        pm_timer_check();
        smp_start_check(&acpi, bsp);
        ipi_check(bsp);
        nmi_check(bsp);
        lapic_timer_check();
        irq0_check(&acpi, bsp);
        testdev_check(&acpi, bsp);
        uart_irq_check(&acpi, bsp);
    } else {
        pm_timer_check();
    }
    rtc_check();
    acpi_enable_check(&acpi);

    note("summary: %u ok, %u failed, %u skipped", report_ok, report_failed, report_skipped);
    if (!report_failed) {
        note("all checks passed; powering off through ACPI S5");
        acpi_poweroff(&acpi); /* returns only when the machine stayed on */
    }
    note("%u checks failed; debug-exit with code 1", report_failed);
    return GUEST_EXIT_FAIL;
}
