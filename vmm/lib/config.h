/* Keel's configuration: the keel.cfg file plus key=value overrides on the command line.
 * The parser is shared by the core and the UEFI loader (which rejects a bad file before
 * leaving boot services), so it uses nothing from the core but vmm/lib/string.h and
 * reports errors through struct config_error instead of printing.
 *
 * keel.cfg format (ASCII text, LF, CRLF or CR line endings, lines up to 255 characters):
 *
 *     # A comment. '#' starts a comment anywhere, also after a value.
 *     console = com1, e9      # output sinks, a comma list of: com1, e9
 *     com1_baud = 115200      # 2..115200 and a divisor of 115200: 57600, 38400, 9600, ...
 *     on_idle = poweroff      # when nothing is left to run: poweroff | halt | reboot
 *     platform_check = yes    # yes | no. UEFI: when VT-x is unusable, still probe and
 *                             # report the platform before returning to firmware
 *     ap_timeout_ms = 200     # how long to wait for an AP to report in, 1..10000
 *     slice_ms = 10           # vCPU time slice, 1..1000
 *     fault_test_cpu = 1      # that CPU executes UD2 once online, to show (and test)
 *                             # Keel's exception report; unset: no CPU does. Not 0:
 *                             # the boot CPU has to finish the boot
 *     handover_test = no      # yes | no. UEFI: when VT-x is unusable, exit boot services
 *                             # anyway, hand over, run the core to the end of its boot
 *                             # (ACPI, APs, timers, PCI, the boot summary) and power off
 *                             # through ACPI instead of returning to the firmware. For
 *                             # testing the hand-over on machines (emulators) without
 *                             # VT-x; takes precedence over platform_check
 *     stale_map_keys = 0      # 0..4. UEFI test knob: the loader changes the memory map
 *                             # after fetching it for the first N ExitBootServices calls,
 *                             # so the firmware rejects the stale map key and the
 *                             # loader's retry path runs
 *
 *     [vm hello]              # a VM; name: letters, digits, '-', '_', 1..31 of them
 *     memory = 16M            # bytes, or a K/M/G suffix; 1M..64G, whole 4K pages
 *     image = hello.elf       # file on the ESP / Multiboot2 module name (required)
 *     entry = multiboot       # multiboot | real | elf64 | linux (default multiboot)
 *     cpu = 1                 # optional: pin the VM to this CPU index
 *     cpus = 0-2,5            # optional: the CPUs its vCPUs may run on (indices and
 *                             # ranges); cpu = N is the one-CPU form; default: all
 *     weight = 256            # 1..65535 (default 256): its vCPUs' share of a CPU under
 *                             # contention, in proportion to other vCPUs' weights
 *     vcpus = 1               # 1..16 (default 1): vCPU 0 starts as the entry kind
 *                             # says, the others wait for INIT-SIPI-SIPI
 *     cmdline = console=ttyS0 # optional text handed to the guest (no '#' possible)
 *     on_reset = restart      # restart | stop (default restart): what a reset by the
 *                             # guest (0xCF9, the ACPI reset register, i8042 0xFE, port
 *                             # 0x92) does: start again from the image, or stop the VM
 *     testdev = off           # on | off (default off): QEMU's pc-testdev (ports 0xE0-0xE7,
 *                             # 0x2000-0x2017, MMIO scratch at 0xFF000000) for test kernels
 *     disk = root.img         # optional: a virtio-blk disk backed by this file (ESP file
 *                             # / Multiboot2 module, like image). Writes change Keel's
 *                             # in-memory copy only: they are lost at power-off
 *     disk_readonly = no      # yes | no (default no): the disk refuses writes
 *     virtio_console = no     # yes | no (default no): a virtio console (hvc0 in Linux)
 *                             # whose output becomes the VM's console lines
 *     initrd = initrd.cpio    # entry = linux only, optional: the initramfs, found like
 *                             # the image (a file on the ESP / Multiboot2 module name)
 *
 * Global keys come before the first [vm] section; `memory` and `image` are required in
 * every section; no key may appear twice in the same section; a VM name may not be one
 * of the tags Keel's own console lines start with (vmm/lib/console_tags.h); at most MAX_VMS
 * VMs.
 * Keys and enum values are lower case. Numbers are decimal or 0x-prefixed hex.
 * Non-ASCII bytes are accepted only inside comments; NUL and control bytes never.
 *
 * The command line (Multiboot2 string, or the UEFI load options) holds space-separated
 * global key=value tokens, e.g. "console=com1,e9 on_idle=halt", applied over the file. */
#ifndef KEEL_VMM_CONFIG_H
#define KEEL_VMM_CONFIG_H

#include "vmm/lib/types.h"

#define MAX_VMS 16
#define MAX_VCPUS 16 /* per VM */
#define CONFIG_LINE_MAX 255     /* characters per line, not counting the line ending */
#define CONFIG_NAME_MAX 31      /* VM name characters */
#define CONFIG_IMAGE_MAX 63     /* fits boot_module.name */
#define CONFIG_CMDLINE_MAX 200  /* guest command line characters */
#define CONFIG_ERROR_MAX 160
#define CONFIG_MEMORY_MIN (1ull << 20)
/* A VM's RAM is laid out as a PC's (vmm/dev/dev_ram.h): up to 3584 MiB from 0, below
 * the devices at 0xE0000000, the rest from 4 GiB up. Its guest-physical addresses have
 * 39 bits (CPUID), so RAM ends well below 512 GiB. */
