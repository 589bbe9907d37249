# SPDX-License-Identifier: MIT
"""Nothing leaks per batch: 100,000 batches read, viewed and released keep
Python's heap (tracemalloc) and the process (RSS) flat, and every lease
(Lease objects, the reader's C leases) is gone at the end.

Lease objects are not tracked by the cyclic GC (gc.get_objects() never lists
them), so they are counted through what each one holds: a reference to its
Reader (sys.getrefcount) and a C lease (stats()["held"]); and a closed reader
detaches only when the last one is gone (its reader slot frees)."""
import gc
import sys
import tracemalloc

import pytest

import xring
from xrtest import UNDER_ASAN, attach_when_free, reader


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _loop(r, n, mark, touch_torch_every=0):
    """Reads n batches, touching their arrays; returns (traced, rss, anon)
    at batch `mark` and at the end."""
    at_mark = None
    for i in range(n):
        b = r.read(timeout=5)
        assert b is not None, f"batch {i}: nothing to read"
        s = b.seq
        o = b.obs
        assert int(s[-1]) - int(s[0]) >= len(b) - 1
        o[0].sum()
        if touch_torch_every and i % touch_torch_every == 0:
            t = b.torch()
            assert t["obs"].shape[0] == len(b)
            del t
        b.release()
        del b, s, o
        if i + 1 == mark:
            gc.collect()
            at_mark = (tracemalloc.get_traced_memory()[0], _status("VmRSS"), _status("RssAnon"))
    gc.collect()
    return at_mark, (tracemalloc.get_traced_memory()[0], _status("VmRSS"), _status("RssAnon"))


def test_100k_batches_do_not_leak(engines):
    e = engines("--board", "4x4", "--max-readers", "1", games=16, ring_size="4M")
    r = reader(e, batch=16, max_wait=0.01)
    base_refs = sys.getrefcount(r)
    tracemalloc.start()
    try:
        (t1, rss1, anon1), (t2, rss2, anon2) = _loop(r, 100_000, 10_000, touch_torch_every=100)
    finally:
        tracemalloc.stop()
    assert t2 - t1 < 64 * 1024, f"Python heap grew by {t2 - t1} bytes over 90,000 batches"
    if not UNDER_ASAN:  # its quarantine holds freed memory
        assert rss2 - rss1 < 16 << 20, f"RSS grew by {(rss2 - rss1) >> 10} KiB"
        assert anon2 - anon1 < 8 << 20, f"anonymous memory grew by {(anon2 - anon1) >> 10} KiB"
    s = r.stats()
    assert s["batches"] == 100_000 and s["held"] == 0, s
    assert sys.getrefcount(r) == base_refs, "Lease or Batch objects still refer to the reader"
    r.close()
    # The reader detached at close (no lease was alive): its only slot is free.
    r2 = attach_when_free(e)
    r2.close()


def test_filtered_copies_do_not_leak(engines):
    """The copy path (filtered batches with gaps) has no lease to leak, but
    owns its arrays."""
    e = engines("--board", "4x4", games=16, ring_size="4M")
    r = reader(e, batch=16, max_wait=0.01, players=[1])
    tracemalloc.start()
    try:
        (t1, _, anon1), (t2, _, anon2) = _loop(r, 20_000, 2_000)
    finally:
        tracemalloc.stop()
    s = r.stats()
    assert s["copies"] > 10_000 and s["held"] == 0, s
    assert t2 - t1 < 64 * 1024, f"Python heap grew by {t2 - t1} bytes over 18,000 batches"
    if not UNDER_ASAN:
        assert anon2 - anon1 < 8 << 20
    r.close()


def test_live_arrays_hold_the_lease_and_dropping_them_frees_it(engines):
    e = engines("--max-readers", "1")
    r = reader(e, batch=8)
    base_refs = sys.getrefcount(r)
    keep = []
    for _ in range(5):
        b = r.read(timeout=5)
        keep.append(b.obs[::2])       # a view of a field outlives the batch
        keep.append(b.torch()["reward"])
        b.release()
    del b
    gc.collect()
    assert r.stats()["held"] == 5
    assert sys.getrefcount(r) == base_refs + 5       # one Lease per batch
    del keep[::2]                                    # the numpy views go
    gc.collect()
    assert r.stats()["held"] == 5                    # the tensors still hold
    r.close()                                        # closed: detaches later
    with pytest.raises(xring.TooManyReadersError):
        reader(e, batch=8)
    keep.clear()
    gc.collect()
    assert sys.getrefcount(r) == base_refs
    attach_when_free(e).close()


def test_ring_buffer_views_hold_the_mapping(engines):
    e = engines("--max-readers", "1")
    r = reader(e, batch=8)
    b = r.read(timeout=5)
    ring = r.ring_buffer(b.ring)
    assert ring.nbytes == 2 * r.facts()["ring_capacity"]
    b.release()
    del b
    assert r.stats()["held"] == 0      # no records leased, only the mapping
    r.close()
    assert ring[:64].tobytes() is not None    # still mapped: readable
    with pytest.raises(xring.TooManyReadersError):
        reader(e, batch=8)
    del ring
    gc.collect()
    attach_when_free(e).close()
