/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_SEATS_H
#define XR_ENGINE_SEATS_H

/*
 * Seats and agents (docs/agents.md). A seat is one player of one game; an
 * agent is a peer that claimed seats and acts for them by writing action
 * slots in a page of its own. This is the engine's record of who holds
 * what: agents, their claims and their pages, kept by the control thread
 * in its private memory, keyed by connection (never by anything a peer
 * writes), and a copy of the claims that the shards read, as the interest
 * table is read (engine/interest.h): a seqlock, copied between rounds.
 *
 * An agent's page: a sealed memfd the engine creates at AGENT_OPEN and
 * hands to that agent alone (it may write it; it cannot shrink or grow it
 * under the engine's mapping). One block of XR_SEAT_BLOCK bytes per game
 * of its capacity; in it one 8-byte action slot per player (so players of
 * one game share a cache line, and games of different shards never do).
 * A claim of games lo..hi is given blocks base..base + (hi - lo); the slot
 * of (game g, player p) is block base + g - lo, word p. What the agent
 * writes there is untrusted: the shard reads one 64-bit word per seat per
 * turn and checks it (engine/shard.c).
 *
 * Lifetime: an agent's page stays mapped by the engine until every shard
 * has copied a table without the agent's claims (each shard shows the
 * table's sequence it last copied), so that a shard never reads a page
 * the control thread has unmapped.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shm/layout.h"

#define XR_SEATS_AGENTS_MAX XR_MAX_AGENTS /* --max-agents at most */
#define XR_SEATS_CLAIMS_MAX XR_SEAT_CLAIMS_MAX
#define XR_SEATS_CAPACITY_MAX (1u << 22) /* games of one agent's page */

struct xr_seats;

struct xr_seats_opts {
	uint32_t max_agents;       /* 1..XR_SEATS_AGENTS_MAX */
	uint32_t shards;
	uint32_t max_capacity;     /* games of one agent's page at most */
	uint32_t engine_uid;       /* may claim any seat; its games anyone may */
	uint32_t depth;            /* slot sets per game: --input-delay + 1 (0: 1) */
	uint32_t max_per_uid;      /* agents of one uid but the engine's; 0: a quarter */
	struct xr_agent_info *infos; /* the arena's agent table, for tools; may be NULL */
};

int xr__seats_create(const struct xr_seats_opts *o, struct xr_seats **out);
/* Where agents are shown for tools (the arena's agent table); before any
 * agent opens. */
void xr__seats_set_infos(struct xr_seats *s, struct xr_agent_info *infos);
/* After the shards stopped: unmaps every page. */
void xr__seats_destroy(struct xr_seats *s);

/* --- control thread ------------------------------------------------------ */

struct xr_seat_caller {
	uint64_t conn;
	uint32_t uid;
	int32_t pid;
};

/* Makes conn an agent with a page of `capacity` games: the agent's index
 * in *agent, a descriptor of its page (the caller sends it, then closes
 * it) in *fd, and the page's bytes in *bytes. 0 or -errno with why. */
int xr__seats_open(struct xr_seats *s, const struct xr_seat_caller *who, uint32_t capacity,
		   const char *label, uint32_t *agent, int *fd, uint64_t *bytes, char *why,
		   size_t len);

/* conn's agent claims players (bit p: player p; 0: all) of games lo..hi.
 * It will act for its uid's games in the range (the engine's uid: for
 * every game no claim of its owner's uid holds). A claim conflicts only
 * with claims of its own uid: claims of two uids never hold one seat.
 * 0 and the claim's id and first block, or -errno with why (-EBUSY names
 * the agent holding a seat of it). */
int xr__seats_claim(struct xr_seats *s, const struct xr_seat_caller *who, uint32_t lo,
		    uint32_t hi, uint32_t players, uint32_t *claim_id, uint32_t *base, char *why,
		    size_t len);

/* conn's agent gives claim claim_id up. 0 or -errno with why. */
int xr__seats_release(struct xr_seats *s, const struct xr_seat_caller *who, uint32_t claim_id,
		      char *why, size_t len);

/* conn ended: its agent's claims go (its seats back to the built-in
 * policy from the shards' next round), its page when the shards are past
 * it. */
void xr__seats_gone(struct xr_seats *s, uint64_t conn);

/* Whether conn is an agent: its index, or -1. */
int xr__seats_agent_of(const struct xr_seats *s, uint64_t conn);

/* --- shards ------------------------------------------------------------- */

#define XR_SEATS_CHANGED_MAX 64u

/* A shard's copy of the claims. */
struct xr_seats_view {
	uint64_t seq;                   /* of the table when copied; 0: never */
	uint32_t n;
	struct xr_seat_claim {
		uint32_t agent, lo, hi, players, base, uid;
		_Atomic uint64_t *slots;        /* the agent's page */
		bool active;                    /* (in by[]) */
	} *c;                           /* the n active ones, to look seats up in */
	/* The table entry by entry, this copy's and the one before, so that a
	 * copy says which game ranges it changed: a shard then looks again
	 * only at the seats of those games (a peer that claims and releases
	 * as fast as it may costs the shards a look at the games of its own
	 * ranges, not at every game's seats in every claim: red team). */
	struct xr_seat_claim *by[2];    /* [max_agents * XR_SEATS_CLAIMS_MAX] */
	uint32_t cur;                   /* by[cur] is this copy's */
	uint32_t n_changed;             /* ranges whose games' seats changed */
	bool all_changed;               /* ...or every game's (first copy, or more
					 * than XR_SEATS_CHANGED_MAX ranges) */
	struct { uint32_t lo, hi; } changed[XR_SEATS_CHANGED_MAX];
	uint32_t engine_uid;
	uint32_t depth;                 /* slot sets per game */
};

bool xr__seats_changed(const struct xr_seats *s, const struct xr_seats_view *v);
int xr__seats_view_init(const struct xr_seats *s, struct xr_seats_view *v);
/* Copies the table into v, says in v which games' seats it changed, and
 * shows that shard `shard` copied it. */
void xr__seats_copy(struct xr_seats *s, struct xr_seats_view *v, uint32_t shard);
void xr__seats_view_fini(struct xr_seats_view *v);

/* Player p of game (created by game_uid): its agent and action slot (of
 * turn 0 mod depth; turn t's is depth t % depth, 8 words on) in v, or
 * false (the built-in policy plays it). A claim holds the seats of its
 * uid's games only, and the engine's uid's claims those of any game no
 * claim of its owner's uid holds: an agent never acts for another uid's
 * games, nor for the engine's unless it is the engine's uid's. */
static inline bool xr__seats_find(const struct xr_seats_view *v, uint32_t game, uint32_t game_uid,
				  uint32_t p, uint32_t *agent, _Atomic uint64_t **slot)
{
	const struct xr_seat_claim *found = NULL;

	for (uint32_t i = 0; i < v->n; i++) {
		const struct xr_seat_claim *c = &v->c[i];
		if (game < c->lo || game > c->hi || !(c->players >> p & 1u))
			continue;
		if (c->uid == game_uid) {
			found = c; /* its owner's: first */
			break;
		}
		if (c->uid == v->engine_uid && !found)
			found = c;
	}
	if (!found)
		return false;
	*agent = found->agent;
	*slot = found->slots + (size_t)(found->base + (game - found->lo)) * v->depth *
				       (XR_SEAT_BLOCK / sizeof(uint64_t)) + p;
	return true;
}

#endif
