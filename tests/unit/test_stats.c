/* Host tests for the exit-statistics JSON Lines writer (vmm/stats.c): every line is one
 * strictly valid JSON object that fits a console line; the buckets of each exit add up
 * to its count of timed exits, however many lines they take; the percentiles are the
 * histogram's; names are escaped; a build without durations prints counts only; with
 * exit_split, each reason's other parts of the round trip follow its exit line.
 * SOURCES: vmm/stats.c vmm/lib/histogram.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/stats.h"

/* What vm_stats_dump needs from the rest of Keel; these tests call the writer. */
const struct vcpu_backend *vcpu_backend;
bool tsc_calibrated(void) { return false; }
uint64_t tsc_hz(void) { return 0; }

/* A strict JSON parser (RFC 8259 without fractions and exponents, which the writer
 * never prints): returns the character after the value, or NULL at the first error. */
static const char *value(const char *p);

static const char *ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (;;) {
        unsigned char c = (unsigned char)*p++;
        if (c == '"')
            return p;
        if (c < 0x20 || c >= 0x7f)
            return NULL; /* control characters must be escaped; the writer escapes all non-ASCII */
        if (c == '\\') {
            c = (unsigned char)*p++;
            if (c == 'u') {
                for (int i = 0; i < 4; i++, p++)
                    if (!strchr("0123456789abcdefABCDEF", *p) || !*p)
                        return NULL;
            } else if (!strchr("\"\\/bfnrt", c) || !c) {
                return NULL;
            }
        }
    }
}

static const char *number(const char *p)
{
    if (*p == '-')
        p++;
    if (*p == '0')
        return p + 1; /* no leading zeros */
    if (*p < '1' || *p > '9')
        return NULL;
    while (*p >= '0' && *p <= '9')
        p++;
    return p;
}

