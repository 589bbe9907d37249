# SPDX-License-Identifier: MIT
"""xring for torch: batches as tensors without copies, and datasets.

    dataset = xring.torch.ExperienceDataset("demo", batch=256)
    for b in torch.utils.data.DataLoader(dataset, batch_size=None):
        b["obs"]    # torch.uint8 (256, C, H, W)

    replay = xring.torch.TableDataset("demo", "replay", batch=256)
    for b in torch.utils.data.DataLoader(replay, batch_size=None):
        b["items"], b["weights"]      # (256, item_size) uint8, (256,) float64
        replay.update_priorities(b["keys"], new_priorities)
"""

import os

import numpy as np
import torch
import torch.utils.data
from torch.utils.dlpack import from_dlpack

import xring
from . import _xring

__all__ = ["tensors", "ExperienceDataset", "TableDataset"]

_SIGNED = {np.dtype(np.uint32): np.int32, np.dtype(np.uint64): np.int64}


def tensors(batch):
    """The batch's fields as a dict of torch tensors sharing the ring's memory
    (DLPack; read-only memory: do not write to them). torch has no unsigned
    32/64-bit types, so game_id, player_id, turn come as int32 and seq, t_ns
    as int64, with the same bits. Each tensor keeps the
    batch's records leased while it lives, so it never sees recycled data,
    even after batch.release()."""
    out = {}
    for name in xring.FIELDS:
        a = getattr(batch, name)
        if a is None:
            out[name] = None
        elif a.dtype == bool:
            # Exported as uint8 (torch 1.13 has no DLPack bool); same bytes.
            out[name] = from_dlpack(_xring.dlpack(a)).view(torch.bool)
        elif a.dtype in _SIGNED:
            # torch has no uint32/uint64: the same bits as int32/int64.
            out[name] = from_dlpack(_xring.dlpack(a.view(_SIGNED[a.dtype])))
        else:
            out[name] = from_dlpack(_xring.dlpack(a))
    return out


class ExperienceDataset(torch.utils.data.IterableDataset):
    """Batches of an engine's stream, for DataLoader(dataset, batch_size=None).

    Each iterator (each DataLoader worker) attaches its own reader with the
    given reader options (see xring.Engine.reader), and yields dicts of
    tensors; with several workers each sees every record (broadcast) unless
    you give them disjoint filters. The iteration ends when the engine stops.
    `limit` bounds the number of batches per iterator."""

    def __init__(self, engine, limit=None, engine_uid=0, **reader_opts):
        super().__init__()
        self.engine = engine if isinstance(engine, str) else engine.name
        self.engine_uid = engine_uid if isinstance(engine, str) else engine.engine_uid
        self.limit = limit
        self.reader_opts = reader_opts

    def __iter__(self):
        engine = xring.attach(self.engine, timeout=10, engine_uid=self.engine_uid)
        with engine.reader(**self.reader_opts) as reader:
            n = 0
            for batch in reader:
                t = tensors(batch)
                batch.release()  # the tensors hold the lease while they live
                yield t
                n += 1
                if self.limit is not None and n >= self.limit:
                    return


# numpy dtypes torch 1.13 has no type of: the same bits as a signed type.
_SAME_BITS = {np.dtype(np.uint16): np.int16, np.dtype(np.uint32): np.int32,
              np.dtype(np.uint64): np.int64}


def _tensor_of(a):
    """A numpy array as a tensor: over the same memory when torch can take
    it (a type torch has, native byte order, each stride and the address a
    multiple of the element's size), else over a contiguous copy. Unsigned
    16/32/64-bit values come as int16/32/64 with the same bits."""
    a = a.view(_SAME_BITS.get(a.dtype, a.dtype))
    size = a.dtype.itemsize
    if (not a.dtype.isnative or a.ctypes.data % size
            or any(s % size for s in a.strides)):
        a = np.ascontiguousarray(a)
    return torch.from_numpy(a)


