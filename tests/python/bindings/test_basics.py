# SPDX-License-Identifier: MIT
"""The five-line loop from the README, against a running engine."""
import os

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


def _arena_mappings(engine_name):
    """This process's mappings of the engine's arena file, from the kernel's
    own list: (lo, hi, perms) of every line naming the file's device and
    inode. Not its path: a file made unnamed (O_TMPFILE) and linked later
    keeps the name "#inode (deleted)" in the maps of whoever got its fd."""
    with open("/proc/mounts") as f:
        dirs = [ln.split()[1] for ln in f if ln.split()[2] == "hugetlbfs"]
    st = None
    for d in dirs + ["/dev/shm"]:
        try:
            st = os.stat(f"{d}/xring-{engine_name}")
            break
        except FileNotFoundError:
            pass
    assert st is not None, f"no arena file for {engine_name}"
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            if len(parts) >= 5 and parts[3] == dev and int(parts[4]) == st.st_ino:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                out.append((lo, hi, parts[1]))
    return out


def test_batch_arrays_lie_in_the_arena_mapping(engine):
    """Every byte every field array can reach is inside a shared, read-only
    mapping of the arena file: the arrays are the engine's memory."""
    with xring.attach(engine.name, timeout=5).reader(batch=64) as r:
        b = r.read(timeout=5)
        assert b is not None and len(b) > 1 and b.copied is None
        maps = _arena_mappings(engine.name)
        assert maps, "no mapping of the arena file in /proc/self/maps"
        for name in xring.FIELDS:
            a = getattr(b, name)
            first = a.ctypes.data
            last = first + sum((n - 1) * st for n, st in zip(a.shape, a.strides)) + a.itemsize - 1
            inside = [m for m in maps if m[0] <= first and last < m[1]]
            assert inside, f"{name}: [{first:#x}, {last:#x}] is in no arena mapping {maps}"
            assert inside[0][2].startswith("r-") and inside[0][2][3] == "s", (name, inside)
        b.release()


def test_reprs_say_what_they_are(engine):
    e = xring.attach(engine.name, timeout=5)
    assert "batch" not in e.info()["streams"][0]    # the probe reader's, not the stream's
    r = e.reader(batch=8, max_wait=0.5)
    assert repr(r) == ("<xring.Reader of stream experience: batch 8, min_batch 8, "
                       "max_wait 0.5 s, open>")
    b = r.read(timeout=5)
    s = b.seq
    want = f"of {len(b)} records from ring {b.ring}, seq {int(s[0])}..{int(s[-1])}, in place"
    assert want in repr(b), repr(b)
    del s
    b.release()
    assert repr(b).endswith(", released>")
    r.close()
    assert repr(r).endswith("closed>")
