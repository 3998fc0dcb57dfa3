; AP start-up trampoline: a flat binary that smp.c copies to a page below 1 MiB. A
; SIPI starts the AP here in real mode with CS = page >> 4, IP = 0. It climbs to long
; mode on Keel's own page tables and jumps to ap_entry64 in the core on the AP's own
; stack. It must not depend on where it lands, so everything absolute is computed from
; CS at run time. The parameter block mirrors struct ap_params in smp.c.

bits 16
org 0

CR0_PE          equ 1 << 0
CR0_ET          equ 1 << 4
CR0_NE          equ 1 << 5
CR0_NW          equ 1 << 29
CR0_CD          equ 1 << 30
CR0_PG          equ 1 << 31
CR4_PAE         equ 1 << 5
MSR_EFER        equ 0xC0000080
EFER_LME        equ 1 << 8
EFER_NXE        equ 1 << 11
CPUID_NX        equ 1 << 20
PARAMS_MAGIC    equ 0x3150414B     ; "KAP1": smp.c refuses a blob without it

SEL_CODE32      equ 0x08
SEL_DATA        equ 0x10
SEL_CODE64      equ 0x18

start:
    jmp short real_mode
    align 8, db 0

params:                            ; offset 8, filled by the BSP before each SIPI
p_magic:        dd PARAMS_MAGIC
p_cr3:          dd 0               ; Keel's PML4, below 4 GiB: loaded from 32-bit code
p_entry64:      dq 0               ; ap_entry64
p_percpu:       dq 0               ; this AP's struct percpu, handed over in RDI
p_stack:        dq 0               ; its stack top
p_started:      dd 0               ; set first thing, so the BSP can skip the second SIPI
p_reserved:     dd 0
%if p_cr3 - start != 0x0c || p_entry64 - start != 0x10 || p_stack - start != 0x20 || p_started - start != 0x28
%error "parameter block layout no longer matches struct ap_params"
%endif

real_mode:
    cli
    mov ax, cs
    mov ds, ax
    mov dword [p_started], 1

    ; EBX = this page's linear address, kept through protected mode.
    movzx ebx, ax
    shl ebx, 4
    lea eax, [ebx + gdt]
    mov [gdtr + 2], eax
    lea eax, [ebx + pm_entry]
    mov [pm_target], eax
    lea eax, [ebx + lm_entry]
    mov [lm_target], eax
    o32 lgdt [gdtr]

    ; INIT leaves the caches disabled (CD, NW); NE selects native FPU error reporting,
    ; which VMX requires anyway.
    mov eax, cr0
    and eax, ~(CR0_CD | CR0_NW) & 0xFFFFFFFF
    or eax, CR0_PE | CR0_NE | CR0_ET
    mov cr0, eax
    ; MOV to CR0 serializes, so the target written above is what this jump reads.
    jmp far dword [pm_target]

bits 32
pm_entry:
    mov ax, SEL_DATA
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax

    mov eax, cr4
    or eax, CR4_PAE
    mov cr4, eax
    mov eax, [ebx + p_cr3]
    mov cr3, eax

    ; Keel's tables may use NX bits, but setting EFER.NXE without NX faults.
    mov esi, ebx                   ; CPUID clobbers EBX
    xor edi, edi
    mov eax, 0x80000000
    cpuid
    cmp eax, 0x80000001
    jb .efer
    mov eax, 0x80000001
    cpuid
    test edx, CPUID_NX
    jz .efer
    mov edi, EFER_NXE
.efer:
    mov ebx, esi
    mov ecx, MSR_EFER
    rdmsr
    or eax, EFER_LME
    or eax, edi
    wrmsr

    ; Paging on with LME set activates long mode (compatibility mode until CS changes).
    ; This page is identity-mapped in Keel's tables, so execution carries on here.
    mov eax, cr0
    or eax, CR0_PG
    mov cr0, eax
    jmp far [ebx + lm_target]

bits 64
lm_entry:
    mov ebx, ebx                   ; upper halves are undefined after the mode switch
    mov rsp, [rbx + p_stack]
    mov rdi, [rbx + p_percpu]
    mov rax, [rbx + p_entry64]
    jmp rax

align 4
pm_target:      dd 0
                dw SEL_CODE32
lm_target:      dd 0
                dw SEL_CODE64

align 8
gdt:
    dq 0
    dq 0x00CF9A000000FFFF          ; SEL_CODE32: flat 32-bit code
    dq 0x00CF92000000FFFF          ; SEL_DATA: flat data
    dq 0x00AF9A000000FFFF          ; SEL_CODE64: 64-bit code
gdt_end:
gdtr:
    dw gdt_end - gdt - 1
    dd 0                           ; linear address of gdt, set at run time

%if $ - start > 4096
%error "the trampoline must fit in one page"
%endif
