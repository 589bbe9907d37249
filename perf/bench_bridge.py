#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench_bridge: records through `xring bridge out` -> nats-server ->
`xring bridge in` on loopback, against a plain libnats publisher and
consumer of the same bytes (perf/bench_nats) through the same server, in
the same run. Issue 16's figures; docs/benchmarks.md, "The bridge".

Throughput. An engine plays the built-in game flat out and this process
reads --records of its records (real ones: their observations compress as a
game's do), and `xring tail --raw` dumps 2,000 of them whole. Then, for each
message size (--max-bytes, default 64K,128K,256K,512K), without and with
zstd (level 3):
  xring   a source engine that serves producers only is filled with those
          records before the clock starts (this process's producer writes
          them and closes: the ring ends, holding them all); then `bridge
          in` into a destination engine (producers only), `bridge out` of
          the source, both with a key, and this process reading the
          destination as a trainer. Records/s and GB/s of record bytes from
          the first record's arrival to the last.
  libnats bench_nats: messages of the same size cut from the 2,000 dumped
          records, published with a Nats-Msg-Id, and a durable pull
          consumer (fetch 16, ack each), for as many seconds as xring's
          run took: what the bridge does, by hand. Twice: published one at
          a time, each waiting for its ack ("1-by-1"), and published as
          `bridge out` publishes a batch of 4,096 records, that many
          messages without waiting (at most 64 unacknowledged), then all
          their acks ("windowed"). The bound is the faster of the two:
          xring / libnats is printed as a ratio (issue 16 expects at least
          0.8).
  memcpy  this machine's memcpy bandwidth, measured here, for scale.
Each xring and each libnats run has a nats-server of its own, started on
an empty store after the last one's was removed and the disk synced: the
file store's writes of one run are not flushed during another.

Latency. On a fresh nats-server (the first writes out the gigabytes it
took), a source engine plays 8 games at 100 ticks a second (--tick-ms 10)
through the bridges (no zstd, 64K messages); per record, the destination
trainer's CLOCK_MONOTONIC when it reads it minus the record's t_ns (the
source step's time): p50 and p99 over --latency-seconds. Beside it,
bench_nats --latency: messages of one tick's records (8) every 10 ms.

On this 2-CPU machine the xring side runs five busy processes (two
bridges, the server, the destination engine's producer thread, this
reader), the libnats side three: the output says so.

  perf/bench_bridge.py [--build DIR] [--records N] [--max-bytes 64K,...]
                       [--latency-seconds S] [--quick] [--json]

--quick: 10,000 records, 64K and 512K, 2 s of latency (~40 s).
"""
import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

try:
    import numpy as np
except ImportError:
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and \
            os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

_T0 = time.monotonic()
NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"


def log(*a):
    print(f"[{time.monotonic() - _T0:6.1f} s]", *a, file=sys.stderr, flush=True)


def size_arg(s):
    s = s.strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20}.get(s[-1:], 1)
    return int(s[:-1] if s[-1:] in "KM" else s) * mult


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memcpy_gbps():
    a = np.ones(64 << 20, np.uint8)
    b = np.empty_like(a)
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        np.copyto(b, a)
        best = max(best, a.nbytes / (time.perf_counter() - t) / 1e9)
    return best


class Procs:
    """Every process started here, stopped by its pid at the end."""

    def __init__(self):
        self.all = []

    def start(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.all.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=20):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        said = ""
        if getattr(p, "log", None):
            with open(p.log) as f:
                said = f.read()
        return p.returncode, said

    def stop_all(self):
        for p in self.all:
            if p.poll() is None:
                p.kill()
                p.wait()


class Bench:
    def __init__(self, args, xring, binary, work, env, procs):
        self.a, self.xring, self.bin, self.work, self.env, self.procs = \
            args, xring, binary, work, env, procs
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.n = 0
        self.key = os.path.join(work, "bridge.key")
        fd = os.open(self.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, os.urandom(32))
        os.close(fd)

    def name(self, what):
        self.n += 1
        return f"bb-{os.getpid()}-{what}-{self.n}"

    def nats(self):
        """A server of its own, on an empty store. Every measured run gets
        a fresh one: a server that has taken the runs before writes their
        gigabytes out meanwhile (the kernel's flusher writes dirty pages
        30 s old; here that fell on the 512 KiB run, whichever side it
        was, and took it to 0.4 of the other side). Removing the old
        store drops its dirty pages unwritten, and sync() writes out the
        rest, so each run starts with nothing to flush."""
        if getattr(self, "server", None) is not None:
            self.procs.stop(self.server)
            self.port = free_port()
            self.url = f"nats://127.0.0.1:{self.port}"
            shutil.rmtree(os.path.join(self.work, "js"), ignore_errors=True)
            os.sync()
        with open(os.path.join(self.work, "nats.log"), "wb") as f:
            self.server = self.procs.start([NATS, "-js", "-sd", os.path.join(self.work, "js"),
                                            "-a", "127.0.0.1", "-p", str(self.port)],
                                           stdout=subprocess.DEVNULL, stderr=f)
        end = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.server.poll() is not None or time.monotonic() > end:
                    with open(os.path.join(self.work, "nats.log")) as f:
                        raise RuntimeError("nats-server did not start: " + f.read())
                time.sleep(0.05)

    def engine(self, name, *args):
        # Its words to a file: a pipe nobody reads while it runs would
        # stop it once full.
        log_path = os.path.join(self.work, name + ".log")
        with open(log_path, "wb") as log_f:
            p = self.procs.start([self.bin, "engine", "--name", name, "--quiet"] + list(args),
                                 stdout=subprocess.DEVNULL, stderr=log_f, env=self.env)
        end = time.monotonic() + 20
        while True:
            if p.poll() is not None:
                with open(log_path) as f:
                    raise RuntimeError(f"engine {name}: {f.read()}")
            try:
                return p, self.xring.attach(name, timeout=0.1)
            except self.xring.NoEngineError:
                if time.monotonic() > end:
                    raise RuntimeError(f"engine {name} did not come up in 20 s")

    def bridge(self, direction, eng, subject, *extra):
        path = os.path.join(self.work, f"bridge-{direction}-{eng}.log")
        with open(path, "wb") as f:
            p = self.procs.start([self.bin, "bridge", direction, eng, "--nats", self.url,
                                  "--subject", subject, "--key-file", self.key, "--quiet"]
                                 + list(extra), stdout=f, stderr=subprocess.STDOUT, env=self.env)
        p.log = path
        return p

    # -- the records ---------------------------------------------------------

    def records(self):
        name = self.name("gen")
        p, e = self.engine(name, "--games", "64", "--ring-size", "1G")
        n = self.a.records
        fields = {k: [] for k in ("obs", "action", "reward", "done", "truncated", "game_id",
                                  "player_id", "turn", "mask", "applied", "applied_by")}
        got = 0
        with e.reader(batch=1024, max_wait=0.05, history="all") as r:
            while got < n:
                b = r.read(timeout=5)
                if b is None:
                    raise RuntimeError(f"the game engine gave {got} records in 5 s")
                k = min(len(b), n - got)
                for f in fields:
                    v = getattr(b, f)
                    if v is not None:
                        fields[f].append(np.array(v[:k]))
                got += k
                b.release()
            # A live view keeps its batch leased, and this lossless reader
            # attached past the with: the engine would stop a ring's lap
            # later (with --records past a lap, xring tail below waited).
            del b, v
        raw = os.path.join(self.work, "raw")
        os.mkdir(raw)
        out = subprocess.run([self.bin, "tail", name, "-n", "2000", "--raw", raw], env=self.env,
                             capture_output=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"xring tail --raw: {out.stderr.decode()}")
        self.procs.stop(p)
        self.payload = os.path.join(self.work, "payload.bin")
        files = sorted(os.listdir(raw))
        with open(self.payload, "wb") as f:
            for fn in files:
                with open(os.path.join(raw, fn), "rb") as g:
                    f.write(g.read())
        self.record_bytes = os.path.getsize(self.payload) / len(files)
        shutil.rmtree(raw)
        self.fields = {k: np.concatenate(v) for k, v in fields.items() if v}
        return n

    def fill(self, name):
        p, e = self.engine(name, "--games", "0", "--producers", "1", "--ring-size", "1G")
        f, n = self.fields, self.a.records
        with e.producer() as pr:
            for i in range(0, n, 512):
                j = min(i + 512, n)
                kw = {k: f[k][i:j] for k in ("action", "reward", "done", "truncated",
                                             "game_id", "player_id", "turn", "applied",
                                             "applied_by")}
                if "mask" in f:
                    kw["mask"] = f["mask"][i:j]
                pr.write_many(f["obs"][i:j], timeout=60, **kw)
            pr.flush(timeout=60)
        return p, e

    # -- the runs ------------------------------------------------------------

    def xring_run(self, max_bytes, zstd):
        src = self.name("src")
        sp, _ = self.fill(src)
        dst = self.name("dst")
        dp, de = self.engine(dst, "--games", "0", "--producers", "1", "--ring-size", "256M")
        self.nats()
        subject = f"xr.bench.{self.n}"
        n, first, last, n_first = 0, None, None, 0
        with de.reader(batch=4096, max_wait=0.05) as r:
            inn = self.bridge("in", dst, subject)
            extra = ["--max-bytes", str(max_bytes)] + (["--zstd", "3"] if zstd else [])
            out = self.bridge("out", src, subject, *extra)
            end = time.monotonic() + 300
            while n < self.a.records:
                if time.monotonic() > end or inn.poll() is not None or out.poll() is not None:
                    raise RuntimeError(f"{n} of {self.a.records} records came through: "
                                       f"{self.procs.stop(inn)[1]} {self.procs.stop(out)[1]}")
                b = r.read(timeout=0.5)
                if b is None:
                    continue
                t = time.monotonic()
                if first is None:
                    first, n_first = t, len(b)
                last = t
                n += len(b)
                b.release()
        for p in (out, inn, sp, dp):
            self.procs.stop(p)
        secs = last - first
        recs = (n - n_first) / secs if secs > 0 else 0.0
        return {"records": n, "seconds": secs, "records_per_s": recs,
                "gbps": recs * self.record_bytes / 1e9}

    def nats_run(self, max_bytes, seconds, window=1):
        self.nats()
        self.n += 1
        out = subprocess.run([os.path.join(self.a.build, "perf", "bench_nats"), "--url", self.url,
                              "--stream", f"bn-{self.n}", "--subject", f"bn.{self.n}",
                              "--msg-bytes", str(max_bytes), "--seconds", f"{seconds:.2f}",
                              "--window", str(window),
                              "--payload", self.payload], capture_output=True, text=True,
                             timeout=seconds * 10 + 60)
        if out.returncode != 0:
            raise RuntimeError(f"bench_nats: {out.stderr}")
        r = json.loads(out.stdout)
        r["records_per_s"] = r["gbps"] * 1e9 / self.record_bytes
        return r

    def latency(self, seconds):
        src, dst = self.name("lsrc"), self.name("ldst")
        sp, _ = self.engine(src, "--games", "8", "--tick-ms", "10", "--ring-size", "64M")
        dp, de = self.engine(dst, "--games", "0", "--producers", "1", "--ring-size", "64M")
        subject = f"xr.lat.{self.n}"
        lat = []
        with de.reader(batch=256, min_batch=1, max_wait=0.05) as r:
            inn = self.bridge("in", dst, subject)
            out = self.bridge("out", src, subject, "--max-bytes", "64K")
            warm = time.monotonic() + 1.0
            end = warm + seconds
            while time.monotonic() < end:
                b = r.read(timeout=0.5)
                if b is None:
                    continue
                now = time.monotonic_ns()
                if time.monotonic() > warm:
                    lat.extend((now - b.t_ns.astype(np.int64)).tolist())
                b.release()
        for p in (out, inn, sp, dp):
            self.procs.stop(p)
        if not lat:
            raise RuntimeError("no record came through the bridges for the latency run")
        us = np.asarray(lat, np.float64) / 1e3
        x = {"n": len(us), "p50_us": float(np.percentile(us, 50)),
             "p99_us": float(np.percentile(us, 99)), "max_us": float(us.max()),
             "over_100ms": int((us > 100000).sum())}
        self.n += 1
        o = subprocess.run([os.path.join(self.a.build, "perf", "bench_nats"), "--url", self.url,
                            "--stream", f"bl-{self.n}", "--subject", f"bl.{self.n}",
                            "--msg-bytes", str(int(8 * self.record_bytes)),
                            "--latency", str(int(seconds * 100)), "--interval-ms", "10"],
                           capture_output=True, text=True, timeout=seconds * 10 + 60)
        if o.returncode != 0:
            raise RuntimeError(f"bench_nats --latency: {o.stderr}")
        return x, json.loads(o.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.environ.get("BUILD_DIR") or os.path.join(ROOT, "build"))
    ap.add_argument("--records", type=int, default=None, help="default 40000 (--quick: 10000)")
    ap.add_argument("--max-bytes", default=None, help="default 64K,128K,256K,512K")
    ap.add_argument("--latency-seconds", type=float, default=None, help="default 5")
    ap.add_argument("--only", choices=("throughput", "latency"), default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.records is None:
        args.records = 10000 if args.quick else 40000
    if args.max_bytes is None:
        args.max_bytes = "64K,512K" if args.quick else "64K,128K,256K,512K"
    if args.latency_seconds is None:
        args.latency_seconds = 2.0 if args.quick else 5.0
    try:
        sizes = [size_arg(s) for s in args.max_bytes.split(",")]
    except ValueError:
        ap.error("--max-bytes: sizes like 64K,512K")
    if any(not 4096 <= s <= 16 << 20 for s in sizes) or args.records < 1000 \
            or args.latency_seconds <= 0:
        ap.error("--max-bytes 4K..16M each; --records >= 1000; --latency-seconds > 0")
    build = args.build = os.path.abspath(args.build)
    binary, pydir = os.path.join(build, "xring"), os.path.join(build, "python")
    for need in (binary, os.path.join(build, "perf", "bench_nats"), NATS):
        if not os.access(need, os.X_OK):
            log(f"bench_bridge: no {need}: build the project (cmake --build {build}) and "
                "install nats-server (scripts/deps.sh)")
            return 2
    sys.path.insert(0, pydir)
    work = tempfile.mkdtemp(prefix="xrbridge-", dir="/tmp")
    env = dict(os.environ, XRING_RUN_DIR=work)
    os.environ.update(XRING_RUN_DIR=work)
    import xring

    procs = Procs()
    res = {"benchmark": "bench_bridge", "cpus": len(os.sched_getaffinity(0)),
           "kernel": platform.release(), "records": args.records, "runs": []}
    try:
        b = Bench(args, xring, binary, work, env, procs)
        b.nats()
        log(f"reading {args.records} records of the built-in game")
        b.records()
        res["record_bytes"] = b.record_bytes
        res["memcpy_gbps"] = mc = memcpy_gbps()
        for size in sizes if args.only != "latency" else []:
            for zstd in (False, True):
                log(f"xring bridge, messages of {size >> 10} KiB{', zstd 3' if zstd else ''}")
                x = b.xring_run(size, zstd)
                if not zstd:
                    secs = max(2.0, x["seconds"])
                    # bridge out's batch: 4,096 records cut into messages.
                    window = min(4096, -(-4096 * int(b.record_bytes) // size))
                    log(f"plain libnats, messages of {size >> 10} KiB, one at a time")
                    one = b.nats_run(size, secs)
                    log(f"plain libnats, messages of {size >> 10} KiB, {window} at a time")
                    win = b.nats_run(size, secs, window)
                    base = dict(max((one, win), key=lambda r: r["gbps"]),
                                one_gbps=one["gbps"], windowed_gbps=win["gbps"], window=window)
                res["runs"].append({"max_bytes": size, "zstd": zstd, "xring": x,
                                    "libnats": base, "ratio": x["gbps"] / base["gbps"],
                                    "memcpy_ratio": x["gbps"] / mc})
        if args.only != "throughput":
            log("latency, 8 games at 100 ticks a second (a fresh nats-server)")
            b.nats()
            lx, lb = b.latency(args.latency_seconds)
            res["latency"] = {"xring": lx, "libnats": lb}
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"bench_bridge: {args.records} records of {res['record_bytes']:.0f} bytes, "
          f"{res['cpus']} CPUs; memcpy {res['memcpy_gbps']:.1f} GB/s")
    print(f"{'messages':>10} {'zstd':>5} {'xring rec/s':>12} {'xring GB/s':>11} "
          f"{'libnats GB/s: 1-by-1':>21} {'windowed':>9} {'xring/libnats':>14} "
          f"{'xring/memcpy':>13}")
    for r in res["runs"]:
        print(f"{r['max_bytes'] >> 10:>8}K {'3' if r['zstd'] else '-':>5} "
              f"{r['xring']['records_per_s']:>12.0f} {r['xring']['gbps']:>11.3f} "
              f"{r['libnats']['one_gbps']:>21.3f} {r['libnats']['windowed_gbps']:>9.3f} "
              f"{r['ratio']:>14.2f} {r['memcpy_ratio']:>13.4f}")
    print("xring/libnats is against the faster of the two libnats runs.")
    if "latency" not in res:
        return 0
    lx, lb = res["latency"]["xring"], res["latency"]["libnats"]
    print(f"latency, source step to destination trainer (8 games, 10 ms ticks): xring p50 "
          f"{lx['p50_us']:.0f} us, p99 {lx['p99_us']:.0f} us ({lx['n']} records); plain "
          f"libnats, one message a tick: p50 {lb['p50_us']:.0f} us, p99 {lb['p99_us']:.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
