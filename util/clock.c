/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sched.h>
#include <time.h>

#include "util/atomics.h"
#include "util/clock.h"

uint64_t xr__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t xr__wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int xr__sleep_ns(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000ull),
		.tv_nsec = (long)(ns % 1000000000ull),
	};

	return nanosleep(&ts, NULL) < 0 && errno == EINTR ? -EINTR : 0;
}

#define XR_SPIN_ROUNDS 256
#define XR_YIELD_ROUNDS 16
#define XR_SLEEP_MIN_NS 20000ull
#define XR_SLEEP_MAX_NS 1000000ull

void xr__backoff_init(struct xr_backoff *b)
{
	b->round = 0;
	b->sleep_ns = XR_SLEEP_MIN_NS;
}

int xr__backoff_wait(struct xr_backoff *b)
{
	int rc = 0;

	if (b->round < XR_SPIN_ROUNDS) {
		for (int i = 0; i < 16; i++)
			xr_cpu_relax();
	} else if (b->round < XR_SPIN_ROUNDS + XR_YIELD_ROUNDS) {
		sched_yield();
	} else {
		rc = xr__sleep_ns(b->sleep_ns);
		if (b->sleep_ns < XR_SLEEP_MAX_NS)
			b->sleep_ns *= 2;
	}
	if (b->round < UINT32_MAX)
		b->round++;
	return rc;
}
