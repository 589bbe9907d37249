# SPDX-License-Identifier: MIT
"""`xring bridge out|in` through a nats-server (JetStream on, storage in a
temporary directory) that the test starts on a loopback port and stops by
its pid: a source engine's records reach the destination engine's stream
as they were (every field, observation and mask; seq is each ring's own),
each once, across a SIGKILLed bridge in and a SIGKILLed bridge out, and a
garbage message on the subject is refused and counted, never written."""
import os
import shutil
import signal
import socket
import subprocess
import time

import numpy as np
import pytest

import xring
from xrtest import XRING_BIN, row_digest, wait_for

NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"
pytestmark = pytest.mark.skipif(not os.path.exists(NATS),
                                reason="nats-server is not installed (scripts/deps.sh)")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nats(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([NATS, "-js", "-sd", str(tmp_path / "js"), "-a", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return proc.poll() is not None    # died: stop waiting, say so below
    wait_for(up, 10, "nats-server to listen")
    assert proc.poll() is None, proc.stderr.read().decode()
    yield f"nats://127.0.0.1:{port}", port
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_LIVE = []


@pytest.fixture(autouse=True)
def _no_bridge_left():
    """Every bridge a test started is gone after it, whatever it asserted."""
    yield
    for p in _LIVE:
        if p.poll() is None:
            p.kill()
            p.wait()
    _LIVE.clear()


def _bridge(eng, direction, url, *extra):
    p = _bridge_proc(eng, direction, url, *extra)
    _LIVE.append(p)
    return p


def _bridge_proc(eng, direction, url, *extra):
    return subprocess.Popen([str(XRING_BIN), "bridge", direction, eng.name, "--nats", url,
                             "--subject", "xr.test"] + list(extra), env=eng.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(p):
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    return p.returncode, out, err


class _Records:
    """Every record a lossless reader takes, keyed by what names a step:
    (game, player, turn, t_ns) -> the fields and digests of obs and mask."""

    def __init__(self):
        self.rows, self.n, self.dups = {}, 0, 0

    def take(self, b):
        obs, mask = row_digest(b.obs), row_digest(b.mask)
        for i in range(len(b)):
            key = (int(b.game_id[i]), int(b.player_id[i]), int(b.turn[i]), int(b.t_ns[i]))
            val = (int(b.action[i]), float(b.reward[i]), bool(b.done[i]),
                   bool(b.truncated[i]), int(b.applied[i]), int(b.applied_by[i]),
                   int(obs[i]), int(mask[i]))
            if key in self.rows:
                self.dups += 1
            self.rows[key] = val
            self.n += 1


def _take_one(r, rec, timeout):
    """One batch of r into rec, if one comes within timeout; False once
    the engine has closed (and everything was read)."""
    try:
        b = r.read(timeout=timeout)
    except xring.EngineClosedError:
        return False
    if b is not None:
        rec.take(b)
        b.release()
    return True


def _read_until(r, rec, pred, timeout, what, poll=None):
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, f"{what}: {rec.n} records after {timeout} s"
        if not _take_one(r, rec, 0.1):
            return
        if poll:
            poll()


def _source_and_sink(engines, count, tick_ms):
    a = engines("--ring-size", "64M", "--tick-ms", str(tick_ms), "--count", str(count), games=8)
    b = engines("--producers", "1", "--ring-size", "16M", games=0)
    return a, b


def _run(engines, nats, count, kill=None):
    """Bridges a's records to b; `kill` (None, "in" or "out") is SIGKILLed
    once b has a third of them, and started again. Returns the records of
    both ends."""
    url, _ = nats
    # The source stops at count, and must still be running when a bridge
    # out comes, the first (slow to start under ASan, on a busy machine) or
    # one after a kill (a stopped engine's records are gone): 16 records
    # every 20 ms, 3,000 in about 4 s.
    a, b = _source_and_sink(engines, count, 20)
    ea, eb = xring.attach(a.name, timeout=5), xring.attach(b.name, timeout=5)
    src, dst = _Records(), _Records()
    return _bridged(a, b, ea, eb, url, count, kill, src, dst, {})


def _bridged(a, b, ea, eb, url, count, kill, src, dst, procs):
    with ea.reader(batch=512, max_wait=0.05, history="all") as ra, \
            eb.reader(batch=512, max_wait=0.05) as rb:
        procs["out"] = _bridge(a, "out", url, "--zstd", "3", "--max-bytes", "64K")
        procs["in"] = _bridge(b, "in", url, "--ring", "1")
        restarted = []

        def keep_up():
            _take_one(ra, src, 0)         # both ends as we go: the source is lossless
            if kill and not restarted and dst.n >= count // 3:
                p = procs[kill]
                p.kill()
                p.communicate(timeout=30)
                procs[kill] = (_bridge(a, "out", url, "--zstd", "3", "--max-bytes", "64K")
                               if kill == "out" else _bridge(b, "in", url, "--ring", "1"))
                restarted.append(True)
        _read_until(rb, dst, lambda: dst.n >= count, 60, "the destination", keep_up)
        _read_until(ra, src, lambda: False, 10, "the source")   # to its end
        # A moment for anything extra (a duplicate) to arrive: none may.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            _take_one(rb, dst, 0.1)
        rc_in, out_in, err_in = _stop(procs["in"])
        rc_out, out_out, err_out = _stop(procs["out"])
    assert rc_in == 0, err_in
    assert rc_out == 0, err_out
    if kill:
        assert restarted, f"the {kill} bridge was not killed"
    return src, dst, out_in


def _same(src, dst, count):
    assert src.n == count and src.dups == 0
    assert dst.dups == 0, f"{dst.dups} records came twice"
    assert dst.n == count, f"{dst.n} records at the destination, {count} at the source"
    assert dst.rows == src.rows


def test_records_cross_the_bridge_as_they_were(engines, nats):
    src, dst, out = _run(engines, nats, 3000)
    _same(src, dst, 3000)
    assert "3000 records" in out and "0 refused" in out


def test_a_killed_bridge_in_comes_back_exactly_once(engines, nats):
    src, dst, out = _run(engines, nats, 6000, kill="in")
    _same(src, dst, 6000)


def test_a_killed_bridge_out_comes_back_exactly_once(engines, nats):
    src, dst, _ = _run(engines, nats, 6000, kill="out")
    _same(src, dst, 6000)


def _fnv(data, h=0xcbf29ce484222325):
    for c in data:
        h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def _bridge_message(record, seq=7):
    """A bridge message of one record (bridge/wire.h), built here: the test's
    own reading of the format."""
    import struct
    payload = struct.pack("<QII", seq, len(record), 0) + record + b"\0" * (-len(record) % 8)
    head = struct.pack("<IHHQQIIIIQ16s", 0x31524258, 1, 0, 0x1234, 1, 0, 1, len(payload),
                       len(payload), 0, b"")
    check = _fnv(payload, _fnv(head))
    return struct.pack("<IHHQQIIIIQ16s", 0x31524258, 1, 0, 0x1234, 1, 0, 1, len(payload),
                       len(payload), check, b"") + payload


def test_garbage_on_the_subject_is_refused_and_counted(engines, nats, tmp_path):
    url, port = nats
    a = engines(games=2)
    (tmp_path / "rec").mkdir()
    out = subprocess.run([str(XRING_BIN), "tail", a.name, "-n", "1", "--raw",
                          str(tmp_path / "rec")], env=a.env, capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    record = next((tmp_path / "rec").iterdir()).read_bytes()
    b = engines("--producers", "1", "--ring-size", "16M", games=0)
    eb = xring.attach(b.name, timeout=5)
    with eb.reader(batch=64, max_wait=0.05) as rb:
        inn = _bridge(b, "in", url, "--ring", "1")
        line = inn.stdout.readline()
        assert "xring bridge in:" in line, line + inn.stderr.read()
        # Plain NATS publishes (the protocol by hand) onto the stream's
        # subjects: three that are not bridge messages (not one, cut short,
        # a header promising the impossible), then a good one, which comes
        # out of the engine once the three before it went through.
        msgs = [b"hello", b"XBR1" + b"\0" * 60,
                b"XBR1\x01\x00\x01\x00" + b"\xff" * 56 + b"x" * 100, _bridge_message(record)]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.recv(4096)                                  # INFO
            s.sendall(b"CONNECT {}\r\n")
            for m in msgs:
                s.sendall(b"PUB xr.test.g.0 %d\r\n%s\r\n" % (len(m), m))
            s.sendall(b"PING\r\n")
            wait_for(lambda: b"PONG" in s.recv(4096), 5, "nats-server to take them")
        got = []

        def one():
            bt = rb.read(timeout=0.1)
            if bt is not None:
                got.append(bytes(np.asarray(bt.obs[0]).tobytes()))
                got.extend([None] * (len(bt) - 1))
                bt.release()
            return got
        wait_for(one, 30, "the good message's record")
        rc, so, se = _stop(inn)
        assert rc == 0, se
        assert "1 records in 1 messages" in so and "3 refused" in so, so + se
        assert len(got) == 1
