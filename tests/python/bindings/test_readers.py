# SPDX-License-Identifier: MIT
"""Many readers (in one process, and in several processes) each see
every record; a reader survives its engine's restart with reattach()."""
import json
import os
import signal
import subprocess
import textwrap
import threading
import time

import numpy as np
import pytest

import xring
from xrtest import (UNDER_ASAN, check_accounting, child_env, info, python, reader, row_digest,
                    wait_blocked_in_read, wait_for)


def _columns(b):
    return (b.seq.copy().astype(np.int64), b.game_id.copy(), b.turn.copy(),
            row_digest(b.obs.copy()))


# Under the ASan pass (scripts/test.sh, 3b) the readers below spin through
# an instrumented extension: a quarter of the records walks the same paths
# (the ring's wrap included) in a quarter of the time.
N_RECORDS = 5000 if UNDER_ASAN else 20000


def test_four_readers_in_one_process_see_every_record(engines):
    n = N_RECORDS
    e = engines("--tick-ms", "5", "--count", str(n))
    readers = [reader(e, batch=128, max_wait=0) for _ in range(4)]
    got = [[] for _ in readers]
    live = set(range(len(readers)))
    while live:
        for i in list(live):
            try:
                b = readers[i].read(timeout=0)
            except xring.EngineClosedError:
                live.discard(i)
                continue
            if b is not None:
                got[i].append(_columns(b))
                b.release()
    cols = [[np.concatenate(c) for c in zip(*g)] for g in got]
    firsts = []
    for i, (seq, *_rest) in enumerate(cols):
        assert np.array_equal(seq, np.arange(seq[0], n)), f"reader {i} missed records"
        s = readers[i].stats()
        check_accounting(s)
        assert s["read"] == s["written"] == len(seq) and s["dropped"] == 0
        firsts.append(seq[0])
    start = max(firsts)
    assert start < n // 2
    window = [[c[cc[0] >= start] for c in cc] for cc in cols]
    for i in range(1, len(window)):
        for a, b in zip(window[0], window[i]):
            assert np.array_equal(a, b), f"reader {i} saw other records than reader 0"


CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import xring
    r = xring.attach(sys.argv[1], timeout=10).reader(batch=256, max_wait=0.002)
    print("attached", flush=True)
    seqs, digest = [], 0
    try:
        while True:
            b = r.read(timeout=10)
            if b is None:
                break
            seqs.append(b.seq.copy())
            digest = (digest + int(b.obs.copy().astype(np.int64).sum())
                      + 7 * int(b.game_id.copy().astype(np.int64).sum())) % (1 << 61)
            b.release()
    except xring.EngineClosedError:
        pass
    s = np.concatenate(seqs).astype(np.int64)
    st = r.stats()
    print(json.dumps(dict(count=len(s), first=int(s[0]), last=int(s[-1]),
                          contiguous=bool((np.diff(s) == 1).all()), digest=digest,
                          read=st["read"], written=st["written"], dropped=st["dropped"],
                          pending=st["pending"])))