#define CONFIG_MEMORY_MAX (256ull << 30)
#define CONFIG_MEMORY_RANGE "1M..256G"
/* How much of it may lie below 4 GiB (QEMU's max-ram-below-4g): the rest goes to 4 GiB. */
#define CONFIG_MEMORY_BELOW_4G_MAX (3584ull << 20)
#define CONFIG_MEMORY_BELOW_4G_RANGE "1M..3584M"
#define CONFIG_CPU_MAX 511      /* highest CPU index a VM can be pinned to (MAX_CPUS-1) */
#define CONFIG_CPU_RANGE "0..511"
#define CONFIG_AP_RANGE "1..511"   /* CPUs but the boot CPU */
#define CONFIG_CPU_ANY (-1)
#define CONFIG_CPU_WORDS ((CONFIG_CPU_MAX + 64) / 64) /* a bit per CPU index */
#define CONFIG_WEIGHT_DEFAULT 256
#define CONFIG_WEIGHT_MAX 65535
#define CONFIG_STALE_MAP_KEYS_MAX 4 /* below the loader's ExitBootServices attempts */

/* Console sink bits, equal to enum console_sink in vmm/lib/console.h. */
#define CONFIG_CONSOLE_COM1 BIT(0)
#define CONFIG_CONSOLE_E9 BIT(1)

enum config_on_idle {
    ON_IDLE_POWEROFF = 1,
    ON_IDLE_HALT = 2,
    ON_IDLE_REBOOT = 3,
};

enum config_on_reset {
    VM_ON_RESET_RESTART = 1,
    VM_ON_RESET_STOP = 2,
};

enum config_entry {
    VM_ENTRY_MULTIBOOT = 1, /* Multiboot (1) kernel, entered in 32-bit protected mode */
    VM_ENTRY_REAL = 2,      /* flat binary entered in real mode */
    VM_ENTRY_ELF64 = 3,     /* ELF64 image entered in long mode */
    VM_ENTRY_LINUX = 4,     /* bzImage by the Linux boot protocol (vmm/loaders/linux_boot.h) */
};

struct vm_config {
    char name[CONFIG_NAME_MAX + 1];
    uint64_t memory; /* bytes, a multiple of PAGE_SIZE */
    char image[CONFIG_IMAGE_MAX + 1];
    uint32_t entry;  /* enum config_entry */
    int32_t cpu;     /* CPU index, or CONFIG_CPU_ANY */
    uint64_t cpus[CONFIG_CPU_WORDS]; /* the cpus list; all zero: none given */
    uint32_t weight; /* 1..CONFIG_WEIGHT_MAX */
    uint32_t vcpus;  /* 1..MAX_VCPUS */
    char cmdline[CONFIG_CMDLINE_MAX + 1];
    uint32_t on_reset; /* enum config_on_reset */
    bool testdev;      /* QEMU's pc-testdev on its bus */
    char disk[CONFIG_IMAGE_MAX + 1]; /* "": no virtio-blk disk */
    bool disk_readonly;
    bool virtio_console;
    char initrd[CONFIG_IMAGE_MAX + 1]; /* "": none */
    /* exit_split = on: each exit's round trip also split at the TSC the CPU stores as it
     * exits (guest and hardware entry / hardware exit / handler; vcpu_exit_split). */
    bool exit_split;
    /* memory_below_4g: at most this much RAM below 4 GiB, the rest from 4 GiB up (0: the
     * default, CONFIG_MEMORY_BELOW_4G_MAX). */
    uint64_t memory_below_4g;
};

struct keel_config {
    uint32_t console;        /* CONFIG_CONSOLE_* bits, never 0 */
    uint32_t com1_baud;
    uint32_t on_idle;        /* enum config_on_idle */
    bool platform_check;
    uint32_t ap_timeout_ms;
    uint32_t slice_ms;
    int32_t fault_test_cpu;  /* CONFIG_CPU_ANY: none */
    bool handover_test;
    uint32_t stale_map_keys;
    uint32_t vm_count;
    struct vm_config vms[MAX_VMS];
};

struct config_error {
    unsigned line;              /* 1-based line in keel.cfg; 0 for the command line */
    char msg[CONFIG_ERROR_MAX]; /* whole message, e.g. "keel.cfg:7: unknown key 'memroy'" */
};

/* console com1, 115200 baud, on_idle halt, platform_check yes, ap_timeout_ms 200,
 * slice_ms 10, handover_test no, stale_map_keys 0, no VMs. */
void config_defaults(struct keel_config *c);

/* Builds *c from the defaults and `len` bytes of keel.cfg (no terminator needed; text
 * may be NULL when len is 0). Returns 0, or -1 with *err filled (err may be NULL) and
 * *c untouched. Not reentrant: it parses into a static scratch copy, to keep the
 * several KiB of struct keel_config off small boot stacks. */
int config_parse(const char *text, size_t len, struct keel_config *c, struct config_error *err);

/* Applies the global key=value tokens of a NUL-terminated command line over *c.
 * Returns 0, or -1 with *err filled and *c untouched. Not reentrant either. */
int config_parse_cmdline(const char *cmdline, struct keel_config *c, struct config_error *err);

/* What only the running machine can show to be wrong: a fault_test_cpu beyond the CPUs
 * that came online. Returns 0, or -1 with *err filled (err may be NULL). */
int config_check_machine(const struct keel_config *c, uint32_t cpus_online, struct config_error *err);

/* Names for reports: "poweroff", "multiboot", ...; "?" for values out of range. */
const char *config_on_idle_name(uint32_t on_idle);
const char *config_entry_name(uint32_t entry);

#endif
