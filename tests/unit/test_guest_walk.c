/* The guest page walk (arch/x86/guest_walk.c): each paging mode with its page sizes,
 * not-present, permission and reserved-bit faults with their #PF error codes, the
 * accessed and dirty flags, and instruction fetches across page boundaries. The guest's
 * physical memory is a 4 MiB buffer; page tables are written into it by hand. */
/* SOURCES: arch/x86/guest_walk.c arch/x86/insn_decode.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/guest_walk.h"
#include "arch/x86/insn_decode.h"

#define RAM_SIZE (4u << 20)

#define P BIT(0)
#define RW BIT(1)
#define US BIT(2)
#define A BIT(5)
#define D BIT(6)
#define PS BIT(7)
#define XD BIT(63)

#define CR0_PG BIT(31)
#define CR0_WP BIT(16)
#define CR4_PSE BIT(4)
#define CR4_PAE BIT(5)
#define CR4_LA57 BIT(12)
#define CR4_SMEP BIT(20)
#define CR4_SMAP BIT(21)
#define EFER_LMA BIT(10)
#define EFER_NXE BIT(11)

static uint8_t *ram;
static unsigned reads, writes;

static bool ram_read(void *ctx, gpa_t gpa, void *buf, size_t len)
{
    (void)ctx;
    reads++;
    if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
        return false;
    memcpy(buf, ram + gpa, len);
    return true;
}

static bool ram_write(void *ctx, gpa_t gpa, const void *buf, size_t len)
{
    (void)ctx;
    writes++;
    if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
        return false;
    memcpy(ram + gpa, buf, len);
    return true;
}

static const struct guest_phys_mem mem_ro = {.read = ram_read};
static const struct guest_phys_mem mem_rw = {.read = ram_read, .write = ram_write};

static void put32(gpa_t gpa, uint32_t v) { memcpy(ram + gpa, &v, 4); }
static void put64(gpa_t gpa, uint64_t v) { memcpy(ram + gpa, &v, 8); }
static uint64_t get64(gpa_t gpa) { uint64_t v; memcpy(&v, ram + gpa, 8); return v; }

static int setup(void **state)
{
    (void)state;
    ram = calloc(1, RAM_SIZE);
    reads = writes = 0;
    return ram ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(ram);
    return 0;
}

static struct guest_paging paging(uint64_t cr0, uint64_t cr3, uint64_t cr4, uint64_t efer)
{
    return (struct guest_paging){.cr0 = cr0 | 1, .cr3 = cr3, .cr4 = cr4, .efer = efer,
                                 .cpl = 0, .maxphyaddr = 39};
}

/* Expects a #PF at la with the error code. */
static void expect_pf(const struct guest_paging *pg, uint64_t la, unsigned access, uint32_t code)
{
    gpa_t gpa = 0xdead;
    struct guest_fault f = {0, 0};
    assert_int_equal(guest_walk(pg, &mem_ro, la, access, &gpa, &f), GUEST_WALK_PAGE_FAULT);
    assert_int_equal(f.address, la);
    assert_int_equal(f.error_code, code);
    assert_int_equal(gpa, 0xdead);
}

static gpa_t expect_ok(const struct guest_paging *pg, uint64_t la, unsigned access)
{
    gpa_t gpa = 0;
    struct guest_fault f = {0, 0};
    enum guest_walk_result r = guest_walk(pg, &mem_ro, la, access, &gpa, &f);
    if (r != GUEST_WALK_OK)
        fail_msg("walk of 0x%llx: result %d, error code 0x%x", (unsigned long long)la, r, f.error_code);
    return gpa;
}

static void paging_off(void **state)
{
    (void)state;
    struct guest_paging pg = {.cr0 = 1, .maxphyaddr = 39};
    assert_int_equal(guest_paging_mode_of(&pg), GUEST_PAGING_OFF);
    assert_int_equal(expect_ok(&pg, 0x12345678, GUEST_ACCESS_WRITE), 0x12345678);
    assert_int_equal(expect_ok(&pg, 0x100001000ull, 0), 0x1000); /* 32-bit linear addresses */
    assert_int_equal(reads, 0);
}

