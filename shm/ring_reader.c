/* SPDX-License-Identifier: MIT */
/*
 * The ring protocol, reader side. The specification, with the writer's half
 * and the ordering argument, opens shm/ring_writer.c; labels here (R1...)
 * refer to it.
 *
 * Positions. `pos` is the next byte to read; `lease` is what the writer must
 * not overwrite (the start of the oldest batch still held, or for lossless
 * readers pos when none is held). Counting is by sequence numbers: a frame
 * whose seq is ahead of the one expected means records were lost in between
 * (overrun, or dropped at the writer), and they are counted as dropped.
 *
 * Attach point and accounting. A reader counts every record whose seq is at
 * or after `written` at the moment it attaches, at the head of that moment.
 * snapshot() reads (head, written) as one pair through the writer's seqlock
 * (R6); a frame seq lower than expected is then impossible and is treated as
 * corruption. Stats use the same snapshot: frames walked up to head are
 * pending, seq gaps among them and [last frame + 1, written) were dropped, so
 * written == read + dropped + pending holds exactly, not just when quiet.
 *
 * Eviction. All of the above holds while the writer honours our lease. Once
 * it evicts us it no longer does, and may overwrite the very bytes a walk
 * is on: a walk then finds what looks like corruption (a seq lower than
 * expected, a head more than a ring ahead, a torn header), or records that
 * look fine but are not ours to hold. Only the caller knows the slot, so
 * it checks it after every walk (RI2 in client/reader.c, pairing with PI2
 * in shm/peers.c) and says XR_EEVICTED rather than believe the walk. Each
 * refusal below names what it found (t->bad), for the reason the caller
 * gives when the slot was still ours and the ring really is malformed.
 */
#include <errno.h>
#include <sched.h>

#include "util/atomics.h"
#include "util/clock.h"
#include "shm/ring_reader.h"

void xr__rr_init(struct xr_ring_rd *rr, const struct xr_ring_desc *rd,
		 const struct xr_ring_fixed *rf, struct xr_cursor *cur, const uint8_t *data,
		 bool lossless)
{
	*rr = (struct xr_ring_rd){
		.rd = rd,
		.cur = cur,
		.data = data,
		.cap = rf->capacity,
		.mask = rf->capacity - 1,
		.align = rf->frame_align,
		.fixed_len = rf->record_len,
		/* Fits 32 bits: checked when the arena was opened. */
		.fixed_size = rf->record_len
				      ? (uint32_t)xr__frame_size(rf->record_len, rf->frame_align)
				      : 0,
		.lossless = lossless,
		.lease = XR_NO_LEASE,
	};
}

/* R6: a consistent (head, written) pair; pairs with W1c. A publish keeps
 * pub_gen odd for a few stores; one odd for XR_SNAPSHOT_MAX_NS is a writer
 * that died or was stopped mid-publish, and waiting on it would hang the
 * reader for good: -EPROTO. The clock is read once per 1024 spins, and the
 * CPU yielded, in case the writer is preempted in favour of this thread. */
static int snapshot(const struct xr_ring_rd *rr, uint64_t *head, uint64_t *written)
{
	uint64_t deadline = 0;
	uint32_t g1, g2, spins = 0;

	for (;;) {
		g1 = xr_load_acquire(&rr->rd->pub_gen);
		if (g1 & 1) {
			if (++spins % 1024) {
				xr_cpu_relax();
				continue;
			}
			uint64_t now = xr__now_ns();
			if (!deadline)
				deadline = now + XR_SNAPSHOT_MAX_NS;
			else if (now > deadline)
				return -EPROTO;
			sched_yield();
			continue;
		}
		*head = xr_load_acquire(&rr->rd->head);
		*written = xr_load_acquire(&rr->rd->written);
		xr_fence_acquire();
		g2 = xr_load_relaxed(&rr->rd->pub_gen);
		if (g1 == g2)
			return 0;
	}
}

static const xr_frame *frame_at(const struct xr_ring_rd *rr, uint64_t pos)
{
	return (const xr_frame *)(rr->data + (pos & rr->mask));
}

/* A walk's refusal: what it found at which position, for the reason. */
static int malformed(struct xr_take *t, uint64_t at, const char *what)
{
	t->bad = what;
	t->bad_at = at;
	return -EPROTO;
}

