/* Keel's UEFI loader: efi_main. Reads keel.cfg and the guest images from the boot
 * volume, checks VT-x while it can still say so on screen, places the embedded core
 * and enters it through struct bootinfo (boot/bootinfo.h).
 *
 * With VT-x usable it ends boot services and hands the machine over for good.
 * Without, it runs the core in platform-check mode: boot services stay alive, the
 * core gets a private memory pool, reports what it finds and returns, and the loader
 * returns an error to the firmware, which then carries on (next boot option, shell).
 * With handover_test = yes it hands over without VT-x too, and the core powers the
 * machine off after its boot: the hand-over path can then be tested in emulators. */
#include <efi.h>

#include "boot/bootinfo.h"
#include "boot/uefi/efi_console.h"
#include "boot/uefi/efi_files.h"
#include "boot/uefi/elf_load.h"
#include "boot/uefi/exit_retry.h"
#include "boot/uefi/handover_paging.h"
#include "boot/uefi/memmap.h"
#include "boot/uefi/vmx_check.h"
#include "arch/x86/cpu.h"
#include "vmm/lib/config.h"
#include "vmm/lib/string.h"

extern const uint8_t keel_core_blob_start[], keel_core_blob_end[];
void keel_handoff_exit(uint64_t entry, struct bootinfo *bi, hpa_t cr3, hpa_t stack_top) NORETURN;
int keel_handoff_call(uint64_t entry, struct bootinfo *bi, hpa_t cr3, hpa_t stack_top);

#define LOW_4G (1ull << 32)
#define STACK_SIZE (64ull << 10)
#define PLATFORM_CHECK_POOL ((uint64_t)32 << 20)
/* What each further CPU costs the core (per-CPU block with its IST stacks, kernel stack),
 * rounded up: the pool grows with the machine so a platform check of a big server still
 * brings up every CPU. */
#define PLATFORM_CHECK_PER_CPU ((uint64_t)64 << 10)

/* EFI_MP_SERVICES_PROTOCOL (UEFI PI spec, vol. 2, 13.4), which gnu-efi does not
 * declare; only its first member is used. */
#define MP_SERVICES_GUID \
    { 0x3fdda605, 0xa76e, 0x4f46, { 0xad, 0x29, 0x12, 0xf4, 0x53, 0x1b, 0x3d, 0x08 } }
struct mp_services {
    EFI_STATUS(EFIAPI *get_number_of_processors)(struct mp_services *self, UINTN *total,
                                                 UINTN *enabled);
};
/* Highest page for the AP start-up code: SIPI vectors reach below 1 MiB, and the
 * EBDA and legacy ROM area start at 0x9F000 on PCs. */
#define AP_TRAMPOLINE_LIMIT ((uint64_t)0x9F000)
#define EXIT_BOOT_SERVICES_TRIES 5
/* Room for the descriptors that allocations made between sizing the map buffer and
 * the final GetMemoryMap can add. */
#define MMAP_SLACK_DESCS 64
STATIC_ASSERT(CONFIG_STALE_MAP_KEYS_MAX < EXIT_BOOT_SERVICES_TRIES,
              "stale_map_keys must leave an attempt with a fresh key");

static EFI_HANDLE image_handle;
static EFI_SYSTEM_TABLE *sys;
static EFI_BOOT_SERVICES *bs;
static struct keel_config config;

struct mmap_buf {
    void *buf;
    uint64_t cap;       /* bytes allocated */
    UINTN size;         /* bytes filled by the last GetMemoryMap */
    UINTN key, desc_size;
    UINT32 desc_version;
};

static void narrow(char *dst, size_t cap, const CHAR16 *src)
{
    size_t n = 0;
    for (; src && src[n] && n + 1 < cap; n++)
        dst[n] = src[n] < 0x7f && src[n] >= 0x20 ? (char)src[n] : '?';
    dst[n] = 0;
}

/* The UEFI load options as Keel's command line (global key=value overrides), when
 * they are plain text. Boot entries often carry binary data there, and the UEFI
 * shell puts the program's own path first: both are left out. */
