/* The page walk of arch/x86/guest_walk.h. */
#include "arch/x86/guest_walk.h"

/* Control-register and EFER bits the walk looks at (SDM vol. 3, 2.5 and 2.2.1). */
#define GW_CR0_WP BIT(16)
#define GW_CR0_PG BIT(31)
#define GW_CR4_PSE BIT(4)
#define GW_CR4_PAE BIT(5)
#define GW_CR4_LA57 BIT(12)
#define GW_CR4_SMEP BIT(20)
#define GW_CR4_SMAP BIT(21)
#define GW_EFER_LMA BIT(10)
#define GW_EFER_NXE BIT(11)

/* Paging-entry bits. */
#define PTE_P BIT(0)
#define PTE_RW BIT(1)
#define PTE_US BIT(2)
#define PTE_A BIT(5)
#define PTE_D BIT(6)
#define PTE_PS BIT(7)
#define PTE_XD BIT(63)

#define MAX_LEVELS 5

enum guest_paging_mode guest_paging_mode_of(const struct guest_paging *pg)
{
    if (!(pg->cr0 & GW_CR0_PG))
        return GUEST_PAGING_OFF;
    if (!(pg->cr4 & GW_CR4_PAE))
        return GUEST_PAGING_32;
    if (!(pg->efer & GW_EFER_LMA))
        return GUEST_PAGING_PAE;
    return pg->cr4 & GW_CR4_LA57 ? GUEST_PAGING_5LEVEL : GUEST_PAGING_4LEVEL;
}

static uint64_t bits(unsigned hi, unsigned lo)
{
    return (hi >= 63 ? ~0ull : (1ull << (hi + 1)) - 1) & ~((1ull << lo) - 1);
}

/* One entry used by the walk, kept for the accessed and dirty flags. */
struct used_entry {
    gpa_t gpa;
    uint64_t value;
    unsigned size; /* 4 or 8 */
    bool no_flags; /* PAE PDPTEs have no accessed flag */
};

struct walk {
    const struct guest_paging *pg;
    const struct guest_phys_mem *mem;
    uint64_t la;
    unsigned access;
    struct used_entry used[MAX_LEVELS];
    unsigned n_used;
    bool rw, us, xd; /* the combined R/W and U/S of every level, and any XD */
};

static bool read_entry(struct walk *w, gpa_t gpa, unsigned size, uint64_t *value)
{
    uint64_t v = 0;
    if (!w->mem->read(w->mem->ctx, gpa, &v, size)) /* little-endian host and guest */
        return false;
    w->used[w->n_used++] = (struct used_entry){gpa, v, size, false};
    *value = v;
    return true;
}

static uint32_t access_bits(const struct walk *w)
{
    uint32_t e = 0;
    if (w->access & GUEST_ACCESS_WRITE)
        e |= PF_ERR_WRITE;
    if (w->pg->cpl == 3)
        e |= PF_ERR_USER;
    /* I/D is reported only where execute protection exists (SDM vol. 3, 4.7). */
    if ((w->access & GUEST_ACCESS_FETCH) &&
        ((w->pg->cr4 & GW_CR4_SMEP) || ((w->pg->cr4 & GW_CR4_PAE) && (w->pg->efer & GW_EFER_NXE))))
        e |= PF_ERR_FETCH;
    return e;
}

static enum guest_walk_result page_fault(const struct walk *w, uint32_t kind, struct guest_fault *fault)
{
    fault->address = w->la;
    fault->error_code = access_bits(w) | kind;
    return GUEST_WALK_PAGE_FAULT;
}

/* SDM vol. 3, 4.6.1 "Determination of Access Rights". */
static bool access_allowed(const struct walk *w)
{
    const struct guest_paging *pg = w->pg;
    bool user = pg->cpl == 3;
    if (w->access & GUEST_ACCESS_FETCH) {
        if (w->xd)
            return false;
        return user ? w->us : !(w->us && (pg->cr4 & GW_CR4_SMEP));
    }
    if (user)
        return w->us && (!(w->access & GUEST_ACCESS_WRITE) || w->rw);
    if (w->us && (pg->cr4 & GW_CR4_SMAP) && !pg->rflags_ac)
        return false;
    return !(w->access & GUEST_ACCESS_WRITE) || w->rw || !(pg->cr0 & GW_CR0_WP);
}

