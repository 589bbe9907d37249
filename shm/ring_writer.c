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
 * READER STATE (struct xr_cursor, in each reader's own peer page: written
 * by that reader alone, untrusted here):
 *   lease    the writer must not overwrite any byte at or after `lease`, or
 *            XR_NO_LEASE. Lossless readers always hold a lease (their release
 *            cursor); lossy readers only while they hold a batch.
 * Whose leases count is not theirs to say: the writer honours the lease of a
 * slot only while the engine's own record of it (shm/peers.c, private
 * memory) says ACTIVE and names this writer's stream:
 *   W3a  load_acquire(peer.state) == ACTIVE; pairs with PS1 (peers.c).
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
 * A reader ends a lease with a release store (R4); the writer's W3 load is
 * seq_cst, hence an acquire, so the reader's reads of the batch happen
 * before the writer's later overwrite of it. The other seq_cst accesses of
 * the ring are the sleep/wake handshake's (W1 whenever the arena has a wake
 * table, which every arena an engine creates has; and `blocked`;
 * shm/wake.c); everything else is acquire/release or relaxed.
 *
 * A blocked reclaim (some lease < needed position): lossless streams wait
 * (-EAGAIN to the caller, xr_writer_wait() to wait); lossy streams drop the
 * record: its seq is consumed, lease_stalls counts it, and every reader sees
 * the gap in seq and counts it as dropped (invariant 5).
 *
 * WATERMARKS (lossless, xr_writer_set_watermarks). After each publish the
 * writer bounds its backlog (bytes committed that the slowest honoured lease
 * has not released) from above by head - (limit - cap): leases only move
 * forward since the scan that set limit. Past the high watermark it scans
 * the leases for the true backlog, and if that is past too it pauses:
 * reserve returns -EAGAIN until xr_writer_wait() sees the backlog under the
 * low watermark. A pause and a full ring are one thing to the caller, waited
 * out by one loop (xr_writer_wait), counted once (full_waits, wait_ns).
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
 *                    the reader writes a sane value or its connection ends and the
 *                    server releases its slot.
 * The writer never dereferences anything a reader wrote: a lease is only
 * compared, and frames are walked by the sizes the writer wrote itself, in
 * ring data no reader can write (readers map it read-only; the fd they get is
 * O_RDONLY).
 *
 * EVICTION. An evicted reader's leases stop counting at once (W3a), so the
 * writer may overwrite the bytes that reader is walking right then. The
 * reader tells that from a malformed ring by checking its slot after each
 * walk (PI2 in shm/peers.c, RI2 in client/reader.c): XR_EEVICTED, never
 * -EPROTO, for an honest writer's eviction.
 *
 * CRASHES. A writer that dies leaves head at its last publish: readers see
 * only whole records, and then XR_ECLOSED. A reader that dies ends its
 * control connection; the control server releases its slot at once
 * (shm/peers.c), and from then on no lease of its page counts.
 */
#include <errno.h>
#include <string.h>

#include "shm/arena_priv.h"
#include "util/atomics.h"
#include "shm/peers.h"
#include "shm/wake.h"
#include "util/clock.h"
#include "xring/error.h"
#include "xring/writer.h"

#define XR_LEASE_TIMEOUT_NS (10 * 1000000000ull) /* default; xr_writer_set_lease_timeout */