static void load_cmdline(struct bootinfo *bi)
{
    EFI_GUID loaded_image_guid = EFI_LOADED_IMAGE_PROTOCOL_GUID;
    EFI_LOADED_IMAGE *li = NULL;

    if (uefi_call_wrapper(bs->HandleProtocol, 3, image_handle, &loaded_image_guid, (void **)&li) !=
            EFI_SUCCESS || !li->LoadOptions || li->LoadOptionsSize < sizeof(CHAR16))
        return;
    const CHAR16 *opt = li->LoadOptions;
    size_t n = li->LoadOptionsSize / sizeof(CHAR16);
    char text[BOOTINFO_MAX_CMDLINE];
    size_t len = 0;

    for (size_t i = 0; i < n && opt[i]; i++) {
        if (opt[i] < 0x20 || opt[i] > 0x7e || len + 1 >= sizeof(text))
            return;
        text[len++] = (char)opt[i];
    }
    text[len] = 0;

    const char *p = text;
    while (*p == ' ')
        p++;
    const char *end = strchr(p, ' ');
    size_t first = end ? (size_t)(end - p) : strlen(p);
    if (first >= 4 && (strncmp(p + first - 4, ".efi", 4) == 0 || strncmp(p + first - 4, ".EFI", 4) == 0))
        p += first;
    while (*p == ' ')
        p++;
    if (*p) {
        kstrlcpy(bi->cmdline, p, sizeof(bi->cmdline));
        efi_printf("Keel loader: command line: %s\n", bi->cmdline);
    }
}

/* --- keel.cfg --------------------------------------------------------------- */

/* Reads and checks keel.cfg and copies its text into *bi. False after printing the
 * error when the file is malformed (the loader then gives up). */
static bool load_config(EFI_FILE_HANDLE root, struct bootinfo *bi)
{
    hpa_t text = 0;
    uint64_t len = 0;
    EFI_STATUS st = root ? efi_read_file(root, "keel.cfg", &text, &len) : EFI_NOT_FOUND;

    config_defaults(&config);
    if (st == EFI_NOT_FOUND) {
        efi_printf("Keel loader: no keel.cfg on the boot volume; using the defaults\n");
        return true;
    }
    if (st != EFI_SUCCESS) {
        efi_printf("Keel: cannot read keel.cfg (status 0x%lx); using the defaults\n", (uint64_t)st);
        return true;
    }
    struct config_error err;
    if (config_parse((const char *)(uintptr_t)text, len, &config, &err)) {
        /* err.msg names the file and line already: "keel.cfg:3: unknown key 'foo'". */
        efi_printf("Keel: %s\n", err.msg);
        efi_printf("Keel: fix keel.cfg on the boot volume and try again.\n");
        efi_free_pages(text, len);
        return false;
    }
    bi->config = text;
    bi->config_len = len;
    efi_printf("Keel loader: keel.cfg read (%lu bytes, %u VMs)\n", len, (unsigned)config.vm_count);
    return true;
}

/* Every file a VM names (its image, its disk, its initrd) goes into bi->modules; missing ones are
 * reported and skipped, so the core can say which VM cannot start. */
static void load_modules(EFI_FILE_HANDLE root, struct bootinfo *bi)
{
    for (uint32_t f = 0; f < 3 * config.vm_count; f++) {
        const struct vm_config *vm = &config.vms[f / 3];
        const char *name = f % 3 == 0 ? vm->image : f % 3 == 1 ? vm->disk : vm->initrd;
        if (!name[0])
            continue;

        bool have = false;
        for (uint32_t m = 0; m < bi->module_count; m++)
            have |= strcmp(bi->modules[m].name, name) == 0;
        if (have)
            continue;
        if (bi->module_count == BOOTINFO_MAX_MODULES) {
            efi_printf("Keel: VM '%s': too many files (at most %u); skipping '%s'\n",
                       vm->name, BOOTINFO_MAX_MODULES, name);
            bi->modules_dropped++;
            continue;
        }
        if (strlen(name) >= BOOTINFO_MODULE_NAME) {
            efi_printf("Keel: VM '%s': file name '%s' is too long; skipping it\n",
                       vm->name, name);
            continue;
        }
        hpa_t data = 0;
        uint64_t size = 0;
        EFI_STATUS st = root ? efi_read_file(root, name, &data, &size) : EFI_NOT_FOUND;
        if (st == EFI_NOT_FOUND) {
            efi_printf("Keel: VM '%s': file '%s' not found on the boot volume; skipping it\n",
                       vm->name, name);
            continue;
        }
        if (st != EFI_SUCCESS) {
            efi_printf("Keel: VM '%s': cannot read file '%s' (status 0x%lx); skipping it\n",
                       vm->name, name, (uint64_t)st);
            continue;
        }
        struct boot_module *m = &bi->modules[bi->module_count++];
        m->base = data;
        m->size = size;
        kstrlcpy(m->name, name, sizeof(m->name));
        efi_printf("Keel loader: VM '%s': loaded %s (%lu bytes)\n", vm->name, name, size);
    }
}

