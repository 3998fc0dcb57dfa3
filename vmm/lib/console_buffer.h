/* A queue of whole console lines from one source (Keel itself, or one VM), waiting for
 * the physical console. Lines go in whole or not at all, so whoever drains the queues
 * can send one line at a time and lines of different sources never mix. Every line
 * gets a number from one counter shared by all queues: draining the lowest number
 * first keeps the order in which lines were written across sources. A line that finds
 * no room is counted as lost; the next line that fits carries the count, so the loss
 * shows in the stream where it happened. */
#ifndef KEEL_VMM_CONSOLE_BUFFER_H
#define KEEL_VMM_CONSOLE_BUFFER_H

#include "vmm/lib/types.h"
#include "vmm/lib/spinlock.h"

/* The longest line a queue takes (its source's name and text, no CPU prefix). */
#define CONSOLE_TEXT_MAX 256

struct console_buffer {
    spinlock_t lock;
    const char *name; /* whose lines: the loss notice names it */
    uint8_t *ring;
    uint32_t size;       /* a power of two */
    uint32_t head, tail; /* free-running byte counts: [tail, head) holds records */
    uint32_t records;    /* lines queued */
    uint32_t lost_pending;  /* bytes lost since the last line that fitted */
    uint32_t lost_cpu;      /* where the first of them was written */
    uint64_t lost_seq;      /* and when */
    uint64_t lines;         /* lines queued since the start */
    uint64_t lost_bytes;    /* bytes (with their newlines) that found no room */
    uint64_t lost_lines;
    bool drained; /* console_add_source took it */
};

/* A line taken out of a queue. len 0 with lost_before > 0: only the loss is left to
 * report (nothing fitted after it). */
struct console_taken {
    uint64_t seq;
    uint32_t cpu;
    uint32_t lost_before; /* bytes lost just before this line */
    uint32_t len;
    char text[CONSOLE_TEXT_MAX];
};

/* `size` must be a power of two, at least 64 bytes. */
void console_buffer_init(struct console_buffer *b, const char *name, void *storage, uint32_t size);

/* Queues one line (len <= CONSOLE_TEXT_MAX, cut otherwise) written on `cpu`. false when
 * it does not fit; nothing is counted then (the caller decides: wait, or drop). */
bool console_buffer_put(struct console_buffer *b, uint32_t cpu, const char *text, size_t len);
/* Counts a line of `len` characters (and its newline) as lost. */
void console_buffer_lose(struct console_buffer *b, uint32_t cpu, size_t len);

/* The number of the oldest thing waiting (a line, or a trailing loss); false when
 * nothing is. */
bool console_buffer_head(struct console_buffer *b, uint64_t *seq);
/* Takes the oldest line (or the trailing loss); false when nothing is waiting. */
bool console_buffer_take(struct console_buffer *b, struct console_taken *out);
/* Bytes free for records (a line of n characters needs n + CONSOLE_RECORD_HEADER). */
uint32_t console_buffer_room(const struct console_buffer *b);
#define CONSOLE_RECORD_HEADER 20u
/* Whether anything (a line, or a loss to report) is waiting; no lock, a hint. */
bool console_buffer_pending(const struct console_buffer *b);

#endif
