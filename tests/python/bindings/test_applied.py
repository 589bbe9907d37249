# SPDX-License-Identifier: MIT
"""Batch.applied and Batch.applied_by: the action a record's player's
previous step applied and who chose it. The strided views hold what the C
reader (xr_exp_view_init, through xr_record_tool decode) reads in the same
bytes; consecutive records of a (game, player) pair into transitions (an
episode's first record: -1, NONE; then the record before's action, by
POLICY); xring.SOURCES names the schema's ActionSource values."""
import json
import re
import subprocess

import numpy as np

import xring
from conftest import BUILD, REPO
from xrtest import reader

TOOL = BUILD / "tests" / "xr_record_tool"


def _layout(facts):
    shape = "x".join(str(d) for d in facts["obs_shape"])
    dtype = "u8" if facts["obs_dtype"] == "uint8" else "f32"
    out = subprocess.run([str(TOOL), "layout", f"--dtype={dtype}", f"--shape={shape}",
                          f"--mask-len={facts['mask_len']}"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def test_batch_fields_are_what_the_c_reader_reads(engine, tmp_path):
    assert TOOL.is_file(), f"build xr_record_tool: {TOOL}"
    with reader(engine, batch=64) as r:
        facts = r.facts()
        lay = _layout(facts)
        assert lay["size"] == facts["record_bytes"]
        b = r.read(timeout=5)
        assert b is not None and b.copied is None and len(b) > 8
        applied, by = b.applied, b.applied_by
        assert applied.dtype == np.int32 and by.dtype == np.uint8
        assert applied.shape == by.shape == (len(b),)
        ring = r.ring_buffer(b.ring)
        base = ring.ctypes.data
        for i in range(len(b)):
            # The record's bytes, from where its seq lies in the ring.
            start = b.seq[i:].ctypes.data - lay["off_seq"] - base
            path = tmp_path / f"r{i}.bin"
            path.write_bytes(ring[start:start + lay["size"]].tobytes())
            d = json.loads(subprocess.run([str(TOOL), "decode", str(path)], check=True,
                                          capture_output=True, text=True).stdout)
            assert d["seq"] == int(b.seq[i])
            assert (d["applied"], d["applied_by"]) == (int(applied[i]), int(by[i])), i
            assert d["action"] == int(b.action[i])
        b.release()


def test_consecutive_records_pair(engines):
    # Short episodes on small boards: many firsts and ends in a few thousand records.
    e = engines("--board", "4x4", "--turn-limit", "40", games=20)
    last = {}
    paired = firsts = 0
    with reader(e, batch=512) as r:
        while paired < 3000:
            b = r.read(timeout=5)
            assert b is not None
            rows = zip(b.game_id.tolist(), b.player_id.tolist(), b.turn.tolist(),
                       b.action.tolist(), b.done.tolist(), b.truncated.tolist(),
                       b.applied.tolist(), b.applied_by.tolist())
            for g, p, turn, action, done, trunc, applied, by in rows:
                prev = last.get((g, p))
                last[(g, p)] = (turn, action, done or trunc)
                if turn == 0 or (prev and prev[2]):
                    assert (turn, applied, xring.SOURCES[by]) == (0, -1, "NONE"), (g, p)
                    firsts += 1
                elif prev:   # (the reader came mid-episode: nothing before it)
                    assert turn == prev[0] + 1, (g, p, turn, prev)
                    assert (applied, xring.SOURCES[by]) == (prev[1], "POLICY"), (g, p, turn)
                    paired += 1
            b.release()
    assert firsts > 20


def test_sources_are_the_schemas():
    text = (REPO / "schema" / "experience.fbs").read_text()
    body = re.search(r"enum ActionSource : ubyte \{(.*?)\}", text, re.S).group(1)
    values = {name: int(v) for name, v in re.findall(r"^\s*(\w+) = (\d+),", body, re.M)}
    assert values == {name: v for v, name in enumerate(xring.SOURCES)}
    assert "applied" in xring.FIELDS and "applied_by" in xring.FIELDS
