; real: a 16-bit real-mode guest. A flat binary loaded at 0x7C00 (and a valid boot
; sector, so a BIOS can run it too). Prints one line on COM1 by polling the UART
; ports, then leaves through the debug-exit port 0xF4 with code 0.

bits 16
org 0x7C00

COM1        equ 0x3F8
LSR         equ COM1 + 5
LSR_THRE    equ 0x20
LSR_TEMT    equ 0x40
EXIT_PORT   equ 0xF4
SPIN_LIMIT  equ 0xFFFF            ; bounded polls: a missing UART must not hang us

start:
    ; Whether we were entered at 0000:7C00 or 07C0:0000, continue at 0000:7C00+x.
    jmp 0x0000:.flat
.flat:
    cli
    cld
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00

    ; 115200 8N1, interrupts off.
    mov dx, COM1 + 1
    xor al, al
    out dx, al                    ; IER = 0
    mov dx, COM1 + 3
    mov al, 0x80
    out dx, al                    ; LCR.DLAB = 1
    mov dx, COM1
    mov al, 1
    out dx, al                    ; divisor low = 1
    mov dx, COM1 + 1
    xor al, al
    out dx, al                    ; divisor high = 0
    mov dx, COM1 + 3
    mov al, 0x03
    out dx, al                    ; 8N1, DLAB = 0

    mov si, message
.next:
    lodsb
    test al, al
    jz .sent
    mov bl, al
    mov ah, LSR_THRE
    call wait_lsr
    mov al, bl
    mov dx, COM1
    out dx, al
    jmp .next
.sent:
    mov ah, LSR_TEMT
    call wait_lsr

    xor eax, eax                  ; exit code 0: the emulator reports (0 << 1) | 1
    out EXIT_PORT, eax
.halt:                            ; only reached if the exit port did nothing
    hlt
    jmp .halt

; Waits until LSR has any bit of AH set, or SPIN_LIMIT polls have passed.
wait_lsr:
    mov cx, SPIN_LIMIT
    mov dx, LSR
.poll:
    in al, dx
    test al, ah
    jnz .ready
    loop .poll
.ready:
    ret

message:
    db "real: Hello from real mode", 10, 0

    times 510 - ($ - $$) db 0
    dw 0xAA55
