/* What the guest-image loaders share: little-endian reads of image bytes and writes of
 * boot data, their error report, and the descriptor and control-register bits of the
 * CPU state they hand a guest. */
#ifndef KEEL_VMM_LOADERS_LOADER_COMMON_H
#define KEEL_VMM_LOADERS_LOADER_COMMON_H

#include "vmm/loaders/guest_image.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

/* GDT descriptors: base 0, limit 4 GiB, present, DPL 0, accessed already set so the
 * CPU never needs to write the table. */
#define GDT_CODE32 0x00cf9b000000ffffull
#define GDT_CODE64 0x00af9b000000ffffull /* L = 1, D = 0 */
#define GDT_DATA 0x00cf93000000ffffull

#define CR0_PE BIT(0)
#define CR0_ET BIT(4)
#define CR0_PG BIT(31)
#define CR4_PAE BIT(5)
#define EFER_LME BIT(8)
#define EFER_LMA BIT(10)
#define PTE_PRESENT BIT(0)
#define PTE_WRITE BIT(1)
#define PTE_LARGE BIT(7)

static inline uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t le32(const uint8_t *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }
static inline uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }
static inline void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Writes the reason into err and returns code, so a check reads `return fail(...)`. */
static inline int PRINTF_LIKE(3, 4) fail(char *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kvsnprintf(err, GUEST_ERR_LEN, fmt, ap);
    va_end(ap);
    return code;
}

#endif
