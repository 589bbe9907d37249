/* SPDX-License-Identifier: MIT */
/*
 * ORDERING. The published claims are a seqlock, as engine/interest.c's
 * table: the control thread (the only writer) makes seq odd (SE1,
 * relaxed), fences (SE2, release), stores the entries (relaxed atomics)
 * and makes seq even (SE3, release); a shard loads seq (SE4, acquire),
 * the entries (relaxed), fences (SE5, acquire) and loads seq again (SE6);
 * the copy stands when both saw one even value. A copy that read a store
 * made after SE1 sees SE1's odd value or later at SE6 (SE5 pairs with SE2)
 * and is retried.
 *
 * Pages: the control thread unmaps an agent's page only once every shard
 * has stored (SE7, release, after its copy) a seq at or past the one that
 * removed the agent's claims, loaded with acquire (SE8): a shard looks a
 * seat up only in its latest copy (engine/shard.c checks its copy's
 * generation before each turn), so after SE7 it no longer reads the page.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "engine/seats.h"
#include "util/atomics.h"

enum { A_FREE, A_LIVE, A_RETIRING };

struct claim {
	uint32_t id, lo, hi, players, base;
};

struct agent {
	int state;
	uint64_t conn;
	uint32_t uid;
	int32_t pid;
	uint32_t capacity;
	uint64_t retire_seq;            /* A_RETIRING: unmap once shards pass it */
	void *page;
	size_t bytes;
	char label[16];
	uint32_t n_claims;
	struct claim claims[XR_SEATS_CLAIMS_MAX];
};

/* A published claim: the shards' seqlocked copy source. */
struct pub {
	_Atomic uint32_t active, agent, lo, hi, players, base, uid;
	_Atomic(_Atomic uint64_t *) slots;
};

struct xr_seats {
	struct xr_seats_opts o;
	uint32_t next_claim;
	struct agent *agents;           /* [max_agents] */
	_Atomic uint64_t seq;           /* odd while the control thread writes */
	struct pub *pub;                /* [max_agents * XR_SEATS_CLAIMS_MAX] */
	_Atomic uint64_t *seen;         /* [shards]: seq each shard last copied */
};

int xr__seats_create(const struct xr_seats_opts *o, struct xr_seats **out)
{
	struct xr_seats *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->o = *o;
	if (!s->o.max_agents || s->o.max_agents > XR_SEATS_AGENTS_MAX)
		s->o.max_agents = XR_SEATS_AGENTS_MAX;
	if (!s->o.max_capacity || s->o.max_capacity > XR_SEATS_CAPACITY_MAX)
		s->o.max_capacity = XR_SEATS_CAPACITY_MAX;
	if (!s->o.depth || s->o.depth > XR_SEAT_DEPTH_MAX)
		s->o.depth = 1;
	s->agents = calloc(s->o.max_agents, sizeof(*s->agents));
	s->pub = calloc((size_t)s->o.max_agents * XR_SEATS_CLAIMS_MAX, sizeof(*s->pub));
	s->seen = calloc(o->shards ? o->shards : 1, sizeof(*s->seen));
	if (!s->agents || !s->pub || !s->seen) {
		xr__seats_destroy(s);
		return -ENOMEM;
	}
	xr_store_relaxed(&s->seq, 2); /* even; a view's 0 means never copied */
	*out = s;
	return 0;
}

void xr__seats_set_infos(struct xr_seats *s, struct xr_agent_info *infos)
{
	s->o.infos = infos;
}

static void unmap(struct agent *a)
{
	if (a->page)
		munmap(a->page, a->bytes);
	a->page = NULL;
	a->state = A_FREE;
}

void xr__seats_destroy(struct xr_seats *s)
{
	if (!s)
		return;
	if (s->agents)
		for (uint32_t i = 0; i < s->o.max_agents; i++)
			unmap(&s->agents[i]);
	free(s->agents);
	free(s->pub);
	free(s->seen);
	free(s);
}

/* Agent i as tools see it (the arena's agent table). The entry's gen is
 * bumped before its first claim is published: a shard that sees a new gen
 * with a copy of the claims starts the agent's counts over (engine/
 * shard.c, new_agents). */
