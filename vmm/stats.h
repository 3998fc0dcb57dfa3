/* A VM's exit statistics as JSON Lines on Keel's console (docs in README.md, section
 * "Exit statistics"): every line starts with STATS_LINE_TAG, so a serial log can be
 * grepped for them, and holds one JSON object small enough for one console line. A dump
 * is a "vm" line, per vCPU a "vcpu" line, per vCPU and exit reason with exits an "exit"
 * line (count, total, min, p50, p90, p99, p99.9, max in TSC ticks) and "hist" lines
 * (its non-empty histogram buckets as [lower bound, count] pairs, split over as many
 * lines as needed), with exit_split on a "part" line and "hist" lines for each other
 * part of the round trip, then an "end" line with the number of lines before it.
 *
 * For the operator console and the STATS hypercall: vm_stats_dump prints a VM's
 * statistics, vm_stats_reset starts them afresh. Both may be called on any CPU while
 * the VM runs; a dump of a running VM is then a snapshot taken vCPU by vCPU, not an
 * instant. */
#ifndef KEEL_VMM_STATS_H
#define KEEL_VMM_STATS_H

#include "vmm/vm.h"

#define STATS_LINE_TAG "KEEL-STATS "
/* Room for one object: a console line less the tag. */
#define STATS_JSON_MAX 240

/* Why a dump was made: its "why" field. */
#define STATS_WHY_STOP "stop"
#define STATS_WHY_HYPERCALL "hypercall"
#define STATS_WHY_MONITOR "monitor"

/* The parts of an exit's round trip besides the handler's time, with exit_split on: a
 * "part" line and its "hist" lines each, after the reason's "exit" line. */
#define STATS_PART_GUEST "guest"     /* Keel's entry to the exit: hardware entry and guest */
#define STATS_PART_HW_EXIT "hw_exit" /* the exit to Keel's first instruction on it */

/* Prints the VM's statistics on the console; returns the number of lines. */
uint32_t vm_stats_dump(struct vm *vm, const char *why);

/* Clears the VM's exit counts and durations (not its guest and Keel time totals, which
 * its stop report gives for its whole life). A vCPU clears its own before its next
 * entry, so no recording races the reset; a stopped VM's are cleared at once. */
void vm_stats_reset(struct vm *vm);

/* The writer behind vm_stats_dump, for host tests: each line (without the tag and the
 * newline) goes to emit. Returns the number of lines. */
struct stats_json_out {
    const char *(*reason_name)(uint32_t raw);
    uint64_t tsc_hz;
    const char *why;
    uint32_t seq;  /* the VM's dump number, from 1 */
    bool durations; /* the histograms were recorded (not a STATS=0 build) */
    void (*emit)(void *ctx, const char *json);
    void *ctx;
};
uint32_t stats_json_write(const struct vm *vm, const struct stats_json_out *out);

#endif
