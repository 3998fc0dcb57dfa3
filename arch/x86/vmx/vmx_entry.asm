; The VM entry/exit path, the only assembly on Keel's hot path.
;
; vmx_enter(struct vcpu_arch *a)    (rbx; rbx = a on return)
;   Loads the guest's general registers and enters it with VMRESUME; a VMCS not yet
;   launched (a's vmx.launched clear) makes VMRESUME fail without effect, and the cold
;   path launches it, so the hot path carries no test of the launch state. Returns with
;   the flags "above" (CF and ZF clear: a VM exit clears RFLAGS, and nothing after it
;   here changes them) after a VM exit, with the guest registers saved back and EAX =
;   the low half of the TSC just after the exit. If the entry failed, CF or ZF is set as
;   VMLAUNCH/VMRESUME left it and EDX = 1 for VMfailInvalid, 2 for VMfailValid.

; Not the C calling convention: no register is kept (the caller is built without frame
; pointers, so not even RBP), and RBX comes back pointing at the vCPU again (after an
; exit it is RSP, which the exit's pushes leave at struct guest_regs); RBX is
; callee-saved, so the run loop can keep the vCPU there across its calls too. Every
; other register comes back changed (the caller, vmx_run, says so to the compiler), so
; the loop reloads what it still needs, a load where keeping it would cost a push and
; a pop per exit.

; The guest registers move with POP and PUSH, straight between the CPU and struct
; guest_regs (the first member of struct vcpu_arch): entry points RSP at the structure
; and pops it in member order; HOST_RSP is the address just past it, where the exit
; pushes the registers back in reverse order. The word past the structure (vcpu_arch's
; host_rsp) keeps the host's stack pointer meanwhile. Host interrupts are off here and
; NMI, #DF and #MC run on IST stacks, so nothing else pushes while RSP points into the
; vCPU.

bits 64
global vmx_enter
global vmx_exit_stub

; R_RAX ... R_R15 (offsets in struct guest_regs, arch/x86/guest_regs.h) and
; GUEST_REGS_SIZE, generated from the C definitions by the build.
%include "guest_regs_offsets.inc"

; POP and PUSH below follow the member order: a change to the structure must fail here.
%macro check_slot 2
%if %1 != %2 * 8
%error "struct guest_regs is not in the order vmx_entry.asm pops it"
%endif
%endmacro
check_slot R_RAX, 0
check_slot R_RBX, 1
check_slot R_RCX, 2
check_slot R_RDX, 3
check_slot R_RSI, 4
check_slot R_RDI, 5
check_slot R_RBP, 6
check_slot R_R8, 7
check_slot R_R9, 8
check_slot R_R10, 9
check_slot R_R11, 10
check_slot R_R12, 11
check_slot R_R13, 12
check_slot R_R14, 13
check_slot R_R15, 14
%if GUEST_REGS_SIZE != 15 * 8
%error "struct guest_regs holds more than the 15 registers vmx_entry.asm moves"
%endif

section .text
align 16
vmx_enter:
    mov [rbx + GUEST_REGS_SIZE], rsp
    mov rsp, rbx
    pop rax
    pop rbx
    pop rcx
    pop rdx
    pop rsi
    pop rdi
    pop rbp
    pop r8
    pop r9
    pop r10
    pop r11
    pop r12
    pop r13
    pop r14
    pop r15
    vmresume
    ; RSP is just past the guest registers, at a + GUEST_REGS_SIZE (host_rsp), and the
    ; guest registers are still loaded. CF: VMfailInvalid, which launching cannot mend.
    ; A VMCS never launched is launched now: VMRESUME refused it (VMfailValid, error 5)
    ; before looking at anything else. The launch flag is set before VMLAUNCH (MOV leaves
    ; the flags alone) and cleared if it fails.
    jc .invalid
    cmp byte [rsp + VCPU_VMX_LAUNCHED - GUEST_REGS_SIZE], 0
    jne .valid
    mov byte [rsp + VCPU_VMX_LAUNCHED - GUEST_REGS_SIZE], 1
    vmlaunch
    mov byte [rsp + VCPU_VMX_LAUNCHED - GUEST_REGS_SIZE], 0
    jc .invalid
.valid:
    mov edx, 2                      ; VMfailValid
    cmp edx, edx                    ; ZF: not "above", whatever CMP above left
    jmp .out
.invalid:
    mov edx, 1                      ; VMfailInvalid, CF still set
.out:
    ; RSP is at host_rsp; the flags stay as they are to the RET.
    lea rbx, [rsp - GUEST_REGS_SIZE]
    mov rsp, [rsp]
    ret

; HOST_RIP: the CPU arrives here on every VM exit with RSP = HOST_RSP, just past the
; vCPU's struct guest_regs.
align 16
vmx_exit_stub:
    push r15
    push r14
    push r13
    push r12
    push r11
    push r10
    push r9
    push r8
    push rbp
    push rdi
    push rsi
    push rdx
    push rcx
    push rbx
    push rax
    rdtsc                           ; the exit's time, as early as it can be read
    mov rbx, rsp                    ; the vCPU, for the caller
    mov rsp, [rsp + GUEST_REGS_SIZE]
    ret