/*
 * Where a lossy reader the writer lapped starts again: halfway from tail
 * to head, on a frame boundary, in a ring whose frames are all of one size
 * (tail and head move by whole frames, so tail + k frames is one). At tail,
 * the batch it takes next is the first the writer reclaims: each hold of a
 * reader slower than the writer stopped the writer for all its length, and
 * such a reader, honest, cost the stream more than the lease timeout allows
 * (red team, fifth pass). Halfway, it has half a lap before the writer gets
 * there. In a ring of frames of any size, whose boundaries only a walk
 * finds, tail. The records skipped are counted as dropped by the seq gap.
 */
static uint64_t restart_at(const struct xr_ring_rd *rr, uint64_t tail)
{
	if (rr->lossless || !rr->fixed_size)
		return tail;
	/* R3-like: pairs with W1, so the frames up to head are published. */
	uint64_t head = xr_load_acquire(&rr->rd->head);
	if ((int64_t)(head - tail) <= 0)
		return tail;
	return tail + (head - tail) / 2 / rr->fixed_size * rr->fixed_size;
}

/* R1/R2: hold a lease at pos that the writer is bound to see, moving pos
 * forward past anything it has already given up on: to tail, or with
 * `ahead` (a read, not a count for stats) to restart_at's place. */
static void lease_at_pos(struct xr_ring_rd *rr, bool ahead)
{
	/* Catch up first, so the lease published below is rarely stale (a
	 * stale one is harmless, merely ignored by the writer). */
	uint64_t t0 = xr_load_acquire(&rr->rd->tail);
	if ((int64_t)(t0 - rr->pos) > 0)
		rr->pos = ahead ? restart_at(rr, t0) : t0;
	for (;;) {
		/* R1: pairs with W3. */
		xr_store_sc(&rr->cur->lease, rr->pos);
		/* R2: pairs with W2. */
		uint64_t tail = xr_load_sc(&rr->rd->tail);
		if ((int64_t)(tail - rr->pos) <= 0)
			break;
		rr->pos = ahead ? restart_at(rr, tail) : tail; /* overrun: the seq gap counts it */
	}
	rr->lease = rr->pos;
}

int xr__rr_start(struct xr_ring_rd *rr)
{
	for (;;) {
		uint64_t at;
		int rc = snapshot(rr, &rr->pos, &rr->start_seq);

		if (rc < 0)
			return rc;
		rr->next_seq = rr->start_seq;
		if (!rr->lossless)
			break;
		at = rr->pos;
		lease_at_pos(rr, true);
		/* The writer lapped the ring between the snapshot and the
		 * lease: the snapshot's head is gone. Attach again, later,
		 * rather than count records from before the attach as lost. */
		if (rr->pos == at)
			break;
		/* Unless the ring is malformed: a writer publishes before it
		 * moves tail, never past the head it published (make_room),
		 * and R2, which read the tail pos is now, pairs with W2, so a
		 * head loaded after it is at least pos. A tail past the head
		 * would have this loop take the same snapshot for ever. */
		if ((int64_t)(xr_load_acquire(&rr->rd->head) - rr->pos) < 0) {
			rr->bad = "a tail past the head, which no writer leaves";
			rr->bad_at = rr->pos;
			return -EPROTO;
		}
	}
	xr__rr_mirror(rr);
	return 0;
}

/* Steps over frames from p towards head: at most `max` of them (UINT64_MAX:
 * to head). Returns the position reached, or XR_NO_LEASE for a frame whose
 * size cannot be (with *what). Only sizes are read, each checked as walk()
 * checks them, so a malformed ring cannot take this off the mapping. */
static uint64_t step_frames(const struct xr_ring_rd *rr, uint64_t p, uint64_t head,
			    uint64_t max, uint64_t *n, const char **what)
{
	uint64_t k = 0;

	if (rr->fixed_size) {
		if ((head - p) % rr->fixed_size) {
			*what = "the bytes up to the head are not whole frames of the ring's size";
			return XR_NO_LEASE;
		}
		k = (head - p) / rr->fixed_size;
		if (k > max)
			k = max;
		*n = k;
		return p + k * rr->fixed_size;
	}
	while (p != head && k < max) {
		const xr_frame *f = frame_at(rr, p);
		uint32_t size = f->size;

		if (size < XR_FRAME_HDR || (size & (rr->align - 1)) || size > head - p ||
		    size > rr->cap / 2) {
			*what = "a frame whose size or length cannot be";
			return XR_NO_LEASE;
		}
		p += size;
		k++;
	}
	*n = k;
	return p;
}

