/* Host tests for the keel.cfg / command-line parser (vmm/lib/config.c).
 * SOURCES: vmm/lib/config.c vmm/lib/string.c
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/lib/config.h"
#include "drivers/uart16550.h"

/* Parses exactly `len` bytes from a heap block of that size, so ASan catches any read
 * past the end (the loader hands over text without a terminator). */
static int parse_n(const char *text, size_t len, struct keel_config *c, struct config_error *e)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, text, len);
    int r = config_parse(copy, len, c, e);
    free(copy);
    return r;
}

static int parse(const char *text, struct keel_config *c, struct config_error *e)
{
    return parse_n(text, strlen(text), c, e);
}

/* A configuration unlike the defaults, to prove a failed parse changes nothing. */
static void sentinel_config(struct keel_config *c)
{
    memset(c, 0x5a, sizeof(*c));
    c->vm_count = 1;
}

static void expect_error(const char *text, size_t len, unsigned line, const char *msg)
{
    struct keel_config c, before;
    struct config_error e;
    sentinel_config(&c);
    before = c;
    int r = parse_n(text, len, &c, &e);
    if (r != -1)
        fail_msg("accepted bad config:\n%.*s", (int)len, text);
    if (strcmp(e.msg, msg) != 0)
        fail_msg("for config:\n%.*s\nexpected '%s'\n     got '%s'", (int)len, text, msg, e.msg);
    assert_int_equal(e.line, line);
    assert_memory_equal(&c, &before, sizeof(c));
    /* Same result without an error structure. */
    assert_int_equal(parse_n(text, len, &c, NULL), -1);
    assert_memory_equal(&c, &before, sizeof(c));
}

#define EXPECT_ERROR(text, line, msg) expect_error(text, strlen(text), line, msg)

static void test_defaults(void **state)
{
    (void)state;
    struct keel_config c;
    memset(&c, 0xff, sizeof(c));
    config_defaults(&c);
    assert_int_equal(c.console, CONFIG_CONSOLE_COM1);
    assert_int_equal(c.com1_baud, 115200);
    assert_int_equal(c.on_idle, ON_IDLE_HALT);
    assert_true(c.platform_check);
    assert_int_equal(c.ap_timeout_ms, 200);
    assert_int_equal(c.slice_ms, 10);
    assert_int_equal(c.fault_test_cpu, CONFIG_CPU_ANY);
    assert_false(c.handover_test);
    assert_int_equal(c.stale_map_keys, 0);
    assert_int_equal(c.vm_count, 0);

    /* An empty file (or none) gives the defaults. */
    struct keel_config d;
    struct config_error e;
    sentinel_config(&d);
    assert_int_equal(config_parse(NULL, 0, &d, &e), 0);
    assert_memory_equal(&c, &d, sizeof(c));
    sentinel_config(&d);
    assert_int_equal(parse("\n  \n# only comments\n\t\n", &d, &e), 0);
    assert_memory_equal(&c, &d, sizeof(c));
}

static const char good_cfg[] =
    "# Keel configuration for the test machine\r\n"
    "console = com1, e9     # both sinks\r\n"
    "com1_baud = 57600\r\n"
    "on_idle = poweroff\r\n"
    "platform_check = no\r\n"
    "ap_timeout_ms = 500\r\n"
    "\tslice_ms=5\r\n"
    "handover_test = yes\r\n"
    "stale_map_keys = 4\r\n"
    "\r\n"
    "[vm hello]\r\n"
    "memory = 16M\r\n"
    "image = hello.elf\r\n"
    "entry = multiboot\r\n"
    "\r\n"
    "[ vm   linux-2_b ]   # spaces inside the brackets are fine\r\n"
    "memory = 0x40000000\r\n"
    "image = bzImage\r\n"
    "entry = elf64\r\n"
    "cpu = 1\r\n"
    "vcpus = 4\r\n"
    "cmdline = console=ttyS0 quiet   # trailing comment\r\n"
    "on_reset = stop\r\n"
    "testdev = on\r\n"
    "\r\n"
    "[vm rm]\r\n"
    "memory=1048576\r\n"
    "image=boot.bin\r\n"
    "entry=real\r\n"
    "# no final line ending";

