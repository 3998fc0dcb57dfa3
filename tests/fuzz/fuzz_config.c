/* Fuzzes the keel.cfg and command-line parser (vmm/lib/config.c), the first code to see
 * user input on both boot paths.
 *
 * Input: keel.cfg text, optionally followed by a NUL and a command line. The text goes
 * to config_parse; the command line is then applied with config_parse_cmdline over the
 * result (over the defaults when the file was rejected), as Keel's boot does.
 * Checked: nothing crashes or reads past the input; a parse that succeeds yields a
 * configuration within every limit vmm/lib/config.h documents; a parse that fails leaves
 * the caller's configuration untouched and names a line that exists; the parser keeps
 * no state from one call to the next; CRLF and CR line endings parse exactly like LF.
 * SOURCES: vmm/lib/config.c vmm/lib/printf.c vmm/lib/string.c tests/fuzz/console_sink.c
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/fuzz/console_sink.h"
#include "vmm/lib/config.h"
#include "vmm/lib/console_tags.h"

#define UNTOUCHED 0x5a /* what the caller's struct holds before a call */

/* No VM may take the name of a tag Keel's own lines start with, in any case. */
#define TAG(t) t,
static const char *const console_tags[] = {KEEL_CONSOLE_TAGS(TAG)};

static bool printable(char c)
{
    return c >= 0x20 && c < 0x7f;
}

/* A string field: terminated inside its array, at most max characters, printable, no
 * comment character and no surrounding blanks (values are trimmed). */
static void check_text(const char *what, const char *s, size_t array, size_t max, bool may_be_empty)
{
    size_t n = strnlen(s, array);
    FUZZ_CHECK(n < array, "%s is not terminated", what);
    FUZZ_CHECK(n <= max, "%s has %zu characters, more than %zu", what, n, max);
    FUZZ_CHECK(n > 0 || may_be_empty, "%s is empty", what);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(printable(s[i]) || s[i] == '\t', "%s has byte 0x%02x", what, (unsigned char)s[i]);
        FUZZ_CHECK(s[i] != '#', "%s contains '#': a comment was taken as a value", what);
    }
    if (n)
        FUZZ_CHECK(s[0] != ' ' && s[0] != '\t' && s[n - 1] != ' ' && s[n - 1] != '\t',
                   "%s '%s' is not trimmed", what, s);
}

static bool cpu_ok(int32_t cpu)
{
    return cpu == CONFIG_CPU_ANY || (cpu >= 0 && cpu <= CONFIG_CPU_MAX);
}