static const char *container(const char *p, char open, char close, bool keys)
{
    if (*p++ != open)
        return NULL;
    p = ws(p);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (keys) {
            p = string(ws(p));
            if (!p)
                return NULL;
            p = ws(p);
            if (*p++ != ':')
                return NULL;
        }
        p = value(ws(p));
        if (!p)
            return NULL;
        p = ws(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *value(const char *p)
{
    p = ws(p);
    switch (*p) {
    case '{': return container(p, '{', '}', true);
    case '[': return container(p, '[', ']', false);
    case '"': return string(p);
    case 't': return strncmp(p, "true", 4) ? NULL : p + 4;
    case 'f': return strncmp(p, "false", 5) ? NULL : p + 5;
    case 'n': return strncmp(p, "null", 4) ? NULL : p + 4;
    default: return number(p);
    }
}

static bool json_object_ok(const char *s)
{
    if (*s != '{')
        return false;
    const char *end = value(s);
    return end && *ws(end) == 0;
}

static void test_parser_is_strict(void **state)
{
    (void)state;
    assert_true(json_object_ok("{\"a\":[1,[2,3]],\"b\":\"x\\\"\\u00e9\",\"c\":true,\"d\":-0}"));
    assert_false(json_object_ok("{\"a\":1,}"));
    assert_false(json_object_ok("{\"a\":01}"));
    assert_false(json_object_ok("{\"a\":\"tab\there\"}"));
    assert_false(json_object_ok("{\"a\":1}}"));
    assert_false(json_object_ok("{\"a\" 1}"));
    assert_false(json_object_ok("{\"a\":[1,2}"));
    assert_false(json_object_ok("{\"a\":\"\\x\"}"));
}

#define MAX_LINES 4096
static char lines[MAX_LINES][STATS_JSON_MAX + 8];
static unsigned nlines;

static void collect(void *ctx, const char *json)
{
    (void)ctx;
    assert_true(nlines < MAX_LINES);
    assert_true(strlen(json) <= STATS_JSON_MAX);
    strcpy(lines[nlines++], json);
}

static const char *reason_name(uint32_t raw)
{
    static const char *names[] = {[10] = "CPUID", [18] = "VMCALL", [30] = "IO_INSTRUCTION"};
    return raw < sizeof(names) / sizeof(names[0]) && names[raw] ? names[raw] : "OTHER";
}

static uint64_t field(const char *line, const char *key)
{
    char k[40];
    snprintf(k, sizeof(k), "\"%s\":", key);
    const char *p = strstr(line, k);
    assert_non_null(p);
    return strtoull(p + strlen(k), NULL, 10);
}

static bool is_type(const char *line, const char *type)
{
    char t[40];
    snprintf(t, sizeof(t), "{\"type\":\"%s\",", type);
    return strncmp(line, t, strlen(t)) == 0;
}

static bool about(const char *line, uint32_t vcpu, const char *reason)
{
    char r[80];
    snprintf(r, sizeof(r), "\"vcpu\":%u,\"reason\":\"%s\"", vcpu, reason);
    return strstr(line, r) != NULL;
}

/* Whether the line is about one part of the round trip (NULL: the handler's time, the
 * lines without a part). */
static bool of_part(const char *line, const char *part)
{
    if (!part)
        return strstr(line, "\"part\":") == NULL;
    char k[40];
    snprintf(k, sizeof(k), "\"part\":\"%s\"", part);
    return strstr(line, k) != NULL;
}

/* The buckets of one exit (or one part of its round trip), summed over its hist lines;
 * each pair's bound must be a bucket's lower bound, in rising order. */
static uint64_t part_bucket_sum(uint32_t vcpu, const char *reason, const char *part, unsigned *hist_lines)
{
    uint64_t sum = 0;
    int64_t last = -1;
    *hist_lines = 0;
    for (unsigned i = 0; i < nlines; i++) {
        if (!is_type(lines[i], "hist") || !about(lines[i], vcpu, reason) || !of_part(lines[i], part))
            continue;
        (*hist_lines)++;
        const char *p = strstr(lines[i], "\"buckets\":[") + strlen("\"buckets\":[");
        while (*p == '[') {
            char *end;
            unsigned long long low = strtoull(p + 1, &end, 10);
            assert_true(*end == ',');
            unsigned long long n = strtoull(end + 1, &end, 10);
            assert_true(*end == ']');
            assert_true(n > 0);
            assert_true((int64_t)low > last);
            assert_int_equal(hist_bucket_low(hist_bucket_of((uint32_t)low)), low);
            last = (int64_t)low;
            sum += n;
            p = end + 1;
            if (*p == ',')
                p++;
        }
    }
    return sum;
}

static uint64_t bucket_sum(uint32_t vcpu, const char *reason, unsigned *hist_lines)
{
    return part_bucket_sum(vcpu, reason, NULL, hist_lines);
}

static struct vm vm;
static struct vcpu vcpu0, vcpu1;

static void setup_vm(const char *name)
{
    memset(&vm, 0, sizeof(vm));
    memset(&vcpu0, 0, sizeof(vcpu0));
    memset(&vcpu1, 0, sizeof(vcpu1));
    strcpy(vm.name, name);
    vm.id = 3;
    vm.vcpu_count = 2;
    vm.vcpus[0] = &vcpu0;
    vm.vcpus[1] = &vcpu1;
    vcpu_stats_clear_counts(&vcpu0.arch);
    vcpu_stats_clear_counts(&vcpu1.arch);
    nlines = 0;
}

static void record(struct vcpu *v, uint32_t reason, uint32_t ticks)
{
    v->arch.stats.exits[reason]++;
    latency_record(&v->arch.latency.exit[reason], ticks);
}

static struct stats_json_out out_for(bool durations)
{
    return (struct stats_json_out){
        .reason_name = reason_name, .tsc_hz = 2000000000ull, .why = "stop", .seq = 1,
        .durations = durations, .emit = collect};
}

static void test_dump_is_valid_and_complete(void **state)
{
    (void)state;
    setup_vm("lab");
    srand(5);
    for (int i = 0; i < 100000; i++)
        record(&vcpu0, 10, 90 + (uint32_t)(rand() % 40) + (i % 1000 == 0 ? 100000u : 0));
    for (int i = 0; i < 777; i++)
        record(&vcpu1, 30, 200 + (uint32_t)rand() % 5000);
    record(&vcpu1, 18, 150);
    latency_record(&vcpu1.arch.latency.load, 4000);
    vcpu0.arch.stats.guest_tsc = 123456789;
    vcpu0.arch.stats.host_tsc = 987654321;
    struct stats_json_out out = out_for(true);
    uint32_t n = stats_json_write(&vm, &out);
    assert_int_equal(n, nlines);
    for (unsigned i = 0; i < nlines; i++) {
        if (!json_object_ok(lines[i]))
            fail_msg("not strict JSON: %s", lines[i]);
        assert_int_equal(field(lines[i], "vm"), 3);
    }
    assert_true(is_type(lines[0], "vm"));
    assert_non_null(strstr(lines[0], "\"name\":\"lab\""));
    assert_non_null(strstr(lines[0], "\"why\":\"stop\""));
    assert_int_equal(field(lines[0], "vcpus"), 2);
    assert_true(is_type(lines[nlines - 1], "end"));
    assert_int_equal(field(lines[nlines - 1], "lines"), nlines - 1);
    if (!is_type(lines[1], "vcpu")) /* the vCPU line follows the VM line */
        fail_msg("line 1: %s", lines[1]);
    assert_int_equal(field(lines[1], "exits"), 100000);
    assert_int_equal(field(lines[1], "guest_tsc"), 123456789);
    assert_int_equal(field(lines[1], "host_tsc"), 987654321);

    struct {
        struct vcpu *v;
        uint32_t id;
        uint32_t reason;
        const char *name;
    } exits[] = {{&vcpu0, 0, 10, "CPUID"}, {&vcpu1, 1, 30, "IO_INSTRUCTION"}, {&vcpu1, 1, 18, "VMCALL"}};
    for (size_t k = 0; k < sizeof(exits) / sizeof(exits[0]); k++) {
        const struct latency *lat = &exits[k].v->arch.latency.exit[exits[k].reason];
        const char *line = NULL;
        for (unsigned i = 0; i < nlines; i++)
            if (is_type(lines[i], "exit") && about(lines[i], exits[k].id, exits[k].name))
                line = lines[i];
        assert_non_null(line);
        assert_int_equal(field(line, "count"), exits[k].v->arch.stats.exits[exits[k].reason]);
        assert_int_equal(field(line, "timed"), hist_count(&lat->hist));
        assert_int_equal(field(line, "total"), lat->total);
        assert_int_equal(field(line, "min"), lat->min);
        assert_int_equal(field(line, "max"), lat->max);
        assert_int_equal(field(line, "p50"), latency_percentile(lat, 5000));
        assert_int_equal(field(line, "p90"), latency_percentile(lat, 9000));
        assert_int_equal(field(line, "p99"), latency_percentile(lat, 9900));
        assert_int_equal(field(line, "p99.9"), latency_percentile(lat, 9990));
        unsigned hl;
        assert_int_equal(bucket_sum(exits[k].id, exits[k].name, &hl), hist_count(&lat->hist));
        assert_true(hl >= 1);
    }
    /* The vCPU load, under its own name. */
    unsigned hl;
    assert_int_equal(bucket_sum(1, "LOAD", &hl), 1);
    /* No line for reasons without exits. */
    for (unsigned i = 0; i < nlines; i++)
        assert_false(about(lines[i], 0, "VMCALL"));
}

static void test_wide_histogram_splits(void **state)
{
    (void)state;
    setup_vm("wide");
    /* Every bucket, with counts of every size up to 2^63. */
    struct latency *lat = &vcpu0.arch.latency.exit[10];
    uint64_t total = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        lat->hist.bucket[i] = 1ull << (i % 63);
        total += lat->hist.bucket[i];
    }
    lat->min = 0;
    lat->max = UINT32_MAX;
    vcpu0.arch.stats.exits[10] = total;
    struct stats_json_out out = out_for(true);
    stats_json_write(&vm, &out);
    for (unsigned i = 0; i < nlines; i++)
        if (!json_object_ok(lines[i]))
            fail_msg("not strict JSON: %s", lines[i]);
    unsigned hl;
    assert_true(bucket_sum(0, "CPUID", &hl) == total);
    assert_true(hl > 10);
}

static void test_names_are_escaped(void **state)
{
    (void)state;
    setup_vm("q\"b\\s\x01");
    record(&vcpu0, 10, 100);
    struct stats_json_out out = out_for(true);
    stats_json_write(&vm, &out);
    assert_true(json_object_ok(lines[0]));
    assert_non_null(strstr(lines[0], "\"name\":\"q\\\"b\\\\s\\u0001\""));
}

static void test_without_durations(void **state)
{
    (void)state;
    setup_vm("plain");
    vcpu0.arch.stats.exits[10] = 5;
    struct stats_json_out out = out_for(false);
    stats_json_write(&vm, &out);
    assert_non_null(strstr(lines[0], "\"durations\":false"));
    bool seen = false;
    for (unsigned i = 0; i < nlines; i++) {
        assert_true(json_object_ok(lines[i]));
        assert_false(is_type(lines[i], "hist"));
        if (is_type(lines[i], "exit")) {
            assert_int_equal(field(lines[i], "count"), 5);
            assert_null(strstr(lines[i], "\"p50\""));
            seen = true;
        }
    }
    assert_true(seen);
}

/* The line of one exit's figures (type "exit", or "part" with that part), NULL: none. */
static const char *summary_line(uint32_t vcpu, const char *reason, const char *part)
{
    for (unsigned i = 0; i < nlines; i++)
        if (is_type(lines[i], part ? "part" : "exit") && about(lines[i], vcpu, reason) && of_part(lines[i], part))
            return lines[i];
    return NULL;
}

static void assert_summary(const char *line, const struct latency *lat)
{
    assert_non_null(line);
    assert_int_equal(field(line, "timed"), hist_count(&lat->hist));
    assert_int_equal(field(line, "total"), lat->total);
    assert_int_equal(field(line, "min"), lat->min);
    assert_int_equal(field(line, "max"), lat->max);
    assert_int_equal(field(line, "p50"), latency_percentile(lat, 5000));
    assert_int_equal(field(line, "p99.9"), latency_percentile(lat, 9990));
}

static struct vcpu_exit_split split0;

/* exit_split: each exit reason with split figures gets a "part" line and hist lines per
 * part after its "exit" line; the handler's figures stay as they were. */
static void test_exit_split_parts(void **state)
{
    (void)state;
    setup_vm("split");
    vcpu0.arch.split = &split0;
    vcpu_stats_clear_counts(&vcpu0.arch);
    for (uint32_t i = 0; i < 5000; i++) {
        record(&vcpu0, 10, 43 + i % 7);
        latency_record(&split0.guest[10], 31 + i % 3 + (i == 77 ? 900 : 0));
        latency_record(&split0.hw_exit[10], 16);
    }
    record(&vcpu0, 18, 51); /* a VMCALL whose split is not recorded yet */
    split0.recording_tsc = 300000;
    record(&vcpu1, 10, 60); /* vCPU 1 has no split */
    struct stats_json_out out = out_for(true);
    uint32_t n = stats_json_write(&vm, &out);
    assert_int_equal(n, nlines);
    for (unsigned i = 0; i < nlines; i++)
        if (!json_object_ok(lines[i]))
            fail_msg("not strict JSON: %s", lines[i]);
    assert_non_null(strstr(lines[0], "\"exit_split\":true"));
    assert_int_equal(field(lines[1], "recording_tsc"), 300000);

    const char *handler = summary_line(0, "CPUID", NULL);
    const char *guest = summary_line(0, "CPUID", STATS_PART_GUEST);
    const char *hw = summary_line(0, "CPUID", STATS_PART_HW_EXIT);
    assert_summary(handler, &vcpu0.arch.latency.exit[10]);
    assert_int_equal(field(handler, "count"), 5000);
    assert_summary(guest, &split0.guest[10]);
    assert_summary(hw, &split0.hw_exit[10]);
    assert_null(strstr(guest, "\"count\":")); /* exits are counted once, on the exit line */
    assert_true(handler < guest && guest < hw); /* the exit line comes first */
    assert_int_equal(field(hw, "min"), 16);
    assert_int_equal(field(hw, "max"), 16);
    assert_int_equal(field(guest, "max"), 933); /* 31 + 77 % 3 + 900 */
    unsigned hl;
    assert_int_equal(bucket_sum(0, "CPUID", &hl), 5000);
    assert_int_equal(part_bucket_sum(0, "CPUID", STATS_PART_GUEST, &hl), 5000);
    assert_true(hl >= 1);
    assert_int_equal(part_bucket_sum(0, "CPUID", STATS_PART_HW_EXIT, &hl), 5000);
    assert_int_equal(hl, 1);
    /* No parts where none were recorded, nor on a vCPU without the split. */
    assert_null(summary_line(0, "VMCALL", STATS_PART_GUEST));
    assert_non_null(summary_line(1, "CPUID", NULL));
    assert_null(summary_line(1, "CPUID", STATS_PART_GUEST));
    for (unsigned i = 0; i < nlines; i++)
        if (is_type(lines[i], "vcpu") && field(lines[i], "vcpu") == 1)
            assert_null(strstr(lines[i], "recording_tsc"));

    /* Without durations (STATS=0) no parts either. */
    nlines = 0;
    out = out_for(false);
    stats_json_write(&vm, &out);
    for (unsigned i = 0; i < nlines; i++)
        assert_false(is_type(lines[i], "part"));

    /* A reset clears the parts and the recording time with the rest. */
    vm.state = VM_STOPPED;
    vm_stats_reset(&vm);
    assert_int_equal(hist_count(&split0.guest[10].hist), 0);
    assert_int_equal(hist_count(&split0.hw_exit[10].hist), 0);
    assert_int_equal(split0.recording_tsc, 0);
    vcpu0.arch.split = NULL;
}

static void test_reset_of_a_stopped_vm(void **state)
{
    (void)state;
    setup_vm("stopped");
    record(&vcpu0, 10, 100);
    vm.state = VM_STOPPED;
    vm_stats_reset(&vm);
    assert_int_equal(vcpu0.arch.stats.exits[10], 0);
    assert_int_equal(hist_count(&vcpu0.arch.latency.exit[10].hist), 0);
    /* A running VM's vCPUs are asked to clear their own before their next entry. */
    record(&vcpu1, 10, 100);
    vm.state = VM_RUNNING;
    vm_stats_reset(&vm);
    assert_int_equal(vcpu1.arch.stats.exits[10], 1);
    assert_int_equal(vcpu1.arch.latency.reset_requested, 1);
    assert_int_equal(vcpu1.arch.recheck, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_is_strict),
        cmocka_unit_test(test_dump_is_valid_and_complete),
        cmocka_unit_test(test_wide_histogram_splits),
        cmocka_unit_test(test_names_are_escaped),
        cmocka_unit_test(test_without_durations),
        cmocka_unit_test(test_exit_split_parts),
        cmocka_unit_test(test_reset_of_a_stopped_vm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