/*
 * History: the reader starts `back` records before the head (all that are
 * still in the ring when fewer are), not at the head. The records there are
 * kept by a lease taken at the oldest the writer still keeps (R1/R2 from
 * tail, as a lossy reader's), so the frames between it and the head stay put
 * while they are counted and stepped over. Then the lease moves forward to
 * the start (a release store, like R4: only forward, so the writer may only
 * gain room), or for a lossy reader goes (it leases per batch; should the
 * writer lap it before its first read, the seq gap counts what it lost).
 * Accounting starts at the seq of the first record kept: written - start_seq
 * is what the reader is owed, as for a reader that attached at the head.
 */
static int start_back(struct xr_ring_rd *rr, uint64_t back)
{
	uint64_t head, written, n = 0, p;
	const char *what = NULL;
	int rc;

	rr->pos = xr_load_acquire(&rr->rd->tail);
	lease_at_pos(rr, false);
	rc = snapshot(rr, &head, &written);
	if (rc < 0)
		goto drop;
	rc = -EPROTO;
	if ((int64_t)(head - rr->pos) < 0 || head - rr->pos > rr->cap) {
		what = "a tail past the head, or more than a ring behind it";
		goto bad;
	}
	if (step_frames(rr, rr->pos, head, UINT64_MAX, &n, &what) == XR_NO_LEASE)
		goto bad;
	p = step_frames(rr, rr->pos, head, n > back ? n - back : 0, &n, &what);
	if (p == XR_NO_LEASE)
		goto bad;
	rr->start_seq = written;
	if (p != head) {
		uint64_t seq = frame_at(rr, p)->seq;
		if (seq >= written) {
			what = "a sequence number at or past the count of records written";
			goto bad;
		}
		rr->start_seq = seq;
	}
	rr->pos = p;
	rr->next_seq = rr->start_seq;
	if (rr->lossless) {
		xr_store_release(&rr->cur->lease, p); /* R4: only forward */
		rr->lease = p;
	} else {
		xr_store_release(&rr->cur->lease, XR_NO_LEASE);
		rr->lease = XR_NO_LEASE;
	}
	xr__rr_mirror(rr);
	return 0;
bad:
	rr->bad = what;
	rr->bad_at = rr->pos;
drop:
	xr_store_release(&rr->cur->lease, XR_NO_LEASE);
	rr->lease = XR_NO_LEASE;
	return rc;
}

int xr__rr_start_back(struct xr_ring_rd *rr, uint64_t back)
{
	return back ? start_back(rr, back) : xr__rr_start(rr);
}

/*
 * walk() without the walk, for a ring whose frames all have one size and no
 * filter: the run from pos is counted from the bytes, and only its first and
 * last frames are read. A walk reads one header per record, each address
 * depending on the size read before it; on big records that is a cache miss
 * per record, most of a batch's cost. The writer refuses records of any other
 * length on such a ring (shm/ring_writer.c), so the frames between are of
 * that size too; the checks below catch a writer that broke the rule at the
 * ends of the run, and keep every access inside [pos, head) regardless.
 * Sequence numbers only grow, so the gaps inside the run are last - first
 * - (count - 1), the same total a walk would add up.
 */
static int take_fixed(const struct xr_ring_rd *rr, uint64_t head, uint32_t max,
		      uint64_t max_bytes, struct xr_take *t)
{
	uint64_t p = rr->pos, expect = rr->next_seq, size = rr->fixed_size;
	uint64_t avail = (head - p) / size, n = avail;

	*t = (struct xr_take){.start = p, .end = p, .taken_end = p, .head = head, .contiguous = true,
			      .skip_end = p, .skip_next_seq = expect, .next_seq = expect};
	if ((head - p) % size)
		return malformed(t, p, "the bytes up to the head are not whole frames of the "
				       "ring's one frame size");
	if (n > max)
		n = max;
	if (n > 1 && n * size > max_bytes)
		n = max_bytes / size > 1 ? max_bytes / size : 1;
	if (n == 0)
		return 0;
	const xr_frame *first = frame_at(rr, p), *last = frame_at(rr, p + (n - 1) * size);
	uint64_t s0 = first->seq, s1 = last->seq;
	if (first->size != size || first->len != rr->fixed_len)
		return malformed(t, p, "a frame of another size or length than the ring's");
	if (last->size != size || last->len != rr->fixed_len)
		return malformed(t, p + (n - 1) * size,
				 "a frame of another size or length than the ring's");
	if (s0 < expect)
		return malformed(t, p, "a sequence number lower than one already read");
	if (s1 < s0 || s1 - s0 < n - 1)
		return malformed(t, p + (n - 1) * size,
				 "sequence numbers that go back, or leave no room for the "
				 "frames between");
	t->end = t->taken_end = p + n * size;
	t->count = t->seen = (uint32_t)n;
	t->full = n < avail;
	t->first_seq = s0;
	t->next_seq = s1 + 1;
	t->gaps = (s0 - expect) + (s1 - s0 - (n - 1));
	t->stride = (uint32_t)size;
	t->len = rr->fixed_len;
	return 0;
}

