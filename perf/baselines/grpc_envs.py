#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The gRPC baseline of bench_agents: games served over a bidirectional
stream, observations out, actions in (grpcio, Debian's python3-grpcio).

Server (its own process, started by this one): a grpcio server with one
generic bidirectional-streaming method per mode, no protobuf (the messages
are raw bytes: the least gRPC can do per message). It hosts N grid games
through perf/baselines/envs.c, loaded as a shared library with ctypes, so
that each game step costs what it costs the engine (one C call steps a game
and writes its seats' observations and masks) and the baseline measures
its transport rather than Python stepping a game.

  per-game   a message per game step: the game's id, each seat's
             observation and mask, rewards and done flags (what an xring
             record carries per seat); the answer: the id and one action
             per seat. The server sends every game's first message, then
             steps a game whenever its answer comes in (every game in
             flight at once, as xring's games are).
  per-round  a message per round of all games (every seat's observation
             and mask); the answer: every seat's action; the server steps
             all the games, then sends the next round.

Client (this process): iterates the stream and answers each message with a
random legal action per seat, drawn with numpy from the seat's mask, on
a request iterator fed by a queue (grpcio's idiom for bidirectional
streams). Game steps a second: answers x games per answer, over --seconds
after --warmup.

  grpc_envs.py --lib build/perf/libbench_envs.so [--games N] [--board HxW]
               [--seconds S] [--warmup S] [--mode per-game|per-round]
               [--target 127.0.0.1:0 | unix:PATH]

Prints one JSON line (steps_per_s, messages_per_s, the client's share of
time spent choosing actions). Exit 77 with {"absent": why} when numpy or
grpcio cannot be imported.
"""
import argparse
import ctypes
import json
import os
import queue
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYERS = 2
METHODS = {"per-game": "/xring.bench.Envs/PerGame", "per-round": "/xring.bench.Envs/PerRound"}
OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def absent(why):
    print(json.dumps({"baseline": "grpc", "absent": why}), flush=True)
    sys.exit(77)


class Sizes(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in
                ("games", "players", "obs_bytes", "n_actions", "seat_bytes")]


class Envs:
    """perf/baselines/envs.h through ctypes."""

    def __init__(self, lib, n, h, w):
        self.lib = ctypes.CDLL(lib)
        u32, vp = ctypes.c_uint32, ctypes.c_void_p
        self.lib.bench_envs_create.argtypes = [u32, u32, u32, u32, ctypes.c_uint64,
                                               ctypes.POINTER(vp)]
        self.lib.bench_envs_sizes.argtypes = [vp, ctypes.POINTER(Sizes)]
        self.lib.bench_envs_observe.argtypes = [vp, u32, u32, vp]
        self.lib.bench_envs_step.argtypes = [vp, u32, u32, vp, vp, vp, vp]
        self.h = vp()
        rc = self.lib.bench_envs_create(n, h, w, PLAYERS, 1, ctypes.byref(self.h))
        if rc < 0:
            raise OSError(-rc, "bench_envs_create")
        self.sz = Sizes()
        self.lib.bench_envs_sizes(self.h, ctypes.byref(self.sz))

    def observe(self, first, count, seats):
        return self.lib.bench_envs_observe(self.h, first, count, seats)

    def step(self, first, count, actions, seats, rewards, done):
        return self.lib.bench_envs_step(self.h, first, count, actions, seats, rewards, done)


class Message:
    """A message of `count` games: u32 id (per-game: the game; per-round: the
    round), the seats (obs + mask each), f32 rewards, u8 done flags; and the
    ctypes addresses of its parts, for the C calls that fill it."""

    def __init__(self, sz, count):
        seats = count * PLAYERS * sz.seat_bytes
        self.buf = bytearray(4 + seats + 5 * count * PLAYERS)
        self.c = (ctypes.c_char * len(self.buf)).from_buffer(self.buf)
        a = ctypes.addressof(self.c)
        self.seats, self.rewards, self.done = a + 4, a + 4 + seats, a + 4 + seats + 4 * count * PLAYERS

    def out(self, ident):
        struct.pack_into("<I", self.buf, 0, ident)
        return bytes(self.buf)


def serve(args):
    """The server process: prints its address, serves until killed."""
    sys.path.insert(0, os.path.dirname(HERE))
    from python_baselines.steady import malloc_steady
    malloc_steady()
    from concurrent import futures
    import grpc

    envs = Envs(args.lib, args.games, args.h, args.w)
    sz, n = envs.sz, args.games

    def per_game(requests, context):
        m = Message(sz, 1)
        acts = (ctypes.c_int32 * PLAYERS)()
        for g in range(n):
            envs.observe(g, 1, m.seats)
            yield m.out(g)
        for req in requests:
            g = int.from_bytes(req[:4], "little")
            ctypes.memmove(acts, req[4:4 + 4 * PLAYERS], 4 * PLAYERS)
            if g >= n or envs.step(g, 1, acts, m.seats, m.rewards, m.done) < 0:
                return
            yield m.out(g)

    def per_round(requests, context):
        m = Message(sz, n)
        acts = (ctypes.c_int32 * (n * PLAYERS))()
        envs.observe(0, n, m.seats)
        rnd = 0
        yield m.out(rnd)
        for req in requests:
            ctypes.memmove(acts, req, 4 * n * PLAYERS)
            if envs.step(0, n, acts, m.seats, m.rewards, m.done) < 0:
                return
            rnd += 1
            yield m.out(rnd)

    handlers = {"PerGame": grpc.stream_stream_rpc_method_handler(per_game),
                "PerRound": grpc.stream_stream_rpc_method_handler(per_round)}
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=OPTIONS)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("xring.bench.Envs",
                                                                          handlers),))
    if args.target.startswith("unix:"):
        server.add_insecure_port(args.target)
        addr = args.target
    else:
        port = server.add_insecure_port(args.target)
        addr = f"{args.target.rsplit(':', 1)[0]}:{port}"
    server.start()
    print(addr, flush=True)
    server.wait_for_termination()


def play(args, addr, sz):
    """The client: answers every message until --warmup + --seconds; the
    game steps a second, and how much of its time choosing took."""
    import grpc
    import numpy as np

    rng = np.random.default_rng(7)
    count = 1 if args.mode == "per-game" else args.games
    seats_len = count * PLAYERS * sz.seat_bytes
    q = queue.SimpleQueue()

    def requests():
        while True:
            r = q.get()
            if r is None:
                return
            yield r

    channel = grpc.insecure_channel(addr, options=OPTIONS)
    call = channel.stream_stream(METHODS[args.mode])(requests())
    t0 = time.monotonic()
    start = end = None
    answers = counted = 0
    choosing = 0.0
    for msg in call:
        c0 = time.perf_counter()
        seats = np.frombuffer(msg, np.uint8, count=seats_len, offset=4)
        masks = seats.reshape(count * PLAYERS, sz.seat_bytes)[:, sz.obs_bytes:]
        acts = (rng.random(masks.shape, dtype=np.float32) * masks).argmax(axis=1)
        reply = acts.astype("<i4").tobytes()
        if count == 1:
            reply = msg[:4] + reply
        choosing += time.perf_counter() - c0
        q.put(reply)
        answers += 1
        now = time.monotonic()
        if start is None and now - t0 >= args.warmup:
            start, counted, choosing = now, 0, 0.0
        elif start is not None:
            counted += 1
            if now - start >= args.seconds:
                end = now
                break
    q.put(None)
    call.cancel()
    channel.close()
    secs = end - start
    # The client's numpy draw is the agent's work; what the pipeline would
    # do with an agent that cost nothing is bounded by the rest of the time.
    return {"steps_per_s": round(counted * count / secs), "messages_per_s": round(counted / secs),
            "seconds": round(secs, 2), "choosing_share": round(choosing / secs, 3),
            "steps_per_s_free_agent": round(counted * count / max(secs - choosing, 1e-9))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lib", required=True)
    ap.add_argument("--games", type=int, default=1000)
    ap.add_argument("--board", default="20x20")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--mode", choices=sorted(METHODS), default="per-game")
    ap.add_argument("--target", default="127.0.0.1:0")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.h, args.w = (int(x) for x in args.board.split("x"))
    try:
        import grpc  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as e:
        absent(f"{e} (Debian: apt-get install python3-grpcio python3-numpy)")
    if args.serve:
        serve(args)
        return
    srv = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"] + sys.argv[1:],
                           stdout=subprocess.PIPE, text=True)
    try:
        addr = srv.stdout.readline().strip()
        if not addr:
            raise SystemExit("grpc_envs: the server did not start")
        sz = Envs(args.lib, 1, args.h, args.w).sz
        res = play(args, addr, sz)
    finally:
        srv.kill()
        srv.wait()
    res.update({"baseline": "grpc", "mode": args.mode, "games": args.games, "board": args.board,
                "transport": "unix" if args.target.startswith("unix:") else "tcp loopback"})
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