/* 32-bit paging: CR3 0x1000, la 0x00C01ABC = PDE 3, PTE 1. */
static void paging_32(void **state)
{
    (void)state;
    struct guest_paging pg = paging(CR0_PG, 0x1000, 0, 0);
    assert_int_equal(guest_paging_mode_of(&pg), GUEST_PAGING_32);
    put32(0x1000 + 3 * 4, 0x2000 | P | RW | US);
    put32(0x2000 + 1 * 4, 0x345000 | P | RW | US);
    assert_int_equal(expect_ok(&pg, 0x00C01ABC, 0), 0x345ABC);
    pg.cpl = 3;
    assert_int_equal(expect_ok(&pg, 0x00C01ABC, GUEST_ACCESS_WRITE), 0x345ABC);

    /* Not present: the PTE, then the PDE. No I/D bit without PAE/NXE or SMEP. */
    expect_pf(&pg, 0x00C02000, GUEST_ACCESS_WRITE, PF_ERR_WRITE | PF_ERR_USER);
    expect_pf(&pg, 0x01000000, GUEST_ACCESS_FETCH, PF_ERR_USER);
    pg.cpl = 0;
    expect_pf(&pg, 0x01000000, 0, 0);

    /* Read-only in the PDE only: the levels combine. */
    put32(0x1000 + 3 * 4, 0x2000 | P | US);
    pg.cpl = 3;
    expect_pf(&pg, 0x00C01ABC, GUEST_ACCESS_WRITE, PF_ERR_PRESENT | PF_ERR_WRITE | PF_ERR_USER);
    assert_int_equal(expect_ok(&pg, 0x00C01ABC, 0), 0x345ABC);
    /* Supervisor writes ignore R/W unless CR0.WP. */
    pg.cpl = 0;
    assert_int_equal(expect_ok(&pg, 0x00C01ABC, GUEST_ACCESS_WRITE), 0x345ABC);
    pg.cr0 |= CR0_WP;
    expect_pf(&pg, 0x00C01ABC, GUEST_ACCESS_WRITE, PF_ERR_PRESENT | PF_ERR_WRITE);
    /* A supervisor page from user mode. */
    put32(0x2000 + 1 * 4, 0x345000 | P | RW);
    pg.cpl = 3;
    expect_pf(&pg, 0x00C01ABC, 0, PF_ERR_PRESENT | PF_ERR_USER);
}

static void paging_32_large_pages(void **state)
{
    (void)state;
    struct guest_paging pg = paging(CR0_PG, 0x1000, CR4_PSE, 0);
    /* la 0x80123456: PDE 0x200, a 4 MiB page at 12 MiB */
    put32(0x1000 + 0x200 * 4, 0x00C00000 | PS | P | RW);
    assert_int_equal(expect_ok(&pg, 0x80123456, 0), 0xD23456);

    /* PSE-36: PDE bits 20:13 are physical-address bits 39:32. */
    pg.maxphyaddr = 40;
    put32(0x1000 + 0x200 * 4, 0x00C00000 | (0x85u << 13) | PS | P | RW);
    assert_int_equal(expect_ok(&pg, 0x80123456, 0), 0x8500D23456ull);
    /* With 36 physical-address bits, bit 20 (address bit 39) is reserved. */
    pg.maxphyaddr = 36;
    expect_pf(&pg, 0x80123456, 0, PF_ERR_PRESENT | PF_ERR_RSVD);
    put32(0x1000 + 0x200 * 4, 0x00C00000 | (0x5u << 13) | PS | P | RW);
    assert_int_equal(expect_ok(&pg, 0x80123456, 0), 0x500D23456ull);
    /* Bit 21 is always reserved. */
    put32(0x1000 + 0x200 * 4, 0x00C00000 | BIT(21) | PS | P | RW);
    expect_pf(&pg, 0x80123456, GUEST_ACCESS_WRITE, PF_ERR_PRESENT | PF_ERR_RSVD | PF_ERR_WRITE);

    /* Without CR4.PSE the PS bit is ignored: the PDE points to a page table, here at
     * 12 MiB, outside RAM. */
    put32(0x1000 + 0x200 * 4, 0x00C00000 | PS | P | RW);
    pg.cr4 = 0;
    gpa_t gpa;
    struct guest_fault f;
    assert_int_equal(guest_walk(&pg, &mem_ro, 0x80123456, 0, &gpa, &f), GUEST_WALK_NOT_RAM);
}

