/* Creating VMs from the configuration, and stopping them with a report. A VM that
 * cannot be created is reported and skipped; the others still start. */
#include "vmm/vm.h"
#include "vmm/stats.h"
#include "vmm/vcpu.h"
#include "vmm/sched.h"
#include "vmm/loaders/guest_image.h"
#include "vmm/loaders/linux_boot.h"
#include "vmm/lib/console.h"
#include "vmm/lib/page_alloc.h"
#include "vmm/lib/string.h"
#include "vmm/dev/platform.h"
#include "arch/x86/tsc.h"
#include "arch/x86/paging.h"
#include "arch/x86/cpu_init.h"
#include "arch/x86/percpu.h"
#include "arch/x86/cpu.h"

struct vm *vms[MAX_VMS];
uint32_t vm_count;
static volatile uint32_t running;

uint32_t vms_running(void)
{
    return __atomic_load_n(&running, __ATOMIC_ACQUIRE);
}

static const struct boot_module *find_module(const struct bootinfo *bi, const char *name)
{
    for (uint32_t i = 0; i < bi->module_count; i++) {
        const char *m = bi->modules[i].name;
        const char *slash = m;
        for (const char *c = m; *c; c++)
            if (*c == '/')
                slash = c + 1;
        if (!strcmp(m, name) || !strcmp(slash, name))
            return &bi->modules[i];
    }
    return NULL;
}

/* The CPUs a VM's vCPUs may run on: its cpus list, its one cpu, or every CPU. */
static cpumask_t config_cpus(const struct vm_config *c)
{
    cpumask_t m = {0};
    bool listed = false;
    for (uint32_t w = 0; w < CONFIG_CPU_WORDS; w++)
        listed |= c->cpus[w] != 0;
    for (uint32_t cpu = 0; cpu < MAX_CPUS && cpu <= CONFIG_CPU_MAX; cpu++)
        if (listed ? (c->cpus[cpu / 64] >> (cpu % 64)) & 1
                   : c->cpu == CONFIG_CPU_ANY || (uint32_t)c->cpu == cpu)
            cpumask_set(&m, cpu);
    return m;
}

static void release_vm(struct vm *vm)
{
    vm_bus_destroy(&vm->bus);
    if (vm->disk_copy)
        pfree(vm->disk_copy, ALIGN_UP(vm->disk_size, PAGE_SIZE));
    vm_console_release(&vm->console);
    vm_console_release(&vm->pc.vcon.out);
    if (vcpu_backend)
        vcpu_backend->vm_destroy(&vm->arch);
    if (vm->ram_hpa)
        pfree(vm->ram_hpa, vm->mem.size);
    if (vm->high_hpa)
        pfree(vm->high_hpa, vm->mem.high_size);
    for (uint32_t i = 0; i < vm->vcpu_count; i++) {
        vcpu_release(vm->vcpus[i]);
        if (vm->vcpus[i]->arch.split)
            pfree(hva_to_hpa(vm->vcpus[i]->arch.split), ALIGN_UP(sizeof(struct vcpu_exit_split), PAGE_SIZE));
        pfree((hpa_t)(uintptr_t)vm->vcpus[i], ALIGN_UP(sizeof(struct vcpu), PAGE_SIZE));
    }
    pfree((hpa_t)(uintptr_t)vm, ALIGN_UP(sizeof(struct vm), PAGE_SIZE));
}

/* One block of a VM's RAM. Large alignment lets the EPT use 2 MiB / 1 GiB pages for all
 * of it; failing that, 2 MiB. */
static hpa_t alloc_ram(uint64_t size)
{
    uint64_t align = size >= HUGE_PAGE_SIZE ? HUGE_PAGE_SIZE : size >= LARGE_PAGE_SIZE ? LARGE_PAGE_SIZE : PAGE_SIZE;
    hpa_t pa = palloc(size, align, PALLOC_NO_LIMIT);
    if (!pa && align > LARGE_PAGE_SIZE)
        pa = palloc(size, LARGE_PAGE_SIZE, PALLOC_NO_LIMIT);
    return pa;
}

