/* SPDX-License-Identifier: MIT */
/*
 * The reader library: attach by name, read batches in place, release,
 * stats, detach. The ring protocol itself is in shm/ring_reader.c; this file
 * owns the reader's slot in the arena, the set of held batches, and waiting.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shm/arena_priv.h"
#include "shm/atomics.h"
#include "shm/ring_reader.h"
#include "util/clock.h"
#include "util/proc.h"
#include "xring/error.h"
#include "xring/reader.h"

#define XR_ALIVE_CHECK_NS 50000000ull /* engine death noticed within ~50 ms */

struct xr_held {
	uint64_t start;
	uint64_t id;    /* 0 = free entry */
	uint32_t ring;
};

struct xr_reader {
	struct xr_arena *arena;
	struct xr_reader_slot *slot;
	uint32_t slot_idx;
	uint32_t stream;
	uint32_t first_ring, n_rings;
	uint32_t next_ring;
	uint32_t policy;
	uint64_t next_id;
	bool engine_gone;    /* died without closing: drain, then XR_ECLOSED */
	uint32_t n_held;
	struct xr_held held[XR_HELD_MAX];
	struct xr_ring_rd rings[XR_MAX_RINGS];
};

static int claim_slot(struct xr_reader *r, const xr_reader_opts *o)
{
	struct xr_arena_hdr *h = r->arena->hdr;
	int32_t me = (int32_t)getpid();

	for (uint32_t i = 0; i < h->max_readers; i++) {
		struct xr_reader_slot *s = &r->arena->slots[i];
		int32_t zero = 0;

		if (xr_load_relaxed(&s->pid) != 0)
			continue;
		/* The claim: whoever swaps the pid in from 0 owns the slot. */
		if (!atomic_compare_exchange_strong_explicit(&s->pid, &zero, me,
							     memory_order_acq_rel,
							     memory_order_relaxed))
			continue;
		s->pid_start = xr__proc_start(me);
		s->stream = r->stream;
		s->policy = r->policy;
		s->gen++;
		s->attach_ns = xr__wall_ns();
		xr_store_relaxed(&s->evict_reason, XR_EVICT_NONE);
		memset(s->label, 0, sizeof(s->label));
		strncpy(s->label, o && o->label ? o->label : program_invocation_short_name,
			sizeof(s->label) - 1);
		/* R5b: the claim's fields, pid_start above all, before the state a
		 * reaper reads them by (xr__reap_slot). */
		xr_store_release(&s->state, XR_SLOT_CLAIMED);
		r->slot = s;
		r->slot_idx = i;
		return 0;
	}
	return -EBUSY;
}

int xr_reader_attach(const char *engine, const xr_reader_opts *o, xr_reader **out)
{
	struct xr_reader *r;
	struct xr_arena_hdr *h;
	const char *sname = o && o->stream ? o->stream : XR_DEFAULT_STREAM;
	int rc, stream = -1;

	if (!engine || !out || (o && o->policy > XR_POLICY_LOSSY))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;

	/* Open without rings first to find the stream, then map its rings. */
	rc = xr__arena_open(engine, XR_OPEN_CTL_RW, -1, &r->arena);
	if (rc < 0)
		goto fail;
	h = r->arena->hdr;
	for (uint32_t i = 0; i < h->n_streams; i++)
		if (!strncmp(h->streams[i].name, sname, sizeof(h->streams[i].name)))
			stream = (int)i;
	if (stream < 0) {
		rc = -ENOENT;
		goto fail;
	}
	xr__arena_close(r->arena);
	r->arena = NULL;
	rc = xr__arena_open(engine, XR_OPEN_CTL_RW | XR_OPEN_RINGS, stream, &r->arena);
	if (rc < 0)
		goto fail;
	h = r->arena->hdr;

	const struct xr_stream_desc *sd = &h->streams[stream];
	r->stream = (uint32_t)stream;
	r->first_ring = sd->first_ring;
	r->n_rings = sd->n_rings;
	r->policy = o && o->policy ? o->policy : sd->policy;
	if (r->policy == XR_POLICY_LOSSLESS && sd->policy == XR_POLICY_LOSSY) {
		rc = XR_EPOLICY;
		goto fail;
	}
	rc = claim_slot(r, o);
	if (rc < 0)
		goto fail;
	for (uint32_t k = 0; k < r->n_rings; k++) {
		uint32_t ring = r->first_ring + k;
		struct xr_cursor *c = xr__cursor(r->arena, ring, r->slot_idx);

		xr_store_relaxed(&c->lease, XR_NO_LEASE);
		xr_store_relaxed(&c->read, 0);
		xr_store_relaxed(&c->dropped, 0);
		xr__rr_init(&r->rings[k], &h->rings[ring], c, r->arena->ring_data[ring],
			    r->policy == XR_POLICY_LOSSLESS);
	}
	/* R0: the slot is complete before the writer can see any lease of
	 * ours (the writer checks state with acquire after loading a lease). */
	xr_store_release(&r->slot->state, XR_SLOT_ACTIVE);
	for (uint32_t k = 0; k < r->n_rings; k++)
		xr__rr_start(&r->rings[k]);
	*out = r;
	return 0;
fail:
	if (r->arena)
		xr__arena_close(r->arena);
	free(r);
	return rc;
}

