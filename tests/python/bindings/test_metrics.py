# SPDX-License-Identifier: MIT
"""`xring stat` and the engine's metrics endpoint (--metrics-addr).

The endpoint is scraped and checked against `xring stat --json` taken just
before and just after (counters between the two, constants equal), against
`promtool check metrics`, and by a real Prometheus server where Debian's
`prometheus` is installed (scripts/deps.sh installs it). Hostile clients
(silent, oversized, many) must not stop the engine's housekeeping.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest

import xring
from conftest import REPO, XRING_BIN
from xrtest import wait_for

EXAMPLES = REPO / "docs" / "examples"

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse(text):
    """{(name, frozenset(labels)): value} and {name: type}."""
    values, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
            continue
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        assert m, f"not an exposition line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
        key = (m.group(1), labels)
        assert key not in values, f"series twice: {line}"
        values[key] = float(m.group(4))
    return values, types


def stat(name, env):
    out = subprocess.run([str(XRING_BIN), "stat", name, "--json"], env=env,
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def scrape(port, path="/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def one(values, metric, **labels):
    want = frozenset((k, str(v)) for k, v in labels.items())
    hits = [v for (n, ls), v in values.items() if n == metric and want <= ls]
    assert len(hits) == 1, f"{metric} {labels}: {len(hits)} series"
    return hits[0]


def read_records(r, n):
    """Reads batches of r until n records have come (each batch in 5 s)."""
    got = 0
    while got < n:
        b = r.read(timeout=5)
        assert b is not None
        got += len(b)
        b.release()


@pytest.fixture
def metered(engines):
    port = free_port()
    e = engines("--metrics-addr", f"127.0.0.1:{port}", games=50)
    return e, port


def test_stat_and_metrics_agree(metered):
    e, port = metered
    env = e.env
    agent = subprocess.Popen([str(XRING_BIN), "agent", e.name, "--games", "0-9"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Lossy: while this test looks at the figures rather than reading,
        # the games go on (a lossless reader not reading would stop them).
        with xring.attach(e.name, timeout=5).reader(batch=256, label="metered",
                                                     policy="lossy") as r:
            read_records(r, 20000)
            # Counts reach the arena on the engine's housekeeping and the
            # shards' stats ticks: wait until the agent has been counted.
            deadline = time.monotonic() + 10
            while True:
                before = stat(e.name, env)
                if before["agents"] and before["agents"][0]["actions"] > 0 and \
                        before["rings"][0]["shard"]["steps_per_s"] > 0:
                    break
                assert time.monotonic() < deadline, before
                time.sleep(0.05)
            text = scrape(port)
            after = stat(e.name, env)
    finally:
        agent.terminate()
        agent.wait(10)

    values, types = parse(text)
    ring = dict(stream="experience", ring=0)
    # Constants: equal.
    assert one(values, "xring_ring_capacity_bytes", **ring) == before["rings"][0]["capacity"]
    assert one(values, "xring_shard_games", **ring) == before["rings"][0]["shard"]["games"] == 50
    assert one(values, "xring_arena_bytes") == before["size"]
    assert one(values, "xring_engine_info", name=e.name, pid=before["pid"]) == 1
    # Counters: between the two snapshots.
    for metric, get in [
        ("xring_ring_records_total", lambda s: s["rings"][0]["written"]),
        ("xring_ring_bytes_total", lambda s: s["rings"][0]["bytes"]),
        ("xring_ring_publishes_total", lambda s: s["rings"][0]["publishes"]),
        ("xring_shard_steps_total", lambda s: s["rings"][0]["shard"]["steps"]),
        ("xring_shard_episodes_total", lambda s: s["rings"][0]["shard"]["episodes"]),
        ("xring_connections_accepted_total", lambda s: s["connections"]),
    ]:
        v = one(values, metric, **({} if metric.startswith("xring_conn") else ring))
        assert get(before) <= v <= get(after), (metric, get(before), v, get(after))
    reader = [d for d in before["readers"] if d["label"] == "metered"]
    assert len(reader) == 1
    v = one(values, "xring_reader_records_read_total", label="metered", slot=reader[0]["slot"])
    assert reader[0]["read"] <= v
    assert [d for d in after["readers"] if d["label"] == "metered"][0]["read"] >= v
    ag = before["agents"][0]
    actions = one(values, "xring_agent_actions_total", agent=ag["agent"])
    assert ag["actions"] <= actions <= after["agents"][0]["actions"]
    # The round-trip histogram: cumulative, +Inf equal to its count.
    buckets = sorted(((float(dict(ls)["le"]), v) for (n, ls), v in values.items()
                      if n == "xring_agent_round_trip_seconds_bucket"), key=lambda t: t[0])
    assert buckets and buckets[-1][0] == float("inf")
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    count = one(values, "xring_agent_round_trip_seconds_count", agent=ag["agent"])
    assert buckets[-1][1] == count > 0
    assert one(values, "xring_agent_round_trip_seconds_sum", agent=ag["agent"]) > 0
    assert types["xring_agent_round_trip_seconds"] == "histogram"
    assert types["xring_shard_steps_total"] == "counter"
    # Every family's samples have HELP and TYPE.
    for (n, _) in values:
        base = re.sub(r"_(bucket|sum|count)$", "", n)
        assert n in types or base in types, n
    promtool = shutil.which("promtool")
    if promtool:
        out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr


def test_refusals_are_counted(metered):
    e, port = metered
    before = stat(e.name, e.env)["refusals"]["malformed"]
    path = xring.control_path(e.name)
    for _ in range(3):
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.connect(path)
            s.sendall(b"\xff" * 64)  # no message of the protocol
            s.settimeout(5)
            s.recv(4096)             # the error, then the hangup
    deadline = time.monotonic() + 5
    while stat(e.name, e.env)["refusals"]["malformed"] < before + 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    values, _ = parse(scrape(port))
    assert one(values, "xring_refusals_total", reason="malformed") >= before + 3


def test_hostile_clients_do_not_stop_housekeeping(metered):
    e, port = metered
    idle = []
    try:
        # More silent connections than the endpoint has places.
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            idle.append(s)
        # One that trickles a request that never ends.
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        idle.append(s)
        s.sendall(b"GET /metrics HTTP/1.1\r\nX: ")
        # The engine's heartbeat goes on (10 Hz) while they hang on.
        t0 = stat(e.name, e.env)
        deadline = time.monotonic() + 5
        while True:
            t1 = stat(e.name, e.env)
            if t1["uptime_s"] >= t0["uptime_s"] + 0.5:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert t1["heartbeat_age_s"] < 0.5
        # And a scraper gets in while they hang on: the oldest silent
        # connection makes way for it.
        assert "xring_shard_steps_total" in scrape(port)
    finally:
        for s in idle:
            s.close()
    # Once they are gone, scrapes are answered again.
    deadline = time.monotonic() + 10
    while True:
        try:
            text = scrape(port)
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert "xring_shard_steps_total" in text


def test_bad_requests(metered):
    _, port = metered
    def raw(data):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(data)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
    assert raw(b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405")
    assert raw(b"GET /nothing HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404")
    assert raw(b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 431")
    head = raw(b"HEAD /metrics HTTP/1.0\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")
    assert raw(b"\x00\xff garbage\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw(b"\xff garbage\r\n\r\n").startswith(b"HTTP/1.1 405")


@pytest.mark.parametrize("addr,why", [
    ("0.0.0.0:9464", "not a loopback address"),
    ("10.1.2.3:9464", "not a loopback address"),
    ("127.0.0.1:70000", "port"),
    ("127.0.0.1", "HOST:PORT"),
    ("example.com:80", "IPv4"),
])
def test_metrics_addr_is_checked(run_dir, addr, why):
    env = dict(os.environ, XRING_RUN_DIR=str(run_dir))
    out = subprocess.run([str(XRING_BIN), "engine", "--name", "bad-metrics", "--games", "1",
                          "--metrics-addr", addr], env=env, capture_output=True, text=True,
                         timeout=10)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and why in lines[0], out.stderr


def test_port_taken_is_one_line(engines):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        e = engines("--metrics-addr", f"127.0.0.1:{port}", start=False)
        out = subprocess.run([str(XRING_BIN), "engine", "--name", e.name, "--games", "1",
                              "--metrics-addr", f"127.0.0.1:{port}"], env=e.env,
                             capture_output=True, text=True, timeout=10)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "another program has that port" in out.stderr


def test_stat_of_no_engine_is_one_line(run_dir):
    env = dict(os.environ, XRING_RUN_DIR=str(run_dir))
    out = subprocess.run([str(XRING_BIN), "stat", "no-such-engine"], env=env,
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "no engine 'no-such-engine'" in out.stderr


@pytest.mark.skipif(not shutil.which("prometheus"), reason="Debian's prometheus is not installed")
def test_a_real_prometheus_scrapes_it(metered, tmp_path):
    e, port = metered
    web = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: xring\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{port}']\n")
    prom = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{web}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert prom.poll() is None, "prometheus exited"
            try:
                q = urllib.request.urlopen(
                    f"http://127.0.0.1:{web}/api/v1/query?query=xring_shard_steps_total",
                    timeout=2)
                res = json.loads(q.read())["data"]["result"]
                if res:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "prometheus scraped nothing in 60 s"
            time.sleep(0.2)
        assert float(res[0]["value"][1]) > 0
        t = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{web}/api/v1/targets", timeout=5).read())
        health = [a["health"] for a in t["data"]["activeTargets"]]
        assert health == ["up"], t
        # Every query of the example dashboard and alert rules is one this
        # Prometheus accepts (a typo in PromQL is an error here).
        for expr in example_queries():
            q = urllib.parse.quote(expr.replace("$instance", ".*"))
            r = json.loads(urllib.request.urlopen(
                f"http://127.0.0.1:{web}/api/v1/query?query={q}", timeout=5).read())
            assert r["status"] == "success", (expr, r)
    finally:
        prom.send_signal(signal.SIGTERM)
        prom.wait(30)


def example_queries():
    """The PromQL of docs/examples' Grafana dashboard and alert rules."""
    dash = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    rules = (EXAMPLES / "prometheus-alerts.yml").read_text()
    # The rules file's exprs, folded or not (a YAML parser is not in the
    # suite's dependencies; the file's shape is fixed: `expr:` then either
    # the query or `|` and an indented block).
    lines = rules.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("expr:"):
            rest = line.split("expr:", 1)[1].strip()
            if rest != "|":
                exprs.append(rest)
                continue
            indent, block = None, []
            for more in lines[i + 1:]:
                if not more.strip():
                    break
                ind = len(more) - len(more.lstrip())
                indent = indent if indent is not None else ind
                if ind < indent:
                    break
                block.append(more.strip())
            exprs.append(" ".join(block))
    return exprs


