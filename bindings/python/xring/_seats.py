# SPDX-License-Identifier: MIT
"""The seats of the ecosystem adapters (xring.gym, xring.pettingzoo): games
created for them on an engine (one they start, or one named), one agent
holding their seats, and the bookkeeping that turns the engine's stream of
records into "one observation per seat per step".

Why it is shaped this way (docs/ecosystem.md, "How a step works"):

- A seat the agent holds asks for an answer with each record (action -1)
  and its game waits for it (up to the engine's --action-timeout-ms; the
  engine this module starts waits an hour). So after every step() and
  reset() every seat holds exactly one *asking* record: the seat is
  "blocked on us", nothing more can come for it until it is answered or
  its game is reset. That makes what follows a reset certain: a last
  record (truncated) of the episode cut short, then turn 0 of the new one.
- The records of one step arrive in several batches, in the shards' order.
  The agent copies what it needs of each record (observation, mask,
  reward, flags, and the reference that answers it: Agent.refs()) into
  per-seat arrays and answers later with Agent.answer(), when the user's
  actions come. Only when one batch holds exactly every seat's record, in
  seat order, can the observations stay views of the ring (copy=False).
- An episode's end is a final record (done or truncated; it asks nothing),
  followed, at the engine's next round, by turn 0 of the next episode (an
  asking record): the engine resets its games itself. collect() waits for
  that one too, so that a seat is blocked on us again.
"""
import ctypes
import os
import signal
import subprocess
import time
import uuid

import numpy as np

# The engine this module starts waits this long for an answer: steps may be
# far apart (a training step between two env steps).
ACTION_TIMEOUT_MS = 3600000

_DTYPES = {"u8": np.uint8, "uint8": np.uint8, "f32": np.float32, "float32": np.float32}


def dtype_name(obs_dtype):
    """"u8" or "f32" for what create_games and the engine's CLI take."""
    if obs_dtype is None:
        return "u8"
    if isinstance(obs_dtype, str) and obs_dtype in _DTYPES:
        return "u8" if _DTYPES[obs_dtype] is np.uint8 else "f32"
    dt = np.dtype(obs_dtype)
    if dt == np.uint8:
        return "u8"
    if dt == np.float32:
        return "f32"
    raise ValueError(f"obs_dtype must be uint8 or float32, not {obs_dtype!r}")


