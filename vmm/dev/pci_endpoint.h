/* A PCI endpoint function on the VM's host bridge (pci_host.h): its type-0
 * configuration header, the capability list, memory BARs the guest can size and move,
 * INTx, and MSI-X (table and PBA in a BAR of its own).
 *
 * BARs are 32-bit, non-prefetchable memory BARs whose size is a power of two of at least
 * 4 KiB. Writing all-ones reads back the size mask; a BAR's range is on the VM's bus
 * exactly while the command register's memory enable is set and the BAR holds an
 * address (not 0, not the sizing pattern): every change of either adds, moves or
 * removes it. A BAR moved onto another device's range stays unmapped (the bus logs the
 * overlap), as two decoders claiming one address would conflict on a real bus.
 *
 * Keel is the VM's firmware, so pci_ep_plug sets what a BIOS would: the BARs at
 * addresses in the PCI window (PCI_MMIO_WINDOW_*), the interrupt line to the IRQ the
 * board wires INTA# to, and memory decoding on.
 *
 * INTx: pci_ep_set_intx drives the function's INTA# level (status bit 3), gated by
 * the command register's interrupt disable, onto the VM's irq_sink line (a level
 * interrupt: the IOAPIC pin must be programmed level-triggered, as ACPI's _PRT says).
 *
 * MSI-X (PCI Local Bus 3.0, 6.8.2): control (enable, function mask), table entries
 * (address, data, per-vector mask) and the pending bits; a vector raised while masked
 * becomes pending and is sent when unmasked. Messages go to the msi_sink.
 *
 * Locking: none of its own; the caller serialises config accesses, BAR accesses and
 * interrupts (the VM's platform lock). */
#ifndef KEEL_VMM_DEV_PCI_ENDPOINT_H
#define KEEL_VMM_DEV_PCI_ENDPOINT_H

#include "vmm/lib/types.h"
#include "vmm/dev/bus.h"
#include "vmm/dev/irq.h"
#include "vmm/dev/pci_host.h"

/* Where the board decodes PCI memory (below the IOAPIC), as the DSDT's PCI0._CRS says. */
#define PCI_MMIO_WINDOW_BASE 0xe0000000ull
#define PCI_MMIO_WINDOW_END 0xfec00000ull /* exclusive */
/* Where the firmware (Keel) starts placing BARs. */
#define PCI_BAR_ALLOC_BASE 0xfe000000ull

/* INTA# of device (slot) d reaches this IRQ (PIC input and IOAPIC pin alike): the
 * board's swizzle, which the DSDT's _PRT repeats. */
#define PCI_INTX_IRQ(d) (((d) & 1) ? 11u : 10u)

#define PCI_MAX_BARS 6
#define PCI_MSIX_MAX_VECTORS 16
#define PCI_MSIX_NO_VECTOR 0xffff

/* Config space offsets (PCI Local Bus 3.0, 6.1). */
#define PCI_CFG_COMMAND 0x04
#define PCI_CFG_STATUS 0x06
#define PCI_CFG_BAR0 0x10
#define PCI_CFG_CAP_PTR 0x34
#define PCI_CFG_INT_LINE 0x3c
#define PCI_CFG_INT_PIN 0x3d
#define PCI_CMD_MEMORY BIT(1)
#define PCI_CMD_MASTER BIT(2)
#define PCI_CMD_INTX_DISABLE BIT(10)
#define PCI_STATUS_INTX BIT(3)
#define PCI_STATUS_CAPS BIT(4)
#define PCI_CAP_ID_VENDOR 0x09
#define PCI_CAP_ID_MSIX 0x11
#define PCI_MSIX_CTRL_ENABLE BIT(15)
#define PCI_MSIX_CTRL_MASK_ALL BIT(14)
#define PCI_MSIX_ENTRY_MASKED 1u
#define PCI_MSIX_PBA_OFFSET 0x800 /* in the MSI-X BAR; the table is at 0 */

/* Where an MSI message goes: address and data as the function wrote them. */
struct msi_sink {
    void (*send)(void *ctx, uint64_t address, uint32_t data);
    void *ctx;
};

