# SPDX-License-Identifier: MIT
"""What goes wrong, as Python exceptions: each C error code maps to its
class (which is also the matching built-in exception where there is one),
with the engine's own reason in the message."""
import os
import signal
import subprocess
import textwrap
import uuid

import pytest

import xring
from xrtest import attach_when_free, child_env, python, reader


def test_no_engine(run_dir):
    name = f"missing-{uuid.uuid4().hex[:6]}"
    with pytest.raises(xring.NoEngineError) as ei:
        xring.attach(name)
    assert isinstance(ei.value, FileNotFoundError)
    assert isinstance(ei.value, xring.XringError)
    assert name in str(ei.value)
    assert ei.value.code == -2 and ei.value.name == "ENOENT"
    # With a timeout it waits that long, then says the same.
    with pytest.raises(FileNotFoundError, match=name):
        xring.attach(name, timeout=0.05)
    # An Engine made by name, attaching a reader directly.
    with pytest.raises(xring.NoEngineError) as ei:
        xring.Engine(name).reader()
    assert isinstance(ei.value, FileNotFoundError)


def test_no_engine_reader_message_names_the_engine(run_dir):
    name = f"missing-{uuid.uuid4().hex[:6]}"
    with pytest.raises(xring.NoEngineError, match=name):
        xring.Engine(name).reader()


def test_no_stream_message_names_the_stream(engine):
    with pytest.raises(xring.NoEngineError, match="nosuchstream"):
        reader(engine, stream="nosuchstream")


def test_no_stream_is_no_engine_error(engine):
    with pytest.raises(xring.NoEngineError):
        reader(engine, stream="nosuchstream")


REFUSED_CHILD = textwrap.dedent("""
    import json, os, sys
    import xring
    out = {"uid": os.getuid(), "gid": os.getgid()}
    try:
        with xring.Engine(sys.argv[1]).reader(batch=4) as r:
            b = r.read(timeout=5)
            out["read"] = 0 if b is None else len(b)
    except xring.XringError as e:
        out.update(cls=type(e).__name__, perm=isinstance(e, PermissionError),
                   code=e.code, name=e.name, reason=e.reason, msg=str(e))
    print(json.dumps(out))
""")


def _as_nobody(name, run_dir):
    """Runs REFUSED_CHILD as uid 65534, gid 0 (which the 0660 root:root
    socket lets connect: only the engine's SO_PEERCRED check can refuse)."""
    import json
    out = subprocess.run([python(), "-c", REFUSED_CHILD, name], env=child_env(run_dir),
                         user=65534, group=0, extra_groups=[], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a child as uid 65534")
def test_refused_uid(engines, run_dir):
    e = engines(games=10)
    sock = run_dir / f"{e.name}.sock"
    st = os.stat(sock)
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o660, 0, 0)
    res = _as_nobody(e.name, run_dir)
    assert (res["uid"], res["gid"]) == (65534, 0)
    assert res["cls"] == "PermissionRefusedError" and res["perm"], res
    assert res["name"] == "EACCES"
    assert "uid 65534" in res["reason"] and e.name in res["reason"], res
    assert "uid 65534" in res["msg"]
    # The same child is let in by an engine that allows it.
    ok = engines("--allow-uid", "65534", games=10)
    res = _as_nobody(ok.name, run_dir)
    assert res.get("read", 0) > 0, res


def test_too_many_readers(engines):
    e = engines("--max-readers", "1")
    r = reader(e, batch=8)
    with pytest.raises(xring.TooManyReadersError) as ei:
        reader(e, batch=8)
    assert ei.value.name == "EBUSY"
    assert "--max-readers 1" in str(ei.value) and e.name in str(ei.value)
    r.close()

    r2 = attach_when_free(e)
    assert r2.read(timeout=5) is not None


