/* SPDX-License-Identifier: MIT */
#ifndef XR_SHM_PEERS_H
#define XR_SHM_PEERS_H

/*
 * The engine's table of reader slots: who holds each slot, in the engine's
 * private memory, and the peer page each holder may write. The state
 * machine and its ordering argument open shm/peers.c, the only file that
 * changes a slot's state, its reader-table entry, or which page backs it.
 */

#include <stdbool.h>
#include <stdint.h>

#include "record/filter.h"
#include "shm/layout.h"

struct xr_arena;

/* Who holds a slot. A slot is released by whoever manages its owner's life
 * (the control server for a connection), and only then. The next issues
 * add owner kinds (an agent holding seats), not new lifecycles. */
enum xr_owner_kind {
	XR_OWNER_NONE = 0,
	XR_OWNER_CONN = 1,  /* a control connection: ends at DETACH or hangup */
};

struct xr_owner {
	uint32_t kind;      /* enum xr_owner_kind */
	uint32_t pad_;
	uint64_t id;        /* unique for the engine's life, never reused */
};

/* One slot as the engine sees it. state is the only one that counts
 * (the reader table's copy is for the reader and for tools). */
struct xr_peer {
	_Atomic uint32_t state;       /* XR_SLOT_* */
	_Atomic uint32_t stream;      /* set at claim, before PS1; relaxed, because a
				       * writer that saw an old ACTIVE may load it
				       * while the next claim stores it */
	_Atomic uint32_t policy;
	_Atomic uint64_t lease_timeout_ns; /* set at claim as stream is; 0: the writer's */
	int page_fd;                  /* control thread only: the holder's memfd; -1 */
	struct xr_owner owner;        /* control thread only */
	struct xr_peer_page *page;    /* fixed address for the arena's life */
};

/* Who reads peer pages outside the control thread: each ring's writer (by
 * ring index), the host's housekeeping, and xr_arena_close(). Each has its
 * own section counter (xr__peers_enter/leave). */
enum {
	XR_PAGES_HOUSEKEEPING = XR_MAX_RINGS,
	XR_PAGES_CLOSE = XR_MAX_RINGS + 1,
	XR_PAGES_READERS = XR_MAX_RINGS + 2,
};

struct xr_peers {
	uint32_t n;                   /* = max_readers */
	uint8_t *base;                /* n pages of address space */
	uint64_t next_owner;          /* control thread only */
	/* Odd while its owner reads pages (see GRACE in shm/peers.c); one
	 * cache line each, written only by that owner. */
	struct {
		_Atomic uint64_t epoch;
		uint8_t pad_[56];
	} reading[XR_PAGES_READERS];
	struct xr_peer slot[];
};

/* What a claim asks for. */
struct xr_peer_claim {
	struct xr_owner owner;
	uint32_t stream, policy;
	uint32_t uid;
	int32_t pid;                  /* SO_PEERCRED: shown, never trusted */
	const char *label;
	uint64_t lease_timeout_ns;    /* lossy: evicted after holding a writer up this
				       * long, if shorter than the writer's; 0: none */
};

/* Arena creation/destruction: the table, and address space for its pages.
 * 0 or -ENOMEM. */
int xr__peers_create(struct xr_arena *a);
void xr__peers_destroy(struct xr_arena *a);

/* A new owner id, never given out before in this arena. Control thread. */
uint64_t xr__peers_new_owner(struct xr_arena *a);

/*
 * Claims a free slot for c (FREE -> CLAIMED), backs it with page `slot` of
 * a new memfd made for this claim alone (sealed; initialised: no leases,
 * not asleep) and fills its reader-table entry. *page_fd is that memfd, to
 * hand to the holder (who maps page `slot` of it) and then close. Returns
 * the slot, -EBUSY (none free), or -errno. Control thread.
 */
int xr__peer_claim(struct xr_arena *a, const struct xr_peer_claim *c, int *page_fd);

/* CLAIMED -> ACTIVE: the writers honour its leases from now on. With
 * wake_fd >= 0 (an engine-owned socket, sent msg[0..len) with MSG_DONTWAIT
 * when the slot's batch is ready) and filter f, writers wake it. The table
 * does not own wake_fd; release stops every use of it before returning. */
void xr__peer_activate(struct xr_arena *a, uint32_t slot, int wake_fd, const void *msg,
		       uint32_t len, const struct xr_filt *f);

/* Any state -> FREE, by the owner's manager: leases forgotten, wakeups
 * stopped (no writer touches wake_fd after this returns), the page replaced
 * by zeros (its old holder keeps writing into memory nobody reads). */
void xr__peer_release(struct xr_arena *a, uint32_t slot);

/* Releases every slot held by owner; returns how many. */
uint32_t xr__peers_release_owner(struct xr_arena *a, const struct xr_owner *owner);

/* ACTIVE -> EVICTED, by a writer that found a lease no reader can hold.
 * Returns whether this call evicted it. */
bool xr__peer_evict(struct xr_arena *a, uint32_t slot, uint32_t reason);

/* A section in which `who` (a ring index, XR_PAGES_HOUSEKEEPING or
 * XR_PAGES_CLOSE: one thread at a time each) may read any slot's page: no
 * release replaces a page under it. Short, never blocking. */
void xr__peers_enter(struct xr_peers *t, uint32_t who);
void xr__peers_leave(struct xr_peers *t, uint32_t who);

/* Copies every active reader's progress from its page into the reader
 * table, for tools. Housekeeping. */
void xr__peers_mirror(struct xr_arena *a);

/* Slots not FREE (tests, destroy). */
uint32_t xr__peers_taken(const struct xr_arena *a);

#endif
