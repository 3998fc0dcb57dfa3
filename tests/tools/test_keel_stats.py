"""Tests of tools/keel-stats on serial logs recorded from real Bochs runs of Keel
(tests/tools/data/, see README there): the dumps are found and checked, the table,
CSV and JSON carry Keel's own figures, vCPUs merge, A/B comparison shows each reason's
change, plots are written, and broken input is refused with a clear error."""
import contextlib
import csv
import importlib.machinery
import importlib.util
import io
import json
import os
import shutil
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(HERE, "data")
BENCH = os.path.join(DATA, "bench-serial.log")
BENCH_B = os.path.join(DATA, "bench-n20000-serial.log")
PLATFORM = os.path.join(DATA, "platform-2cpu-serial.log")
SPLIT = os.path.join(DATA, "bench-split-serial.log")

_loader = importlib.machinery.SourceFileLoader("keel_stats", os.path.join(ROOT, "tools", "keel-stats"))
_spec = importlib.util.spec_from_loader("keel_stats", _loader)
ks = importlib.util.module_from_spec(_spec)
_loader.exec_module(ks)


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = ks.main(list(args))
    return rc, out.getvalue(), err.getvalue()


def keel_lines(path, kind="exit"):
    """The exit lines (or part lines) exactly as Keel printed them."""
    out = []
    with open(path, encoding="utf-8") as f:
        for text in f:
            at = text.find(ks.TAG)
            if at >= 0:
                obj = json.loads(text[at + len(ks.TAG):])
                if obj["type"] == kind:
                    out.append(obj)
    return out


class TempDir(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="keel-stats-test.")

    def tearDown(self):
        shutil.rmtree(self.tmp)


class Buckets(unittest.TestCase):
    def test_widths_match_keel(self):
        # Exact below 16, then 8 buckets per power of two (vmm/lib/histogram.h).
        self.assertEqual([ks.bucket_width(v) for v in (0, 15, 16, 30, 32, 60, 64, 15 << 28)],
                         [1, 1, 2, 2, 4, 4, 8, 1 << 28])


