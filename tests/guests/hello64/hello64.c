/* hello64: the smallest ELF64 guest. Proves Keel's long-mode hand-off (the entry
 * registers, a 64-bit code segment, EFER.LMA, paging, the loaded segments) and that
 * VMCALL from 64-bit code takes and returns full 64-bit registers.
 * Exit codes as for the 32-bit guests: 0 success, 1 a check failed, 3 not entered by
 * Keel's ELF64 loader (wrong RAX). */
#include <stdarg.h>
#include <stdint.h>

#include "printf.h"
#include "uart.h"
#include "vmm/loaders/guest_image.h"
#include "vmm/hypercall_abi.h"
#include "x86.h"

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_BAD_BOOT 3
#define DEBUG_EXIT_PORT 0xF4
#define RFLAGS_DF (1ull << 10)
#define FOUR_GIB ((uint64_t)1 << 32)

_Static_assert(sizeof(void *) == 8 && sizeof(long) == 8, "hello64 must be built with -m64");

/* Executes the bytes 40 90 with EAX = 0. In a 64-bit code segment (CS.L = 1) 0x40 is an
 * empty REX prefix on NOP; in a 32-bit (compatibility mode) segment it is INC EAX. So this
 * tells from the instruction decoder itself, not from a register that claims it, which
 * mode the CPU runs this code in. */
static int cs_decodes_64bit(void)
{
    uint32_t r;
    __asm__ volatile("xor %%eax, %%eax\n\t"
                     ".byte 0x40\n\t"
                     "nop"
                     : "=a"(r));
    return r == 0;
}

/* Keel's VMCALL with full 64-bit arguments and result (vmm/hypercall_abi.h); the 32-bit
 * wrappers in runtime/hypercall.h would truncate them. Outside Keel it raises #UD, and
 * hello64 has no IDT: check the CPUID signature first. */
static int64_t vmcall3(uint64_t fn, uint64_t a1, uint64_t a2)
{
    uint64_t ret;
    __asm__ volatile("vmcall" : "=a"(ret) : "a"(fn), "b"(a1), "c"(a2) : "memory");
    return (int64_t)ret;
}

/* Proves the loader copied .data from the file and zero-filled .bss. */
static volatile uint64_t data_word = 0x0123456789abcdefull;
static volatile uint64_t bss_words[64];

static unsigned checks, failures;

