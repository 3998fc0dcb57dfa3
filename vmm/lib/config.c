/* keel.cfg and command-line parser; the format is described in vmm/lib/config.h.
 * Linked into both the core and the UEFI loader, so it may use only vmm/lib/string.h:
 * no kprintf, no panic, and messages are assembled by hand into config_error. Tables
 * hold names as arrays rather than pointers so the -fpic loader build needs no
 * relocations for them. */
#include "vmm/lib/config.h"
#include "vmm/lib/console_tags.h"
#include "vmm/lib/console.h" /* only for the sink bit values checked below */
#include "vmm/lib/uart_rate.h"
#include "vmm/lib/string.h"

STATIC_ASSERT(CONFIG_CONSOLE_COM1 == CONSOLE_SINK_COM1, "config and console disagree on COM1");
STATIC_ASSERT(CONFIG_CONSOLE_E9 == CONSOLE_SINK_E9, "config and console disagree on E9");

#define CMDLINE_SCAN_MAX 4096 /* a longer command line is not a command line */
#define QUOTE_MAX 40          /* user text quoted in a message is cut here */

enum key {
    K_CONSOLE,
    K_COM1_BAUD,
    K_ON_IDLE,
    K_PLATFORM_CHECK,
    K_AP_TIMEOUT_MS,
    K_SLICE_MS,
    K_FAULT_TEST_CPU,
    K_HANDOVER_TEST,
    K_STALE_MAP_KEYS,
    K_MEMORY,
    K_IMAGE,
    K_ENTRY,
    K_CPU,
    K_CPUS,
    K_WEIGHT,
    K_VCPUS,
    K_CMDLINE,
    K_ON_RESET,
    K_TESTDEV,
    K_DISK,
    K_DISK_READONLY,
    K_VIRTIO_CONSOLE,
    K_INITRD,
    K_EXIT_SPLIT,
    K_MEMORY_BELOW_4G,
    K_COUNT,
};
STATIC_ASSERT(K_COUNT <= 32, "struct parser's seen holds one bit per key");

static const struct {
    char name[16];
    bool in_vm;
} keys[K_COUNT] = {
    [K_CONSOLE] = {"console", false},
    [K_COM1_BAUD] = {"com1_baud", false},
    [K_ON_IDLE] = {"on_idle", false},
    [K_PLATFORM_CHECK] = {"platform_check", false},
    [K_AP_TIMEOUT_MS] = {"ap_timeout_ms", false},
    [K_SLICE_MS] = {"slice_ms", false},
    [K_FAULT_TEST_CPU] = {"fault_test_cpu", false},
    [K_HANDOVER_TEST] = {"handover_test", false},
    [K_STALE_MAP_KEYS] = {"stale_map_keys", false},
    [K_MEMORY] = {"memory", true},
    [K_IMAGE] = {"image", true},
    [K_ENTRY] = {"entry", true},
    [K_CPU] = {"cpu", true},
    [K_CPUS] = {"cpus", true},
    [K_WEIGHT] = {"weight", true},
    [K_VCPUS] = {"vcpus", true},
    [K_CMDLINE] = {"cmdline", true},
    [K_ON_RESET] = {"on_reset", true},
    [K_TESTDEV] = {"testdev", true},
    [K_DISK] = {"disk", true},
    [K_DISK_READONLY] = {"disk_readonly", true},
    [K_VIRTIO_CONSOLE] = {"virtio_console", true},
    [K_INITRD] = {"initrd", true},
    [K_EXIT_SPLIT] = {"exit_split", true},
    [K_MEMORY_BELOW_4G] = {"memory_below_4g", true},
};

struct name_value {
    char name[12];
    uint32_t value;
};

static const struct name_value on_idle_names[] = {
    {"poweroff", ON_IDLE_POWEROFF},
    {"halt", ON_IDLE_HALT},
    {"reboot", ON_IDLE_REBOOT},
};

