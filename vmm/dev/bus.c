/* The per-VM device bus: range bookkeeping, lookup, and the slow half of dispatch
 * (splitting, width refusals, unclaimed accesses). The policy is in bus.h. */
#include "vmm/dev/bus.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

static const char *space_name(uint32_t space)
{
    return space == BUS_PIO ? "ports" : "MMIO";
}

static uint64_t width_mask(unsigned width)
{
    return width >= 8 ? ~0ull : (1ull << (width * 8)) - 1;
}

static void log_unclaimed_port(struct vm_bus *bus, uint16_t port, bool write, unsigned width);

static bool port_seen(const struct vm_bus *bus, uint64_t port)
{
    return bus->ports_seen[port >> 3] & (1u << (port & 7));
}

/* Slot 0: every port no device holds, so the exit path needs no test for "nothing
 * there" (its map entries send only accesses that touch no device here). A port used
 * before costs one bit test; the first use goes out of line. */
static struct bus_result unclaimed_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    *value = ~0ull;
    if (__builtin_expect(!port_seen(dev, offset), 0))
        log_unclaimed_port(dev, (uint16_t)offset, false, width);
    return BUS_OK;
}

static struct bus_result unclaimed_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)value;
    if (__builtin_expect(!port_seen(dev, offset), 0))
        log_unclaimed_port(dev, (uint16_t)offset, true, width);
    return BUS_OK;
}

