/* Writes seed inputs for the fuzz targets, in each harness's input format, from the
 * builders the unit tests use (tests/unit/acpi_blobs.c, tests/unit/image_builders.c)
 * and a few hand-made hypercall sequences. `make fuzz-seeds` runs it into
 * build/fuzz/seeds/NAME/; the committed corpora in tests/fuzz/corpus/ were made so
 * (plus the shipped configs and test guests; see tests/fuzz/fuzz.mk).
 * Usage: make_seeds DIR (DIR/acpi, DIR/guest_image, DIR/hypercall must exist). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/acpi_tables.h"
#include "tests/unit/acpi_blobs.h"
#include "tests/unit/image_builders.h"
#include "vmm/hypercall_abi.h"

static const char *outdir;

struct buf {
    uint8_t b[1 << 16];
    size_t n;
};

static void put(struct buf *o, const void *p, size_t n)
{
    if (o->n + n > sizeof o->b) {
        fprintf(stderr, "make_seeds: seed too large\n");
        exit(1);
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void put8(struct buf *o, uint8_t v) { put(o, &v, 1); }
static void put64(struct buf *o, uint64_t v) { put(o, &v, 8); }

static void save(const char *target, const char *name, const struct buf *o)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", outdir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(o->b, 1, o->n, f) != o->n || fclose(f) != 0) {
        fprintf(stderr, "make_seeds: cannot write %s\n", path);
        exit(1);
    }
}

/* ---- ACPI: records [u16 len][u8 flags][bytes], pointers as record references ---- */

struct arec {
    const void *p;
    uint32_t len;
    uint8_t flags;
};

static uint64_t ref(const struct arec *r, size_t n, uint64_t addr)
{
    for (size_t i = 0; i < n; i++)
        if (addr && (uint64_t)(uintptr_t)r[i].p == addr)
            return i + 1;
    return 0;
}

static void ref32(const struct arec *r, size_t n, uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    v = (uint32_t)ref(r, n, v);
    memcpy(p, &v, 4);
}

static void ref64(const struct arec *r, size_t n, uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    v = ref(r, n, v);
    memcpy(p, &v, 8);
}

static void acpi_seed(const char *name, const struct arec *r, size_t n)
{
    static struct buf o;
    o.n = 0;
    for (size_t i = 0; i < n; i++) {
        static uint8_t t[BLOB_MAX];
        memcpy(t, r[i].p, r[i].len);
        if (i == 0) {
            ref32(r, n, t + 16);
            if (r[i].len >= 32)
                ref64(r, n, t + 24);
        } else if (!memcmp(t, "RSDT", 4)) {
            for (uint32_t off = 36; off + 4 <= r[i].len; off += 4)
                ref32(r, n, t + off);
        } else if (!memcmp(t, "XSDT", 4)) {
            for (uint32_t off = 36; off + 8 <= r[i].len; off += 8)
                ref64(r, n, t + off);
        } else if (!memcmp(t, "FACP", 4)) {
            ref32(r, n, t + 40);
            if (r[i].len >= 148)
                ref64(r, n, t + 140);
        }
        if (r[i].flags & 1)
            t[i ? 9 : 8] ^= 0x55; /* a kept checksum is meant to be wrong */
        uint16_t len = (uint16_t)r[i].len;
        put(&o, &len, 2);
        put8(&o, r[i].flags);
        put(&o, t, r[i].len);
    }
    save("acpi", name, &o);
}

static uint32_t sdt_len(const void *t)
{
    return ((const struct acpi_sdt_header *)t)->length;
}