static const struct name_value entry_names[] = {
    {"multiboot", VM_ENTRY_MULTIBOOT},
    {"real", VM_ENTRY_REAL},
    {"elf64", VM_ENTRY_ELF64},
    {"linux", VM_ENTRY_LINUX},
};

static const struct name_value on_reset_names[] = {
    {"restart", VM_ON_RESET_RESTART},
    {"stop", VM_ON_RESET_STOP},
};

static const struct name_value on_off_names[] = {
    {"on", 1},
    {"off", 0},
};

static const struct name_value console_names[] = {
    {"com1", CONFIG_CONSOLE_COM1},
    {"e9", CONFIG_CONSOLE_E9},
};

static const struct name_value yes_no_names[] = {
    {"yes", 1},
    {"no", 0},
};

/* ---- Error messages ---- */

struct msg {
    char *buf;
    size_t size;
    size_t len;
};

static void msg_str(struct msg *m, const char *s)
{
    for (; *s; s++)
        if (m->len + 1 < m->size)
            m->buf[m->len++] = *s;
    m->buf[m->len] = 0;
}

static void msg_uint(struct msg *m, uint64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    *--p = 0;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    msg_str(m, p);
}

static void msg_hex_byte(struct msg *m, unsigned char b)
{
    char t[5] = {'0', 'x', "0123456789abcdef"[b >> 4], "0123456789abcdef"[b & 15], 0};
    msg_str(m, t);
}

/* 'text', cut to QUOTE_MAX characters. Only validated (printable) text gets here. */
static void msg_quote(struct msg *m, const char *s)
{
    char t[QUOTE_MAX + 4];
    size_t n = strnlen(s, QUOTE_MAX + 1);
    if (n > QUOTE_MAX) {
        memcpy(t, s, QUOTE_MAX - 3);
        memcpy(t + QUOTE_MAX - 3, "...", 4);
    } else {
        memcpy(t, s, n);
        t[n] = 0;
    }
    msg_str(m, "'");
    msg_str(m, t);
    msg_str(m, "'");
}

/* ---- Parser state ---- */

struct parser {
    struct keel_config *c;
    struct config_error *err;
    struct config_error spare; /* used when the caller passes no err */
    struct msg m;
    bool cmdline;
    unsigned line;
    int vm;              /* index of the open [vm] section, or -1 */
    uint32_t seen;       /* keys already set in the current section, one bit per key */
    unsigned vm_line[MAX_VMS];
};

/* Starts an error message for line `line`; callers append and return -1. */
static struct msg *err_at(struct parser *p, unsigned line)
{
    struct config_error *e = p->err ? p->err : &p->spare;
    e->line = p->cmdline ? 0 : line;
    p->m.buf = e->msg;
    p->m.size = sizeof(e->msg);
    p->m.len = 0;
    if (p->cmdline) {
        msg_str(&p->m, "cmdline: ");
    } else {
        msg_str(&p->m, "keel.cfg:");
        msg_uint(&p->m, line);
        msg_str(&p->m, ": ");
    }
    return &p->m;
}

/* The common shape: before 'quoted' after. */
static int fail(struct parser *p, const char *before, const char *quoted, const char *after)
{
    struct msg *m = err_at(p, p->line);
    msg_str(m, before);
    if (quoted)
        msg_quote(m, quoted);
    msg_str(m, after);
    return -1;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims spaces and tabs in place; returns the new start. */
static char *trim(char *s)
{
    while (is_space(*s))
        s++;
    size_t n = strlen(s);
    while (n && is_space(s[n - 1]))
        s[--n] = 0;
    return s;
}

static bool lookup(const struct name_value *t, size_t n, const char *s, uint32_t *out)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, s) == 0) {
            *out = t[i].value;
            return true;
        }
    return false;
}

/* ---- Values ---- */

enum num_error { NUM_OK, NUM_BAD, NUM_TOO_LARGE };

