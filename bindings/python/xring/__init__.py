# SPDX-License-Identifier: MIT
"""xring: reinforcement-learning experience from a running engine, as numpy
arrays and torch tensors that are the ring's memory.

    import xring
    engine = xring.attach("demo")
    with engine.reader(batch=256) as reader:
        for batch in reader:
            obs = batch.torch()["obs"]      # (256, C, H, W), no copy
            ...                             # train
            batch.release()

    ids = engine.create_games(8, seed=1000)  # games of its own, at runtime
    engine.reset_game(ids[0], seed=42)

    with engine.agent(games=ids) as agent:   # acting for every seat of them
        b = agent.recv()
        while b is not None:
            b = agent.step(policy(b.obs, b.mask))
    engine.close()                           # owned games go with it

See docs/python.md for the whole API.
"""

import numbers
import operator
import os
import shutil
import threading
import time
import weakref

from . import _xring
from ._array import LeasedArray
from ._errors import (DeadlockError, EngineClosedError, EvictedError, GameLimitError,
                      LayoutError,
                      NoEngineError, NoSuchGameError, NoSuchTableError,
                      NoProducerSlotError, ProducerEndedError,
                      PermissionRefusedError, PolicyError, TableDroppedError,
                      TableExistsError, TableLimitError, TooManyRequestsError,
                      ReleasedError, SeatTakenError, TooManyAgentsError,
                      TooManyBatchesHeldError, TooManyReadersError, XringError)

_xring._set_array_type(LeasedArray)

Reader = _xring.Reader
Batch = _xring.Batch
ObsBatch = _xring.ObsBatch

FIELDS = ("obs", "action", "reward", "done", "truncated", "mask", "game_id", "player_id",
          "turn", "seq", "t_ns", "applied", "applied_by")

# The names of Batch.applied_by's values (the schema's ActionSource): SOURCES[v] for
# v < len(SOURCES); a larger value is a source of a newer engine.
SOURCES = ("NONE", "POLICY", "AGENT", "TIMEOUT", "WRONG_TURN", "OUT_OF_RANGE", "ILLEGAL",
           "DELAY")

# What `xring engine --fallback` may say: what a seat's missing, late or bad
# answer becomes (the game's no-op, the seat's previous action, the policy's).
FALLBACKS = ("noop", "repeat", "policy")

__all__ = [
    "attach", "Engine", "Reader", "Batch", "Agent", "ObsBatch", "LeasedArray", "FIELDS",
    "SOURCES", "FALLBACKS", "XringError", "NoEngineError", "PermissionRefusedError",
    "EngineClosedError", "EvictedError", "TooManyReadersError", "PolicyError", "LayoutError",
    "TooManyBatchesHeldError", "ReleasedError", "NoSuchGameError", "GameLimitError",
    "SeatTakenError", "TooManyAgentsError", "DeadlockError", "control_path", "EngineProcess",
    "Table", "Sample", "SAMPLERS", "REMOVERS", "NoSuchTableError", "TableExistsError",
    "TableDroppedError", "TableLimitError", "TooManyRequestsError",
    "Producer", "NoProducerSlotError", "ProducerEndedError",
]


def control_path(name, engine_uid=0):
    """Where engine `name`'s control socket is, or None if no engine this
    process trusts (root, this user, or engine_uid) answers there. The same
    places and checks as the C library's (xr_engine_socket)."""
    return _xring.control_path(name, engine_uid)


# Every Engine and Agent of this process, for the fork handler below.
_engines = weakref.WeakSet()
_agents = weakref.WeakSet()


