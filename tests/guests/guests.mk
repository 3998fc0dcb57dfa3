# Test guests run by Keel (see tests/guests/README.md). Included from the top Makefile;
# everything here is prefixed GUEST_ to stay out of the core build's way. Uses BUILD, CC,
# LD, NASM and WARN from the top Makefile, whose `-include` of build/**/*.d also picks up
# the dependency files made here.
# Needs only gcc (no gcc-multilib: nothing links against a 32-bit libc or libgcc), ld
# and nasm.

GUEST_DIR     := tests/guests
GUEST_OUT     := $(BUILD)/guests
GUEST_OBJDIR  := $(GUEST_OUT)/obj

GUEST_CFLAGS  := -m32 -march=i686 -std=gnu11 -O2 $(WARN) -ffreestanding -fno-pic -fno-pie \
	-nostdlib -fno-stack-protector -mgeneral-regs-only -fno-asynchronous-unwind-tables \
	-fcf-protection=none -nostdinc -isystem $(shell $(CC) -print-file-name=include) \
	-I$(GUEST_DIR)/runtime -I.
GUEST_LDFLAGS := -m elf_i386 -nostdlib -static -z max-page-size=0x1000 -z noexecstack \
	--build-id=none -T $(GUEST_DIR)/guest.ld

GUEST_RT_C    := $(sort $(wildcard $(GUEST_DIR)/runtime/*.c))
GUEST_RT_ASM  := $(sort $(wildcard $(GUEST_DIR)/runtime/*.asm))
GUEST_RT_OBJS := $(GUEST_RT_C:$(GUEST_DIR)/%.c=$(GUEST_OBJDIR)/%.o) \
	$(GUEST_RT_ASM:$(GUEST_DIR)/%.asm=$(GUEST_OBJDIR)/%.asm.o)

# Multiboot guests: tests/guests/NAME.c -> build/guests/NAME.elf ('_' in NAME becomes '-').
GUEST_MB_SRCS := hello.c cpuid_msr_io.c spinner.c bench.c attacker.c fpu_isolation.c storm.c chatty.c virtio_blk.c echo.c
GUEST_MB_ELFS := $(foreach s,$(GUEST_MB_SRCS),$(GUEST_OUT)/$(subst _,-,$(s:.c=)).elf)

GUEST_IMAGES  := $(GUEST_MB_ELFS) $(GUEST_OUT)/platform.elf $(GUEST_OUT)/real.bin $(GUEST_OUT)/hello64.elf $(GUEST_OUT)/state-leak.elf \
	$(GUEST_OUT)/vmexit.elf

.PHONY: guests
guests: $(GUEST_IMAGES)

$(GUEST_OBJDIR)/%.o: $(GUEST_DIR)/%.c
	@mkdir -p $(dir $@)
	@echo "  CC(g32) $<"
	@$(CC) $(GUEST_CFLAGS) -MMD -MP -c $< -o $@

$(GUEST_OBJDIR)/%.asm.o: $(GUEST_DIR)/%.asm
	@mkdir -p $(dir $@)
	@echo "  NASM    $<"
	@$(NASM) -f elf32 -MD $@.d -o $@ $<

# One link rule per guest, since the image name differs from the source name.
define GUEST_LINK
$(GUEST_OUT)/$(subst _,-,$(1)).elf: $(GUEST_OBJDIR)/$(1).o $(GUEST_RT_OBJS) $(GUEST_DIR)/guest.ld
	@echo "  LD(g32) $$@"
	@$(LD) $(GUEST_LDFLAGS) -o $$@ $(GUEST_OBJDIR)/$(1).o $(GUEST_RT_OBJS)
endef
$(foreach s,$(GUEST_MB_SRCS),$(eval $(call GUEST_LINK,$(s:.c=))))

# platform: a Multiboot guest of several files (tests/guests/platform/), with its AP
# trampoline in NASM, on the same runtime and link.
GUEST_PLAT_C    := $(sort $(wildcard $(GUEST_DIR)/platform/*.c))
GUEST_PLAT_OBJS := $(GUEST_PLAT_C:$(GUEST_DIR)/%.c=$(GUEST_OBJDIR)/%.o) \
	$(GUEST_OBJDIR)/platform/trampoline.asm.o
$(GUEST_OUT)/platform.elf: $(GUEST_PLAT_OBJS) $(GUEST_RT_OBJS) $(GUEST_DIR)/guest.ld
	@echo "  LD(g32) $@"
	@$(LD) $(GUEST_LDFLAGS) -o $@ $(GUEST_PLAT_OBJS) $(GUEST_RT_OBJS)

# The real-mode guest is a flat 512-byte boot sector (org 0x7C00), not a Multiboot kernel.
$(GUEST_OUT)/real.bin: $(GUEST_DIR)/real.asm
	@mkdir -p $(dir $@)
	@echo "  NASM    $<"
	@$(NASM) -f bin -o $@ $<

# The ELF64 guest: hello64/ plus the width-neutral part of the runtime (UART, printf,
# string routines), built again for 64-bit. The rest of the runtime (Multiboot entry,
# GDT, IDT and fault handling) is 32-bit only. Objects go to obj64/, apart from the
# 32-bit ones in obj/, mirroring the source tree there.
GUEST64_DIR     := $(GUEST_DIR)/hello64
GUEST64_OBJDIR  := $(GUEST_OUT)/obj64
GUEST64_CFLAGS  := -m64 -std=gnu11 -O2 $(WARN) -ffreestanding -fno-pic -fno-pie -static -nostdlib \
	-fno-stack-protector -mno-red-zone -mgeneral-regs-only -fno-asynchronous-unwind-tables \
	-fcf-protection=none -nostdinc -isystem $(shell $(CC) -print-file-name=include) \
	-I$(GUEST_DIR)/runtime -I.
GUEST64_LDFLAGS := -m elf_x86_64 -nostdlib -static -z max-page-size=0x1000 -z noexecstack \
	--build-id=none -T $(GUEST64_DIR)/hello64.ld
GUEST64_SRCS    := $(sort $(wildcard $(GUEST64_DIR)/*.c)) \
	$(addprefix $(GUEST_DIR)/runtime/,uart.c printf.c string.c)
GUEST64_OBJS    := $(GUEST64_SRCS:$(GUEST_DIR)/%.c=$(GUEST64_OBJDIR)/%.o) \
	$(GUEST64_OBJDIR)/hello64/entry.asm.o

$(GUEST64_OBJDIR)/%.o: $(GUEST_DIR)/%.c
	@mkdir -p $(dir $@)
	@echo "  CC(g64) $<"
	@$(CC) $(GUEST64_CFLAGS) -MMD -MP -c $< -o $@

$(GUEST64_OBJDIR)/%.asm.o: $(GUEST_DIR)/%.asm
	@mkdir -p $(dir $@)
	@echo "  NASM    $<"
	@$(NASM) -f elf64 -MD $@.d -o $@ $<

$(GUEST_OUT)/hello64.elf: $(GUEST64_OBJS) $(GUEST64_DIR)/hello64.ld
	@echo "  LD(g64) $@"
	@$(LD) $(GUEST64_LDFLAGS) -o $@ $(GUEST64_OBJS)

# state-leak: a second ELF64 guest, one file with its own entry, on the same 64-bit
# runtime and the same 1 MiB link as hello64.
GUEST_LEAK_OBJS := $(GUEST64_OBJDIR)/state_leak.o $(filter-out $(GUEST64_OBJDIR)/hello64/%,$(GUEST64_OBJS))
$(GUEST_OUT)/state-leak.elf: $(GUEST_LEAK_OBJS) $(GUEST64_DIR)/hello64.ld
	@echo "  LD(g64) $@"
	@$(LD) $(GUEST64_LDFLAGS) -o $@ $(GUEST_LEAK_OBJS)

# vmexit: the benchmark family (tests/guests/vmexit/), 64-bit code on the width-neutral
# part of the runtime. Linked as x86-64 at 1 MiB, then converted to ELF32, which every
# Multiboot loader (Keel, GRUB, QEMU's -kernel) takes; its 32-bit entry enters long mode.
GUEST_VMEXIT_SRCS := $(sort $(wildcard $(GUEST_DIR)/vmexit/*.c)) \
	$(addprefix $(GUEST_DIR)/runtime/,uart.c printf.c string.c multiboot.c cmdline.c)
GUEST_VMEXIT_OBJS := $(GUEST_VMEXIT_SRCS:$(GUEST_DIR)/%.c=$(GUEST64_OBJDIR)/%.o) \
	$(GUEST64_OBJDIR)/vmexit/entry.asm.o
$(GUEST_OUT)/vmexit.elf: $(GUEST_VMEXIT_OBJS) $(GUEST_DIR)/vmexit/vmexit.ld
	@echo "  LD(g64) $@"
	@$(LD) -m elf_x86_64 -nostdlib -static -z max-page-size=0x1000 -z noexecstack --build-id=none \
		-T $(GUEST_DIR)/vmexit/vmexit.ld -o $@.x86-64 $(GUEST_VMEXIT_OBJS)
	@$(OBJCOPY) -O elf32-i386 $@.x86-64 $@
