/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_SHARD_H
#define XR_ENGINE_SHARD_H

/*
 * A shard: one thread that owns a set of games and the rings it writes their
 * experience to (ring k of every stream, for shard k). Every game step of
 * every live player becomes one Experience record, built in place in ring
 * space: the observation and legal-action mask are written by the game
 * straight into the record.
 *
 * Record convention (that of vectorised environments): the record of turn t
 * of a player carries obs_t and mask_t; the reward and done/truncated its
 * previous step left; `applied` = the action applied at that step
 * (a_{t-1}) and `applied_by` = who chose it (XR_SRC_POLICY: the built-in
 * policy; -1 and XR_SRC_NONE in an episode's first record, no step yet);
 * and `action` = what the built-in policy chose at obs_t, which is applied
 * at the next step (-1 when an agent holds the seat: its answer, or a
 * fallback, is what the next record's `applied` says). A transition of a seat is
 *   (obs_t, mask_t, applied_{t+1}, reward_{t+1}, done_{t+1},
 *    truncated_{t+1}, obs_{t+1})
 * from two consecutive records of one (game_id, player_id); built from
 * `applied` rather than `action`, it holds whoever plays the seat. A
 * terminal observation gets a record of its own with done set; the game is
 * reset after it. An episode cut short (its game destroyed or reset, or
 * the engine stopped) ends with a record of its own too, truncated set and
 * action -1 (none is taken from it), its `applied` the last step's: a
 * trainer sees every episode end.
 *
 * Games: those given at start (opts.games, ids first_game_id...), and those
 * the game directory (engine/games.c) creates, destroys and resets while
 * the shard runs, through the shard's lifecycle queue (engine/
 * lifecycle_queue.h), drained between rounds: the shard never waits for
 * the directory nor the directory for it. Per-game state lives in a slot
 * table sized at start (opts.capacity); slots are reused.
 *
 * Seeds: episode e of a game seeded s is played from episode_seed(s, e)
 * (s itself for e = 0), and the game's random-legal policy is reseeded from
 * the same at each episode start, so that a game's records depend on its
 * seed alone: a game reset to s writes what a new game seeded s writes.
 *
 * Time: with tick_ns = 0 games step round robin as fast as the ring allows.
 * Otherwise each game has a turn deadline on the shard's timer wheel
 * (engine/timer_wheel.c), every tick_ns; the shard sleeps until the wheel's
 * next tick on an io_uring absolute timeout (engine/uring_clock.c). A turn
 * is never played before its deadline; a shard that falls behind catches up.
 * The same wheel carries the shard's stats tick; the engine's heartbeat is
 * its host's (engine/host.c), one per engine.
 *
 * Agents (docs/agents.md): a seat an agent holds gets its record as any
 * other, with action -1 (the agent chooses); the game then waits for the
 * agent's answer in its action slot (engine/seats.h): without a tick it
 * steps as soon as every held seat of it has answered, or at
 * action_timeout_ns; with a tick, at its next tick. A missing, wrong-turn,
 * out-of-range or illegal answer gets the fallback, and the seat's next
 * record says which (applied_by). Games no agent holds a seat of step at
 * once, as before.
 */

#include <signal.h>
#include <stdint.h>

#include "engine/interest.h"
#include "engine/lifecycle_queue.h"
#include "engine/seats.h"
#include "xring/arena.h"
#include "xring/game.h"
#include "xring/record.h"

/* Streams beyond the first that a shard writes (one ring each). */
struct xr_shard_stream {
	xr_writer *w;
	const xr_exp_template *t;
	xr_dtype obs_dtype;
};

#define XR_SHARD_STREAMS_MAX 8

/* What the directory may read of a slot while the shard plays it, and the
 * handshake of its resets (engine/games.c, "Resets"): the directory
 * stores the seed of the game's next reset, the shard counts the reset
 * orders of the slot's game it has taken, and the directory sends a new
 * order only when none is waiting, so that a game has at most one reset
 * waiting however often it is reset (the later ones change its seed). */
struct xr_game_pub {
	_Atomic uint32_t turn;
	_Atomic uint32_t resets;        /* reset orders taken (shard; 0 at creation) */
	_Atomic uint64_t episodes;
	_Atomic uint64_t reset_seed;    /* its waiting reset's seed (directory) */
};

