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

struct xr_engine_opts {
	struct xr_shard_opts shard; /* games: the total; first_game_id: of shard 0 */
	uint32_t shards;            /* = the stream's rings */
	uint32_t stream;
	int numa_node;              /* CPUs to pin to; -1: any CPU this process may use */
};

/* Runs every shard until its share of opts->shard.count (each shard stops at
 * count / shards, rounded up) or *stop. Sums the shards' results into *total.
 * 0, or the first shard's error. */
int xr_engine_run(xr_arena *a, const xr_exp_template *t, const struct xr_engine_opts *o,
		  struct xr_shard_result *total);

#endif
