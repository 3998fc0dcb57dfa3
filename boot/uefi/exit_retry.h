/* The loop that ends boot services. UEFI hands out a key with each memory map and
 * ExitBootServices accepts only the key of the current map; any allocation in between
 * (an event handler, a driver's timer) makes the key stale and the call fails with
 * EFI_INVALID_PARAMETER. Then the map must be fetched and converted again and the call
 * repeated, with nothing but memory services used in between (UEFI 2.10, 7.4).
 *
 * Pure code: the firmware calls come through function pointers, so host tests drive
 * the loop with a fake firmware, and the same loop runs in keel.efi. Status values are
 * UEFI's (EFI_STATUS), spelled out here so this header needs no efi.h. */
#ifndef KEEL_BOOT_UEFI_EXIT_RETRY_H
#define KEEL_BOOT_UEFI_EXIT_RETRY_H

#include "vmm/lib/types.h"

#define UEFI_STATUS_ERROR (1ull << 63)
#define UEFI_STATUS_SUCCESS 0ull
#define UEFI_STATUS_LOAD_ERROR (UEFI_STATUS_ERROR | 1)
#define UEFI_STATUS_INVALID_PARAMETER (UEFI_STATUS_ERROR | 2)
#define UEFI_STATUS_BUFFER_TOO_SMALL (UEFI_STATUS_ERROR | 5)

struct exit_bs_ops {
    void *ctx;
    /* GetMemoryMap into the buffer allocated beforehand; *key gets the map key. */
    uint64_t (*get_map)(void *ctx, uint64_t *key);
    /* Converts the map just fetched for the core. False if it cannot; must neither
     * allocate nor print. */
    bool (*convert)(void *ctx);
    /* Test knob (may be NULL when never asked for): changes the firmware's memory map,
     * so the key just fetched is stale. Memory services only. */
    void (*make_stale)(void *ctx);
    uint64_t (*exit_boot_services)(void *ctx, uint64_t key);
};

struct exit_bs_result {
    uint64_t status;     /* EFI_SUCCESS, or what ended the loop */
    uint32_t attempts;   /* ExitBootServices calls made */
    uint32_t stale_keys; /* calls the firmware rejected with a stale key */
    const char *failed;  /* on failure: the step that failed ("GetMemoryMap", ...) */
};

/* Calls ExitBootServices at most max_attempts times. The first `force_stale` attempts
 * call ops->make_stale between fetching the map and ExitBootServices. True when boot
 * services have ended; then no firmware service but the runtime ones may be used. */
bool exit_boot_services_retry(const struct exit_bs_ops *ops, uint32_t max_attempts,
                              uint32_t force_stale, struct exit_bs_result *res);

#endif
