#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench_replay: sampling a replay table from Python, against the replay
buffers a Python trainer writes for itself, and with several samplers.

Part 1, one process. For tables of --items items (default 100,000 and
1,000,000) of --item-size bytes (64), batches of --batches (32, 256, 1024),
samplers uniform and prioritized (alpha 0.6, beta 0.4, random priorities in
[0.01, 100)):

  xring   an `xring engine` (started and stopped here) hosts the table,
          created with Engine.create_table() and filled with Table.insert();
          one timed round is t.sample(B), s.items (the gather of the batch
          out of the table's memory, mapped in place), s.release().
  numpy   the buffers of perf/python_baselines/replay.py in this process,
          same contents: UniformReplay.sample(B) (rng.integers and a fancy
          index) and PrioritizedReplay.sample(B) (a vectorized descent of a
          binary sum tree, stratified, with a min tree for the weights).
          One timed round is the sample and its gather: there is nothing to
          release.

  Both return the batch's items as a new (B, item_size) array, and the
  prioritized ones keys/slots, probabilities and weights. Every page of
  the table's items is touched in this process before the timing (as a
  trainer that has run a while has them; the numpy buffer was written).
  The two take turns in blocks of rounds; each line prints xring's p50 and
  p99 beside numpy's, and xring / numpy as a ratio (below 1: xring is
  faster). Under each prioritized line, an "update" line: the
  update_priorities() of a sampled batch's B keys, timed alone (unless
  --no-updates).

Part 2, several processes on one table (unless --no-procs): 1, 2 and 4
(--procs) sampling processes, each opening the table with
Engine.table(name), sample B (--procs-batch, 256) + gather + release for
--procs-seconds from a common start, on the --procs-items table (1,000,000)
of each sampler. Printed: per process samples/s (items drawn a second) and
p50/p99; the aggregate; the aggregate over the 1-process figure. Beside it,
the same number of processes each sampling a private numpy buffer of the
same contents (not shared: N copies of the data; what N Python processes
get when nothing is shared, the CPUs the only limit). On a 2-CPU machine
the engine's table thread is a runnable thread too: 2 samplers already
share the CPUs with it, 4 oversubscribe them (the output says so).

Pinning (unless --no-pin, or fewer than 2 CPUs allowed): in part 1 the
engine on the first CPU, this process on the second; in part 2 nothing is
pinned (the engine's threads are let go on every CPU again), as a trainer
would run. Part 2 also prints CPU time a batch: the samplers' (process
time) and the engine's (/proc), which says where the CPUs went (both
sides spin a little before they sleep: docs/replay.md, "The service").

  perf/bench_replay.py [--build DIR] [--items 100000,1000000]
                       [--batches 32,256,1024] [--samplers uniform,prioritized]
                       [--rounds N] [--item-size 64] [--procs 1,2,4]
                       [--procs-items N] [--procs-batch B] [--procs-seconds S]
                       [--no-procs] [--no-pin] [--quick] [--json]

--quick: 100,000 items only, 200 rounds, 1 s per process count (~20 s).
Default: about 65 s on 2 CPUs.