static int check_slot(const struct xr_reader *r)
{
	if (xr_load_acquire(&r->slot->state) != XR_SLOT_ACTIVE)
		return XR_EEVICTED;
	return 0;
}

static uint64_t oldest_held(const struct xr_reader *r, uint32_t k)
{
	uint64_t oldest = XR_NO_LEASE;

	for (uint32_t i = 0; i < XR_HELD_MAX; i++) {
		const struct xr_held *e = &r->held[i];
		if (e->id && e->ring == k &&
		    (oldest == XR_NO_LEASE || (int64_t)(e->start - oldest) < 0))
			oldest = e->start;
	}
	return oldest;
}

static void fill_batch(struct xr_reader *r, uint32_t k, const struct xr_take *t, xr_batch *b)
{
	struct xr_ring_rd *rr = &r->rings[k];
	uint32_t i = 0;

	while (r->held[i].id)
		i++;
	r->held[i] = (struct xr_held){.start = t->start, .id = ++r->next_id, .ring = k};
	r->n_held++;
	*b = (xr_batch){
		.first = (const xr_frame *)(rr->data + (t->start & rr->mask)),
		.count = t->count,
		.ring = k,
		.bytes = t->end - t->start,
		.first_seq = t->first_seq,
		.stride = t->stride,
		.dropped = t->gaps > UINT32_MAX ? UINT32_MAX : (uint32_t)t->gaps,
		.id_ = ((uint64_t)i << 48) | r->next_id,
	};
}

