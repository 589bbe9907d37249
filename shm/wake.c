/* SPDX-License-Identifier: MIT */
/*
 * The writer's half of sleep/wake. The protocol, with the reader's half
 * (client/reader.c, go_to_sleep and sleep_until_woken):
 *
 *   reader                                 writer (each ring's)
 *   RS0 drain its control socket of wakes  W1  store_sc(head)  (publish)
 *   RS1 page.cursor.wake_* = what it       WK2 load_sc(page.sleep_gen)
 *       needs per ring (relaxed)               if g != 0 and this ring has
 *   RS2 store_sc(page.sleep_gen, g)            the batch: CAS(g -> 0), and
 *   RS4 load_sc(head) of every ring; if        if won, send a WAKE on the
 *       any moved since its walk: cancel       reader's connection
 *   RS5 poll(control socket, max_wait)
 *   RS6 exchange(page.sleep_gen, 0): 0 means a writer woke it
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
 * WHAT A WAKE COSTS THE WRITER. A sleeping reader says what it waits for:
 * wake_need more records (that pass its filter) after wake_pos, the head it
 * walked to. All of it is untrusted, and none of it may make a publish cost
 * more than that publish's own records: a writer never walks from a
 * position a reader wrote. Its memory of a sleep (struct xr_wake_memo)
 * holds a head it published itself:
 *   - a new sleep whose wake_pos is this publish's head starts counting
 *     there; any other starts at the previous head: the only heads an
 *     honest reader can have walked to and still be asleep when a writer
 *     sees it (an older head fails its RS4 re-check, and the reader cancels
 *     that sleep itself). A sleep asking for no records asks for one: no
 *     sleep is woken by a publish that brings it nothing;
 *   - counting covers [previous head, this head): the frames this publish
 *     wrote, walked by the sizes the writer wrote, through the reader's
 *     filter (from the engine's copy, compiled at SUBSCRIBE); an
 *     unfiltered reader is counted by the number of frames alone.
 * So a publish costs one load per sleeping reader, plus its own frames per
 * sleeping filtered reader, plus at most one send per sleeping reader it
 * brings records: what an honest reader of that kind costs, whatever any
 * reader writes; a uid's share is bounded by how many readers it may hold
 * (control/limits.c) (test_peer_cannot_stall, wake_work_is_bounded, counts it). What the hints are is
 * read after WK2 (seq_cst, so also acquire: RS1 comes before RS2's
 * release), so they are at least as new as the sleep_gen seen.
 *
 * BLOCKED RINGS. A reader asleep for min records while its lease holds a
 * lossless writer back would wait forever when min records that pass its
 * filter cannot fit in the ring. So a writer that stops for its readers
 * stores blocked = 1 and then loads every sleep_gen, waking the sleepers;
 * a reader loads blocked after RS2 (in RS4), and while it is set hands out
 * a partial batch. All seq_cst: the same store-buffering argument as above,
 * either the reader sees blocked, or the writer sees it asleep. The stop
 * also says where every lossless lease must be for it to end
 * (blocked_need, stored before blocked): a reader whose own held batch is
 * short of it in every ring refuses to wait with no deadline (-EDEADLK,
 * client/reader.c), rather than wait for itself.
 *
 * EVICTIONS. xr__peer_evict stores the slot's state in the reader table
 * (PI1, seq_cst), then kicks the reader (its load of sleep_gen, seq_cst);
 * the reader's RS4 loads that state after RS2. The same pattern once more:
 * either the kick finds the sleep, or the reader sees it is evicted.
 *
 * SENDING. A wake is a send with MSG_DONTWAIT | MSG_NOSIGNAL on a socket
 * the engine accepted itself (the reader's control connection): nothing a
 * peer does to its own end, or leaves unread, can make it block; a full
 * queue (EAGAIN) loses nothing, since the socket is readable already.
 *
 * PAGES AND SOCKETS OUTLIVE EVERY USE. Everything here that touches a
 * reader's page or socket runs inside a section of shm/peers.c
 * (xr__peers_enter/leave: the check and the blocked kick take their own;
 * xr__wake_kick runs inside its caller's). Releasing a slot removes its
 * target (WS1: live = 0, then its bit), then waits out every section under
 * way (GRACE in shm/peers.c), and only then may the page be replaced and the
 * socket closed. Inside its section, a writer loads live (WS2) before it
 * touches the page or the socket; WS1 and WS2 are seq_cst, and so are the
 * section's entry and the release's look at it (PG1, PG2): either the
 * release saw the section and waited for it, or the section saw live == 0.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shm/arena_priv.h"
#include "util/atomics.h"
#include "shm/peers.h"
#include "shm/wake.h"
#include "util/clock.h"

int xr__wake_create(struct xr_arena *a)
{
	uint32_t n = a->lay.max_readers;
	struct xr_wake *wk = calloc(1, sizeof(*wk) + n * sizeof(wk->subs[0]));

	if (!wk)
		return -ENOMEM;
	wk->n = n;
	for (uint32_t i = 0; i < n; i++)
		wk->subs[i].fd = -1;
	a->wake = wk;
	for (uint32_t r = 0; r < a->lay.n_rings; r++) {
		struct xr_writer *w = &a->writers[r];
		w->memo = calloc(n, sizeof(*w->memo));
		if (!w->memo) {
			xr__wake_destroy(a);
			return -ENOMEM;
		}
		w->wake = wk;
	}
	return 0;
}

void xr__wake_destroy(struct xr_arena *a)
{
	for (uint32_t r = 0; a->writers && r < a->lay.n_rings; r++) {
		free(a->writers[r].memo);
		a->writers[r].memo = NULL;
		a->writers[r].wake = NULL;
	}
	free(a->wake);
	a->wake = NULL;
}

void xr__wake_add(struct xr_wake *wk, uint32_t slot, int fd, const void *msg, uint32_t len,
		  const struct xr_filt *f)
{
	struct xr_wake_sub *s = &wk->subs[slot];

	s->fd = fd;
	s->msg_len = len < XR_WAKE_MSG_MAX ? len : XR_WAKE_MSG_MAX;
	memcpy(s->msg, msg, s->msg_len);
	s->filter = *f;
	xr_store_sc(&s->live, 1);
	/* Pairs with the writer's acquire load of the mask: fd, message and
	 * filter are visible to a writer that sees the bit. */
	xr_fetch_or_release(&wk->live_mask[slot / 64], 1ull << (slot % 64));
}

