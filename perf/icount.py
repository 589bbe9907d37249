#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The hot-path regression gate: instructions per unit of work, counted by
valgrind, against the committed baselines in perf/icount_baseline.json.

    perf/icount.py [--build build] [--update "why"] [--tolerance 0.10]

What is counted (docs/benchmarks.md, "Instruction counts"):
  writer_record   perf/icount writer: xr_writer_reserve + commit of a
                  64-byte record, a publish every 64 records
  reader_record   perf/icount reader: xr_reader_read of a ready batch of
                  64 + xr_batch_release, per record
  engine_record   perf/icount engine: one engine turn per player (a grid
                  game's step, the built-in policy, the record built in the
                  ring), per record
  builder_record  xr_exp_build of a 20x20 grid record (5,376 bytes) and the
                  copy of its observation and mask into the slots it names
  memcpy_record   memcpy of the same 5,376 bytes: the bound the builder is
                  held to, in the same run (DESIGN.md: a record costs little
                  more than writing its bytes): builder / memcpy must stay
                  under BUILDER_BOUND, whatever the baselines
  python_batch    a batch of 64 read through Python from a running engine:
                  read(), the obs and reward views, release()

The C parts count only their measured loops (callgrind, collection toggled
around them). The Python part counts two whole runs of the interpreter
(cachegrind), one reading 2,000 more batches than the other, and divides
the difference by 2,000: start-up and warm-up cancel.

Instruction counts depend on the compiler and the build's flags, on the CPU
(glibc picks its memcpy for it), glibc and valgrind; not on the machine's
load, so the gate holds on a shared VM where times do not. The baselines name
what they were taken with (CPU model, glibc, valgrind, compiler, build type,
LTO); anything else is compared with nothing (exit 77, skipped), and says so.
Fails (exit 1) when a figure is more than --tolerance above its baseline;
one more than that below it passes, with a word to update the baseline.
--update "why" writes the figures of this run as the new baselines, with
the reason (commit it, saying why the hot path got dearer or cheaper).
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BASELINE = os.path.join(HERE, "icount_baseline.json")

PY_BATCHES = (200, 2200)

BUILDER_BOUND = 2.0

PY_READER = r"""
import sys
import xring
name, k = sys.argv[1], int(sys.argv[2])
e = xring.attach(name, timeout=10)
r = e.reader(batch=64, min_batch=64, max_wait=5)
for _ in range(20):                     # warm: the ring full behind us
    r.read(timeout=5).release()
for _ in range(k):
    b = r.read(timeout=5)
    if b is None or len(b) != 64:
        sys.exit("icount: a batch of %s records, not 64" % (None if b is None else len(b)))
    obs, reward = b.obs, b.reward
    b.release()
"""


def build_facts(build):
    """What the counts depend on: the compiler and the build's flags."""
    cache = {}
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        for line in f:
            m = re.match(r"^([A-Za-z_]+):[A-Z]+=(.*)$", line.strip())
            if m:
                cache[m.group(1)] = m.group(2)
    cc = cache.get("CMAKE_C_COMPILER", "cc")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    # glibc picks its memcpy and friends for the CPU, and valgrind counts
    # what runs: both are part of what a count means.
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    vg = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu,
        "glibc": os.confstr("CS_GNU_LIBC_VERSION") or "",
        "valgrind": vg,
        "compiler": version.splitlines()[0] if version else cc,
        "build_type": cache.get("CMAKE_BUILD_TYPE", ""),
        "lto": cache.get("XRING_LTO", "ON"),
        "sanitizers": ",".join(k for k in ("XRING_ASAN", "XRING_UBSAN", "XRING_TSAN")
                               if cache.get(k, "OFF") == "ON"),
    }


def c_parts(build, work):
    """Per-unit instructions of perf/icount's parts, under callgrind."""
    out = os.path.join(work, "cg.out")
    p = subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no",
                        "--callgrind-out-file=" + out, os.path.join(build, "perf", "icount")],
                       capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        sys.exit("icount: perf/icount failed under callgrind:\n" + p.stdout + p.stderr)
    units = {}
    for line in p.stdout.splitlines():
        part, n = line.split()
        units[part] = int(n)
    counts = {}
    for path in glob.glob(out + "*"):
        desc, total = None, None
        with open(path) as f:
            for line in f:
                if line.startswith("desc: Trigger: Client Request: "):
                    desc = line.split(": ", 2)[2].strip().split(":")[-1].strip()
                elif line.startswith(("summary:", "totals:")):
                    total = int(line.split()[1])
        if desc in units and total is not None:
            counts[desc] = total
    missing = set(units) - set(counts)
    if missing:
        sys.exit("icount: no callgrind dump for " + ", ".join(sorted(missing)))
    return {f"{part}_record": counts[part] / units[part] for part in units}


