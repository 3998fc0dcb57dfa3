/* A VM's device bus: port-I/O and MMIO ranges, each with a handler, the access widths
 * it takes and an owner (the name shown in messages). Ranges can be added, moved and
 * removed while the VM runs (a guest moves its PCI BARs), and never overlap.
 *
 * Width policy, for an access the range's device does not take as it is:
 *   - wider than the device takes, or running past the end of its range: split in two
 *     halves, the lower address first (little-endian), each dispatched on its own, as
 *     an ISA bus splits a wide IN into byte cycles; halves outside every range are
 *     unclaimed;
 *   - narrower than every width the device takes (or 1 byte it does not take): reads
 *     give all-ones, writes are dropped, and the first such access to each range is
 *     logged with its owner.
 * A handler therefore sees only widths it registered, at any offset inside its range
 * (alignment is the device's business).
 *
 * Unclaimed ports read all-ones and drop writes; the first UNCLAIMED_PORTS_LOGGED
 * distinct ones are logged, the rest only counted (the VM's report gives the count),
 * so a port sweep cannot flood the console. Unclaimed MMIO is the caller's: outside
 * every range an EPT violation is reported as such.
 *
 * Adding, moving and removing take the bus lock; lookups do not. Port lookups run on
 * the exit path of any vCPU: port ranges are only added at start-up. MMIO ranges move
 * while the guest runs (a PCI BAR, the xAPIC window), and the MMIO lookup of one vCPU
 * may meet the move made by another, so MMIO writers bump mmio_seq around each change
 * (odd while it is under way) and MMIO lookups read a copy of the range and retry until
 * the count is even and unchanged: a lookup sees a range before or after a move, never
 * half moved, and never misses a range that did not move. A VM with several vCPUs must
 * not reuse a removed range's slot while another vCPU may be inside its handler (Keel's
 * device handlers run under the VM's platform lock, as do BAR moves). */
#ifndef KEEL_VMM_DEV_BUS_H
#define KEEL_VMM_DEV_BUS_H

#include "vmm/lib/types.h"
#include "vmm/lib/spinlock.h"

#define BUS_MAX_RANGES 64 /* a VM's own; slot 0 of the table is the unclaimed-port handler */
#define BUS_PORTS 0x10000u
#define UNCLAIMED_PORTS_LOGGED 8

STATIC_ASSERT(BUS_MAX_RANGES < 256, "a port_map entry holds its slot in a byte");

enum bus_space {
    BUS_PIO = 0,
    BUS_MMIO,
};

/* Access widths a range takes, as a mask: each width is its own bit. */
#define BUS_WIDTH_1 1u
#define BUS_WIDTH_2 2u
#define BUS_WIDTH_4 4u
#define BUS_WIDTH_8 8u

/* What a handler tells the exit path. */
enum bus_action {
    BUS_DONE = 0,  /* carry on: the guest resumes after the instruction */
    BUS_STOP,      /* stop the VM; why is the whole reason */
    BUS_EXIT_CODE, /* stop the VM with an exit code; why names the device ("debug-exit port") */
    BUS_POWER_OFF, /* the guest powered the machine off (ACPI S5); why says how */
    BUS_RESET,     /* the guest reset the machine (port 0xCF9, the ACPI reset register); why says how */
};

/* Two registers: the action and the exit code share one, so the exit path tests a
 * single register and passes the pair on untouched. */
struct bus_result {
    uint64_t status; /* enum bus_action in bits 31:0, the exit code in bits 63:32 */
    const char *why; /* a string that outlives the VM (a literal or the device's own buffer) */
};

#define BUS_OK ((struct bus_result){.status = BUS_DONE})

static inline uint32_t bus_action(struct bus_result r)
{
    return (uint32_t)r.status;
}

static inline uint32_t bus_code(struct bus_result r)
{
    return (uint32_t)(r.status >> 32);
}

static inline struct bus_result bus_stop(const char *why)
{
    return (struct bus_result){.status = BUS_STOP, .why = why};
}

static inline struct bus_result bus_exit(uint32_t code, const char *why)
{
    return (struct bus_result){.status = BUS_EXIT_CODE | (uint64_t)code << 32, .why = why};
}

static inline struct bus_result bus_power_off(const char *why)
{
    return (struct bus_result){.status = BUS_POWER_OFF, .why = why};
}

static inline struct bus_result bus_reset(const char *why)
{
    return (struct bus_result){.status = BUS_RESET, .why = why};
}

