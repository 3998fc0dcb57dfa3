; The core image (build/keel-core.elf, keel.elf without debug info) carried inside keel.efi, so one file on the ESP is
; the whole hypervisor. The loader parses it as an ELF file at run time.
section .rodata align=16

global keel_core_blob_start
global keel_core_blob_end

keel_core_blob_start:
    incbin "keel-core.elf"
keel_core_blob_end:

section .note.GNU-stack noalloc noexec nowrite progbits