/* Every limit vmm/lib/config.h states. */
static void check_config(const struct keel_config *c)
{
    FUZZ_CHECK(c->console != 0, "no console sink");
    FUZZ_CHECK(!(c->console & ~(uint32_t)(CONFIG_CONSOLE_COM1 | CONFIG_CONSOLE_E9)), "console 0x%x", c->console);
    /* A rate the 16-bit divisor latch can hold exactly: 115200 / baud in 1..0xffff. */
    FUZZ_CHECK(c->com1_baud >= 2 && c->com1_baud <= 115200 && 115200 % c->com1_baud == 0 &&
                   115200 / c->com1_baud <= 0xffff,
               "com1_baud %u", c->com1_baud);
    FUZZ_CHECK(c->on_idle >= ON_IDLE_POWEROFF && c->on_idle <= ON_IDLE_REBOOT, "on_idle %u", c->on_idle);
    FUZZ_CHECK(strcmp(config_on_idle_name(c->on_idle), "?") != 0, "on_idle %u has no name", c->on_idle);
    FUZZ_CHECK(c->ap_timeout_ms >= 1 && c->ap_timeout_ms <= 10000, "ap_timeout_ms %u", c->ap_timeout_ms);
    FUZZ_CHECK(c->slice_ms >= 1 && c->slice_ms <= 1000, "slice_ms %u", c->slice_ms);
    /* Never the boot CPU, which has to finish the boot. */
    FUZZ_CHECK(c->fault_test_cpu == CONFIG_CPU_ANY || (c->fault_test_cpu >= 1 && c->fault_test_cpu <= CONFIG_CPU_MAX),
               "fault_test_cpu %d", c->fault_test_cpu);
    FUZZ_CHECK(c->stale_map_keys <= CONFIG_STALE_MAP_KEYS_MAX, "stale_map_keys %u", c->stale_map_keys);
    FUZZ_CHECK(c->vm_count <= MAX_VMS, "%u VMs", c->vm_count);
    for (uint32_t i = 0; i < c->vm_count; i++) {
        const struct vm_config *vm = &c->vms[i];
        check_text("VM name", vm->name, sizeof vm->name, CONFIG_NAME_MAX, false);
        for (const char *q = vm->name; *q; q++)
            FUZZ_CHECK((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
                           *q == '-' || *q == '_',
                       "VM name '%s' has character '%c'", vm->name, *q);
        for (uint32_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(c->vms[j].name, vm->name) != 0, "two VMs named '%s'", vm->name);
        for (size_t t = 0; t < ARRAY_SIZE(console_tags); t++)
            FUZZ_CHECK(strcasecmp(vm->name, console_tags[t]) != 0, "VM named '%s' like Keel's console tag %s",
                       vm->name, console_tags[t]);
        FUZZ_CHECK(vm->vcpus >= 1 && vm->vcpus <= MAX_VCPUS, "VM '%s' vcpus %u", vm->name, vm->vcpus);
        FUZZ_CHECK(vm->memory >= CONFIG_MEMORY_MIN && vm->memory <= CONFIG_MEMORY_MAX &&
                       vm->memory % PAGE_SIZE == 0,
                   "VM '%s' memory 0x%llx", vm->name, (unsigned long long)vm->memory);
        check_text("image", vm->image, sizeof vm->image, CONFIG_IMAGE_MAX, false);
        FUZZ_CHECK(vm->entry >= VM_ENTRY_MULTIBOOT && vm->entry <= VM_ENTRY_ELF64, "VM '%s' entry %u", vm->name,
                   vm->entry);
        FUZZ_CHECK(strcmp(config_entry_name(vm->entry), "?") != 0, "entry %u has no name", vm->entry);
        FUZZ_CHECK(cpu_ok(vm->cpu), "VM '%s' cpu %d", vm->name, vm->cpu);
        check_text("cmdline", vm->cmdline, sizeof vm->cmdline, CONFIG_CMDLINE_MAX, true);
    }
}

static void check_error(const struct config_error *err, bool cmdline, unsigned text_lines)
{
    size_t n = strnlen(err->msg, sizeof err->msg);
    FUZZ_CHECK(n < sizeof err->msg, "error message not terminated");
    /* The message builder stops one short of the array: a message that long was cut. */
    FUZZ_CHECK(n + 1 < sizeof err->msg, "error message cut at %zu characters: %s", n, err->msg);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(printable(err->msg[i]) || err->msg[i] == '\t', "error message has byte 0x%02x: %s", (unsigned char)err->msg[i],
                   err->msg);
    if (cmdline) {
        FUZZ_CHECK(err->line == 0, "command-line error names line %u", err->line);
        FUZZ_CHECK(strncmp(err->msg, "cmdline: ", 9) == 0 && n > 9, "command-line error '%s'", err->msg);
    } else {
        FUZZ_CHECK(err->line >= 1 && err->line <= text_lines, "error names line %u of %u: %s", err->line,
                   text_lines, err->msg);
        char prefix[32];
        int k = snprintf(prefix, sizeof prefix, "keel.cfg:%u: ", err->line);
        FUZZ_CHECK(strncmp(err->msg, prefix, (size_t)k) == 0 && n > (size_t)k, "error '%s' does not start with '%s'",
                   err->msg, prefix);
    }
}

/* Lines as vmm/lib/config.h defines them: ended by LF, CRLF or CR, the last one possibly
 * by the end of the text. */
static unsigned count_lines(const uint8_t *t, size_t len)
{
    unsigned lines = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '\r' && i + 1 < len && t[i + 1] == '\n')
            i++;
        if (t[i] == '\n' || t[i] == '\r' || i + 1 == len)
            lines++;
    }
    return lines;
}

