/* SPDX-License-Identifier: MIT */
/*
 * The game directory (engine/games.h). Control thread only, except the
 * lifecycle queues (whose ORDERING is in engine/lifecycle_queue.c) and the
 * turn/episode counters the shards show in xr_game_pub (relaxed: numbers
 * for a list, nothing is ordered on them).
 *
 * Why the shards' queues never overflow: an order to create a game goes to
 * a slot the directory holds free, and the slot comes back (FREED) only
 * after the shard has taken the order to destroy that game. So the queue of
 * creations and destructions holds at most two orders per slot: it is
 * sized 2 x slots. Resets, whose number no slot bounds, have a queue of
 * their own, and a reset that finds it full is refused (retry).
 *
 * Resets. A game has at most one reset order waiting for its shard. The
 * directory stores the seed (GR1), then loads how many of the game's reset
 * orders the shard has taken (GR2), and sends an order only if that is all
 * it sent; the shard, taking an order, stores the count (GR3) and then
 * loads the seed (GR4). All four are seq_cst: if GR2 missed GR3, GR1 came
 * before GR3 and so before GR4, and the waiting order takes the new seed;
 * if GR2 saw GR3, a new order goes. No reset is lost, the last seed wins,
 * and resets of a game arriving faster than its shard takes them cost it
 * one reset a round. (A seed stored between GR3 and GR4 is taken by both
 * orders: its episode starts twice, the first cut short like any reset's.)
 *
 * Why a peer cannot use the directory to stall the control thread: a
 * request creates at most XR_CTL_CREATE_MAX games and XR_CTL_CREATE_UNITS
 * tokens' worth of them (a game costs its cells x players, the work of
 * building it), of a shape the operator declared, at the rate of its
 * uid's token bucket; a destruction or reset costs O(its ids); a page of
 * the list O(live games + the page), the dead being compacted away once
 * they outnumber the live; a connection's end O(the games it owns) (each
 * owner has its list).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/limits.h"
#include "engine/games.h"
#include "engine/interest.h"
#include "engine/seats.h"
#include "engine/group_host.h"
#include "engine/producers.h"
#include "engine/table_host.h"
#include "record/transition.h"
#include "shm/arena_priv.h"
#include "xring/agent.h"
#include "util/atomics.h"
#include "util/clock.h"

#define XR_GAMES_DEFAULT_MAX 100000u
#define XR_GAMES_LIMIT 8000000u       /* --max-games at most: 2x slots fit 24 bits */
#define XR_GAMES_DEFAULT_RATE 10000.0 /* creations + resets a second, per uid */
#define XR_GAMES_RESETS_QUEUE 4096u   /* resets waiting per shard */
#define XR_GAMES_POOL_MAX 64u         /* idle instances kept per shard */

#define NIL UINT32_MAX                 /* no game: the end of an owner's list */

struct entry {
	uint32_t id;
	uint16_t shape;
	bool used;
	bool owned;
	uint32_t turn_limit;
	uint32_t uid;
	int32_t pid;
	uint64_t seed;
	uint64_t conn;                  /* the owner's, when owned */
	uint32_t own_prev, own_next;    /* its owner's games (ref(): shard, slot) */
	uint32_t resets;                /* reset orders sent (see "Resets") */
};

/* A connection that owns games, and the head of their list: so that its
 * end costs what it owns, not what the engine hosts. */
struct owner {
	uint64_t conn;
	uint32_t head;
};

struct pooled {
	const xr_game_vtable *vt;
	uint32_t h, w, players, turn_limit;
	void *g;
};

struct dshard {
	struct xr_lc_queue in, resets, out;
	struct xr_game_pub *pub;        /* [cap] */
	struct entry *ent;              /* [cap], by slot */
	uint32_t *free;                 /* free slots, a stack */
	uint32_t n_free;
	uint32_t live;
	struct pooled pool[XR_GAMES_POOL_MAX];
	uint32_t n_pool;
};

struct uidrec {
	uint32_t uid;
	uint32_t games;                 /* live, created by this uid */
	struct xr_bucket bucket;
};

struct xr_gdir {
	struct xr_gdir_opts o;
	struct xr_gdir_shape *shapes;
	uint32_t cap;                   /* slots per shard */
	uint32_t per_uid;
	double rate, burst;
	uint32_t own_uid;
	struct dshard *sh;
	uint32_t next_id;
	uint32_t live;
	uint32_t others;                /* live, created by uids not the engine's */
	/* id -> shard << 24 | slot, open addressing; key id + 1, 0 = empty */
	uint64_t *hash;
	uint32_t hmask;
	/* live ids (and dead ones, skipped), ascending: ids only grow;
	 * compacted when the dead outnumber the live, so that a page of the
	 * list costs O(live + page), never O(everything ever destroyed) */
	uint32_t *order;
	uint32_t n_order, n_dead;
	struct owner *owners;           /* connections that own games */
	uint32_t n_owners, owners_cap;
	struct uidrec *uids;
	uint32_t n_uids, uids_cap;
	struct xr_interest *interest;   /* --observe subscribed; else NULL */
	struct xr_seats *seats;         /* who holds which seat */
	struct xr_arena *arena;         /* where the agent table is shown */
	struct xr_thost *tables;        /* replay tables: started at the first
					 * TABLE_CREATE (a thread), else NULL */
	struct xr_ghost *groups;        /* consumer groups: started at the
					 * first GROUP_JOIN (a thread) */
	struct xr_prods *prods;         /* producer slots (the host's), or NULL */
	bool serving;                   /* the control socket answers (tables'
					 * feeds attach through it) */
};

