#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""ppo_grid: PPO learning the grid game through xring.gym, on CPU.

One torch process acts for every seat of a vector env (central inference:
one forward pass per step for all of them) and trains on what it did
(on-policy PPO with GAE, masked logits so that only legal moves are
drawn). Each environment is player 0 of a 2-player grid game against the
engine's built-in policy (a uniform draw among the legal moves).

At the end it plays held-out seeds twice, with the trained policy and with
a uniform legal draw (the built-in policy's own play), one episode per
environment, and prints both mean episode rewards (+1 a win, -1 a loss, 0
a truncation at the turn limit): a policy that learned wins more than it
loses.

    examples/ppo_grid.py                            # 1,024 seats, 4x4, ~20 s
    examples/ppo_grid.py --board 6x6 --turn-limit 60 --updates 200 --json

Debian's /usr/bin/python3 has torch and numpy; the build's package on
PYTHONPATH (PYTHONPATH=build/python). tests/python/bindings/test_ppo_example.py
runs it on a bounded budget and checks the margin.
"""
import argparse
import json
import os
import sys
import time

# One BLAS thread: torch runs one thread (--threads), and the engine's shard
# needs the other CPU of a small machine; OpenBLAS would start one a CPU.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import torch
from torch import nn

import xring.gym


class Net(nn.Module):
    """A small actor-critic over the (9, H, W) observation: an MLP (the
    default: cheapest on one CPU) or two convolutions."""

    def __init__(self, h, w, n_actions, kind="mlp", hidden=128):
        super().__init__()
        if kind == "cnn":
            self.body = nn.Sequential(
                nn.Conv2d(9, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                nn.Linear(16 * h * w, hidden), nn.ReLU())
        else:
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(9 * h * w, hidden), nn.ReLU(),
                                      nn.Linear(hidden, hidden), nn.ReLU())
        self.pi = nn.Linear(hidden, n_actions)
        self.v = nn.Linear(hidden, 1)

    def forward(self, obs, mask):
        x = obs.float()
        # Army counts (channels 0..2) grow without bound: log-scaled.
        x = torch.cat([torch.log1p(x[:, :3]), x[:, 3:]], dim=1)
        z = self.body(x)
        logits = self.pi(z).masked_fill(mask == 0, -1e9)
        return logits, self.v(z).squeeze(-1)


def play(envs, n, seed, act):
    """One episode per environment from seed: the mean of their rewards."""
    obs, infos = envs.reset(seed=seed)
    total = np.zeros(n, np.float64)
    ended = np.zeros(n, bool)
    while not ended.all():
        a = act(obs, infos["action_mask"])
        obs, r, term, trunc, infos = envs.step(a)
        total += np.where(ended, 0.0, r)
        ended |= term | trunc
    return float(total.mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--envs", type=int, default=1024)
    ap.add_argument("--board", default="4x4")
    ap.add_argument("--turn-limit", type=int, default=40)
    ap.add_argument("--updates", type=int, default=60)
    ap.add_argument("--steps", type=int, default=16, help="rollout steps per update")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--minibatch", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--gamma", type=float, default=0.99)
    ap.add_argument("--lam", type=float, default=0.95)
    ap.add_argument("--clip", type=float, default=0.2)
    ap.add_argument("--ent", type=float, default=0.01)
    ap.add_argument("--net", choices=("mlp", "cnn"), default="mlp")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eval-seed", type=int, default=10**9, help="held-out seeds: from here")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: the engine's shard needs a CPU of its "
                         "own; torch's spinning worker threads starve it on a small machine)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    h, w = (int(x) for x in args.board.lower().split("x"))
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    n = args.envs

    envs = xring.gym.make_vec(n, board=(h, w), turn_limit=args.turn_limit, seed=args.seed)
    try:
        n_actions = envs.single_action_space.n
        net = Net(h, w, n_actions, args.net, args.hidden)
        opt = torch.optim.Adam(net.parameters(), lr=args.lr)

        def policy(obs, mask, greedy=False):
            with torch.no_grad():
                logits, _ = net(torch.as_tensor(obs), torch.as_tensor(mask))
            if greedy:
                return logits.argmax(-1).numpy()
            return torch.distributions.Categorical(logits=logits).sample().numpy()

        def uniform(obs, mask):
            m = np.asarray(mask)
            return (rng.random(m.shape) * (m != 0)).argmax(axis=1)

        t0 = time.monotonic()
        random_before = play(envs, n, args.eval_seed, uniform)
        obs, infos = envs.reset(seed=args.seed)
        mask = infos["action_mask"]
        prev_done = np.zeros(n, bool)
        T = args.steps
        env_steps = 0
        act_s = 0.0
        log = []
        for u in range(args.updates):
            b_obs = torch.zeros((T, n, 9, h, w), dtype=torch.uint8)
            b_mask = torch.zeros((T, n, n_actions), dtype=torch.uint8)
            b_act = torch.zeros((T, n), dtype=torch.int64)
            b_logp = torch.zeros((T, n))
            b_val = torch.zeros((T + 1, n))
            b_rew = torch.zeros((T, n))
            b_done = torch.zeros((T, n))
            b_valid = torch.zeros((T, n), dtype=torch.bool)
            ep_rew = []
            for t in range(T):
                o, m = torch.as_tensor(obs), torch.as_tensor(np.asarray(mask))
                with torch.no_grad():
                    logits, v = net(o, m)
                    dist = torch.distributions.Categorical(logits=logits)
                    a = dist.sample()
                b_obs[t], b_mask[t], b_act[t] = o, m, a
                b_logp[t], b_val[t] = dist.log_prob(a), v
                # NEXT_STEP autoreset: an environment whose episode ended at
                # the last step ignores this action (no transition to learn).
                b_valid[t] = torch.as_tensor(~prev_done)
                s0 = time.monotonic()
                obs, r, term, trunc, infos = envs.step(a.numpy())
                act_s += time.monotonic() - s0
                mask = infos["action_mask"]
                done = term | trunc
                b_rew[t] = torch.as_tensor(r)
                b_done[t] = torch.as_tensor(done | prev_done)
                ep_rew.extend(r[done & ~prev_done].tolist())
                prev_done = done
                env_steps += n
            with torch.no_grad():
                _, b_val[T] = net(torch.as_tensor(obs), torch.as_tensor(np.asarray(mask)))
            adv = torch.zeros((T, n))
            last = torch.zeros(n)
            for t in reversed(range(T)):
                nonterm = 1.0 - b_done[t]
                delta = b_rew[t] + args.gamma * b_val[t + 1] * nonterm - b_val[t]
                last = delta + args.gamma * args.lam * nonterm * last
                adv[t] = last
            ret = adv + b_val[:T]
            keep = b_valid.reshape(-1)
            f_obs = b_obs.reshape(T * n, 9, h, w)[keep]
            f_mask = b_mask.reshape(T * n, n_actions)[keep]
            f_act, f_logp = b_act.reshape(-1)[keep], b_logp.reshape(-1)[keep]
            f_adv, f_ret = adv.reshape(-1)[keep], ret.reshape(-1)[keep]
            f_adv = (f_adv - f_adv.mean()) / (f_adv.std() + 1e-8)
            total = len(f_act)
            for _ in range(args.epochs):
                perm = torch.randperm(total)
                for i in range(0, total, args.minibatch):
                    j = perm[i:i + args.minibatch]
                    logits, v = net(f_obs[j], f_mask[j])
                    dist = torch.distributions.Categorical(logits=logits)
                    ratio = torch.exp(dist.log_prob(f_act[j]) - f_logp[j])
                    pg = -torch.min(ratio * f_adv[j],
                                    ratio.clamp(1 - args.clip, 1 + args.clip) * f_adv[j]).mean()
                    vl = 0.5 * ((v - f_ret[j]) ** 2).mean()
                    loss = pg + 0.5 * vl - args.ent * dist.entropy().mean()
                    opt.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(net.parameters(), 0.5)
                    opt.step()
            mean_r = float(np.mean(ep_rew)) if ep_rew else float("nan")
            log.append(mean_r)
            if not args.json:
                print(f"update {u + 1}/{args.updates}: {len(ep_rew)} episodes, mean reward "
                      f"{mean_r:+.3f}, {env_steps / (time.monotonic() - t0):,.0f} env steps/s",
                      flush=True)
        train_s = time.monotonic() - t0
        trained = play(envs, n, args.eval_seed, lambda o, m: policy(o, m))
        random_after = play(envs, n, args.eval_seed, uniform)
    finally:
        envs.close()
    res = {"envs": n, "board": [h, w], "turn_limit": args.turn_limit, "updates": args.updates,
           "env_steps": env_steps, "train_seconds": round(train_s, 1),
           "env_step_share": round(act_s / train_s, 3),
           "random_mean_reward": (random_before + random_after) / 2,
           "trained_mean_reward": trained, "train_log": log}
    res["margin"] = res["trained_mean_reward"] - res["random_mean_reward"]
    if args.json:
        print(json.dumps(res))
    else:
        print(f"held-out seeds, one episode per seat: trained policy {trained:+.3f}, uniform "
              f"legal draws {res['random_mean_reward']:+.3f} (margin {res['margin']:+.3f}); "
              f"{env_steps:,} env steps in {train_s:.0f} s, {100 * res['env_step_share']:.0f} % "
              f"of it in envs.step()")
    return 0


if __name__ == "__main__":
    sys.exit(main())