static void test_linux_vm(void **state)
{
    (void)state;
    static const char text[] = "[vm deb]\nmemory = 256M\ninitrd = initrd.cpio\nimage = vmlinuz\nentry = linux\n"
                               "vcpus = 2\ncmdline = console=ttyS0 panic=-1\n[vm plain]\nmemory = 1M\nimage = a\n";
    struct keel_config c;
    struct config_error e;
    config_defaults(&c);
    if (parse(text, &c, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(c.vm_count, 2);
    assert_int_equal(c.vms[0].entry, VM_ENTRY_LINUX);
    assert_string_equal(config_entry_name(c.vms[0].entry), "linux");
    assert_string_equal(c.vms[0].image, "vmlinuz");
    assert_string_equal(c.vms[0].initrd, "initrd.cpio");
    assert_string_equal(c.vms[0].cmdline, "console=ttyS0 panic=-1");
    assert_int_equal(c.vms[0].vcpus, 2);
    assert_string_equal(c.vms[1].initrd, "");
}

static void test_good_config(void **state)
{
    (void)state;
    struct keel_config c;
    struct config_error e;
    config_defaults(&c);
    int r = parse(good_cfg, &c, &e);
    if (r)
        fail_msg("%s", e.msg);
    assert_int_equal(c.console, CONFIG_CONSOLE_COM1 | CONFIG_CONSOLE_E9);
    assert_int_equal(c.com1_baud, 57600);
    assert_int_equal(c.on_idle, ON_IDLE_POWEROFF);
    assert_false(c.platform_check);
    assert_int_equal(c.ap_timeout_ms, 500);
    assert_int_equal(c.slice_ms, 5);
    assert_true(c.handover_test);
    assert_int_equal(c.stale_map_keys, 4);
    assert_int_equal(c.vm_count, 3);

    assert_string_equal(c.vms[0].name, "hello");
    assert_int_equal(c.vms[0].memory, 16ull << 20);
    assert_string_equal(c.vms[0].image, "hello.elf");
    assert_int_equal(c.vms[0].entry, VM_ENTRY_MULTIBOOT);
    assert_int_equal(c.vms[0].cpu, CONFIG_CPU_ANY);
    assert_int_equal(c.vms[0].vcpus, 1);
    assert_int_equal(c.vms[1].vcpus, 4);
    assert_string_equal(c.vms[0].cmdline, "");

    assert_string_equal(c.vms[1].name, "linux-2_b");
    assert_int_equal(c.vms[1].memory, 1ull << 30);
    assert_string_equal(c.vms[1].image, "bzImage");
    assert_int_equal(c.vms[1].entry, VM_ENTRY_ELF64);
    assert_int_equal(c.vms[1].cpu, 1);
    assert_string_equal(c.vms[1].cmdline, "console=ttyS0 quiet");
    assert_int_equal(c.vms[0].on_reset, VM_ON_RESET_RESTART);
    assert_false(c.vms[0].testdev);
    assert_int_equal(c.vms[1].on_reset, VM_ON_RESET_STOP);
    assert_true(c.vms[1].testdev);

    assert_string_equal(c.vms[2].name, "rm");
    assert_int_equal(c.vms[2].memory, 1ull << 20);
    assert_int_equal(c.vms[2].entry, VM_ENTRY_REAL);

    /* The same file with LF endings, a UTF-8 BOM and a UTF-8 comment parses the same. */
    char lf[sizeof(good_cfg) + 64];
    size_t n = 0;
    memcpy(lf, "\xef\xbb\xbf# caf\xc3\xa9\n", 11);
    n = 11;
    for (const char *s = good_cfg; *s; s++)
        if (*s != '\r')
            lf[n++] = *s;
    struct keel_config d;
    config_defaults(&d);
    assert_int_equal(parse_n(lf, n, &d, &e), 0);
    assert_memory_equal(&c, &d, sizeof(c));

    assert_string_equal(config_on_idle_name(c.on_idle), "poweroff");
    assert_string_equal(config_entry_name(c.vms[1].entry), "elf64");
    assert_string_equal(config_entry_name(99), "?");
    assert_string_equal(config_on_idle_name(0), "?");
}

/* The same file with LF, CRLF and CR-only line endings, and with them mixed, gives the
 * same configuration. */
static void test_line_endings(void **state)
{
    (void)state;
    static const char *const eols[] = {"\n", "\r\n", "\r"};
    struct keel_config want, got;
    struct config_error e;
    char lf[sizeof(good_cfg)], text[2 * sizeof(good_cfg)];
    size_t n = 0;
    /* good_cfg with plain LF first. */
    for (const char *p = good_cfg; *p; p++)
        if (*p != '\r')
            lf[n++] = *p;
    lf[n] = 0;
    assert_int_equal(parse(lf, &want, &e), 0);
    for (size_t mode = 0; mode < 4; mode++) {
        size_t len = 0, line = 0;
        for (const char *p = lf; *p; p++) {
            if (*p != '\n') {
                text[len++] = *p;
                continue;
            }
            const char *eol = eols[mode < 3 ? mode : line % 3];
            memcpy(text + len, eol, strlen(eol));
            len += strlen(eol);
            line++;
        }
        text[len] = 0;
        memset(&got, 0, sizeof(got));
        if (parse(text, &got, &e) != 0)
            fail_msg("line endings mode %zu: %s", mode, e.msg);
        assert_memory_equal(&got, &want, sizeof(got));
    }
    /* A blank CR-only line counts as a line. */
    EXPECT_ERROR("slice_ms = 5\r\rfoo = 1\r", 3, "keel.cfg:3: unknown key 'foo'");
}

static void test_limits_accepted(void **state)
{
    (void)state;
    struct keel_config c;
    struct config_error e;
    char name31[32], image63[64], cmd200[201], text[1024];
    memset(name31, 'n', 31);
    name31[31] = 0;
    memset(image63, 'i', 63);
    image63[63] = 0;
    memset(cmd200, 'c', 200);
    cmd200[200] = 0;
    snprintf(text, sizeof(text),
             "[vm %s]\nmemory = 3584M\nimage = %s\ncmdline = %s\ncpu = 511\n[vm b]\nmemory=1M\nimage=x\ncpu=0\n",
             name31, image63, cmd200);
    assert_int_equal(parse(text, &c, &e), 0);
    assert_string_equal(c.vms[0].name, name31);
    assert_int_equal(c.vms[0].memory, 3584ull << 20);
    assert_string_equal(c.vms[0].image, image63);
    assert_string_equal(c.vms[0].cmdline, cmd200);
    assert_int_equal(c.vms[0].cpu, 511);
    assert_int_equal(c.vms[1].cpu, 0);

    /* A line of exactly 255 characters (plus CRLF) is fine. */
    char line[300];
    memset(line, ' ', 255);
    memcpy(line, "slice_ms = 7", 12);
    memcpy(line + 255, "\r\n", 3);
    assert_int_equal(parse(line, &c, &e), 0);
    assert_int_equal(c.slice_ms, 7);
    assert_int_equal(config_parse_cmdline("fault_test_cpu=3", &c, &e), 0);
    assert_int_equal(c.fault_test_cpu, 3);
    assert_int_equal(config_parse_cmdline("handover_test=no stale_map_keys=1", &c, &e), 0);
    assert_false(c.handover_test);
    assert_int_equal(c.stale_map_keys, 1);

    /* The slowest and fastest rates a 16-bit divisor latch gives exactly. */
    assert_int_equal(parse("com1_baud = 2\n", &c, &e), 0);
    assert_int_equal(c.com1_baud, 2);
    assert_int_equal(parse("com1_baud = 115200\n", &c, &e), 0);
    assert_int_equal(c.com1_baud, 115200);

    /* Sixteen VMs is the maximum, and allowed. */
    char many[4096];
    size_t n = 0;
    for (int i = 0; i < MAX_VMS; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "[vm v%d]\nmemory=1M\nimage=a\n", i);
    assert_int_equal(parse(many, &c, &e), 0);
    assert_int_equal(c.vm_count, MAX_VMS);
    assert_string_equal(c.vms[15].name, "v15");

    /* Memory sizes in every notation. */
    static const struct { const char *v; uint64_t bytes; } sizes[] = {
        {"1048576", 1 << 20}, {"1024K", 1 << 20}, {"1024k", 1 << 20}, {"2m", 2 << 20},
        {"1G", 1ull << 30}, {"0x100000", 1 << 20}, {"0X200000", 2 << 20}, {"0064M", 64 << 20},
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        snprintf(text, sizeof(text), "[vm a]\nimage=a\nmemory = %s\n", sizes[i].v);
        assert_int_equal(parse(text, &c, &e), 0);
        assert_int_equal(c.vms[0].memory, sizes[i].bytes);
    }
}

static void test_syntax_errors(void **state)
{
    (void)state;
    EXPECT_ERROR("console com1\n", 1, "keel.cfg:1: missing '=' in 'console com1'");
    EXPECT_ERROR("\n\n= 5\n", 3, "keel.cfg:3: missing key before '='");
    EXPECT_ERROR("slice_ms =\n", 1, "keel.cfg:1: empty value for 'slice_ms'");
    EXPECT_ERROR("slice_ms =   # later\n", 1, "keel.cfg:1: empty value for 'slice_ms'");
    EXPECT_ERROR("[vm a]\nimage = a\nmemory = 16M\n\n\n\nmemroy = 16M\n", 7,
                 "keel.cfg:7: unknown key 'memroy'");
    EXPECT_ERROR("Console = com1\n", 1, "keel.cfg:1: unknown key 'Console'");
    EXPECT_ERROR("com1 baud = 9600\n", 1, "keel.cfg:1: unknown key 'com1 baud'");
    EXPECT_ERROR("[foo]\n", 1, "keel.cfg:1: unknown section 'foo' (only [vm NAME] sections exist)");
    EXPECT_ERROR("[vmx a]\n", 1, "keel.cfg:1: unknown section 'vmx' (only [vm NAME] sections exist)");
    EXPECT_ERROR("[]\n", 1, "keel.cfg:1: unknown section '' (only [vm NAME] sections exist)");
    EXPECT_ERROR("[vm]\n", 1, "keel.cfg:1: a [vm] section needs a name: [vm NAME]");
    EXPECT_ERROR("[vm a\n", 1, "keel.cfg:1: section header '[vm a' does not end with ']'");
    EXPECT_ERROR("[vm a] x\n", 1, "keel.cfg:1: section header '[vm a] x' does not end with ']'");
    EXPECT_ERROR("[vm a b]\n", 1, "keel.cfg:1: bad VM name 'a b' (use letters, digits, '-' and '_')");
    EXPECT_ERROR("[vm a.b]\n", 1, "keel.cfg:1: bad VM name 'a.b' (use letters, digits, '-' and '_')");
    /* Named like Keel's own console tags, a VM's lines would pass for Keel's. */
    EXPECT_ERROR("[vm Keel]\n", 1,
                 "keel.cfg:1: VM name 'Keel' is reserved: Keel's own console lines start with it, and the guest's "
                 "lines would look like Keel's");
    EXPECT_ERROR("[vm VMM]\n", 1,
                 "keel.cfg:1: VM name 'VMM' is reserved: Keel's own console lines start with it, and the guest's "
                 "lines would look like Keel's");
    EXPECT_ERROR("[vm acpi]\n", 1,
                 "keel.cfg:1: VM name 'acpi' is reserved: Keel's own console lines start with it, and the guest's "
                 "lines would look like Keel's");
    EXPECT_ERROR("[vm vm]\n", 1,
                 "keel.cfg:1: VM name 'vm' is reserved: Keel's own console lines start with it, and the guest's "
                 "lines would look like Keel's");
    EXPECT_ERROR("[vm abcdefghijklmnopqrstuvwxyz012345]\n", 1,
                 "keel.cfg:1: VM name 'abcdefghijklmnopqrstuvwxyz012345' is longer than 31 characters");
}

static void test_section_errors(void **state)
{
    (void)state;
    EXPECT_ERROR("memory = 16M\n", 1, "keel.cfg:1: key 'memory' belongs in a [vm NAME] section");
    EXPECT_ERROR("cmdline = x\n", 1, "keel.cfg:1: key 'cmdline' belongs in a [vm NAME] section");
    EXPECT_ERROR("[vm a]\nmemory=1M\nimage=a\nconsole = com1\n", 4,
                 "keel.cfg:4: global key 'console' must come before the first [vm] section");
    EXPECT_ERROR("[vm a]\nmemory = 16M\nimage = a\nmemory = 32M\n", 4,
                 "keel.cfg:4: duplicate key 'memory' in [vm a]");
    EXPECT_ERROR("slice_ms = 5\nslice_ms = 5\n", 2, "keel.cfg:2: duplicate key 'slice_ms'");
    /* The same key in two different VMs is fine; the same VM name twice is not. */
    EXPECT_ERROR("[vm a]\nmemory=1M\nimage=a\n[vm b]\nmemory=1M\nimage=b\n[vm a]\n", 7,
                 "keel.cfg:7: duplicate VM name 'a' (first at line 1)");
    EXPECT_ERROR("[vm a]\nmemory = 16M\n", 1, "keel.cfg:1: [vm a] has no 'image' line");
    EXPECT_ERROR("\n[vm a]\nimage = x\n[vm b]\n", 2, "keel.cfg:2: [vm a] has no 'memory' line");
    EXPECT_ERROR("[vm a]\nmemory=1M\nimage=a\n[vm b]\n", 4, "keel.cfg:4: [vm b] has no 'memory' line");
    /* An initrd is for Linux kernels only, whichever line comes first. */
    EXPECT_ERROR("[vm a]\nmemory=1M\nimage=a\ninitrd=b\n", 1,
                 "keel.cfg:1: [vm a] has an 'initrd', which only 'entry = linux' takes");
    EXPECT_ERROR("[vm a]\nmemory=1M\ninitrd=b\nentry=elf64\nimage=a\n[vm b]\n", 1,
                 "keel.cfg:1: [vm a] has an 'initrd', which only 'entry = linux' takes");
    EXPECT_ERROR("[vm a]\nmemory=1M\nimage=a\nentry=linux\ninitrd=b\ninitrd=c\n", 6,
                 "keel.cfg:6: duplicate key 'initrd' in [vm a]");

    char many[4096];
    size_t n = 0;
    for (int i = 0; i <= MAX_VMS; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "[vm v%d]\nmemory=1M\nimage=a\n", i);
    expect_error(many, n, 3 * MAX_VMS + 1, "keel.cfg:49: too many VMs (at most 16)");
}

static void test_number_errors(void **state)
{
    (void)state;
    const char *pre = "[vm a]\nimage=a\n";
    static const struct { const char *line; const char *msg; } cases[] = {
        {"memory = 16Q", "bad number '16Q' for memory (digits, optionally followed by K, M or G)"},
        {"memory = 16MB", "bad number '16MB' for memory (digits, optionally followed by K, M or G)"},
        {"memory = M", "bad number 'M' for memory (digits, optionally followed by K, M or G)"},
        {"memory = 0x", "bad number '0x' for memory (digits, optionally followed by K, M or G)"},
        {"memory = -16M", "bad number '-16M' for memory (digits, optionally followed by K, M or G)"},
        {"memory = +16M", "bad number '+16M' for memory (digits, optionally followed by K, M or G)"},
        {"memory = 1 6M", "bad number '1 6M' for memory (digits, optionally followed by K, M or G)"},
        {"memory = 16 M", "bad number '16 M' for memory (digits, optionally followed by K, M or G)"},
        {"memory = 0x1g0", "bad number '0x1g0' for memory (digits, optionally followed by K, M or G)"},
        {"memory = 512K", "memory '512K' is out of range (1M..256G)"},
        {"memory = 0", "memory '0' is out of range (1M..256G)"},
        {"memory = 262145M", "memory '262145M' is out of range (1M..256G)"},
        {"memory = 274877906945", "memory '274877906945' is out of range (1M..256G)"},
        {"memory = 99999999999999999999", "memory '99999999999999999999' is out of range (1M..256G)"},
        {"memory = 0x10000000000000000", "memory '0x10000000000000000' is out of range (1M..256G)"},
        {"memory = 17179869184G", "memory '17179869184G' is out of range (1M..256G)"},
        {"memory = 1048577", "memory '1048577' is not a whole number of 4K pages"},
        {"memory = 0x100800", "memory '0x100800' is not a whole number of 4K pages"},
        {"cpu = 512", "cpu '512' is out of range (0..511)"},
        {"cpu = -1", "bad number '-1' for cpu (digits only)"},
        {"cpu = 1K", "bad number '1K' for cpu (digits only)"},
        {"cpu = 18446744073709551616", "cpu '18446744073709551616' is out of range (0..511)"},
        {"vcpus = 0", "vcpus '0' is out of range (1..16)"},
        {"on_reset = reboot", "bad value 'reboot' for on_reset (use restart or stop)"},
        {"testdev = yes", "bad value 'yes' for testdev (use on or off)"},
        {"vcpus = 17", "vcpus '17' is out of range (1..16)"},
        {"vcpus = 2x", "bad number '2x' for vcpus (digits only)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256], msg[256];
        snprintf(text, sizeof(text), "%s%s\n", pre, cases[i].line);
        snprintf(msg, sizeof(msg), "keel.cfg:3: %s", cases[i].msg);
        EXPECT_ERROR(text, 3, msg);
    }

    static const struct { const char *line; const char *msg; } globals[] = {
        {"slice_ms = 0", "slice_ms '0' is out of range (1..1000)"},
        {"fault_test_cpu = 512", "fault_test_cpu '512' is out of range (1..511)"},
        {"fault_test_cpu = 0", "fault_test_cpu '0' is the boot CPU, which has to finish the boot: name another CPU"},
        {"fault_test_cpu = -1", "bad number '-1' for fault_test_cpu (digits only)"},
        {"slice_ms = 1001", "slice_ms '1001' is out of range (1..1000)"},
        {"slice_ms = 10ms", "bad number '10ms' for slice_ms (digits only)"},
        {"ap_timeout_ms = 10001", "ap_timeout_ms '10001' is out of range (1..10000)"},
        {"ap_timeout_ms = 2e3", "bad number '2e3' for ap_timeout_ms (digits only)"},
        {"com1_baud = 0", "com1_baud '0' is out of range (2..115200)"},
        /* Divides 115200, but its divisor 115200 does not fit the 16-bit latch. */
        {"com1_baud = 1", "com1_baud '1' is out of range (2..115200)"},
        {"com1_baud = 230400", "com1_baud '230400' is out of range (2..115200)"},
        {"stale_map_keys = 5", "stale_map_keys '5' is out of range (0..4)"},
        {"stale_map_keys = x", "bad number 'x' for stale_map_keys (digits only)"},
        {"com1_baud = 12345", "com1_baud '12345' does not divide 115200 (use 115200, 57600, 38400, 19200, 9600, ...)"},
    };
    for (size_t i = 0; i < sizeof(globals) / sizeof(globals[0]); i++) {
        char text[256], msg[256];
        snprintf(text, sizeof(text), "# x\n%s\n", globals[i].line);
        snprintf(msg, sizeof(msg), "keel.cfg:2: %s", globals[i].msg);
        EXPECT_ERROR(text, 2, msg);
    }
}

/* The scheduler's keys: weight, and the cpus list with cpu = N as its one-CPU form. */
static void test_sched_keys(void **state)
{
    (void)state;
    struct keel_config c;
    struct config_error e;
    config_defaults(&c);
    const char *text = "[vm a]\nmemory=1M\nimage=x\ncpus = 0-2, 5 ,7-7,511\nweight = 512\n"
                       "[vm b]\nmemory=1M\nimage=x\ncpu = 3\n"
                       "[vm c]\nmemory=1M\nimage=x\nweight=1\n[vm d]\nmemory=1M\nimage=x\nweight=65535\n";
    if (parse(text, &c, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(c.vms[0].cpus[0], 0xa7);
    assert_int_equal(c.vms[0].cpus[7], 1ull << 63);
    for (int w = 1; w < 7; w++)
        assert_int_equal(c.vms[0].cpus[w], 0);
    assert_int_equal(c.vms[0].cpu, CONFIG_CPU_ANY);
    assert_int_equal(c.vms[0].weight, 512);
    assert_int_equal(c.vms[1].cpu, 3);
    assert_int_equal(c.vms[1].cpus[0], 0);
    assert_int_equal(c.vms[1].weight, CONFIG_WEIGHT_DEFAULT);
    assert_int_equal(c.vms[2].weight, 1);
    assert_int_equal(c.vms[3].weight, 65535);

    const char *pre = "[vm a]\nimage=a\n";
    static const struct { const char *lines; const char *msg; } cases[] = {
        {"weight = 0", "weight '0' is out of range (1..65535)"},
        {"weight = 65536", "weight '65536' is out of range (1..65535)"},
        {"weight = heavy", "bad number 'heavy' for weight (digits only)"},
        {"cpus = 512", "CPU '512' in cpus is out of range (0..511)"},
        {"cpus = 0-512", "CPU '512' in cpus is out of range (0..511)"},
        {"cpus = 3-1", "CPU range '3-1' in cpus runs backwards"},
        {"cpus = 1,,2", "bad CPU list item '' in cpus (CPU indices and ranges such as 0-2,5)"},
        {"cpus = 1-", "bad CPU list item '1-' in cpus (CPU indices and ranges such as 0-2,5)"},
        {"cpus = a", "bad CPU list item 'a' in cpus (CPU indices and ranges such as 0-2,5)"},
        {"cpus = 1;2", "bad CPU list item '1;2' in cpus (CPU indices and ranges such as 0-2,5)"},
        {"cpu = 1\ncpus = 1", "cpus '1' and cpu in one section: cpu = N is the one-CPU form of cpus, keep one"},
        {"cpus = 1\ncpu = 1", "cpu '1' and cpus in one section: cpu = N is the one-CPU form of cpus, keep one"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char t[256], msg[256];
        snprintf(t, sizeof(t), "%s%s\n", pre, cases[i].lines);
        unsigned line = strchr(cases[i].lines, '\n') ? 4 : 3;
        snprintf(msg, sizeof(msg), "keel.cfg:%u: %s", line, cases[i].msg);
        EXPECT_ERROR(t, line, msg);
    }
}

/* The rule config.c checks com1_baud with and uart_init programs the latch from. */
static void test_uart_divisor(void **state)
{
    (void)state;
    static const struct { uint32_t baud, divisor; } cases[] = {
        {115200, 1}, {57600, 2}, {38400, 3}, {19200, 6}, {9600, 12}, {2400, 48}, {300, 384},
        {50, 2304}, {3, 38400}, {2, 57600},
        /* No exact 16-bit divisor: 0. */
        {1, 0}, {0, 0}, {230400, 0}, {12345, 0}, {7, 0}, {UINT32_MAX, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (uart_divisor(cases[i].baud) != cases[i].divisor)
            fail_msg("uart_divisor(%u) = %u, expected %u", cases[i].baud, uart_divisor(cases[i].baud),
                     cases[i].divisor);
    }
}

/* fault_test_cpu past the CPUs that came online is reported, not silently ignored. */
static void test_check_machine(void **state)
{
    (void)state;
    struct keel_config c;
    struct config_error e;
    config_defaults(&c);
    assert_int_equal(config_check_machine(&c, 1, &e), 0);
    assert_string_equal(e.msg, "");
    assert_int_equal(parse("fault_test_cpu = 3\n", &c, &e), 0);
    assert_int_equal(config_check_machine(&c, 4, &e), 0);
    assert_int_equal(config_check_machine(&c, 3, &e), -1);
    assert_string_equal(e.msg, "fault_test_cpu = 3 names no CPU of this machine (3 CPUs online): no CPU runs the fault test");
    assert_int_equal(e.line, 0);
    assert_int_equal(config_check_machine(&c, 1, &e), -1);
    assert_string_equal(e.msg, "fault_test_cpu = 3 names no CPU of this machine (1 CPU online): no CPU runs the fault test");
    assert_int_equal(config_check_machine(&c, 1, NULL), -1);
}

static void test_enum_errors(void **state)
{
    (void)state;
    EXPECT_ERROR("on_idle = sleep\n", 1,
                 "keel.cfg:1: bad value 'sleep' for on_idle (use poweroff, halt or reboot)");
    EXPECT_ERROR("on_idle = HALT\n", 1,
                 "keel.cfg:1: bad value 'HALT' for on_idle (use poweroff, halt or reboot)");
    EXPECT_ERROR("platform_check = maybe\n", 1,
                 "keel.cfg:1: bad value 'maybe' for platform_check (use yes or no)");
    EXPECT_ERROR("handover_test = 1\n", 1,
                 "keel.cfg:1: bad value '1' for handover_test (use yes or no)");
    EXPECT_ERROR("[vm a]\nentry = bios\n", 2,
                 "keel.cfg:2: bad value 'bios' for entry (use multiboot, real, elf64 or linux)");
    EXPECT_ERROR("console = vga\n", 1, "keel.cfg:1: unknown console 'vga' (use com1, e9)");
    EXPECT_ERROR("console = com1 e9\n", 1, "keel.cfg:1: unknown console 'com1 e9' (use com1, e9)");
    EXPECT_ERROR("console = com1,,e9\n", 1, "keel.cfg:1: empty item in the console list");
    EXPECT_ERROR("console = com1,\n", 1, "keel.cfg:1: empty item in the console list");
    EXPECT_ERROR("console = ,\n", 1, "keel.cfg:1: empty item in the console list");
}

static void test_length_errors(void **state)
{
    (void)state;
    char text[1024];
    char long_value[300];
    memset(long_value, 'x', sizeof(long_value));

    snprintf(text, sizeof(text), "[vm a]\nmemory=1M\nimage = %.64s\n", long_value);
    EXPECT_ERROR(text, 3, "keel.cfg:3: image is too long (64 characters, at most 63)");
    snprintf(text, sizeof(text), "[vm a]\nmemory=1M\nimage=a\ncmdline = %.201s\n", long_value);
    EXPECT_ERROR(text, 4, "keel.cfg:4: cmdline is too long (201 characters, at most 200)");

    /* 256 characters, also when most of them are a comment. */
    snprintf(text, sizeof(text), "slice_ms = 5\n#%.255s\n", long_value);
    EXPECT_ERROR(text, 2, "keel.cfg:2: line too long (256 characters, at most 255)");
    snprintf(text, sizeof(text), "%.299s", long_value);
    EXPECT_ERROR(text, 1, "keel.cfg:1: line too long (299 characters, at most 255)");

    /* Long user text is cut in messages. */
    snprintf(text, sizeof(text), "%.100s = 1\n", long_value);
    EXPECT_ERROR(text, 1, "keel.cfg:1: unknown key 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'");
}

static void test_disk_keys(void **state)
{
    (void)state;
    struct keel_config c;
    struct config_error e;
    config_defaults(&c);
    const char *text = "[vm a]\nmemory = 64M\nimage = bzImage\ndisk = root.img\ndisk_readonly = yes\n"
                       "virtio_console = yes\n[vm b]\nmemory = 1M\nimage = b\n";
    if (parse(text, &c, &e))
        fail_msg("%s", e.msg);
    assert_string_equal(c.vms[0].disk, "root.img");
    assert_true(c.vms[0].disk_readonly);
    assert_true(c.vms[0].virtio_console);
    /* Absent: no disk, writable if one is named, no virtio console. */
    assert_string_equal(c.vms[1].disk, "");
    assert_false(c.vms[1].disk_readonly);
    assert_false(c.vms[1].virtio_console);
    EXPECT_ERROR("[vm a]\ndisk_readonly = ro\n", 2,
                 "keel.cfg:2: bad value 'ro' for disk_readonly (use yes or no)");
    EXPECT_ERROR("[vm a]\nvirtio_console = on\n", 2,
                 "keel.cfg:2: bad value 'on' for virtio_console (use yes or no)");
    EXPECT_ERROR("[vm a]\ndisk = a\ndisk = b\n", 3, "keel.cfg:3: duplicate key 'disk' in [vm a]");
    EXPECT_ERROR("disk = a\n", 1, "keel.cfg:1: key 'disk' belongs in a [vm NAME] section");
    char text2[256], long_value[80];
    memset(long_value, 'd', sizeof(long_value));
    snprintf(text2, sizeof(text2), "[vm a]\nmemory=1M\nimage=a\ndisk = %.64s\n", long_value);
    EXPECT_ERROR(text2, 4, "keel.cfg:4: disk is too long (64 characters, at most 63)");
}

static void test_exit_split_key(void **state)
{
    (void)state;
    struct keel_config c;
    struct config_error e;
    config_defaults(&c);
    if (parse("[vm a]\nmemory = 1M\nimage = a\nexit_split = on\n[vm b]\nmemory = 1M\nimage = b\n", &c, &e))
        fail_msg("%s", e.msg);
    assert_true(c.vms[0].exit_split);
    assert_false(c.vms[1].exit_split); /* off unless asked for */
    EXPECT_ERROR("[vm a]\nexit_split = yes\n", 2, "keel.cfg:2: bad value 'yes' for exit_split (use on or off)");
    EXPECT_ERROR("[vm a]\nexit_split = on\nexit_split = off\n", 3,
                 "keel.cfg:3: duplicate key 'exit_split' in [vm a]");
    EXPECT_ERROR("exit_split = on\n", 1, "keel.cfg:1: key 'exit_split' belongs in a [vm NAME] section");
}

static void test_memory_below_4g(void **state)
{
    (void)state;
    struct keel_config c;
    struct config_error e;
    config_defaults(&c);
    if (parse("[vm a]\nmemory = 8G\nmemory_below_4g = 2G\nimage = a\n[vm b]\nmemory = 1M\nimage = b\n", &c, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(c.vms[0].memory, 8ull << 30);
    assert_int_equal(c.vms[0].memory_below_4g, 2ull << 30);
    assert_int_equal(c.vms[1].memory_below_4g, 0); /* the default: as much as fits */
    EXPECT_ERROR("[vm a]\nmemory_below_4g = 3585M\n", 2, "keel.cfg:2: memory_below_4g '3585M' is out of range (1M..3584M)");
    EXPECT_ERROR("[vm a]\nmemory_below_4g = 1048577\n", 2,
                 "keel.cfg:2: memory_below_4g '1048577' is not a whole number of 4K pages");
}

static void test_garbage_bytes(void **state)
{
    (void)state;
    expect_error("slice_ms = 5\nslice\0_ms = 5\n", 27, 2, "keel.cfg:2: NUL byte in the text");
    expect_error("# \0 in a comment\n", 17, 1, "keel.cfg:1: NUL byte in the text");
    EXPECT_ERROR("slice_ms = \x01" "5\n", 1, "keel.cfg:1: control character 0x01 (column 12)");
    EXPECT_ERROR("slice_ms = 5\x7f\n", 1, "keel.cfg:1: control character 0x7f (column 13)");
    /* CR alone ends a line, like LF and CRLF: this is two lines, not one with a 0x0d. */
    EXPECT_ERROR("slice_ms = 5\rslice_ms = 6\n", 2, "keel.cfg:2: duplicate key 'slice_ms'");
    EXPECT_ERROR("# x\r\r\n\rbogus\r", 4, "keel.cfg:4: missing '=' in 'bogus'");
    EXPECT_ERROR("# \x1b[31m escape\n", 1, "keel.cfg:1: control character 0x1b (column 3)");
    EXPECT_ERROR("image = caf\xc3\xa9\n", 1,
                 "keel.cfg:1: non-ASCII byte 0xc3 (column 12; allowed only in comments)");
    EXPECT_ERROR("\xff\xfe" "s\0l\0", 1,
                 "keel.cfg:1: non-ASCII byte 0xff (column 1; allowed only in comments)");

    struct config_error e;
    struct keel_config c;
    sentinel_config(&c);
    struct keel_config before = c;
    assert_int_equal(config_parse(NULL, 10, &c, &e), -1);
    assert_string_equal(e.msg, "keel.cfg:0: no text");
    assert_memory_equal(&c, &before, sizeof(c));
}

static void test_cmdline(void **state)
{
    (void)state;
    struct keel_config c, before;
    struct config_error e;
    config_defaults(&c);
    assert_int_equal(parse(good_cfg, &c, &e), 0);
    before = c;

    assert_int_equal(config_parse_cmdline("", &c, &e), 0);
    assert_int_equal(config_parse_cmdline("   \t ", &c, &e), 0);
    assert_int_equal(config_parse_cmdline(NULL, &c, &e), 0);
    assert_memory_equal(&c, &before, sizeof(c));

    assert_int_equal(config_parse_cmdline("  console=e9\ton_idle=halt   slice_ms=20 platform_check=yes ",
                                          &c, &e), 0);
    assert_int_equal(c.console, CONFIG_CONSOLE_E9);
    assert_int_equal(c.on_idle, ON_IDLE_HALT);
    assert_int_equal(c.slice_ms, 20);
    assert_true(c.platform_check);
    /* Everything else, VMs included, comes from the file. */
    assert_int_equal(c.com1_baud, 57600);
    assert_int_equal(c.vm_count, 3);
    assert_memory_equal(&c.vms, &before.vms, sizeof(c.vms));

    assert_int_equal(config_parse_cmdline("console=com1,e9 com1_baud=9600 ap_timeout_ms=1000", &c, &e), 0);
    assert_int_equal(c.console, CONFIG_CONSOLE_COM1 | CONFIG_CONSOLE_E9);
    assert_int_equal(c.com1_baud, 9600);
    assert_int_equal(c.ap_timeout_ms, 1000);

    static const struct { const char *cmd; const char *msg; } bad[] = {
        {"on_idle=halt foo=1", "cmdline: unknown key 'foo'"},
        {"memory=16M", "cmdline: key 'memory' belongs in a [vm NAME] section of keel.cfg, not on the command line"},
        {"console", "cmdline: missing '=' in 'console'"},
        {"=com1", "cmdline: missing key before '='"},
        {"slice_ms=", "cmdline: empty value for 'slice_ms'"},
        {"slice_ms=1 slice_ms=2", "cmdline: duplicate key 'slice_ms'"},
        {"slice_ms=0", "cmdline: slice_ms '0' is out of range (1..1000)"},
        {"on_idle=nap", "cmdline: bad value 'nap' for on_idle (use poweroff, halt or reboot)"},
        {"console=com1,vga", "cmdline: unknown console 'vga' (use com1, e9)"},
        {"slice_ms=5\n", "cmdline: non-printable byte 0x0a at offset 10"},
        {"on_idle=halt \xe9", "cmdline: non-printable byte 0xe9 at offset 13"},
        {"[vm", "cmdline: missing '=' in '[vm'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct keel_config saved = c;
        assert_int_equal(config_parse_cmdline(bad[i].cmd, &c, &e), -1);
        assert_string_equal(e.msg, bad[i].msg);
        assert_int_equal(e.line, 0);
        assert_memory_equal(&c, &saved, sizeof(c));
        assert_int_equal(config_parse_cmdline(bad[i].cmd, &c, NULL), -1);
        assert_memory_equal(&c, &saved, sizeof(c));
    }

    /* An overlong token, and a "command line" with no terminator in sight. */
    char *big = malloc(5000);
    memset(big, 'x', 5000);
    memcpy(big, "console=", 8);
    big[300] = 0;
    assert_int_equal(config_parse_cmdline(big, &c, &e), -1);
    assert_string_equal(e.msg, "cmdline: option longer than 255 characters");
    big[300] = 'x';
    big[4999] = 0;
    assert_int_equal(config_parse_cmdline(big, &c, &e), -1);
    assert_string_equal(e.msg, "cmdline: command line too long (more than 4096 characters)");
    free(big);
}

/* Random damage to a good file must give either a config or a clean error. */
static void test_mutations_never_crash(void **state)
{
    (void)state;
    size_t len = strlen(good_cfg);
    char *buf = malloc(len);
    srand(4242);
    static const char alphabet[] = "[]=#,\r\n \t\0\x01\xff" "abcvm0123456789KMGx-_";
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(buf, good_cfg, len);
        int edits = 1 + rand() % 4;
        for (int k = 0; k < edits; k++)
            buf[rand() % len] = alphabet[rand() % (sizeof(alphabet) - 1)];
        size_t n = (size_t)rand() % (len + 1);
        struct keel_config c, before;
        struct config_error e;
        sentinel_config(&c);
        before = c;
        char *exact = malloc(n ? n : 1);
        memcpy(exact, buf, n);
        int r = config_parse(exact, n, &c, &e);
        free(exact);
        if (r == 0) {
            assert_true(c.vm_count <= MAX_VMS);
            for (uint32_t i = 0; i < c.vm_count; i++) {
                assert_true(c.vms[i].memory >= CONFIG_MEMORY_MIN && c.vms[i].memory <= CONFIG_MEMORY_MAX);
                assert_true(c.vms[i].image[0] != 0);
            }
        } else {
            assert_int_equal(r, -1);
            assert_memory_equal(&c, &before, sizeof(c));
            assert_true(strncmp(e.msg, "keel.cfg:", 9) == 0);
            assert_true(strlen(e.msg) < sizeof(e.msg));
        }
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_good_config),
        cmocka_unit_test(test_linux_vm),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_limits_accepted),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_section_errors),
        cmocka_unit_test(test_number_errors),
        cmocka_unit_test(test_uart_divisor),
        cmocka_unit_test(test_sched_keys),
        cmocka_unit_test(test_check_machine),
        cmocka_unit_test(test_enum_errors),
        cmocka_unit_test(test_length_errors),
        cmocka_unit_test(test_disk_keys),
        cmocka_unit_test(test_exit_split_key),
        cmocka_unit_test(test_memory_below_4g),
        cmocka_unit_test(test_garbage_bytes),
        cmocka_unit_test(test_cmdline),
        cmocka_unit_test(test_mutations_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
