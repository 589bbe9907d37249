/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_TIMER_WHEEL_H
#define XR_ENGINE_TIMER_WHEEL_H

/*
 * A hierarchical timing wheel: O(1) arm, cancel and re-arm, for one thread
 * (a shard) holding up to millions of timers (game turn deadlines,
 * heartbeat and stats ticks). Time is counted in ticks; the caller chooses
 * what a tick is (the engine: --tick-ms, or 1 ms) and drives the wheel with
 * xr_wheel_advance() from its io_uring timeout.
 *
 * Four levels of 256 slots. Level L slot s holds timers due in the tick range
 * that level covers: level 0 one tick per slot (the next 256 ticks), level 1
 * 256 ticks per slot, level 2 65,536, level 3 16,777,216, so the wheel spans
 * 2^32 ticks (49 days at 1 ms); timers further out wait in the last slot of
 * level 3 and are re-filed when it comes round. When level 0 wraps, the next
 * slot of level 1 is cascaded (its timers re-filed, now closer, into lower
 * levels), and so on up: each timer is moved at most once per level.
 *
 * Guarantees: a timer never fires before its expiry tick; timers of one
 * tick fire in the order they were armed; a timer fires in the
 * xr_wheel_advance() call that passes its tick. Cancelling or re-arming from
 * inside a callback (including the firing timer itself) is allowed.
 *
 * Timers are intrusive: the caller embeds struct xr_timer in its own object
 * and owns its memory; the wheel never allocates.
 */

#include <stdbool.h>
#include <stdint.h>

#define XR_WHEEL_LEVELS 4
#define XR_WHEEL_BITS 8
#define XR_WHEEL_SLOTS (1u << XR_WHEEL_BITS)

struct xr_timer;
typedef void (*xr_timer_fn)(struct xr_timer *t, void *ctx);

struct xr_timer {
	struct xr_timer *next, *prev; /* in its slot's list; NULL when idle */
	uint64_t expires;             /* tick */
	xr_timer_fn fn;
	uint16_t slot;                /* level * XR_WHEEL_SLOTS + index, when armed */
	bool armed;
};

struct xr_wheel {
	uint64_t now;                 /* ticks processed so far */
	uint64_t count;               /* armed timers */
	/* Slot lists are circular with a sentinel, so unlinking needs no
	 * knowledge of where the timer is. */
	struct xr_timer slots[XR_WHEEL_LEVELS * XR_WHEEL_SLOTS];
	uint64_t occupied[XR_WHEEL_LEVELS][XR_WHEEL_SLOTS / 64];
};

/* Starts an empty wheel at tick `now`. */
void xr_wheel_init(struct xr_wheel *w, uint64_t now);

/* Initialises a timer (idle) with its callback. */
void xr_timer_init(struct xr_timer *t, xr_timer_fn fn);

/* Arms t to fire at tick `expires` (a tick already passed fires on the next
 * advance). Re-arms if already armed. O(1). */
void xr_wheel_arm(struct xr_wheel *w, struct xr_timer *t, uint64_t expires);

/* Disarms t if armed. O(1). Returns whether it was armed. */
bool xr_wheel_cancel(struct xr_wheel *w, struct xr_timer *t);

/* Processes every tick up to and including `now`, calling the callbacks of
 * the timers that expire, with ctx. Returns how many fired. */
uint64_t xr_wheel_advance(struct xr_wheel *w, uint64_t now, void *ctx);

/* A tick at or before which the next timer fires (exact for timers within
 * level 0's reach, a lower bound otherwise: advancing to it may fire nothing
 * and only cascade), or UINT64_MAX when no timer is armed. What the engine
 * arms its io_uring timeout for. */
uint64_t xr_wheel_next(const struct xr_wheel *w);

#endif
