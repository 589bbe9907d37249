/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "engine/uring_clock.h"

int xr_uclock_init(struct xr_uclock *c)
{
	return io_uring_queue_init(4, &c->ring, 0);
}

void xr_uclock_fini(struct xr_uclock *c)
{
	io_uring_queue_exit(&c->ring);
}

int xr_uclock_sleep_until(struct xr_uclock *c, uint64_t deadline_ns)
{
	struct __kernel_timespec ts = {
		.tv_sec = (long long)(deadline_ns / 1000000000ull),
		.tv_nsec = (long long)(deadline_ns % 1000000000ull),
	};
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);
	struct io_uring_cqe *cqe;
	int rc;

	if (!sqe)
		return -EBUSY;
	/* IORING_TIMEOUT_ABS: an absolute CLOCK_MONOTONIC deadline, so a late
	 * wakeup never pushes later deadlines back. */
	io_uring_prep_timeout(sqe, &ts, 0, IORING_TIMEOUT_ABS);
	rc = io_uring_submit_and_wait(&c->ring, 1);
	if (rc < 0)
		return rc; /* -EINTR: the timeout is still armed; the next wait reaps it */
	rc = io_uring_peek_cqe(&c->ring, &cqe);
	if (rc == -EAGAIN)
		return -EINTR; /* woken by a signal before the timeout completed */
	if (rc < 0)
		return rc;
	rc = cqe->res;
	io_uring_cqe_seen(&c->ring, cqe);
	/* A timeout completes with -ETIME when it expires: that is success. */
	return rc == -ETIME || rc == 0 ? 0 : rc;
}
