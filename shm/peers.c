/* SPDX-License-Identifier: MIT */
/*
 * Reader slots: the one state machine every reader's life goes through, and
 * the only file that changes a slot's state, its reader-table entry, or the
 * page behind it.
 *
 * WHERE THE STATE LIVES. A slot is three things:
 *   - struct xr_peer, in the engine's private memory: the state that counts,
 *     the stream and policy the writers go by, and the owner (who may
 *     release it). No other process can write it.
 *   - struct xr_reader_info, in the arena's reader table: a copy of the
 *     state and the slot's identity, for its reader (to learn it was
 *     evicted) and for tools. Peers map it read-only.
 *   - struct xr_peer_page, page `slot` of a memfd the engine makes for this
 *     claim alone (max_readers pages long, all but that one a hole; sealed
 *     against shrinking and growing): its cursors, leases and sleep word.
 *     The only memory a peer may write, untrusted input to the writers, out
 *     of reach of every other peer, of its own uid too. At release the page
 *     is punched out of the memfd: a peer that keeps its mapping after its
 *     slot is gone keeps a hole (what it then writes there is memory of its
 *     own making, charged to it), not a page the engine touched; what the
 *     engine holds for its churn is nothing. The engine maps each slot's
 *     page at a fixed address for the arena's life and swaps what backs it
 *     with MAP_FIXED, so a writer that loads through a slot's page pointer
 *     always reads mapped memory: the current holder's page, or zeros once
 *     it is gone.
 *
 * TRANSITIONS (private state; the reader table follows each one):
 *   FREE -> CLAIMED       claim, control thread: a new memfd, the identity
 *   CLAIMED -> ACTIVE     activate, control thread: leases count from now
 *   ACTIVE -> EVICTED     evict, a writer: a lease no reader can hold
 *   * -> RELEASING -> FREE  release, control thread (the owner's manager),
 *                         at DETACH or when the owner's connection ends
 * Only the control thread claims, activates and releases; writers only
 * evict. So the one race is evict against release, and both are CASes on
 * the private state: whichever comes second sees the other's state.
 *
 * ORDERING. Writers honour a lease only if the slot's private state is
 * ACTIVE and its stream is theirs (W3a in shm/ring_writer.c):
 *   PS1  store_release(state, ACTIVE) after stream, policy and the page
 *        are set; pairs with W3a's load_acquire(state), so a writer that
 *        sees ACTIVE sees them.
 *   PS2  store_release(state, RELEASING) before the wake target is removed
 *        and the page replaced; a writer that loaded ACTIVE before it may
 *        still load the old page's lease once: that lease was honoured a
 *        moment ago anyway, and at its next scan it sees the release.
 *   PS3  CAS(state, ACTIVE -> EVICTED) by a writer, and the release's
 *        CAS(state, any -> RELEASING): acq_rel, so the two are ordered.
 * The reader loads its reader-table state with acquire (RI1, client/
 * reader.c); the table's copy is stored with release after the private
 * state (PI1), so a reader that sees EVICTED sees its evict_reason.
 *   PI2  a release fence after PI1 at an eviction: the evicting writer's
 *        later stores into the ring (overwriting what the evicted reader
 *        may be walking; it honours the lease no more) are ordered after
 *        PI1. A reader that walked, fenced with acquire and then loaded its
 *        state (RI2) sees EVICTED if its walk read any byte stored after
 *        the fence, and does not believe the walk. (The ring bytes are
 *        plain memory, as in a seqlock's data: the fence pair is the
 *        ordering in practice, and what the ring's own stores rely on.)
 *
 * GRACE. Releasing a slot replaces its page with zeros (and punches the
 * old one out), and nothing may be reading the old one then: not a
 * writer between its load of ACTIVE and its load of the lease, not a wake
 * check, not housekeeping. Every thread but the control thread reads pages
 * only inside a section (xr__peers_enter/leave), which makes its own
 * counter odd; a release, after PS2, waits for every counter it finds odd
 * to move on (a grace period, as in RCU):
 *   PG1  enter: fetch_add_sc(epoch) (odd), then the section's loads of
 *        private state are seq_cst
 *   PG2  release: store_sc(state, RELEASING) (PS2), then load_sc(epoch)
 * PG1 against PG2 is the store-buffering pattern: either the release sees
 * the section (and waits for it), or the section sees RELEASING (and skips
 * the slot). The wait ends on leave's release increment (PG3), which the
 * release loads with acquire: every load of the section happens before the
 * page is replaced. Sections are a scan of the slots, never blocking, so
 * the wait is as long as a scan (or a preemption).
 * A reader stores its first lease only after SUBSCRIBED reached it, which
 * the control thread sends after PS1: the socket orders the two, so a
 * writer that can see the lease can see ACTIVE (docs/ring-protocol.md).
 *
 * IDENTITY. Owners are control connections, named by an id the engine
 * gives out and never reuses; nothing here is keyed by a pid, and nothing a
 * peer writes decides who holds a slot. A peer's pid (SO_PEERCRED; 0 from
 * another PID namespace) is only shown.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shm/arena_priv.h"
#include "util/atomics.h"
#include "shm/peers.h"
#include "shm/wake.h"
#include "util/clock.h"

/* Private to this file: a release under way. */
#define XR_SLOT_RELEASING 4u

