/* Fuzzes a virtio-blk device (vmm/dev/virtio_blk.c) over the PCI transport
 * (vmm/dev/virtio_pci.c) and its split virtqueue (vmm/dev/virtqueue.c) with a guest RAM
 * whose every byte, rings and requests included, the input chooses.
 *
 * Input: byte 0: queue size 2^(b mod 10) (sizes above the device's maximum and 512 are
 * refused); bytes 1-12: the descriptor table, available and used ring addresses, three
 * little-endian 32-bit values masked to 17 bits (so half of them lie outside the 64 KiB
 * RAM); byte 13: how many notifications (1-4) and whether the disk is read-only (bit 7);
 * the rest: the RAM's first bytes (the remainder is zero).
 *
 * The driver side resets the device, negotiates VERSION_1 and the offered features, sets
 * up queue 0, sets DRIVER_OK and notifies. Must hold: nothing read or written outside
 * the RAM and the disk (exact-size allocations, ASan); a read-only disk never changes;
 * the device either needs a reset or returned every chain it took (used idx = chains
 * taken); at most one line is logged per input (the needs-reset reason).
 * SOURCES: vmm/dev/virtio_blk.c vmm/dev/virtio_pci.c vmm/dev/virtqueue.c vmm/dev/pci_endpoint.c vmm/dev/pci_host.c vmm/dev/bus.c vmm/lib/string.c vmm/lib/printf.c tests/fuzz/console_sink.c
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/console_sink.h"
#include "vmm/dev/virtio_blk.h"

#define RAM_BYTES 0x10000u
#define DISK_BYTES 0x4000u
#define HEADER 14

static struct virtio_blk blk;
static const struct irq_sink no_irq;

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr(unsigned off, unsigned width, uint64_t v)
{
    struct bus_result r = virtio_pci_bar_ops.write(&blk.vp, off, width, v);
    FUZZ_CHECK(bus_action(r) == BUS_DONE, "a register write stopped the VM");
}

static uint64_t rd(unsigned off, unsigned width)
{
    uint64_t v = 0;
    virtio_pci_bar_ops.read(&blk.vp, off, width, &v);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HEADER)
        return 0;
    sink_reset();
    uint8_t *ram = calloc(1, RAM_BYTES);
    uint8_t *disk = malloc(DISK_BYTES), *orig = malloc(DISK_BYTES);
    for (unsigned i = 0; i < DISK_BYTES; i++)
        disk[i] = orig[i] = (uint8_t)(i * 13);
    memcpy(ram, data + HEADER, size - HEADER < RAM_BYTES ? size - HEADER : RAM_BYTES);
    struct dev_ram dram = {.hva = ram, .size = RAM_BYTES};
    bool readonly = data[13] & 0x80;
    FUZZ_CHECK(virtio_blk_init(&blk, disk, DISK_BYTES, readonly, 1, NULL, &no_irq, NULL, &dram, "fuzz"),
               "virtio-blk refused");

    const unsigned c = VIRTIO_PCI_COMMON_OFF;
    wr(c + VIRTIO_COMMON_STATUS, 1, 0);
    wr(c + VIRTIO_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    for (unsigned half = 0; half < 2; half++) {
        wr(c + VIRTIO_COMMON_DFSELECT, 4, half);
        uint64_t f = rd(c + VIRTIO_COMMON_DF, 4);
        wr(c + VIRTIO_COMMON_GFSELECT, 4, half);
        wr(c + VIRTIO_COMMON_GF, 4, f);
    }
    wr(c + VIRTIO_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    FUZZ_CHECK(rd(c + VIRTIO_COMMON_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK, "offered features refused");
    wr(c + VIRTIO_COMMON_Q_SELECT, 2, 0);
    wr(c + VIRTIO_COMMON_Q_SIZE, 2, 1u << (data[0] % 10));
    wr(c + VIRTIO_COMMON_Q_DESCLO, 8, le32(data + 1) & 0x1ffff);
    wr(c + VIRTIO_COMMON_Q_AVAILLO, 8, le32(data + 5) & 0x1ffff);
    wr(c + VIRTIO_COMMON_Q_USEDLO, 8, le32(data + 9) & 0x1ffff);
    wr(c + VIRTIO_COMMON_Q_ENABLE, 2, 1);
    wr(c + VIRTIO_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
                                         VIRTIO_STATUS_DRIVER_OK);
    unsigned kicks = 1 + (data[13] & 3);
    for (unsigned k = 0; k < kicks; k++)
        wr(VIRTIO_PCI_NOTIFY_OFF, 2, 0);

    const struct virtq *q = &blk.vp.vq[0];
    bool needs_reset = rd(c + VIRTIO_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET;
    FUZZ_CHECK(needs_reset || q->used_idx == q->last_avail, "took %u chains, returned %u", q->last_avail,
               q->used_idx);
    FUZZ_CHECK(needs_reset == (sink_lines() == 1), "%u lines logged, needs reset %d", sink_lines(), needs_reset);
    FUZZ_CHECK(!readonly || !memcmp(disk, orig, DISK_BYTES), "a read-only disk changed");
    free(ram);
    free(disk);
    free(orig);
    return 0;
}
