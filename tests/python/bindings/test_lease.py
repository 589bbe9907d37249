# SPDX-License-Identifier: MIT
"""Leases from Python: a held batch is never overwritten (even on a small
lossy ring lapped many times), a released batch's arrays refuse use, and
whatever still views the ring (arrays, views of them, torch tensors) keeps the
lease until it goes, after which the writer moves on."""
import gc
import warnings

import numpy as np
import pytest
import torch

import xring
from xrtest import attach_when_free, check_accounting, info, reader, wait_for

LOSSY = ("--policy", "lossy")


def _ring_fulls(r, facts):
    """How many ring capacities of records were written since r attached."""
    return r.stats()["written"] * facts["record_bytes"] / facts["ring_capacity"]


def _drain(r, limit=100000):
    """Reads and releases whatever r has now; the number of records."""
    n = 0
    while n < limit:
        b = r.read(timeout=0)
        if b is None:
            return n
        n += len(b)
        b.release()
    return n


def _lossy_pair(engines):
    """A lossy engine with a 2 MiB ring, the reader under test (batches of 64)
    and another that keeps up: (engine, reader, other, reader's facts)."""
    e = engines(*LOSSY, ring_size="2M")
    r = reader(e, batch=64)
    other = reader(e, batch=256, max_wait=0.001)
    return e, r, other, r.facts()


def test_held_batch_survives_a_lossy_writer_lapping(engines):
    e, r, other, facts = _lossy_pair(engines)
    assert facts["policy"] == "lossy" and facts["ring_capacity"] == 2 << 20

    b = r.read(timeout=5)
    assert b is not None and b.copied is None
    obs, seq, mask = b.obs.copy(), b.seq.copy(), b.mask.copy()
    game, turn = b.game_id.copy(), b.turn.copy()
    assert (np.diff(seq) == 1).all()

    # The writer goes on: more than 3 ring-fulls of records are produced
    # while the batch is held. The other reader keeps reading meanwhile.
    def lapped():
        _drain(other)
        return _ring_fulls(r, facts) > 3
    wait_for(lapped, 20, "3 ring capacities written")

    # Not one byte of the held batch changed.
    assert np.array_equal(b.obs, obs)
    assert np.array_equal(b.seq, seq)
    assert np.array_equal(b.mask, mask)
    assert np.array_equal(b.game_id, game) and np.array_equal(b.turn, turn)
    # ...because the writer dropped records instead of overwriting them.
    s, so = r.stats(), other.stats()
    check_accounting(s)
    check_accounting(so)
    assert s["held"] == 1
    assert so["dropped"] > 0
    assert info(e)["lease_stalls"] > 0
    b.release()
    assert r.stats()["held"] == 0


def test_released_arrays_raise(engine):
    r = reader(engine, batch=8)
    b = r.read(timeout=5)
    obs, seq, reward, done = b.obs, b.seq, b.reward, b.done
    sub = obs[1:3, ::2]          # a view of a view: checked too
    before = seq.tolist()
    b.release()
    assert b.released

    uses = {
        "index": lambda: obs[0],
        "index of a view": lambda: sub[0],
        "slice": lambda: seq[1:],
        "np.sum": lambda: np.sum(obs),
        "ndarray.sum": lambda: reward.sum(),
        "ufunc": lambda: seq + 1,
        "np.mean": lambda: np.mean(reward),
        "repr": lambda: repr(seq),
        "str": lambda: str(seq),
        "format": lambda: f"{seq}",
        "tolist": lambda: seq.tolist(),
        "iteration": lambda: list(seq),
        "item": lambda: seq.item(0),
        "bool": lambda: bool(done[:1]),
        "copy": lambda: seq.copy(),
        "np.copy": lambda: np.copy(seq),
        "astype": lambda: reward.astype(np.float64),
        "tobytes": lambda: seq.tobytes(),
        "a view made after release": lambda: seq.reshape(2, 4)[0],
        "pickle": lambda: __import__("pickle").dumps(seq),
        "torch.from_dlpack": lambda: torch.from_dlpack(obs),
        "torch dlpack of a view": lambda: torch.utils.dlpack.from_dlpack(sub),
        "batch.obs": lambda: b.obs,
        "batch.torch()": lambda: b.torch(),
    }
    for what, use in uses.items():
        try:
            use()
        except xring.ReleasedError:
            continue
        pytest.fail(f"{what} of a released batch's array did not raise ReleasedError")
    # ReleasedError is also a RuntimeError, and says what to do.
    with pytest.raises(RuntimeError, match="copy"):
        obs[0]
    # Metadata that does not touch the data still works.
    assert seq.shape == (8,) and len(seq) == 8
    assert len(before) == 8


