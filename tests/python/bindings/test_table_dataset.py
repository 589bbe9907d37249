# SPDX-License-Identifier: MIT
"""xring.torch.TableDataset: samples of a replay table as dicts of tensors
(shapes, dtypes, the inserted bytes, importance weights against the
prioritized sampler's definition), a structured dtype's fields as views of
the batch, the lease held until the next batch and ended with the iterator,
the limit, priorities sent back, DataLoader workers, and the end of the
engine."""
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import xring
import xring.torch as xt
from xrtest import wait_for, tagged_items as _items

KEYS = {"items", "keys", "slots", "probabilities", "weights"}


def _engine(engines):
    # One game: the tables are the point, not the stream.
    return engines(games=1)


def _check(b, n, size):
    assert set(b) >= KEYS
    want = {"items": (torch.uint8, (n, size)), "keys": (torch.int64, (n,)),
            "slots": (torch.int32, (n,)), "probabilities": (torch.float64, (n,)),
            "weights": (torch.float64, (n,))}
    for k, (dt, shape) in want.items():
        assert isinstance(b[k], torch.Tensor), k
        assert b[k].dtype == dt and tuple(b[k].shape) == shape, (k, b[k].dtype, b[k].shape)


def test_batches_are_the_inserted_items(engines):
    e = _engine(engines)
    eng = xring.attach(e.name, timeout=5)
    with eng.create_table("u", capacity=200, item_size=40, seed=5) as t:
        rows = _items(150, 40)
        keys = t.insert(rows)
        row_of = {int(k): i for i, k in enumerate(keys)}
        ds = xt.TableDataset(eng, "u", batch=32, limit=5)   # an Engine works as a name
        out = list(DataLoader(ds, batch_size=None))
        assert len(out) == 5, "the iteration ends at limit"
        for b in out:
            _check(b, 32, 40)
            k = b["keys"].numpy().view(np.uint64)
            idx = np.array([row_of[int(x)] for x in k])          # only inserted keys
            assert np.array_equal(b["items"].numpy(), rows[idx]), "not the inserted bytes"
            assert np.array_equal(b["slots"].numpy(), (k & 0xFFFFFFFF).astype(np.int32))
            # The table's memory holds those bytes in those slots.
            assert np.array_equal(t.items[b["slots"].numpy()], rows[idx])
            # uniform: 1/N, weight 1
            assert (b["probabilities"] == 1 / 150).all() and (b["weights"] == 1).all()
        st = t.stats()
        assert st["samples"] == 5 * 32
        # The iteration ended at its limit: the last batch's leases too,
        # and its handle (the engine notes a hang-up in its own time).
        assert st["leases"] == 0
        wait_for(lambda: t.stats()["trainers"] == 1, 5, "the dataset's handle to close")
        # The tensors outlive the leases: they are the gather's own memory.
        idx = [row_of[int(x)] for x in out[0]["keys"].numpy().view(np.uint64)]
        assert np.array_equal(out[0]["items"].numpy(), rows[idx])
        # limit 0: no batch; a second iteration of one dataset starts anew.
        assert list(xt.TableDataset(e.name, "u", batch=8, limit=0)) == []
        assert len(list(ds)) == 5


def test_weights_follow_priorities_and_beta(engines):
    e = _engine(engines)
    eng = xring.attach(e.name, timeout=5)
    alpha, beta = 0.7, 0.5
    pr = np.array([0.5, 1, 2, 4, 8, 0, 3, 6, 1.5, 10], np.float64)
    with eng.create_table("p", capacity=16, item_size=16, sampler="prioritized",
                          alpha=alpha, beta=beta, seed=11) as t:
        keys = t.insert(_items(10, 16), priorities=pr)
        pos = {int(k): i for i, k in enumerate(keys)}
        p = pr ** alpha
        p /= p.sum()
        n = len(pr)
        w_all = (n * p[p > 0]) ** -beta
        seen = np.zeros(10)
        for b in xt.TableDataset(e.name, "p", batch=256, limit=8):
            _check(b, 256, 16)
            idx = np.array([pos[int(k)] for k in b["keys"].numpy().view(np.uint64)])
            np.testing.assert_allclose(b["probabilities"].numpy(), p[idx], rtol=1e-12)
            # (N P(i))^-beta over the largest of them, among drawable items.
            np.testing.assert_allclose(b["weights"].numpy(),
                                       (n * p[idx]) ** -beta / w_all.max(), rtol=1e-9)
            assert (b["weights"] <= 1).all() and (b["weights"] > 0).all()
            seen += np.bincount(idx, minlength=10)
        assert seen[5] == 0, "priority 0 drawn"
        assert seen[9] > seen[0], "the draws do not follow the priorities"
        # The least likely item has weight 1 whenever drawn; others less.
        assert (b["weights"].numpy()[idx == 0] == 1).all()


