; The AP trampoline (ap_trampoline.asm, assembled flat by the Makefile) as data in the
; core image; smp.c copies it below 1 MiB, where a SIPI can reach it.

section .rodata align=16
global ap_trampoline_start
global ap_trampoline_end
ap_trampoline_start:
    incbin "ap_trampoline.bin"
ap_trampoline_end:

section .note.GNU-stack noalloc noexec nowrite progbits
