/* SPDX-License-Identifier: MIT */
#ifndef XR_UTIL_CLOCK_H
#define XR_UTIL_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t xr__now_ns(void);
/* CLOCK_REALTIME in nanoseconds. */
uint64_t xr__wall_ns(void);
/* Sleeps ns nanoseconds. Returns 0, or -EINTR when a signal handler ran
 * (restarting is the caller's business: it may be a SIGTERM to act on). */
int xr__sleep_ns(uint64_t ns);

/*
 * Backoff for waits that have no wakeup channel yet: spin with pause for a
 * few microseconds (latency), then yield, then sleep in growing steps up to
 * a cap (CPU). Reset when the awaited thing happens.
 */
struct xr_backoff {
	uint32_t round;
	uint64_t sleep_ns;
};

void xr__backoff_init(struct xr_backoff *b);
/* One step of the backoff: 0, or -EINTR when a signal handler ran during
 * its sleep. */
int xr__backoff_wait(struct xr_backoff *b);

#endif