def _after_fork_in_child():
    """In a fork()ed child, right after the fork (os.register_at_fork): each
    Engine gets a fresh lock (another thread of the parent may have held its
    lock at the fork: the child would wait on it for ever) and lets go of
    the games connection it inherited, closing the child's copy of the
    socket without a word to the engine or a lock taken. So the parent's
    connection ends when the parent closes it or dies, whatever the child
    does and however long it lives, and the parent's owned games go then;
    the child opens its own connection on first use."""
    for eng in list(_engines):
        eng._lock = threading.Lock()
        g, eng._games = eng._games, None
        if g is not None:
            g._drop_after_fork()
    # An agent's seats are its connection's: the child closes its copies
    # (of the connection and the action page), so that the parent's seats
    # go back to the policy when the parent dies, whatever the child does.
    # The child's Agent raises ValueError from then on.
    for agent in list(_agents):
        agent._drop_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Engine:
    """A running engine, by name. Cheap: readers attach on their own.

    The games methods (create_games, destroy_games, reset_game, games) go
    through one control connection that the Engine opens on first use and
    keeps until close(). Games created with owned=True belong to that
    connection: the engine destroys them when it ends, which is close(),
    the Engine's garbage collection, or this process's death, crash
    included. Use ``with xring.attach(name) as engine:`` to close it at the
    end of a block. An Engine may be shared by threads: its games requests
    are served one at a time.
    """

    def __init__(self, name, engine_uid=0):
        self.name = name
        self.engine_uid = int(engine_uid)
        self._games = None          # _xring.Games, opened on first use...
        self._pid = 0               # ...by this process
        self._closed = False
        self._lock = threading.Lock()
        _engines.add(self)

    def __repr__(self):
        return f"xring.Engine({self.name!r})"

    # A copy in another process (pickled for a DataLoader worker, say) is
    # the engine by name, with no connection: its games are its own.
    def __getstate__(self):
        return {"name": self.name, "engine_uid": self.engine_uid}

    def __setstate__(self, state):
        self.__init__(state["name"], state["engine_uid"])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def closed(self):
        """close() was called."""
        return self._closed

    def close(self):
        """Closes the Engine's games connection, if one was opened: the
        engine destroys the games it created with owned=True (each player
        with an episode in flight gets a last record, truncated set). Games
        created with owned=False live on. Readers are not affected: they
        are attached on their own. Afterwards the games methods raise
        ValueError. Closing twice does nothing."""
        with self._lock:
            g, self._games, self._closed = self._games, None, True
        if g is not None:
            g.close()

    def _conn(self):
        with self._lock:
            if self._closed:
                raise ValueError(f"xring.Engine({self.name!r}) is closed: its games "
                                 "connection is gone (make another Engine)")
            if self._games is not None and self._pid != os.getpid():
                # A forked child's copy of the parent's socket: requests
                # from both would mix on it. The child drops its copy (the
                # parent's connection, and its owned games, stay) and
                # opens its own.
                self._games = None
            if self._games is None:
                self._games = _xring.Games(self.name, self.engine_uid)
                self._pid = os.getpid()
            return self._games

    def create_games(self, n, game=None, board=None, players=None, obs_dtype=None,
                     turn_limit=0, seed=0, owned=True):
        """Creates n games; returns their ids (a list of ints, ascending).

        Game j of the call is seeded seed + j: its records depend on that
        seed alone. game ("grid", or the engine's plugin), board (H, W),
        players and obs_dtype ("u8"/"uint8", "f32"/"float32", or the numpy
        dtype) pick the stream the games join; None picks what the engine
        carries (the first stream that fits the rest). turn_limit: turns
        before an episode is truncated (0: the game's default).

        owned=True: the games go with this Engine's games connection (see
        close()): the engine destroys them when it is closed, garbage
        collected, or this process dies. owned=False: they live until
        destroyed (by this uid or the engine's) or the engine stops.

        All or nothing: if the engine refuses part of a large request (over
        1024 games are several requests), the games made are destroyed again
        before the exception is raised; should that fail too, the
        exception's ``created`` lists those left. Raises NoSuchGameError (no
        stream carries that shape: the message lists those that do),
        GameLimitError (--max-games or this uid's share: the message says
        the cap and the count; or the creation rate), ValueError/TypeError
        (bad arguments, before the engine is asked; or a config the game
        refuses), NoEngineError (no such engine), EngineClosedError."""
        n = _int_arg(n, "n")
        if not 1 <= n <= 10_000_000:
            raise ValueError(f"n must be 1..10000000 games, not {n}")
        bh, bw = _board_arg(board)
        if players is not None:
            players = _int_arg(players, "players")
            if not 1 <= players <= 8:
                raise ValueError(f"players must be 1..8, not {players}")
        turn_limit = _int_arg(turn_limit or 0, "turn_limit")
        if not 0 <= turn_limit <= 100_000_000:
            raise ValueError(f"turn_limit must be 0..100000000 (0: the game's), not {turn_limit}")
        seed = _int_arg(seed, "seed")
        if not 0 <= seed or seed + n - 1 >= 1 << 64:
            raise ValueError(f"seeds seed..seed + n - 1 must be 0..2**64 - 1, not "
                             f"{seed}..{seed + n - 1}")
        if game is not None and not isinstance(game, str):
            raise TypeError(f"game must be a str or None, not {type(game).__name__}")
        dtype = _dtype_arg(obs_dtype)
        try:
            return self._conn().create(n, game, bh, bw, players or 0, dtype, turn_limit, seed,
                                       bool(owned))
        except XringError as e:
            made = getattr(e, "created", None)
            if made:
                try:
                    self._conn().destroy(made)
                    e.created = []
                except (XringError, ValueError):
                    pass
            raise

    def destroy_games(self, ids):
        """Destroys games: an id, or an iterable of ids (a range...). Each
        player with an episode in flight gets a last record, truncated set
        and action -1; then no more records carry the id, which is never
        given again. Requests of up to 1024 ids are all or nothing: one
        bad id and none of its request is destroyed. Raises NoSuchGameError
        (an id names no live game: the message names it),
        PermissionRefusedError (a game of another uid; the engine's uid may
        destroy any)."""
        if isinstance(ids, (str, bytes)):
            raise TypeError("ids must be an int or an iterable of ints, not a str")
        ids = [_id_arg(i) for i in ids] if hasattr(ids, "__iter__") else [_id_arg(ids)]
        self._conn().destroy(ids)

    def reset_game(self, id, seed):
        """Resets game `id` to `seed`: its episode in flight ends (a last
        record, truncated set and action -1, for each player in it), and its
        next records are turn 0 of the episode `seed` gives: the bytes a new
        game seeded `seed` writes (all but seq, t_ns and game_id). Raises
        NoSuchGameError, PermissionRefusedError, GameLimitError (the rate,
        or the game's shard has too many resets waiting)."""
        id = _id_arg(id)
        seed = _int_arg(seed, "seed")
        if not 0 <= seed < 1 << 64:
            raise ValueError(f"seed must be 0..2**64 - 1, not {seed}")
        self._conn().reset(id, seed)

    def games(self):
        """The engine's live games, by id: a list of dicts with id, game,
        board (H, W), players, obs_dtype ("uint8" or "float32"), turn_limit
        (0: the game's default), seed (of its creation or last reset),
        stream (index), shard, turn (of the episode in play), episodes
        (ended or cut short so far), owner_uid, owner_pid (0: another pid
        namespace, or a game from the engine's start), owned (goes with its
        creator's connection), mine (owned by this Engine's connection).
        Every admitted user sees every game."""
        out = self._conn().list()
        for g in out:
            g["obs_dtype"] = _DTYPE_NAMES.get(g["obs_dtype"], g["obs_dtype"])
        return out

    def reader(self, stream="experience", batch=256, min_batch=None, max_wait=0.01,
               policy=None, games=None, players=None, min_turn=None, terminal=None,
               reward_range=None, sample_rate=None, *, sample_seed=0, spin=False,
               idle_poll=False, transport="auto", label="python", history=None, group=None):
        """Attaches a reader to `stream`.

        batch: at most this many records per batch. min_batch: wait for this
        many (default: batch), at most max_wait seconds, then take what there
        is. policy: "lossless", "lossy" or None (the stream's). Filters, known
        to the engine (it wakes the reader per batch of records that pass):
        games / players: ids (ints, ranges, or (lo, hi) pairs); min_turn;
        terminal: True (only done/truncated records), False (only others);
        reward_range: (lo, hi); sample_rate: keep this fraction, chosen by a
        hash of the record (the same records for the same sample_seed).
        spin: spin instead of sleeping until the engine wakes the reader.
        idle_poll: while attached, keep idle CPUs polling instead of halting
        (/dev/cpu_dma_latency 0; needs root): faster wakeups on VMs, more
        power; stats()["idle_poll"] says whether it took.
        history: None or 0, start at the newest record; N, up to N records
        before it in each ring (one per engine shard, counted before the
        filters); "all", at the oldest record each ring still holds. A late
        joiner's way to what was written before it came; the records it
        starts behind count as its own (a lossless reader holds the engine
        there until it reads on).
        group: None, or the name of a consumer group of the stream to join
        (1 to 31 of A-Z a-z 0-9 _ . -): the group's members split its
        records, each to one member; what a member holds when it closes or
        dies goes to another (docs/groups.md). Its policy is its first
        member's (lossy: the engine's uid only); groups are per uid. Not
        with filters or history. stats() then says the
        group's figures too: members, group_done, group_held, redelivered.
        """
        term = None if terminal is None else ("only" if terminal else "none")
        if min_turn is not None and not 0 <= int(min_turn) <= 0xFFFFFFFF:
            raise ValueError(f"min_turn must be 0..{0xFFFFFFFF}, not {min_turn}")
        if sample_rate is not None and not 0 < float(sample_rate) <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], not {sample_rate}")
        if group is not None and not isinstance(group, str):
            raise TypeError(f"group must be a name (str) or None, not {group!r}")
        return _xring.open_reader(
            self.name, stream, batch, min_batch or 0, max_wait, policy,
            _ranges(games, "games"), _ranges(players, "players"), int(min_turn or 0), term,
            None if reward_range is None else tuple(float(x) for x in reward_range),
            float(sample_rate or 0), int(sample_seed), bool(spin), transport, label,
            bool(idle_poll), self.engine_uid, _history(history),
            group)

    def agent(self, games=None, players=None, batch=1024, max_wait=None, spin=False,
              capacity=None, label=None, stream=None):
        """Attaches an agent, which acts for seats (players of games), and
        claims `games` (see Agent.claim): their records then wait for its
        answers (docs/python.md, "Agents").

        games: game ids (an int, an iterable of ints, a range, or a list of
        ranges and (lo, hi) pairs), or one (lo, hi) pair, inclusive; each run
        of consecutive ids is one claim, 16 at most. None: claim later.
        players: None (every player) or the player indices (0..7) to act for.
        batch: records per recv(), at most (1..65536). max_wait: seconds
        recv() waits by default (None: for ever). spin: spin while waiting
        instead of sleeping until the engine wakes the agent. capacity: games
        the agent may hold seats of at once (None: 65536, at most the
        engine's --max-games). label: shown by `xring info` and in a refused
        claim's reason (None: "python"). stream: the stream of its games
        (None: the engine's first).

        Raises TooManyAgentsError (--max-agents), SeatTakenError (a seat is
        held: the message names the holder), and what Engine.reader raises.
        """
        if games is None and players is not None:
            raise ValueError("players without games: say which games to act in")
        a = Agent(self.name, stream, "python" if label is None else str(label),
                  _int_arg(capacity or 0, "capacity"), _int_arg(batch, "batch"), max_wait,
                  bool(spin), self.engine_uid)
        if games is not None:
            try:
                a.claim(games, players)
            except BaseException:
                a.close()
                raise
        return a

    def create_table(self, name, capacity, item_size=0, sampler="uniform", remover="fifo",
                     alpha=1.0, beta=0.0, max_times_sampled=0, min_size=0,
                     samples_per_insert=0.0, error_buffer=0.0, seed=0, source=None,
                     priority=1.0, item="record"):
        """Creates replay table `name` in the engine (it lives until the
        engine stops or drop_table()) and returns it opened as a trainer
        (Engine.table()).

        capacity items of item_size bytes; sampler "uniform", "prioritized"
        (P(i) ~ priority_i ** alpha, importance weights with beta), "fifo" or
        "lifo"; remover "fifo", "lifo" or "lowest-priority" (which item a
        full table drops for an insert; never one a trainer holds);
        max_times_sampled (0: no limit); the rate limiter: no sample until
        min_size items, and samples_per_insert (0: no ratio) within
        error_buffer (at least max(1, samples_per_insert)). With source (a
        stream's name, e.g. "experience"), the engine feeds the table: each
        record of the stream becomes an item (its bytes: item_size 0 takes
        the stream's largest record) at `priority`; with item="transition"
        too, each item is a transition the engine builds from two
        consecutive records of one seat (Sample.obs, .action, .reward,
        .next_obs, .done, ...; item_size 0: the engine sizes it). See
        docs/replay.md."""
        if item not in ("record", "transition"):
            raise ValueError(f'item must be "record" or "transition", not {item!r}')
        if item == "transition" and source is None:
            raise ValueError('item="transition" needs a source stream')
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, not {sampler!r}")
        if remover not in REMOVERS:
            raise ValueError(f"remover must be one of {sorted(REMOVERS)}, not {remover!r}")
        ints = {"capacity": (capacity, 1, 1 << 30),
                "item_size": (item_size, 0 if source is not None else 1, 1 << 20),
                "max_times_sampled": (max_times_sampled, 0, 2**32 - 1),
                "min_size": (min_size, 0, 1 << 30), "seed": (seed, 0, 2**64 - 1)}
        for what, (v, lo, hi) in ints.items():
            v = _int_arg(v, what)
            if not lo <= v <= hi:
                raise ValueError(f"{what} must be {lo}..{hi}, not {v}")
        _xring.create_table(self.name, str(name), int(capacity), int(item_size),
                            SAMPLERS[sampler], REMOVERS[remover], float(alpha), float(beta),
                            int(max_times_sampled), int(min_size), float(samples_per_insert),
                            float(error_buffer), int(seed), self.engine_uid,
                            None if source is None else str(source), float(priority),
                            1 if item == "transition" else 0)
        # The table exists now. Opening it is a request of its own, which
        # the engine's request rate may refuse for a moment: waited out
        # (5 s at most), not left as a table without the handle asked for.
        deadline = time.monotonic() + 5
        while True:
            try:
                return self.table(name)
            except TooManyRequestsError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def drop_table(self, name):
        """Drops replay table `name` (created by this uid, or any as the
        engine's uid: PermissionRefusedError otherwise; NoSuchTableError
        when there is none). Its name is free at once. Tables open on it
        get TableDroppedError from every request but a release, waiting
        ones at once;
        their samples' arrays stay readable, and unchanging, until they
        close, when its memory goes. A fed table's feed leaves its stream."""
        _xring.drop_table(self.name, str(name), self.engine_uid)

    def table(self, name):
        """Opens replay table `name` as a trainer: a Table (its own
        connection; close() it, or use it as a context manager)."""
        return Table(self.name, str(name), self.engine_uid)

    def producer(self, stream=None, stage_bytes=0, ring=0):
        """Takes a producer slot of `stream` (None: the default stream): a
        Producer writing records that the stream's readers read like any
        others (the engine must have slots: xring engine --producers N).
        stage_bytes: its staging ring (0: 4 MiB; else a power of two from
        64 KiB to 256 MiB). ring: 0, the first free slot; else the slot of
        the stream's ring `ring` (an earlier producer's stats()["ring"]: its
        stats() then say where the slot's producers stopped, resume_tag and
        resume_taken). Raises NoProducerSlotError when there is no such
        free slot. See docs/producers.md."""
        return Producer(self.name, None if stream is None else str(stream),
                        int(stage_bytes), self.engine_uid, int(ring))

    def info(self):
        """What the engine's arena says: streams, their shapes and policies,
        and the control socket. A reader is attached for the moment this
        takes (the engine checks who asks)."""
        with self.reader(batch=1, max_wait=0, label="xring-info") as r:
            facts = r.facts()
            stats = r.stats()
        facts.pop("batch", None)  # this probe's, not the stream's
        return {"name": self.name, "control": control_path(self.name, self.engine_uid),
                "streams": [dict(facts, written_since_attach=stats["written"])]}


