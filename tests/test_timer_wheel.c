/* SPDX-License-Identifier: MIT */
/*
 * The timer wheel: every timer fires exactly at its tick (never early, never
 * late when every tick is processed), in arming order within a tick; cancel
 * and re-arm, including from callbacks; 100,000 timers; the wrap of every
 * level and timers beyond the wheel's span; xr_wheel_next() is never later
 * than the next firing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/timer_wheel.h"
#include "ring_helpers.h"

struct item {
	struct xr_timer t;
	uint64_t want;      /* tick it must fire at */
	uint64_t order;     /* arming order */
	uint64_t fired_at;
	int fired;
	int period;         /* re-arm this many ticks later, if > 0 */
	int repeats;
};

struct log {
	struct xr_wheel *w;
	uint64_t last_tick, last_order, n;
};

static void on_fire(struct xr_timer *t, void *ctx)
{
	struct item *it = (struct item *)t;
	struct log *lg = ctx;
	uint64_t tick = lg->w->now - 1; /* the tick being processed */

	if (tick != it->want)
		FAILF("timer for tick %llu fired at %llu", (unsigned long long)it->want,
		      (unsigned long long)tick);
	if (lg->n && (tick < lg->last_tick || (tick == lg->last_tick && it->order < lg->last_order)))
		FAILF("tick %llu order %llu fired after tick %llu order %llu",
		      (unsigned long long)tick, (unsigned long long)it->order,
		      (unsigned long long)lg->last_tick, (unsigned long long)lg->last_order);
	lg->last_tick = tick;
	lg->last_order = it->order;
	lg->n++;
	it->fired++;
	it->fired_at = tick;
	if (it->period > 0 && --it->repeats > 0) {
		it->want = tick + (uint64_t)it->period;
		it->order = UINT64_MAX / 2 + lg->n; /* re-armed after everything else */
		xr_wheel_arm(lg->w, t, it->want);
	}
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Arms n timers at start + [1, span], advances in random steps with
 * xr_wheel_next() checked on the way, and checks every timer fired once. */
static void run_many(uint64_t start, size_t n, uint64_t span, int cancel_every)
{
	static struct xr_wheel w;
	struct item *items = calloc(n, sizeof(*items));
	struct log lg = {.w = &w};
	size_t cancelled = 0;

	CHECK(items != NULL);
	xr_wheel_init(&w, start);
	for (size_t i = 0; i < n; i++) {
		xr_timer_init(&items[i].t, on_fire);
		items[i].want = start + 1 + next_rand() % span;
		items[i].order = i;
		xr_wheel_arm(&w, &items[i].t, items[i].want);
	}
	if (cancel_every)
		for (size_t i = 0; i < n; i += (size_t)cancel_every) {
			CHECK(xr_wheel_cancel(&w, &items[i].t));
			CHECK(!xr_wheel_cancel(&w, &items[i].t));
			cancelled++;
		}
	CHECK_EQ(w.count, n - cancelled);
	uint64_t end = start + span + 1, now = start;
	while (now < end) {
		uint64_t nx = xr_wheel_next(&w);
		uint64_t before = lg.n;
		now += 1 + next_rand() % 5000;
		if (now > end)
			now = end;
		xr_wheel_advance(&w, now, &lg);
		/* Nothing may fire before the tick xr_wheel_next() promised. */
		if (lg.n > before && lg.last_tick < nx && nx != UINT64_MAX)
			FAILF("next() said %llu, a timer fired at %llu", (unsigned long long)nx,
			      (unsigned long long)lg.last_tick);
	}
	CHECK_EQ(w.count, 0);
	CHECK_EQ(lg.n, n - cancelled);
	for (size_t i = 0; i < n; i++)
		CHECK_EQ(items[i].fired, cancel_every && i % (size_t)cancel_every == 0 ? 0 : 1);
	CHECK_EQ(xr_wheel_next(&w), UINT64_MAX);
	free(items);
}

static void test_rearm_and_periodic(void)
{
	static struct xr_wheel w;
	struct item a = {0}, b = {0}, p = {0};
	struct log lg = {.w = &w};

	xr_wheel_init(&w, 1000);
	xr_timer_init(&a.t, on_fire);
	xr_timer_init(&b.t, on_fire);
	xr_timer_init(&p.t, on_fire);
	/* Re-arm earlier, then later: fires once, at the last time armed. */
	a.want = 1100;
	xr_wheel_arm(&w, &a.t, 5000);
	xr_wheel_arm(&w, &a.t, 1050);
	xr_wheel_arm(&w, &a.t, 1100);
	CHECK_EQ(w.count, 1);
	/* A tick in the past fires on the next advance. */
	b.want = 1000;
	b.order = 1;
	xr_wheel_arm(&w, &b.t, 10);
	/* Periodic: re-arms itself from its callback, 100 times, every 7. */
	p.want = 1003;
	p.order = 2;
	p.period = 7;
	p.repeats = 100;
	xr_wheel_arm(&w, &p.t, 1003);
	xr_wheel_advance(&w, 1000 + 7 * 100 + 10, &lg);
	CHECK_EQ(a.fired, 1);
	CHECK_EQ(b.fired, 1);
	CHECK_EQ(p.fired, 100);
	CHECK_EQ(w.count, 0);
}

/* Timers exactly at and around each level's boundary, starting just before
 * the wrap of all four levels, and beyond the wheel's 2^32-tick span. */
static void test_every_level_wraps(void)
{
	static struct xr_wheel w;
	static const uint64_t offsets[] = {
		1, 2, 255, 256, 257, 511, 65535, 65536, 65537, 1ull << 20, (1ull << 24) - 1,
		1ull << 24, (1ull << 24) + 1, (1ull << 32) - 1, 1ull << 32, (1ull << 32) + 7,
		3ull << 32,
	};
	enum { N = sizeof(offsets) / sizeof(offsets[0]) };
	const uint64_t starts[] = {0, (1ull << 32) - 3, (1ull << 40) - 100, 12345678901ull};

	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		struct item items[N];
		struct log lg = {.w = &w};

		xr_wheel_init(&w, starts[s]);
		memset(items, 0, sizeof(items));
		for (size_t i = 0; i < N; i++) {
			xr_timer_init(&items[i].t, on_fire);
			items[i].want = starts[s] + offsets[i];
			items[i].order = i;
			xr_wheel_arm(&w, &items[i].t, items[i].want);
		}
		/* Advance in one call and in uneven steps alike. */
		uint64_t end = starts[s] + offsets[N - 1];
		if (s % 2)
			xr_wheel_advance(&w, end, &lg);
		else
			for (uint64_t now = starts[s]; now < end;) {
				now += (now - starts[s]) < (1ull << 20) ? 97 : (1ull << 27) + 3;
				xr_wheel_advance(&w, now < end ? now : end, &lg);
			}
		for (size_t i = 0; i < N; i++)
			if (items[i].fired != 1)
				FAILF("start %llu: timer at +%llu fired %d times",
				      (unsigned long long)starts[s], (unsigned long long)offsets[i],
				      items[i].fired);
	}
}

int main(void)
{
	printf("timer wheel: ordering over levels 0-2, 10,000 timers\n");
	run_many(0, 10000, 300000, 0);
	printf("timer wheel: cancel every third\n");
	run_many(777, 10000, 70000, 3);
	printf("timer wheel: 100,000 timers over 2^20 ticks\n");
	run_many(5, 100000, 1u << 20, 0);
	printf("timer wheel: re-arm and periodic re-arm from callbacks\n");
	test_rearm_and_periodic();
	printf("timer wheel: every level wraps; beyond the span\n");
	test_every_level_wraps();
	printf("timer wheel: passed\n");
	return 0;
}
