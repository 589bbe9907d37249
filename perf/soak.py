#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Soak: an engine, lossless and lossy readers and agents for a chosen
duration, sampled every few seconds; says whether the engine's RSS, fds and
threads and the latency percentiles stay flat, and exits 1 if not.

    perf/soak.py [--seconds 1800] [--interval 5] [--build build] [--games 2000]

What runs: `xring engine` (games, --metrics-addr on a free loopback port),
two lossless `xring tail --stats` readers (one of every record, one of a
tenth of the games), one lossy reader, and two `xring agent`s on games
0-99 and 100-199. Each sample reads the engine's /proc (VmRSS, threads,
open fds) and `xring stat --json` (records written, the readers' lag and
drops, the agents' fallbacks, the round-trip and record-age p99s). The
first fifth of the run (at least two samples) is warm-up.

Flat means, after warm-up: RSS at the end within 5 % (and 2 MiB) of the
warm-up's, fds and threads unchanged, no lossless reader dropped a record,
the lossless readers' lag never above the ring, every reader and agent
still attached, and each p99 series' last third no more than 3x its first
third's median (they are bucket bounds: a step of one bucket is 25 %).
The suite runs it for 60 s (tests/soak.cmake); docs/benchmarks.md
records a 30-minute run.
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_figures(pid):
    with open(f"/proc/{pid}/status") as f:
        st = dict(line.split(":", 1) for line in f if ":" in line)
    rss = int(st["VmRSS"].split()[0])
    threads = int(st["Threads"])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, threads, fds


def stat(xring, name, env):
    out = subprocess.run([xring, "stat", name, "--json"], env=env, capture_output=True,
                         text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return json.loads(out.stdout)


def p99s(s):
    """The p99s to watch: agents' round trip, readers' record age (ns)."""
    out = {}
    for a in s["agents"]:
        if a["state"] == "live" and a["rtt_p99_ns"]:
            out[f"agent {a['agent']} rtt"] = a["rtt_p99_ns"]
    for r in s["readers"]:
        if r["ring"] == 0 and r["age_p99_ns"]:
            out[f"reader {r['slot']} ({r['label']}, {r['policy']}) age"] = r["age_p99_ns"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1800)
    ap.add_argument("--interval", type=float, default=5)
    ap.add_argument("--build", default=os.environ.get("XRING_BUILD_DIR", "build"))
    ap.add_argument("--games", type=int, default=2000)
    args = ap.parse_args()
    xring = os.path.join(args.build, "xring")
    if not os.access(xring, os.X_OK):
        sys.exit(f"soak: no xring at {xring}; build first (scripts/build.sh) or pass --build")
    run = tempfile.mkdtemp(prefix="xr-soak-", dir="/tmp")
    env = dict(os.environ, XRING_RUN_DIR=run)
    name = f"soak-{os.getpid()}"
    port = free_port()
    procs = []

    def start(argv, **kw):
        p = subprocess.Popen([xring] + argv, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, **kw)
        procs.append(p)
        return p

    engine = start(["engine", "--name", name, "--games", str(args.games), "--quiet",
                    "--ring-size", "64M", "--metrics-addr", f"127.0.0.1:{port}"])
    deadline = time.monotonic() + 20
    while True:
        try:
            stat(xring, name, env)
            break
        except RuntimeError:
            if engine.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"soak: the engine did not start: {engine.stderr.read().decode()}")
            time.sleep(0.1)
    start(["tail", name, "--stats"])
    start(["tail", name, "--stats", "--games", f"0-{args.games // 10}"])
    start(["tail", name, "--stats", "--policy", "lossy"])
    start(["agent", name, "--games", "0-99", "--quiet"])
    start(["agent", name, "--games", "100-199", "--quiet", "--policy", "last"])
    peers = procs[1:]

    samples = []
    t0 = time.monotonic()
    print(f"soak: engine {name} (pid {engine.pid}), {args.games} games, 3 readers, 2 agents, "
          f"{args.seconds:.0f} s, a sample every {args.interval:.0f} s")
    print(f"{'t s':>6} {'RSS KiB':>9} {'thr':>4} {'fds':>4} {'records/s':>11} "
          f"{'lag max KiB':>11} {'drops ll':>9} {'fallbacks':>9}  p99s (us)")
    problems = []
    last_written = None
    try:
        while True:
            now = time.monotonic() - t0
            if any(p.poll() is not None for p in procs):
                dead = [" ".join(p.args[1:3]) for p in procs if p.poll() is not None]
                problems.append(f"exited early: {', '.join(dead)}")
                break
            rss, thr, fds = proc_figures(engine.pid)
            s = stat(xring, name, env)
            written = sum(r["written"] for r in s["rings"])
            rate = 0 if last_written is None else (written - last_written[1]) / (now - last_written[0])
            last_written = (now, written)
            ll = [r for r in s["readers"] if r["policy"] == "lossless"]
            lag = max((r["lag_bytes"] for r in ll), default=0)
            drops = sum(r["dropped"] for r in ll)
            fb = sum(a["fallbacks"] for a in s["agents"] if a["state"] == "live")
            q = p99s(s)
            if q and not any(x["p99"] for x in samples):
                print("       p99s, in order: " + "; ".join(q), flush=True)
            samples.append(dict(t=now, rss=rss, thr=thr, fds=fds, lag=lag, drops=drops,
                                readers=len({r["slot"] for r in s["readers"]
                                             if r["label"] == "xring-tail"}),
                                agents=sum(a["state"] == "live" for a in s["agents"]),
                                cap=min(r["capacity"] for r in s["rings"]), p99=q))
            print(f"{now:6.0f} {rss:9d} {thr:4d} {fds:4d} {rate:11.0f} {lag >> 10:11d} "
                  f"{drops:9d} {fb:9d}  " +
                  " ".join(f"{v / 1e3:.0f}" for v in q.values()), flush=True)
            if now >= args.seconds:
                break
            time.sleep(max(0.0, args.interval - (time.monotonic() - t0 - now)))
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        try:
            os.rmdir(run)
        except OSError:
            pass

    warm = max(2, len(samples) // 5)
    if len(samples) < warm + 2:
        problems.append(f"only {len(samples)} samples: run longer (--seconds)")
    else:
        base, rest = samples[warm - 1], samples[warm:]
        end = samples[-1]
        if end["rss"] > base["rss"] * 1.05 + 2048:
            problems.append(f"RSS grew from {base['rss']} to {end['rss']} KiB after warm-up")
        for k in ("fds", "thr"):
            vals = {x[k] for x in rest}
            if vals != {base[k]}:
                problems.append(f"{k} changed after warm-up: {base[k]} -> {sorted(vals)}")
        if end["drops"]:
            problems.append(f"lossless readers dropped {end['drops']} records")
        if any(x["lag"] > x["cap"] for x in samples):
            problems.append("a lossless reader's lag passed the ring's size")
        if any(x["readers"] != 3 or x["agents"] != 2 for x in rest):
            problems.append("a reader or agent went away")
        third = max(1, len(rest) // 3)
        for key in samples[-1]["p99"]:
            series = [x["p99"][key] for x in rest if key in x["p99"]]
            if len(series) < 3 * third:
                continue
            first, last = statistics.median(series[:third]), statistics.median(series[-third:])
            if last > 3 * first:
                problems.append(f"{key} p99 rose from {first / 1e3:.0f} to {last / 1e3:.0f} us")
    if problems:
        print("soak: NOT flat: " + "; ".join(problems))
        return 1
    print(f"soak: flat over {samples[-1]['t']:.0f} s: RSS {samples[warm - 1]['rss']} -> "
          f"{samples[-1]['rss']} KiB, threads {samples[-1]['thr']}, fds {samples[-1]['fds']}, "
          f"no lossless drop, p99s steady")
    return 0


if __name__ == "__main__":
    sys.exit(main())