void xr__writer_init(struct xr_writer *w, struct xr_arena *a, uint32_t ring)
{
	const struct xr_ring_fixed *rf = &a->lay.rings[ring];
	const struct xr_stream_desc *sd = &a->lay.streams[rf->stream];

	memset(w, 0, sizeof(*w));
	w->arena = a;
	w->rd = &a->hdr->rings[ring];
	w->peers = a->peers;
	w->data = a->ring_data[ring];
	w->ring = ring;
	w->stream = rf->stream;
	w->cap = rf->capacity;
	w->mask = rf->capacity - 1;
	w->chunk = rf->capacity / 8;
	w->align = rf->frame_align;
	w->max_frame = sd->max_frame;
	w->record_len = rf->record_len;
	w->max_readers = a->lay.max_readers;
	w->policy = sd->policy;
	/* Empty ring: nothing to reclaim until the first wrap. */
	w->limit = w->cap;
	w->blocker = -1;
	w->lease_timeout_ns = XR_LEASE_TIMEOUT_NS;
	w->stop_clock = -1;
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

/*
 * W3: the leases of the slots the engine handed out for this stream.
 * Returns the largest distance head - lease among those honoured (0: none)
 * and its slot in *blocker; with evict, a lease ahead of head evicts its
 * reader (see UNTRUSTED LEASES).
 */
static uint64_t scan_leases(struct xr_writer *w, bool evict, int *blocker)
{
	uint64_t worst = 0;

	*blocker = -1;
	/* The pages read below are not replaced until this ends (GRACE in
	 * shm/peers.c). */
	xr__peers_enter(w->peers, w->ring);
	w->lease_scans++;
	for (uint32_t i = 0; i < w->max_readers; i++) {
		struct xr_peer *p = &w->peers->slot[i];

		/* W3a: pairs with PS1 (and, seq_cst, with PG2). The state that
		 * counts is the engine's, never one a reader could have written. */
		if (xr_load_sc(&p->state) != XR_SLOT_ACTIVE ||
		    xr_load_relaxed(&p->stream) != w->stream)
			continue;
		/* W3: pairs with R1 (seq_cst handshake, see top of file). */
		uint64_t lease = xr_load_sc(&p->page->cursors[w->ring].lease);
		if (lease == XR_NO_LEASE)
			continue;
		/* Positions start at 0 and never reach 2^64 in practice, so
		 * plain comparison orders them. */
		if (lease > w->head) {
			if (evict && xr__peer_evict(w->arena, i, XR_EVICT_CURSOR))
				xr_counter_add(&w->rd->evictions, 1);
			continue;
		}
		uint64_t dist = w->head - lease;
		if (dist > w->cap)
			continue; /* stale: see UNTRUSTED LEASES */
		if (dist > worst) {
			worst = dist;
			*blocker = (int)i;
		}
	}
	xr__peers_leave(w->peers, w->ring);
	return worst;
}

/* Past the high watermark: pause (lossless, watermarks set). Checked after
 * each publish; cheap unless the bound says the backlog may be high. */
static void check_watermark(struct xr_writer *w)
{
	int blocker;

	if (w->paused || w->head - (w->limit - w->cap) <= w->wm.high)
		return;
	if (scan_leases(w, false, &blocker) <= w->wm.high)
		return;
	w->paused = true;
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
	xr_fence_release();
	/* W1: publishes every frame below head; pairs with R3. With a wake
	 * table (always, in an engine's arena) it is seq_cst, for the
	 * sleep/wake handshake (shm/wake.c): one locked store per publish, not
	 * per record. */
	if (w->wake)
		xr_store_sc(&w->rd->head, w->head);
	else
		xr_store_release(&w->rd->head, w->head);
	xr_store_release(&w->rd->written, w->seq);
	/* W1c: closes the seqlock; pairs with R6. */
	xr_store_release(&w->rd->pub_gen, gen + 2);
	if (w->head != w->published)
		xr_counter_add(&w->rd->publishes, 1);
	w->prev_published = w->published;
	w->published = w->head;
	w->seq_published = w->seq;
	w->pub_frames = w->frames - w->frames_published;
	w->frames_published = w->frames;
	flush_stats(w);
	if (w->wake)
		xr__wake_check(w);
	if (w->wm.high)
		check_watermark(w);
}

/*
 * A lossy reader's lease is a batch it holds, and leases are meant to be
 * short: a reader that keeps the writer stopped gets evicted (XR_EEVICTED)
 * when the lease timeout runs out, so that a reader that stopped (or a peer
 * that holds leases on purpose) cannot make a lossy stream drop more than a
 * third of its records, nor stop a lossless one, for longer than that. A
 * lossless reader's lease is its place in the stream: it is waited for as
 * long as it lives, which is what lossless means. Called at each look that
 * finds the writer stopped: a reservation that fails (make_room), a pause
 * that goes on (may_go_on); slot is the oldest lease's, the one in the way.
 *
 * What is counted is the damage done, not one lease's age (a reader can
 * move its lease, let records through, take turns with other slots: any
 * clock tied to a lease was restarted at will), and it is counted per uid,
 * the unit of trust: not per stream, or one uid's debt got the next reader
 * in the way evicted for it; not per slot, or one uid's slots taking turns
 * each paid the others' debts with the records written between their
 * turns (red team, four passes; a docs pass).
 *   - A lossy stream drops what a lease stops: each uid runs a debt of
 *     records, 2 for each record dropped while a lease of its was in the
 *     way, paid back 1 for each record the writer writes. When a uid's
 *     debt has been above 0 for the timeout (the stream lost more than a
 *     third of its records to it all that time), its reader in the way is
 *     evicted. Records, not time: a
 *     writer that writes in bursts (a shard's tick, then idle) has idle
 *     time that is neither blocked nor free. No cap: what was dropped is
 *     paid back in full, so letting a lap through now and then does not
 *     start the count afresh. The most one uid's readers can take from a
 *     lossy stream for long is a third of its records (N admitted uids
 *     together: N/(N+2)).
 *   - A lossless stream's writer waits (xr_writer_wait polls all along):
 *     each uid has a leaky bucket of time, filled by the stops charged to
 *     it (a stop lasts until the look that finds room, or until another
 *     uid's lease is in the way) and drained by all other time. Lossless
 *     readers are charged nothing.
 * A uid's readers share its count, old and new: an evicted peer that
 * subscribes again finds its debt where it left it. And each eviction
 * halves the uid's timeout (strikes, up to 10), one strike forgiven per
 * quiet spell of 4 timeouts. An honest lossy
 * reader, which holds a batch for less than the ring takes to fill, costs a
 * few records now and then, paid back at once. The clock is read only on
 * the paths that found the writer stopped.
 */
static struct xr_strike *strike_of(struct xr_writer *w, uint32_t uid, bool add)
{
	struct xr_strike *s = NULL;

	for (int i = 0; i < XR_STRIKE_UIDS; i++) {
		if (w->strikes[i].n && w->strikes[i].uid == uid)
			return &w->strikes[i];
		if (!s || w->strikes[i].n < s->n)
			s = &w->strikes[i]; /* the least struck makes room */
	}
	if (!add)
		return NULL;
	*s = (struct xr_strike){.uid = uid};
	return s;
}

/* uid's timeout now: halved for each strike left after forgiving one per
 * quiet spell. */
static uint64_t timeout_for(struct xr_writer *w, uint32_t uid, uint64_t now)
{
	struct xr_strike *s = strike_of(w, uid, false);
	uint64_t spell = 4 * w->lease_timeout_ns;

	if (!s)
		return w->lease_timeout_ns;
	while (s->n && now - s->at >= spell) {
		s->n--;
		s->at += spell;
	}
	return w->lease_timeout_ns >> s->n;
}

static void evict_for_lease(struct xr_writer *w, uint32_t slot, uint32_t uid, uint64_t now,
			    bool strike)
{
	bool evicted;

	xr__peers_enter(w->peers, w->ring); /* the eviction kicks the reader */
	evicted = xr__peer_evict(w->arena, slot, XR_EVICT_LEASE);
	xr__peers_leave(w->peers, w->ring);
	if (!evicted)
		return; /* released meanwhile: no strike */
	xr_counter_add(&w->rd->evictions, 1);
	if (!strike)
		return;
	struct xr_strike *s = strike_of(w, uid, true);
	if (s->n < 10)
		s->n++;
	s->at = now;
}

/* uid's clock: found, or made in place of one that owes nothing, probing
 * from the uid's hash. A clock that owes is never given up, or uids enough
 * could wipe each other's debts in turn (red team, fifth pass); the table
 * is large enough that no allow-list fills it (sized by uids, not slots: a
 * table of max_readers let max_readers + 1 uids push a newcomer onto the
 * shared overflow clock, where another's debt got it evicted: sixth pass).
 * Only past XR_LEASE_CLOCKS uids owing at once do newcomers share the
 * overflow clock, and its evictions strike nobody. */
static struct xr_lease_clock *clock_of(struct xr_writer *w, uint32_t uid, uint64_t now)
{
	struct xr_lease_clock *free_c = NULL, *over = &w->lc[XR_LEASE_CLOCKS];
	uint32_t h = (uid * 2654435761u) % XR_LEASE_CLOCKS;

	/* A lossy stream looks here once per record dropped, mostly for the
	 * same uid: the last one found first, before any probe. */
	if (w->lc[w->last_clock].used && w->lc[w->last_clock].uid == uid &&
	    w->last_clock != XR_LEASE_CLOCKS)
		return &w->lc[w->last_clock];

	for (uint32_t k = 0; k < XR_LEASE_CLOCKS; k++) {
		uint32_t i = (h + k) % XR_LEASE_CLOCKS;
		struct xr_lease_clock *c = &w->lc[i];
		if (c->used && c->uid == uid) {
			w->last_clock = (int)i;
			return c;
		}
		if (!c->used) { /* the end of uid's probe: it has none */
			if (!free_c)
				free_c = c;
			break;
		}
		if (!free_c && (int)i != w->stop_clock &&
		    (int64_t)(c->drops2 - (w->frames - c->w0)) <= 0 && now - c->end >= c->bucket)
			free_c = c;
	}
	if (!free_c) {
		if (!over->used)
			*over = (struct xr_lease_clock){.used = true, .end = now};
		return over;
	}
	*free_c = (struct xr_lease_clock){.uid = uid, .used = true, .end = now};
	w->last_clock = (int)(free_c - w->lc);
	return free_c;
}

/* Lossless: the stop under way ends now, charged to its clock. */
static void stop_over(struct xr_writer *w, uint64_t now)
{
	struct xr_lease_clock *c = &w->lc[w->stop_clock];

	c->bucket += now - w->stop_start;
	if (c->bucket > w->lease_timeout_ns)
		c->bucket = w->lease_timeout_ns; /* the most a stop can owe */
	c->end = now;
	w->stop_clock = -1;
}

static void check_stall(struct xr_writer *w, uint32_t slot)
{
	const struct xr_reader_info *info = &w->arena->infos[slot];
	struct xr_lease_clock *c;
	uint64_t now, timeout;

	/* A reader that asked for a shorter timeout (an agent's: its seats
	 * fall back while it is away) gets it, and its eviction strikes its
	 * uid's other readers nothing: it asked for it. Relaxed, as policy
	 * below. */
	uint64_t own = xr_load_relaxed(&w->peers->slot[slot].lease_timeout_ns);
	if (!w->lease_timeout_ns && !own)
		return; /* never evict: nothing to count */
	now = xr__now_ns();
	/* The engine's own records of the slot (private memory, and the
	 * reader table, which readers map read-only), not anything the reader
	 * wrote. Relaxed: the scan that named the slot saw it ACTIVE with an
	 * acquire (W3a), and these are stored before PS1. */
	if (xr_load_relaxed(&w->peers->slot[slot].policy) != XR_POLICY_LOSSY) {
		if (w->stop_clock >= 0)
			stop_over(w, now); /* a lossless reader's stop: nobody's */
		return;
	}
	c = clock_of(w, info->uid, now);
	timeout = w->lease_timeout_ns ? timeout_for(w, info->uid, now) : UINT64_MAX;
	bool strike = true;
	if (own && own < timeout) {
		timeout = own;
		strike = false;
	}
	if (w->policy == XR_POLICY_LOSSY) {
		/* This look is a record dropped (xr_writer_reserve). */
		if ((int64_t)(c->drops2 - (w->frames - c->w0)) <= 0) {
			c->drops2 = 0;
			c->w0 = w->frames;
			c->since = now;
		}
		c->drops2 += 2;
		if (now - c->since >= timeout)
			evict_for_lease(w, slot, info->uid, now,
					strike && c != &w->lc[XR_LEASE_CLOCKS]);
		return;
	}
	if (w->stop_clock != (int)(c - w->lc)) {
		if (w->stop_clock >= 0)
			stop_over(w, now);
		uint64_t free_ns = now - c->end;
		c->bucket = c->bucket > free_ns ? c->bucket - free_ns : 0;
		w->stop_clock = (int)(c - w->lc);
		w->stop_start = now;
	}
	if (c->bucket + (now - w->stop_start) >= timeout) {
		stop_over(w, now);
		evict_for_lease(w, slot, info->uid, now, strike && c != &w->lc[XR_LEASE_CLOCKS]);
	}
}

/*
 * Tries to make [head, head + size) writable: advances tail (W2), scans the
 * leases (W3), sets limit. Returns 0, or -EAGAIN when a lease is in the way
 * (w->blocker names its slot).
 */
static int make_room(struct xr_writer *w, uint64_t size)
{
	uint64_t need = w->head + size - w->cap; /* tail must reach this */
	uint64_t goal, t = w->tail, worst;
	int blocker;

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

	worst = scan_leases(w, true, &blocker);
	/* Room up to min(tail, oldest lease) + cap. */
	uint64_t floor = w->head - worst;
	if ((int64_t)(w->tail - floor) < 0)
		floor = w->tail;
	w->limit = floor + w->cap;
	w->blocker = blocker;
	if (w->head + size <= w->limit) {
		if (w->stop_clock >= 0)
			stop_over(w, xr__now_ns());
		return 0;
	}
	if (blocker >= 0)
		check_stall(w, (uint32_t)blocker);
	return -EAGAIN;
}

/* Counts the stop's time up to now in wait_ns. */
static void account_stop(struct xr_writer *w)
{
	uint64_t now = xr__now_ns();

	xr_counter_add(&w->rd->wait_ns, now - w->stop_acct);
	w->stop_acct = now;
}

/* The stop for readers ends (the writer goes on, whether it waited until
 * then or its caller retried the reserve): the ring is no longer blocked. */
static void end_stop(struct xr_writer *w)
{
	account_stop(w);
	xr__wake_blocked(w, false);
	w->stop_ns = 0;
}

/* The frame's header at head; its payload is the caller's to fill. */
static inline int put_frame(xr_writer *w, uint32_t len, uint64_t size, void **payload)
{
	struct xr_frame_rw *f = frame_at(w, w->head);

	f->size = (uint32_t)size;
	f->len = len;
	f->seq = w->seq;
	w->reserved = (uint32_t)size;
	*payload = (uint8_t *)f + XR_FRAME_HDR;
	return 0;
}

/* xr_writer_reserve()'s rare cases, out of line and reached by a tail call:
 * a paused writer, a ring without room for the frame, a stop that ends.
 * Inlined, or called with anything to do after it, they cost the common
 * case a prologue and an epilogue of pushes and pops, a third of its
 * instructions (perf/icount writer). */
__attribute__((noinline)) static int reserve_slow(xr_writer *w, uint32_t len, uint64_t size,
						  void **payload)
{
	if (w->paused) {
		xr_writer_publish(w);
		return -EAGAIN;
	}
	if (w->head + size > w->limit && make_room(w, size) < 0) {
		if (w->policy == XR_POLICY_LOSSLESS)
			return -EAGAIN;
		/* Lossy: never wait. The record is lost to every reader; the seq
		 * gap tells them so. */
		w->seq++;
		xr_counter_add(&w->rd->lease_stalls, 1);
		return XR_EDROPPED;
	}
	/* Room after a wait that timed out or was cancelled, found by the
	 * caller's retry: the stop is over. */
	if (w->stop_ns)
		end_stop(w);
	return put_frame(w, len, size, payload);
}

int xr_writer_reserve(xr_writer *w, uint32_t len, void **payload)
{
	uint64_t size = xr__frame_size(len, w->align);

	if (size > w->max_frame)
		return -EMSGSIZE;
	if (w->record_len && len != w->record_len)
		return -EINVAL;
	/* One branch for the three rare cases (bitwise: no early outs). */
	if (__builtin_expect(w->paused | (w->head + size > w->limit) | (w->stop_ns != 0), 0))
		return reserve_slow(w, len, size, payload);
	return put_frame(w, len, size, payload);
}

void xr_writer_commit(xr_writer *w)
{
	w->head += w->reserved;
	w->records++;
	w->frames++;
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

struct xr_shard_stats *xr__writer_shard_stats(struct xr_writer *w)
{
	return &w->arena->hdr->shards[w->ring];
}

struct xr_game_stats *xr__writer_game_stats(struct xr_writer *w)
{
	return &w->arena->hdr->games[w->ring];
}

uint64_t xr_writer_next_seq(const xr_writer *w)
{
	return w->seq;
}

int xr_writer_set_watermarks(xr_writer *w, double high, double low)
{
	if (!w || high < 0 || high > 1 || low < 0 || (high > 0 && low >= high))
		return -EINVAL;
	if (w->policy != XR_POLICY_LOSSLESS)
		high = low = 0; /* a lossy writer never waits */
	w->wm.high = (uint64_t)(high * (double)w->cap);
	w->wm.low = (uint64_t)(low * (double)w->cap);
	if (!w->wm.high) {
		w->paused = false;
		if (w->stop_clock >= 0) /* the pause ends here: as in may_go_on */
			stop_over(w, xr__now_ns());
	}
	return 0;
}

int xr_writer_set_lease_timeout(xr_writer *w, uint64_t timeout_ns)
{
	if (!w)
		return -EINVAL;
	/* Under 1 ms, timeout >> 10 (strikes) would be 0; past 2^50, 4
	 * timeouts (a quiet spell) could wrap. */
	if (timeout_ns && timeout_ns < 1000000)
		timeout_ns = 1000000;
	if (timeout_ns > 1ull << 50)
		timeout_ns = 1ull << 50;
	w->lease_timeout_ns = timeout_ns;
	/* Start the counts afresh: while the timeout was 0 nothing was
	 * counted, and stale state must not pass for blocked time. */
	memset(w->lc, 0, sizeof(w->lc));
	memset(w->strikes, 0, sizeof(w->strikes));
	w->stop_clock = -1;
	return 0;
}

void xr_writer_cancel(xr_writer *w)
{
	xr_store_release(&w->cancel, 1);
}

/* Whether the writer may go on: not paused (a scan under the low
 * watermark ends a pause) and room for size. A pause is a wait on the
 * worst lease like a full ring is, and is timed the same way (check_stall),
 * or a lossy reader holding a batch would pause a lossless stream for as
 * long as it liked. */
static bool may_go_on(struct xr_writer *w, uint64_t size)
{
	int blocker;

	if (w->paused) {
		uint64_t worst = scan_leases(w, false, &blocker);
		/* Under low; or nothing unread at all, which a low watermark
		 * of 0 could otherwise never see below it. */
		if (worst < w->wm.low || worst == 0) {
			w->paused = false;
			if (w->stop_clock >= 0) /* as make_room finding room */
				stop_over(w, xr__now_ns());
		} else if (blocker >= 0) {
			check_stall(w, (uint32_t)blocker);
		}
	}
	if (w->paused)
		return false;
	return w->head + size <= w->limit || make_room(w, size) == 0;
}

/* Where every lossless lease must be for a stop to end (blocked_need):
 * past head - low (a pause ends below the low watermark, or at nothing
 * unread), or at head + size - cap (the room make_room looks for); never
 * past head. The head does not move while stopped. Readers load it after
 * blocked, whose seq_cst store (a release) publishes it. */
static uint64_t stop_need(const struct xr_writer *w, uint64_t size)
{
	uint64_t need = w->paused ? w->head - w->wm.low + 1 : w->head + size - w->cap;

	return (int64_t)(need - w->head) > 0 ? w->head : need;
}

int xr_writer_wait(xr_writer *w, uint32_t len, int64_t timeout_ns)
{
	uint64_t size = xr__frame_size(len, w->align);
	uint64_t start;
	struct xr_backoff b;
	int rc = 0;

	if (size > w->max_frame)
		return -EMSGSIZE;
	if (w->policy == XR_POLICY_LOSSY)
		return 0; /* a lossy writer never waits: reserve will drop */
	xr_writer_publish(w);
	if (may_go_on(w, size)) {
		if (w->stop_ns)
			end_stop(w);
		return 0;
	}
	/* A stop: counted once when it starts (visible at once to `xring
	 * info`), however many waits it takes; readers hand out partial
	 * batches while it lasts (shm/wake.c). */
	start = xr__now_ns();
	if (!w->stop_ns) {
		w->stop_ns = w->stop_acct = start;
		xr_counter_add(&w->rd->full_waits, 1);
		xr_store_relaxed(&w->rd->blocked_need, stop_need(w, size));
		xr__wake_blocked(w, true);
	}
	xr__backoff_init(&b);
	for (;;) {
		if (xr_atomic_xchg(&w->cancel, 0)) {
			rc = -EINTR;
			break;
		}
		if (xr__backoff_wait(&b) == -EINTR) {
			rc = -EINTR;
			break;
		}
		if (may_go_on(w, size))
			break;
		/* The stop changed kind (a pause over, the ring still full)
		 * or this wait asks for more room than the last: readers
		 * must see where the leases must be now, and a sleeper that
		 * alone holds the writer must be woken to learn it. */
		uint64_t need = stop_need(w, size);
		if (need != xr_load_relaxed(&w->rd->blocked_need)) {
			xr_store_relaxed(&w->rd->blocked_need, need);
			xr__wake_blocked(w, true);
		}
		if (timeout_ns >= 0 && xr__now_ns() - start >= (uint64_t)timeout_ns) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	if (rc == 0)
		end_stop(w);
	else
		account_stop(w);
	return rc;
}
