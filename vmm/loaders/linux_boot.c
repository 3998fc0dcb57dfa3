/* The x86 Linux boot protocol for bzImages (see linux_boot.h): check the setup header,
 * place kernel and initrd, then write the zero page, command line, GDT and page tables.
 * The image is read byte-wise through bounds-checked accessors; nothing is written to
 * guest RAM until every check has passed. */
#include "vmm/loaders/linux_boot.h"
#include "vmm/loaders/loader_common.h"

#define LINUX_MAPPED (4ull << 30) /* what the boot page tables map */
#define LINUX_SETUP_SECTS_DEFAULT 4 /* a 0 in setup_sects means 4, from the oldest kernels */
#define LINUX_MIN_RAM (LINUX_LOW_LOAD + 0x1000ul)

STATIC_ASSERT(LINUX_GDT + LINUX_GDT_LIMIT + 1 <= LINUX_ZERO_PAGE, "GDT overlaps the zero page");
STATIC_ASSERT(LINUX_ZERO_PAGE + PAGE_SIZE <= LINUX_STACK_TOP, "zero page overlaps the stack");
STATIC_ASSERT(LINUX_STACK_TOP < LINUX_PAGE_TABLES, "stack overlaps the page tables");
STATIC_ASSERT(LINUX_PAGE_TABLES + LINUX_PAGE_TABLES_SIZE <= LINUX_CMDLINE, "page tables overlap the command line");
STATIC_ASSERT(LINUX_CMDLINE + LINUX_CMDLINE_AREA <= GUEST_LOW_MEM_END, "boot data must stay in low RAM");
STATIC_ASSERT(BP_E820_TABLE + BP_E820_MAX * BP_E820_ENTRY_SIZE <= PAGE_SIZE, "e820 table outside the zero page");

static void put8(uint8_t *p, uint8_t v) { *p = v; }

