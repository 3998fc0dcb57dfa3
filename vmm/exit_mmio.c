/* An access to a device's MMIO range: the instruction is fetched through the guest's
 * own page tables, decoded and carried out against the VM's device bus, then the guest
 * resumes after it. What cannot be decoded stops the VM with its bytes and RIP; it is
 * never skipped. MOVS between a device and RAM is refused for now (no device needs it). */
#include "vmm/exit_handlers.h"
#include "vmm/dev/platform.h"
#include "arch/x86/guest_walk.h"
#include "arch/x86/insn_decode.h"
#include "arch/x86/insn_emulate.h"
#include "arch/x86/cpu.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

#define RFLAGS_VM BIT(17)
#define RFLAGS_AC BIT(18)
#define GUEST_MAXPHYADDR 39

static bool ram_read(void *ctx, gpa_t gpa, void *buf, size_t len)
{
    const void *p = vm_gpa_map(ctx, gpa, len);
    if (!p)
        return false;
    memcpy(buf, p, len);
    return true;
}

static bool ram_write(void *ctx, gpa_t gpa, const void *buf, size_t len)
{
    void *p = vm_gpa_map(ctx, gpa, len);
    if (!p)
        return false;
    memcpy(p, buf, len);
    return true;
}

struct mmio_ctx {
    struct vcpu *v;
    struct bus_result result; /* what the device said, when it asked for a stop */
};

static enum insn_access bus_access(struct mmio_ctx *c, gpa_t gpa, unsigned width, bool write, uint64_t *value)
{
    struct vm *vm = c->v->vm;
    bool shared = vm->vcpu_count > 1;
    if (shared)
        spin_lock(&vm->pc.lock);
    struct bus_result r = vm_bus_access(&vm->bus, BUS_MMIO, gpa, width, write, value);
    if (shared)
        spin_unlock(&vm->pc.lock);
    if (bus_action(r) != BUS_DONE) {
        c->result = r;
        return INSN_ACCESS_STOP;
    }
    return INSN_ACCESS_OK;
}

static enum insn_access mmio_read(void *ctx, gpa_t gpa, unsigned width, uint64_t *value)
{
    enum insn_access a = bus_access(ctx, gpa, width, false, value);
    if (width < 8)
        *value &= (1ull << (width * 8)) - 1;
    return a;
}

static enum insn_access mmio_write(void *ctx, gpa_t gpa, unsigned width, uint64_t value)
{
    return bus_access(ctx, gpa, width, true, &value);
}

static void report_bytes(char *out, size_t size, const uint8_t *b, unsigned n)
{
    size_t used = 0;
    out[0] = 0;
    for (unsigned i = 0; i < n && used + 4 < size; i++)
        used += (size_t)ksnprintf(out + used, size - used, "%s%02x", i ? " " : "", b[i]);
}

enum exit_action exit_mmio(struct vcpu *v, gpa_t gpa, bool write, const struct bus_range *dev)
{
    struct vm *vm = v->vm;
    uint64_t rip = vcpu_rip(v), rflags = vcpu_get(v, VCPU_REG_RFLAGS);
    uint64_t cr0 = vcpu_guest_cr0(v), efer = vcpu_get(v, VCPU_REG_EFER);
    struct guest_paging pg = {.cr0 = cr0, .cr3 = vcpu_get(v, VCPU_REG_CR3), .cr4 = vcpu_guest_cr4(v),
                              .efer = efer, .cpl = vcpu_guest_cpl(v), .rflags_ac = rflags & RFLAGS_AC,
                              .maxphyaddr = GUEST_MAXPHYADDR};
    struct guest_phys_mem mem = {.ctx = vm, .read = ram_read, .write = ram_write};
    enum insn_mode mode = insn_mode_of(cr0 & CR0_PE, rflags & RFLAGS_VM, efer & EFER_LMA,
                                       vcpu_get(v, VCPU_REG_CODE64), vcpu_get(v, VCPU_REG_CS_DB));
    struct guest_fetch f;
    struct guest_fault fault;
    enum guest_walk_result w = guest_fetch_insn(&pg, &mem, vcpu_get(v, VCPU_REG_CS_BASE), rip, (unsigned)mode, &f, &fault);
    if (w == GUEST_WALK_PAGE_FAULT) {
        /* The code page went away under the access (another vCPU unmapped it). */
        vcpu_set(v, VCPU_REG_CR2, fault.address);
        vcpu_inject_exception(v, 14, true, fault.error_code);
        return EXIT_RESUME;
    }
    if (w != GUEST_WALK_OK) {
        vm_stop(vm, "MMIO %s of %s at guest-physical 0x%lx: the instruction at rip 0x%lx cannot be fetched (%s)",
                write ? "write" : "read", dev->owner, gpa, rip,
                w == GUEST_WALK_NOT_RAM ? "not in RAM" : "non-canonical");
        return EXIT_STOPPED;
    }
    struct insn insn;
    enum insn_error err = insn_decode(f.bytes, f.len, mode, &insn);
    if (err == INSN_ERR_TRUNCATED && f.tail == GUEST_WALK_PAGE_FAULT) {
        vcpu_set(v, VCPU_REG_CR2, f.tail_fault.address);
        vcpu_inject_exception(v, 14, true, f.tail_fault.error_code);
        return EXIT_RESUME;
    }
    char bytes[64];
    if (err != INSN_ERR_OK) {
        report_bytes(bytes, sizeof(bytes), f.bytes, f.len);
        vm_stop(vm, "MMIO %s of %s at guest-physical 0x%lx: instruction at rip 0x%lx not decoded (%s): %s",
                write ? "write" : "read", dev->owner, gpa, rip, insn_error_text(err), bytes);
        return EXIT_STOPPED;
    }
    struct insn_frame frame = {.rsp = vcpu_get(v, VCPU_REG_RSP), .rip = rip, .rflags = rflags};
    struct mmio_ctx c = {.v = v};
    struct insn_mem_ops ops = {.ctx = &c, .mmio_read = mmio_read, .mmio_write = mmio_write};
    switch (insn_emulate(&insn, &v->arch.regs, &frame, gpa, write, &ops)) {
    case INSN_EMUL_DONE: break;
    case INSN_EMUL_STOP: return exit_device_result(v, c.result);
    case INSN_EMUL_FAULT: return EXIT_RESUME;
    case INSN_EMUL_UNSUPPORTED:
    default:
        report_bytes(bytes, sizeof(bytes), f.bytes, insn.length);
        vm_stop(vm, "MMIO %s of %s at guest-physical 0x%lx: %s at rip 0x%lx is not emulated: %s",
                write ? "write" : "read", dev->owner, gpa, insn_op_name(insn.op), rip, bytes);
        return EXIT_STOPPED;
    }
    vcpu_set(v, VCPU_REG_RIP, frame.rip);
    vcpu_set(v, VCPU_REG_RSP, frame.rsp);
    vcpu_set(v, VCPU_REG_RFLAGS, frame.rflags);
    /* Emulating an instruction ends an STI/MOV-SS shadow, as executing it would. */
    uint64_t shadow = vcpu_get(v, VCPU_REG_INTERRUPTIBILITY);
    if (shadow & 3)
        vcpu_set(v, VCPU_REG_INTERRUPTIBILITY, shadow & ~3ull);
    /* A LAPIC or IOAPIC write (EOI, TPR, ICR, a timer, a redirection that unmasks a
     * timer's line) may change what the vCPU gets next. */
    if (write)
        vm_platform_programmed(vm, v);
    return EXIT_RESUME;
}