struct result {
    int rc;
    struct keel_config c;
    struct config_error err;
};

/* One config_parse into a caller struct filled with UNTOUCHED, with the checks that
 * hold for any single call. */
static void parse_file(const char *text, size_t len, struct result *r)
{
    memset(&r->c, UNTOUCHED, sizeof r->c);
    r->rc = config_parse(text, len, &r->c, &r->err);
    FUZZ_CHECK(r->rc == 0 || r->rc == -1, "config_parse returned %d", r->rc);
    if (r->rc == 0) {
        check_config(&r->c);
    } else {
        static struct keel_config untouched;
        memset(&untouched, UNTOUCHED, sizeof untouched);
        FUZZ_CHECK(memcmp(&r->c, &untouched, sizeof untouched) == 0, "a rejected file changed the caller's config");
        check_error(&r->err, false, count_lines((const uint8_t *)text, len));
    }
}

static bool same_result(const struct result *a, const struct result *b)
{
    if (a->rc != b->rc)
        return false;
    if (a->rc == 0)
        return memcmp(&a->c, &b->c, sizeof a->c) == 0;
    return a->err.line == b->err.line && strcmp(a->err.msg, b->err.msg) == 0;
}

/* The file with every LF turned into `ending` (CRLF or CR), or NULL when it already
 * has a CR. */
static char *convert_endings(const char *text, size_t len, const char *ending, size_t *out_len)
{
    size_t lf = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\r')
            return NULL;
        lf += text[i] == '\n';
    }
    char *t = malloc(len + lf + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '\n') {
            t[k++] = text[i];
            continue;
        }
        for (const char *e = ending; *e; e++)
            t[k++] = *e;
    }
    *out_len = k;
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sink_reset();
    const uint8_t *nul = memchr(data, 0, size);
    size_t text_len = nul ? (size_t)(nul - data) : size;
    /* Exact-size copies, so a read one byte past either part is caught. */
    char *text = malloc(text_len ? text_len : 1);
    memcpy(text, data, text_len);

    static struct result first, again;
    parse_file(text_len ? text : NULL, text_len, &first);
    parse_file(text_len ? text : NULL, text_len, &again);
    FUZZ_CHECK(same_result(&first, &again), "a second parse of the same text gave another result");

    static const char *const endings[] = {"\r\n", "\r"};
    for (size_t i = 0; i < ARRAY_SIZE(endings); i++) {
        size_t conv_len;
        char *conv = convert_endings(text, text_len, endings[i], &conv_len);
        if (!conv)
            break;
        static struct result r;
        parse_file(conv, conv_len, &r);
        FUZZ_CHECK(same_result(&first, &r), "%s line endings parse differently: '%s' vs '%s'", i ? "CR" : "CRLF",
                   first.err.msg, r.err.msg);
        free(conv);
    }

    if (nul) {
        size_t cl = size - text_len - 1;
        char *cmdline = malloc(cl + 1);
        memcpy(cmdline, nul + 1, cl);
        cmdline[cl] = 0; /* an inner NUL just ends the command line early */
        static struct keel_config base, c;
        if (first.rc == 0)
            base = first.c;
        else
            config_defaults(&base);
        c = base;
        struct config_error err;
        int rc = config_parse_cmdline(cmdline, &c, &err);
        FUZZ_CHECK(rc == 0 || rc == -1, "config_parse_cmdline returned %d", rc);
        if (rc == 0) {
            check_config(&c);
            /* The command line holds only global keys: the VMs stay as they were. */
            FUZZ_CHECK(c.vm_count == base.vm_count && memcmp(c.vms, base.vms, sizeof c.vms) == 0,
                       "the command line changed the VMs");
        } else {
            FUZZ_CHECK(memcmp(&c, &base, sizeof c) == 0, "a rejected command line changed the config");
            check_error(&err, true, 0);
        }
        free(cmdline);
    }
    free(text);
    FUZZ_CHECK(sink_lines() == 0, "the config parser printed: %s", sink_last());
    return 0;
}
