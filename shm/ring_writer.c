/* SPDX-License-Identifier: MIT */
/*
 * The ring protocol, writer side. (The reader side is shm/ring_reader.c; the
 * same text, with pictures, is docs/ring-protocol.md.)
 *
 * LAYOUT. A ring is `cap` bytes (a power of two) of the arena file, mapped
 * twice back to back, so bytes [i, i + n) for i < cap and n <= cap are always
 * contiguous. Positions are free-running 64-bit byte counts; position p lives
 * at data[p & (cap - 1)]. Differences of positions are taken unsigned, so
 * wrap of the 64-bit counters needs no special case (it would take centuries).
 *
 * FRAMES. Each record sits in a frame: {u32 size, u32 len, u64 seq} + record
 * + zero-or-more padding bytes, size a multiple of the stream's frame
 * alignment. Frames are back to back: the frame after p is at p + size. seq
 * counts records written to this ring, from 0; a record dropped at the writer
 * (lossy lease stall) consumes a seq but no frame.
 *
 * PRODUCER STATE (read-only to readers, struct xr_ring_desc):
 *   head     bytes published. Frames in [tail, head) are complete.
 *   written  records produced (next seq). head and written are updated
 *            together under a seqlock (pub_gen) so that they can be read as
 *            a consistent pair where that matters (attach, stats).
 *   tail     oldest position a reader may start a new lease at. Bytes before
 *            tail may be overwritten at any moment.
 *
 * READER STATE (read-write to its reader, untrusted here, struct xr_cursor):
 *   lease    the writer must not overwrite any byte at or after `lease`, or
 *            XR_NO_LEASE. Lossless readers always hold a lease (their release
 *            cursor); lossy readers only while they hold a batch.
 *
 * PUBLICATION (invariant 1). The writer fills frames beyond head with plain
 * stores, then stores `written` and, W1, head with release. A reader loads
 * head with acquire (R3): every byte of every frame below the head it sees is
 * visible, so no reader ever observes a partial record. One release store per
 * publish, whatever the number of records: that is the batch commit.
 *
 * RECLAIM (invariant 3). To write the frame [head, head + size) the writer
 * overwrites old bytes [head + size - cap, ...), so it needs
 * tail >= head + size - cap and no lease below that. It keeps `limit`, a
 * bound below which both hold, and only when a reservation crosses it:
 *   W2  store_sc(tail, T)        T: a frame boundary past what it needs,
 *                                plus a chunk, so this happens rarely
 *   W3  load_sc(lease) of every reader of the ring
 * A lossy reader taking a lease at position p does the mirror image:
 *   R1  store_sc(lease, p)
 *   R2  load_sc(tail); if tail > p, p = tail and repeat
 * All four are seq_cst, so in their single total order either R2 follows W2
 * (the reader sees the new tail and does not use the bytes being reclaimed)
 * or W3 follows R1 (the writer sees the lease and does not overwrite it).
 * That Dekker-style pair is the only place that needs seq_cst; everything
 * else is acquire/release. A reader ends a lease with a release store (R4);
 * the writer's W3 load is an acquire, so the reader's reads of the batch
 * happen before the writer's later overwrite of it.
 *
 * A blocked reclaim (some lease < needed position): lossless streams wait
 * (-EAGAIN to the caller, xr_writer_wait() to wait); lossy streams drop the
 * record: its seq is consumed, lease_stalls counts it, and every reader sees
 * the gap in seq and counts it as dropped (invariant 5).
 *
 * UNTRUSTED LEASES (invariant 8). Three cases, by where the lease L lies:
 *   L > head         no reader can ever hold that: garbage. The reader is
 *                    evicted (slot EVICTED, its leases ignored from then on,
 *                    XR_EEVICTED on its next call), counted, and the writer
 *                    goes on.
 *   L < head - cap   stale, or garbage: a lease the writer honoured bounds
 *                    head to L + cap, so such an L was never honoured. A lossy
 *                    reader coming back after an overrun publishes its old
 *                    position for an instant (R1) before R2 moves it; that is
 *                    this case, and must not be punished. Ignored.
 *   otherwise        honoured. A garbage value here is indistinguishable from
 *                    a slow reader: at worst it slows the writer down, until
 *                    the reader writes a sane value or dies and is reaped.
 * The writer never dereferences anything a reader wrote; it walks frames by
 * the sizes it wrote itself.
 *
 * CRASHES. A writer that dies leaves head at its last publish: readers see
 * only whole records, and then XR_ECLOSED. A reader that dies leaves its
 * lease; xr_writer_wait() and xr_arena_reap() notice the dead process
 * (pid + start time) and clear its leases.
 */
#include <errno.h>
#include <string.h>

#include "shm/arena_priv.h"
#include "shm/atomics.h"
#include "shm/wake.h"
#include "util/clock.h"
#include "xring/error.h"
#include "xring/writer.h"

#define XR_REAP_INTERVAL_NS 10000000ull /* 10 ms */

