/* AP start-up (see smp.h). The trampoline page is shared: the BSP fills its parameter
 * block for one AP, waits until that AP reports online from its own stack and GDT,
 * and only then reuses the page for the next. */
#include "arch/x86/smp.h"
#include "arch/x86/cpu.h"
#include "arch/x86/cpu_init.h"
#include "arch/x86/paging.h"
#include "arch/x86/percpu.h"
#include "arch/x86/lapic.h"
#include "arch/x86/tsc.h"
#include "vmm/lib/console.h"
#include "vmm/lib/page_alloc.h"
#include "vmm/lib/string.h"

/* Mirrors the parameter block in ap_trampoline.asm. */
#define AP_PARAMS_OFFSET 8
#define AP_PARAMS_MAGIC 0x3150414bu /* "KAP1" */

struct ap_params {
    uint32_t magic;
    uint32_t cr3;
    uint64_t entry64;
    uint64_t percpu;
    uint64_t stack_top;
    uint32_t started;
    uint32_t reserved;
};
STATIC_ASSERT(offsetof(struct ap_params, cr3) == 0x04, "ap_params.cr3");
STATIC_ASSERT(offsetof(struct ap_params, entry64) == 0x08, "ap_params.entry64");
STATIC_ASSERT(offsetof(struct ap_params, percpu) == 0x10, "ap_params.percpu");
STATIC_ASSERT(offsetof(struct ap_params, stack_top) == 0x18, "ap_params.stack_top");
STATIC_ASSERT(offsetof(struct ap_params, started) == 0x20, "ap_params.started");

#define LOW_MEMORY_LIMIT 0x100000ull
/* SIPI vectors 0xA0-0xBF are reserved (the legacy video window). */
#define SIPI_RESERVED_FIRST 0xa0
#define SIPI_RESERVED_LAST 0xbf

#define INIT_DELAY_US 10000
#define SIPI_DELAY_US 200

extern const uint8_t ap_trampoline_start[], ap_trampoline_end[];
extern void ap_entry64(void);

uint32_t cpu_count_online = 1;

/* APIC IDs of the APs that came up, for smp_park_aps. */
static uint32_t started_ids[MAX_CPUS];
static uint32_t nstarted;

static bool trampoline_page_ok(hpa_t page)
{
    uint64_t vector = page >> PAGE_SHIFT;
    return page && !(page & (PAGE_SIZE - 1)) && page + PAGE_SIZE <= LOW_MEMORY_LIMIT &&
           (vector < SIPI_RESERVED_FIRST || vector > SIPI_RESERVED_LAST);
}

/* Copies the trampoline to `page` and fills the parts of its parameter block every AP
 * shares. NULL, with a message, when it cannot be used. */
static struct ap_params *install_trampoline(hpa_t page)
{
    size_t size = (size_t)(ap_trampoline_end - ap_trampoline_start);
    const struct ap_params *tmpl = (const void *)(ap_trampoline_start + AP_PARAMS_OFFSET);
    if (size > PAGE_SIZE || size < AP_PARAMS_OFFSET + sizeof(*tmpl) || tmpl->magic != AP_PARAMS_MAGIC) {
        kprintf("SMP: the built-in AP trampoline does not match smp.c; only the boot CPU runs\n");
        return NULL;
    }
    hpa_t cr3 = paging_kernel_cr3();
    if (cr3 == 0 || cr3 >= (1ull << 32) || (cr3 & (PAGE_SIZE - 1))) {
        kprintf("SMP: kernel page tables at 0x%llx are out of 32-bit reach; only the boot CPU runs\n",
                (unsigned long long)cr3);
        return NULL;
    }

    memcpy(hpa_to_hva(page), ap_trampoline_start, size);
    struct ap_params *prm = hpa_to_hva(page + AP_PARAMS_OFFSET);
    prm->cr3 = (uint32_t)cr3;
    prm->entry64 = (uint64_t)(uintptr_t)ap_entry64;
    return prm;
}

static bool wait_online(const struct percpu *p, uint32_t timeout_ms)
{
    uint64_t start = rdtsc();
    uint64_t limit = ns_to_tsc((uint64_t)timeout_ms * 1000000);
    while (!__atomic_load_n(&p->online, __ATOMIC_ACQUIRE)) {
        if (rdtsc() - start >= limit)
            return false;
        cpu_relax();
    }
    return true;
}

/* INIT-SIPI-SIPI for one AP; SIPI-SIPI when every AP got an INIT together already
 * (in_wait_for_sipi), which saves the 10 ms INIT wait per CPU. On failure the AP is sent
 * back to INIT, so a late starter cannot run on the next AP's parameters. */
static bool start_one(struct percpu *p, struct ap_params *prm, uint8_t vector, uint32_t timeout_ms,
                      bool in_wait_for_sipi)
{
    volatile struct ap_params *vp = prm;
    uint32_t apic = p->apic_id;
    vp->percpu = (uint64_t)(uintptr_t)p;
    vp->stack_top = p->stack_top;
    vp->started = 0;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);

    if (!in_wait_for_sipi) {
        if (!lapic_send_init(apic)) {
            kprintf("SMP: INIT to CPU apic %u was not delivered\n", apic);
            return false;
        }
        udelay(INIT_DELAY_US);
    }
    bool sent = lapic_send_sipi(apic, vector);
    udelay(SIPI_DELAY_US);
    if (!vp->started)
        sent = lapic_send_sipi(apic, vector) || sent;
    if (!sent)
        kprintf("SMP: SIPI to CPU apic %u was not delivered\n", apic);

    if (wait_online(p, timeout_ms))
        return true;
    if (vp->started)
        kprintf("SMP: CPU apic %u ran the trampoline but did not report in within %u ms\n", apic,
                timeout_ms);
    lapic_send_init(apic);
    return false;
}

