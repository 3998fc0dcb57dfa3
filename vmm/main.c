/* Keel's core: what happens between the loader's hand-over and running guests.
 * Both boot paths arrive at keel_entry64 with the same struct bootinfo. */
#include "boot/bootinfo.h"
#include "arch/x86/cpu.h"
#include "arch/x86/cpu_init.h"
#include "arch/x86/msr.h"
#include "arch/x86/paging.h"
#include "arch/x86/smp.h"
#include "arch/x86/trap.h"
#include "arch/x86/vmx/vmx_caps.h"
#include "drivers/acpi.h"
#include "drivers/console_pc.h"
#include "drivers/ioapic.h"
#include "arch/x86/lapic.h"
#include "drivers/pci.h"
#include "drivers/power.h"
#include "drivers/timer.h"
#include "drivers/uart16550.h"
#include "drivers/cmos_clock.h"
#include "vmm/dev/platform.h"
#include "vmm/lib/config.h"
#include "vmm/lib/console.h"
#include "vmm/highmem.h"
#include "vmm/monitor.h"
#include "vmm/lib/page_alloc.h"
#include "vmm/sched.h"
#include "vmm/lib/string.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define MAX_EXCLUSIONS (BOOTINFO_MAX_MODULES + 4)

static struct keel_config config;
static struct acpi_info acpi;

const char *mem_type_name(uint32_t type)
{
    static const char *const names[] = {
        [MEM_USABLE] = "usable", [MEM_RESERVED] = "reserved", [MEM_ACPI_RECLAIMABLE] = "ACPI",
        [MEM_ACPI_NVS] = "ACPI NVS", [MEM_MMIO] = "MMIO", [MEM_UNUSABLE] = "bad RAM",
        [MEM_FIRMWARE] = "firmware", [MEM_BOOT_DATA] = "boot data",
    };
    return type < ARRAY_SIZE(names) && names[type] ? names[type] : "unknown";
}

/* Configuration: the file first, the command line on top. A broken file is reported
 * and ignored as a whole, so Keel never runs half of what the user wrote. The errors
 * are kept until the console exists: which console to open is itself configuration. */
static struct config_error file_error, cmdline_error;
static bool file_bad, cmdline_bad;

static void load_config(const struct bootinfo *bi)
{
    config_defaults(&config);
    if (bi->config && bi->config_len)
        file_bad = config_parse(hpa_to_hva(bi->config), bi->config_len, &config, &file_error) != 0;
    if (bi->cmdline[0])
        cmdline_bad = config_parse_cmdline(bi->cmdline, &config, &cmdline_error) != 0;
}

/* The messages name the file and line already ("keel.cfg:3: ..."); say what was
 * dropped and what the user has to do. */
static void report_config_errors(void)
{
    if (file_bad) {
        kprintf("CONFIG: %s\n", file_error.msg);
        kprintf("CONFIG: keel.cfg rejected as a whole: no VM will start; fix it and boot again\n");
    }
    if (cmdline_bad) {
        kprintf("CONFIG: %s\n", cmdline_error.msg);
        kprintf("CONFIG: the command line rejected as a whole: no VM will start; fix it and boot again\n");
    }
}

/* The rate is read back from the UART, so a wrong setting shows on the other sinks or
 * as garbage, and a test can see what the hardware was given. */
static void report_console(void)
{
    if (!(config.console & CONSOLE_SINK_COM1))
        return;
    if (console_sinks() & CONSOLE_SINK_COM1)
        kprintf("CONSOLE: COM1 at port 0x%x, %u baud (divisor latch %u)\n", COM1_PORT, config.com1_baud,
                uart_read_divisor(COM1_PORT));
    else
        kprintf("CONSOLE: no UART answers at COM1 (port 0x%x); COM1 output is off\n", COM1_PORT);
}

