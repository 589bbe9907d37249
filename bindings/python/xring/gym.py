# SPDX-License-Identifier: MIT
"""Gymnasium environments over xring: a vector environment whose N
environments are N seats of games an engine plays, and a single one.

    import xring.gym
    envs = xring.gym.make_vec(num_envs=1024, board=(8, 8), seed=0)
    obs, infos = envs.reset(seed=0)              # (1024, 9, 8, 8) uint8
    for _ in range(1000):
        actions = policy(obs, infos["action_mask"])
        obs, rewards, terminations, truncations, infos = envs.step(actions)
    envs.close()                                 # and the engine it started

Each environment is one seat (a player) of a grid game created for it on
the engine (runtime games): opponent="random": player 0 of a game of its own,
the other players the engine's built-in policy; opponent="self": the players
of a game are consecutive environments of the same vector env (self-play,
2 players). With engine=None the vector env starts an engine of its own and
stops it on close(); engine="NAME" (or an xring.Engine) uses a running one.

The action mask is infos["action_mask"] ((N, A) uint8, 1 = legal; the single
env: info["action_mask"], (A,)). An illegal or out-of-range action is
replaced by the engine's fallback (the game's no-op by default), as in the
engine's own records, and counted (infos["fallbacks"], stats()).

Autoreset: Gymnasium's NEXT_STEP mode (metadata["autoreset_mode"]): the step
that ends an environment's episode returns its last observation with
terminated or truncated set; the next step() ignores that environment's
action and returns the first observation of its next episode (reward 0,
flags clear). The engine has started that episode itself, seeded from the
game's seed and episode number: reset(seed=s) makes the next episodes of
environment i depend on s + i alone.

When gymnasium is importable the classes subclass gymnasium.vector.VectorEnv
and gymnasium.Env and the spaces are gymnasium.spaces; otherwise they keep the
same API with small stand-ins for Box and Discrete (xring.gym.Box, Discrete).
docs/ecosystem.md has the details and the measured figures.
"""
import numpy as np

from ._seats import OwnEngine, Seats, dtype_name


class _NoGymnasium:
    """What gymnasium's Env and VectorEnv give these classes, where gymnasium
    is not importable: np_random and unwrapped."""

    @property
    def np_random(self):
        if getattr(self, "_np_random", None) is None:
            self._np_random = np.random.default_rng()
        return self._np_random

    @property
    def unwrapped(self):
        return self


try:  # gymnasium is optional: the adapters duck-type its API without it
    import gymnasium
    from gymnasium import spaces as _spaces
    from gymnasium.vector import AutoresetMode as _AutoresetMode
    from gymnasium.vector import VectorEnv as _VectorEnvBase
    _EnvBase = gymnasium.Env
except ImportError:  # pragma: no cover - exercised where gymnasium is absent
    gymnasium = None
    _spaces = None
    _AutoresetMode = None
    _VectorEnvBase = _NoGymnasium
    _EnvBase = _NoGymnasium

__all__ = ["make_vec", "make", "XringVectorEnv", "XringEnv", "Box", "Discrete",
           "AUTORESET_MODE", "episode_seed"]

# Gymnasium's AutoresetMode.NEXT_STEP, or its value where gymnasium is absent.
AUTORESET_MODE = _AutoresetMode.NEXT_STEP if _AutoresetMode is not None else "NextStep"


class Box:
    """Gymnasium's Box, as far as these environments use it (no gymnasium)."""

    def __init__(self, low, high, shape, dtype, seed=None):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.low = np.full(self.shape, low, self.dtype)
        self.high = np.full(self.shape, high, self.dtype)
        self._rng = np.random.default_rng(seed)

    def seed(self, seed=None):
        self._rng = np.random.default_rng(seed)
        return [seed]

    def sample(self):
        if self.dtype.kind == "f":
            return self._rng.uniform(0, 1, self.shape).astype(self.dtype)
        return self._rng.integers(self.low, self.high, self.shape, endpoint=True,
                                  dtype=self.dtype)

    def contains(self, x):
        x = np.asarray(x)
        return (x.shape == self.shape and np.can_cast(x.dtype, self.dtype)
                and bool(np.all(x >= self.low)) and bool(np.all(x <= self.high)))

    __contains__ = contains

    def __repr__(self):
        return f"Box({self.low.flat[0]}, {self.high.flat[0]}, {self.shape}, {self.dtype})"


