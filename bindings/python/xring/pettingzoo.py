# SPDX-License-Identifier: MIT
"""PettingZoo parallel environments over xring: one grid game, every player
an agent ("player_0", "player_1", ...), each one a seat held through shared
memory.

    import xring.pettingzoo
    env = xring.pettingzoo.parallel_env(board=(8, 8), players=4)
    observations, infos = env.reset(seed=42)
    while env.agents:
        actions = {a: policy(observations[a]) for a in env.agents}
        observations, rewards, terminations, truncations, infos = env.step(actions)
    env.close()

Observations follow PettingZoo's convention for masked actions:
{"observation": (9, H, W) array, "action_mask": (A,) int8}. A player
eliminated before the game ends is terminated (reward -1) and leaves
env.agents; the game ends when one player is left (+1) or at its turn limit
(every player left truncated). Like every ParallelEnv, it does not reset
itself: call reset() when env.agents is empty.

parallel_envs(n, ...) gives n such environments at once, their games on one
engine and their seats held by one agent (an engine hosts few agents, many
games): each is stepped on its own, in any order.

With engine=None an engine of its own is started, and stopped when the
last environment using it is closed; engine="NAME" uses a running one (its
--action-timeout-ms must be longer than the time between two steps).
"""
import numpy as np

from ._seats import OwnEngine, Seats, dtype_name
from .gym import _box, _discrete, _engine_of, _spaces

try:  # pettingzoo is optional: without it the class keeps the same API
    from pettingzoo import ParallelEnv as _ParallelBase
except ImportError:  # pragma: no cover - exercised where pettingzoo is absent
    _ParallelBase = object

__all__ = ["parallel_env", "parallel_envs", "XringParallelEnv"]


class _Shared:
    """One engine's games and one agent, for n environments; closed with
    the last of them."""

    def __init__(self, n, board, players, obs_dtype, seed, engine, turn_limit, step_timeout):
        self.own = None
        self.users = n
        eng = _engine_of(engine)
        if eng is None:
            self.own = OwnEngine(board, players, obs_dtype, n * players)
            eng = self.own.engine
        try:
            self.seats = Seats(eng, n, players, players, board, obs_dtype,
                               0 if seed is None else int(seed), "xring.pettingzoo",
                               turn_limit, fresh=self.own is not None)
            self.seats.sync(timeout=step_timeout)
        except BaseException:
            self.release(all_=True)
            raise

    def release(self, all_=False):
        self.users = 0 if all_ else self.users - 1
        if self.users > 0:
            return
        if getattr(self, "seats", None) is not None:
            self.seats.close()
            self.seats = None
        if self.own is not None:
            self.own.close()
            self.own = None


