/* Names and kinds of VM-exit reasons for reports, from the one list in vmx_exit_reasons.h. */
#include "arch/x86/vmx/vmx_exit_reasons.h"

/* The list must be dense and in order, so a table indexed by the basic reason has no
 * holes: entry k must carry number k. */
enum {
#define EXIT_REASON_ONE(num, name, desc, kind, handler, needs_qual) +1
    EXIT_REASON_LISTED = 0 VMX_EXIT_REASONS(EXIT_REASON_ONE)
#undef EXIT_REASON_ONE
};
_Static_assert(EXIT_REASON_LISTED == VMX_EXIT_REASON_COUNT, "exit reason list has holes or extra entries");

static const char *const names[] = {
#define EXIT_REASON_NAME(num, name, desc, kind, handler, needs_qual) [num] = #name,
    VMX_EXIT_REASONS(EXIT_REASON_NAME)
#undef EXIT_REASON_NAME
};

static const char *const descriptions[] = {
#define EXIT_REASON_DESC(num, name, desc, kind, handler, needs_qual) [num] = desc,
    VMX_EXIT_REASONS(EXIT_REASON_DESC)
#undef EXIT_REASON_DESC
};
_Static_assert(ARRAY_SIZE(names) == VMX_EXIT_REASON_COUNT, "exit reason numbers out of range");

/* Index into the tables, or -1 when the field holds undefined bits or an unlisted
 * basic reason. */
static int index_of(uint32_t reason)
{
    if (reason & ~(0xffffu | (uint32_t)EXIT_REASON_FLAGS))
        return -1;
    uint32_t basic = EXIT_REASON_BASIC(reason);
    if (basic > VMX_EXIT_REASON_MAX)
        return -1;
    return (int)basic;
}

const char *exit_reason_name(uint32_t reason)
{
    int i = index_of(reason);
    return i < 0 ? "UNKNOWN" : names[i];
}

const char *exit_reason_description(uint32_t reason)
{
    int i = index_of(reason);
    return i < 0 ? "Unknown exit reason" : descriptions[i];
}

static const uint8_t kinds[] = {
#define EXIT_REASON_KIND(num, name, desc, kind, handler, needs_qual) [num] = EXIT_KIND_##kind,
    VMX_EXIT_REASONS(EXIT_REASON_KIND)
#undef EXIT_REASON_KIND
};

enum exit_kind exit_reason_kind(uint32_t reason)
{
    int i = index_of(reason);
    return i < 0 ? EXIT_KIND_OTHER : (enum exit_kind)kinds[i];
}