int xr_reader_read(xr_reader *r, uint32_t min, uint32_t max, int64_t max_wait_ns, xr_batch *b)
{
	uint64_t start = 0, last_alive = 0;
	struct xr_backoff bo;
	struct xr_take t;
	int rc;

	if (!r || !b || min == 0 || min > max || max > XR_BATCH_MAX)
		return -EINVAL;
	if (r->n_held >= XR_HELD_MAX)
		return -ENOBUFS;
	rc = check_slot(r);
	if (rc < 0)
		return rc;

	xr__backoff_init(&bo);
	for (;;) {
		uint32_t best = 0, best_k = 0;
		bool closed = r->engine_gone ||
			      xr_load_acquire(&r->arena->hdr->state) != XR_ARENA_READY;

		for (uint32_t j = 0; j < r->n_rings; j++) {
			uint32_t k = (r->next_ring + j) % r->n_rings;
			struct xr_ring_rd *rr = &r->rings[k];

			rc = xr__rr_peek(rr, max, rr->cap / 2, &t);
			if (rc < 0)
				return rc;
			if (t.count >= min || (closed && t.count > 0)) {
				xr__rr_commit(rr, &t);
				fill_batch(r, k, &t, b);
				r->next_ring = (k + 1) % r->n_rings;
				return (int)t.count;
			}
			if (t.count > best) {
				best = t.count;
				best_k = k;
			}
			xr__rr_unpeek(rr);
		}

		uint64_t now = xr__now_ns();
		if (!start)
			start = last_alive = now;
		bool expired = max_wait_ns >= 0 && now - start >= (uint64_t)max_wait_ns;
		if (expired && best > 0) {
			struct xr_ring_rd *rr = &r->rings[best_k];
			rc = xr__rr_peek(rr, max, rr->cap / 2, &t);
			if (rc < 0)
				return rc;
			xr__rr_commit(rr, &t);
			fill_batch(r, best_k, &t, b);
			r->next_ring = (best_k + 1) % r->n_rings;
			return (int)t.count;
		}
		/* Everything published has been read: a closed arena ends here. */
		if (closed)
			return XR_ECLOSED;
		if (now - last_alive >= XR_ALIVE_CHECK_NS) {
			last_alive = now;
			if (!xr__arena_alive(r->arena)) {
				r->engine_gone = true;
				continue; /* one more pass drains what is left */
			}
			rc = check_slot(r);
			if (rc < 0)
				return rc;
		}
		if (expired)
			return 0;
		xr__backoff_wait(&bo);
	}
}

int xr_batch_release(xr_reader *r, xr_batch *b)
{
	uint32_t i;
	struct xr_held *e;

	if (!r || !b)
		return -EINVAL;
	i = (uint32_t)(b->id_ >> 48);
	if (i >= XR_HELD_MAX)
		return -EINVAL;
	e = &r->held[i];
	if (!e->id || e->id != (b->id_ & ((1ull << 48) - 1)))
		return -EINVAL;
	e->id = 0;
	r->n_held--;
	struct xr_ring_rd *rr = &r->rings[e->ring];
	rr->held--;
	xr__rr_set_lease(rr, oldest_held(r, e->ring));
	b->id_ = 0;
	b->first = NULL;
	return 0;
}

int xr_reader_stats_get(xr_reader *r, xr_reader_stats *s)
{
	int rc = check_slot(r);

	memset(s, 0, sizeof(*s));
	s->policy = r->policy;
	s->held = r->n_held;
	if (rc < 0)
		return rc;
	for (uint32_t k = 0; k < r->n_rings; k++) {
		struct xr_ring_rd *rr = &r->rings[k];
		uint64_t pending, unseen, written, lag;

		rc = xr__rr_count(rr, &pending, &unseen, &written, &lag);
		if (rc < 0)
			return rc;
		s->written += written;
		s->read += rr->read;
		s->dropped += rr->dropped + unseen;
		s->pending += pending;
		s->lag_bytes += lag;
	}
	return 0;
}

void xr_reader_detach(xr_reader *r)
{
	if (!r)
		return;
	if (r->slot && xr_load_acquire(&r->slot->pid) == (int32_t)getpid()) {
		uint32_t st = xr_load_acquire(&r->slot->state);
		if (st == XR_SLOT_ACTIVE || st == XR_SLOT_EVICTED || st == XR_SLOT_CLAIMED) {
			for (uint32_t k = 0; k < r->n_rings; k++)
				xr_store_release(&r->rings[k].cur->lease, XR_NO_LEASE);
			xr_store_release(&r->slot->state, XR_SLOT_FREE);
			xr_store_release(&r->slot->pid, 0);
		}
	}
	xr__arena_close(r->arena);
	free(r);
}

void xr_reader_stream_facts(const xr_reader *r, xr_stream_facts *f)
{
	const struct xr_stream_desc *sd = &r->arena->hdr->streams[r->stream];

	f->name = sd->name;
	f->policy = sd->policy;
	f->n_rings = sd->n_rings;
	f->ring_capacity = sd->ring_capacity;
	f->frame_align = sd->frame_align;
	f->record_kind = sd->record_kind;
}
