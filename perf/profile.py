#!/usr/bin/python3
"""Where the time goes: a workload under `perf record`, its top symbols per
role, grouped by xring module. Run by `xring profile` (cli/cmd_profile.c),
or directly:

  profile.py --xring BUILD/xring engine [--games N] [--seconds S] [--top K]
  profile.py --xring BUILD/xring reader [--games N] [--seconds S] [--top K]
  profile.py --xring BUILD/xring ring --bench BUILD/perf/bench_ring [--size B]

  engine  `xring engine --games N` with a verifying reader (`xring tail
          --stats`), the engine's process sampled: its shards (the writers)
          and its control and housekeeping threads, by thread name
  reader  the same engine, the reader's process sampled
  ring    bench_ring at one record size: its writer (the parent) and its
          reader (the child) sampled, no engine

Samples come from the cpu-clock software event (-F 999, call graphs by frame
pointer): hardware counters are often missing in virtual machines, and the
run says whether they are here. A symbol's module is the directory of the
source file that defines it (shm/, engine/, record/, game/, client/,
control/, util/), read from the binary's debug information with `nm -l`;
symbols of other objects are grouped by object (libc, the kernel).

Exit status 0; 1 when the workload or perf failed; 2 when perf is missing
(Debian: linux-perf) or may not sample (kernel.perf_event_paranoid).
"""
import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def die(msg, code=1):
    print(f"xring profile: {msg}", file=sys.stderr)
    sys.exit(code)


def run_perf(cmd, timeout):
    """subprocess.run(cmd, capture_output=True, text=True) for perf, in a
    session of its own and stopped by us. A terminal's Ctrl-C reaching perf
    directly, or subprocess.run()'s SIGKILL on an exception, left perf's
    temporary /tmp/perf-vdso.so-XXXXXX behind; a SIGINT it has time to act
    on ends a recording, or a report, and removes the file."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        so, se = p.communicate(timeout=timeout)
    except BaseException:
        p.send_signal(signal.SIGINT)
        try:
            p.communicate(timeout=30)
        except BaseException:
            p.kill()
            p.wait()
        raise
    return subprocess.CompletedProcess(cmd, p.returncode, so, se)


def hw_counters():
    """Whether the cycles event counts here (a VM often has none)."""
    try:
        r = run_perf(["perf", "stat", "-x,", "-e", "cycles", "true"], 20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and "<not supported>" not in r.stderr \
        and "<not counted>" not in r.stderr


def modules_of(binary, root):
    """symbol -> module (source directory) for the symbols binary defines."""
    mods = {}
    try:
        out = subprocess.run(["nm", "-l", "--defined-only", binary], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return mods
    for line in out.splitlines():
        parts = line.split("\t")
        head = parts[0].split()
        if len(head) < 3 or len(parts) < 2:
            continue
        sym = head[2].split(".")[0]  # foo.lto_priv.0, foo.part.0 -> foo
        path = parts[1].rsplit(":", 1)[0]
        if root and path.startswith(root + "/"):
            rel = path[len(root) + 1:]
            mods.setdefault(sym, rel.split("/")[0] + "/" if "/" in rel else rel)
        elif "/" in path:
            mods.setdefault(sym, os.path.basename(os.path.dirname(path)) + "/")
    return mods


LINE = re.compile(r"^\s*([0-9.]+)%\s+(\S.*?)\s{2,}(\S+)\s+\[(.)\]\s+(.*?)\s*$")


def report(data, sort_key):
    """(percent, who, dso, sym) rows of perf report, sorted by sort_key then
    dso, sym; who is the comm or pid column."""
    r = run_perf(["perf", "report", "-i", data, "--stdio", "--no-children", "-q",
                  "-g", "none", "--percent-limit", "0.05", "--sort", f"{sort_key},dso,sym"],
                 300)
    if r.returncode != 0:
        die(f"perf report failed: {r.stderr.strip().splitlines()[-1:]}")
    rows = []
    for line in r.stdout.splitlines():
        m = LINE.match(line)
        if m:
            rows.append((float(m.group(1)), m.group(2).strip(), m.group(3), m.group(5)))
    return rows


def module(dso, sym, mods, ours):
    if os.path.basename(dso) in ours:
        return mods.get(sym.split(".")[0], "xring (no source)")
    if "kernel" in dso:
        return "kernel"
    return os.path.basename(dso)


def show(title, rows, mods, ours, top):
    total = sum(r[0] for r in rows)
    print(f"\n== {title}: {total:.1f} % of the samples")
    if not rows:
        print("   (no samples)")
        return
    by_mod = collections.Counter()
    for pct, _, dso, sym in rows:
        by_mod[module(dso, sym, mods, ours)] += pct
    print("   by module:")
    for mod, pct in by_mod.most_common():
        if pct >= 0.1:
            print(f"   {pct:6.1f} %  {mod}")
    print(f"   top {top} symbols:")
    for pct, _, dso, sym in sorted(rows, reverse=True)[:top]:
        print(f"   {pct:6.1f} %  {sym:<44} {module(dso, sym, mods, ours)}")


def wait_for_name(xring, name, eng, secs=15):
    """Until the engine answers to its name; False at once if it exited."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if eng.poll() is not None:
            return False
        r = subprocess.run([xring, "info", name], capture_output=True, timeout=10)
        if r.returncode == 0:
            return True
        time.sleep(0.05)  # polling for the engine's name: there is nothing to wait on
    return False