/* --- firmware tables and devices -------------------------------------------- */

static hpa_t find_rsdp(void)
{
    static const EFI_GUID guids[] = { ACPI_20_TABLE_GUID, ACPI_TABLE_GUID };

    for (size_t g = 0; g < ARRAY_SIZE(guids); g++) {
        for (UINTN i = 0; i < sys->NumberOfTableEntries; i++) {
            EFI_CONFIGURATION_TABLE *t = &sys->ConfigurationTable[i];
            if (memcmp(&t->VendorGuid, &guids[g], sizeof(EFI_GUID)) != 0)
                continue;
            if (t->VendorTable && memcmp(t->VendorTable, "RSD PTR ", 8) == 0)
                return (hpa_t)(uintptr_t)t->VendorTable;
        }
    }
    return 0;
}

static void find_framebuffer(struct bootinfo *bi)
{
    EFI_GUID gop_guid = EFI_GRAPHICS_OUTPUT_PROTOCOL_GUID;
    EFI_GRAPHICS_OUTPUT_PROTOCOL *gop = NULL;

    if (uefi_call_wrapper(bs->LocateProtocol, 3, &gop_guid, NULL, (void **)&gop) != EFI_SUCCESS ||
        !gop || !gop->Mode || !gop->Mode->Info)
        return;
    EFI_GRAPHICS_OUTPUT_MODE_INFORMATION *info = gop->Mode->Info;
    if (info->PixelFormat != PixelRedGreenBlueReserved8BitPerColor &&
        info->PixelFormat != PixelBlueGreenRedReserved8BitPerColor)
        return; /* no linear framebuffer (BltOnly) or an odd format */
    bi->has_framebuffer = true;
    bi->fb.base = gop->Mode->FrameBufferBase;
    bi->fb.width = info->HorizontalResolution;
    bi->fb.height = info->VerticalResolution;
    bi->fb.pitch = info->PixelsPerScanLine * 4;
    bi->fb.bpp = 32;
}

/* --- VT-x --------------------------------------------------------------------- */

static bool check_vtx(void)
{
    struct vmx_check c;
    vmx_check_boot_cpu(&c);

    switch (c.state) {
    case VMX_USABLE:
        efi_printf("Keel loader: VT-x supported (IA32_FEATURE_CONTROL 0x%lx)\n", c.feature_control);
        return true;
    case VMX_NOT_SUPPORTED:
        efi_printf("Keel: VT-x not available: this CPU does not support Intel VT-x (VMX).\n");
        efi_printf("Keel: (CPU vendor %s; Keel needs an Intel CPU with VT-x.)\n", c.vendor);
        return false;
    case VMX_DISABLED_BY_FIRMWARE:
    default:
        efi_printf("Keel: VT-x not available: VT-x is disabled by the firmware "
                   "(IA32_FEATURE_CONTROL locked with VMX off).\n");
        efi_printf("Keel: Enable Intel VT-x (Virtualization Technology) in the firmware setup "
                   "and try again.\n");
        return false;
    }
}

/* --- memory map ----------------------------------------------------------------- */

static EFI_STATUS get_memory_map(struct mmap_buf *m)
{
    m->size = m->cap;
    return uefi_call_wrapper(bs->GetMemoryMap, 5, &m->size, (EFI_MEMORY_DESCRIPTOR *)m->buf,
                             &m->key, &m->desc_size, &m->desc_version);
}

/* Sizes and allocates the buffer, then fills it. */
static bool alloc_memory_map(struct mmap_buf *m)
{
    m->buf = NULL;
    m->cap = 0;
    EFI_STATUS st = get_memory_map(m);
    if (st != EFI_BUFFER_TOO_SMALL || m->desc_size == 0) {
        efi_printf("Keel: GetMemoryMap failed (status 0x%lx)\n", (uint64_t)st);
        return false;
    }
    m->cap = ALIGN_UP(m->size + MMAP_SLACK_DESCS * m->desc_size, PAGE_SIZE);
    m->buf = (void *)(uintptr_t)efi_alloc_pages(m->cap, PAGE_SIZE, UINT64_MAX, true);
    if (!m->buf) {
        efi_printf("Keel: no memory for the memory map\n");
        return false;
    }
    st = get_memory_map(m);
    if (st != EFI_SUCCESS) {
        efi_printf("Keel: GetMemoryMap failed (status 0x%lx)\n", (uint64_t)st);
        return false;
    }
    return true;
}