static uint32_t pow2_at_least(uint64_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

/* --- the id index ------------------------------------------------------ */

static uint32_t hslot(const struct xr_gdir *d, uint32_t id)
{
	return (uint32_t)(((uint64_t)id * 0x9e3779b97f4a7c15ull) >> 32) & d->hmask;
}

static bool lookup(const struct xr_gdir *d, uint32_t id, uint32_t *k, uint32_t *slot)
{
	for (uint32_t i = hslot(d, id);; i = (i + 1) & d->hmask) {
		uint64_t v = d->hash[i];
		if (!v)
			return false;
		if ((uint32_t)(v >> 32) == id + 1) {
			*k = (uint32_t)(v >> 24) & 0xff;
			*slot = (uint32_t)v & 0xffffff;
			return true;
		}
	}
}

static void hash_put(struct xr_gdir *d, uint32_t id, uint32_t k, uint32_t slot)
{
	uint32_t i = hslot(d, id);

	while (d->hash[i])
		i = (i + 1) & d->hmask;
	d->hash[i] = (uint64_t)(id + 1) << 32 | (uint64_t)k << 24 | slot;
}

/* Linear probing's deletion: later entries of the run move back into the
 * hole when their home allows, so lookups never need tombstones. */
static void hash_del(struct xr_gdir *d, uint32_t id)
{
	uint32_t i = hslot(d, id);

	while ((uint32_t)(d->hash[i] >> 32) != id + 1)
		i = (i + 1) & d->hmask;
	d->hash[i] = 0;
	for (uint32_t j = (i + 1) & d->hmask; d->hash[j]; j = (j + 1) & d->hmask) {
		uint32_t home = hslot(d, (uint32_t)(d->hash[j] >> 32) - 1);
		/* j's entry may fill i unless its home lies in (i, j]. */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			d->hash[i] = d->hash[j];
			d->hash[j] = 0;
			i = j;
		}
	}
}

/* The list of ids. Compaction costs what the deaths before it did. */
static void order_add(struct xr_gdir *d, uint32_t id)
{
	d->order[d->n_order++] = id;
}

static void order_dead(struct xr_gdir *d)
{
	uint32_t k, slot, n = 0;

	if (++d->n_dead <= d->live + 1024)
		return;
	for (uint32_t i = 0; i < d->n_order; i++)
		if (lookup(d, d->order[i], &k, &slot))
			d->order[n++] = d->order[i];
	d->n_order = n;
	d->n_dead = 0;
}

/* --- owners -------------------------------------------------------------- */

static uint32_t ref(uint32_t k, uint32_t slot)
{
	return k << 24 | slot;
}

static struct entry *at(struct xr_gdir *d, uint32_t r)
{
	return &d->sh[r >> 24].ent[r & 0xffffff];
}

/* The owner record of conn; made (when make) if there is none. NULL if
 * none, or out of memory. At most one per connection that owns games,
 * so the server's connection table bounds their number. */
static struct owner *owner_of(struct xr_gdir *d, uint64_t conn, bool make)
{
	for (uint32_t i = 0; i < d->n_owners; i++)
		if (d->owners[i].conn == conn)
			return &d->owners[i];
	if (!make)
		return NULL;
	if (d->n_owners == d->owners_cap) {
		uint32_t cap = d->owners_cap ? 2 * d->owners_cap : 16;
		struct owner *o = realloc(d->owners, cap * sizeof(*o));
		if (!o)
			return NULL;
		d->owners = o;
		d->owners_cap = cap;
	}
	d->owners[d->n_owners] = (struct owner){.conn = conn, .head = NIL};
	return &d->owners[d->n_owners++];
}

static void own(struct owner *o, struct xr_gdir *d, uint32_t r)
{
	struct entry *e = at(d, r);

	e->own_prev = NIL;
	e->own_next = o->head;
	if (o->head != NIL)
		at(d, o->head)->own_prev = r;
	o->head = r;
}

static void disown(struct xr_gdir *d, uint32_t r)
{
	struct entry *e = at(d, r);
	struct owner *o = owner_of(d, e->conn, false);

	if (e->own_prev != NIL)
		at(d, e->own_prev)->own_next = e->own_next;
	else if (o)
		o->head = e->own_next;
	if (e->own_next != NIL)
		at(d, e->own_next)->own_prev = e->own_prev;
	if (o && o->head == NIL)
		*o = d->owners[--d->n_owners]; /* owns nothing more */
}

/* --- per uid ------------------------------------------------------------ */

static struct uidrec *uid_rec(struct xr_gdir *d, uint32_t uid)
{
	for (uint32_t i = 0; i < d->n_uids; i++)
		if (d->uids[i].uid == uid)
			return &d->uids[i];
	if (d->n_uids == d->uids_cap) {
		uint32_t cap = d->uids_cap ? 2 * d->uids_cap : 8;
		struct uidrec *u = realloc(d->uids, cap * sizeof(*u));
		if (!u)
			return NULL;
		d->uids = u;
		d->uids_cap = cap;
	}
	struct uidrec *u = &d->uids[d->n_uids++];
	*u = (struct uidrec){.uid = uid};
	xr__bucket_init(&u->bucket, d->burst, xr__now_ns());
	return u;
}

/* The tokens a creation or reset of a game of sh takes. */
static uint32_t shape_cost(const struct xr_gdir_shape *sh)
{
	return xr__ctl_game_cost(sh->board_h, sh->board_w, sh->players);
}

/* Takes the tokens of n games costing cost each from who's bucket, or says
 * when to retry. */