def test_comparing_released_arrays_raises(engine):
    r = reader(engine, batch=8)
    b = r.read(timeout=5)
    seq = b.seq
    b.release()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cmp in (lambda: seq == seq, lambda: seq != 3):
            with pytest.raises(xring.ReleasedError):
                cmp()


def test_reduction_on_a_released_array_does_not_leak_the_lease(engine):
    r = reader(engine, batch=8)
    b = r.read(timeout=5)
    obs = b.obs
    b.release()
    del b
    with pytest.raises(xring.ReleasedError):
        obs.sum()
    del obs
    gc.collect()
    assert r.stats()["held"] == 0


def test_released_arrays_still_hold_the_lease(engine):
    """The arrays' memory stays leased after release() while they live: any
    path that reads it anyway (buffer protocol, torch.from_numpy) never sees
    recycled records. Dropping the last one gives the records back."""
    r = reader(engine, batch=16)
    b = r.read(timeout=5)
    obs = b.obs
    view = obs[::2, 1:]
    reward_t = torch.from_numpy(b.reward)       # keeps its ndarray alive
    copy = obs.copy()
    b.release()
    del b
    assert r.stats()["held"] == 1
    del obs
    assert r.stats()["held"] == 1               # the view holds it
    del view
    assert r.stats()["held"] == 1               # the torch tensor holds it
    assert reward_t.shape == (16,)
    del reward_t
    gc.collect()
    assert r.stats()["held"] == 0
    assert copy.shape[0] == 16                  # a copy never held anything


def test_torch_tensor_keeps_the_ring_until_deleted(engines):
    e, r, other, facts = _lossy_pair(engines)

    b = r.read(timeout=5)
    t = b.torch()["obs"]             # the other tensors of the dict go now
    assert t.data_ptr() == b.obs.ctypes.data
    expect = b.obs.copy()
    last_seq = int(b.seq[-1])
    b.release()
    del b
    gc.collect()
    assert r.stats()["held"] == 1

    # Many ring-fulls later the tensor still reads the same bytes.
    w0 = r.stats()["written"]
    wait_for(lambda: (r.stats()["written"] - w0) * facts["record_bytes"]
             > 3 * facts["ring_capacity"], 20, "3 ring capacities written")
    assert torch.equal(t, torch.from_numpy(expect))

    # The ring is stuck behind the tensor's lease: once the other reader
    # has what was written before the stall, nothing new reaches it.
    _drain(other)
    w1 = other.stats()["written"]
    wait_for(lambda: other.stats()["written"] - w1 > 1000, 20, "1000 more records produced")
    assert _drain(other) == 0
    assert other.stats()["dropped"] > 0
    assert torch.equal(t, torch.from_numpy(expect))

    # Deleting the tensor ends the lease: the ring moves again and the
    # other reader gets records written after the stall.
    del t
    gc.collect()
    assert r.stats()["held"] == 0
    ring_records = facts["ring_capacity"] // facts["record_bytes"]

    def moved():
        x = other.read(timeout=0.05)
        if x is None:
            return False
        newest = int(x.seq[-1])
        x.release()
        return newest > last_seq + ring_records
    wait_for(moved, 10, "the writer to lap the formerly leased records")
    check_accounting(other.stats())