SAMPLERS = {"uniform": 0, "prioritized": 1, "fifo": 2, "lifo": 3}
REMOVERS = {"fifo": 0, "lifo": 1, "lowest-priority": 2}


def _seconds(timeout):
    """A timeout's seconds: None, or a number >= 0 (else ValueError)."""
    if timeout is None:
        return None
    t = float(timeout)
    if not t >= 0:
        raise ValueError(f"timeout must be None or seconds >= 0, not {timeout!r}")
    return None if t == float("inf") else t


def _timeout_ms(timeout):
    """None: as long as a request may wait (an hour); else seconds >= 0."""
    t = _seconds(timeout)
    return -1 if t is None else min(int(t * 1000), 3600 * 1000)


class Sample:
    """Items sampled from a Table, each leased to this trainer until
    release() (or the end of a ``with`` block): keys, slots, probabilities
    and weights are numpy arrays (copies, small); items is items[slots]
    of the table (one gather of the batch, made at the first use). An item
    stays unchanged in the table while it is leased, even if the table
    removes it meanwhile.

    Item fields as arrays, read-only, each with the batch on its first axis:

    - a table of transitions (create_table(item="transition")): obs and
      next_obs (n, *the stream's observation shape), mask and next_mask
      (n, mask_len) uint8, action (int32: applied at the step from obs),
      reward (float32), done, truncated (bool), game_id, player_id, turn
      (uint32: obs's turn), seq (uint64: next_obs's record); views of the
      one gather.
    - a table fed with an Experience stream's records (source=..., the
      default item): the fields a reader's Batch has (obs, mask, action,
      reward, done, truncated, game_id, player_id, turn, seq, t_ns,
      applied, applied_by), copied out of the leased records in one pass
      that verifies each record first (ValueError for an item that is not
      one, e.g. bytes a trainer inserted).

    Other tables' items are what their inserters made them: only items."""

    __slots__ = ("table", "keys", "slots", "probabilities", "weights", "_released", "_items",
                 "_records", "_layout")

    def __init__(self, table, keys, slots, probabilities, weights, layout=None):
        self.table, self.keys, self.slots = table, keys, slots
        self.probabilities, self.weights = probabilities, weights
        self._released = False
        self._items = None
        self._records = None
        self._layout = layout

    def __len__(self):
        return len(self.keys)

    @property
    def items(self):
        """The sampled items, (n, item_size) uint8: a copy gathered from
        the table's memory, once."""
        if self._items is None:
            self._items = self.table.items[self.slots]
        return self._items

    def _field(self, name):
        if self._records is not None and name in self._records:
            return self._records[name]       # copied already: no table needed
        layout = self._layout if self._layout is not None else self.table.layout()
        if layout["item"] == "record":
            return self._record_field(name, layout)
        import numpy as np
        items = self.items
        if name in _TRANSITION_HEAD.names:
            return items[:, :_TRANSITION_HEAD.itemsize].view(_TRANSITION_HEAD)[:, 0][name]
        if name in ("obs", "next_obs"):
            off = layout["obs_off" if name == "obs" else "next_obs_off"]
            dt = np.dtype(_NP_DTYPES[layout["obs_dtype"]])
            raw = items[:, off:off + layout["obs_bytes"]]
            return raw.view(dt).reshape((len(items),) + tuple(layout["obs_shape"]))
        if name in ("mask", "next_mask"):
            off = layout["mask_off" if name == "mask" else "next_mask_off"]
            return items[:, off:off + layout["mask_len"]]
        raise AttributeError(f"{name}: a transition has no such field")

    def _record_field(self, name, layout):
        if "obs_shape" not in layout:
            raise AttributeError(f"{name}: this table's items are not records of a known "
                                 "shape (fields come with a table fed from an Experience "
                                 "stream)")
        if name in ("next_obs", "next_mask"):
            raise AttributeError(f"{name}: this table's items are records, not transitions "
                                 "(create_table(item=\"transition\"))")
        if self._released:
            from ._errors import ReleasedError
            raise ReleasedError(f"{name}: this sample was released (its records may have "
                                "been replaced since); read fields before release()")
        self._records = dict(zip(_xring.FIELD_NAMES, self.table._records(self.slots)))
        return self._records[name]

    obs = property(lambda self: self._field("obs"))
    next_obs = property(lambda self: self._field("next_obs"))
    mask = property(lambda self: self._field("mask"))
    next_mask = property(lambda self: self._field("next_mask"))
    action = property(lambda self: self._field("action"))
    reward = property(lambda self: self._field("reward"))
    done = property(lambda self: self._field("done").astype(bool))
    truncated = property(lambda self: self._field("truncated").astype(bool))
    game_id = property(lambda self: self._field("game_id"))
    player_id = property(lambda self: self._field("player_id"))
    turn = property(lambda self: self._field("turn"))
    seq = property(lambda self: self._field("seq"))
    t_ns = property(lambda self: self._field("t_ns"))
    applied = property(lambda self: self._field("applied"))
    applied_by = property(lambda self: self._field("applied_by"))

    def release(self):
        """Ends the leases (once; again does nothing)."""
        if not self._released:
            self._released = True
            if not self.table.closed:
                self.table.release(self.keys)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False


