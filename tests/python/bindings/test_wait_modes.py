# SPDX-License-Identifier: MIT
"""How a reader waits: spin=True never sleeps; idle_poll=True holds the
kernel's CPU latency request (/dev/cpu_dma_latency) at 0 while attached, and
without write access to that device reads the same, saying it did not take."""
import json
import os
import struct
import subprocess
import textwrap

import pytest

from xrtest import child_env, python, reader

QOS = "/dev/cpu_dma_latency"


def qos_now():
    """The CPU latency the kernel honours now (µs): the smallest held request."""
    with open(QOS, "rb") as f:
        return struct.unpack("i", f.read(4))[0]


def test_default_reader_sleeps_and_is_woken(engines):
    # A slow engine (a tick every 20 ms) makes a reader of 64 wait for them.
    e = engines("--tick-ms", "20", games=8)
    with reader(e, batch=64, max_wait=1.0) as r:
        for _ in range(3):
            b = r.read(timeout=5)
            assert b is not None
            b.release()
        s = r.stats()
    assert s["sleeps"] > 0 and s["wakeups"] > 0, s
    assert not s["idle_poll"]


def test_spin_reader_never_sleeps(engines):
    e = engines("--tick-ms", "20", games=8)
    with reader(e, batch=64, max_wait=1.0, spin=True) as r:
        for _ in range(3):
            b = r.read(timeout=5)
            assert b is not None and len(b) == 64  # waited (spinning) for all
            b.release()
        s = r.stats()
    assert s["sleeps"] == 0 and s["wakeups"] == 0, s


# The kernel's CPU latency request is the machine's: the two tests that read it
# run alone (solo), or each would see the other's request.
@pytest.mark.solo
@pytest.mark.skipif(os.geteuid() != 0, reason="writing /dev/cpu_dma_latency needs root")
def test_idle_poll_holds_cpu_latency_at_zero_while_attached(engines):
    e = engines("--tick-ms", "5", games=8)
    before = qos_now()
    assert before > 0, "another process already holds CPU latency at 0: cannot tell"
    r = reader(e, batch=16, max_wait=0.5, idle_poll=True)
    try:
        assert r.stats()["idle_poll"] is True
        assert qos_now() == 0
        b = r.read(timeout=5)
        assert b is not None and len(b) > 0
        b.release()
        assert qos_now() == 0
    finally:
        r.close()
    # Detached: the request goes with the reader's fd.
    assert qos_now() == before


IDLE_POLL_CHILD = textwrap.dedent("""
    import json, sys
    import xring
    with xring.Engine(sys.argv[1]).reader(batch=4, max_wait=0.5, idle_poll=True) as r:
        b = r.read(timeout=5)
        out = {"read": 0 if b is None else len(b), "idle_poll": r.stats()["idle_poll"]}
    print(json.dumps(out))
""")


@pytest.mark.solo
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a child as uid 65534")
def test_idle_poll_without_access_reads_and_says_so(engines, run_dir):
    e = engines("--allow-uid", "65534", "--tick-ms", "5", games=8)
    before = qos_now()
    out = subprocess.run([python(), "-c", IDLE_POLL_CHILD, e.name], env=child_env(run_dir),
                         user=65534, group=65534, extra_groups=[], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["read"] > 0 and res["idle_poll"] is False, res
    assert qos_now() == before
