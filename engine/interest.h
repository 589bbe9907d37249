/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_INTEREST_H
#define XR_ENGINE_INTEREST_H

/*
 * Which (game, player) pairs some attached reader wants, for lazy
 * observations (--observe subscribed): the engine builds records only for
 * those, and only steps the other games. The control thread keeps the table
 * (one entry per reader slot: its stream and its filter's game and player
 * ranges) as readers subscribe and go; each shard copies it when it has
 * changed, between rounds, and works out each of its games' wanted players
 * from its copy when it next plays the game. Filters' other tests (turn,
 * terminal, reward, sampling) are left to the reader: a pair is wanted if
 * its game and player pass, so a reader is never short of a record it would
 * take.
 *
 * The table is a seqlock: the control thread writes, shards retry a copy
 * that raced a write; a shard waits at most for one entry's write (a few
 * hundred stores, no system call), never for anything a peer does.
 */

#include <stdbool.h>
#include <stdint.h>

#include "record/filter.h"

struct xr_interest;

/* A shard's copy: the active entries. */
struct xr_interest_view {
	uint64_t seq;                   /* of the table when copied; 0: never */
	uint32_t n;                     /* entries in r[] */
	struct xr_interest_entry {
		uint32_t stream, n_games, n_players;
		xr_id_range games[XR_FILTER_RANGES_MAX];
		xr_id_range players[XR_FILTER_RANGES_MAX];
	} *r;                           /* [slots] */
};

/* A table for `slots` reader slots, none wanted. 0 or -ENOMEM. */
int xr__interest_create(uint32_t slots, struct xr_interest **out);
void xr__interest_destroy(struct xr_interest *in);

/* Control thread: the reader in slot reads stream through f; f NULL: the
 * slot is free. */
void xr__interest_set(struct xr_interest *in, uint32_t slot, uint32_t stream,
		      const struct xr_filt *f);

/* Shard: whether the table changed since v was copied; copies it. */
bool xr__interest_changed(const struct xr_interest *in, const struct xr_interest_view *v);
int xr__interest_view_init(const struct xr_interest *in, struct xr_interest_view *v);
void xr__interest_copy(const struct xr_interest *in, struct xr_interest_view *v);
void xr__interest_view_fini(struct xr_interest_view *v);

/* The players (bit p) of game `game` (of `players`) on stream some reader
 * of v wants. */
uint32_t xr__interest_players(const struct xr_interest_view *v, uint32_t stream, uint32_t game,
			      uint32_t players);

#endif