static void report_memory_map(const struct bootinfo *bi)
{
    kprintf("MEM: %u map entries from %s\n", bi->mem_count, bi->loader_name);
    for (uint32_t i = 0; i < bi->mem_count; i++)
        kprintf("MEM:   0x%016lx-0x%016lx %s\n", bi->mem[i].base, bi->mem[i].base + bi->mem[i].length - 1,
                mem_type_name(bi->mem[i].type));
}

/* A loader that ran out of module slots says how many it left out: the VMs whose
 * images were among them then report a missing image, and this names the cause. */
static void report_modules(const struct bootinfo *bi)
{
    kprintf("BOOT: %u modules from %s\n", bi->module_count, bi->loader_name);
    if (bi->modules_dropped)
        kprintf("BOOT: %u more modules left out: Keel takes at most %u; VMs whose image was among "
                "them will not start\n", bi->modules_dropped, BOOTINFO_MAX_MODULES);
}

static void init_allocator(const struct bootinfo *bi)
{
    struct phys_range ex[MAX_EXCLUSIONS];
    size_t n = 0;
    ex[n++] = (struct phys_range){bi->kernel_phys_base, bi->kernel_size};
    if (bi->ap_trampoline)
        ex[n++] = (struct phys_range){bi->ap_trampoline, PAGE_SIZE};
    if (bi->config)
        ex[n++] = (struct phys_range){bi->config, bi->config_len};
    for (uint32_t i = 0; i < bi->module_count && n < MAX_EXCLUSIONS; i++)
        ex[n++] = (struct phys_range){bi->modules[i].base, bi->modules[i].size};
    if (palloc_init(bi->mem, bi->mem_count, ex, n))
        panic("no usable memory in the boot memory map");
}

static void init_boot_cpu(void)
{
    struct percpu *p = percpu_create(0, lapic_id());
    if (!p)
        panic("no memory for the boot CPU's per-CPU block");
    cpu_init_this(p);
    p->online = 1;
}

/* The MADT's usable CPUs, as the SMP layer takes them. */
static const struct smp_cpu_list *cpus_listed(const struct acpi_info *a)
{
    static uint32_t apic_ids[ACPI_MAX_CPUS];
    static struct smp_cpu_list list;
    list = (struct smp_cpu_list){.listed = a->have_madt, .enabled = a->cpus_enabled, .dropped = a->cpus_dropped,
                                 .apic_ids = apic_ids};
    for (uint32_t i = 0; i < a->cpu_count && i < ACPI_MAX_CPUS; i++)
        if (a->cpus[i].enabled)
            apic_ids[list.count++] = a->cpus[i].apic_id;
    return &list;
}

static uint32_t count_vmx_ready_cpus(void)
{
    uint32_t n = 0;
    for (int32_t i = 0; i < MAX_CPUS; i++)
        n += cpu_can_run_guests(i);
    return n;
}

/* What Keel does once nothing is left to run. */
static NORETURN void idle_action(void)
{
    switch (config.on_idle) {
    case ON_IDLE_HALT:
        kprintf("Keel: nothing left to run; halting (on_idle = halt)\n");
        console_flush();
        cpu_halt_forever();
    case ON_IDLE_REBOOT:
        kprintf("Keel: nothing left to run; rebooting\n");
        power_reset();
    case ON_IDLE_POWEROFF:
    default:
        kprintf("Keel: nothing left to run; powering off\n");
        power_off();
    }
}

static void run_vms(const struct bootinfo *bi)
{
    /* VMCSs are built on the boot CPU, which therefore enters VMX operation first. */
    if (!vcpu_backend_start(&vmx_backend) || !vcpu_backend->cpu_on(this_cpu()))
        return;
    sched_init(config.slice_ms);
    vms_create(&config, bi);
    if (!vm_count) {
        vcpu_backend->cpu_off(this_cpu());
        return;
    }
    console_start_queueing();
    monitor_start();
    sched_release_cpus();
    /* The boot CPU schedules like the others; it returns once no VM is left anywhere. */
    sched_run_this_cpu();
    vcpu_backend->cpu_off(this_cpu());
    sched_report();
    kprintf("Keel: all %u VMs have stopped\n", vm_count);
}