/* PAE: CR3 0x3000 (32-byte aligned PDPT), la 0x40201ABC = PDPTE 1, PDE 1, PTE 1. */
static void paging_pae(void **state)
{
    (void)state;
    struct guest_paging pg = paging(CR0_PG, 0x3020, CR4_PAE, EFER_NXE);
    assert_int_equal(guest_paging_mode_of(&pg), GUEST_PAGING_PAE);
    put64(0x3020 + 1 * 8, 0x4000 | P);
    put64(0x4000 + 1 * 8, 0x5000 | P | RW | US);
    put64(0x5000 + 1 * 8, 0x123456000ull | P | RW | US);
    assert_int_equal(expect_ok(&pg, 0x40201ABC, GUEST_ACCESS_WRITE), 0x123456ABCull);

    /* A 2 MiB page: PDE 2 */
    put64(0x4000 + 2 * 8, 0x7FE00000ull | PS | P | RW);
    assert_int_equal(expect_ok(&pg, 0x40412345, 0), 0x7FE12345ull);
    /* bit 13 of a 2 MiB PDE is reserved (12 is PAT) */
    put64(0x4000 + 2 * 8, 0x7FE00000ull | BIT(13) | PS | P | RW);
    expect_pf(&pg, 0x40412345, 0, PF_ERR_PRESENT | PF_ERR_RSVD);

    /* XD with NXE: no fetch; I/D reported. */
    put64(0x5000 + 1 * 8, 0x123456000ull | XD | P | RW);
    assert_int_equal(expect_ok(&pg, 0x40201ABC, 0), 0x123456ABCull);
    expect_pf(&pg, 0x40201ABC, GUEST_ACCESS_FETCH, PF_ERR_PRESENT | PF_ERR_FETCH);
    /* XD without NXE is a reserved bit, and I/D is not reported. */
    pg.efer = 0;
    expect_pf(&pg, 0x40201ABC, GUEST_ACCESS_FETCH, PF_ERR_PRESENT | PF_ERR_RSVD);

    /* A missing PDPTE; reserved bits in a PDPTE (bit 1, bit 63 even with NXE). */
    pg.efer = EFER_NXE;
    put64(0x5000 + 1 * 8, 0x123456000ull | P | RW | US);
    assert_int_equal(expect_ok(&pg, 0x40201ABC, 0), 0x123456ABCull);
    expect_pf(&pg, 0xC0000000, 0, 0);
    put64(0x3020 + 1 * 8, 0x4000 | RW | P);
    expect_pf(&pg, 0x40201ABC, 0, PF_ERR_PRESENT | PF_ERR_RSVD);
    put64(0x3020 + 1 * 8, 0x4000 | XD | P);
    expect_pf(&pg, 0x40201ABC, 0, PF_ERR_PRESENT | PF_ERR_RSVD);
}

/* 4-level paging with one table per level at 0x10000.. and la 0x00007F80_40201ABC:
 * PML4 0xFF, PDPT 1, PD 1, PT 1. */
#define LA4 0x00007F8040201ABCull
static void map4(uint64_t pml4e_flags, uint64_t pdpte_flags, uint64_t pde_flags, uint64_t pte)
{
    put64(0x10000 + 0xFF * 8, 0x11000 | pml4e_flags);
    put64(0x11000 + 1 * 8, 0x12000 | pdpte_flags);
    put64(0x12000 + 1 * 8, 0x13000 | pde_flags);
    put64(0x13000 + 1 * 8, pte);
}

