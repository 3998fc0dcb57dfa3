/* The PCI host bridge: configuration mechanism #1 (the dword address register at
 * 0xCF8, the data window at 0xCFC-0xCFF, any width at any offset), the host bridge
 * itself at 00:00.0, and a registry of the functions behind it, each answering its
 * own configuration space, so virtio and other PCI devices can plug in later.
 *
 * 00:00.0 is an Intel 440FX PMC (8086:1237, revision 2, class 06/00/00), QEMU's "pc"
 * machine's host bridge, rather than Q35's MCH (8086:29C0): Keel's PC has config
 * mechanism #1 only, and a Q35 bridge promises PCIe and an ECAM window (MCFG, the MCH's
 * PCIEXBAR) that Keel does not have, while guests expect nothing of a 440FX beyond its
 * ports. Its registers are read-only (writes are dropped, as BAR sizing expects) except
 * the cache line size and latency timer; the 440FX's chipset registers (PAM, SMRAM)
 * read 0: no firmware runs in a Keel VM to program them.
 *
 * Absent functions read all-ones and drop writes, as on a real bus, and so does the
 * data window while the address register's enable bit is clear; none of these is
 * logged, since enumeration and Linux's mechanism probe do exactly that. Byte
 * accesses to 0xCF9 are the chipset's reset control register, not part of the address
 * register: they go to the cf9 handlers given at attach. */
#ifndef KEEL_VMM_DEV_PCI_HOST_H
#define KEEL_VMM_DEV_PCI_HOST_H

#include "vmm/dev/bus.h"

#define PCI_HOST_ADDR_PORT 0xcf8
#define PCI_HOST_DATA_PORT 0xcfc
#define PCI_HOST_MAX_FUNCTIONS 32
#define PCI_CONFIG_BYTES 256
#define PCI_HOST_VENDOR 0x8086
#define PCI_HOST_DEVICE 0x1237
#define PCI_ADDR_ENABLE 0x80000000u
#define PCI_ADDR_MASK 0x80fffffcu /* enable, bus, device, function, register; the rest reads 0 */

/* A function's configuration space. offset + width never crosses a width-aligned
 * boundary: the host splits unaligned accesses into bytes. */
struct pci_function_ops {
    uint32_t (*read)(void *dev, unsigned offset, unsigned width);
    void (*write)(void *dev, unsigned offset, unsigned width, uint32_t value);
};

struct pci_function {
    uint16_t bdf; /* bus << 8 | device << 3 | function */
    const struct pci_function_ops *ops;
    void *dev;
    const char *owner;
};

struct pci_host {
    uint32_t address; /* 0xCF8 */
    struct pci_function fn[PCI_HOST_MAX_FUNCTIONS]; /* fn[0] is the host bridge */
    unsigned nfn;
    uint8_t bridge[PCI_CONFIG_BYTES];
    const struct bus_ops *cf9_ops;
    void *cf9_dev;
    const char *vm_name;
};

#define PCI_BDF(b, d, f) ((uint16_t)((b) << 8 | (d) << 3 | (f)))

/* Resets the address register and the host bridge and registers 0xCF8-0xCFF. cf9_ops
 * (may be NULL: the byte then reads all-ones) handles byte accesses to 0xCF9 with
 * cf9_dev, e.g. &acpi_pm_rcr_ops. Returns 0 or a negative bus error. */
int pci_host_attach(struct pci_host *h, struct vm_bus *bus, const struct bus_ops *cf9_ops, void *cf9_dev,
                    const char *vm_name);

/* Puts a function at bus:device.function. Returns 0, or after logging why: -BUS_EINVAL
 * (no such address, or no handlers), -BUS_EOVERLAP (taken, 00:00.0 included),
 * -BUS_EFULL. */
int pci_host_add_function(struct pci_host *h, unsigned bus, unsigned device, unsigned function,
                          const struct pci_function_ops *ops, void *dev, const char *owner);

/* Bit d set: bus 0 has a function at device d other than the host bridge (00:00.0). */
uint32_t pci_host_slots(const struct pci_host *h);

/* A configuration access as through the data window, for other paths to config space
 * (an ECAM window later). Reads of absent functions give all-ones. */
uint32_t pci_host_config_read(struct pci_host *h, uint16_t bdf, unsigned offset, unsigned width);
void pci_host_config_write(struct pci_host *h, uint16_t bdf, unsigned offset, unsigned width, uint32_t value);

#endif