def _transition_head():
    """struct xr_transition (xring/table.h) as a numpy dtype."""
    import numpy as np
    return np.dtype({"names": ["seq", "game_id", "player_id", "turn", "action", "reward",
                               "done", "truncated", "applied_by", "obs_bytes", "mask_len"],
                     "formats": ["<u8", "<u4", "<u4", "<u4", "<i4", "<f4", "u1", "u1", "u1",
                                 "<u4", "<u4"],
                     "offsets": [0, 8, 12, 16, 20, 24, 28, 29, 30, 32, 36],
                     "itemsize": 64})


_TRANSITION_HEAD = _transition_head()
_NP_DTYPES = {"u8": "u1", "i8": "i1", "u16": "<u2", "i16": "<i2", "u32": "<u4", "i32": "<i4",
              "u64": "<u8", "i64": "<i8", "f16": "<f2", "f32": "<f4", "f64": "<f8",
              "bool": "?"}


class Table(_xring.Table):
    """A replay table of an engine, opened as a trainer (Engine.table(),
    Engine.create_table()). ``items`` is every slot's item, a read-only
    numpy view of the table's memory (no copy)."""

    def sample(self, batch, timeout=None, release=None):
        """Samples up to `batch` items (1..1024; fewer only from fifo and
        lifo tables or one that max_times_sampled empties), waiting up to
        timeout seconds (None: an hour; 0: not at all) for the rate
        limiter. Returns a Sample; its items are leased until its
        release(). Raises TimeoutError when the limiter did not allow the
        samples in time (its reason says why).

        release: the last Sample (or its keys): its leases end first, in
        the same request to the engine (one round trip a round instead of
        two); the Sample counts as released, even if this sample fails."""
        n = _int_arg(batch, "batch")
        if not 1 <= n <= 1024:
            raise ValueError(f"batch must be 1..1024, not {n}")
        rel = None
        if isinstance(release, Sample):
            if release.table is not self:
                raise ValueError("release: a Sample of another Table")
            rel = None if release._released else release.keys
            release._released = True
        elif release is not None:
            rel = release
        keys, slots, prob, weight = (super().sample(n, _timeout_ms(timeout)) if rel is None
                                     else super().sample(n, _timeout_ms(timeout), rel))
        lay = self.__dict__.get("_lay")
        if lay is None:                          # fixed for the table's life
            lay = self._lay = self.layout()
        return Sample(self, keys, slots, prob, weight, lay)

    def insert(self, items, priorities=1.0, timeout=None):
        """Inserts items (an array of n * item_size bytes, e.g. shape
        (n, item_size) uint8, or any array whose bytes are the items) at
        priorities (one each, or one for all), waiting up to timeout seconds
        for the rate limiter or room. Returns the new items' keys (numpy
        uint64): all of them, or those inserted before the timeout."""
        import numpy as np
        a = np.ascontiguousarray(items)
        raw = a.view(np.uint8).reshape(-1)
        size = self.stats()["item_size"]
        if raw.size % size:
            raise ValueError(f"items are {raw.size} bytes, not a whole number of "
                             f"{size}-byte items")
        n = raw.size // size
        p = np.broadcast_to(np.asarray(priorities, dtype=np.float64), (n,))
        return super().insert(raw, np.ascontiguousarray(p), _timeout_ms(timeout))

    def update_priorities(self, keys, priorities):
        """Sets priorities on keys (any trainer may). Returns how many were
        set; keys no longer in the table, and priorities negative or not
        a number, are skipped."""
        import numpy as np
        k = np.ascontiguousarray(keys, dtype=np.uint64).reshape(-1)
        p = np.broadcast_to(np.asarray(priorities, dtype=np.float64), k.shape)
        done, _refused = super().update(k, np.ascontiguousarray(p))
        return done

    def checkpoint(self, path):
        """Has the engine write the table (items, priorities, keys, the rate
        limiter) to a new file at path (not over an existing one: -EEXIST).
        Only the engine's own uid may. Returns the items written. It is
        written by a thread of its own: other tables are served meanwhile;
        this one's samples and inserts wait (at most their timeouts),
        releases and priority updates are answered at once and applied
        after it."""
        return super().checkpoint(os.path.abspath(os.fspath(path)))

    def restore(self, path):
        """Replaces the table by the checkpoint at path (of a table of the
        same capacity and item size): keys from before it name the same
        items again, and the rate limiter stands where it stood. Refused
        while any trainer holds a lease; a bad file leaves the table as it
        was. Only the engine's own uid may. Returns the items restored."""
        return super().restore(os.path.abspath(os.fspath(path)))

    def release(self, keys):
        """Ends this trainer's leases on keys (a Sample's); returns how many
        it held."""
        import numpy as np
        return super().release(np.ascontiguousarray(keys, dtype=np.uint64).reshape(-1))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Producer(_xring.Producer):
    """An external producer of a stream (Engine.producer()): records it
    writes are built in place in its staging ring with the stream's layout
    (one copy of the observation and mask, from the caller's arrays), then
    checked and copied into its ring by the engine. ``layout`` is the
    stream's record shape. close() (or the end of a ``with`` block, or this
    process's death) ends it: the engine takes what was written, then marks
    the ring ended (its readers see the end)."""

    def write(self, obs, action=0, reward=0.0, done=False, truncated=False, game_id=0,
              player_id=0, turn=0, mask=None, applied=-1, applied_by=0, t_ns=None,
              timeout=None):
        """Writes one record: obs (the stream's observation, any array of
        its bytes and dtype), mask (mask_len bytes; None: all legal), the
        scalar fields, t_ns (None: now, CLOCK_MONOTONIC). Waits up to timeout
        seconds (None: for ever) for room: on a lossless stream the readers
        may hold the ring (TimeoutError). The engine sets seq. Raises
        ProducerEndedError if the engine ended this producer."""
        return self._write(obs, action, reward, done, truncated, game_id, player_id, turn,
                           mask, applied, applied_by,
                           time.monotonic_ns() if t_ns is None else t_ns,
                           _timeout_ns(timeout), False)

    def write_many(self, obs, action=0, reward=0.0, done=False, truncated=False, game_id=0,
                   player_id=0, turn=0, mask=None, applied=-1, applied_by=0, t_ns=None,
                   timeout=None):
        """Writes n records, obs shaped (n, *the observation's shape) and each
        other field one value per record or one for all; one publish for
        them all. Returns n."""
        return self._write(obs, action, reward, done, truncated, game_id, player_id, turn,
                           mask, applied, applied_by,
                           time.monotonic_ns() if t_ns is None else t_ns,
                           _timeout_ns(timeout), True)

    def flush(self, timeout=None):
        """Waits until the engine has taken every record written (it is in
        the ring, or a lossy ring dropped and counted it), up to timeout
        seconds (None: for ever); TimeoutError if not."""
        self._flush(_timeout_ns(timeout))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _timeout_ns(timeout):
    """None: for ever (-1); else seconds >= 0, in ns."""
    t = _seconds(timeout)
    return -1 if t is None else min(int(t * 1e9), 2**62)