def test_the_lease_is_held_until_the_next_batch(engines):
    e = _engine(engines)
    eng = xring.attach(e.name, timeout=5)
    # fifo sampler: each call the 4 oldest items, each once: leases == 4 per
    # batch held, 8 if the last batch's were kept.
    with eng.create_table("l", capacity=8, item_size=16, sampler="fifo") as t:
        t.insert(_items(8, 16))
        it = iter(xt.TableDataset(e.name, "l", batch=4))
        b1 = next(it)
        assert t.stats()["leases"] == 4
        b2 = next(it)
        assert t.stats()["leases"] == 4, "the previous batch was not released"
        assert torch.equal(b1["keys"], b2["keys"])
        it.close()
        assert t.stats()["leases"] == 0, "the iterator's end did not release its batch"

    # A second trainer sees the lease: a full table whose every item is
    # leased refuses an insert; once the iterator ends, the insert goes.
    with eng.create_table("full", capacity=8, item_size=16, sampler="fifo") as t:
        rows = _items(8, 16)
        t.insert(rows)
        it = iter(xt.TableDataset(e.name, "full", batch=8))
        b = next(it)
        assert t.stats()["leases"] == 8
        with pytest.raises(TimeoutError):
            t.insert(_items(1, 16, first=100), timeout=0)
        del it                      # collected: the iterator ends
        assert t.stats()["leases"] == 0
        new = _items(8, 16, first=100)
        assert len(t.insert(new, timeout=0)) == 8
        # The batch's tensors are copies: the old items, though the table's
        # slots hold the new ones now.
        assert np.array_equal(b["items"].numpy(), rows)
        assert np.array_equal(t.items[b["slots"].numpy()], new)


def test_a_structured_dtype_gives_fields_as_views(engines):
    e = _engine(engines)
    eng = xring.attach(e.name, timeout=5)
    dt = np.dtype([("a", np.int64), ("r", np.float32), ("obs", np.uint8, (3, 4)),
                   ("flag", np.bool_), ("u", np.uint32), ("m", np.bool_, (5,))], align=True)
    size = dt.itemsize + 8          # items may be longer than the dtype
    n = 50
    rows = np.zeros(n, dt)
    rows["a"] = np.arange(n) * 1000 - 7
    rows["r"] = np.arange(n) / 4
    rows["obs"] = (np.arange(n)[:, None, None] + np.arange(12).reshape(3, 4)) % 256
    rows["flag"] = np.arange(n) % 3 == 0
    rows["u"] = 2**32 - 1 - np.arange(n)          # past int32: the bits
    rows["m"] = (np.arange(n)[:, None] + np.arange(5)) % 2 == 0
    raw = np.zeros((n, size), np.uint8)
    raw[:, :dt.itemsize] = rows.view(np.uint8).reshape(n, dt.itemsize)
    with eng.create_table("s", capacity=64, item_size=size) as t:
        pos = {int(k): i for i, k in enumerate(t.insert(raw))}
        b = next(iter(xt.TableDataset(e.name, "s", batch=20, limit=1, dtype=dt)))
        idx = np.array([pos[int(k)] for k in b["keys"].numpy().view(np.uint64)])
        items = b["items"]
        base = items.data_ptr()
        want = {"a": (torch.int64, ()), "r": (torch.float32, ()), "obs": (torch.uint8, (3, 4)),
                "flag": (torch.bool, ()), "u": (torch.int32, ()), "m": (torch.bool, (5,))}
        for name, (tdt, shape) in want.items():
            f = b[name]
            assert f.dtype == tdt and tuple(f.shape) == (20,) + shape, (name, f.dtype, f.shape)
            # A view of the gather: at the field's offset, one item apart.
            assert f.data_ptr() == base + dt.fields[name][1], name
            assert f.stride(0) * f.element_size() == size, name
            got = f.numpy()
            if name == "u":
                got = got.view(np.uint32)
            assert np.array_equal(got, rows[name][idx]), name

        # A packed layout: a field the layout does not align is a copy,
        # with the right values all the same.
        packed = np.dtype([("c", np.uint8), ("x", np.float64)])     # x at offset 1
        prow = np.zeros(n, packed)
        prow["c"], prow["x"] = np.arange(n), np.arange(n) * 0.5
    with eng.create_table("pk", capacity=64, item_size=packed.itemsize) as t:
        pos = {int(k): i for i, k in enumerate(t.insert(prow))}
        b = next(iter(xt.TableDataset(e.name, "pk", batch=10, limit=1, dtype=packed)))
        idx = np.array([pos[int(k)] for k in b["keys"].numpy().view(np.uint64)])
        base, end = b["items"].data_ptr(), b["items"].data_ptr() + b["items"].numel()
        assert b["c"].data_ptr() == base                             # aligned: a view
        assert not base <= b["x"].data_ptr() < end                   # not: a copy
        assert np.array_equal(b["x"].numpy(), prow["x"][idx])
        # A dtype longer than the items is refused when the batch comes.
        big = np.dtype([("x", np.uint8, (packed.itemsize + 1,))])
        with pytest.raises(ValueError, match="more than"):
            next(iter(xt.TableDataset(e.name, "pk", batch=1, dtype=big)))
    for bad, what in [({"batch": 0}, "batch"), ({"batch": 1025}, "batch"),
                      ({"batch": 1, "dtype": np.float32}, "structured"),
                      ({"batch": 1, "dtype": [("keys", np.int64)]}, "named"),
                      ({"batch": 1, "timeout": -1}, "timeout"),
                      ({"batch": 1, "limit": -1}, "limit")]:
        with pytest.raises(ValueError, match=what):
            xt.TableDataset(e.name, "pk", **bad)