def test_too_many_batches_held(engine):
    r = reader(engine, batch=4)
    held = [r.read(timeout=5) for _ in range(xring._xring.HELD_MAX)]
    assert all(h is not None for h in held)
    assert r.stats()["held"] == 64
    with pytest.raises(xring.TooManyBatchesHeldError) as ei:
        r.read(timeout=1)
    assert ei.value.name == "ENOBUFS"
    held.pop().release()
    b = r.read(timeout=5)
    assert b is not None
    b.release()
    for h in held:
        h.release()
    assert r.stats()["held"] == 0


def test_batch_context_manager_releases(engine):
    r = reader(engine, batch=8)
    with r.read(timeout=5) as b:
        seq = b.seq
        assert len(seq.tolist()) == 8
    assert b.released
    with pytest.raises(xring.ReleasedError):
        seq[0]
    del seq
    assert r.stats()["held"] == 0


def test_closing_the_reader_invalidates_arrays_but_keeps_the_mapping(engines):
    """close() with arrays alive: they raise ReleasedError, and the reader
    stays attached (its slot taken) until the last of them goes."""
    e = engines("--max-readers", "1")
    r = reader(e, batch=8)
    b = r.read(timeout=5)
    obs = b.obs
    r.close()
    with pytest.raises(xring.ReleasedError):
        np.sum(obs)
    with pytest.raises(ValueError, match="closed"):
        r.read(timeout=0)
    # Still attached: the only reader slot is ours.
    with pytest.raises(xring.TooManyReadersError):
        reader(e, batch=8)
    del obs, b
    gc.collect()
    # Detached when the last lease went: the slot is free again.
    r2 = attach_when_free(e)
    assert r2.read(timeout=5) is not None


def test_a_stalled_lossy_ring_does_not_spin_other_readers(engines):
    import time
    e, r, other, facts = _lossy_pair(engines)
    b = r.read(timeout=5)
    w0 = r.stats()["written"]
    wait_for(lambda: (r.stats()["written"] - w0) * facts["record_bytes"]
             > 2 * facts["ring_capacity"], 20, "the writer to stall behind the lease")
    _drain(other)
    s0, c0 = other.stats(), time.process_time()
    assert other.read(timeout=0.5) is None
    s1, c1 = other.stats(), time.process_time()
    assert s1["dropped"] > s0["dropped"]          # records were produced meanwhile
    wakeups = s1["wakeups"] - s0["wakeups"]
    assert wakeups < 50, f"{wakeups} wakeups in 0.5 s with nothing to read"
    assert c1 - c0 < 0.1, f"{c1 - c0:.2f} s of CPU in a read that found nothing"
    b.release()


def test_a_dropped_batch_is_released(engine):
    r = reader(engine, batch=8)
    b = r.read(timeout=5)
    assert r.stats()["held"] == 1
    del b
    assert r.stats()["held"] == 0
    b = r.read(timeout=5)
    obs = b.obs
    del b                                   # not released: the array holds it
    assert r.stats()["held"] == 1
    assert obs.shape[0] == 8 and int(obs[0].max()) >= 0   # and is usable
    del obs
    assert r.stats()["held"] == 0


@pytest.mark.parametrize("spin", [False, True])
def test_waiting_on_ones_own_batch_is_refused(engines, spin):
    """A lossless reader whose held batch stops the writer, and who has read
    everything after it, would wait for good with no timeout: DeadlockError
    at once. With a timeout the read ends there (None); once the batch goes,
    records flow again."""
    e = engines("--shards", "1", ring_size="2M")
    r = reader(e, batch=64, spin=spin)     # spin: waits in slices, checked between them
    held = r.read(timeout=5)
    assert held is not None
    first = int(held.seq[0])

    # The single ring fills behind the held batch: the writer stops.
    def stopped():
        _drain(r)
        return info(e)["blocked"]
    wait_for(stopped, 20, "the writer to stop behind the held batch")
    _drain(r)
    with pytest.raises(xring.DeadlockError) as ei:
        r.read(timeout=None)
    assert ei.value.name == "EDEADLK" and "release" in ei.value.reason
    assert r.read(timeout=0.05) is None

    held.release()
    del held
    gc.collect()
    b = r.read(timeout=5)
    assert b is not None and int(b.seq[0]) > first
    b.release()