static struct xr_peer_page *page_at(const struct xr_peers *t, uint32_t i)
{
	return (struct xr_peer_page *)(t->base + (uint64_t)i * XR_PEER_PAGE_SIZE);
}

/* Backs slot i's address with zeros: what a slot without a holder reads. */
static int zero_page(struct xr_peers *t, uint32_t i)
{
	void *p = mmap(page_at(t, i), XR_PEER_PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

	return p == MAP_FAILED ? -errno : 0;
}

int xr__peers_create(struct xr_arena *a)
{
	uint32_t n = a->lay.max_readers;
	struct xr_peers *t = calloc(1, sizeof(*t) + n * sizeof(t->slot[0]));

	if (!t)
		return -ENOMEM;
	t->n = n;
	t->base = mmap(NULL, (size_t)n * XR_PEER_PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->base == MAP_FAILED) {
		free(t);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		t->slot[i].page = page_at(t, i);
		t->slot[i].page_fd = -1;
	}
	a->peers = t;
	return 0;
}

void xr__peers_enter(struct xr_peers *t, uint32_t who)
{
	/* PG1: pairs with PG2. */
	xr_fetch_add_sc(&t->reading[who].epoch, 1);
}

void xr__peers_leave(struct xr_peers *t, uint32_t who)
{
	/* PG3: pairs with the acquire in grace(). */
	xr_fetch_add_release(&t->reading[who].epoch, 1);
}

/* PG2: waits out every section under way (see GRACE). */
static void grace(struct xr_peers *t)
{
	for (uint32_t who = 0; who < XR_PAGES_READERS; who++) {
		uint64_t e = xr_load_sc(&t->reading[who].epoch);
		if (!(e & 1))
			continue;
		while (xr_load_acquire(&t->reading[who].epoch) == e)
			sched_yield();
	}
}

void xr__peers_destroy(struct xr_arena *a)
{
	struct xr_peers *t = a->peers;

	if (!t)
		return;
	munmap(t->base, (size_t)t->n * XR_PEER_PAGE_SIZE);
	for (uint32_t i = 0; i < t->n; i++)
		if (t->slot[i].page_fd >= 0)
			close(t->slot[i].page_fd);
	free(t);
	a->peers = NULL;
}

uint64_t xr__peers_new_owner(struct xr_arena *a)
{
	return ++a->peers->next_owner;
}

/* A histogram a reader wrote, into the table (NULL: zeros). */
static void copy_hist(struct xr_hist *dst, const struct xr_hist *src)
{
	/* Buckets, sum, then count, as xr__hist_publish: a tool reading
	 * meanwhile sees a count no larger than its buckets (shm/hist.h). */
	for (uint32_t b = 0; b < XR_LL_BUCKETS; b++)
		xr_store_relaxed(&dst->b[b], src ? xr_load_relaxed(&src->b[b]) : 0);
	xr_store_relaxed(&dst->sum_ns, src ? xr_load_relaxed(&src->sum_ns) : 0);
	xr_store_relaxed(&dst->count, src ? xr_load_relaxed(&src->count) : 0);
}

/* A reader's own figures (its page, untrusted: numbers to show, copied as
 * they are, never followed), into the table for tools; NULL: zeros. */
static void copy_figs(struct xr_reader_figs *dst, const struct xr_reader_figs *src)
{
	xr_store_relaxed(&dst->batches, src ? xr_load_relaxed(&src->batches) : 0);
	xr_store_relaxed(&dst->sleeps, src ? xr_load_relaxed(&src->sleeps) : 0);
	xr_store_relaxed(&dst->wakeups, src ? xr_load_relaxed(&src->wakeups) : 0);
	xr_store_relaxed(&dst->filtered, src ? xr_load_relaxed(&src->filtered) : 0);
	xr_store_relaxed(&dst->copies, src ? xr_load_relaxed(&src->copies) : 0);
	copy_hist(&dst->age, src ? &src->age : NULL);
	copy_hist(&dst->wake, src ? &src->wake : NULL);
	copy_hist(&dst->fill, src ? &src->fill : NULL);
}

/* Backs slot i with page i of a new memfd of n pages, which its holder can
 * write but neither shrink (the engine's loads would fault) nor grow, and
 * returns a descriptor of it to hand over. Only page i is ever touched; the
 * rest is a hole that costs nothing. */
static int new_page(struct xr_peers *t, uint32_t i, int *fd_out)
{
	int fd = memfd_create("xring-peer", MFD_CLOEXEC | MFD_ALLOW_SEALING), err;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)t->n * XR_PEER_PAGE_SIZE) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0 ||
	    mmap(page_at(t, i), XR_PEER_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 fd, (off_t)i * XR_PEER_PAGE_SIZE) == MAP_FAILED)
		goto fail;
	if ((*fd_out = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		zero_page(t, i);
		goto fail;
	}
	t->slot[i].page_fd = fd;
	/* Nobody reads this slot's page until it is ACTIVE (sections skip it;
	 * its wake target is not live): relaxed. */
	struct xr_peer_page *pg = page_at(t, i);
	xr_store_relaxed(&pg->sleep_gen, 0);
	for (uint32_t r = 0; r < XR_MAX_RINGS; r++)
		xr_store_relaxed(&pg->cursors[r].lease, XR_NO_LEASE);
	return 0;
fail:
	err = -errno;
	close(fd);
	return err;
}

