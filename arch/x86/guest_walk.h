/* Translating a guest-linear address to guest-physical through the guest's own page
 * tables (SDM vol. 3, chapter 4 "Paging"): paging off, 32-bit paging (4 MiB pages with
 * CR4.PSE, PSE-36), PAE, 4-level and 5-level (CR4.LA57), with the permission rules of
 * 4.6 (CR0.WP, CR4.SMEP/SMAP with RFLAGS.AC, EFER.NXE) and the reserved-bit checks.
 * A failed walk comes back as the #PF the CPU would raise (CR2 and error code), for the
 * caller to inject. Also: fetching the instruction bytes at CS:RIP for the decoder.
 *
 * Pure code: guest-physical memory is read (and, for the accessed and dirty flags,
 * written) through callbacks, so the caller decides what is RAM.
 *
 * Left out: protection keys (CR4.PKE/PKS), and PAE's PDPTE registers: the four PDPTEs
 * are read from memory at CR3 rather than taken from the copy the CPU loaded, so a guest
 * that rewrites its PDPT without reloading CR3 is translated with the new entries. */
#ifndef KEEL_ARCH_X86_GUEST_WALK_H
#define KEEL_ARCH_X86_GUEST_WALK_H

#include "vmm/lib/types.h"

/* The guest state that defines translation. */
struct guest_paging {
    uint64_t cr0, cr3, cr4, efer;
    unsigned cpl;        /* 3: accesses are user-mode accesses */
    bool rflags_ac;      /* lets supervisor data accesses reach user pages under SMAP */
    unsigned maxphyaddr; /* the guest's physical-address width (CPUID 0x80000008 EAX[7:0]),
                          * 32 to 52; values outside are taken as the nearest end */
};

struct guest_phys_mem {
    void *ctx;
    /* Reads len bytes at gpa; false if any of them is not guest RAM. */
    bool (*read)(void *ctx, gpa_t gpa, void *buf, size_t len);
    /* Writes len bytes at gpa (the accessed and dirty flags of paging entries); false if
     * not RAM. NULL: the flags are not set (as for a walk that only looks). */
    bool (*write)(void *ctx, gpa_t gpa, const void *buf, size_t len);
};

enum guest_paging_mode {
    GUEST_PAGING_OFF,
    GUEST_PAGING_32,
    GUEST_PAGING_PAE,
    GUEST_PAGING_4LEVEL,
    GUEST_PAGING_5LEVEL,
};

/* Kinds of access (a read when neither bit is set). */
#define GUEST_ACCESS_WRITE BIT(0)
#define GUEST_ACCESS_FETCH BIT(1)

/* #PF error code bits (SDM vol. 3, 4.7 "Page-Fault Exceptions"). */
#define PF_ERR_PRESENT BIT(0) /* a protection or reserved-bit fault, not a missing page */
#define PF_ERR_WRITE BIT(1)
#define PF_ERR_USER BIT(2)
#define PF_ERR_RSVD BIT(3)
#define PF_ERR_FETCH BIT(4)

enum guest_walk_result {
    GUEST_WALK_OK,
    GUEST_WALK_PAGE_FAULT,   /* *fault holds the #PF to inject */
    GUEST_WALK_NONCANONICAL, /* the CPU raises #GP (#SS for stack accesses), not #PF */
    GUEST_WALK_NOT_RAM,      /* a paging entry, or bytes fetched, outside guest RAM */
};

struct guest_fault {
    uint64_t address; /* CR2 */
    uint32_t error_code;
};

enum guest_paging_mode guest_paging_mode_of(const struct guest_paging *pg);

/* Translates la for an access of the given kind (GUEST_ACCESS_*). */
enum guest_walk_result guest_walk(const struct guest_paging *pg, const struct guest_phys_mem *mem,
                                  uint64_t la, unsigned access, gpa_t *gpa, struct guest_fault *fault);

/* The instruction bytes at CS:RIP. */
struct guest_fetch {
    uint8_t bytes[15];
    unsigned len;
    /* When len < 15: why the next byte could not be fetched. A CPU faults on it only if
     * the instruction reaches it, so the caller injects tail_fault (or reports tail)
     * only if the decoder says the instruction is truncated. */
    enum guest_walk_result tail;
    struct guest_fault tail_fault;
};

/* Fetches up to 15 bytes from cs_base + rip (the base is ignored in 64-bit mode), where the instruction pointer wraps at
 * ip_size bytes (2, 4 or 8: the code segment's default size, enum insn_mode) and
 * linear addresses at 4 GiB outside 64-bit mode; each page is walked on its own, so an
 * instruction may cross a page boundary. On anything but GUEST_WALK_OK not even the first
 * byte was fetched (*fault holds the #PF for GUEST_WALK_PAGE_FAULT). */
enum guest_walk_result guest_fetch_insn(const struct guest_paging *pg, const struct guest_phys_mem *mem,
                                        uint64_t cs_base, uint64_t rip, unsigned ip_size,
                                        struct guest_fetch *out, struct guest_fault *fault);

#endif
