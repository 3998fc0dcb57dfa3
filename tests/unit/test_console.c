/* Host tests for the console's line queues (vmm/lib/console_buffer.c) and their drain
 * (vmm/lib/console.c) over a fake platform whose UART takes a few bytes per look:
 * lines arrive whole and in the order they were written, never mixed with another
 * source's; a full VM queue loses lines, counted and announced where they went
 * missing; Keel's own lines are never lost; flush and emergency empty the queues.
 * SOURCES: vmm/lib/console.c vmm/lib/console_buffer.c vmm/lib/printf.c vmm/lib/string.c
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/lib/console.h"
#include "vmm/lib/console_buffer.h"

/* ---- the fake platform ---------------------------------------------------------- */

static char wire[1 << 20]; /* everything the sinks got */
static size_t wire_len;
static size_t room_per_look; /* what tx_room grants each time */
static size_t looks;         /* tx_room calls */
static size_t waited_bytes;  /* bytes written through the waiting write */
static uint32_t cpu_now;
static struct console_line lines_of[4];
static const char *rx_script;
static jmp_buf halted;

static uint32_t fake_open(uint32_t want, uint32_t baud)
{
    (void)baud;
    return want;
}

static void fake_write(uint32_t sinks, const char *s, size_t n)
{
    (void)sinks;
    assert_true(wire_len + n <= sizeof(wire));
    memcpy(wire + wire_len, s, n);
    wire_len += n;
    waited_bytes += n;
}

static size_t fake_tx_room(uint32_t sinks)
{
    (void)sinks;
    looks++;
    return room_per_look;
}

static size_t fake_tx(uint32_t sinks, const char *s, size_t n, size_t *room)
{
    (void)sinks;
    size_t k = n < *room ? n : *room;
    memcpy(wire + wire_len, s, k);
    wire_len += k;
    *room -= k;
    return k;
}

static void fake_flush(uint32_t sinks)
{
    (void)sinks;
}

static struct console_line *fake_this_line(uint32_t *cpu)
{
    *cpu = cpu_now;
    return &lines_of[cpu_now];
}

static int fake_rx(void)
{
    if (!rx_script || !*rx_script)
        return -1;
    return (unsigned char)*rx_script++;
}

static NORETURN void fake_halt(void)
{
    longjmp(halted, 1);
}

static const struct console_platform fake = {
    .open = fake_open,
    .write = fake_write,
    .tx_room = fake_tx_room,
    .tx = fake_tx,
    .rx = fake_rx,
    .flush = fake_flush,
    .this_line = fake_this_line,
    .halt = fake_halt,
};

/* The wire as lines (without '\n'); returns how many. */
static char wire_lines[4096][512];
static int split_wire(void)
{
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i < wire_len; i++) {
        if (wire[i] != '\n')
            continue;
        size_t len = i - start;
        assert_true(len < sizeof(wire_lines[0]) && n < 4096);
        memcpy(wire_lines[n], wire + start, len);
        wire_lines[n][len] = 0;
        n++;
        start = i + 1;
    }
    assert_int_equal(start, wire_len); /* nothing half-sent */
    return n;
}

static int setup(void **state)
{
    (void)state;
    static bool once;
    if (!once) {
        console_set_platform(&fake);
        console_init(CONSOLE_SINK_COM1, 115200);
        console_start_queueing();
        once = true;
    }
    wire_len = 0;
    waited_bytes = 0;
    looks = 0;
    room_per_look = 3;
    cpu_now = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    console_flush();
    assert_false(console_output_pending());
    return 0;
}

/* ---- the queue alone ------------------------------------------------------------ */

