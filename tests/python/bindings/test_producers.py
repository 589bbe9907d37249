# SPDX-License-Identifier: MIT
"""External producers from Python (Engine.producer(), Producer): records
written with write() and write_many() come out of the stream, every field
and byte as written, to an ordinary reader; refusals raise the right
exceptions; a producer process SIGKILLed after a flush loses nothing, and
its ring is shown ended (`xring info --json`)."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import xring
from xrtest import XRING_BIN, child_env


def _engine(engines):
    return engines("--producers", "2", games=0)


def _read(r, n, timeout=10):
    """n records of the reader, as lists of columns."""
    import time
    cols = {k: [] for k in ("seq", "game_id", "player_id", "turn", "action", "reward", "done",
                            "truncated", "applied", "applied_by", "t_ns", "obs", "mask")}
    end = time.monotonic() + timeout
    got = 0
    while got < n:
        assert time.monotonic() < end, f"{got} of {n} records"
        b = r.read(timeout=0.2)
        if b is None:
            continue
        for k in cols:
            cols[k].append(np.array(getattr(b, k)))
        got += len(b)
        b.release()
    return {k: np.concatenate(v) for k, v in cols.items()}


def test_records_written_are_the_records_read(engines):
    e = xring.attach(_engine(engines).name, timeout=5)
    with e.reader(batch=512, max_wait=0.05) as r, e.producer() as p:
        lay = p.layout
        shape, n = tuple(lay["obs_shape"]), 1000
        assert lay["obs_dtype"] == "u8" and lay["mask_len"] > 0
        obs = (np.arange(n)[:, None] * 7 + np.arange(int(np.prod(shape)))) % 251
        obs = obs.astype(np.uint8).reshape((n,) + shape)
        mask = (np.arange(n)[:, None] + np.arange(lay["mask_len"])) % 3 == 0
        assert p.write_many(obs, action=np.arange(n) % 5, reward=np.arange(n) * 0.25,
                            done=np.arange(n) % 10 == 9, game_id=7, player_id=np.arange(n) % 2,
                            turn=np.arange(n), mask=mask.astype(np.uint8),
                            applied=np.arange(n) - 1, applied_by=2, t_ns=12345) == n
        # One more through write(), with the defaults: no mask is all legal.
        p.write(obs[0], action=3, game_id=8, turn=99)
        p.flush(timeout=10)
        st = p.stats()
        assert st["records"] == n + 1 and st["published"] == n + 1 and st["pending_bytes"] == 0
        got = _read(r, n + 1)
    assert (np.diff(got["seq"].astype(np.int64)) == 1).all()
    assert np.array_equal(got["obs"][:n].reshape(obs.shape), obs)
    assert np.array_equal(got["mask"][:n], mask.astype(np.uint8))
    assert np.array_equal(got["action"][:n], np.arange(n) % 5)
    assert np.array_equal(got["reward"][:n], (np.arange(n) * 0.25).astype(np.float32))
    assert np.array_equal(got["done"][:n], np.arange(n) % 10 == 9)
    assert (got["game_id"][:n] == 7).all() and np.array_equal(got["turn"][:n], np.arange(n))
    assert np.array_equal(got["player_id"][:n], np.arange(n) % 2)
    assert np.array_equal(got["applied"][:n], np.arange(n) - 1)
    assert (got["applied_by"][:n] == 2).all() and (got["t_ns"][:n] == 12345).all()
    assert got["game_id"][n] == 8 and got["turn"][n] == 99 and got["action"][n] == 3
    assert (got["mask"][n] == 1).all() and got["t_ns"][n] > 12345


def test_refusals(engines):
    e = xring.attach(_engine(engines).name, timeout=5)
    with pytest.raises(xring.NoEngineError):
        xring.attach(e.name, timeout=5).producer(stream="nosuch")
    with pytest.raises(ValueError, match="power of two"):
        e.producer(stage_bytes=100000)
    with e.producer() as p, e.producer() as q:
        with pytest.raises(xring.NoProducerSlotError, match="taken"):
            e.producer()
        with pytest.raises(ValueError, match="obs"):
            p.write(np.zeros(3, np.uint8))
        with pytest.raises(ValueError, match="action"):
            q.write_many(np.zeros((2,) + tuple(q.layout["obs_shape"]), np.uint8),
                         action=[1, 2, 3])
    assert p.closed
    with pytest.raises(ValueError, match="closed"):
        p.write(np.zeros(tuple(p.layout["obs_shape"]), np.uint8))
    plain = xring.attach(engines(games=1).name, timeout=5)
    with pytest.raises(xring.NoProducerSlotError, match="--producers"):
        plain.producer()


def test_values_are_written_as_they_are_or_refused(engines):
    """No value is rounded, wrapped or cast into a field that cannot hold
    it; a write_many that stops partway says how many it wrote."""
    e = xring.attach(_engine(engines).name, timeout=5)
    with e.producer() as p:
        shape = tuple(p.layout["obs_shape"])
        obs = np.zeros(shape, np.uint8)
        for kw, exc in [({"action": 2**40}, ValueError), ({"game_id": -1}, ValueError),
                        ({"applied_by": 256}, ValueError), ({"turn": 1.5}, TypeError),
                        ({"t_ns": -5}, (TypeError, OverflowError, ValueError)),
                        ({"mask": np.full(p.layout["mask_len"], 0.5)}, TypeError)]:
            with pytest.raises(exc):
                p.write(obs, **kw)
        with pytest.raises(TypeError):
            p.write(np.full(shape, 300.7))           # floats into a u8 stream
        assert p.stats()["published"] == 0           # nothing of them went
        p.write(obs, action=-(2**31), game_id=2**32 - 1, reward=1e30, t_ns=2**63)
        assert p.stats()["published"] == 1
        # A lossless reader that holds its first batch stops the ring: a
        # write_many past what fits stops partway, and says how far.
        with e.reader(batch=1, max_wait=0.5) as r:
            p.write(obs)
            held = r.read(timeout=5)
            assert held is not None and len(held) == 1
            many = np.zeros((20000,) + shape, np.uint8)
            with pytest.raises(TimeoutError) as ei:
                p.write_many(many, turn=np.arange(20000), timeout=1)
            written = ei.value.written
            assert 0 < written < 20000 and f"{written} of the 20000" in str(ei.value)
            assert p.stats()["published"] == 2 + written
            held.release()


def test_a_killed_producer_loses_nothing_it_flushed(engines, run_dir):
    eng = _engine(engines)
    e = xring.attach(eng.name, timeout=5)
    with e.reader(batch=512, max_wait=0.05) as r:
        child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
            import os, signal, sys
            import numpy as np
            import xring
            p = xring.attach({eng.name!r}, timeout=5).producer()
            shape = tuple(p.layout["obs_shape"])
            obs = np.full((500,) + shape, 9, np.uint8)
            p.write_many(obs, turn=np.arange(500), game_id=5)
            p.flush(timeout=10)
            print("flushed", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
            """)], env=child_env(run_dir), stdout=subprocess.PIPE, text=True)
        out, _ = child.communicate(timeout=60)
        assert "flushed" in out and child.returncode == -signal.SIGKILL
        got = _read(r, 500)
        assert np.array_equal(got["turn"], np.arange(500)) and (got["game_id"] == 5).all()
        assert (got["obs"] == 9).all()

    def rings():
        info = subprocess.run([str(XRING_BIN), "info", eng.name, "--json"], env=eng.env,
                              capture_output=True, text=True, timeout=30)
        assert info.returncode == 0, info.stderr
        return json.loads(info.stdout)["streams"][0]["rings"]
    # `xring info` names the holder of a slot, and the last one of an ended slot.
    ended = [r for r in rings() if r["writer"] == "producer slot, its producer ended"]
    assert [r["producer"] for r in ended] == [{"pid": child.pid, "uid": os.geteuid()}], ended
    # Its slot, taken again by ring, says what the engine took from it.
    with e.producer(ring=1) as p:
        st = p.stats()
        assert st["ring"] == 1 and st["resume_taken"] == 500 and st["resume_tag"] == 0
        with pytest.raises(xring.NoProducerSlotError, match="not a free producer slot"):
            e.producer(ring=1)
        now = rings()[1]
        assert now["writer"] == "producer", now
        assert now["producer"] == {"pid": os.getpid(), "uid": os.geteuid()}, now
    writers = [ring["writer"] for ring in rings()]
    assert writers[0] == "shard" and "producer slot, its producer ended" in writers[1:], writers
    text = subprocess.run([str(XRING_BIN), "info", eng.name], env=eng.env,
                          capture_output=True, text=True, timeout=30).stdout
    assert f"producer slot, its producer (pid {os.getpid()} uid {os.geteuid()}) ended" in text, \
        text


def test_info_json_gives_a_producer_ring_no_shard(engines):
    """`xring info --json`: a producer slot's ring says who writes it, and
    has no shard and no games (null), where a shard's ring has both."""
    e = engines("--producers", "1", games=1)
    out = subprocess.run([str(XRING_BIN), "info", e.name, "--json"], env=e.env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    rings = json.loads(out.stdout)["streams"][0]["rings"]
    assert [r["writer"] for r in rings] == ["shard", "producer slot, free"], rings
    assert isinstance(rings[0]["shard"], dict) and isinstance(rings[0]["games"], dict)
    assert rings[1]["shard"] is None and rings[1]["games"] is None
    assert "producer" not in rings[1]           # a free slot: no holder to name
