/* SPDX-License-Identifier: MIT */
/*
 * Consumer groups: the thread that splits a stream between the members of a
 * group (engine/group_host.h says what, docs/groups.md how to use it).
 *
 * Exactly one member per record. A record reaches members only inside a
 * grant, and a grant is in one place at a time: in one member's hold slot,
 * or in its group's queue of returned pieces, never both (every move below
 * takes it out of one before it puts it in the other, under the mutex). A
 * grant leaves the group only when the member holding it says it is done
 * (rel[slot] = tag | DONE), read while that member is still joined: a
 * member gone, evicted or returning gives its grants back to the queue.
 * The internal batch a grant is a piece of stays leased in the ring until
 * every piece is done, so the bytes a member reads do not change under it.
 *
 * Locking. All of it is this thread's, under the base's mutex
 * (engine/service_base.h); the control thread takes the mutex for a join or
 * a connection's end, never across anything that waits. The thread leaves the mutex to attach and detach the groups'
 * readers: attaching is a request the control thread must answer.
 */
#include "group_host.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/service_base.h"
#include "shm/group_layout.h"
#include "util/atomics.h"
#include "util/fs.h"
#include "util/clock.h"
#include "xring/error.h"
#include "xring/reader.h"


#define XR_GROUP_WAIT_MAX_NS 3600000000000ull /* as a table's longest wait */
#define XR_GROUP_DRAIN_NS 2000000000ull /* at the engine's stop */
#define GROUP_TAG 0x10000u /* epoll data of group g's reader: GROUP_TAG + g */
#define KICK_TAG 0x20000u
#define STOP_TAG 0x30000u

/* Records [off, off + bytes) of ring `ring` in the group reader's mapping,
 * count of them, a piece of internal batch ib. */
struct piece {
	uint32_t ib, ring, count, stride, len;
	uint64_t off, bytes, first_seq;
};

struct ibatch {
	xr_batch b;
	uint32_t refs;    /* pieces out or queued; 0: free */
	uint64_t read_at; /* when the group's reader took it: a lossy group's
			   * hold clock, which no piece's return resets */
};

struct group {
	bool used;
	bool dying;        /* no members: the thread detaches its reader */
	bool failed;       /* its reader ended: every request gets fail_rc */
	bool in_ep;
	int fail_rc;
	char name[XR_GROUP_NAME_MAX + 1];
	char stream[XR_STREAM_NAME_MAX + 1];
	uint32_t uid, policy, members;
	xr_reader *r;
	uint32_t n_rings;
	const uint8_t *base[XR_MAX_RINGS];
	struct ibatch ib[XR_HELD_MAX];
	uint32_t n_ib;
	struct piece *q; /* returned pieces, a ring of q_cap, oldest at q_head */
	uint32_t q_head, q_len, q_cap;
	uint64_t done, held, queued, redelivered, lost;
};

struct grant {
	uint64_t tag;
	uint64_t at; /* when it was granted: a lossy group's member clock */
	struct piece p;
};

struct member {
	bool live;
	bool deaf;         /* its doorbell closed: out of the epoll set */
	bool evicted;      /* out of its group: answers XR_EEVICTED */
	bool waiting;      /* a TAKE parked until records come or its deadline */
	bool forever;      /* ...asked with no deadline */
	bool answered;     /* ring its doorbell this round */
	bool stats;        /* the answer is to a STATS */
	int g;
	int bell;
	uint64_t conn;
	uint32_t uid;
	struct xr_gpage *page;
	uint64_t seen;     /* the last request taken */
	uint32_t min, max;
	uint64_t deadline;
	uint64_t asked;    /* its place among parked requests */
	uint64_t occ;      /* hold slots in use */
	uint64_t held;     /* records in them */
	struct grant gr[XR_GROUP_HOLD];
};

struct xr_ghost {
	pthread_t th;
	struct xr_svc_base b;
	_Atomic bool stop;
	char engine[XR_NAME_MAX + 1];
	uint32_t engine_uid;
	uint64_t hold_ns;
	uint32_t others_groups; /* groups all other uids may have together */
	uint64_t next_tag;
	uint64_t asks;     /* requests parked so far: their order */
	struct group g[XR_GROUPS_MAX];
	struct member m[XR_GMEMBERS_MAX];
};

/* ---- pieces and the queue ---- */

static void unref(struct group *G, uint32_t ib)
{
	if (--G->ib[ib].refs)
		return;
	xr_batch_release(G->r, &G->ib[ib].b);
	G->n_ib--;
}