static int take_tokens(struct xr_gdir *d, struct uidrec *u, uint32_t n, uint32_t cost,
		       const char *what, char *why, size_t len)
{
	double need = (double)n * cost;

	if (need > d->burst && n == 1) {
		snprintf(why, len, "a game of %u cells x players costs %u tokens and uid %u may "
				   "spend %.0f at once (twice --max-creates-per-uid): raise "
				   "--max-creates-per-uid or use a smaller board",
			 cost * XR_CTL_GAME_UNIT, cost, (unsigned)u->uid, d->burst);
		return -EINVAL;
	}
	if (need > d->burst) {
		snprintf(why, len, "%u %s in one request is more than uid %u may make at once "
				   "(%.0f): ask for fewer",
			 n, what, (unsigned)u->uid, d->burst / cost);
		return -EINVAL;
	}
	if (!xr__bucket_take_n(&u->bucket, (uint32_t)need, d->rate, d->burst, xr__now_ns())) {
		snprintf(why, len, "too many game creations and resets from uid %u (%.0f/s); retry "
				   "in %u ms",
			 (unsigned)u->uid, d->rate,
			 xr__bucket_retry_n_ms(&u->bucket, (uint32_t)need, d->rate));
		return -EAGAIN;
	}
	return 0;
}

/* --- shapes ------------------------------------------------------------- */

static int find_shape(const struct xr_gdir *d, const struct xr_ctl_games_create *m)
{
	for (uint32_t i = 0; i < d->o.n_shapes; i++) {
		const struct xr_gdir_shape *s = &d->shapes[i];
		if ((m->kind[0] && strcmp(m->kind, s->vt->name)) ||
		    (m->board_h && m->board_h != s->board_h) ||
		    (m->board_w && m->board_w != s->board_w) ||
		    (m->players && m->players != s->players) ||
		    (m->obs_dtype && m->obs_dtype != 1u + (uint32_t)s->obs_dtype))
			continue;
		return (int)i;
	}
	return -1;
}

static void say_shapes(const struct xr_gdir *d, const struct xr_ctl_games_create *m, char *why,
		       size_t len)
{
	int n = snprintf(why, len, "no stream of this engine carries %s games%s", m->kind[0] ? m->kind : "such",
			 "; its shapes:");
	for (uint32_t i = 0; i < d->o.n_shapes && n > 0 && (size_t)n < len; i++) {
		const struct xr_gdir_shape *s = &d->shapes[i];
		n += snprintf(why + n, len - (size_t)n, "%s %s %ux%u %u players %s (stream %s)",
			      i ? "," : "", s->vt->name, s->board_h, s->board_w, s->players,
			      xr_dtype_name(s->obs_dtype), s->stream_name);
	}
}

/* --- instances ---------------------------------------------------------- */

/* The shard's freed slots and instances, from its queue back. */
static void take_back(struct xr_gdir *d, struct dshard *s)
{
	struct xr_lc_msg m;

	while (xr__lc_pop(&s->out, &m)) {
		/* The entry of a destroyed game stays as it was until its slot
		 * is reused, which is not before now. */
		const struct entry *e = &s->ent[m.slot];
		const struct xr_gdir_shape *sh = &d->shapes[e->shape];
		s->free[s->n_free++] = m.slot;
		if (s->n_pool < XR_GAMES_POOL_MAX) {
			s->pool[s->n_pool++] = (struct pooled){
				.vt = m.vt, .g = m.g, .h = sh->board_h, .w = sh->board_w,
				.players = sh->players, .turn_limit = e->turn_limit};
		} else {
			m.vt->destroy(m.g);
		}
	}
}

/* A game instance for shard s: a pooled one of the same config, reset to
 * the seed (a game reset to a seed is what create makes of it: the games'
 * determinism contract), or a new one. 0 or the game's error. */
static int instance(struct xr_gdir *d, struct dshard *s, const struct xr_gdir_shape *sh,
		    uint32_t turn_limit, uint64_t seed, void **g)
{
	for (uint32_t i = s->n_pool; i-- > 0;) {
		struct pooled *p = &s->pool[i];
		if (p->vt == sh->vt && p->h == sh->board_h && p->w == sh->board_w &&
		    p->players == sh->players && p->turn_limit == turn_limit) {
			void *pg = p->g;
			*p = s->pool[--s->n_pool];
			int rc = sh->vt->reset(pg, seed);
			/* Out of the pool, and given to nobody if its reset
			 * failed (a plugin may refuse a seed): ours to destroy. */
			if (rc < 0) {
				sh->vt->destroy(pg);
				return rc;
			}
			*g = pg;
			return 0;
		}
	}
	xr_game_config c = {.board_h = sh->board_h, .board_w = sh->board_w,
			    .players = sh->players, .turn_limit = turn_limit, .seed = seed,
			    .params = d->o.params};
	return sh->vt->create(&c, g);
}

/* The least-loaded shard with a free slot, or -1. */
static int pick_shard(struct xr_gdir *d)
{
	int best = -1;

	for (uint32_t k = 0; k < d->o.shards; k++) {
		struct dshard *s = &d->sh[k];
		if (s->n_free && (best < 0 || s->live < d->sh[best].live))
			best = (int)k;
	}
	return best;
}

/* --- the verbs ---------------------------------------------------------- */