class ReadsKeelsFigures(TempDir):
    def test_percentiles_equal_keels(self):
        # Per vCPU, the tool's percentiles from the buckets are the ones Keel printed.
        for path in (BENCH, PLATFORM):
            vms = ks.read_run(path)
            lines = keel_lines(path)
            self.assertTrue(lines)
            names = {vm.id: name for name, vm in vms.items()}
            for line in lines:
                e = vms[names[line["vm"]]].exits[(line["vcpu"], line["reason"])]
                for key, p in ks.PERCENTILES:
                    self.assertEqual(e.percentile(p), line[key], (path, line["reason"], key))
                self.assertEqual((e.count, e.timed, e.min, e.max), (line["count"], line["timed"], line["min"],
                                                                   line["max"]))

    def test_table(self):
        rc, out, err = run(BENCH)
        self.assertEqual(rc, 0, err)
        self.assertIn("VM bench (id 0, 1 vCPU, dump 1 on stop)", out)
        rows = {l.split()[0]: l.split() for l in out.splitlines()[2:] if l.strip()}
        exits = {l["reason"]: l for l in keel_lines(BENCH)}
        for reason in ("CPUID", "VMCALL", "IO_INSTRUCTION", "LOAD"):
            cols = dict(zip(ks.COLUMNS, rows[reason]))
            for key in ("count", "min", "p50", "p99", "max", "total"):
                self.assertEqual(int(cols[key]), exits[reason][key], (reason, key))

    def test_merges_vcpus(self):
        vms = ks.read_run(PLATFORM)
        multi = [vm for vm in vms.values() if vm.vcpus > 1]
        self.assertTrue(multi, "the platform log has VMs with several vCPUs")
        for vm in multi:
            for e in vm.merged():
                parts = [x for (v, r), x in vm.exits.items() if r == e.reason]
                self.assertEqual(e.count, sum(p.count for p in parts))
                self.assertEqual(sum(e.buckets.values()), sum(p.timed for p in parts))
                if e.timed:
                    self.assertEqual(e.min, min(p.min for p in parts if p.timed))
                    self.assertEqual(e.max, max(p.max for p in parts if p.timed))

    def test_csv_and_json(self):
        c, j = os.path.join(self.tmp, "s.csv"), os.path.join(self.tmp, "s.json")
        rc, _, err = run(PLATFORM, "--quiet", "--csv", c, "--json", j)
        self.assertEqual(rc, 0, err)
        with open(c, newline="") as f:
            rows = list(csv.DictReader(f))
        vms = ks.read_run(PLATFORM)
        self.assertEqual(len([r for r in rows if r["vcpu"] != "all"]), sum(len(vm.exits) for vm in vms.values()))
        # The saved JSON reads back to the same table.
        self.assertEqual(run(PLATFORM)[1], run(j)[1])
        with open(j) as f:
            doc = json.load(f)
        self.assertEqual({v["name"] for v in doc["vms"]}, set(vms))

    def test_compare(self):
        rc, out, err = run(BENCH, "--compare", BENCH_B)
        self.assertEqual(rc, 0, err)
        self.assertIn("VM bench: A -> B", out)
        row = next(l.split() for l in out.splitlines() if l.split()[:1] == ["CPUID"])
        a, b = ks.read_run(BENCH)["bench"], ks.read_run(BENCH_B)["bench"]
        ca = next(e for e in a.merged() if e.reason == "CPUID").count
        cb = next(e for e in b.merged() if e.reason == "CPUID").count
        self.assertEqual(row[1:4], [str(ca), str(cb), "%+.1f%%" % (100.0 * (cb - ca) / ca)])

    def test_plots(self):
        d = os.path.join(self.tmp, "plots")
        rc, _, err = run(BENCH, "--quiet", "--plot", d)
        self.assertEqual(rc, 0, err)
        names = sorted(os.listdir(d))
        for stem in ("bench-CPUID", "bench-VMCALL", "bench-IO_INSTRUCTION", "bench-summary"):
            for ext in ("svg", "png"):
                self.assertIn("%s.%s" % (stem, ext), names)
        with open(os.path.join(d, "bench-summary.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        with open(os.path.join(d, "bench-summary.svg")) as f:
            self.assertIn("<svg", f.read())


class ExitSplit(TempDir):
    """A VM with exit_split on: each reason's other parts of the round trip."""

    def test_parts_equal_keels(self):
        vm = ks.read_run(SPLIT)["bench"]
        self.assertTrue(vm.exit_split)
        lines = keel_lines(SPLIT, "part")
        self.assertEqual({l["part"] for l in lines}, {"guest", "hw_exit"})
        for line in lines:
            e = vm.parts[(line["vcpu"], line["reason"], line["part"])]
            self.assertEqual((e.count, e.timed, e.total, e.min, e.max),
                             (line["timed"], line["timed"], line["total"], line["min"], line["max"]))
            for key, p in ks.PERCENTILES:
                self.assertEqual(e.percentile(p), line[key], (line["reason"], line["part"], key))
        # The parts stay out of the handler's figures.
        for line in keel_lines(SPLIT):
            self.assertEqual(vm.exits[(line["vcpu"], line["reason"])].total, line["total"])

    def test_split_adds_up_to_the_guests_round_trip(self):
        # The guest timed each batch itself (bench: cpuid ... per_exit=N): the parts,
        # the handler and Keel's recording add up to that, entry to entry.
        with open(SPLIT) as f:
            log = f.read()
        rows = {r["reason"]: r for r in ks.read_run(SPLIT)["bench"].split_rows()}
        for reason, test in (("CPUID", "cpuid"), ("VMCALL", "vmcall")):
            per_exit = int(log.split("bench: %s N=" % test)[1].split("per_exit=")[1].split()[0])
            self.assertAlmostEqual(rows[reason]["round_trip"], per_exit, delta=2)
            self.assertEqual(rows[reason]["hw_exit"], 16.0)  # Bochs: the same instructions every time

    def test_table_and_saved_json(self):
        rc, out, err = run(SPLIT)
        self.assertEqual(rc, 0, err)
        self.assertIn("exit_split: mean round trip", out)
        split = out.split("exit_split:")[1].splitlines()
        self.assertEqual(split[1].split(), ks.SPLIT_COLUMNS)
        self.assertTrue(any(l.split()[:1] == ["CPUID"] for l in split))
        j = os.path.join(self.tmp, "s.json")
        self.assertEqual(run(SPLIT, "--quiet", "--json", j)[0], 0)
        self.assertEqual(run(j)[1], out)
        # A VM without the split has no second table.
        self.assertNotIn("exit_split:", run(BENCH)[1])

    def test_split_chart(self):
        d = os.path.join(self.tmp, "plots")
        rc, _, err = run(SPLIT, "--quiet", "--plot", d)
        self.assertEqual(rc, 0, err)
        with open(os.path.join(d, "bench-split.svg")) as f:
            self.assertIn("<svg", f.read())
        self.assertTrue(os.path.exists(os.path.join(d, "bench-split.png")))
        rc, _, err = run(BENCH, "--quiet", "--plot", d + "2")
        self.assertFalse(os.path.exists(os.path.join(d + "2", "bench-split.svg")))

    def test_lost_part_line(self):
        with open(SPLIT) as f:
            lines = [l for l in f if ks.TAG in l]
        at = next(i for i, l in enumerate(lines) if '"type":"part"' in l)
        del lines[at]
        p = os.path.join(self.tmp, "log")
        with open(p, "w") as f:
            f.write("".join(lines))
        rc, _, err = run(p)
        self.assertEqual(rc, 1)
        self.assertIn("lines lost", err)


class RefusesBrokenInput(TempDir):
    def write(self, text):
        p = os.path.join(self.tmp, "log")
        with open(p, "w") as f:
            f.write(text)
        return p

    def bench_lines(self):
        with open(BENCH) as f:
            return [l for l in f if ks.TAG in l]

    def test_lost_line(self):
        lines = self.bench_lines()
        del lines[3]
        rc, _, err = run(self.write("".join(lines)))
        self.assertEqual(rc, 1)
        self.assertIn("lines lost", err)

    def test_cut_line(self):
        lines = self.bench_lines()
        lines[2] = lines[2][:60] + "\n"
        rc, _, err = run(self.write("".join(lines)))
        self.assertEqual(rc, 1)
        self.assertIn("not a JSON object", err)

    def test_no_dump(self):
        rc, _, err = run(self.write("[cpu0] hello: nothing here\n"))
        self.assertEqual(rc, 1)
        self.assertIn("no complete KEEL-STATS dump", err)

    def test_unknown_vm(self):
        rc, _, err = run(BENCH, "--vm", "nope")
        self.assertEqual(rc, 1)
        self.assertIn("no VM named nope", err)


if __name__ == "__main__":
    unittest.main()