static void __attribute__((format(printf, 2, 3))) check(int ok, const char *fmt, ...)
{
    va_list ap;
    checks++;
    if (!ok)
        failures++;
    printf("hello64: %s: ", ok ? "ok" : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    uart_putc('\n');
}

static void __attribute__((noreturn)) guest_exit(int code)
{
    uart_drain();
    outb(DEBUG_EXIT_PORT, (uint8_t)code);
    for (;;) { /* the debug-exit port is missing: stop here */
        cli();
        hlt();
    }
}

static void check_entry_state(uint64_t info, uint64_t entry_rsp, uint64_t entry_rflags)
{
    check(info == GUEST_MB_INFO, "RDI = 0x%lx, the Multiboot information structure at 0x%lx", info,
          (uint64_t)GUEST_MB_INFO);
    check((entry_rsp + 8) % 16 == 0 && entry_rsp > GUEST_HIGH_MEM,
          "RSP = 0x%lx at entry: above 1 MiB and RSP+8 16-byte aligned", entry_rsp);
    check(*(const uint64_t *)entry_rsp == 0, "zero return address at [RSP]");
    check(!(entry_rflags & RFLAGS_DF), "RFLAGS = 0x%lx at entry, direction flag clear", entry_rflags);
}

static void check_long_mode(void)
{
    uint64_t efer = rdmsr(MSR_EFER);
    check((efer & (EFER_LME | EFER_LMA)) == (EFER_LME | EFER_LMA), "EFER = 0x%lx: LME and LMA (bit 10) set", efer);
    uint16_t cs = read_cs();
    check(cs == GUEST_SEL_CODE64, "CS = 0x%x, the 64-bit code selector 0x%x", cs, GUEST_SEL_CODE64);
    check(cs_decodes_64bit(), "the CPU decodes this code as 64-bit (CS.L = 1: byte 0x40 is a REX prefix)");
    uint64_t cr0 = read_cr0(), cr3 = read_cr3(), cr4 = read_cr4();
    check((cr0 & (CR0_PE | CR0_PG)) == (CR0_PE | CR0_PG) && (cr4 & CR4_PAE),
          "CR0 = 0x%lx (PE, PG), CR4 = 0x%lx (PAE), CR3 = 0x%lx", cr0, cr4, cr3);

    /* volatile keeps the arithmetic at run time, in 64-bit registers. */
    volatile uint64_t wide = 0x123456789ull;
    uint64_t shifted = wide << 8;
    check(sizeof(void *) == 8 && shifted == 0x12345678900ull && (shifted >> 32) == 0x123,
          "pointers are %u bytes; 0x123456789 << 8 = 0x%lx", (unsigned)sizeof(void *), shifted);

    int bss_zero = 1;
    for (unsigned i = 0; i < sizeof bss_words / sizeof bss_words[0]; i++)
        bss_zero &= bss_words[i] == 0;
    check(data_word == 0x0123456789abcdefull && bss_zero, ".data loaded (0x%lx) and .bss zero-filled",
          (uint64_t)data_word);
}

static int under_keel(void)
{
    struct cpuid_regs r = cpuid(KEEL_CPUID_BASE, 0);
    int keel = r.ebx == KEEL_SIGNATURE_EBX && r.ecx == KEEL_SIGNATURE_ECX && r.edx == KEEL_SIGNATURE_EDX;
    check(keel, "CPUID 0x%x signature is KeelKeelKeel (ebx=0x%x ecx=0x%x edx=0x%x)", KEEL_CPUID_BASE, r.ebx, r.ecx,
          r.edx);
    return keel;
}

static void find_high_ram(uint64_t info, uint64_t *base, uint64_t *size);

static void check_vm_info(uint64_t info_gpa, uint64_t entry_rsp)
{
    struct keel_vm_info info;
    __builtin_memset(&info, 0xff, sizeof info); /* so that fields Keel leaves alone show */
    uint64_t gpa = (uint64_t)(uintptr_t)&info; /* identity-mapped: virtual = guest-physical */
    int64_t rc = vmcall3(KEEL_HC_VM_INFO, gpa, sizeof info);
    check(rc == 0, "VM_INFO hypercall returned %ld", rc);
    if (rc != 0)
        return;
    int terminated = 0;
    for (unsigned i = 0; i < sizeof info.name; i++)
        terminated |= info.name[i] == 0;
    check(terminated, "VM name is NUL-terminated");
    printf("hello64: vm_info name=%s memory=%lu bytes (%lu MiB) vm=%u vcpu=%u host_cpu=%u tsc_hz=%lu\n",
               terminated ? info.name : "(unterminated)", info.memory_bytes, info.memory_bytes >> 20, info.vm_id,
               info.vcpu_id, info.host_cpu, info.tsc_hz);
    check(info.abi_version == KEEL_ABI_VERSION, "ABI version %u", info.abi_version);
    check(info.memory_bytes >= GUEST_MIN_RAM && info.memory_bytes % 4096 == 0 && entry_rsp < info.memory_bytes,
          "memory size 0x%lx: at least 2 MiB, whole pages, and holds the boot stack", info.memory_bytes);

    /* The same buffer 4 GiB higher: a Keel that truncated RBX to 32 bits, as it does
     * for 32-bit guests, would accept it; a result truncated to EAX would not be -2. */
    uint64_t high_base, high_size;
    find_high_ram(info_gpa, &high_base, &high_size);
    if (info.memory_bytes <= FOUR_GIB && !high_size) {
        rc = vmcall3(KEEL_HC_VM_INFO, gpa + FOUR_GIB, sizeof info);
        check(rc == -(int64_t)KEEL_EFAULT, "VM_INFO at gpa 0x%lx (past RAM) returned %ld (-EFAULT, as 64 bits)",
              gpa + FOUR_GIB, rc);
    }
}

/* RAM above 4 GiB, as the Multiboot memory map reports it: every 2 MiB of it (and its
 * last 8 bytes) takes a pattern that reads back, and a hypercall's buffer there works
 * (Keel's guest-memory check on the 4 GiB part). With "past-ram" on the command line
 * the guest then reads the first byte past its RAM, which Keel must stop it for. */
#define MBI_CMDLINE 16
#define MBI_MMAP_LENGTH 44
#define MBI_MMAP_ADDR 48
#define MB_MMAP_AVAILABLE 1

static uint64_t high_ram_end;

/* The available range at or above 4 GiB in the Multiboot memory map (size 0: none). */
static void find_high_ram(uint64_t info, uint64_t *base, uint64_t *size)
{
    const uint8_t *mbi = (const uint8_t *)(uintptr_t)info;
    uint32_t len = *(const uint32_t *)(mbi + MBI_MMAP_LENGTH);
    uint32_t at = *(const uint32_t *)(mbi + MBI_MMAP_ADDR);
    *base = *size = 0;
    for (uint32_t off = 0; off + 24 <= len; off += *(const uint32_t *)(uintptr_t)(at + off) + 4) {
        const uint8_t *e = (const uint8_t *)(uintptr_t)(at + off);
        uint64_t b = *(const uint64_t *)(e + 4), l = *(const uint64_t *)(e + 12);
        if (*(const uint32_t *)(e + 20) == MB_MMAP_AVAILABLE && b >= FOUR_GIB) {
            *base = b;
            *size = l;
        }
    }
}

static void check_high_ram(uint64_t info)
{
    uint64_t base, size;
    find_high_ram(info, &base, &size);
    if (!size) {
        printf("hello64: no RAM above 4 GiB\n");
        return;
    }
    check(base == FOUR_GIB, "RAM above 4 GiB: %lu KiB at 0x%lx", size >> 10, base);
    unsigned bad = 0, words = 0;
    for (uint64_t a = base; a < base + size; a += 2u << 20) {
        *(volatile uint64_t *)(uintptr_t)a = a ^ 0x5a5a5a5a5a5a5a5aull;
        words++;
    }
    *(volatile uint64_t *)(uintptr_t)(base + size - 8) = 0x0123456789abcdefull;
    for (uint64_t a = base; a < base + size; a += 2u << 20)
        bad += *(volatile uint64_t *)(uintptr_t)a != (a ^ 0x5a5a5a5a5a5a5a5aull);
    bad += *(volatile uint64_t *)(uintptr_t)(base + size - 8) != 0x0123456789abcdefull;
    check(!bad, "%u words written across it, every 2 MiB and its last 8 bytes, read back (%u wrong)", words + 1, bad);
    struct keel_vm_info *vi = (struct keel_vm_info *)(uintptr_t)(base + (1u << 20));
    int64_t rc = vmcall3(KEEL_HC_VM_INFO, (uint64_t)(uintptr_t)vi, sizeof *vi);
    check(rc == 0 && vi->memory_bytes > size,
          "VM_INFO with its buffer at 0x%lx returned %ld, memory %lu MiB", (uint64_t)(uintptr_t)vi, rc,
          rc == 0 ? vi->memory_bytes >> 20 : 0);
    high_ram_end = base + size;
}

static int cmdline_has(uint64_t info, const char *word)
{
    const uint8_t *mbi = (const uint8_t *)(uintptr_t)info;
    if (!(*(const uint32_t *)mbi & (1u << 2)))
        return 0;
    const char *c = (const char *)(uintptr_t)*(const uint32_t *)(mbi + MBI_CMDLINE);
    for (; *c; c++) {
        unsigned i = 0;
        while (word[i] && c[i] == word[i])
            i++;
        if (!word[i])
            return 1;
    }
    return 0;
}

/* An AP of a 64-bit VM starts from INIT-SIPI in real mode like any other (its vCPU
 * needs unrestricted guest for that, which the 64-bit boot vCPU runs without). With a
 * second CPU (fw_cfg's count), the AP is sent INIT-SIPI-SIPI to a page that marks
 * itself started and halts; the boot vCPU yields until the mark shows. */
#define FW_CFG_SELECTOR 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_NB_CPUS 0x05
#define MSR_APIC_BASE 0x1Bu
#define APIC_BASE_X2APIC (1ull << 10)
#define MSR_X2APIC_ICR 0x830u
#define AP_PAGE 0x90000u
#define AP_MARK (AP_PAGE + 0x100)
#define AP_STARTED 0xA5
#define AP_WAIT_YIELDS 2000

static unsigned fw_cfg_cpus(void)
{
    outw(FW_CFG_SELECTOR, FW_CFG_NB_CPUS);
    unsigned lo = inb(FW_CFG_DATA);
    return lo | (unsigned)inb(FW_CFG_DATA) << 8;
}

static void check_ap_start(void)
{
    unsigned cpus = fw_cfg_cpus();
    if (cpus < 2) {
        printf("hello64: %u CPU, no AP to start\n", cpus);
        return;
    }
    /* cli; mov byte [cs:0x100], 0xA5; hlt; jmp back to the hlt */
    static const uint8_t code[] = {0xFA, 0x2E, 0xC6, 0x06, 0x00, 0x01, AP_STARTED, 0xF4, 0xEB, 0xFD};
    volatile uint8_t *page = (volatile uint8_t *)(uintptr_t)AP_PAGE;
    for (unsigned i = 0; i < sizeof code; i++)
        page[i] = code[i];
    volatile uint8_t *mark = (volatile uint8_t *)(uintptr_t)AP_MARK;
    *mark = 0;
    wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | APIC_BASE_X2APIC);
    wrmsr(MSR_X2APIC_ICR, (1ull << 32) | 0x4500); /* INIT, assert, to APIC ID 1 */
    wrmsr(MSR_X2APIC_ICR, (1ull << 32) | 0x4600 | (AP_PAGE >> 12));
    wrmsr(MSR_X2APIC_ICR, (1ull << 32) | 0x4600 | (AP_PAGE >> 12));
    for (unsigned i = 0; i < AP_WAIT_YIELDS && *mark != AP_STARTED; i++)
        vmcall3(KEEL_HC_YIELD, 0, 0);
    check(*mark == AP_STARTED, "AP 1 of %u started in real mode from INIT-SIPI (mark 0x%x)", cpus, *mark);
}

