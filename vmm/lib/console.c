/* Line assembly, the queues' drain and the console lock; the sinks are the platform's
 * (console.h). Formatting lives in printf.c, the queues in console_buffer.c. */
#include "vmm/lib/console.h"
#include "vmm/lib/spinlock.h"
#include "vmm/lib/string.h"
#include "vmm/lib/uart_rate.h"

#define NO_OWNER 0xffffffffu
/* Keel's queue, and one for each VM with room for VMs made again after a reset. */
#define MAX_SOURCES 48
/* Keel's own lines wait here; when it is full the writer waits, so make it big enough
 * for bursts (a VM's report, a statistics dump) to pass without waiting. */
#define KEEL_QUEUE_SIZE (64u * 1024)
/* A CPU that must send what is queued (flush, emergency) waits at most this many
 * polls for the CPU sending a line: one that died holding it must not hang the rest. */
#define DRAIN_WAIT_LIMIT 100000000u

static const struct console_platform *platform;
static spinlock_t console_lock = SPINLOCK_INIT;
static volatile uint32_t console_owner = NO_OWNER;
static uint32_t sinks;
static uint32_t com1_baud = UART_BASE_BAUD;

/* Before per-CPU state exists (early boot) everything is CPU 0's. */
static struct console_line early_line;

static volatile bool queueing;
static uint8_t keel_storage[KEEL_QUEUE_SIZE];
static struct console_buffer keel_queue;
static struct console_buffer *sources[MAX_SOURCES];
static volatile uint32_t source_count;
static spinlock_t sources_lock = SPINLOCK_INIT;

/* The line on its way to the sinks. One at a time, and only the holder of drain_lock
 * touches it: that is what keeps lines whole. */
static spinlock_t drain_lock = SPINLOCK_INIT;
static volatile uint32_t drain_owner = NO_OWNER;
static struct {
    char text[2 * (CONSOLE_TEXT_MAX + 64)]; /* a loss notice and the line after it */
    size_t len, off;
} out;
static struct console_taken taken;

/* Set after anything is queued (or lost), cleared by the drain once every queue was
 * found empty: the cheap "is there work" test for every caller of console_service,
 * which sits on the scheduler's paths. A writer queues first and sets it after; the
 * drain clears it first and looks after, so no line is left unseen. */
static volatile uint32_t dirty;

static void (*input_handler)(char c);
static spinlock_t input_lock = SPINLOCK_INIT;

void console_set_platform(const struct console_platform *p)
{
    platform = p;
}

void console_init(uint32_t want, uint32_t baud)
{
    sinks = 0;
    com1_baud = baud;
    console_enable(want);
}

void console_enable(uint32_t want)
{
    if (platform)
        sinks |= platform->open(want, com1_baud);
}

uint32_t console_sinks(void)
{
    return sinks;
}

static void sink_write(const char *s, size_t n)
{
    if (platform && sinks)
        platform->write(sinks, s, n);
}

static struct console_line *this_line(uint32_t *cpu)
{
    struct console_line *l = platform ? platform->this_line(cpu) : NULL;
    if (!l) {
        *cpu = 0;
        l = &early_line;
    }
    return l;
}

static uint32_t current_cpu_id(void)
{
    uint32_t cpu;
    this_line(&cpu);
    return cpu;
}

/* A line straight to the sinks, waiting on them. */
static void direct_line(uint32_t cpu, const char *text, size_t n)
{
    char prefix[16];
    int plen = ksnprintf(prefix, sizeof(prefix), "[cpu%u] ", cpu);
    /* A CPU that faults while printing already holds the lock: let it through rather
     * than deadlock, since its report is the one thing that matters then. */
    bool nested = console_owner == cpu;
    uint64_t flags = 0;
    if (!nested) {
        flags = spin_lock_irqsave(&console_lock);
        console_owner = cpu;
    }
    sink_write(prefix, (size_t)plen);
    sink_write(text, n);
    sink_write("\n", 1);
    if (!nested) {
        console_owner = NO_OWNER;
        spin_unlock_irqrestore(&console_lock, flags);
    }
}

/* ---- the drain: with drain_lock held ----------------------------------------------- */

