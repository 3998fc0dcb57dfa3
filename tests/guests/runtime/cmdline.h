/* Options on the guest's command line: space-separated "key=value" tokens. Other
 * tokens (such as the image path that GRUB and QEMU put first) are ignored. */
#ifndef GUEST_CMDLINE_H
#define GUEST_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The value of `key` (up to the next space) and its length in *len, or NULL. */
const char *cmdline_opt(const char *key, size_t *len);

/* True when `key` is present with exactly `value`. */
bool cmdline_opt_is(const char *key, const char *value);

/* A decimal or 0x-hex number option; `def` when absent. A malformed or out-of-range
 * value is reported and `def` is used instead. */
uint32_t cmdline_u32(const char *key, uint32_t def, uint32_t min, uint32_t max);

/* The command line without a leading image path: the first token is skipped when it
 * contains '/' or ends in ".elf" (the GRUB/QEMU convention). */
const char *cmdline_args(void);

#endif