def test_examples_use_served_metrics(metered):
    """The dashboard and alert rules name only families the engine serves,
    and promtool accepts the rules."""
    _, port = metered
    _, types = parse(scrape(port))
    exprs = example_queries()
    assert len(exprs) >= 20
    for expr in exprs:
        for metric in re.findall(r"\b(xring_[a-z0-9_]+)", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", metric)
            assert metric in types or base in types, f"{metric} in {expr!r} is not served"
    promtool = shutil.which("promtool")
    if promtool:
        out = subprocess.run([promtool, "check", "rules", str(EXAMPLES / "prometheus-alerts.yml")],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and "SUCCESS: 8 rules found" in out.stdout, out.stdout + out.stderr


def test_a_readers_own_figures_reach_stat(metered):
    """What a reader counts itself (batches, filtered, copies, record age,
    wakeups) reaches `xring stat` and the endpoint through its page."""
    e, port = metered
    taken = copied = 0
    with xring.attach(e.name, timeout=5).reader(batch=64, games=[(0, 4)], label="own",
                                                 policy="lossy") as r:
        while taken < 200:
            b = r.read(timeout=5)
            assert b is not None
            taken += 1
            copied += b.copied is not None
            b.release()
        deadline = time.monotonic() + 5
        while True:
            mine = [d for d in stat(e.name, e.env)["readers"] if d["label"] == "own"]
            assert len(mine) == 1
            d = mine[0]
            if d["batches"] >= taken:
                break
            assert time.monotonic() < deadline, d
            time.sleep(0.02)
        text = scrape(port)
    assert d["filtered"] > 0             # 45 of the 50 games' records
    assert d["copies"] == copied
    assert d["age_ns"]["count"] >= taken
    assert d["age_p50_ns"] is not None and d["age_p99_ns"] >= d["age_p50_ns"]
    assert d["fill_ns"]["count"] >= taken
    assert d["wakeups"] <= d["sleeps"]
    values, _ = parse(text)
    assert one(values, "xring_reader_batches_total", label="own") >= taken
    assert one(values, "xring_reader_record_age_seconds_count", label="own") >= taken


@pytest.mark.solo
def test_stat_needs_no_answer_from_the_engine(engines):
    """Tools read the arena's stats region, not the engine: with the engine
    stopped (SIGSTOP) `xring stat` still answers at once, with the same
    counters, and its heartbeat age grows; the engine goes on after SIGCONT."""
    e = engines(games=20)
    before = stat(e.name, e.env)
    os.kill(e.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        a = stat(e.name, e.env)
        deadline = time.monotonic() + 5
        while True:                          # the heartbeat stops ageing only if it beats
            b = stat(e.name, e.env)
            if b["heartbeat_age_s"] >= a["heartbeat_age_s"] + 0.3:
                break
            assert time.monotonic() < deadline, (a["heartbeat_age_s"], b["heartbeat_age_s"])
            time.sleep(0.05)
        assert time.monotonic() - t0 < 5
        assert b["streams"] == a["streams"]  # nothing moves while it is stopped
        assert b["heartbeat_age_s"] > 0.3
    finally:
        os.kill(e.proc.pid, signal.SIGCONT)
    deadline = time.monotonic() + 5
    while stat(e.name, e.env)["heartbeat_age_s"] >= 0.5:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert before["streams"] != b["streams"] or before["uptime_s"] < b["uptime_s"]


def _tables(name, env):
    return {t["name"]: t for t in stat(name, env)["tables"]}


def test_tables_reach_stat_and_metrics(metered):
    """Replay tables are in the arena's stats region: `xring stat` and the
    endpoint show each table's kind and figures as its trainers see them
    (Table.stats()), a fed one's feed, a dropped one until its last trainer
    closes, and none after."""
    e, port = metered
    x = xring.attach(e.name, timeout=5)
    rng = np.random.default_rng(3)
    t = x.create_table("plain", capacity=100, item_size=32, sampler="prioritized",
                       remover="lowest-priority")
    t.insert(rng.integers(0, 255, (50, 32), dtype=np.uint8), np.arange(1, 51, dtype=np.float64))
    s = t.sample(8)
    fed = x.create_table("fed", capacity=300, source="experience")
    deadline = time.monotonic() + 10
    while _tables(e.name, e.env).get("fed", {}).get("size") != 300:
        assert time.monotonic() < deadline, _tables(e.name, e.env)
        time.sleep(0.05)
    got = _tables(e.name, e.env)
    mine = t.stats()
    p = got["plain"]
    assert (p["state"], p["item"], p["item_size"], p["capacity"], p["sampler"], p["remover"],
            p["feed"], p["creator_uid"]) == ("live", "bytes", 32, 100, "prioritized",
                                             "lowest-priority", "none", os.geteuid())
    for k in ("size", "leases", "inserts", "samples", "removes", "trainers"):
        assert p[k] == mine[k], (k, p, mine)
    assert (p["size"], p["leases"], p["inserts"], p["samples"]) == (50, 8, 50, 8)
    f = got["fed"]
    assert (f["feed"], f["item"], f["sampler"], f["trainers"]) == ("on", "record", "uniform", 1)
    assert f["inserts"] >= 300 and f["item_size"] == fed.stats()["item_size"]

    values, types = parse(scrape(port))
    assert one(values, "xring_table_items", table="plain") == 50
    assert one(values, "xring_table_leases", table="plain") == 8
    assert one(values, "xring_table_inserts_total", table="plain") == 50
    assert one(values, "xring_table_capacity", table="plain", sampler="prioritized") == 100
    assert one(values, "xring_table_trainers", table="fed") == 1
    assert types["xring_table_samples_total"] == "counter"
    assert types["xring_table_items"] == "gauge"

    t2 = x.table("plain")                   # a second trainer
    x.drop_table("plain")                   # still open here: shown as dropped
    assert _tables(e.name, e.env)["plain"]["state"] == "dropped"
    t2.close()                              # its figures still move (formerly frozen)
    deadline = time.monotonic() + 5
    while _tables(e.name, e.env)["plain"]["trainers"] != 1:
        assert time.monotonic() < deadline, _tables(e.name, e.env)
        time.sleep(0.05)
    # A new table of the dropped one's name: two tables of one name, two
    # series each (parse() refuses a series twice), told apart by index.
    with x.create_table("plain", capacity=7, item_size=8):
        deadline = time.monotonic() + 5
        while True:                         # the endpoint's next snapshot has it
            values, _ = parse(scrape(port))
            caps = sorted(v for (n, ls), v in values.items()
                          if n == "xring_table_capacity" and ("table", "plain") in ls)
            if caps == [7, 100] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert caps == [7, 100], caps
        items = [ls for (n, ls), v in values.items()
                 if n == "xring_table_items" and ("table", "plain") in ls]
        assert len({dict(ls)["index"] for ls in items}) == 2, items
    s.release()
    t.close()

    def dropped():
        return [d for d in stat(e.name, e.env)["tables"] if d["state"] == "dropped"]
    deadline = time.monotonic() + 5
    while dropped():                        # goes with its last trainer
        assert time.monotonic() < deadline, dropped()
        time.sleep(0.05)
    assert _tables(e.name, e.env)["plain"]["capacity"] == 7  # the new one stays
    fed.close()

    text = subprocess.run([str(XRING_BIN), "stat", e.name], env=e.env, capture_output=True,
                          text=True, timeout=10).stdout
    assert re.search(r"table fed \(live, creator uid \d+\): record items of \d+ bytes, "
                     r"uniform sampler, fifo remover; 300 of 300 items", text), text


def _reader_row(s, label):
    rows = [d for d in s["readers"] if d["label"] == label and d["ring"] == 0]
    assert len(rows) == 1, (label, s["readers"])
    return rows[0]


def test_the_alerts_series_match_stat(engines):
    """The series docs/prometheus-alerts.yml and the dashboard alert on, each
    checked against `xring stat --json` taken just before and just after the
    scrape (a counter between the two, a gauge that cannot move equal):
    a lossy reader that stopped reading drops; a silent agent's seats time
    out; a lossless reader that stopped reading stops the writer; a reader
    that reads and sleeps fills the wakeup-latency and batch-fill
    histograms. And the histograms' bounds are the powers of two from
    256 ns to 2^36 ns, then +Inf (docs/operations.md)."""
    port = free_port()
    e = engines("--metrics-addr", f"127.0.0.1:{port}", "--shards", "1", "--board", "8x8",
                games=50, ring_size="1M", action_timeout_ms=20)
    env = e.env
    eng = xring.attach(e.name, timeout=5)
    silent = eng.agent(games=range(0, 5), label="silent")     # never answers
    lossy = eng.reader(batch=64, policy="lossy", label="stalled-lossy")
    read_records(lossy, 1)
    with eng.reader(batch=256, label="sleeper", policy="lossy") as sleeper:
        read_records(sleeper, 5000)
        # The lossy reader, lapped meanwhile, reads once more: what it
        # lost is counted as it moves (a reader that never moves has lost
        # nothing yet, it is only behind: pending).
        read_records(lossy, 1)
        wait_for(lambda: _reader_row(stat(e.name, env), "stalled-lossy")["dropped"] > 0 and
                 stat(e.name, env)["agents"][0]["timeouts"] > 0, 10,
                 "the stalled lossy reader's drops and the silent agent's timeouts")
        # Now a lossless reader stops reading: the writer stops for it.
        stuck = eng.reader(batch=64, label="stuck-lossless")
        read_records(stuck, 1)
        wait_for(lambda: stat(e.name, env)["rings"][0]["blocked"] and
                 stat(e.name, env)["rings"][0]["wait_ns"] > 0, 10,
                 "the writer to stop for the lossless reader")
        before = stat(e.name, env)
        text = scrape(port)
        after = stat(e.name, env)
    values, types = parse(text)

    def between(metric, get, scale=1, **labels):
        v = one(values, metric, **labels)
        lo, hi = get(before) * scale, get(after) * scale
        assert lo - 1e-9 <= v <= hi + 1e-9, (metric, labels, lo, v, hi)
        return v

    rl = _reader_row(before, "stalled-lossy")
    assert between("xring_reader_records_dropped_total",
                   lambda s: _reader_row(s, "stalled-lossy")["dropped"],
                   slot=rl["slot"], ring=0) > 0
    rs = _reader_row(before, "stuck-lossless")
    assert one(values, "xring_reader_lag_bytes", slot=rs["slot"], ring=0) == \
        rs["lag_bytes"] == _reader_row(after, "stuck-lossless")["lag_bytes"] > 0
    assert between("xring_ring_writer_stopped_seconds_total",
                   lambda s: s["rings"][0]["wait_ns"], 1e-9, stream="experience", ring=0) > 0
    ag = before["agents"][0]
    assert ag["label"] == "silent"
    assert between("xring_agent_fallbacks_total", lambda s: s["agents"][0]["timeouts"],
                   agent=ag["agent"], reason="timeout") > 0
    sl = _reader_row(before, "sleeper")
    for metric, key in [("xring_reader_wakeup_latency_seconds", "wake_ns"),
                        ("xring_reader_batch_fill_seconds", "fill_ns")]:
        assert types[metric] == "histogram"
        assert between(metric + "_count", lambda s: _reader_row(s, "sleeper")[key]["count"],
                       slot=sl["slot"]) > 0
        les = sorted(float(dict(ls)["le"]) for (n, ls), v in values.items()
                     if n == metric + "_bucket" and dict(ls)["slot"] == str(sl["slot"]))
        want = [2.0 ** k * 1e-9 for k in range(8, 37)]     # printed to 9 digits
        assert len(les) == len(want) + 1 and les[-1] == float("inf"), les
        assert all(abs(a - w) <= 1e-8 * w for a, w in zip(les, want)), les
    lossy.close()
    stuck.close()
    silent.close()