/* The CPU sets A in every entry it used and D in the leaf of a write. */
static enum guest_walk_result set_accessed_dirty(struct walk *w)
{
    if (!w->mem->write)
        return GUEST_WALK_OK;
    for (unsigned i = 0; i < w->n_used; i++) {
        struct used_entry *u = &w->used[i];
        if (u->no_flags)
            continue;
        uint64_t v = u->value | PTE_A;
        if (i == w->n_used - 1 && (w->access & GUEST_ACCESS_WRITE))
            v |= PTE_D;
        if (v != u->value && !w->mem->write(w->mem->ctx, u->gpa, &v, u->size))
            return GUEST_WALK_NOT_RAM;
    }
    return GUEST_WALK_OK;
}

static enum guest_walk_result finish(struct walk *w, gpa_t out, gpa_t *gpa, struct guest_fault *fault)
{
    if (!access_allowed(w))
        return page_fault(w, PF_ERR_PRESENT, fault);
    enum guest_walk_result r = set_accessed_dirty(w);
    if (r == GUEST_WALK_OK)
        *gpa = out;
    return r;
}

static void combine(struct walk *w, uint64_t e)
{
    w->rw = w->rw && (e & PTE_RW);
    w->us = w->us && (e & PTE_US);
    w->xd = w->xd || ((w->pg->efer & GW_EFER_NXE) && (e & PTE_XD));
}

static enum guest_walk_result walk_32(struct walk *w, gpa_t *gpa, struct guest_fault *fault)
{
    const struct guest_paging *pg = w->pg;
    uint32_t la = (uint32_t)w->la;
    uint64_t pde, pte;

    if (!read_entry(w, (pg->cr3 & 0xFFFFF000u) + ((la >> 22) * 4), 4, &pde))
        return GUEST_WALK_NOT_RAM;
    if (!(pde & PTE_P))
        return page_fault(w, 0, fault);
    combine(w, pde);
    if ((pde & PTE_PS) && (pg->cr4 & GW_CR4_PSE)) {
        /* PSE-36: bits 20:13 hold physical-address bits 39:32, as far as MAXPHYADDR
         * goes; bit 21 and the rest are reserved. */
        unsigned high = MIN(pg->maxphyaddr, 40u) - 32;
        uint64_t rsvd = BIT(21) | (high < 8 ? bits(20, 13 + high) : 0);
        if (pde & rsvd)
            return page_fault(w, PF_ERR_PRESENT | PF_ERR_RSVD, fault);
        uint64_t base = (pde & 0xFFC00000u) | (((pde >> 13) & 0xFF) << 32);
        return finish(w, base | (la & 0x3FFFFF), gpa, fault);
    }
    if (!read_entry(w, (pde & 0xFFFFF000u) + (((la >> 12) & 0x3FF) * 4), 4, &pte))
        return GUEST_WALK_NOT_RAM;
    if (!(pte & PTE_P))
        return page_fault(w, 0, fault);
    combine(w, pte);
    return finish(w, (pte & 0xFFFFF000u) | (la & 0xFFF), gpa, fault);
}

/* PAE, 4-level and 5-level paging: 8-byte entries, 512 to a table (PAE's PDPT: 4). */
static enum guest_walk_result walk_64(struct walk *w, enum guest_paging_mode mode, gpa_t *gpa,
                                      struct guest_fault *fault)
{
    const struct guest_paging *pg = w->pg;
    uint64_t addr_mask = bits(pg->maxphyaddr - 1, 12);
    uint64_t rsvd_high = bits(51, pg->maxphyaddr) | ((pg->efer & GW_EFER_NXE) ? 0 : PTE_XD);
    unsigned levels = mode == GUEST_PAGING_5LEVEL ? 5 : mode == GUEST_PAGING_4LEVEL ? 4 : 3;
    gpa_t table = mode == GUEST_PAGING_PAE ? (pg->cr3 & 0xFFFFFFE0u) : (pg->cr3 & addr_mask);