/* Walks frames from pos towards head: until max frames passed the filter,
 * or max_bytes from the first of them would be exceeded (that first frame
 * always counts). */
static int walk(const struct xr_ring_rd *rr, uint64_t head, uint32_t max, uint64_t max_bytes,
		const struct xr_filt *flt, const xr_frame **idx, struct xr_take *t)
{
	uint64_t p = rr->pos, expect = rr->next_seq;
	uint32_t n = 0, stride = 0, len = 0, seen = 0;
	bool mixed = false, mixed_len = false, hole = false;

	if (flt && flt->all)
		flt = NULL;
	/* An honest writer never has more than a ring of bytes past a lease
	 * it honours; anything else would walk off the mapping. */
	if (head - p > rr->cap)
		return malformed(t, p, "the head is more than a ring past the reader's place");
	if (!flt && rr->fixed_size)
		return take_fixed(rr, head, max, max_bytes, t);
	*t = (struct xr_take){.start = p, .end = p, .taken_end = p, .head = head, .contiguous = true,
			      .skip_end = p, .skip_next_seq = expect};
	/* The loop's figures in locals, stored into *t once at the end: kept
	 * in *t, each step loaded and stored them again (a third of a step's
	 * instructions, perf/icount reader). A refusal stores nothing but what
	 * it found, which is all its callers read. The header's fields are
	 * read once each, so that every check is of the value used. */
	uint64_t start = p, taken_end = p, gaps = 0, first_seq = 0;
	const uint64_t cap_half = rr->cap / 2;
	const uint32_t amask = rr->align - 1;

	while (p != head) {
		const xr_frame *f = frame_at(rr, p);
		uint32_t size = f->size, flen = f->len;
		uint64_t seq = f->seq;

		/* Each step's address comes from the last frame's size: a chain
		 * of dependent loads, one cache miss after another on a stream of
		 * big records. Guessing that frames keep their size lets the next
		 * few headers load in parallel (a prefetch never faults, and a
		 * wrong guess costs one wasted line). */
		if (head - p > 32 * (uint64_t)size)
			__builtin_prefetch(frame_at(rr, p + 32 * (uint64_t)size));

		if (n == max) {
			t->full = true;
			break;
		}
		/* The writer is trusted, but a reader must not walk off into
		 * the weeds on a bug: check what we step by. */
		if (size < XR_FRAME_HDR || (size & amask) || size > head - p || size > cap_half ||
		    flen > size - XR_FRAME_HDR)
			return malformed(t, p, "a frame whose size or length cannot be");
		if (n > 0 && p + size - start > max_bytes) {
			t->full = true;
			break;
		}
		if (seq < expect)
			return malformed(t, p, "a sequence number lower than one already read");
		gaps += seq - expect;
		expect = seq + 1;
		p += size;
		seen++;
		if (flt && !xr__filter_pass_slow(flt, (const uint8_t *)(f + 1), flen)) {
			if (n == 0) {
				start = p;
				t->skip_end = p;
				t->skip_frames = seen;
				t->skip_gaps = gaps;
				t->skip_next_seq = expect;
			} else {
				hole = true; /* matters only if another frame passes */
			}
			continue;
		}
		if (hole)
			t->contiguous = false;
		if (n == 0) {
			first_seq = seq;
		} else {
			mixed |= size != stride;
			mixed_len |= flen != len;
		}
		stride = size;
		len = flen;
		if (idx)
			idx[n] = f;
		n++;
		taken_end = p;
		/* A run of frames like this one, the common case, checked for
		 * only that: a header equal to the one just checked in full
		 * (size, length) and the next seq in order passes every check
		 * above, within the k frames that fit before head, max and
		 * max_bytes. A fifth of a full step's instructions; the first
		 * frame that differs ends the run and gets the full step. */
		if (flt || mixed || mixed_len || p - start >= max_bytes)
			continue;
		uint64_t k = (head - p) / stride, kb = (max_bytes - (p - start)) / stride;
		if (k > max - n)
			k = max - n;
		if (k > kb)
			k = kb;
		for (; k; k--) {
			const xr_frame *g = frame_at(rr, p);

			if (g->size != stride || g->len != len || g->seq != expect)
				break;
			if (head - p > 32 * (uint64_t)stride)
				__builtin_prefetch(frame_at(rr, p + 32 * (uint64_t)stride));
			if (idx)
				idx[n] = g;
			n++;
			seen++;
			expect++;
			p += stride;
		}
		taken_end = p;
	}
	t->start = start;
	t->taken_end = taken_end;
	t->gaps = gaps;
	t->first_seq = first_seq;
	t->end = p;
	t->count = n;
	t->seen = seen;
	t->next_seq = expect;
	t->stride = n && !mixed ? stride : 0;
	t->len = n && !mixed_len ? len : 0;
	return 0;
}