int linux_parse_header(const void *image, size_t size, struct linux_header *h, char err[GUEST_ERR_LEN])
{
    char scratch[GUEST_ERR_LEN];
    if (!err)
        err = scratch;
    err[0] = 0;
    const uint8_t *p = image;
    if (!p)
        size = 0;
    memset(h, 0, sizeof *h);
    /* Everything up to the version field must be there to say anything at all. */
    if (size < LH_VERSION + 2)
        return fail(err, GUEST_EBADIMAGE, "linux: file of %zu bytes is too short for a setup header (0x%x bytes)",
                    size, LH_VERSION + 2);
    if (le16(p + LH_BOOT_FLAG) != LINUX_BOOT_FLAG)
        return fail(err, GUEST_EBADIMAGE, "linux: no boot sector flag 0xaa55 at 0x1fe (found 0x%x): not a bzImage",
                    le16(p + LH_BOOT_FLAG));
    if (le32(p + LH_HEADER) != LINUX_HDRS)
        return fail(err, GUEST_EBADIMAGE, "linux: no \"HdrS\" signature at 0x202 (found 0x%x): not a bzImage",
                    le32(p + LH_HEADER));
    h->version = le16(p + LH_VERSION);
    if (h->version < LINUX_MIN_PROTOCOL)
        return fail(err, GUEST_EUNSUPPORTED, "linux: boot protocol %u.%02u is older than 2.06, the oldest Keel takes",
                    h->version >> 8, h->version & 0xff);

    unsigned sects = p[LH_SETUP_SECTS] ? p[LH_SETUP_SECTS] : LINUX_SETUP_SECTS_DEFAULT;
    h->setup_size = (sects + 1) * 512u;
    if (h->setup_size > LINUX_SETUP_MAX)
        return fail(err, GUEST_EBADIMAGE, "linux: setup_sects %u makes a setup part of 0x%x bytes, beyond its 0x%lx limit",
                    sects, h->setup_size, LINUX_SETUP_MAX);
    if (h->setup_size >= size)
        return fail(err, GUEST_EBADIMAGE, "linux: the file (%zu bytes) ends inside its setup part (setup_sects %u, 0x%x bytes): truncated",
                    size, sects, h->setup_size);
    h->header_end = LH_HEADER + p[LH_JUMP + 1];
    if (p[LH_JUMP] != 0xeb || h->header_end < LH_CMDLINE_SIZE + 4 || h->header_end > h->setup_size)
        return fail(err, GUEST_EBADIMAGE, "linux: the jump at 0x200 (%02x %02x) gives a setup header ending at 0x%x, not in 0x%x-0x%x",
                    p[LH_JUMP], p[LH_JUMP + 1], h->header_end, LH_CMDLINE_SIZE + 4, h->setup_size);
    if (h->version >= 0x020a && h->header_end < LH_INIT_SIZE + 4)
        return fail(err, GUEST_EBADIMAGE, "linux: protocol %u.%02u, but its setup header ends at 0x%x, before init_size",
                    h->version >> 8, h->version & 0xff, h->header_end);
    h->header_end = MIN(h->header_end, LH_END_MAX);

    h->kernel_offset = h->setup_size;
    h->kernel_size = size - h->setup_size;
    h->loadflags = p[LH_LOADFLAGS];
    if (!(h->loadflags & LOADFLAG_LOADED_HIGH))
        return fail(err, GUEST_EUNSUPPORTED, "linux: a zImage (loadflags 0x%x lacks LOADED_HIGH): only bzImages load at 1 MiB",
                    h->loadflags);
    h->initrd_addr_max = le32(p + LH_INITRD_ADDR_MAX);
    h->kernel_alignment = le32(p + LH_KERNEL_ALIGNMENT);
    h->relocatable = p[LH_RELOCATABLE] != 0;
    h->cmdline_size = le32(p + LH_CMDLINE_SIZE);
    if (h->version >= 0x020c)
        h->xloadflags = le16(p + LH_XLOADFLAGS);
    if (h->version >= 0x020a) {
        h->pref_address = le64(p + LH_PREF_ADDRESS);
        h->init_size = le32(p + LH_INIT_SIZE);
    } else {
        h->pref_address = LINUX_LOW_LOAD;
        h->init_size = h->kernel_size;
    }
    if (h->relocatable && (h->kernel_alignment < PAGE_SIZE || (h->kernel_alignment & (h->kernel_alignment - 1))))
        return fail(err, GUEST_EBADIMAGE, "linux: kernel_alignment 0x%x is not a power of two of at least 4 KiB",
                    h->kernel_alignment);
    if (h->init_size < h->kernel_size)
        return fail(err, GUEST_EBADIMAGE, "linux: init_size 0x%lx is smaller than the kernel's 0x%lx bytes in the file",
                    h->init_size, h->kernel_size);
    return 0;
}

/* The load address, or a negative error: pref_address when the kernel fits there,
 * else (relocatable kernels) the lowest aligned address from 1 MiB where it fits. */
static int place_kernel(const struct linux_header *h, uint64_t ram_size, gpa_t *load, char *err)
{
    uint64_t need = ALIGN_UP(h->init_size, PAGE_SIZE);
    gpa_t pref = h->pref_address;
    if (pref >= LINUX_LOW_LOAD && pref <= ram_size && need <= ram_size - pref &&
        (!h->relocatable || pref % h->kernel_alignment == 0)) {
        *load = pref;
        return 0;
    }
    if (!h->relocatable)
        return fail(err, GUEST_ENOFIT, "linux: the kernel is not relocatable and needs 0x%lx-0x%lx, but guest RAM is 0x%lx bytes",
                    pref, pref + need - 1, ram_size);
    gpa_t at = ALIGN_UP(LINUX_LOW_LOAD, h->kernel_alignment);
    if (at > ram_size || need > ram_size - at || at + need > LINUX_MAPPED)
        return fail(err, GUEST_ENOFIT, "linux: the kernel needs 0x%lx bytes (init_size) from 0x%lx, more than the VM's RAM of 0x%lx bytes",
                    need, at, ram_size);
    *load = at;
    return 0;
}