def record(out, target_args, seconds):
    """perf record of target_args (["-p", pid] or ["--", cmd...]) for seconds."""
    cmd = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-o", out] + target_args
    if target_args[0] == "-p":
        cmd += ["--", "sleep", str(seconds)]
    return run_perf(cmd, seconds + 300)


def engine_or_reader(args, work):
    name = f"prof-{os.getpid()}"
    env = dict(os.environ, XRING_RUN_DIR=work)
    eng = subprocess.Popen([args.xring, "engine", "--name", name, "--games", str(args.games),
                            "--quiet"], env=env, stdout=subprocess.DEVNULL)
    rd = None
    try:
        os.environ["XRING_RUN_DIR"] = work
        if not wait_for_name(args.xring, name, eng):
            die("the engine did not start (see its message above)")
        rd = subprocess.Popen([args.xring, "tail", name, "--stats", "--seconds",
                               str(args.seconds + 2)], env=env, stdout=subprocess.PIPE,
                              text=True)
        time.sleep(0.5)  # let the reader attach and the shards reach their pace
        pid = eng.pid if args.what == "engine" else rd.pid
        r = record(os.path.join(work, "perf.data"), ["-p", str(pid)], args.seconds)
        if r.returncode != 0:
            # A workload that ended first (stopped, or a Ctrl-C that reached
            # it before us) is what failed, not perf: say so.
            for who, p in (("engine", eng), ("reader", rd)):
                if p.poll() is not None:
                    die(f"the {who} ended (exit {p.returncode}) before it could be "
                        f"profiled: nothing to report")
            die(f"perf record failed: {r.stderr.strip()}")
        rd.wait(timeout=args.seconds + 30)
        stats = rd.stdout.read().strip().splitlines()
        if rd.returncode != 0:
            die(f"the reader failed (exit {rd.returncode}): no profile of a broken run")
        print(f"workload: engine of {args.games} games, a verifying reader: "
              f"{stats[-1] if stats else 'no figures'}")
    finally:
        for p in (rd, eng):
            if p and p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        # An engine that had to be killed leaves its arena (and its huge
        # pages): removed by name, nothing else (`xring clean`).
        if eng and eng.returncode != 0:
            subprocess.run([args.xring, "clean", name], env=env, capture_output=True,
                           timeout=60)
    return "comm"


