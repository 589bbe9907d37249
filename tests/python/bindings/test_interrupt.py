# SPDX-License-Identifier: MIT
"""A blocked read() lets other Python threads run (the GIL is released while
it waits) and ends promptly on Ctrl-C."""
import signal
import subprocess
import textwrap
import threading
import time

import pytest

from xrtest import child_env, python, reader, wait_blocked_in_read, wait_for


@pytest.mark.solo
def test_blocked_read_releases_the_gil(engines):
    e = engines("--tick-ms", "100000", games=2)     # writes nothing for 100 s
    r = reader(e, batch=16)
    stamps = []
    stop = threading.Event()

    def spin():
        n = 0
        while not stop.is_set():
            n += 1
            if n % 2000 == 0:
                stamps.append(time.monotonic())
    t = threading.Thread(target=spin)
    t.start()
    try:
        wait_for(lambda: len(stamps) > 0, 5, "the spinning thread to start")
        t0 = time.monotonic()
        got = r.read(timeout=2)
        t1 = time.monotonic()
    finally:
        stop.set()
        t.join()
    assert got is None
    assert t1 - t0 >= 1.9, "read returned early"
    # The other thread made progress all through the wait, not just at its
    # ends: loops were counted in every quarter of a second of it.
    inside = [s for s in stamps if t0 < s < t1]
    bins = {int((s - t0) / 0.25) for s in inside}
    expected = set(range(1, int((t1 - t0) / 0.25) - 1))
    assert expected <= bins, f"no progress in quarters {sorted(expected - bins)} of the read"
    assert len(inside) > 100


SIGINT_CHILD = textwrap.dedent("""
    import sys, xring
    max_wait = 30.0 if sys.argv[2] == "long" else 0.01
    r = xring.attach(sys.argv[1], timeout=10).reader(batch=16, max_wait=max_wait)
    print("reading", flush=True)
    if sys.argv[2] in ("read", "long"):
        r.read(timeout=30)
    else:
        for b in r:
            pass
    print("returned", flush=True)
""")


def _interrupt(e, run_dir, how):
    p = subprocess.Popen([python(), "-c", SIGINT_CHILD, e.name, how], env=child_env(run_dir),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "reading", p.stderr.read()
        wait_blocked_in_read(p.pid, p.pid)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        p.wait(timeout=10)
        elapsed = time.monotonic() - t0
        return p.returncode, p.stdout.read(), p.stderr.read(), elapsed
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def _check_interrupted(e, run_dir, how):
    """SIGINT to a child blocked in read(): KeyboardInterrupt within 0.5 s."""
    rc, out, err, elapsed = _interrupt(e, run_dir, how)
    assert "returned" not in out
    assert err.rstrip().endswith("KeyboardInterrupt"), err
    assert rc == -signal.SIGINT, (rc, err)
    assert elapsed < 0.5, f"took {elapsed:.2f} s"


# An engine whose first turn is 100 s away: a read blocks.
def test_ctrl_c_ends_a_blocked_read(engines, run_dir):
    _check_interrupted(engines("--tick-ms", "100000", games=2), run_dir, "read")


def test_ctrl_c_ends_a_blocked_iteration(engines, run_dir):
    _check_interrupted(engines("--tick-ms", "100000", games=2), run_dir, "iterate")


def test_ctrl_c_ends_a_long_max_wait(engines, run_dir):
    # Inside max_wait, waiting for min_batch (not only after it): a 30 s
    # max_wait is cut as promptly.
    _check_interrupted(engines("--tick-ms", "100000", games=2), run_dir, "long")