static bool convert_memory_map(struct bootinfo *bi, const struct mmap_buf *m, enum memmap_mode mode,
                               hpa_t pool, uint64_t pool_len, struct memmap_result *res)
{
    if (!memmap_from_uefi(bi->mem, BOOTINFO_MAX_MEM, m->buf, m->size, m->desc_size, mode, pool,
                          pool_len, res))
        return false;
    bi->mem_count = res->count;
    return true;
}

/* Says when the converted map lost something; only while printing is allowed. */
static void report_memory_map(const struct memmap_result *res)
{
    if (res->dropped)
        efi_printf("Keel: the memory map has more than %u ranges; %u left out (that memory "
                   "stays unused)\n", BOOTINFO_MAX_MEM, res->dropped);
    if (res->bad)
        efi_printf("Keel: %u malformed memory map entries ignored\n", res->bad);
}

/* --- the core --------------------------------------------------------------------- */

struct handover {
    struct keel_elf_image img;
    hpa_t cr3;
    hpa_t stack_top;
};

static bool place_core(struct bootinfo *bi, struct handover *h)
{
    const char *why = NULL;
    uint64_t blob_size = (uint64_t)(keel_core_blob_end - keel_core_blob_start);

    if (!keel_elf_inspect(keel_core_blob_start, blob_size, &h->img, &why)) {
        efi_printf("Keel: the embedded core image is broken: %s\n", why);
        return false;
    }
    uint64_t size = h->img.image_end - h->img.image_vbase;
    /* 2 MiB alignment lets the core map itself with large pages later. */
    hpa_t pa = efi_alloc_pages(size, LARGE_PAGE_SIZE, LOW_4G, true);
    if (!pa)
        pa = efi_alloc_pages(size, PAGE_SIZE, LOW_4G, true);
    if (!pa) {
        efi_printf("Keel: no memory for the core image (%lu KiB)\n", size >> 10);
        return false;
    }
    keel_elf_place(keel_core_blob_start, &h->img, (void *)(uintptr_t)pa);
    bi->kernel_phys_base = pa;
    bi->kernel_size = size;
    efi_printf("Keel loader: core image at 0x%lx (%lu KiB), entry 0x%lx\n", pa, size >> 10,
               h->img.entry64);
    return true;
}

static bool build_page_tables(const struct bootinfo *bi, struct handover *h, const struct mmap_buf *m)
{
    struct handover_layout l = {
        .identity_top = memmap_uefi_top(m->buf, m->size, m->desc_size),
        .gb_pages = cpuid(0x80000000, 0).eax >= 0x80000001 &&
                    (cpuid(0x80000001, 0).edx & BIT(26)),
        .image_vbase = h->img.image_vbase,
        .image_pa = bi->kernel_phys_base,
        .image_size = bi->kernel_size,
    };
    uint64_t pages = handover_pt_pages(&l);
    hpa_t buf = efi_alloc_pages(pages * PAGE_SIZE, PAGE_SIZE, LOW_4G, true);
    if (!buf) {
        efi_printf("Keel: no memory for the hand-over page tables (%lu pages)\n", pages);
        return false;
    }
    h->cr3 = handover_pt_build((void *)(uintptr_t)buf, buf, pages, &l);
    if (!h->cr3) {
        efi_printf("Keel: cannot build the hand-over page tables\n");
        return false;
    }
    return true;
}

static struct bootinfo *new_bootinfo(void)
{
    hpa_t pa = efi_alloc_pages(sizeof(struct bootinfo), PAGE_SIZE, LOW_4G, true);
    if (!pa)
        return NULL;
    struct bootinfo *bi = (struct bootinfo *)(uintptr_t)pa;
    memset(bi, 0, sizeof(*bi));
    bi->magic = BOOTINFO_MAGIC;
    bi->version = BOOTINFO_VERSION;
    bi->source = BOOT_SOURCE_UEFI;
    kstrlcpy(bi->loader_name, "the Keel UEFI loader", sizeof(bi->loader_name));
    return bi;
}

/* The firmware side of exit_boot_services_retry. */
struct exit_ctx {
    struct bootinfo *bi;
    struct mmap_buf *m;
};

