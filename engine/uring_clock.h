/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_URING_CLOCK_H
#define XR_ENGINE_URING_CLOCK_H

/*
 * The engine's sense of time: one io_uring per shard, on which the shard
 * sleeps until its timer wheel's next tick with an absolute CLOCK_MONOTONIC
 * timeout. One timeout in flight per shard, whatever the number of games:
 * no timerfd, no thread and no sleep per game. (Readers are woken by a
 * non-blocking send after a publish, one per batch, shm/wake.c; the control
 * socket has its own thread, control/server.c.)
 */

#include <liburing.h>
#include <stdint.h>

struct xr_uclock {
	struct io_uring ring;
};

/* 0, or -errno (io_uring unavailable: -ENOSYS, -EPERM in some sandboxes). */
int xr_uclock_init(struct xr_uclock *c);
void xr_uclock_fini(struct xr_uclock *c);

/* Sleeps until CLOCK_MONOTONIC reaches deadline_ns (returns at once if it
 * has). 0, -EINTR (a signal: check your stop flag), or -errno. */
int xr_uclock_sleep_until(struct xr_uclock *c, uint64_t deadline_ns);

#endif