static int games_create(void *ctx, const struct xr_ctl_caller *who,
			const struct xr_ctl_games_create *m, struct xr_ctl_games_created *r,
			char *why, size_t len)
{
	struct xr_gdir *d = ctx;
	uint32_t n = m->count;
	int shape = find_shape(d, m), rc;

	if (shape < 0) {
		say_shapes(d, m, why, len);
		return -ENOENT;
	}
	const struct xr_gdir_shape *sh = &d->shapes[shape];
	/* A request builds at most XR_CTL_CREATE_UNITS tokens' worth of games
	 * (control/proto.h): the rest wait for the client's next request, and
	 * the control thread's other peers for no longer than that. */
	uint32_t cost = shape_cost(sh), most = XR_CTL_CREATE_UNITS / cost;
	if (n > most)
		n = most ? most : 1;
	struct uidrec *u = uid_rec(d, who->uid);
	if (!u) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	if (d->live + n > d->o.max_games) {
		snprintf(why, len, "the engine hosts %u games and --max-games is %u: %u more do not fit",
			 d->live, d->o.max_games, n);
		return -EBUSY;
	}
	if (who->uid != d->own_uid && d->others + n > d->o.max_games / 4 * 3) {
		snprintf(why, len, "uids other than the engine's hold %u games and may hold %u "
				   "together (three quarters of --max-games): %u more do not fit",
			 d->others, d->o.max_games / 4 * 3, n);
		return -EBUSY;
	}
	if (who->uid != d->own_uid && u->games + n > d->per_uid) {
		snprintf(why, len, "uid %u has %u games and may have %u (--max-games-per-uid): %u more "
				   "do not fit",
			 (unsigned)who->uid, u->games, d->per_uid, n);
		return -EBUSY;
	}
	if ((uint64_t)d->next_id + n >= UINT32_MAX) {
		snprintf(why, len, "this engine has given out every game id; restart it");
		return -ENOSPC;
	}
	struct owner *ow = NULL;
	if ((m->flags & XR_CTL_GAMES_OWNED) && !(ow = owner_of(d, who->conn, true))) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	rc = take_tokens(d, u, n, cost, "games", why, len);
	if (rc < 0) {
		if (ow && ow->head == NIL)
			*ow = d->owners[--d->n_owners];
		return rc;
	}
	for (uint32_t k = 0; k < d->o.shards; k++)
		take_back(d, &d->sh[k]);

	/* Everything that can fail first (a slot, an instance), committed
	 * only once all n have them: a refused request changes nothing. */
	struct placed {
		uint32_t k, slot;
		void *g;
	} *pl = calloc(n, sizeof(*pl));
	if (!pl) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	uint32_t i;
	for (i = 0; i < n; i++) {
		int k = pick_shard(d);
		if (k < 0) {
			snprintf(why, len, "every slot is waiting for its shard to finish a "
					   "destruction; retry in a moment");
			rc = -EAGAIN;
			break;
		}
		struct dshard *s = &d->sh[k];
		pl[i].k = (uint32_t)k;
		pl[i].slot = s->free[--s->n_free];
		s->live++; /* for pick_shard; undone below on failure */
		rc = instance(d, s, sh, m->turn_limit, m->seed + i, &pl[i].g);
		if (rc < 0) {
			s->free[s->n_free++] = pl[i].slot;
			s->live--;
			snprintf(why, len, "game %s refuses this configuration (turn limit %u): %s",
				 sh->vt->name, m->turn_limit, strerror(-rc));
			break;
		}
	}
	if (i < n) {
		u->bucket.tokens += (double)n * cost; /* a refusal costs nothing */
		if (ow && ow->head == NIL)
			*ow = d->owners[--d->n_owners];
		while (i-- > 0) {
			struct dshard *s = &d->sh[pl[i].k];
			s->free[s->n_free++] = pl[i].slot;
			s->live--;
			sh->vt->destroy(pl[i].g);
		}
		free(pl);
		return rc;
	}
	uint64_t now = xr__now_ns();
	for (i = 0; i < n; i++) {
		struct dshard *s = &d->sh[pl[i].k];
		uint32_t id = d->next_id++;
		s->ent[pl[i].slot] = (struct entry){
			.id = id, .shape = (uint16_t)shape, .used = true,
			.owned = (m->flags & XR_CTL_GAMES_OWNED) != 0, .turn_limit = m->turn_limit,
			.uid = who->uid, .pid = who->pid, .seed = m->seed + i, .conn = who->conn};
		/* The slot's last game is gone from its shard (its FREED came
		 * back), which touches the slot again only after taking this
		 * CREATE (LQ1/LQ2 order the store before it). */
		xr_store_relaxed(&s->pub[pl[i].slot].resets, 0);
		hash_put(d, id, pl[i].k, pl[i].slot);
		order_add(d, id);
		if (ow)
			own(ow, d, ref(pl[i].k, pl[i].slot));
		struct xr_lc_msg o = {.op = XR_LC_CREATE, .slot = pl[i].slot, .game_id = id,
				      .stream = sh->stream, .players = sh->players, .uid = who->uid,
				      .seed = m->seed + i, .t_ns = now, .g = pl[i].g, .vt = sh->vt};
		xr__lc_push(&s->in, &o); /* never full: see the top of this file */
	}
	d->live += n;
	u->games += n;
	if (who->uid != d->own_uid)
		d->others += n;
	*r = (struct xr_ctl_games_created){.first_id = d->next_id - n, .count = n,
					   .stream = sh->stream};
	free(pl);
	return 0;
}

static bool may_touch(const struct xr_gdir *d, const struct xr_ctl_caller *who,
		      const struct entry *e)
{
	return who->uid == d->own_uid || who->uid == e->uid;
}