class Agent(_xring.Agent):
    """An agent of an engine: acts for seats (use Engine.agent()).

    recv(timeout=None) -> ObsBatch or None: the next records of its seats
    that wait for an answer. send(actions): one action per record of the
    held batch. step(actions, timeout=None): send, then recv. release():
    gives the held batch up unanswered (its seats get their fallbacks).
    claim(games, players=None), release_claim(id), claims: the seats it
    holds. stats(), fileno(), arm(), ring_buffer(k), close(), and the
    context manager. See docs/python.md, "Agents".

    An Agent is for one thread at a time, and for the process that made it:
    a forked child makes its own.
    """

    def __init__(self, *args, **kwargs):
        _agents.add(self)

    def claim(self, games, players=None):
        """Claims seats: `players` (None: all; else player indices 0..7) of
        `games` (an int, an iterable of ints, a range, a list of ranges and
        (lo, hi) pairs, or one (lo, hi) pair, inclusive). Games created later
        with ids in a claimed range are claimed too (ids are never reused).
        Each run of consecutive ids is one claim: returns its id, or a tuple
        of ids when the games make several runs; all or none are claimed.
        An agent holds 16 claims at most (ValueError past that).

        From the engine's next round the seats wait for this agent's answers;
        the agent receives their records from the newest on. The held batch
        is released, and the ring is mapped anew: arrays of earlier batches
        must be gone (RuntimeError otherwise). Raises SeatTakenError when a
        seat is held (the message names the seat and its holder: agent,
        label, pid, uid), ValueError when the games do not fit the agent's
        capacity."""
        ids = self._claim(_claim_ranges(games), _player_mask(players))
        return ids[0] if len(ids) == 1 else ids

    def release_claim(self, claim):
        """Gives a claim up (an id, or a tuple of them as claim() returns):
        its seats go back to the built-in policy from the engine's next
        round. The held batch is released; arrays of earlier batches must be
        gone, as for claim(). LookupError for an id that is no claim of this
        agent."""
        for c in (claim if isinstance(claim, (tuple, list)) else (claim,)):
            self._release(_int_arg(c, "claim"))