void xr__wake_remove(struct xr_wake *wk, uint32_t slot)
{
	struct xr_wake_sub *s = &wk->subs[slot];

	/* Only the control thread stores live: its own value, relaxed. */
	if (!xr_load_relaxed(&s->live))
		return;
	/* WS1: pairs with WS2. The caller then waits out the sections under
	 * way (xr__peer_release: grace). fd and the rest stay as they are
	 * (a section may still read them) until the next add, which comes
	 * after that wait. */
	xr_store_sc(&s->live, 0);
	xr_fetch_and_relaxed(&wk->live_mask[slot / 64], ~(1ull << (slot % 64)));
}

/* Inside a section (see the top of this file). */
static bool send_wake(struct xr_wake_sub *s)
{
	/* WS2: pairs with WS1. */
	if (!xr_load_sc(&s->live))
		return false;
	return send(s->fd, s->msg, s->msg_len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)s->msg_len;
}

static _Atomic uint32_t *sleep_word(struct xr_peers *t, uint32_t slot)
{
	return &t->slot[slot].page->sleep_gen;
}

void xr__wake_kick(struct xr_arena *a, uint32_t slot)
{
	struct xr_wake_sub *s = &a->wake->subs[slot];

	/* WS2 before the page: a slot being released is not touched. */
	if (!xr_load_sc(&s->live))
		return;
	_Atomic uint32_t *sw = sleep_word(a->peers, slot);
	uint32_t g = xr_load_sc(sw);

	if (g && xr_cas(sw, &g, 0))
		send_wake(s);
}

