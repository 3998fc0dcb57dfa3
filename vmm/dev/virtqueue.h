/* Split virtqueues (virtio 1.1, 2.6) from the device's side, with every guest-supplied
 * value checked before use. The guest owns the rings and may rewrite them while the
 * device reads them, so each descriptor is copied out once and judged on the copy.
 *
 * A queue is broken, and the device must be reset, when the driver:
 *   - places a ring outside RAM or misaligned, or gives a size that is not a power of
 *     two up to the device's maximum (at queue enable);
 *   - moves avail->idx further than the queue size ahead of what the device consumed;
 *   - offers a head or a `next` index at or beyond the queue size;
 *   - makes a chain longer than the queue size (a loop), or one whose bytes add past
 *     4 GiB - 1 (what used.len can say);
 *   - gives a buffer whose address + length wraps or leaves RAM;
 *   - puts a device-readable descriptor after a device-writable one (2.6.4.2);
 *   - uses VIRTQ_DESC_F_INDIRECT, which Keel's devices do not offer.
 * The reason is put in the queue's `why`, formatted once; the caller logs it and sets
 * DEVICE_NEEDS_RESET. Nothing outside RAM is ever read or written: a chain is a list of
 * host pointers made by dev_ram_span.
 *
 * Not modelled: VIRTIO_F_EVENT_IDX (not offered), packed rings (not offered). */
#ifndef KEEL_VMM_DEV_VIRTQUEUE_H
#define KEEL_VMM_DEV_VIRTQUEUE_H

#include "vmm/lib/types.h"
#include "vmm/dev/dev_ram.h"

#define VIRTQ_MAX_SIZE 256

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

#define VIRTQ_DESC_BYTES 16
#define VIRTQ_DESC_ALIGN 16
#define VIRTQ_AVAIL_ALIGN 2
#define VIRTQ_USED_ALIGN 4
#define VIRTQ_AVAIL_BYTES(n) (6ull + 2ull * (n)) /* flags, idx, ring[n], used_event */
#define VIRTQ_USED_BYTES(n) (6ull + 8ull * (n))  /* flags, idx, ring[n] of {id, len}, avail_event */

#define VIRTQ_WHY_MAX 128

/* One buffer of a chain, inside guest RAM. */
struct virtq_seg {
    uint8_t *hva;
    uint32_t len;
};

/* A descriptor chain: the device-readable segments first, then the writable ones. */
struct virtq_chain {
    uint16_t head;
    uint16_t nread, nwrite;
    uint32_t read_bytes, write_bytes;
    struct virtq_seg seg[VIRTQ_MAX_SIZE];
};

struct virtq {
    /* What the driver programs through the transport; checked at enable. */
    uint16_t size;
    uint16_t max_size; /* the device's: a power of two up to VIRTQ_MAX_SIZE */
    uint16_t msix_vector;
    bool enabled;
    bool broken;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    /* Set by virtq_enable. */
    const struct dev_ram *ram;
    uint8_t *desc, *avail, *used;
    uint16_t last_avail; /* next avail ring slot the device takes */
    uint16_t used_idx;   /* the device's copy of used->idx */
    char why[VIRTQ_WHY_MAX];
};

enum virtq_pop_result {
    VIRTQ_EMPTY = 0,
    VIRTQ_CHAIN,
    VIRTQ_BROKEN, /* q->why says why; the queue stays broken until virtq_reset */
};

/* Back to the state after a device reset: disabled, size = max_size, addresses 0. */
void virtq_reset(struct virtq *q, uint16_t max_size, uint16_t no_vector);

/* Checks the driver's size and ring addresses against ram and makes the queue live.
 * False, with q->why set and the queue broken, when they are unusable. */
bool virtq_enable(struct virtq *q, const struct dev_ram *ram);

/* Takes the next available chain into *c. */
enum virtq_pop_result virtq_pop(struct virtq *q, struct virtq_chain *c);

/* Returns a chain to the driver with `len` bytes written into its writable buffers. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);

/* Whether the driver wants an interrupt for used buffers (VIRTQ_AVAIL_F_NO_INTERRUPT
 * clear). */
bool virtq_wants_interrupt(const struct virtq *q);

/* Copies up to len bytes at byte `off` of the chain's readable part; returns the count. */
uint32_t virtq_chain_read(const struct virtq_chain *c, uint32_t off, void *buf, uint32_t len);
/* Copies up to len bytes to byte `off` of the chain's writable part; returns the count. */
uint32_t virtq_chain_write(const struct virtq_chain *c, uint32_t off, const void *buf, uint32_t len);

#endif