def _claim_ranges(games):
    """Game ids into a sorted list of (lo, hi) runs of consecutive ids."""
    if isinstance(games, (str, bytes)) or games is None:
        raise TypeError(f"games must be ids, a range or (lo, hi), not {games!r}")
    if (isinstance(games, tuple) and len(games) == 2
            and not isinstance(games[0], (tuple, range)) and not isinstance(games[1], (tuple, range))):
        games = [tuple(games)]      # one (lo, hi) pair, inclusive
    elif isinstance(games, range) or not hasattr(games, "__iter__"):
        games = [games]
    spans = []
    for x in games:
        if isinstance(x, range):
            if x.step != 1 or len(x) == 0:
                raise ValueError("games: only non-empty ranges with step 1")
            lo, hi = x.start, x.stop - 1
        elif isinstance(x, tuple):
            if len(x) != 2:
                raise ValueError(f"games: {x!r} is not a (lo, hi) pair")
            lo, hi = (_int_arg(v, "a game id") for v in x)
        else:
            lo = hi = _int_arg(x, "a game id")
        if not 0 <= lo <= hi < 0xFFFFFFFF:
            raise ValueError(f"games: ids are 0..{0xFFFFFFFF - 1}, lo <= hi; not ({lo}, {hi})")
        spans.append((lo, hi))
    if not spans:
        raise ValueError("games: no ids")
    spans.sort()
    merged = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _player_mask(players):
    """None (every player) or player indices 0..7 into a bit mask (0: all)."""
    if players is None:
        return 0
    if isinstance(players, (str, bytes)):
        raise TypeError("players must be player indices, not a str")
    mask = 0
    for p in (players if hasattr(players, "__iter__") else (players,)):
        p = _int_arg(p, "a player")
        if not 0 <= p <= 7:
            raise ValueError(f"players are 0..7, not {p}")
        mask |= 1 << p
    if not mask:
        raise ValueError("players: none given (None: every player)")
    return mask


