# SPDX-License-Identifier: MIT
"""examples/slow_agent.py, a short variant: a slow agent (200 ms a decision)
on 1 % of the games beside a fast agent on the rest.

What it must show, and why these bounds: the slow seats' fallbacks are
counted exactly (the example exits 1 when the engine's count of the slow
agent's timeouts differs from the records that say TIMEOUT); the fast agent
gets no fallback at all; and its games never wait for the slow ones. The
last is a rate: were the fast games held to the slow games' pace, the fast
agent would answer one turn of its games per 50 ms deadline, under 1 % of
its rate alone, so a floor of 0.2 separates the two on a busy 2-CPU machine.
The issue's target (>= 0.9 of its rate alone) is measured by
perf/slow_agent.sh, not here (docs/ecosystem.md has the figures).
"""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from xrtest import UNDER_ASAN

# These run an example program (torch, numpy) against an engine: the release
# pass runs them; under the ASan pass (scripts/test.sh, 3b) they would test
# torch's allocations through ASan's, slowly, not the extension's.
pytestmark = pytest.mark.skipif(UNDER_ASAN, reason="an example's run: the release pass has it")

REPO = pathlib.Path(__file__).resolve().parents[3]
BUILD = pathlib.Path(os.environ.get("XRING_BUILD_DIR") or REPO / "build")


@pytest.mark.solo
def test_slow_agent_example(run_dir):
    env = dict(os.environ, PYTHONPATH=str(BUILD / "python"), XRING_BIN=str(BUILD / "xring"),
               XRING_RUN_DIR=str(run_dir))
    out = subprocess.run([sys.executable, str(REPO / "examples" / "slow_agent.py"), "--games",
                          "200", "--seconds", "1", "--rounds", "2", "--json"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["slow_games"] == 2 and res["think_ms"] == 200
    # The fast agent's seats do not wait for the slow one's: they almost
    # never fall back. Not never: on a loaded 2-CPU machine a preempted
    # moment longer than the 50 ms deadline costs the turns in flight.
    assert res["fast_fallbacks"] <= 0.001 * (res["fast_actions"] + res["fast_fallbacks"]), res
    assert res["slow_records"] > 0 and res["slow_timeouts_last_round"] > 0, res
    assert res["ratio_median"] >= 0.2, res
