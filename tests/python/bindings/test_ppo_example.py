# SPDX-License-Identifier: MIT
"""examples/ppo_grid.py learns: PPO acting for 1,024 seats through xring.gym
(one forward pass a step for all of them) on CPU, against the engine's
built-in policy (uniform legal draws), 4x4 boards, turn limit 40.

Its budget: 60 updates of 16 steps (983,040 environment steps), about 20 s
on this 2-CPU machine. Then held-out seeds (10^9 on, never trained on), one
episode per seat, with the trained policy's draws and with uniform legal
draws. Measured on seeds 1..3 (docs/ecosystem.md): the trained policy's
mean episode reward +0.37..+0.39, uniform draws' -0.02..-0.03 (a draw is 0; a win
+1, a loss -1); the margin +0.39..+0.43. The test asks for a margin of at
least 0.2 and a trained mean above 0.15: more than four standard errors
of the uniform mean over 1,024 episodes (at most 1/sqrt(1024) = 0.031 a
standard error) in both, far below what it learns.
"""
import json
import os
import pathlib
import subprocess

import pytest

from xrtest import UNDER_ASAN

# These run an example program (torch, numpy) against an engine: the release
# pass runs them; under the ASan pass (scripts/test.sh, 3b) they would test
# torch's allocations through ASan's, slowly, not the extension's.
pytestmark = pytest.mark.skipif(UNDER_ASAN, reason="an example's run: the release pass has it")

REPO = pathlib.Path(__file__).resolve().parents[3]
BUILD = pathlib.Path(os.environ.get("XRING_BUILD_DIR") or REPO / "build")


def test_ppo_beats_the_builtin_policy(run_dir):
    env = dict(os.environ, PYTHONPATH=str(BUILD / "python"), XRING_BIN=str(BUILD / "xring"),
               XRING_RUN_DIR=str(run_dir))
    out = subprocess.run(["/usr/bin/python3", str(REPO / "examples" / "ppo_grid.py"), "--json",
                          "--seed", "1"], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["envs"] >= 1000 and res["env_steps"] >= 900_000
    assert res["margin"] >= 0.2, res
    assert res["trained_mean_reward"] >= 0.15, res
