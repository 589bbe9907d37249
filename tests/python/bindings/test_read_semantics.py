# SPDX-License-Identifier: MIT
"""What read() promises: min_batch records (from one ring) until max_wait,
then whatever there is; a partial batch at once when no more can come; the
reader's facts follow a restarted engine; a closed reader says so."""
import resource
import time

import numpy as np
import pytest

import xring
from xrtest import reader


def _cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def test_min_batch_until_max_wait_then_any(engines):
    # 4 games, a turn every 20 ms, 2 players: about 400 records/s.
    e = engines("--tick-ms", "20", games=4)
    with reader(e, batch=64, min_batch=16, max_wait=0.3) as r:
        full = 0
        for _ in range(8):
            t0 = time.monotonic()
            b = r.read(timeout=5)
            waited = time.monotonic() - t0
            assert b is not None
            assert len(b) >= 16 or waited >= 0.29, (len(b), waited)
            full += len(b) >= 16
            b.release()
        assert full >= 6
    # Where min_batch cannot come within max_wait, read() returns what
    # there is once max_wait has passed, not before.
    with reader(e, batch=4096, max_wait=0.15) as r:
        for _ in range(3):
            t0 = time.monotonic()
            b = r.read(timeout=5)
            waited = time.monotonic() - t0
            assert b is not None and 0 < len(b) < 4096
            assert 0.14 <= waited < 1.0, waited
            b.release()


def test_min_batch_comes_from_one_ring(engines):
    # Two shards, two rings; three games, so one shard has a single game and
    # its ring fills slowly: a batch must still be min_batch of one ring.
    e = engines("--shards", "2", "--tick-ms", "1", games=3)
    with reader(e, batch=64, min_batch=64, max_wait=5) as r:
        assert r.facts()["rings"] == 2
        rings = set()
        for _ in range(40):
            b = r.read(timeout=10)
            assert b is not None and len(b) == 64, len(b)
            seq = b.seq.astype(np.int64)
            assert (np.diff(seq) == 1).all(), "records of one ring, in order"
            rings.add(b.ring)
            b.release()
        assert rings == {0, 1}


def test_partial_batch_at_once_when_the_engine_ends(engines):
    # The engine's first turn, 300 ms after it starts (the reader is attached
    # by then), writes 40 records (20 games, 2 players) and it exits: a
    # reader waiting for 256 with a long max_wait gets the 40 at once,
    # without spinning until max_wait.
    e = engines("--tick-ms", "300", "--count", "40", games=20)
    with reader(e, batch=256, max_wait=3.0) as r:
        got = 0
        t0, c0 = time.monotonic(), _cpu_s()
        with pytest.raises(xring.EngineClosedError):
            while True:
                b = r.read(timeout=5)
                assert b is not None
                got += len(b)
                b.release()
        wall, cpu = time.monotonic() - t0, _cpu_s() - c0
    assert got == 40
    assert wall < 2.0, f"took {wall:.2f} s"
    assert cpu < 0.5, f"used {cpu:.2f} s of CPU: spinning until max_wait"


def test_reattach_follows_a_new_shape(engines):
    e = engines("--tick-ms", "10", "--board", "8x8", games=4)
    r = reader(e, batch=16)
    b = r.read(timeout=5)
    assert b.obs.shape[2:] == (8, 8)
    before = r.facts()
    b.release()
    del b
    e.stop()
    with pytest.raises(xring.EngineClosedError):
        while True:
            x = r.read(timeout=5)
            assert x is not None
            x.release()
    e.args[e.args.index("8x8")] = "4x4"
    e.start()
    r.reattach(timeout=10)
    after = r.facts()
    assert after["obs_shape"][1:] == (4, 4) and after["record_bytes"] < before["record_bytes"]
    b = r.read(timeout=5)
    assert b is not None and b.copied is None
    assert b.obs.shape[1:] == after["obs_shape"]
    assert b.mask.shape[1] == after["mask_len"]
    b.release()
    r.close()


def test_closed_reader_says_so(engine):
    r = reader(engine, batch=8)
    assert r.facts()["stream"] == "experience"
    r.close()
    for call in (r.facts, r.read, r.stats):
        with pytest.raises(ValueError, match="closed"):
            call()


@pytest.mark.parametrize("kw, msg", [
    ({"games": (10, 12)}, "ambiguous"),
    ({"players": (0, 1)}, "ambiguous"),
    ({"min_turn": -1}, "min_turn"),
    ({"min_turn": 2**32}, "min_turn"),
    ({"sample_rate": 0}, "sample_rate"),
    ({"sample_rate": 1.5}, "sample_rate"),
    ({"max_wait": -1}, "max_wait"),
])
def test_bad_reader_arguments(engine, kw, msg):
    with pytest.raises(ValueError, match=msg):
        reader(engine, **kw)


def test_range_forms_agree(engines):
    e = engines("--tick-ms", "5", games=30)
    forms = [[(10, 12)], range(10, 13), [10, 11, 12]]
    readers = [reader(e, batch=32, max_wait=0.2, games=g) for g in forms]
    try:
        for r in readers:
            ids = set()
            while len(ids) < 3:
                b = r.read(timeout=5)
                assert b is not None
                ids |= set(b.game_id.tolist())
                b.release()
            assert ids == {10, 11, 12}
    finally:
        for r in readers:
            r.close()