/* Whether id names a game who may destroy or reset; if not, why. */
static int check_id(struct xr_gdir *d, const struct xr_ctl_caller *who, uint32_t id,
		    uint32_t *k, uint32_t *slot, char *why, size_t len)
{
	if (!lookup(d, id, k, slot)) {
		snprintf(why, len, "no game %u here (%s)", id,
			 id < d->next_id ? "it was destroyed" : "never created");
		return -ENOENT;
	}
	const struct entry *e = &d->sh[*k].ent[*slot];
	if (!may_touch(d, who, e)) {
		snprintf(why, len, "game %u belongs to uid %u: only its uid or the engine's may "
				   "destroy or reset it",
			 id, (unsigned)e->uid);
		return -EPERM;
	}
	return 0;
}

static void destroy_one(struct xr_gdir *d, uint32_t k, uint32_t slot)
{
	struct dshard *s = &d->sh[k];
	struct entry *e = &s->ent[slot];
	struct uidrec *u = uid_rec(d, e->uid);
	struct xr_lc_msg o = {.op = XR_LC_DESTROY, .slot = slot, .game_id = e->id};

	hash_del(d, e->id);
	if (e->owned)
		disown(d, ref(k, slot));
	e->used = false;
	s->live--;
	d->live--;
	if (u)
		u->games--;
	if (e->uid != d->own_uid)
		d->others--;
	order_dead(d);
	xr__lc_push(&s->in, &o); /* never full: see the top of this file */
}

static int games_destroy(void *ctx, const struct xr_ctl_caller *who, const uint32_t *ids,
			 uint32_t n, char *why, size_t len)
{
	struct xr_gdir *d = ctx;
	uint32_t k, slot;

	for (uint32_t i = 0; i < n; i++) {
		int rc = check_id(d, who, ids[i], &k, &slot, why, len);
		if (rc < 0)
			return rc;
	}
	for (uint32_t i = 0; i < n; i++)
		if (lookup(d, ids[i], &k, &slot)) /* an id given twice: gone already */
			destroy_one(d, k, slot);
	return 0;
}

static int games_reset(void *ctx, const struct xr_ctl_caller *who, uint32_t id, uint64_t seed,
		       char *why, size_t len)
{
	struct xr_gdir *d = ctx;
	uint32_t k, slot;
	int rc = check_id(d, who, id, &k, &slot, why, len);

	if (rc < 0)
		return rc;
	struct dshard *s = &d->sh[k];
	if (!xr__lc_room(&s->resets, 1)) {
		snprintf(why, len, "shard %u has %u resets waiting (it is paused for readers?); "
				   "retry in a moment",
			 k, XR_GAMES_RESETS_QUEUE);
		return -EAGAIN;
	}
	struct uidrec *u = uid_rec(d, who->uid);
	if (!u) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	rc = take_tokens(d, u, 1, shape_cost(&d->shapes[s->ent[slot].shape]), "resets", why, len);
	if (rc < 0)
		return rc;
	/* At most one reset of a game waits for its shard: a later one only
	 * changes the seed the waiting one takes ("Resets" above), so that a
	 * peer resetting one game over and over costs its shard one reset a
	 * round, not one per request (a reset costs what building the game
	 * does: seconds of a shard's time for a few thousand large boards,
	 * every game on it stopped meanwhile). */
	struct entry *e = &s->ent[slot];
	struct xr_game_pub *p = &s->pub[slot];
	xr_store_sc(&p->reset_seed, seed);                    /* GR1 */
	if (xr_load_sc(&p->resets) == e->resets) {           /* GR2: none waiting */
		struct xr_lc_msg o = {.op = XR_LC_RESET, .slot = slot, .game_id = id,
				      .seed = seed, .t_ns = xr__now_ns()};
		xr__lc_push(&s->resets, &o);
		e->resets++;
	}
	e->seed = seed;
	return 0;
}

