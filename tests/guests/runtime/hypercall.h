/* VMCALL wrappers for Keel's hypercall ABI (vmm/hypercall_abi.h). Outside Keel,
 * VMCALL raises #UD: arm a recovery point first when that must be survivable. */
#ifndef GUEST_HYPERCALL_H
#define GUEST_HYPERCALL_H

#include <stdint.h>
#include "vmm/hypercall_abi.h"

static inline int32_t keel_hypercall(uint32_t fn, uint32_t a1, uint32_t a2, uint32_t a3)
{
    uint32_t ret;
    __asm__ volatile("vmcall" : "=a"(ret) : "a"(fn), "b"(a1), "c"(a2), "d"(a3) : "memory");
    return (int32_t)ret;
}

static inline int32_t keel_console_write(const void *buf, uint32_t len)
{
    return keel_hypercall(KEEL_HC_CONSOLE_WRITE, (uint32_t)(uintptr_t)buf, len, 0);
}

static inline int32_t keel_vm_info(struct keel_vm_info *out, uint32_t size)
{
    return keel_hypercall(KEEL_HC_VM_INFO, (uint32_t)(uintptr_t)out, size, 0);
}

#endif
