# SPDX-License-Identifier: MIT
"""xring.gym: the Gymnasium single and vector environments over xring.

Gymnasium's own checker on the single env (its seed determinism included);
the vector env element for element against N single envs stepped with the
same seeds and actions, across episode ends (NEXT_STEP autoreset); the
autoreset mode itself; self-play seats; copies and views of the ring; an
engine named instead of started; close() stopping the engine it started;
and the adapters without gymnasium installed (duck-typed).

Gymnasium comes from ../shared/thirdparty/python (conftest.py); where that
folder is absent the tests that need it skip, saying so.
"""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import xring
import xring.gym as xg
from conftest import PYDIR, XRING_BIN

gymnasium = pytest.importorskip(
    "gymnasium", reason="gymnasium is not importable (../shared/thirdparty/python absent)")

BOARD = (6, 6)


def legal_actions(rng, mask):
    """A random legal action per row of mask."""
    mask = np.asarray(mask)
    u = rng.random(mask.shape) * (mask != 0)
    return u.argmax(axis=1)


def test_check_env_passes_on_the_single_env():
    """gymnasium.utils.env_checker.check_env on gymnasium.make("xring/Grid-v0"):
    spaces, reset and step return types, reset(seed=) determinism, step
    determinism, close twice. Its warnings are failures too."""
    from gymnasium.utils.env_checker import check_env
    env = gymnasium.make("xring/Grid-v0", board=BOARD)
    try:
        assert env.unwrapped.spec is not None and env.unwrapped.spec.nondeterministic is False
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


def test_single_env_api_and_mask():
    env = xg.make(board=BOARD, players=3)
    try:
        obs, info = env.reset(seed=7)
        assert obs.shape == (9,) + BOARD and obs.dtype == np.uint8 and obs in env.observation_space
        mask = info["action_mask"]
        assert mask.shape == (env.action_space.n,) == (BOARD[0] * BOARD[1] * 4 + 1,)
        assert mask[-1] == 1                                  # the no-op is always legal
        obs2, info2 = env.reset(seed=7)
        assert np.array_equal(obs, obs2) and np.array_equal(mask, info2["action_mask"])
        # An illegal action is played as the fallback and counted.
        illegal = int(np.flatnonzero(mask == 0)[0])
        _, _, _, _, info = env.step(illegal)
        assert info["fallback"] is True
        _, _, _, _, info = env.step(env.action_space.n - 1)   # the no-op: taken
        assert info["fallback"] is False
        with pytest.raises(ValueError, match="one integer"):
            env.step([1, 2])
    finally:
        env.close()


@pytest.mark.parametrize("copy", [True, False])
def test_vector_env_matches_single_envs(copy):
    """make_vec(4) reset(seed=s) against 4 single envs reset(seed=s + i),
    the same random legal actions, 400 steps (turn limit 40: ten episodes
    and more each): the same observations, masks, rewards, terminations and
    truncations, element for element. At an episode's end the vector env
    starts the next episode itself (NEXT_STEP); the single env is reset to
    that episode's seed (xring.gym.episode_seed)."""
    n, seed, steps = 4, 1000, 400
    rng = np.random.default_rng(5)
    vec = xg.make_vec(n, board=BOARD, turn_limit=40, copy=copy)
    singles = [xg.make(board=BOARD, turn_limit=40) for _ in range(n)]
    try:
        assert vec.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP
        assert isinstance(vec, gymnasium.vector.VectorEnv)
        obs, infos = vec.reset(seed=seed)
        episode = [0] * n
        for i, env in enumerate(singles):
            o, inf = env.reset(seed=seed + i)
            assert np.array_equal(obs[i], o) and np.array_equal(infos["action_mask"][i],
                                                                inf["action_mask"])
        ended = np.zeros(n, bool)
        ends = 0
        for t in range(steps):
            actions = legal_actions(rng, infos["action_mask"])
            obs, rew, term, trunc, infos = vec.step(actions)
            for i, env in enumerate(singles):
                if ended[i]:
                    episode[i] += 1
                    o, inf = env.reset(seed=xg.episode_seed(seed + i, episode[i]))
                    r, te, tr = 0.0, False, False
                else:
                    o, r, te, tr, inf = env.step(int(actions[i]))
                where = f"step {t} env {i} episode {episode[i]}"
                assert np.array_equal(obs[i], o), where
                assert np.array_equal(infos["action_mask"][i], inf["action_mask"]), where
                assert (rew[i], term[i], trunc[i]) == (r, te, tr), where
            ended = term | trunc
            ends += int(ended.sum())
        assert ends >= n * 8, f"only {ends} episode ends"
        st = vec.stats()
        assert st["copies"] + st["views"] >= steps - ends   # a step of pending envs only: none
    finally:
        vec.close()
        for env in singles:
            env.close()