static void paging_4level(void **state)
{
    (void)state;
    struct guest_paging pg = paging(CR0_PG | CR0_WP, 0x10000, CR4_PAE, EFER_LMA | EFER_NXE);
    assert_int_equal(guest_paging_mode_of(&pg), GUEST_PAGING_4LEVEL);
    uint64_t all = P | RW | US;
    map4(all, all, all, 0x7654321000ull | all);
    assert_int_equal(expect_ok(&pg, LA4, GUEST_ACCESS_WRITE), 0x7654321ABCull);

    /* 2 MiB and 1 GiB pages */
    put64(0x11000 + 2 * 8, 0x40000000ull | PS | all); /* PDPT 2: 1 GiB */
    assert_int_equal(expect_ok(&pg, 0x00007F80ABCDE123ull, 0), 0x6BCDE123ull);
    put64(0x12000 + 3 * 8, 0x7FE00000ull | PS | all); /* PD 3: 2 MiB */
    assert_int_equal(expect_ok(&pg, 0x00007F8040654321ull, 0), 0x7FE54321ull);
    /* 1 GiB page with bit 29 set: reserved */
    put64(0x11000 + 2 * 8, 0x60000000ull | PS | all);
    expect_pf(&pg, 0x00007F80ABCDE123ull, 0, PF_ERR_PRESENT | PF_ERR_RSVD);
    /* PS in a PML4E is reserved */
    put64(0x10000 + 0x1FF * 8, 0x11000 | PS | all);
    expect_pf(&pg, 0xFFFFFF8000000000ull, 0, PF_ERR_PRESENT | PF_ERR_RSVD);
    /* an address bit above MAXPHYADDR (39) */
    map4(all, all, all, BIT(40) | 0x1000 | all);
    expect_pf(&pg, LA4, 0, PF_ERR_PRESENT | PF_ERR_RSVD);

    /* not present at each level */
    map4(all, all, all, 0x1000);
    expect_pf(&pg, LA4, 0, 0);
    map4(all, all, 0, 0x1000 | all);
    expect_pf(&pg, LA4, GUEST_ACCESS_WRITE, PF_ERR_WRITE);
    map4(all, 0, all, 0x1000 | all);
    pg.cpl = 3;
    expect_pf(&pg, LA4, GUEST_ACCESS_FETCH, PF_ERR_USER | PF_ERR_FETCH);
    map4(0, all, all, 0x1000 | all);
    expect_pf(&pg, LA4, 0, PF_ERR_USER);

    /* user mode: a supervisor level anywhere, a read-only level anywhere */
    map4(all, P | RW, all, 0x1000 | all);
    expect_pf(&pg, LA4, 0, PF_ERR_PRESENT | PF_ERR_USER);
    map4(all, all, P | US, 0x1000 | all);
    assert_int_equal(expect_ok(&pg, LA4, 0), 0x1ABC);
    expect_pf(&pg, LA4, GUEST_ACCESS_WRITE, PF_ERR_PRESENT | PF_ERR_WRITE | PF_ERR_USER);
    /* XD at any level stops fetches */
    map4(all | XD, all, all, 0x1000 | all);
    expect_pf(&pg, LA4, GUEST_ACCESS_FETCH, PF_ERR_PRESENT | PF_ERR_USER | PF_ERR_FETCH);

    /* supervisor: CR0.WP, SMEP, SMAP and RFLAGS.AC */
    pg.cpl = 0;
    map4(all, all, P | US, 0x1000 | all);
    expect_pf(&pg, LA4, GUEST_ACCESS_WRITE, PF_ERR_PRESENT | PF_ERR_WRITE);
    pg.cr0 &= ~CR0_WP;
    assert_int_equal(expect_ok(&pg, LA4, GUEST_ACCESS_WRITE), 0x1ABC);
    map4(all, all, all, 0x1000 | all);
    assert_int_equal(expect_ok(&pg, LA4, GUEST_ACCESS_FETCH), 0x1ABC);
    pg.cr4 |= CR4_SMEP;
    expect_pf(&pg, LA4, GUEST_ACCESS_FETCH, PF_ERR_PRESENT | PF_ERR_FETCH);
    assert_int_equal(expect_ok(&pg, LA4, 0), 0x1ABC);
    pg.cr4 |= CR4_SMAP;
    expect_pf(&pg, LA4, 0, PF_ERR_PRESENT);
    expect_pf(&pg, LA4, GUEST_ACCESS_WRITE, PF_ERR_PRESENT | PF_ERR_WRITE);
    pg.rflags_ac = true;
    assert_int_equal(expect_ok(&pg, LA4, GUEST_ACCESS_WRITE), 0x1ABC);
    /* a supervisor page is fine under SMEP/SMAP */
    pg.rflags_ac = false;
    map4(all, all, all, 0x1000 | P | RW);
    assert_int_equal(expect_ok(&pg, LA4, GUEST_ACCESS_FETCH), 0x1ABC);

    /* non-canonical addresses are #GP, not #PF; tables outside RAM are reported */
    gpa_t gpa;
    struct guest_fault f;
    assert_int_equal(guest_walk(&pg, &mem_ro, 0x0000800000000000ull, 0, &gpa, &f),
                     GUEST_WALK_NONCANONICAL);
    put64(0x12000 + 1 * 8, 0x7FF000000ull | all); /* a PT at 32 GiB */
    assert_int_equal(guest_walk(&pg, &mem_ro, LA4, 0, &gpa, &f), GUEST_WALK_NOT_RAM);
}