/* The initrd's address: as high as the kernel allows, above the kernel's span. */
static int place_initrd(const struct linux_header *h, uint64_t ram_size, gpa_t kernel_end, size_t initrd_size,
                        gpa_t *at, char *err)
{
    uint64_t limit = MIN(ram_size, (uint64_t)h->initrd_addr_max + 1);
    if (h->xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G)
        limit = ram_size;
    limit = MIN(limit, LINUX_MAPPED); /* ramdisk_image is 32 bits wide without ext_ramdisk_image */
    uint64_t len = ALIGN_UP((uint64_t)initrd_size, PAGE_SIZE);
    if (initrd_size > limit || len > ALIGN_DOWN(limit, PAGE_SIZE) ||
        ALIGN_DOWN(limit, PAGE_SIZE) - len < kernel_end)
        return fail(err, GUEST_ENOFIT, "linux: initrd of %zu bytes does not fit between the kernel's end 0x%lx and 0x%lx (RAM 0x%lx, initrd_addr_max 0x%x)",
                    initrd_size, kernel_end, limit, ram_size, h->initrd_addr_max);
    *at = ALIGN_DOWN(limit, PAGE_SIZE) - len;
    return 0;
}

static void put_e820(uint8_t *zp, unsigned *n, uint64_t base, uint64_t len, uint32_t type)
{
    uint8_t *e = zp + BP_E820_TABLE + *n * BP_E820_ENTRY_SIZE;
    put64(e, base);
    put64(e + 8, len);
    put32(e + 16, type);
    (*n)++;
}

