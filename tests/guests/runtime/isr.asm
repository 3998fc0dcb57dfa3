; Exception entry stubs (vectors 0-31) and the recovery-point primitive fault_arm.
; Every stub funnels into fault_dispatch (fault.c); when that returns, the fault was
; expected and execution resumes at the point saved by the last fault_arm.

section .text
extern fault_dispatch
extern fault_ctx                 ; struct fault_ctx { ebx, esi, edi, ebp, esp, eip }
extern fault_expect              ; int: armed vector, or -1
global fault_arm
global isr_stub_table

; Vectors for which the CPU pushes an error code.
%define HAS_ERR(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

%macro ISR 1
isr_%1:
%if HAS_ERR(%1) == 0
    push dword 0
%endif
    push dword %1
    jmp isr_common
%endmacro

%assign v 0
%rep 32
ISR v
%assign v v+1
%endrep

isr_common:
    pushad                       ; frame: edi esi ebp esp ebx edx ecx eax vector error eip cs eflags
    cld
    push esp
    call fault_dispatch          ; returns only for an expected fault; EAX = vector
    add esp, 4
    ; Abandon the exception frame and "return" from fault_arm a second time.
    mov ebx, [fault_ctx + 0]
    mov esi, [fault_ctx + 4]
    mov edi, [fault_ctx + 8]
    mov ebp, [fault_ctx + 12]
    mov esp, [fault_ctx + 16]
    jmp dword [fault_ctx + 20]

; int fault_arm(int vector): like setjmp. Returns -1 now; returns `vector` again later
; if that exception fires before fault_disarm().
fault_arm:
    mov eax, [esp + 4]
    mov [fault_ctx + 0], ebx
    mov [fault_ctx + 4], esi
    mov [fault_ctx + 8], edi
    mov [fault_ctx + 12], ebp
    lea ecx, [esp + 4]           ; ESP as the caller sees it after the return
    mov [fault_ctx + 16], ecx
    mov ecx, [esp]
    mov [fault_ctx + 20], ecx
    mov [fault_expect], eax      ; armed only once the context is complete
    mov eax, -1
    ret

section .rodata
align 4
isr_stub_table:
%assign v 0
%rep 32
    dd isr_ %+ v
%assign v v+1
%endrep