/* A MAXPHYADDR outside 32..52 (a caller that left it 0) is clamped, not turned into
 * "every address bit reserved". */
static void maxphyaddr_out_of_range(void **state)
{
    (void)state;
    struct guest_paging pg = paging(CR0_PG, 0x10000, CR4_PAE, EFER_LMA);
    uint64_t all = P | RW | US;
    map4(all, all, all, 0x5000 | all);
    pg.maxphyaddr = 0;
    assert_int_equal(expect_ok(&pg, LA4, 0), 0x5ABC);
    map4(all, all, all, BIT(32) | 0x5000 | all); /* above 32 bits: reserved */
    expect_pf(&pg, LA4, 0, PF_ERR_PRESENT | PF_ERR_RSVD);
    pg.maxphyaddr = 200;
    assert_int_equal(expect_ok(&pg, LA4, 0), BIT(32) | 0x5ABC);
    map4(all, all, all, BIT(52) | 0x5000 | all); /* bits 62:52 are ignored, not address */
    assert_int_equal(expect_ok(&pg, LA4, 0), 0x5ABC);
}

static void paging_5level(void **state)
{
    (void)state;
    struct guest_paging pg = paging(CR0_PG, 0x20000, CR4_PAE | CR4_LA57, EFER_LMA);
    assert_int_equal(guest_paging_mode_of(&pg), GUEST_PAGING_5LEVEL);
    uint64_t all = P | RW | US;
    uint64_t la = 0x0080000000001234ull; /* PML5 0x80, then 0, 0, 0, 1 */
    put64(0x20000 + 0x80 * 8, 0x21000 | all);
    put64(0x21000, 0x22000 | all);
    put64(0x22000, 0x23000 | all);
    put64(0x23000, 0x24000 | all);
    put64(0x24000 + 8, 0xABC000 | all);
    assert_int_equal(expect_ok(&pg, la, 0), 0xABC234);
    expect_pf(&pg, 0xFF00000000000000ull, 0, 0); /* PML5 0x100: missing */

    gpa_t gpa;
    struct guest_fault f;
    /* bit 56 set with 63:57 clear is non-canonical for 57 bits, la is for 48 bits */
    assert_int_equal(guest_walk(&pg, &mem_ro, 0x0100000000000000ull, 0, &gpa, &f),
                     GUEST_WALK_NONCANONICAL);
    pg.cr4 &= ~CR4_LA57;
    assert_int_equal(guest_walk(&pg, &mem_ro, la, 0, &gpa, &f), GUEST_WALK_NONCANONICAL);
}

