#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench_python: xring's Python reader against the pipelines it replaces.

For each observation dtype (u8, f32: the grid game's 9x20x20 observation) and
each batch size N, in one run on the same records:

  xring     an `xring engine` playing grid games writes Experience records
            into its ring; this process reads batches of N (reader.read()),
            takes obs, action, reward, done and mask (numpy views of the
            ring) and releases the batch.
            - us/batch: time per read + fields + release cycle with the
              records already in the ring (the engine filled it, then the
              reader drains it; only the drains are timed);
            - rec/s: N / that time, what the reader sustains when data is
              there (its capacity);
            - e2e: records per second end to end while the engine plays
              (the engine, one shard on the other CPU, is the limit), and
              with the engine's synthetic writer making records of the same
              size (no games: the fastest producer the engine has).
  Queue     a producer process puts messages of N records (the bytes of N
            frames taken from the ring, one pre-built bytes object) on a
            multiprocessing.Queue (its pipe widened to pipe-max-size); this
            process gets them and makes the same numpy views.
  gRPC      a grpcio server process streams the same messages (server
            streaming, no protobuf) over loopback TCP; this process iterates
            the call and makes the same numpy views.
            Both baselines' processes set glibc malloc to keep megabyte
            blocks (python_baselines/steady.py): steady state at once.

Bounds printed in the same run: the baselines (xring ÷ Queue, xring ÷ gRPC)
and memcpy (np.copyto of N frames' bytes on the consumer's CPU): xring's
GB/s (records made available to Python per second × frame bytes) ÷ memcpy.
Producers (engine, Queue producer, gRPC server) are pinned to the first CPU,
this process (consumer) to the second. Pipelines take turns in --rounds
rounds; the median round is reported, the range beside it.

  perf/bench_python.py [--seconds S] [--rounds R] [--batches 32,256,1024]
                       [--dtypes u8,f32] [--quick] [--json] [--build DIR]
                       [--grpc tcp|unix] [--ring-size 128M] [--games N]
                       [--breakdown] [--cold] [--queue-default-pipe]
                       [--no-synthetic] [--no-pin] [--verbose]

Results and how to read them: docs/benchmarks.md, section Python.

Runs with Debian's /usr/bin/python3 (numpy, grpcio); the package and the
xring program come from the CMake build (default: build/ beside perf/).
"""
import argparse
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

try:
    import numpy as np
except ImportError:
    # The first python3 on PATH may lack numpy and grpc; Debian's has them.
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and \
            os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

sys.path.insert(0, HERE)
from python_baselines import grpc_pipe, queue_pipe  # noqa: E402
from python_baselines.records import FIELDS, capture  # noqa: E402
from python_baselines.steady import malloc_steady  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


_T0 = time.monotonic()


def log(*a):
    print(f"[{time.monotonic() - _T0:6.1f} s]", *a, file=sys.stderr, flush=True)


def parse_size(s):
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    s = s.strip().lower()
    if s and s[-1] in mult:
        return int(float(s[:-1]) * mult[s[-1]])
    return int(s)


def proc_cpu_s(pid):
    """CPU seconds (user + system, all threads) of process pid so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return float("nan")


def self_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class EngineProc:
    """An `xring engine` process of ours."""

    def __init__(self, xring_mod, binary, name, args, cpu):
        self.xring = xring_mod
        self.name = name
        self.proc = subprocess.Popen(
            [binary, "engine", "--name", name, "--quiet"] + args,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine {name} exited: {self.proc.stderr.read().decode()}")
            try:
                self.engine = xring_mod.attach(name, timeout=0.05)
                break
            except xring_mod.NoEngineError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"engine {name} did not come up in 10 s")

    def reader(self, batch, **kw):
        """A reader with the package's defaults (max_wait 10 ms, the
        stream's policy: lossless) but for the batch size."""
        return self.engine.reader(batch=batch, **kw)

    def cpu_s(self):
        return proc_cpu_s(self.proc.pid)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- the measurements; each returns a dict for one round ----

def wait_pending(r, want, eng, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        p = r.stats()["pending"]
        if p >= want:
            return p
        if not eng.alive():
            raise RuntimeError(f"engine {eng.name} died")
        if time.monotonic() > deadline:
            raise RuntimeError(f"engine {eng.name}: {p} records pending after {timeout} s, "
                               f"wanted {want}")
        time.sleep(0.001)


def measure_drain(r, eng, n, seconds, fill, evict=None):
    """Per-batch cost with the data already there: fill the ring (the engine
    pauses at its high watermark), then time draining whole batches of what
    is pending; again until `seconds` have passed. Only the drains count.
    With evict (a big buffer, --cold) the caches are flushed to DRAM between
    the count and the drain, as for a reader far behind. (An Experience
    stream's batches read only their first and last frame headers.)"""
    read = r.read
    timed_ns = 0
    batches = 0
    drains = []
    cpu0 = self_cpu_s()
    end = time.monotonic() + seconds
    while time.monotonic() < end or batches == 0:
        k = wait_pending(r, fill, eng) // n
        if evict is not None:
            evict += 1
        t0 = time.perf_counter_ns()
        for _ in range(k):
            b = read()
            v = (b.obs, b.action, b.reward, b.done, b.mask)
            b.release()
        t1 = time.perf_counter_ns()
        del v, b
        timed_ns += t1 - t0
        batches += k
        drains.append((t1 - t0) / k / 1e3)
    cpu = self_cpu_s() - cpu0
    us = timed_ns / batches / 1e3
    return {"us_per_batch": us, "rec_s": n / us * 1e6, "batches": batches,
            "drains": len(drains), "drain_us_min": min(drains), "drain_us_max": max(drains),
            "cpu_s": cpu}


def measure_breakdown(r, eng, n, fill, rounds=20):
    """The drain's cycle in parts: read(), the five field views, release()
    (each timed alone, so a little slower in sum than the drain)."""
    read = r.read
    pc = time.perf_counter_ns
    parts = {"read": [], "fields": [], "release": [], "drop": []}
    for _ in range(rounds):
        k = wait_pending(r, fill, eng) // n
        for _ in range(k):
            t0 = pc()
            b = read()
            t1 = pc()
            v = (b.obs, b.action, b.reward, b.done, b.mask)
            t2 = pc()
            b.release()
            t3 = pc()
            del v   # the arrays go: the lease ends here
            t4 = pc()
            parts["read"].append(t1 - t0)
            parts["fields"].append(t2 - t1)
            parts["release"].append(t3 - t2)
            parts["drop"].append(t4 - t3)
        del b
    return {k: statistics.median(v) / 1e3 for k, v in parts.items()}


def catch_up(r, n):
    """Reads (untimed) the backlog there is now (stats() walks it: not in a loop)."""
    for _ in range(r.stats()["pending"] // n):
        r.read().release()


def measure_e2e(r, eng, n, seconds):
    """Records per second into this process while the engine produces."""
    catch_up(r, n)
    read = r.read
    pc = time.perf_counter
    got = 0
    batches = 0
    cpu0, ecpu0 = self_cpu_s(), eng.cpu_s()
    t0 = pc()
    end = t0 + seconds
    while True:
        b = read()
        v = (b.obs, b.action, b.reward, b.done, b.mask)
        got += len(b)
        batches += 1
        b.release()
        if pc() >= end:
            break
    dt = pc() - t0
    del v, b
    cpu, ecpu = self_cpu_s() - cpu0, eng.cpu_s() - ecpu0
    return {"rec_s": got / dt, "batches": batches, "seconds": dt,
            "consumer_cpu_us_per_batch": cpu / batches * 1e6, "producer_cpu": ecpu / dt}


def measure_queue(q, prod_pid, layout, n, seconds):
    get = q.get
    views = layout.views
    pc = time.perf_counter
    t_warm = pc() + max(0.05, seconds * 0.1)
    w = 0
    while pc() < t_warm or w < 4:   # the queue's backlog first
        views(get(), n)
        w += 1
    got = 0
    cpu0, pcpu0 = self_cpu_s(), proc_cpu_s(prod_pid)
    t0 = pc()
    end = t0 + seconds
    while True:
        v = views(get(), n)
        got += 1
        if pc() >= end:
            break
    dt = pc() - t0
    del v
    cpu, pcpu = self_cpu_s() - cpu0, proc_cpu_s(prod_pid) - pcpu0
    return {"rec_s": got * n / dt, "batches": got, "seconds": dt,
            "consumer_cpu_us_per_batch": cpu / got * 1e6, "producer_cpu": pcpu / dt}


def measure_grpc(client, srv_pid, layout, n, seconds):
    views = layout.views
    pc = time.perf_counter
    call = client.stream(n)
    it = iter(call)
    t_warm = pc() + max(0.05, seconds * 0.1)
    w = 0
    for m in it:   # connection, flow-control windows, the stream's backlog
        views(m, n)
        w += 1
        if pc() >= t_warm and w >= 4:
            break
    got = 0
    cpu0, pcpu0 = self_cpu_s(), proc_cpu_s(srv_pid)
    t0 = pc()
    end = t0 + seconds
    for m in it:
        v = views(m, n)
        got += 1
        if pc() >= end:
            break
    dt = pc() - t0
    cpu, pcpu = self_cpu_s() - cpu0, proc_cpu_s(srv_pid) - pcpu0
    call.cancel()
    del v
    return {"rec_s": got * n / dt, "batches": got, "seconds": dt,
            "consumer_cpu_us_per_batch": cpu / got * 1e6, "producer_cpu": pcpu / dt}


def memcpy_gbps(nbytes, seconds):
    """np.copyto of nbytes, again and again (each copy of the same buffers,
    like a pipeline moving one batch after another), on this CPU."""
    src = np.frombuffer(np.random.default_rng(1).bytes(nbytes), np.uint8).copy()
    dst = np.empty_like(src)
    np.copyto(dst, src)
    reps = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        np.copyto(dst, src)
        reps += 1
        if reps % 8 == 0 and time.perf_counter() >= end:
            break
    return reps * nbytes / (time.perf_counter() - t0) / 1e9


def check_views(layout, msg, n, seq, what):
    """A baseline's message holds the captured records, and its views see them."""
    got = layout.field(msg, n, "seq")
    if not np.array_equal(got, seq[:n]):
        raise RuntimeError(f"{what}: the records delivered are not the captured ones")
    if len(layout.views(msg, n)) != len(FIELDS):
        raise RuntimeError(f"{what}: missing fields")


# ---- the run ----

def synthetic_bytes_for(xring_mod, binary, name, record_bytes, ring, cpu):
    """--record-bytes for the synthetic writer whose records are record_bytes
    long (the game's), found by asking the engine."""
    x = max(64, record_bytes - 256)
    best = None
    for attempt in range(6):
        e = EngineProc(xring_mod, binary, f"{name}-probe{attempt}",
                       ["--record-bytes", str(x), "--ring-size", "4M", "--rate", "1"], cpu)
        try:
            with e.engine.reader(batch=1, max_wait=0) as r:
                got = r.facts()["record_bytes"]
        finally:
            e.stop()
        if best is None or abs(got - record_bytes) < abs(best[1] - record_bytes):
            best = (x, got)
        if got == record_bytes:
            break
        x += record_bytes - got
    return best


def fmt_rate(x):
    if x != x:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def med(rounds, key):
    vals = [r[key] for r in rounds]
    return statistics.median(vals), min(vals), max(vals)


def run_dtype(args, xring_mod, binary, dtype, cpus, run_id):
    prod_cpu, cons_cpu = cpus
    batches = args.batches
    nmax = max(batches)
    est_stride = 5440 if dtype == "u8" else 16256
    ring_bytes = max(args.ring_size, 1 << (max(8 * nmax * est_stride, 1) - 1).bit_length())
    ring = f"{ring_bytes >> 20}M"
    name = f"pyb{run_id}-{dtype}"
    out = {"dtype": dtype, "ring_bytes": ring_bytes, "games": args.games, "batches": {}}
    procs = []
    game = synth = srv = client = None
    try:
        log(f"bench_python: {dtype}: engine ({args.games} grid games), ring {ring}")
        game = EngineProc(xring_mod, binary, name,
                          ["--games", str(args.games), "--obs-dtype", dtype, "--ring-size", ring],
                          prod_cpu)
        cap_r = game.reader(nmax, max_wait=10.0)
        payload, layout, seq = capture(cap_r, cap_r.ring_buffer, nmax)
        facts = cap_r.facts()
        out.update(obs_shape=list(facts["obs_shape"]), obs_dtype=facts["obs_dtype"],
                   mask_len=facts["mask_len"], record_bytes=layout.record_bytes,
                   stride=layout.stride, ring_capacity=facts["ring_capacity"])
        cap_records = facts["ring_capacity"] // layout.stride
        fill = int(cap_records * 0.8)
        if fill < nmax:
            raise RuntimeError(f"ring of {cap_records} records is too small for batches of "
                               f"{nmax}: raise --ring-size")
        readers = [cap_r]

        if args.synthetic:
            sx, sgot = synthetic_bytes_for(xring_mod, binary, name, layout.record_bytes, ring,
                                           prod_cpu)
            out["synthetic_record_bytes"] = sgot
            out["synthetic_obs_bytes"] = sx
            synth = EngineProc(xring_mod, binary, name + "-syn",
                               ["--record-bytes", str(sx), "--games", str(args.games),
                                "--ring-size", ring], prod_cpu)

        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        ready = ctx.Queue()
        target = (f"unix:{args.run_dir}/grpc.sock" if args.grpc == "unix" else "127.0.0.1:0")
        srv = ctx.Process(target=grpc_pipe.serve,
                          args=(payload, layout.stride, target, prod_cpu, ready), daemon=True)
        srv.start()
        procs.append(srv)
        client = grpc_pipe.Client(ready.get(timeout=30))

        for n in batches:
            log(f"bench_python: {dtype}: batch {n}")
            # The old readers go first: a lossless reader that stopped reading
            # pauses the engine at the high watermark, and a pause ends only
            # below the low one. A new reader attached during it could be left
            # with anything between the two pending, short of `fill`, for good.
            for old in readers:
                old.close()
            rg = game.reader(n)
            rs = synth.reader(n) if synth else None
            readers = [x for x in (rg, rs) if x is not None]
            q = ctx.Queue(maxsize=2)
            out["queue_pipe_bytes"] = queue_pipe.widen_pipe(q) if args.wide_pipe else None
            msg = payload[:n * layout.stride]
            prod = ctx.Process(target=queue_pipe.producer, args=(q, msg, prod_cpu), daemon=True)
            prod.start()
            procs.append(prod)
            first = q.get(timeout=30)
            check_views(layout, first, n, seq, "Queue")
            call = client.stream(n)
            check_views(layout, next(iter(call)), n, seq, "gRPC")
            call.cancel()
            del first, call

            evict = np.zeros(128 << 20, np.uint8) if args.cold else None
            pipes = ["drain", "e2e"] + (["synth"] if synth else []) + ["queue", "grpc"]
            res = {p: [] for p in pipes}
            slot = args.seconds / args.rounds
            for rnd in range(args.rounds):
                order = pipes[rnd % len(pipes):] + pipes[:rnd % len(pipes)]
                for p in order:
                    if args.verbose:
                        log(f"bench_python: {dtype}: batch {n}: round {rnd}: {p}")
                    if p == "drain":
                        res[p].append(measure_drain(rg, game, n, slot, fill, evict))
                    elif p == "e2e":
                        res[p].append(measure_e2e(rg, game, n, slot))
                    elif p == "synth":
                        res[p].append(measure_e2e(rs, synth, n, slot))
                    elif p == "queue":
                        res[p].append(measure_queue(q, prod.pid, layout, n, slot))
                    elif p == "grpc":
                        res[p].append(measure_grpc(client, srv.pid, layout, n, slot))
            mc = memcpy_gbps(n * layout.stride, min(0.3, max(0.05, slot / 2)))
            bd = measure_breakdown(rg, game, n, fill) if args.breakdown else None
            prod.terminate()
            prod.join(5)
            procs.remove(prod)
            q.close()
            st = rg.stats()
            if st["written"] != st["read"] + st["filtered"] + st["dropped"] + st["pending"] or \
                    st["dropped"] or st["copies"]:
                raise RuntimeError(f"xring reader accounting: {st}")
            out["batches"][str(n)] = summarize(n, layout, res, mc, bd)
        for old in readers:
            old.close()
    finally:
        if client:
            client.close()
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(5)
        for e in (synth, game):
            if e:
                e.stop()
    return out


def summarize(n, layout, res, mc, bd):
    s = {}
    us, us_lo, us_hi = med(res["drain"], "us_per_batch")
    cap = n / us * 1e6
    s["xring_us_per_batch"] = us
    s["xring_us_per_batch_range"] = [us_lo, us_hi]
    s["xring_rec_s"] = cap
    s["xring_drained_batches"] = sum(r["batches"] for r in res["drain"])
    for p, key in (("e2e", "xring_e2e"), ("synth", "xring_e2e_synthetic"), ("queue", "queue"),
                   ("grpc", "grpc")):
        if p not in res:
            continue
        m, lo, hi = med(res[p], "rec_s")
        s[key + "_rec_s"] = m
        s[key + "_rec_s_range"] = [lo, hi]
        s[key + "_consumer_cpu_us_per_batch"] = med(res[p], "consumer_cpu_us_per_batch")[0]
        s[key + "_producer_cpu"] = med(res[p], "producer_cpu")[0]
    s["xring_over_queue"] = cap / s["queue_rec_s"]
    s["xring_over_grpc"] = cap / s["grpc_rec_s"]
    s["xring_e2e_over_grpc"] = s["xring_e2e_rec_s"] / s["grpc_rec_s"]
    s["xring_e2e_over_queue"] = s["xring_e2e_rec_s"] / s["queue_rec_s"]
    s["memcpy_gbps"] = mc
    s["xring_gbps"] = cap * layout.stride / 1e9
    s["xring_over_memcpy"] = s["xring_gbps"] / mc
    s["xring_e2e_gbps"] = s["xring_e2e_rec_s"] * layout.stride / 1e9
    s["xring_e2e_over_memcpy"] = s["xring_e2e_gbps"] / mc
    s["queue_gbps"] = s["queue_rec_s"] * layout.stride / 1e9
    s["grpc_gbps"] = s["grpc_rec_s"] * layout.stride / 1e9
    if bd:
        s["xring_breakdown_us"] = bd
    s["rounds"] = res
    return s


def print_text(meta, results, args):
    p = print
    p(f"bench_python: {meta['cpus']} CPUs ({meta['cpu_model']}), kernel {meta['kernel']}, "
      f"Python {meta['python']}, numpy {meta['numpy']}, grpcio {meta['grpc']}")
    p(f"  producers (engine shard, Queue producer, gRPC server) on CPU {meta['producer_cpu']}, "
      f"consumer (this process) on CPU {meta['consumer_cpu']}"
      if meta["producer_cpu"] is not None else "  not pinned")
    p(f"  per batch size: {args.rounds} round(s) of {args.seconds / args.rounds:.2f} s per "
      f"pipeline, pipelines taking turns; median round [range]")
    pipe = results[0].get("queue_pipe_bytes") if results else None
    p(f"  every pipeline hands this process {', '.join(FIELDS)} of N records as numpy "
      f"arrays; gRPC over {'loopback TCP' if args.grpc == 'tcp' else 'a Unix socket'}; "
      f"Queue pipe {pipe // 1024 if pipe else 64} KiB")
    p("  xring us/batch: read + fields + release with the records already in the ring "
      + ("(caches evicted before each drain)" if args.cold else "(warm caches)")
      + "; xring rec/s = N / that; reader defaults (max_wait 10 ms, lossless)")
    p("  e2e: end to end while the engine plays 20x20 grid games (one shard); synthetic: "
      "its synthetic writer, same record size")
    p("  memcpy: np.copyto of the same N frames' bytes on the consumer's CPU; xring GB/s = "
      "xring rec/s x frame bytes")
    for d in results:
        p()
        shape = "x".join(str(x) for x in d["obs_shape"])
        p(f"{d['dtype']} obs {shape}: {d['record_bytes']}-byte records in {d['stride']}-byte "
          f"frames; ring {d['ring_bytes'] >> 20} MiB, {d['games']} games"
          + (f"; synthetic records {d['synthetic_record_bytes']} bytes"
             if "synthetic_record_bytes" in d else ""))
        hdr = (f"{'batch':>5} {'xring us/batch':>18} {'xring rec/s':>11} {'Queue rec/s':>11} "
               f"{'gRPC rec/s':>10} {'x Queue':>7} {'x gRPC':>7} {'memcpy GB/s':>11} "
               f"{'xring GB/s':>10} {'x memcpy':>8} | {'e2e rec/s':>9} {'e2e x gRPC':>10} "
               f"{'synthetic':>9}")
        p(hdr)
        for n, s in d["batches"].items():
            lo, hi = s["xring_us_per_batch_range"]
            us = f"{s['xring_us_per_batch']:.2f} [{lo:.2f}-{hi:.2f}]"
            p(f"{n:>5} {us:>18} {fmt_rate(s['xring_rec_s']):>11} {fmt_rate(s['queue_rec_s']):>11} "
              f"{fmt_rate(s['grpc_rec_s']):>10} {s['xring_over_queue']:>7.0f} "
              f"{s['xring_over_grpc']:>7.0f} {s['memcpy_gbps']:>11.2f} {s['xring_gbps']:>10.1f} "
              f"{s['xring_over_memcpy']:>8.2f} | {fmt_rate(s['xring_e2e_rec_s']):>9} "
              f"{s['xring_e2e_over_grpc']:>10.1f} "
              f"{fmt_rate(s.get('xring_e2e_synthetic_rec_s', float('nan'))):>9}")
        p("  ranges over rounds (rec/s) and consumer CPU per batch (us; this process, all "
          "threads) / producer CPU (share of a CPU):")
        for n, s in d["batches"].items():
            parts = []
            for key, label in (("queue", "Queue"), ("grpc", "gRPC"), ("xring_e2e", "e2e"),
                               ("xring_e2e_synthetic", "synthetic")):
                if key + "_rec_s" not in s:
                    continue
                lo, hi = s[key + "_rec_s_range"]
                parts.append(f"{label} {fmt_rate(lo)}-{fmt_rate(hi)}, "
                             f"{s[key + '_consumer_cpu_us_per_batch']:.1f} us / "
                             f"{s[key + '_producer_cpu']:.2f}")
            p(f"  {n:>5}: " + "; ".join(parts))
            if "xring_breakdown_us" in s:
                bd = s["xring_breakdown_us"]
                p("         drain cycle in parts (median us): " +
                  ", ".join(f"{k} {v:.2f}" for k, v in bd.items()))
    p()
    for t in targets(results):
        p(t["text"])


def targets(results):
    out = []
    for d in results:
        for n, s in d["batches"].items():
            us = s["xring_us_per_batch"]
            out.append({"target": "per-batch overhead < 10 us", "dtype": d["dtype"],
                        "batch": int(n), "value": us, "met": us < 10,
                        "text": f"target: {d['dtype']} batch {n}: per-batch overhead < 10 us: "
                                f"{us:.2f} us, {'met' if us < 10 else 'MISSED'}"})
        s = d["batches"].get("256")
        if s:
            x = s["xring_over_grpc"]
            out.append({"target": ">= 100 x gRPC records/s at batch 256", "dtype": d["dtype"],
                        "batch": 256, "value": x, "met": x >= 100,
                        "e2e_value": s["xring_e2e_over_grpc"],
                        "text": f"target: {d['dtype']} batch 256: xring >= 100 x gRPC records/s: "
                                f"{x:.0f} x, {'met' if x >= 100 else 'MISSED'} (reader's rate); "
                                f"end to end with the engine playing: "
                                f"{s['xring_e2e_over_grpc']:.1f} x"})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="time per pipeline per batch size, split over the rounds (default 2)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per batch size (default 3)")
    ap.add_argument("--batches", default="32,256,1024", help="batch sizes (default 32,256,1024)")
    ap.add_argument("--dtypes", default="u8,f32", help="observation dtypes (default u8,f32)")
    ap.add_argument("--quick", action="store_true",
                    help="one round of 0.5 s per pipeline (about 20 s in all)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--build", default=os.environ.get("BUILD_DIR") or os.path.join(ROOT, "build"),
                    help="the CMake build (xring program, python/ package)")
    ap.add_argument("--grpc", choices=("tcp", "unix"), default="tcp",
                    help="gRPC over loopback TCP (default) or a Unix socket")
    ap.add_argument("--ring-size", default="128M", help="engine ring size (default 128M)")
    ap.add_argument("--games", type=int, default=1000, help="grid games (default 1000)")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time read, fields, release separately")
    ap.add_argument("--queue-default-pipe", dest="wide_pipe", action="store_false",
                    help="leave the Queue's pipe at 64 KiB (default: pipe-max-size)")
    ap.add_argument("--cold", action="store_true",
                    help="evict the caches (write 128 MiB) before each timed drain")
    ap.add_argument("--no-synthetic", dest="synthetic", action="store_false",
                    help="skip the synthetic writer's end-to-end run")
    ap.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin")
    ap.add_argument("--verbose", action="store_true", help="say what is measured when, on stderr")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.rounds = 0.5, 1
    args.batches = [int(x) for x in args.batches.split(",")]
    args.dtypes = args.dtypes.split(",")
    args.ring_size = parse_size(args.ring_size)
    if any(d not in ("u8", "f32") for d in args.dtypes) or any(n < 1 for n in args.batches) \
            or args.rounds < 1 or args.seconds <= 0:
        ap.error("--dtypes u8,f32; batches >= 1; rounds >= 1; seconds > 0")

    build = os.path.abspath(args.build)
    binary = os.path.join(build, "xring")
    pydir = os.path.join(build, "python")
    if not os.access(binary, os.X_OK) or not os.path.isdir(os.path.join(pydir, "xring")):
        log(f"bench_python: no {binary} or {pydir}/xring: build them "
            f"(cmake --build {build} --target xring_cli xring_python)")
        return 2
    sys.path.insert(0, pydir)
    os.environ["PYTHONPATH"] = pydir + os.pathsep + os.environ.get("PYTHONPATH", "")

    allowed = sorted(os.sched_getaffinity(0))
    cpus = (allowed[0], allowed[1]) if args.pin and len(allowed) >= 2 else (None, None)
    if cpus[1] is not None:
        # Before grpc starts its threads: they are the consumer's too.
        os.sched_setaffinity(0, {cpus[1]})

    steady = malloc_steady()

    import grpc
    import xring

    run_dir = tempfile.mkdtemp(prefix="xrpy-", dir="/tmp")
    os.environ["XRING_RUN_DIR"] = run_dir
    args.run_dir = run_dir
    run_id = os.getpid()
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    meta = {"benchmark": "bench_python", "cpus": os.cpu_count(), "cpu_model": model,
            "kernel": platform.release(), "python": platform.python_version(),
            "numpy": np.__version__, "grpc": grpc.__version__,
            "producer_cpu": cpus[0], "consumer_cpu": cpus[1], "seconds": args.seconds,
            "rounds": args.rounds, "grpc_transport": args.grpc, "cold": args.cold, "malloc_steady": steady,
            "fields": list(FIELDS),
            "loadavg_start": open("/proc/loadavg").read().split()[:3]}
    results = []
    try:
        for dtype in args.dtypes:
            results.append(run_dtype(args, xring, binary, dtype, cpus, run_id))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    if args.json:
        print(json.dumps({**meta, "results": results, "targets": [
            {k: v for k, v in t.items() if k != "text"} for t in targets(results)]}))
    else:
        print_text(meta, results, args)
    return 0


def _stopped(sig, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    # Ctrl-C or SIGTERM (`xring bench` passes it on): the engines, readers
    # and producers are stopped on the way out (the finally clauses), and
    # the run ends in one line, not a traceback.
    signal.signal(signal.SIGTERM, _stopped)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench_python: stopped; no figures", file=sys.stderr)
        sys.exit(130)