def test_next_step_autoreset_ignores_the_action():
    """The step after an episode's end ignores that environment's action
    (an out-of-range one here costs nothing: no fallback) and returns the
    first observation of the next episode, reward 0, flags clear."""
    vec = xg.make_vec(2, board=BOARD, turn_limit=5)
    try:
        _, infos = vec.reset(seed=3)
        rng = np.random.default_rng(1)
        for _ in range(5):
            obs, rew, term, trunc, infos = vec.step(legal_actions(rng, infos["action_mask"]))
        assert (term | trunc).all(), "turn limit 5: every episode ends by the 5th step"
        before = vec.stats()["replaced"]
        obs, rew, term, trunc, infos = vec.step(np.array([10**6, 10**6]))
        assert not (term | trunc).any() and (rew == 0).all()
        fresh = xg.make(board=BOARD, turn_limit=5)
        try:
            for i in range(2):
                o, _ = fresh.reset(seed=xg.episode_seed(3 + i, 1))
                assert np.array_equal(obs[i], o)
        finally:
            fresh.close()
        obs, *_ = vec.step(legal_actions(rng, infos["action_mask"]))
        assert vec.stats()["replaced"] == before
    finally:
        vec.close()


def test_self_play_seats_share_games():
    """opponent="self": environments 2g and 2g+1 are the two players of one
    game: their episodes end at the same step, and a decided game gives one
    +1 and one -1."""
    vec = xg.make_vec(8, board=(4, 4), opponent="self", turn_limit=200)
    try:
        assert len(vec.game_ids) == 4
        _, infos = vec.reset(seed=11)
        rng = np.random.default_rng(2)
        decided = 0
        for _ in range(600):
            _, rew, term, trunc, infos = vec.step(legal_actions(rng, infos["action_mask"]))
            end = term | trunc
            assert np.array_equal(end[0::2], end[1::2])
            for g in np.flatnonzero(term[0::2]):
                assert sorted(rew[2 * g:2 * g + 2].tolist()) == [-1.0, 1.0]
                decided += 1
        assert decided > 0
    finally:
        vec.close()
    with pytest.raises(ValueError, match="players=2"):
        xg.make_vec(6, opponent="self", players=3)
    with pytest.raises(ValueError, match="multiple"):
        xg.make_vec(3, opponent="self")


def test_copy_false_hands_out_views_until_the_next_step():
    """copy=False: a step whose records came in one batch, in environment
    order, hands out views of the ring (counted), which end at the next
    step; copy=True hands out arrays the caller keeps."""
    vec = xg.make_vec(16, board=BOARD, copy=False)
    try:
        _, infos = vec.reset(seed=1)
        rng = np.random.default_rng(3)
        kept = None
        for _ in range(200):
            obs, _, _, _, infos = vec.step(legal_actions(rng, infos["action_mask"]))
            if isinstance(obs, xring.LeasedArray) and kept is None:
                kept = obs
                snapshot = np.array(obs)
        assert vec.stats()["views"] > 0, vec.stats()
        assert kept is not None
        with pytest.raises(xring.ReleasedError):
            kept.sum()               # the next step ended it
        assert snapshot.shape == (16, 9) + BOARD
    finally:
        vec.close()
    vec = xg.make_vec(4, board=BOARD, copy=True)
    try:
        obs, infos = vec.reset(seed=1)
        first = obs
        for _ in range(5):
            obs, _, _, _, infos = vec.step(legal_actions(rng, infos["action_mask"]))
        assert first is not obs and vec.stats()["views"] == 0
        assert np.asarray(first).sum() > 0          # still the caller's
    finally:
        vec.close()


def test_named_engine_and_close_stops_its_own(engines):
    """engine=NAME: the games are created on it (and destroyed on close);
    engine=None: close() stops the engine the vector env started."""
    e = engines("--board", "6x6", games=0, action_timeout_ms=5000)
    with xring.attach(e.name) as eng:
        vec = xg.make_vec(4, board=BOARD, engine=e.name)
        ids = vec.game_ids
        assert {g["id"] for g in eng.games()} >= set(ids)
        vec.reset(seed=0)
        vec.close()
        assert not {g["id"] for g in eng.games()} & set(ids)
    vec = xg.make_vec(2, board=BOARD)
    own = vec._own.proc
    name = vec.engine_name
    vec.close()
    assert own.poll() is not None
    assert xring.control_path(name) is None
    vec.close()                      # twice: allowed


