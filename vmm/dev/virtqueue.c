/* Split virtqueues, device side (the rules are in virtqueue.h). */
#include "vmm/dev/virtqueue.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
STATIC_ASSERT(sizeof(struct desc) == VIRTQ_DESC_BYTES, "a split-ring descriptor is 16 bytes");

/* The guest writes these while the device reads them: one load each, never torn. */
static uint16_t load16(const uint8_t *p)
{
    return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

static void store16(uint8_t *p, uint16_t v)
{
    __atomic_store_n((uint16_t *)p, v, __ATOMIC_RELEASE);
}

static bool power_of_two(uint32_t n)
{
    return n && !(n & (n - 1));
}

/* Records the first reason a queue broke (later ones follow from it) and gives false,
 * so a check reads `return broken(...)`. */
#define broken(q, ...) \
    ((q)->broken ? false : (ksnprintf((q)->why, sizeof((q)->why), __VA_ARGS__), (q)->broken = true, false))

void virtq_reset(struct virtq *q, uint16_t max_size, uint16_t no_vector)
{
    memset(q, 0, sizeof(*q));
    q->max_size = max_size;
    q->size = max_size;
    q->msix_vector = no_vector;
}

/* Where a ring of `bytes` at gpa lives, or NULL (reason in q->why). */
static uint8_t *ring_at(struct virtq *q, const struct dev_ram *ram, const char *what, uint64_t gpa, uint64_t bytes,
                        uint64_t align)
{
    if (gpa & (align - 1)) {
        broken(q, "%s at 0x%lx is not aligned as the ring needs", what, gpa);
        return NULL;
    }
    uint8_t *p = dev_ram_span(ram, gpa, bytes);
    if (!p)
        broken(q, "%s at 0x%lx (%lu bytes) is not inside the VM's RAM", what, gpa, bytes);
    return p;
}

bool virtq_enable(struct virtq *q, const struct dev_ram *ram)
{
    if (!power_of_two(q->size) || q->size > q->max_size)
        return broken(q, "queue size %u is not a power of two up to %u", q->size, q->max_size);
    q->ram = ram;
    q->desc = ring_at(q, ram, "descriptor table", q->desc_gpa, (uint64_t)q->size * VIRTQ_DESC_BYTES,
                      VIRTQ_DESC_ALIGN);
    q->avail = q->desc ? ring_at(q, ram, "available ring", q->avail_gpa, VIRTQ_AVAIL_BYTES(q->size),
                                 VIRTQ_AVAIL_ALIGN)
                       : NULL;
    q->used = q->avail ? ring_at(q, ram, "used ring", q->used_gpa, VIRTQ_USED_BYTES(q->size),
                                 VIRTQ_USED_ALIGN)
                       : NULL;
    if (!q->used)
        return false;
    q->last_avail = 0;
    q->used_idx = 0;
    q->enabled = true;
    return true;
}

static bool add_segment(struct virtq *q, struct virtq_chain *c, const struct desc *d, uint16_t index)
{
    bool write = d->flags & VIRTQ_DESC_F_WRITE;
    if (d->flags & VIRTQ_DESC_F_INDIRECT)
        return broken(q, "descriptor %u is indirect, which the device did not offer", index);
    if (!write && c->nwrite)
        return broken(q, "descriptor %u is device-readable after a device-writable one in chain %u", index,
                      c->head);
    if (d->len && d->addr + d->len < d->addr)
        return broken(q, "descriptor %u: address 0x%lx plus its length %u wraps", index, d->addr, d->len);
    uint8_t *p = d->len ? dev_ram_span(q->ram, d->addr, d->len) : NULL;
    if (d->len && !p)
        return broken(q, "descriptor %u: buffer at 0x%lx (%u bytes) is not wholly inside the VM's RAM",
                      index, d->addr, d->len);
    uint32_t *total = write ? &c->write_bytes : &c->read_bytes;
    if (d->len > UINT32_MAX - c->read_bytes - c->write_bytes)
        return broken(q, "chain %u holds more than 4 GiB - 1 bytes", c->head);
    *total += d->len;
    c->seg[c->nread + c->nwrite] = (struct virtq_seg){.hva = p, .len = d->len};
    if (write)
        c->nwrite++;
    else
        c->nread++;
    return true;
}

enum virtq_pop_result virtq_pop(struct virtq *q, struct virtq_chain *c)
{
    if (q->broken)
        return VIRTQ_BROKEN;
    if (!q->enabled)
        return VIRTQ_EMPTY;
    uint16_t avail_idx = load16(q->avail + 2);
    uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
    if (!pending)
        return VIRTQ_EMPTY;
    if (pending > q->size) {
        broken(q, "avail idx %u is more than the queue size %u ahead of the device (at %u)", avail_idx,
               q->size, q->last_avail);
        return VIRTQ_BROKEN;
    }
    uint16_t head = load16(q->avail + 4 + 2 * (q->last_avail & (q->size - 1)));
    if (head >= q->size) {
        broken(q, "avail ring offers head %u in a queue of %u", head, q->size);
        return VIRTQ_BROKEN;
    }
    c->head = head;
    c->nread = c->nwrite = 0;
    c->read_bytes = c->write_bytes = 0;
    uint16_t i = head;
    for (unsigned n = 0;; n++) {
        if (n == q->size) {
            broken(q, "chain %u is longer than the queue size %u (a loop)", head, q->size);
            return VIRTQ_BROKEN;
        }
        struct desc d;
        memcpy(&d, q->desc + (uint64_t)i * VIRTQ_DESC_BYTES, sizeof(d));
        /* Judged on the copy only: the guest may rewrite the table meanwhile. */
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        if (!add_segment(q, c, &d, i))
            return VIRTQ_BROKEN;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            break;
        if (d.next >= q->size) {
            broken(q, "descriptor %u links to %u, beyond the queue of %u", i, d.next, q->size);
            return VIRTQ_BROKEN;
        }
        i = d.next;
    }
    q->last_avail++;
    return VIRTQ_CHAIN;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
    if (!q->enabled || q->broken)
        return;
    uint8_t *elem = q->used + 4 + 8 * (uint64_t)(q->used_idx & (q->size - 1));
    uint32_t id = head;
    memcpy(elem, &id, 4);
    memcpy(elem + 4, &len, 4);
    q->used_idx++;
    /* The element is visible before the index that hands it over (release). */
    store16(q->used + 2, q->used_idx);
}

bool virtq_wants_interrupt(const struct virtq *q)
{
    return q->enabled && !(load16(q->avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

/* Copies between buf and the segments [first, first + n) starting at byte off. */
static uint32_t chain_copy(const struct virtq_chain *c, unsigned first, unsigned n, uint32_t off, uint8_t *buf,
                           uint32_t len, bool to_guest)
{
    uint32_t done = 0;
    for (unsigned s = first; s < first + n && done < len; s++) {
        const struct virtq_seg *g = &c->seg[s];
        if (off >= g->len) {
            off -= g->len;
            continue;
        }
        uint32_t k = MIN(g->len - off, len - done);
        if (to_guest)
            memcpy(g->hva + off, buf + done, k);
        else
            memcpy(buf + done, g->hva + off, k);
        done += k;
        off = 0;
    }
    return done;
}

uint32_t virtq_chain_read(const struct virtq_chain *c, uint32_t off, void *buf, uint32_t len)
{
    return chain_copy(c, 0, c->nread, off, buf, len, false);
}

uint32_t virtq_chain_write(const struct virtq_chain *c, uint32_t off, const void *buf, uint32_t len)
{
    return chain_copy(c, c->nread, c->nwrite, off, (uint8_t *)buf, len, true);
}