static void test_buffer_whole_lines_in_order(void **state)
{
    (void)state;
    static uint8_t storage[512];
    struct console_buffer b;
    console_buffer_init(&b, "vm", storage, sizeof(storage));
    struct console_taken t;
    assert_false(console_buffer_take(&b, &t));
    /* Many rounds, so records wrap around the ring's end at every offset. */
    for (int round = 0; round < 300; round++) {
        char text[64];
        int n = snprintf(text, sizeof(text), "line %d %.*s", round, round % 40, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH");
        assert_true(console_buffer_put(&b, (uint32_t)(round % 3), text, (size_t)n));
        if (round % 2 == 0)
            continue;
        for (int k = 0; k < 2 - (round == 1); k++) {
            assert_true(console_buffer_take(&b, &t));
            assert_true(t.len > 0 && t.len < sizeof(t.text));
            assert_memory_equal(t.text, "line ", 5);
            assert_int_equal(t.lost_before, 0);
        }
    }
    uint64_t last = 0;
    int left = 0;
    while (console_buffer_take(&b, &t)) {
        assert_true(t.seq > last);
        last = t.seq;
        left++;
    }
    assert_true(left > 0);
    assert_int_equal(console_buffer_room(&b), sizeof(storage));
    assert_int_equal(b.lost_bytes, 0);
    assert_int_equal(b.lines, 300);
}

static void test_buffer_line_text_survives_wrap(void **state)
{
    (void)state;
    static uint8_t storage[128];
    struct console_buffer b;
    console_buffer_init(&b, "vm", storage, sizeof(storage));
    struct console_taken t;
    /* 100 bytes of record in a 128-byte ring: every second record wraps. */
    char text[80];
    for (int i = 0; i < 20; i++) {
        for (int j = 0; j < 80; j++)
            text[j] = (char)('a' + (i + j) % 26);
        assert_true(console_buffer_put(&b, 1, text, sizeof(text)));
        assert_false(console_buffer_put(&b, 1, text, sizeof(text)));
        assert_true(console_buffer_take(&b, &t));
        assert_int_equal(t.len, sizeof(text));
        assert_memory_equal(t.text, text, sizeof(text));
        assert_int_equal(t.cpu, 1);
    }
}

static void test_buffer_overflow_is_counted_and_placed(void **state)
{
    (void)state;
    static uint8_t storage[256];
    struct console_buffer b;
    console_buffer_init(&b, "vm", storage, sizeof(storage));
    char text[60];
    memset(text, 'x', sizeof(text));
    /* 80 bytes a record: three fit in 256. */
    int stored = 0, lost = 0;
    for (int i = 0; i < 7; i++) {
        if (console_buffer_put(&b, 2, text, sizeof(text)))
            stored++;
        else {
            console_buffer_lose(&b, 2, sizeof(text));
            lost++;
        }
    }
    assert_int_equal(stored, 3);
    assert_int_equal(lost, 4);
    assert_int_equal(b.lost_lines, 4);
    assert_int_equal(b.lost_bytes, 4 * (sizeof(text) + 1));
    struct console_taken t;
    assert_true(console_buffer_take(&b, &t));
    assert_int_equal(t.lost_before, 0);
    /* The next line that fits carries the loss before it. */
    assert_true(console_buffer_put(&b, 2, "after", 5));
    assert_true(console_buffer_take(&b, &t));
    assert_true(console_buffer_take(&b, &t));
    assert_true(console_buffer_take(&b, &t));
    assert_int_equal(t.len, 5);
    assert_int_equal(t.lost_before, 4 * (sizeof(text) + 1));
    /* A loss with nothing after it is still reported, once. */
    console_buffer_lose(&b, 3, 9);
    assert_true(console_buffer_pending(&b));
    assert_true(console_buffer_take(&b, &t));
    assert_int_equal(t.len, 0);
    assert_int_equal(t.lost_before, 10);
    assert_int_equal(t.cpu, 3);
    assert_false(console_buffer_take(&b, &t));
    assert_int_equal(b.lost_bytes, 4 * (sizeof(text) + 1) + 10);
}

static void test_buffer_numbers_order_across_queues(void **state)
{
    (void)state;
    static uint8_t sa[256], sb[256];
    struct console_buffer a, b;
    console_buffer_init(&a, "a", sa, sizeof(sa));
    console_buffer_init(&b, "b", sb, sizeof(sb));
    assert_true(console_buffer_put(&a, 0, "1", 1));
    assert_true(console_buffer_put(&b, 0, "2", 1));
    assert_true(console_buffer_put(&a, 0, "3", 1));
    uint64_t ha, hb;
    assert_true(console_buffer_head(&a, &ha));
    assert_true(console_buffer_head(&b, &hb));
    assert_true(ha < hb);
    struct console_taken t;
    assert_true(console_buffer_take(&a, &t));
    assert_true(console_buffer_head(&a, &ha));
    assert_true(ha > hb);
}

/* ---- the drain ------------------------------------------------------------------ */

static uint8_t store_a[4096], store_b[4096];
static struct console_buffer vm_a, vm_b;

static void add_vms(void)
{
    console_buffer_init(&vm_a, "alpha", store_a, sizeof(store_a));
    console_buffer_init(&vm_b, "beta", store_b, sizeof(store_b));
    assert_true(console_add_source(&vm_a));
    assert_true(console_add_source(&vm_b));
}

static void remove_vms(void)
{
    console_remove_source(&vm_a);
    console_remove_source(&vm_b);
}

static void put_vm(struct console_buffer *b, uint32_t cpu, const char *fmt, int i)
{
    char text[128];
    int n = snprintf(text, sizeof(text), fmt, i);
    cpu_now = cpu;
    console_put_line(b, text, (size_t)n);
}

static void test_drain_keeps_lines_whole_and_in_order(void **state)
{
    (void)state;
    add_vms();
    /* Two VMs on two CPUs and Keel itself write in turn while the UART takes a bit
     * more than a round's worth per look, so most looks end inside a line that the
     * next look finishes after more lines were queued: every line still arrives
     * whole, in the order written. */
    room_per_look = 123;
    for (int i = 0; i < 200; i++) {
        put_vm(&vm_a, 1, "alpha: line %d from the first VM", i);
        put_vm(&vm_b, 2, "beta: line %d, a longer one from the second VM", i);
        if (i % 10 == 0) {
            cpu_now = 3;
            kprintf("VMM: keel %d\n", i);
        }
        console_service();
    }
    /* All of it went through the non-waiting path. */
    assert_int_equal(waited_bytes, 0);
    assert_false(console_output_pending());
    int n = split_wire();
    assert_int_equal(n, 200 * 2 + 20);
    int next_a = 0, next_b = 0, next_k = 0;
    for (int i = 0; i < n; i++) {
        char want[128];
        /* Written in the order alpha i, beta i, (keel i), alpha i+1, ... */
        if (strncmp(wire_lines[i], "[cpu1] alpha: ", 14) == 0) {
            assert_int_equal(next_b, next_a);
            snprintf(want, sizeof(want), "[cpu1] alpha: line %d from the first VM", next_a++);
        } else if (strncmp(wire_lines[i], "[cpu2] beta: ", 13) == 0) {
            assert_int_equal(next_b + 1, next_a);
            snprintf(want, sizeof(want), "[cpu2] beta: line %d, a longer one from the second VM", next_b++);
        } else {
            assert_int_equal(next_a, 10 * next_k + 1);
            assert_int_equal(next_b, next_a);
            snprintf(want, sizeof(want), "[cpu3] VMM: keel %d", 10 * next_k++);
        }
        assert_string_equal(wire_lines[i], want);
    }
    assert_int_equal(vm_a.lost_bytes + vm_b.lost_bytes, 0);
    remove_vms();
}

static void test_drain_never_waits_on_the_uart(void **state)
{
    (void)state;
    add_vms();
    room_per_look = 0; /* the UART is busy */
    for (int i = 0; i < 20; i++)
        put_vm(&vm_a, 1, "alpha: %d", i);
    cpu_now = 0;
    kprintf("VMM: not waiting\n");
    for (int i = 0; i < 50; i++)
        console_service();
    assert_int_equal(wire_len, 0);
    assert_int_equal(waited_bytes, 0);
    assert_true(console_output_pending());
    room_per_look = 16;
    for (int i = 0; i < 200 && console_output_pending(); i++)
        console_service();
    assert_false(console_output_pending());
    assert_int_equal(waited_bytes, 0);
    assert_int_equal(split_wire(), 21);
    assert_string_equal(wire_lines[20], "[cpu0] VMM: not waiting");
    remove_vms();
}

static void test_overflow_is_announced_in_the_stream(void **state)
{
    (void)state;
    add_vms();
    room_per_look = 0;
    /* 4096 bytes of queue, 60 bytes a record: alpha loses most of 200 lines. */
    for (int i = 0; i < 200; i++)
        put_vm(&vm_a, 1, "alpha: line %04d of a flood ...............", i);
    put_vm(&vm_b, 2, "beta: %d", 0);
    assert_true(vm_a.lost_lines > 100);
    uint64_t lost = vm_a.lost_bytes;
    room_per_look = 7;
    for (int i = 0; i < 100000 && console_output_pending(); i++)
        console_service();
    int n = split_wire();
    int kept = 0, notices = 0;
    for (int i = 0; i < n; i++) {
        if (strstr(wire_lines[i], "alpha: line "))
            kept++;
        if (strstr(wire_lines[i], "VM alpha: console:")) {
            char want[96];
            snprintf(want, sizeof(want), "[cpu1] VM alpha: console: %lu bytes lost", (unsigned long)lost);
            assert_string_equal(wire_lines[i], want);
            notices++;
            /* Where the loss happened: after the lines that fitted, before beta's. */
            assert_int_equal(i, kept);
            assert_string_equal(wire_lines[i + 1], "[cpu2] beta: 0");
        }
    }
    assert_int_equal(notices, 1);
    assert_int_equal((uint64_t)kept + vm_a.lost_lines, 200);
    /* Later lines carry no stale count. */
    wire_len = 0;
    put_vm(&vm_a, 1, "alpha: again %d", 1);
    console_flush();
    assert_int_equal(split_wire(), 1);
    assert_string_equal(wire_lines[0], "[cpu1] alpha: again 1");
    remove_vms();
}

static void test_keel_lines_are_never_lost(void **state)
{
    (void)state;
    room_per_look = 0; /* nothing leaves except by waiting */
    cpu_now = 1;
    /* Far more than Keel's 64 KiB queue holds. */
    for (int i = 0; i < 3000; i++)
        kprintf("VMM: report line %d with some padding to make it longer .....\n", i);
    assert_true(waited_bytes > 0);
    console_flush();
    int n = split_wire();
    assert_int_equal(n, 3000);
    for (int i = 0; i < n; i++) {
        char want[128];
        snprintf(want, sizeof(want), "[cpu1] VMM: report line %d with some padding to make it longer .....", i);
        assert_string_equal(wire_lines[i], want);
    }
}

static void test_emergency_sends_the_queue_first(void **state)
{
    (void)state;
    add_vms();
    room_per_look = 0;
    put_vm(&vm_a, 1, "alpha: before %d", 1);
    cpu_now = 0;
    kprintf("VMM: queued\n");
    assert_int_equal(wire_len, 0);
    console_emergency();
    kprintf("EXCEPTION: at once\n");
    /* No service call in between: the emergency line went out by itself. */
    assert_int_equal(split_wire(), 3);
    assert_string_equal(wire_lines[0], "[cpu1] alpha: before 1");
    assert_string_equal(wire_lines[1], "[cpu0] VMM: queued");
    assert_string_equal(wire_lines[2], "[cpu0] EXCEPTION: at once");
    /* A guest line after the emergency goes out at once as well. */
    put_vm(&vm_b, 2, "beta: after %d", 1);
    assert_int_equal(split_wire(), 4);
    assert_string_equal(wire_lines[3], "[cpu2] beta: after 1");
    console_start_queueing();
    remove_vms();
}

static char typed[64];
static size_t typed_len;
static void on_input(char c)
{
    typed[typed_len++] = c;
    /* The handler may print: that must not deadlock the drain. */
    if (c == '\n')
        kprintf("VMM: got a line\n");
}

static void test_input_reaches_the_handler(void **state)
{
    (void)state;
    assert_false(console_input_wanted());
    console_set_input(on_input);
    assert_true(console_input_wanted());
    rx_script = "hello\nworld, more than sixteen bytes\n";
    for (int i = 0; i < 10; i++)
        console_service();
    assert_int_equal(typed_len, strlen("hello\nworld, more than sixteen bytes\n"));
    assert_memory_equal(typed, "hello\nworld, more than sixteen bytes\n", typed_len);
    console_flush();
    assert_int_equal(split_wire(), 2);
    console_set_input(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffer_whole_lines_in_order),
        cmocka_unit_test(test_buffer_line_text_survives_wrap),
        cmocka_unit_test(test_buffer_overflow_is_counted_and_placed),
        cmocka_unit_test(test_buffer_numbers_order_across_queues),
        cmocka_unit_test_setup_teardown(test_drain_keeps_lines_whole_and_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_never_waits_on_the_uart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow_is_announced_in_the_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keel_lines_are_never_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emergency_sends_the_queue_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_input_reaches_the_handler, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
