/* The fake CPU backend (tests/common/fake_backend.h). */
#include "tests/common/fake_backend.h"

#include <stdio.h>
#include <string.h>

struct fake_backend_state fake;

void fake_backend_reset(void)
{
    memset(&fake, 0, sizeof(fake));
    fake.cr4_allowed = 0x3707ffull;
    fake.xcr0_supported = 0x7;
    fake.paging_off_guests = true;
}

struct fake_vcpu *fake_vcpu(struct vcpu *v)
{
    for (unsigned i = 0; i < fake.nvcpus; i++)
        if (fake.vcpus[i].v == v)
            return &fake.vcpus[i];
    if (fake.nvcpus == FAKE_MAX_VCPUS)
        return NULL;
    struct fake_vcpu *f = &fake.vcpus[fake.nvcpus++];
    memset(f, 0, sizeof(*f));
    f->v = v;
    f->injected_vector = -1;
    f->sipi_vector = -1;
    return f;
}

static bool fake_init(const vcpu_exit_fn handlers[VCPU_EXIT_COUNT],
                      const struct vcpu_hypercalls *hypercalls)
{
    (void)hypercalls; /* the fake hands VMCALLs to the HYPERCALL handler, as backends may */
    fake.inits++;
    if (fake.init_fails)
        return false;
    fake.handlers = handlers;
    return true;
}

static bool fake_cpu_on(struct percpu *p)
{
    (void)p;
    fake.cpu_ons++;
    return !fake.cpu_on_fails;
}

static void fake_cpu_off(struct percpu *p)
{
    (void)p;
    fake.cpu_offs++;
}

static bool fake_vm_create(struct vm_arch *vm, const char *name, const struct vm_ram_range *ram, unsigned ranges)
{
    (void)name;
    fake.vm_creates++;
    fake.ram_ranges = ranges;
    for (unsigned i = 0; i < ranges && i < 2; i++)
        fake.ram[i] = ram[i];
    if (fake.vm_create_fails)
        return false;
    vm->vmx.eptp = 0x1234000; /* a mark that vm_destroy clears */
    return true;
}

static void fake_vm_destroy(struct vm_arch *vm)
{
    fake.vm_destroys++;
    vm->vmx.eptp = 0;
}

static void fake_describe(const struct vm_arch *vm, struct vcpu *v, char *buf, size_t size)
{
    (void)vm;
    snprintf(buf, size, "fake backend vCPU %u", fake_vcpu(v) ? (unsigned)(fake_vcpu(v) - fake.vcpus) : 0u);
}

static void boot_state(struct vcpu *v, struct fake_vcpu *f, const struct vcpu_boot *b)
{
    f->reg[VCPU_REG_RIP] = b->rip;
    f->reg[VCPU_REG_RSP] = b->rsp;
    f->reg[VCPU_REG_CR0] = b->cr0;
    f->reg[VCPU_REG_CR3] = b->cr3;
    f->reg[VCPU_REG_CR4] = b->cr4;
    f->reg[VCPU_REG_EFER] = b->efer;
    f->reg[VCPU_REG_RFLAGS] = 0x2;
    f->reg[VCPU_REG_CODE64] = b->mode == GUEST_MODE_LONG64;
    vcpu_arch(v)->regs.rax = b->rax;
    vcpu_arch(v)->regs.rbx = b->rbx;
    vcpu_arch(v)->regs.rdx = b->rdx;
    vcpu_arch(v)->regs.rsi = b->rsi;
    vcpu_arch(v)->regs.rdi = b->rdi;
}

static bool fake_vcpu_create(struct vcpu *v, struct vm_arch *vm, const char *name, const struct vcpu_boot *b)
{
    (void)name;
    fake.vcpu_creates++;
    struct fake_vcpu *f = fake_vcpu(v);
    if (fake.vcpu_create_fails || !f)
        return false;
    vcpu_arch(v)->vm = vm;
    vcpu_arch(v)->loaded_cpu = -1;
    f->created = true;
    boot_state(v, f, b);
    fake.last_boot = *b;
    return true;
}

static void fake_vcpu_destroy(struct vcpu *v)
{
    fake.vcpu_destroys++;
    struct fake_vcpu *f = fake_vcpu(v);
    if (f)
        f->destroyed = true;
}

static enum exit_action fake_run(struct vcpu *v, uint64_t slice_tsc)
{
    fake.runs++;
    return fake.run ? fake.run(v, slice_tsc) : EXIT_YIELD;
}

/* As VMX does: the vCPU is now loaded here (and nowhere else). */
static void fake_load(struct vcpu *v)
{
    fake.loads++;
    struct fake_vcpu *f = fake_vcpu(v);
    if (f)
        f->loads++;
    vcpu_arch(v)->loaded_cpu = (int32_t)this_cpu()->cpu_id;
}

static void fake_unload(struct vcpu *v)
{
    fake.unloads++;
    struct fake_vcpu *f = fake_vcpu(v);
    if (f)
        f->unloads++;
    vcpu_arch(v)->loaded_cpu = -1;
}

static uint64_t fake_get_reg(struct vcpu *v, enum vcpu_reg r)
{
    return fake_vcpu(v)->reg[r];
}

