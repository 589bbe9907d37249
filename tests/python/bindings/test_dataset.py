# SPDX-License-Identifier: MIT
"""xring.torch.ExperienceDataset under torch's DataLoader, and the float32
observations of an engine run with --obs-dtype f32."""
import subprocess
import textwrap

import numpy as np
import torch
from torch.utils.data import DataLoader

import xring
import xring.torch as xt
from xrtest import XRING_BIN, child_env, info, python, reader, wait_for

SHAPES = {"obs": (9, 20, 20), "mask": (1601,)}
DTYPES = {"obs": torch.uint8, "action": torch.int32, "reward": torch.float32,
          "done": torch.bool, "truncated": torch.bool, "mask": torch.uint8,
          "game_id": torch.int32, "player_id": torch.int32, "turn": torch.int32,
          "seq": torch.int64, "t_ns": torch.int64, "applied": torch.int32,
          "applied_by": torch.uint8}


def _check_batch(d, n=None):
    """A batch as a dict of tensors: n records, or 1..batch if n is None."""
    assert isinstance(d, dict) and set(d) == set(xring.FIELDS)
    n = n or len(d["seq"])
    assert n > 0
    for k, v in d.items():
        assert isinstance(v, torch.Tensor), k
        assert v.dtype == DTYPES[k], (k, v.dtype)
        assert tuple(v.shape) == (n,) + SHAPES.get(k, ()), (k, v.shape)
    seq = d["seq"]
    assert bool((seq[1:] - seq[:-1] == 1).all()), "a batch's records are consecutive"


def test_dataloader_in_process(engines):
    e = engines("--tick-ms", "5")
    ds = xt.ExperienceDataset(e.name, limit=5, batch=32)
    out = list(DataLoader(ds, batch_size=None, num_workers=0))
    assert len(out) == 5
    for d in out:
        _check_batch(d)
        assert len(d["seq"]) <= 32
    seqs = torch.cat([d["seq"] for d in out])
    # In order, none twice, none missed (lossless), from tensors that outlive
    # the iteration and keep reading their records.
    assert seqs.tolist() == list(range(int(seqs[0]), int(seqs[0]) + len(seqs)))
    assert len(seqs) > 5
    # Those tensors hold their leases (and so the finished reader's slot): on
    # a lossless stream the engine would soon wait for them. Let them go.
    del out, seqs, d
    # An Engine works as well as a name; limit=None reads on.
    ds2 = xt.ExperienceDataset(xring.attach(e.name, timeout=5), batch=8)
    it = iter(DataLoader(ds2, batch_size=None))
    for _ in range(20):
        d = next(it)
        _check_batch(d)
        assert len(d["seq"]) <= 8
    del it


HOLDER = textwrap.dedent("""
    import json, subprocess, sys, time
    import xring
    name, xring_bin, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
    r = xring.attach(name, timeout=10).reader(batch=256, max_wait=0.001)
    print("attached", flush=True)
    # Not reading yet: the lossless engine fills the ring and pauses. Once
    # `want` readers are attached (or after 30 s), read: the engine goes on.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            out = subprocess.run([xring_bin, "info", name, "--json"], capture_output=True,
                                 text=True, timeout=10).stdout
            rds = json.loads(out)["streams"][0]["rings"][0]["readers"]
            if sum(rd["state"] == "active" for rd in rds) >= want:
                break
        except Exception:
            pass
        time.sleep(0.01)
    try:
        while True:
            b = r.read(timeout=1)
            if b is not None:
                b.release()
    except xring.EngineClosedError:
        pass
""")