/* offset: from the start of the range; width: 1, 2, 4 or 8 bytes, one the range takes.
 * A read sets *value (bits above the width are ignored); a write's value holds only
 * the access's bytes. */
struct bus_ops {
    struct bus_result (*read)(void *dev, uint64_t offset, unsigned width, uint64_t *value);
    struct bus_result (*write)(void *dev, uint64_t offset, unsigned width, uint64_t value);
};

/* What a device registers. */
struct bus_region {
    uint32_t space; /* enum bus_space */
    uint64_t base, len;
    uint32_t widths; /* BUS_WIDTH_* */
    const struct bus_ops *ops;
    void *dev;
    const char *owner; /* must outlive the range */
};

/* One slot; the handlers are copied out of the ops, saving a load on the exit path. */
struct bus_range {
    struct bus_result (*read)(void *dev, uint64_t offset, unsigned width, uint64_t *value);
    struct bus_result (*write)(void *dev, uint64_t offset, unsigned width, uint64_t value);
    void *dev;
    uint64_t base, len;
    const char *owner;
    uint8_t space, widths;
    bool used;
    bool width_logged; /* an access at a width it does not take was reported */
} ALIGNED(64);

/* A port_map entry: the slot of the range holding the port (0: unclaimed) in bits 7:0,
 * and in bits 15:8, as BUS_WIDTH_* << 8, the widths at which an access starting at this
 * port goes straight to that slot's handler: the device takes the width and the access
 * ends inside its range (for an unclaimed port: it touches no claimed one). Anything
 * else takes the slow path. */
#define BUS_MAP_SLOT(e) ((uint8_t)(e))
#define BUS_MAP_DIRECT(width) ((uint16_t)((width) << 8))

struct vm_bus {
    const char *vm_name; /* for messages */
    spinlock_t lock;     /* writers only, see above */
    struct bus_range range[BUS_MAX_RANGES + 1];
    uint8_t mmio_order[BUS_MAX_RANGES]; /* slots of the MMIO ranges, by base */
    uint32_t mmio_count;
    uint32_t mmio_seq; /* odd while an MMIO range is being changed (see above) */
    uint32_t ports_logged;   /* unclaimed ports logged: at most UNCLAIMED_PORTS_LOGGED */
    uint32_t ports_unlogged; /* the rest, counted in the report */
    uint8_t ports_seen[BUS_PORTS / 8]; /* unclaimed ports already used */
    uint16_t port_map[BUS_PORTS];
};

enum bus_error {
    BUS_EINVAL = 1,   /* empty, wrapping or out-of-space range, bad widths, no handlers */
    BUS_EOVERLAP = 2, /* intersects a registered range */
    BUS_EFULL = 3,    /* BUS_MAX_RANGES in use */
    BUS_ENOENT = 4,   /* no such range id */
};

void vm_bus_init(struct vm_bus *bus, const char *vm_name);
/* Forgets every range, so nothing can reach a device whose state is about to go. */
void vm_bus_destroy(struct vm_bus *bus);

/* Returns the range's id (> 0), or -enum bus_error after logging why, with the owner
 * of the range in the way for an overlap. */
int vm_bus_add(struct vm_bus *bus, const struct bus_region *r);
/* Moves a range to new_base, keeping its id; on error it stays where it was. */
int vm_bus_move(struct vm_bus *bus, int id, uint64_t new_base);
int vm_bus_remove(struct vm_bus *bus, int id);

/* The range holding addr, or NULL. */
const struct bus_range *vm_bus_find(const struct vm_bus *bus, uint32_t space, uint64_t addr);

/* Every access the fast path below does not finish: splits, width refusals, unclaimed. */
struct bus_result vm_bus_access(struct vm_bus *bus, uint32_t space, uint64_t addr, unsigned width, bool write,
                                uint64_t *value);

/* A port access (width 1, 2 or 4). On the exit path: one table load, then the handler
 * (the unclaimed-port one included). A read's *value holds the access's bytes; the
 * caller masks it to the width. */
static inline struct bus_result vm_bus_pio(struct vm_bus *bus, uint16_t port, unsigned width, bool write,
                                           uint64_t *value)
{
    uint16_t e = bus->port_map[port];
    const struct bus_range *r = &bus->range[BUS_MAP_SLOT(e)];
    if (__builtin_expect(e & BUS_MAP_DIRECT(width), 1))
        return write ? r->write(r->dev, port - r->base, width, *value) : r->read(r->dev, port - r->base, width, value);
    return vm_bus_access(bus, BUS_PIO, port, width, write, value);
}

#endif