void xr__wake_blocked(struct xr_writer *w, bool on)
{
	xr_store_sc(&w->rd->blocked, on ? 1u : 0u);
	if (on)
		xr__wake_all(w);
}

void xr__wake_all(struct xr_writer *w)
{
	struct xr_wake *wk = w->wake;

	if (!wk)
		return;
	xr__peers_enter(w->peers, w->ring);
	for (uint32_t word = 0; word * 64 < wk->n; word++) {
		uint64_t bits = xr_load_acquire(&wk->live_mask[word]);
		while (bits) {
			uint32_t slot = word * 64 + (uint32_t)__builtin_ctzll(bits);
			bits &= bits - 1;
			xr__wake_kick(w->arena, slot);
		}
	}
	xr__peers_leave(w->peers, w->ring);
}

/* Counts this publish's frames [prev_published, published) for the sleep m
 * of a reader with filter f. Returns whether its batch is there. */
static bool batch_ready(struct xr_writer *w, struct xr_wake_memo *m, const struct xr_filt *f)
{
	uint64_t p = m->pos, head = w->published;

	if (p == head || m->need == 0)
		return m->need == 0;
	/* Counted up to the previous publish, always; a memo this writer
	 * cannot vouch for counts from there too. */
	p = w->prev_published;
	if (f->all) {
		m->need = w->pub_frames >= m->need ? 0 : m->need - (uint32_t)w->pub_frames;
	} else {
		while (p != head && m->need) {
			const xr_frame *fr = (const xr_frame *)(w->data + (p & w->mask));
			/* The writer's own frames: sizes it wrote itself, in ring
			 * data no reader can write. */
			if (xr__filter_pass_slow(f, (const uint8_t *)(fr + 1), fr->len))
				m->need--;
			p += fr->size;
			w->wake_walked++;
		}
	}
	m->pos = head;
	return m->need == 0;
}

void xr__wake_check(struct xr_writer *w)
{
	struct xr_wake *wk = w->wake;
	struct xr_peers *t = w->peers;
	bool stamped = false;

	xr__peers_enter(t, w->ring);
	for (uint32_t word = 0; word * 64 < wk->n; word++) {
		uint64_t bits = xr_load_acquire(&wk->live_mask[word]);
		while (bits) {
			uint32_t slot = word * 64 + (uint32_t)__builtin_ctzll(bits);
			struct xr_peer_page *pg = t->slot[slot].page;
			struct xr_wake_memo *m = &w->memo[slot];
			bool ready;
			bits &= bits - 1;

			/* WS2 before the page (a stale bit of a slot being
			 * released must not touch it). */
			if (!xr_load_sc(&wk->subs[slot].live))
				continue;
			/* WK2: pairs with RS2; see the top of this file. */
			uint32_t g = xr_load_sc(&pg->sleep_gen);
			if (!g)
				continue;
			if (m->gen != g) {
				const struct xr_cursor *c = &pg->cursors[w->ring];
				uint64_t at = xr_load_relaxed(&c->wake_pos);
				m->gen = g;
				m->need = xr_load_relaxed(&c->wake_need);
				if (!m->need)
					m->need = 1; /* see WHAT A WAKE COSTS */
				/* Counted from the head it says, if that is this
				 * publish's or the last; else from the last. */
				m->pos = at == w->published ? at : w->prev_published;
				ready = batch_ready(w, m, &wk->subs[slot].filter);
			} else {
				ready = batch_ready(w, m, &wk->subs[slot].filter);
			}
			if (!ready || !xr_cas(&pg->sleep_gen, &g, 0))
				continue;
			/* When this publish woke someone: what the reader
			 * measures its wakeup latency from. A clock read per
			 * wakeup, not per publish. */
			if (!stamped) {
				xr_store_relaxed(&w->rd->publish_ns, xr__now_ns());
				stamped = true;
			}
			if (send_wake(&wk->subs[slot]))
				xr_counter_add(&w->rd->wakeups, 1);
		}
	}
	xr__peers_leave(t, w->ring);
}
