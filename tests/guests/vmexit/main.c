/* vmexit: a benchmark guest in the form of kvm-unit-tests' x86/vmexit.c. The test names
 * on the command line choose what runs (all of them without any), in the table's order;
 * each prints one line "<name> <ticks per iteration>" ("<name> (skipped)" where the
 * platform lacks what it needs, with a note why), and some a second figure indented
 * under it ("  ipi <name> <ticks>": the ICR write alone, "  eoi <name> <ticks>": the EOI
 * write, "  latency <name> <ticks>": a timer's deadline to its handler).
 *
 * Options: n=<first batch> (default 64), goal=<ticks> (default 2^30): as x86/vmexit.c,
 * each batch doubles the iterations until one spans at least `goal` TSC ticks, so with
 * goal=0 exactly n iterations run (what the Bochs benchmark uses: its ticks are exact).
 * A word that is neither an option nor a test name is refused with the list of names.
 *
 * Other lines start with "vmexit:"; the guest ends through the debug-exit port 0xF4
 * (exit code 0, 1 for a bad command line, 2 for an unexpected exception). Runs
 * unchanged under Keel, KVM and plain QEMU (tests/system/qemu-vmexit-native.sh). */
#include "vmexit.h"

const char guest_prefix[] = "vmexit:";

#define WARMUP 16
#define IRQ_SETTLE_TICKS 100000000ull /* for a late interrupt, before it counts as lost */
#define MAX_ITERATIONS (1u << 30)
#define PAGE 4096u
#define FRESH_ALIGN (2u << 20)
#define FOUR_GIB 0x100000000ull
#define CPUID1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID1_ECX_X2APIC (1u << 21)
#define CPUID1_ECX_HYPERVISOR (1u << 31)

struct vmexit_env env = { .ap_id = -1 };

__attribute__((noreturn)) void vmexit_start(uint32_t magic, uint32_t info_gpa);
__attribute__((noreturn)) void vmexit_fault(uint64_t vector, uint64_t error, uint64_t rip);

static const char *const extra_names[EXTRA_COUNT] = { "ipi", "eoi", "latency" };

void debug_exit(uint32_t code)
{
    uart_drain();
    outl(DEBUG_EXIT_PORT, code);
    printf("vmexit: debug-exit port 0x%x did not stop the VM (code %u); halting\n",
           DEBUG_EXIT_PORT, code);
    uart_drain();
    for (;;)
        __asm__ volatile("cli; hlt");
}