class Discrete:
    """Gymnasium's Discrete (no gymnasium)."""

    def __init__(self, n, seed=None):
        self.n, self.shape, self.dtype = int(n), (), np.dtype(np.int64)
        self._rng = np.random.default_rng(seed)

    def seed(self, seed=None):
        self._rng = np.random.default_rng(seed)
        return [seed]

    def sample(self, mask=None):
        if mask is not None:
            legal = np.flatnonzero(mask)
            return np.int64(self._rng.choice(legal)) if len(legal) else np.int64(0)
        return np.int64(self._rng.integers(self.n))

    def contains(self, x):
        return np.ndim(x) == 0 and 0 <= int(x) < self.n

    __contains__ = contains

    def __repr__(self):
        return f"Discrete({self.n})"


def _box(shape, dtype):
    high = 255 if np.dtype(dtype) == np.uint8 else np.inf
    if _spaces is not None:
        return _spaces.Box(low=0, high=high, shape=shape, dtype=dtype)
    return Box(0, high, shape, dtype)


def _discrete(n):
    return _spaces.Discrete(n) if _spaces is not None else Discrete(n)


def _batched(space, n):
    if _spaces is not None:
        from gymnasium.vector.utils import batch_space
        return batch_space(space, n)
    if isinstance(space, Box):
        return Box(0, space.high.flat[0], (n,) + space.shape, space.dtype)
    return Box(0, space.n - 1, (n,), np.int64)