/* The first index of order[] whose id is >= id. */
static uint32_t order_from(const struct xr_gdir *d, uint32_t id)
{
	uint32_t lo = 0, hi = d->n_order;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (d->order[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void games_list(void *ctx, const struct xr_ctl_caller *who, uint32_t from_id,
		       uint32_t max, struct xr_ctl_games *r)
{
	struct xr_gdir *d = ctx;
	uint32_t k, slot;

	r->n = 0;
	r->total = d->live;
	r->next_id = 0;
	for (uint32_t i = order_from(d, from_id); i < d->n_order; i++) {
		uint32_t id = d->order[i];
		if (!lookup(d, id, &k, &slot))
			continue;
		if (r->n == max) {
			r->next_id = id;
			break;
		}
		const struct entry *e = &d->sh[k].ent[slot];
		const struct xr_gdir_shape *sh = &d->shapes[e->shape];
		const struct xr_game_pub *p = &d->sh[k].pub[slot];
		struct xr_ctl_game_info *g = &r->games[r->n++];
		*g = (struct xr_ctl_game_info){
			.id = id, .shard = k, .stream = sh->stream, .players = sh->players,
			.board_h = sh->board_h, .board_w = sh->board_w, .turn_limit = e->turn_limit,
			.turn = xr_load_relaxed(&p->turn), .seed = e->seed,
			.episodes = xr_load_relaxed(&p->episodes), .owner_uid = e->uid,
			.owner_pid = e->pid, .obs_dtype = (uint32_t)sh->obs_dtype,
			.flags = (e->owned ? XR_CTL_GAMES_OWNED : 0) |
				 (e->owned && e->conn == who->conn ? XR_CTL_GAME_MINE : 0)};
		snprintf(g->kind, sizeof(g->kind), "%s", sh->vt->name);
	}
}

static void games_gone(void *ctx, uint64_t conn)
{
	struct xr_gdir *d = ctx;
	struct owner *o;

	/* Each destruction takes its game off the head of the list, and the
	 * record goes with the last one. */
	while ((o = owner_of(d, conn, false)) && o->head != NIL)
		destroy_one(d, o->head >> 24, o->head & 0xffffff);
	xr__seats_gone(d->seats, conn); /* its seats back to the policy */
	if (d->tables)
		xr__thost_gone(d->tables, conn); /* its trainers' leases end */
	if (d->groups)
		xr__ghost_gone(d->groups, conn); /* its grants back to its group */
	if (d->prods)
		xr__prods_gone(d->prods, conn); /* its ring ends once drained */
}

static int agent_open(void *ctx, const struct xr_ctl_caller *who,
		      const struct xr_ctl_agent_open *m, struct xr_ctl_agent_opened *r, int *fd,
		      char *why, size_t len)
{
	struct xr_gdir *d = ctx;
	struct xr_seat_caller c = {.conn = who->conn, .uid = who->uid, .pid = who->pid};
	uint32_t agent;
	uint64_t bytes;
	int rc = xr__seats_open(d->seats, &c, m->capacity, m->label, &agent, fd, &bytes, why, len);

	if (rc < 0)
		return rc;
	*r = (struct xr_ctl_agent_opened){
		.agent = agent, .capacity = m->capacity, .page_bytes = bytes,
		.timeout_ns = d->o.tick_ns ? 0
				: d->o.action_timeout_ns ? d->o.action_timeout_ns
							 : XR_SHARD_ACTION_TIMEOUT_NS,
		.tick_ns = d->o.tick_ns, .fallback = d->o.fallback,
		.block = XR_SEAT_BLOCK * (d->o.input_delay + 1)};
	return 0;
}

static int seats_claim(void *ctx, const struct xr_ctl_caller *who,
		       const struct xr_ctl_seats_claim *m, struct xr_ctl_seats_claimed *r,
		       char *why, size_t len)
{
	struct xr_gdir *d = ctx;
	struct xr_seat_caller c = {.conn = who->conn, .uid = who->uid, .pid = who->pid};
	uint32_t id, base;
	int rc = xr__seats_claim(d->seats, &c, m->lo, m->hi, m->players, &id, &base, why, len);

	if (rc < 0)
		return rc;
	*r = (struct xr_ctl_seats_claimed){.claim = id, .base = base, .lo = m->lo, .hi = m->hi,
					   .players = m->players ? m->players : 0xffu};
	return 0;
}

static int seats_release(void *ctx, const struct xr_ctl_caller *who, uint32_t claim, char *why,
			 size_t len)
{
	struct xr_gdir *d = ctx;
	struct xr_seat_caller c = {.conn = who->conn, .uid = who->uid, .pid = who->pid};

	return xr__seats_release(d->seats, &c, claim, why, len);
}

static int table_create(void *ctx, const struct xr_ctl_caller *who,
			const struct xr_ctl_table_create *m, struct xr_ctl_table_created *r, char *why,
			size_t len)
{
	struct xr_gdir *d = ctx;
	struct xr_ctl_table_create fed = *m;
	const xr_exp_shape *shape = NULL;

	if (m->flags & XR_CTL_TABLE_FED) {
		/* Items of the stream's records: the item size at least its
		 * largest record (0: exactly that). */
		const struct xr_stream_desc *sd = NULL;
		for (uint32_t i = 0; d->arena && i < d->arena->lay.n_streams; i++)
			if (!strcmp(d->arena->lay.streams[i].name, m->source))
				sd = &d->arena->lay.streams[i];
		if (!sd) {
			snprintf(why, len, "table %s: this engine has no stream '%s'", m->name,
				 m->source);
			return -ENOENT;
		}
		if (m->flags & XR_CTL_TABLE_TRANSITION) {
			/* Sized by the engine, of the stream's shape. */
			if (sd->record_kind != XR_RECORD_EXPERIENCE || m->item_size) {
				snprintf(why, len, "table %s: transitions are of an Experience "
					 "stream's records, item_size 0 (stream %s)", m->name,
					 m->source);
				return -EINVAL;
			}
			fed.item_size = xr__trans_item_size(&sd->shape);
		}
		/* The table tells its trainers the records' shape: they read an
		 * item's fields (Sample.obs, ...) as they read a batch's. */
		if (sd->record_kind == XR_RECORD_EXPERIENCE)
			shape = &sd->shape;
		/* An Experience stream's records all have its shape's size;
		 * of other streams the caller says how large items are. */
		uint32_t rec = d->arena->lay.rings[sd->first_ring].record_len;
		if (!rec && !fed.item_size) {
			snprintf(why, len, "table %s: stream %s's records vary in size: give "
				 "item_size", m->name, m->source);
			return -EINVAL;
		}
		if (!fed.item_size)
			fed.item_size = rec;
		if (!(m->flags & XR_CTL_TABLE_TRANSITION) && fed.item_size < rec) {
			snprintf(why, len, "table %s: items of %u bytes cannot hold stream %s's "
				 "records of up to %u (item_size 0 takes that)",
				 m->name, fed.item_size, m->source, rec);
			return -EINVAL;
		}
	}
	if (!d->tables) {
		int rc = xr__thost_create(d->arena ? d->arena->lay.name : NULL,
					  d->arena ? d->arena->hdr->tables : NULL, &d->tables, why,
					  len);
		if (rc < 0)
			return rc;
		if (d->serving)
			xr__thost_serve(d->tables);
	}
	return xr__thost_table_create(d->tables, who, &fed, shape, r, why, len);
}

static int table_open(void *ctx, const struct xr_ctl_caller *who,
		      const struct xr_ctl_table_open *m, struct xr_ctl_table_opened *r, int fds[3],
		      char *why, size_t len)
{
	struct xr_gdir *d = ctx;

	if (!d->tables) {
		snprintf(why, len, "no table %s (this engine has none yet)", m->name);
		return -ENOENT;
	}
	return xr__thost_table_open(d->tables, who, m, r, fds, why, len);
}

static int table_drop(void *ctx, const struct xr_ctl_caller *who,
		      const struct xr_ctl_table_open *m, char *why, size_t len)
{
	struct xr_gdir *d = ctx;

	if (!d->tables) {
		snprintf(why, len, "no table %s (this engine has none)", m->name);
		return -ENOENT;
	}
	return xr__thost_table_drop(d->tables, who, m, why, len);
}

static void games_reader(void *ctx, uint32_t slot, uint32_t stream, const struct xr_filt *f)
{
	struct xr_gdir *d = ctx;

	if (d->interest)
		xr__interest_set(d->interest, slot, stream, f);
}

static int group_join(void *ctx, const struct xr_ctl_caller *who, const char *stream,
		      uint32_t stream_policy, const struct xr_ctl_group_join *m,
		      struct xr_ctl_group_joined *r, int fds[2], char *why, size_t len)
{
	struct xr_gdir *d = ctx;

	if (!d->arena) {
		snprintf(why, len, "this engine hosts no consumer groups");
		return -ENOTSUP;
	}
	if (!d->groups) {
		/* UINT64_MAX: the writers never evict (--lease-timeout 0), and
		 * a lossy group's members hold as long as they like (0). */
		uint64_t lease = d->o.lease_timeout_ns ? d->o.lease_timeout_ns : 10000000000ull;
		uint64_t hold = lease == UINT64_MAX ? 0 : lease / 4;
		int rc = xr__ghost_create(d->arena->lay.name, hold, d->arena->lay.max_readers,
					  &d->groups, why, len);
		if (rc < 0)
			return rc;
	}
	return xr__ghost_join(d->groups, who, stream, stream_policy, m, r, fds, why, len);
}

static void group_leave(void *ctx, uint64_t conn)
{
	struct xr_gdir *d = ctx;

	if (d->groups)
		xr__ghost_gone(d->groups, conn);
}

static int producer_open(void *ctx, const struct xr_ctl_caller *who,
			 const struct xr_ctl_producer_open *m, struct xr_ctl_producer_opened *r,
			 int fds[2], char *why, size_t len)
{
	struct xr_gdir *d = ctx;

	if (!d->prods) {
		snprintf(why, len, "this engine has no producer slots (start it with --producers N)");
		return -ENOTSUP;
	}
	return xr__prods_open(d->prods, who, m, r, fds, why, len);
}

const struct xr_server_games xr__gdir_hooks = {
	.create = games_create,
	.destroy = games_destroy,
	.reset = games_reset,
	.list = games_list,
	.gone = games_gone,
	.reader = games_reader,
	.agent_open = agent_open,
	.seats_claim = seats_claim,
	.seats_release = seats_release,
	.table_create = table_create,
	.table_open = table_open,
	.table_drop = table_drop,
	.group_join = group_join,
	.group_leave = group_leave,
	.producer_open = producer_open,
};

/* --- life --------------------------------------------------------------- */

/* The games at start, where xr_engine_start puts them: shard k's share
 * in slots 0.., ids after shard k-1's. */
static void add_start_games(struct xr_gdir *d)
{
	uint32_t s = d->o.shards, given = 0;

	for (uint32_t k = 0; k < s; k++) {
		struct dshard *ds = &d->sh[k];
		uint32_t share = d->o.start / s + (k < d->o.start % s);
		for (uint32_t i = 0; i < share; i++) {
			uint32_t id = given + i;
			ds->ent[i] = (struct entry){.id = id, .used = true,
						    .turn_limit = d->o.start_turn_limit,
						    .uid = d->own_uid, .seed = d->o.start_seed + id};
			hash_put(d, id, k, i);
			order_add(d, id);
		}
		/* The free stack pops the lowest slot first. */
		for (uint32_t j = d->cap; j-- > share;)
			ds->free[ds->n_free++] = j;
		ds->live = share;
		given += share;
	}
	d->next_id = given;
	d->live = given;
}

int xr__gdir_create(const struct xr_gdir_opts *o, struct xr_gdir **out)
{
	struct xr_gdir *d;
	uint32_t max = o->max_games ? o->max_games : XR_GAMES_DEFAULT_MAX;

	if (!o->n_shapes || !o->shards || o->shards > 255 || o->start > max ||
	    max > XR_GAMES_LIMIT || o->input_delay >= XR_SEAT_DEPTH_MAX)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->o = *o;
	d->o.max_games = max;
	/* Twice the games: a destroyed game's slot comes back only once its
	 * shard has taken the order, and a burst of destructions and
	 * creations should find slots meanwhile. */
	d->cap = 2 * max;
	d->per_uid = o->max_games_per_uid ? o->max_games_per_uid : (max / 4 ? max / 4 : 1);
	d->rate = o->creates_per_uid > 0 ? o->creates_per_uid : XR_GAMES_DEFAULT_RATE;
	d->burst = 2 * d->rate;
	d->own_uid = (uint32_t)geteuid();
	d->shapes = calloc(o->n_shapes, sizeof(*d->shapes));
	d->sh = calloc(o->shards, sizeof(*d->sh));
	d->hmask = pow2_at_least(2ull * max + 2) - 1;
	d->hash = calloc((size_t)d->hmask + 1, sizeof(*d->hash));
	d->order = calloc(2ull * max + 2048, sizeof(*d->order)); /* see order_dead */
	if (!d->shapes || !d->sh || !d->hash || !d->order)
		goto nomem;
	memcpy(d->shapes, o->shapes, o->n_shapes * sizeof(*d->shapes));
	if (o->observe_subscribed &&
	    xr__interest_create(o->max_readers ? o->max_readers : 256, &d->interest) < 0)
		goto nomem;
	struct xr_seats_opts so = {.max_agents = o->max_agents ? o->max_agents : 16,
				   .shards = o->shards, .max_capacity = max,
				   .engine_uid = d->own_uid, .depth = o->input_delay + 1};
	if (xr__seats_create(&so, &d->seats) < 0)
		goto nomem;
	for (uint32_t k = 0; k < o->shards; k++) {
		struct dshard *s = &d->sh[k];
		if (xr__lc_init(&s->in, pow2_at_least(2ull * d->cap)) < 0 ||
		    xr__lc_init(&s->resets, XR_GAMES_RESETS_QUEUE) < 0 ||
		    xr__lc_init(&s->out, pow2_at_least(d->cap)) < 0 ||
		    !(s->pub = calloc(d->cap, sizeof(*s->pub))) ||
		    !(s->ent = calloc(d->cap, sizeof(*s->ent))) ||
		    !(s->free = calloc(d->cap, sizeof(*s->free))))
			goto nomem;
	}
	add_start_games(d);
	*out = d;
	return 0;
nomem:
	xr__gdir_destroy(d);
	return -ENOMEM;
}

void xr__gdir_wire(struct xr_gdir *d, uint32_t k, struct xr_shard_opts *so)
{
	so->in = &d->sh[k].in;
	so->resets = &d->sh[k].resets;
	so->out = &d->sh[k].out;
	so->pub = d->sh[k].pub;
	so->capacity = d->cap;
	so->interest = d->interest;
	so->seats = d->seats;
	so->index = k;
	so->fallback = d->o.fallback;
	so->action_timeout_ns = d->o.action_timeout_ns;
	so->input_delay = d->o.input_delay;
	if (d->arena) {
		/* Shard k writes ring k of stream 0 (and of every stream). */
		so->agent_stats = &d->arena->agent_stats[d->arena->lay.streams[0].first_ring + k];
		so->agent_stats_stride = d->arena->lay.n_rings;
		so->agent_infos = d->arena->agents;
	}
}

int xr__gdir_make_tables(struct xr_gdir *d, char *why, size_t len)
{
	/* As a TABLE_CREATE of the engine's own uid, before any connection. */
	struct xr_ctl_caller self = {.conn = 0, .uid = (uint32_t)geteuid(), .pid = getpid()};
	char w[XR_CTL_REASON_MAX];

	for (uint32_t i = 0; i < d->o.n_tables; i++) {
		const struct xr_gdir_table *gt = &d->o.tables[i];
		struct xr_ctl_table_create m;
		struct xr_ctl_table_created r;
		int rc = xr__ctl_table_to_wire(gt->name, &gt->opts, &m, w, sizeof(w));
		if (rc == 0)
			rc = table_create(d, &self, &m, &r, w, sizeof(w));
		if (rc < 0) {
			snprintf(why, len, "--table %s: %s", gt->name, w);
			return rc;
		}
		if (gt->restore) {
			rc = xr__thost_table_restore(d->tables, r.table, gt->restore, w, sizeof(w));
			if (rc < 0) {
				snprintf(why, len, "--table %s: restore from %s: %s", gt->name,
					 gt->restore, w);
				return rc;
			}
		}
	}
	return 0;
}

void xr__gdir_serve(struct xr_gdir *d)
{
	d->serving = true;
	if (d->tables)
		xr__thost_serve(d->tables);
}

void xr__gdir_set_producers(struct xr_gdir *d, struct xr_prods *p)
{
	d->prods = p;
}

void xr__gdir_set_arena(struct xr_gdir *d, struct xr_arena *a)
{
	d->arena = a;
	xr__seats_set_infos(d->seats, a->agents);
}

void xr__gdir_destroy(struct xr_gdir *d)
{
	struct xr_lc_msg m;

	if (!d)
		return;
	for (uint32_t k = 0; d->sh && k < d->o.shards; k++) {
		struct dshard *s = &d->sh[k];
		/* Instances of creations no shard took, of destructions it
		 * handed back, and the pool's. */
		if (s->in.msgs)
			while (xr__lc_pop(&s->in, &m))
				if (m.op == XR_LC_CREATE)
					m.vt->destroy(m.g);
		if (s->out.msgs)
			while (xr__lc_pop(&s->out, &m))
				m.vt->destroy(m.g);
		for (uint32_t i = 0; i < s->n_pool; i++)
			s->pool[i].vt->destroy(s->pool[i].g);
		xr__lc_fini(&s->in);
		xr__lc_fini(&s->resets);
		xr__lc_fini(&s->out);
		free(s->pub);
		free(s->ent);
		free(s->free);
	}
	free(d->sh);
	free(d->shapes);
	free(d->hash);
	free(d->order);
	free(d->uids);
	free(d->owners);
	xr__interest_destroy(d->interest);
	xr__seats_destroy(d->seats);
	xr__thost_destroy(d->tables);
	xr__ghost_destroy(d->groups);
	free(d);
}

void xr__gdir_stop_tables(struct xr_gdir *d)
{
	if (!d)
		return;
	xr__thost_destroy(d->tables);
	d->tables = NULL;
}