static void show(struct xr_seats *s, uint32_t i, bool opened)
{
	struct xr_agent_info *f = s->o.infos ? &s->o.infos[i] : NULL;
	const struct agent *a = &s->agents[i];
	uint64_t seats = 0;

	if (!f)
		return;
	for (uint32_t k = 0; k < a->n_claims; k++)
		seats += ((uint64_t)a->claims[k].hi - a->claims[k].lo + 1) *
			 (uint64_t)__builtin_popcount(a->claims[k].players);
	if (opened) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		xr_store_relaxed(&f->state, XR_AGENT_FREE);
		f->uid = a->uid;
		f->pid = a->pid;
		f->capacity = a->capacity;
		f->attach_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		xr__label_put(f->label, a->label, sizeof(f->label));
		xr_store_relaxed(&f->gen, xr_load_relaxed(&f->gen) + 1);
	}
	xr_store_relaxed(&f->claims, a->n_claims);
	xr_store_relaxed(&f->seats, seats);
	xr_store_release(&f->state, a->state == A_LIVE ? XR_AGENT_LIVE : XR_AGENT_GONE);
}

/* Republishes agent i's claims (its entries of pub[]), under the seqlock. */
static void publish(struct xr_seats *s, uint32_t i)
{
	struct agent *a = &s->agents[i];
	struct pub *p = &s->pub[(size_t)i * XR_SEATS_CLAIMS_MAX];
	uint64_t seq = xr_load_relaxed(&s->seq);

	xr_store_relaxed(&s->seq, seq + 1); /* SE1 */
	xr_fence_release();                 /* SE2: pairs with SE5 */
	for (uint32_t k = 0; k < XR_SEATS_CLAIMS_MAX; k++) {
		bool on = a->state == A_LIVE && k < a->n_claims;
		xr_store_relaxed(&p[k].active, on);
		if (!on)
			continue;
		const struct claim *c = &a->claims[k];
		xr_store_relaxed(&p[k].agent, i);
		xr_store_relaxed(&p[k].lo, c->lo);
		xr_store_relaxed(&p[k].hi, c->hi);
		xr_store_relaxed(&p[k].players, c->players);
		xr_store_relaxed(&p[k].base, c->base);
		xr_store_relaxed(&p[k].uid, a->uid);
		xr_store_relaxed(&p[k].slots, (_Atomic uint64_t *)a->page);
	}
	xr_store_release(&s->seq, seq + 2); /* SE3: pairs with SE4 */
}

/* Whether every shard copied a table at or past seq. */
static bool shards_past(const struct xr_seats *s, uint64_t seq)
{
	for (uint32_t k = 0; k < s->o.shards; k++)
		if (xr_load_acquire(&s->seen[k]) < seq) /* SE8: pairs with SE7 */
			return false;
	return true;
}

/* Unmaps the pages of retired agents the shards are past. */
static void reap(struct xr_seats *s)
{
	for (uint32_t i = 0; i < s->o.max_agents; i++)
		if (s->agents[i].state == A_RETIRING && shards_past(s, s->agents[i].retire_seq))
			unmap(&s->agents[i]);
}

int xr__seats_agent_of(const struct xr_seats *s, uint64_t conn)
{
	for (uint32_t i = 0; i < s->o.max_agents; i++)
		if (s->agents[i].state == A_LIVE && s->agents[i].conn == conn)
			return (int)i;
	return -1;
}

