# SPDX-License-Identifier: MIT
"""Helpers shared by the binding tests (not a test module itself).

Every wait here is a poll of a condition with a deadline, never a sleep
standing in for synchronisation.
"""
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

import xring

REPO = pathlib.Path(__file__).resolve().parents[3]
BUILD = pathlib.Path(os.environ.get("XRING_BUILD_DIR") or REPO / "build")
PYDIR = BUILD / "python"
XRING_BIN = BUILD / "xring"

SYS_PPOLL = 271  # x86_64: where a reader sleeps waiting for records


def _asan_loaded():
    with open("/proc/self/maps") as f:
        return any("libasan" in line for line in f)


# The extension built with AddressSanitizer, preloaded (scripts/test.sh):
# freed memory sits in ASan's quarantine, so RSS bounds do not apply.
UNDER_ASAN = _asan_loaded()


def wait_for(pred, timeout, what, step=0.002):
    """Polls pred() until it returns something true; that value, or fails."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def reader(engine, **kw):
    """A reader of `engine` (a conftest Engine), attaching within 5 s."""
    return xring.attach(engine.name, timeout=5).reader(**kw)


def attach_when_free(engine, batch=8):
    """A reader of `engine` as soon as a reader slot is free (within 5 s)."""
    def attach():
        try:
            return reader(engine, batch=batch)
        except xring.TooManyReadersError:
            return None
    return wait_for(attach, 5, "a free reader slot")


def info(engine):
    """`xring info NAME --json` of the engine: its first stream's first ring."""
    out = subprocess.run([str(XRING_BIN), "info", engine.name, "--json"], env=engine.env,
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["streams"][0]["rings"][0]


def check_accounting(s):
    """The exact per-reader accounting of a stats() dict."""
    assert s["written"] == s["read"] + s["filtered"] + s["dropped"] + s["pending"], s


def syscall_of(pid, tid):
    """The number of the system call thread tid of pid is in, or None if running."""
    try:
        with open(f"/proc/{pid}/task/{tid}/syscall") as f:
            first = f.read().split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return None if first == "running" else int(first)


def wait_blocked_in_read(pid, tid, timeout=5):
    """Until thread tid of pid sleeps in the reader's ppoll (inside read())."""
    wait_for(lambda: syscall_of(pid, tid) == SYS_PPOLL, timeout,
             f"thread {tid} of {pid} to block in ppoll")


_CHILD_PYDIR = None


def _child_pydir():
    """A copy of the built package that any uid can import: children run as
    uid 65534, and a checkout under /root (mode 0700) is out of their reach.
    Made once per process, removed at exit."""
    global _CHILD_PYDIR
    if _CHILD_PYDIR is None:
        import atexit
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix="xring-py-")
        shutil.copytree(PYDIR / "xring", pathlib.Path(d) / "xring",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for root, dirs, files in os.walk(d):
            os.chmod(root, 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o644)
        atexit.register(shutil.rmtree, d, True)
        _CHILD_PYDIR = d
    return _CHILD_PYDIR


def child_env(run_dir):
    """Environment for a child Python that imports xring from the build."""
    env = dict(os.environ, XRING_RUN_DIR=str(run_dir), PYTHONPATH=_child_pydir())
    return env


_W = np.random.default_rng(12345).integers(1, 2**61, size=1 << 16, dtype=np.int64)


def row_digest(a):
    """One int64 per record of a (n, ...) array: a weighted sum of its bytes."""
    a = np.ascontiguousarray(np.asarray(a).view(np.ndarray))
    flat = a.reshape(len(a), -1).view(np.uint8).reshape(len(a), -1).astype(np.int64)
    return flat @ _W[:flat.shape[1]]


def record_table(batch):
    """seq -> (game, player, turn, action, reward, done, truncated, obs and mask
    digests, applied, applied_by) for every record of a batch (copied out; the
    batch stays leased)."""
    seq = batch.seq.copy()
    cols = [batch.game_id.copy(), batch.player_id.copy(), batch.turn.copy(),
            batch.action.copy(), batch.reward.copy(), batch.done.copy(),
            batch.truncated.copy(), row_digest(batch.obs.copy())]
    cols.append(row_digest(batch.mask.copy()) if batch.mask is not None
                else np.zeros(len(seq), np.int64))
    cols += [batch.applied.copy(), batch.applied_by.copy()]
    return {int(s): tuple(c[i].item() for c in cols) for i, s in enumerate(seq)}


def python():
    return sys.executable


class _OwnEngine:
    """An engine outside the per-test fixtures (for module-scoped runs)."""

    def __init__(self, name, args, env):
        self.name, self.args, self.env, self.proc = name, args, env, None


class own_engine:
    """with own_engine(*args) as e: an engine with its own run directory,
    XRING_RUN_DIR pointing at it for the duration, stopped at the end."""

    def __init__(self, *args):
        import uuid
        self.run = pathlib.Path("/tmp") / f"xr-{uuid.uuid4().hex[:10]}"
        self.name = f"py-{uuid.uuid4().hex[:8]}"
        self.args = list(args)

    def __enter__(self):
        self.run.mkdir()
        self.old = os.environ.get("XRING_RUN_DIR")
        os.environ["XRING_RUN_DIR"] = str(self.run)
        env = dict(os.environ)
        self.e = _OwnEngine(self.name, self.args, env)
        self.e.proc = subprocess.Popen(
            [str(XRING_BIN), "engine", "--name", self.name, "--quiet"] + self.args,
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sock = self.run / f"{self.name}.sock"
        try:
            wait_for(lambda: sock.exists() or self.e.proc.poll() is not None, 10,
                     "the engine's control socket")
            assert self.e.proc.poll() is None, self.e.proc.stderr.read().decode()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self.e

    def __exit__(self, *exc):
        p = self.e.proc
        if p.poll() is None:
            p.terminate()
            p.wait(10)
        if self.old is None:
            os.environ.pop("XRING_RUN_DIR", None)
        else:
            os.environ["XRING_RUN_DIR"] = self.old
        for f in self.run.iterdir():
            f.unlink()
        self.run.rmdir()
        return False


def tagged_items(n, size, first=0):
    """n items whose bytes say which they are: item i is (first + i) as its
    first 8 bytes, then a pattern of it."""
    a = np.zeros((n, size), np.uint8)
    ids = np.arange(first, first + n, dtype=np.uint64)
    a[:, :8] = ids.view(np.uint8).reshape(n, 8)
    a[:, 8:] = ((ids[:, None] * 7 + np.arange(8, size)) % 251).astype(np.uint8)
    return a
