# SPDX-License-Identifier: MIT
"""Replay tables from Python (Engine.create_table(), Engine.table(), Table,
Sample): items in place, leases, the samplers against their definitions,
priorities, the rate limiter's waits, refusals with the right exceptions,
and a trainer process killed holding leases."""
import contextlib
import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import xring
from xrtest import child_env, wait_for, tagged_items as _items


@contextlib.contextmanager
def _recording(e, fields):
    """A lossless reader of e's stream on a thread while the block runs:
    yields {seq: (its record's fields, in the order of `fields`)}, "obs" and
    "mask" as row_digest()s."""
    import threading
    from xrtest import row_digest
    records, stop = {}, threading.Event()

    def read_all(r):
        while not stop.is_set():
            b = r.read(timeout=0.05)
            if b is None:
                continue
            cols = [row_digest(getattr(b, f)) if f in ("obs", "mask") else getattr(b, f)
                    for f in fields]
            for i, seq in enumerate(b.seq):
                records[int(seq)] = tuple(c[i].item() for c in cols)
            b.release()

    with e.reader(batch=1024, min_batch=1, max_wait=0.05) as r:
        th = threading.Thread(target=read_all, args=(r,))
        th.start()
        try:
            yield records
        finally:
            stop.set()
            th.join()


def _ids(rows):
    return np.ascontiguousarray(rows[:, :8]).view(np.uint64).reshape(-1)


def _intact(rows):
    ids = _ids(rows)
    size = rows.shape[1]
    return (rows[:, 8:] == ((ids[:, None] * 7 + np.arange(8, size)) % 251)).all()


def test_items_in_place_and_leases(engine):
    e = xring.attach(engine.name, timeout=5)
    with e.create_table("replay", capacity=1000, item_size=32) as t:
        keys = t.insert(_items(300, 32), priorities=1.0)
        assert len(keys) == 300 and len(set(keys.tolist())) == 300
        st = t.stats()
        assert (st["size"], st["inserts"], st["capacity"], st["item_size"]) == (300, 300, 1000, 32)
        view = t.items
        assert view.shape == (1000, 32) and view.dtype == np.uint8
        assert not view.flags.writeable
        with pytest.raises(ValueError):
            view[0, 0] = 1
        with t.sample(64) as s:
            assert len(s) == 64
            assert t.stats()["leases"] == 64
            rows = s.items
            assert _intact(rows) and (_ids(rows) < 300).all()
            # items[slots] are the table's own bytes, read in place
            assert np.array_equal(rows, view[s.slots])
            assert (s.probabilities == 1 / 300).all() and (s.weights == 1).all()
        assert t.stats()["leases"] == 0
        assert t.release(s.keys) == 0, "released once, by the with block"


def test_prioritized_draws_follow_priorities(engine):
    e = xring.attach(engine.name, timeout=5)
    pr = np.array([0.5, 1, 2, 4, 8, 0, 3, 6, 1.5, 10], np.float64)
    with e.create_table("prio", capacity=16, item_size=8, sampler="prioritized",
                        alpha=0.7, beta=0.5, seed=3) as t:
        keys = t.insert(_items(10, 8), priorities=pr)
        slot_of = {int(k) & 0xFFFFFFFF: i for i, k in enumerate(keys)}
        p = pr ** 0.7
        p /= p.sum()
        counts = np.zeros(10)
        for _ in range(40):
            with t.sample(1024) as s:
                idx = np.array([slot_of[int(x)] for x in s.slots])
                np.testing.assert_allclose(s.probabilities, p[idx], rtol=1e-12)
                pmin = p[p > 0].min()
                np.testing.assert_allclose(s.weights, (pmin / p[idx]) ** 0.5, rtol=1e-9)
                counts += np.bincount(idx, minlength=10)
        assert counts[5] == 0, "priority 0 is never drawn"
        live = p > 0
        expected = p[live] * counts.sum()
        chi2 = (((counts[live] - expected) ** 2) / expected).sum()
        assert chi2 < 45, f"chi2 {chi2:.1f} with 8 degrees of freedom"   # p < 1e-6
        # A new priority moves the draws: item 0 from the least to the most.
        assert t.update_priorities(keys[:1], 1000.0) == 1
        with t.sample(1024) as s:
            assert (np.array([slot_of[int(x)] for x in s.slots]) == 0).mean() > 0.5
        assert t.update_priorities(keys[:3], [1.0, float("nan"), -1.0]) == 1