static void accessed_and_dirty(void **state)
{
    (void)state;
    struct guest_paging pg = paging(CR0_PG, 0x10000, CR4_PAE, EFER_LMA);
    uint64_t all = P | RW | US;
    map4(all, all, all, 0x5000 | all);
    gpa_t gpa;
    struct guest_fault f;
    assert_int_equal(guest_walk(&pg, &mem_rw, LA4, 0, &gpa, &f), GUEST_WALK_OK);
    assert_int_equal(get64(0x10000 + 0xFF * 8), 0x11000 | all | A);
    assert_int_equal(get64(0x12000 + 8), 0x13000 | all | A);
    assert_int_equal(get64(0x13000 + 8), 0x5000 | all | A);
    assert_int_equal(guest_walk(&pg, &mem_rw, LA4, GUEST_ACCESS_WRITE, &gpa, &f), GUEST_WALK_OK);
    assert_int_equal(get64(0x12000 + 8), 0x13000 | all | A);
    assert_int_equal(get64(0x13000 + 8), 0x5000 | all | A | D);
    /* Nothing is written when the walk faults, or when nothing changes. */
    unsigned before = writes;
    assert_int_equal(guest_walk(&pg, &mem_rw, LA4, GUEST_ACCESS_WRITE, &gpa, &f), GUEST_WALK_OK);
    put64(0x13000 + 8, 0x5000 | P | US);
    pg.cr0 |= CR0_WP;
    assert_int_equal(guest_walk(&pg, &mem_rw, LA4, GUEST_ACCESS_WRITE, &gpa, &f), GUEST_WALK_PAGE_FAULT);
    assert_int_equal(writes, before);
    assert_int_equal(get64(0x13000 + 8), 0x5000 | P | US);

    /* PAE PDPTEs have no accessed flag (bit 5 is reserved there). */
    struct guest_paging pae = paging(CR0_PG, 0x3000, CR4_PAE, 0);
    put64(0x3000, 0x4000 | P);
    put64(0x4000, 0x7FE00000ull | PS | all);
    assert_int_equal(guest_walk(&pae, &mem_rw, 0x1234, GUEST_ACCESS_WRITE, &gpa, &f), GUEST_WALK_OK);
    assert_int_equal(gpa, 0x7FE01234ull);
    assert_int_equal(get64(0x3000), 0x4000 | P);
    assert_int_equal(get64(0x4000), 0x7FE00000ull | PS | all | A | D);
}

/* Two linear pages at 0x1000 and 0x2000 mapped to 0x100000 and 0x200000 (not adjacent). */
static struct guest_paging two_pages(bool second_present)
{
    struct guest_paging pg = paging(CR0_PG, 0x10000, CR4_PAE, EFER_LMA | EFER_NXE);
    uint64_t all = P | RW | US;
    put64(0x10000, 0x11000 | all);
    put64(0x11000, 0x12000 | all);
    put64(0x12000, 0x13000 | all);
    put64(0x13000 + 1 * 8, 0x100000 | all);
    put64(0x13000 + 2 * 8, second_present ? (0x200000 | all) : 0);
    return pg;
}

static void fetch_across_a_page(void **state)
{
    (void)state;
    struct guest_paging pg = two_pages(true);
    for (unsigned i = 0; i < 6; i++)
        ram[0x100FFA + i] = (uint8_t)(0xA0 + i);
    for (unsigned i = 0; i < 9; i++)
        ram[0x200000 + i] = (uint8_t)(0xB0 + i);
    struct guest_fetch fe;
    struct guest_fault f;
    assert_int_equal(guest_fetch_insn(&pg, &mem_ro, 0x5555, 0x1FFA, 8, &fe, &f), GUEST_WALK_OK);
    assert_int_equal(fe.len, 15);
    assert_int_equal(fe.tail, GUEST_WALK_OK);
    for (unsigned i = 0; i < 15; i++)
        assert_int_equal(fe.bytes[i], i < 6 ? 0xA0 + i : 0xB0 + (i - 6));
}

