; The core's first instruction on an AP: the trampoline arrives in 64-bit mode on
; Keel's page tables with RSP = the top of the AP's own stack and RDI = its struct
; percpu. From here on everything is C.

bits 64
extern ap_main
global ap_entry64

section .text
ap_entry64:
    ; Nothing from the trampoline (or INIT state) should leak into C: DF, AC, IF clear.
    push 0
    popfq
    xor ebp, ebp                   ; null frame pointer: backtraces stop here
    call ap_main                   ; never returns
.halt:
    cli
    hlt
    jmp .halt

section .note.GNU-stack noalloc noexec nowrite progbits