/* Decimal or 0x hex, and with `suffixes` an optional K, M or G (binary multiples). */
static enum num_error parse_number(const char *s, bool suffixes, uint64_t *out)
{
    unsigned base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    uint64_t v = 0;
    size_t digits = 0;
    for (;; s++, digits++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A' + 10);
        else
            break;
        if (v > (UINT64_MAX - d) / base)
            return NUM_TOO_LARGE;
        v = v * base + d;
    }
    if (digits == 0)
        return NUM_BAD;
    if (suffixes && *s) {
        unsigned shift;
        switch (*s) {
        case 'K': case 'k': shift = 10; break;
        case 'M': case 'm': shift = 20; break;
        case 'G': case 'g': shift = 30; break;
        default: return NUM_BAD;
        }
        s++;
        if (v > (UINT64_MAX >> shift))
            return NUM_TOO_LARGE;
        v <<= shift;
    }
    if (*s)
        return NUM_BAD;
    *out = v;
    return NUM_OK;
}

/* Parses a number for `key` and checks it against [min, max]. */
static int number_value(struct parser *p, enum key k, const char *v, bool suffixes, uint64_t min,
                        uint64_t max, const char *range_text, uint64_t *out)
{
    enum num_error e = parse_number(v, suffixes, out);
    if (e == NUM_TOO_LARGE || (e == NUM_OK && (*out < min || *out > max))) {
        struct msg *m = err_at(p, p->line);
        msg_str(m, keys[k].name);
        msg_str(m, " ");
        msg_quote(m, v);
        msg_str(m, " is out of range (");
        msg_str(m, range_text);
        msg_str(m, ")");
        return -1;
    }
    if (e == NUM_BAD) {
        struct msg *m = err_at(p, p->line);
        msg_str(m, "bad number ");
        msg_quote(m, v);
        msg_str(m, " for ");
        msg_str(m, keys[k].name);
        msg_str(m, suffixes ? " (digits, optionally followed by K, M or G)" : " (digits only)");
        return -1;
    }
    return 0;
}

static int enum_value(struct parser *p, enum key k, const char *v, const struct name_value *t,
                      size_t n, uint32_t *out)
{
    if (lookup(t, n, v, out))
        return 0;
    struct msg *m = err_at(p, p->line);
    msg_str(m, "bad value ");
    msg_quote(m, v);
    msg_str(m, " for ");
    msg_str(m, keys[k].name);
    msg_str(m, " (use ");
    for (size_t i = 0; i < n; i++) {
        msg_str(m, t[i].name);
        msg_str(m, i + 2 < n ? ", " : i + 1 < n ? " or " : ")");
    }
    return -1;
}

static int console_value(struct parser *p, char *v, uint32_t *out)
{
    uint32_t sinks = 0;
    for (char *item = v;;) {
        char *comma = strchr(item, ',');
        if (comma)
            *comma = 0;
        char *name = trim(item);
        uint32_t bit;
        if (!*name)
            return fail(p, "empty item in the console list", NULL, "");
        if (!lookup(console_names, ARRAY_SIZE(console_names), name, &bit))
            return fail(p, "unknown console ", name, " (use com1, e9)");
        sinks |= bit;
        if (!comma)
            break;
        item = comma + 1;
    }
    *out = sinks;
    return 0;
}

static int string_value(struct parser *p, enum key k, const char *v, char *dst, size_t max)
{
    size_t n = strlen(v);
    if (n > max) {
        struct msg *m = err_at(p, p->line);
        msg_str(m, keys[k].name);
        msg_str(m, " is too long (");
        msg_uint(m, n);
        msg_str(m, " characters, at most ");
        msg_uint(m, max);
        msg_str(m, ")");
        return -1;
    }
    memcpy(dst, v, n + 1);
    return 0;
}

/* ---- Keys and sections ---- */