static struct guest_ram guest_ram_of(const struct vm *vm)
{
    return (struct guest_ram){.hva = vm->mem.hva, .size = vm->mem.size, .high_size = vm->mem.high_size};
}

/* The image into zeroed RAM, and vCPU 0's state from the loader's result: at creation
 * and at each restart (the same bytes give the same result). */
static int load_image(struct vm *vm, struct guest_boot *boot, char err[GUEST_ERR_LEN])
{
    const struct vm_config *c = vm->cfg;
    memset(vm->mem.hva, 0, vm->mem.size);
    if (vm->mem.high_size)
        memset(vm->mem.high_hva, 0, vm->mem.high_size);
    struct guest_ram ram = guest_ram_of(vm);
    int rc = c->entry == VM_ENTRY_LINUX
                 ? guest_load_linux(&ram, vm->image, vm->image_size, vm->initrd, vm->initrd_size, c->cmdline, boot, err)
                 : guest_load((enum guest_image_kind)c->entry, &ram, vm->image, vm->image_size, c->cmdline, boot, err);
    if (rc)
        return rc;
    vm->boot = (struct vcpu_boot){
        .mode = boot->mode, .rip = boot->rip, .rsp = boot->rsp, .rax = boot->rax, .rbx = boot->rbx, .rsi = boot->rsi,
        .rdi = boot->rdi,
        /* the boot drive in DL, as a BIOS leaves it */
        .rdx = boot->mode == GUEST_MODE_REAL16 ? 0x80 : 0,
        .cs = boot->cs, .ds = boot->ds, .cr0 = boot->cr0, .cr3 = boot->cr3, .cr4 = boot->cr4, .efer = boot->efer,
        .gdt_base = boot->gdt_base, .gdt_limit = boot->gdt_limit,
        .paging_off_later = c->entry == VM_ENTRY_LINUX,
    };
    return 0;
}

/* The VM's virtio-blk image, found like its boot image. A writable disk gets a private
 * copy, so its writes reach neither the module (which another VM may name) nor
 * anything that outlives the VM. */
static bool attach_disk(struct vm *vm, const struct vm_config *c, const struct bootinfo *bi)
{
    const struct boot_module *mod = find_module(bi, c->disk);
    if (!mod) {
        kprintf("VM %s: not started: disk '%s' was not loaded (no such module/file)\n", c->name, c->disk);
        return false;
    }
    vm->disk_size = mod->size;
    if (c->disk_readonly) {
        vm->disk = hpa_to_hva(mod->base);
        return true;
    }
    vm->disk_copy = mod->size ? palloc(ALIGN_UP(mod->size, PAGE_SIZE), PAGE_SIZE, PALLOC_NO_LIMIT) : 0;
    if (!vm->disk_copy) {
        kprintf("VM %s: not started: no memory for a writable copy of disk '%s' (%lu bytes)\n", c->name, c->disk,
                mod->size);
        return false;
    }
    vm->disk = hpa_to_hva(vm->disk_copy);
    memcpy(vm->disk, hpa_to_hva(mod->base), mod->size);
    return true;
}

/* A Linux kernel learns where the ACPI tables are from its zero page: filled in once the
 * platform has built them (after the image is loaded, at creation and at each restart). */
static void tell_linux_rsdp(struct vm *vm, const struct guest_boot *boot)
{
    if (vm->cfg->entry == VM_ENTRY_LINUX && vm->pc.rsdp)
        linux_boot_set_rsdp(&(struct guest_ram){.hva = vm->mem.hva, .size = vm->mem.size}, boot, vm->pc.rsdp);
}

