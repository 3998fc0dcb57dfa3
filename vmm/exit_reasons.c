/* Names of VM-exit reasons for log lines, from the one list in exit_reasons.h. */
#include "vmm/exit_reasons.h"

/* The list must be dense and in order, so a table indexed by the basic reason has no
 * holes: entry k must carry number k. */
enum {
#define EXIT_REASON_ONE(num, name, desc, handler, needs_qual) +1
    EXIT_REASON_LISTED = 0 VMX_EXIT_REASONS(EXIT_REASON_ONE)
#undef EXIT_REASON_ONE
};
_Static_assert(EXIT_REASON_LISTED == VMX_EXIT_REASON_COUNT, "exit reason list has holes or extra entries");

static const char *const names[] = {
#define EXIT_REASON_NAME(num, name, desc, handler, needs_qual) [num] = #name,
    VMX_EXIT_REASONS(EXIT_REASON_NAME)
#undef EXIT_REASON_NAME
};

static const char *const descriptions[] = {
#define EXIT_REASON_DESC(num, name, desc, handler, needs_qual) [num] = desc,
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

/* Reasons not listed are EXIT_KIND_OTHER (0). */
static const uint8_t kinds[VMX_EXIT_REASON_COUNT] = {
    [EXIT_REASON_EXCEPTION_NMI] = EXIT_KIND_FAULT,
    [EXIT_REASON_EXTERNAL_INTERRUPT] = EXIT_KIND_INTERRUPT,
    [EXIT_REASON_TRIPLE_FAULT] = EXIT_KIND_FAULT,
    [EXIT_REASON_CPUID] = EXIT_KIND_CPUID,
    [EXIT_REASON_HLT] = EXIT_KIND_HLT,
    [EXIT_REASON_INVD] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_RDPMC] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_VMCALL] = EXIT_KIND_HYPERCALL,
    [EXIT_REASON_VMCLEAR] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_VMLAUNCH] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_VMPTRLD] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_VMPTRST] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_VMREAD] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_VMRESUME] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_VMWRITE] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_VMXOFF] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_VMXON] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_CR_ACCESS] = EXIT_KIND_CR_ACCESS,
    [EXIT_REASON_IO_INSTRUCTION] = EXIT_KIND_IO,
    [EXIT_REASON_RDMSR] = EXIT_KIND_MSR_READ,
    [EXIT_REASON_WRMSR] = EXIT_KIND_MSR_WRITE,
    [EXIT_REASON_ENTRY_INVALID_GUEST_STATE] = EXIT_KIND_ENTRY_FAILURE,
    [EXIT_REASON_ENTRY_MSR_LOADING] = EXIT_KIND_ENTRY_FAILURE,
    [EXIT_REASON_MWAIT] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_MONITOR] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_ENTRY_MACHINE_CHECK] = EXIT_KIND_ENTRY_FAILURE,
    [EXIT_REASON_EPT_VIOLATION] = EXIT_KIND_MEMORY,
    [EXIT_REASON_EPT_MISCONFIG] = EXIT_KIND_MEMORY,
    [EXIT_REASON_INVEPT] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_PREEMPTION_TIMER] = EXIT_KIND_TIMER,
    [EXIT_REASON_INVVPID] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_WBINVD] = EXIT_KIND_PRIVILEGED,
    [EXIT_REASON_XSETBV] = EXIT_KIND_XSETBV,
    [EXIT_REASON_VMFUNC] = EXIT_KIND_PRIVILEGED,
};

enum exit_kind exit_reason_kind(uint32_t reason)
{
    int i = index_of(reason);
    return i < 0 ? EXIT_KIND_OTHER : (enum exit_kind)kinds[i];
}

static const char *const kind_names[] = {
#define EXIT_KIND_NAME(name, text) [EXIT_KIND_##name] = text,
    EXIT_KINDS(EXIT_KIND_NAME)
#undef EXIT_KIND_NAME
};

const char *exit_kind_name(enum exit_kind kind)
{
    return (unsigned)kind < EXIT_KIND_COUNT ? kind_names[kind] : kind_names[EXIT_KIND_OTHER];
}
