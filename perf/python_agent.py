#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""python_agent: the Python agent of perf/bench_agents (issue 11, "a Python
agent (numpy, batches of 1,024) against the C agent").

Attaches to engine NAME as an agent, claims every seat of games 0..GAMES-1
and answers every record through Agent.step(), the call a Python policy
would use, with one vectorised numpy pass over the batch (no Python loop per
record): --policy random, a random legal action (a uniform draw per entry,
times the record's mask, argmax: 1,601 floats a record on the 20x20 board,
numpy's cost more than xring's); --policy first, the first legal action
(mask.argmax: the cheapest policy, so what is measured is the agent's path
through xring). The C agent of bench_agents plays the same policies. bench_agents runs it and measures the game
steps of the engine meanwhile, from the engine's own counters.

Protocol with the parent: prints "ready" once its seats are claimed and its
first batch has come, plays until SIGTERM, then prints one JSON line of its
counts (its index in the engine's agent table, records, answers sent, the
engine's actions and fallbacks) and
exits 0. Any error: one line on stderr, exit 1.

  python_agent.py --name NAME --games N [--batch 1024] [--policy random|first] [--spin]
"""
import argparse
import json
import signal
import sys

import numpy as np

import xring


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--games", type=int, required=True)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--spin", action="store_true")
    ap.add_argument("--policy", choices=("random", "first"), default="random")
    args = ap.parse_args()

    stop = []
    # recv() returns to Python for signals (its wait ends with EINTR, or a
    # spinning wait's 50 ms slice ends): the handler only marks the stop.
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    rng = np.random.default_rng(12345)
    first = args.policy == "first"
    engine = xring.attach(args.name, timeout=5)
    with engine.agent(games=(0, args.games - 1), batch=args.batch, max_wait=0.05,
                      spin=args.spin, label="python-bench") as agent:
        b = None
        while b is None and not stop:
            b = agent.recv(timeout=5)
        print("ready", flush=True)
        while not stop:
            if b is None:
                b = agent.recv()
                continue
            mask = b.mask
            if first:
                act = mask.argmax(axis=1).astype(np.int32)
            else:
                u = rng.random(mask.shape, np.float32)
                u *= mask
                act = u.argmax(axis=1).astype(np.int32)
            b = agent.step(act)
        if b is not None:
            agent.release()
        st = agent.stats()
    print(json.dumps({k: st[k] for k in ("agent", "records", "sent", "actions", "fallbacks",
                                         "dropped", "batches", "copies")}), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # one line, as the CLI does
        print(f"python_agent: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