def test_without_gymnasium_the_api_is_duck_typed(tmp_path):
    """Where gymnasium is not importable, xring.gym still imports and its
    envs work, with its own Box and Discrete."""
    code = (
        "import sys, numpy as np\n"
        "sys.modules['gymnasium'] = None\n"
        "import xring.gym as xg\n"
        "assert xg.gymnasium is None\n"
        "v = xg.make_vec(2, board=(5, 5))\n"
        "o, inf = v.reset(seed=1)\n"
        "assert isinstance(v.single_observation_space, xg.Box)\n"
        "assert isinstance(v.single_action_space, xg.Discrete)\n"
        "assert v.single_observation_space.contains(o[0])\n"
        "a = np.array([np.flatnonzero(m)[0] for m in inf['action_mask']])\n"
        "o, r, te, tr, inf = v.step(a)\n"
        "assert o.shape == (2, 9, 5, 5)\n"
        "v.close()\n"
        "print('ok')\n")
    env = dict(os.environ, PYTHONPATH=str(PYDIR), XRING_BIN=str(XRING_BIN))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_docs_examples_run(tmp_path):
    """The Python examples at the top of docs/ecosystem.md, as written."""
    import re
    from conftest import REPO, THIRDPARTY
    text = (REPO / "docs" / "ecosystem.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)[:3]
    assert len(blocks) == 3
    env = dict(os.environ, PYTHONPATH=f"{PYDIR}:{THIRDPARTY}", XRING_BIN=str(XRING_BIN))
    for code in blocks:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, (code, out.stderr)


# ---- what the red team found (each failed before its fix) -------------------

@pytest.mark.solo
def test_a_short_engine_deadline_falls_back_instead_of_hanging(engines):
    """A named engine with its default 100 ms deadline and a user who thinks
    300 ms between steps: the games step on their fallbacks meanwhile (a
    batch then holds several records of a seat: the newest counts), and
    step() says so in infos["fallback"] instead of waiting out its timeout."""
    import time
    e = engines("--board", "6x6", "--ring-size", "64M", games=64, action_timeout_ms=100)
    vec = xg.make_vec(2, board=BOARD, engine=e.name, step_timeout=5)
    try:
        _, infos = vec.reset(seed=1)
        for _ in range(3):
            time.sleep(0.3)          # the user's think time: past the engine's deadline
            t0 = time.monotonic()
            _, _, _, _, infos = vec.step(np.full(2, 36 * 4))   # the no-op
            assert time.monotonic() - t0 < 2
            assert infos["fallback"].all()
    finally:
        vec.close()


def test_many_players_fit_the_ring_of_its_own_engine():
    """2,000 seats of 8-player games (every player writes a record a turn,
    two at a reset): the engine make_vec starts has a ring for all of them."""
    vec = xg.make_vec(2000, board=(8, 8), players=8, seed=0, step_timeout=20)
    try:
        for k in range(3):
            vec.reset(seed=k)
            for _ in range(2):
                vec.step(np.full(2000, 8 * 8 * 4))
        assert vec.stats()["evictions"] == 0
    finally:
        vec.close()


def test_a_forked_child_cannot_touch_the_parents_games():
    """A forked child that resets the env is refused before anything is
    sent, and one that exits (closing the env on the way out) leaves the
    parent's games and engine alone."""
    vec = xg.make_vec(2, board=BOARD)
    try:
        _, infos = vec.reset(seed=1)
        ids = vec.game_ids
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                vec.reset(seed=2)
                code = 3
            except RuntimeError:
                pass
            vec.close()
            os._exit(code)
        _, st = os.waitpid(pid, 0)
        assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0
        assert vec._own.proc.poll() is None
        with xring.attach(vec.engine_name) as eng:
            assert {g["id"] for g in eng.games()} >= set(ids)
        _, _, _, trunc, _ = vec.step(np.full(2, 36 * 4))
        assert not trunc.any()
    finally:
        vec.close()


def test_refusals_say_what_to_do(engines):
    e = engines("--board", "6x6", games=0, action_timeout_ms=5000)
    with pytest.raises(ValueError, match="engine of the vector env's own"):
        xg.make_vec(2, board=BOARD, engine=e.name, copy=False)
    with pytest.raises(ValueError, match="step_timeout"):
        xg.make_vec(2, board=BOARD, step_timeout=float("nan"))
    vec = xg.make_vec(4, board=BOARD, opponent="self")
    try:
        with pytest.raises(ValueError, match="reset together"):
            vec.reset(seed=1, options={"reset_mask": [True, False, False, False]})
        with pytest.raises(ValueError, match="2..64|2\\*\\*64"):
            vec.reset(seed=[1, 2, -3, 4])
        vec.reset(seed=1, options={"reset_mask": [False, False, True, True]})
    finally:
        vec.close()
    with pytest.raises(RuntimeError, match="closed"):
        vec.reset(seed=1)