/* "0-2,5": CPU indices and inclusive ranges, comma-separated, spaces allowed around
 * each item; at least one CPU. */
static int cpus_value(struct parser *p, char *v, uint64_t mask[CONFIG_CPU_WORDS])
{
    uint64_t m[CONFIG_CPU_WORDS] = {0};
    for (char *item = v; item;) {
        char *comma = strchr(item, ',');
        if (comma)
            *comma = 0;
        char *t = trim(item);
        char *dash = strchr(t, '-');
        if (dash)
            *dash = 0;
        uint64_t lo, hi;
        char *first = trim(t), *second = dash ? trim(dash + 1) : first;
        if (parse_number(first, false, &lo) != NUM_OK || parse_number(second, false, &hi) != NUM_OK)
            return fail(p, "bad CPU list item ", dash ? (*dash = '-', t) : t,
                        " in cpus (CPU indices and ranges such as 0-2,5)");
        if (lo > CONFIG_CPU_MAX || hi > CONFIG_CPU_MAX)
            return fail(p, "CPU ", hi > CONFIG_CPU_MAX ? second : first, " in cpus is out of range (" CONFIG_CPU_RANGE ")");
        if (lo > hi)
            return fail(p, "CPU range ", (*dash = '-', t), " in cpus runs backwards");
        for (uint64_t c = lo; c <= hi; c++)
            m[c / 64] |= 1ull << (c % 64);
        item = comma ? comma + 1 : NULL;
    }
    memcpy(mask, m, sizeof(m));
    return 0;
}