static struct vm *create_one(const struct vm_config *c, const struct bootinfo *bi, uint32_t id)
{
    cpumask_t cpus = config_cpus(c);
    if (!sched_usable_cpus(c->name, &cpus))
        return NULL;
    /* Linux's decompressor turns paging off to switch paging modes, even when entered
     * in 64-bit mode. */
    if ((c->entry == VM_ENTRY_REAL || c->entry == VM_ENTRY_MULTIBOOT || c->entry == VM_ENTRY_LINUX) &&
        !vcpu_backend->paging_off_guests()) {
        kprintf("VM %s: not started: entry '%s' needs the CPU's unrestricted-guest feature, which it lacks\n",
                c->name, config_entry_name(c->entry));
        return NULL;
    }
    const struct boot_module *mod = find_module(bi, c->image);
    if (!mod) {
        kprintf("VM %s: not started: image '%s' was not loaded (no such module/file)\n", c->name, c->image);
        return NULL;
    }
    const struct boot_module *initrd = NULL;
    if (c->initrd[0] && !(initrd = find_module(bi, c->initrd))) {
        kprintf("VM %s: not started: initrd '%s' was not loaded (no such module/file)\n", c->name, c->initrd);
        return NULL;
    }

    hpa_t vm_pa = palloc(ALIGN_UP(sizeof(struct vm), PAGE_SIZE), PAGE_SIZE, PALLOC_NO_LIMIT);
    if (!vm_pa) {
        kprintf("VM %s: not started: out of memory for its bookkeeping\n", c->name);
        return NULL;
    }
    struct vm *vm = hpa_to_hva(vm_pa);
    memset(vm, 0, sizeof(*vm));
    vm->id = id;
    vm->cfg = c;
    vm->entry_kind = c->entry;
    kstrlcpy(vm->name, c->name, sizeof(vm->name));
    if (!vm_platform_attach(vm)) {
        kprintf("VM %s: not started: its devices could not be registered\n", c->name);
        release_vm(vm);
        return NULL;
    }

    uint64_t low = guest_ram_low(c->memory, c->memory_below_4g), high = guest_ram_high(c->memory, c->memory_below_4g);
    vm->ram_hpa = alloc_ram(low);
    vm->high_hpa = high ? alloc_ram(high) : 0;
    if (!vm->ram_hpa || (high && !vm->high_hpa)) {
        if (high)
            kprintf("VM %s: not started: needs %lu MiB of RAM in two blocks (%lu MiB below 4 GiB, %lu MiB above), "
                    "only %lu MiB free\n", c->name, c->memory >> 20, low >> 20, high >> 20,
                    (palloc_free_bytes() + (vm->ram_hpa ? low : 0) + (vm->high_hpa ? high : 0)) >> 20);
        else
            kprintf("VM %s: not started: needs %lu MiB of RAM, only %lu MiB free\n", c->name, c->memory >> 20,
                    palloc_free_bytes() >> 20);
        vm->mem = (struct dev_ram){.size = vm->ram_hpa ? low : 0, .high_size = vm->high_hpa ? high : 0};
        release_vm(vm);
        return NULL;
    }
    vm->ram_size = c->memory;
    vm->mem = (struct dev_ram){.hva = hpa_to_hva(vm->ram_hpa), .size = low,
                               .high_hva = high ? hpa_to_hva(vm->high_hpa) : NULL, .high_size = high};
    vm->image = hpa_to_hva(mod->base);
    vm->image_size = mod->size;
    if (initrd) {
        vm->initrd = hpa_to_hva(initrd->base);
        vm->initrd_size = initrd->size;
    }

    struct guest_boot boot;
    char err[GUEST_ERR_LEN];
    if (load_image(vm, &boot, err)) {
        kprintf("VM %s: not started: image '%s': %s\n", c->name, c->image, err);
        release_vm(vm);
        return NULL;
    }
    if (boot.note[0])
        kprintf("VM %s: note: %s\n", c->name, boot.note);
    if (c->disk[0] && !attach_disk(vm, c, bi)) {
        release_vm(vm);
        return NULL;
    }

