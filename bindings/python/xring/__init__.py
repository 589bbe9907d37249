# SPDX-License-Identifier: MIT
"""xring: reinforcement-learning experience from a running engine, as numpy
arrays and torch tensors that are the ring's memory.

    import xring
    engine = xring.attach("demo")
    with engine.reader(batch=256) as reader:
        for batch in reader:
            obs = batch.torch()["obs"]      # (256, C, H, W), no copy
            ...                             # train
            batch.release()

See docs/python.md for the whole API.
"""

import os
import shutil
import time

from . import _xring
from ._array import LeasedArray
from ._errors import (EngineClosedError, EvictedError, LayoutError, NoEngineError,
                      PermissionRefusedError, PolicyError, ReleasedError,
                      TooManyBatchesHeldError, TooManyReadersError, XringError)

_xring._set_array_type(LeasedArray)

Reader = _xring.Reader
Batch = _xring.Batch

FIELDS = ("obs", "action", "reward", "done", "truncated", "mask", "game_id", "player_id",
          "turn", "seq", "t_ns")

__all__ = [
    "attach", "Engine", "Reader", "Batch", "LeasedArray", "FIELDS", "XringError",
    "NoEngineError", "PermissionRefusedError", "EngineClosedError", "EvictedError",
    "TooManyReadersError", "PolicyError", "LayoutError", "TooManyBatchesHeldError",
    "ReleasedError", "control_path",
]


def control_path(name, engine_uid=0):
    """Where engine `name`'s control socket is, or None if no engine this
    process trusts (root, this user, or engine_uid) answers there. The same
    places and checks as the C library's (xr_engine_socket)."""
    return _xring.control_path(name, engine_uid)


class Engine:
    """A running engine, by name. Cheap: readers attach on their own."""

    def __init__(self, name, engine_uid=0):
        self.name = name
        self.engine_uid = int(engine_uid)

    def __repr__(self):
        return f"xring.Engine({self.name!r})"

    def reader(self, stream="experience", batch=256, min_batch=None, max_wait=0.01,
               policy=None, games=None, players=None, min_turn=None, terminal=None,
               reward_range=None, sample_rate=None, *, sample_seed=0, spin=False,
               idle_poll=False, transport="auto", label="python"):
        """Attaches a reader to `stream`.

        batch: at most this many records per batch. min_batch: wait for this
        many (default: batch), at most max_wait seconds, then take what there
        is. policy: "lossless", "lossy" or None (the stream's). Filters, known
        to the engine (it wakes the reader per batch of records that pass):
        games / players: ids (ints, ranges, or (lo, hi) pairs); min_turn;
        terminal: True (only done/truncated records), False (only others);
        reward_range: (lo, hi); sample_rate: keep this fraction, chosen by a
        hash of the record (the same records for the same sample_seed).
        spin: spin instead of sleeping until the engine wakes the reader.
        idle_poll: while attached, keep idle CPUs polling instead of halting
        (/dev/cpu_dma_latency 0; needs root): faster wakeups on VMs, more
        power; stats()["idle_poll"] says whether it took.
        """
        term = None if terminal is None else ("only" if terminal else "none")
        if min_turn is not None and not 0 <= int(min_turn) <= 0xFFFFFFFF:
            raise ValueError(f"min_turn must be 0..{0xFFFFFFFF}, not {min_turn}")
        if sample_rate is not None and not 0 < float(sample_rate) <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], not {sample_rate}")
        return _xring.open_reader(
            self.name, stream, batch, min_batch or 0, max_wait, policy,
            _ranges(games, "games"), _ranges(players, "players"), int(min_turn or 0), term,
            None if reward_range is None else tuple(float(x) for x in reward_range),
            float(sample_rate or 0), int(sample_seed), bool(spin), transport, label,
            bool(idle_poll), self.engine_uid)

    def info(self):
        """What the engine's arena says: streams, their shapes and policies,
        and the control socket. A reader is attached for the moment this
        takes (the engine checks who asks)."""
        with self.reader(batch=1, max_wait=0, label="xring-info") as r:
            facts = r.facts()
            stats = r.stats()
        facts.pop("batch", None)  # this probe's, not the stream's
        return {"name": self.name, "control": control_path(self.name, self.engine_uid),
                "streams": [dict(facts, written_since_attach=stats["written"])]}


def _ranges(ids, what):
    """ints, ranges and (lo, hi) pairs into a list of (lo, hi), merged."""
    if ids is None:
        return None
    if isinstance(ids, tuple) and len(ids) == 2:
        # (lo, hi) or the ids lo and hi? Make the caller say.
        raise ValueError(f"{what}={ids!r} is ambiguous: write [{ids[0]}, {ids[1]}] for two ids, "
                         f"or [({ids[0]}, {ids[1]})] or range({ids[0]}, {ids[1]} + 1) for a range")
    if isinstance(ids, (int, range)):
        ids = [ids]
    out = []
    for x in ids:
        if isinstance(x, range):
            if x.step != 1 or len(x) == 0:
                raise ValueError(f"{what}: only non-empty ranges with step 1")
            out.append((x.start, x.stop - 1))
        elif isinstance(x, tuple):
            lo, hi = x
            out.append((int(lo), int(hi)))
        else:
            out.append((int(x), int(x)))
    out.sort()
    merged = []
    for lo, hi in out:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def attach(name, timeout=None, engine_uid=0):
    """The engine called `name`. With timeout (seconds), waits that long for
    it to come up; raises NoEngineError if it does not. The engine must be
    run by root or by this user, or by engine_uid when given (checked at
    every attach: the socket's peer and the arena's owner)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if control_path(name, engine_uid) is not None:
            return Engine(name, engine_uid)
        if deadline is None or time.monotonic() >= deadline:
            raise NoEngineError(
                f"attach: no engine '{name}' is running (start one with `xring engine "
                f"--name {name}`)", -2, "ENOENT", "no engine of that name")
        time.sleep(0.01)


def _find_xring_binary():
    """The xring program: $XRING_BIN, then PATH, then the build tree."""
    env = os.environ.get("XRING_BIN")
    if env:
        return env
    found = shutil.which("xring")
    if found:
        return found
    here = os.path.dirname(os.path.abspath(__file__))
    for up in ("../../..", "../../../build", "../.."):
        cand = os.path.normpath(os.path.join(here, up, "xring"))
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None