""")


def test_reader_processes_see_every_record(engines, run_dir):
    n = N_RECORDS
    e = engines("--tick-ms", "5", "--count", str(n), ring_size="2M")
    # A lossless reader that does not read yet: the engine fills the ring
    # and pauses, so every process below attaches at the same record.
    mine = reader(e, batch=256, max_wait=0.002)
    wait_for(lambda: info(e)["full_waits"] > 0, 10, "the engine to pause for its reader")
    kids = [subprocess.Popen([python(), "-c", CHILD, e.name], env=child_env(run_dir),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)]
    try:
        for k in kids:
            assert k.stdout.readline().strip() == "attached", k.stderr.read()
        seqs, obs_sums, games = [], [], []
        with pytest.raises(xring.EngineClosedError):
            while True:
                b = mine.read(timeout=10)
                assert b is not None
                seqs.append(b.seq.copy().astype(np.int64))
                obs_sums.append(b.obs.copy().reshape(len(b), -1).astype(np.int64).sum(axis=1))
                games.append(b.game_id.copy().astype(np.int64))
                b.release()
        outs = []
        for k in kids:
            out, err = k.communicate(timeout=60)
            assert k.returncode == 0, err
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for k in kids:
            if k.poll() is None:
                k.kill()
                k.wait()
    s = np.concatenate(seqs)
    assert np.array_equal(s, np.arange(s[0], n))
    first = outs[0]["first"]
    for o in outs:
        assert o["contiguous"] and o["last"] == n - 1, o
        assert o["first"] == first, outs          # all attached at the pause
        assert o["count"] == o["read"] == o["written"] == n - first, o
        assert o["dropped"] == 0 and o["pending"] == 0
        assert o["digest"] == outs[0]["digest"]
    # ...and that is every record the engine wrote after the pause, with the
    # same contents as this process read.
    after = s >= first
    assert o["count"] == int(after.sum())
    mine_digest = (int(np.concatenate(obs_sums)[after].sum())
                   + 7 * int(np.concatenate(games)[after].sum())) % (1 << 61)
    assert mine_digest == outs[0]["digest"]


@pytest.mark.solo
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_reattach_after_engine_restart(engines, sig):
    e = engines("--tick-ms", "10")
    r = reader(e, batch=64)
    b = r.read(timeout=5)
    assert b is not None
    b.release()
    del b
    t0 = time.monotonic()
    e.stop(sig)
    with pytest.raises(xring.EngineClosedError):
        for _ in range(100000):
            x = r.read(timeout=5)
            assert x is not None, "read timed out instead of seeing the engine gone"
            x.release()
    elapsed = time.monotonic() - t0
    if sig == signal.SIGKILL:
        assert elapsed < 1.0, f"took {elapsed:.2f} s to notice the engine was killed"
    # No engine yet: reattach gives up after its timeout.
    with pytest.raises(TimeoutError):
        r.reattach(timeout=0.2)
    # An engine of the same name comes back; the reader reads it.
    e.start()
    r.reattach(timeout=10)
    b = r.read(timeout=5)
    assert b is not None and len(b) > 0
    assert r.stats()["batches"] == 1
    assert r.stats()["read"] == len(b)
    b.release()
    check_accounting(r.stats())
    r.close()


def test_blocked_read_notices_sigkill(engines):
    e = engines("--tick-ms", "100000", games=2)      # writes nothing for 100 s
    r = reader(e, batch=16)
    me = threading.get_native_id()
    killed = {}

    def kill_when_blocked():
        wait_blocked_in_read(os.getpid(), me)
        killed["t"] = time.monotonic()
        e.proc.kill()
    k = threading.Thread(target=kill_when_blocked)
    k.start()
    try:
        with pytest.raises(xring.EngineClosedError):
            x = r.read(timeout=5)
            assert x is not None, "read timed out: the engine's death went unnoticed"
        done = time.monotonic()
    finally:
        k.join()
    e.proc.wait()
    assert done - killed["t"] < 1.0, f"{done - killed['t']:.2f} s"
    # Restarted, it is read again (this also cleans up the killed arena).
    e.start()
    r.reattach(timeout=10)
    assert r.fileno() >= 0
    r.close()


def test_reattach_refused_while_arrays_live(engine):
    r = reader(engine, batch=16)
    b = r.read(timeout=5)
    obs = b.obs
    b.release()
    with pytest.raises(RuntimeError, match="still alive"):
        r.reattach(timeout=1)
    del obs, b
    r.reattach(timeout=5)               # the same engine: attaches again
    b = r.read(timeout=5)
    assert b is not None
    b.release()


CLOSE_CHILD = textwrap.dedent("""
    import json, sys, threading, time
    import xring
    sys.path.insert(0, sys.argv[2])
    from xrtest import wait_blocked_in_read
    import os
    r = xring.attach(sys.argv[1], timeout=10).reader(batch=16)
    res = {}
    def run():
        res["tid"] = threading.get_native_id()
        try:
            res["value"] = repr(r.read(timeout=3))
        except BaseException as e:
            res["exc"] = type(e).__name__
            res["msg"] = str(e)
    t = threading.Thread(target=run)
    t.start()
    while "tid" not in res:
        time.sleep(0.001)
    wait_blocked_in_read(os.getpid(), res["tid"])
    try:
        r.close()
        res["close"] = "closed"
    except RuntimeError as e:
        res["close"] = "refused: " + str(e)
    t.join()
    print(json.dumps(res))
""")


def test_close_from_another_thread_is_refused_while_a_read_waits(engines, run_dir):
    import pathlib
    e = engines("--tick-ms", "100000", games=2)
    here = str(pathlib.Path(__file__).parent)
    out = subprocess.run([python(), "-c", CLOSE_CHILD, e.name, here], env=child_env(run_dir),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"the child died ({out.returncode}): {out.stderr[-2000:]}"
    res = json.loads(out.stdout.strip().splitlines()[-1])
    # A Reader is for one thread at a time: close() is refused with a
    # clear error, and the waiting read ends normally (nothing came).
    assert res["close"].startswith("refused: ") and "another thread" in res["close"], res
    assert res.get("value") == "None", res


def test_engine_info(engines):
    e = engines("--policy", "lossy", "--obs-dtype", "f32", games=10)
    i = xring.attach(e.name, timeout=5).info()
    assert i["name"] == e.name and i["control"].endswith(f"{e.name}.sock")
    (s,) = i["streams"]
    assert s["stream"] == "experience" and s["policy"] == "lossy"
    assert s["obs_shape"] == (9, 20, 20) and s["obs_dtype"] == "float32"
    assert s["rings"] == 1 and s["ring_capacity"] == 16 << 20
    # info() attached a reader for the moment it took, and left.
    assert [rd for rd in info(e)["readers"] if rd["state"] == "active"] == []


def test_fileno_becomes_readable_when_records_come(engines):
    import select
    e = engines("--tick-ms", "20")
    r = reader(e, batch=16, max_wait=0)
    while r.read(timeout=0) is not None:
        pass
    fd = r.fileno()
    assert fd >= 0
    if r.arm():                          # asleep: the engine writes fd at the batch
        ready, _, _ = select.select([fd], [], [], 2.0)
    else:                                # a batch came in the meantime
        ready = [fd]
    assert ready == [fd], "no wakeup on fileno() in 2 s"
    assert r.read(timeout=0) is not None