def test_lossless_reader_on_lossy_stream(engines):
    e = engines("--policy", "lossy")
    with pytest.raises(xring.PolicyError) as ei:
        reader(e, policy="lossless")
    assert isinstance(ei.value, ValueError)
    assert ei.value.name == "XR_EPOLICY" and "lossy" in str(ei.value)
    with reader(e, policy="lossy") as r:
        assert r.facts()["policy"] == "lossy"
        assert r.read(timeout=5) is not None
    with reader(e) as r:                       # the stream's policy
        assert r.stats()["dropped"] >= 0 and r.facts()["policy"] == "lossy"


def test_closed_engine(engines):
    e = engines("--tick-ms", "10")
    r = reader(e, batch=16)
    b = r.read(timeout=5)
    assert b is not None
    b.release()
    e.stop(signal.SIGTERM)
    # What was written is still read, then the reader is told.
    with pytest.raises(xring.EngineClosedError) as ei:
        for _ in range(100000):
            x = r.read(timeout=5)
            assert x is not None, "read timed out instead of seeing the engine close"
            x.release()
    assert ei.value.name == "XR_ECLOSED"
    # ...every time it asks.
    with pytest.raises(xring.EngineClosedError):
        r.read(timeout=0)
    # No engine of that name any more.
    with pytest.raises(xring.NoEngineError):
        xring.attach(e.name)
    r.close()


def test_read_sees_the_end_of_the_stream(engines):
    n = 5000
    e = engines("--tick-ms", "5", "--count", str(n))
    r = reader(e, batch=100)
    seqs = []
    with pytest.raises(xring.EngineClosedError):
        while True:
            b = r.read(timeout=5)
            assert b is not None, "read timed out before the end of the stream"
            seqs.extend(b.seq.tolist())
            b.release()
    assert seqs == list(range(seqs[0], n)), "missed records or did not reach the end"
    s = r.stats()
    assert s["read"] == s["written"] == len(seqs) and s["pending"] == 0


ITER_BUG = (
    "bindings/python/src/reader.c reader_iternext(): when read() fails it calls "
    "PyImport_ImportModule(\"xring._errors\") with the exception still set, so Python "
    "raises SystemError('<built-in function __import__> returned a result with an "
    "exception set') instead of ending the loop on EngineClosedError (or passing "
    "KeyboardInterrupt on)")


def test_iteration_ends_with_the_engine(engines):
    n = 5000
    e = engines("--tick-ms", "5", "--count", str(n))
    r = reader(e, batch=100)
    seqs = []
    for b in r:                                 # ends, does not raise
        seqs.extend(b.seq.tolist())
        b.release()
    assert seqs == list(range(seqs[0], n)), "iteration missed records or did not reach the end"
    s = r.stats()
    assert s["read"] == s["written"] == len(seqs) and s["pending"] == 0
    assert list(r) == []                        # a second loop ends at once


def test_read_error_does_not_repeat_an_old_refusal(engines):
    e = engines("--tick-ms", "10", "--max-readers", "1")
    r = reader(e, batch=16)
    with pytest.raises(xring.TooManyReadersError):
        reader(e)
    e.stop(signal.SIGTERM)
    with pytest.raises(xring.EngineClosedError) as ei:
        while True:
            b = r.read(timeout=5)
            assert b is not None
            b.release()
    assert "reader slots" not in str(ei.value), str(ei.value)


def test_bad_arguments(engine):
    e = xring.attach(engine.name, timeout=5)
    for kw in (dict(batch=0), dict(batch=70000), dict(batch=8, min_batch=9),
               dict(max_wait=-1), dict(policy="sometimes"),
               dict(transport="pigeon")):
        with pytest.raises((ValueError, TypeError)):
            e.reader(**kw).close()
            pytest.fail(f"reader({kw}) was accepted")
    r = e.reader(batch=4)
    with pytest.raises(IndexError):
        r.ring_buffer(99)
    r.close()
    for call in (lambda: r.read(timeout=0), r.stats, r.fileno, lambda: r.reattach(1)):
        with pytest.raises(ValueError, match="closed"):
            call()
    r.close()                                   # twice is fine
