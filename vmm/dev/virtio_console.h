/* virtio-console (virtio 1.1, 5.3) over the PCI transport: one port (no MULTIPORT, no
 * SIZE, no EMERG_WRITE), queue 0 receiveq, queue 1 transmitq. What the guest transmits
 * becomes console lines under the VM's name, as its UART's output does, through a line
 * of its own (so the two never splice into one line). Keel has no input for a VM yet:
 * receive buffers stay with the device, unused. */
#ifndef KEEL_VMM_DEV_VIRTIO_CONSOLE_H
#define KEEL_VMM_DEV_VIRTIO_CONSOLE_H

#include "vmm/lib/types.h"
#include "vmm/dev/console.h"
#include "vmm/dev/virtio_pci.h"

#define VIRTIO_CONSOLE_QUEUE_SIZE 64
#define VIRTIO_CONSOLE_RX 0
#define VIRTIO_CONSOLE_TX 1
#define VIRTIO_CONSOLE_CFG_LEN 12 /* cols, rows, max_nr_ports, emerg_wr: all 0 here */

struct virtio_console {
    struct virtio_pci vp;
    struct vm_console out;
    uint64_t bytes_out;
};

/* The console as function 00:slot.0, its lines named vm_name. False when the
 * transport could not be set up. */
bool virtio_console_init(struct virtio_console *c, unsigned slot, struct vm_bus *bus, const struct irq_sink *irq,
                         const struct msi_sink *msi, const struct dev_ram *ram, const char *vm_name);

#endif