    for (unsigned level = levels; level >= 1; level--) {
        /* level 1: PT, 2: PD, 3: PDPT, 4: PML4, 5: PML5 */
        unsigned shift = 12 + 9 * (level - 1);
        unsigned index = (unsigned)(w->la >> shift) & (mode == GUEST_PAGING_PAE && level == 3 ? 3 : 0x1FF);
        uint64_t e;
        if (!read_entry(w, table + index * 8ull, 8, &e))
            return GUEST_WALK_NOT_RAM;
        if (!(e & PTE_P))
            return page_fault(w, 0, fault);

        uint64_t rsvd = rsvd_high;
        bool leaf = level == 1;
        if (mode == GUEST_PAGING_PAE && level == 3) {
            /* PAE PDPTEs: no R/W, U/S or XD; bits 2:1, 8:5 and 63 are reserved. */
            rsvd = bits(51, pg->maxphyaddr) | bits(2, 1) | bits(8, 5) | PTE_XD;
            w->used[w->n_used - 1].no_flags = true;
        } else if (level >= 4) {
            rsvd |= PTE_PS;
        } else if (level >= 2 && (e & PTE_PS)) {
            leaf = true;
            rsvd |= bits(shift - 1, 13); /* below the large page's base, above PAT */
        }
        if (e & rsvd)
            return page_fault(w, PF_ERR_PRESENT | PF_ERR_RSVD, fault);
        if (!(mode == GUEST_PAGING_PAE && level == 3))
            combine(w, e);
        if (leaf) {
            uint64_t page_mask = (1ull << shift) - 1;
            return finish(w, (e & addr_mask & ~page_mask) | (w->la & page_mask), gpa, fault);
        }
        table = e & addr_mask;
    }
    return GUEST_WALK_NOT_RAM; /* not reached: level 1 is always a leaf */
}

enum guest_walk_result guest_walk(const struct guest_paging *pg_in, const struct guest_phys_mem *mem,
                                  uint64_t la, unsigned access, gpa_t *gpa, struct guest_fault *fault)
{
    /* MAXPHYADDR is architecturally 32 to 52 (SDM vol. 3, 4.1.4); outside that the mask
     * arithmetic would make every bit reserved, or none. */
    struct guest_paging pg_copy = *pg_in;
    if (pg_copy.maxphyaddr < 32 || pg_copy.maxphyaddr > 52)
        pg_copy.maxphyaddr = pg_copy.maxphyaddr < 32 ? 32 : 52;
    const struct guest_paging *pg = &pg_copy;
    enum guest_paging_mode mode = guest_paging_mode_of(pg);
    struct walk w = {.pg = pg, .mem = mem, .la = la, .access = access, .rw = true, .us = true};

    switch (mode) {
    case GUEST_PAGING_OFF:
        *gpa = la & 0xFFFFFFFFu;
        return GUEST_WALK_OK;
    case GUEST_PAGING_32:
        w.la = la & 0xFFFFFFFFu;
        return walk_32(&w, gpa, fault);
    case GUEST_PAGING_PAE:
        w.la = la & 0xFFFFFFFFu;
        return walk_64(&w, mode, gpa, fault);
    default: {
        unsigned va_bits = mode == GUEST_PAGING_5LEVEL ? 57 : 48;
        uint64_t top = la >> (va_bits - 1);
        if (top != 0 && top != (~0ull >> (va_bits - 1)))
            return GUEST_WALK_NONCANONICAL;
        return walk_64(&w, mode, gpa, fault);
    }
    }
}

enum guest_walk_result guest_fetch_insn(const struct guest_paging *pg, const struct guest_phys_mem *mem,
                                        uint64_t cs_base, uint64_t rip, unsigned ip_size,
                                        struct guest_fetch *out, struct guest_fault *fault)
{
    bool long64 = ip_size >= 8;
    uint64_t ip_mask = long64 ? ~0ull : (1ull << (8 * ip_size)) - 1;
    uint64_t la_mask = long64 ? ~0ull : 0xFFFFFFFFull;
    unsigned want = sizeof(out->bytes);

    if (long64)
        cs_base = 0; /* 64-bit mode ignores the CS base */

    out->len = 0;
    out->tail = GUEST_WALK_OK;
    while (out->len < want) {
        uint64_t ip = (rip + out->len) & ip_mask;
        uint64_t la = (cs_base + ip) & la_mask;
        /* A run of bytes contiguous in guest-physical memory: up to the end of the page
         * and up to where the instruction pointer wraps. */
        uint64_t run = MIN((uint64_t)(want - out->len), PAGE_SIZE - (la & (PAGE_SIZE - 1)));
        if (!long64) {
            run = MIN(run, ip_mask - ip + 1);
            run = MIN(run, la_mask - la + 1);
        }

        gpa_t gpa;
        struct guest_fault f = {0, 0};
        enum guest_walk_result r = guest_walk(pg, mem, la, GUEST_ACCESS_FETCH, &gpa, &f);
        if (r == GUEST_WALK_OK && !mem->read(mem->ctx, gpa, out->bytes + out->len, (size_t)run))
            r = GUEST_WALK_NOT_RAM;
        if (r != GUEST_WALK_OK) {
            if (out->len == 0) {
                *fault = f;
                return r;
            }
            out->tail = r;
            out->tail_fault = f;
            break;
        }
        out->len += (unsigned)run;
    }
    return GUEST_WALK_OK;
}
