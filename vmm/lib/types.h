/* Basic types shared by every part of Keel, host tests included.
 * Address kinds get their own names so a signature says which space it expects:
 * Keel identity-maps physical memory, so hva == hpa for RAM, but guest-physical
 * addresses (gpa_t) never are and must go through a VM's EPT. */
#ifndef KEEL_TYPES_H
#define KEEL_TYPES_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdarg.h>

typedef uint64_t hpa_t; /* host-physical address */
typedef uint64_t hva_t; /* host-virtual address */
typedef uint64_t gpa_t; /* guest-physical address */
typedef uint64_t gva_t; /* guest-virtual address */

#define PAGE_SIZE 4096ull
#define PAGE_SHIFT 12
#define LARGE_PAGE_SIZE (2ull << 20)
#define HUGE_PAGE_SIZE (1ull << 30)

#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((uint64_t)(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a) - 1))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define BIT(n) (1ull << (n))

#define PACKED __attribute__((packed))
#define ALIGNED(n) __attribute__((aligned(n)))
#define NORETURN __attribute__((noreturn))
#define UNUSED __attribute__((unused))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

#define STATIC_ASSERT(c, m) _Static_assert(c, m)

#endif
