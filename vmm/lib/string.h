/* The few C string and memory routines Keel uses. Host tests use the C library's. */
#ifndef KEEL_VMM_STRING_H
#define KEEL_VMM_STRING_H

#include "vmm/lib/types.h"

#ifdef KEEL_HOST_TEST
#include <string.h>
#else
void *memset(void *d, int c, size_t n);
void *memcpy(void *restrict d, const void *restrict s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
#endif

/* Copies at most size-1 bytes and always terminates; returns strlen(src). */
size_t kstrlcpy(char *dst, const char *src, size_t size);

#endif
