# SPDX-License-Identifier: MIT
"""Consumer groups (Engine.reader(group=...)): the members of a group split
a stream's records, each to one member; what a member holds when it closes
or dies goes to another (docs/groups.md)."""
import os
import signal
import subprocess
import textwrap

import numpy as np
import pytest

import xring
from xrtest import wait_for, child_env, info, python, reader


def _seqs(batch):
    return [(batch.ring, int(s)) for s in batch.seq]


def _contiguous(seen):
    """Each ring's seqs, once each and back to back."""
    by_ring = {}
    for ring, seq in seen:
        by_ring.setdefault(ring, []).append(seq)
    for ring, seqs in by_ring.items():
        s = np.sort(np.array(seqs))
        assert (np.diff(s) == 1).all(), f"ring {ring}: a record twice, or none had one"
    return by_ring


def test_members_split_the_stream(engine):
    with reader(engine, group="split", batch=64, min_batch=1) as a, \
            reader(engine, group="split", batch=64, min_batch=1) as b:
        got = {id(a): [], id(b): []}
        while min(len(v) for v in got.values()) < 2000:
            for r in (a, b):
                batch = r.read(timeout=5)
                assert batch is not None, "a member waited 5 s with the games running"
                assert len(batch) <= 64
                got[id(r)] += _seqs(batch)
                batch.release()
        assert not set(got[id(a)]) & set(got[id(b)]), "a record went to both members"
        _contiguous(got[id(a)] + got[id(b)])
        # The group's figures are the group thread's, which takes a
        # member's releases at its next round: the last ones may be on
        # their way still.
        total = len(got[id(a)]) + len(got[id(b)])
        s = wait_for(lambda: (lambda x: x if x["group_done"] >= total else None)(a.stats()),
                     5, "the group thread to count the last releases")
        assert s["members"] == 2
        assert s["read"] == len(got[id(a)])
        assert s["redelivered"] == 0
        # xring info shows the members as such, and the group's own reader.
        readers = info(engine)["readers"]
        assert sum(1 for r in readers if r.get("group_member")) == 2
        assert any(r["label"] == "group split" for r in readers)
        # A member that closes leaves: the other takes every record.
        a.close()
        s = b.stats()
        assert s["members"] == 1
        before = s["read"]
        for _ in range(3):
            batch = b.read(timeout=5)
            assert batch is not None
            batch.release()
        assert b.stats()["read"] > before


def test_a_killed_member_leaves_its_records(engine, run_dir):
    code = textwrap.dedent(f"""
        import sys, time, xring
        r = xring.attach({engine.name!r}, timeout=5).reader(group="kill", batch=32, min_batch=1)
        b = r.read(timeout=5)
        print(b.ring, *[int(s) for s in b.seq], flush=True)
        time.sleep(3600)
    """)
    with reader(engine, group="kill", batch=64, min_batch=1) as mine:
        child = subprocess.Popen([python(), "-c", code], env=child_env(run_dir),
                                 stdout=subprocess.PIPE, text=True)
        try:
            line = child.stdout.readline().split()
            assert line, "the child member took no batch"
            ring, held = int(line[0]), {(int(line[0]), int(s)) for s in line[1:]}
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
        seen = set()
        while not held <= seen:
            batch = mine.read(timeout=5)
            assert batch is not None, f"ring {ring}: the killed member's records never came"
            seen |= set(_seqs(batch))
            batch.release()
        s = mine.stats()
        assert s["members"] == 1
        assert s["redelivered"] == len(held)
        assert s["written"] == s["group_done"] + s["group_held"] + s["pending"] + s["dropped"]


def test_group_refusals(engine):
    e = xring.attach(engine.name, timeout=5)
    with pytest.raises(ValueError):
        e.reader(group="g", games=[1])
    with pytest.raises(ValueError):
        e.reader(group="g", history=10)
    with pytest.raises(ValueError):
        e.reader(group="no/slash")
    with pytest.raises(ValueError):
        e.reader(group="x" * 32)
    with pytest.raises(TypeError):
        e.reader(group=123)
