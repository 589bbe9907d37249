/* SPDX-License-Identifier: MIT */
/*
 * ORDERING (a seqlock; engine/interest.h). The control thread is the only
 * writer: it makes seq odd (IN1, relaxed), issues a release fence (IN2),
 * stores the entry's fields (relaxed atomics), and makes seq even again with
 * a release store (IN3). A shard loads seq with acquire (IN4), loads the
 * fields (relaxed), issues an acquire fence (IN5) and loads seq again (IN6,
 * relaxed); the copy stands if both loads saw the same even value. If the
 * copy read any field the writer stored after IN1, IN5 (after that load)
 * synchronises with IN2 (before that store), so IN6 sees IN1's odd value or
 * later, and the copy is retried; if IN4 saw IN3's value, every field stored
 * before IN3 is visible. Fields are atomics so that a racing copy is a
 * retry, not undefined behaviour.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/interest.h"
#include "util/atomics.h"

struct slot {
	_Atomic uint32_t active, stream, n_games, n_players;
	_Atomic uint32_t games[XR_FILTER_RANGES_MAX][2];
	_Atomic uint32_t players[XR_FILTER_RANGES_MAX][2];
};

struct xr_interest {
	_Atomic uint64_t seq;           /* odd while the control thread writes */
	uint32_t n;
	struct slot slot[];
};

int xr__interest_create(uint32_t slots, struct xr_interest **out)
{
	struct xr_interest *in = calloc(1, sizeof(*in) + slots * sizeof(in->slot[0]));

	if (!in)
		return -ENOMEM;
	in->n = slots;
	xr_store_relaxed(&in->seq, 2); /* even; a view's 0 means never copied */
	*out = in;
	return 0;
}

void xr__interest_destroy(struct xr_interest *in)
{
	free(in);
}

void xr__interest_set(struct xr_interest *in, uint32_t slot, uint32_t stream,
		      const struct xr_filt *f)
{
	if (slot >= in->n)
		return;
	struct slot *s = &in->slot[slot];
	uint64_t seq = xr_load_relaxed(&in->seq);

	xr_store_relaxed(&in->seq, seq + 1); /* IN1 */
	xr_fence_release();                  /* IN2: pairs with IN5 */
	xr_store_relaxed(&s->active, f != NULL);
	if (f) {
		xr_store_relaxed(&s->stream, stream);
		xr_store_relaxed(&s->n_games, f->n_games);
		xr_store_relaxed(&s->n_players, f->n_players);
		for (uint32_t i = 0; i < f->n_games; i++) {
			xr_store_relaxed(&s->games[i][0], f->games[i].lo);
			xr_store_relaxed(&s->games[i][1], f->games[i].hi);
		}
		for (uint32_t i = 0; i < f->n_players; i++) {
			xr_store_relaxed(&s->players[i][0], f->players[i].lo);
			xr_store_relaxed(&s->players[i][1], f->players[i].hi);
		}
	}
	xr_store_release(&in->seq, seq + 2); /* IN3: pairs with IN4 */
}

bool xr__interest_changed(const struct xr_interest *in, const struct xr_interest_view *v)
{
	return xr_load_relaxed(&in->seq) != v->seq;
}

int xr__interest_view_init(const struct xr_interest *in, struct xr_interest_view *v)
{
	memset(v, 0, sizeof(*v));
	v->r = calloc(in->n ? in->n : 1, sizeof(*v->r));
	return v->r ? 0 : -ENOMEM;
}

void xr__interest_view_fini(struct xr_interest_view *v)
{
	free(v->r);
	v->r = NULL;
}

void xr__interest_copy(const struct xr_interest *in, struct xr_interest_view *v)
{
	for (;;) {
		uint64_t s1 = xr_load_acquire(&in->seq); /* IN4: pairs with IN3 */
		uint32_t n = 0;

		if (s1 & 1) {
			xr_cpu_relax();
			continue;
		}
		for (uint32_t i = 0; i < in->n; i++) {
			const struct slot *s = &in->slot[i];
			if (!xr_load_relaxed(&s->active))
				continue;
			struct xr_interest_entry *e = &v->r[n++];
			e->stream = xr_load_relaxed(&s->stream);
			e->n_games = xr_load_relaxed(&s->n_games);
			e->n_players = xr_load_relaxed(&s->n_players);
			if (e->n_games > XR_FILTER_RANGES_MAX || e->n_players > XR_FILTER_RANGES_MAX)
				e->n_games = e->n_players = 0; /* torn: retried below */
			for (uint32_t j = 0; j < e->n_games; j++)
				e->games[j] = (xr_id_range){xr_load_relaxed(&s->games[j][0]),
							    xr_load_relaxed(&s->games[j][1])};
			for (uint32_t j = 0; j < e->n_players; j++)
				e->players[j] = (xr_id_range){xr_load_relaxed(&s->players[j][0]),
							      xr_load_relaxed(&s->players[j][1])};
		}
		xr_fence_acquire();                          /* IN5: pairs with IN2 */
		if (xr_load_relaxed(&in->seq) == s1) {       /* IN6 */
			v->n = n;
			v->seq = s1;
			return;
		}
	}
}

static bool in_ranges(const xr_id_range *r, uint32_t n, uint32_t id)
{
	if (!n)
		return true;
	for (uint32_t i = 0; i < n; i++)
		if (id >= r[i].lo && id <= r[i].hi)
			return true;
	return false;
}

uint32_t xr__interest_players(const struct xr_interest_view *v, uint32_t stream, uint32_t game,
			      uint32_t players)
{
	uint32_t want = 0, all = (1u << players) - 1;

	for (uint32_t i = 0; i < v->n && want != all; i++) {
		const struct xr_interest_entry *e = &v->r[i];
		if (e->stream != stream || !in_ranges(e->games, e->n_games, game))
			continue;
		for (uint32_t p = 0; p < players; p++)
			if (in_ranges(e->players, e->n_players, p))
				want |= 1u << p;
	}
	return want;
}
