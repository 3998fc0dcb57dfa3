/* Files and page allocations through boot services (see efi_files.h). */
#include "boot/uefi/efi_files.h"
#include "boot/uefi/efi_console.h"
#include "vmm/lib/string.h"

static EFI_BOOT_SERVICES *bs;

/* Largest file the loader reads: guest images are big, but not this big. */
#define MAX_FILE_SIZE (1ull << 32)

void efi_files_init(EFI_SYSTEM_TABLE *st)
{
    bs = st->BootServices;
}

static hpa_t alloc_exact(EFI_ALLOCATE_TYPE how, uint64_t pages, uint64_t max_pa)
{
    EFI_PHYSICAL_ADDRESS pa = max_pa;
    if (uefi_call_wrapper(bs->AllocatePages, 4, how, EfiLoaderData, pages, &pa) != EFI_SUCCESS)
        return 0;
    return pa;
}

hpa_t efi_alloc_pages(uint64_t size, uint64_t align, uint64_t max_pa, bool anywhere_ok)
{
    uint64_t pages = ALIGN_UP(size, PAGE_SIZE) / PAGE_SIZE;
    /* AllocatePages only guarantees 4 KiB alignment: over-allocate, then give back
     * the unaligned head and the unused tail. */
    uint64_t extra = align > PAGE_SIZE ? (align - PAGE_SIZE) / PAGE_SIZE : 0;

    if (pages == 0)
        return 0;
    hpa_t pa = alloc_exact(AllocateMaxAddress, pages + extra, max_pa - 1);
    if (!pa && anywhere_ok)
        pa = alloc_exact(AllocateAnyPages, pages + extra, 0);
    if (!pa)
        return 0;
    if (extra) {
        hpa_t aligned = ALIGN_UP(pa, align);
        uint64_t head = (aligned - pa) / PAGE_SIZE;
        if (head)
            uefi_call_wrapper(bs->FreePages, 2, pa, head);
        if (extra - head)
            uefi_call_wrapper(bs->FreePages, 2, aligned + pages * PAGE_SIZE, extra - head);
        pa = aligned;
    }
    return pa;
}

void efi_free_pages(hpa_t pa, uint64_t size)
{
    if (pa && size)
        uefi_call_wrapper(bs->FreePages, 2, pa, ALIGN_UP(size, PAGE_SIZE) / PAGE_SIZE);
}

EFI_FILE_HANDLE efi_open_boot_volume(EFI_HANDLE image)
{
    EFI_GUID loaded_image_guid = EFI_LOADED_IMAGE_PROTOCOL_GUID;
    EFI_GUID fs_guid = EFI_SIMPLE_FILE_SYSTEM_PROTOCOL_GUID;
    EFI_LOADED_IMAGE *li = NULL;
    EFI_FILE_IO_INTERFACE *fs = NULL;
    EFI_FILE_HANDLE root = NULL;
    EFI_STATUS st;

    st = uefi_call_wrapper(bs->HandleProtocol, 3, image, &loaded_image_guid, (void **)&li);
    if (st != EFI_SUCCESS) {
        efi_printf("Keel: cannot find the loaded-image protocol (status 0x%lx).\n", (uint64_t)st);
        return NULL;
    }
    st = uefi_call_wrapper(bs->HandleProtocol, 3, li->DeviceHandle, &fs_guid, (void **)&fs);
    if (st != EFI_SUCCESS) {
        efi_printf("Keel: the boot device has no file system the firmware can read "
                   "(status 0x%lx).\n", (uint64_t)st);
        return NULL;
    }
    st = uefi_call_wrapper(fs->OpenVolume, 2, fs, &root);
    if (st != EFI_SUCCESS) {
        efi_printf("Keel: cannot open the boot volume (status 0x%lx).\n", (uint64_t)st);
        return NULL;
    }
    return root;
}

/* UEFI wants "\dir\file" in UCS-2. False if the name does not fit or has characters
 * outside printable ASCII. */
static bool to_uefi_path(const char *name, CHAR16 *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = name; *p; p++) {
        char c = *p == '/' ? '\\' : *p;
        if ((unsigned char)c < 0x20 || (unsigned char)c > 0x7e || n + 1 >= cap)
            return false;
        out[n++] = (CHAR16)c;
    }
    out[n] = 0;
    return n > 0;
}

static EFI_STATUS file_size(EFI_FILE_HANDLE f, uint64_t *size)
{
    EFI_GUID info_guid = EFI_FILE_INFO_ID;
    /* EFI_FILE_INFO ends in the file name; room for a long one. */
    union {
        EFI_FILE_INFO info;
        uint8_t bytes[sizeof(EFI_FILE_INFO) + 512];
    } buf;
    UINTN len = sizeof(buf);

    EFI_STATUS st = uefi_call_wrapper(f->GetInfo, 4, f, &info_guid, &len, &buf);
    if (st == EFI_SUCCESS) {
        if (buf.info.Attribute & EFI_FILE_DIRECTORY)
            return EFI_NOT_FOUND;
        *size = buf.info.FileSize;
    }
    return st;
}

EFI_STATUS efi_read_file(EFI_FILE_HANDLE root, const char *name, hpa_t *data, uint64_t *size)
{
    CHAR16 path[256];
    EFI_FILE_HANDLE f = NULL;
    EFI_STATUS st;

    *data = 0;
    *size = 0;
    if (!to_uefi_path(name, path, ARRAY_SIZE(path)))
        return EFI_INVALID_PARAMETER;
    st = uefi_call_wrapper(root->Open, 5, root, &f, path, EFI_FILE_MODE_READ, 0);
    if (st != EFI_SUCCESS)
        return st;

    uint64_t len = 0;
    st = file_size(f, &len);
    if (st == EFI_SUCCESS && len > MAX_FILE_SIZE)
        st = EFI_BAD_BUFFER_SIZE;
    if (st == EFI_SUCCESS && len > 0) {
        hpa_t pa = efi_alloc_pages(len, PAGE_SIZE, 1ull << 32, true);
        UINTN got = len;
        if (!pa) {
            st = EFI_OUT_OF_RESOURCES;
        } else {
            st = uefi_call_wrapper(f->Read, 3, f, &got, (void *)(uintptr_t)pa);
            if (st == EFI_SUCCESS && got != len)
                st = EFI_END_OF_FILE;
            if (st != EFI_SUCCESS)
                efi_free_pages(pa, len);
            else
                *data = pa;
        }
    }
    if (st == EFI_SUCCESS)
        *size = len;
    uefi_call_wrapper(f->Close, 1, f);
    return st;
}