int xr__seats_open(struct xr_seats *s, const struct xr_seat_caller *who, uint32_t capacity,
		   const char *label, uint32_t *agent, int *fd_out, uint64_t *bytes, char *why,
		   size_t len)
{
	int free_i = -1, retiring = 0, mine_retiring = 0;

	reap(s);
	if (xr__seats_agent_of(s, who->conn) >= 0) {
		snprintf(why, len, "this connection is an agent already: one agent per connection");
		return -EINVAL;
	}
	if (capacity < 1 || capacity > s->o.max_capacity) {
		snprintf(why, len, "an agent's capacity is 1..%u games (--max-games), not %u",
			 s->o.max_capacity, capacity);
		return -EINVAL;
	}
	uint32_t mine = 0, per_uid = s->o.max_per_uid ? s->o.max_per_uid
						     : (s->o.max_agents / 4 ? s->o.max_agents / 4 : 1);
	for (uint32_t i = 0; i < s->o.max_agents; i++) {
		if (s->agents[i].state == A_FREE && free_i < 0)
			free_i = (int)i;
		retiring += s->agents[i].state == A_RETIRING;
		/* Its agents gone whose slots the shards have not let go of
		 * yet count too: they hold slots as well, and a uid attaching
		 * and detaching while a shard is paused (or in a long round)
		 * would otherwise fill the table with them. */
		if (s->agents[i].state != A_FREE && s->agents[i].uid == who->uid) {
			mine++;
			mine_retiring += s->agents[i].state == A_RETIRING;
		}
	}
	/* A uid's agents take at most a quarter of the table (the engine's
	 * uid: all of it), so that one uid cannot keep the others out. */
	if (who->uid != s->o.engine_uid && mine >= per_uid) {
		if (mine_retiring)
			snprintf(why, len, "uid %u has %u agents attached, its most (a quarter "
					   "of --max-agents %u), %d of them gone but not let go "
					   "of by the shards yet; retry in a moment",
				 (unsigned)who->uid, mine, s->o.max_agents, mine_retiring);
		else
			snprintf(why, len, "uid %u has %u agents attached, its most (a quarter "
					   "of --max-agents %u)",
				 (unsigned)who->uid, mine, s->o.max_agents);
		return mine_retiring ? -EAGAIN : -EBUSY;
	}
	if (free_i < 0) {
		if (retiring)
			snprintf(why, len, "every agent slot is taken, %d by agents gone whose "
					   "shards have not moved on yet; retry in a moment",
				 retiring);
		else
			snprintf(why, len, "this engine has %u agents, its most (--max-agents)",
				 s->o.max_agents);
		return retiring ? -EAGAIN : -EBUSY;
	}
	size_t n = (size_t)capacity * XR_SEAT_BLOCK * s->o.depth;
	int fd = memfd_create("xring-agent", MFD_CLOEXEC | MFD_ALLOW_SEALING), err;
	if (fd < 0) {
		err = -errno;
		snprintf(why, len, "cannot make an agent page: %s", strerror(-err));
		return err;
	}
	void *page = MAP_FAILED;
	/* Sealed before it is mapped or handed out: the agent can neither
	 * shrink it (the engine's loads would fault) nor grow it. */
	if (ftruncate(fd, (off_t)n) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0 ||
	    (page = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		err = -errno;
		close(fd);
		snprintf(why, len, "cannot make an agent page of %zu bytes: %s", n, strerror(-err));
		return err;
	}
	struct agent *a = &s->agents[free_i];
	*a = (struct agent){.state = A_LIVE, .conn = who->conn, .uid = who->uid,
			    .pid = who->pid, .capacity = capacity, .page = page, .bytes = n};
	if (label)
		snprintf(a->label, sizeof(a->label), "%s", label);
	show(s, (uint32_t)free_i, true);
	*agent = (uint32_t)free_i;
	*fd_out = fd;
	*bytes = n;
	return 0;
}

/* The first `games` free blocks of a's page, or UINT32_MAX. Claims are
 * few (XR_SEATS_CLAIMS_MAX): a scan of the gaps between them. */
static uint32_t find_blocks(const struct agent *a, uint32_t games)
{
	uint32_t at = 0;

	for (;;) {
		bool moved = false;
		for (uint32_t k = 0; k < a->n_claims; k++) {
			const struct claim *c = &a->claims[k];
			uint64_t end = (uint64_t)c->base + (c->hi - c->lo) + 1;
			if (at < end && (uint64_t)at + games > c->base) {
				at = (uint32_t)end; /* overlaps: try after it */
				moved = true;
			}
		}
		if (!moved)
			break;
	}
	return (uint64_t)at + games <= a->capacity ? at : UINT32_MAX;
}

int xr__seats_claim(struct xr_seats *s, const struct xr_seat_caller *who, uint32_t lo,
		    uint32_t hi, uint32_t players, uint32_t *claim_id, uint32_t *base, char *why,
		    size_t len)
{
	int me = xr__seats_agent_of(s, who->conn);

	if (me < 0) {
		snprintf(why, len, "this connection is not an agent (AGENT_OPEN first)");
		return -EINVAL;
	}
	struct agent *a = &s->agents[me];
	if (lo > hi) {
		snprintf(why, len, "games %u..%u: the first is past the last", lo, hi);
		return -EINVAL;
	}
	if (!players)
		players = (1u << 8) - 1;
	if (players >> 8) {
		snprintf(why, len, "players 0x%x: a game has at most 8 players (bits 0..7)", players);
		return -EINVAL;
	}
	if (a->n_claims == XR_SEATS_CLAIMS_MAX) {
		snprintf(why, len, "this agent holds %u claims, its most: release one, or claim "
				   "ranges that cover more",
			 XR_SEATS_CLAIMS_MAX);
		return -EBUSY;
	}
	uint64_t games = (uint64_t)hi - lo + 1;
	uint32_t at = games <= a->capacity ? find_blocks(a, (uint32_t)games) : UINT32_MAX;
	if (at == UINT32_MAX) {
		snprintf(why, len, "%llu games do not fit in this agent's page (%u games, some "
				   "claimed): open the agent with a larger capacity",
			 (unsigned long long)games, a->capacity);
		return -ENOSPC;
	}
	/* A seat has one agent: no claim of any agent of this uid (this one
	 * included) may share a (game, player) with this one. Claims of two
	 * uids hold different games (each its own uid's; the engine's uid's
	 * only those no claim of the owner's uid holds: xr__seats_find), so
	 * they never conflict, and a stranger's claim over a range cannot keep
	 * another uid's agents out of it. O(agents x claims). */
	for (uint32_t i = 0; i < s->o.max_agents; i++) {
		const struct agent *b = &s->agents[i];
		if (b->state != A_LIVE || b->uid != a->uid)
			continue;
		for (uint32_t k = 0; k < b->n_claims; k++) {
			const struct claim *c = &b->claims[k];
			uint32_t both = c->players & players;
			if (c->hi < lo || c->lo > hi || !both)
				continue;
			uint32_t g = c->lo > lo ? c->lo : lo, p = (uint32_t)__builtin_ctz(both);
			if (b == a)
				snprintf(why, len, "seat (game %u, player %u) is this agent's already "
						   "(claim %u)",
					 g, p, c->id);
			else
				snprintf(why, len, "seat (game %u, player %u) is held by agent %u "
						   "(\"%s\", pid %d, uid %u)",
					 g, p, i, b->label, (int)b->pid, (unsigned)b->uid);
			return -EBUSY;
		}
	}
	struct claim *c = &a->claims[a->n_claims++];
	*c = (struct claim){.id = ++s->next_claim, .lo = lo, .hi = hi, .players = players,
			    .base = at};
	/* The agent wrote what it liked in its page before this claim: the
	 * slots start as they are. A word answers only a record whose tag it
	 * carries (engine/shard.c), so old bytes cost the agent fallbacks at
	 * worst, never another agent anything. */
	publish(s, (uint32_t)me);
	show(s, (uint32_t)me, false);
	*claim_id = c->id;
	*base = at;
	return 0;
}

int xr__seats_release(struct xr_seats *s, const struct xr_seat_caller *who, uint32_t claim_id,
		      char *why, size_t len)
{
	int me = xr__seats_agent_of(s, who->conn);

	if (me < 0) {
		snprintf(why, len, "this connection is not an agent (AGENT_OPEN first)");
		return -EINVAL;
	}
	struct agent *a = &s->agents[me];
	for (uint32_t k = 0; k < a->n_claims; k++) {
		if (a->claims[k].id != claim_id)
			continue;
		a->claims[k] = a->claims[--a->n_claims];
		publish(s, (uint32_t)me);
		show(s, (uint32_t)me, false);
		return 0;
	}
	snprintf(why, len, "this agent holds no claim %u", claim_id);
	return -ENOENT;
}

void xr__seats_gone(struct xr_seats *s, uint64_t conn)
{
	int me = xr__seats_agent_of(s, conn);

	if (me < 0)
		return;
	struct agent *a = &s->agents[me];
	a->state = A_RETIRING;
	a->n_claims = 0;
	publish(s, (uint32_t)me);
	show(s, (uint32_t)me, false);
	a->retire_seq = xr_load_relaxed(&s->seq);
	reap(s);
}

bool xr__seats_changed(const struct xr_seats *s, const struct xr_seats_view *v)
{
	return xr_load_relaxed(&s->seq) != v->seq;
}

int xr__seats_view_init(const struct xr_seats *s, struct xr_seats_view *v)
{
	memset(v, 0, sizeof(*v));
	v->engine_uid = s->o.engine_uid;
	v->depth = s->o.depth;
	size_t total = (size_t)s->o.max_agents * XR_SEATS_CLAIMS_MAX;
	v->c = calloc(total, sizeof(*v->c));
	v->by[0] = calloc(total, sizeof(*v->by[0]));
	v->by[1] = calloc(total, sizeof(*v->by[1]));
	if (!v->c || !v->by[0] || !v->by[1]) {
		xr__seats_view_fini(v);
		return -ENOMEM;
	}
	return 0;
}

void xr__seats_view_fini(struct xr_seats_view *v)
{
	free(v->c);
	free(v->by[0]);
	free(v->by[1]);
	v->c = v->by[0] = v->by[1] = NULL;
}

static bool same_claim(const struct xr_seat_claim *a, const struct xr_seat_claim *b)
{
	return a->active == b->active &&
	       (!a->active || (a->agent == b->agent && a->lo == b->lo && a->hi == b->hi &&
			       a->players == b->players && a->base == b->base && a->uid == b->uid &&
			       a->slots == b->slots));
}

/* Which game ranges the new copy (by[1 - cur]) changed from the last. */
static void diff(struct xr_seats_view *v, size_t total, bool first)
{
	const struct xr_seat_claim *was = v->by[v->cur], *now = v->by[1 - v->cur];

	v->n_changed = 0;
	v->all_changed = first;
	for (size_t i = 0; i < total && !v->all_changed; i++) {
		if (same_claim(&was[i], &now[i]))
			continue;
		for (int k = 0; k < 2; k++) {
			const struct xr_seat_claim *c = k ? &now[i] : &was[i];
			if (!c->active)
				continue;
			if (v->n_changed == XR_SEATS_CHANGED_MAX) {
				v->all_changed = true;
				break;
			}
			v->changed[v->n_changed].lo = c->lo;
			v->changed[v->n_changed++].hi = c->hi;
		}
	}
}

void xr__seats_copy(struct xr_seats *s, struct xr_seats_view *v, uint32_t shard)
{
	size_t total = (size_t)s->o.max_agents * XR_SEATS_CLAIMS_MAX;

	struct xr_seat_claim *next = v->by[1 - v->cur];

	for (;;) {
		uint64_t s1 = xr_load_acquire(&s->seq); /* SE4: pairs with SE3 */

		if (s1 & 1) {
			xr_cpu_relax();
			continue;
		}
		for (size_t i = 0; i < total; i++) {
			const struct pub *p = &s->pub[i];
			if (!xr_load_relaxed(&p->active)) {
				next[i].active = false;
				continue;
			}
			next[i] = (struct xr_seat_claim){
				.agent = xr_load_relaxed(&p->agent), .lo = xr_load_relaxed(&p->lo),
				.hi = xr_load_relaxed(&p->hi), .players = xr_load_relaxed(&p->players),
				.base = xr_load_relaxed(&p->base), .uid = xr_load_relaxed(&p->uid),
				.slots = xr_load_relaxed(&p->slots), .active = true};
		}
		xr_fence_acquire();                        /* SE5: pairs with SE2 */
		if (xr_load_relaxed(&s->seq) == s1) {      /* SE6 */
			uint32_t n = 0;
			diff(v, total, v->seq == 0);
			v->cur = 1 - v->cur;
			for (size_t i = 0; i < total; i++)
				if (next[i].active)
					v->c[n++] = next[i];
			v->n = n;
			v->seq = s1;
			if (shard < s->o.shards)
				xr_store_release(&s->seen[shard], s1); /* SE7: pairs with SE8 */
			return;
		}
	}
}