int xr__rr_peek(struct xr_ring_rd *rr, uint32_t max, uint64_t max_bytes,
		const struct xr_filt *filter, const xr_frame **idx, struct xr_take *t)
{
	if (rr->lease == XR_NO_LEASE)
		lease_at_pos(rr, true);
	/* R3: pairs with W1: frames below head are complete. */
	int rc = walk(rr, xr_load_acquire(&rr->rd->head), max, max_bytes, filter, idx, t);

	if (rc < 0) {
		rr->bad = t->bad;
		rr->bad_at = t->bad_at;
	}
	return rc;
}

void xr__rr_skip(struct xr_ring_rd *rr, const struct xr_take *t)
{
	rr->filtered += t->skip_frames;
	rr->dropped += t->skip_gaps;
	rr->next_seq = t->skip_next_seq;
	rr->pos = t->skip_end;
	xr__rr_mirror(rr);
}

void xr__rr_commit(struct xr_ring_rd *rr, const struct xr_take *t)
{
	rr->dropped += t->gaps;
	rr->read += t->count;
	rr->filtered += t->seen - t->count;
	rr->next_seq = t->next_seq;
	rr->pos = t->end;
	rr->held++;
	xr__rr_mirror(rr);
}

void xr__rr_unpeek(struct xr_ring_rd *rr)
{
	if (!rr->lossless && rr->held == 0 && rr->lease != XR_NO_LEASE) {
		/* R4 */
		xr_store_release(&rr->cur->lease, XR_NO_LEASE);
		rr->lease = XR_NO_LEASE;
	}
}

void xr__rr_set_lease(struct xr_ring_rd *rr, uint64_t oldest)
{
	uint64_t v = oldest;

	if (v == XR_NO_LEASE && rr->lossless)
		v = rr->pos;
	/* R4: the reader's reads of released frames happen before the writer's
	 * overwrite of them (W3 is an acquire load). */
	xr_store_release(&rr->cur->lease, v);
	rr->lease = v;
}

int xr__rr_count(struct xr_ring_rd *rr, uint64_t *pending, uint64_t *unseen_drops,
		 uint64_t *written, uint64_t *lag)
{
	struct xr_take t;
	uint64_t head, wr;
	int rc;

	/* The walk needs a lease, as a read does; a lossy reader that holds no
	 * batch takes one for it alone and gives it back on every way out (the
	 * refusals included), or the writer would go on honouring it: on a
	 * lossless stream, waiting for a reader that reads nothing. */
	if (rr->lease == XR_NO_LEASE)
		lease_at_pos(rr, false); /* a count moves nothing ahead */
	rc = snapshot(rr, &head, &wr);
	/* A publish left half done, told apart from a malformed frame (the
	 * walk's -EPROTO) so that the caller can say which it was. */
	if (rc < 0)
		rc = -ETIMEDOUT;
	else
		rc = walk(rr, head, UINT32_MAX, UINT64_MAX, NULL, NULL, &t);
	xr__rr_unpeek(rr);
	if (rc == -EPROTO) {
		rr->bad = t.bad;
		rr->bad_at = t.bad_at;
	}
	if (rc < 0)
		return rc;
	*pending = t.count;
	*unseen_drops = t.gaps + (wr - t.next_seq);
	*written = wr - rr->start_seq;
	*lag = head - rr->pos;
	return 0;
}

void xr__rr_mirror(struct xr_ring_rd *rr)
{
	xr_store_relaxed(&rr->cur->pos, rr->pos);
	xr_store_relaxed(&rr->cur->next_seq, rr->next_seq);
	xr_store_relaxed(&rr->cur->read, rr->read);
	xr_store_relaxed(&rr->cur->dropped, rr->dropped);
}