def _seed_arg(x):
    """A seed: an integer 0..2**64 - 1."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"a seed must be an integer, not {x!r}")
    if not 0 <= int(x) < 2**64:
        raise ValueError(f"a seed must be 0..2**64 - 1, not {x}")
    return int(x)


def _engine_of(engine):
    import xring
    if engine is None or isinstance(engine, xring.Engine):
        return engine
    return xring.attach(str(engine), timeout=5)


class XringVectorEnv(_VectorEnvBase):
    """num_envs seats of grid games on an xring engine, as a Gymnasium
    vector environment. See the module's documentation and make_vec()."""

    metadata = {"autoreset_mode": AUTORESET_MODE, "render_modes": []}

    def __init__(self, num_envs, board=(20, 20), players=2, opponent="random", seed=None,
                 engine=None, obs_dtype="u8", turn_limit=0, copy=True, step_timeout=60.0,
                 label="xring.gym"):
        num_envs = int(num_envs)
        board = (int(board[0]), int(board[1]))
        players = int(players)
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, not {num_envs}")
        if opponent not in ("random", "self"):
            raise ValueError(f"opponent must be 'random' or 'self', not {opponent!r}")
        if opponent == "self":
            if players != 2:
                # With more players, one eliminated early has no observation
                # until its game ends: a vector env cannot step it. A
                # multi-agent API can: xring.pettingzoo.
                raise ValueError("opponent='self' needs players=2 (use xring.pettingzoo for "
                                 "more players)")
            if num_envs % players:
                raise ValueError(f"opponent='self': num_envs ({num_envs}) must be a multiple "
                                 f"of players ({players}), the seats of each game")
        step_timeout = float(step_timeout)
        if not 0 < step_timeout < float("inf"):
            raise ValueError(f"step_timeout must be a number of seconds above 0, not "
                             f"{step_timeout}")
        if not copy and engine is not None:
            # Views stay valid until the next step only where nothing else
            # writes the ring: on a shared engine other games' records may
            # lap it while the user holds a view (the agent's reader is
            # lossy, its lease short).
            raise ValueError("copy=False needs an engine of the vector env's own (engine=None)")
        self.num_envs = num_envs
        self.copy = bool(copy)
        self.step_timeout = step_timeout
        self.opponent = opponent
        dt = dtype_name(obs_dtype)
        self._own = None
        self._seats = None
        self._view = None          # the batch the last step's views are of
        spg = players if opponent == "self" else 1
        eng = _engine_of(engine)
        if eng is None:
            self._own = OwnEngine(board, players, dt, num_envs, spg)
            eng = self._own.engine
        try:
            self._seats = Seats(eng, num_envs // spg, players, spg, board, dt,
                                0 if seed is None else int(seed), label, turn_limit,
                                fresh=self._own is not None)
            # Every seat blocked on us (see _seats.py): from then on a
            # reset's records are certain.
            self._seats.sync(timeout=self.step_timeout)
        except BaseException:
            self.close()
            raise
        s = self._seats
        self.single_observation_space = _box(s.obs.shape[1:], s.obs.dtype)
        self.single_action_space = _discrete(s.mask.shape[1])
        self.observation_space = _batched(self.single_observation_space, num_envs)
        self.action_space = _batched(self.single_action_space, num_envs)
        self.board, self.players = board, players
        self._pending = np.zeros(num_envs, bool)   # NEXT_STEP: reset obs due next step
        self._ret_obs = np.zeros_like(s.obs)
        self._ret_mask = np.zeros_like(s.mask)
        self._all = np.ones(num_envs, bool)
        self._reset_done = False
        self.closed = False

    # ---- Gymnasium's API ---------------------------------------------------

    def reset(self, *, seed=None, options=None):
        """Resets every environment (options: {"reset_mask": bool array}
        resets only those). seed: an int (environment i gets seed + i) or a
        list of ints, one per environment; None draws them from np_random.
        Returns (obs, infos)."""
        if gymnasium is not None:
            super().reset(seed=seed if not isinstance(seed, (list, tuple)) else None)
        elif seed is not None and not isinstance(seed, (list, tuple)):
            self._np_random = np.random.default_rng(seed)
        s = self._usable()
        n = self.num_envs
        which = np.ones(n, bool)
        if options and options.get("reset_mask") is not None:
            which = np.asarray(options["reset_mask"], bool)
            if which.shape != (n,):
                raise ValueError(f"reset_mask must have shape ({n},)")
            if s.spg > 1 and not np.array_equal(which[0::2], which[1::2]):
                raise ValueError("reset_mask: with opponent='self' the two players of a game "
                                 "(environments 2g and 2g + 1) are reset together")
        if seed is None:
            seeds = self.np_random.integers(0, 2**63, n, dtype=np.uint64).tolist()
        elif isinstance(seed, (list, tuple, np.ndarray)):
            if len(seed) != n:
                raise ValueError(f"seed: one per environment ({n}), not {len(seed)}")
            seeds = [_seed_arg(x) for x in seed]
        else:
            seeds = [_seed_arg(seed) + i for i in range(n)]
        # With self-play, game g's seed is environment 2g's.
        games = np.flatnonzero(which[::s.spg])
        if self._view is not None and not which.all():
            # The environments not reset keep the last step's observations,
            # which were views of a batch this reset's reads release.
            np.copyto(s.obs, self._view.obs)
            np.copyto(s.mask, self._view.mask)
        self._view = None
        self._reset_done = False       # until this reset is through
        s.reset_games(games, [seeds[g * s.spg] % 2**64 for g in games])
        s.collect(which, reset=True, timeout=self.step_timeout)
        self._pending[which] = False
        self._reset_done = True
        obs = s.obs.copy() if self.copy else s.obs
        return obs, self._infos(s.mask)

    def _usable(self):
        if self.closed or self._seats is None:
            raise RuntimeError("xring.gym: this vector env is closed")
        self._seats.check()
        return self._seats

    def step(self, actions):
        """One step of every environment: (obs, rewards, terminations,
        truncations, infos)."""
        s = self._usable()
        if not self._reset_done:
            raise RuntimeError("step() before reset() (or after a step or reset that did not "
                               "finish, e.g. interrupted): call reset() first")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"actions: one per environment, shape ({self.num_envs},), "
                             f"not {actions.shape}")
        if actions.dtype.kind not in "iu":
            if actions.dtype.kind == "f" and np.all(np.mod(actions, 1) == 0):
                actions = actions.astype(np.int64)
            else:
                raise TypeError(f"actions must be integers, not {actions.dtype}")
        pending = self._pending.copy()
        act = ~pending
        acting = np.flatnonzero(act)
        # Actions past int32 become the engine's fallback, as out of range.
        a = np.clip(actions[acting], -1, 2**31 - 1).astype(np.int32)
        self._reset_done = False       # until this step is through
        self._view = None
        s.answer(acting, a)
        view = s.collect(act, timeout=self.step_timeout,
                         want_view=not self.copy and not pending.any())
        self._reset_done = True
        self._view = view
        fin = s.got_final & act
        rewards = np.where(fin, s.final_reward, s.reward).astype(np.float32)
        rewards[pending] = 0.0
        term = fin & s.final_done
        trunc = fin & s.final_trunc
        self._pending = fin
        if view is not None:
            return (view.obs, rewards, term, trunc,
                    self._infos(view.mask, s.replaced & act))
        if fin.any():
            obs, mask = self._ret_obs, self._ret_mask
            np.copyto(obs, s.obs)
            np.copyto(mask, s.mask)
            obs[fin] = s.final_obs[fin]
            mask[fin] = s.final_mask[fin]
        else:
            obs, mask = s.obs, s.mask
        if self.copy:
            obs, mask = obs.copy(), mask.copy()
        return obs, rewards, term, trunc, self._infos(mask, s.replaced & act)

    def _infos(self, mask, replaced=None):
        n = self.num_envs
        infos = {"action_mask": mask, "_action_mask": np.ones(n, bool)}
        if replaced is not None:
            # The step's action was not taken: the engine applied its
            # fallback (illegal, out of range, or late).
            infos["fallback"] = replaced.copy()
            infos["_fallback"] = np.ones(n, bool)
        return infos

    def stats(self):
        """What this vector env did: steps whose observations were copied
        (gathered from the records) and those handed out as views of the
        ring (copy=False), the answers the engine replaced with fallbacks
        (replaced: illegal, out of range, late), and the engine's counts of
        this agent (its resets' cut-short turns count as timeouts there)."""
        s = self._seats
        out = dict(self._seats.agent.stats()) if s and s.agent else {}
        out.update(copies=s.copies if s else 0, views=s.views if s else 0,
                   replaced=int(s.fallbacks.sum()) if s else 0)
        return out

    def close_extras(self, **kwargs):
        if self._seats is not None:
            self._seats.close()
            self._seats = None
        if self._own is not None:
            self._own.close()
            self._own = None

    def close(self, **kwargs):
        if getattr(self, "closed", False):
            return
        if gymnasium is not None:
            super().close(**kwargs)        # calls close_extras, sets closed
        else:
            self.close_extras()
            self.closed = True
        self.closed = True

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @property
    def engine_name(self):
        """The engine's name (`xring info NAME` shows its games and this
        agent)."""
        return self._seats.engine.name if self._seats else None

    @property
    def game_ids(self):
        """The games' ids on the engine; environment i is player i % K of
        game game_ids[i // K] (K: 2 with opponent="self", else 1: player 0)."""
        return list(self._seats.ids) if self._seats else []