static uint64_t exit_get_map(void *ctx, uint64_t *key)
{
    struct exit_ctx *c = ctx;
    EFI_STATUS st = get_memory_map(c->m);
    *key = c->m->key;
    return st;
}

static bool exit_convert(void *ctx)
{
    struct exit_ctx *c = ctx;
    struct memmap_result res;
    return convert_memory_map(c->bi, c->m, MEMMAP_HANDOVER, 0, 0, &res);
}

/* stale_map_keys: one page allocated and freed changes the map key (EDK2 counts every
 * change of the map), the way a firmware event handler allocating at the wrong moment
 * does on real machines. */
static void exit_make_stale(void *ctx)
{
    (void)ctx;
    efi_free_pages(efi_alloc_pages(PAGE_SIZE, PAGE_SIZE, UINT64_MAX, true), PAGE_SIZE);
}

static uint64_t exit_call(void *ctx, uint64_t key)
{
    (void)ctx;
    return uefi_call_wrapper(bs->ExitBootServices, 2, image_handle, (UINTN)key);
}

/* Boot services end here; nothing below may allocate or print. Returns only when
 * ExitBootServices kept failing. */
static EFI_STATUS hand_over(struct bootinfo *bi, struct handover *h, struct mmap_buf *m)
{
    /* A trial run, to report problems while the console still works. */
    struct memmap_result trial;
    if (get_memory_map(m) == EFI_SUCCESS &&
        convert_memory_map(bi, m, MEMMAP_HANDOVER, 0, 0, &trial))
        report_memory_map(&trial);

    if (config.stale_map_keys)
        efi_printf("Keel loader: stale_map_keys = %u: the first %u ExitBootServices calls get "
                   "a stale map key\n", config.stale_map_keys, config.stale_map_keys);
    efi_printf("Keel loader: exiting boot services; entering the core\n");

    struct exit_ctx ctx = { .bi = bi, .m = m };
    const struct exit_bs_ops ops = {
        .ctx = &ctx,
        .get_map = exit_get_map,
        .convert = exit_convert,
        .make_stale = exit_make_stale,
        .exit_boot_services = exit_call,
    };
    struct exit_bs_result res;
    if (exit_boot_services_retry(&ops, EXIT_BOOT_SERVICES_TRIES, config.stale_map_keys, &res)) {
        /* The core reports these: the loader can no longer print. */
        bi->exit_bs_attempts = res.attempts;
        bi->exit_bs_stale_keys = res.stale_keys;
        keel_handoff_exit(h->img.entry64, bi, h->cr3, h->stack_top);
    }
    efi_printf("Keel: %s failed after %u ExitBootServices calls (%u with a stale map key)\n",
               res.failed, res.attempts, res.stale_keys);
    return res.status;
}

/* The firmware's count of CPUs, 0 when it has no MP services. */
static uint64_t firmware_cpu_count(void)
{
    EFI_GUID guid = MP_SERVICES_GUID;
    struct mp_services *mp = NULL;
    UINTN total = 0, enabled = 0;
    if (uefi_call_wrapper(bs->LocateProtocol, 3, &guid, NULL, (void **)&mp) != EFI_SUCCESS || !mp ||
        uefi_call_wrapper(mp->get_number_of_processors, 3, mp, &total, &enabled) != EFI_SUCCESS)
        return 0;
    return total;
}