def test_the_rate_limiter_waits_and_times_out(engine):
    e = xring.attach(engine.name, timeout=5)
    with e.create_table("lim", capacity=100, item_size=8, min_size=4, samples_per_insert=1,
                        error_buffer=4) as t:
        with pytest.raises(TimeoutError, match="limiter"):
            t.sample(2, timeout=0)
        with pytest.raises(TimeoutError, match="limiter"):
            t.sample(2, timeout=0.05)
        with pytest.raises(ValueError, match="at once"):
            t.sample(100)                 # more than the limiter could ever allow
        t.insert(_items(4, 8))
        with t.sample(4, timeout=1) as s:
            assert len(s) == 4
        with pytest.raises(TimeoutError):  # D back at min_diff: an insert is due
            t.sample(1, timeout=0)


def test_refusals(engine):
    e = xring.attach(engine.name, timeout=5)
    e.create_table("taken", capacity=10, item_size=8).close()
    with pytest.raises(xring.TableExistsError, match="exists"):
        e.create_table("taken", capacity=10, item_size=8)
    with pytest.raises(xring.NoSuchTableError, match="nosuch"):
        e.table("nosuch")
    for kw, what in [({"sampler": "random"}, "sampler"), ({"remover": "oldest"}, "remover"),
                     ({"capacity": 0}, "capacity"), ({"item_size": 0}, "item_size"),
                     ({"alpha": -1.0}, "alpha"),
                     ({"samples_per_insert": 4.0, "error_buffer": 1.0}, "error_buffer")]:
        args = dict(capacity=10, item_size=8)
        args.update(kw)
        with pytest.raises(ValueError, match=what):
            e.create_table("bad", **args)
    with e.table("taken") as t:
        with pytest.raises(ValueError, match="1..1024"):
            t.sample(0)
        with pytest.raises(ValueError, match="whole number"):
            t.insert(np.zeros(12, np.uint8))
    with pytest.raises(ValueError, match="closed"):
        t.sample(1)


def test_a_killed_trainer_loses_its_leases(engine, run_dir):
    e = xring.attach(engine.name, timeout=5)
    with e.create_table("shared", capacity=100, item_size=16) as t:
        t.insert(_items(100, 16))
        child = textwrap.dedent(f"""
            import os, sys
            import xring
            t = xring.attach({engine.name!r}, timeout=5).table("shared")
            held = [t.sample(100), t.sample(50)]
            os.write(1, b"holding\\n")
            sys.stdin.read()
        """)
        p = subprocess.Popen([sys.executable, "-c", child], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=child_env(run_dir))
        try:
            assert p.stdout.readline() == b"holding\n"
            assert t.stats()["leases"] == 150 and t.stats()["trainers"] == 2
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            wait_for(lambda: t.stats()["leases"] == 0 and t.stats()["trainers"] == 1, 1,
                     "the killed trainer's leases to end")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_views_outlive_close(engine):
    e = xring.attach(engine.name, timeout=5)
    t = e.create_table("views", capacity=8, item_size=16)
    t.insert(_items(8, 16))
    view = t.items
    with t.sample(4) as s:
        rows = s.items
    t.close()
    assert t.closed and t.stats is not None
    assert _intact(view) and _intact(rows)     # still mapped, readable
    with pytest.raises(ValueError, match="closed"):
        t.insert(_items(1, 16))


