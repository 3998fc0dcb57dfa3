/* Per-CPU state: the block behind GS, its GDT and TSS, and CPU control registers. */
#include "arch/x86/cpu_init.h"
#include "arch/x86/cpu.h"
#include "arch/x86/msr.h"
#include "arch/x86/trap.h"
#include "arch/x86/vmx/vmx_caps.h"
#include "arch/x86/lapic.h"
#include "vmm/lib/config.h"
#include "vmm/lib/console.h"
#include "vmm/lib/page_alloc.h"
#include "vmm/lib/string.h"

struct percpu *percpu_blocks[MAX_CPUS];
STATIC_ASSERT(CONFIG_CPU_MAX == MAX_CPUS - 1, "config.h must allow pinning to every CPU Keel runs");
int32_t cpu_fault_test = -1;

struct gdt_pointer {
    uint16_t limit;
    uint64_t base;
} PACKED;

#define GDT_CODE64 0x00af9a000000ffffull
#define GDT_DATA 0x00cf92000000ffffull
#define TSS_TYPE_AVAILABLE 0x89ull

bool percpu_ready(void)
{
    return rdmsr(MSR_GS_BASE) != 0;
}

void percpu_install(struct percpu *p, uint32_t cpu_id, uint32_t apic_id)
{
    p->self = p;
    p->cpu_id = cpu_id;
    p->apic_id = apic_id;
    wrmsr(MSR_GS_BASE, (uint64_t)(uintptr_t)p);
}

struct percpu *percpu_create(uint32_t cpu_id, uint32_t apic_id)
{
    if (cpu_id >= MAX_CPUS)
        return NULL;
    /* Below 4 GiB: the first kernel page tables only identity-map that much. */
    hpa_t block = palloc(sizeof(struct percpu), PAGE_SIZE, 1ull << 32);
    hpa_t stack = palloc(KERNEL_STACK_SIZE, PAGE_SIZE, 1ull << 32);
    if (!block || !stack) {
        if (block)
            pfree(block, sizeof(struct percpu));
        if (stack)
            pfree(stack, KERNEL_STACK_SIZE);
        return NULL;
    }
    struct percpu *p = (struct percpu *)(uintptr_t)block;
    memset(p, 0, sizeof(*p));
    p->cpu_id = cpu_id;
    p->apic_id = apic_id;
    p->stack_top = stack + KERNEL_STACK_SIZE;
    percpu_blocks[cpu_id] = p;
    return p;
}

static void load_gdt_and_tss(struct percpu *p)
{
    uint64_t tss = (uint64_t)(uintptr_t)&p->tss;
    uint64_t limit = sizeof(p->tss) - 1;
    for (int i = 0; i < IST_COUNT; i++)
        p->tss.ist[i] = (uint64_t)(uintptr_t)&p->ist_stacks[i][IST_STACK_SIZE];
    p->tss.iomap_base = sizeof(p->tss); /* no I/O bitmap */

    p->gdt[0] = 0;
    p->gdt[1] = GDT_CODE64;
    p->gdt[2] = GDT_DATA;
    p->gdt[3] = (limit & 0xffff) | ((tss & 0xffffff) << 16) | (TSS_TYPE_AVAILABLE << 40) |
                ((limit & 0xf0000) << 32) | ((tss >> 24) & 0xff) << 56;
    p->gdt[4] = tss >> 32;

    struct gdt_pointer gp = {.limit = GDT_ENTRIES * 8 - 1, .base = (uint64_t)(uintptr_t)p->gdt};
    __asm__ volatile("lgdt %0\n\t"
                     "pushq %1\n\t"
                     "leaq 1f(%%rip), %%rax\n\t"
                     "pushq %%rax\n\t"
                     "lretq\n"
                     "1:\n\t"
                     "movl %2, %%eax\n\t"
                     "movw %%ax, %%ds\n\t"
                     "movw %%ax, %%es\n\t"
                     "movw %%ax, %%ss\n\t"
                     "xorl %%eax, %%eax\n\t"
                     "movw %%ax, %%fs\n\t"
                     "movw %%ax, %%gs\n\t"
                     "ltr %w3"
                     :
                     : "m"(gp), "i"(GDT_KCODE), "i"(GDT_KDATA), "r"((uint16_t)GDT_TSS)
                     : "rax", "memory");
}

void cpu_init_this(struct percpu *p)
{
    /* GRUB may leave caching disabled (CR0.CD); firmware may leave NE clear, which
     * VMX requires anyway. */
    uint64_t cr0 = read_cr0();
    cr0 |= CR0_NE | CR0_ET | CR0_MP | CR0_WP;
    if (cr0 & (CR0_CD | CR0_NW)) {
        cr0 &= ~(CR0_CD | CR0_NW);
        write_cr0(cr0);
        wbinvd();
    } else {
        write_cr0(cr0);
    }
    load_gdt_and_tss(p); /* reloading GS zeroes GS base: install the block after */
    idt_load();
    percpu_install(p, p->cpu_id, p->apic_id);
}

bool cpu_can_run_guests(int32_t cpu)
{
    return cpu >= 0 && cpu < MAX_CPUS && percpu_blocks[cpu] && percpu_blocks[cpu]->online &&
           percpu_blocks[cpu]->vmx_state == VMX_STATE_ENABLED;
}

void cpu_fault_test_point(struct percpu *p)
{
    if ((int32_t)p->cpu_id != cpu_fault_test)
        return;
    kprintf("FAULT TEST: CPU %u executes UD2 as keel.cfg asks (fault_test_cpu)\n", p->cpu_id);
    __asm__ volatile("ud2");
}

/* What an AP does once online belongs to the layer above (the scheduler), which
 * registers it before starting the APs: the CPU layer calls up only through this. */
static ap_idle_fn ap_idle;

void cpu_set_ap_idle(ap_idle_fn idle)
{
    ap_idle = idle;
}

NORETURN void ap_main(struct percpu *p)
{
    cpu_init_this(p);
    lapic_init_ap();
    vmx_detect_this_cpu(p);
    p->online = 1;
    cpu_fault_test_point(p);
    if (ap_idle)
        ap_idle();
    cpu_halt_forever();
}