    const struct vm_ram_range ram[] = {{0, vm->ram_hpa, low}, {GUEST_RAM_HIGH_BASE, vm->high_hpa, high}};
    if (!vcpu_backend->vm_create(&vm->arch, vm->name, ram, high ? 2 : 1)) {
        release_vm(vm);
        return NULL;
    }

    const struct vcpu_boot *start = &vm->boot;
    uint32_t nvcpus = c->vcpus ? c->vcpus : 1;
    for (uint32_t i = 0; i < nvcpus; i++) {
        hpa_t vcpu_pa = palloc(ALIGN_UP(sizeof(struct vcpu), PAGE_SIZE), PAGE_SIZE, PALLOC_NO_LIMIT);
        if (!vcpu_pa) {
            kprintf("VM %s: not started: out of memory for its vCPUs\n", c->name);
            release_vm(vm);
            return NULL;
        }
        struct vcpu *v = hpa_to_hva(vcpu_pa);
        memset(v, 0, sizeof(*v));
        v->sched.affinity = cpus;
        v->sched.weight = c->weight ? c->weight : SCHED_WEIGHT_DEFAULT;
        v->sched.cpu = -1;
        v->id = i;
        v->vm = vm;
        /* The boot vCPU starts as the entry kind says; the others wait for INIT-SIPI-SIPI,
         * as a PC's application processors do. */
        v->activity = i == 0 ? VCPU_ACTIVE : VCPU_WAIT_SIPI;
        vm->vcpus[vm->vcpu_count++] = v;
        if (c->exit_split) {
            hpa_t split = palloc(ALIGN_UP(sizeof(struct vcpu_exit_split), PAGE_SIZE), PAGE_SIZE, PALLOC_NO_LIMIT);
            if (!split) {
                kprintf("VM %s: not started: out of memory for exit_split's figures\n", c->name);
                release_vm(vm);
                return NULL;
            }
            v->arch.split = hpa_to_hva(split);
            vcpu_exit_split_clear(v->arch.split);
        }
        if (!vcpu_create(v, start)) {
            release_vm(vm);
            return NULL;
        }
    }
    if (!vm_platform_start(vm)) {
        kprintf("VM %s: not started: its virtual platform could not be set up\n", c->name);
        release_vm(vm);
        return NULL;
    }
    tell_linux_rsdp(vm, &boot);
    vm->state = VM_RUNNING;
    /* Each vCPU goes to the least loaded of its CPUs; from there it may move. */
    int32_t cpu = -1;
    for (uint32_t i = 0; i < vm->vcpu_count; i++) {
        int32_t where = sched_add_vcpu(vm->vcpus[i]);
        if (i == 0)
            cpu = where;
    }
    struct vcpu *v = vm->vcpus[0];
    char backend_state[96];
    vcpu_backend->describe(&vm->arch, v, backend_state, sizeof(backend_state));
    char at[64];
    if (vm->high_hpa)
        ksnprintf(at, sizeof(at), "0x%lx (%lu MiB at 4 GiB: 0x%lx)", vm->ram_hpa, vm->mem.high_size >> 20,
                  vm->high_hpa);
    else
        ksnprintf(at, sizeof(at), "0x%lx", vm->ram_hpa);
    kprintf("VM %s: %lu MiB at %s, %s image '%s' (%lu bytes), entry 0x%lx, %s", vm->name, vm->ram_size >> 20, at,
            config_entry_name(c->entry), c->image, mod->size, boot.rip, backend_state);
    if (v->sched.weight != SCHED_WEIGHT_DEFAULT)
        kprintf(", weight %u", v->sched.weight);
    if (cpumask_count(&cpus) > 1) {
        char list[64];
        sched_format_cpus(&cpus, list, sizeof(list));
        kprintf(", CPUs %s", list);
    }
    kprintf(", on CPU %d", cpu);
    if (vm->vcpu_count > 1)
        kprintf(", %u vCPUs", vm->vcpu_count);
    if (initrd)
        kprintf(", initrd '%s' (%lu bytes) at 0x%lx", c->initrd, initrd->size, boot.initrd);
    kprintf("\n");
    return vm;
}