int xr__peer_claim(struct xr_arena *a, const struct xr_peer_claim *c, int *page_fd)
{
	struct xr_peers *t = a->peers;

	for (uint32_t i = 0; i < t->n; i++) {
		struct xr_peer *p = &t->slot[i];
		struct xr_reader_info *info = &a->infos[i];

		/* The control thread is the only one that leaves FREE. */
		if (xr_load_acquire(&p->state) != XR_SLOT_FREE)
			continue;
		int rc = new_page(t, i, page_fd);
		if (rc < 0)
			return rc;
		xr_store_relaxed(&p->stream, c->stream);
		xr_store_relaxed(&p->policy, c->policy);
		xr_store_relaxed(&p->lease_timeout_ns, c->lease_timeout_ns);
		p->owner = c->owner;
		/* The reader-table entry is FREE: nobody reads these fields
		 * until the release below publishes them (PI1). */
		info->stream = c->stream;
		info->policy = c->policy;
		info->pid = c->pid;
		info->uid = c->uid;
		info->gen++;
		info->attach_ns = xr__wall_ns();
		xr__label_put(info->label, c->label, sizeof(info->label));
		xr_store_relaxed(&info->evict_reason, XR_EVICT_NONE);
		xr_store_relaxed(&info->group_member, 0);
		/* The last reader's figures go with its slot (zero is what a
		 * new page holds, so relaxed stores, like the mirror's). */
		copy_figs(&a->figs[i], NULL);
		for (uint32_t r = 0; r < a->lay.n_rings; r++) {
			struct xr_cursor_view *v = xr__view(a, r, i);
			xr_store_relaxed(&v->read, 0);
			xr_store_relaxed(&v->dropped, 0);
			xr_store_relaxed(&v->pending, 0);
			xr_store_relaxed(&v->lag, 0);
		}
		xr_store_release(&p->state, XR_SLOT_CLAIMED);
		/* PI1: the entry's fields before its state. */
		xr_store_release(&info->state, XR_SLOT_CLAIMED);
		return (int)i;
	}
	return -EBUSY;
}

void xr__peer_activate(struct xr_arena *a, uint32_t slot, int wake_fd, const void *msg,
		       uint32_t len, const struct xr_filt *f)
{
	struct xr_peer *p = &a->peers->slot[slot];

	if (wake_fd >= 0)
		xr__wake_add(a->wake, slot, wake_fd, msg, len, f);
	/* PS1: pairs with W3a; stream, policy and page are set. */
	xr_store_release(&p->state, XR_SLOT_ACTIVE);
	xr_store_release(&a->infos[slot].state, XR_SLOT_ACTIVE); /* PI1 */
}