static void format_taken(const struct console_buffer *b)
{
    size_t n = 0;
    if (taken.lost_before) {
        int k = ksnprintf(out.text, sizeof(out.text), "[cpu%u] VM %s: console: %u bytes lost\n", taken.cpu, b->name,
                          taken.lost_before);
        n = MIN((size_t)k, sizeof(out.text) - 1);
    }
    if (taken.len || !taken.lost_before) {
        int k = ksnprintf(out.text + n, sizeof(out.text) - n, "[cpu%u] %.*s\n", taken.cpu, (int)taken.len,
                          taken.text);
        n += MIN((size_t)k, sizeof(out.text) - n - 1);
    }
    out.len = n;
    out.off = 0;
}

/* The oldest line of all queues becomes the one on its way out. */
static bool pick_next(void)
{
    struct console_buffer *best = NULL;
    uint64_t best_seq = UINT64_MAX;
    uint32_t n = __atomic_load_n(&source_count, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t seq;
        if (console_buffer_head(sources[i], &seq) && seq < best_seq) {
            best = sources[i];
            best_seq = seq;
        }
    }
    if (!best || !console_buffer_take(best, &taken))
        return false;
    format_taken(best);
    return true;
}

static bool queues_pending(void)
{
    uint32_t n = __atomic_load_n(&source_count, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++)
        if (console_buffer_pending(sources[i]))
            return true;
    return false;
}

/* With the line on its way sent: clears dirty unless a queue still holds something. */
static void settle(void)
{
    if (out.off != out.len)
        return;
    __atomic_store_n(&dirty, 0, __ATOMIC_SEQ_CST);
    if (queues_pending())
        __atomic_store_n(&dirty, 1, __ATOMIC_SEQ_CST);
}

/* As much as the sinks take now. */
static void drain_some(void)
{
    size_t room = platform->tx_room(sinks);
    while (room) {
        if (out.off == out.len && !pick_next())
            break;
        size_t n = platform->tx(sinks, out.text + out.off, out.len - out.off, &room);
        out.off += n;
        if (!n)
            break;
    }
    settle();
}

/* The rest of the line on its way, then whole lines, waiting on the sinks; `lines` of
 * them (0: until every queue is empty). */
static void drain_waiting(uint32_t lines)
{
    for (uint32_t sent = 0; !lines || sent < lines; sent++) {
        if (out.off == out.len && !pick_next())
            break;
        sink_write(out.text + out.off, out.len - out.off);
        out.off = out.len;
    }
    settle();
}

static bool drain_lock_try(uint32_t cpu)
{
    if (drain_owner == cpu || !spin_trylock(&drain_lock))
        return false;
    drain_owner = cpu;
    return true;
}

/* For a CPU that must see the queues emptied: waits for the current sender, bounded. */
static bool drain_lock_wait(uint32_t cpu)
{
    for (uint32_t i = 0; i < DRAIN_WAIT_LIMIT; i++) {
        if (drain_owner == cpu)
            return false; /* this CPU faulted while sending: leave the queues alone */
        if (drain_lock_try(cpu))
            return true;
        __builtin_ia32_pause();
    }
    return false;
}

static void drain_unlock(void)
{
    drain_owner = NO_OWNER;
    spin_unlock(&drain_lock);
}

/* ---- queueing ------------------------------------------------------------------ */

void console_start_queueing(void)
{
    if (!keel_queue.ring) {
        console_buffer_init(&keel_queue, "Keel", keel_storage, KEEL_QUEUE_SIZE);
        console_add_source(&keel_queue);
    }
    __atomic_store_n(&queueing, true, __ATOMIC_RELEASE);
}

bool console_add_source(struct console_buffer *b)
{
    spin_lock(&sources_lock);
    bool ok = true;
    for (uint32_t i = 0; i < source_count; i++)
        if (sources[i] == b)
            b->drained = true; /* a device cleared its state and made it again */
    if (!b->drained && (ok = source_count < MAX_SOURCES)) {
        sources[source_count] = b;
        b->drained = true;
        __atomic_store_n(&source_count, source_count + 1, __ATOMIC_RELEASE);
    }
    spin_unlock(&sources_lock);
    return ok;
}

void console_remove_source(struct console_buffer *b)
{
    /* By address, whatever b says: its owner may have cleared it. Also under
     * drain_lock: the drain reads the list (and the queues) without sources_lock, so
     * once this returns no CPU is inside b. */
    spin_lock(&drain_lock);
    spin_lock(&sources_lock);
    for (uint32_t i = 0; i < source_count; i++) {
        if (sources[i] == b) {
            sources[i] = sources[source_count - 1];
            __atomic_store_n(&source_count, source_count - 1, __ATOMIC_RELEASE);
            break;
        }
    }
    b->drained = false;
    spin_unlock(&sources_lock);
    spin_unlock(&drain_lock);
}