static int set_key(struct parser *p, const char *key, char *v)
{
    int k = 0;
    while (k < K_COUNT && strcmp(keys[k].name, key) != 0)
        k++;
    if (k == K_COUNT)
        return fail(p, "unknown key ", key, "");

    if (keys[k].in_vm && p->cmdline)
        return fail(p, "key ", key, " belongs in a [vm NAME] section of keel.cfg, not on the command line");
    if (keys[k].in_vm && p->vm < 0)
        return fail(p, "key ", key, " belongs in a [vm NAME] section");
    if (!keys[k].in_vm && p->vm >= 0)
        return fail(p, "global key ", key, " must come before the first [vm] section");
    if (p->seen & BIT(k)) {
        struct msg *m = err_at(p, p->line);
        msg_str(m, "duplicate key ");
        msg_quote(m, key);
        if (p->vm >= 0) {
            msg_str(m, " in [vm ");
            msg_str(m, p->c->vms[p->vm].name);
            msg_str(m, "]");
        }
        return -1;
    }
    p->seen |= (uint32_t)BIT(k);

    struct keel_config *c = p->c;
    struct vm_config *vm = p->vm >= 0 ? &c->vms[p->vm] : NULL;
    uint64_t n;
    uint32_t e;
    switch ((enum key)k) {
    case K_CONSOLE:
        return console_value(p, v, &c->console);
    case K_COM1_BAUD:
        /* 1 baud would need divisor 115200, beyond the 16-bit latch. */
        if (number_value(p, K_COM1_BAUD, v, false, 2, UART_BASE_BAUD, "2..115200", &n) < 0)
            return -1;
        /* The UART divisor is 115200 / baud: other rates would silently be wrong. */
        if (!uart_divisor((uint32_t)n))
            return fail(p, "com1_baud ", v, " does not divide 115200 (use 115200, 57600, 38400, 19200, 9600, ...)");
        c->com1_baud = (uint32_t)n;
        return 0;
    case K_ON_IDLE:
        return enum_value(p, K_ON_IDLE, v, on_idle_names, ARRAY_SIZE(on_idle_names), &c->on_idle);
    case K_PLATFORM_CHECK:
        if (enum_value(p, K_PLATFORM_CHECK, v, yes_no_names, ARRAY_SIZE(yes_no_names), &e) < 0)
            return -1;
        c->platform_check = e != 0;
        return 0;
    case K_AP_TIMEOUT_MS:
        if (number_value(p, K_AP_TIMEOUT_MS, v, false, 1, 10000, "1..10000", &n) < 0)
            return -1;
        c->ap_timeout_ms = (uint32_t)n;
        return 0;
    case K_SLICE_MS:
        if (number_value(p, K_SLICE_MS, v, false, 1, 1000, "1..1000", &n) < 0)
            return -1;
        c->slice_ms = (uint32_t)n;
        return 0;
    case K_FAULT_TEST_CPU:
        /* 0 passes the range check to get its own message: it is the boot CPU, whose
         * stopping would stop the boot (and which never reached the test point). */
        if (number_value(p, K_FAULT_TEST_CPU, v, false, 0, CONFIG_CPU_MAX, CONFIG_AP_RANGE, &n) < 0)
            return -1;
        if (n == 0)
            return fail(p, "fault_test_cpu ", v, " is the boot CPU, which has to finish the boot: name another CPU");
        c->fault_test_cpu = (int32_t)n;
        return 0;
    case K_HANDOVER_TEST:
        if (enum_value(p, K_HANDOVER_TEST, v, yes_no_names, ARRAY_SIZE(yes_no_names), &e) < 0)
            return -1;
        c->handover_test = e != 0;
        return 0;
    case K_STALE_MAP_KEYS:
        if (number_value(p, K_STALE_MAP_KEYS, v, false, 0, CONFIG_STALE_MAP_KEYS_MAX, "0..4", &n) < 0)
            return -1;
        c->stale_map_keys = (uint32_t)n;
        return 0;
    case K_MEMORY:
        if (number_value(p, K_MEMORY, v, true, CONFIG_MEMORY_MIN, CONFIG_MEMORY_MAX, CONFIG_MEMORY_RANGE,
                         &n) < 0)
            return -1;
        if (n % PAGE_SIZE)
            return fail(p, "memory ", v, " is not a whole number of 4K pages");
        vm->memory = n;
        return 0;
    case K_MEMORY_BELOW_4G:
        if (number_value(p, K_MEMORY_BELOW_4G, v, true, CONFIG_MEMORY_MIN, CONFIG_MEMORY_BELOW_4G_MAX,
                         CONFIG_MEMORY_BELOW_4G_RANGE, &n) < 0)
            return -1;
        if (n % PAGE_SIZE)
            return fail(p, "memory_below_4g ", v, " is not a whole number of 4K pages");
        vm->memory_below_4g = n;
        return 0;
    case K_IMAGE:
        return string_value(p, K_IMAGE, v, vm->image, CONFIG_IMAGE_MAX);
    case K_ENTRY:
        return enum_value(p, K_ENTRY, v, entry_names, ARRAY_SIZE(entry_names), &vm->entry);
    case K_CPU:
        if (p->seen & BIT(K_CPUS))
            return fail(p, "cpu ", v, " and cpus in one section: cpu = N is the one-CPU form of cpus, keep one");
        if (number_value(p, K_CPU, v, false, 0, CONFIG_CPU_MAX, CONFIG_CPU_RANGE, &n) < 0)
            return -1;
        vm->cpu = (int32_t)n;
        return 0;
    case K_CPUS:
        if (p->seen & BIT(K_CPU))
            return fail(p, "cpus ", v, " and cpu in one section: cpu = N is the one-CPU form of cpus, keep one");
        return cpus_value(p, v, vm->cpus);
    case K_WEIGHT:
        if (number_value(p, K_WEIGHT, v, false, 1, CONFIG_WEIGHT_MAX, "1..65535", &n) < 0)
            return -1;
        vm->weight = (uint32_t)n;
        return 0;
    case K_VCPUS:
        if (number_value(p, K_VCPUS, v, false, 1, MAX_VCPUS, "1..16", &n) < 0)
            return -1;
        vm->vcpus = (uint32_t)n;
        return 0;
    case K_CMDLINE:
        return string_value(p, K_CMDLINE, v, vm->cmdline, CONFIG_CMDLINE_MAX);
    case K_ON_RESET:
        return enum_value(p, K_ON_RESET, v, on_reset_names, ARRAY_SIZE(on_reset_names), &vm->on_reset);
    case K_TESTDEV:
        if (enum_value(p, K_TESTDEV, v, on_off_names, ARRAY_SIZE(on_off_names), &e) < 0)
            return -1;
        vm->testdev = e != 0;
        return 0;
    case K_DISK:
        return string_value(p, K_DISK, v, vm->disk, CONFIG_IMAGE_MAX);
    case K_DISK_READONLY:
        if (enum_value(p, K_DISK_READONLY, v, yes_no_names, ARRAY_SIZE(yes_no_names), &e) < 0)
            return -1;
        vm->disk_readonly = e != 0;
        return 0;
    case K_VIRTIO_CONSOLE:
        if (enum_value(p, K_VIRTIO_CONSOLE, v, yes_no_names, ARRAY_SIZE(yes_no_names), &e) < 0)
            return -1;
        vm->virtio_console = e != 0;
        return 0;
    case K_EXIT_SPLIT:
        if (enum_value(p, K_EXIT_SPLIT, v, on_off_names, ARRAY_SIZE(on_off_names), &e) < 0)
            return -1;
        vm->exit_split = e != 0;
        return 0;
    case K_INITRD:
        return string_value(p, K_INITRD, v, vm->initrd, CONFIG_IMAGE_MAX);
    case K_COUNT:
        break;
    }
    return -1;
}