Runs with Debian's /usr/bin/python3 (numpy); the xring program and the
python/ package come from the CMake build (--build, else $BUILD_DIR, else
build/ beside perf/). Results and how to read them: docs/benchmarks.md,
section "Replay tables".
"""
import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

try:
    import numpy as np
except ImportError:
    # The first python3 on PATH may lack numpy; Debian's has it.
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and \
            os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

sys.path.insert(0, HERE)
from python_baselines.replay import PrioritizedReplay, UniformReplay  # noqa: E402

ALPHA, BETA = 0.6, 0.4
_T0 = time.monotonic()


def log(*a):
    print(f"[{time.monotonic() - _T0:6.1f} s]", *a, file=sys.stderr, flush=True)


def contents(n, item_size, seed=1):
    """The items (each its index in its first 8 bytes) and priorities every
    table and buffer of n items is filled with."""
    items = np.zeros((n, item_size), np.uint8)
    k = min(8, item_size)
    items[:, :k] = np.arange(n, dtype=np.uint64).view(np.uint8).reshape(n, 8)[:, :k]
    prio = 0.01 + np.random.default_rng(seed).random(n) * 100.0
    return items, prio


def pct(v, q):
    return float(np.percentile(v, q)) if len(v) else float("nan")


def summary(ns):
    us = np.asarray(ns, np.float64) / 1e3
    return {"p50": pct(us, 50), "p99": pct(us, 99), "n": len(us)}


# -- the two ways to sample -------------------------------------------------

def xring_round(t, b, parts=None):
    """One timed round through the engine's table: ns. With parts (three
    lists), also the sample, the gather and the release apart."""
    t0 = time.perf_counter_ns()
    s = t.sample(b)
    t1 = time.perf_counter_ns()
    x = s.items
    t2 = time.perf_counter_ns()
    s.release()
    t3 = time.perf_counter_ns()
    if len(x) != b:
        raise RuntimeError(f"xring sampled {len(x)} of {b}")
    if parts is not None:
        parts[0].append(t1 - t0)
        parts[1].append(t2 - t1)
        parts[2].append(t3 - t2)
    return t3 - t0


def xring_one_request(t, b, rounds):
    """rounds timed rounds in which the sample also releases the last batch
    (Table.sample(release=...)): one request a round; ns each."""
    out, s = [], None
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        s = t.sample(b, release=s)
        x = s.items
        out.append(time.perf_counter_ns() - t0)
        if len(x) != b:
            raise RuntimeError(f"xring sampled {len(x)} of {b}")
    s.release()
    return out


def numpy_round(buf, b, prioritized, parts=None):
    """One timed round of a numpy buffer: its sample(), written out as its
    two steps (the draw with weights, the gather) so that parts (two lists)
    can take each apart."""
    t0 = time.perf_counter_ns()
    if prioritized:
        slots, _w, _p = buf.draw_weighted(b, BETA)
    else:
        slots = buf.draw(b)
    t1 = time.perf_counter_ns()
    x = buf.items[slots]
    t2 = time.perf_counter_ns()
    if len(x) != b:
        raise RuntimeError(f"numpy sampled {len(x)} of {b}")
    if parts is not None:
        parts[0].append(t1 - t0)
        parts[1].append(t2 - t1)
    return t2 - t0


def make_numpy(sampler, n, item_size):
    items, prio = contents(n, item_size)
    if sampler == "prioritized":
        buf = PrioritizedReplay(n, item_size, alpha=ALPHA, seed=2)
        buf.add(items, prio)
    else:
        buf = UniformReplay(n, item_size, seed=2)
        buf.add(items)
    return buf


def fill_xring(t, n, item_size, prioritized):
    items, prio = contents(n, item_size)
    step = 1 << 16
    for i in range(0, n, step):
        keys = t.insert(items[i:i + step], prio[i:i + step] if prioritized else 1.0, timeout=60)
        if len(keys) != min(step, n - i):
            raise RuntimeError(f"insert: {len(keys)} of {min(step, n - i)} went in")
    st = t.stats()
    if st["size"] != n:
        raise RuntimeError(f"table holds {st['size']} items, not {n}")


def check_contents(t, buf, n, prioritized, item_size):
    """The table and the buffer hold the same items at the same priorities:
    a sample's items are whole items of the table, and its probabilities
    (prioritized) agree with the buffer's for the same items."""
    with t.sample(64) as s:
        rows = s.items
        if item_size >= 8:
            ids = np.ascontiguousarray(rows[:, :8]).view(np.uint64).reshape(-1)
            if not (ids < n).all():
                raise RuntimeError("the table sampled an item it was not given")
            if prioritized:
                w = buf.sum[ids.astype(np.int64) + buf.cap2]
                np.testing.assert_allclose(s.probabilities, w / buf.sum[1], rtol=1e-6)