_DTYPE_NAMES = {"u8": "uint8", "f32": "float32"}


def _int_arg(v, what):
    """An int (or anything with __index__: numpy ints), not a bool or float."""
    if isinstance(v, bool):
        raise TypeError(f"{what} must be an int, not bool")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"{what} must be an int, not {type(v).__name__}") from None


def _id_arg(v):
    """A game id: 0..2**32 - 2."""
    v = _int_arg(v, "a game id")
    if not 0 <= v < 0xFFFFFFFF:
        raise ValueError(f"a game id is 0..{0xFFFFFFFF - 1}, not {v}")
    return v


def _board_arg(board):
    """None, or (H, W) with 1 <= H, W <= 4096, into (h, w) (0, 0: any)."""
    if board is None:
        return 0, 0
    if isinstance(board, (str, bytes)) or not hasattr(board, "__len__") or len(board) != 2:
        raise TypeError(f"board must be (H, W), not {board!r}")
    h, w = (_int_arg(x, "board") for x in board)
    if not (1 <= h <= 4096 and 1 <= w <= 4096):
        raise ValueError(f"board must be (H, W) with 1 <= H, W <= 4096, not {board!r}")
    return h, w


def _dtype_arg(dt):
    """None, "u8", "f32", or a numpy dtype (or its name) into the engine's name."""
    if dt is None:
        return None
    if isinstance(dt, str) and dt.lower() in ("u8", "f32"):
        return dt.lower()
    import numpy as np
    try:
        d = np.dtype(dt)
    except TypeError:
        d = None
    name = {np.dtype(np.uint8): "u8", np.dtype(np.float32): "f32"}.get(d)
    if name is None:
        raise ValueError(f"obs_dtype must be uint8 ('u8') or float32 ('f32'), not {dt!r}")
    return name


