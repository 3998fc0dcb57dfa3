/* Split virtqueues from the device side (vmm/dev/virtqueue.c) against hostile drivers:
 * rings outside RAM or misaligned, bad sizes, loops (short and as long as the queue),
 * links and heads beyond the queue, buffers outside RAM, address + length wrapping,
 * huge lengths, chains adding past 4 GiB, avail idx jumping more than the queue size,
 * readable after writable descriptors, indirect descriptors (not offered), and that
 * the device writes only into writable buffers. A broken queue stays broken until reset.
 * SOURCES: vmm/dev/virtqueue.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/virtqueue.h"
#include "tests/unit/console_capture.h"

#define RAM_SIZE (1u << 20)
#define QSIZE 8
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define BUF 0x10000

static uint8_t *ram_bytes;
static struct dev_ram ram;
static struct virtq q;
static struct virtq_chain chain;
static uint16_t avail_idx;

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *d = ram_bytes + DESC + 16 * i;
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}

/* The driver offers head (the slot taken from its own avail idx). */
static void offer(uint16_t head)
{
    memcpy(ram_bytes + AVAIL + 4 + 2 * (avail_idx % QSIZE), &head, 2);
    avail_idx++;
    memcpy(ram_bytes + AVAIL + 2, &avail_idx, 2);
}

static uint16_t used16(unsigned off)
{
    uint16_t v;
    memcpy(&v, ram_bytes + USED + off, 2);
    return v;
}

static uint32_t used32(unsigned off)
{
    uint32_t v;
    memcpy(&v, ram_bytes + USED + off, 4);
    return v;
}

static void enable(void)
{
    q.desc_gpa = DESC;
    q.avail_gpa = AVAIL;
    q.used_gpa = USED;
    q.size = QSIZE;
    assert_true(virtq_enable(&q, &ram));
}

static int setup(void **state)
{
    (void)state;
    ram_bytes = calloc(1, RAM_SIZE);
    assert_non_null(ram_bytes);
    ram = (struct dev_ram){.hva = ram_bytes, .size = RAM_SIZE};
    virtq_reset(&q, QSIZE, 0xffff);
    avail_idx = 0;
    capture_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ram_bytes);
    return 0;
}

static void expect_broken(const char *why)
{
    assert_int_equal(virtq_pop(&q, &chain), VIRTQ_BROKEN);
    assert_true(q.broken);
    if (!strstr(q.why, why))
        fail_msg("reason \"%s\" does not say \"%s\"", q.why, why);
    /* It stays broken, and nothing was handed back. */
    assert_int_equal(virtq_pop(&q, &chain), VIRTQ_BROKEN);
    assert_int_equal(used16(2), 0);
}

/* ---- good chains ---- */