static int q_push(struct group *G, const struct piece *p)
{
	if (G->q_len == G->q_cap) {
		uint32_t cap = G->q_cap ? 2 * G->q_cap : 64;
		struct piece *q = malloc(cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		for (uint32_t i = 0; i < G->q_len; i++)
			q[i] = G->q[(G->q_head + i) % G->q_cap];
		free(G->q);
		G->q = q;
		G->q_cap = cap;
		G->q_head = 0;
	}
	G->q[(G->q_head + G->q_len++) % G->q_cap] = *p;
	G->queued += p->count;
	return 0;
}

/* A piece going back to the group: queued for another member. Out of
 * memory for the queue (it grows only as members return pieces), the
 * records are lost to the group rather than handed out twice: counted. */
static void give_back(struct group *G, const struct piece *p)
{
	if (q_push(G, p) < 0) {
		G->lost += p->count;
		unref(G, p->ib);
	}
}

/* The first max records of the queue's oldest piece, out of the queue:
 * the rest stays at its head, a piece of the same batch. Its batch is
 * leased (the caller checked the group's reader is not evicted), so its
 * frames are as the writer published them; the walk is bounded all the
 * same, and a frame that does not fit ends it: the whole piece is then
 * lost to the group (count 0 returned), never a pointer out of it. */
static struct piece q_take(struct group *G, uint32_t max)
{
	struct piece *h = &G->q[G->q_head], p = *h;

	if (p.count > max) {
		const uint8_t *start = G->base[p.ring] + p.off, *end = start + p.bytes;
		const xr_frame *f = (const xr_frame *)start;
		bool bad = false;
		for (uint32_t i = 0; i < max && !bad; i++) {
			const uint8_t *next = (const uint8_t *)xr_frame_next(f);
			bad = (const uint8_t *)f + sizeof(xr_frame) > end || next <= (const uint8_t *)f ||
			      next > end || ((uintptr_t)next & 7);
			f = (const xr_frame *)next;
		}
		uint64_t cut = (uint64_t)((const uint8_t *)f - start);
		if (!bad && cut < p.bytes) {
			p.count = max;
			p.bytes = cut;
			h->count -= max;
			h->off += cut;
			h->bytes -= cut;
			h->first_seq += max;
			G->ib[p.ib].refs++; /* one batch, two pieces now */
			G->queued -= p.count;
			return p;
		}
		G->lost += p.count;
		p.count = 0;
	}
	G->q_head = (G->q_head + 1) % G->q_cap;
	G->q_len--;
	G->queued -= h->count;
	if (!p.count)
		unref(G, p.ib);
	return p;
}

/* ---- answers ---- */

static void figures(struct group *G, struct xr_gpage_resp *a)
{
	xr_reader_stats st = {0};

	if (G->r)
		(void)xr_reader_stats_get(G->r, &st);
	a->written = st.written;
	a->done = G->done;
	a->held = G->held;
	a->pending = st.pending + G->queued;
	a->dropped = st.dropped + G->lost;
	a->redelivered = G->redelivered;
	a->members = G->members;
	a->policy = G->policy;
}

static void answer(struct xr_ghost *h, struct member *M, int rc, const struct grant *gr,
		   uint32_t slot)
{
	struct xr_gpage_resp *a = &M->page->resp;

	a->rc = rc;
	if (gr) {
		a->slot = slot;
		a->tag = gr->tag;
		a->ring = gr->p.ring;
		a->stride = gr->p.stride;
		a->len = gr->p.len;
		a->off = gr->p.off;
		a->bytes = gr->p.bytes;
		a->first_seq = gr->p.first_seq;
	}
	/* The figures walk the rings (pending records): for STATS only. */
	if (M->g >= 0 && M->stats)
		figures(&h->g[M->g], a);
	M->stats = false;
	/* Release: the fields above before the seq the member waits for. */
	xr_store_release(&a->seq, M->seen);
	M->waiting = false;
	M->answered = true;
}

static void grant(struct xr_ghost *h, struct member *M, const struct piece *p, uint64_t now)
{
	struct group *G = &h->g[M->g];
	uint32_t slot = (uint32_t)__builtin_ctzll(~M->occ);

	h->next_tag += 4;
	M->gr[slot] = (struct grant){.tag = h->next_tag, .at = now, .p = *p};
	M->occ |= 1ull << slot;
	M->held += p->count;
	G->held += p->count;
	answer(h, M, (int)p->count, &M->gr[slot], slot);
}

/* Grant `slot` of M ends: done (the records are used) or back to the
 * group (redelivered: counted as such when the member did not ask). */
static void end_grant(struct xr_ghost *h, struct member *M, uint32_t slot, bool done,
		      bool asked)
{
	struct group *G = &h->g[M->g];
	struct piece p = M->gr[slot].p;

	M->occ &= ~(1ull << slot);
	M->gr[slot].tag = 0;
	M->held -= p.count;
	G->held -= p.count;
	if (done) {
		G->done += p.count;
		unref(G, p.ib);
		return;
	}
	if (!asked)
		G->redelivered += p.count;
	give_back(G, &p);
}

/* What member M gave back since the last look. The tag in rel[slot] must
 * be the grant's own: a stale or made-up word names nothing. */
static void collect(struct xr_ghost *h, struct member *M)
{
	for (uint64_t occ = M->occ; occ; occ &= occ - 1) {
		uint32_t s = (uint32_t)__builtin_ctzll(occ);
		/* Acquire: pairs with the member's release store of the word,
		 * after its last read of the records (nothing of ours to
		 * order, but the member's reads of the ring must be over
		 * before the writer may reuse it, which our release of the
		 * batch then allows). */
		uint64_t v = xr_load_acquire(&M->page->req.rel[s]);
		if ((v & ~XR_GREL_MASK) != M->gr[s].tag)
			continue;
		if ((v & XR_GREL_MASK) == XR_GREL_DONE)
			end_grant(h, M, s, true, true);
		else if ((v & XR_GREL_MASK) == XR_GREL_RETURN)
			end_grant(h, M, s, false, true);
	}
}

/* Member M leaves its group: what it did not say it was done with goes
 * back. The last member's leaving ends the group (its reader detaches on
 * the thread). */
static void leave(struct xr_ghost *h, struct member *M)
{
	if (M->g < 0)
		return;
	struct group *G = &h->g[M->g];
	collect(h, M);
	for (uint64_t occ = M->occ; occ; occ &= occ - 1)
		end_grant(h, M, (uint32_t)__builtin_ctzll(occ), false, false);
	if (--G->members == 0)
		G->dying = true;
	M->g = -1;
	M->waiting = false;
}

/* ---- serving ---- */

/* Reads M's request if it made a new one. */
static void take_request(struct xr_ghost *h, struct member *M, uint64_t now)
{
	struct xr_gpage_req *q = &M->page->req;
	/* Acquire: pairs with the member's release store of seq after the
	 * fields below. Each is read once; a member changing them meanwhile
	 * changes only its own answer. */
	uint64_t seq = xr_load_acquire(&q->seq);

	if (seq == M->seen)
		return;
	M->seen = seq;
	uint32_t op = q->op, min = q->min, max = q->max;
	int64_t wait = q->wait_ns;
	if (M->evicted) {
		answer(h, M, XR_EEVICTED, NULL, 0);
		return;
	}
	if (op == XR_GOP_STATS) {
		M->stats = true;
		answer(h, M, 0, NULL, 0);
		return;
	}
	if (op != XR_GOP_TAKE || min == 0 || min > max || max > XR_BATCH_MAX) {
		answer(h, M, -EINVAL, NULL, 0);
		return;
	}
	if (M->occ == UINT64_MAX) {
		answer(h, M, -ENOBUFS, NULL, 0);
		return;
	}
	M->min = min;
	M->max = max;
	M->forever = wait < 0;
	uint64_t w = wait < 0 || (uint64_t)wait > XR_GROUP_WAIT_MAX_NS ? XR_GROUP_WAIT_MAX_NS
								     : (uint64_t)wait;
	M->deadline = now + w;
	M->waiting = true;
	M->asked = ++h->asks;
}

static void fail_group(struct group *G, int rc)
{
	G->failed = true;
	G->fail_rc = rc;
}

/* Takes a new batch of up to max records from G's reader into a piece. */
static int read_piece(struct group *G, uint32_t max, struct piece *p)
{
	uint32_t i;

	for (i = 0; i < XR_HELD_MAX && G->ib[i].refs; i++)
		;
	if (i == XR_HELD_MAX)
		return 0;
	xr_batch *b = &G->ib[i].b;
	int n = xr_reader_read(G->r, 1, max, 0, b);
	if (n <= 0)
		return n;
	G->ib[i].refs = 1;
	G->ib[i].read_at = xr__now_ns();
	G->n_ib++;
	*p = (struct piece){.ib = i, .ring = b->ring, .count = b->count, .stride = b->stride,
			    .len = b->len,
			    .off = (uint64_t)((const uint8_t *)b->first - G->base[b->ring]),
			    .bytes = b->bytes, .first_seq = b->first_seq};
	return n;
}

/* Whether every grant and queued piece of G is M's: then a writer that
 * waits for the group waits for M alone. */
static bool all_mine(const struct group *G, const struct member *M)
{
	return G->queued == 0 && G->held == M->held;
}

/* Serves M's parked TAKE if it can now: returned pieces first, then a new
 * batch when min records are there (or fewer at the deadline, or when the
 * writer waits for what the group holds and no more can come). */
static void serve(struct xr_ghost *h, struct member *M, uint64_t now)
{
	struct group *G = &h->g[M->g];
	bool due = now >= M->deadline;
	struct piece p;
	int rc;

	if (G->failed) {
		answer(h, M, G->fail_rc, NULL, 0);
		return;
	}
	while (G->q_len) {
		p = q_take(G, M->max);
		if (p.count) {
			grant(h, M, &p, now);
			return;
		}
	}
	/* No reader yet (it attaches on this thread, soon), or every batch
	 * it may hold is out: a release or the deadline moves this on. */
	if (!G->r || G->n_ib == XR_HELD_MAX) {
		if (due)
			answer(h, M, 0, NULL, 0);
		return;
	}
	/* Closed (the engine stops) and every record read: the group ends
	 * here. A look that takes nothing; before the arm, which it undoes. */
	rc = xr_reader_wait(G->r, 1, 0);
	if (rc == 0 || rc > 0)
		rc = xr_reader_arm(G->r, M->min);
	if (rc == 1 || (due && (rc == 0 || rc == -EDEADLK))) {
		rc = read_piece(G, M->max, &p);
		if (rc > 0) {
			grant(h, M, &p, now);
			return;
		}
	} else if (rc == -EDEADLK) {
		/* As a reader's read with no deadline: the writer waits for
		 * what this member alone holds, and nothing comes before. */
		if (M->forever && all_mine(G, M))
			answer(h, M, -EDEADLK, NULL, 0);
		return;
	}
	if (rc < 0) {
		/* Closed, evicted, a malformed ring: the group reads no more. */
		fail_group(G, rc);
		answer(h, M, rc, NULL, 0);
		return;
	}
	if (due)
		answer(h, M, 0, NULL, 0);
}

/* A lossy group's clocks. The group's reader took each batch at read_at,
 * and the writer evicts a lossy reader that holds one for the lease
 * timeout (4 hold_ns). So a batch must be done within that, however its
 * pieces travel:
 *  - a queued piece of a batch older than hold_ns is dropped, never
 *    handed out: what a member is granted is at most hold_ns old;
 *  - a member is evicted from the group (its grants go back, and are
 *    dropped as old) when it has held a piece for hold_ns since it got it.
 * A batch is thus done or dropped by read_at + 2 hold_ns, half the lease
 * timeout, whatever its members do; giving a piece back and taking it
 * again cannot reset that, the queue's own clock being the batch's. The
 * member's clock is its grant's, not the batch's: a member that takes a
 * queued piece just before its batch's hold_ns ends has a whole hold_ns
 * to release it, like any other (evicting it there would punish the
 * member that keeps up for the one that did not). */
static void lossy_clock(struct xr_ghost *h, struct group *G, uint64_t now, uint64_t *next)
{
	if (!h->hold_ns)
		return; /* the writer never evicts (--lease-timeout 0) */
	for (uint32_t i = 0; i < XR_GMEMBERS_MAX; i++) {
		struct member *M = &h->m[i];
		if (!M->live || M->g != (int)(G - h->g))
			continue;
		for (uint64_t occ = M->occ; occ; occ &= occ - 1) {
			uint64_t t = M->gr[__builtin_ctzll(occ)].at + h->hold_ns;
			if (t > now) {
				if (t < *next)
					*next = t;
				continue;
			}
			bool waiting = M->waiting;
			leave(h, M);
			M->evicted = true;
			if (waiting)
				answer(h, M, XR_EEVICTED, NULL, 0);
			break;
		}
	}
	/* The queue, whole: a piece given back lately may be of an old batch. */
	for (uint32_t k = G->q_len; k-- > 0;) {
		struct piece p = G->q[G->q_head];
		G->q_head = (G->q_head + 1) % G->q_cap;
		G->q_len--;
		uint64_t t = G->ib[p.ib].read_at + h->hold_ns;
		if (t <= now) {
			G->queued -= p.count;
			G->lost += p.count;
			unref(G, p.ib);
			continue;
		}
		if (t < *next)
			*next = t;
		G->q[(G->q_head + G->q_len++) % G->q_cap] = p; /* to the back, in order */
	}
}

/* A group whose reader the writer evicted (a lossy group held too long)
 * ends: its batches' bytes may be overwritten now, so nothing queued is
 * handed out, and every member's next request says XR_EEVICTED. */
static void check_evicted(struct group *G)
{
	if (!G->r || G->failed || xr_reader_status(G->r) != XR_EEVICTED)
		return;
	fail_group(G, XR_EEVICTED);
	while (G->q_len) {
		struct piece p = G->q[G->q_head];
		G->q_head = (G->q_head + 1) % G->q_cap;
		G->q_len--;
		G->queued -= p.count;
		G->lost += p.count;
		unref(G, p.ib);
	}
}

/* One round over every member and group, under the mutex. Returns the
 * next deadline (UINT64_MAX: none). */
static uint64_t round_locked(struct xr_ghost *h, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (uint32_t i = 0; i < XR_GMEMBERS_MAX; i++) {
		struct member *M = &h->m[i];
		if (!M->live)
			continue;
		if (M->g >= 0)
			collect(h, M);
		if (!M->waiting)
			take_request(h, M, now);
	}
	for (uint32_t g = 0; g < XR_GROUPS_MAX; g++) {
		if (!h->g[g].used || h->g[g].dying)
			continue;
		check_evicted(&h->g[g]);
		if (h->g[g].policy == XR_POLICY_LOSSY && !h->g[g].failed)
			lossy_clock(h, &h->g[g], now, &next);
	}
	/* Parked requests, oldest first: the first served takes what is
	 * there, so members that ask as often get as much. */
	uint32_t order[XR_GMEMBERS_MAX], n = 0;
	for (uint32_t i = 0; i < XR_GMEMBERS_MAX; i++) {
		if (!h->m[i].live || !h->m[i].waiting || h->m[i].g < 0)
			continue;
		uint32_t j = n++;
		for (; j > 0 && h->m[order[j - 1]].asked > h->m[i].asked; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
	for (uint32_t j = 0; j < n; j++)
		if (h->m[order[j]].waiting) /* a serve may end another's wait */
			serve(h, &h->m[order[j]], now);
	/* Those still parked: their groups' readers armed for the smallest
	 * of their mins (a batch of it wakes the thread), and deadlines. */
	uint32_t least[XR_GROUPS_MAX];
	for (uint32_t g = 0; g < XR_GROUPS_MAX; g++)
		least[g] = 0;
	for (uint32_t i = 0; i < XR_GMEMBERS_MAX; i++) {
		struct member *M = &h->m[i];
		if (!M->live || !M->waiting)
			continue;
		if (M->deadline < next)
			next = M->deadline;
		if (M->g >= 0 && (!least[M->g] || M->min < least[M->g]))
			least[M->g] = M->min;
	}
	for (uint32_t g = 0; g < XR_GROUPS_MAX; g++) {
		struct group *G = &h->g[g];
		if (!least[g] || !G->r || G->failed || G->n_ib == XR_HELD_MAX)
			continue; /* full: a release wakes the thread, not the ring */
		int rc = xr_reader_arm(G->r, least[g]);
		if (rc == 1)
			next = now; /* there now: serve at once */
		int fd = xr_reader_fd(G->r);
		if (rc == 0 && fd >= 0 && !G->in_ep) {
			struct epoll_event e = {.events = EPOLLIN, .data.u32 = GROUP_TAG + g};
			G->in_ep = epoll_ctl(h->b.ep, EPOLL_CTL_ADD, fd, &e) == 0;
		}
	}
	return next;
}

/* Rings the members answered this round (under the mutex: a bell closed
 * meanwhile is not ours to send on). */
static void ring_answered(struct xr_ghost *h)
{
	for (uint32_t i = 0; i < XR_GMEMBERS_MAX; i++) {
		struct member *M = &h->m[i];
		if (!M->answered)
			continue;
		M->answered = false;
		if (M->live && !M->deaf)
			xr__svc_bell_ring(M->bell);
	}
}

/* Attaches the readers of new groups and detaches those of ended ones,
 * outside the mutex (both ask the control thread). */
static void readers(struct xr_ghost *h)
{
	for (uint32_t g = 0; g < XR_GROUPS_MAX; g++) {
		struct group *G = &h->g[g];
		xr_reader *old = NULL, *r = NULL;
		xr_reader_opts o = {0};
		char stream[XR_STREAM_NAME_MAX + 1], label[48];
		int rc;

		xr__svc_thread_lock(&h->b);
		bool attach = G->used && !G->dying && !G->r && !G->failed;
		if (G->used && G->dying) {
			/* Nobody is left to take what it holds: released. */
			for (uint32_t i = 0; i < XR_HELD_MAX; i++)
				if (G->ib[i].refs)
					xr_batch_release(G->r, &G->ib[i].b);
			if (G->in_ep && G->r)
				epoll_ctl(h->b.ep, EPOLL_CTL_DEL, xr_reader_fd(G->r), NULL);
			old = G->r;
			free(G->q);
			memset(G, 0, sizeof(*G));
		}
		if (attach) {
			snprintf(stream, sizeof(stream), "%s", G->stream);
			snprintf(label, sizeof(label), "group %s", G->name);
			o = (xr_reader_opts){.stream = stream, .label = label, .policy = G->policy};
		}
		pthread_mutex_unlock(&h->b.mu);
		if (old)
			xr_reader_detach(old);
		if (!attach)
			continue;
		rc = xr_reader_attach(h->engine, &o, &r);
		xr__svc_thread_lock(&h->b);
		if (rc == 0 && (!G->used || G->dying)) {
			/* It ended while we attached. */
			pthread_mutex_unlock(&h->b.mu);
			xr_reader_detach(r);
			continue;
		}
		if (rc < 0) {
			fail_group(G, rc);
		} else {
			xr_stream_facts f;
			xr_reader_stream_facts(r, &f);
			G->r = r;
			G->n_rings = f.n_rings;
			for (uint32_t k = 0; k < f.n_rings; k++) {
				const void *base;
				uint64_t len;
				xr_reader_ring_memory(r, k, &base, &len);
				G->base[k] = base;
			}
		}
		pthread_mutex_unlock(&h->b.mu);
	}
}

static void *run(void *arg)
{
	struct xr_ghost *h = arg;
	struct epoll_event ev[16];

	while (!xr_load_acquire(&h->stop)) {
		readers(h);
		uint64_t now = xr__now_ns();
		xr__svc_thread_lock(&h->b);
		uint64_t next = round_locked(h, now);
		ring_answered(h);
		pthread_mutex_unlock(&h->b.mu);
		int timeout = -1;
		if (next != UINT64_MAX) {
			uint64_t ms = next <= now ? 0 : (next - now + 999999) / 1000000;
			timeout = ms > 3600000 ? 3600000 : (int)ms;
		}
		int k = epoll_wait(h->b.ep, ev, 16, timeout);
		if (k <= 0)
			continue;
		xr__svc_thread_lock(&h->b);
		for (int i = 0; i < k; i++) {
			uint32_t tag = ev[i].data.u32;
			if (tag < XR_GMEMBERS_MAX && h->m[tag].live && !h->m[tag].deaf)
				h->m[tag].deaf =
					!xr__svc_bell_drain(&h->b, h->m[tag].bell, h->m[tag].uid);
			else if (tag == KICK_TAG)
				xr__svc_kicked(&h->b);
			else if (tag >= GROUP_TAG && tag < GROUP_TAG + XR_GROUPS_MAX) {
				/* A group's reader woke: its wakeup message is
				 * read by its next read or arm. Out of the set
				 * until armed again, or a hung-up socket would
				 * wake us for ever. */
				struct group *G = &h->g[tag - GROUP_TAG];
				if (G->in_ep && G->r)
					epoll_ctl(h->b.ep, EPOLL_CTL_DEL, xr_reader_fd(G->r), NULL);
				G->in_ep = false;
			}
		}
		pthread_mutex_unlock(&h->b.mu);
	}
	return NULL;
}

int xr__ghost_create(const char *engine, uint64_t hold_ns, uint32_t max_readers,
		     struct xr_ghost **out, char *why, size_t len)
{
	struct xr_ghost *h = calloc(1, sizeof(*h));
	int rc = 0;

	if (!h) {
		snprintf(why, len, "out of memory for consumer groups");
		return -ENOMEM;
	}
	snprintf(h->engine, sizeof(h->engine), "%s", engine);
	h->engine_uid = (uint32_t)geteuid();
	h->hold_ns = hold_ns;
	/* An eighth of the reader slots at most, which are the engine's
	 * uid's (the rest of its quarter stays its own). */
	h->others_groups = max_readers / 8 < XR_GROUPS_OTHERS ? max_readers / 8 : XR_GROUPS_OTHERS;
	for (uint32_t i = 0; i < XR_GMEMBERS_MAX; i++)
		h->m[i].g = -1;
	rc = xr__svc_init(&h->b, STOP_TAG, KICK_TAG);
	if (rc == 0) {
		rc = -pthread_create(&h->th, NULL, run, h);
		if (rc < 0)
			xr__svc_fini(&h->b);
	}
	if (rc < 0) {
		snprintf(why, len, "cannot start consumer groups: %s", strerror(-rc));
		free(h);
		return rc;
	}
	*out = h;
	return 0;
}

void xr__ghost_destroy(struct xr_ghost *h)
{
	if (!h)
		return;
	/* The arena is closed: the thread hands out what the groups' readers
	 * still have, members that are asking take it, and each group ends
	 * with XR_ECLOSED. A while for that, then members hear the hangup. */
	uint64_t until = xr__now_ns() + XR_GROUP_DRAIN_NS;
	while (xr__now_ns() < until) {
		bool busy = false;
		xr__svc_kick(&h->b);
		xr__svc_control_lock(&h->b);
		for (uint32_t g = 0; g < XR_GROUPS_MAX; g++)
			busy |= h->g[g].used && !h->g[g].dying &&
				(!h->g[g].failed || h->g[g].held || h->g[g].q_len);
		pthread_mutex_unlock(&h->b.mu);
		if (!busy)
			break;
		xr__sleep_ns(1000000);
	}
	xr_store_release(&h->stop, true);
	xr__svc_stop(&h->b);
	pthread_join(h->th, NULL);
	for (uint32_t i = 0; i < XR_GMEMBERS_MAX; i++) {
		struct member *M = &h->m[i];
		if (!M->live)
			continue;
		/* The member's next wait sees its doorbell hang up. */
		xr__svc_bell_close(&h->b, M->bell, M->uid);
		munmap(M->page, XR_GPAGE_SIZE);
	}
	for (uint32_t g = 0; g < XR_GROUPS_MAX; g++) {
		if (h->g[g].r)
			xr_reader_detach(h->g[g].r); /* its held batches with it */
		free(h->g[g].q);
	}
	xr__svc_fini(&h->b);
	free(h);
}

static bool good_name(const char *s)
{
	size_t n = strnlen(s, XR_CTL_GROUP_NAME);

	if (n == 0 || n > XR_GROUP_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

int xr__ghost_join(struct xr_ghost *h, const struct xr_ctl_caller *who, const char *stream,
		   uint32_t stream_policy, const struct xr_ctl_group_join *m,
		   struct xr_ctl_group_joined *r, int fds[2], char *why, size_t len)
{
	int pair[2] = {-1, -1}, page_fd = -1, gi = -1, free_g = -1, mi = -1, rc;
	uint32_t mine_g = 0, mine_m = 0, others_g = 0, others_m = 0;
	struct xr_gpage *page = NULL;
	bool other = who->uid != h->engine_uid;

	if (!good_name(m->group)) {
		snprintf(why, len, "a group's name is 1 to %d characters of A-Z a-z 0-9 _ . -",
			 XR_GROUP_NAME_MAX);
		return -EINVAL;
	}
	if (m->policy > XR_POLICY_LOSSY || m->flags) {
		snprintf(why, len, "group %s: no such policy or flags", m->group);
		return -EINVAL;
	}
	uint32_t policy = m->policy ? m->policy : stream_policy;
	if (stream_policy == XR_POLICY_LOSSY && policy == XR_POLICY_LOSSLESS) {
		snprintf(why, len, "stream %s is lossy: a lossless group cannot be promised every "
			 "record; join with policy lossy", stream);
		return XR_EPOLICY;
	}
	/* A group's reader is the engine's own (its thread attaches it), and
	 * what a lossy reader holds in the writer's way is charged to its uid:
	 * another uid's lossy group would spend the engine's uid's share of
	 * the writer's patience, and get its readers evicted. */
	if (other && policy == XR_POLICY_LOSSY) {
		snprintf(why, len, "group %s: only the engine's uid may make a lossy group (its "
			 "reader's holds are charged to that uid); join with policy lossless",
			 m->group);
		return -EPERM;
	}
	/* Sealed against resizing: a member that could shrink its page
	 * would fault the engine's loads. */
	uint8_t *pm = NULL;
	rc = xr__memfd_map("xring-group-member", XR_GPAGE_SIZE, false, &page_fd, &pm);
	page = (struct xr_gpage *)pm;
	if (rc == 0)
		rc = xr__svc_bell_pair(pair);
	if (rc < 0) {
		snprintf(why, len, "group %s: cannot make a member's page: %s", m->group,
			 strerror(-rc));
		goto fail;
	}
	xr__svc_control_lock(&h->b);
	for (int g = 0; g < XR_GROUPS_MAX; g++) {
		struct group *G = &h->g[g];
		if (!G->used) {
			if (free_g < 0)
				free_g = g;
			continue;
		}
		if (G->dying)
			continue;
		mine_g += G->uid == who->uid;
		others_g += G->uid != h->engine_uid;
		/* Each uid's groups are its own: the same name of another
		 * uid is another group (no uid can squat a name). */
		if (G->uid == who->uid && !strcmp(G->name, m->group) && !strcmp(G->stream, stream))
			gi = g;
	}
	for (int i = 0; i < XR_GMEMBERS_MAX; i++) {
		if (!h->m[i].live) {
			if (mi < 0)
				mi = i;
			continue;
		}
		mine_m += h->m[i].uid == who->uid;
		others_m += h->m[i].uid != h->engine_uid;
		if (h->m[i].conn == who->conn && h->m[i].g >= 0) {
			snprintf(why, len, "this connection is a member of a group already");
			rc = -EEXIST;
			goto unlock;
		}
	}
	if (mi < 0 || (gi < 0 && free_g < 0)) {
		snprintf(why, len, "the engine has %s at once, its most",
			 mi < 0 ? "64 group members" : "16 groups");
		rc = -ENOSPC;
		goto unlock;
	}
	if (other && (mine_m >= XR_GMEMBERS_PER_UID || (gi < 0 && mine_g >= XR_GROUPS_PER_UID))) {
		snprintf(why, len, "uid %u has %u groups and %u members, its most (%d and %d)",
			 who->uid, mine_g, mine_m, XR_GROUPS_PER_UID, XR_GMEMBERS_PER_UID);
		rc = -EDQUOT;
		goto unlock;
	}
	/* The engine's uid keeps the rest: groups (each a reader slot of its
	 * uid's) and members of all other uids together stop short of it. */
	if (other && (others_m >= XR_GMEMBERS_OTHERS || (gi < 0 && others_g >= h->others_groups))) {
		snprintf(why, len, "other uids have %u groups and %u members, their most (%u and "
			 "%d): the rest is the engine's uid's", others_g, others_m, h->others_groups,
			 XR_GMEMBERS_OTHERS);
		rc = -EDQUOT;
		goto unlock;
	}
	struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)mi};
	if (epoll_ctl(h->b.ep, EPOLL_CTL_ADD, pair[0], &e) < 0) {
		rc = -errno;
		snprintf(why, len, "group %s: %s", m->group, strerror(-rc));
		goto unlock;
	}
	if (gi < 0) {
		gi = free_g;
		struct group *G = &h->g[gi];
		memset(G, 0, sizeof(*G));
		G->used = true;
		G->uid = who->uid;
		G->policy = policy;
		snprintf(G->name, sizeof(G->name), "%s", m->group);
		snprintf(G->stream, sizeof(G->stream), "%s", stream);
	}
	h->g[gi].members++;
	h->m[mi] = (struct member){.live = true, .g = gi, .bell = pair[0], .conn = who->conn,
				   .uid = who->uid, .page = page};
	*r = (struct xr_ctl_group_joined){.member = (uint32_t)mi, .policy = h->g[gi].policy,
					  .page_bytes = XR_GPAGE_SIZE};
	pthread_mutex_unlock(&h->b.mu);
	xr__svc_kick(&h->b);
	fds[0] = page_fd;
	fds[1] = pair[1];
	return 0;
unlock:
	pthread_mutex_unlock(&h->b.mu);
fail:
	for (int i = 0; i < 2; i++)
		if (pair[i] >= 0)
			close(pair[i]);
	if (page_fd >= 0)
		close(page_fd);
	if (page)
		munmap(page, XR_GPAGE_SIZE);
	return rc;
}

void xr__ghost_gone(struct xr_ghost *h, uint64_t conn)
{
	bool kicked = false;

	xr__svc_control_lock(&h->b);
	for (uint32_t i = 0; i < XR_GMEMBERS_MAX; i++) {
		struct member *M = &h->m[i];
		if (!M->live || M->conn != conn)
			continue;
		leave(h, M);
		xr__svc_bell_close(&h->b, M->bell, M->uid);
		munmap(M->page, XR_GPAGE_SIZE);
		*M = (struct member){.g = -1};
		kicked = true;
	}
	pthread_mutex_unlock(&h->b.mu);
	/* Its grants went back: parked members may take them now. */
	if (kicked)
		xr__svc_kick(&h->b);
}
