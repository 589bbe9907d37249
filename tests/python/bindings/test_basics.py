# SPDX-License-Identifier: MIT
"""The five-line loop from the README, against a running engine."""
import numpy as np
import torch

import xring


def test_readme_loop(engine):
    seen = 0
    with xring.attach(engine.name, timeout=5).reader(batch=256) as reader:
        for batch in reader:
            t = batch.torch()
            assert t["obs"].shape == (len(batch), 9, 20, 20)
            assert t["obs"].dtype == torch.uint8
            loss = t["obs"].float().mean()          # "train"
            assert torch.isfinite(loss)
            batch.release()
            seen += len(batch)
            if seen >= 5000:
                break
    assert seen >= 5000


def test_batch_is_a_view_of_the_ring(engine):
    with xring.attach(engine.name, timeout=5).reader(batch=64) as r:
        b = r.read(timeout=5)
        assert b is not None and b.copied is None
        ring = r.ring_buffer(b.ring)
        lo = ring.ctypes.data
        hi = lo + ring.nbytes
        for name in xring.FIELDS:
            a = getattr(b, name)
            assert np.shares_memory(a, ring), name
            assert lo <= a.ctypes.data < hi, name
        assert b.torch()["obs"].data_ptr() == b.obs.ctypes.data
        b.release()
