/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_GAMES_H
#define XR_ENGINE_GAMES_H

/*
 * The game directory: the engine's record of every game, the one place game
 * ids are given out (never reused), and where create, destroy, reset and
 * list requests from the control socket are decided. It lives on the
 * control thread (every call but the shard wiring comes from there); it
 * reaches the shards only through their lifecycle queues (engine/
 * lifecycle_queue.h), so no shard ever waits for it.
 *
 * What it decides: which stream a new game joins (the first whose shape,
 * kind, board, players and observation dtype, fits what the request names),
 * which shard hosts it (the one with the fewest games, of every stream: a
 * shard's time goes to all its games), and whether the caller may:
 * --max-games over all, a share per uid and three quarters of the games
 * for all other uids together (so that they cannot fill the engine: a
 * quarter stays for the engine's uid),
 * a token bucket per uid on creations and resets, and ownership (a uid
 * destroys and resets only the games it created; the engine's uid, any). Game instances are built here,
 * off the shards, from a per-shard pool of instances destroyed games left.
 */

#include <stdint.h>

#include "control/server.h"
#include "engine/shard.h"
#include "xring/table.h"
#include "xring/game.h"

/* One shape of game an engine's streams carry: games of it go to stream
 * `stream`. */
struct xr_gdir_shape {
	const xr_game_vtable *vt;
	uint32_t board_h, board_w, players;
	xr_dtype obs_dtype;
	uint32_t stream;
	const char *stream_name;
};

struct xr_gdir_table {
	const char *name;
	xr_table_opts opts;
	const char *restore;         /* a checkpoint file, or NULL */
};

struct xr_gdir_opts {
	uint32_t shards;
	uint32_t max_games;          /* live games, all uids; 0: 100000 */
	uint32_t max_games_per_uid;  /* games one other uid may create; 0: a
				      * quarter of max_games (the engine's uid:
				      * all) */
	double creates_per_uid;      /* creations and resets a second, bursts of
				      * twice that; 0: 10000 */
	const struct xr_gdir_shape *shapes;
	uint32_t n_shapes;
	const char *params;          /* every game's xr_game_config.params */
	/* The games given at start: `start` of shape 0, seeds from start_seed,
	 * turn limit start_turn_limit, spread over the shards as xr_engine
	 * spreads them (ids 0.., shard k's after shard k-1's). */
	uint32_t start;
	uint64_t start_seed;
	uint32_t start_turn_limit;
	/* --observe subscribed: records only for the (game, player) pairs some
	 * reader's filter selects (engine/interest.h), of max_readers slots. */
	bool observe_subscribed;
	uint32_t max_readers;
	/* Agents (engine/seats.h): at most max_agents (0: 16) at once; what
	 * their seats' missing or bad actions become (enum xr_fallback); how
	 * long a turn waits for them without a tick (0: the shard's default),
	 * and the tick (0: none), which agents are told. */
	uint32_t max_agents;
	uint32_t fallback;
	uint64_t action_timeout_ns;
	uint64_t tick_ns;
	uint32_t input_delay;        /* an answer for turn t applies at t + this */
	/* The writers' lease timeout (0: their default, 10 s): a lossy
	 * consumer group's members hold a grant a quarter of it at most. */
	uint64_t lease_timeout_ns;
	/* The writers' watermarks (0, 0: none), for producer rings' too. */
	double high_watermark, low_watermark;
	/* Replay tables made at start (xr__gdir_make_tables), before anyone
	 * can connect: restored from a checkpoint too when `restore` is set. */
	const struct xr_gdir_table *tables;
	uint32_t n_tables;
};

struct xr_gdir;

/* 0 and the directory in *out, or -EINVAL (more games at start than
 * max_games, no shape), -ENOMEM. */
int xr__gdir_create(const struct xr_gdir_opts *o, struct xr_gdir **out);

/* The arena the engine serves (after it is made, before the server
 * starts): where the agent table is shown. */
void xr__gdir_set_arena(struct xr_gdir *d, struct xr_arena *a);
/* The producer slots' service (engine/producers.h; NULL: none), which the
 * host owns: before the control socket serves, and NULL again before the
 * host stops it (the hooks are unset by then). */
struct xr_prods;
void xr__gdir_set_producers(struct xr_gdir *d, struct xr_prods *p);
/* Makes o.tables (and restores them), as the engine's own uid, before the
 * control socket serves: no trainer can open one before its restore. 0, or
 * the first failure with why ("--table NAME: ..."). */
int xr__gdir_make_tables(struct xr_gdir *d, char *why, size_t len);
/* The control socket serves from now on: tables' feeds may attach. */
void xr__gdir_serve(struct xr_gdir *d);

/* What shard k runs on: its queues, its slot count, and where it shows
 * its games' turns. Before the shards start. */
void xr__gdir_wire(struct xr_gdir *d, uint32_t k, struct xr_shard_opts *so);

/* The control server's hooks (control/server.h), with d as their ctx. */
extern const struct xr_server_games xr__gdir_hooks;

/* After every shard has ended (joined): frees every instance left in the
 * pools and queues, and the directory. */
void xr__gdir_destroy(struct xr_gdir *d);
/* Stops the table thread and ends every table (xr__thost_destroy): before
 * the arena is unmapped, since the tables' figures are kept in it. The
 * control server must be stopped (nothing calls in meanwhile). */
void xr__gdir_stop_tables(struct xr_gdir *d);

#endif
