#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench_gym: xring.gym's vector env against Gymnasium's own vector envs on
the same game (issue 12, item 7), one run, each figure beside its bound.

Environment steps a second (num_envs x vector steps / seconds) with random
actions (the batched action space's sample(): mostly illegal moves, which
both sides play as the no-op), each environment one seat of a 2-player
grid game whose other player draws a random legal action:

  xring        xring.gym.make_vec(num_envs) on an engine of its own: the
               other player is the engine's built-in policy; copy=True (the
               default: arrays the caller keeps) and copy=False (views of
               the ring when a step's records allow it).
  sync         gymnasium.vector.SyncVectorEnv over num_envs GridEnv, a
               pure-Python gymnasium.Env of one game: the same C game
               (perf/baselines/envs.c through ctypes, built as
               libbench_envs.so), the other player's random legal action
               drawn by the same C function the engine uses
               (xr_policy_random_legal).
  async        gymnasium.vector.AsyncVectorEnv over the same GridEnv, one
               worker process per environment, shared memory on (Gymnasium's
               default), forked.

Targets: xring >= 10x async at 1,024 environments. A baseline that cannot
run (no gymnasium, or too many processes for the machine) is reported
absent, with why.

  perf/bench_gym.py [--envs 64,1024,8192] [--board 20x20] [--seconds 3]
                    [--rounds 3] [--async-max 1024] [--json]

Runs under Debian's /usr/bin/python3 with the build's package
($XRING_BUILD_DIR/python, default build/) and ../shared/thirdparty/python
for gymnasium. docs/ecosystem.md has the results.
"""
import argparse
import ctypes
import json
import os
import pathlib
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("XRING_BUILD_DIR") or REPO / "build")
sys.path.insert(0, str(BUILD / "python"))
THIRDPARTY = REPO.parent / "shared" / "thirdparty" / "python"
if THIRDPARTY.is_dir():
    sys.path.insert(1, str(THIRDPARTY))
os.environ.setdefault("XRING_BIN", str(BUILD / "xring"))

import numpy as np  # noqa: E402

import xring.gym as xg  # noqa: E402

try:
    import gymnasium
except ImportError:
    gymnasium = None

LIB = BUILD / "perf" / "libbench_envs.so"


class _Sizes(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in
                ("games", "players", "obs_bytes", "n_actions", "seat_bytes")]


def grid_env_class():
    """GridEnv: one 2-player grid game as a pure-Python gymnasium.Env."""
    lib = ctypes.CDLL(str(LIB))
    u32, vp = ctypes.c_uint32, ctypes.c_void_p
    lib.bench_envs_create.argtypes = [u32, u32, u32, u32, ctypes.c_uint64, ctypes.POINTER(vp)]
    lib.bench_envs_sizes.argtypes = [vp, ctypes.POINTER(_Sizes)]
    lib.bench_envs_observe.argtypes = [vp, u32, u32, vp]
    lib.bench_envs_step.argtypes = [vp, u32, u32, vp, vp, vp, vp]
    lib.bench_envs_destroy.argtypes = [vp]
    lib.xr_policy_random_legal.argtypes = [vp, u32, ctypes.POINTER(ctypes.c_uint64)]
    lib.xr_policy_random_legal.restype = ctypes.c_int32

    class GridEnv(gymnasium.Env):
        metadata = {"render_modes": []}

        def __init__(self, h, w, seed=0):
            self.h = vp()
            if lib.bench_envs_create(1, h, w, 2, seed, ctypes.byref(self.h)) < 0:
                raise RuntimeError("bench_envs_create failed")
            sz = _Sizes()
            lib.bench_envs_sizes(self.h, ctypes.byref(sz))
            self.sz = sz
            self.seats = np.zeros(2 * sz.seat_bytes, np.uint8)
            self.rewards = np.zeros(2, np.float32)
            self.done = np.zeros(2, np.uint8)
            self.acts = np.zeros(2, np.int32)
            self.rng = ctypes.c_uint64(seed + 1)
            ob = sz.obs_bytes
            self.observation_space = gymnasium.spaces.Box(0, 255, (9, h, w), np.uint8)
            self.action_space = gymnasium.spaces.Discrete(sz.n_actions)
            self._obs = self.seats[:ob].reshape(9, h, w)
            self._mask = self.seats[ob:sz.seat_bytes]
            self._mask1 = self.seats[sz.seat_bytes + ob:]

        def _p(self, a):
            return a.ctypes.data

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            lib.bench_envs_observe(self.h, 0, 1, self._p(self.seats))
            return self._obs.copy(), {"action_mask": self._mask.copy()}

        def step(self, action):
            self.acts[0] = action
            self.acts[1] = lib.xr_policy_random_legal(self._p(self._mask1), self.sz.n_actions,
                                                      ctypes.byref(self.rng))
            lib.bench_envs_step(self.h, 0, 1, self._p(self.acts), self._p(self.seats),
                                self._p(self.rewards), self._p(self.done))
            ended = bool(self.done[0])
            return (self._obs.copy(), float(self.rewards[0]), ended, False,
                    {"action_mask": self._mask.copy()})

        def close(self):
            if self.h:
                lib.bench_envs_destroy(self.h)
                self.h = vp()

    return GridEnv


def rate(envs, n, seconds):
    """Environment steps a second of vector env `envs` (n environments)."""
    envs.reset(seed=0)
    space = envs.action_space
    space.seed(0)
    for _ in range(3):                      # warm-up
        envs.step(space.sample())
    steps = 0
    t0 = time.monotonic()
    while True:
        envs.step(space.sample())
        steps += 1
        dt = time.monotonic() - t0
        if dt >= seconds:
            return n * steps / dt


def measure(kind, n, args, GridEnv):
    h, w = args.board
    if kind == "xring":
        e = xg.make_vec(n, board=(h, w), seed=0)
    elif kind == "xring_view":
        e = xg.make_vec(n, board=(h, w), seed=0, copy=False)
    elif kind == "sync":
        e = gymnasium.vector.SyncVectorEnv([lambda i=i: GridEnv(h, w, i) for i in range(n)])
    else:
        e = gymnasium.vector.AsyncVectorEnv([lambda i=i: GridEnv(h, w, i) for i in range(n)],
                                            shared_memory=True, context="fork")
    try:
        r = rate(e, n, args.seconds)
        extra = e.stats() if kind.startswith("xring") else {}
    finally:
        e.close()
    return r, extra


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--envs", default="64,1024,8192")
    ap.add_argument("--board", default="20x20")
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--async-max", type=int, default=1024,
                    help="largest num_envs AsyncVectorEnv is run at (a process each)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    args.board = tuple(int(x) for x in args.board.lower().split("x"))
    sizes = [int(x) for x in args.envs.split(",")]
    GridEnv = grid_env_class() if gymnasium is not None and LIB.is_file() else None
    why = ("gymnasium is not importable" if gymnasium is None else
           f"{LIB} is not built (cmake --build {BUILD} --target bench_envs)")
    kinds = ["xring", "xring_view", "sync", "async"]
    out = {"board": list(args.board), "seconds": args.seconds, "rounds": args.rounds,
           "cpus": os.cpu_count(), "sizes": {}}
    for n in sizes:
        res = {k: [] for k in kinds}
        absent = {}
        views = 0
        for r in range(args.rounds):
            for k in kinds:
                if k in absent:
                    continue
                if k in ("sync", "async") and GridEnv is None:
                    absent[k] = why
                    continue
                if k == "async" and n > args.async_max:
                    absent[k] = (f"{n} worker processes: past --async-max {args.async_max} "
                                 f"on this {os.cpu_count()}-CPU machine")
                    continue
                try:
                    v, extra = measure(k, n, args, GridEnv)
                except (OSError, RuntimeError, EOFError, BrokenPipeError) as e:
                    absent[k] = f"{type(e).__name__}: {e}"
                    continue
                res[k].append(v)
                if k == "xring_view":
                    views += extra.get("views", 0)
                print(f"bench_gym: {n} envs, round {r + 1}, {k}: {v:,.0f} steps/s",
                      file=sys.stderr)
        row = {k: statistics.median(v) for k, v in res.items() if v}
        row["absent"] = absent
        row["xring_view_steps_as_views"] = views
        for b in ("sync", "async"):
            if b in row and "xring" in row:
                row[f"xring_over_{b}"] = row["xring"] / row[b]
        out["sizes"][n] = row
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"bench_gym: 2-player {args.board[0]}x{args.board[1]} grid games, random actions, "
          f"environment steps a second, median of {args.rounds} rounds of {args.seconds} s; "
          f"{os.cpu_count()} CPUs")
    for n, row in out["sizes"].items():
        print(f"  {n} envs:")
        for k in kinds:
            if k in row:
                print(f"    {k:11s} {row[k]:>14,.0f}")
            else:
                print(f"    {k:11s} absent: {row['absent'].get(k)}")
        for b in ("sync", "async"):
            if f"xring_over_{b}" in row:
                tgt = "  (target >= 10: " + ("met)" if row["xring_over_async"] >= 10
                                              else "NOT met)") if b == "async" and n == 1024 \
                    else ""
                print(f"    xring / {b}: {row[f'xring_over_{b}']:.1f} x{tgt}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
