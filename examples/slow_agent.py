#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""slow_agent: a slow agent beside a fast one, on one engine.

A game server with LLM players has a few players that take a fifth of a
second to decide, and many that decide in microseconds. With xring the
slow ones cannot hold the fast ones up: each game waits only for its own
seats, at most --action-timeout-ms, and then plays the fallback.

This example starts an engine of GAMES 2-player grid games (--tick-ms 0,
--action-timeout-ms TIMEOUT), a fast agent (this process: numpy, the
first legal action, every seat of the other games) and a slow agent (a
child process that thinks THINK ms per batch before it answers, every seat
of the first SLOW games), and a trainer reading the slow games' records.
It measures the fast agent's answers a second with the slow agent attached
against without it (its seats then the built-in policy's), ROUNDS times
each, alternating, and checks the slow seats' fallbacks: the engine's
count of the slow agent's timeouts equals the records that say TIMEOUT
(the trainer's count), exactly.

    examples/slow_agent.py                       # 1000 games, 1 % slow, 200 ms
    examples/slow_agent.py --games 200 --seconds 1 --rounds 2 --json

Prints what it measured (one JSON object with --json); exits 1 if the counts
disagree or an agent failed. tests/python/bindings/test_examples.py runs a
short variant; perf/slow_agent.sh the full one.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np

import xring

TIMEOUT = xring.SOURCES.index("TIMEOUT")


def slow_role(args):
    """The slow agent: answers each batch THINK ms after it came."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    eng = xring.attach(args.name, timeout=10)
    agent = eng.agent(games=[(0, args.slow - 1)], label="slow", max_wait=0.05)
    print("ready", flush=True)
    while not stop:
        b = agent.recv()
        if b is None:
            continue
        # A decision that takes its time (an LLM's call, a search).
        time.sleep(args.think_ms / 1000)
        agent.send(np.asarray(b.mask).argmax(axis=1))
    # Give the seats back, then wait until the engine's counts (published
    # twice a second) cover every answer sent, so they can be compared.
    claims = list(agent.claims)
    st = agent.stats()
    for c in claims:
        agent.release_claim(c)
    agent.close()
    eng.close()
    print(json.dumps({k: st[k] for k in ("agent", "records", "sent")}), flush=True)


class Trainer(threading.Thread):
    """Reads the slow games' records (lossless), counting those that say
    their seat's last answer was a timeout's fallback."""

    def __init__(self, eng, slow):
        super().__init__(daemon=True)
        self.reader = eng.reader(games=[(0, slow - 1)], batch=4096, max_wait=0.01)
        self.timeouts = 0
        self.records = 0
        self.stop = False

    def run(self):
        while not self.stop:
            b = self.reader.read(timeout=0.05)
            if b is None:
                continue
            with b:
                self.timeouts += int(np.count_nonzero(np.asarray(b.applied_by) == TIMEOUT))
                self.records += len(b)
        self.reader.close()


def fast_rate(agent, seconds):
    """The fast agent's answers a second over `seconds`, and its
    fallbacks meanwhile."""
    n = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        b = agent.recv(timeout=0.05)
        if b is None:
            continue
        n += len(b)
        agent.send(np.asarray(b.mask).argmax(axis=1))
    return n / (time.monotonic() - t0)


def play_while(agent, call):
    """call() in a thread while the fast agent plays on; its result."""
    out = []
    t = threading.Thread(target=lambda: out.append(call()))
    t.start()
    while t.is_alive():
        fast_rate(agent, 0.02)
    t.join()
    return out[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--games", type=int, default=1000)
    ap.add_argument("--slow", type=int, default=None, help="slow games (default: 1 %%)")
    ap.add_argument("--think-ms", type=float, default=200)
    ap.add_argument("--timeout-ms", type=float, default=50)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--board", default="8x8")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--role", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--name", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.slow = args.slow or max(1, args.games // 100)
    if args.role == "slow":
        return slow_role(args)

    ep = xring.EngineProcess(["--games", args.games, "--board", args.board, "--tick-ms", "0",
                              "--action-timeout-ms", args.timeout_ms, "--ring-size", "64M"])
    eng = ep.engine
    trainer = Trainer(eng, args.slow)
    trainer.start()
    fast = eng.agent(games=[(args.slow, args.games - 1)], label="fast", max_wait=0.05)
    alone, beside = [], []
    slow_stats = None
    try:
        for r in range(args.rounds):
            alone.append(fast_rate(fast, args.seconds))
            # The trainer's count before this slow agent: the records of its
            # play are what is added from here (the trainer thread only adds).
            base = trainer.timeouts
            child = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--role", "slow", "--name",
                 ep.name, "--think-ms", str(args.think_ms), "--games", str(args.games),
                 "--slow", str(args.slow)], stdout=subprocess.PIPE, text=True)
            # The fast agent plays on whatever this process waits for: its
            # games would time out otherwise.
            ready = play_while(fast, child.stdout.readline)
            if ready.strip() != "ready":
                raise RuntimeError("the slow agent did not start")
            beside.append(fast_rate(fast, args.seconds))
            child.send_signal(signal.SIGTERM)
            out = play_while(fast, child.stdout.read)
            if play_while(fast, child.wait) != 0:
                raise RuntimeError("the slow agent failed")
            slow_stats = json.loads(out.strip().splitlines()[-1])
            slot = slow_stats["agent"]
            # The engine's count of that agent's timeouts (published twice a
            # second) against the records that say TIMEOUT.
            deadline = time.monotonic() + 10
            while True:
                timeouts = play_while(fast, lambda: agent_timeouts(ep.name, slot))
                seen = trainer.timeouts - base
                if timeouts == seen or time.monotonic() > deadline:
                    break
            if timeouts != seen:
                raise RuntimeError(f"round {r + 1}: the engine counted {timeouts} timeouts of "
                                   f"the slow agent, its seats' records say {seen}")
        fast_st = fast.stats()
    finally:
        fast.close()
        trainer.stop = True
        trainer.join()
        ep.close()
    ratios = [b / a for a, b in zip(alone, beside)]
    res = {"games": args.games, "slow_games": args.slow, "think_ms": args.think_ms,
           "timeout_ms": args.timeout_ms, "fast_alone": alone, "fast_beside_slow": beside,
           "ratio_median": float(np.median(ratios)), "ratios": ratios,
           "fast_fallbacks": fast_st["fallbacks"], "fast_actions": fast_st["actions"],
           "slow_records": slow_stats["records"],
           "slow_sent": slow_stats["sent"], "slow_timeouts_last_round": timeouts,
           "trainer_records": trainer.records}
    if args.json:
        print(json.dumps(res))
    else:
        print(f"fast agent ({args.games - args.slow} games): "
              f"{np.median(alone):,.0f} answers/s alone, {np.median(beside):,.0f} beside a "
              f"slow agent thinking {args.think_ms:.0f} ms on {args.slow} games: "
              f"{res['ratio_median']:.2f} x (rounds {', '.join(f'{x:.2f}' for x in ratios)}); "
              f"its fallbacks {fast_st['fallbacks']}")
        print(f"slow agent: {slow_stats['records']} records, {slow_stats['sent']} answers, "
              f"all late; the engine counted {timeouts} timeouts in the last round, "
              f"the records say the same")
    return 0


def agent_timeouts(name, slot):
    """The engine's count of agent `slot`'s timeouts (`xring info --json`)."""
    out = subprocess.run([xring._find_xring_binary(), "info", name, "--json"],
                         capture_output=True, text=True, check=True).stdout
    for a in json.loads(out).get("agents", []):
        if a["agent"] == slot:
            return a["timeouts"]
    raise RuntimeError(f"agent {slot} is not in `xring info {name} --json`")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, xring.XringError) as e:
        print(f"slow_agent: {e}", file=sys.stderr)
        sys.exit(1)
