/* ExitBootServices with retries on a stale map key (see exit_retry.h). */
#include "boot/uefi/exit_retry.h"

bool exit_boot_services_retry(const struct exit_bs_ops *ops, uint32_t max_attempts,
                              uint32_t force_stale, struct exit_bs_result *res)
{
    *res = (struct exit_bs_result){ .status = UEFI_STATUS_INVALID_PARAMETER,
                                    .failed = "ExitBootServices" };

    while (res->attempts < max_attempts) {
        uint64_t key = 0;
        uint64_t st = ops->get_map(ops->ctx, &key);
        if (st != UEFI_STATUS_SUCCESS) {
            /* BUFFER_TOO_SMALL here means the map outgrew the slack allocated for it;
             * allocating a bigger buffer would change the map again, so give up. */
            res->status = st;
            res->failed = "GetMemoryMap";
            return false;
        }
        if (!ops->convert(ops->ctx)) {
            res->status = UEFI_STATUS_LOAD_ERROR;
            res->failed = "the memory map conversion";
            return false;
        }
        if (res->attempts < force_stale && ops->make_stale)
            ops->make_stale(ops->ctx);

        res->attempts++;
        st = ops->exit_boot_services(ops->ctx, key);
        if (st == UEFI_STATUS_SUCCESS) {
            res->status = st;
            res->failed = NULL;
            return true;
        }
        res->status = st;
        if (st != UEFI_STATUS_INVALID_PARAMETER)
            return false;
        res->stale_keys++;
    }
    return false;
}
