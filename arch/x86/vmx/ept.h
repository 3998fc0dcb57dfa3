/* Extended page tables for one VM (Intel SDM vol. 3, "EPT"): the 4-level map from
 * guest-physical to host-physical addresses, built with the largest pages the
 * alignment of each piece allows.
 *
 * Table pages come from the caller through struct ept_ops, so the core backs them
 * with palloc (ept_palloc_ops) and host tests with malloc'd pages. The builder never
 * flushes anything: after ept_unmap or ept_replace on tables a CPU may be using, the
 * caller must INVEPT before the guest relies on the change, and its free_table hook
 * must not hand a freed table page out again before that INVEPT. Calls on one struct
 * ept must be serialised by the caller. */
#ifndef KEEL_ARCH_X86_EPT_H
#define KEEL_ARCH_X86_EPT_H

#include "vmm/lib/types.h"

/* Access rights of a mapping (bits 2:0 of an EPT entry). */
#define EPT_R BIT(0)
#define EPT_W BIT(1)
#define EPT_X BIT(2)
#define EPT_RWX (EPT_R | EPT_W | EPT_X)

/* Memory types a leaf can carry (bits 5:3 of a leaf; also used in the EPTP). */
enum ept_memtype {
    EPT_MT_UC = 0,
    EPT_MT_WB = 6,
};

/* Leaf sizes, as indexes into struct ept.leaves. */
enum ept_leaf_size {
    EPT_LEAF_4K = 0,
    EPT_LEAF_2M = 1,
    EPT_LEAF_1G = 2,
    EPT_LEAF_SIZES = 3,
};

/* Error codes (negative). */
#define EPT_EINVAL (-1) /* bad argument: unaligned, empty, overflowing, bad rights or type */
#define EPT_ENOMEM (-2) /* a table page could not be allocated; nothing was changed */
#define EPT_EEXIST (-3) /* part of the range is already mapped differently; nothing was changed */

/* Guest-physical addresses a 4-level walk can translate, and host-physical addresses
 * an entry can hold (MAXPHYADDR is at most 52). */
#define EPT_GPA_LIMIT (1ull << 48)
#define EPT_HPA_LIMIT (1ull << 52)

struct ept_ops {
    hpa_t (*alloc_table)(void *ctx);          /* a zeroed 4 KiB page, 0 on failure */
    void (*free_table)(void *ctx, hpa_t table);
    void *(*to_hva)(void *ctx, hpa_t table);  /* where Keel reaches a table page */
};

struct ept {
    hpa_t pml4;
    const struct ept_ops *ops;
    void *ctx;
    uint64_t tables;                   /* table pages held, the PML4 included */
    bool allow_2m, allow_1g;           /* large leaves the CPU supports (ept_apply_caps) */
    uint64_t leaves[EPT_LEAF_SIZES];   /* leaves currently present, by size */
};

/* The core's table source: palloc'd pages reached through the identity map. */
extern const struct ept_ops ept_palloc_ops;

/* Allocates the PML4. Large leaves start allowed; call ept_apply_caps before mapping
 * to follow what the CPU offers. Returns 0, EPT_EINVAL (no ops) or EPT_ENOMEM. */
int ept_init(struct ept *ept, const struct ept_ops *ops, void *ctx);
/* Enables 2 MiB / 1 GiB leaves as IA32_VMX_EPT_VPID_CAP bits 16 / 17 say. */
void ept_apply_caps(struct ept *ept, uint64_t ept_vpid_cap);
/* Frees every table, the PML4 included; the struct may be ept_init'ed again. */
void ept_destroy(struct ept *ept);

/* Maps [gpa, gpa+size) to [hpa, hpa+size) with `perms` (EPT_R/W/X; not empty, no W
 * without R) and memory type `mt`, using 1 GiB and 2 MiB leaves wherever gpa, hpa and
 * the remaining size allow and 4 KiB leaves elsewhere. gpa, hpa and size must be
 * 4 KiB multiples, size non-zero, and neither range may wrap or pass its limit.
 * Parts already mapped with exactly this translation and these attributes are left as
 * they are; any other existing mapping in the range makes the call fail with
 * EPT_EEXIST. All-or-nothing: on any error the tables are unchanged. */
int ept_map(struct ept *ept, gpa_t gpa, hpa_t hpa, uint64_t size, uint32_t perms, enum ept_memtype mt);
/* Like ept_map, but whatever was mapped in the range is replaced (large leaves that
 * straddle its edges are split, keeping their attributes outside the range). */
int ept_replace(struct ept *ept, gpa_t gpa, hpa_t hpa, uint64_t size, uint32_t perms, enum ept_memtype mt);
/* Removes every mapping in [gpa, gpa+size) (holes are fine). A large leaf only partly
 * inside the range is split and the rest stays mapped with the same attributes, which
 * may need table pages: EPT_ENOMEM then, with nothing changed. Tables left empty are
 * freed. Same argument rules as ept_map. */
int ept_unmap(struct ept *ept, gpa_t gpa, uint64_t size);

/* Translates gpa. Any out pointer may be NULL; page_size is that of the leaf. */
bool ept_lookup(const struct ept *ept, gpa_t gpa, hpa_t *hpa, uint32_t *perms, uint64_t *page_size);
/* The raw leaf entry translating gpa (0 when unmapped), for violation reports. */
uint64_t ept_leaf_entry(const struct ept *ept, gpa_t gpa, uint64_t *page_size);

/* The VMCS EPT pointer: PML4 address, write-back walks, 4-level, A/D flags if `ad`. */
uint64_t ept_pointer(const struct ept *ept, bool ad);

/* A short name for an EPT_E* code. */
const char *ept_strerror(int err);

#endif
