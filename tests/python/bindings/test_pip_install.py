# SPDX-License-Identifier: MIT
"""The package installs on its own with pip, offline, with no libxring
installed: `pip install --no-build-isolation --no-index ./bindings/python`
into a venv that sees Debian's numpy/torch, then reads from an engine and
creates a game in it (the games API's client is compiled in too)."""
import os
import subprocess

from conftest import REPO

SCRIPT = r"""
import sys, xring, numpy as np
assert "site-packages" in xring.__file__, xring.__file__
with xring.attach(sys.argv[1], timeout=5).reader(batch=32) as r:
    b = r.read(timeout=5)
    assert b is not None and len(b) > 0
    assert np.shares_memory(b.obs, r.ring_buffer(b.ring))
    print("read", len(b))
with xring.attach(sys.argv[1]) as engine:
    ids = engine.create_games(1, seed=5)
    assert [g["seed"] for g in engine.games() if g["id"] == ids[0]] == [5]
"""


def test_pip_install_offline(tmp_path, engine):
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-build-isolation", "--no-index",
         str(REPO / "bindings" / "python")],
        capture_output=True, text=True)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(venv / "bin" / "python"), "-c", SCRIPT, engine.name],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("read ")