int guest_load_linux(const struct guest_ram *ram, const void *image, size_t size, const void *initrd,
                     size_t initrd_size, const char *cmdline, struct guest_boot *out, char err[GUEST_ERR_LEN])
{
    char scratch[GUEST_ERR_LEN];
    if (!err)
        err = scratch;
    err[0] = 0;
    if (!ram || !ram->hva)
        return fail(err, GUEST_EINVAL, "linux: no guest RAM");
    if (ram->size % PAGE_SIZE || ram->high_size % PAGE_SIZE)
        return fail(err, GUEST_EINVAL, "linux: guest RAM size 0x%lx + 0x%lx is not a multiple of 4 KiB", ram->size,
                    ram->high_size);
    if (ram->size < LINUX_MIN_RAM)
        return fail(err, GUEST_EINVAL, "linux: guest RAM of 0x%lx bytes is too small (at least 0x%lx needed)", ram->size,
                    LINUX_MIN_RAM);
    if (!initrd)
        initrd_size = 0;
    struct linux_header h;
    int rc = linux_parse_header(image, size, &h, err);
    if (rc)
        return rc;
    size_t cmdlen = cmdline ? strnlen(cmdline, LINUX_CMDLINE_AREA) : 0;
    uint64_t cmdmax = MIN((uint64_t)h.cmdline_size, LINUX_CMDLINE_AREA - 1);
    if (cmdlen > cmdmax)
        return fail(err, GUEST_EINVAL, "linux: command line of %s%zu characters is longer than the kernel's limit of %lu",
                    cmdlen >= LINUX_CMDLINE_AREA ? "at least " : "", cmdlen, cmdmax);
    gpa_t load = 0;
    rc = place_kernel(&h, ram->size, &load, err);
    if (rc)
        return rc;
    gpa_t kernel_end = load + ALIGN_UP(h.init_size, PAGE_SIZE);
    if (kernel_end > LINUX_MAPPED)
        return fail(err, GUEST_ENOFIT, "linux: the kernel at 0x%lx-0x%lx reaches past the 4 GiB the boot page tables map",
                    load, kernel_end - 1);
    gpa_t initrd_at = 0;
    if (initrd_size) {
        rc = place_initrd(&h, ram->size, kernel_end, initrd_size, &initrd_at, err);
        if (rc)
            return rc;
    }
    bool long_mode = h.xloadflags & XLF_KERNEL_64;

    /* Everything checked: from here on nothing fails. */
    const uint8_t *img = image;
    memcpy(ram->hva + load, img + h.kernel_offset, h.kernel_size);
    if (initrd_size)
        memcpy(ram->hva + initrd_at, initrd, initrd_size);

    uint8_t *zp = ram->hva + LINUX_ZERO_PAGE;
    memset(zp, 0, PAGE_SIZE);
    memcpy(zp + LH_SETUP_SECTS, img + LH_SETUP_SECTS, h.header_end - LH_SETUP_SECTS);
    put8(zp + LH_TYPE_OF_LOADER, LINUX_LOADER_TYPE);
    /* No real-mode code of the kernel runs, so it has no heap to be told about. */
    put8(zp + LH_LOADFLAGS, (uint8_t)(h.loadflags & ~LOADFLAG_CAN_USE_HEAP));
    put32(zp + LH_CODE32_START, (uint32_t)load);
    put32(zp + LH_RAMDISK_IMAGE, (uint32_t)initrd_at);
    put32(zp + LH_RAMDISK_SIZE, (uint32_t)initrd_size);
    put32(zp + LH_CMD_LINE_PTR, (uint32_t)LINUX_CMDLINE);
    memset(ram->hva + LINUX_CMDLINE, 0, LINUX_CMDLINE_AREA);
    if (cmdlen)
        memcpy(ram->hva + LINUX_CMDLINE, cmdline, cmdlen);
    unsigned n = 0;
    put_e820(zp, &n, 0, GUEST_LOW_MEM_END, E820_RAM);
    put_e820(zp, &n, GUEST_LOW_MEM_END, GUEST_HIGH_MEM - GUEST_LOW_MEM_END, E820_RESERVED);
    put_e820(zp, &n, GUEST_HIGH_MEM, ram->size - GUEST_HIGH_MEM, E820_RAM);
    if (ram->high_size)
        put_e820(zp, &n, GUEST_RAM_HIGH_BASE, ram->high_size, E820_RAM);
    put8(zp + BP_E820_ENTRIES, (uint8_t)n);

    uint8_t *gdt = ram->hva + LINUX_GDT;
    memset(gdt, 0, LINUX_GDT_LIMIT + 1);
    put64(gdt + LINUX_SEL_CS, long_mode ? GDT_CODE64 : GDT_CODE32);
    put64(gdt + LINUX_SEL_DS, GDT_DATA);

    memset(out, 0, sizeof *out);
    out->kind = GUEST_IMAGE_LINUX;
    out->cs = LINUX_SEL_CS;
    out->ds = LINUX_SEL_DS;
    out->gdt_base = LINUX_GDT;
    out->gdt_limit = LINUX_GDT_LIMIT;
    out->info = LINUX_ZERO_PAGE;
    out->boot_area = LINUX_ZERO_PAGE;
    out->rsi = LINUX_ZERO_PAGE;
    out->rsp = LINUX_STACK_TOP;
    out->load_lo = load;
    out->load_hi = kernel_end;
    out->initrd = initrd_at;
    out->initrd_size = initrd_size;
    if (long_mode) {
        /* Identity map of 0-4 GiB: the kernel, zero page and command line must be mapped. */
        uint8_t *t = ram->hva + LINUX_PAGE_TABLES;
        memset(t, 0, LINUX_PAGE_TABLES_SIZE);
        put64(t, (LINUX_PAGE_TABLES + PAGE_SIZE) | PTE_PRESENT | PTE_WRITE);
        for (uint64_t i = 0; i < 4; i++)
            put64(t + PAGE_SIZE + i * 8, (LINUX_PAGE_TABLES + (2 + i) * PAGE_SIZE) | PTE_PRESENT | PTE_WRITE);
        for (uint64_t i = 0; i < LINUX_MAPPED / LARGE_PAGE_SIZE; i++)
            put64(t + 2 * PAGE_SIZE + i * 8, i * LARGE_PAGE_SIZE | PTE_PRESENT | PTE_WRITE | PTE_LARGE);
        out->mode = GUEST_MODE_LONG64;
        out->rip = load + LINUX_64BIT_ENTRY_OFF;
        out->cr0 = CR0_PE | CR0_ET | CR0_PG;
        out->cr3 = LINUX_PAGE_TABLES;
        out->cr4 = CR4_PAE;
        out->efer = EFER_LME | EFER_LMA;
    } else {
        out->mode = GUEST_MODE_PROT32;
        out->rip = load;
        out->cr0 = CR0_PE | CR0_ET;
    }
    return 0;
}

void linux_boot_set_rsdp(const struct guest_ram *ram, const struct guest_boot *boot, gpa_t rsdp)
{
    uint8_t *zp = ram->hva + boot->info;
    if (le16(zp + LH_VERSION) >= 0x020e)
        put64(zp + BP_ACPI_RSDP_ADDR, rsdp);
}