def _die_with_parent():
    """In the engine's child process, before exec: SIGTERM when the Python
    process that started it dies, however it dies (PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)


def _death_signal():
    """The pre-exec hook that ties the engine to this process, or None: the
    kernel's parent-death signal follows the *thread* that started the
    child, so from any thread but the main one (a pool's worker, which may
    end while the process goes on) it would stop the engine under its user.
    Then close() (or this process's exit) stops it."""
    import threading
    return _die_with_parent if threading.current_thread() is threading.main_thread() else None


def _ring_size(board, players, dtype, seats, spg):
    """Ring bytes for the records of a step of every game of `seats` seats
    (`spg` seats a game; every player of a game writes a record a turn),
    twice over (a final record and the next episode's first, or a reset's
    last record and first), twice again for room: a power of two from 16 MiB
    to 1 GiB. A step's records must fit: the agent's reader is lossy, and a
    record lapped before it is read is a seat that never asks."""
    h, w = board
    item = 4 if dtype == "f32" else 1
    record = 9 * h * w * item + h * w * 4 + 1 + 512   # the grid game's planes, mask, header
    games = -(-max(seats, 1) // spg)
    need = 4 * games * players * record
    if need > 1 << 30:
        raise ValueError(f"{seats} seats of {h}x{w} games of {players} players need a ring of "
                         f"{need >> 20} MiB, past 1 GiB: fewer environments or a smaller board")
    size = 16 << 20
    while size < need:
        size <<= 1
    return size


def engine_args(board, players, obs_dtype, seats, spg=1, game="grid"):
    """The `xring engine` options of an engine for `seats` seats of games
    created at runtime: none at start, stepping as soon as answers are in,
    waiting an hour for them."""
    h, w = board
    return ["--game", game, "--games", "0", "--board", f"{h}x{w}", "--players", str(players),
            "--obs-dtype", obs_dtype, "--tick-ms", "0",
            "--action-timeout-ms", str(ACTION_TIMEOUT_MS),
            "--max-games", str(max(seats, 1) + 1024),
            "--max-creates-per-uid", "1000000",
            "--ring-size", str(_ring_size(board, players, obs_dtype, seats, spg))]


class EngineProcess:
    """An `xring engine --name NAME ARGS...` process of this Python
    process's own, attached (.engine, an xring.Engine; .name), stopped by
    close() (and by the kernel, SIGTERM, should this process die first).

        with xring.EngineProcess(["--games", "100", "--board", "8x8"]) as ep:
            reader = ep.engine.reader()
    """

    def __init__(self, args=(), name=None, binary=None, timeout=30.0):
        import xring
        self.engine = None
        self.proc = None
        self._pid = os.getpid()
        exe = binary or xring._find_xring_binary()
        if not exe:
            raise FileNotFoundError(
                "xring: the xring program was not found ($XRING_BIN, PATH, or the build "
                "tree): build xring, or attach to a running engine instead")
        self.name = name or f"py-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.proc = subprocess.Popen([exe, "engine", "--name", self.name, "--quiet"] +
                                     [str(a) for a in args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=_death_signal())
        self._pid = os.getpid()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace").strip()
                self.close()
                raise RuntimeError(f"xring: the engine did not start: {err}")
            try:
                self.engine = xring.attach(self.name, timeout=0.05)
                break
            except xring.NoEngineError:
                if time.monotonic() > deadline:
                    self.close()
                    raise
        self.closed = False

    def close(self):
        """Detaches and stops the engine (SIGTERM: its episodes in flight
        end with truncated records). Twice is fine."""
        if getattr(self, "_pid", os.getpid()) != os.getpid():
            # A forked child's copy: the engine is the parent's to stop.
            self.engine = self.proc = None
            return
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        p.stderr.close()
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def OwnEngine(board, players, obs_dtype, seats, spg=1, game="grid"):
    """The engine an adapter starts for itself."""
    return EngineProcess(engine_args(board, players, obs_dtype, seats, spg, game),
                         name=f"gym-{os.getpid()}-{uuid.uuid4().hex[:6]}")


class Seats:
    """Seats of games created for an adapter, held by one agent.

    games: the ids; seat s is player players_of[s] of game games_of[s].
    After collect(), for each seat that was asked for: has_ask (an asking
    record is held: obs[s], mask[s], reward[s], refs[s]) and, if its episode
    ended meanwhile, got_final with final_obs[s], final_reward[s],
    final_done[s], final_trunc[s].
    """

    def __init__(self, engine, n_games, players, seats_per_game, board, obs_dtype, seed,
                 label, turn_limit=0, fresh=False):
        self.engine = engine
        self._pid = os.getpid()
        self.spg = seats_per_game
        self.n = n_games * seats_per_game
        claim_players = None if seats_per_game == players else list(range(seats_per_game))
        agent_kw = dict(players=claim_players, batch=min(65536, max(1024, 2 * self.n)),
                        max_wait=None, capacity=n_games, label=label)
        self.agent = None
        self.ids = []
        if fresh:
            # An engine of our own, with no game yet: its games will be
            # 0..n-1 (ids are given in order), so the agent claims them
            # before they exist and holds their seats from their first
            # turn: every seat's first record asks, and nothing played
            # before the claim has to be waited out (sync()).
            self.agent = engine.agent(games=(0, n_games - 1), **agent_kw)
        try:
            self.ids = engine.create_games(n_games, board=board, players=players,
                                           obs_dtype=obs_dtype, seed=seed,
                                           turn_limit=turn_limit, owned=True)
            if fresh and self.ids != list(range(n_games)):
                raise RuntimeError(f"xring: the engine gave games {self.ids[:4]}..., not 0..: "
                                   f"another process creates games on it")
            if self.agent is None:
                self.agent = engine.agent(games=self.ids, **agent_kw)
        except BaseException:
            self.close()
            raise
        ids = np.asarray(self.ids, np.int64)
        self.lo = int(ids.min())
        self.lut = np.full(int(ids.max()) - self.lo + 1, -1, np.int64)
        self.lut[ids - self.lo] = np.arange(n_games)
        self.games_of = np.repeat(ids, seats_per_game)
        self.players_of = np.tile(np.arange(seats_per_game), n_games)
        self._shape = None
        self.refs = np.zeros((self.n, 3), np.uint64)
        self.has_ask = np.zeros(self.n, bool)
        self.got_final = np.zeros(self.n, bool)
        self.reward = np.zeros(self.n, np.float32)
        self.final_reward = np.zeros(self.n, np.float32)
        self.final_done = np.zeros(self.n, bool)
        self.final_trunc = np.zeros(self.n, bool)
        # The last collect's answers the engine replaced with its fallback
        # (applied_by TIMEOUT..ILLEGAL in the record after them), and all so far.
        self.replaced = np.zeros(self.n, bool)
        self.fallbacks = np.zeros(self.n, np.int64)
        self.copies = 0        # steps whose observations were gathered (a copy)
        self.views = 0         # steps whose observations were the ring's (copy=False)

    # The arrays are made with the first batch: its fields give the shapes.
    def _alloc(self, b):
        obs, mask = b.obs, b.mask
        self.obs = np.zeros((self.n,) + obs.shape[1:], obs.dtype)
        self.final_obs = np.zeros_like(self.obs)
        self.mask = np.zeros((self.n,) + mask.shape[1:], mask.dtype)
        self.final_mask = np.zeros_like(self.mask)
        self._shape = obs.shape[1:]

    def check(self):
        """Raises unless this process may use the seats: not after close(),
        nor in a forked child (whose calls would reset or destroy the
        parent's games)."""
        if self._pid != os.getpid():
            raise RuntimeError("xring: this environment belongs to the process that made it; "
                               "a forked child must make its own")
        if self.agent is None:
            raise RuntimeError("xring: this environment is closed")

    def seat_of(self, game_id, player_id):
        g = np.asarray(game_id, np.int64) - self.lo
        ok = (g >= 0) & (g < len(self.lut))
        s = np.full(g.shape, -1, np.int64)
        s[ok] = self.lut[g[ok]]
        ok &= s >= 0
        p = np.asarray(player_id, np.int64)
        ok &= p < self.spg
        return np.where(ok, s * self.spg + p, -1)

    def answer(self, seats, actions):
        """Answers the asking records of `seats` with `actions`."""
        self.check()
        seats = np.asarray(seats, np.int64)
        if len(seats):
            self.agent.answer(self.refs[seats], np.asarray(actions, np.int32))
        self._asked_again(seats)

    def _asked_again(self, seats):
        # What the last records of these seats said is spent; what
        # collect() reports from now on is about their next ones. (Cleared
        # here, not in collect(): a collect for some seats keeps what it
        # meets of the others for their own step.)
        self.has_ask[seats] = False
        self.got_final[seats] = False
        self.replaced[seats] = False

    def reset_games(self, games, seeds):
        """Resets games (indices into ids) to seeds; their seats then wait
        for turn 0 of the new episode (collect(..., reset=True))."""
        self.check()
        for g, s in zip(np.asarray(games).tolist(), seeds):
            self._reset_one(self.ids[g], int(s))
        for g in np.asarray(games).tolist():
            self._asked_again(np.arange(g * self.spg, (g + 1) * self.spg))

    def _reset_one(self, gid, seed):
        import xring
        deadline = time.monotonic() + 30
        while True:
            try:
                self.engine.reset_game(gid, seed)
                return
            except xring.GameLimitError:
                # The engine's rate of resets, or its shard's queue of
                # them: wait for it, as the refusal asks.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.001)

    def sync(self, timeout=60.0):
        """Until every seat holds an asking record (blocked on us). Games
        claimed after they started may have players out of the episode in
        play (eliminated before the claim), which ask again only when their
        game's next episode starts: the others' records are answered with
        the game's no-op (-1, an out-of-range action: the fallback) until
        then. Not needed for games claimed before their first turn."""
        deadline = time.monotonic() + timeout
        out = np.zeros(self.n, bool)       # out of their game's episode: asking later
        while not self.has_ask.all():
            try:
                self.collect(~self.has_ask, timeout=0.05, final_ends=True)
            except TimeoutError:
                pass
            out = (out | self.got_final) & ~self.has_ask
            if time.monotonic() > deadline:
                raise TimeoutError("xring: the seats' games did not come to ask for "
                                   "answers (see collect())")
            games = np.unique(np.flatnonzero(out) // self.spg)
            if len(games):
                drive = np.zeros(self.n, bool)
                for g in games:
                    drive[g * self.spg:(g + 1) * self.spg] = True
                s = np.flatnonzero(drive & self.has_ask)
                self.answer(s, np.full(len(s), -1, np.int32))

    @staticmethod
    def _last_per_seat(idx, seat):
        """Of the records idx (in ring order), the newest of each seat: when
        the engine stepped a game on its deadline, a batch holds several
        records of a seat, and only the newest one still counts."""
        if len(idx) < 2:
            return idx
        _, first = np.unique(seat[idx][::-1], return_index=True)
        return idx[np.sort(len(idx) - 1 - first)]

    def collect(self, need, reset=False, timeout=60.0, want_view=False, final_ends=False):
        """Takes records until every seat in `need` (a bool array) holds an
        asking record. reset: only turn 0 of a new episode counts, and
        final records are not reported (they end the episodes reset cut
        short). Returns the ObsBatch whose views are every needed seat's
        record in seat order when want_view and one batch was exactly that,
        else None (the records were copied into obs/mask). final_ends: a
        final record also ends a seat's wait (a player out of its game's
        episode asks again only when the next episode starts)."""
        self._ended = np.zeros(self.n, bool)   # seats whose wait ended in this call
        waiting = need & ~self.has_ask
        left = int(waiting.sum())
        deadline = time.monotonic() + timeout
        view = None
        first = True
        while left:
            wait = min(1.0, max(0.0, deadline - time.monotonic()))
            if want_view and first and left <= self.agent.batch:
                # Every needed seat's record in one batch, if they come
                # together (the engine steps its games in id order): a
                # view. Waited for a moment only; else it is a copy.
                b = self.agent.recv(timeout=min(wait, 0.1 + 5e-6 * left), min=left)
            else:
                b = self.agent.recv(timeout=wait)
            if b is None:
                if time.monotonic() >= deadline:
                    missing = np.flatnonzero(waiting & ~self._ended)[:8].tolist()
                    st = self.agent.stats()
                    raise TimeoutError(
                        f"xring: no record for seats {missing} (of {left} waiting) in "
                        f"{timeout:.0f} s (agent: {st.get('records')} records, "
                        f"{st.get('dropped')} dropped, {st.get('evictions', 0)} evictions): "
                        f"the engine's games are not stepping (a lossless reader that "
                        f"stopped reading pauses them), or their records were lost (a ring "
                        f"too small for the seats; an engine with --input-delay); `xring "
                        f"info {self.engine.name}` shows which")
                continue
            if self._shape is None:
                self._alloc(b)
            refs = self.agent.refs()
            seat = self.seat_of(b.game_id, b.player_id)
            done = np.asarray(b.done, bool)
            trunc = np.asarray(b.truncated, bool)
            final = done | trunc
            asking = ~final & (np.asarray(b.action) == -1) & (seat >= 0)
            if reset:
                asking &= np.asarray(b.turn) == 0
            else:
                fi = self._last_per_seat(np.flatnonzero(final & (seat >= 0)), seat)
                if len(fi):
                    s = seat[fi]
                    self.final_obs[s] = b.obs[fi]
                    self.final_mask[s] = b.mask[fi]
                    self.final_reward[s] = b.reward[fi]
                    self.final_done[s] = done[fi]
                    self.final_trunc[s] = trunc[fi] & ~done[fi]
                    self.got_final[s] = True
                    src = np.asarray(b.applied_by)[fi]
                    self.replaced[s] = (src >= 3) & (src <= 6)
                    if final_ends:
                        newly = waiting[s] & ~self.has_ask[s] & ~self._ended[s]
                        self._ended[s] = True
                        left -= int(np.count_nonzero(newly))
            ai = self._last_per_seat(np.flatnonzero(asking), seat)
            if not len(ai):
                first = False
                continue
            s = seat[ai]
            if not reset:
                # Answers the engine did not take (timeouts, illegal moves...):
                # applied_by 3..6 (xring.SOURCES) in the record after them; a
                # next episode's first record (after a final one) says nothing.
                src = np.asarray(b.applied_by)[ai]
                self.replaced[s] |= (src >= 3) & (src <= 6) & ~self.got_final[s]
            if (want_view and first and len(ai) == len(b) and left == len(b) == len(seat)
                    and np.array_equal(s, np.flatnonzero(waiting)) and not final.any()):
                view = b        # every needed seat's record, in seat order, one batch
            else:
                self.obs[s] = b.obs[ai]
                self.mask[s] = b.mask[ai]
            self.reward[s] = b.reward[ai]
            self.refs[s] = refs[ai]
            newly = ~self.has_ask[s] & ~self._ended[s]
            self.has_ask[s] = True
            self._ended[s] = True
            left -= int(np.count_nonzero(waiting[s] & newly))
            first = False
        self.fallbacks += self.replaced & need
        if view is None:
            # Copied: give the records back now. A batch held while the
            # user thinks would hold the ring's writer back, and get the
            # agent evicted (its reader's short lease) on a busy engine.
            self.agent.release()
        if view is not None:
            self.views += 1
        elif need.any():
            self.copies += 1
        return view

    def close(self):
        agent, self.agent = getattr(self, "agent", None), None
        if getattr(self, "_pid", os.getpid()) != os.getpid():
            self.ids = []       # a forked child's copy: the games are the parent's
            return
        if agent is not None:
            agent.close()
        if getattr(self, "ids", None):
            try:
                self.engine.destroy_games(self.ids)
            except Exception:        # the engine is gone: so are its games
                pass
            self.ids = []