/* Checks the section that just ended; errors name its header line. */
static int finish_vm(struct parser *p)
{
    if (p->vm < 0)
        return 0;
    const struct vm_config *vm = &p->c->vms[p->vm];
    const char *missing = !(p->seen & BIT(K_MEMORY)) ? "memory" : !(p->seen & BIT(K_IMAGE)) ? "image" : NULL;
    if (!missing && vm->initrd[0] && vm->entry != VM_ENTRY_LINUX) {
        struct msg *m = err_at(p, p->vm_line[p->vm]);
        msg_str(m, "[vm ");
        msg_str(m, vm->name);
        msg_str(m, "] has an 'initrd', which only 'entry = linux' takes");
        return -1;
    }
    if (!missing)
        return 0;
    struct msg *m = err_at(p, p->vm_line[p->vm]);
    msg_str(m, "[vm ");
    msg_str(m, vm->name);
    msg_str(m, "] has no '");
    msg_str(m, missing);
    msg_str(m, "' line");
    return -1;
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static bool same_ignoring_case(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = (*a >= 'a' && *a <= 'z') ? (char)(*a - 32) : *a;
        char y = (*b >= 'a' && *b <= 'z') ? (char)(*b - 32) : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

static bool is_console_tag(const char *name)
{
#define TAG_MATCHES(tag) || same_ignoring_case(name, tag)
    return false KEEL_CONSOLE_TAGS(TAG_MATCHES);
#undef TAG_MATCHES
}

static int open_section(struct parser *p, char *s)
{
    size_t n = strlen(s);
    if (s[n - 1] != ']')
        return fail(p, "section header ", s, " does not end with ']'");
    s[n - 1] = 0;
    char *inner = trim(s + 1);
    char *name = inner;
    while (*name && !is_space(*name))
        name++;
    if (*name)
        *name++ = 0;
    name = trim(name);
    if (strcmp(inner, "vm") != 0)
        return fail(p, "unknown section ", inner, " (only [vm NAME] sections exist)");
    if (!*name)
        return fail(p, "a [vm] section needs a name: [vm NAME]", NULL, "");
    if (strlen(name) > CONFIG_NAME_MAX)
        return fail(p, "VM name ", name, " is longer than 31 characters");
    for (const char *q = name; *q; q++)
        if (!is_name_char(*q))
            return fail(p, "bad VM name ", name, " (use letters, digits, '-' and '_')");
    if (is_console_tag(name))
        return fail(p, "VM name ", name,
                    " is reserved: Keel's own console lines start with it, and the guest's lines would look like Keel's");

    if (finish_vm(p) < 0)
        return -1;
    struct keel_config *c = p->c;
    for (uint32_t i = 0; i < c->vm_count; i++) {
        if (strcmp(c->vms[i].name, name) == 0) {
            struct msg *m = err_at(p, p->line);
            msg_str(m, "duplicate VM name ");
            msg_quote(m, name);
            msg_str(m, " (first at line ");
            msg_uint(m, p->vm_line[i]);
            msg_str(m, ")");
            return -1;
        }
    }
    if (c->vm_count >= MAX_VMS)
        return fail(p, "too many VMs (at most 16)", NULL, "");
    STATIC_ASSERT(MAX_VMS == 16, "fix the message above");
    STATIC_ASSERT(MAX_VCPUS == 16, "fix the vcpus range message");

    struct vm_config *vm = &c->vms[c->vm_count];
    memset(vm, 0, sizeof(*vm));
    kstrlcpy(vm->name, name, sizeof(vm->name));
    vm->entry = VM_ENTRY_MULTIBOOT;
    vm->cpu = CONFIG_CPU_ANY;
    vm->weight = CONFIG_WEIGHT_DEFAULT;
    vm->vcpus = 1;
    vm->on_reset = VM_ON_RESET_RESTART;
    p->vm_line[c->vm_count] = p->line;
    p->vm = (int)c->vm_count++;
    p->seen = 0;
    return 0;
}

/* One key=value assignment, from a file line or a command-line token. */
static int assignment(struct parser *p, char *s)
{
    char *eq = strchr(s, '=');
    if (!eq)
        return fail(p, "missing '=' in ", s, "");
    *eq = 0;
    char *key = trim(s);
    char *value = trim(eq + 1);
    if (!*key)
        return fail(p, "missing key before '='", NULL, "");
    if (!*value)
        return fail(p, "empty value for ", key, "");
    return set_key(p, key, value);
}

/* ---- Entry points ---- */

void config_defaults(struct keel_config *c)
{
    memset(c, 0, sizeof(*c));
    c->console = CONFIG_CONSOLE_COM1;
    c->com1_baud = 115200;
    c->on_idle = ON_IDLE_HALT;
    c->platform_check = true;
    c->ap_timeout_ms = 200;
    c->slice_ms = 10;
    c->fault_test_cpu = CONFIG_CPU_ANY;
}

static struct keel_config scratch;

int config_parse(const char *text, size_t len, struct keel_config *c, struct config_error *err)
{
    struct parser p = {.c = &scratch, .err = err, .vm = -1};
    if (err) {
        err->line = 0;
        err->msg[0] = 0;
    }
    if (!text && len)
        return fail(&p, "no text", NULL, "");
    config_defaults(&scratch);

    size_t pos = 0;
    /* A UTF-8 byte order mark, as some editors write it. */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        pos = 3;

    while (pos < len) {
        p.line++;
        /* LF, CRLF and CR alone (old Mac editors) all end a line. */
        size_t start = pos;
        while (pos < len && text[pos] != '\n' && text[pos] != '\r')
            pos++;
        size_t n = pos - start;
        if (pos < len && text[pos] == '\r')
            pos++;
        if (pos < len && text[pos] == '\n')
            pos++;
        if (n > CONFIG_LINE_MAX) {
            struct msg *m = err_at(&p, p.line);
            msg_str(m, "line too long (");
            msg_uint(m, n);
            msg_str(m, " characters, at most 255)");
            return -1;
        }
        STATIC_ASSERT(CONFIG_LINE_MAX == 255, "fix the message above");

        size_t end = n;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)text[start + i];
            bool comment = i >= end;
            if (ch == '#' && !comment)
                end = i;
            if (ch == 0)
                return fail(&p, "NUL byte in the text", NULL, "");
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f || (ch >= 0x80 && !comment)) {
                struct msg *m = err_at(&p, p.line);
                msg_str(m, ch >= 0x80 ? "non-ASCII byte " : "control character ");
                msg_hex_byte(m, ch);
                msg_str(m, " (column ");
                msg_uint(m, i + 1);
                msg_str(m, ch >= 0x80 ? "; allowed only in comments)" : ")");
                return -1;
            }
        }

        char buf[CONFIG_LINE_MAX + 1];
        memcpy(buf, text + start, end);
        buf[end] = 0;
        char *s = trim(buf);
        if (!*s)
            continue;
        if (*s == '[' ? open_section(&p, s) < 0 : assignment(&p, s) < 0)
            return -1;
    }
    if (finish_vm(&p) < 0)
        return -1;
    *c = scratch;
    return 0;
}