/* MMIO changes, for lock-free lookups (bus.h). Writers hold the bus lock. */
static void mmio_change_begin(struct vm_bus *bus)
{
    __atomic_store_n(&bus->mmio_seq, bus->mmio_seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void mmio_change_end(struct vm_bus *bus)
{
    __atomic_store_n(&bus->mmio_seq, bus->mmio_seq + 1, __ATOMIC_RELEASE);
}

static uint32_t mmio_read_begin(const struct vm_bus *bus)
{
    uint32_t s;
    while ((s = __atomic_load_n(&bus->mmio_seq, __ATOMIC_ACQUIRE)) & 1)
        __builtin_ia32_pause();
    return s;
}

static bool mmio_read_retry(const struct vm_bus *bus, uint32_t s)
{
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return __atomic_load_n(&bus->mmio_seq, __ATOMIC_RELAXED) != s;
}

#define ALL_PORT_WIDTHS (BUS_WIDTH_1 | BUS_WIDTH_2 | BUS_WIDTH_4)
static const uint16_t unclaimed_entry = BUS_MAP_DIRECT(ALL_PORT_WIDTHS);

static void reset_ports(struct vm_bus *bus)
{
    for (uint32_t p = 0; p < BUS_PORTS; p++)
        bus->port_map[p] = unclaimed_entry;
}

void vm_bus_init(struct vm_bus *bus, const char *vm_name)
{
    memset(bus, 0, sizeof(*bus));
    bus->vm_name = vm_name;
    bus->range[0] = (struct bus_range){.read = unclaimed_read, .write = unclaimed_write, .dev = bus,
                                       .len = BUS_PORTS, .owner = "unclaimed", .space = BUS_PIO,
                                       .widths = ALL_PORT_WIDTHS};
    reset_ports(bus);
}

void vm_bus_destroy(struct vm_bus *bus)
{
    spin_lock(&bus->lock);
    mmio_change_begin(bus);
    for (int i = 1; i <= BUS_MAX_RANGES; i++)
        bus->range[i].used = false;
    reset_ports(bus);
    bus->mmio_count = 0;
    mmio_change_end(bus);
    spin_unlock(&bus->lock);
}

/* The last byte, so a range ending at 2^64 needs no 65-bit arithmetic. */
static uint64_t last_of(uint64_t base, uint64_t len)
{
    return base + (len - 1);
}

/* A registered range (other than skip) intersecting [base, base + len), or -1. */
static int overlapping(const struct vm_bus *bus, uint32_t space, uint64_t base, uint64_t len, int skip)
{
    uint64_t last = last_of(base, len);
    for (int i = 1; i <= BUS_MAX_RANGES; i++) {
        const struct bus_range *r = &bus->range[i];
        if (i == skip || !r->used || r->space != space)
            continue;
        if (base <= last_of(r->base, r->len) && r->base <= last)
            return i;
    }
    return -1;
}

static const char *range_problem(uint32_t space, uint64_t base, uint64_t len, uint32_t widths)
{
    if (space != BUS_PIO && space != BUS_MMIO)
        return "unknown address space";
    if (!len)
        return "the range is empty";
    if (len - 1 > ~0ull - base)
        return "the range wraps past the top of the address space";
    if (space == BUS_PIO && (base >= BUS_PORTS || len > BUS_PORTS - base))
        return "the range runs past port 0xffff";
    uint32_t allowed = space == BUS_PIO ? (BUS_WIDTH_1 | BUS_WIDTH_2 | BUS_WIDTH_4)
                                        : (BUS_WIDTH_1 | BUS_WIDTH_2 | BUS_WIDTH_4 | BUS_WIDTH_8);
    if (!widths || (widths & ~allowed))
        return space == BUS_PIO ? "its widths must be some of 1, 2 and 4 bytes"
                                : "its widths must be some of 1, 2, 4 and 8 bytes";
    return NULL;
}

static void refuse(const struct vm_bus *bus, const char *owner, uint32_t space, uint64_t base, uint64_t len,
                   const char *why)
{
    kprintf("VM %s: %s %s 0x%lx-0x%lx not registered: %s\n", bus->vm_name, owner ? owner : "(no owner)",
            space_name(space), base, len ? last_of(base, len) : base, why);
}

static void refuse_overlap(const struct vm_bus *bus, const char *owner, uint32_t space, uint64_t base,
                           uint64_t len, int other)
{
    const struct bus_range *o = &bus->range[other];
    kprintf("VM %s: %s %s 0x%lx-0x%lx not registered: overlaps %s at 0x%lx-0x%lx\n", bus->vm_name, owner,
            space_name(space), base, last_of(base, len), o->owner, o->base, last_of(o->base, o->len));
}

/* Recomputes the direct-dispatch widths of ports [lo, hi) from their slots. */
static void refresh_ports(struct vm_bus *bus, int64_t lo, int64_t hi)
{
    lo = MAX(lo, 0);
    hi = MIN(hi, (int64_t)BUS_PORTS);
    for (int64_t p = lo; p < hi; p++) {
        uint8_t slot = BUS_MAP_SLOT(bus->port_map[p]);
        const struct bus_range *r = &bus->range[slot];
        uint16_t direct = 0;
        for (unsigned w = 1; w <= 4; w <<= 1) {
            bool ok;
            if (slot) {
                ok = (r->widths & w) && (uint64_t)p - r->base + w <= r->len;
            } else {
                ok = true;
                for (unsigned i = 1; i < w && ok; i++)
                    ok = p + i >= (int64_t)BUS_PORTS || !BUS_MAP_SLOT(bus->port_map[p + i]);
            }
            if (ok)
                direct |= BUS_MAP_DIRECT(w);
        }
        bus->port_map[p] = slot | direct;
    }
}

static void map_ports(struct vm_bus *bus, const struct bus_range *r, uint8_t slot)
{
    for (uint64_t p = r->base; p < r->base + r->len; p++)
        bus->port_map[p] = slot;
    /* An unclaimed port up to 3 below may now run into the range. */
    refresh_ports(bus, (int64_t)r->base - 3, (int64_t)(r->base + r->len));
}

static void mmio_insert(struct vm_bus *bus, int slot)
{
    uint32_t i = bus->mmio_count;
    while (i > 0 && bus->range[bus->mmio_order[i - 1]].base > bus->range[slot].base) {
        bus->mmio_order[i] = bus->mmio_order[i - 1];
        i--;
    }
    bus->mmio_order[i] = (uint8_t)slot;
    bus->mmio_count++;
}

static void mmio_erase(struct vm_bus *bus, int slot)
{
    uint32_t i = 0;
    while (i < bus->mmio_count && bus->mmio_order[i] != slot)
        i++;
    for (; i + 1 < bus->mmio_count; i++)
        bus->mmio_order[i] = bus->mmio_order[i + 1];
    bus->mmio_count--;
}

/* Makes a filled-in slot reachable by lookups. */
static void publish(struct vm_bus *bus, int slot)
{
    struct bus_range *r = &bus->range[slot];
    if (r->space == BUS_PIO)
        map_ports(bus, r, (uint8_t)slot);
    else
        mmio_insert(bus, slot);
}

static void unpublish(struct vm_bus *bus, int slot)
{
    struct bus_range *r = &bus->range[slot];
    if (r->space == BUS_PIO)
        map_ports(bus, r, 0);
    else
        mmio_erase(bus, slot);
}

int vm_bus_add(struct vm_bus *bus, const struct bus_region *d)
{
    const char *problem = range_problem(d->space, d->base, d->len, d->widths);
    if (!problem && (!d->ops || !d->ops->read || !d->ops->write))
        problem = "it has no read or no write handler";
    if (!problem && !d->owner)
        problem = "it has no owner";
    if (problem) {
        refuse(bus, d->owner, d->space, d->base, d->len, problem);
        return -BUS_EINVAL;
    }
    spin_lock(&bus->lock);
    int other = overlapping(bus, d->space, d->base, d->len, -1);
    int slot = -1;
    for (int i = 1; i <= BUS_MAX_RANGES && slot < 0 && other < 0; i++)
        if (!bus->range[i].used)
            slot = i;
    if (slot >= 0) {
        mmio_change_begin(bus);
        bus->range[slot] = (struct bus_range){.read = d->ops->read, .write = d->ops->write, .dev = d->dev,
                                              .base = d->base, .len = d->len, .owner = d->owner,
                                              .space = (uint8_t)d->space, .widths = (uint8_t)d->widths,
                                              .used = true};
        publish(bus, slot);
        mmio_change_end(bus);
    }
    spin_unlock(&bus->lock);
    if (other >= 0) {
        refuse_overlap(bus, d->owner, d->space, d->base, d->len, other);
        return -BUS_EOVERLAP;
    }
    if (slot < 0) {
        kprintf("VM %s: %s %s 0x%lx-0x%lx not registered: the bus is full (%u ranges)\n", bus->vm_name, d->owner,
                space_name(d->space), d->base, last_of(d->base, d->len), (unsigned)BUS_MAX_RANGES);
        return -BUS_EFULL;
    }
    return slot;
}

static bool valid_id(const struct vm_bus *bus, int id)
{
    return id >= 1 && id <= BUS_MAX_RANGES && bus->range[id].used;
}

int vm_bus_move(struct vm_bus *bus, int id, uint64_t new_base)
{
    spin_lock(&bus->lock);
    if (!valid_id(bus, id)) {
        spin_unlock(&bus->lock);
        kprintf("VM %s: no device range %d to move\n", bus->vm_name, id);
        return -BUS_ENOENT;
    }
    struct bus_range *r = &bus->range[id];
    const char *problem = range_problem(r->space, new_base, r->len, r->widths);
    int other = problem ? -1 : overlapping(bus, r->space, new_base, r->len, id);
    if (!problem && other < 0) {
        mmio_change_begin(bus);
        unpublish(bus, id);
        r->base = new_base;
        publish(bus, id);
        mmio_change_end(bus);
    }
    spin_unlock(&bus->lock);
    if (problem) {
        refuse(bus, r->owner, r->space, new_base, r->len, problem);
        return -BUS_EINVAL;
    }
    if (other >= 0) {
        refuse_overlap(bus, r->owner, r->space, new_base, r->len, other);
        return -BUS_EOVERLAP;
    }
    return id;
}

int vm_bus_remove(struct vm_bus *bus, int id)
{
    spin_lock(&bus->lock);
    bool ok = valid_id(bus, id);
    if (ok) {
        mmio_change_begin(bus);
        unpublish(bus, id);
        bus->range[id].used = false;
        mmio_change_end(bus);
    }
    spin_unlock(&bus->lock);
    if (!ok) {
        kprintf("VM %s: no device range %d to remove\n", bus->vm_name, id);
        return -BUS_ENOENT;
    }
    return 0;
}

/* The slot of the MMIO range holding addr (0: none), from one consistent view of the
 * ranges; *copy (may be NULL) gets the range as it was in that view. */
static int find_mmio(const struct vm_bus *bus, uint64_t addr, struct bus_range *copy)
{
    for (;;) {
        uint32_t seq = mmio_read_begin(bus);
        /* The last range starting at or below addr is the only one that can hold it. */
        uint32_t lo = 0, hi = MIN(bus->mmio_count, (uint32_t)BUS_MAX_RANGES);
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (bus->range[bus->mmio_order[mid]].base <= addr)
                lo = mid + 1;
            else
                hi = mid;
        }
        int slot = 0;
        if (lo) {
            slot = bus->mmio_order[lo - 1];
            const struct bus_range *r = &bus->range[slot];
            if (copy)
                *copy = *r;
            if (addr > last_of(r->base, r->len))
                slot = 0;
        }
        if (!mmio_read_retry(bus, seq))
            return slot;
    }
}

const struct bus_range *vm_bus_find(const struct vm_bus *bus, uint32_t space, uint64_t addr)
{
    if (space == BUS_PIO) {
        uint8_t slot = addr < BUS_PORTS ? BUS_MAP_SLOT(bus->port_map[addr]) : 0;
        return slot ? &bus->range[slot] : NULL;
    }
    int slot = find_mmio(bus, addr, NULL);
    return slot ? &bus->range[slot] : NULL;
}

static __attribute__((noinline)) void log_unclaimed_port(struct vm_bus *bus, uint16_t port, bool write,
                                                          unsigned width)
{
    if (port_seen(bus, port))
        return;
    bus->ports_seen[port >> 3] |= (uint8_t)(1u << (port & 7));
    if (bus->ports_logged == UNCLAIMED_PORTS_LOGGED) {
        bus->ports_unlogged++;
        return;
    }
    bus->ports_logged++;
    kprintf("VM %s: %s of %u byte(s) at unclaimed port 0x%x (reads all-ones, writes ignored; logged once)%s\n",
            bus->vm_name, write ? "write" : "read", width, port,
            bus->ports_logged == UNCLAIMED_PORTS_LOGGED ? "; further unclaimed ports are counted, not logged" : "");
}

static const char *widths_text(uint32_t widths)
{
    static const char *const text[16] = {
        "no", "1-byte", "2-byte", "1- or 2-byte", "4-byte", "1- or 4-byte", "2- or 4-byte", "1-, 2- or 4-byte",
        "8-byte", "1- or 8-byte", "2- or 8-byte", "1-, 2- or 8-byte", "4- or 8-byte", "1-, 4- or 8-byte",
        "2-, 4- or 8-byte", "1-, 2-, 4- or 8-byte",
    };
    return text[widths & 15];
}

static void refuse_width(struct vm_bus *bus, struct bus_range *r, uint64_t addr, unsigned width, bool write)
{
    if (r->width_logged)
        return;
    r->width_logged = true;
    kprintf("VM %s: %u-byte %s at %s 0x%lx of %s, which takes %s accesses: %s (logged once for this device)\n",
            bus->vm_name, width, write ? "write" : "read", r->space == BUS_PIO ? "port" : "guest-physical", addr,
            r->owner, widths_text(r->widths), write ? "ignored" : "reads all-ones");
}

/* Whether any byte of [addr, addr + width) belongs to a range. */
static bool touches_a_range(const struct vm_bus *bus, uint32_t space, uint64_t addr, unsigned width)
{
    if (space == BUS_PIO) {
        for (unsigned i = 0; i < width; i++)
            if (addr + i < BUS_PORTS && BUS_MAP_SLOT(bus->port_map[addr + i]))
                return true;
        return false;
    }
    for (;;) {
        uint32_t seq = mmio_read_begin(bus);
        bool hit = overlapping(bus, space, addr, width, -1) >= 0;
        if (!mmio_read_retry(bus, seq))
            return hit;
    }
}

/* Lowest width the range takes. */
static unsigned min_width(uint32_t widths)
{
    return widths & -widths;
}

struct bus_result vm_bus_access(struct vm_bus *bus, uint32_t space, uint64_t addr, unsigned width, bool write,
                                uint64_t *value)
{
    /* MMIO dispatches on a copy: the range may move meanwhile (bus.h). */
    struct bus_range copy;
    struct bus_range *r = NULL;
    int slot = 0;
    if (space == BUS_PIO) {
        slot = addr < BUS_PORTS ? BUS_MAP_SLOT(bus->port_map[addr]) : 0;
        r = slot ? &bus->range[slot] : NULL;
    } else if ((slot = find_mmio(bus, addr, &copy))) {
        r = &copy;
    }
    if (r) {
        uint64_t off = addr - r->base;
        bool fits = width <= r->len && off <= r->len - width;
        if ((r->widths & width) && fits) {
            if (write)
                return r->write(r->dev, off, width, *value & width_mask(width));
            struct bus_result res = r->read(r->dev, off, width, value);
            *value &= width_mask(width);
            return res;
        }
        if (width == 1 || width < min_width(r->widths)) {
            refuse_width(bus, &bus->range[slot], addr, width, write);
            if (!write)
                *value = width_mask(width);
            return BUS_OK;
        }
    } else if (width == 1 || !touches_a_range(bus, space, addr, width)) {
        /* Nothing there: the whole access is unclaimed, as it always was. */
        if (space == BUS_PIO && addr < BUS_PORTS)
            log_unclaimed_port(bus, (uint16_t)addr, write, width);
        if (!write)
            *value = width_mask(width);
        return BUS_OK;
    }

    unsigned half = width / 2;
    uint64_t lo = write ? *value & width_mask(half) : 0;
    uint64_t hi = write ? (*value >> (half * 8)) & width_mask(half) : 0;
    struct bus_result res = vm_bus_access(bus, space, addr, half, write, &lo);
    if (bus_action(res) != BUS_DONE)
        return res;
    res = vm_bus_access(bus, space, addr + half, half, write, &hi);
    if (!write)
        *value = lo | (hi << (half * 8));
    return res;
}