void __attribute__((noreturn)) hello64_main(uint64_t info, uint64_t magic, uint64_t entry_rsp, uint64_t entry_rflags);

void hello64_main(uint64_t info, uint64_t magic, uint64_t entry_rsp, uint64_t entry_rflags)
{
    uart_init();
    printf("hello64: Hello from long mode\n");
    if (magic != MULTIBOOT_BOOTLOADER_MAGIC) {
        printf("hello64: FAIL: RAX=0x%lx at entry, want 0x%x\n", magic, MULTIBOOT_BOOTLOADER_MAGIC);
        guest_exit(EXIT_BAD_BOOT);
    }
    check_entry_state(info, entry_rsp, entry_rflags);
    check_long_mode();
    /* Outside Keel VMCALL raises #UD, and with no IDT that would reset the machine. */
    if (under_keel()) {
        check_vm_info(info, entry_rsp);
        check_ap_start();
        check_high_ram(info);
    }
    if (failures) {
        printf("hello64: %u of %u checks FAILED\n", failures, checks);
        guest_exit(EXIT_FAIL);
    }
    if (high_ram_end && cmdline_has(info, "past-ram")) {
        printf("hello64: reading 0x%lx, just past the end of RAM\n", high_ram_end);
        uart_drain();
        uint64_t v = *(volatile uint64_t *)(uintptr_t)high_ram_end;
        printf("hello64: FAIL: read 0x%lx past the end of RAM\n", v);
        guest_exit(EXIT_FAIL);
    }
    printf("hello64: done\n");
    guest_exit(EXIT_OK);
}
