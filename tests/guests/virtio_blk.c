/* virtio-blk: drives Keel's virtio-blk (and, when there, virtio-console) as an OS
 * driver does, through the PCI host bridge's ports 0xCF8/0xCFC and MMIO. No hypercalls:
 * only what the virtual PC offers.
 *
 * It finds 1AF4:1042 on bus 0, walks its capabilities (common, notify, ISR, device
 * configuration, MSI-X), sizes BAR 0 and moves it to 0xFE800000, negotiates
 * VERSION_1, checks the capacity against `sectors=` (default 64), then reads sectors
 * and checks them against the pattern the test wrote (byte i of sector s is
 * (s * 31 + i) & 0xff):
 *   - with INTx: the IRQ of the interrupt line register through the IOAPIC (level,
 *     active low, as the _PRT says), the ISR read in the handler;
 *   - with MSI-X: the queue's vector to this CPU's local APIC, no INTx meanwhile;
 *   - a write to sector 2 read back (or, when the device offers RO, refused with IOERR
 *     and the sector unchanged), FLUSH, GET_ID;
 *   - a looping descriptor chain: DEVICE_NEEDS_RESET and a configuration interrupt,
 *     then a reset and a good read again.
 * With a virtio-console (1AF4:1043) it writes a line through its transmit queue.
 * Output: `virtio-blk: ok <check>: ...` per check, `virtio-blk: all <n> checks passed`
 * (exit 0) or `virtio-blk: FAIL <check>: ...` and exit 1. */
#include "guest.h"

const char guest_prefix[] = "virtio-blk:";

#define LAPIC_BASE 0xfee00000u
#define IOAPIC_BASE 0xfec00000u
#define NEW_BAR0 0xfe800000u
#define VEC_INTX 0x50
#define VEC_QUEUE 0x51
#define VEC_CONFIG 0x52
#define QSIZE 8
#define SECTOR 512

/* PCI and virtio register offsets (virtio 1.1, 4.1.4). */
#define CFG_COMMAND 0x04
#define CFG_STATUS 0x06
#define CFG_BAR0 0x10
#define CFG_CAPS 0x34
#define CFG_INT_LINE 0x3c
#define CMD_MEMORY 0x2
#define CMD_MASTER 0x4
#define COMMON_DFSELECT 0x00
#define COMMON_DF 0x04
#define COMMON_GFSELECT 0x08
#define COMMON_GF 0x0c
#define COMMON_MSIX 0x10
#define COMMON_STATUS 0x14
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_SIZE 0x18
#define COMMON_Q_MSIX 0x1a
#define COMMON_Q_ENABLE 0x1c
#define COMMON_Q_NOFF 0x1e
#define COMMON_Q_DESC 0x20
#define COMMON_Q_AVAIL 0x28
#define COMMON_Q_USED 0x30
#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 0x40
#define F_RO (1u << 5)
#define NO_VECTOR 0xffff

struct gate {
    uint16_t offset_lo, selector;
    uint8_t zero, type;
    uint16_t offset_hi;
} __attribute__((packed));
struct table_desc {
    uint16_t limit;
    uint32_t base;
} __attribute__((packed));
struct iframe;

static struct gate idt[256] __attribute__((aligned(8)));
static volatile uint32_t intx_count, queue_count, config_count, isr_seen;
static int checks, failures;

struct virtio_fn {
    unsigned slot;
    uint32_t common, notify, isr, device, mult, msix_table, msix_cap;
    uint16_t noff[2];
};
static struct virtio_fn blk, con;

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};
struct ring {
    struct desc desc[QSIZE];
    uint16_t avail_flags, avail_idx, avail_ring[QSIZE], used_event;
    uint8_t pad[4096 - 16 * QSIZE - 6 - 2 * QSIZE];
    uint16_t used_flags, used_idx;
    struct {
        uint32_t id, len;
    } used_ring[QSIZE];
} __attribute__((aligned(4096)));
static struct ring rings[2];
static uint16_t next_avail[2];

