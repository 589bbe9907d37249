# SPDX-License-Identifier: MIT
"""A Reader is for one thread at a time: a second thread's read() while the
first waits (GIL released) is refused with a clear error, and a batch that
another thread drops meanwhile is released when the wait ends."""
import threading

import pytest

import xring


def test_second_thread_refused_and_release_deferred(engines):
    # 2 games at one turn every 3 s: after a turn, nothing for 3 s.
    e = engines("--tick-ms", "3000", games=2)
    with xring.attach(e.name, timeout=5).reader(batch=4, min_batch=1, max_wait=0) as r:
        first = r.read(timeout=10)
        assert first is not None
        while r.read(timeout=0) is not None:   # drain the first turn
            pass
        in_read = threading.Event()
        out = {}

        def waiter():
            in_read.set()
            out["batch"] = r.read(timeout=1.0)

        t = threading.Thread(target=waiter)
        t.start()
        in_read.wait()
        # Wait until the waiter is really inside read(): stats() then refuses.
        for _ in range(1000):
            try:
                r.stats()
            except RuntimeError as ex:
                assert "one thread at a time" in str(ex) or "another thread" in str(ex)
                break
            threading.Event().wait(0.001)
        else:
            pytest.fail("the waiting thread never held the reader")
        with pytest.raises(RuntimeError, match="another thread"):
            r.read(timeout=0)
        held_before = 1
        del first                        # its lease ends while the other thread waits
        t.join()
        assert out["batch"] is None      # nothing came in 1 s
        s = r.stats()
        assert s["held"] == held_before - 1
        assert s["deferred"] == 1, "the lease ended while the C reader was the waiter's" 