class TableDataset(torch.utils.data.IterableDataset):
    """Samples of a replay table (Engine.create_table()) as dicts of
    tensors, for DataLoader(dataset, batch_size=None).

    Each iterator (each DataLoader worker) opens the table as a trainer of
    its own: its own connection and leases. Each step samples up to `batch`
    items (Table.sample, waiting up to `timeout` seconds for the rate
    limiter: None, an hour; a TimeoutError ends nothing, it is raised) and
    yields

      "items"          torch.uint8 (n, item_size): Sample.items, the one
                       gather of the batch out of the table's memory (a copy
                       made once, in this process); the tensor is that array
                       (torch.from_numpy: no second copy)
      "keys"           torch.int64 (n,): the items' keys (uint64), same bits
      "slots"          torch.int32 (n,): their slots (uint32 < 2**30)
      "probabilities"  torch.float64 (n,): the probability each draw had
      "weights"        torch.float64 (n,): importance weights (prioritized:
                       (N P)**-beta over its largest; else 1)

    keys, slots, probabilities and weights are the Sample's own numpy
    arrays (copies the binding makes, small), shared with the tensors.
    With `dtype` (a numpy structured dtype of at most item_size bytes: each
    item's layout), each of its fields is one more entry, a view of "items"
    (no copy) when its offset and item_size are multiples of its type's size
    (np.dtype(..., align=True) lays fields out so), else a copy; unsigned
    16/32/64-bit fields come as int16/32/64 with the same bits.

    With `fields` (names of Sample fields: those of a table of transitions,
    e.g. ("obs", "action", "reward", "next_obs", "done"), or of one fed with
    an Experience stream's records), each is one more entry, the Sample's
    array as a tensor (an AttributeError at the first batch when the
    table's items have no such field).

    The batch's items stay leased to the iterator until the next batch is
    taken (the tensors never needed the lease: they are the gather's; it
    keeps the table from removing them while a training step runs, so the
    priorities sent back find them) or the iterator ends: at `limit`
    batches, when the engine stops (the iteration ends), or when it is
    closed or collected (a `for` loop left with `break` drops it).

    update_priorities(keys, priorities) sends priorities back (any trainer
    may set any item's priority), through a table handle of this process."""

    def __init__(self, engine, table, batch, timeout=None, limit=None, engine_uid=0,
                 dtype=None, fields=()):
        super().__init__()
        self.engine = engine if isinstance(engine, str) else engine.name
        self.engine_uid = engine_uid if isinstance(engine, str) else engine.engine_uid
        self.table = str(table)
        self.batch = int(batch)
        if not 1 <= self.batch <= 1024:
            raise ValueError(f"batch must be 1..1024, not {batch!r}")
        xring._timeout_ms(timeout)   # checks it
        self.timeout = timeout
        if limit is not None and int(limit) < 0:
            raise ValueError(f"limit must be None or >= 0, not {limit!r}")
        self.limit = None if limit is None else int(limit)
        self.dtype = None if dtype is None else np.dtype(dtype)
        if self.dtype is not None and self.dtype.names is None:
            raise ValueError(f"dtype must be a structured dtype (named fields), not {dtype!r}")
        reserved = {"items", "keys", "slots", "probabilities", "weights"}
        if self.dtype is not None and reserved & set(self.dtype.names):
            raise ValueError(f"dtype's fields may not be named {sorted(reserved)}")
        fields = () if fields is None else fields
        self.fields = (fields,) if isinstance(fields, str) else tuple(fields)
        known = {"obs", "next_obs", "mask", "next_mask", "action", "reward", "done",
                 "truncated", "game_id", "player_id", "turn", "seq", "t_ns", "applied",
                 "applied_by"}
        unknown = [f for f in self.fields if f not in known]
        if unknown:
            raise ValueError(f"fields: no Sample field {unknown[0]!r} (known: "
                             f"{', '.join(sorted(known))})")
        if self.dtype is not None and set(self.fields) & set(self.dtype.names):
            raise ValueError("fields and dtype name the same entry: "
                             f"{sorted(set(self.fields) & set(self.dtype.names))}")
        self._handle = None      # the table handle of update_priorities()...
        self._handle_pid = 0     # ...in this process

    # Pickled for a DataLoader worker (spawn): names and options, no handle.
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handle"], state["_handle_pid"] = None, 0
        return state

    def _open(self):
        return xring.Engine(self.engine, self.engine_uid).table(self.table)

    def _fields(self, items):
        """The dtype's fields over the (n, item_size) gather."""
        size = items.shape[1]
        if self.dtype.itemsize > size:
            raise ValueError(f"dtype is {self.dtype.itemsize} bytes, more than the table's "
                             f"{size}-byte items")
        rows = np.ndarray((items.shape[0],), dtype=self.dtype, buffer=items,
                          strides=(items.strides[0],))
        return {name: _tensor_of(rows[name]) for name in self.dtype.names}

    def _batch(self, s):
        items = s.items      # the gather: call once
        out = {"items": torch.from_numpy(items), "keys": _tensor_of(s.keys),
               "slots": _tensor_of(s.slots),
               "probabilities": torch.from_numpy(s.probabilities),
               "weights": torch.from_numpy(s.weights)}
        if self.dtype is not None:
            out.update(self._fields(items))
        for name in self.fields:
            a = getattr(s, name)
            if not a.flags.writeable:
                # The Sample's own copy (a record's fields), private to this
                # iterator: torch warns of read-only arrays, so say it is not.
                try:
                    a.setflags(write=True)
                except ValueError:
                    a = a.copy()
            out[name] = _tensor_of(a)
        return out

    def __iter__(self):
        table = self._open()
        s = None
        n = 0
        try:
            while self.limit is None or n < self.limit:
                try:
                    # The next batch is taken and the last one goes, in one
                    # request to the engine.
                    last, s = s, None
                    s = table.sample(self.batch, timeout=self.timeout, release=last)
                except xring.EngineClosedError:
                    s = None         # the engine is gone, and the leases with it
                    return
                n += 1
                yield self._batch(s)
        finally:
            if s is not None and not table.closed:
                try:
                    s.release()
                except xring.XringError:
                    pass         # the engine is gone: so are the leases
            table.close()

    def update_priorities(self, keys, priorities):
        """Sets priorities on keys (a batch's "keys": int64 tensors or numpy
        arrays, their bits the uint64 keys; priorities one each or one for
        all) through this process's handle on the table (opened on first
        use; close() closes it). Returns how many were set: keys of items
        gone from the table, and priorities negative or not a number, are
        skipped."""
        if isinstance(keys, torch.Tensor):
            keys = keys.detach().cpu().numpy()
        keys = np.asarray(keys)
        if keys.dtype == np.int64:
            keys = keys.view(np.uint64)
        if isinstance(priorities, torch.Tensor):
            priorities = priorities.detach().cpu().double().numpy()
        if self._handle is None or self._handle_pid != os.getpid():
            # A forked child's copy of the parent's handle is the parent's:
            # the child opens its own (dropping the copy closes only its fds).
            self._handle = self._open()
            self._handle_pid = os.getpid()
        return self._handle.update_priorities(keys, priorities)

    def close(self):
        """Closes update_priorities()'s handle, if this process opened one
        (iterators close their own handles as they end)."""
        h, self._handle = self._handle, None
        if h is not None and self._handle_pid == os.getpid():
            h.close()