int config_parse_cmdline(const char *cmdline, struct keel_config *c, struct config_error *err)
{
    struct parser p = {.c = &scratch, .err = err, .cmdline = true, .vm = -1};
    if (err) {
        err->line = 0;
        err->msg[0] = 0;
    }
    if (!cmdline)
        return 0;
    size_t len = strnlen(cmdline, CMDLINE_SCAN_MAX + 1);
    if (len > CMDLINE_SCAN_MAX)
        return fail(&p, "command line too long (more than 4096 characters)", NULL, "");
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)cmdline[i];
        if ((ch < 0x20 && ch != '\t') || ch >= 0x7f) {
            struct msg *m = err_at(&p, 0);
            msg_str(m, "non-printable byte ");
            msg_hex_byte(m, ch);
            msg_str(m, " at offset ");
            msg_uint(m, i);
            return -1;
        }
    }

    scratch = *c;
    for (size_t pos = 0; pos < len;) {
        while (pos < len && is_space(cmdline[pos]))
            pos++;
        size_t start = pos;
        while (pos < len && !is_space(cmdline[pos]))
            pos++;
        size_t n = pos - start;
        if (!n)
            break;
        char buf[CONFIG_LINE_MAX + 1];
        if (n > CONFIG_LINE_MAX)
            return fail(&p, "option longer than 255 characters", NULL, "");
        memcpy(buf, cmdline + start, n);
        buf[n] = 0;
        if (assignment(&p, buf) < 0)
            return -1;
    }
    *c = scratch;
    return 0;
}

int config_check_machine(const struct keel_config *c, uint32_t cpus_online, struct config_error *err)
{
    struct config_error spare;
    struct config_error *e = err ? err : &spare;
    e->line = 0;
    e->msg[0] = 0;
    if (c->fault_test_cpu == CONFIG_CPU_ANY || (uint32_t)c->fault_test_cpu < cpus_online)
        return 0;
    struct msg m = {.buf = e->msg, .size = sizeof(e->msg)};
    msg_str(&m, "fault_test_cpu = ");
    msg_uint(&m, (uint64_t)c->fault_test_cpu);
    msg_str(&m, " names no CPU of this machine (");
    msg_uint(&m, cpus_online);
    msg_str(&m, cpus_online == 1 ? " CPU online): " : " CPUs online): ");
    msg_str(&m, "no CPU runs the fault test");
    return -1;
}

static const char *name_of(const struct name_value *t, size_t n, uint32_t v)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].value == v)
            return t[i].name;
    return "?";
}

const char *config_on_idle_name(uint32_t on_idle)
{
    return name_of(on_idle_names, ARRAY_SIZE(on_idle_names), on_idle);
}

const char *config_entry_name(uint32_t entry)
{
    return name_of(entry_names, ARRAY_SIZE(entry_names), entry);
}
