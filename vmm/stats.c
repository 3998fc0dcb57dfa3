/* A VM's exit statistics as JSON Lines (vmm/stats.h): the line builder, the dump and the
 * reset. */
#include "vmm/stats.h"
#include "vmm/vcpu.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"
#include "arch/x86/tsc.h"

/* One JSON object being built. A value that does not fit marks the line as overflowed
 * rather than cutting it: the writer then says so on a line of its own. */
struct json_line {
    char text[STATS_JSON_MAX + 1];
    size_t len;
    bool overflow;
};

static void put(struct json_line *l, const char *s, size_t n)
{
    if (l->overflow || n > STATS_JSON_MAX - l->len) {
        l->overflow = true;
        return;
    }
    memcpy(l->text + l->len, s, n);
    l->len += n;
    l->text[l->len] = 0;
}

static void put_str(struct json_line *l, const char *s)
{
    put(l, s, strlen(s));
}

static void put_fmt(struct json_line *l, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void put_fmt(struct json_line *l, const char *fmt, ...)
{
    char buf[STATS_JSON_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = kvsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf))
        l->overflow = true;
    else
        put(l, buf, (size_t)n);
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void put_quoted(struct json_line *l, const char *s)
{
    put(l, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(l, esc, 2);
        } else if (c < 0x20 || c >= 0x7f) {
            put_fmt(l, "\\u%04x", c);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
    put(l, "\"", 1);
}

/* The fields every line of a VM's dump starts with. */
static void begin(struct json_line *l, const char *type, const struct vm *vm)
{
    l->len = 0;
    l->overflow = false;
    l->text[0] = 0;
    put_fmt(l, "{\"type\":\"%s\",\"vm\":%u", type, vm->id);
}

struct writer {
    const struct vm *vm;
    const struct stats_json_out *out;
    uint32_t lines;
};

static void finish(struct writer *w, struct json_line *l)
{
    put(l, "}", 1);
    if (l->overflow) {
        /* Cannot happen with Keel's names and 64-bit counts, but never a cut line. */
        begin(l, "error", w->vm);
        put_str(l, ",\"what\":\"a statistics line did not fit on one console line\"}");
    }
    w->out->emit(w->out->ctx, l->text);
    w->lines++;
}

/* The fields that say whose figures a line holds: the vCPU, the reason and, for a part
 * of the round trip (exit_split), which part. */
static void put_whose(struct json_line *l, uint32_t vcpu, const char *reason, const char *part)
{
    put_fmt(l, ",\"vcpu\":%u,\"reason\":", vcpu);
    put_quoted(l, reason);
    if (part) {
        put_str(l, ",\"part\":");
        put_quoted(l, part);
    }
}

/* An "exit" line with the handler's time (part NULL: count is the exits counted), or a
 * "part" line with one other part of the round trip; then its buckets. */
static void write_latency(struct writer *w, uint32_t vcpu, const char *reason, const char *part, uint64_t count,
                          const struct latency *lat)
{
    struct json_line l;
    begin(&l, part ? "part" : "exit", w->vm);
    put_whose(&l, vcpu, reason, part);
    if (!part)
        put_fmt(&l, ",\"count\":%lu", count);
    if (w->out->durations) {
        uint64_t n = hist_count(&lat->hist);
        put_fmt(&l, ",\"timed\":%lu,\"total\":%lu,\"min\":%u", n, lat->total, n ? lat->min : 0);
        put_fmt(&l, ",\"p50\":%u,\"p90\":%u", latency_percentile(lat, 5000), latency_percentile(lat, 9000));
        put_fmt(&l, ",\"p99\":%u,\"p99.9\":%u,\"max\":%u", latency_percentile(lat, 9900),
                latency_percentile(lat, 9990), lat->max);
    }
    finish(w, &l);
    if (!w->out->durations)
        return;
    /* The buckets, as many per line as fit. */
    uint32_t i = 0;
    while (i < HIST_BUCKETS) {
        while (i < HIST_BUCKETS && !lat->hist.bucket[i])
            i++;
        if (i == HIST_BUCKETS)
            break;
        begin(&l, "hist", w->vm);
        put_whose(&l, vcpu, reason, part);
        put_str(&l, ",\"buckets\":[");
        bool first = true;
        for (; i < HIST_BUCKETS; i++) {
            if (!lat->hist.bucket[i])
                continue;
            char pair[48];
            int n = ksnprintf(pair, sizeof(pair), "%s[%u,%lu]", first ? "" : ",", hist_bucket_low(i),
                              lat->hist.bucket[i]);
            /* Room for this pair and the closing "]}". */
            if (!first && l.len + (size_t)n + 2 > STATS_JSON_MAX)
                break;
            put(&l, pair, (size_t)n);
            first = false;
        }
        put(&l, "]", 1);
        finish(w, &l);
    }
}

uint32_t stats_json_write(const struct vm *vm, const struct stats_json_out *out)
{
    struct writer w = {.vm = vm, .out = out};
    struct json_line l;
    begin(&l, "vm", vm);
    put_str(&l, ",\"name\":");
    put_quoted(&l, vm->name);
    put_fmt(&l, ",\"dump\":%u,\"why\":", out->seq);
    put_quoted(&l, out->why);
    put_fmt(&l, ",\"vcpus\":%u,\"tsc_hz\":%lu,\"unit\":\"tsc\",\"durations\":%s", vm->vcpu_count, out->tsc_hz,
            out->durations ? "true" : "false");
    put_fmt(&l, ",\"sub_buckets\":%u,\"exit_split\":%s", HIST_SUB_BUCKETS,
            vm->vcpu_count && vm->vcpus[0]->arch.split ? "true" : "false");
    finish(&w, &l);
    for (uint32_t i = 0; i < vm->vcpu_count; i++) {
        const struct vcpu_arch *a = &vm->vcpus[i]->arch;
        uint64_t exits = 0;
        for (uint32_t r = 0; r < VCPU_EXIT_REASON_SLOTS; r++)
            exits += a->stats.exits[r];
        begin(&l, "vcpu", vm);
        put_fmt(&l, ",\"vcpu\":%u,\"exits\":%lu,\"guest_tsc\":%lu,\"host_tsc\":%lu,\"entries_failed\":%lu", i,
                exits, a->stats.guest_tsc, a->stats.host_tsc, a->stats.entries_failed);
        if (a->split)
            put_fmt(&l, ",\"recording_tsc\":%lu", a->split->recording_tsc);
        finish(&w, &l);
        for (uint32_t r = 0; r < VCPU_EXIT_REASON_SLOTS; r++) {
            const struct latency *lat = &a->latency.exit[r];
            if (!a->stats.exits[r] && !hist_count(&lat->hist))
                continue;
            write_latency(&w, i, out->reason_name(r), NULL, a->stats.exits[r], lat);
            if (a->split && out->durations && hist_count(&a->split->guest[r].hist)) {
                write_latency(&w, i, out->reason_name(r), STATS_PART_GUEST, 0, &a->split->guest[r]);
                write_latency(&w, i, out->reason_name(r), STATS_PART_HW_EXIT, 0, &a->split->hw_exit[r]);
            }
        }
        /* Loading the vCPU at the start of each run: "LOAD", which no exit reason is
         * called. */
        uint64_t loads = hist_count(&a->latency.load.hist);
        if (loads)
            write_latency(&w, i, "LOAD", NULL, loads, &a->latency.load);
    }
    begin(&l, "end", vm);
    put_fmt(&l, ",\"dump\":%u,\"lines\":%u", out->seq, w.lines);
    finish(&w, &l);
    return w.lines;
}

static void emit_console(void *ctx, const char *json)
{
    (void)ctx;
    kprintf(STATS_LINE_TAG "%s\n", json);
}

uint32_t vm_stats_dump(struct vm *vm, const char *why)
{
    struct stats_json_out out = {
        .reason_name = vcpu_backend->exit_reason_name,
        .tsc_hz = tsc_calibrated() ? tsc_hz() : 0,
        .why = why,
        .seq = __atomic_add_fetch(&vm->stats_dumps, 1, __ATOMIC_RELAXED),
        .durations = KEEL_STATS,
        .emit = emit_console,
    };
    return stats_json_write(vm, &out);
}

void vm_stats_reset(struct vm *vm)
{
    bool stopped = __atomic_load_n(&vm->state, __ATOMIC_ACQUIRE) == VM_STOPPED;
    for (uint32_t i = 0; i < vm->vcpu_count; i++) {
        struct vcpu_arch *a = &vm->vcpus[i]->arch;
        if (stopped) {
            vcpu_stats_clear_counts(a);
        } else {
            __atomic_store_n(&a->latency.reset_requested, 1, __ATOMIC_RELEASE);
            __atomic_store_n(&a->recheck, 1, __ATOMIC_RELEASE);
        }
    }
}