void xr__writer_init(struct xr_writer *w, struct xr_arena *a, uint32_t ring)
{
	struct xr_arena_hdr *h = a->hdr;
	struct xr_ring_desc *rd = &h->rings[ring];
	struct xr_stream_desc *sd = &h->streams[rd->stream];

	memset(w, 0, sizeof(*w));
	w->arena = a;
	w->rd = rd;
	w->cursors = xr__cursor(a, ring, 0);
	w->slots = a->slots;
	w->data = a->ring_data[ring];
	w->cap = rd->capacity;
	w->mask = rd->capacity - 1;
	w->chunk = rd->capacity / 8;
	w->align = rd->frame_align;
	w->max_frame = sd->max_frame;
	w->record_len = rd->record_len;
	w->max_readers = h->max_readers;
	w->policy = sd->policy;
	/* Empty ring: nothing to reclaim until the first wrap. */
	w->limit = w->cap;
	w->blocker = -1;
}

static inline struct xr_frame_rw {
	uint32_t size, len;
	uint64_t seq;
} *frame_at(const struct xr_writer *w, uint64_t pos)
{
	return (struct xr_frame_rw *)(w->data + (pos & w->mask));
}

static void flush_stats(struct xr_writer *w)
{
	struct xr_ring_desc *rd = w->rd;

	if (w->records) {
		xr_counter_add(&rd->records, w->records);
		xr_counter_add(&rd->bytes, w->head - w->bytes);
		w->records = 0;
		w->bytes = w->head;
	}
}

void xr_writer_publish(xr_writer *w)
{
	if (w->head == w->published && w->seq == w->seq_published)
		return;
	/* head and written change together under a seqlock (pub_gen odd while
	 * they move), so attach and stats can read them as one pair (R6). The
	 * hot read path loads head alone and never looks at pub_gen. */
	uint32_t gen = xr_load_relaxed(&w->rd->pub_gen);
	xr_store_relaxed(&w->rd->pub_gen, gen + 1);
	atomic_thread_fence(memory_order_release);
	/* W1: publishes every frame below head; pairs with R3. With sleeping
	 * readers to wake it is seq_cst, for the sleep/wake handshake
	 * (shm/wake.c): one locked store per publish, not per record. */
	if (w->wake)
		xr_store_sc(&w->rd->head, w->head);
	else
		xr_store_release(&w->rd->head, w->head);
	xr_store_release(&w->rd->written, w->seq);
	/* W1c: closes the seqlock; pairs with R6. */
	xr_store_release(&w->rd->pub_gen, gen + 2);
	if (w->head != w->published)
		xr_counter_add(&w->rd->publishes, 1);
	w->published = w->head;
	w->seq_published = w->seq;
	flush_stats(w);
	if (w->wake)
		xr__wake_check(w);
}

/*
 * Tries to make [head, head + size) writable: advances tail (W2), scans the
 * leases (W3), sets limit. Returns 0, or -EAGAIN when a lease is in the way
 * (w->blocker names its slot).
 */
static int make_room(struct xr_writer *w, uint64_t size)
{
	uint64_t need = w->head + size - w->cap; /* tail must reach this */
	uint64_t goal, t = w->tail, worst = 0;
	int blocker = -1;

	/* Readers must be able to consume what is already committed. */
	xr_writer_publish(w);

	/* Advance by at least a chunk so the scan below is amortised over many
	 * records; never past head, and always to a frame boundary. */
	goal = need;
	if (w->head - t > w->chunk && goal - t < w->chunk)
		goal = t + w->chunk;
	/* The first recorded boundary at or past goal, else walk. */
	while (w->mark_first != w->mark_end) {
		uint64_t m = w->marks[w->mark_first & 63];
		if ((int64_t)(m - t) <= 0) {
			w->mark_first++;
			continue;
		}
		if ((int64_t)(m - goal) >= 0) {
			t = m;
			w->mark_first++;
			break;
		}
		t = m; /* a boundary closer to goal: walk from here */
		w->mark_first++;
	}
	while ((int64_t)(goal - t) > 0)
		t += frame_at(w, t)->size;
	if (t != w->tail) {
		/* W2: pairs with R2 (seq_cst handshake, see top of file). */
		xr_store_sc(&w->rd->tail, t);
		w->tail = t;
	}

	/* W3: the leases. worst = largest distance head - lease seen. */
	for (uint32_t i = 0; i < w->max_readers; i++) {
		uint64_t lease = xr_load_sc(&w->cursors[i].lease);
		uint64_t dist;

		if (lease == XR_NO_LEASE)
			continue;
		/* Leases are only ever set by ACTIVE readers (the reader stores
		 * ACTIVE before its first lease, R0), so an inactive slot's lease
		 * is a leftover and ignored. */
		if (xr_load_acquire(&w->slots[i].state) != XR_SLOT_ACTIVE)
			continue;
		/* Positions start at 0 and never reach 2^64 in practice, so
		 * plain comparison orders them. */
		if (lease > w->head) {
			if (xr__evict_slot(w->arena, i, XR_EVICT_CURSOR))
				xr_counter_add(&w->rd->evictions, 1);
			continue;
		}
		dist = w->head - lease;
		if (dist > w->cap)
			continue; /* stale: see UNTRUSTED LEASES */
		if (dist > worst) {
			worst = dist;
			blocker = (int)i;
		}
	}
	/* Room up to min(tail, oldest lease) + cap. */
	uint64_t floor = w->head - worst;
	if ((int64_t)(w->tail - floor) < 0)
		floor = w->tail;
	w->limit = floor + w->cap;
	w->blocker = blocker;
	return w->head + size <= w->limit ? 0 : -EAGAIN;
}