void xr__peer_release(struct xr_arena *a, uint32_t slot)
{
	struct xr_peers *t = a->peers;
	struct xr_peer *p = &t->slot[slot];
	uint32_t st = xr_load_acquire(&p->state);

	if (st == XR_SLOT_FREE)
		return;
	/* PS2/PS3: a writer may be evicting it at this moment. (The CAS is
	 * seq_cst on success, as PG2 wants.) */
	while (!xr_cas_sc(&p->state, &st, XR_SLOT_RELEASING))
		;
	/* From here no new section honours it or starts waking it; then wait
	 * out those under way (bounded: a scan, a non-blocking send). */
	xr__wake_remove(a->wake, slot);
	grace(t);
	/* The engine's address now reads zeros, and the page is punched out
	 * of the memfd: its holder's mapping, if it keeps one, reads zeros too
	 * and holds nothing of the engine's. Should the mmap fail (no memory
	 * for one page), the old page stays mapped here: harmless, nobody
	 * honours a non-ACTIVE slot, and the next claim replaces it. */
	zero_page(t, slot);
	if (p->page_fd >= 0) {
		fallocate(p->page_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)slot * XR_PEER_PAGE_SIZE, XR_PEER_PAGE_SIZE);
		close(p->page_fd); /* made by the engine: a memfd's release waits on nobody */
		p->page_fd = -1;
	}
	p->owner = (struct xr_owner){0};
	xr_store_release(&a->infos[slot].state, XR_SLOT_FREE);
	xr_store_release(&p->state, XR_SLOT_FREE);
}

uint32_t xr__peers_release_owner(struct xr_arena *a, const struct xr_owner *owner)
{
	struct xr_peers *t = a->peers;
	uint32_t n = 0;

	for (uint32_t i = 0; i < t->n; i++) {
		const struct xr_owner *o = &t->slot[i].owner;
		if (xr_load_acquire(&t->slot[i].state) != XR_SLOT_FREE && o->kind == owner->kind &&
		    o->id == owner->id) {
			xr__peer_release(a, i);
			n++;
		}
	}
	return n;
}

bool xr__peer_evict(struct xr_arena *a, uint32_t slot, uint32_t reason)
{
	struct xr_peer *p = &a->peers->slot[slot];
	uint32_t st = XR_SLOT_ACTIVE;

	/* PS3 */
	if (!xr_cas(&p->state, &st, XR_SLOT_EVICTED))
		return false;
	xr_store_relaxed(&a->infos[slot].evict_reason, reason);
	/* PI1, seq_cst: with the kick's load of the sleep word (WK1) after
	 * it, one side of a store-buffering pair whose other side is the
	 * reader's RS2 then RS4s (client/reader.c). */
	xr_store_sc(&a->infos[slot].state, XR_SLOT_EVICTED);
	xr_fence_release(); /* PI2: pairs with RI2 (client/reader.c) */
	/* A sleeping reader learns it at once, not at its next re-check. */
	xr__wake_kick(a, slot);
	return true;
}

void xr__peers_mirror(struct xr_arena *a)
{
	struct xr_peers *t = a->peers;

	xr__peers_enter(t, XR_PAGES_HOUSEKEEPING);
	for (uint32_t i = 0; i < t->n; i++) {
		const struct xr_peer *p = &t->slot[i];
		uint32_t st = xr_load_sc(&p->state); /* PG1 */

		if (st != XR_SLOT_ACTIVE && st != XR_SLOT_EVICTED)
			continue;
		const struct xr_stream_desc *sd = &a->lay.streams[xr_load_relaxed(&p->stream)];
		for (uint32_t r = sd->first_ring; r < sd->first_ring + sd->n_rings; r++) {
			const struct xr_cursor *c = &p->page->cursors[r];
			const struct xr_ring_desc *rd = &a->hdr->rings[r];
			struct xr_cursor_view *v = xr__view(a, r, i);
			uint64_t cap = a->lay.rings[r].capacity;
			uint64_t head = xr_load_acquire(&rd->head), wr = xr_load_acquire(&rd->written);
			uint64_t pos = xr_load_relaxed(&c->pos), next = xr_load_relaxed(&c->next_seq);
			/* What the reader wrote, clamped to what can be. */
			xr_store_relaxed(&v->read, xr_load_relaxed(&c->read));
			xr_store_relaxed(&v->dropped, xr_load_relaxed(&c->dropped));
			xr_store_relaxed(&v->pending, wr >= next ? wr - next : 0);
			xr_store_relaxed(&v->lag, head - pos <= cap ? head - pos : cap);
		}
		copy_figs(&a->figs[i], &p->page->figs);
	}
	xr__peers_leave(t, XR_PAGES_HOUSEKEEPING);
}

uint32_t xr__peers_taken(const struct xr_arena *a)
{
	uint32_t n = 0;

	for (uint32_t i = 0; a->peers && i < a->peers->n; i++)
		n += xr_load_acquire(&a->peers->slot[i].state) != XR_SLOT_FREE;
	return n;
}