def _history(history):
    """Engine.reader's history= as the C reader's count (2**64 - 1: all)."""
    if history is None:
        return 0
    if isinstance(history, str):
        if history == "all":
            return 2**64 - 1
        raise ValueError(f'history must be None, a count of records or "all", not {history!r}')
    if isinstance(history, bool) or not isinstance(history, numbers.Integral) \
            or not 0 <= history < 2**64 - 1:
        raise ValueError(f'history must be None, a count of records (>= 0) or "all", '
                         f'not {history!r}')
    return int(history)


def _ranges(ids, what):
    """ints, ranges and (lo, hi) pairs into a list of (lo, hi), merged."""
    if ids is None:
        return None
    if isinstance(ids, tuple) and len(ids) == 2:
        # (lo, hi) or the ids lo and hi? Make the caller say.
        raise ValueError(f"{what}={ids!r} is ambiguous: write [{ids[0]}, {ids[1]}] for two ids, "
                         f"or [({ids[0]}, {ids[1]})] or range({ids[0]}, {ids[1]} + 1) for a range")
    if isinstance(ids, (int, range)):
        ids = [ids]
    out = []
    for x in ids:
        if isinstance(x, range):
            if x.step != 1 or len(x) == 0:
                raise ValueError(f"{what}: only non-empty ranges with step 1")
            out.append((x.start, x.stop - 1))
        elif isinstance(x, tuple):
            lo, hi = x
            out.append((int(lo), int(hi)))
        else:
            out.append((int(x), int(x)))
    out.sort()
    merged = []
    for lo, hi in out:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def __getattr__(name):
    # xring.EngineProcess: an engine process of this Python process's own
    # (_seats.py), imported when first asked for.
    if name == "EngineProcess":
        from ._seats import EngineProcess
        return EngineProcess
    raise AttributeError(f"module 'xring' has no attribute {name!r}")


def attach(name, timeout=None, engine_uid=0):
    """The engine called `name`. With timeout (seconds), waits that long for
    it to come up; raises NoEngineError if it does not. The engine must be
    run by root or by this user, or by engine_uid when given (checked at
    every attach: the socket's peer and the arena's owner)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if control_path(name, engine_uid) is not None:
            return Engine(name, engine_uid)
        if deadline is None or time.monotonic() >= deadline:
            raise NoEngineError(
                f"attach: no engine '{name}' is running (start one with `xring engine "
                f"--name {name}`)", -2, "ENOENT", "no engine of that name")
        time.sleep(0.01)


def _find_xring_binary():
    """The xring program: $XRING_BIN, then PATH, then the build tree."""
    env = os.environ.get("XRING_BIN")
    if env:
        return env
    found = shutil.which("xring")
    if found:
        return found
    here = os.path.dirname(os.path.abspath(__file__))
    for up in ("../../..", "../../../build", "../.."):
        cand = os.path.normpath(os.path.join(here, up, "xring"))
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None
