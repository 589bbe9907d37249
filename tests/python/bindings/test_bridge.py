# SPDX-License-Identifier: MIT
"""`xring bridge out|in` through a nats-server (JetStream on, storage in a
temporary directory) that the test starts on a loopback port and stops by
its pid: a source engine's records reach the destination engine's stream
as they were (every field, observation and mask; seq is each ring's own),
each once, across a SIGKILLed bridge in and a SIGKILLed bridge out; a
garbage message on the subject is refused and counted, never written; with
a key, a forger who may publish on the subject (but has no key) changes
nothing, neither what bridge in writes nor where a restarted bridge out
goes on; a second bridge in on a consumer in use is refused."""
import base64
import contextlib
import json
import os
import re
import shutil
import struct
import signal
import socket
import subprocess
import time

import numpy as np
import pytest

import xring
from xrtest import UNDER_ASAN, XRING_BIN, row_digest, wait_for

NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"
pytestmark = pytest.mark.skipif(not os.path.exists(NATS),
                                reason="nats-server is not installed (scripts/deps.sh)")


# The bridge's C code runs under ASan in the sanitizer pass (scripts/test.sh,
# 3b) through the tests not marked so; these add little there to what the
# others run (a NATS cluster's failover, restarts the others make too) and
# a minute of that pass's time: the release pass has them.
same_paths_as_others = pytest.mark.skipif(
    UNDER_ASAN, reason="the same bridge paths as other tests: the release pass has it")


