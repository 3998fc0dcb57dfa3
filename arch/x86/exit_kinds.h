/* Exit kinds every vCPU backend shares: what the guest made Keel do, whatever the CPU
 * calls it. A VM's report groups its exits by these, so VMX and (later) SVM runs read
 * alike; the backend's raw reasons stay beside them for detail.
 *
 * X(NAME, "report name") */
#ifndef KEEL_ARCH_X86_EXIT_KINDS_H
#define KEEL_ARCH_X86_EXIT_KINDS_H

#include "vmm/lib/types.h"

#define EXIT_KINDS(X)                                                                             \
    X(OTHER, "other")                                                                            \
    X(CPUID, "cpuid")                                                                            \
    X(IO, "io")                                                                                  \
    X(MSR_READ, "msr-read")                                                                      \
    X(MSR_WRITE, "msr-write")                                                                    \
    X(HYPERCALL, "hypercall")                                                                    \
    X(HLT, "hlt")                                                                                \
    X(CR_ACCESS, "cr")                                                                           \
    X(XSETBV, "xsetbv")                                                                          \
    X(PRIVILEGED, "privileged") /* VMX instructions, MONITOR/MWAIT, INVD/WBINVD, RDPMC */        \
    X(MEMORY, "memory")         /* EPT violations and misconfigurations: MMIO or a fault */      \
    X(INTERRUPT, "interrupt")   /* host interrupts and NMIs arriving in guest mode */            \
    X(TIMER, "slice-end")       /* the scheduler's preemption timer */                           \
    X(PAUSE, "pause")           /* PAUSE-loop exiting: a spinning vCPU gives its CPU away */     \
    X(FAULT, "guest-fault")     /* triple faults, exceptions Keel did not ask for */             \
    X(ENTRY_FAILURE, "entry-failure")

enum exit_kind {
#define EXIT_KIND_ENUM(name, text) EXIT_KIND_##name,
    EXIT_KINDS(EXIT_KIND_ENUM)
#undef EXIT_KIND_ENUM
    EXIT_KIND_COUNT
};

/* "cpuid", "io", ...; "other" for a number past the list. */
const char *exit_kind_name(enum exit_kind kind);

#endif
