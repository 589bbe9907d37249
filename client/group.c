/* SPDX-License-Identifier: MIT */
/*
 * A reader's membership of a consumer group: the member's side of the page
 * protocol of shm/group_layout.h. The engine is trusted (the reader checked
 * who serves it at attach); what it answers is still checked against the
 * rings before a batch is handed out, so that a bug on either side is
 * -EPROTO, never a pointer outside the mapping.
 */
#include "client/group.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/client.h"
#include "control/proto.h"
#include "shm/group_layout.h"
#include "util/atomics.h"
#include "util/clock.h"
#include "util/proc.h"
#include "xring/error.h"

/* How long past its own deadline a wait gives the engine to answer before
 * it returns 0 (the request stays in flight: the next call takes its
 * answer). */
#define XR_GM_GRACE_NS 2000000000ll

struct xr_gmember {
	struct xr_gpage *page;
	int bell;
	uint32_t policy;
	uint64_t seq;        /* the last request made */
	bool in_flight;      /* ...and not answered yet */
	uint32_t asked_max;  /* its max */
	uint64_t occ;        /* hold slots we hold */
	uint64_t tag[XR_GROUP_HOLD];
	bool kept;           /* a batch taken by a wait, for the next read */
	xr_batch keep;
	uint64_t read;       /* records taken */
	struct xr_gpage_resp last; /* the figures of the last STATS */
	struct xr_gm_rings rings;
	pid_t pid;           /* the joiner: a forked child shares the page */
};

/* A member is its process's: a child forked after the join shares the
 * page and its request numbers, and the two would take each other's
 * answers. */
static int own(const struct xr_gmember *g)
{
	if (xr__self_pid() == g->pid)
		return 0;
	xr__set_last_reason("this group member was joined by process %d: a forked child "
			    "joins (attaches) anew",
			    (int)g->pid);
	return -EINVAL;
}

