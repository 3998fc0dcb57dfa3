/* The virtio over PCI modern transport (virtio 1.1, 4.1), as a PCI function
 * (pci_endpoint.h) that a device model (virtio-blk, virtio-console) plugs into.
 *
 * The function is 1AF4:1040+id, revision 1 (a modern-only device, so drivers need
 * VIRTIO_F_VERSION_1, which it requires). BAR 0 (16 KiB) holds the four structures its
 * vendor capabilities point at, each at the start of a 4 KiB page:
 *     0x0000 common configuration (4.1.4.3)
 *     0x1000 ISR status (one byte; reading it clears it and lowers INTA#)
 *     0x2000 device-specific configuration (the device model's)
 *     0x3000 notifications: queue q at 0x3000 + 4 * q (notify_off_multiplier 4,
 *            queue_notify_off = q)
 * BAR 1 (4 KiB) holds the MSI-X table and PBA, one vector per queue plus one for
 * configuration changes. The VIRTIO_PCI_CAP_PCI_CFG window is not offered (drivers
 * that need it: none that Keel runs).
 *
 * Common configuration fields are accessed at their natural width (64-bit ones also
 * as two 32-bit halves), as 4.1.3.1 requires; other widths read the bytes they cover
 * and are dropped when written, logged once per device. A queue is set up while
 * disabled; queue_enable = 1 checks it (virtqueue.h); FEATURES_OK is refused (reads
 * back clear) for features the device did not offer or without VERSION_1. Buffer
 * notifications are acted on once DRIVER_OK is set (and every queue is looked at then).
 * A malformed queue sets DEVICE_NEEDS_RESET, logs its reason once and raises a
 * configuration-change interrupt; the device then does nothing until reset (status 0).
 *
 * Interrupts: MSI-X when the guest enabled it (the queue's or the config vector),
 * else the ISR bit (1: queue, 2: config) and INTA#, held until the ISR is read.
 *
 * Locking: the caller's, as for pci_endpoint.h; device models run inside these calls. */
#ifndef KEEL_VMM_DEV_VIRTIO_PCI_H
#define KEEL_VMM_DEV_VIRTIO_PCI_H

#include "vmm/lib/types.h"
#include "vmm/dev/dev_ram.h"
#include "vmm/dev/pci_endpoint.h"
#include "vmm/dev/virtqueue.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define VIRTIO_PCI_REVISION 1
#define VIRTIO_PCI_SUBSYS 0x1100
#define VIRTIO_MAX_QUEUES 2

#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3

/* device_status bits (2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

#define VIRTIO_F_VERSION_1 BIT(32)

/* Vendor capability cfg_type values (4.1.4) */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4

/* BAR 0 layout */
#define VIRTIO_PCI_BAR 0
#define VIRTIO_PCI_MSIX_BAR 1
#define VIRTIO_PCI_BAR_SIZE 0x4000u
#define VIRTIO_PCI_COMMON_OFF 0x0000u
#define VIRTIO_PCI_ISR_OFF 0x1000u
#define VIRTIO_PCI_DEVICE_OFF 0x2000u
#define VIRTIO_PCI_NOTIFY_OFF 0x3000u
#define VIRTIO_PCI_REGION_SIZE 0x1000u
#define VIRTIO_PCI_NOTIFY_MULTIPLIER 4u

/* Common configuration offsets (4.1.4.3) */
#define VIRTIO_COMMON_DFSELECT 0x00
#define VIRTIO_COMMON_DF 0x04
#define VIRTIO_COMMON_GFSELECT 0x08
#define VIRTIO_COMMON_GF 0x0c
#define VIRTIO_COMMON_MSIX 0x10
#define VIRTIO_COMMON_NUMQ 0x12
#define VIRTIO_COMMON_STATUS 0x14
#define VIRTIO_COMMON_CFGGEN 0x15
#define VIRTIO_COMMON_Q_SELECT 0x16
#define VIRTIO_COMMON_Q_SIZE 0x18
#define VIRTIO_COMMON_Q_MSIX 0x1a
#define VIRTIO_COMMON_Q_ENABLE 0x1c
#define VIRTIO_COMMON_Q_NOFF 0x1e
#define VIRTIO_COMMON_Q_DESCLO 0x20
#define VIRTIO_COMMON_Q_DESCHI 0x24
#define VIRTIO_COMMON_Q_AVAILLO 0x28
#define VIRTIO_COMMON_Q_AVAILHI 0x2c
#define VIRTIO_COMMON_Q_USEDLO 0x30
#define VIRTIO_COMMON_Q_USEDHI 0x34
#define VIRTIO_COMMON_SIZE 0x40 /* up to queue_reset (1.2), which reads 0 */

struct virtio_pci;

/* What a device model gives the transport. */
struct virtio_device_ops {
    uint16_t device_id; /* VIRTIO_ID_* */
    const char *name;   /* "virtio-blk": the function's owner in messages */
    uint32_t class_code;
    uint16_t queues;     /* 1..VIRTIO_MAX_QUEUES */
    uint16_t queue_size; /* each queue's maximum, a power of two up to VIRTQ_MAX_SIZE */
    uint32_t config_len; /* bytes of device configuration, up to VIRTIO_PCI_REGION_SIZE */
    /* Device-specific configuration, offset + width inside config_len. */
    uint32_t (*config_read)(void *dev, unsigned offset, unsigned width);
    /* Queue q has new buffers (DRIVER_OK is set and the device is not broken). */
    void (*notify)(void *dev, struct virtio_pci *vp, unsigned q);
};

struct virtio_pci {
    struct pci_endpoint pci;
    const struct virtio_device_ops *ops;
    void *dev;
    struct dev_ram ram;
    uint64_t device_features; /* VERSION_1 and the model's */
    uint64_t driver_features;
    uint32_t dfselect, gfselect;
    uint16_t msix_config, queue_select;
    uint8_t status, config_generation, isr;
    bool logged_width, logged_config_write, logged_broken;
    struct virtq vq[VIRTIO_MAX_QUEUES];
    struct virtq_chain chain; /* scratch for the model's virtq_pop */
};

/* Sets up the function at 00:slot.0 (not yet on the host bridge: pci_ep_plug).
 * features: the model's feature bits (VERSION_1 is added). False on bad ops. */
bool virtio_pci_init(struct virtio_pci *vp, const struct virtio_device_ops *ops, void *dev, uint64_t features,
                     unsigned slot, struct vm_bus *bus, const struct irq_sink *irq, const struct msi_sink *msi,
                     const struct dev_ram *ram, const char *vm_name);

/* For device models, after pushing used buffers to queue q: interrupts the driver
 * unless it asked not to be. */
void virtio_pci_queue_done(struct virtio_pci *vp, unsigned q);
/* For device models: queue q (or a request on it) is malformed; why says how. The
 * device needs a reset. */
void virtio_pci_queue_broken(struct virtio_pci *vp, unsigned q, const char *why);
/* Whether the device is running: DRIVER_OK set, NEEDS_RESET not. */
bool virtio_pci_live(const struct virtio_pci *vp);

/* The BAR 0 handlers (for tests that call them directly; the bus calls them). */
extern const struct bus_ops virtio_pci_bar_ops;

#endif
