/* The second CPU: the first AP of the MADT, started by INIT-SIPI-SIPI into entry.asm's
 * real-mode trampoline (copied to a free page below 640 KiB), then parked in an
 * interrupt-enabled HLT loop where VEC_IPI reaches it. */
#include "vmexit.h"

#define AP_SLOTS 1
#define AP_STACK_BYTES 8192
#define PAGE 4096u
#define LOW_MEMORY_END 0xA0000u
#define MB_INFO_BYTES 128u
#define INIT_DELAY_TICKS 10000000ull  /* the MP spec's 10 ms at up to 1 GHz; longer is fine */
#define SIPI_DELAY_TICKS 200000ull
#define ARRIVAL_TICKS 5000000000ull   /* bounded wait: about a second or two on hardware and TCG */

/* Used by entry.asm. */
uint64_t ap_stack_tops[AP_SLOTS];
volatile uint32_t ap_next_slot;
const uint32_t ap_slot_limit = AP_SLOTS;
void ap_main(uint32_t slot) __attribute__((noreturn));

extern const uint8_t tramp_start[], tramp_end[];
extern const uint8_t __bss_end[];

volatile uint32_t ap_ipis_done;
static uint8_t ap_stack[AP_SLOTS][AP_STACK_BYTES] __attribute__((aligned(16)));
static volatile uint32_t ap_arrived;
static volatile uint32_t ap_apic_id;

void ap_main(uint32_t slot)
{
    (void)slot;
    intr_load_idt();
    lapic_enable();
    ap_apic_id = lapic_id();
    __atomic_store_n(&ap_arrived, 1, __ATOMIC_RELEASE);
    /* STI's one-instruction shadow keeps an IPI from slipping in between STI and HLT. */
    for (;;)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
}

struct page_probe {
    uint32_t page;
    bool inside;
};

static void in_available(const struct mb_mmap_entry *e, void *arg)
{
    struct page_probe *p = arg;
    if (e->type == MB_MMAP_AVAILABLE && e->addr <= p->page && e->addr + e->len >= p->page + PAGE)
        p->inside = true;
}

static bool overlaps(uint32_t page, uint32_t start, uint32_t end)
{
    return page < end && start < page + PAGE;
}

/* A page below 640 KiB that the memory map calls RAM and that holds neither the boot
 * information nor the image; 0 when there is none. */
static uint32_t trampoline_page(void)
{
    const struct mb_info *mb = mb_info();
    if (!mb || !(mb->flags & MB_INFO_MMAP))
        return 0;
    uint32_t info = (uint32_t)(uintptr_t)mb;
    uint32_t cmd = mb->flags & MB_INFO_CMDLINE ? mb->cmdline : 0;
    uint32_t cmd_end = cmd ? cmd + (uint32_t)strlen(mb_cmdline()) + 1 : 0;
    for (uint32_t page = PAGE; page < LOW_MEMORY_END; page += PAGE) {
        if (overlaps(page, info, info + MB_INFO_BYTES) ||
            overlaps(page, mb->mmap_addr, mb->mmap_addr + mb->mmap_length) ||
            overlaps(page, cmd, cmd_end) ||
            overlaps(page, 0x100000, (uint32_t)(uintptr_t)__bss_end))
            continue;
        struct page_probe probe = { page, false };
        mb_mmap_walk(in_available, &probe);
        if (probe.inside)
            return page;
    }
    return 0;
}

int32_t smp_start_ap(const struct acpi_facts *acpi, uint32_t bsp_id)
{
    int32_t id = -1;
    for (uint32_t i = 0; i < acpi->ncpus && id < 0; i++)
        if (acpi->apic_ids[i] != bsp_id)
            id = acpi->apic_ids[i];
    if (id < 0)
        return -1; /* one CPU: the tests that need two say so */
    uint32_t page = trampoline_page();
    if (!page) {
        printf("vmexit: note: no free page below 640 KiB for the AP trampoline\n");
        return -1;
    }
    memcpy((void *)(uintptr_t)page, tramp_start, (size_t)(tramp_end - tramp_start));
    ap_stack_tops[0] = (uint64_t)(uintptr_t)ap_stack[1];
    bool sent = lapic_send((uint32_t)id, ICR_INIT | ICR_LEVEL | ICR_ASSERT);
    spin_ticks(INIT_DELAY_TICKS);
    sent = sent && lapic_send((uint32_t)id, ICR_INIT | ICR_LEVEL);
    /* Two SIPIs as the MP specification says; an AP that has left wait-for-SIPI ignores
     * the second. */
    for (int i = 0; i < 2 && sent; i++) {
        sent = lapic_send((uint32_t)id, ICR_STARTUP | (page >> 12));
        spin_ticks(SIPI_DELAY_TICKS);
    }
    uint64_t t0 = rdtsc();
    while (sent && !__atomic_load_n(&ap_arrived, __ATOMIC_ACQUIRE) && rdtsc() - t0 < ARRIVAL_TICKS)
        __asm__ volatile("pause");
    if (!sent || !ap_arrived) {
        printf("vmexit: note: APIC ID %d did not start (%s)\n", id,
               sent ? "no arrival after its SIPIs" : "the ICR stayed busy");
        return -1;
    }
    printf("vmexit: AP with APIC ID %u started (trampoline at 0x%x)\n", ap_apic_id, page);
    return (int32_t)ap_apic_id;
}