class XringEnv(_EnvBase):
    """One seat (player 0) of a grid game on an xring engine, against the
    engine's built-in policy, as a gymnasium.Env. It does not reset itself:
    after terminated or truncated, call reset(), as with any Env."""

    metadata = {"render_modes": []}

    def __init__(self, board=(20, 20), players=2, seed=None, engine=None, obs_dtype="u8",
                 turn_limit=0, render_mode=None, step_timeout=60.0):
        if render_mode is not None:
            raise ValueError("xring.gym.XringEnv renders nothing (render_mode=None)")
        self.render_mode = None
        self._vec = None
        self._vec = XringVectorEnv(1, board=board, players=players, opponent="random",
                                   seed=seed, engine=engine, obs_dtype=obs_dtype,
                                   turn_limit=turn_limit, copy=True, step_timeout=step_timeout,
                                   label="xring.gym.Env")
        self.observation_space = self._vec.single_observation_space
        self.action_space = self._vec.single_action_space
        self._ended = False

    def _vector(self):
        if self._vec is None:
            raise RuntimeError("xring.gym: this env is closed")
        return self._vec

    def reset(self, *, seed=None, options=None):
        vec = self._vector()
        if seed is not None:
            _seed_arg(seed)
        if gymnasium is not None:
            super().reset(seed=seed)
        elif seed is not None or getattr(self, "_np_random", None) is None:
            self._np_random = np.random.default_rng(seed)
        game_seed = int(seed) if seed is not None else int(
            self.np_random.integers(0, 2**63, dtype=np.uint64))
        obs, infos = vec.reset(seed=[game_seed])
        self._ended = False
        return obs[0], {"action_mask": infos["action_mask"][0]}

    def step(self, action):
        vec = self._vector()
        if np.ndim(action) != 0:
            raise ValueError(f"action: one integer, not shape {np.shape(action)}")
        obs, rew, term, trunc, infos = vec.step(np.array([action]))
        info = {"action_mask": infos["action_mask"][0], "fallback": bool(infos["fallback"][0])}
        return obs[0], float(rew[0]), bool(term[0]), bool(trunc[0]), info

    def close(self):
        vec = getattr(self, "_vec", None)
        if vec is not None:
            vec.close()
            self._vec = None

    @property
    def engine_name(self):
        return self._vec.engine_name if self._vec else None


