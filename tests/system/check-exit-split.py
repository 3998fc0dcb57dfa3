"""Checks of exit_split runs, on JSON written by tools/keel-stats.

  check-exit-split.py bench SPLIT_JSON PLAIN_JSON SPLIT_SERIAL_LOG
      The bench guest with the split against its plain twin (tests/system/bochs-bench.sh):
      per reason, the parts Keel recorded plus its recording add up to the round trip
      the guest measured, the hardware exit is one figure (Bochs: the same instructions
      every time), and the handler's time is the one without the split.
  check-exit-split.py family SPLIT_JSON
      The benchmark family with the split (tests/system/bochs-bench-vmexit.sh): every
      exit reason of every vCPU has both parts, each timing every exit the handler's
      figures time, and the hardware exit is the exit stub's length (with two CPUs
      Bochs's clock moves in steps, so that is a range)."""
import json
import re
import sys

HW_EXIT_SMP_MAX = 32


def bench_vm(path):
    return next(v for v in json.load(open(path))["vms"] if v["name"] == "bench")


def family(split_json):
    vm = json.load(open(split_json))["vms"][0]
    if not vm["durations"]:
        print("a STATS=0 build: nothing split")
        return 0
    parts = {(p["vcpu"], p["reason"], p["part"]): p for p in vm["parts"]}
    bad, hw = [], set()
    exits = [e for e in vm["exits"] if e["reason"] != "LOAD" and e["timed"]]
    for e in exits:
        for part in ("guest", "hw_exit"):
            p = parts.get((e["vcpu"], e["reason"], part))
            if not p:
                bad.append("vCPU %d %s: no %s part" % (e["vcpu"], e["reason"], part))
            elif p["timed"] != e["timed"]:
                bad.append("vCPU %d %s: %s part times %d exits, the handler %d" %
                           (e["vcpu"], e["reason"], part, p["timed"], e["timed"]))
            elif part == "hw_exit":
                hw.update((p["min"], p["max"]))
    # Keel's exit stub is 16 instructions. Bochs with two CPUs runs them by turns in
    # quanta, so the same instructions read as 15 or 20 ticks; anything well above that
    # would be Keel doing work between the exit and its first clock reading.
    if hw and (min(hw) < 1 or max(hw) > HW_EXIT_SMP_MAX):
        bad.append("the hardware exit took %d..%d ticks, not the exit stub's %d or so" %
                   (min(hw), max(hw), 16))
    if not exits:
        bad.append("no timed exits")
    if bad:
        print("; ".join(bad))
        return 1
    print("%d reasons over %d vCPUs, every exit split; hw_exit %d..%d ticks" %
          (len({e["reason"] for e in exits}), vm["vcpus"], min(hw), max(hw)))
    return 0


def bench(split_json, plain_json, log_path):
    vm, plain = bench_vm(split_json), bench_vm(plain_json)
    if not vm["durations"]:
        print("a STATS=0 build: nothing split")
        return 0
    log = open(log_path, errors="replace").read()
    guest = {m[0]: int(m[1]) for m in re.findall(r"bench: (\S+) N=\d+ total=\d+ per_exit=(\d+)", log)}
    split = {r["reason"]: r for r in vm["split"]}
    parts = {(p["reason"], p["part"]): p for p in vm["parts"]}
    handler = {r["reason"]: r for r in vm["merged"]}
    plain_handler = {r["reason"]: r for r in plain["merged"]}
    bad, said = [], []
    for reason, test in (("CPUID", "cpuid"), ("VMCALL", "vmcall")):
        r = split.get(reason)
        if not r or test not in guest:
            bad.append("no split figures or guest figure for " + reason)
            continue
        if abs(r["round_trip"] - guest[test]) > 2:
            bad.append("%s: guest %.1f + hw_exit %.1f + handler %.1f + recording %.1f = %.1f, but the guest "
                       "measured %d per round trip" % (reason, r["guest"], r["hw_exit"], r["handler"],
                                                       r["recording"], r["round_trip"], guest[test]))
        hw = parts[(reason, "hw_exit")]
        if hw["min"] != hw["max"]:
            bad.append("%s: the hardware exit took %d..%d ticks, not one figure" % (reason, hw["min"], hw["max"]))
        if handler[reason]["min"] != plain_handler[reason]["min"]:
            bad.append("%s: handler min %d with exit_split, %d without" %
                       (reason, handler[reason]["min"], plain_handler[reason]["min"]))
        said.append("%s %d = guest %.1f + hw_exit %d + handler %.1f + recording %.1f" %
                    (reason, guest[test], r["guest"], hw["min"], r["handler"], r["recording"]))
    if bad:
        print("; ".join(bad))
        return 1
    print("; ".join(said))
    return 0


if __name__ == "__main__":
    modes = {"bench": (bench, 3), "family": (family, 1)}
    if len(sys.argv) < 2 or sys.argv[1] not in modes or len(sys.argv) != 2 + modes[sys.argv[1]][1]:
        sys.exit(__doc__)
    fn, _ = modes[sys.argv[1]]
    sys.exit(fn(*sys.argv[2:]))