/* CPUs left out for one reason, for a single report line. */
struct skipped {
    uint32_t count;
    uint32_t first, last; /* APIC IDs */
};

static void skip(struct skipped *s, uint32_t apic_id)
{
    if (!s->count++)
        s->first = apic_id;
    s->last = apic_id;
}

static void report_skipped(const struct skipped *s, const char *why)
{
    if (s->count == 1)
        kprintf("SMP: CPU apic %u left out: %s; carrying on without it\n", s->first, why);
    else if (s->count)
        kprintf("SMP: %u CPUs left out (APIC ids %u..%u): %s; carrying on without them\n",
                s->count, s->first, s->last, why);
}

static bool apic_listed(const struct smp_cpu_list *cpus, uint32_t apic_id)
{
    for (uint32_t i = 0; i < cpus->count; i++)
        if (cpus->apic_ids[i] == apic_id)
            return true;
    return false;
}

static void start_all(const struct smp_cpu_list *cpus, uint32_t timeout_ms, hpa_t page, bool all_inited,
                      uint32_t *online)
{
    uint32_t bsp = lapic_id();
    if (!trampoline_page_ok(page)) {
        if (page)
            kprintf("SMP: loader's trampoline page 0x%llx is unusable, allocating another\n",
                    (unsigned long long)page);
        page = palloc(PAGE_SIZE, PAGE_SIZE, LOW_MEMORY_LIMIT);
        if (!trampoline_page_ok(page)) {
            kprintf("SMP: no free page below 1 MiB for the AP trampoline; only the boot CPU runs\n");
            return;
        }
    }
    struct ap_params *prm = install_trampoline(page);
    if (!prm)
        return;
    uint8_t vector = (uint8_t)(page >> PAGE_SHIFT);

    /* Big machines can skip hundreds of CPUs for one reason: one line per reason. */
    struct skipped unaddressable = {0}, over_limit = {0}, no_memory = {0};
    uint32_t next_id = 1;
    for (uint32_t i = 0; i < cpus->count; i++) {
        uint32_t apic_id = cpus->apic_ids[i];
        if (apic_id == bsp)
            continue;
        if (apic_id > lapic_max_apic_id()) {
            skip(&unaddressable, apic_id);
            continue;
        }
        if (next_id >= MAX_CPUS) {
            skip(&over_limit, apic_id);
            continue;
        }
        struct percpu *p = percpu_create(next_id, apic_id);
        if (!p) {
            skip(&no_memory, apic_id);
            continue;
        }
        if (start_one(p, prm, vector, timeout_ms, all_inited)) {
            started_ids[nstarted++] = apic_id;
            next_id++;
            (*online)++;
        } else {
            /* The block is abandoned rather than freed: nothing may reuse memory a
             * half-started CPU might still have written. Its id goes to the next CPU. */
            percpu_blocks[next_id] = NULL;
            kprintf("SMP: CPU apic %u did not come up, carrying on without it\n", apic_id);
        }
    }
    report_skipped(&unaddressable, "APIC id above 254 needs x2APIC mode, which is off");
    if (over_limit.count)
        kprintf("SMP: the machine has more CPUs than Keel's limit of %u (MAX_CPUS)\n", MAX_CPUS);
    report_skipped(&over_limit, "beyond Keel's CPU limit");
    report_skipped(&no_memory, "no memory below 4 GiB for the per-CPU block");
    if (cpus->dropped)
        kprintf("SMP: %u more enabled CPUs in the MADT were not even recorded (limit %u); "
                "carrying on without them\n", cpus->dropped, MAX_CPUS);
}

void smp_start_aps(const struct smp_cpu_list *cpus, uint32_t timeout_ms, hpa_t trampoline_page,
                   bool firmware_gone)
{
    uint32_t online = 1, total = 1;
    uint64_t t0 = rdtsc();
    if (!cpus->listed) {
        kprintf("SMP: no MADT; only the boot CPU runs\n");
    } else if (lapic_mode() == LAPIC_MODE_NONE) {
        kprintf("SMP: no local APIC; only the boot CPU runs\n");
        total = cpus->enabled ? cpus->enabled : 1;
    } else {
        total = cpus->enabled;
        if (!apic_listed(cpus, lapic_id())) {
            kprintf("SMP: the boot CPU (apic %u) is not among the MADT's enabled CPUs\n", lapic_id());
            total++;
        }
        bool all_inited = firmware_gone && cpus->enabled > 1 && lapic_send_init_others();
        if (all_inited)
            udelay(INIT_DELAY_US);
        start_all(cpus, timeout_ms, trampoline_page, all_inited, &online);
    }
    __atomic_store_n(&cpu_count_online, online, __ATOMIC_RELEASE);
    kprintf("SMP: %u of %u CPUs online (start-up took %lu ms)\n", online, total,
            tsc_to_ns(rdtsc() - t0) / 1000000);
}

void smp_park_aps(void)
{
    for (uint32_t i = 0; i < nstarted; i++)
        lapic_send_init(started_ids[i]);
    for (uint32_t i = 1; i < MAX_CPUS; i++)
        if (percpu_blocks[i])
            percpu_blocks[i]->online = 0;
    if (nstarted)
        kprintf("SMP: %u APs sent back to wait-for-SIPI\n", nstarted);
    nstarted = 0;
    __atomic_store_n(&cpu_count_online, 1, __ATOMIC_RELEASE);
}