SAMPLE_CHILD = textwrap.dedent("""
    import sys, xring
    e = xring.attach(sys.argv[1], timeout=10)
    t = e.create_table("starved", capacity=10, item_size=8, min_size=5)
    print("sampling", flush=True)
    t.sample(1)                 # no items will come: waits up to an hour
    print("returned", flush=True)
""")


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="poll's syscall number is x86-64's")
def test_ctrl_c_ends_a_waiting_sample(engine, run_dir):
    import time
    from xrtest import syscall_of
    p = subprocess.Popen([sys.executable, "-c", SAMPLE_CHILD, engine.name],
                         env=child_env(run_dir), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "sampling", p.stderr.read()
        SYS_POLL = 7    # x86-64: the trainer sleeps in poll() on its doorbell
        wait_for(lambda: syscall_of(p.pid, p.pid) == SYS_POLL, 5,
                 "the trainer to sleep waiting for its sample")
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        p.wait(timeout=10)
        elapsed = time.monotonic() - t0
        out, err = p.stdout.read(), p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "returned" not in out
    assert err.rstrip().endswith("KeyboardInterrupt"), err
    assert elapsed < 0.5, f"took {elapsed:.2f} s"


def test_checkpoint_and_restore(engine, tmp_path):
    e = xring.attach(engine.name, timeout=5)
    opts = dict(capacity=64, item_size=24, sampler="prioritized", alpha=0.8, beta=0.5,
                remover="lowest-priority", min_size=8, samples_per_insert=2.0,
                error_buffer=64.0, seed=7)
    with e.create_table("saved", **opts) as t, e.create_table("copy", **opts) as u:
        keys = t.insert(_items(40, 24), priorities=np.arange(1, 41, dtype=np.float64),
                        timeout=1)     # max_diff 80: 40 inserts of 2 samples each
        for _ in range(5):
            with t.sample(8):
                pass
        path = tmp_path / "saved.ckpt"
        assert t.checkpoint(path) == 40
        with pytest.raises(FileExistsError):
            t.checkpoint(path)               # never over a file
        assert u.restore(path) == 40
        st, su = t.stats(), u.stats()
        for k in ("size", "inserts", "samples", "removes"):
            assert st[k] == su[k], k
        assert np.array_equal(t.items, u.items)
        # The same random state and the same contents: the same draws.
        with t.sample(16) as a, u.sample(16) as b:
            assert np.array_equal(a.keys, b.keys)
            np.testing.assert_array_equal(a.probabilities, b.probabilities)
            np.testing.assert_array_equal(a.weights, b.weights)
        # Keys from before the checkpoint name the same items in the copy.
        assert u.update_priorities(keys[:10], 5.0) == 10
        # The limiter stands where it stood: D = 40 * 2 - 56 = 24, min_diff
        # = 16 - 64 = -48, so 72 more samples may go in both, then neither.
        for table in (t, u):
            with table.sample(72, timeout=0):
                pass
            with pytest.raises(TimeoutError):
                table.sample(1, timeout=0)
        # A damaged checkpoint is refused, and the table is as it was.
        bad = tmp_path / "bad.ckpt"
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        bad.write_bytes(bytes(data))
        with pytest.raises(ValueError, match="checksum"):
            u.restore(bad)
        assert u.stats()["size"] == 40
        # A table restored to an earlier checkpoint hands out no key it
        # handed out since: keys of items inserted after the checkpoint
        # stay refused, and new inserts get new keys.
        with e.create_table("again", capacity=8, item_size=24) as a:
            a.insert(_items(8, 24))
            p2 = tmp_path / "again.ckpt"
            a.checkpoint(p2)
            later = a.insert(_items(8, 24, first=50))   # replace every item
            assert a.restore(p2) == 8
            assert a.update_priorities(later, 2.0) == 0
            fresh = a.insert(_items(8, 24, first=90))
            assert not set(fresh.tolist()) & set(later.tolist())
        # Not while a trainer holds a lease (none may be sampled now: a
        # fresh insert lets one).
        u.insert(_items(1, 24, first=100))
        with u.sample(1, timeout=0):
            with pytest.raises(xring.XringError, match="leases"):
                u.restore(path)


def test_a_table_fed_from_the_stream(engine):
    e = xring.attach(engine.name, timeout=5)
    with e.create_table("fed", capacity=2000, source="experience", priority=2.0,
                        sampler="prioritized") as t:
        size = t.stats()["item_size"]
        assert size > 0                        # the stream's record size
        assert t.stats()["feed"] == "feeding"
        with t.sample(64, timeout=10) as s:
            rows = s.items
            assert rows.shape == (64, size) and rows.any(axis=1).all()
            assert (s.probabilities > 0).all()
        wait_for(lambda: t.stats()["size"] == 2000, 10, "the feed to fill the table")
        assert t.stats()["inserts"] >= 2000
        with pytest.raises(PermissionError, match="feeds this table"):
            t.insert(np.zeros(size, np.uint8))
    with pytest.raises(xring.NoSuchTableError, match="nosuch"):
        e.create_table("fed2", capacity=10, source="nosuch")


def test_a_fed_tables_records_give_their_fields(engine):
    """A table fed with the stream's records gives each sampled record's
    fields as arrays, checked against the same records read by a lossless
    reader meanwhile."""
    from xrtest import row_digest
    e = xring.attach(engine.name, timeout=5)
    names = ("game_id", "player_id", "turn", "action", "reward", "done", "applied",
             "applied_by", "t_ns")
    got = []
    with _recording(e, names + ("obs", "mask")) as records:
        with e.create_table("recs", capacity=4096, source="experience", sampler="fifo",
                            max_times_sampled=1) as t:
            lay = t.layout()
            assert lay["item"] == "record" and lay["obs_bytes"] > 0

            def checkable():
                # Items of records the lossless reader has recorded: the
                # feed may start from records before the reader's first
                # (fifo: the table gives those first) and run ahead of it,
                # the more so on a busy machine.
                return sum(int(x["seq"]) in records for x in got)
            while len(got) < 2000 or checkable() < 1500:
                assert len(got) < 40000, f"{len(got)} sampled, {checkable()} of them checkable"
                with t.sample(256, timeout=10) as s:
                    assert s.obs.shape == (len(s),) + tuple(lay["obs_shape"])
                    assert s.obs.dtype == np.dtype(_NP[lay["obs_dtype"]])
                    assert s.mask.shape == (len(s), lay["mask_len"])
                    assert not s.obs.flags.writeable
                    cols = {k: getattr(s, k).copy() for k in ("seq",) + names}
                    cols["obs"], cols["mask"] = row_digest(s.obs), row_digest(s.mask)
                    got += [dict(zip(cols, v)) for v in zip(*cols.values())]
                with pytest.raises(AttributeError, match="not transitions"):
                    s.next_obs
            s = t.sample(8, timeout=10)
            s.release()
            with pytest.raises(xring.ReleasedError):
                s.obs                     # never read while leased: gone
            s = t.sample(4, timeout=10)
            seq = s.seq.copy()
            s.release()
        # Copied fields outlive the table's close, as items do.
        assert np.array_equal(s.seq, seq) and s.obs.shape[0] == 4
    checked = 0
    for x in got:
        rec = records.get(int(x["seq"]))
        if rec is None:
            continue                          # before the reader's first record
        assert rec == tuple(x[k] for k in names + ("obs", "mask")), x["seq"]
        checked += 1
    assert checked > 1000, f"only {checked} records checked"
    # A table of the trainers' own bytes has no fields to give.
    with e.create_table("raw", capacity=4, item_size=16) as t:
        t.insert(np.zeros((1, 16), np.uint8))
        with t.sample(1, timeout=1) as s:
            with pytest.raises(AttributeError, match="known shape"):
                s.obs


_NP = {"u8": "u1", "f32": "<f4"}


def test_tables_declared_at_start(engines, run_dir):
    eng = engines("--table", "replay:500:sampler=prioritized,alpha=0.6,beta=0.4,"
                  "source=experience,priority=2",
                  "--table", "own:16:item_size=8,sampler=fifo,max_times_sampled=1",
                  "--table", "tr:64:source=experience,item=transition")
    e = xring.attach(eng.name, timeout=5)
    # The engine makes them before its socket answers: there as soon as it is.
    with e.table("replay") as t:
        s = t.stats()
        assert s["capacity"] == 500 and s["feed"] == "feeding"
        wait_for(lambda: t.stats()["size"] == 500, 10, "the feed to fill the table")
        with t.sample(32, timeout=10) as smp:
            # One priority for all: alpha changes nothing, beta gives weights 1.
            assert np.allclose(smp.probabilities, 1 / 500)
            assert np.allclose(smp.weights, 1.0)
    with e.table("own") as t:
        t.insert(np.arange(8, dtype=np.uint8))
        with t.sample(1, timeout=1) as smp:
            assert bytes(smp.items[0]) == bytes(range(8))
        with pytest.raises(TimeoutError):
            t.sample(1, timeout=0)             # fifo, each item once: none left
    with e.table("tr") as t:
        assert t.layout()["item"] == "transition"
        with t.sample(4, timeout=10) as smp:
            assert (smp.turn + 1 >= 1).all() and smp.obs.shape[0] == 4
    # A table the engine cannot make stops it at start, with the reason.
    from xrtest import XRING_BIN
    out = subprocess.run([str(XRING_BIN), "engine", "--name", eng.name + "x", "--games", "2",
                          "--table", "r:10:source=nosuch"], env=eng.env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0
    assert "--table r" in out.stderr and "nosuch" in out.stderr
    out = subprocess.run([str(XRING_BIN), "engine", "--name", eng.name + "y",
                          "--table", "r:10:sampler=zzz"], env=eng.env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 2 and "sampler 'zzz'" in out.stderr


def test_a_table_survives_an_engine_restart_from_its_checkpoint(engines, tmp_path):
    """`xring table --checkpoint` on one engine, `--table ...,restore=PATH` on
    the next: the same items under the same keys, the same figures, and the
    rate limiter where it stood (it neither blocks nor lets more through)."""
    from xrtest import XRING_BIN
    spec = ("replay:64:item_size=24,sampler=prioritized,alpha=0.8,beta=0.5,min_size=8,"
            "samples_per_insert=2,error_buffer=64,seed=3")
    a = engines("--table", spec, games=1)
    ea = xring.attach(a.name, timeout=5)

    def cli(*args, eng=a):
        return subprocess.run([str(XRING_BIN), "table", eng.name] + list(args), env=eng.env,
                              capture_output=True, text=True, timeout=30)

    with ea.table("replay") as t:
        keys = t.insert(_items(40, 24), priorities=np.arange(1, 41, dtype=np.float64),
                        timeout=1)
        for _ in range(5):
            with t.sample(8):
                pass
        items, before = t.items.copy(), t.stats()
    path = tmp_path / "replay.ckpt"
    out = cli("replay", "--checkpoint", str(path))
    assert out.returncode == 0, out.stderr
    assert f"wrote 40 items to {path}" in out.stdout and "size       40 of 64" in out.stdout
    # Never over a file; no such table; a usage error: one line each.
    for args, code, what in [(("replay", "--checkpoint", str(path)), 1, "exists"),
                             (("nosuch",), 1, "no table nosuch"),
                             (("replay", "--checkpoint", "x", "--restore", "y"), 2, "at a time"),
                             (("replay", "--drop", "--restore", "y"), 2, "at a time"),
                             ((), 2, "name an engine")]:
        out = cli(*args)
        assert out.returncode == code and what in out.stderr, (args, out.stderr)
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("xring table: "), args
    a.stop()

    b = engines("--table", spec + f",restore={path}", games=1)
    # Made and restored before the socket answered: a trainer that comes at
    # once finds the checkpoint's table, never an empty one.
    out = cli("replay", "--json", eng=b)
    assert out.returncode == 0, out.stderr
    import json
    js = json.loads(out.stdout)
    assert (js["size"], js["inserts"], js["samples"], js["capacity"]) == (
        40, before["inserts"], before["samples"], 64)
    with xring.attach(b.name, timeout=5).table("replay") as t:
        after = t.stats()
        for k in ("size", "inserts", "samples", "removes"):
            assert after[k] == before[k], k
        assert np.array_equal(t.items, items)
        assert t.update_priorities(keys, 2.0) == 40      # the same keys
        # D = 40 * 2 - 40 = 40 and min_diff = 8 * 2 - 64 = -48 leave 88
        # samples: exactly those, then a wait (a limiter that forgot its
        # samples would allow 128).
        for n in (72, 16):
            with t.sample(n, timeout=0):
                pass
        with pytest.raises(TimeoutError):
            t.sample(1, timeout=0)
    # Dropped from the command line: once; then there is no such table.
    out = cli("replay", "--drop", eng=b)
    assert out.returncode == 0 and f"dropped table replay of engine {b.name}" in out.stdout, out
    for args in (("replay",), ("replay", "--drop")):
        out = cli(*args, eng=b)
        assert out.returncode == 1 and "no table replay" in out.stderr, (args, out.stderr)
        assert out.stderr.count("\n") == 1, out.stderr
    # A checkpoint that is not one stops the engine at start, saying so.
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint" * 8)
    out = subprocess.run([str(XRING_BIN), "engine", "--name", b.name + "z", "--games", "1",
                          "--table", spec + f",restore={bad}"], env=b.env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "--table replay: restore from" in out.stderr, out.stderr


def test_checkpoints_refuse_other_items_and_links(engine, tmp_path):
    """A checkpoint restores only into a table of the same items (size,
    kind, record shape), and no file is made or read through a symbolic
    link anywhere on its path."""
    e = xring.attach(engine.name, timeout=5)
    with e.create_table("fed", capacity=32, source="experience") as fed:
        size = fed.stats()["item_size"]
        wait_for(lambda: fed.stats()["size"] == 32, 10, "the feed to fill the table")
        path = tmp_path / "fed.ckpt"
        assert fed.checkpoint(path) == 32
        # Same capacity and item size, but raw bytes, not the stream's records.
        with e.create_table("raw", capacity=32, item_size=size) as raw:
            with pytest.raises(ValueError, match="not this table's kind"):
                raw.restore(path)
        with e.create_table("small", capacity=32, item_size=size - 8) as small:
            with pytest.raises(ValueError, match="another size"):
                small.restore(path)
        # A directory on the way that is a link: refused both ways.
        real = tmp_path / "real"
        real.mkdir()
        (tmp_path / "link").symlink_to(real)
        with pytest.raises(xring.XringError, match="symbolic link"):
            fed.checkpoint(tmp_path / "link" / "x.ckpt")
        assert not (real / "x.ckpt").exists()
        (real / "y.ckpt").write_bytes(path.read_bytes())
        with pytest.raises(xring.XringError, match="symbolic link"):
            fed.restore(tmp_path / "link" / "y.ckpt")


def _waiting_sample(t):
    """A thread sampling t (which has nothing to sample) with a 30 s
    timeout, returned once it waits for the engine, with the list its
    exception goes to."""
    import threading
    from xrtest import syscall_of
    got, tid = [], []

    def wait():
        tid.append(threading.get_native_id())
        try:
            t.sample(1, timeout=30)
        except Exception as exc:          # noqa: BLE001 - what it raised is the point
            got.append(exc)

    th = threading.Thread(target=wait)
    th.start()
    # Parked: the sampler sleeps in poll (7) or ppoll (271) for the engine.
    wait_for(lambda: tid and syscall_of(os.getpid(), tid[0]) in (7, 271), 5,
             "the sampler to wait for the engine")
    return th, got


def test_close_from_another_thread_ends_a_waiting_sample(engine):
    import time
    e = xring.attach(engine.name, timeout=5)
    t = e.create_table("empty", capacity=8, item_size=8)
    th, got = _waiting_sample(t)
    t0 = time.monotonic()
    t.close()
    th.join(10)
    assert not th.is_alive(), "close() left the waiting sample waiting"
    assert time.monotonic() - t0 < 5
    assert got and isinstance(got[0], (ValueError, xring.XringError)), got


def test_a_table_of_transitions(engine):
    """Transitions the engine builds from a seat's consecutive records, checked
    against the records themselves, read meanwhile by a lossless reader."""
    from xrtest import row_digest
    e = xring.attach(engine.name, timeout=5)
    got = []
    with _recording(e, ("game_id", "player_id", "turn", "applied", "reward", "done",
                        "truncated", "obs", "mask")) as records:
        with e.create_table("trans", capacity=4096, source="experience",
                            item="transition", sampler="fifo", max_times_sampled=1) as t:
            lay = t.layout()
            assert lay["item"] == "transition" and lay["obs_bytes"] > 0
            assert t.stats()["item_size"] >= lay["next_mask_off"] + lay["mask_len"]
            while len(got) < 3000:
                with t.sample(256, timeout=10) as s:
                    assert s.obs.shape[1:] == tuple(lay["obs_shape"])
                    cols = {k: getattr(s, k).copy() for k in
                            ("seq", "game_id", "player_id", "turn", "action", "reward",
                             "done", "truncated")}
                    for k in ("obs", "next_obs", "mask", "next_mask"):
                        cols[k] = row_digest(getattr(s, k))
                    got += [dict(zip(cols, v)) for v in zip(*cols.values())]
    by_seat = {(g, p, turn): (o, m) for g, p, turn, _, _, _, _, o, m in records.values()}
    checked = 0
    for x in got:
        rec = records.get(int(x["seq"]))
        if rec is None:
            continue                              # before the reader's first record
        g, p, turn, applied, reward, done, trunc, obs, mask = rec
        assert (g, p, turn) == (x["game_id"], x["player_id"], x["turn"] + 1)
        assert (applied, reward, done, trunc) == (x["action"], x["reward"], x["done"],
                                                  x["truncated"])
        assert (obs, mask) == (x["next_obs"], x["next_mask"])
        prev = by_seat.get((g, p, int(x["turn"])))
        if prev is not None and prev != (x["obs"], x["mask"]):
            # The seat's record of turn t may be of an earlier episode (turns
            # start again at 0): only the latest before seq counts.
            earlier = [s for s, v in records.items()
                       if v[:3] == (g, p, int(x["turn"])) and s < int(x["seq"])]
            assert earlier and records[max(earlier)][7:] == (x["obs"], x["mask"]), \
                "obs_t is not the seat's record of turn t"
        if prev is not None:
            checked += 1
    assert checked > 1000, f"only {checked} transitions checked against both records"
    with pytest.raises(ValueError, match="source"):
        e.create_table("t2", capacity=10, item="transition")
    with pytest.raises(ValueError):
        e.create_table("t3", capacity=10, source="experience", item="transition",
                       item_size=64)


def test_a_sample_releases_the_last_in_the_same_request(engine):
    e = xring.attach(engine.name, timeout=5)
    with e.create_table("rr", capacity=64, item_size=8) as t:
        t.insert(np.arange(64 * 8, dtype=np.uint8).reshape(64, 8))
        a = t.sample(16, timeout=1)
        assert t.stats()["leases"] == 16
        b = t.sample(8, timeout=1, release=a)
        assert t.stats()["leases"] == 8          # a's 16 ended, b's 8 held
        assert a._released
        a.release()                              # again: nothing
        assert t.stats()["leases"] == 8
        c = t.sample(4, timeout=1, release=b.keys)
        assert t.stats()["leases"] == 4
        c.release()
        assert t.stats()["leases"] == 0
        # Keys this trainer does not hold are ignored, not an error.
        d = t.sample(2, timeout=1, release=np.array([1, 2, 3], dtype=np.uint64))
        assert t.stats()["leases"] == 2
        d.release()
        with pytest.raises(ValueError):
            t.sample(1, release=np.zeros(1025, dtype=np.uint64))


def test_a_dropped_table_fails_its_trainers_and_frees_its_name(engine):
    """Engine.drop_table(): the name is free at once; a trainer on the
    dropped table gets TableDroppedError from every request, a waiting one
    at once; what it holds stays readable and unchanged until it closes."""
    import time
    e = xring.attach(engine.name, timeout=5)
    t = e.create_table("d", capacity=100, item_size=32)
    t.insert(_items(50, 32), np.ones(50))
    s = t.sample(8)
    held = t.items.copy()               # every slot, as the store has it
    waiter = e.create_table("w", capacity=8, item_size=8, min_size=4)
    th, got = _waiting_sample(waiter)
    t0 = time.monotonic()
    e.drop_table("w")
    th.join(10)
    assert not th.is_alive() and time.monotonic() - t0 < 5, "a waiting sample kept waiting"
    assert got and isinstance(got[0], xring.TableDroppedError), got
    assert "dropped" in str(got[0])

    e.drop_table("d")
    with pytest.raises(xring.TableDroppedError, match="dropped"):
        t.sample(1)
    with pytest.raises(xring.TableDroppedError):
        t.insert(_items(1, 32), np.ones(1))
    assert (t.items == held).all() and _intact(t.items[s.slots])
    with pytest.raises(xring.NoSuchTableError):
        e.table("d")
    with pytest.raises(xring.NoSuchTableError, match="d"):
        e.drop_table("d")
    # The name is free while the old table is still open here.
    with e.create_table("d", capacity=10, item_size=8) as t2:
        t2.insert(np.zeros(8, np.uint8), np.ones(1))
        assert t2.stats()["size"] == 1
    assert (t.items == held).all()
    s.release()
    t.close()
    waiter.close()


def test_a_dropped_fed_table_leaves_the_stream(engine):
    """A fed table's feed is a reader of the stream: dropped, the reader
    goes (a lossless one left behind would hold the games for ever), and
    the stream goes on for the others."""
    import json as _json
    from xrtest import XRING_BIN

    def feed_readers():
        out = subprocess.run([str(XRING_BIN), "stat", engine.name, "--json"],
                             env=engine.env, capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        return [r for r in _json.loads(out.stdout)["readers"]
                if r.get("label") == "table fedd"]

    e = xring.attach(engine.name, timeout=5)
    with e.create_table("fedd", capacity=500, source="experience") as t:
        wait_for(lambda: t.stats()["size"] == 500, 10, "the feed to fill the table")
        assert len(feed_readers()) == 1
        e.drop_table("fedd")
        wait_for(lambda: not feed_readers(), 10, "the dropped table's feed to leave")
        with pytest.raises(xring.TableDroppedError):
            t.sample(1)
    with e.reader(batch=64) as r:        # the games go on
        for _ in range(3):
            b = r.read(timeout=5)
            assert b is not None and len(b) > 0
            b.release()


DROP_CHILD = textwrap.dedent("""
    import json, sys, xring
    e = xring.attach(sys.argv[1], timeout=5)
    out = {}
    try:
        e.drop_table("ours")
    except xring.XringError as exc:
        out["ours"] = [type(exc).__name__, str(exc)]
    e.create_table("theirs", capacity=4, item_size=8).close()
    e.drop_table("theirs")
    out["theirs"] = "dropped"
    kept = [e.create_table("k%d" % i, capacity=1, item_size=8) for i in range(4)]
    for i in range(4):
        e.drop_table("k%d" % i)          # dropped, but open here: they count
    try:
        e.create_table("fifth", capacity=1, item_size=8)
    except xring.TableLimitError as exc:
        out["fifth"] = [exc.name, str(exc)]
    print(json.dumps(out))
""")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a child as uid 65534")
def test_only_its_creator_or_the_engine_drops_a_table(engines, run_dir):
    import json as _json
    from xrtest import python
    e = engines("--board", "8x8", "--tick-ms", "10", "--allow-uid", "65534", games=0)
    eng = xring.attach(e.name, timeout=5)
    eng.create_table("ours", capacity=4, item_size=8).close()
    out = subprocess.run([python(), "-c", DROP_CHILD, e.name], env=child_env(run_dir),
                         user=65534, group=0, extra_groups=[], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    res = _json.loads(out.stdout)
    cls, msg = res["ours"]
    assert cls == "PermissionRefusedError" and "only the uid that created it" in msg, res
    assert res["theirs"] == "dropped"
    name, msg = res["fifth"]
    assert name == "EDQUOT" and "has created 4 tables" in msg, res
    eng.drop_table("ours")                # the engine's uid may
    with pytest.raises(xring.NoSuchTableError):
        eng.table("ours")


def test_a_feed_that_failed_attaches_again(engines):
    """A fed table whose feed could not attach (every reader slot taken
    when it was made) is not left unfed for good: the table thread tries
    again (100 ms, then twice as long each time, up to 5 s), and once a
    slot is free the feed attaches and items come; meanwhile its state says
    failed, in the table's stats and in `xring stat`."""
    e = engines("--max-readers", "2", games=20)
    x = xring.attach(e.name, timeout=5)
    taken = [x.reader(batch=64, policy="lossy") for _ in range(2)]
    t = x.create_table("late", capacity=500, source="experience")
    wait_for(lambda: t.stats()["feed"] == "failed", 5, "the feed to fail (no reader slot)")
    assert t.stats()["size"] == 0
    taken.pop().close()
    wait_for(lambda: t.stats()["feed"] == "feeding" and t.stats()["size"] > 0, 10,
             "the feed to attach again once a slot was free")
    with t.sample(8, timeout=5) as s:
        assert s.items.shape[0] == 8 and s.items.any(axis=1).all()
    for r in taken:
        r.close()
    t.close()


def test_the_request_rate_is_its_own_error(engines):
    """A table request the engine's request rate refuses raises the public
    TooManyRequestsError (-EAGAIN, the reason saying when to retry), not a
    private class nor a table's limit."""
    e = engines("--max-requests-per-uid", "10", games=1)
    x = xring.attach(e.name, timeout=5)
    with pytest.raises(xring.TooManyRequestsError, match="too many requests") as got:
        for _ in range(500):
            with pytest.raises(xring.NoSuchTableError):
                x.drop_table("nosuch")
    assert got.value.code == -errno.EAGAIN and "retry in" in str(got.value)


def test_create_table_waits_out_a_refused_open(engine, monkeypatch):
    """create_table() is two requests, the create and the open; the open
    refused for the request rate is tried again (up to 5 s), so the caller
    gets the handle of the table it made rather than an error and a table
    it cannot reach by that name again (TableExistsError)."""
    x = xring.attach(engine.name, timeout=5)
    real, refused = xring.Engine.table, []

    def table(self, name):
        if len(refused) < 3:
            refused.append(name)
            raise xring.TooManyRequestsError("open table: too many requests", -errno.EAGAIN,
                                             "EAGAIN", "too many requests")
        return real(self, name)
    monkeypatch.setattr(xring.Engine, "table", table)
    with x.create_table("waited", capacity=10, item_size=8) as t:
        assert refused == ["waited"] * 3
        t.insert(np.zeros(8, np.uint8), np.ones(1))
        assert t.stats()["size"] == 1