void vms_create(const struct keel_config *cfg, const struct bootinfo *bi)
{
    for (uint32_t i = 0; i < cfg->vm_count && vm_count < MAX_VMS; i++) {
        struct vm *vm = create_one(&cfg->vms[i], bi, vm_count);
        if (vm) {
            vms[vm_count++] = vm;
            __atomic_add_fetch(&running, 1, __ATOMIC_ACQ_REL);
        }
    }
    kprintf("VMM: %u of %u configured VMs started\n", vm_count, cfg->vm_count);
}

/* "VM name: <what>: a 3, b 5, ..." lines, wrapped before they outgrow a console line;
 * zero counts are left out. */
struct report_line {
    const struct vm *vm;
    const char *what;
    size_t used;
    char text[200];
};

static void report_end(struct report_line *l)
{
    if (l->used)
        kprintf("VM %s: %s: %s\n", l->vm->name, l->what, l->text);
    l->used = 0;
}

static void report_add(struct report_line *l, const char *name, uint64_t count)
{
    if (!count)
        return;
    int n = ksnprintf(l->text + l->used, sizeof(l->text) - l->used, "%s%s %lu", l->used ? ", " : "", name, count);
    if (n < 0 || l->used + (size_t)n >= sizeof(l->text) - 1) {
        report_end(l);
        n = ksnprintf(l->text, sizeof(l->text), "%s %lu", name, count);
    }
    l->used += (size_t)n;
}

void vm_sum_stats(const struct vm *vm, struct vcpu_stats *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (uint32_t i = 0; i < vm->vcpu_count; i++) {
        const struct vcpu_stats *s = &vm->vcpus[i]->arch.stats;
        for (uint32_t r = 0; r < VCPU_EXIT_REASON_SLOTS; r++)
            sum->exits[r] += s->exits[r];
        sum->guest_tsc += s->guest_tsc;
        sum->host_tsc += s->host_tsc;
        sum->entries_failed += s->entries_failed;
    }
}

void vm_print_report(const struct vm *vm)
{
    struct vcpu_stats sum;
    const struct vcpu_stats *s = &sum;
    vm_sum_stats(vm, &sum);
    uint64_t total = 0;
    for (uint32_t r = 0; r < VCPU_EXIT_REASON_SLOTS; r++)
        total += s->exits[r];
    if (vm->has_exit_code)
        kprintf("VM %s: exit code %u (0x%x)\n", vm->name, vm->exit_code, vm->exit_code);
    kprintf("VM %s: report: %lu exits, guest time %lu TSC ticks, time in Keel %lu TSC ticks (%lu per exit)\n", vm->name,
            total, s->guest_tsc, s->host_tsc, total ? s->host_tsc / total : 0);
    uint64_t by_kind[EXIT_KIND_COUNT] = {0};
    for (uint32_t r = 0; r < VCPU_EXIT_REASON_SLOTS; r++)
        by_kind[vcpu_backend->exit_reason_kind(r)] += s->exits[r];
    struct report_line kinds = {.vm = vm, .what = "exits by kind"};
    for (uint32_t k = 0; k < EXIT_KIND_COUNT; k++)
        report_add(&kinds, exit_kind_name(k), by_kind[k]);
    report_end(&kinds);
    struct report_line reasons = {.vm = vm, .what = "exits by reason"};
    for (uint32_t r = 0; r < VCPU_EXIT_REASON_SLOTS; r++)
        report_add(&reasons, vcpu_backend->exit_reason_name(r), s->exits[r]);
    report_end(&reasons);
    if (vm->resets)
        kprintf("VM %s: restarted %u time%s (last: %s); the counts above cover every run\n", vm->name, vm->resets,
                vm->resets == 1 ? "" : "s", vm->reset_reason);
    /* Where each vCPU's time went, as the scheduler saw it. */
    uint64_t now = rdtsc();
    for (uint32_t i = 0; i < vm->vcpu_count; i++) {
        struct sched_totals t = sched_vcpu_totals(&vm->vcpus[i]->sched, now);
        kprintf("VM %s: vCPU %u: running %lu, waiting %lu, blocked %lu TSC ticks, %u migrations, weight %u\n",
                vm->name, i, t.run_tsc, t.wait_tsc, t.blocked_tsc, t.migrations, vm->vcpus[i]->sched.weight);
    }
    if (vm->msrs_unlogged)
        kprintf("VM %s: %u more refused MSR accesses (not logged)\n", vm->name, vm->msrs_unlogged);
    if (vm->console.out.lost_bytes)
        kprintf("VM %s: console: %lu bytes in %lu lines lost (its console buffer was full)\n", vm->name,
                vm->console.out.lost_bytes, vm->console.out.lost_lines);
    if (vm->pc.vcon.out.out.lost_bytes)
        kprintf("VM %s: virtio console: %lu bytes in %lu lines lost (its console buffer was full)\n", vm->name,
                vm->pc.vcon.out.out.lost_bytes, vm->pc.vcon.out.out.lost_lines);
    if (vm->bus.ports_unlogged)
        kprintf("VM %s: %u more unclaimed ports were used (not logged)\n", vm->name, vm->bus.ports_unlogged);
}

