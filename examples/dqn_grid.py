#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A small DQN on the built-in grid game, trained on experience streamed from
a running engine, on the CPU, with prioritized replay in a replay table the
engine hosts.

    PYTHONPATH=build/python /usr/bin/python3 examples/dqn_grid.py --steps 2000
    PYTHONPATH=build/python /usr/bin/python3 examples/dqn_grid.py --engine demo

Without --engine it starts its own `xring engine` (the program found by
xring._find_xring_binary(): $XRING_BIN, PATH, or the build tree) with a name
of its own, and stops it when it exits, also on Ctrl-C or SIGTERM.

By default the engine's games are driven by its random-legal policy, so this
is off-policy Q-learning from a behaviour policy we do not control: the data
flow, not the agent's strength, is the point. With --act the network plays:
an agent (xring's agent API) holds every seat of the games and answers each
record with an epsilon-greedy action over the legal moves (epsilon from
--eps-start to --eps-end over --eps-steps steps), and learns from the
records of its own play. The loop:

  read one batch (a lease on the ring; with --act, the agent's batch, whose
  records it answers first) -> pair each record with the previous record of
  the same (game, player) -> transitions (copies: the ring is reused once the
  batch is released) -> release -> insert them into the replay table -> one
  gradient step on a minibatch the table samples -> the minibatch's TD errors
  back to the table as its items' priorities.

Replay (docs/replay.md): a table in the engine (--table, default "dqn_grid";
created with Engine.create_table(), or opened if the engine has one of that
name and item size, e.g. from an earlier run against --engine), of --buffer
transitions, sampler "prioritized" (P(i) ~ p_i^alpha, --alpha), importance
weights with the table's fixed --beta (no annealing: the table's beta is set
at its creation), remover "fifo", rate limiter min_size = --warmup (samples
wait for it; no samples-per-insert ratio). Each transition is one item, a
numpy structured dtype (transition_dtype()) inserted with Table.insert() at
the largest priority set so far (1 at first), so that each is likely drawn
soon. Minibatches come from xring.torch.TableDataset: dicts of tensors over
the batch's one gather out of the table, the transition's fields views of
it; the loss is the Huber loss weighted by the importance weights, and
|TD error| + --prio-eps goes back with Table.update_priorities(). The
dataset holds the batch's leases until the next batch is taken, so the
table does not remove those items while the step runs and every update
finds its item. --replay python keeps the transitions in a buffer of this
process instead (uniform draws, weights 1, no priorities), for comparison.