int xr__gm_join(int sock, const char *engine, const char *group, uint32_t policy,
		const struct xr_gm_rings *rings, struct xr_gmember **out)
{
	struct xr_ctl_group_join m = {.policy = policy};
	struct xr_ctl_group_joined r;
	uint32_t got = 0;
	int fds[2], rc, type = 0;
	socklen_t tl = sizeof(type);
	struct stat st;

	if (strlen(group) >= sizeof(m.group))
		return -EINVAL;
	strcpy(m.group, group);
	rc = xr__ctl_request_fds(sock, XR_CTL_GROUP_JOIN, &m, sizeof(m), XR_CTL_GROUP_JOINED, &r,
				 sizeof(r), &got, fds, 2);
	if (rc < 0)
		return rc;
	struct xr_gmember *g = calloc(1, sizeof(*g));
	if (!g) {
		close(fds[0]);
		close(fds[1]);
		return -ENOMEM;
	}
	g->bell = fds[1];
	g->pid = xr__self_pid();
	g->policy = r.policy;
	g->rings = *rings;
	if (got != sizeof(r) || r.page_bytes != XR_GPAGE_SIZE || fstat(fds[0], &st) < 0 ||
	    !S_ISREG(st.st_mode) || (uint64_t)st.st_size != XR_GPAGE_SIZE ||
	    !(fcntl(fds[0], F_GET_SEALS) & F_SEAL_SHRINK) ||
	    getsockopt(fds[1], SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET ||
	    (r.policy != XR_POLICY_LOSSLESS && r.policy != XR_POLICY_LOSSY)) {
		xr__set_last_reason("engine %s answered GROUP_JOIN with a page or doorbell that is "
				    "not what it said: not the xring control protocol",
				    engine);
		rc = -EPROTO;
		goto fail;
	}
	g->page = mmap(NULL, XR_GPAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	if (g->page == MAP_FAILED) {
		g->page = NULL;
		rc = -errno;
		xr__set_last_reason("cannot map a group member's page: %s", strerror(-rc));
		goto fail;
	}
	close(fds[0]);
	/* The engine answers request seq with resp.seq = seq: start where
	 * the page is (0 for a new one). */
	g->seq = xr_load_acquire(&g->page->req.seq);
	*out = g;
	return 0;
fail:
	close(fds[0]);
	close(g->bell);
	free(g);
	return rc;
}

static void ring_bell(struct xr_gmember *g)
{
	static const char one = 1;
	/* A full socket already holds bytes the engine will read. */
	(void)send(g->bell, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static int ask(struct xr_gmember *g, uint32_t op, uint32_t min, uint32_t max, int64_t wait_ns)
{
	struct xr_gpage_req *q = &g->page->req;

	q->op = op;
	q->min = min;
	q->max = max;
	q->wait_ns = wait_ns;
	/* Release: the fields above before the seq the engine loads. */
	xr_store_release(&q->seq, ++g->seq);
	g->in_flight = true;
	g->asked_max = max;
	ring_bell(g);
	return 0;
}

/* Waits for the answer to the request in flight until `until` (0: no
 * wait; UINT64_MAX: none). 1 answered, 0 not yet, or -EINTR, XR_ECLOSED. */
static int await(struct xr_gmember *g, uint64_t until, const struct xr_gm_cancel *c)
{
	for (;;) {
		/* Acquire: pairs with the engine's release of resp.seq after
		 * the answer's fields. */
		if (xr_load_acquire(&g->page->resp.seq) == g->seq) {
			g->in_flight = false;
			return 1;
		}
		uint64_t now = xr__now_ns();
		if (until != UINT64_MAX && now >= until)
			return 0;
		int ms = until == UINT64_MAX ? -1 : (int)((until - now + 999999) / 1000000);
		struct pollfd pf[2] = {{.fd = g->bell, .events = POLLIN},
				       {.fd = c ? c->fd : -1, .events = POLLIN}};
		int n = poll(pf, 2, ms);
		if (n < 0 && errno == EINTR)
			return -EINTR;
		if (c && c->taken(c->arg))
			return -EINTR;
		if (pf[0].revents & POLLIN) {
			char buf[64];
			while (recv(g->bell, buf, sizeof(buf), MSG_DONTWAIT) > 0)
				;
		}
		/* The engine's end closed: it stopped or died. An answer it
		 * stored before is still taken above, once. */
		if ((pf[0].revents & (POLLHUP | POLLERR)) &&
		    xr_load_acquire(&g->page->resp.seq) != g->seq) {
			xr__set_last_reason("the engine stopped serving consumer groups");
			return XR_ECLOSED;
		}
	}
}

/* The answer in the page, checked, as batch b (a grant we now hold). */
static int take_answer(struct xr_gmember *g, xr_batch *b)
{
	const struct xr_gpage_resp *a = &g->page->resp;
	int32_t rc = a->rc;
	uint32_t slot = a->slot, ring = a->ring;
	uint64_t tag = a->tag, off = a->off, bytes = a->bytes;

	if (rc <= 0)
		return rc;
	if (slot >= XR_GROUP_HOLD || (g->occ >> slot & 1) || ring >= g->rings.n || !tag ||
	    (tag & XR_GREL_MASK) || (uint32_t)rc > XR_BATCH_MAX || off >= g->rings.len[ring] / 2 ||
	    bytes > g->rings.len[ring] - off)
		goto bad;
	const uint8_t *start = g->rings.base[ring] + off, *end = start + bytes;
	const xr_frame *f = (const xr_frame *)start;
	for (int32_t i = 0; i < rc; i++) {
		if ((const uint8_t *)f + sizeof(xr_frame) > end)
			goto bad;
		f = xr_frame_next(f);
		if ((const uint8_t *)f > end)
			goto bad;
	}
	if ((const uint8_t *)f != end)
		goto bad;
	g->occ |= 1ull << slot;
	g->tag[slot] = tag;
	g->read += (uint64_t)rc;
	*b = (xr_batch){.first = (const xr_frame *)start, .count = (uint32_t)rc, .ring = ring,
			.bytes = bytes, .first_seq = a->first_seq, .stride = a->stride,
			.len = a->len,
			.id_ = ((uint64_t)slot << 48) | ((tag >> 2) & ((1ull << 48) - 1))};
	return rc;
bad:
	xr__set_last_reason("the engine granted a batch outside its rings (slot %u, ring %u, "
			    "bytes %llu at %llu): a bug; restart the reader",
			    slot, ring, (unsigned long long)bytes, (unsigned long long)off);
	return -EPROTO;
}

static void give(struct xr_gmember *g, uint32_t slot, uint64_t how)
{
	/* Release: our reads of the records before the engine, which loads
	 * the word with acquire, lets the writer reuse them. */
	xr_store_release(&g->page->req.rel[slot], g->tag[slot] | how);
	g->occ &= ~(1ull << slot);
	ring_bell(g);
}

int xr__gm_read(struct xr_gmember *g, uint32_t min, uint32_t max, int64_t wait_ns, xr_batch *b,
		const struct xr_gm_cancel *c)
{
	xr_batch got;
	int rc;

	if (min == 0 || min > max || max > XR_BATCH_MAX)
		return -EINVAL;
	if (own(g) < 0)
		return -EINVAL;
	if (g->kept) {
		if (g->keep.count <= max) {
			if (b) {
				*b = g->keep;
				g->kept = false;
			}
			return (int)g->keep.count;
		}
		/* Kept for a larger max than this read's: back to the group. */
		g->kept = false;
		g->read -= g->keep.count;
		give(g, (uint32_t)(g->keep.id_ >> 48), XR_GREL_RETURN);
	}
	if (!g->in_flight) {
		if (__builtin_popcountll(g->occ) >= (int)XR_GROUP_HOLD)
			return -ENOBUFS;
		ask(g, XR_GOP_TAKE, min, max, wait_ns);
	}
	uint64_t until = wait_ns < 0 ? UINT64_MAX : xr__now_ns() + (uint64_t)wait_ns + XR_GM_GRACE_NS;
	rc = await(g, until, c);
	if (rc <= 0)
		return rc;
	rc = take_answer(g, &got);
	if (rc <= 0)
		return rc;
	if (!b || got.count > max) {
		/* A wait's batch, or the answer to an earlier, larger ask:
		 * kept for the next read, which gives it back if too large. */
		g->keep = got;
		g->kept = true;
		return b ? xr__gm_read(g, min, max, 0, b, c) : rc;
	}
	*b = got;
	return rc;
}

int xr__gm_release(struct xr_gmember *g, xr_batch *b)
{
	uint32_t slot = (uint32_t)(b->id_ >> 48);

	if (own(g) < 0)
		return -EINVAL;
	if (slot >= XR_GROUP_HOLD || !(g->occ >> slot & 1) ||
	    ((g->tag[slot] >> 2) & ((1ull << 48) - 1)) != (b->id_ & ((1ull << 48) - 1)) ||
	    (g->kept && g->keep.id_ == b->id_))
		return -EINVAL;
	give(g, slot, XR_GREL_DONE);
	b->id_ = 0;
	b->first = NULL;
	b->frames = NULL;
	return 0;
}

int xr__gm_stats(struct xr_gmember *g, xr_reader_stats *s)
{
	/* One request at a time: with a TAKE in flight, the last figures. */
	if (own(g) < 0)
		return -EINVAL;
	if (!g->in_flight) {
		ask(g, XR_GOP_STATS, 1, 1, 0);
		int rc = await(g, xr__now_ns() + XR_GM_GRACE_NS, NULL);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			const struct xr_gpage_resp *a = &g->page->resp;
			if (a->rc < 0)
				return a->rc;
			g->last = *a;
		}
	}
	const struct xr_gpage_resp *a = &g->last;
	s->written = a->written;
	s->read = g->read;
	s->dropped = a->dropped;
	s->pending = a->pending;
	s->group_done = a->done;
	s->group_held = a->held;
	s->redelivered = a->redelivered;
	s->members = a->members;
	s->policy = a->policy ? a->policy : g->policy;
	s->held = xr__gm_held(g);
	return 0;
}

uint32_t xr__gm_held(const struct xr_gmember *g)
{
	return (uint32_t)__builtin_popcountll(g->occ) - (g->kept ? 1 : 0);
}

uint32_t xr__gm_policy(const struct xr_gmember *g)
{
	return g->policy;
}

struct xr_gpage *xr__gm_page(struct xr_gmember *g)
{
	return g->page;
}

void xr__gm_leave(struct xr_gmember *g)
{
	if (!g)
		return;
	if (g->page)
		munmap(g->page, XR_GPAGE_SIZE);
	close(g->bell);
	free(g);
}