class XringParallelEnv(_ParallelBase):
    """One grid game of an xring engine as a PettingZoo ParallelEnv (see the
    module's documentation). Use parallel_env() or parallel_envs()."""

    metadata = {"name": "xring_grid_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, _shared, _game, render_mode=None, step_timeout=60.0):
        if render_mode is not None:
            raise ValueError("xring.pettingzoo renders nothing (render_mode=None)")
        self.render_mode = None
        self._sh = _shared
        self._g = _game
        s = _shared.seats
        k = s.spg
        self._seat0 = _game * k
        self.step_timeout = float(step_timeout)
        self.possible_agents = [f"player_{p}" for p in range(k)]
        self.agents = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        obs_space = _box(s.obs.shape[1:], s.obs.dtype)
        n_actions = s.mask.shape[1]
        if _spaces is not None:
            mask_space = _spaces.Box(0, 1, (n_actions,), np.int8)
            space = _spaces.Dict({"observation": obs_space, "action_mask": mask_space})
        else:
            space = {"observation": obs_space, "action_mask": (n_actions,)}
        # The same objects every time, as PettingZoo asks (seeding them works).
        self.observation_spaces = {a: space for a in self.possible_agents}
        self.action_spaces = {a: _discrete(n_actions) for a in self.possible_agents}
        self._rng = None
        self.closed = False

    def observation_space(self, agent):
        return self.observation_spaces[agent]

    def action_space(self, agent):
        return self.action_spaces[agent]

    @property
    def game_id(self):
        """The game's id on the engine (`xring games NAME list`)."""
        return self._sh.seats.ids[self._g]

    def _obs(self, i, final=False):
        s = self._sh.seats
        seat = self._seat0 + i
        o = (s.final_obs if final else s.obs)[seat].copy()
        m = (s.final_mask if final else s.mask)[seat].astype(np.int8)
        return {"observation": o, "action_mask": m}

    def reset(self, seed=None, options=None):
        """Resets the game to seed (None: drawn from this environment's
        generator, itself seeded by the last seed given): its first
        observation for every player."""
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or \
                    not 0 <= int(seed) < 2**64:
                raise ValueError(f"seed must be an integer 0..2**64 - 1, not {seed!r}")
            self._rng = np.random.default_rng(int(seed))
            game_seed = int(seed)
        else:
            if self._rng is None:
                self._rng = np.random.default_rng()
            game_seed = int(self._rng.integers(0, 2**63, dtype=np.uint64))
        s = self._usable()
        s.reset_games([self._g], [game_seed])
        need = np.zeros(s.n, bool)
        need[self._seat0:self._seat0 + s.spg] = True
        s.collect(need, reset=True, timeout=self.step_timeout)
        self.agents = self.possible_agents[:]
        obs = {a: self._obs(i) for i, a in enumerate(self.agents)}
        return obs, {a: {} for a in self.agents}

    def step(self, actions):
        """actions: {agent: int} for the agents in env.agents (a missing
        one plays the engine's fallback). Returns observations, rewards,
        terminations, truncations and infos of those agents; the ones whose
        episode ended leave env.agents."""
        s = self._usable()
        if not self.agents:
            raise RuntimeError("step() with no agents: call reset() (before the first step, "
                               "and when the game is over)")
        if not isinstance(actions, dict):
            raise TypeError(f"actions: a dict of agent -> action, not {type(actions).__name__}")
        live = [self._index[a] for a in self.agents]
        seats = np.array([self._seat0 + i for i in live], np.int64)
        acts = []
        for a in self.agents:
            v = actions.get(a, -1)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                if not (isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iu"):
                    raise TypeError(f"actions[{a!r}] must be an integer, not {v!r}")
            acts.append(int(np.clip(int(v), -1, 2**31 - 1)))
        s.answer(seats, np.array(acts, np.int32))
        need = np.zeros(s.n, bool)
        need[seats] = True
        s.collect(need, timeout=self.step_timeout, final_ends=True)
        obs, rew, term, trunc, infos = {}, {}, {}, {}, {}
        for a, i, seat in zip(self.agents, live, seats.tolist()):
            fin = bool(s.got_final[seat])
            obs[a] = self._obs(i, final=fin)
            rew[a] = float(s.final_reward[seat] if fin else s.reward[seat])
            term[a] = bool(fin and s.final_done[seat])
            trunc[a] = bool(fin and s.final_trunc[seat])
            infos[a] = {"fallback": bool(s.replaced[seat])}
        self.agents = [a for a in self.agents if not (term[a] or trunc[a])]
        if not self.agents:
            # The game is over; the engine starts its next episode at once,
            # whose first records ask: take them, so that every seat is
            # blocked on us again (a reset's records are then certain).
            need = np.zeros(s.n, bool)
            need[self._seat0:self._seat0 + s.spg] = True
            s.collect(need & ~s.has_ask, timeout=self.step_timeout)
        return obs, rew, term, trunc, infos

    def _usable(self):
        if self.closed or self._sh.seats is None:
            raise RuntimeError("xring.pettingzoo: this environment is closed")
        self._sh.seats.check()
        return self._sh.seats

    def render(self):
        return None

    def state(self):
        raise NotImplementedError("xring's grid game has fog of war: no global state is "
                                  "exposed")

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.agents = []
        self._sh.release()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def parallel_env(board=(20, 20), players=2, seed=None, engine=None, obs_dtype="u8",
                 turn_limit=0, render_mode=None, step_timeout=60.0):
    """A PettingZoo ParallelEnv of one grid game of `players` players on an
    xring engine (engine=None: one of its own). seed: the game's seed at
    creation (reset(seed=...) sets it again)."""
    sh = _Shared(1, (int(board[0]), int(board[1])), int(players), dtype_name(obs_dtype), seed,
                 engine, turn_limit, step_timeout)
    return XringParallelEnv(sh, 0, render_mode=render_mode, step_timeout=step_timeout)


def parallel_envs(num, board=(20, 20), players=2, seed=None, engine=None, obs_dtype="u8",
                  turn_limit=0, step_timeout=60.0):
    """num ParallelEnvs whose games share one engine and one agent (game j
    seeded seed + j at creation). Each is stepped and reset on its own;
    the engine they share (when started for them) stops with the last
    close()."""
    num = int(num)
    if num < 1:
        raise ValueError(f"num must be at least 1, not {num}")
    sh = _Shared(num, (int(board[0]), int(board[1])), int(players), dtype_name(obs_dtype),
                 seed, engine, turn_limit, step_timeout)
    return [XringParallelEnv(sh, j, step_timeout=step_timeout) for j in range(num)]