static void test_read_then_write_chain(void **state)
{
    (void)state;
    enable();
    memcpy(ram_bytes + BUF, "request!", 8);
    set_desc(3, BUF, 8, VIRTQ_DESC_F_NEXT, 5);
    set_desc(5, BUF + 0x100, 4, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    set_desc(1, BUF + 0x200, 3, VIRTQ_DESC_F_WRITE, 0);
    assert_int_equal(virtq_pop(&q, &chain), VIRTQ_EMPTY);
    offer(3);
    assert_int_equal(virtq_pop(&q, &chain), VIRTQ_CHAIN);
    assert_int_equal(chain.head, 3);
    assert_int_equal(chain.nread, 1);
    assert_int_equal(chain.nwrite, 2);
    assert_int_equal(chain.read_bytes, 8);
    assert_int_equal(chain.write_bytes, 7);
    char buf[16] = {0};
    assert_int_equal(virtq_chain_read(&chain, 4, buf, sizeof buf), 4);
    assert_memory_equal(buf, "est!", 4);
    /* Writes span the writable buffers in order, from an offset. */
    assert_int_equal(virtq_chain_write(&chain, 2, "abcdefgh", 8), 5);
    assert_memory_equal(ram_bytes + BUF + 0x102, "ab", 2);
    assert_memory_equal(ram_bytes + BUF + 0x200, "cde", 3);
    assert_int_equal(ram_bytes[BUF + 0x203], 0); /* nothing past the last buffer */
    virtq_push(&q, chain.head, 7);
    assert_int_equal(used16(2), 1);
    assert_int_equal(used32(4), 3);
    assert_int_equal(used32(8), 7);
    assert_int_equal(virtq_pop(&q, &chain), VIRTQ_EMPTY);
}

static void test_write_only_into_writable_buffers(void **state)
{
    (void)state;
    enable();
    set_desc(0, BUF, 16, 0, 0); /* device-readable only */
    offer(0);
    assert_int_equal(virtq_pop(&q, &chain), VIRTQ_CHAIN);
    assert_int_equal(virtq_chain_write(&chain, 0, "xxxx", 4), 0);
    for (int i = 0; i < 16; i++)
        assert_int_equal(ram_bytes[BUF + i], 0);
}

static void test_chain_as_long_as_the_queue(void **state)
{
    (void)state;
    enable();
    for (unsigned i = 0; i < QSIZE; i++)
        set_desc(i, BUF + 16 * i, 16, i + 1 < QSIZE ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
    offer(0);
    assert_int_equal(virtq_pop(&q, &chain), VIRTQ_CHAIN);
    assert_int_equal(chain.nread, QSIZE);
}

static void test_avail_idx_wraps_at_16_bits(void **state)
{
    (void)state;
    enable();
    set_desc(0, BUF, 16, 0, 0);
    /* The device has consumed 65535 chains; the next index wraps to 0. */
    q.last_avail = 0xffff;
    avail_idx = 0xffff;
    offer(0);
    assert_int_equal(avail_idx, 0);
    assert_int_equal(virtq_pop(&q, &chain), VIRTQ_CHAIN);
    assert_int_equal(virtq_pop(&q, &chain), VIRTQ_EMPTY);
}

static void test_zero_length_buffer(void **state)
{
    (void)state;
    enable();
    set_desc(0, 0xffffffffffffull, 0, 0, 0); /* empty: its address is never used */
    offer(0);
    assert_int_equal(virtq_pop(&q, &chain), VIRTQ_CHAIN);
    assert_int_equal(chain.read_bytes, 0);
}

static void test_no_interrupt_flag(void **state)
{
    (void)state;
    enable();
    assert_true(virtq_wants_interrupt(&q));
    uint16_t flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
    memcpy(ram_bytes + AVAIL, &flags, 2);
    assert_false(virtq_wants_interrupt(&q));
}

/* ---- hostile chains ---- */

static void test_two_descriptor_loop(void **state)
{
    (void)state;
    enable();
    set_desc(0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(1, BUF, 16, VIRTQ_DESC_F_NEXT, 0);
    offer(0);
    expect_broken("longer than the queue size");
}

static void test_self_loop(void **state)
{
    (void)state;
    enable();
    set_desc(4, BUF, 16, VIRTQ_DESC_F_NEXT, 4);
    offer(4);
    expect_broken("(a loop)");
}

static void test_next_beyond_the_queue(void **state)
{
    (void)state;
    enable();
    set_desc(0, BUF, 16, VIRTQ_DESC_F_NEXT, QSIZE);
    offer(0);
    expect_broken("links to 8, beyond the queue");
}

static void test_head_beyond_the_queue(void **state)
{
    (void)state;
    enable();
    offer(QSIZE);
    expect_broken("offers head 8");
}

static void test_head_0xffff(void **state)
{
    (void)state;
    enable();
    offer(0xffff);
    expect_broken("offers head 65535");
}

static void test_buffer_outside_ram(void **state)
{
    (void)state;
    enable();
    set_desc(0, RAM_SIZE - 8, 16, 0, 0); /* runs 8 bytes past the end */
    offer(0);
    expect_broken("not wholly inside the VM's RAM");
}

/* A VM with RAM at 4 GiB: a buffer there is the RAM's, reached through its own block;
 * one that runs past its end is refused. */
static void test_buffers_at_4g(void **state)
{
    (void)state;
    static uint8_t high[0x2000];
    ram.high_hva = high;
    ram.high_size = sizeof high;
    enable();
    set_desc(0, 0x100000000ull + 0x1000, 8, VIRTQ_DESC_F_WRITE, 0);
    offer(0);
    assert_int_equal(virtq_pop(&q, &chain), VIRTQ_CHAIN);
    assert_int_equal(virtq_chain_write(&chain, 0, "high ram", 8), 8);
    assert_memory_equal(high + 0x1000, "high ram", 8);
    set_desc(1, 0x100000000ull + sizeof high - 4, 8, 0, 0);
    offer(1);
    expect_broken("not wholly inside the VM's RAM");
}

static void test_buffer_far_outside_ram(void **state)
{
    (void)state;
    enable();
    set_desc(0, 0xfee00000ull, 4, VIRTQ_DESC_F_WRITE, 0); /* the local APIC, not RAM */
    offer(0);
    expect_broken("buffer at 0xfee00000");
}

static void test_address_plus_length_wraps(void **state)
{
    (void)state;
    enable();
    set_desc(0, 0xfffffffffffff000ull, 0x2000, 0, 0);
    offer(0);
    expect_broken("wraps");
}

static void test_huge_length(void **state)
{
    (void)state;
    enable();
    set_desc(0, BUF, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0);
    offer(0);
    expect_broken("not wholly inside");
}

static void test_chain_past_4_gib(void **state)
{
    (void)state;
    /* A RAM said to be 16 GiB (only its first MiB is backed: the buffers are checked,
     * never touched). */
    ram.size = 16ull << 30;
    enable();
    set_desc(0, 1ull << 32, 0xffffffffu, VIRTQ_DESC_F_NEXT, 1);
    set_desc(1, 2ull << 32, 2, 0, 0);
    offer(0);
    expect_broken("more than 4 GiB - 1 bytes");
}

static void test_avail_idx_jumps_past_the_queue(void **state)
{
    (void)state;
    enable();
    set_desc(0, BUF, 16, 0, 0);
    uint16_t idx = QSIZE + 1;
    memcpy(ram_bytes + AVAIL + 2, &idx, 2);
    expect_broken("more than the queue size 8 ahead");
}

static void test_avail_idx_going_backwards(void **state)
{
    (void)state;
    enable();
    q.last_avail = 5;
    uint16_t idx = 4; /* 0xffff chains ahead, as 16-bit arithmetic sees it */
    memcpy(ram_bytes + AVAIL + 2, &idx, 2);
    expect_broken("ahead of the device (at 5)");
}

static void test_readable_after_writable(void **state)
{
    (void)state;
    enable();
    set_desc(0, BUF, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    set_desc(1, BUF + 16, 16, 0, 0);
    offer(0);
    expect_broken("device-readable after a device-writable one");
}

static void test_indirect_not_offered(void **state)
{
    (void)state;
    enable();
    set_desc(0, BUF, 32, VIRTQ_DESC_F_INDIRECT, 0);
    offer(0);
    expect_broken("indirect");
}

static void test_reset_clears_a_broken_queue(void **state)
{
    (void)state;
    enable();
    offer(QSIZE);
    assert_int_equal(virtq_pop(&q, &chain), VIRTQ_BROKEN);
    virtq_reset(&q, QSIZE, 0xffff);
    assert_false(q.broken);
    assert_false(q.enabled);
    avail_idx = 0;
    memset(ram_bytes + AVAIL, 0, 0x100);
    enable();
    set_desc(0, BUF, 16, 0, 0);
    offer(0);
    assert_int_equal(virtq_pop(&q, &chain), VIRTQ_CHAIN);
}

static void test_disabled_queue_takes_nothing(void **state)
{
    (void)state;
    set_desc(0, BUF, 16, 0, 0);
    offer(0);
    assert_int_equal(virtq_pop(&q, &chain), VIRTQ_EMPTY);
    virtq_push(&q, 0, 0); /* and writes nothing */
    assert_int_equal(used16(2), 0);
}

/* ---- queue set-up ---- */

static void expect_enable_refused(const char *why)
{
    assert_false(virtq_enable(&q, &ram));
    assert_false(q.enabled);
    if (!strstr(q.why, why))
        fail_msg("reason \"%s\" does not say \"%s\"", q.why, why);
}

static void test_enable_checks_size(void **state)
{
    (void)state;
    q.desc_gpa = DESC, q.avail_gpa = AVAIL, q.used_gpa = USED;
    q.size = 6;
    expect_enable_refused("queue size 6 is not a power of two");
    virtq_reset(&q, QSIZE, 0xffff);
    q.desc_gpa = DESC, q.avail_gpa = AVAIL, q.used_gpa = USED;
    q.size = 16;
    expect_enable_refused("up to 8");
    virtq_reset(&q, QSIZE, 0xffff);
    q.desc_gpa = DESC, q.avail_gpa = AVAIL, q.used_gpa = USED;
    q.size = 0;
    expect_enable_refused("queue size 0");
}

static void test_enable_checks_rings(void **state)
{
    (void)state;
    static const struct {
        uint64_t desc, avail, used;
        const char *why;
    } bad[] = {
        {DESC + 8, AVAIL, USED, "descriptor table at 0x1008 is not aligned"},
        {DESC, AVAIL + 1, USED, "available ring at 0x2001 is not aligned"},
        {DESC, AVAIL, USED + 2, "used ring at 0x3002 is not aligned"},
        {RAM_SIZE - 64, AVAIL, USED, "descriptor table at 0xfffc0 (128 bytes) is not inside"},
        {DESC, RAM_SIZE - 16, USED, "available ring at 0xffff0 (22 bytes)"},
        {DESC, AVAIL, RAM_SIZE - 64, "used ring at 0xfffc0 (70 bytes)"},
        {0xfffffffffffffff0ull, AVAIL, USED, "descriptor table at 0xfffffffffffffff0"},
        {DESC, AVAIL, 0xfec00000ull, "used ring at 0xfec00000"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        virtq_reset(&q, QSIZE, 0xffff);
        q.desc_gpa = bad[i].desc, q.avail_gpa = bad[i].avail, q.used_gpa = bad[i].used;
        expect_enable_refused(bad[i].why);
    }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_read_then_write_chain),     T(test_write_only_into_writable_buffers),
        T(test_chain_as_long_as_the_queue), T(test_avail_idx_wraps_at_16_bits),
        T(test_zero_length_buffer),         T(test_no_interrupt_flag),
        T(test_two_descriptor_loop),        T(test_self_loop),
        T(test_next_beyond_the_queue),      T(test_head_beyond_the_queue),
        T(test_head_0xffff),                T(test_buffer_outside_ram),
        T(test_buffers_at_4g),              T(test_buffer_far_outside_ram),     T(test_address_plus_length_wraps),
        T(test_huge_length),                T(test_chain_past_4_gib),
        T(test_avail_idx_jumps_past_the_queue), T(test_avail_idx_going_backwards),
        T(test_readable_after_writable),    T(test_indirect_not_offered),
        T(test_reset_clears_a_broken_queue), T(test_disabled_queue_takes_nothing),
        T(test_enable_checks_size),         T(test_enable_checks_rings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
