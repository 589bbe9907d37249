# SPDX-License-Identifier: MIT
"""xring.pettingzoo: PettingZoo's own parallel_api_test and
parallel_seed_test on the parallel env (2 and 3 players); a player
eliminated before the game ends leaves env.agents with -1 while the others
play on; many environments over one engine and one agent, stepped in any
order, each playing its own game.

PettingZoo comes from ../shared/thirdparty/python (conftest.py); where that
folder is absent the tests skip, saying so.
"""
import warnings

import numpy as np
import pytest

import xring.pettingzoo as xp

pettingzoo = pytest.importorskip(
    "pettingzoo", reason="pettingzoo is not importable (../shared/thirdparty/python absent)")


@pytest.mark.parametrize("players", [2, 3])
def test_parallel_api_test_passes(players):
    from pettingzoo.test import parallel_api_test
    env = xp.parallel_env(board=(6, 6), players=players, turn_limit=100)
    try:
        assert isinstance(env, pettingzoo.ParallelEnv)
        with warnings.catch_warnings():
            warnings.simplefilter("error")      # its warnings are failures too
            parallel_api_test(env, num_cycles=300)
    finally:
        env.close()


def test_parallel_seed_test_passes():
    from pettingzoo.test import parallel_seed_test
    made = []

    def make():
        made.append(xp.parallel_env(board=(6, 6), players=2))
        return made[-1]
    try:
        parallel_seed_test(make, num_cycles=200)
    finally:
        for env in made:
            env.close()


def legal(rng, obs):
    m = obs["action_mask"]
    return int(rng.choice(np.flatnonzero(m)))


def test_an_eliminated_player_leaves_while_the_others_play_on():
    """4 players on a small board, random legal moves until the game ends:
    the first player out leaves env.agents with reward -1 and terminated
    while the others stay; the last one standing gets +1 when it ends."""
    rng = np.random.default_rng(4)
    env = xp.parallel_env(board=(4, 4), players=4, turn_limit=400)
    try:
        seen_early_exit = False
        for episode in range(30):
            obs, _ = env.reset(seed=100 + episode)
            assert env.agents == env.possible_agents
            while env.agents:
                before = list(env.agents)
                obs, rew, term, trunc, _ = env.step({a: legal(rng, obs[a]) for a in env.agents})
                assert set(obs) == set(rew) == set(term) == set(before)
                out = [a for a in before if term[a] or trunc[a]]
                if out and env.agents:
                    seen_early_exit = True
                    assert all(term[a] and rew[a] == -1.0 for a in out)
                if not env.agents and not any(trunc.values()):
                    assert sorted(rew.values())[-1] == 1.0
            if seen_early_exit:
                break
        assert seen_early_exit, "no player was eliminated before its game ended in 30 games"
    finally:
        env.close()


def test_many_envs_over_one_engine_and_one_agent():
    """parallel_envs(6): six games, stepped in an interleaved order; each
    reset to the same seed as a lone env gives the lone env's observations
    step for step (what one env does never leaks into another's)."""
    rng = np.random.default_rng(9)
    envs = xp.parallel_envs(6, board=(6, 6), players=2, turn_limit=60)
    lone = xp.parallel_env(board=(6, 6), players=2, turn_limit=60)
    try:
        assert len({e.game_id for e in envs}) == 6
        obs = [e.reset(seed=77)[0] for e in envs]
        lone_obs, _ = lone.reset(seed=77)
        for k in range(40):
            acts = {a: legal(rng, lone_obs[a]) for a in lone.agents}
            if not lone.agents:
                break
            lone_obs, lone_rew, *_ = lone.step(acts)
            for j in rng.permutation(6):
                o, r, *_ = envs[j].step(acts)
                for a in o:
                    assert np.array_equal(o[a]["observation"], lone_obs[a]["observation"])
                    assert r[a] == lone_rew[a]
        assert k >= 10
    finally:
        for e in envs:
            e.close()
        lone.close()
