/* SPDX-License-Identifier: MIT */
/*
 * The writer's half of sleep/wake. The protocol, with the reader's half
 * (client/reader.c, sleep_on_eventfd):
 *
 *   reader                                 writer (each ring's)
 *   RS0 drain its eventfd                  W1  store_sc(head)  (publish)
 *   RS1 cursor.wake_* = what it needs      WK2 load_sc(slot.sleep_gen)
 *       per ring (relaxed)                     if g != 0 and this ring has
 *   RS2 store_sc(slot.sleep_gen, g)            the batch: CAS(g -> 0), and
 *   RS4 load_sc(head) of every ring; if        if won, write(eventfd)
 *       any moved since its walk: cancel
 *   RS5 poll(eventfd, control socket, max_wait)
 *   RS6 exchange(slot.sleep_gen, 0): 0 means a writer woke it
 *
 * The race that loses wakeups is a reader deciding to sleep on an old head
 * while the writer publishes and looks at sleep_gen before the reader set
 * it. RS2-RS4 against W1-WK2 is the store-buffering pattern; all four are
 * seq_cst, so they fall in one total order, and whichever store comes first
 * in it is seen by the other side's load: either the reader's RS4 sees the
 * new head (and does not sleep), or the writer's WK2 sees the sleep (and
 * counts the new records for it). (seq_cst accesses rather than fences, so
 * that ThreadSanitizer can check the argument too.) The CAS lets exactly
 * one writer signal one sleep, so a reader whose batch fills in two rings at
 * once is woken once.
 *
 * What a sleeping reader needs (wake_pos, wake_seq, wake_need) is read
 * after WK2 (seq_cst, so also acquire: RS1 comes before RS2's release), so
 * it is at least as new as the sleep_gen seen. The
 * reader can write anything there: values are checked before use, a walk
 * stays within what this writer published, and a bad value only wakes the
 * reader early or late (its max_wait still holds).
 *
 * BLOCKED RINGS. A reader asleep for min records while its lease holds a
 * lossless writer back would wait forever when min records that pass its
 * filter cannot fit in the ring. So a writer that stops for its readers
 * stores blocked = 1 and then loads every sleep_gen, waking the sleepers;
 * a reader loads blocked after RS2 (in RS4), and while it is set hands out
 * a partial batch. All seq_cst: the same store-buffering argument as above,
 * either the reader sees blocked, or the writer sees it asleep.
 *
 * Closing an eventfd a writer may be signalling (the reader left): the
 * control server stores live = 0 and then waits for busy == 0; a writer
 * increments busy, then loads live, and only then writes. Both sides are
 * seq_cst, so a writer that saw live == 1 is counted in busy before the
 * server looks, and the fd is closed only after that writer is done; the fd
 * number cannot be reused under a write.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shm/arena_priv.h"
#include "shm/atomics.h"
#include "shm/wake.h"
#include "util/clock.h"

int xr__wake_attach(struct xr_arena *a)
{
	uint32_t n = a->hdr->max_readers;
	struct xr_wake *wk = calloc(1, sizeof(*wk) + n * sizeof(wk->subs[0]));

	if (!wk)
		return -ENOMEM;
	wk->n = n;
	for (uint32_t i = 0; i < n; i++)
		wk->subs[i].efd = -1;
	for (uint32_t r = 0; r < a->hdr->n_rings; r++) {
		struct xr_writer *w = &a->writers[r];
		w->memo = calloc(n, sizeof(*w->memo));
		if (!w->memo) {
			xr__wake_detach(a);
			free(wk);
			return -ENOMEM;
		}
	}
	for (uint32_t r = 0; r < a->hdr->n_rings; r++)
		a->writers[r].wake = wk;
	a->wake = wk;
	return 0;
}

void xr__wake_detach(struct xr_arena *a)
{
	for (uint32_t r = 0; r < a->hdr->n_rings; r++) {
		free(a->writers[r].memo);
		a->writers[r].memo = NULL;
		a->writers[r].wake = NULL;
	}
	if (a->wake) {
		for (uint32_t i = 0; i < a->wake->n; i++)
			xr__wake_remove(a->wake, i);
		free(a->wake);
		a->wake = NULL;
	}
}

void xr__wake_add(struct xr_wake *wk, uint32_t slot, int efd, const struct xr_filt *f)
{
	struct xr_wake_sub *s = &wk->subs[slot];

	s->efd = efd;
	s->filter = *f;
	xr_store_sc(&s->live, 1);
	/* Pairs with the writer's acquire load of the mask: efd and filter
	 * are visible to a writer that sees the bit. */
	atomic_fetch_or_explicit(&wk->live_mask[slot / 64], 1ull << (slot % 64),
				 memory_order_release);
}