def prefault(t):
    """Touches every page of this process's mapping of the table's items, as
    a trainer that has run a while has (the numpy buffer was written, so its
    pages are there too)."""
    v = t.items
    step = max(1, 4096 // v.shape[1])
    return int(v[::step, 0].sum())


# -- part 1 -----------------------------------------------------------------

def part1(args, xring, engine, run):
    rows = []
    for n in args.items:
        for sampler in args.samplers:
            prioritized = sampler == "prioritized"
            name = f"r{n}-{sampler[0]}"
            log(f"{sampler} {n}: creating and filling the table and the numpy buffer")
            t = engine.create_table(name, capacity=n, item_size=args.item_size, sampler=sampler,
                                    remover="fifo", alpha=ALPHA, beta=BETA, seed=1)
            t0 = time.monotonic()
            fill_xring(t, n, args.item_size, prioritized)
            fill_s = time.monotonic() - t0
            buf = make_numpy(sampler, n, args.item_size)
            check_contents(t, buf, n, prioritized, args.item_size)
            prefault(t)
            run["tables"][(n, sampler)] = name
            for b in args.batches:
                xs, ns, parts, nparts = [], [], ([], [], []), ([], [])
                for _ in range(args.warmup):
                    xring_round(t, b)
                    numpy_round(buf, b, prioritized)
                block = max(1, args.rounds // args.blocks)
                done = 0
                while done < args.rounds:
                    k = min(block, args.rounds - done)
                    xs += [xring_round(t, b, parts) for _ in range(k)]
                    ns += [numpy_round(buf, b, prioritized, nparts) for _ in range(k)]
                    done += k
                x, nb = summary(xs), summary(ns)
                # The same rounds as one request each (the release rides
                # with the next sample), against the two-request round above.
                one = summary(xring_one_request(t, b, args.rounds))
                row = {"sampler": sampler, "items": n, "batch": b, "xring": x, "numpy": nb,
                       "xring_one_request": one,
                       "one_request_ratio_p50": one["p50"] / x["p50"],
                       "ratio_p50": x["p50"] / nb["p50"], "ratio_p99": x["p99"] / nb["p99"],
                       "fill_s": fill_s, "xring_parts_p50": {
                           k: pct(np.asarray(v) / 1e3, 50)
                           for k, v in zip(("sample", "gather", "release"), parts)},
                       "numpy_parts_p50": {
                           k: pct(np.asarray(v) / 1e3, 50) for k, v in zip(("draw", "gather"), nparts)}}
                rows.append(row)
                if not args.json:
                    print_row(row)
                if prioritized and not args.no_updates:
                    row = update_row(args, t, buf, n, b)
                    rows.append(row)
                    if not args.json:
                        print_row(row)
            t.close()
            del buf
    return rows


def update_row(args, t, buf, n, b):
    """update_priorities of a sampled batch's keys (slots), new priorities
    in the same range: a prioritized trainer's other call each step. Only
    the update is timed."""
    newp = 0.01 + np.random.default_rng(b).random((args.rounds, b)) * 100.0
    xs, ns = [], []
    block = max(1, args.rounds // args.blocks)
    for lo in range(0, args.rounds, block):
        for i in range(lo, min(lo + block, args.rounds)):
            s = t.sample(b)
            t0 = time.perf_counter_ns()
            done = t.update_priorities(s.keys, newp[i])
            t1 = time.perf_counter_ns()
            s.release()
            if done < 1:
                raise RuntimeError("update_priorities set nothing")
            xs.append(t1 - t0)
        for i in range(lo, min(lo + block, args.rounds)):
            slots = buf.draw(b)
            t0 = time.perf_counter_ns()
            buf.update_priorities(slots, newp[i])
            ns.append(time.perf_counter_ns() - t0)
    x, nb = summary(xs), summary(ns)
    return {"sampler": "  update", "items": n, "batch": b, "xring": x, "numpy": nb,
            "ratio_p50": x["p50"] / nb["p50"], "ratio_p99": x["p99"] / nb["p99"]}


def print_head1(args, meta):
    print(f"bench_replay: {meta['cpu_model']}, {meta['cpus']} CPUs, load "
          f"{' '.join(meta['loadavg_start'])} at start; python {meta['python']}, "
          f"numpy {meta['numpy']}; items of {args.item_size} bytes")
    print(f"part 1: one process ({'engine on CPU %s, this process on CPU %s' % meta['pin'] if meta['pin'] else 'not pinned'}), "
          f"{args.rounds} rounds a line; a round: sample B + gather the items (+ release, xring);\n"
          f"'  update' lines: update_priorities of a sampled batch's B keys alone")
    print(f"{'sampler':<12}{'items':>8}{'batch':>6} | {'xring us p50':>12}{'p99':>8} | "
          f"{'numpy us p50':>12}{'p99':>8} | {'xring/numpy p50':>15}{'p99':>6} | "
          f"xring p50: sample  gather release | numpy p50: draw  gather")
    sys.stdout.flush()


def print_row(r):
    x, nb = r["xring"], r["numpy"]
    parts = ""
    if "xring_parts_p50" in r:
        parts = " | " + " ".join(f"{v:7.1f}" for v in r["xring_parts_p50"].values()) + " | " + \
            " ".join(f"{v:7.1f}" for v in r["numpy_parts_p50"].values())
    print(f"{r['sampler']:<12}{r['items']:>8}{r['batch']:>6} | {x['p50']:>12.1f}{x['p99']:>8.1f} | "
          f"{nb['p50']:>12.1f}{nb['p99']:>8.1f} | {r['ratio_p50']:>15.2f}{r['ratio_p99']:>6.2f}"
          f"{parts}", flush=True)
    if "xring_one_request" in r:
        o = r["xring_one_request"]
        print(f"{'':<26} | one request a round (sample(release=last)): p50 {o['p50']:.1f} "
              f"p99 {o['p99']:.1f} us, {r['one_request_ratio_p50']:.2f} of the two-request "
              f"round's p50", flush=True)


# -- part 2 -----------------------------------------------------------------

def worker(spec):
    """A sampling process: opens the table (or builds a private numpy
    buffer), warms up, says ready, waits for go, samples until the common
    deadline, prints its figures as JSON."""
    spec = json.loads(spec)
    if spec["kind"] == "xring":
        import xring
        e = xring.attach(spec["engine"], timeout=10)
        t = e.table(spec["table"])
        prefault(t)
        one = lambda: xring_round(t, spec["batch"])  # noqa: E731
    else:
        buf = make_numpy(spec["sampler"], spec["items"], spec["item_size"])
        pr = spec["sampler"] == "prioritized"
        one = lambda: numpy_round(buf, spec["batch"], pr)  # noqa: E731
    for _ in range(spec["warmup"]):
        one()
    print("ready", flush=True)
    go = sys.stdin.readline().split()
    if not go or go[0] != "go":
        return 1
    deadline = float(go[1])
    lat = []
    start = time.monotonic()
    cpu0 = time.process_time()
    end = start
    while end < deadline:
        lat.append(one())
        end = time.monotonic()
    s = summary(lat)
    s["cpu_s"] = time.process_time() - cpu0
    s["batches"] = len(lat)
    s["batches_per_s"] = len(lat) / (end - start)
    s["samples_per_s"] = s["batches_per_s"] * spec["batch"]
    print(json.dumps(s), flush=True)
    return 0


def proc_cpu_s(pid):
    """CPU seconds (user + system, all threads) of process pid so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def unpin(pid, cpus):
    """Every thread of process pid may run on cpus again."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except (ProcessLookupError, PermissionError):
            pass


def run_procs(args, k, spec, env, engine_pid):
    """k worker processes of spec, started together: their figures, and the
    engine's CPU seconds over their run."""
    procs = []
    try:
        for i in range(k):
            procs.append(subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True))
        for p in procs:
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a sampler did not start: {line!r}")
        e0 = proc_cpu_s(engine_pid)
        deadline = time.monotonic() + args.procs_seconds
        for p in procs:
            p.stdin.write(f"go {deadline!r}\n")
            p.stdin.flush()
        out = []
        for p in procs:
            line = p.stdout.readline()
            if p.wait(timeout=args.procs_seconds + 60) != 0 or not line:
                raise RuntimeError(f"a sampler failed (status {p.returncode})")
            out.append(json.loads(line))
        return out, proc_cpu_s(engine_pid) - e0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def part2(args, xring, engine, run, env):
    rows = []
    n, b = args.procs_items, args.procs_batch
    for sampler in args.samplers:
        name = run["tables"].get((n, sampler))
        if name is None:
            name = f"p{n}-{sampler[0]}"
            log(f"{sampler} {n}: creating and filling the shared table")
            t = engine.create_table(name, capacity=n, item_size=args.item_size, sampler=sampler,
                                    remover="fifo", alpha=ALPHA, beta=BETA, seed=1)
            fill_xring(t, n, args.item_size, sampler == "prioritized")
            t.close()
            run["tables"][(n, sampler)] = name
        base = {}
        for kind in ("xring", "numpy"):
            for k in args.procs:
                log(f"{sampler}: {k} {kind} sampler(s)")
                spec = {"kind": kind, "engine": run["engine"], "table": name, "batch": b,
                        "sampler": sampler, "items": n, "item_size": args.item_size,
                        "warmup": args.warmup}
                res, ecpu = run_procs(args, k, spec, env, run["engine_pid"])
                batches = sum(r["batches"] for r in res)
                agg = sum(r["samples_per_s"] for r in res)
                if k == 1:
                    base[kind] = agg
                row = {"sampler": sampler, "kind": kind, "procs": k, "items": n, "batch": b,
                       "per_process": res, "aggregate_samples_per_s": agg,
                       "p50_median": float(np.median([r["p50"] for r in res])),
                       "p99_max": max(r["p99"] for r in res),
                       "vs_1": agg / base[kind] if kind in base else float("nan"),
                       "cpu_us_per_batch_samplers": sum(r["cpu_s"] for r in res) / batches * 1e6,
                       "cpu_us_per_batch_engine": ecpu / batches * 1e6 if kind == "xring" else 0.0}
                rows.append(row)
                if not args.json:
                    print_row2(row, args)
    return rows


def print_head2(args):
    cpus = os.cpu_count()
    print()
    print(f"part 2: samplers on one shared table of {args.procs_items} items, batch "
          f"{args.procs_batch}, {args.procs_seconds:g} s from a common start; "
          f"samples/s = items drawn a second (sample + gather + release a round)")
    over = [k for k in args.procs if k + 1 > cpus]
    if over:
        print(f"NOTE: {cpus} CPUs. xring: each sampler plus the engine's table thread is a "
              f"runnable thread, so {', '.join(map(str, over))} sampler(s) oversubscribe the "
              f"CPUs; numpy: {', '.join(str(k) for k in args.procs if k > cpus) or 'none'} "
              f"process counts exceed them.")
    print("nothing pinned: the engine's threads and the samplers go where the scheduler "
          "puts them")
    print("numpy rows: each process its own private buffer of the same contents (nothing "
          "shared, N copies): the CPUs' bound, not a shared buffer")
    print(f"{'sampler':<12}{'kind':<6}{'procs':>5} | {'per process k samples/s':<30} | "
          f"{'aggregate':>10} {'vs 1 proc':>9} | {'p50 us (median)':>15} {'p99 max':>8} | "
          f"CPU us/batch: samplers engine")
    sys.stdout.flush()


def print_row2(r, args):
    per = " ".join(f"{x['samples_per_s'] / 1e3:.0f}" for x in r["per_process"])
    print(f"{r['sampler']:<12}{r['kind']:<6}{r['procs']:>5} | {per:<30} | "
          f"{r['aggregate_samples_per_s'] / 1e3:>9.0f}k {r['vs_1']:>9.2f} | "
          f"{r['p50_median']:>15.1f} {r['p99_max']:>8.1f} | "
          f"{r['cpu_us_per_batch_samplers']:>21.1f} {r['cpu_us_per_batch_engine']:>6.1f}", flush=True)


def print_compare2(rows):
    """xring's aggregate over the private-numpy aggregate, per process count."""
    by = {(r["sampler"], r["kind"], r["procs"]): r for r in rows}
    lines = []
    for (s, kind, k), r in by.items():
        if kind == "xring" and (s, "numpy", k) in by:
            nb = by[(s, "numpy", k)]
            lines.append(f"  {s:<12}{k} proc: aggregate xring/numpy "
                         f"{r['aggregate_samples_per_s'] / nb['aggregate_samples_per_s']:.2f}, "
                         f"p50 xring/numpy {r['p50_median'] / nb['p50_median']:.2f}")
    if lines:
        print("shared xring table against private numpy buffers (ratios; above 1 for "
              "aggregate, below 1 for p50: xring better):")
        print("\n".join(lines))


# -- the engine -------------------------------------------------------------

class Engine:
    def __init__(self, xring, binary, name, cpu, env):
        self.proc = subprocess.Popen(
            [binary, "engine", "--name", name, "--games", "1", "--tick-ms", "1000", "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine {name} exited: {self.proc.stderr.read().decode()}")
            try:
                self.engine = xring.attach(name, timeout=0.05)
                return
            except xring.NoEngineError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"engine {name} did not come up in 10 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        return worker(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.environ.get("BUILD_DIR") or os.path.join(ROOT, "build"))
    ap.add_argument("--items", default=None, help="default 100000,1000000 (--quick: 100000)")
    ap.add_argument("--batches", default="32,256,1024")
    ap.add_argument("--samplers", default="uniform,prioritized")
    ap.add_argument("--rounds", type=int, default=None, help="default 2000 (--quick: 200)")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--blocks", type=int, default=4, help="turns xring and numpy take a line")
    ap.add_argument("--item-size", type=int, default=64)
    ap.add_argument("--procs", default="1,2,4")
    ap.add_argument("--procs-items", type=int, default=None)
    ap.add_argument("--procs-batch", type=int, default=256)
    ap.add_argument("--procs-seconds", type=float, default=None,
                    help="default 3 (--quick: 1)")
    ap.add_argument("--no-procs", action="store_true")
    ap.add_argument("--no-updates", action="store_true",
                    help="no update_priorities lines under the prioritized ones")
    ap.add_argument("--no-pin", dest="pin", action="store_false")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for k, full, quick in (("items", "100000,1000000", "100000"), ("rounds", 2000, 200),
                           ("procs_seconds", 3.0, 1.0)):
        if getattr(args, k) is None:
            setattr(args, k, quick if args.quick else full)
    args.items = [int(x) for x in args.items.split(",")]
    args.batches = [int(x) for x in args.batches.split(",")]
    args.samplers = args.samplers.split(",")
    args.procs = [int(x) for x in args.procs.split(",")]
    if args.procs_items is None:
        args.procs_items = max(args.items)
    if any(s not in ("uniform", "prioritized") for s in args.samplers) \
            or any(not 1 <= b <= 1024 for b in args.batches + [args.procs_batch]) \
            or any(n < 1 for n in args.items + [args.procs_items]) or args.rounds < 10 \
            or any(k < 1 for k in args.procs) or args.item_size < 1 or args.procs_seconds <= 0:
        ap.error("samplers uniform,prioritized; batches 1..1024; items >= 1; rounds >= 10")
    if len(set(args.items + [args.procs_items])) * len(args.samplers) > 16:
        ap.error("at most 16 tables an engine")

    build = os.path.abspath(args.build)
    binary = os.path.join(build, "xring")
    pydir = os.path.join(build, "python")
    if not os.access(binary, os.X_OK) or not os.path.isdir(os.path.join(pydir, "xring")):
        log(f"bench_replay: no {binary} or {pydir}/xring: build them "
            f"(cmake --build {build} --target xring_cli xring_python)")
        return 2
    sys.path.insert(0, pydir)
    run_dir = tempfile.mkdtemp(prefix="xrreplay-", dir="/tmp")
    env = dict(os.environ, XRING_RUN_DIR=run_dir,
               PYTHONPATH=pydir + os.pathsep + os.environ.get("PYTHONPATH", ""))
    os.environ.update(XRING_RUN_DIR=run_dir)
    import xring

    allowed = sorted(os.sched_getaffinity(0))
    pin = (allowed[0], allowed[1]) if args.pin and len(allowed) >= 2 else None
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    meta = {"benchmark": "bench_replay", "cpus": len(allowed), "cpu_model": model,
            "kernel": platform.release(), "python": platform.python_version(),
            "numpy": np.__version__, "pin": pin, "item_size": args.item_size,
            "rounds": args.rounds, "loadavg_start": open("/proc/loadavg").read().split()[:3]}
    name = f"bench-replay-{os.getpid()}"
    run = {"engine": name, "tables": {}, "engine_pid": None}
    eng = None
    try:
        eng = Engine(xring, binary, name, pin[0] if pin else None, env)
        run["engine_pid"] = eng.proc.pid
        if pin:
            os.sched_setaffinity(0, {pin[1]})
        if not args.json:
            print_head1(args, meta)
        rows1 = part1(args, xring, eng.engine, run)
        rows2 = []
        if not args.no_procs:
            os.sched_setaffinity(0, allowed)
            if pin:
                unpin(eng.proc.pid, allowed)
            if not args.json:
                print_head2(args)
            rows2 = part2(args, xring, eng.engine, run, env)
            if not args.json:
                print_compare2(rows2)
    finally:
        if eng:
            eng.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    if args.json:
        print(json.dumps({**meta, "one_process": rows1, "processes": rows2}))
    else:
        print(f"load {' '.join(meta['loadavg_end'])} at the end")
    return 0


def _stopped(sig, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stopped)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench_replay: stopped; no figures", file=sys.stderr)
        sys.exit(130)
