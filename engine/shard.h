/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_SHARD_H
#define XR_ENGINE_SHARD_H

/*
 * A shard: one thread that owns a set of games and the ring it writes their
 * experience to. Every game step of every live player becomes one Experience
 * record, built in place in ring space: the observation and legal-action
 * mask are written by the game straight into the record.
 *
 * Record convention (that of vectorised environments): the record of turn t
 * carries obs_t and mask_t, the action chosen at obs_t, and the reward and
 * done/truncated flags that the previous action led to. A terminal
 * observation therefore gets a record of its own with done set; the game is
 * reset after it. Pair consecutive records of one (game_id, player_id) to
 * form transitions.
 *
 * Time: with tick_ns = 0 games step round robin as fast as the ring allows.
 * Otherwise each game has a turn deadline on the shard's timer wheel
 * (engine/timer_wheel.c), every tick_ns; the shard sleeps until the wheel's
 * next tick on an io_uring absolute timeout (engine/uring_clock.c). A turn
 * is never played before its deadline; a shard that falls behind catches up.
 * Actions come from the random-legal policy (attached agents are on the
 * roadmap). The same wheel carries the shard's stats tick; the engine's
 * heartbeat is its host's (engine/host.c), one per engine.
 */

#include <signal.h>
#include <stdint.h>

#include "xring/arena.h"
#include "xring/game.h"
#include "xring/record.h"

struct xr_shard_opts {
	const xr_game_vtable *vt;
	xr_game_config cfg;    /* seed: game i's first episode uses seed + i */
	uint32_t games;
	uint32_t first_game_id;
	xr_dtype obs_dtype;    /* U8 or F32 */
	uint64_t count;        /* records to write; 0 = until *stop */
	uint64_t tick_ns;      /* turn deadline period; 0 = step as fast as possible */
	/* Backpressure on lossless streams: past high * capacity of unread
	 * bytes the shard pauses its games, until below low * capacity.
	 * 0 = off (the games then wait only when the ring is full). */
	double high_watermark, low_watermark;
	/* A lossy reader's held batch in the writer's way this long: evicted
	 * (xr_writer_set_lease_timeout). 0: the writer's default (10 s). */
	uint64_t lease_timeout_ns;
	volatile sig_atomic_t *stop;
};

struct xr_shard_result {
	uint64_t records;      /* written */
	uint64_t dropped;      /* lossy: dropped at the writer */
	uint64_t steps;        /* game steps */
	uint64_t episodes;     /* finished */
	uint64_t waits;        /* lossless: calls to xr_writer_wait() */
	uint64_t pauses;       /* lossless: times the games paused for readers
				* (ring full, or past the high watermark) */
	uint64_t paused_ns;
	uint64_t turns_late;   /* tick mode: turns played a tick or more late */
	uint64_t elapsed_ns;
};

/* The record shape of the game's experience: obs (C, H, W) of dtype, mask
 * of n_actions bytes. Creates and destroys one game to ask. 0 or -errno. */
int xr_shard_shape(const xr_game_vtable *vt, const xr_game_config *cfg, xr_dtype dtype,
		   xr_exp_shape *out);

/* Runs the shard until opts->count records or *opts->stop. 0 or -errno. */
int xr_shard_run(xr_writer *w, const xr_exp_template *t, const struct xr_shard_opts *opts,
		 struct xr_shard_result *res);

#endif