/* The first stop of a VM wins, whichever CPU it comes from. */
static bool claim_stop(struct vm *vm)
{
    return !__atomic_exchange_n(&vm->stop_claimed, true, __ATOMIC_ACQ_REL);
}

static void stop_common(struct vm *vm)
{
    kprintf("VM %s: stopped: %s\n", vm->name, vm->stop_reason);
    __atomic_store_n(&vm->state, VM_STOPPED, __ATOMIC_RELEASE);
    /* A vCPU in guest mode on another CPU sees the stop at its next exit: make that
     * exit happen now. */
    uint32_t self = this_cpu()->cpu_id;
    for (uint32_t i = 0; i < vm->vcpu_count; i++) {
        int32_t cpu = __atomic_load_n(&vm->vcpus[i]->arch.loaded_cpu, __ATOMIC_ACQUIRE);
        if (cpu >= 0 && (uint32_t)cpu != self)
            sched_kick_cpu((uint32_t)cpu);
    }
    vm_console_flush(&vm->console);
    vm_print_report(vm);
    vm_stats_dump(vm, STATS_WHY_STOP);
    __atomic_sub_fetch(&running, 1, __ATOMIC_ACQ_REL);
    sched_vm_stopped(vm);
}

void vm_stop(struct vm *vm, const char *fmt, ...)
{
    if (!claim_stop(vm))
        return;
    va_list ap;
    va_start(ap, fmt);
    kvsnprintf(vm->stop_reason, sizeof(vm->stop_reason), fmt, ap);
    va_end(ap);
    stop_common(vm);
}

void vm_stop_with_code(struct vm *vm, uint32_t code, const char *why)
{
    if (!claim_stop(vm))
        return;
    vm->has_exit_code = true;
    vm->exit_code = code;
    ksnprintf(vm->stop_reason, sizeof(vm->stop_reason), "exited with code %u via the %s", code, why);
    stop_common(vm);
}

/* ---- Restart (on_reset = restart) ----
 * A reset reaches every vCPU of the VM, which may be running on other CPUs. Each one
 * resets its own CPU state where it is loaded (only there can the backend touch it)
 * and parks; RAM and the devices belong to no vCPU, so the last to park restarts them,
 * when no vCPU can be using them. vCPU 0 then starts as the entry kind says and the
 * others wait for their SIPI, as after power-on. */

