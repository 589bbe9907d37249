/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_ENGINE_H
#define XR_ENGINE_ENGINE_H

/*
 * The engine's shards: S threads, each pinned to a CPU of the arena's NUMA
 * node, each owning an even share of the games and one ring of the stream.
 * No lock is shared between shards and the thread count does not depend on
 * the number of games.
 */

#include <stdint.h>

#include "engine/shard.h"

struct xr_gdir;

struct xr_engine_opts {
	struct xr_shard_opts shard; /* games: the total; first_game_id: of shard 0 */
	uint32_t shards;            /* = the stream's rings */
	uint32_t stream;
	int numa_node;              /* CPUs to pin to; -1: any CPU this process may use */
	struct xr_gdir *games;     /* the game directory (engine/games.h), for
				     * games at runtime; NULL: none */
	/* Streams 1.. of the arena, for games created at runtime: their
	 * record templates and observation dtypes (stream 0's are t and
	 * shard.obs_dtype). */
	uint32_t n_more;
	const xr_exp_template *more_t[XR_SHARD_STREAMS_MAX - 1];
	xr_dtype more_dtype[XR_SHARD_STREAMS_MAX - 1];
};

struct xr_engine;

/* Starts every shard's thread; each runs until its share of opts->count
 * (count / shards, rounded up) or *opts->shard.stop, and calls ended(arg)
 * as it ends (from its own thread; may be NULL). 0 and the engine in *out,
 * or -EINVAL (fewer games than shards, without a directory), -ENOMEM,
 * -EAGAIN. */
int xr_engine_start(xr_arena *a, const xr_exp_template *t, const struct xr_engine_opts *o,
		    void (*ended)(void *), void *arg, struct xr_engine **out);

/* The number of shards, and the writer of shard k's ring of the first
 * stream. */
uint32_t xr_engine_shards(const struct xr_engine *e);
xr_writer *xr_engine_writer(const struct xr_engine *e, uint32_t k);

/* Every writer of every shard, of every stream (to cancel their waits),
 * into ws[0..max). Returns how many. */
uint32_t xr_engine_writers(const struct xr_engine *e, xr_writer **ws, uint32_t max);

/* Waits for every shard to end, sums their results into *total (may be
 * NULL) and frees e. 0, or the first shard's error. */
int xr_engine_join(struct xr_engine *e, struct xr_shard_result *total);

/* Start and join: for callers that have nothing to do meanwhile. */
int xr_engine_run(xr_arena *a, const xr_exp_template *t, const struct xr_engine_opts *o,
		  struct xr_shard_result *total);

#endif
