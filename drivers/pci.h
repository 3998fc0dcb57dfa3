/* PCI configuration space access and bus enumeration. ECAM (memory-mapped, from the
 * ACPI MCFG table) when the firmware describes it, else configuration mechanism #1
 * (ports 0xCF8/0xCFC, segment 0 only, first 256 bytes only). */
#ifndef KEEL_DRIVERS_PCI_H
#define KEEL_DRIVERS_PCI_H

#include "vmm/lib/types.h"
#include "drivers/acpi.h"

#define PCI_MAX_DEVICES 256
#define PCI_CONFIG_SIZE 256     /* legacy config space */
#define PCI_ECAM_CONFIG_SIZE 4096 /* extended config space */

/* Standard header offsets */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_PROG_IF 0x09
#define PCI_SUBCLASS 0x0a
#define PCI_CLASS 0x0b
#define PCI_HEADER_TYPE 0x0e
#define PCI_HEADER_MULTIFUNCTION 0x80

#define PCI_VENDOR_NONE 0xffff

struct pci_addr {
    uint16_t seg;
    uint8_t bus;
    uint8_t dev; /* 0..31 */
    uint8_t fn;  /* 0..7 */
};

struct pci_device {
    struct pci_addr addr;
    uint16_t vendor, device;
    uint8_t class_code, subclass, prog_if, revision;
    uint8_t header_type; /* without the multi-function bit */
    bool multifunction;
};

/* Chooses the access method: ECAM windows from the MCFG (each mapped uncached with
 * paging_map_mmio() first), else ports. `acpi` may be NULL. */
void pci_init(const struct acpi_info *acpi);
bool pci_using_ecam(void);

/* Config space access. Reads of a function that is absent, an offset outside the
 * reachable config space, or a misaligned offset return all ones; such writes are
 * dropped. */
uint8_t pci_read8(struct pci_addr a, uint16_t off);
uint16_t pci_read16(struct pci_addr a, uint16_t off);
uint32_t pci_read32(struct pci_addr a, uint16_t off);
void pci_write8(struct pci_addr a, uint16_t off, uint8_t v);
void pci_write16(struct pci_addr a, uint16_t off, uint16_t v);
void pci_write32(struct pci_addr a, uint16_t off, uint32_t v);

/* Scans every bus of every segment, records the functions found, logs each as
 * "PCI: 0000:00:1f.2 8086:2922 class 01.06.01" and then "PCI: N devices".
 * Returns N (which may exceed PCI_MAX_DEVICES; only that many are kept). */
size_t pci_enumerate(void);
size_t pci_device_count(void); /* devices kept */
const struct pci_device *pci_device_at(size_t i);
/* First kept device with this class/subclass at index >= *cursor; advances *cursor. */
const struct pci_device *pci_find_class(uint8_t class_code, uint8_t subclass, size_t *cursor);

/* Pure decoding helpers (host-tested). */
static inline uint64_t pci_ecam_offset(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
    return ((uint64_t)bus << 20) | ((uint64_t)(dev & 31) << 15) | ((uint64_t)(fn & 7) << 12) |
           (off & 0xfff);
}

static inline uint32_t pci_cf8_address(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
    return 0x80000000u | ((uint32_t)bus << 16) | ((uint32_t)(dev & 31) << 11) |
           ((uint32_t)(fn & 7) << 8) | (off & 0xfc);
}

/* Fills *d from the first 16 bytes of a function's config header (dwords 0-3). */
void pci_decode_header(struct pci_addr a, const uint32_t hdr[4], struct pci_device *d);

#endif
