# SPDX-License-Identifier: MIT
"""History: a reader that joins late starts N records before the newest, or
at the oldest its engine's ring still holds (Engine.reader(history=...)).

The engine here is held still: a lossless reader that never reads holds it
at its high watermark, so the ring's records stay where they are while the
late readers count them."""
import numpy as np
import pytest

import xring
from xrtest import check_accounting, reader, record_table, wait_for

def _held_still(holder):
    """Waits until the engine stopped for `holder` (a reader that never
    reads) at its high watermark of 0.9: one more record would cross it.
    Returns the holder's stats then, and the ring's capacity (the engine
    rounds 1M up to its page size: 2 MiB with huge pages)."""
    cap = holder.facts()["ring_capacity"]

    def stopped():
        s = holder.stats()
        if not s["written"]:
            return None                     # not started yet (slow under ASan)
        frame = s["lag_bytes"] / s["written"]
        return s if s["lag_bytes"] + frame > 0.9 * cap else None
    return wait_for(stopped, 20, "the engine to fill its ring to the watermark"), cap


def _take_all(r):
    """Every record there is now, as record_table's {seq: fields}; the
    batches are released."""
    out = {}
    while True:
        b = r.read(timeout=0.2)
        if b is None:
            return out
        seq = b.seq.astype(np.int64)
        assert (np.diff(seq) == 1).all(), "lossless: no record skipped"
        out.update(record_table(b))
        b.release()


def test_late_readers_start_back(engines):
    e = engines("--high-watermark", "0.9", games=4, ring_size="1M")
    with reader(e, batch=256) as holder:       # never reads: the engine stops at 0.9
        still, ring = _held_still(holder)
        with reader(e, batch=256, min_batch=1, history="all") as all_, \
                reader(e, batch=256, min_batch=1, history=7) as seven, \
                reader(e, batch=256, min_batch=1) as now:
            everything = _take_all(all_)
            last7 = _take_all(seven)
            assert _take_all(now) == {}
            s_all, s7 = all_.stats(), seven.stats()
        assert holder.stats()["written"] == still["written"], "the engine held still"
    seqs = sorted(everything)
    # All the ring held from its tail, back to back. The writer moves the
    # tail ahead in chunks of an eighth of the ring, whatever leases are
    # older (they keep their bytes, but a new lease may not start there),
    # so the holder may be owed up to a chunk and a frame more; records from
    # before the holder came may be there too, as many as the ring holds.
    assert len(seqs) == seqs[-1] - seqs[0] + 1
    frame = still["lag_bytes"] / still["written"]
    assert ring / frame >= len(seqs) >= still["written"] - (ring / 8) / frame - 1
    assert len(seqs) > 7
    assert sorted(last7) == seqs[-7:]
    assert all(last7[s] == everything[s] for s in last7), "the same records"
    assert s_all["read"] == s_all["written"] == len(seqs)
    assert s7["read"] == s7["written"] == 7
    check_accounting(s_all)
    check_accounting(s7)


def test_history_with_a_filter_counts_before_it(engines):
    e = engines("--high-watermark", "0.9", games=4, ring_size="1M")
    with reader(e, batch=256) as holder:
        _held_still(holder)
        with reader(e, batch=256, min_batch=1, history=100) as plain, \
                reader(e, batch=256, min_batch=1, history=100, players=[1]) as p1:
            got, got1 = _take_all(plain), {}
            while (b := p1.read(timeout=0.2)) is not None:
                got1.update(record_table(b))
                b.release()
            s1 = p1.stats()
    assert len(got) == 100
    want = {s: v for s, v in got.items() if v[1] == 1}
    assert got1 == want and 0 < len(want) < 100
    assert s1["written"] == 100 and s1["filtered"] == 100 - len(want)
    check_accounting(s1)


@pytest.mark.parametrize("bad", [-1, "some", 1.5, True, 2**64 - 1, 2**64])
def test_bad_history_is_refused(engine, bad):
    with pytest.raises(ValueError, match="history"):
        reader(engine, history=bad)
