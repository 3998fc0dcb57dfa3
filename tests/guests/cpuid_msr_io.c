/* cpuid-msr-io: checks the CPU and platform view Keel must present to a guest: CPUID
 * (no VMX, hypervisor bit, Keel's leaves), MSR filtering, unclaimed I/O ports, and the
 * hypercalls VM_INFO and CONSOLE_WRITE including their argument checks. */
#include <stdarg.h>
#include "guest.h"

const char guest_prefix[] = "cpuid-msr-io:";

#define CPUID1_ECX_VMX (1u << 5)
#define CPUID1_ECX_HYPERVISOR (1u << 31)
#define UNKNOWN_MSR 0x00001234u /* no CPU implements it */
#define UNCLAIMED_PORT 0x2F0    /* between the game port and COM2: nothing there */
#define FAR_OUTSIDE 0xF0000000u /* fallback "not RAM" address when VM_INFO failed */

static unsigned checks, failures;

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
    va_list ap;
    checks++;
    failures += !ok;
    printf("cpuid-msr-io: %s: ", ok ? "ok" : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* VMCALL that survives #UD (as outside Keel, or a Keel that forgot to handle it):
 * returns -1 and *ret, or the vector of the fault. */
static int hypercall_safe(uint32_t fn, uint32_t a1, uint32_t a2, uint32_t a3, int32_t *ret)
{
    int v = fault_arm(VEC_UD);
    if (v < 0) {
        *ret = keel_hypercall(fn, a1, a2, a3);
        fault_disarm();
    }
    return v;
}

static void check_cpuid(bool *under_keel)
{
    struct cpuid_regs r = cpuid(1, 0);
    check(!(r.ecx & CPUID1_ECX_VMX), "CPUID.1:ECX.VMX[5] is clear (ECX=0x%08x)", r.ecx);
    check(r.ecx & CPUID1_ECX_HYPERVISOR, "CPUID.1:ECX hypervisor-present[31] is set");

    r = cpuid(KEEL_CPUID_BASE, 0);
    char sig[13];
    memcpy(sig, &r.ebx, 4);
    memcpy(sig + 4, &r.ecx, 4);
    memcpy(sig + 8, &r.edx, 4);
    sig[12] = '\0';
    for (int i = 0; i < 12; i++)
        if (sig[i] < 0x20 || sig[i] > 0x7e)
            sig[i] = '?';
    *under_keel = r.ebx == KEEL_SIGNATURE_EBX && r.ecx == KEEL_SIGNATURE_ECX &&
                  r.edx == KEEL_SIGNATURE_EDX;
    check(*under_keel, "CPUID.0x40000000 signature \"%s\" is \"KeelKeelKeel\"", sig);
    check(r.eax >= KEEL_CPUID_ABI && r.eax < KEEL_CPUID_BASE + 0x100,
          "CPUID.0x40000000 max leaf 0x%08x >= 0x%08x", r.eax, KEEL_CPUID_ABI);

    r = cpuid(KEEL_CPUID_ABI, 0);
    check(r.eax == KEEL_ABI_VERSION, "CPUID.0x40000001 ABI version %u is %u", r.eax,
          KEEL_ABI_VERSION);
}

static void check_msrs(void)
{
    uint64_t v = 0;
    int f = rdmsr_safe(MSR_EFER, &v);
    check(f < 0, "RDMSR EFER returns 0x%llx (fault: %s)", v, f < 0 ? "none" : fault_name(f));

    f = rdmsr_safe(UNKNOWN_MSR, &v);
    check(f == VEC_GP, "RDMSR 0x%x raises #GP (got %s)", UNKNOWN_MSR,
          f < 0 ? "no fault" : fault_name(f));
    f = wrmsr_safe(UNKNOWN_MSR, 0);
    check(f == VEC_GP, "WRMSR 0x%x raises #GP (got %s)", UNKNOWN_MSR,
          f < 0 ? "no fault" : fault_name(f));

    uint64_t fc = 0;
    f = rdmsr_safe(MSR_IA32_FEATURE_CONTROL, &fc);
    check(f < 0 && (fc & FEATURE_CONTROL_LOCK),
          "RDMSR IA32_FEATURE_CONTROL = 0x%llx has the lock bit (fault: %s)", fc,
          f < 0 ? "none" : fault_name(f));
    f = wrmsr_safe(MSR_IA32_FEATURE_CONTROL, fc);
    check(f == VEC_GP, "WRMSR IA32_FEATURE_CONTROL raises #GP (got %s)",
          f < 0 ? "no fault" : fault_name(f));
}

static void check_ports(void)
{
    uint8_t b = inb(UNCLAIMED_PORT);
    uint16_t w = inw(UNCLAIMED_PORT);
    uint32_t l = inl(UNCLAIMED_PORT);
    check(b == 0xFF, "IN byte from port 0x%x reads 0x%02x, want 0xff", UNCLAIMED_PORT, b);
    check(w == 0xFFFF, "IN word from port 0x%x reads 0x%04x, want 0xffff", UNCLAIMED_PORT, w);
    check(l == 0xFFFFFFFFu, "IN dword from port 0x%x reads 0x%08x, want 0xffffffff",
          UNCLAIMED_PORT, l);
}

static bool name_ok(const char *name)
{
    size_t n = strnlen(name, sizeof(((struct keel_vm_info *)0)->name));
    if (n == 0 || n == sizeof(((struct keel_vm_info *)0)->name))
        return false;
    for (size_t i = 0; i < n; i++)
        if (name[i] < 0x21 || name[i] > 0x7e)
            return false;
    return true;
}

static void check_hypercalls(void)
{
    static struct keel_vm_info info;
    int32_t ret = 0;

    memset(&info, 0xA5, sizeof(info));
    int f = hypercall_safe(KEEL_HC_VM_INFO, (uint32_t)(uintptr_t)&info, sizeof(info), 0, &ret);
    bool info_ok = f < 0 && ret == 0;
    check(info_ok, "VM_INFO returns 0 (got %s%d)", f < 0 ? "" : fault_name(f), f < 0 ? ret : 0);
    uint32_t outside = FAR_OUTSIDE;
    if (info_ok) {
        bool named = name_ok(info.name);
        if (!named)
            info.name[0] = '\0';
        printf("cpuid-msr-io: vm_info name=%s memory=%llu bytes (%llu MiB) vm_id=%u vcpu_id=%u "
               "host_cpu=%u tsc_hz=%llu\n", info.name, info.memory_bytes,
               info.memory_bytes >> 20, info.vm_id, info.vcpu_id, info.host_cpu, info.tsc_hz);
        check(named, "VM_INFO name is a NUL-terminated printable string");
        check(info.abi_version == KEEL_ABI_VERSION, "VM_INFO abi_version %u is %u",
              info.abi_version, KEEL_ABI_VERSION);
        uint64_t ram_end = mb_ram_end();
        check(info.memory_bytes && !(info.memory_bytes & 0xFFF) && ram_end <= info.memory_bytes,
              "VM_INFO memory_bytes %llu is whole pages and covers the Multiboot RAM end 0x%llx",
              info.memory_bytes, ram_end);
        if (info.memory_bytes < FAR_OUTSIDE)
            outside = (uint32_t)info.memory_bytes;
    }

    f = hypercall_safe(KEEL_HC_VM_INFO, (uint32_t)(uintptr_t)&info, sizeof(info) - 1, 0, &ret);
    check(f < 0 && ret == -(int32_t)KEEL_EINVAL, "VM_INFO with a short buffer returns -EINVAL "
          "(got %s%d)", f < 0 ? "" : fault_name(f), f < 0 ? ret : 0);
    f = hypercall_safe(KEEL_HC_VM_INFO, outside, sizeof(info), 0, &ret);
    check(f < 0 && ret == -(int32_t)KEEL_EFAULT, "VM_INFO to 0x%x (outside RAM) returns -EFAULT "
          "(got %s%d)", outside, f < 0 ? "" : fault_name(f), f < 0 ? ret : 0);
    f = hypercall_safe(0x7FFF, 0, 0, 0, &ret);
    check(f < 0 && ret == -(int32_t)KEEL_EINVAL, "unknown hypercall 0x7fff returns -EINVAL "
          "(got %s%d)", f < 0 ? "" : fault_name(f), f < 0 ? ret : 0);

    static const char line[] = "cpuid-msr-io: console write via hypercall\n";
    uint32_t len = sizeof(line) - 1;
    f = hypercall_safe(KEEL_HC_CONSOLE_WRITE, (uint32_t)(uintptr_t)line, len, 0, &ret);
    check(f < 0 && ret == (int32_t)len, "CONSOLE_WRITE returns %u (got %s%d)", len,
          f < 0 ? "" : fault_name(f), f < 0 ? ret : 0);
    f = hypercall_safe(KEEL_HC_CONSOLE_WRITE, outside, 16, 0, &ret);
    check(f < 0 && ret == -(int32_t)KEEL_EFAULT, "CONSOLE_WRITE from 0x%x (outside RAM) returns "
          "-EFAULT (got %s%d)", outside, f < 0 ? "" : fault_name(f), f < 0 ? ret : 0);
    if (outside != FAR_OUTSIDE) {
        f = hypercall_safe(KEEL_HC_CONSOLE_WRITE, outside - 8, 16, 0, &ret);
        check(f < 0 && ret == -(int32_t)KEEL_EFAULT, "CONSOLE_WRITE straddling the RAM end "
              "returns -EFAULT (got %s%d)", f < 0 ? "" : fault_name(f), f < 0 ? ret : 0);
    }
}

int main(uint32_t magic, uint32_t info_gpa)
{
    (void)info_gpa;
    printf("cpuid-msr-io: checking the CPU, MSR, port and hypercall view\n");
    if (magic != MB_BOOT_MAGIC) {
        printf("cpuid-msr-io: FAIL: EAX=0x%08x at entry, want 0x%08x\n", magic, MB_BOOT_MAGIC);
        return GUEST_EXIT_BAD_BOOT;
    }
    bool under_keel = false;
    check_cpuid(&under_keel);
    check_msrs();
    check_ports();
    if (under_keel)
        check_hypercalls();
    else
        check(false, "not running under Keel: hypercall checks skipped");

    if (failures) {
        printf("cpuid-msr-io: %u of %u checks FAILED\n", failures, checks);
        return GUEST_EXIT_FAIL;
    }
    printf("cpuid-msr-io: all %u checks passed\n", checks);
    return GUEST_EXIT_OK;
}
