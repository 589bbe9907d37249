/* SPDX-License-Identifier: MIT */
#ifndef XR_SHM_WAKE_H
#define XR_SHM_WAKE_H

/*
 * Waking sleeping readers: the writer's half of the sleep/wake protocol (the
 * reader's half is in client/reader.c; both are in docs/wakeups.md). The
 * table is filled by shm/peers.c when a slot is activated and emptied when
 * it is released; every writer of the arena reads it after each publish.
 * A wake target is a socket the engine made or accepted itself, sent a few
 * bytes with MSG_DONTWAIT: the engine never writes to a descriptor a peer
 * handed it, and no send can block.
 */

#include <stdbool.h>
#include <stdint.h>

#include "record/filter.h"
#include "shm/layout.h"

struct xr_writer;
struct xr_arena;

#define XR_WAKE_MSG_MAX 32

struct xr_wake_sub {
	_Atomic uint32_t live;  /* fd may be sent on */
	int fd;                 /* not owned: its owner removes the sub first */
	uint32_t msg_len;
	uint8_t msg[XR_WAKE_MSG_MAX];
	struct xr_filt filter;
};

struct xr_wake {
	uint32_t n;             /* = max_readers */
	_Atomic uint64_t live_mask[XR_MAX_READERS_LIMIT / 64];
	struct xr_wake_sub subs[];
};

/* A writer's memory of one sleeping reader: how far it has counted. */
struct xr_wake_memo {
	uint32_t gen;           /* the sleep it belongs to */
	uint32_t need;          /* records still wanted */
	uint64_t pos;           /* counted up to here: always a head this writer
				 * published, never a position a reader wrote */
};

/* Gives the arena (owner) a wake table, and each of its writers the memory
 * it needs. At creation, before the writers start. 0 or -ENOMEM. */
int xr__wake_create(struct xr_arena *a);
void xr__wake_destroy(struct xr_arena *a);

/* shm/peers.c: slot starts / stops being woken through fd. After remove
 * returns, no writer starts a send on fd; those under way end with their
 * section (shm/peers.c waits them out before the fd may be closed). */
void xr__wake_add(struct xr_wake *wk, uint32_t slot, int fd, const void *msg, uint32_t len,
		  const struct xr_filt *f);
void xr__wake_remove(struct xr_wake *wk, uint32_t slot);

/* Writer: after a publish, wakes each sleeping reader for which this ring
 * now holds the batch it waits for. Called by xr_writer_publish(). Its work
 * is bounded by what this writer published, whatever readers wrote: frames
 * of this publish times the sleeping filtered readers, plus one look at
 * each sleeping reader. */
void xr__wake_check(struct xr_writer *w);

/* Writer: the ring is blocked (on = true) by its readers, or no longer.
 * While blocked, readers hand out what they have rather than wait for
 * min records, and this wakes those asleep, so that a reader whose batch
 * cannot fill (a sparse filter holding the ring) releases it. */
void xr__wake_blocked(struct xr_writer *w, bool on);

/* Writer: wakes every sleeping reader, whatever it waits for (the ring's
 * producer ended: what the ring has is all there is for now). */
void xr__wake_all(struct xr_writer *w);

/* Wakes slot whatever it waits for (eviction, shutdown), if it sleeps.
 * Inside a section of shm/peers.c (xr__peers_enter). */
void xr__wake_kick(struct xr_arena *a, uint32_t slot);

#endif
