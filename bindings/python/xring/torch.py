# SPDX-License-Identifier: MIT
"""xring for torch: batches as tensors without copies, and a dataset.

    dataset = xring.torch.ExperienceDataset("demo", batch=256)
    for b in torch.utils.data.DataLoader(dataset, batch_size=None):
        b["obs"]    # torch.uint8 (256, C, H, W)
"""

import numpy as np
import torch
import torch.utils.data
from torch.utils.dlpack import from_dlpack

import xring
from . import _xring

__all__ = ["tensors", "ExperienceDataset"]

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