def test_fields_of_fed_records_and_transitions(engines):
    """fields=(...) adds a Sample's field arrays as tensors: a fed table's
    records (checked against the items' own bytes, parsed by the table's
    Sample) and transitions."""
    e = engines(games=4)
    eng = xring.attach(e.name, timeout=5)
    with eng.create_table("recs", capacity=512, source="experience") as t, \
            eng.create_table("tr", capacity=512, source="experience", item="transition"):
        lay = t.layout()
        ds = xt.TableDataset(e.name, "recs", batch=32, limit=1, timeout=10,
                             fields=("obs", "mask", "action", "reward", "done", "seq"))
        b = next(iter(ds))
        assert tuple(b["obs"].shape) == (32,) + tuple(lay["obs_shape"])
        assert tuple(b["mask"].shape) == (32, lay["mask_len"])
        assert b["action"].dtype == torch.int32 and b["done"].dtype == torch.bool
        assert b["seq"].dtype == torch.int64 and (b["seq"] > 0).any()
        # Each row's fields are its own item's: its observation's and its
        # seq's bytes lie in the item's bytes (records differ in both).
        rows, obs = b["items"].numpy(), b["obs"].numpy().reshape(32, -1)
        seqs = b["seq"].numpy().view(np.uint64)
        for i in range(32):
            item = rows[i].tobytes()
            assert obs[i].tobytes() in item and seqs[i].tobytes() in item, i
            assert obs[i].nbytes == lay["obs_bytes"]
        tb = next(iter(xt.TableDataset(e.name, "tr", batch=16, limit=1, timeout=10,
                                       fields="next_obs")))
        assert tuple(tb["next_obs"].shape) == (16,) + tuple(lay["obs_shape"])
        # A field the table's items lack: at the first batch.
        with pytest.raises(AttributeError, match="not transitions"):
            next(iter(xt.TableDataset(e.name, "recs", batch=1, timeout=10,
                                      fields="next_obs")))
    with pytest.raises(ValueError, match="no Sample field"):
        xt.TableDataset(e.name, "recs", batch=1, fields=("nosuch",))
    with pytest.raises(ValueError, match="same entry"):
        xt.TableDataset(e.name, "recs", batch=1, fields=("obs",),
                        dtype=[("obs", np.uint8)])