static void acpi_seeds(void)
{
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    struct arec full[] = {
        {p.rsdp, 36, 0}, {p.xsdt, sdt_len(p.xsdt), 0}, {p.rsdt, sdt_len(p.rsdt), 0},
        {p.madt, sdt_len(p.madt), 0}, {p.fadt, sdt_len(p.fadt), 0}, {p.dsdt, sdt_len(p.dsdt), 0},
        {p.dsdt_decoy, sdt_len(p.dsdt_decoy), 0}, {p.hpet, sdt_len(p.hpet), 0}, {p.mcfg, sdt_len(p.mcfg), 0},
        {p.waet, sdt_len(p.waet), 0},
    };
    acpi_seed("platform-xsdt", full, ARRAY_SIZE(full));

    /* The same tables at odd addresses, and a MADT whose checksum is kept (and wrong). */
    struct arec odd[ARRAY_SIZE(full)];
    memcpy(odd, full, sizeof odd);
    for (size_t i = 0; i < ARRAY_SIZE(odd); i++)
        odd[i].flags = (uint8_t)((i % 8) << 1);
    odd[3].flags |= 1;
    acpi_seed("platform-unaligned-bad-madt", odd, ARRAY_SIZE(odd));

    /* ACPI 1.0: RSDP revision 0, RSDT only, no HPET or MCFG. */
    blob_build_platform(&p, false, false);
    void *tables[] = {p.madt, p.fadt};
    p.rsdt = blob_root("RSDT", tables, 2);
    p.rsdp = blob_rsdp(0, p.rsdt, NULL);
    struct arec v1[] = {
        {p.rsdp, 20, 0}, {p.rsdt, sdt_len(p.rsdt), 0}, {p.madt, sdt_len(p.madt), 0},
        {p.fadt, sdt_len(p.fadt), 0}, {p.dsdt, sdt_len(p.dsdt), 0}, {p.dsdt_decoy, sdt_len(p.dsdt_decoy), 0},
    };
    acpi_seed("platform-rsdt-v1", v1, ARRAY_SIZE(v1));
    blob_free_all();
}

/* ---- guest images: [kind][RAM size index][pages][cmdline length][cmdline][image] ---- */

static void image_seed(const char *name, uint8_t kind, uint8_t ram_index, const char *cmdline,
                       const struct test_image *img)
{
    static struct buf o;
    o.n = 0;
    put8(&o, kind);
    put8(&o, ram_index);
    put8(&o, 0);
    put8(&o, (uint8_t)strlen(cmdline));
    put(&o, cmdline, strlen(cmdline));
    put(&o, img->data, img->size);
    save("guest_image", name, &o);
}

#define KIND_MULTIBOOT 0
#define KIND_ELF64 1
#define KIND_REAL 2
#define KIND_PROBE 3
#define RAM_2M 5
#define RAM_16M 8

