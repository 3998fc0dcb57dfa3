/* Console line queues (console_buffer.h): a byte ring of records, each a fixed header
 * and the line's text, copied in and out under the queue's lock. */
#include "vmm/lib/console_buffer.h"
#include "vmm/lib/string.h"

struct record_header {
    uint64_t seq;
    uint32_t cpu;
    uint32_t lost_before;
    uint32_t len;
} __attribute__((packed));

STATIC_ASSERT(sizeof(struct record_header) == CONSOLE_RECORD_HEADER, "header size is part of the interface");

/* One counter for every queue: the drain order is the order lines were written in. */
static uint64_t next_seq = 1;

static uint64_t take_seq(void)
{
    return __atomic_fetch_add(&next_seq, 1, __ATOMIC_RELAXED);
}

void console_buffer_init(struct console_buffer *b, const char *name, void *storage, uint32_t size)
{
    memset(b, 0, sizeof(*b));
    b->name = name;
    b->ring = storage;
    b->size = size;
}

static void ring_copy_in(struct console_buffer *b, uint32_t at, const void *src, uint32_t n)
{
    const uint8_t *s = src;
    uint32_t off = at & (b->size - 1);
    uint32_t first = MIN(n, b->size - off);
    memcpy(b->ring + off, s, first);
    memcpy(b->ring, s + first, n - first);
}

static void ring_copy_out(const struct console_buffer *b, uint32_t at, void *dst, uint32_t n)
{
    uint8_t *d = dst;
    uint32_t off = at & (b->size - 1);
    uint32_t first = MIN(n, b->size - off);
    memcpy(d, b->ring + off, first);
    memcpy(d + first, b->ring, n - first);
}

uint32_t console_buffer_room(const struct console_buffer *b)
{
    return b->size - (b->head - b->tail);
}

bool console_buffer_put(struct console_buffer *b, uint32_t cpu, const char *text, size_t len)
{
    len = MIN(len, (size_t)CONSOLE_TEXT_MAX);
    uint32_t need = CONSOLE_RECORD_HEADER + (uint32_t)len;
    spin_lock(&b->lock);
    bool fits = console_buffer_room(b) >= need;
    if (fits) {
        struct record_header h = {.seq = take_seq(), .cpu = cpu, .lost_before = b->lost_pending, .len = (uint32_t)len};
        ring_copy_in(b, b->head, &h, sizeof(h));
        ring_copy_in(b, b->head + sizeof(h), text, (uint32_t)len);
        __atomic_store_n(&b->head, b->head + need, __ATOMIC_RELEASE);
        b->records++;
        b->lines++;
        b->lost_pending = 0;
    }
    spin_unlock(&b->lock);
    return fits;
}

void console_buffer_lose(struct console_buffer *b, uint32_t cpu, size_t len)
{
    spin_lock(&b->lock);
    if (!b->lost_pending) {
        b->lost_seq = take_seq();
        b->lost_cpu = cpu;
    }
    /* Saturates rather than wraps: a notice that says less than was lost is still true
     * as a lower bound, one that wrapped to a small number is not. */
    uint64_t pending = (uint64_t)b->lost_pending + len + 1;
    b->lost_pending = (uint32_t)MIN(pending, 0xffffffffull);
    b->lost_bytes += len + 1;
    b->lost_lines++;
    spin_unlock(&b->lock);
}

static bool head_locked(const struct console_buffer *b, uint64_t *seq)
{
    if (b->records) {
        struct record_header h;
        ring_copy_out(b, b->tail, &h, sizeof(h));
        *seq = h.seq;
        return true;
    }
    if (b->lost_pending) {
        *seq = b->lost_seq;
        return true;
    }
    return false;
}

bool console_buffer_head(struct console_buffer *b, uint64_t *seq)
{
    if (!console_buffer_pending(b))
        return false;
    spin_lock(&b->lock);
    bool any = head_locked(b, seq);
    spin_unlock(&b->lock);
    return any;
}

bool console_buffer_take(struct console_buffer *b, struct console_taken *out)
{
    spin_lock(&b->lock);
    bool any = true;
    if (b->records) {
        struct record_header h;
        ring_copy_out(b, b->tail, &h, sizeof(h));
        /* Only put writes records, so this holds; the clamp keeps a queue whose memory
         * was cleared under a reader from writing past out->text. */
        h.len = MIN(h.len, (uint32_t)CONSOLE_TEXT_MAX);
        out->seq = h.seq;
        out->cpu = h.cpu;
        out->lost_before = h.lost_before;
        out->len = h.len;
        ring_copy_out(b, b->tail + sizeof(h), out->text, h.len);
        __atomic_store_n(&b->tail, b->tail + CONSOLE_RECORD_HEADER + h.len, __ATOMIC_RELEASE);
        b->records--;
    } else if (b->lost_pending) {
        out->seq = b->lost_seq;
        out->cpu = b->lost_cpu;
        out->lost_before = b->lost_pending;
        out->len = 0;
        b->lost_pending = 0;
    } else {
        any = false;
    }
    spin_unlock(&b->lock);
    return any;
}

bool console_buffer_pending(const struct console_buffer *b)
{
    return __atomic_load_n(&b->records, __ATOMIC_RELAXED) || __atomic_load_n(&b->lost_pending, __ATOMIC_RELAXED);
}
