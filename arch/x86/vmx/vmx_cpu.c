#include "arch/x86/vmx/vmx_cpu.h"
#include "arch/x86/cpu.h"
#include "arch/x86/msr.h"
#include "arch/x86/vmx/vmx_caps.h"
#include "arch/x86/vmx/vmx_insn.h"
#include "vmm/lib/console.h"
#include "vmm/lib/page_alloc.h"
#include "vmm/lib/string.h"

#define CR4_OSXMMEXCPT BIT(10)

bool vmx_cpu_on(struct percpu *p)
{
    const struct vmx_caps *c = vmx_boot_caps();
    if (p->vmx_active)
        return true;
    if (!c || p->vmx_state != VMX_STATE_ENABLED)
        return false;

    /* Guests' FPU/SSE state is swapped with FXSAVE/FXRSTOR, XCR0 with XSETBV: both
     * need the OS-support bits even though Keel never uses the registers itself. */
    uint64_t cr4 = read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT;
    if (cpuid(1, 0).ecx & BIT(26))
        cr4 |= CR4_OSXSAVE;
    cr4 = (cr4 | c->cr4_fixed0 | CR4_VMXE) & c->cr4_fixed1;
    uint64_t cr0 = (read_cr0() | c->cr0_fixed0) & c->cr0_fixed1;
    write_cr0(cr0);
    write_cr4(cr4);

    if (!p->vmxon_region) {
        p->vmxon_region = palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT);
        if (!p->vmxon_region) {
            kprintf("VMX: CPU %u: no memory for the VMXON region\n", p->cpu_id);
            return false;
        }
    }
    uint32_t *region = (uint32_t *)(uintptr_t)p->vmxon_region;
    memset(region, 0, PAGE_SIZE);
    region[0] = vmx_vmcs_revision(c);

    enum vmx_status st = vmx_vmxon_safe(p->vmxon_region);
    if (st != VMX_OK) {
        kprintf("VMX: CPU %u: VMXON failed (%s)\n", p->cpu_id, vmx_status_name(st));
        return false;
    }
    p->vmx_active = true;
    /* Whatever a previous owner of this CPU left tagged must not leak into guests. */
    vmx_flush_all_guest_tlbs();
    return true;
}

void vmx_cpu_off(struct percpu *p)
{
    if (!p->vmx_active)
        return;
    vmx_vmxoff_safe();
    p->vmx_active = false;
    write_cr4(read_cr4() & ~CR4_VMXE);
}

void vmx_flush_all_guest_tlbs(void)
{
    const struct vmx_caps *c = vmx_boot_caps();
    if (c->ept_vpid & EPT_CAP_INVEPT_ALL)
        vmx_invept_safe(INVEPT_ALL_CONTEXT, 0);
    if (c->ept_vpid & VPID_CAP_INVVPID_ALL)
        vmx_invvpid_safe(INVVPID_ALL_CONTEXT, 0, 0);
}