void console_put_line(struct console_buffer *b, const char *text, size_t len)
{
    uint32_t cpu = current_cpu_id();
    if (!__atomic_load_n(&queueing, __ATOMIC_ACQUIRE) || !b->drained) {
        direct_line(cpu, text, len);
        return;
    }
    if (!console_buffer_put(b, cpu, text, len))
        console_buffer_lose(b, cpu, len);
    __atomic_store_n(&dirty, 1, __ATOMIC_SEQ_CST);
    console_service_output();
}

/* Keel's own line: never dropped. A full queue makes this CPU send lines itself,
 * waiting on the UART, until this one fits. */
static void put_keel_line(uint32_t cpu, const char *text, size_t n)
{
    while (!console_buffer_put(&keel_queue, cpu, text, n)) {
        if (drain_owner == cpu) {
            /* Printing from inside the drain (an exception there): no queue to wait on. */
            direct_line(cpu, text, n);
            return;
        }
        spin_lock(&drain_lock);
        drain_owner = cpu;
        drain_waiting(1);
        drain_unlock();
    }
    __atomic_store_n(&dirty, 1, __ATOMIC_SEQ_CST);
    console_service_output();
}

static void emit_line(uint32_t cpu, const char *text, size_t n)
{
    if (__atomic_load_n(&queueing, __ATOMIC_ACQUIRE))
        put_keel_line(cpu, text, n);
    else
        direct_line(cpu, text, n);
}

void console_service_output(void)
{
    if (!platform || !__atomic_load_n(&dirty, __ATOMIC_ACQUIRE))
        return;
    uint32_t cpu = current_cpu_id();
    if (!drain_lock_try(cpu))
        return;
    drain_some();
    drain_unlock();
}

void console_set_input(void (*handler)(char c))
{
    input_handler = handler;
}

bool console_input_wanted(void)
{
    return input_handler != NULL;
}

void console_service(void)
{
    console_service_output();
    if (!platform || !platform->rx || !input_handler || !spin_trylock(&input_lock))
        return;
    /* Bytes are collected first: the handler may print, which must not find this CPU
     * inside the drain. */
    char got[16];
    size_t n = 0;
    for (int c; n < sizeof(got) && (c = platform->rx()) >= 0;)
        got[n++] = (char)c;
    for (size_t i = 0; i < n; i++)
        input_handler(got[i]);
    spin_unlock(&input_lock);
}

bool console_output_pending(void)
{
    return __atomic_load_n(&dirty, __ATOMIC_ACQUIRE);
}

void console_emergency(void)
{
    if (!__atomic_exchange_n(&queueing, false, __ATOMIC_ACQ_REL))
        return;
    uint32_t cpu = current_cpu_id();
    if (drain_lock_wait(cpu)) {
        drain_waiting(0);
        drain_unlock();
    }
}

/* ---- kprintf ------------------------------------------------------------------- */

static void line_append(const char *s, size_t n)
{
    uint32_t cpu;
    struct console_line *l = this_line(&cpu);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n' || l->len == CONSOLE_LINE_MAX - 1) {
            emit_line(cpu, l->text, l->len);
            l->len = 0;
            if (s[i] == '\n')
                continue;
        }
        l->text[l->len++] = s[i];
    }
}

void kvprintf(const char *fmt, va_list ap)
{
    char buf[CONSOLE_LINE_MAX];
    va_list copy;
    va_copy(copy, ap);
    int n = kvsnprintf(buf, sizeof(buf), fmt, copy);
    va_end(copy);
    if (n < 0)
        return;
    line_append(buf, MIN((size_t)n, sizeof(buf) - 1));
}

void kprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kvprintf(fmt, ap);
    va_end(ap);
}

void console_write_raw(const char *s, size_t n)
{
    sink_write(s, n);
}

void console_flush(void)
{
    if (!platform)
        return;
    uint32_t cpu = current_cpu_id();
    if (drain_lock_wait(cpu)) {
        drain_waiting(0);
        drain_unlock();
    }
    platform->flush(sinks);
}

NORETURN void panic(const char *fmt, ...)
{
    console_emergency();
    char buf[CONSOLE_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    kvsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    kprintf("PANIC: %s\n", buf);
    kprintf("PANIC: CPU %u stopped\n", current_cpu_id());
    console_flush();
    if (platform)
        platform->halt();
    for (;;)
        __asm__ volatile("cli; hlt");
}