def test_priorities_sent_back_move_the_draws(engines):
    e = _engine(engines)
    eng = xring.attach(e.name, timeout=5)
    with eng.create_table("pr", capacity=32, item_size=16, sampler="prioritized",
                          alpha=1.0, beta=1.0, seed=2) as t:
        keys = t.insert(_items(10, 16), priorities=1.0)
        ds = xt.TableDataset(e.name, "pr", batch=512)
        it = iter(ds)
        b = next(it)
        assert (b["probabilities"] == 0.1).all()
        # Every key of the batch to a new priority, from tensors: the
        # batch's int64 keys and a float32 tensor (a TD error, say).
        k = b["keys"]
        first = int(keys[0])
        hot = (k.numpy().view(np.uint64) == first)
        prio = torch.where(torch.from_numpy(hot), torch.tensor(91.0), torch.tensor(1.0))
        assert ds.update_priorities(k, prio.float()) == len(k)
        b = next(it)
        hot = b["keys"].numpy().view(np.uint64) == first
        np.testing.assert_allclose(b["probabilities"].numpy()[hot], 0.91, rtol=1e-12)
        np.testing.assert_allclose(b["probabilities"].numpy()[~hot], 0.01, rtol=1e-12)
        np.testing.assert_allclose(b["weights"].numpy()[hot], 0.01 / 0.91, rtol=1e-9)
        assert hot.mean() > 0.8
        # numpy keys (uint64) work too; a key gone from the table, and a
        # priority that is not a number, are skipped.
        stale = np.array([keys[1], keys[2], keys[3] + (1 << 32)], np.uint64)  # a later fill's
        assert ds.update_priorities(stale, [2.0, float("nan"), 3.0]) == 1
        it.close()
        # The handle update_priorities opened is not pickled (a worker opens
        # its own) and close() closes it.
        ds2 = pickle.loads(pickle.dumps(ds))
        assert ds2._handle is None and ds2.table == "pr" and ds2.batch == 512
        assert ds2.update_priorities(keys[:1], 1.0) == 1
        ds.close()
        ds2.close()
        wait_for(lambda: t.stats()["trainers"] == 1, 5, "the handles to close")
        assert t.stats()["leases"] == 0


def test_dataloader_workers(engines):
    e = _engine(engines)
    eng = xring.attach(e.name, timeout=5)
    with eng.create_table("w", capacity=100, item_size=24, seed=3) as t:
        rows = _items(100, 24)
        row_of = {int(k): i for i, k in enumerate(t.insert(rows))}
        ds = xt.TableDataset(e.name, "w", batch=16, limit=3)
        out = list(DataLoader(ds, batch_size=None, num_workers=2, timeout=60))
        assert len(out) == 2 * 3, "each worker ends at its limit"
        for b in out:
            _check(b, 16, 24)
            idx = [row_of[int(k)] for k in b["keys"].numpy().view(np.uint64)]
            assert np.array_equal(b["items"].numpy(), rows[idx])
        assert t.stats()["samples"] == 6 * 16
        # Each worker was a trainer of its own; their ends ended their leases.
        wait_for(lambda: t.stats()["trainers"] == 1 and t.stats()["leases"] == 0, 10,
                 "the workers' handles to close")


def test_timeouts_and_the_end_of_the_engine(engines):
    e = _engine(engines)
    eng = xring.attach(e.name, timeout=5)
    with eng.create_table("end", capacity=16, item_size=8, min_size=4) as t:
        t.insert(_items(2, 8))
        # The rate limiter says no (2 items of min_size 4): raised, not an end.
        with pytest.raises(TimeoutError, match="limiter"):
            next(iter(xt.TableDataset(e.name, "end", batch=2, timeout=0)))
        with pytest.raises(TimeoutError):
            next(iter(xt.TableDataset(e.name, "end", batch=2, timeout=0.05)))
        t.insert(_items(2, 8, first=2))
        it = iter(xt.TableDataset(e.name, "end", batch=2, timeout=5))
        b = next(it)
        assert len(b["keys"]) == 2
        e.stop()
        # The engine is gone: the iteration ends (as ExperienceDataset's).
        with pytest.raises(StopIteration):
            next(it)
    # The last batch's tensors are this process's memory: still readable.
    ids = b["items"].numpy()[:, :8].copy().view(np.uint64).ravel()
    assert np.array_equal(b["items"].numpy(), _items(4, 8)[ids.astype(np.int64)])