static void tell_vcpu(struct vcpu *v)
{
    __atomic_store_n(&v->arch.recheck, 1, __ATOMIC_RELEASE);
    int32_t cpu = __atomic_load_n(&v->arch.loaded_cpu, __ATOMIC_ACQUIRE);
    if (cpu < 0)
        cpu = __atomic_load_n(&v->sched.cpu, __ATOMIC_ACQUIRE);
    if (cpu >= 0 && (uint32_t)cpu != this_cpu()->cpu_id)
        sched_kick_cpu((uint32_t)cpu);
}

enum exit_action vm_reset(struct vcpu *v, const char *why)
{
    struct vm *vm = v->vm;
    if (vm->cfg->on_reset == VM_ON_RESET_STOP) {
        vm_stop(vm, "reset by the guest (%s); on_reset = stop", why);
        return EXIT_STOPPED;
    }
    /* A second reset while the first is under way is the same reset. */
    if (__atomic_exchange_n(&vm->resetting, true, __ATOMIC_ACQ_REL))
        return vm_reset_park(v);
    uint64_t now = time_ns();
    if (!vm->resets_in_burst || now - vm->burst_start_ns >= VM_RESET_BURST_NS) {
        vm->burst_start_ns = now;
        vm->resets_in_burst = 0;
    }
    if (++vm->resets_in_burst > VM_RESET_BURST) {
        vm_stop(vm, "reset by the guest (%s) %u times within %llu s: a reset loop, so it stops", why,
                vm->resets_in_burst, VM_RESET_BURST_NS / 1000000000ull);
        return EXIT_STOPPED;
    }
    vm->resets++;
    kstrlcpy(vm->reset_reason, why, sizeof(vm->reset_reason));
    kprintf("VM %s: reset by the guest (%s); restarting from its image (restart %u)\n", vm->name, why, vm->resets);
    __atomic_add_fetch(&vm->reset_gen, 1, __ATOMIC_ACQ_REL);
    for (uint32_t i = 0; i < vm->vcpu_count; i++)
        if (vm->vcpus[i] != v)
            tell_vcpu(vm->vcpus[i]);
    return vm_reset_park(v);
}

/* RAM, image, devices: with every vCPU parked. */
static void restart(struct vm *vm)
{
    struct guest_boot boot;
    char err[GUEST_ERR_LEN];
    if (load_image(vm, &boot, err)) {
        vm_stop(vm, "restart failed: image '%s': %s", vm->cfg->image, err);
        return;
    }
    vm_console_flush(&vm->console);
    if (!vm_platform_restart(vm)) {
        vm_stop(vm, "restart failed: its virtual platform could not be set up again");
        return;
    }
    tell_linux_rsdp(vm, &boot);
    __atomic_store_n(&vm->reset_parked, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&vm->vcpus[0]->activity, VCPU_ACTIVE, __ATOMIC_RELAXED);
    __atomic_store_n(&vm->resetting, false, __ATOMIC_RELEASE);
    tell_vcpu(vm->vcpus[0]);
}

enum exit_action vm_reset_park(struct vcpu *v)
{
    struct vm *vm = v->vm;
    uint32_t gen = __atomic_load_n(&vm->reset_gen, __ATOMIC_ACQUIRE);
    v->arch.wake_tsc = UINT64_MAX;
    if (v->reset_gen == gen) {
        /* Parked already (an IPI from a vCPU not yet parked woke it): wait on. */
        return __atomic_load_n(&vm->resetting, __ATOMIC_ACQUIRE) ? EXIT_YIELD : EXIT_RESUME;
    }
    v->reset_gen = gen;
    vcpu_backend->reset_vcpu(v, v->id == 0 ? &vm->boot : NULL);
    v->activity = VCPU_WAIT_SIPI;
    v->halted = false;
    v->nmi_pending = false;
    v->mtrr_def_type = 0;
    v->extint_msg = false;
    if (__atomic_add_fetch(&vm->reset_parked, 1, __ATOMIC_ACQ_REL) == vm->vcpu_count)
        restart(vm);
    return EXIT_YIELD;
}
