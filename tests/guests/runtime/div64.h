/* 64-by-32-bit division. A 32-bit freestanding build has no libgcc (__udivdi3), so
 * 64-bit quotients are computed with two DIV instructions: the high half first, then
 * its remainder joined with the low half (which cannot overflow, as remainder < d).
 * A 64-bit build (hello64) divides 64-bit numbers natively. */
#ifndef GUEST_DIV64_H
#define GUEST_DIV64_H

#include <stdint.h>

/* Divides *n by d in place and returns the remainder. d must not be 0. */
static inline uint32_t div64_32(uint64_t *n, uint32_t d)
{
#ifdef __x86_64__
    uint32_t rem = (uint32_t)(*n % d);
    *n /= d;
    return rem;
#else
    uint32_t hi = (uint32_t)(*n >> 32), lo = (uint32_t)*n;
    uint32_t qhi = hi / d, rem = hi % d, qlo;
    __asm__("divl %4" : "=a"(qlo), "=d"(rem) : "a"(lo), "d"(rem), "rm"(d));
    *n = ((uint64_t)qhi << 32) | qlo;
    return rem;
#endif
}

/* n / d, for d != 0. */
static inline uint64_t udiv64_32(uint64_t n, uint32_t d)
{
    div64_32(&n, d);
    return n;
}

#endif