def test_dataloader_two_workers_broadcast(engines, run_dir):
    e = engines("--tick-ms", "5", ring_size="2M")
    limit = 4
    # Another process holds the engine (a lossless reader that does not read
    # until both workers are attached), so that they attach at the same
    # record. (A process, not a thread: DataLoader forks its workers.)
    holder = subprocess.Popen([python(), "-c", HOLDER, e.name, str(XRING_BIN), "3"],
                              env=child_env(run_dir), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "attached"
        wait_for(lambda: info(e)["full_waits"] > 0, 10, "the engine to pause for its reader")
        ds = xt.ExperienceDataset(e.name, limit=limit, batch=32)
        out = list(DataLoader(ds, batch_size=None, num_workers=2, timeout=60))
    finally:
        holder.kill()
        holder.wait()
    # Each worker stops at its limit, and the loader ends.
    assert len(out) == 2 * limit
    for d in out:
        _check_batch(d)
        assert len(d["seq"]) <= 32
    # Batches alternate between the workers; each worker is a reader of its
    # own and sees every record from where it attached: the same ones (in
    # batches that may be cut differently).
    w0, w1 = ({k: torch.cat([d[k] for d in out[w::2]]) for k in ("seq", "obs", "game_id")}
              for w in (0, 1))
    for w in (w0, w1):
        assert bool((w["seq"][1:] - w["seq"][:-1] == 1).all())
    assert int(w0["seq"][0]) == int(w1["seq"][0]), "the workers did not start together"
    n = min(len(w0["seq"]), len(w1["seq"]))
    for k in w0:
        assert torch.equal(w0[k][:n], w1[k][:n]), f"the workers saw different {k}"


def test_dataset_ends_with_the_engine(engines):
    n = 3000
    e = engines("--tick-ms", "5", "--count", str(n))
    ds = xt.ExperienceDataset(e.name, batch=100)
    # Copies: tensors kept alive would hold their leases, and a lossless
    # writer waits for those.
    got = [d["seq"].clone() for d in DataLoader(ds, batch_size=None)]
    seqs = torch.cat(got).tolist()
    assert seqs == list(range(seqs[0], n))


def test_f32_observations_are_float32_views(engines):
    e = engines("--obs-dtype", "f32", "--tick-ms", "5", games=10)
    r = reader(e, batch=16)
    facts = r.facts()
    assert facts["obs_dtype"] == "float32"
    b = r.read(timeout=5)
    assert b is not None and b.copied is None
    obs = b.obs
    assert obs.dtype == np.float32 and obs.shape == (len(b), 9, 20, 20)
    # A view of the ring, one record apart: no copy.
    ring = r.ring_buffer(b.ring)
    assert np.shares_memory(obs, ring)
    assert obs.strides[1:] == (1600, 80, 4)
    assert obs.strides[0] >= facts["record_bytes"] and obs.strides[0] % 64 == 0
    t = b.torch()["obs"]
    assert t.dtype == torch.float32 and t.data_ptr() == obs.ctypes.data
    assert torch.equal(t, torch.from_numpy(obs.copy()))
    # Raw counts: whole numbers, not scaled to [0, 1].
    values = obs.copy()
    assert (values == np.round(values)).all() and values.max() > 1
    b.release()


def _by_key(e, dtype_want, n=1000):
    """(game, player, turn) -> observation for the engine's first records."""
    r = reader(e, batch=64, max_wait=0.02)
    out = {}
    while len(out) < n:
        b = r.read(timeout=5)
        assert b is not None
        assert b.obs.dtype == dtype_want
        for g, p, t, o in zip(b.game_id.tolist(), b.player_id.tolist(), b.turn.tolist(),
                              b.obs.copy()):
            out[(g, p, t)] = o
        b.release()
    r.close()
    return out


def test_f32_and_u8_engines_agree(engines):
    """The same games (same seed) with u8 and f32 observations: u8 is
    min(f32, 255), record by record."""
    args = ("--tick-ms", "5", "--seed", "7")
    f32 = _by_key(engines("--obs-dtype", "f32", *args, games=10), np.float32)
    u8 = _by_key(engines("--obs-dtype", "u8", *args, games=10), np.uint8)
    common = set(f32) & set(u8)
    assert len(common) > 200
    for k in common:
        assert np.array_equal(np.minimum(f32[k], 255).astype(np.uint8), u8[k]), k