_M64 = (1 << 64) - 1


def _splitmix64(x):
    x = (x + 0x9e3779b97f4a7c15) & _M64
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & _M64
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & _M64
    return x ^ (x >> 31)


def episode_seed(seed, episode):
    """The seed episode `episode` (0, 1, ...) of a game seeded `seed` is
    played from (the engine's xr_episode_seed, engine/shard.c): after
    reset(seed=s), environment i's k-th next episode is what a fresh single
    environment reset(seed=episode_seed(s + i, k)) plays."""
    seed, episode = int(seed) & _M64, int(episode)
    return _splitmix64(seed ^ _splitmix64(episode)) if episode else seed


def make_vec(num_envs, board=(20, 20), players=2, opponent="random", seed=None, engine=None,
             **kwargs):
    """A Gymnasium vector env of num_envs xring seats (XringVectorEnv):
    board (H, W), players per game, opponent "random" (the engine's built-in
    policy) or "self" (self-play among the vector env's own environments),
    seed (the games' seeds at creation; reset(seed=...) sets them again),
    engine (None: start one; a name or an xring.Engine: use it). Further
    keywords: obs_dtype ("u8"/"f32"), turn_limit, copy (False: observations
    are views of the ring when the records allow it, valid until the next
    step), step_timeout (seconds a step may wait for the engine), label."""
    return XringVectorEnv(num_envs, board=board, players=players, opponent=opponent, seed=seed,
                          engine=engine, **kwargs)


def make(board=(20, 20), players=2, seed=None, engine=None, **kwargs):
    """A gymnasium.Env: one seat against the engine's built-in policy
    (XringEnv). Also registered with gymnasium as "xring/Grid-v0"
    (gymnasium.make("xring/Grid-v0", board=(8, 8)))."""
    return XringEnv(board=board, players=players, seed=seed, engine=engine, **kwargs)


if gymnasium is not None:
    try:
        gymnasium.register(id="xring/Grid-v0", entry_point="xring.gym:XringEnv",
                           nondeterministic=False)
    except Exception:  # registered already (a reload)
        pass