struct pci_endpoint_ids {
    uint16_t vendor, device;
    uint8_t revision;
    uint32_t class_code; /* class << 16 | subclass << 8 | prog-if */
    uint16_t subsys_vendor, subsys;
};

struct pci_bar {
    uint64_t size; /* 0: no BAR */
    uint32_t value; /* what the guest wrote (address bits) */
    int range_id;   /* on the bus, > 0; 0: not mapped */
    uint64_t mapped_at;
    const struct bus_ops *ops;
    void *dev;
    const char *owner;
};

struct pci_msix_entry {
    uint32_t addr_lo, addr_hi, data, ctrl;
};

struct pci_endpoint {
    uint8_t cfg[PCI_CONFIG_BYTES];
    uint8_t wmask[PCI_CONFIG_BYTES]; /* bits the guest may write in plain registers */
    uint8_t cap_end; /* next free byte for a capability */
    uint8_t last_cap; /* offset of the last capability, 0: none */
    unsigned slot;
    struct pci_bar bar[PCI_MAX_BARS];
    struct vm_bus *bus;
    const struct irq_sink *irq;
    unsigned irq_line;
    bool intx_level;
    const struct msi_sink *msi;
    /* MSI-X */
    uint8_t msix_cap; /* 0: none */
    unsigned msix_bar, msix_vectors;
    struct pci_msix_entry msix[PCI_MSIX_MAX_VECTORS];
    uint32_t msix_pending; /* bit per vector */
    const char *name;    /* "virtio-blk": messages */
    const char *vm_name;
};

/* Fills the header with ids, INTA# wired to PCI_INTX_IRQ(slot), no BARs and no
 * capabilities yet. */
void pci_ep_init(struct pci_endpoint *d, const struct pci_endpoint_ids *ids, unsigned slot, struct vm_bus *bus,
                     const struct irq_sink *irq, const struct msi_sink *msi, const char *name, const char *vm_name);

/* A capability of len bytes (the id and next pointer included) with the given id;
 * returns its offset in config space (its bytes read back as set with
 * pci_ep_cfg_set, read-only to the guest), or 0 when the space is full. */
unsigned pci_ep_add_cap(struct pci_endpoint *d, uint8_t id, unsigned len);

/* Sets bytes of config space as the device presents them (little-endian). */
void pci_ep_cfg_set(struct pci_endpoint *d, unsigned offset, unsigned width, uint32_t value);

/* A memory BAR of size bytes (a power of two, >= 4 KiB) whose accesses go to ops/dev.
 * False when index or size is bad. */
bool pci_ep_add_bar(struct pci_endpoint *d, unsigned index, uint64_t size, const struct bus_ops *ops, void *dev,
                        const char *owner);

/* MSI-X with `vectors` entries (1..PCI_MSIX_MAX_VECTORS), its table and PBA in BAR
 * `bar` (which this adds, 4 KiB). False on bad arguments or no room. */
bool pci_ep_add_msix(struct pci_endpoint *d, unsigned bar, unsigned vectors);

/* What firmware would leave: BARs placed from *next_base upward (each aligned to its
 * size; *next_base advances), memory decoding on, then the function is put on the host
 * bridge at 00:slot.0. False (logged) when it does not fit or the slot is taken. */
bool pci_ep_plug(struct pci_endpoint *d, struct pci_host *host, uint64_t *next_base);

/* Whether MSI-X is enabled (the guest chose it over INTx). */
bool pci_ep_msix_enabled(const struct pci_endpoint *d);
/* Raises MSI-X vector v (PCI_MSIX_NO_VECTOR or beyond the table: nothing). */
void pci_ep_msix_notify(struct pci_endpoint *d, unsigned v);
/* Drives INTA#. */
void pci_ep_set_intx(struct pci_endpoint *d, bool level);

/* Config space as the host bridge calls it (struct pci_function_ops). */
extern const struct pci_function_ops pci_ep_cfg_ops;

#endif