int keel_entry64(struct bootinfo *bi)
{
    /* GS base doubles as "per-CPU block installed"; firmware may have left junk. */
    wrmsr(MSR_GS_BASE, 0);
    console_set_platform(&console_pc);
    idt_init();
    idt_load();

    load_config(bi);
    console_init(config.console, config.com1_baud);
    bool check_only = bi->flags & BOOT_PLATFORM_CHECK;
    bool handover_test = bi->flags & BOOT_HANDOVER_TEST;
    kprintf("Keel %s: started by %s via %s%s\n", KEEL_VERSION, bi->loader_name,
            bi->source == BOOT_SOURCE_UEFI ? "UEFI" : "Multiboot2",
            check_only      ? " in platform-check mode (firmware stays in control)"
            : handover_test ? " in hand-over test mode (no VT-x; power-off after boot)"
                            : "");
    if (bi->magic != BOOTINFO_MAGIC || bi->version != BOOTINFO_VERSION)
        panic("boot information has magic 0x%lx version %u; loader and core do not match", bi->magic,
              bi->version);
    if (bi->exit_bs_attempts)
        kprintf("UEFI: ExitBootServices succeeded on call %u (%u retries after a stale map key)\n",
                bi->exit_bs_attempts, bi->exit_bs_stale_keys);
    report_console();
    report_config_errors();

    report_memory_map(bi);
    report_modules(bi);
    init_allocator(bi);
    paging_init(bi);
    highmem_report();
    /* Before anything else allocates: the probe writes free memory. */
    if (handover_test)
        highmem_probe();
    init_boot_cpu();

    if (acpi_parse(bi->rsdp, &acpi) == 0)
        acpi_report(&acpi);
    else
        kprintf("ACPI: no usable tables; only the boot CPU will run\n");
    power_init(&acpi);

    /* Leaving live firmware's APIC in xAPIC mode lets it keep working afterwards. */
    lapic_init(!check_only);
    timer_calibrate(&acpi);
    if (!check_only)
        ioapic_init(&acpi);
    if (!cmos_clock_read(&host_boot_time))
        kprintf("Keel: the CMOS clock reads nonsense; guests' clocks start at 2026-01-01 00:00:00\n");

    vmx_detect_this_cpu(this_cpu());
    cpu_fault_test = config.fault_test_cpu;
    cpu_set_ap_idle(sched_ap_idle);
    smp_start_aps(cpus_listed(&acpi), config.ap_timeout_ms, bi->ap_trampoline, !check_only);
    struct config_error machine_error;
    if (config_check_machine(&config, cpu_count_online, &machine_error))
        kprintf("CONFIG: %s\n", machine_error.msg);
    vmx_report_summary();

    pci_init(&acpi);
    pci_enumerate();

    uint32_t vmx_cpus = count_vmx_ready_cpus();
    kprintf("Keel: boot complete: %u CPUs online, %u with VMX, %lu MiB free\n", cpu_count_online, vmx_cpus,
            palloc_free_bytes() >> 20);

    if (check_only) {
        kprintf("Keel: platform check complete; VT-x not available, returning to the loader\n");
        smp_park_aps();
        timer_restore_firmware_state();
        console_flush();
        return -1;
    }
    if (handover_test) {
        /* The loader checked the config already; on_idle does not apply, the test is
         * that ACPI ends the machine. */
        kprintf("Keel: hand-over test complete; powering off through ACPI\n");
        power_off();
    }
    if (file_bad || cmdline_bad) {
        /* Repeated here: the first report has scrolled away behind the boot log. */
        kprintf("Keel: not starting guests: the configuration has errors:\n");
        report_config_errors();
    } else if (config.vm_count && !vmx_cpus)
        kprintf("Keel: VT-x not available on any CPU; guests cannot run\n");
    else if (config.vm_count)
        run_vms(bi);
    idle_action();
}
