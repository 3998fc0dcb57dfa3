/* Finding out, on each CPU, whether VT-x is there and switched on. VMXON itself comes
 * later; this only makes sure it can happen and tells the user when it cannot. */
#include "arch/x86/vmx/vmx_caps.h"
#include "arch/x86/cpu.h"
#include "arch/x86/msr.h"
#include "arch/x86/percpu.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

static struct vmx_caps boot_caps;
static bool boot_caps_valid;

const struct vmx_caps *vmx_boot_caps(void)
{
    return boot_caps_valid ? &boot_caps : NULL;
}

static void read_caps(struct vmx_caps *c)
{
    c->basic = rdmsr(MSR_IA32_VMX_BASIC);
    bool true_ctls = vmx_has_true_ctls(c);
    c->pinbased = rdmsr(true_ctls ? MSR_IA32_VMX_TRUE_PINBASED_CTLS : MSR_IA32_VMX_PINBASED_CTLS);
    c->procbased = rdmsr(true_ctls ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS);
    c->exit = rdmsr(true_ctls ? MSR_IA32_VMX_TRUE_EXIT_CTLS : MSR_IA32_VMX_EXIT_CTLS);
    c->entry = rdmsr(true_ctls ? MSR_IA32_VMX_TRUE_ENTRY_CTLS : MSR_IA32_VMX_ENTRY_CTLS);
    c->misc = rdmsr(MSR_IA32_VMX_MISC);
    c->cr0_fixed0 = rdmsr(MSR_IA32_VMX_CR0_FIXED0);
    c->cr0_fixed1 = rdmsr(MSR_IA32_VMX_CR0_FIXED1);
    c->cr4_fixed0 = rdmsr(MSR_IA32_VMX_CR4_FIXED0);
    c->cr4_fixed1 = rdmsr(MSR_IA32_VMX_CR4_FIXED1);
    /* Both MSRs exist only when the allowed-1 bits say so; reading them otherwise #GPs. */
    c->procbased2 = vmx_allowed1(c->procbased, VMX_PROC_SECONDARY) ? rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2) : 0;
    bool ept_or_vpid = (c->procbased2 >> 32) & (VMX_PROC2_EPT | VMX_PROC2_VPID);
    c->ept_vpid = ept_or_vpid ? rdmsr(MSR_IA32_VMX_EPT_VPID_CAP) : 0;
}

static enum cpu_vmx_state check_and_enable(void)
{
    if (!(cpuid(1, 0).ecx & BIT(5)))
        return VMX_STATE_NOT_SUPPORTED;
    uint64_t fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
    if (fc & FEATURE_CONTROL_LOCK)
        return (fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX) ? VMX_STATE_ENABLED : VMX_STATE_FW_DISABLED;
    /* Unlocked: turn VMX on and lock, so nothing later can switch it off under us. */
    wrmsr(MSR_IA32_FEATURE_CONTROL, fc | FEATURE_CONTROL_VMX_OUTSIDE_SMX | FEATURE_CONTROL_LOCK);
    return VMX_STATE_ENABLED;
}

void vmx_detect_this_cpu(struct percpu *p)
{
    enum cpu_vmx_state st = check_and_enable();
    p->vmx_state = st;
    switch (st) {
    case VMX_STATE_NOT_SUPPORTED:
        kprintf("CPU %u online (APIC id %u): VT-x not available: this CPU does not support Intel VT-x (VMX)\n",
                p->cpu_id, p->apic_id);
        return;
    case VMX_STATE_FW_DISABLED:
        kprintf("CPU %u online (APIC id %u): VT-x is disabled by the firmware (IA32_FEATURE_CONTROL locked "
                "with VMX off); enable Intel VT-x in the firmware setup\n",
                p->cpu_id, p->apic_id);
        return;
    default:
        break;
    }

    struct vmx_caps c;
    read_caps(&c);
    if (!boot_caps_valid) {
        boot_caps = c;
        boot_caps_valid = true;
    } else if (memcmp(&c, &boot_caps, sizeof(c))) {
        /* Mixed capabilities would make a vCPU's VMCS unportable between CPUs. */
        kprintf("CPU %u: VMX capabilities differ from CPU 0's; vCPUs will not migrate here safely\n", p->cpu_id);
    }
    kprintf("CPU %u online (APIC id %u): VMX enabled, VMCS revision 0x%x\n", p->cpu_id, p->apic_id,
            vmx_vmcs_revision(&c));
}

void vmx_report_summary(void)
{
    char line[200];
    if (!boot_caps_valid) {
        kprintf("VMX: unavailable on the boot CPU; guests cannot run\n");
        return;
    }
    kprintf("VMX: MSRs basic 0x%016lx pin 0x%016lx proc 0x%016lx proc2 0x%016lx\n", boot_caps.basic,
            boot_caps.pinbased, boot_caps.procbased, boot_caps.procbased2);
    kprintf("VMX: MSRs exit 0x%016lx entry 0x%016lx misc 0x%016lx ept_vpid 0x%016lx\n", boot_caps.exit,
            boot_caps.entry, boot_caps.misc, boot_caps.ept_vpid);
    kprintf("VMX: MSRs cr0 fixed 0x%lx/0x%lx cr4 fixed 0x%lx/0x%lx\n", boot_caps.cr0_fixed0, boot_caps.cr0_fixed1,
            boot_caps.cr4_fixed0, boot_caps.cr4_fixed1);
    vmx_caps_summary(&boot_caps, line, sizeof(line));
    kprintf("VMX: %s\n", line);
    vmx_caps_ept_summary(&boot_caps, line, sizeof(line));
    kprintf("VMX: %s\n", line);
    if (vmx_caps_missing(&boot_caps, line, sizeof(line)))
        kprintf("VMX: missing required features: %s\n", line);
    else
        kprintf("VMX: all required features present\n");
}