void xr__wake_remove(struct xr_wake *wk, uint32_t slot)
{
	struct xr_wake_sub *s = &wk->subs[slot];

	if (s->efd < 0)
		return;
	atomic_fetch_and_explicit(&wk->live_mask[slot / 64], ~(1ull << (slot % 64)),
				  memory_order_relaxed);
	/* See the top of this file: live = 0, then wait out the writers that
	 * saw live == 1. */
	xr_store_sc(&s->live, 0);
	while (xr_load_sc(&s->busy) != 0)
		sched_yield();
	close(s->efd);
	s->efd = -1;
}

static bool signal_sub(struct xr_wake_sub *s)
{
	bool sent = false;

	atomic_fetch_add_explicit(&s->busy, 1, memory_order_seq_cst);
	if (xr_load_sc(&s->live)) {
		uint64_t one = 1;
		/* EAGAIN (counter full) cannot lose a wakeup: the fd is
		 * readable already. */
		sent = write(s->efd, &one, sizeof(one)) == (ssize_t)sizeof(one);
	}
	atomic_fetch_sub_explicit(&s->busy, 1, memory_order_release);
	return sent;
}

void xr__wake_kick(struct xr_wake *wk, struct xr_reader_slot *s, uint32_t slot)
{
	uint32_t g = xr_load_sc(&s->sleep_gen);

	if (g && xr_cas(&s->sleep_gen, &g, 0))
		signal_sub(&wk->subs[slot]);
}

void xr__wake_blocked(struct xr_writer *w, bool on)
{
	struct xr_wake *wk = w->wake;

	xr_store_sc(&w->rd->blocked, on ? 1u : 0u);
	if (!on || !wk)
		return;
	for (uint32_t word = 0; word * 64 < wk->n; word++) {
		uint64_t bits = xr_load_acquire(&wk->live_mask[word]);
		while (bits) {
			uint32_t slot = word * 64 + (uint32_t)__builtin_ctzll(bits);
			bits &= bits - 1;
			xr__wake_kick(wk, &w->slots[slot], slot);
		}
	}
}

/* Whether ring w now holds the batch the sleep m (of a reader with filter
 * f) waits for. Moves m's count forward. */
static bool batch_ready(struct xr_writer *w, struct xr_wake_memo *m, const struct xr_filt *f)
{
	/* Count the records there (that pass the filter), from where the reader
	 * stopped: frames, not sequence numbers, which records dropped at a
	 * lease stall use up too. Once per record and sleep, remembered in m.
	 * A pos this writer cannot vouch for wakes the reader rather than be
	 * walked. */
	uint64_t p = m->pos, head = w->published;
	if ((int64_t)(head - p) < 0 || head - p > w->cap || (int64_t)(p - w->tail) < 0)
		return true;
	while (p != head && m->need) {
		const xr_frame *fr = (const xr_frame *)(w->data + (p & w->mask));
		uint32_t size = fr->size;
		if (size < XR_FRAME_HDR || size % w->align || size > head - p ||
		    fr->len > size - XR_FRAME_HDR)
			return true; /* not a frame boundary: the reader's pos was wrong */
		if (xr__filter_pass_slow(f, (const uint8_t *)(fr + 1), fr->len))
			m->need--;
		p += size;
	}
	m->pos = p;
	return m->need == 0;
}

void xr__wake_check(struct xr_writer *w)
{
	struct xr_wake *wk = w->wake;
	bool stamped = false;

	for (uint32_t word = 0; word * 64 < wk->n; word++) {
		uint64_t bits = xr_load_acquire(&wk->live_mask[word]);
		while (bits) {
			uint32_t slot = word * 64 + (uint32_t)__builtin_ctzll(bits);
			struct xr_reader_slot *s = &w->slots[slot];
			struct xr_wake_memo *m = &w->memo[slot];
			bits &= bits - 1;

			/* WK2: pairs with RS2; see the top of this file. */
			uint32_t g = xr_load_sc(&s->sleep_gen);
			if (!g)
				continue;
			if (m->gen != g) {
				const struct xr_cursor *c = &w->cursors[slot];
				m->gen = g;
				m->pos = xr_load_relaxed(&c->wake_pos);
				m->seq = xr_load_relaxed(&c->wake_seq);
				m->need = xr_load_relaxed(&c->wake_need);
			}
			if (!batch_ready(w, m, &wk->subs[slot].filter))
				continue;
			if (!xr_cas(&s->sleep_gen, &g, 0))
				continue;
			/* When this publish woke someone: what the reader
			 * measures its wakeup latency from. A clock read per
			 * wakeup, not per publish. */
			if (!stamped) {
				xr_store_relaxed(&w->rd->publish_ns, xr__now_ns());
				stamped = true;
			}
			if (signal_sub(&wk->subs[slot]))
				xr_counter_add(&w->rd->wakeups, 1);
		}
	}
}
