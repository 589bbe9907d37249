/* SPDX-License-Identifier: MIT */
#ifndef XRING_GAMES_H
#define XRING_GAMES_H

/*
 * Games at runtime: create, reset, destroy and list an engine's games while
 * it runs, through its control socket (the same allow-list and limits as
 * readers; docs/control-protocol.md, "Games").
 *
 *     xr_games *c;
 *     uint32_t ids[64];
 *     xr_game_spec spec = {.board_h = 8, .board_w = 8, .players = 2,
 *                          .seed = 1000, .owned = 1};
 *     xr_games_open("demo", NULL, &c);
 *     xr_games_create(c, &spec, 64, ids);   -- games seeded 1000..1063
 *     xr_games_reset(c, ids[0], 42);        -- its next episode: seed 42
 *     xr_games_destroy(c, ids, 64);
 *     xr_games_close(c);                    -- owned games would go here
 *
 * A game joins the stream whose shape (game, board, players, observation
 * dtype) its spec names; read its records with a reader of that stream
 * (filter on its ids). Ids are the engine's, unique for its life and never
 * reused. A game's records depend on its seed alone: a game reset to a seed
 * writes, from its next episode on, the bytes a new game of that seed
 * writes (all but seq, t_ns and game_id). An episode cut short (destroy,
 * reset, engine stop) ends with a record of its own, truncated set.
 *
 * Who may do what: any admitted peer may create games and list them all; a
 * uid may destroy and reset the games it created, the engine's uid any.
 * Games created `owned` are destroyed when the handle that created them is
 * closed, or its process dies.
 *
 * Thread safety: one xr_games is used by one thread at a time, in the
 * process that opened it: a fork()ed child gets -EINVAL from its copy (it
 * opens its own handle), and closing the copy there leaves the parent's
 * connection, and its owned games, alone.
 */

#include <stdint.h>

#include "xring/export.h"
#include "xring/error.h"  /* the codes below: -ENOENT..., XR_EUNTRUSTED */
#include "xring/reader.h" /* xr_last_reason(), which every call below sets */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xr_games xr_games;

typedef struct xr_games_opts {
	/* The engine's uid, when not root or this user (see
	 * xr_reader_opts.engine_uid). 0: none other. */
	uint32_t engine_uid;
} xr_games_opts;

/* What to create. Zero fields pick what the engine's streams carry (the
 * first stream that fits the rest). */
typedef struct xr_game_spec {
	const char *game;        /* "grid", or a loaded plugin's name; NULL: any */
	uint32_t board_h, board_w;
	uint32_t players;
	const char *obs_dtype;   /* "u8", "f32"; NULL: any */
	uint32_t turn_limit;     /* 0: the game's default */
	uint64_t seed;           /* game j of the call: seed + j */
	int owned;               /* destroyed when this handle closes */
} xr_game_spec;

/* One game, as xr_games_list() reports it. */
typedef struct xr_game_info {
	uint32_t id;
	uint32_t shard;          /* the engine thread that plays it */
	uint32_t stream;         /* index of the stream its records go to */
	uint32_t players;
	uint32_t board_h, board_w;
	uint32_t turn_limit;     /* 0: the game's default */
	uint32_t turn;           /* of the episode in play */
	uint64_t seed;           /* of its creation, or its last reset */
	uint64_t episodes;       /* ended or cut short so far */
	uint32_t owner_uid;      /* who created it (the engine's uid: at start) */
	int32_t owner_pid;       /* informational (0: another pid namespace) */
	int owned;               /* goes with its creator's connection */
	int mine;                /* ...and that connection is this handle's */
	char game[32];           /* "grid", ... */
	char obs_dtype[8];       /* "u8", "f32" */
} xr_game_info;

/* At most this many games per create request, ids per destroy request;
 * the calls below split larger ones. */
#define XR_GAMES_REQUEST_MAX 1024u

/*
 * Connects to engine's control socket (as xr_reader_attach() does: only an
 * engine of a trusted uid) for game requests. 0 and the handle in *out, or
 * -ENOENT (no such engine), -EACCES (not allowed), XR_EUNTRUSTED, -errno;
 * xr_last_reason() says why.
 */
XR_API int xr_games_open(const char *engine, const xr_games_opts *opts, xr_games **out);

/*
 * Creates n games of spec; their ids into ids[0..n) (in order: game j has
 * seed spec->seed + j). Requests of up to XR_GAMES_REQUEST_MAX games are
 * all-or-nothing, of fewer for a large board: a request spends at most
 * 1024 tokens of the uid's creation bucket, a game one per 1,024 cells x
 * players (a 20x20 board of 2 players: 1; 128x128 of 8: 128, so 8 games a
 * request). Returns n, or fewer when a later request of a large n is
 * refused (those made exist; xr_last_reason() says why the rest did not),
 * or an error with nothing created:
 *   -ENOENT   no stream carries that shape (the reason lists those that do)
 *   -EBUSY    --max-games, or this uid's share, would be passed (the reason
 *             says the cap and the count)
 *   -EAGAIN   this uid's creation rate (the reason says when to retry)
 *   -EINVAL   the game refuses the config (turn limit), a bad spec
 *   -ENOTSUP  the engine hosts no games (a synthetic writer)
 *   -ECONNRESET the engine is gone; -errno
 */
XR_API int xr_games_create(xr_games *c, const xr_game_spec *spec, uint32_t n, uint32_t *ids);

/*
 * Destroys the games ids[0..n): each player with an episode in flight gets
 * a last record, truncated set, and the game is gone (its id is never
 * given again). Requests of up to XR_GAMES_REQUEST_MAX ids are
 * all-or-nothing. 0, or -ENOENT (an id names no live game), -EPERM (a game
 * of another uid), -EAGAIN, -errno; xr_last_reason() names the id.
 */
XR_API int xr_games_destroy(xr_games *c, const uint32_t *ids, uint32_t n);

/*
 * Resets game id to seed: its episode in flight ends (a truncated record
 * for each player in it), and its next records are turn 0 of the episode
 * seed gives. 0, or -ENOENT, -EPERM, -EAGAIN (rate, or the game's shard
 * has too many resets waiting), -errno.
 */
XR_API int xr_games_reset(xr_games *c, uint32_t id, uint64_t seed);

/*
 * Lists the engine's live games with ids >= from_id, in id order, into
 * out[0..cap). Returns how many it wrote (0 when none are left), or
 * -errno; *total (may be NULL) gets how many games are live. Call again
 * with from_id = the last id + 1 for more.
 */
XR_API int xr_games_list(xr_games *c, uint32_t from_id, xr_game_info *out, uint32_t cap,
			 uint32_t *total);

/* Closes the connection; games it created owned are destroyed, even while a
 * forked child still holds a copy of its socket (the opener shuts the
 * connection down). NULL is ignored. */
XR_API void xr_games_close(xr_games *c);

#ifdef __cplusplus
}
#endif
#endif