struct xr_shard_opts {
	const xr_game_vtable *vt; /* of the games given at start */
	xr_game_config cfg;    /* seed: game i's first episode uses seed + i */
	uint32_t games;        /* given at start, in stream 0 */
	uint32_t first_game_id;
	uint32_t capacity;     /* slots: games at once, at start or created;
				* 0: games */
	xr_dtype obs_dtype;    /* stream 0's: U8 or F32 */
	/* Streams 1.. (stream 0 is xr_shard_run()'s w and t). */
	uint32_t n_more;
	struct xr_shard_stream more[XR_SHARD_STREAMS_MAX - 1];
	/* Runtime games: orders in (creations and destructions; resets),
	 * freed slots out (all NULL: none), and where the shard shows each
	 * slot's turn and episodes ([capacity]; may be NULL). */
	struct xr_lc_queue *in, *resets, *out;
	struct xr_game_pub *pub;
	/* Lazy observations: records only for the pairs some reader wants
	 * (engine/interest.h); NULL: for every pair. */
	const struct xr_interest *interest;
	uint64_t count;        /* records to write; 0 = until *stop */
	uint64_t tick_ns;      /* turn deadline period; 0 = step as fast as possible */
	/* Backpressure on lossless streams: past high * capacity of unread
	 * bytes the shard pauses its games, until below low * capacity.
	 * 0 = off (the games then wait only when the ring is full). */
	double high_watermark, low_watermark;
	/* A lossy reader's held batch in the writer's way this long: evicted
	 * (xr_writer_set_lease_timeout). 0: the writer's default (10 s). */
	uint64_t lease_timeout_ns;
	/* On *stop, how long the final records of the episodes in flight may
	 * wait for lossless readers; 0: XR_SHARD_DRAIN_NS. Past it, the rest
	 * are counted in finals_lost. */
	uint64_t drain_ns;
	_Atomic int *stop;     /* set (relaxed) from any thread or a signal handler:
				* a lock-free atomic, so both may */
	/* Agents (engine/seats.h): where to look seats up (NULL: the
	 * built-in policy plays every seat), this shard's index among the
	 * engine's, what a seat's missing or bad action becomes (enum
	 * xr_fallback), and, without a tick, how long a turn waits for its
	 * agents (0: XR_SHARD_ACTION_TIMEOUT_NS). */
	struct xr_seats *seats;
	uint32_t index;
	uint32_t fallback;
	uint64_t action_timeout_ns;
	uint32_t input_delay;     /* an answer to turn t's record applies at turn t + this */
	/* Per agent, this shard's counts (NULL: none kept), in the arena's
	 * agent table (shm/layout.h). */
	struct xr_agent_counts *agent_stats;
	uint32_t agent_stats_stride; /* agent a's: agent_stats[a * stride] */
	const struct xr_agent_info *agent_infos; /* [XR_MAX_AGENTS]: their gens */
};

#define XR_SHARD_ACTION_TIMEOUT_NS 100000000ull

#define XR_SHARD_DRAIN_NS 2000000000ull

struct xr_shard_result {
	uint64_t records;      /* written */
	uint64_t dropped;      /* lossy: dropped at the writer */
	uint64_t steps;        /* game steps */
	uint64_t episodes;     /* finished (ended, or cut short) */
	uint64_t waits;        /* lossless: calls to xr_writer_wait() */
	uint64_t pauses;       /* lossless: times the games paused for readers
				* (ring full, or past the high watermark) */
	uint64_t paused_ns;
	uint64_t turns_late;   /* tick mode: turns played a tick or more late */
	uint64_t created, destroyed, resets; /* runtime lifecycle orders done */
	uint64_t finals;       /* truncated records of episodes cut short */
	uint64_t finals_lost;  /* ...not written: the drain at stop timed out */
	uint64_t agent_actions;   /* seats' actions taken from their agents */
	uint64_t agent_fallbacks; /* ...and fallbacks in their place */
	uint64_t elapsed_ns;
};

/* The seed episode e of a game seeded s is played from. */
uint64_t xr_episode_seed(uint64_t s, uint64_t e);

/* The record shape of the game's experience: obs (C, H, W) of dtype, mask
 * of n_actions bytes. Creates and destroys one game to ask. 0 or -errno. */
int xr_shard_shape(const xr_game_vtable *vt, const xr_game_config *cfg, xr_dtype dtype,
		   xr_exp_shape *out);

/* Runs the shard until opts->count records or *opts->stop. With a stop
 * (not a count), the episodes in flight then end with final records.
 * 0 or -errno. */
int xr_shard_run(xr_writer *w, const xr_exp_template *t, const struct xr_shard_opts *opts,
		 struct xr_shard_result *res);

#endif