static EFI_STATUS platform_check(struct bootinfo *bi, struct handover *h, struct mmap_buf *m)
{
    uint64_t cpus = firmware_cpu_count();
    uint64_t pool_len = ALIGN_UP(PLATFORM_CHECK_POOL + cpus * PLATFORM_CHECK_PER_CPU, LARGE_PAGE_SIZE);
    hpa_t pool = efi_alloc_pages(pool_len, LARGE_PAGE_SIZE, LOW_4G, true);
    if (!pool) {
        efi_printf("Keel: no memory for the platform check (%lu MiB)\n", pool_len >> 20);
        return EFI_UNSUPPORTED;
    }
    struct memmap_result res;
    EFI_STATUS st = get_memory_map(m);
    if (st != EFI_SUCCESS ||
        !convert_memory_map(bi, m, MEMMAP_PLATFORM_CHECK, pool, pool_len, &res)) {
        efi_printf("Keel: GetMemoryMap failed (status 0x%lx)\n", (uint64_t)st);
        return EFI_UNSUPPORTED;
    }
    report_memory_map(&res);
    bi->flags |= BOOT_PLATFORM_CHECK;
    efi_printf("Keel loader: platform check: running the core with the firmware alive "
               "(%lu MiB pool at 0x%lx for %lu CPUs, %u map entries)\n",
               pool_len >> 20, pool, cpus, bi->mem_count);

    int rc = keel_handoff_call(h->img.entry64, bi, h->cr3, h->stack_top);

    /* The core memory stays allocated: APs it parked may still sit in its code. */
    for (uint32_t i = 0; i < bi->module_count; i++)
        efi_free_pages(bi->modules[i].base, bi->modules[i].size);
    efi_printf("Keel loader: the core returned %d\n", rc);
    efi_printf("Keel: platform check done; returning to the firmware.\n");
    return EFI_UNSUPPORTED;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
    char vendor[64];

    image_handle = image;
    sys = st;
    bs = st->BootServices;
    efi_console_init(st);
    efi_files_init(st);

    narrow(vendor, sizeof(vendor), st->FirmwareVendor);
    efi_printf("Keel loader: started by %s firmware (revision 0x%x), UEFI %u.%u\n", vendor,
               st->FirmwareRevision, st->Hdr.Revision >> 16, st->Hdr.Revision & 0xffff);
    /* The firmware watchdog would reset the machine under a long platform check. */
    uefi_call_wrapper(bs->SetWatchdogTimer, 4, 0, 0, 0, NULL);

    struct bootinfo *bi = new_bootinfo();
    if (!bi) {
        efi_printf("Keel: no memory for the boot information\n");
        return EFI_OUT_OF_RESOURCES;
    }
    EFI_FILE_HANDLE root = efi_open_boot_volume(image);
    if (!load_config(root, bi)) {
        if (root)
            uefi_call_wrapper(root->Close, 1, root);
        efi_free_pages((hpa_t)(uintptr_t)bi, sizeof(*bi));
        return EFI_LOAD_ERROR;
    }
    load_cmdline(bi);

    bi->rsdp = find_rsdp();
    if (bi->rsdp)
        efi_printf("Keel loader: ACPI RSDP at 0x%lx\n", bi->rsdp);
    else
        efi_printf("Keel: the firmware lists no ACPI tables\n");

    bool vtx = check_vtx();
    if (!vtx && config.handover_test) {
        efi_printf("Keel loader: handover_test = yes: exiting boot services without VT-x; "
                   "the core will power off at the end of its boot\n");
        bi->flags |= BOOT_HANDOVER_TEST;
    } else if (!vtx && !config.platform_check) {
        efi_printf("Keel: platform_check = no; returning to the firmware.\n");
        if (root)
            uefi_call_wrapper(root->Close, 1, root);
        efi_free_pages(bi->config, bi->config_len);
        efi_free_pages((hpa_t)(uintptr_t)bi, sizeof(*bi));
        return EFI_UNSUPPORTED;
    }

    load_modules(root, bi);
    if (root)
        uefi_call_wrapper(root->Close, 1, root);
    find_framebuffer(bi);

    struct handover h;
    if (!place_core(bi, &h))
        return EFI_LOAD_ERROR;
    hpa_t stack = efi_alloc_pages(STACK_SIZE, PAGE_SIZE, LOW_4G, true);
    bi->ap_trampoline = efi_alloc_pages(PAGE_SIZE, PAGE_SIZE, AP_TRAMPOLINE_LIMIT, false);
    if (!stack) {
        efi_printf("Keel: no memory for the core's stack\n");
        return EFI_OUT_OF_RESOURCES;
    }
    h.stack_top = stack + STACK_SIZE;
    if (!bi->ap_trampoline)
        efi_printf("Keel loader: no free page below 0x%lx for AP start-up; the core will "
                   "run on the boot CPU only\n", AP_TRAMPOLINE_LIMIT);

    struct mmap_buf m;
    if (!alloc_memory_map(&m) || !build_page_tables(bi, &h, &m))
        return EFI_LOAD_ERROR;

    if (!vtx && !config.handover_test)
        return platform_check(bi, &h, &m);

    EFI_STATUS rc = hand_over(bi, &h, &m);
    /* Reached only if ExitBootServices kept failing: boot services may be half gone,
     * but the console usually still works. */
    efi_printf("Keel: ExitBootServices failed (status 0x%lx); returning to the firmware.\n",
               (uint64_t)rc);
    return rc;
}