static void fetch_with_the_next_page_missing(void **state)
{
    (void)state;
    struct guest_paging pg = two_pages(false);
    struct guest_fetch fe;
    struct guest_fault f;

    /* "mov eax,[rdi]" fits before the boundary: it decodes, no fault. */
    memcpy(ram + 0x100FFC, (const uint8_t[]){0x8b, 0x07, 0x90, 0x90}, 4);
    assert_int_equal(guest_fetch_insn(&pg, &mem_ro, 0, 0x1FFC, 8, &fe, &f), GUEST_WALK_OK);
    assert_int_equal(fe.len, 4);
    assert_int_equal(fe.tail, GUEST_WALK_PAGE_FAULT);
    struct insn in;
    assert_int_equal(insn_decode(fe.bytes, fe.len, INSN_MODE_64, &in), INSN_ERR_OK);
    assert_int_equal(in.length, 2);

    /* "mov eax,[rdi+0x300]" runs into the missing page: truncated, and the #PF to inject
     * is the fetch fault on the second page. */
    memcpy(ram + 0x100FFC, (const uint8_t[]){0x8b, 0x87, 0x00, 0x03}, 4);
    assert_int_equal(guest_fetch_insn(&pg, &mem_ro, 0, 0x1FFC, 8, &fe, &f), GUEST_WALK_OK);
    assert_int_equal(insn_decode(fe.bytes, fe.len, INSN_MODE_64, &in), INSN_ERR_TRUNCATED);
    assert_int_equal(fe.tail, GUEST_WALK_PAGE_FAULT);
    assert_int_equal(fe.tail_fault.address, 0x2000);
    assert_int_equal(fe.tail_fault.error_code, PF_ERR_FETCH);

    /* The first page missing: nothing fetched. */
    assert_int_equal(guest_fetch_insn(&pg, &mem_ro, 0, 0x2000, 8, &fe, &f), GUEST_WALK_PAGE_FAULT);
    assert_int_equal(f.address, 0x2000);
    assert_int_equal(f.error_code, PF_ERR_FETCH);
    /* Code in a page outside RAM. */
    put64(0x13000 + 2 * 8, 0x7FF000000ull | P | RW);
    assert_int_equal(guest_fetch_insn(&pg, &mem_ro, 0, 0x2000, 8, &fe, &f), GUEST_WALK_NOT_RAM);
    assert_int_equal(guest_fetch_insn(&pg, &mem_ro, 0, 0x1FFC, 8, &fe, &f), GUEST_WALK_OK);
    assert_int_equal(fe.len, 4);
    assert_int_equal(fe.tail, GUEST_WALK_NOT_RAM);
}

static void fetch_in_real_mode_wraps_ip(void **state)
{
    (void)state;
    /* CS base 0xF0800: IP 0xFFFE is linear 0x1007FE, and IP 0 is 0xF0800, so the wrap
     * is not at a page boundary. */
    struct guest_paging pg = {.cr0 = 0, .maxphyaddr = 39};
    ram[0x1007FE] = 0x8b;
    ram[0x1007FF] = 0x87;
    ram[0x100800] = 0xcc; /* not part of it */
    ram[0xF0800] = 0x34;
    ram[0xF0801] = 0x12;
    struct guest_fetch fe;
    struct guest_fault f;
    assert_int_equal(guest_fetch_insn(&pg, &mem_ro, 0xF0800, 0xFFFE, 2, &fe, &f), GUEST_WALK_OK);
    assert_int_equal(fe.len, 15);
    assert_memory_equal(fe.bytes, ((const uint8_t[]){0x8b, 0x87, 0x34, 0x12}), 4);
    struct insn in;
    assert_int_equal(insn_decode(fe.bytes, fe.len, INSN_MODE_16, &in), INSN_ERR_OK);
    assert_int_equal(in.disp, 0x1234);
    assert_int_equal(in.length, 4);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(paging_off),
        T(paging_32),
        T(paging_32_large_pages),
        T(paging_pae),
        T(paging_4level),
        T(maxphyaddr_out_of_range),
        T(paging_5level),
        T(accessed_and_dirty),
        T(fetch_across_a_page),
        T(fetch_with_the_next_page_missing),
        T(fetch_in_real_mode_wraps_ip),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
