/* SPDX-License-Identifier: MIT */
#ifndef XR_SHM_WAKE_H
#define XR_SHM_WAKE_H

/*
 * Waking sleeping readers through their eventfds: the writer's half of the
 * sleep/wake protocol (the reader's half is in client/reader.c; both are in
 * docs/wakeups.md). The table of subscriptions is filled by the control
 * server (control/server.c) and read by every writer of the arena after each
 * publish.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "record/filter.h"
#include "shm/layout.h"

struct xr_writer;
struct xr_arena;

struct xr_wake_sub {
	_Atomic uint32_t live;  /* efd may be signalled */
	_Atomic uint32_t busy;  /* writers between deciding to signal and done */
	int efd;
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
	uint64_t pos;           /* counted up to here (filtered readers) */
	uint64_t seq;           /* seq at wake_pos (unfiltered readers) */
};

/* Gives arena a (owner) a wake table, and each of its writers the memory
 * it needs. Call before the writers start. 0 or -ENOMEM. */
int xr__wake_attach(struct xr_arena *a);
void xr__wake_detach(struct xr_arena *a);

/* Control server: slot starts/stops being woken through efd. add takes
 * ownership of efd; remove closes it once no writer can be using it. */
void xr__wake_add(struct xr_wake *wk, uint32_t slot, int efd, const struct xr_filt *f);
void xr__wake_remove(struct xr_wake *wk, uint32_t slot);

/* Writer: after a publish, wakes each sleeping reader for which this ring
 * now holds the batch it waits for. Called by xr_writer_publish(). */
void xr__wake_check(struct xr_writer *w);

/* Writer: the ring is blocked (on = true) by its readers, or no longer.
 * While blocked, readers hand out what they have rather than wait for
 * min records, and this wakes those asleep, so that a reader whose batch
 * cannot fill (a sparse filter holding the ring) releases it. Works with
 * or without a wake table. */
void xr__wake_blocked(struct xr_writer *w, bool on);

/* Wakes slot whatever it waits for (eviction, shutdown), if it sleeps. */
void xr__wake_kick(struct xr_wake *wk, struct xr_reader_slot *s, uint32_t slot);

#endif