def ring(args, work):
    if not args.bench or not os.access(args.bench, os.X_OK):
        die("ring: no bench_ring program (build the `benchmarks` target)")
    r = record(os.path.join(work, "perf.data"),
               ["--", args.bench, "--sizes", str(args.size), "--seconds", str(args.seconds),
                "--rounds", "1", "--no-bare", "--memcpy-seconds", "0.1"], args.seconds)
    if r.returncode != 0:
        die(f"bench_ring under perf failed (exit {r.returncode}): {r.stderr.strip()[-300:]}")
    print(f"workload: bench_ring, {args.size}-byte records, {args.seconds} s")
    print("\n".join(l for l in r.stdout.splitlines() if "GB/s" in l)[:2000])
    return "pid"


class Stopped(Exception):
    pass


def on_term(sig, frame):
    raise Stopped()


def main():
    # SIGTERM as Ctrl-C: the workload's processes and files are removed on
    # the way out (the finally clauses), never left running.
    signal.signal(signal.SIGTERM, on_term)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("engine", "reader", "ring"))
    ap.add_argument("--xring", required=True, help="the xring program")
    ap.add_argument("--bench", help="bench_ring (for ring)")
    ap.add_argument("--source-root", default="", help="the source tree, for modules")
    ap.add_argument("--games", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    if not (0 < args.seconds <= 3600) or not (1 <= args.games <= 10_000_000) \
            or not (16 <= args.size <= 1 << 20) or args.top < 1:
        die("--seconds in (0, 3600], --games in [1, 10000000], --size in [16, 1 MiB], "
            "--top at least 1", 2)

    if not shutil.which("perf"):
        die("perf is not installed: apt-get install linux-perf (Debian)", 2)
    paranoid = open("/proc/sys/kernel/perf_event_paranoid").read().strip()
    if os.geteuid() != 0 and int(paranoid) > 2:
        die(f"kernel.perf_event_paranoid is {paranoid}: run as root, or "
            f"sysctl kernel.perf_event_paranoid=2 (or lower)", 2)
    if os.geteuid() != 0 and int(paranoid) > 1:
        print(f"note: kernel.perf_event_paranoid is {paranoid}: user-space samples only "
              f"(the kernel's time is not seen; run as root to see it)")
    hw = hw_counters()
    print("hardware counters: " + ("available (sampling the cpu-clock software event anyway, "
                                   "for figures comparable across machines)" if hw else
                                   "not available here (a VM?): sampling the cpu-clock "
                                   "software event"))
    work = tempfile.mkdtemp(prefix="xring-profile-")
    try:
        key = ring(args, work) if args.what == "ring" else engine_or_reader(args, work)
        rows = report(os.path.join(work, "perf.data"), key)
        binary = args.bench if args.what == "ring" else args.xring
        ours = {os.path.basename(binary), "libxring.so"}
        ours |= {f"libxring.so.{v}" for v in ("0", "1")}
        mods = modules_of(binary, args.source_root)
        groups = collections.OrderedDict()
        if key == "pid":
            # bench_ring: the parent writes; its forked child reads.
            pids = sorted({r[1] for r in rows}, key=lambda s: int(s.split(":")[0]))
            for i, who in enumerate(pids):
                groups.setdefault("writer (bench_ring's parent)" if i == 0
                                  else "reader (bench_ring's child)", []).extend(
                                      r for r in rows if r[1] == who)
        else:
            for r in rows:
                groups.setdefault(r[1], []).append(r)
        for who, rs in groups.items():
            title = f"thread {who}" if key == "comm" else who
            show(title, rs, mods, ours, args.top)
        print("\nPercentages are of all samples of the profiled process(es); a module is the "
              "source directory that defines the symbol (docs/benchmarks.md, Profiling).")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KeyboardInterrupt, Stopped):
        print("xring profile: stopped; the workload was ended and its files removed",
              file=sys.stderr)
        sys.exit(130)