def python_part(build, work):
    """Instructions per batch of 64 read through Python."""
    xring = os.path.join(build, "xring")
    name = f"icount-py-{os.getpid()}"
    env = dict(os.environ, XRING_RUN_DIR=work, PYTHONHASHSEED="0",
               PYTHONPATH=os.path.join(build, "python"), PYTHONDONTWRITEBYTECODE="1")
    engine = subprocess.Popen([xring, "engine", "--name", name, "--games", "64", "--board",
                               "8x8", "--quiet", "--hugepages", "off"], env=env)
    try:
        script = os.path.join(work, "reader.py")
        with open(script, "w") as f:
            f.write(PY_READER)
        totals = []
        for k in PY_BATCHES:
            out = os.path.join(work, f"cachegrind.{k}")
            p = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no",
                                "--cachegrind-out-file=" + out, "/usr/bin/python3", script,
                                name, str(k)], env=env, capture_output=True, text=True,
                               timeout=900)
            if p.returncode != 0:
                sys.exit("icount: the Python reader failed under cachegrind:\n" + p.stderr[-3000:])
            with open(out) as f:
                total = [int(line.split()[1]) for line in f if line.startswith("summary:")]
            totals.append(total[0])
        return {"python_batch": (totals[1] - totals[0]) / (PY_BATCHES[1] - PY_BATCHES[0])}
    finally:
        engine.terminate()
        engine.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--update", metavar="WHY", help="write this run's figures as the baselines")
    ap.add_argument("--tolerance", type=float, default=0.10)
    a = ap.parse_args()
    build = os.path.abspath(a.build)

    if not shutil.which("valgrind"):
        print("SKIP: valgrind is not installed (scripts/deps.sh installs it)")
        return 77
    facts = build_facts(build)
    base = None
    if os.path.exists(BASELINE):
        with open(BASELINE) as f:
            base = json.load(f)
    if not a.update:
        if base is None:
            print("SKIP: no baselines yet: run perf/icount.py --update \"why\"")
            return 77
        if base["build"] != facts:
            print("SKIP: the baselines were taken with a build unlike this one:\n"
                  f"  baselines: {base['build']}\n  this build: {facts}\n"
                  "Compare in the build scripts/build.sh makes, or take baselines of your own "
                  "(--update).")
            return 77

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xring-icount-") as work:
        os.chmod(work, 0o755)
        figures = c_parts(build, work)
        figures.update(python_part(build, work))
    print(f"icount: {time.monotonic() - t0:.0f} s under valgrind; {facts['compiler']}, "
          f"{facts['build_type'] or 'no build type'}, LTO {facts['lto']}")
    ratio = figures["builder_record"] / figures["memcpy_record"]
    print(f"  building a record costs {ratio:.2f}x the instructions of copying its bytes "
          f"(bound {BUILDER_BOUND:.1f}x)")
    if ratio > BUILDER_BOUND:
        print(f"icount: FAIL: building a record costs {ratio:.2f}x copying its bytes, more "
              f"than {BUILDER_BOUND:.1f}x: the builder is no longer 'little more than "
              "writing its bytes' (record/experience.c)")
        return 1

    if a.update:
        doc = {"build": facts, "why": a.update, "tolerance": a.tolerance,
               "instructions": {k: round(v, 1) for k, v in sorted(figures.items())}}
        with open(BASELINE, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        for k, v in sorted(figures.items()):
            print(f"  {k:<16} {v:12.1f} instructions")
        print(f"icount: baselines written to {BASELINE}; commit them with the reason")
        return 0

    tol = a.tolerance
    worse = []
    print(f"  {'path':<16} {'now':>12} {'baseline':>12} {'ratio':>7}  (fails above {1 + tol:.2f})")
    for k, b in sorted(base["instructions"].items()):
        v = figures.get(k)
        if v is None:
            worse.append(f"{k}: not measured")
            continue
        r = v / b
        note = ""
        if r > 1 + tol:
            note = "  MORE EXPENSIVE"
            worse.append(f"{k}: {v:.1f} instructions, {r:.2f}x the baseline {b:.1f}")
        elif r < 1 - tol:
            note = "  cheaper: update the baseline (--update \"why\")"
        print(f"  {k:<16} {v:12.1f} {b:12.1f} {r:7.3f}{note}")
    if worse:
        print("icount: FAIL: a hot path got more than "
              f"{tol:.0%} more expensive: " + "; ".join(worse) +
              ". Find why (callgrind_annotate), or, if it is meant, update the baseline "
              "with perf/icount.py --update \"why\" and say why in the commit.")
        return 1
    print("icount: every hot path within its baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