static void image_seeds(void)
{
    struct test_image img;
    const struct seg_spec mb_segs[] = {
        {IMG_PT_LOAD, 0x100000, 0x100000, 0x800, 0x800},
        {IMG_PT_NOTE, 0, 0, 0x20, 0x20},
        {IMG_PT_LOAD, 0x102000, 0xC0102000, 0x100, 0x2000},
        {IMG_PT_LOAD, 0x200000, 0xC0200000, 0, 0x1000},
    };
    img_elf32(&img, 0x100010, mb_segs, ARRAY_SIZE(mb_segs), true, 3);
    image_seed("builder-mb-elf32", KIND_MULTIBOOT, RAM_16M, "console=ttyS0 root=/dev/vda", &img);
    img_free(&img);

    img_elf32(&img, 0x100010, mb_segs, 1, true, 4); /* asks for a video mode */
    image_seed("builder-mb-elf32-video", KIND_PROBE, RAM_2M, "", &img);
    img_free(&img);

    img_aout(&img, 0x800, 0x40, 0, 0x100040, 0x100000, 0x100800, 0x103000, 0x100100);
    image_seed("builder-mb-aout", KIND_MULTIBOOT, RAM_2M, "a.out", &img);
    img_free(&img);

    /* Kernels where the preferred boot area is: linked at 0x8000, and low memory full
     * with a segment at 1 MiB, so the boot information moves below and above them. */
    const struct seg_spec low_segs[] = {
        {IMG_PT_LOAD, 0x8000, 0x8000, 0x800, 0x3000},
    };
    img_elf32(&img, 0x8000, low_segs, ARRAY_SIZE(low_segs), true, 3);
    image_seed("builder-mb-elf32-at-0x8000", KIND_MULTIBOOT, RAM_2M, "linked low", &img);
    img_free(&img);
    const struct seg_spec split_segs[] = {
        {IMG_PT_LOAD, 0x1000, 0x1000, 0x200, 0x9e000},
        {IMG_PT_LOAD, 0x100000, 0x100000, 0x200, 0x1000},
    };
    img_elf32(&img, 0x1000, split_segs, ARRAY_SIZE(split_segs), true, 0);
    image_seed("builder-mb-elf32-low-full", KIND_MULTIBOOT, RAM_2M, "", &img);
    img_free(&img);

    const struct seg_spec elf64_segs[] = {
        {IMG_PT_LOAD, 0x100000, 0xffffffff80100000ull, 0x845, 0x3000},
        {IMG_PT_NOTE, 0, 0, 0x10, 0x10},
        {IMG_PT_LOAD, 0x400000, 0xffffffff80400000ull, 0x100, 0x10000},
    };
    img_elf64(&img, 0xffffffff80100040ull, elf64_segs, ARRAY_SIZE(elf64_segs));
    image_seed("builder-elf64", KIND_ELF64, RAM_16M, "", &img);
    img_free(&img);
}

/* ---- hypercalls: [mode/cpl/tsc][RAM pages - 1][calls - 1] then calls, then RAM ---- */

static void call(struct buf *o, uint64_t rax, uint64_t rbx, uint64_t rcx, uint64_t rdx)
{
    put64(o, rax);
    put64(o, rbx);
    put64(o, rcx);
    put64(o, rdx);
    put8(o, 3); /* VMCALL is 3 bytes */
}

static void hypercall_seeds(void)
{
    static struct buf o;
    o.n = 0;
    put8(&o, 0x10); /* 64-bit, ring 0, TSC calibrated */
    put8(&o, 0);    /* one page */
    put8(&o, 3);    /* four calls */
    call(&o, KEEL_HC_CONSOLE_WRITE, 0, 12, 0);
    call(&o, KEEL_HC_VM_INFO, 0x100, sizeof(struct keel_vm_info), 0);
    call(&o, KEEL_HC_YIELD, 0, 0, 0);
    call(&o, KEEL_HC_EXIT, 7, 0, 0);
    put(&o, "hello\nwor\x1bld", 12);
    save("hypercall", "64bit-each-call", &o);

    o.n = 0;
    put8(&o, 0x01); /* 32-bit protected mode, ring 0 */
    put8(&o, 1);
    put8(&o, 2);
    call(&o, 0xdeadbeef00000000ull | KEEL_HC_CONSOLE_WRITE, 0xdead000000000000ull, 0x1234567800000007ull, 0);
    call(&o, KEEL_HC_VM_INFO, 0xffffffff00001fd0ull, 0xffffffff00000030ull, 0);
    call(&o, KEEL_HC_CONSOLE_WRITE, 0x2000, 1, 0); /* one past the end of RAM */
    put(&o, "32-bit\n", 7);
    save("hypercall", "32bit-upper-halves", &o);

    o.n = 0;
    put8(&o, 0x0e); /* compatibility mode, ring 3 */
    put8(&o, 0);
    put8(&o, 1);
    call(&o, KEEL_HC_EXIT, 1, 0, 0);
    call(&o, KEEL_HC_VM_INFO, 0, 64, 0);
    save("hypercall", "ring3", &o);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR\n");
        return 2;
    }
    outdir = argv[1];
    acpi_seeds();
    image_seeds();
    hypercall_seeds();
    return 0;
}