int xr_writer_reserve(xr_writer *w, uint32_t len, void **payload)
{
	uint64_t size = xr__frame_size(len, w->align);
	struct xr_frame_rw *f;

	if (size > w->max_frame)
		return -EMSGSIZE;
	if (w->record_len && len != w->record_len)
		return -EINVAL;
	if (w->head + size > w->limit && make_room(w, size) < 0) {
		if (w->policy == XR_POLICY_LOSSLESS)
			return -EAGAIN;
		/* Lossy: never wait. The record is lost to every reader; the seq
		 * gap tells them so. A lease holder that died would stall us for
		 * good: look for the dead every 10 ms of stalling (the clock is
		 * read once per 64 drops, not per record). */
		w->seq++;
		xr_counter_add(&w->rd->lease_stalls, 1);
		if (++w->stalls_since_reap >= 64) {
			uint64_t now = xr__now_ns();
			w->stalls_since_reap = 0;
			if (now - w->last_reap_ns >= XR_REAP_INTERVAL_NS) {
				w->last_reap_ns = now;
				xr_arena_reap(w->arena);
			}
		}
		return XR_EDROPPED;
	}
	f = frame_at(w, w->head);
	f->size = (uint32_t)size;
	f->len = len;
	f->seq = w->seq;
	w->reserved = (uint32_t)size;
	*payload = (uint8_t *)f + XR_FRAME_HDR;
	return 0;
}

void xr_writer_commit(xr_writer *w)
{
	w->head += w->reserved;
	w->records++;
	w->seq++;
	w->reserved = 0;
	if (w->head >= w->next_mark) {
		if (w->mark_end - w->mark_first == 64)
			w->mark_first++;
		w->marks[w->mark_end++ & 63] = w->head;
		w->next_mark = w->head + (w->cap >> 5);
	}
}

int xr_writer_write(xr_writer *w, const void *data, uint32_t len)
{
	void *p;
	int rc = xr_writer_reserve(w, len, &p);

	if (rc < 0)
		return rc;
	memcpy(p, data, len);
	xr_writer_commit(w);
	return 0;
}

uint64_t xr__writer_backlog(const struct xr_writer *w)
{
	uint64_t worst = 0;

	for (uint32_t i = 0; i < w->max_readers; i++) {
		/* Same classification as make_room (W3), acquire suffices: this
		 * only estimates fill, it never decides an overwrite. */
		uint64_t lease = xr_load_acquire(&w->cursors[i].lease);
		if (lease == XR_NO_LEASE || lease > w->head ||
		    xr_load_acquire(&w->slots[i].state) != XR_SLOT_ACTIVE)
			continue;
		if (w->head - lease <= w->cap && w->head - lease > worst)
			worst = w->head - lease;
	}
	return worst;
}

void xr__writer_count_pause(struct xr_writer *w, uint64_t ns)
{
	if (ns == 0)
		xr_counter_add(&w->rd->full_waits, 1);
	else
		xr_counter_add(&w->rd->wait_ns, ns);
}

uint64_t xr_writer_next_seq(const xr_writer *w)
{
	return w->seq;
}

int xr_writer_wait(xr_writer *w, uint32_t len, int64_t timeout_ns)
{
	uint64_t size = xr__frame_size(len, w->align);
	uint64_t start, now, last_reap;
	struct xr_backoff b;
	int rc = 0;

	if (size > w->max_frame)
		return -EMSGSIZE;
	if (w->head + size <= w->limit || make_room(w, size) == 0)
		return 0;
	if (w->policy == XR_POLICY_LOSSY)
		return 0; /* a lossy writer never waits: reserve will drop */

	start = last_reap = xr__now_ns();
	xr_counter_add(&w->rd->full_waits, 1);
	xr__wake_blocked(w, true);
	xr__backoff_init(&b);
	for (;;) {
		xr__backoff_wait(&b);
		if (make_room(w, size) == 0)
			break;
		now = xr__now_ns();
		if (now - last_reap >= XR_REAP_INTERVAL_NS) {
			/* The reader in the way may be dead: check them all. */
			if (xr_arena_reap(w->arena) > 0 && make_room(w, size) == 0)
				break;
			last_reap = now;
		}
		if (timeout_ns >= 0 && now - start >= (uint64_t)timeout_ns) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	xr__wake_blocked(w, false);
	xr_counter_add(&w->rd->wait_ns, xr__now_ns() - start);
	return rc;
}