void vmexit_fault(uint64_t vector, uint64_t error, uint64_t rip)
{
    printf("vmexit: unexpected exception %llu error=0x%llx rip=0x%llx\n",
           (unsigned long long)vector, (unsigned long long)error, (unsigned long long)rip);
    debug_exit(GUEST_EXIT_FAULT);
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* Calls fn for every word of the arguments that is not a key=value option. */
static bool for_each_name(bool (*fn)(const char *w, size_t len, void *arg), void *arg)
{
    const char *p = cmdline_args();
    bool ok = true;
    while (*p) {
        while (is_space(*p))
            p++;
        const char *w = p;
        bool option = false;
        while (*p && !is_space(*p))
            option |= *p++ == '=';
        if (p > w && !option)
            ok &= fn(w, (size_t)(p - w), arg);
    }
    return ok;
}

static const struct vmexit_test *find_test(const char *w, size_t len)
{
    for (uint32_t i = 0; i < vmexit_test_count; i++)
        if (strlen(vmexit_tests[i].name) == len && !strncmp(vmexit_tests[i].name, w, len))
            return &vmexit_tests[i];
    return NULL;
}

static bool check_name(const char *w, size_t len, void *arg)
{
    (void)arg;
    if (find_test(w, len))
        return true;
    printf("vmexit: unknown test '%.*s'\n", (int)len, w);
    return false;
}

struct wanted {
    const struct vmexit_test *test;
    bool found;
};

static bool match_name(const char *w, size_t len, void *arg)
{
    struct wanted *want = arg;
    want->found |= find_test(w, len) == want->test;
    return true;
}

static bool any_name(const char *w, size_t len, void *arg)
{
    (void)w;
    (void)len;
    *(bool *)arg = true;
    return true;
}

static void detect(void)
{
    struct cpuid_regs r = cpuid(1, 0);
    env.tsc_deadline = r.ecx & CPUID1_ECX_TSC_DEADLINE;
    env.x2apic = r.ecx & CPUID1_ECX_X2APIC;
    /* QEMU's TCG sets the hypervisor bit too, so VMCALL is only tried where leaf
     * 0x40000000 names a hypervisor that answers it. */
    if (r.ecx & CPUID1_ECX_HYPERVISOR) {
        struct cpuid_regs h = cpuid(0x40000000, 0);
        env.keel = h.ebx == 0x6c65654b && h.ecx == 0x6c65654b && h.edx == 0x6c65654b;
        bool kvm = h.ebx == 0x4b4d564b && h.ecx == 0x564b4d56 && h.edx == 0x4d;
        env.hypervisor = env.keel || kvm;
    }
}

static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* RAM above everything the loader and the image occupy, none of it touched yet. */
static void find_fresh_ram(void)
{
    extern const uint8_t __bss_end[];
    const struct mb_info *mb = mb_info();
    uint64_t used = (uint64_t)(uintptr_t)__bss_end;
    if (mb) {
        used = max64(used, (uint64_t)(uintptr_t)mb + sizeof(*mb));
        if (mb->flags & MB_INFO_CMDLINE)
            used = max64(used, mb->cmdline + strlen(mb_cmdline()) + 1);
        if (mb->flags & MB_INFO_MMAP)
            used = max64(used, (uint64_t)mb->mmap_addr + mb->mmap_length);
    }
    uint64_t end = mb_ram_end();
    env.fresh_start = (used + FRESH_ALIGN - 1) & ~(uint64_t)(FRESH_ALIGN - 1);
    env.fresh_end = (end > FOUR_GIB ? FOUR_GIB : end) & ~(uint64_t)(PAGE - 1);
}

static void run(const struct vmexit_test *t, uint32_t first, uint32_t goal)
{
    const char *why = t->unavailable ? t->unavailable() : NULL;
    if (why) {
        printf("%s (skipped)\n", t->name);
        printf("vmexit: note: %s: %s\n", t->name, why);
        return;
    }
    if (t->setup)
        t->setup();
    uint64_t iterations = first, ticks, calls = 0;
    uint32_t irqs = t->irqs ? *t->irqs : 0;
    if (t->one_batch) {
        uint64_t pages = (env.fresh_end - env.fresh_start) / PAGE;
        iterations = iterations < pages ? iterations : pages;
    } else {
        for (int i = 0; i < WARMUP; i++)
            t->body();
        calls = WARMUP;
    }
    uint32_t spurious = counts.spurious;
    for (;;) {
        memset(extra, 0, sizeof(extra));
        uint64_t eoi0 = counts.eoi_ticks;
        uint64_t t1 = rdtsc();
        for (uint64_t i = 0; i < iterations; i++)
            t->body();
        uint64_t t2 = rdtsc();
        ticks = t2 - t1;
        calls += iterations;
        extra[EXTRA_EOI] = counts.eoi_ticks - eoi0;
        if (t->one_batch || ticks >= goal || iterations >= MAX_ITERATIONS)
            break;
        iterations *= 2;
    }
    printf("%s %llu\n", t->name, (unsigned long long)(ticks / iterations));
    for (int e = 0; e < EXTRA_COUNT; e++)
        if (extra[e])
            printf("  %s %s %llu\n", extra_names[e], t->name,
                   (unsigned long long)(extra[e] / iterations));
    /* Each iteration's interrupt must have arrived, once (x86/vmexit.c checks the same). */
    if (t->irqs) {
        uint64_t t0 = rdtsc();
        while (*t->irqs - irqs < calls && rdtsc() - t0 < IRQ_SETTLE_TICKS)
            __asm__ volatile("pause");
        if (*t->irqs - irqs != calls)
            printf("vmexit: note: %s: %u interrupts for %llu iterations\n", t->name,
                   *t->irqs - irqs, (unsigned long long)calls);
    }
    if (counts.spurious != spurious)
        printf("vmexit: note: %s: %u spurious interrupts\n", t->name, counts.spurious - spurious);
}

int main(uint32_t magic, uint32_t info_gpa)
{
    (void)info_gpa;
    if (magic != MB_BOOT_MAGIC) {
        printf("vmexit: FAIL: EAX=0x%08x at entry, want 0x%08x\n", magic, MB_BOOT_MAGIC);
        return GUEST_EXIT_BAD_BOOT;
    }
    if (!for_each_name(check_name, NULL)) {
        printf("vmexit: tests:");
        for (uint32_t i = 0; i < vmexit_test_count; i++)
            printf(" %s", vmexit_tests[i].name);
        printf("\n");
        return GUEST_EXIT_FAIL;
    }
    uint32_t first = cmdline_u32("n", 64, 1, MAX_ITERATIONS);
    uint32_t goal = cmdline_u32("goal", 1u << 30, 0, 0xFFFFFFFFu);
    detect();
    lapic_init();
    lapic_enable();
    struct acpi_facts acpi;
    acpi_find(&acpi);
    env.pm_timer_port = acpi.pm_timer_port;
    env.ap_id = smp_start_ap(&acpi, lapic_id());
    find_fresh_ram();
    printf("vmexit: n=%u goal=%u hypervisor=%s tsc-deadline=%s x2apic=%s cpus=%u pm-timer=0x%x "
           "fresh-ram=%llu KiB\n", first, goal,
           env.keel ? "keel" : env.hypervisor ? "kvm" : "none", env.tsc_deadline ? "yes" : "no",
           env.x2apic ? "yes" : "no",
           acpi.ncpus, env.pm_timer_port,
           (unsigned long long)((env.fresh_end - env.fresh_start) >> 10));
    sti();
    bool selected = false;
    for_each_name(any_name, &selected);
    for (uint32_t i = 0; i < vmexit_test_count; i++) {
        struct wanted want = { &vmexit_tests[i], !selected };
        for_each_name(match_name, &want);
        if (want.found)
            run(&vmexit_tests[i], first, goal);
    }
    printf("vmexit: done\n");
    return GUEST_EXIT_OK;
}

void vmexit_start(uint32_t magic, uint32_t info_gpa)
{
    uart_init();
    mb_init(magic, info_gpa);
    intr_init();
    debug_exit((uint32_t)main(magic, info_gpa));
}
