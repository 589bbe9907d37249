/* SPDX-License-Identifier: MIT */
#ifndef XR_PERF_BASELINES_ENVS_H
#define XR_PERF_BASELINES_ENVS_H

/*
 * The baselines' game loop: a vector of xring's built-in grid games
 * (xr_game_builtin_grid(), the game the engine hosts in bench_agents),
 * stepped through its C vtable with auto-reset, as a Gymnasium vector
 * environment steps its environments. What one seat gets per step is what
 * an xring record carries for it: the observation (C x H x W, u8), the
 * legal-action mask, the reward and whether the episode ended.
 *
 * The pipe-per-environment baseline links it into each worker process;
 * the gRPC baseline's Python server loads it as a shared library
 * (ctypes) so that its games cost what the engine's do, and the
 * baseline measures its transport, not Python stepping a game.
 *
 * Thread safety: one bench_envs is used by one thread at a time.
 */

#include <stdint.h>

struct bench_envs;

/* What one seat's observation takes in the caller's buffers: obs_bytes of
 * observation, then n_actions bytes of mask; a game's seats follow one
 * another (seat_bytes = obs_bytes + n_actions). */
struct bench_envs_sizes {
	uint32_t games, players;
	uint32_t obs_bytes, n_actions, seat_bytes;
};

/* n grid games of board h x w and `players` players, game i seeded
 * seed + i. 0 and *out, or -errno. */
int bench_envs_create(uint32_t n, uint32_t h, uint32_t w, uint32_t players,
		      uint64_t seed, struct bench_envs **out);
void bench_envs_sizes(const struct bench_envs *e, struct bench_envs_sizes *out);

/* Writes the observations and masks of games [first, first + count) into
 * seats (count * players * seat_bytes bytes). 0 or -EINVAL. */
int bench_envs_observe(struct bench_envs *e, uint32_t first, uint32_t count,
				      uint8_t *seats);

/* Steps games [first, first + count) with actions[(g - first) * players + p]
 * (an illegal or out-of-range action is the game's no-op); a game whose
 * episode ends starts the next (seeded on), so that what it writes into
 * seats is the new episode's first observation, done[] saying it ended.
 * rewards and done hold count * players entries. Returns the episodes
 * ended, or -errno. */
int bench_envs_step(struct bench_envs *e, uint32_t first, uint32_t count,
				   const int32_t *actions, uint8_t *seats, float *rewards,
				   uint8_t *done);

void bench_envs_destroy(struct bench_envs *e);

#endif
