# ---- libFuzzer harnesses (tests/fuzz/) ---------------------------------------------
# Included from the Makefile. Each tests/fuzz/fuzz_NAME.c links the production sources
# named on its "SOURCES:" line (as tests/unit does) with Debian's clang and
# -fsanitize=fuzzer,address,undefined into build/fuzz/fuzz_NAME.
#
#   make fuzz                  each target for FUZZ_SECONDS (default 60), one at a time
#   make fuzz FUZZ_TARGETS=acpi FUZZ_SECONDS=600
#   make fuzz FUZZ_RUNS=10000000 FUZZ_SECONDS=0   a fixed number of executions each
#   make fuzz-smoke            a few seconds each (FUZZ_SMOKE_SECONDS), as make test does
#
# Seeds come from tests/fuzz/corpus/NAME/ (read only); what the fuzzer adds goes to
# build/fuzz/corpus/NAME/, crashing inputs to build/fuzz/artifacts/NAME/.

FUZZ_CC       := clang
FUZZ_SECONDS  ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_RUNS     ?=
FUZZ_CFLAGS   := -std=gnu11 -O1 -g $(WARN) -I. -DKEEL_HOST_TEST \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
	-fsanitize-coverage-ignorelist=tests/fuzz/coverage-ignore.txt
FUZZ_SRCS     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES    := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
FUZZ_BINS     := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)
FUZZ_TARGETS  ?= $(FUZZ_NAMES)

.PHONY: fuzz fuzz-bins fuzz-smoke fuzz-seeds

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/coverage-ignore.txt $$(call unit_sources,tests/fuzz/fuzz_%.c) $(wildcard tests/fuzz/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(call unit_sources,$<)

fuzz-bins: $(FUZZ_BINS)

fuzz: fuzz-bins
	@for t in $(FUZZ_TARGETS); do \
		tests/fuzz/run.sh $$t $(FUZZ_SECONDS) $(FUZZ_RUNS) || exit 1; \
	done

fuzz-smoke: fuzz-bins
	@for t in $(FUZZ_TARGETS); do \
		tests/fuzz/run.sh $$t $(FUZZ_SMOKE_SECONDS) || exit 1; \
	done
# Regenerates the builder-made seeds into build/fuzz/seeds/ (copy what is worth keeping
# into tests/fuzz/corpus/; the shipped configs and test guests were added by hand).
$(BUILD)/fuzz/make_seeds: tests/fuzz/make_seeds.c tests/unit/acpi_blobs.c tests/unit/image_builders.c $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O1 -g $(WARN) -I. -DKEEL_HOST_TEST -o $@ $(filter %.c,$^)

fuzz-seeds: $(BUILD)/fuzz/make_seeds
	mkdir -p $(BUILD)/fuzz/seeds/acpi $(BUILD)/fuzz/seeds/guest_image $(BUILD)/fuzz/seeds/hypercall
	$(BUILD)/fuzz/make_seeds $(BUILD)/fuzz/seeds
# ---- end of the fuzzing block ------------------------------------------------------