static struct {
    uint32_t type, reserved;
    uint64_t sector;
} req __attribute__((aligned(16)));
static uint8_t data[4 * SECTOR] __attribute__((aligned(16)));
static volatile uint8_t status_byte;

static void ok(const char *check, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ok(const char *check, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("virtio-blk: ok %s: ", check);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    checks++;
}

static bool fail(const char *check, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(const char *check, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("virtio-blk: FAIL %s: ", check);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    failures++;
    return false;
}

static uint32_t mmio32(uint32_t a) { return *(volatile uint32_t *)(uintptr_t)a; }
static uint16_t mmio16(uint32_t a) { return *(volatile uint16_t *)(uintptr_t)a; }
static uint8_t mmio8(uint32_t a) { return *(volatile uint8_t *)(uintptr_t)a; }
static void w32(uint32_t a, uint32_t v) { *(volatile uint32_t *)(uintptr_t)a = v; }
static void w16(uint32_t a, uint16_t v) { *(volatile uint16_t *)(uintptr_t)a = v; }
static void w8(uint32_t a, uint8_t v) { *(volatile uint8_t *)(uintptr_t)a = v; }

static uint32_t cfg32(unsigned slot, unsigned reg)
{
    outl(0xcf8, 0x80000000u | slot << 11 | (reg & 0xfc));
    return inl(0xcfc);
}
static uint8_t cfg8(unsigned slot, unsigned reg)
{
    return (uint8_t)(cfg32(slot, reg) >> (8 * (reg & 3)));
}
static uint16_t cfg16(unsigned slot, unsigned reg)
{
    return (uint16_t)(cfg32(slot, reg) >> (8 * (reg & 2)));
}
static void cfg_w32(unsigned slot, unsigned reg, uint32_t v)
{
    outl(0xcf8, 0x80000000u | slot << 11 | reg);
    outl(0xcfc, v);
}
static void cfg_w16(unsigned slot, unsigned reg, uint16_t v)
{
    outl(0xcf8, 0x80000000u | slot << 11 | (reg & 0xfc));
    outw((uint16_t)(0xcfc + (reg & 2)), v);
}

static void lapic_eoi(void) { w32(LAPIC_BASE + 0xb0, 0); }

#define HANDLER(name) __attribute__((interrupt)) static void name(struct iframe *f)
HANDLER(on_intx)
{
    (void)f;
    intx_count++;
    isr_seen |= mmio8(blk.isr); /* acknowledges: INTA# goes low */
    lapic_eoi();
}
HANDLER(on_queue)
{
    (void)f;
    queue_count++;
    lapic_eoi();
}
HANDLER(on_config)
{
    (void)f;
    config_count++;
    lapic_eoi();
}

static void set_gate(int vec, void (*fn)(struct iframe *))
{
    uint32_t a = (uint32_t)(uintptr_t)fn;
    idt[vec] = (struct gate){(uint16_t)a, 0x08, 0, 0x8e, (uint16_t)(a >> 16)};
}

static void intr_setup(void)
{
    struct table_desc cur;
    __asm__ volatile("sidt %0" : "=m"(cur));
    memcpy(idt, (const void *)(uintptr_t)cur.base, (cur.limit + 1u) < sizeof(idt) ? cur.limit + 1u : sizeof(idt));
    set_gate(VEC_INTX, on_intx);
    set_gate(VEC_QUEUE, on_queue);
    set_gate(VEC_CONFIG, on_config);
    struct table_desc d = {sizeof(idt) - 1, (uint32_t)(uintptr_t)idt};
    __asm__ volatile("lidt %0" ::"m"(d));
    w32(LAPIC_BASE + 0xf0, 0x1ff); /* software-enable, spurious vector 0xFF */
    __asm__ volatile("sti");
}

static void ioapic_route(unsigned pin, uint8_t vector, bool masked)
{
    uint32_t lo = vector | 1u << 13 | 1u << 15 | (masked ? 1u << 16 : 0); /* active low, level */
    w32(IOAPIC_BASE, 0x10 + 2 * pin + 1);
    w32(IOAPIC_BASE + 0x10, (mmio32(LAPIC_BASE + 0x20) >> 24) << 24);
    w32(IOAPIC_BASE, 0x10 + 2 * pin);
    w32(IOAPIC_BASE + 0x10, lo);
}

/* ---- the function ---- */

static unsigned find(uint16_t device)
{
    for (unsigned s = 1; s < 32; s++)
        if (cfg32(s, 0) == ((uint32_t)device << 16 | 0x1af4))
            return s;
    return 0;
}

static bool probe(struct virtio_fn *fn, const char *name)
{
    uint32_t bar0 = cfg32(fn->slot, CFG_BAR0) & ~0xfu;
    if (!(cfg16(fn->slot, CFG_STATUS) & 0x10))
        return fail("caps", "%s: no capability list", name);
    for (unsigned p = cfg8(fn->slot, CFG_CAPS), n = 0; p && n < 48; p = cfg8(fn->slot, p + 1), n++) {
        uint8_t id = cfg8(fn->slot, p);
        if (id == 0x11) {
            uint32_t t = cfg32(fn->slot, p + 4);
            fn->msix_cap = p;
            fn->msix_table = (cfg32(fn->slot, CFG_BAR0 + 4 * (t & 7)) & ~0xfu) + (t & ~7u);
            continue;
        }
        if (id != 0x09)
            continue;
        uint32_t at = bar0 + cfg32(fn->slot, p + 8);
        switch (cfg8(fn->slot, p + 3)) {
        case 1: fn->common = at; break;
        case 2: fn->notify = at; fn->mult = cfg32(fn->slot, p + 16); break;
        case 3: fn->isr = at; break;
        case 4: fn->device = at; break;
        default: break;
        }
    }
    if (!fn->common || !fn->notify || !fn->isr || !fn->msix_cap)
        return fail("caps", "%s: common 0x%x notify 0x%x isr 0x%x msix %u", name, fn->common, fn->notify, fn->isr,
                    fn->msix_cap);
    return true;
}

static void status_or(struct virtio_fn *fn, uint8_t bits)
{
    w8(fn->common + COMMON_STATUS, mmio8(fn->common + COMMON_STATUS) | bits);
}

static bool negotiate(struct virtio_fn *fn, uint32_t *features_lo)
{
    w8(fn->common + COMMON_STATUS, 0);
    status_or(fn, S_ACK);
    status_or(fn, S_DRIVER);
    w32(fn->common + COMMON_DFSELECT, 0);
    uint32_t lo = mmio32(fn->common + COMMON_DF);
    w32(fn->common + COMMON_DFSELECT, 1);
    uint32_t hi = mmio32(fn->common + COMMON_DF);
    if (!(hi & 1))
        return fail("features", "VIRTIO_F_VERSION_1 not offered (high word 0x%x)", hi);
    w32(fn->common + COMMON_GFSELECT, 0);
    w32(fn->common + COMMON_GF, lo);
    w32(fn->common + COMMON_GFSELECT, 1);
    w32(fn->common + COMMON_GF, 1);
    status_or(fn, S_FEATURES_OK);
    if (!(mmio8(fn->common + COMMON_STATUS) & S_FEATURES_OK))
        return fail("features", "FEATURES_OK refused for 0x%x_%08x", hi, lo);
    if (features_lo)
        *features_lo = lo;
    return true;
}

static void queue_setup(struct virtio_fn *fn, unsigned q, struct ring *r, uint16_t vector)
{
    memset(r, 0, sizeof(*r));
    w16(fn->common + COMMON_Q_SELECT, (uint16_t)q);
    w16(fn->common + COMMON_Q_SIZE, QSIZE);
    w16(fn->common + COMMON_Q_MSIX, vector);
    w32(fn->common + COMMON_Q_DESC, (uint32_t)(uintptr_t)r->desc);
    w32(fn->common + COMMON_Q_DESC + 4, 0);
    w32(fn->common + COMMON_Q_AVAIL, (uint32_t)(uintptr_t)&r->avail_flags);
    w32(fn->common + COMMON_Q_AVAIL + 4, 0);
    w32(fn->common + COMMON_Q_USED, (uint32_t)(uintptr_t)&r->used_flags);
    w32(fn->common + COMMON_Q_USED + 4, 0);
    fn->noff[q] = mmio16(fn->common + COMMON_Q_NOFF);
    w16(fn->common + COMMON_Q_ENABLE, 1);
}

static void submit(struct virtio_fn *fn, unsigned q, struct ring *r, uint16_t *avail, uint16_t head)
{
    r->avail_ring[*avail % QSIZE] = head;
    __asm__ volatile("" ::: "memory");
    r->avail_idx = ++*avail;
    __asm__ volatile("" ::: "memory");
    w16(fn->notify + fn->noff[q] * fn->mult, (uint16_t)q);
}

/* One block request: header, data (len bytes, device-writable for IN/GET_ID), status.
 * Returns the status byte, or -1 when nothing came back. */
static int blk_request(uint32_t type, uint64_t sector, uint32_t len, bool in)
{
    struct ring *r = &rings[0];
    req.type = type;
    req.reserved = 0;
    req.sector = sector;
    status_byte = 0xee;
    r->desc[0] = (struct desc){(uint32_t)(uintptr_t)&req, 16, 1, len ? 1 : 2};
    r->desc[1] = (struct desc){(uint32_t)(uintptr_t)data, len, (uint16_t)(1 | (in ? 2 : 0)), 2};
    r->desc[2] = (struct desc){(uint32_t)(uintptr_t)&status_byte, 1, 2, 0};
    uint16_t before = r->used_idx;
    submit(&blk, 0, r, &next_avail[0], 0);
    for (uint32_t spin = 0; spin < 1000000 && *(volatile uint16_t *)&r->used_idx == before; spin++)
        __asm__ volatile("pause");
    if (*(volatile uint16_t *)&r->used_idx == before)
        return -1;
    return status_byte;
}

static bool pattern_ok(const uint8_t *p, uint64_t sector, unsigned count)
{
    for (unsigned s = 0; s < count; s++)
        for (unsigned i = 0; i < SECTOR; i++)
            if (p[s * SECTOR + i] != (uint8_t)((sector + s) * 31 + i))
                return false;
    return true;
}

static bool wait_for(volatile uint32_t *counter, uint32_t want)
{
    for (uint32_t spin = 0; spin < 2000000 && *counter < want; spin++)
        __asm__ volatile("pause");
    return *counter >= want;
}

static void program_vector(unsigned v, uint8_t vector, bool masked)
{
    uint32_t e = blk.msix_table + 16 * v;
    w32(e, LAPIC_BASE | (mmio32(LAPIC_BASE + 0x20) >> 24) << 12);
    w32(e + 4, 0);
    w32(e + 8, vector);
    w32(e + 12, masked ? 1 : 0);
}

static void run_blk(uint32_t sectors)
{
    /* BAR sizing and a move, with decoding off meanwhile. */
    uint16_t cmd = cfg16(blk.slot, CFG_COMMAND);
    cfg_w16(blk.slot, CFG_COMMAND, cmd & ~CMD_MEMORY);
    uint32_t old = cfg32(blk.slot, CFG_BAR0);
    cfg_w32(blk.slot, CFG_BAR0, 0xffffffffu);
    uint32_t mask = cfg32(blk.slot, CFG_BAR0);
    cfg_w32(blk.slot, CFG_BAR0, NEW_BAR0);
    cfg_w16(blk.slot, CFG_COMMAND, cmd | CMD_MEMORY | CMD_MASTER);
    if (mask != 0xffffc000u || cfg32(blk.slot, CFG_BAR0) != NEW_BAR0)
        fail("bar", "BAR 0 at 0x%x sized 0x%x, moved to 0x%x", old, mask, cfg32(blk.slot, CFG_BAR0));
    else
        ok("bar", "BAR 0 at 0x%x, 16 KiB (mask 0x%x), moved to 0x%x", old, mask, NEW_BAR0);
    if (!probe(&blk, "virtio-blk"))
        return;
    ok("caps", "common 0x%x notify 0x%x (x%u) isr 0x%x device 0x%x msix table 0x%x", blk.common, blk.notify,
       blk.mult, blk.isr, blk.device, blk.msix_table);

    uint32_t features;
    if (!negotiate(&blk, &features))
        return;
    bool ro = features & F_RO;
    uint32_t cap = mmio32(blk.device), cap_hi = mmio32(blk.device + 4);
    if (cap != sectors || cap_hi)
        fail("capacity", "%u sectors (high 0x%x), want %u", cap, cap_hi, sectors);
    else
        ok("capacity", "%u sectors of 512 bytes, features 0x%x%s", cap, features, ro ? " (read-only)" : "");

    /* INTx through the IOAPIC. */
    unsigned line = cfg8(blk.slot, CFG_INT_LINE);
    ioapic_route(line, VEC_INTX, false);
    w16(blk.common + COMMON_MSIX, NO_VECTOR);
    queue_setup(&blk, 0, &rings[0], NO_VECTOR);
    next_avail[0] = 0;
    status_or(&blk, S_DRIVER_OK);
    int st = blk_request(0, 1, 2 * SECTOR, true);
    if (st != 0 || !pattern_ok(data, 1, 2))
        fail("read-intx", "status %d, data %s", st, pattern_ok(data, 1, 2) ? "right" : "wrong");
    else if (!wait_for(&intx_count, 1) || !(isr_seen & 1))
        fail("read-intx", "no interrupt on IRQ %u (count %u, ISR 0x%x)", line, intx_count, isr_seen);
    else
        ok("read-intx", "sectors 1-2 read, interrupt on IRQ %u (IOAPIC pin, level), ISR bit 0", line);
    ioapic_route(line, VEC_INTX, true);

    /* MSI-X to this CPU's local APIC. */
    w8(blk.common + COMMON_STATUS, 0);
    uint16_t ctl = cfg16(blk.slot, blk.msix_cap + 2);
    cfg_w16(blk.slot, blk.msix_cap + 2, ctl | 0xc000); /* enable, all masked */
    program_vector(0, VEC_CONFIG, false);
    program_vector(1, VEC_QUEUE, false);
    cfg_w16(blk.slot, blk.msix_cap + 2, (ctl | 0x8000) & ~0x4000);
    if (!negotiate(&blk, NULL))
        return;
    w16(blk.common + COMMON_MSIX, 0);
    queue_setup(&blk, 0, &rings[0], 1);
    next_avail[0] = 0;
    status_or(&blk, S_DRIVER_OK);
    uint32_t intx_before = intx_count;
    st = blk_request(0, sectors - 1, SECTOR, true);
    if (st != 0 || !pattern_ok(data, sectors - 1, 1))
        fail("read-msix", "status %d, data %s", st, pattern_ok(data, sectors - 1, 1) ? "right" : "wrong");
    else if (!wait_for(&queue_count, 1) || intx_count != intx_before)
        fail("read-msix", "queue vector count %u, INTx count %u -> %u", queue_count, intx_before, intx_count);
    else
        ok("read-msix", "last sector %u read, MSI-X vector 0x%x, no INTx", sectors - 1, VEC_QUEUE);

    /* What a request costs: 32 one-sector reads, each from its notification to the used
     * ring's update, polled (its MSI-X interrupt comes on top). Not a check. */
    uint64_t best = ~0ull, total = 0;
    for (unsigned i = 0; i < 32; i++) {
        uint64_t t0 = rdtsc();
        st = blk_request(0, i, SECTOR, true);
        uint64_t t = rdtsc() - t0;
        total += t;
        best = t < best ? t : best;
    }
    printf("virtio-blk: note: a 512-byte read costs %llu TSC ticks at best, %llu on average (32 reads)\n",
           (unsigned long long)best, (unsigned long long)(total / 32));
    wait_for(&queue_count, 33);

    /* Write, or its refusal on a read-only disk. */
    for (unsigned i = 0; i < SECTOR; i++)
        data[i] = (uint8_t)(0xa5 ^ i);
    st = blk_request(1, 2, SECTOR, false);
    memset(data, 0, SECTOR);
    int st2 = blk_request(0, 2, SECTOR, true);
    bool written = st2 == 0 && data[0] == 0xa5 && data[511] == (uint8_t)(0xa5 ^ 511);
    if (ro && st == 1 && st2 == 0 && pattern_ok(data, 2, 1))
        ok("write", "refused with IOERR on the read-only disk, sector 2 unchanged");
    else if (!ro && st == 0 && written)
        ok("write", "sector 2 written and read back");
    else
        fail("write", "read-only %d: write status %d, read status %d, data 0x%x", ro, st, st2, data[0]);
    st = blk_request(4, 0, 0, false);
    memset(data, 0, 32);
    st2 = blk_request(8, 0, 20, true);
    if (st != 0 || st2 != 0 || strncmp((const char *)data, "keel-", 5))
        fail("flush-id", "flush status %d, get-id status %d, id '%s'", st, st2, (const char *)data);
    else
        ok("flush-id", "flush done, id '%s'", (const char *)data);

    /* A looping chain: the device needs a reset and says so. */
    struct ring *r = &rings[0];
    r->desc[0] = (struct desc){(uint32_t)(uintptr_t)&req, 16, 1, 1};
    r->desc[1] = (struct desc){(uint32_t)(uintptr_t)data, 16, 1, 0};
    uint32_t cfg_before = config_count;
    submit(&blk, 0, r, &next_avail[0], 0);
    uint8_t s = mmio8(blk.common + COMMON_STATUS);
    if (!(s & S_NEEDS_RESET) || !wait_for(&config_count, cfg_before + 1))
        fail("needs-reset", "status 0x%x, config interrupts %u", s, config_count - cfg_before);
    else
        ok("needs-reset", "a looping chain: status 0x%x, configuration interrupt", s);
    if (negotiate(&blk, NULL)) {
        w16(blk.common + COMMON_MSIX, 0);
        queue_setup(&blk, 0, &rings[0], 1);
        next_avail[0] = 0;
        status_or(&blk, S_DRIVER_OK);
        st = blk_request(0, 0, SECTOR, true);
        if (st != 0 || !pattern_ok(data, 0, 1))
            fail("after-reset", "status %d", st);
        else
            ok("after-reset", "reset, sector 0 read");
    }
}

static void run_console(void)
{
    if (!probe(&con, "virtio-console") || !negotiate(&con, NULL))
        return;
    queue_setup(&con, 0, &rings[0], NO_VECTOR);
    queue_setup(&con, 1, &rings[1], NO_VECTOR);
    next_avail[1] = 0;
    status_or(&con, S_DRIVER_OK);
    static const char line[] = "hello through virtio-console\n";
    memcpy(data, line, sizeof(line) - 1);
    rings[1].desc[0] = (struct desc){(uint32_t)(uintptr_t)data, sizeof(line) - 1, 0, 0};
    submit(&con, 1, &rings[1], &next_avail[1], 0);
    if (*(volatile uint16_t *)&rings[1].used_idx != 1)
        fail("console", "transmit buffer not returned");
    else
        ok("console", "a line sent through the transmit queue");
}

int main(uint32_t magic, uint32_t info_gpa)
{
    (void)magic;
    (void)info_gpa;
    uint32_t sectors = cmdline_u32("sectors", 64, 1, 1u << 20);
    intr_setup();
    blk.slot = find(0x1042);
    con.slot = find(0x1043);
    if (!blk.slot) {
        fail("find", "no 1AF4:1042 on bus 0");
    } else {
        ok("find", "virtio-blk at 00:%02x.0, IRQ %u%s", blk.slot, cfg8(blk.slot, CFG_INT_LINE),
           con.slot ? ", virtio-console too" : "");
        run_blk(sectors);
    }
    if (con.slot)
        run_console();
    if (failures) {
        printf("virtio-blk: %d checks failed\n", failures);
        return GUEST_EXIT_FAIL;
    }
    printf("virtio-blk: all %d checks passed\n", checks);
    return GUEST_EXIT_OK;
}