def _free_port():
    """A loopback port free now, for a nats-server to listen on: from a
    range of this pytest worker's own, below the kernel's ephemeral ports.
    (The kernel's pick, port 0, could be handed to two workers at once, or
    to another's outgoing connection, before a server bound it: a test then
    took the other worker's server for its own, which went away under it.)"""
    import random
    w = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
    base = 20000 + (int(w) % 6 if w.isdigit() else 0) * 2000
    for _ in range(500):
        port = base + random.randrange(2000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {base}..{base + 1999}")


def _nats_server(port, store):
    """A nats-server with JetStream on loopback port, its store in store,
    once it listens."""
    proc = subprocess.Popen([NATS, "-js", "-sd", store, "-a", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return proc.poll() is not None    # died: stop waiting, say so below
    wait_for(up, 10, "nats-server to listen")
    assert proc.poll() is None, proc.stderr.read().decode()
    return proc


@contextlib.contextmanager
def _both_ends(a, b):
    """Lossless readers of source a (from its oldest record) and
    destination b, and the _Records of what each took."""
    ea, eb = xring.attach(a.name, timeout=5), xring.attach(b.name, timeout=5)
    src, dst = _Records(), _Records()
    with ea.reader(batch=512, max_wait=0.05, history="all") as ra, \
            eb.reader(batch=512, max_wait=0.05) as rb:
        yield ra, rb, src, dst


def _bridges_flowing(a, b, url, key, ends, at_least, *out_args):
    """bridge out of a and bridge in to b (ring 1), with key, running until
    b's reader of ends (_both_ends) has taken at_least records: (out, in)."""
    ra, rb, src, dst = ends
    out = _bridge(a, "out", url, "--key-file", key, *out_args)
    inn = _bridge(b, "in", url, "--ring", "1", "--key-file", key)
    line = inn.stdout.readline()
    assert "xring bridge in:" in line, line + inn.stderr.read()
    _read_until(rb, dst, lambda: dst.n >= at_least, 30, "the destination",
                lambda: _take_one(ra, src, 0))
    return out, inn


@pytest.fixture
def nats(tmp_path):
    port = _free_port()
    proc = _nats_server(port, str(tmp_path / "js"))
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


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "bridge.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    return str(path)


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
    (game, player, turn, t_ns) -> the fields and digests of obs and mask;
    and how many came before one of their seat's they follow at the source
    (a seat's records are in its game's ring, in the order of their t_ns)."""

    def __init__(self):
        self.rows, self.n, self.dups, self.disordered, self.seat_t = {}, 0, 0, 0, {}

    def take(self, b):
        obs, mask = row_digest(b.obs), row_digest(b.mask)
        for i in range(len(b)):
            key = (int(b.game_id[i]), int(b.player_id[i]), int(b.turn[i]), int(b.t_ns[i]))
            val = (int(b.action[i]), float(b.reward[i]), bool(b.done[i]),
                   bool(b.truncated[i]), int(b.applied[i]), int(b.applied_by[i]),
                   int(obs[i]), int(mask[i]))
            if key in self.rows:
                self.dups += 1
            if key[3] < self.seat_t.get(key[:2], -1):
                self.disordered += 1
            self.seat_t[key[:2]] = key[3]
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


def _run(engines, nats, key, count, kill=None, meanwhile=None):
    """Bridges a's records to b; `kill` (None, "in" or "out") is SIGKILLed
    once b has a third of them (or a has written half), and started again
    (after `meanwhile()`).
    Returns the records of both ends."""
    url, _ = nats
    # The source stops at count, and must still be running when a bridge
    # out comes, the first (slow to start under ASan, on a busy machine) or
    # one after a kill (a stopped engine's records are gone): 16 records
    # every 20 ms, 3,000 in about 4 s.
    a, b = _source_and_sink(engines, count, 20)
    ea, eb = xring.attach(a.name, timeout=5), xring.attach(b.name, timeout=5)
    src, dst = _Records(), _Records()
    return _bridged(a, b, ea, eb, url, key, count, kill, meanwhile, src, dst, {})


def _bridged(a, b, ea, eb, url, key, count, kill, meanwhile, src, dst, procs, both=()):
    out_args = ("--zstd", "3", "--max-bytes", "64K", "--key-file", key) + tuple(both)
    in_args = ("--ring", "1", "--key-file", key) + tuple(both)
    with ea.reader(batch=512, max_wait=0.05, history="all") as ra, \
            eb.reader(batch=512, max_wait=0.05) as rb:
        procs["out"] = _bridge(a, "out", url, *out_args)
        procs["in"] = _bridge(b, "in", url, *in_args)
        restarted = []

        def keep_up():
            _take_one(ra, src, 0)         # both ends as we go: the source is lossless
            # Once a third has arrived, or, with the destination behind (a
            # loaded machine), half the source is written: a bridge out
            # started again must find the source still running.
            if (kill or meanwhile) and not restarted and (dst.n >= count // 3
                                                          or src.n >= count // 2):
                if kill:
                    p = procs[kill]
                    p.kill()
                    p.communicate(timeout=30)
                if meanwhile:
                    meanwhile()
                if kill:
                    procs[kill] = (_bridge(a, "out", url, *out_args)
                                   if kill == "out" else _bridge(b, "in", url, *in_args))
                restarted.append(True)
        try:
            _read_until(rb, dst, lambda: dst.n >= count, 60, "the destination", keep_up)
        except AssertionError as e:
            said = {k: _stop(p) for k, p in procs.items()}
            raise AssertionError(f"{e}; the bridges said: {said}") from None
        _read_until(ra, src, lambda: False, 10, "the source")   # to its end
        # A moment for anything extra (a duplicate) to arrive: none may.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            _take_one(rb, dst, 0.1)
        rc_in, out_in, err_in = _stop(procs["in"])
        rc_out, out_out, err_out = _stop(procs["out"])
    assert rc_in == 0, err_in
    assert rc_out == 0, err_out
    if kill or meanwhile:
        assert restarted, f"the {kill or 'meanwhile'} step did not run"
    return src, dst, out_in, err_out


def _same(src, dst, count):
    assert src.n == count and src.dups == 0 and src.disordered == 0
    assert dst.dups == 0, f"{dst.dups} records came twice"
    assert dst.disordered == 0, f"{dst.disordered} records came before one they follow"
    assert dst.n == count, f"{dst.n} records at the destination, {count} at the source"
    assert dst.rows == src.rows


def test_records_cross_the_bridge_as_they_were(engines, nats, key):
    src, dst, out, _ = _run(engines, nats, key, 3000)
    _same(src, dst, 3000)
    assert "3000 records" in out and "0 refused" in out


def test_a_killed_bridge_in_comes_back_exactly_once(engines, nats, key):
    src, dst, out, _ = _run(engines, nats, key, 6000, kill="in")
    _same(src, dst, 6000)


def test_a_killed_bridge_out_comes_back_exactly_once(engines, nats, key):
    src, dst, _, _ = _run(engines, nats, key, 6000, kill="out")
    _same(src, dst, 6000)


def _nats_request(port, subject, payload):
    """One request over the NATS protocol by hand; the reply's payload."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        f = s.makefile("rb")
        f.readline()                                           # INFO
        s.sendall(b'CONNECT {"verbose":false}\r\nSUB _INBOX.t 1\r\n'
                  b"PUB %s _INBOX.t %d\r\n%s\r\n" % (subject.encode(), len(payload), payload))
        while True:
            line = f.readline()
            assert line, "nats-server closed the connection"
            if line.startswith(b"PING"):
                s.sendall(b"PONG\r\n")
            if line.startswith(b"MSG "):
                data = f.read(int(line.split()[-1]) + 2)[:-2]
                return data


def _publish(port, subject, msgs):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.recv(4096)                                              # INFO
        s.sendall(b"CONNECT {}\r\n")
        for m in msgs:
            s.sendall(b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(m), m))
        s.sendall(b"PING\r\n")
        wait_for(lambda: b"PONG" in s.recv(4096), 5, "nats-server to take them")


def _some_records(eng, tmp_path, n):
    """n well-formed records of eng's stream, their bytes in their order
    (`xring tail --raw` names each by its seq)."""
    d = tmp_path / "rec"
    d.mkdir(exist_ok=True)
    out = subprocess.run([str(XRING_BIN), "tail", eng.name, "-n", str(n), "--raw", str(d)],
                         env=eng.env, capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    files = sorted(d.iterdir(), key=lambda f: int(f.stem))
    assert len(files) == n, files
    return [f.read_bytes() for f in files]


def _a_record(eng, tmp_path):
    """One well-formed record of eng's stream, its bytes."""
    return _some_records(eng, tmp_path, 1)[0]


def test_a_forger_on_the_subject_changes_nothing(engines, nats, key, tmp_path):
    """Someone who may publish on the subject, without the key, copies a
    real message's source, incarnation and ring and publishes, on its
    subject, a well-formed record with a seq past anything the source will
    write: its checksum good, without a MAC, with a made-up one. bridge in
    refuses each (without a key it would write it, take its seq as the
    source's, and skip every record after it as seen); bridge out, killed
    and started again with these as the last messages of its subject, goes
    on from where it was (it would resume past everything)."""
    url, port = nats
    forged = []
    probe = engines(games=1)
    record = _a_record(probe, tmp_path)

    def forge():
        got = json.loads(_nats_request(port, "$JS.API.STREAM.MSG.GET.xring-xr-test",
                                       b'{"seq": 1}'))
        real = base64.b64decode(got["message"]["data"])
        subject = got["message"]["subject"]
        _, _, _, source, inc, ring = struct.unpack_from("<IHHQQI", real)
        payload = (struct.pack("<QII", 1 << 62, len(record), 0) + record
                   + b"\0" * (-len(record) % 8))
        for flags, mac in ((0, b""), (2, os.urandom(16))):
            head = struct.pack("<IHHQQIIIIQ16sQ", 0x31524258, 2, flags, source, inc, ring, 1,
                               len(payload), len(payload), 0, mac, 0)
            check = _fnv(payload, _fnv(head))
            forged.append(head[:40] + struct.pack("<Q", check) + head[48:] + payload)
        _publish(port, subject, forged)
    src, dst, out, err_out = _run(engines, nats, key, 6000, kill="out", meanwhile=forge)
    _same(src, dst, 6000)
    assert len(forged) == 2
    assert "2 refused" in out, out
    assert "is not a bridge's of this key" in err_out, err_out


def test_a_second_bridge_in_on_a_consumer_in_use_is_refused(engines, nats, key):
    url, _ = nats
    b = engines("--producers", "2", "--ring-size", "16M", games=0)
    first = _bridge(b, "in", url, "--key-file", key)
    line = first.stdout.readline()
    assert "xring bridge in:" in line, line + first.stderr.read()
    second = _bridge(b, "in", url, "--key-file", key)
    _, err = second.communicate(timeout=30)
    assert second.returncode != 0
    assert "is in use by another bridge in" in err and f"pid {first.pid}" in err, err
    assert first.poll() is None
    rc, _, err = _stop(first)
    assert rc == 0, err
    # Once the first is gone, the consumer is free again.
    third = _bridge(b, "in", url, "--key-file", key)
    line = third.stdout.readline()
    assert "xring bridge in:" in line, line + third.stderr.read()
    rc, _, err = _stop(third)
    assert rc == 0, err


class _AskFlood:
    """Someone without the key floods the ask subject of engine `name`'s
    bridge in (default names), from a thread, while the with block runs."""

    def __init__(self, port, name):
        import threading
        self.port, self.name, self.done = port, name, threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        subj = f"_XRING.in.xring-xr-test.xring-in-{self.name}".encode()
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.recv(4096)
            s.sendall(b"CONNECT {}\r\n")
            while not self.done.is_set():
                s.sendall(b"PUB %s _INBOX.flood 1\r\nx\r\n" % subj * 50)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.t.join(10)


class _Answerer:
    """Someone who may publish on `_XRING.in.>` but has no key: answers
    every bridge in's ask with each of `answers`, through the NATS protocol
    by hand, and counts the asks it answered; keeps every message it sees
    (on `subject`: another, such as `_INBOX.>`, to listen to the wire)."""

    def __init__(self, port, answers, subject=b"_XRING.in.>"):
        import threading
        self.answers, self.asked, self.seen = answers, 0, []
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.f = self.s.makefile("rb")
        self.f.readline()                                          # INFO
        self.s.sendall(b'CONNECT {"verbose":false}\r\nSUB %s 1\r\nPING\r\n' % subject)
        while not self.f.readline().startswith(b"PONG"):           # subscribed
            pass
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            while True:
                line = self.f.readline()
                if not line:
                    return
                if line.startswith(b"PING"):
                    self.s.sendall(b"PONG\r\n")
                if line.startswith(b"MSG "):
                    parts = line.split()
                    self.seen.append(self.f.read(int(parts[-1]) + 2)[:-2])
                    if len(parts) == 5:                            # MSG subj sid reply len
                        for a in self.answers:
                            self.s.sendall(b"PUB %s %d\r\n%s\r\n" % (parts[3], len(a), a))
                        self.asked += 1
        except OSError:
            return

    def close(self):
        self.s.close()
        self.t.join(5)


def test_an_answer_without_the_key_keeps_no_bridge_in_from_its_consumer(engines, nats, key):
    """With a key, an answer to bridge in's ask must carry a MAC of that
    ask's challenge: someone without the key who answers every ask, with
    words of their own and with a real bridge in's answer recorded from
    the wire earlier (a replay), keeps no bridge in from starting; it counts
    what it passed over. Without a key, the same words stop a bridge in, as
    documented (the subject's permissions are then all there is)."""
    url, port = nats
    b = engines("--producers", "2", "--ring-size", "16M", games=0)
    sniffer = _Answerer(port, [], subject=b"_INBOX.>")
    first = _bridge(b, "in", url, "--key-file", key)
    line = first.stdout.readline()
    assert "xring bridge in:" in line, line + first.stderr.read()
    second = _bridge(b, "in", url, "--key-file", key)          # answered: refused
    _, err = second.communicate(timeout=30)
    assert second.returncode == 1 and f"pid {first.pid}" in err, err
    recorded = wait_for(lambda: next((m for m in sniffer.seen if b" mac=" in m), None), 10,
                        "the first's answer on the wire")
    sniffer.close()
    rc, _, err = _stop(first)
    assert rc == 0, err
    forger = _Answerer(port, [b"engine evil (pid 1 on nowhere)", recorded])
    try:
        third = _bridge(b, "in", url, "--key-file", key)
        line = third.stdout.readline()
        assert "xring bridge in:" in line, line + third.stderr.read()
        assert forger.asked >= 1
        rc, out, err = _stop(third)
        assert rc == 0, err
        assert "answers to its claim without a good MAC passed over" in out, out
        # Without a key, the forger's words are taken (docs/bridge.md).
        plain = _bridge(b, "in", url, "--unauthenticated", "--durable", "plain")
        _, err = plain.communicate(timeout=30)
        assert plain.returncode == 1 and "engine evil" in err, err
    finally:
        forger.close()


def test_a_flood_of_asks_while_bridge_in_is_behind_lets_no_second_one_start(engines, nats,
                                                                          key):
    """The destination's ring full (its trainer does not read), so bridge in
    waits for it and pulls nothing (the server sees no pull request), while
    someone without the key floods the ask subject: a second bridge in with
    the key still hears the first (with a key, only asks with a good MAC are
    answered, each of them), and is refused."""
    url, port = nats
    a = engines("--ring-size", "64M", "--tick-ms", "5", "--count", "12000", games=8)
    b = engines("--producers", "2", "--ring-size", "4M", games=0)
    ea, eb = xring.attach(a.name, timeout=5), xring.attach(b.name, timeout=5)
    src = _Records()
    with ea.reader(batch=512, max_wait=0.05, history="all") as ra, \
            eb.reader(batch=512, max_wait=0.05) as rb:
        out = _bridge(a, "out", url, "--key-file", key, "--max-bytes", "16K")
        first = _bridge(b, "in", url, "--ring", "1", "--key-file", key)
        assert "xring bridge in:" in first.stdout.readline()
        # rb reads nothing: the destination's ring (4 MiB) fills.
        wait_for(lambda: _take_one(ra, src, 0.05) is not None and
                 rb.stats()["lag_bytes"] > (3 << 20), 60, "the destination's ring to fill")
        with _AskFlood(port, b.name):
            second = _bridge(b, "in", url, "--ring", "2", "--key-file", key)
            _, err = second.communicate(timeout=60)
        assert second.returncode == 1, err
        assert f"in use by another bridge in: engine {b.name} ring 1 (pid {first.pid}" in err, err
        assert first.poll() is None
        rc, _, err = _stop(first)
        assert rc == 0, err
        _stop(out)


def test_a_bridge_without_a_key_or_with_a_careless_one_is_refused(engines, nats, tmp_path):
    url, _ = nats
    a = engines(games=1)
    r = subprocess.run([str(XRING_BIN), "bridge", "out", a.name, "--nats", url, "--subject",
                        "xr.test"], env=a.env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--key-file" in r.stderr and len(r.stderr.splitlines()) == 1
    loose = tmp_path / "loose.key"
    loose.write_bytes(os.urandom(32))
    loose.chmod(0o644)
    r = subprocess.run([str(XRING_BIN), "bridge", "out", a.name, "--nats", url, "--subject",
                        "xr.test", "--key-file", str(loose)], env=a.env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "chmod 600" in r.stderr, r.stderr


def _fnv(data, h=0xcbf29ce484222325):
    """A bridge message's checksum (docs/bridge.md), the test's own reading:
    FNV-1a's step over little-endian 64-bit words, the high half folded
    down after each, then over the bytes left."""
    m = 0xFFFFFFFFFFFFFFFF
    whole = len(data) // 8 * 8
    for (w,) in struct.iter_unpack("<Q", data[:whole]):
        h = ((h ^ w) * 0x100000001b3) & m
        h ^= h >> 32
    for c in data[whole:]:
        h = ((h ^ c) * 0x100000001b3) & m
    return h


def _bridge_message(record, seq=7, more=(), prev=None, base=None, key=None, version=2):
    """A bridge message (bridge/wire.h) of record at seq and the (seq,
    record) pairs of more, of ring 0 of source 0x1234, incarnation 1: the
    test's own reading of the format. prev and base as bridge out sets
    them (None: none); with key (its file's bytes), MACed."""
    import hmac
    recs = [(seq, record)] + list(more)
    payload = b"".join(struct.pack("<QII", q, len(r), 0) + r + b"\0" * (-len(r) % 8)
                       for q, r in recs)
    flags = (2 if key else 0) | (4 if prev is not None else 0) | (8 if base is not None else 0)

    def head(check, mac):
        return struct.pack("<IHHQQIIIIQ16sQQ", 0x31524258, version, flags, 0x1234, 1, 0,
                           len(recs), len(payload), len(payload), check, mac, prev or 0,
                           base or 0)
    mac = hmac.new(key, head(0, b"") + payload, "sha256").digest()[:16] if key else b""
    return head(_fnv(payload, _fnv(head(0, mac))), mac) + payload


def test_garbage_on_the_subject_is_refused_and_counted(engines, nats, tmp_path):
    url, port = nats
    record = _a_record(engines(games=2), tmp_path)
    b = engines("--producers", "1", "--ring-size", "16M", games=0)
    eb = xring.attach(b.name, timeout=5)
    with eb.reader(batch=64, max_wait=0.05) as rb:
        inn = _bridge(b, "in", url, "--ring", "1", "--unauthenticated")
        line = inn.stdout.readline()
        assert "xring bridge in:" in line, line + inn.stderr.read()
        # Plain NATS publishes (the protocol by hand) onto the stream's
        # subjects: three that are not bridge messages (not one, cut short,
        # a header promising the impossible), then a good one, which comes
        # out of the engine once the three before it went through.
        msgs = [b"hello", b"XBR1" + b"\0" * 68,
                b"XBR1\x02\x00\x01\x00" + b"\xff" * 64 + b"x" * 100, _bridge_message(record)]
        _publish(port, "xr.test.g.0", msgs)
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


@same_paths_as_others
def _in_file(eng):
    """The file of where bridge in (its default consumer) stands, of eng."""
    return os.path.join(eng.env["XRING_RUN_DIR"],
                        f"{eng.name}.bridge-in-xring-xr-test-xring-in-{eng.name}.state")


def _acked(port, eng):
    """The stream sequence bridge in of eng (its default consumer) has
    acknowledged up to."""
    info = json.loads(_nats_request(
        port, f"$JS.API.CONSUMER.INFO.xring-xr-test.xring-in-{eng.name}", b""))
    return info.get("ack_floor", {}).get("stream_seq", 0)


def _in_takes(b, nats, key, msgs, want):
    """bridge in (ring 1, with key) into engine b, msgs published by hand
    on the stream's subject: what b's reader took once want records came
    and a moment more (anything extra would come then), and in's last
    line and stderr."""
    dst = _Records()
    with xring.attach(b.name, timeout=5).reader(batch=64, max_wait=0.05) as rb:
        inn = _bridge(b, "in", nats[0], "--ring", "1", "--key-file", key)
        line = inn.stdout.readline()
        assert "xring bridge in:" in line, line + inn.stderr.read()
        _publish(nats[1], "xr.test.g.0", msgs)
        _read_until(rb, dst, lambda: dst.n >= want, 30, "the destination")
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            _take_one(rb, dst, 0.1)
        rc, so, se = _stop(inn)
    assert rc == 0, se
    return dst, so, se


def test_bridge_in_takes_each_ring_in_order_and_goes_on_past_a_hole(engines, nats, key,
                                                                    tmp_path):
    """Messages of one source ring, MACed with the key, published by hand in
    the order a lost one leaves them: records 1-2; 5-6 (its predecessor 3-4
    lost on the way, in the same batch) ahead of 3-4; 3-4; the copy of
    5-6; then 9-10, first of a batch whose base is 8, while 7-8 never came
    before it (a bridge out that lost its place), and 11-12 after it; 7-8
    at last. In takes 1-2, passes over the 5-6 that came ahead, takes 3-4
    and the copy, takes 9-10 past the hole and says so, then 11-12, and
    skips 7-8, now behind: 10 records, each seat's in order (without the
    pass over, 3-4 were skipped as duplicates; without the hole rule, the
    ring stopped at 6 for good)."""
    url, port = nats
    r = _some_records(engines(games=1), tmp_path, 12)
    kb = open(key, "rb").read()
    msgs = [_bridge_message(r[0], 1, [(2, r[1])], key=kb),
            _bridge_message(r[4], 5, [(6, r[5])], prev=4, base=2, key=kb),
            _bridge_message(r[2], 3, [(4, r[3])], prev=2, base=2, key=kb),
            _bridge_message(r[4], 5, [(6, r[5])], prev=4, base=2, key=kb),
            _bridge_message(r[8], 9, [(10, r[9])], prev=8, base=8, key=kb),
            _bridge_message(r[10], 11, [(12, r[11])], prev=10, base=8, key=kb),
            _bridge_message(r[6], 7, [(8, r[7])], prev=6, base=6, key=kb)]
    b = engines("--producers", "1", "--ring-size", "16M", games=0)
    dst, so, se = _in_takes(b, nats, key, msgs, 10)
    assert dst.n == 10 and dst.dups == 0 and dst.disordered == 0, (dst.n, so, se)
    assert "10 records in 6 messages" in so and "2 duplicates skipped" in so, so
    assert "1 ahead of their order passed over" in so, so
    assert "1 after records that never came" in so, so
    assert "has a hole: taken up to seq 6, and a message follows seq 8" in se, se


def test_bridge_in_forgets_the_source_rings_that_came_longest_ago(engines, nats, key,
                                                                  tmp_path):
    """in's file of source rings made full up front (4,096 of them, what 64
    restarts of an engine of 64 rings leave), then a new source ring's
    messages in the order a lost one leaves them (1-2; 5-6 ahead of 3-4;
    3-4; 5-6's copy). in forgets the half that came longest ago, says so,
    and checks the new ring as any other: 6 records, in order, once (with
    the map full, the new ring had no check: 8 records, 5-6 twice). Its
    file after it holds the half kept and the new ring."""
    r = _some_records(engines(games=1), tmp_path, 6)
    kb = open(key, "rb").read()
    b = engines("--producers", "1", "--ring-size", "16M", games=0)
    path = _in_file(b)
    recs = b"".join(struct.pack("<QQQQII", 0x100000 + i, 1, 5, i + 1, 0, 0) for i in range(4096))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, struct.pack("<IIQq", 0x32494258, 4096, 0, 0) + recs)
    os.close(fd)
    msgs = [_bridge_message(r[0], 1, [(2, r[1])], key=kb),
            _bridge_message(r[4], 5, [(6, r[5])], prev=4, base=2, key=kb),
            _bridge_message(r[2], 3, [(4, r[3])], prev=2, base=2, key=kb),
            _bridge_message(r[4], 5, [(6, r[5])], prev=4, base=2, key=kb)]
    dst, so, se = _in_takes(b, nats, key, msgs, 6)
    assert dst.n == 6 and dst.dups == 0 and dst.disordered == 0, (dst.n, so, se)
    assert "4096 source rings seen: the 2048 that came longest ago are forgotten" in se, se
    assert "1 ahead of their order passed over" in so, so
    assert os.path.getsize(path) == 24 + 2049 * 40


def test_a_slot_last_written_from_another_jetstream_stream_takes_this_one_whole(
        engines, nats, key):
    """The JetStream stream is deleted and made again (its sequences start
    from 1), and bridge in comes back to the same slot: the slot's tag, of
    the old stream, is past every sequence of the new one. Each record of
    the new stream still arrives (were the tag believed, every one up to it
    would be skipped as taken)."""
    url, port = nats
    a, b = _source_and_sink(engines, 1500, 20)
    ea, eb = xring.attach(a.name, timeout=5), xring.attach(b.name, timeout=5)
    src, dst = _Records(), _Records()
    _bridged(a, b, ea, eb, url, key, 1500, None, None, src, dst, {})
    _same(src, dst, 1500)
    got = json.loads(_nats_request(port, "$JS.API.STREAM.DELETE.xring-xr-test", b""))
    assert got.get("success") is True, got
    # A new source, a new stream: in first (it makes the stream, empty).
    a2 = engines("--ring-size", "64M", "--tick-ms", "20", "--count", "600", games=8)
    ea2 = xring.attach(a2.name, timeout=5)
    src2, dst2 = _Records(), _Records()
    with ea2.reader(batch=512, max_wait=0.05, history="all") as ra, \
            eb.reader(batch=512, max_wait=0.05) as rb:
        inn = _bridge(b, "in", url, "--ring", "1", "--key-file", key)
        line = inn.stdout.readline()
        assert "xring bridge in:" in line, line + inn.stderr.read()
        out = _bridge(a2, "out", url, "--key-file", key)
        _read_until(rb, dst2, lambda: dst2.n >= 600, 60, "the destination",
                    lambda: _take_one(ra, src2, 0))
        _read_until(ra, src2, lambda: False, 10, "the source")
        rc_in, _, err_in = _stop(inn)
        rc_out, _, err_out = _stop(out)
    assert rc_in == 0 and rc_out == 0, err_in + err_out
    assert "was last written from another JetStream stream" in err_in, err_in
    _same(src2, dst2, 600)


@pytest.fixture
def nats_cluster(tmp_path):
    """Three nats-servers with JetStream in one cluster, on loopback, each
    stopped by its pid; yields (client URLs, the processes)."""
    ports = [(_free_port(), _free_port()) for _ in range(3)]
    procs = []
    for i, (cp, rp) in enumerate(ports):
        routes = ", ".join(f"nats-route://127.0.0.1:{r}" for j, (_, r) in enumerate(ports)
                           if j != i)
        conf = tmp_path / f"n{i}.conf"
        conf.write_text(f"server_name: n{i}\nlisten: 127.0.0.1:{cp}\n"
                        f"jetstream {{ store_dir: \"{tmp_path / f'js{i}'}\" }}\n"
                        f"cluster {{ name: xr\n listen: 127.0.0.1:{rp}\n routes: [{routes}] }}\n")
        procs.append(subprocess.Popen([NATS, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE))
    try:
        def ready():
            for p in procs:
                assert p.poll() is None, p.stderr.read().decode()
            try:   # JetStream answers once the cluster has elected its meta leader
                got = json.loads(_nats_request(ports[0][0], "$JS.API.INFO", b""))
            except OSError:
                return False
            return "error" not in got
        wait_for(ready, 60, "the JetStream cluster to elect a leader")
        yield ",".join(f"nats://127.0.0.1:{cp}" for cp, _ in ports), procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# Alone (solo): three nats-servers electing leaders and replicating beside
# other tests took longer than JetStream's API waits on a loaded machine.
@pytest.mark.solo
@same_paths_as_others
def test_a_cluster_node_killed_loses_nothing(engines, nats_cluster, key):
    """The JetStream stream has three replicas on a three-node cluster; a
    third of the way through, the node the stream's leader is on is
    SIGKILLed. Publishes are tried again until the new leader takes them,
    the consumer goes on from the survivors, and each of the 6,000 records
    arrives once."""
    urls, procs = nats_cluster
    ports = [int(u.rsplit(":", 1)[1]) for u in urls.split(",")]
    killed = []

    def kill_the_leader():
        got = json.loads(_nats_request(ports[0], "$JS.API.STREAM.INFO.xring-xr-test", b""))
        leader = got["cluster"]["leader"]
        i = int(leader[1:])
        procs[i].kill()
        procs[i].wait()
        killed.append(leader)
    # The replicated stream first, as an operator would make it: a newly
    # formed cluster may take longer to make it than the source engine runs
    # (a CI run: bridge out, making it, found the engine stopped at its
    # count). bridge out finds it and checks it keeps its subjects.
    conf = json.dumps({"name": "xring-xr-test", "subjects": ["xr.test.>"], "storage": "file",
                       "num_replicas": 3, "duplicate_window": 600_000_000_000}).encode()

    def stream_led():
        try:
            got = json.loads(_nats_request(ports[0], "$JS.API.STREAM.INFO.xring-xr-test", b""))
            if "error" in got:
                _nats_request(ports[0], "$JS.API.STREAM.CREATE.xring-xr-test", conf)
                return False
            return bool(got.get("cluster", {}).get("leader"))
        except (OSError, ValueError):
            return False
    wait_for(stream_led, 60, "the three-replica stream to have a leader", step=0.2)
    a, b = _source_and_sink(engines, 6000, 20)
    ea, eb = xring.attach(a.name, timeout=5), xring.attach(b.name, timeout=5)
    src, dst = _Records(), _Records()
    _bridged(a, b, ea, eb, urls, key, 6000, None, kill_the_leader, src, dst, {},
             both=("--replicas", "3"))
    assert killed, "no node was killed"
    _same(src, dst, 6000)


def test_a_restarted_source_engine_is_a_new_incarnation(engines, nats, key):
    """The source engine ends (its bridge out with it) and one of the same
    name starts: its rings number from 0 again, and with the same bridge in
    running throughout, each of its records arrives too (were they taken
    for the old run's seqs, all would be skipped as duplicates)."""
    url, _ = nats
    a, b = _source_and_sink(engines, 600, 20)
    eb = xring.attach(b.name, timeout=5)
    src, dst = _Records(), _Records()
    with eb.reader(batch=512, max_wait=0.05) as rb:
        inn = _bridge(b, "in", url, "--ring", "1", "--key-file", key)
        for run, source in enumerate((a, None)):
            if source is None:   # the same name again, once the first is gone
                assert a.proc.wait(30) == 0
                source = engines("--ring-size", "64M", "--tick-ms", "20", "--count", "600",
                                 name=a.name, games=8)
            ea = xring.attach(source.name, timeout=5)
            with ea.reader(batch=512, max_wait=0.05, history="all") as ra:
                out = _bridge(source, "out", url, "--key-file", key)
                want = 600 * (run + 1)
                _read_until(rb, dst, lambda: dst.n >= want, 60, f"run {run} at the destination",
                            lambda: _take_one(ra, src, 0))
                _read_until(ra, src, lambda: False, 10, "the source")
            # The engine ended: its bridge out ends by itself, content.
            _, err = out.communicate(timeout=30)
            assert out.returncode == 0, err
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            _take_one(rb, dst, 0.1)
        rc, so, se = _stop(inn)
    assert rc == 0, se
    assert "1200 records" in so and "0 duplicates" in so, so
    _same(src, dst, 1200)


def _key_file(tmp_path, name):
    path = tmp_path / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    return str(path)


def test_a_bridge_in_with_another_key_stops_and_acknowledges_nothing(engines, nats, key,
                                                                    tmp_path):
    """A careless operator gives bridge in another key than bridge out's:
    it stops at the first message, saying so, and acknowledges nothing, so
    that bridge in with the right key then takes every record (were the
    refused messages acknowledged, they would be gone)."""
    url, _ = nats
    a, b = _source_and_sink(engines, 600, 20)
    ea, eb = xring.attach(a.name, timeout=5), xring.attach(b.name, timeout=5)
    src, dst = _Records(), _Records()
    with ea.reader(batch=512, max_wait=0.05, history="all") as ra, \
            eb.reader(batch=512, max_wait=0.05) as rb:
        out = _bridge(a, "out", url, "--key-file", key)
        wrong = _bridge(b, "in", url, "--ring", "1", "--key-file", _key_file(tmp_path, "other"))
        _, err = wrong.communicate(timeout=60)
        assert wrong.returncode == 1, err
        assert "is --key-file the same as bridge out's" in err and len(err.splitlines()) == 1
        inn = _bridge(b, "in", url, "--ring", "1", "--key-file", key)
        _read_until(rb, dst, lambda: dst.n >= 600, 60, "the destination",
                    lambda: _take_one(ra, src, 0))
        _read_until(ra, src, lambda: False, 10, "the source")
        rc_in, so, se = _stop(inn)
        _stop(out)
    assert rc_in == 0, se
    _same(src, dst, 600)


def test_a_bridge_in_of_another_release_stops_at_the_first_message_of_another_version(
        engines, nats, key, tmp_path):
    """A message of another wire version first (a bridge out of the release
    before an upgrade): bridge in stops there, saying so in one line, and
    acknowledges nothing; started again with --ack-refused it takes it away
    and writes the good message behind it (before, it acknowledged the old
    release's backlog away without a word)."""
    url, port = nats
    r = _some_records(engines(games=1), tmp_path, 2)
    kb = open(key, "rb").read()
    b = engines("--producers", "1", "--ring-size", "16M", games=0)
    inn = _bridge(b, "in", url, "--ring", "1", "--key-file", key)
    assert "xring bridge in:" in inn.stdout.readline()     # its stream made
    _publish(port, "xr.test.g.0", [_bridge_message(r[0], 1, key=kb, version=1)])
    so, err = inn.communicate(timeout=60)
    assert inn.returncode == 1, err
    assert "an earlier version" in err and "Upgrading" in err and len(err.splitlines()) == 1, err
    msgs = [_bridge_message(r[1], 2, key=kb)]
    with xring.attach(b.name, timeout=5).reader(batch=64, max_wait=0.05) as rb:
        inn = _bridge(b, "in", url, "--ring", "1", "--key-file", key, "--ack-refused")
        assert "xring bridge in:" in inn.stdout.readline()
        _publish(port, "xr.test.g.0", msgs)
        dst = _Records()
        _read_until(rb, dst, lambda: dst.n >= 1, 30, "the destination")
        rc, so, se = _stop(inn)
    assert rc == 0 and "1 refused" in so, so + se


def test_bridge_in_reads_the_file_of_the_release_before(engines, nats, key, tmp_path):
    """A version 1 file of where in stood (magic XBIS: source, incarnation,
    last, ring a ring) says ring 0 of source 0x1234 was taken up to seq 2:
    of 1-2 and 3-4, in skips 1-2 as taken and writes 3-4."""
    r = _some_records(engines(games=1), tmp_path, 4)
    kb = open(key, "rb").read()
    b = engines("--producers", "1", "--ring-size", "16M", games=0)
    path = _in_file(b)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, struct.pack("<II", 0x53494258, 1) + struct.pack("<QQQII", 0x1234, 1, 2, 0, 0))
    os.close(fd)
    dst, so, se = _in_takes(b, nats, key, [_bridge_message(r[0], 1, [(2, r[1])], key=kb),
                                           _bridge_message(r[2], 3, [(4, r[3])], prev=2,
                                                           key=kb)], 2)
    assert dst.n == 2 and "2 duplicates skipped" in so, (dst.n, so, se)


def test_bridge_in_whose_file_fell_behind_its_acknowledgements_starts_where_it_is(
        engines, nats, key, tmp_path):
    """in takes 1-2 (a ring's first message), its file saying so; then its
    file cannot be written for a while (a full disk), and it takes and
    acknowledges 3-4 all the same (said on stderr). Its file of before
    back, it starts again: its consumer after 3-4, its file saying 1-2.
    The file is behind the acknowledgements, so each ring starts where it
    is: 5-6 and 7-8 (base 2), and 9-10 (a new batch) are taken (before,
    5-6 and 7-8 waited for a copy that never comes: seen to fail)."""
    url, port = nats
    r = _some_records(engines(games=1), tmp_path, 10)
    kb = open(key, "rb").read()
    a = engines("--producers", "1", "--ring-size", "16M", games=0)
    state = _in_file(a)

    def done_with():
        try:
            with open(state, "rb") as f:
                return struct.unpack("<IIQq", f.read(24))[2]
        except (OSError, struct.error):
            return 0
    dst = _Records()
    with xring.attach(a.name, timeout=5).reader(batch=64, max_wait=0.05) as ra:
        inn = _bridge(a, "in", url, "--ring", "1", "--key-file", key)
        assert "xring bridge in:" in inn.stdout.readline()
        _publish(port, "xr.test.g.0", [_bridge_message(r[0], 1, [(2, r[1])], key=kb)])
        _read_until(ra, dst, lambda: dst.n >= 2, 30, "the destination")
        wait_for(lambda: _acked(port, a) == 1 and done_with() == 1, 10, "1-2 acknowledged, and filed")
        with open(state, "rb") as f:
            saved = f.read()
        os.unlink(state)
        os.mkdir(state)          # every write fails now (a rename onto it)
        _publish(port, "xr.test.g.0", [_bridge_message(r[2], 3, [(4, r[3])], prev=2, base=2,
                                                       key=kb)])
        _read_until(ra, dst, lambda: dst.n >= 4, 30, "the destination")
        wait_for(lambda: _acked(port, a) == 2, 10, "3-4 acknowledged")
        rc, so, se = _stop(inn)
        assert rc == 0 and "cannot write" in se, se
        os.rmdir(state)          # room again: the last good write is there
        fd = os.open(state, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, saved)
        os.close(fd)
        _publish(port, "xr.test.g.0", [
            _bridge_message(r[4], 5, [(6, r[5])], prev=4, base=2, key=kb),
            _bridge_message(r[6], 7, [(8, r[7])], prev=6, base=2, key=kb),
            _bridge_message(r[8], 9, [(10, r[9])], prev=8, base=8, key=kb)])
        inn = _bridge(a, "in", url, "--ring", "1", "--key-file", key)
        _read_until(ra, dst, lambda: dst.n >= 10, 30, "the destination")
        rc, so, se = _stop(inn)
    assert rc == 0, se
    assert dst.n == 10 and dst.dups == 0 and dst.disordered == 0, (dst.n, so, se)


def _nats_with_users(tmp_path):
    port = _free_port()
    conf = tmp_path / "nats.conf"
    conf.write_text(f"""
listen: "127.0.0.1:{port}"
jetstream {{ store_dir: "{tmp_path / 'jsu'}" }}
no_auth_user: admin
accounts {{
  A {{
    jetstream: enabled
    users = [
      {{user: admin, password: a}}
      {{user: out, password: o, permissions: {{
          publish: {{allow: ["xr.test.>", "$JS.API.INFO", "$JS.API.STREAM.INFO.xring-xr-test",
                            "$JS.API.STREAM.CREATE.xring-xr-test"]}},
          subscribe: {{allow: ["_INBOX.>"]}}}}}}
    ]
  }}
}}
""")
    proc = subprocess.Popen([NATS, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return proc.poll() is not None
    wait_for(up, 10, "nats-server to listen")
    assert proc.poll() is None, proc.stderr.read().decode()
    return proc, port


@same_paths_as_others
def test_bridge_out_that_may_not_fetch_a_duplicate_s_first_copy_believes_it(engines, key,
                                                                           tmp_path):
    """bridge out as a NATS user that may publish on xr.test.> and ask for
    the stream's info (and make it), not fetch its messages; bridge in as
    another. out sends the first records, stops and loses its file (a run
    directory on tmpfs after a reboot); started again, it sends the ring
    again from its start, every message a duplicate whose first copy it
    cannot fetch: after three tries it believes them, says so once, and
    the records after them arrive (before, it published its first message
    again for ever: seen to fail)."""
    proc, port = _nats_with_users(tmp_path)
    try:
        a = engines("--ring-size", "64M", "--tick-ms", "20", "--count", "6000", games=2)
        b = engines("--producers", "1", "--ring-size", "64M", games=0)
        out_url = f"nats://out:o@127.0.0.1:{port}"
        url = f"nats://127.0.0.1:{port}"
        with _both_ends(a, b) as (ra, rb, src, dst):
            out = _bridge(a, "out", out_url, "--key-file", key)
            inn = _bridge(b, "in", url, "--ring", "1", "--key-file", key)
            _read_until(rb, dst, lambda: dst.n >= 300, 60, "the destination",
                        lambda: _take_one(ra, src, 0))
            rc, so, se = _stop(out)
            assert rc == 0, se
            sent = int(so.split("xring bridge out: ")[-1].split()[0])
            _read_until(rb, dst, lambda: dst.n >= sent, 30, "the destination",
                        lambda: _take_one(ra, src, 0))
            for f in os.listdir(a.env["XRING_RUN_DIR"]):
                if f.startswith(f"{a.name}.bridge-out-"):
                    os.unlink(os.path.join(a.env["XRING_RUN_DIR"], f))
            n0 = dst.n
            out = _bridge(a, "out", out_url, "--key-file", key)
            try:
                _read_until(rb, dst, lambda: dst.n >= n0 + 300, 40, "the destination",
                            lambda: _take_one(ra, src, 0))
            finally:
                ro, so_o, se_o = _stop(out)
                ri, so_i, se_i = _stop(inn)
        assert "duplicates are believed" in se_o, se_o[-2000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)



@same_paths_as_others
def test_bridge_in_paused_while_another_took_its_consumer_gives_way(engines, nats, key):
    """bridge in is SIGSTOPped (a VM's pause) long enough for a second to
    take its consumer; once it runs again it gives way: it stops, saying
    its consumer was made again by another, and the second runs on."""
    url, _ = nats
    b = engines("--producers", "2", "--ring-size", "16M", games=0)
    first = _bridge(b, "in", url, "--key-file", key)
    assert "xring bridge in:" in first.stdout.readline()
    first.send_signal(signal.SIGSTOP)
    try:
        second = _bridge(b, "in", url, "--key-file", key)
        line = second.stdout.readline()
        assert "xring bridge in:" in line, line + second.stderr.read()
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=30)
    assert first.returncode == 1, err
    assert "was made again by another bridge in" in err and len(err.splitlines()) == 1, err
    assert second.poll() is None
    rc, _, err = _stop(second)
    assert rc == 0, err


def test_bridge_in_paused_under_load_gives_way_within_a_fetch_or_two(engines, nats, key):
    """Under load, bridge in A is SIGSTOPped with lists in hand; B takes the
    consumer (into ring 2 of the same engine) and A runs again: A gives way,
    having written no more than what it held unacknowledged when it was
    stopped (each fetch a third of --max-ack-pending messages, at most two
    of them in its taker's hands), and every record arrives. A sees that
    its consumer was made anew (B makes it when it starts). Before A timed
    its whole round and looked before a remake, it pulled beside B until
    each heard the other: thousands of records twice."""
    url, _ = nats
    count = 15000
    a = engines("--ring-size", "256M", "--tick-ms", "2", "--count", str(count), games=8)
    b = engines("--producers", "2", "--ring-size", "64M", games=0)
    with _both_ends(a, b) as ends:
        ra, rb, src, dst = ends
        out, first = _bridges_flowing(a, b, url, key, ends, 3000, "--max-bytes", "16K")
        first.send_signal(signal.SIGSTOP)
        try:
            second = _bridge(b, "in", url, "--ring", "2", "--key-file", key)
            line = second.stdout.readline()
            assert "xring bridge in:" in line, line + second.stderr.read()
        finally:
            first.send_signal(signal.SIGCONT)
        end = time.monotonic() + 30
        while first.poll() is None:
            assert time.monotonic() < end, "the paused bridge in did not give way"
            _take_one(rb, dst, 0.05)
            _take_one(ra, src, 0)
        err = first.stderr.read()
        assert first.returncode == 1, err
        # Made again, or deleted if A looked between B's delete and make.
        assert "was made again by another bridge in" in err or "was deleted" in err, err
        _read_until(rb, dst, lambda: dst.n - dst.dups >= count, 60, "the destination",
                    lambda: _take_one(ra, src, 0))
        _read_until(ra, src, lambda: False, 10, "the source")
        rc, _, err = _stop(second)
        assert rc == 0, err
        _stop(out)
    assert src.n == count and dst.n - dst.dups == count
    assert dst.rows == src.rows
    # 16 KiB messages of 2 or 3 records: two fetches of 21 are about 130.
    assert dst.dups <= 300, f"{dst.dups} records twice"


def test_bridge_in_whose_consumer_is_deleted_while_its_engine_is_stopped_stops(
        engines, nats, key):
    """The destination engine stopped (SIGSTOP: bridge in's taker waits for
    it) and the consumer deleted meanwhile: bridge in still looks at its
    consumer while it waits, and stops with one line, the engine still
    stopped."""
    url, port = nats
    a, b = _source_and_sink(engines, 12000, 5)
    with _both_ends(a, b) as ends:
        out, inn = _bridges_flowing(a, b, url, key, ends, 500)
        b.proc.send_signal(signal.SIGSTOP)
        try:
            got = json.loads(_nats_request(
                port, f"$JS.API.CONSUMER.DELETE.xring-xr-test.xring-in-{b.name}", b""))
            assert got.get("success") is True, got
            _, err = inn.communicate(timeout=20)
        finally:
            b.proc.send_signal(signal.SIGCONT)
        assert inn.returncode == 1 and "was deleted" in err, err
        assert len(err.strip().splitlines()) == 1, err
        _stop(out)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_nats_server_restarted_under_a_running_bridge_in_is_ridden_out(engines, key,
                                                                         tmp_path, sig):
    """The nats-server (file storage) killed or stopped, and started again on
    the same port and store, while the bridges run: bridge in does not take
    the consumer JetStream brings back for another's (its creation time
    comes back a little later than it was; the token bridge in wrote into
    its description does not), and every record arrives once."""
    port, store = _free_port(), str(tmp_path / "js")
    srv = _nats_server(port, store)
    url = f"nats://127.0.0.1:{port}"
    count = 9000
    a, b = _source_and_sink(engines, count, 10)
    try:
        with _both_ends(a, b) as ends:
            ra, rb, src, dst = ends
            out, inn = _bridges_flowing(a, b, url, key, ends, 2000, "--max-bytes", "16K")
            srv.send_signal(sig)
            srv.wait(10)
            srv = _nats_server(port, store)

            def both_run():
                _take_one(ra, src, 0)
                assert inn.poll() is None, inn.stderr.read()
            try:
                _read_until(rb, dst, lambda: dst.n >= count, 90, "the destination", both_run)
            except AssertionError as e:
                said = {k: _stop(p) for k, p in (("out", out), ("in", inn))}
                raise AssertionError(f"{e}; the source had {src.n}; the bridges said: "
                                     f"{said}") from None
            _read_until(ra, src, lambda: False, 10, "the source")
            rc, _, err = _stop(inn)
            assert rc == 0, err
            _stop(out)
        _same(src, dst, count)
    finally:
        srv.kill()
        srv.wait()


def test_bridge_in_whose_consumer_is_deleted_stops_and_says_so(engines, nats, key):
    url, port = nats
    b = engines("--producers", "1", "--ring-size", "16M", games=0)
    inn = _bridge(b, "in", url, "--key-file", key)
    assert "xring bridge in:" in inn.stdout.readline()
    got = json.loads(_nats_request(port, f"$JS.API.CONSUMER.DELETE.xring-xr-test.xring-in-{b.name}",
                                   b""))
    assert got.get("success") is True, got
    _, err = inn.communicate(timeout=30)
    assert inn.returncode == 1 and "was deleted under this bridge in" in err, err


def test_careless_bridge_options_are_one_line_each(engines, nats, key, tmp_path):
    """Names that would reach the NATS protocol raw, and --max-bytes past
    what the server takes (its max_payload, 1 MiB by default: retried for
    ever before), are refused at the start with one line."""
    url, _ = nats
    a = engines(games=1)
    for bad in (["--subject", "a..b"], ["--subject", ".x"], ["--subject", "x\ny"],
                ["--subject", "x", "--js-stream", "a.b"], ["--subject", "x", "--durable", "d e"]):
        r = subprocess.run([str(XRING_BIN), "bridge", "out", a.name, "--nats", url,
                            "--key-file", key] + bad, env=a.env, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, (bad, r.stderr)
    r = subprocess.run([str(XRING_BIN), "bridge", "out", a.name, "--nats", url, "--subject",
                        "xr.test", "--key-file", key, "--max-bytes", "4M"], env=a.env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "max_payload" in r.stderr and len(r.stderr.splitlines()) == 1, \
        r.stderr


class _Proxy:
    """A TCP proxy to nats-server on loopback: what each side sends goes
    through _pass(data, down) (down: from the server), which says what to
    send on, what to keep for the next read, or None to cut the
    connection."""

    def __init__(self, port):
        import threading
        self.port_to = port
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(("127.0.0.1", self.port_to))
            except OSError:
                c.close()   # the server away: as a client of it would find it
                continue
            threading.Thread(target=self._pump, args=(c, s, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, True), daemon=True).start()

    def _pump(self, a, b, down):
        carry = b""
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                send, carry = self._pass(carry + d, down)
                if send is None:
                    break
                b.sendall(send)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()

    def close(self):
        self.ls.close()


class _Blip(_Proxy):
    """A TCP proxy to nats-server on loopback that swallows the chunk from
    the server carrying the `nth` message on the subject (counted by the
    chunks that start one) and cuts the connection: a network blip while a
    fetch's messages are on the wire (the server counts them delivered).
    Counted, not timed: a cut armed once the destination had 200 records
    found none left to cut when bridge in had fetched them all already (a
    slow start under ASan, the records all in the stream by then)."""

    def __init__(self, port, nth=1):
        import threading
        self.nth, self.seen, self.cut = nth, 0, threading.Event()
        super().__init__(port)

    def _pass(self, d, down):
        if down and not self.cut.is_set() and b"MSG xr.test." in d:
            self.seen += 1
            if self.seen == self.nth:
                self.cut.set()
                return None, b""
        return d, b""


@pytest.mark.parametrize("nth", [1, 3])
def test_a_message_lost_on_the_way_to_bridge_in_comes_again_in_order(engines, nats, key, nth):
    """The connection between bridge in and NATS drops a fetch's message
    on the wire: its very first (nth 1), or its third, once records came
    (the 1,200 records of about 2.7 KB make a dozen messages of up to
    256 KiB). The server counts it delivered and would send it again only
    after its ack wait (30 s), behind newer ones, which bridge in would then
    take for a duplicate; bridge in sees a delivery number skipped, remakes
    its consumer from the stream sequence after the last it took, and each
    record arrives once, well within the ack wait."""
    url, port = nats
    blip = _Blip(port, nth)
    try:
        a, b = _source_and_sink(engines, 1200, 20)
        ea, eb = xring.attach(a.name, timeout=5), xring.attach(b.name, timeout=5)
        src, dst = _Records(), _Records()
        with ea.reader(batch=512, max_wait=0.05, history="all") as ra, \
                eb.reader(batch=512, max_wait=0.05) as rb:
            out = _bridge(a, "out", url, "--key-file", key)
            inn = _bridge(b, "in", f"nats://127.0.0.1:{blip.port}", "--ring", "1",
                          "--key-file", key)
            _read_until(rb, dst, lambda: dst.n >= 1200, 20, "the destination",
                        lambda: _take_one(ra, src, 0))
            _read_until(ra, src, lambda: False, 10, "the source")
            rc_in, so, se = _stop(inn)
            _stop(out)
        assert blip.cut.is_set(), "the proxy never cut a message"
        assert rc_in == 0, se
        _same(src, dst, 1200)
    finally:
        blip.close()


class _NatsProxy(_Proxy):
    """A _Proxy that reads what the client sends as NATS protocol commands,
    each whole (its line and payload) handed to _up(cmd, payload), which
    returns the bytes to send in its place (b"": nothing)."""

    @staticmethod
    def raw(cmd, payload):
        return cmd + b"\r\n" + (payload + b"\r\n" if payload is not None else b"")

    def _pass(self, buf, down):
        if down:
            return buf, b""
        out = []
        while True:
            i = buf.find(b"\r\n")
            if i < 0:
                break
            cmd, payload, used = buf[:i], None, i + 2
            if cmd[:4] in (b"PUB ", b"HPUB"):
                n = int(cmd.split()[-1])
                if len(buf) < i + 2 + n + 2:
                    break
                payload, used = buf[i + 2:i + 2 + n], i + 2 + n + 2
            buf = buf[used:]
            out.append(self._up(cmd, payload))
        return b"".join(out), buf


class _Divert(_NatsProxy):
    """A proxy to nats-server on loopback that sends the `nth` message
    bridge out publishes on the stream's subjects to a subject no stream
    keeps, and passes everything else as it is: a message lost on the way
    to JetStream while the ones after it are stored (a server stopped, or a
    stream's leader killed, between them). The server answers it "no
    responders". With cut, once a message id comes a second time (out's
    pass one message at a time, which puts the order right), nothing of
    out's goes any more (`cut` set): out is stuck before the repair."""

    def __init__(self, port, nth, cut=False):
        import threading
        self.nth, self.seen, self.done = nth, 0, threading.Event()
        self.cutting, self.cut, self.ids = cut, threading.Event(), set()
        super().__init__(port)

    def _up(self, cmd, payload):
        if self.cut.is_set():
            return b""
        if not cmd.startswith(b"HPUB xr.test."):
            return self.raw(cmd, payload)
        mid = re.search(rb"Nats-Msg-Id: ([^\r]+)", payload).group(1)
        if self.cutting and mid in self.ids:
            self.cut.set()
            return b""
        self.ids.add(mid)
        self.seen += 1
        if self.seen == self.nth:
            self.done.set()
            return self.raw(b"HPUB xr.tesX." + cmd[len(b"HPUB xr.test."):], payload)
        return self.raw(cmd, payload)


class _DropAcks(_NatsProxy):
    """A proxy that drops every acknowledgement bridge in sends: what the
    server sees of one killed after its engine took a list, before it
    acknowledged it."""

    def _up(self, cmd, payload):
        return b"" if cmd.startswith(b"PUB $JS.ACK.") else self.raw(cmd, payload)


def _diverted(engines, nats, key, divert, meanwhile=None):
    """3,000 records through an out behind 600 of them, publishing through
    divert, and an in; meanwhile(out, ra, src), if given, runs first and
    returns the out to go on with. Every record must arrive once, each
    seat's in order; returns the last lines of out and in, and in's
    stderr."""
    url, port = nats
    try:
        a, b = _source_and_sink(engines, 3000, 20)
        with _both_ends(a, b) as (ra, rb, src, dst):
            _read_until(ra, src, lambda: src.n >= 600, 30, "the source")
            out = _bridge(a, "out", f"nats://127.0.0.1:{divert.port}", "--max-bytes", "64K",
                          "--key-file", key)
            inn = _bridge(b, "in", url, "--ring", "1", "--key-file", key)
            if meanwhile:
                out = meanwhile(out, a, ra, src)
            try:
                _read_until(rb, dst, lambda: dst.n >= 3000, 60, "the destination",
                            lambda: _take_one(ra, src, 0))
            except AssertionError as e:
                raise AssertionError(f"{e}; the bridges said: {_stop(out)} {_stop(inn)}") \
                    from None
            _read_until(ra, src, lambda: False, 10, "the source")
            rc_in, out_in, err_in = _stop(inn)
            rc_out, out_out, err_out = _stop(out)
    finally:
        divert.close()
    assert divert.done.is_set(), "the proxy never diverted a message"
    assert rc_in == 0 and rc_out == 0, (err_in, err_out)
    _same(src, dst, 3000)
    return out_out, out_in, err_in


@pytest.mark.parametrize("nth", [1, 2])
def test_a_message_lost_on_the_way_to_jetstream_is_sent_again_in_order(engines, nats, key, nth):
    """Bridge out starts behind 600 records of the source, so its first
    batch is some 50 messages in flight at once. The second is lost on the
    way (_Divert) and the ones after it are stored. Out publishes the batch
    again one message at a time: the lost one is stored now, after its
    followers, which out sees by their stream sequences and sends again
    after it. In passes over the followers that came ahead of it and takes
    their copies. Every record arrives once, each seat's in order (before,
    in took the late message's records for duplicates: they were lost).
    The first lost: a ring's first message goes alone, acknowledged before
    the rest, so it is tried again till it is stored and nothing is out of
    order (before, in, with nothing of the ring, took the second before
    it: 12 records lost, seen to fail)."""
    out_out, out_in, err_in = _diverted(engines, nats, key, _Divert(nats[1], nth))
    again = re.search(r"(\d+) sent again in order", out_out)
    late = re.search(r"(\d+) ahead of their order passed over", out_in)
    if nth == 1:
        assert again and int(again.group(1)) == 0 and not late, (out_out, out_in)
        assert int(re.search(r"(\d+) publishes retried", out_out).group(1)) > 0, out_out
        return
    assert again and int(again.group(1)) > 0, out_out
    assert late and int(late.group(1)) == int(again.group(1)), (out_in, out_out)
    assert "came ahead of the one before it" in err_in, err_in


def test_bridge_out_killed_before_it_puts_its_first_batch_in_order_loses_nothing(engines, nats,
                                                                                 key):
    """As above, the second message of out's first batch lost on the way;
    out is cut off as it begins to put the order right (the first id it
    sends again), and SIGKILLed. No batch was done, so its file says only
    that one went: started again, out sends the ring again from its start
    (not from the subject's last message, a follower stored ahead of the
    lost one: the lost one was never sent again, and in passed over the
    rest of that batch, 2,372 of 3,000 arriving: seen to fail)."""
    divert = _Divert(nats[1], 2, cut=True)

    def kill_and_start_again(out, a, ra, src):
        _read_until(ra, src, lambda: divert.cut.is_set(), 30, "out's pass again")
        out.kill()
        out.communicate(timeout=30)
        return _bridge(a, "out", nats[0], "--max-bytes", "64K", "--key-file", key)
    out_out, out_in, _ = _diverted(engines, nats, key, divert, kill_and_start_again)
    assert "sent again in order" in out_out and "ahead of their order" in out_in, \
        (out_out, out_in)


class _Subscriber:
    """Someone without the key who may subscribe to `subject` and publish:
    each message's id (Nats-Msg-Id) goes to _id(mid), on a thread of its
    own, and a PONG the server sends to _pong(). junk(mid) is a byte of
    junk on xr.test.junk under id mid, as a publish to send."""

    def __init__(self, port, subject):
        import threading
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.s.makefile("rb")
        self.f.readline()
        self.s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\nSUB %s 1\r\nPING\r\n'
                       % subject)
        while not self.f.readline().startswith(b"PONG"):
            pass
        threading.Thread(target=self._run, daemon=True).start()

    @staticmethod
    def junk(mid):
        hdr = b"NATS/1.0\r\nNats-Msg-Id: " + mid + b"\r\n\r\n"
        return b"HPUB xr.test.junk %d %d\r\n%sx\r\n" % (len(hdr), len(hdr) + 1, hdr)

    def _run(self):
        while True:
            try:
                line = self.f.readline()
            except OSError:
                return
            if not line:
                return
            if line.startswith(b"PING"):
                self.s.sendall(b"PONG\r\n")
            elif line.startswith(b"PONG"):
                self._pong()
            elif line.startswith(b"HMSG "):
                w = line.split()
                data = self.f.read(int(w[-1]) + 2)
                m = re.search(rb"Nats-Msg-Id: ([^\r]+)", data[:int(w[-2])])
                if m:
                    self._id(m.group(1))

    def _pong(self):
        pass

    def close(self):
        self.s.close()


class _Watcher(_Subscriber):
    """Subscribes where a message JetStream does not store still goes
    (xr.tesX.>, where _Divert sends it; in a cluster, the subject itself
    while the stream has no leader) and publishes junk under the id of each
    message it sees; `squatted` once the server has it."""

    def __init__(self, port):
        import threading
        self.squatted, self.sent = threading.Event(), False
        super().__init__(port, b"xr.tesX.>")

    def _id(self, mid):
        self.s.sendall(self.junk(mid) + b"PING\r\n")
        self.sent = True

    def _pong(self):
        if self.sent:
            self.squatted.set()    # the server took the junk before this


class _DivertThenWait(_Divert):
    """_Divert, whose sending on of the diverted message's id a second time
    (out's pass one message at a time) waits, 2 s at most, for the watcher
    to have published under it."""

    def __init__(self, port, nth, watcher):
        self.watcher, self.diverted = watcher, None
        super().__init__(port, nth)

    def _up(self, cmd, payload):
        mid = None
        if cmd.startswith(b"HPUB xr.test."):
            mid = re.search(rb"Nats-Msg-Id: ([^\r]+)", payload).group(1)
            if self.diverted is not None and mid == self.diverted:
                self.watcher.squatted.wait(2)
        was = self.done.is_set()
        sent = super()._up(cmd, payload)
        if not was and self.done.is_set():
            self.diverted = mid
        return sent


def test_a_keyless_watcher_cannot_take_the_id_of_a_message_lost_on_the_way(engines, nats, key):
    """The divert test's second message lost on the way, and someone
    without the key who saw it go by publishes junk under its id before out
    sends it again. Out looks at what a duplicate's ack names, finds it is
    not its own, and sends the message under an id of its own: every record
    arrives (before, out took the junk's place for its message's: 2,388 of
    3,000 arrived, seen to fail)."""
    watcher = _Watcher(nats[1])
    try:
        out_out, _, _ = _diverted(engines, nats, key, _DivertThenWait(nats[1], 2, watcher))
    finally:
        watcher.close()
    assert watcher.squatted.is_set(), "the watcher never published"
    assert "1 under ids of their own" in out_out, out_out


@pytest.mark.parametrize("how", ["file lost", "file cannot be written"])
def test_bridge_in_without_its_file_takes_what_comes(engines, nats, key, tmp_path, how):
    """Records 1-2 (a ring's first message), 3-4 and 5-6 (the same batch,
    prev 2 and 4), MACed with the key. in takes 1-2, acknowledges it and
    stops; its file is lost (another host, a run directory on tmpfs after a
    reboot) or was never written (said on stderr). 3-4 and 5-6 come, and
    in starts again with nothing of the ring: it takes them (before, it
    passed them over waiting for copies that never come: 2 records of 6,
    seen to fail)."""
    url, port = nats
    r = _some_records(engines(games=1), tmp_path, 6)
    kb = open(key, "rb").read()
    b = engines("--producers", "1", "--ring-size", "16M", games=0)
    state = _in_file(b)
    if how == "file cannot be written":
        os.mkdir(state)      # a rename onto it fails

    dst = _Records()
    try:
        with xring.attach(b.name, timeout=5).reader(batch=64, max_wait=0.05) as rb:
            inn = _bridge(b, "in", url, "--ring", "1", "--key-file", key)
            assert "xring bridge in:" in inn.stdout.readline()
            _publish(port, "xr.test.g.0", [_bridge_message(r[0], 1, [(2, r[1])], key=kb)])
            _read_until(rb, dst, lambda: dst.n >= 2, 30, "the destination")
            wait_for(lambda: _acked(port, b) == 1, 10, "in to acknowledge 1-2")
            rc, so, se = _stop(inn)
            assert rc == 0, se
            if how == "file lost":
                os.unlink(state)
            else:
                assert "cannot write" in se, se
            _publish(port, "xr.test.g.0", [
                _bridge_message(r[2], 3, [(4, r[3])], prev=2, key=kb),
                _bridge_message(r[4], 5, [(6, r[5])], prev=4, key=kb)])
            inn = _bridge(b, "in", url, "--ring", "1", "--key-file", key)
            _read_until(rb, dst, lambda: dst.n >= 6, 30, "the destination")
            rc, so, se = _stop(inn)
    finally:
        if os.path.isdir(state):
            os.rmdir(state)
    assert rc == 0, se
    assert dst.n == 6 and dst.dups == 0 and dst.disordered == 0, (dst.n, so, se)


@pytest.mark.parametrize("how", ["acks lost", "file and consumer lost"])
def test_bridge_in_restarted_after_passing_over_a_message_takes_its_copy(engines, nats, key,
                                                                        tmp_path, how):
    """Messages MACed with the key, published by hand: 1-2; 5-6 ahead of
    3-4; 3-4. In takes 1-2 and 3-4 and passes over 5-6. Then it dies
    before its acknowledgements reach the server (a proxy drops them;
    SIGKILL once its file says it is done with 3-4), or it stops and loses
    its file and its consumer. 5-6's copy comes, and in starts again: it
    takes the copy. (Before, the restart took 5-6, come again, for a
    message the engine had taken, below the slot's last tag, and the copy
    for a duplicate: seen to fail.)"""
    url, port = nats
    r = _some_records(engines(games=1), tmp_path, 6)
    kb = open(key, "rb").read()
    m3 = _bridge_message(r[4], 5, [(6, r[5])], prev=4, base=2, key=kb)
    msgs = [_bridge_message(r[0], 1, [(2, r[1])], key=kb), m3,
            _bridge_message(r[2], 3, [(4, r[3])], prev=2, base=2, key=kb)]
    b = engines("--producers", "1", "--ring-size", "16M", games=0)
    eb = xring.attach(b.name, timeout=5)
    state = _in_file(b)
    proxy = _DropAcks(port)
    dst = _Records()
    try:
        with eb.reader(batch=64, max_wait=0.05) as rb:
            inn = _bridge(b, "in", f"nats://127.0.0.1:{proxy.port}" if how == "acks lost"
                          else url, "--ring", "1", "--key-file", key)
            assert "xring bridge in:" in inn.stdout.readline()
            _publish(port, "xr.test.g.0", msgs)
            _read_until(rb, dst, lambda: dst.n >= 4, 30, "the destination")

            def done_with():   # the last message its file says it is done with
                try:
                    with open(state, "rb") as f:
                        return struct.unpack("<IIQq", f.read(24))[2]
                except (OSError, struct.error):
                    return 0
            wait_for(lambda: done_with() == 3, 10, "in's file to say it is done with 3-4")
            if how == "acks lost":
                inn.kill()
                inn.communicate(timeout=30)
            else:
                rc, so, se = _stop(inn)
                assert rc == 0 and "1 ahead of their order passed over" in so, so + se
                os.unlink(state)
                _nats_request(port, f"$JS.API.CONSUMER.DELETE.xring-xr-test.xring-in-{b.name}",
                              b"")
            _publish(port, "xr.test.g.0", [m3])
            inn = _bridge(b, "in", url, "--ring", "1", "--key-file", key)
            _read_until(rb, dst, lambda: dst.n >= 6, 30, "the destination")
            deadline = time.monotonic() + 0.5     # anything extra would come now
            while time.monotonic() < deadline:
                _take_one(rb, dst, 0.1)
            rc, so, se = _stop(inn)
    finally:
        proxy.close()
    assert rc == 0, se
    assert dst.n == 6 and dst.dups == 0 and dst.disordered == 0, (dst.n, so, se)


class _Squatter(_Subscriber):
    """Reads the message ids bridge out publishes on xr.test.>, and
    publishes junk under every id the next messages may have (first a
    little past the last seen, last up to 16 further): JetStream would take
    out's real messages for duplicates of the junk, and keep the junk."""

    def __init__(self, port):
        self.squatted, self.seen = 0, 0
        super().__init__(port, b"xr.test.>")

    def _id(self, mid):
        self.seen += 1
        if self.squatted or self.seen < 3:
            return
        src, inc, ring, first0, last = mid.decode().split("-")[:5]
        junk = []
        for first in range(int(last) + 9, int(last) + 49):
            for end in range(first, first + 16):
                # Its guess: an id as the ids it read, without their MAC.
                for guess in (f"{src}-{inc}-{ring}-{first}-{end}",
                              mid.decode().replace(f"-{first0}-{last}", f"-{first}-{end}")):
                    junk.append(self.junk(guess.encode()))
        self.s.sendall(b"".join(junk))
        self.squatted = len(junk)


@same_paths_as_others
def test_a_keyless_publisher_cannot_take_out_s_next_message_ids(engines, nats, key):
    """With a key on both sides, someone without it publishes junk under
    the ids out's next messages may have. Out's ids end with a MAC of
    themselves, so none is guessed: every record arrives (with ids that
    could be guessed, 32 of 3,000 were lost: seen to fail)."""
    url, port = nats
    squatter = _Squatter(port)
    try:
        src, dst, out_in, _ = _run(engines, nats, key, 3000)
    finally:
        squatter.close()
    assert squatter.squatted > 0, "the squatter never published"
    _same(src, dst, 3000)


@same_paths_as_others
def test_both_bridges_restarted_behind_a_forged_last_message_and_a_replay_write_nothing_twice(
        engines, nats, key):
    """Both bridges die; meanwhile someone without the key publishes a
    byte on a ring's subject (its last message now) and publishes again,
    verbatim, the stream's first real message (no message id: JetStream
    keeps it). Both bridges start again: out goes on from its own file, not
    from the subject's last message, and in skips the replayed records by
    its own file of what it took. Each of the 6,000 records arrives once
    (without the files, out published its ring again and the restarted in,
    having forgotten, wrote it twice)."""
    url, port = nats
    a, b = _source_and_sink(engines, 6000, 20)
    ea, eb = xring.attach(a.name, timeout=5), xring.attach(b.name, timeout=5)
    src, dst, procs = _Records(), _Records(), {}

    def meanwhile():
        p = procs["in"]
        p.kill()
        p.communicate(timeout=30)
        got = json.loads(_nats_request(port, "$JS.API.STREAM.MSG.GET.xring-xr-test",
                                       b'{"seq": 1}'))
        real = base64.b64decode(got["message"]["data"])
        _publish(port, got["message"]["subject"], [real, b"x"])
        procs["in"] = _bridge(b, "in", url, "--ring", "1", "--key-file", key)
    _, _, out_in, err_out = _bridged(a, b, ea, eb, url, key, 6000, "out", meanwhile, src, dst,
                                     procs)
    _same(src, dst, 6000)
    assert "this bridge's own record of it" in err_out, err_out
    assert "1 refused" in out_in, out_in


def test_a_lossy_bridge_out_counts_its_drops_and_what_it_sent_arrives_once(engines, nats, key):
    """--lossy: the source engine never waits for the bridge. Games flat
    out into a 1 MiB ring outrun it, and what the engine wrote over before
    the bridge read it is counted at the source (its last line) and never
    sent; what it sent arrives, each record once."""
    url, _ = nats
    a = engines("--ring-size", "1M", games=64)
    b = engines("--producers", "1", "--ring-size", "64M", games=0)
    eb = xring.attach(b.name, timeout=5)
    dst = _Records()
    with eb.reader(batch=512, max_wait=0.05) as rb:
        inn = _bridge(b, "in", url, "--ring", "1", "--key-file", key)
        out = _bridge(a, "out", url, "--key-file", key, "--lossy")
        _read_until(rb, dst, lambda: dst.n >= 3000, 60, "the destination")
        rc_out, so, se = _stop(out)
        assert rc_out == 0, se
        sent = int(so.strip().splitlines()[-1].split(": ")[1].split()[0])
        dropped = int(so.split(" dropped at the source")[0].rsplit(", ", 1)[1])
        _read_until(rb, dst, lambda: dst.n >= sent, 30, "what bridge out sent")
        rc_in, si, se = _stop(inn)
    assert rc_in == 0, se
    assert dropped > 0, so
    assert dst.n == sent and dst.dups == 0, (dst.n, sent, dst.dups)
    assert f"{sent} records" in si, si


def test_a_flood_of_asks_does_not_let_a_second_bridge_in_share_a_consumer(engines, nats):
    """Without a key, someone floods the ask subject of bridge in's
    consumer, so that its answers (at most one each 50 ms) go to the flood
    and a second bridge in, asking, hears none: the second is still
    refused, on the server's word (the first's pull requests waiting on the
    consumer). With a key the flood is not answered at all (above)."""
    url, port = nats
    b = engines("--producers", "2", "--ring-size", "16M", games=0)
    first = _bridge(b, "in", url, "--unauthenticated")
    assert "xring bridge in:" in first.stdout.readline()
    with _AskFlood(port, b.name):
        second = _bridge(b, "in", url, "--unauthenticated")
        _, err = second.communicate(timeout=60)
    assert second.returncode == 1, err
    assert "another bridge in" in err and len(err.splitlines()) == 1, err
    assert first.poll() is None
    rc, _, err = _stop(first)
    assert rc == 0, err
