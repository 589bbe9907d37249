#!/usr/bin/python3
"""Charts of a benchmark run: PNGs from the JSON that `xring bench --plot DIR`
leaves in DIR (one file per part: ring.json, engine.json, peers.json,
python.json). Each chart draws the bound measured in the same run beside
xring's figure.

  peers_throughput.png  GB/s against record size, every transport
  peers_latency.png     one-way latency p50/p99/p999 by transport, spinning
                        and blocking, one panel per record size
  ring_throughput.png   xring against the bare ring and memcpy, by size
  engine.png            experiences/s against games, and memcpy's rate for
                        the same records
  python.png            records/s into numpy against batch size: xring, a
                        multiprocessing Queue, gRPC, memcpy

Usage: plot.py DIR. Parts without a JSON file are skipped, and said so.
Exit status 0, 1 when a file does not parse, 2 without matplotlib (Debian:
python3-matplotlib).
"""
import json
import os
import stat
import sys


def load(path):
    """The JSON objects of one part's output, one per line (or one in all)."""
    with open(path) as f:
        text = f.read()
    objs = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            objs.append(json.loads(line))
    return objs


def save(plt, fig, ax, out, name):
    """Grid, legend, layout; writes out/name and returns its path."""
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def peers(plt, objs, out):
    rows = [o for o in objs if o.get("transport") and o.get("status") == "ok"]
    absent = sorted({o["transport"] for o in objs
                     if o.get("transport") and o.get("status") != "ok"})
    if not rows:
        return []
    names = []
    for o in rows:
        if o["transport"] not in names:
            names.append(o["transport"])
    sizes = sorted({o["size"] for o in rows})

    fig, ax = plt.subplots(figsize=(8, 5))
    for name in names:
        pts = sorted((o["size"], o["gbps"]) for o in rows if o["transport"] == name)
        style = "-" if name in ("xring", "bare ring", "bare") else "--"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [fmt_size(s) for s in sizes])
    ax.set_xlabel("record size")
    ax.set_ylabel("GB/s (payload, writer to reader, every byte checked)")
    title = "Throughput by transport, one run"
    if absent:
        title += f"\n(absent: {', '.join(absent)})"
    ax.set_title(title)
    p1 = save(plt, fig, ax, out, "peers_throughput.png")

    fig, axes = plt.subplots(1, len(sizes), figsize=(4 * len(sizes), 5), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        here = [o for o in rows if o["size"] == size]
        labels, xs = [], 0
        for o in here:
            for mode, key, shade in (("spin", "latency_spin_ns", 0.9), ("block", "latency_block_ns", 0.5)):
                lat = o.get(key)
                if not lat:
                    continue
                vals = [max(lat[p], 1) / 1e3 for p in ("p50", "p99", "p999")]
                ax.bar([xs - 0.25, xs, xs + 0.25], vals, width=0.25, alpha=shade,
                       color=["tab:blue", "tab:orange", "tab:red"])
                labels.append((xs, f"{o['transport']}\n{mode}"))
                xs += 1
        ax.set_yscale("log")
        ax.set_xticks([x for x, _ in labels], [t for _, t in labels], rotation=90, fontsize=7)
        ax.set_title(f"{fmt_size(size)} records")
        ax.set_ylabel("one-way latency, µs (p50 blue, p99 orange, p999 red)")
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    p2 = os.path.join(out, "peers_latency.png")
    fig.savefig(p2, dpi=110)
    plt.close(fig)
    return [p1, p2]


def ring(plt, objs, out):
    res = [r for o in objs for r in o.get("results", []) if "size" in r]
    if not res:
        return []
    res.sort(key=lambda r: r["size"])
    sizes = [r["size"] for r in res]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(sizes, [r["gbps"] for r in res], "-o", label="xring")
    if all("bare_gbps" in r for r in res):
        ax.plot(sizes, [r["bare_gbps"] for r in res], "-s", label="bare ring (same run)")
    ax.plot(sizes, [r["memcpy_gbps"] for r in res], ":", label="memcpy, ring-sized blocks (same run)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [fmt_size(s) for s in sizes])
    ax.set_xlabel("record size")
    ax.set_ylabel("GB/s")
    ax.set_title("Ring throughput between two processes")
    return [save(plt, fig, ax, out, "ring_throughput.png")]


def engine(plt, objs, out):
    """Three panels against games: experiences/s (and memcpy's rate for the
    same records); the engine's CPU per experience beside the game alone
    and issue 14's bound; the engine's RSS."""
    rows = sorted((o for o in objs if o.get("benchmark") == "bench_engine"),
                  key=lambda o: o["games"])
    if not rows:
        return []
    games = [o["games"] for o in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    ax = axes[0]
    ax.plot(games, [o["exp_per_s"] for o in rows], "-o", label="xring engine, verified by a reader")
    ax.plot(games, [o["memcpy_gbps"] * 1e9 / o["record_bytes"] for o in rows], ":",
            label="one memcpy of the same records (same run)")
    ax.set_yscale("log")
    ax.set_ylabel("experiences/s")
    ax.set_title(f"{rows[0]['record_bytes']}-byte grid records, {rows[0]['shards']} shard(s)")
    ax = axes[1]
    if all("game_ns_per_exp" in o for o in rows):
        ax.plot(games, [o["cpu_ns_per_exp"] for o in rows], "-o", label="engine CPU")
        ax.plot(games, [o["game_ns_per_exp"] for o in rows], "-s", label="the game alone, no xring")
        ax.plot(games, [o["bound_ns_per_exp"] for o in rows], ":",
                label="bound: 1.5 x (memcpy + step)")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("ns per experience")
    ax.set_title("CPU per experience (steady state)")
    ax = axes[2]
    ax.plot(games, [o["rss_kib"] / 1024 for o in rows], "-o", label="engine RSS (rings not in it)")
    ax.set_yscale("log")
    ax.set_ylabel("MiB")
    ax.set_title("Memory")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("games")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = os.path.join(out, "engine.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def python(plt, objs, out):
    made = []
    for o in objs:
        for res in o.get("results", []):
            b = res.get("batches") or {}
            if not b:
                continue
            ns = sorted(int(n) for n in b)
            fig, ax = plt.subplots(figsize=(8, 5))
            for key, label in (("xring_rec_s", "xring, batch views in place"),
                               ("xring_e2e_rec_s", "xring, engine producing"),
                               ("queue_rec_s", "multiprocessing Queue"),
                               ("grpc_rec_s", "gRPC stream")):
                if all(key in b[str(n)] for n in ns):
                    ax.plot(ns, [b[str(n)][key] for n in ns], "-o", label=label)
            stride = res.get("stride")
            if stride and all("memcpy_gbps" in b[str(n)] for n in ns):
                ax.plot(ns, [b[str(n)]["memcpy_gbps"] * 1e9 / stride for n in ns], ":",
                        label="memcpy of the batch (same run)")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("batch size (records)")
            ax.set_ylabel("records/s into the consumer")
            ax.set_title(f"Python: {res.get('dtype', '?')} observations")
            made.append(save(plt, fig, ax, out, f"python_{res.get('dtype', 'x')}.png"))
    return made


def fanout(plt, objs, out):
    runs = [o for o in objs if o.get("benchmark") == "bench_fanout"]
    if not runs:
        return []
    pts = sorted(runs[-1]["points"], key=lambda q: q["readers"])
    ns = [q["readers"] for q in pts]
    fig, ax = plt.subplots(figsize=(8, 5))
    for key, label, style in (("xring", "xring", "-o"), ("bare_eventfd", "bare eventfd (same run)", ":s")):
        ax.plot(ns, [q[key]["p50_us"] for q in pts], style, label=f"{label}, p50")
        ax.plot(ns, [q[key]["last_p99_us"] for q in pts], style, alpha=0.5,
                label=f"{label}, last reader's p99")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sleeping readers")
    ax.set_ylabel("publish to read's return, us")
    ax.set_title("Wakeup latency against the number of sleeping readers")
    return [save(plt, fig, ax, out, "fanout.png")]


def fmt_size(n):
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} B"


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        print("usage: plot.py DIR (a directory of xring bench --plot JSON files)", file=sys.stderr)
        return 2
    out = sys.argv[1]
    # The charts are written by name: in a directory another user may write,
    # a link planted there would have them written wherever it points.
    st = os.lstat(out)
    if stat.S_ISLNK(st.st_mode) or st.st_uid not in (0, os.geteuid()) or \
            st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        print(f"plot.py: {out} is a link, another user's, or writable by others: give it a "
              "directory of this user's that no other user may write", file=sys.stderr)
        return 2
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot.py: no matplotlib for this python3: install Debian's python3-matplotlib",
              file=sys.stderr)
        return 2
    made = []
    status = 0
    for part, fn in (("peers", peers), ("ring", ring), ("engine", engine),
                     ("fanout", fanout), ("python", python)):
        path = os.path.join(out, part + ".json")
        if not os.path.exists(path):
            continue
        try:
            objs = load(path)
        except (OSError, ValueError) as e:
            print(f"plot.py: {path}: {e}", file=sys.stderr)
            status = 1
            continue
        got = fn(plt, objs, out)
        if not got:
            print(f"plot.py: {path}: no figures to draw", file=sys.stderr)
        made += got
    for p in made:
        print(p)
    return status


if __name__ == "__main__":
    sys.exit(main())