Record convention (docs/agents.md, "Records"): the record of turn t of (game,
player) carries obs_t, mask_t, and the reward and done/truncated flags that
the PREVIOUS step led to, with `applied`, the action that step applied (the
policy's draw, an agent's answer, or a fallback); a terminal observation gets
its own record. So a transition (s, a, r, s', mask', done) takes s from record
t and a (applied), r, done, s', mask' from record t+1 of the same (game,
player). (Applied -1 is the game's no-op, action H*W*4.)
A record that is done or truncated starts no transition (the next record of
that key is turn 0 of a new episode). A truncated s' is bootstrapped from.

Rewards of the grid game (docs/games.md): +1 to the winner and -1 to the
eliminated player at the step the episode ends, 0 otherwise. Sparse: most of
what the network learns early on is to make its values self-consistent, which
is what makes the TD loss fall.

The Q-network is fully convolutional: the grid game's action (y*W + x)*4 + dir
is a move out of cell (y, x), so a 4-channel map over the board gives the Q of
every move, and a pooled linear head the no-op (action H*W*4). Double DQN with
a target network copied every --target-every steps, Huber loss, Adam; the
target's argmax is over the legal actions of s' (its record's mask).

Output: a line every --log-every steps (step, loss averaged over those steps,
mean Q, records read per second, transitions per second, buffer size: the
table's items); with --json one JSON object per line instead, including a
first {"event": "start"} and a last {"event": "end"} line (with the table's
stats() and the priority updates made and refused).
"""

import argparse
import atexit
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid

try:
    import xring
except ImportError:  # not installed: the CMake build's package, if there is one
    _build = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "python")
    sys.path.insert(0, os.path.normpath(_build))
    try:
        import xring
    except ImportError:
        sys.exit("dqn_grid: no xring package: build it (cmake --build build) and run with "
                 "PYTHONPATH=build/python /usr/bin/python3, or pip install ./bindings/python")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Train a small DQN on the grid game's experience from an xring engine.")
    p.add_argument("--engine", metavar="NAME",
                   help="attach to this running engine (default: start one of our own)")
    p.add_argument("--steps", type=int, default=2000, help="training steps (default: 2000)")
    p.add_argument("--batch", type=int, default=128, help="training minibatch (default: 128)")
    p.add_argument("--read-batch", type=int, default=256,
                   help="records read from the ring per training step (default: 256)")
    p.add_argument("--board", default="8x8", help="board HxW of our own engine (default: 8x8)")
    p.add_argument("--games", type=int, default=64,
                   help="games of our own engine (default: 64)")
    p.add_argument("--turn-limit", type=int, default=200,
                   help="turn limit of our own engine's games (default: 200)")
    p.add_argument("--seed", type=int, default=1,
                   help="seed of torch and of our own engine's games (default: 1)")
    p.add_argument("--log-every", type=int, default=50, help="steps per log line (default: 50)")
    p.add_argument("--json", action="store_true", help="log one JSON object per line")
    p.add_argument("--gamma", type=float, default=0.99, help="discount (default: 0.99)")
    p.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate (default: 5e-4)")
    p.add_argument("--target-every", type=int, default=100,
                   help="steps between copies of the network into the target (default: 100)")
    p.add_argument("--buffer", type=int, default=50000,
                   help="replay capacity in transitions (default: 50000)")
    p.add_argument("--replay", choices=("table", "python"), default="table",
                   help="where the transitions are kept: a prioritized replay table in the "
                        "engine, or a uniform buffer in this process (default: table)")
    p.add_argument("--table", default="dqn_grid",
                   help="the replay table's name (default: dqn_grid)")
    p.add_argument("--alpha", type=float, default=0.6,
                   help="prioritization exponent of the table (default: 0.6)")
    p.add_argument("--beta", type=float, default=0.4,
                   help="importance-weight exponent of the table (default: 0.4)")
    p.add_argument("--prio-eps", type=float, default=1e-3,
                   help="added to |TD error| to make a priority (default: 1e-3)")
    p.add_argument("--warmup", type=int, default=2000,
                   help="transitions in the buffer before training starts (default: 2000)")
    p.add_argument("--channels", type=int, default=32,
                   help="width of the conv layers (default: 32)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default: 1; the engine has the other core)")
    p.add_argument("--act", action="store_true",
                   help="play: an agent holds every seat, epsilon-greedy on the network")
    p.add_argument("--eps-start", type=float, default=1.0)
    p.add_argument("--eps-end", type=float, default=0.05)
    p.add_argument("--eps-steps", type=int, default=1000,
                   help="steps over which epsilon falls (default: 1000)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for the engine and for its first records (default: 30)")
    a = p.parse_args(argv)
    try:
        h, w = (int(x) for x in a.board.lower().split("x"))
    except ValueError:
        p.error(f"--board: expected HxW, e.g. 8x8, not {a.board!r}")
    a.board_hw = (h, w)
    for k in ("steps", "batch", "read_batch", "games", "log_every", "target_every",
              "buffer", "threads", "channels"):
        if getattr(a, k) < 1:
            p.error(f"--{k.replace('_', '-')}: must be at least 1")
    if a.buffer < a.batch:
        p.error("--buffer must be at least --batch")
    if a.warmup > a.buffer:
        p.error("--warmup must be at most --buffer (a full buffer would never reach it)")
    if not (a.alpha >= 0 and a.beta >= 0 and a.prio_eps > 0):
        p.error("--alpha and --beta must be >= 0, --prio-eps > 0")
    return a


# ---------------------------------------------------------------- the engine

class OwnEngine:
    """An `xring engine` we started, stopped at exit whatever happens."""

    def __init__(self, args):
        binary = xring._find_xring_binary()
        if binary is None:
            raise SystemExit("dqn_grid: no xring program found (set XRING_BIN, put it on "
                             "PATH, or build it: cmake --build build)")
        self.name = f"dqn-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        h, w = args.board_hw
        cmd = [binary, "engine", "--name", self.name, "--quiet",
               "--games", str(args.games), "--board", f"{h}x{w}", "--players", "2",
               "--seed", str(args.seed), "--turn-limit", str(args.turn_limit),
               "--policy", "lossless", "--ring-size", "8M"]
        if args.act:
            # Its games wait for our answers between two training steps.
            cmd += ["--action-timeout-ms", "2000"]
        # Own session: Ctrl-C reaches only us, and we stop the engine after
        # our reader is gone. PDEATHSIG: if we are killed outright, the
        # kernel stops it for us.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        self.cmd = cmd
        atexit.register(self.stop)

    def wait_up(self, timeout):
        deadline = time.monotonic() + timeout
        while xring.control_path(self.name) is None:
            if self.proc.poll() is not None:
                raise SystemExit(f"dqn_grid: the engine exited with {self.proc.returncode} "
                                 f"before it came up: {' '.join(self.cmd)}")
            if time.monotonic() > deadline:
                raise SystemExit(f"dqn_grid: the engine did not come up in {timeout} s")
            time.sleep(0.01)
        return xring.Engine(self.name)

    def stop(self):
        """SIGTERM (it drains and removes its arena and socket), then SIGKILL
        if it does not go in 10 s. Idempotent."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        except KeyboardInterrupt:  # a second Ctrl-C while we wait
            p.kill()
            p.wait()


def _die_with_parent():
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


# ---------------------------------------------------------------- the learner

def build(args, torch, nn, c, h, w, n_actions):
    if n_actions != h * w * 4 + 1:
        raise SystemExit(f"dqn_grid: {n_actions} actions for a {h}x{w} board: this network "
                         f"is for the grid game (H*W*4 + 1 actions)")

    class QNet(nn.Module):
        """Q of every action: a 4-channel map over the board (the moves out of
        each cell, dir = up, right, down, left) and a pooled head (no-op)."""

        def __init__(self, ch):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(c, ch, 3, padding=1), nn.ReLU(),
                nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(),
                nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU())
            self.moves = nn.Conv2d(ch, 4, 1)
            self.noop = nn.Linear(ch, 1)

        def forward(self, x):
            f = self.body(x)
            moves = self.moves(f).permute(0, 2, 3, 1).reshape(x.shape[0], -1)
            noop = self.noop(f.mean(dim=(2, 3)))
            return torch.cat([moves, noop], dim=1)

    return QNet(args.channels)


def features(torch, obs_u8):
    """uint8 observations to floats of the network: army counts (channels 0-2,
    0..255) on a log scale into [0, 1], the 0/1 planes as they are."""
    x = obs_u8.float()
    x[:, :3] = torch.log1p(x[:, :3]) * (1.0 / math.log(256.0))
    return x


class Pairing:
    """The last record of every (game, player) seen, and the transitions that
    each new batch makes with them. Copies: the ring is reused after release."""

    def __init__(self, torch, obs_shape, n_actions):
        self.torch = torch
        self.noop = n_actions - 1
        self.slot_of = {}
        self.cap = 0
        self.obs_shape = obs_shape
        self.grow(256)

    def grow(self, need):
        torch = self.torch
        cap = max(need, 2 * self.cap)
        def more(old, shape, dtype):
            new = torch.zeros((cap,) + shape, dtype=dtype)
            if old is not None:
                new[:old.shape[0]] = old
            return new
        g = lambda n: getattr(self, n, None)
        self.obs = more(g("obs"), self.obs_shape, torch.uint8)
        self.turn = more(g("turn"), (), torch.int64)
        self.ended = more(g("ended"), (), torch.bool)   # done or truncated
        self.valid = more(g("valid"), (), torch.bool)
        self.cap = cap

    def slots(self, game_id, player_id):
        """A dense slot per (game, player): the engine's ids may be sparse."""
        torch = self.torch
        key = game_id.to(torch.int64) * 256 + player_id.to(torch.int64)
        uniq, inv = torch.unique(key, return_inverse=True)
        d = self.slot_of
        ids = [d.setdefault(k, len(d)) for k in uniq.tolist()]
        if len(d) > self.cap:
            self.grow(len(d))
        return torch.tensor(ids, dtype=torch.int64)[inv]

    def feed(self, t):
        """t: the batch's fields (own copies). Returns the transitions as
        (s, a, r, s2, mask2, done) or None."""
        torch = self.torch
        n = t["obs"].shape[0]
        slot = self.slots(t["game_id"], t["player_id"])
        # Records of one key in time order: a batch is in sequence order and
        # the sort is stable.
        s_slot, perm = torch.sort(slot, stable=True)
        cur_turn = t["turn"].to(torch.int64)[perm]
        cur_ended = (t["done"] | t["truncated"])[perm]
        # What the step before each record applied (its `applied`): the
        # action of the transition that ends at it. -1: the no-op.
        cur_applied = t["applied"].to(torch.int64)[perm]
        cur_applied = torch.where(cur_applied < 0, torch.full_like(cur_applied, self.noop),
                                  cur_applied)
        # Previous record: the one before in this batch if of the same key,
        # else the table's.
        inb = torch.zeros(n, dtype=torch.bool)
        inb[1:] = s_slot[1:] == s_slot[:-1]
        pi = torch.nonzero(inb).squeeze(1)          # positions whose previous is in the batch
        p_obs = self.obs[s_slot]
        p_obs[pi] = t["obs"][perm[pi - 1]]
        p_turn = self.turn[s_slot]
        p_turn[pi] = cur_turn[pi - 1]
        p_ended = self.ended[s_slot]
        p_ended[pi] = cur_ended[pi - 1]
        p_valid = self.valid[s_slot]
        p_valid[pi] = True
        ok = p_valid & ~p_ended & (cur_turn == p_turn + 1)
        # The last record of each key in the batch becomes the table's.
        last = torch.ones(n, dtype=torch.bool)
        last[:-1] = s_slot[:-1] != s_slot[1:]
        ls = s_slot[last]
        lr = perm[last]
        self.obs[ls] = t["obs"][lr]
        self.turn[ls] = cur_turn[last]
        self.ended[ls] = cur_ended[last]
        self.valid[ls] = True
        k = torch.nonzero(ok).squeeze(1)
        if k.numel() == 0:
            return None
        rk = perm[k]
        return (p_obs[k], cur_applied[k], t["reward"][rk], t["obs"][rk],
                t["mask"][rk] != 0, t["done"][rk])


def transition_dtype(obs_shape, n_actions):
    """One transition as one item of the replay table: (s, a, r, s2, mask2,
    done), laid out with align=True so that each field of a sampled batch is
    a view of the batch's items (xring.torch.TableDataset)."""
    import numpy as np
    return np.dtype([("a", np.int64), ("r", np.float32), ("d", np.float32),
                     ("s", np.uint8, obs_shape), ("s2", np.uint8, obs_shape),
                     ("m2", np.bool_, (n_actions,))], align=True)


class TableReplay:
    """Transitions in a prioritized replay table of the engine: inserted at
    the largest priority set so far, sampled with importance weights by an
    xring.torch.TableDataset, their priorities set from the TD errors."""

    def __init__(self, torch, engine, args, obs_shape, n_actions):
        import numpy as np
        import xring.torch
        self.np, self.torch, self.args = np, torch, args
        self.dtype = transition_dtype(obs_shape, n_actions)
        try:
            self.table = engine.create_table(
                args.table, capacity=args.buffer, item_size=self.dtype.itemsize,
                sampler="prioritized", alpha=args.alpha, beta=args.beta, remover="fifo",
                min_size=max(args.warmup, args.batch), seed=args.seed)
        except xring.TableExistsError:
            # An earlier run's (against a named engine): the same transitions
            # if the same item size; its sampler and figures are its own.
            self.table = engine.table(args.table)
            size = self.table.stats()["item_size"]
            if size != self.dtype.itemsize:
                self.table.close()
                raise SystemExit(f"dqn_grid: the engine's table {args.table!r} has "
                                 f"{size}-byte items, not this board's "
                                 f"{self.dtype.itemsize}: use --table")
        self.dataset = xring.torch.TableDataset(engine, args.table, batch=args.batch,
                                                timeout=args.timeout, dtype=self.dtype)
        self.batches = iter(self.dataset)
        self.max_prio = 1.0
        self.updated = self.refused = 0

    @property
    def size(self):
        return self.table.stats()["size"]

    def add(self, s, a, r, s2, m2, d):
        rows = self.np.zeros(s.shape[0], self.dtype)
        rows["s"], rows["a"], rows["r"] = s.numpy(), a.numpy(), r.numpy()
        rows["s2"], rows["m2"], rows["d"] = s2.numpy(), m2.numpy(), d.numpy()
        keys = self.table.insert(rows, priorities=self.max_prio, timeout=self.args.timeout)
        if len(keys) < len(rows):
            raise SystemExit(f"dqn_grid: the table took {len(keys)} of {len(rows)} "
                             f"transitions in {self.args.timeout} s")

    def sample(self, n, gen):
        """(s, a, r, s2, m2, d, weights, keys): tensors over the batch's
        gather, leased until the next sample()."""
        try:
            b = next(self.batches)
        except StopIteration:   # the dataset's iteration ends when the engine stops
            raise xring.EngineClosedError("the engine stopped (its replay table is gone)")
        return (b["s"], b["a"], b["r"], b["s2"], b["m2"], b["d"], b["weights"].float(),
                b["keys"])

    def update(self, keys, td):
        p = td.abs().double() + self.args.prio_eps
        self.max_prio = max(self.max_prio, float(p.max()))
        k = keys.numpy().view(self.np.uint64)     # the keys' bits
        done = self.table.update_priorities(k, p.numpy())
        self.updated += done
        self.refused += len(k) - done

    def summary(self):
        """The end's figures: the dataset's leases ended first."""
        self.batches.close()
        return {"table": self.table.stats(), "priority_updates": self.updated,
                "priority_refused": self.refused, "max_priority": self.max_prio}

    def close(self):
        self.batches.close()
        self.table.close()


class Replay:
    """--replay python: a preallocated ring of transitions in this process;
    uniform sampling, weights 1, no priorities."""

    def __init__(self, torch, cap, obs_shape, n_actions):
        self.torch = torch
        self.cap, self.size, self.pos = cap, 0, 0
        self.s = torch.zeros((cap,) + obs_shape, dtype=torch.uint8)
        self.s2 = torch.zeros((cap,) + obs_shape, dtype=torch.uint8)
        self.a = torch.zeros(cap, dtype=torch.int64)
        self.r = torch.zeros(cap, dtype=torch.float32)
        self.m2 = torch.zeros((cap, n_actions), dtype=torch.bool)
        self.d = torch.zeros(cap, dtype=torch.float32)

    def add(self, s, a, r, s2, m2, d):
        n = s.shape[0]
        if n > self.cap:
            s, a, r, s2, m2, d = (x[-self.cap:] for x in (s, a, r, s2, m2, d))
            n = self.cap
        idx = (self.pos + self.torch.arange(n)) % self.cap
        self.s[idx], self.a[idx], self.r[idx] = s, a, r
        self.s2[idx], self.m2[idx], self.d[idx] = s2, m2, d.float()
        self.pos = (self.pos + n) % self.cap
        self.size = min(self.cap, self.size + n)

    def sample(self, n, gen):
        i = self.torch.randint(self.size, (n,), generator=gen)
        return self.s[i], self.a[i], self.r[i], self.s2[i], self.m2[i], self.d[i], None, None

    def update(self, keys, td):
        pass

    def summary(self):
        return {}

    def close(self):
        pass


# ---------------------------------------------------------------- main

def main(argv=None):
    args = parse_args(argv)

    def emit(rec, text):
        if args.json:
            print(json.dumps(rec), flush=True)
        else:
            print(text, flush=True)

    # Stop cleanly on SIGTERM too (finally blocks run, the engine is stopped).
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    own = None
    if args.engine:
        engine = xring.attach(args.engine, timeout=args.timeout)
    else:
        own = OwnEngine(args)   # before torch starts threads (fork + preexec_fn)

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    interrupted = closed = False
    try:
        if own is not None:
            engine = own.wait_up(args.timeout)
        emit({"event": "start", "engine": engine.name, "own_engine": own is not None,
              "engine_pid": own.proc.pid if own else None, "steps": args.steps,
              "batch": args.batch, "seed": args.seed},
             f"dqn_grid: engine {engine.name!r}" + (f" (ours, pid {own.proc.pid})" if own else ""))
        if args.act:
            # The stream's shapes, from a reader that comes and goes; then
            # an agent holding every seat of the games (0..games-1: those of
            # our own engine; of a named one, those ids).
            with engine.reader(batch=1, max_wait=0, label="dqn_grid-facts") as r:
                facts = r.facts()
            with engine.agent(games=[(0, args.games - 1)], batch=args.read_batch,
                              max_wait=0.005, label="dqn_grid") as agent:
                run(args, torch, nn, F, engine, agent, gen, emit, facts)
        else:
            with engine.reader(batch=args.read_batch, max_wait=0.005,
                               label="dqn_grid") as reader:
                run(args, torch, nn, F, engine, reader, gen, emit, reader.facts())
    except KeyboardInterrupt:
        interrupted = True
        emit({"event": "interrupted"}, "dqn_grid: interrupted")
    except xring.EngineClosedError:
        closed = True
        emit({"event": "engine_closed"}, "dqn_grid: the engine stopped before the last step")
    finally:
        if own is not None:
            own.stop()
    return 130 if interrupted else 1 if closed else 0


def run(args, torch, nn, F, engine, source, gen, emit, facts):
    """Trains on what `source` reads: a reader, or (--act) an agent, which
    answers each batch's records before they are learnt from."""
    if facts.get("obs_dtype") != "uint8" or not facts.get("mask_len"):
        raise SystemExit(f"dqn_grid: needs uint8 observations and a mask, the stream has "
                         f"{facts.get('obs_dtype')} and mask {facts.get('mask_len')}")
    obs_shape = tuple(facts["obs_shape"])
    c, h, w = obs_shape
    n_actions = facts["mask_len"]
    net = build(args, torch, nn, c, h, w, n_actions)
    target = build(args, torch, nn, c, h, w, n_actions)
    target.load_state_dict(net.state_dict())
    for p in target.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    pairing = Pairing(torch, obs_shape, n_actions)
    if args.replay == "table":
        replay = TableReplay(torch, engine, args, obs_shape, n_actions)
    else:
        replay = Replay(torch, args.buffer, obs_shape, n_actions)
    try:
        train(args, torch, nn, F, source, gen, emit, net, target, opt, pairing, replay)
    finally:
        replay.close()


def train(args, torch, nn, F, source, gen, emit, net, target, opt, pairing, replay):
    """The warm-up, then --steps steps: a batch read, a minibatch learnt."""
    n_read = n_trans = 0
    step = 0
    fields = ("obs", "action", "applied", "reward", "done", "truncated", "mask", "game_id",
              "player_id", "turn")

    def epsilon():
        f = min(1.0, step / max(1, args.eps_steps))
        return args.eps_start + f * (args.eps_end - args.eps_start)

    def answer(t):
        """Epsilon-greedy actions over each record's legal moves."""
        legal = t["mask"] != 0
        with torch.no_grad():
            greedy = net(features(torch, t["obs"])).masked_fill(~legal, float("-inf"))
            greedy = greedy.argmax(dim=1)
        rand = (torch.rand(legal.shape, generator=gen) * legal).argmax(dim=1)
        explore = torch.rand(len(greedy), generator=gen) < epsilon()
        return torch.where(explore, rand, greedy).to(torch.int32).numpy()

    def take(timeout):
        """Reads one batch into the replay buffer (--act: answering its
        records first); False if nothing came."""
        nonlocal n_read, n_trans
        if args.act:
            b = source.recv(timeout=timeout)
            if b is None:
                return False
            v = b.torch()
            t = {k: v[k].clone() for k in fields}   # own copies: send() releases
            del v
            source.send(answer(t))    # final records are skipped, as they ask nothing
        else:
            b = source.read(timeout=timeout)
            if b is None:
                return False
            with b:
                v = b.torch()
                # Own copies of what we keep, then give the records back.
                t = {k: v[k].clone() for k in fields}
                del v
        n_read += t["obs"].shape[0]
        tr = pairing.feed(t)
        if tr is not None:
            replay.add(*tr)
            n_trans += tr[0].shape[0]
        return True

    # Warm-up: fill the buffer before the first step.
    deadline = time.monotonic() + args.timeout
    while replay.size < max(args.warmup, args.batch):
        if not take(0.5) and time.monotonic() > deadline:
            raise SystemExit(f"dqn_grid: fewer than {max(args.warmup, args.batch)} transitions "
                             f"in {args.timeout} s from the engine")
    emit({"event": "warm", "buffer": replay.size, "read": n_read},
         f"dqn_grid: {replay.size} transitions from {n_read} records; training")

    t0 = time.monotonic()
    t_last, read_last, trans_last = t0, n_read, n_trans
    loss_sum, q_sum, n_sum = 0.0, 0.0, 0
    for step in range(1, args.steps + 1):
        # One batch per step, without waiting when the engine is slow (an
        # agent waits a little: its games wait for it).
        take(0.002 if args.act else 0)

        s, a, r, s2, m2, d, wt, keys = replay.sample(args.batch, gen)
        x, x2 = features(torch, s), features(torch, s2)
        q = net(x).gather(1, a.unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            # Double DQN: the online network picks among the legal actions of
            # s', the target network values the pick.
            a2 = net(x2).masked_fill(~m2, float("-inf")).argmax(dim=1, keepdim=True)
            y = r + args.gamma * (1.0 - d) * target(x2).gather(1, a2).squeeze(1)
        if wt is None:
            loss = F.smooth_l1_loss(q, y)
        else:
            # Prioritized replay: each draw's loss by its importance weight.
            loss = (wt * F.smooth_l1_loss(q, y, reduction="none")).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
        replay.update(keys, (q.detach() - y))
        if step % args.target_every == 0:
            target.load_state_dict(net.state_dict())

        loss_sum += loss.item()
        q_sum += q.detach().mean().item()
        n_sum += 1
        if step % args.log_every == 0 or step == args.steps:
            now = time.monotonic()
            dt = max(now - t_last, 1e-9)
            rec = {"step": step, "loss": loss_sum / n_sum, "q": q_sum / n_sum,
                   "exp_per_s": (n_read - read_last) / dt,
                   "trans_per_s": (n_trans - trans_last) / dt,
                   "buffer": replay.size, "read": n_read, "transitions": n_trans,
                   "elapsed": now - t0}
            emit(rec, f"step {step:6d}  loss {rec['loss']:.5f}  q {rec['q']:+.4f}  "
                      f"exp/s {rec['exp_per_s']:9.0f}  trans/s {rec['trans_per_s']:9.0f}  "
                      f"buffer {replay.size}")
            t_last, read_last, trans_last = now, n_read, n_trans
            loss_sum, q_sum, n_sum = 0.0, 0.0, 0
    el = time.monotonic() - t0
    emit(dict({"event": "end", "steps": args.steps, "read": n_read, "transitions": n_trans,
               "seconds": el, "stats": source.stats(), "acting": args.act,
               "replay": args.replay}, **replay.summary()),
         f"dqn_grid: {args.steps} steps in {el:.1f} s, {n_read} records read, "
         f"{n_trans} transitions")


if __name__ == "__main__":
    sys.exit(main())
