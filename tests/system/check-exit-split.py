"""The exit_split bench run against its plain twin (tests/system/bochs-bench.sh): per
reason, the parts Keel recorded plus its recording add up to the round trip the guest
measured, the hardware exit is one figure (Bochs: the same instructions every time),
and the handler's time is the one without the split.

usage: check-exit-split.py SPLIT_JSON PLAIN_JSON SPLIT_SERIAL_LOG (JSON from keel-stats)"""
import json
import re
import sys


def bench(path):
    return next(v for v in json.load(open(path))["vms"] if v["name"] == "bench")


def main(split_json, plain_json, log_path):
    vm, plain = bench(split_json), bench(plain_json)
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
    sys.exit(main(*sys.argv[1:4]))