static void fake_set_reg(struct vcpu *v, enum vcpu_reg r, uint64_t value)
{
    fake_vcpu(v)->reg[r] = value;
}

static void fake_inject(struct vcpu *v, uint8_t vector, bool has_error, uint32_t error)
{
    struct fake_vcpu *f = fake_vcpu(v);
    f->injected_vector = vector;
    f->injected_has_error = has_error;
    f->injected_error = error;
}

static bool fake_can_inject(struct vcpu *v)
{
    struct fake_vcpu *f = fake_vcpu(v);
    return !f->blocked && (f->reg[VCPU_REG_RFLAGS] & BIT(9));
}

static void fake_inject_interrupt(struct vcpu *v, uint8_t vector)
{
    struct fake_vcpu *f = fake_vcpu(v);
    if (f->nintr < sizeof(f->intr))
        f->intr[f->nintr++] = vector;
    f->blocked = true; /* one event per entry, as on hardware */
}

static bool fake_inject_nmi(struct vcpu *v)
{
    struct fake_vcpu *f = fake_vcpu(v);
    if (f->blocked)
        return false;
    f->nmis++;
    f->blocked = true;
    return true;
}

static void fake_interrupt_window(struct vcpu *v, bool on)
{
    fake_vcpu(v)->window = on;
}

static bool fake_nmi_window(struct vcpu *v, bool on)
{
    if (fake.no_nmi_window)
        return false;
    fake_vcpu(v)->nmi_window = on;
    return true;
}

static void fake_init_vcpu(struct vcpu *v)
{
    struct fake_vcpu *f = fake_vcpu(v);
    f->inits++;
    f->reg[VCPU_REG_RIP] = 0xfff0;
    f->reg[VCPU_REG_RFLAGS] = 0x2;
}

static void fake_reset_vcpu(struct vcpu *v, const struct vcpu_boot *b)
{
    struct fake_vcpu *f = fake_vcpu(v);
    f->resets++;
    memset(f->reg, 0, sizeof(f->reg));
    memset(&vcpu_arch(v)->regs, 0, sizeof(vcpu_arch(v)->regs));
    f->blocked = f->window = f->nmi_window = false;
    f->sipi_vector = -1;
    if (b) {
        boot_state(v, f, b);
    } else {
        f->reg[VCPU_REG_RIP] = 0xfff0;
        f->reg[VCPU_REG_RFLAGS] = 0x2;
    }
}

static void fake_start_at_sipi(struct vcpu *v, uint8_t vector)
{
    struct fake_vcpu *f = fake_vcpu(v);
    f->sipi_vector = vector;
    f->reg[VCPU_REG_RIP] = 0;
    f->reg[VCPU_REG_CS_BASE] = (uint64_t)vector << 12;
}

static uint64_t fake_cr4_allowed(void) { return fake.cr4_allowed; }
static uint64_t fake_xcr0_supported(void) { return fake.xcr0_supported; }
static bool fake_paging_off_guests(void) { return fake.paging_off_guests; }

/* The fake's raw reasons are the exit kinds themselves. */
static const char *fake_reason_name(uint32_t raw)
{
    return exit_kind_name((enum exit_kind)raw);
}

static enum exit_kind fake_reason_kind(uint32_t raw)
{
    return raw < EXIT_KIND_COUNT ? (enum exit_kind)raw : EXIT_KIND_OTHER;
}

const struct vcpu_backend fake_backend = {
    .name = "fake",
    .init = fake_init,
    .cpu_on = fake_cpu_on,
    .cpu_off = fake_cpu_off,
    .vm_create = fake_vm_create,
    .vm_destroy = fake_vm_destroy,
    .describe = fake_describe,
    .vcpu_create = fake_vcpu_create,
    .vcpu_destroy = fake_vcpu_destroy,
    .run = fake_run,
    .load = fake_load,
    .unload = fake_unload,
    .get_reg = fake_get_reg,
    .set_reg = fake_set_reg,
    .inject_exception = fake_inject,
    .can_inject = fake_can_inject,
    .inject_interrupt = fake_inject_interrupt,
    .inject_nmi = fake_inject_nmi,
    .interrupt_window = fake_interrupt_window,
    .nmi_window = fake_nmi_window,
    .init_vcpu = fake_init_vcpu,
    .start_at_sipi = fake_start_at_sipi,
    .reset_vcpu = fake_reset_vcpu,
    .cr4_allowed = fake_cr4_allowed,
    .xcr0_supported = fake_xcr0_supported,
    .paging_off_guests = fake_paging_off_guests,
    .exit_reason_name = fake_reason_name,
    .exit_reason_kind = fake_reason_kind,
};

enum exit_action fake_exit(struct vcpu *v, enum vcpu_exit id, struct exit_info *e, unsigned len)
{
    enum exit_action a = fake.handlers[id](v, e);
    if (a == EXIT_NEXT || a == EXIT_NEXT_YIELD)
        fake_vcpu(v)->reg[VCPU_REG_RIP] += len;
    return a == EXIT_NEXT ? EXIT_RESUME : a == EXIT_NEXT_YIELD ? EXIT_YIELD : a;
}
