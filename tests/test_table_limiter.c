/* SPDX-License-Identifier: MIT */
/*
 * The replay table's rate limiter (table/limiter.h), through the table:
 *   - nothing is sampled before min_size items are in; inserts go freely
 *     until then
 *   - under random schedules of inserters and samplers (batches of 1 to 64,
 *     a full table's remover, max_times_sampled), every insert and sample
 *     goes or waits exactly as the definition says, no sample takes
 *     D = inserts * spi - samples below min_diff, no insert past max_diff
 *     once the table holds min_size items, and samples / inserts converges
 *     to spi
 *   - at every step an insert or a sample may go: no deadlock
 *   - samples_per_insert 0: only min_size holds
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "table_helpers.h"

static uint64_t lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

static void test_min_size(void)
{
	struct xr_tb t;
	uint64_t key, ev, got[4];
	uint32_t slot;

	table_make(&t, (struct xr_tb_cfg){.capacity = 100, .min_size = 10,
					     .samples_per_insert = 2, .error_buffer = 4,
					     .seed = 1});
	for (int i = 0; i < 9; i++) {
		CHECK_RC(xr__tb_sample(&t, 1, got, NULL, NULL), -EAGAIN);
		CHECK_RC(xr__tb_insert(&t, 1, &key, &slot, &ev), 0);
	}
	CHECK_RC(xr__tb_sample(&t, 1, got, NULL, NULL), -EAGAIN);
	CHECK_RC(xr__tb_insert(&t, 1, &key, &slot, &ev), 0);
	/* D = 10 * 2 - 0 = 20, min_diff = 20 - 4 = 16: four may go now. */
	CHECK_RC(xr__tb_sample(&t, 4, got, NULL, NULL), 4);
	for (int i = 0; i < 4; i++)
		CHECK_RC(xr__tb_release(&t, got[i]), 0);
	CHECK_RC(xr__tb_sample(&t, 1, got, NULL, NULL), -EAGAIN);
	/* max_diff = 24: D = 16 now; inserts up to D = 24, four of them. */
	for (int i = 0; i < 4; i++)
		CHECK_RC(xr__tb_insert(&t, 1, &key, &slot, &ev), 0);
	CHECK_RC(xr__tb_insert(&t, 1, &key, &slot, &ev), -EAGAIN);
	/* Partial batches: a sample of 20 gets the 8 the limiter allows. */
	uint64_t many[20];
	CHECK_RC(xr__tb_sample(&t, 20, many, NULL, NULL), 8);
	for (int i = 0; i < 8; i++)
		CHECK_RC(xr__tb_release(&t, many[i]), 0);
	xr__tb_free(&t);
}

struct sched {
	double spi, eb;
	uint32_t capacity, min_size, max_times;
	int insert_pct;   /* how often the schedule tries an insert */
	uint32_t max_batch; /* samples of 1 to this many */
};

static void run_schedule(const struct sched *sc, uint64_t seed)
{
	enum { STEPS = 200000 };
	struct xr_tb t;
	uint64_t rng = seed, keys[64], key, ev;
	uint32_t slot;
	double min_diff = sc->spi * sc->min_size - sc->eb, max_diff = sc->spi * sc->min_size + sc->eb;
	uint64_t refused_i = 0, refused_s = 0;

	table_make(&t, (struct xr_tb_cfg){.capacity = sc->capacity,
					     .sampler = XR_SAMPLER_UNIFORM,
					     .max_times_sampled = sc->max_times,
					     .min_size = sc->min_size,
					     .samples_per_insert = sc->spi,
					     .error_buffer = sc->eb, .seed = seed});
	for (int step = 0; step < STEPS; step++) {
		double d = xr_limiter_diff(&t.lim);
		bool filling = t.lim.inserts + 1 - t.lim.removes <= sc->min_size;
		bool may_insert = filling || d + sc->spi <= max_diff;
		bool may_sample = t.lim.inserts - t.lim.removes >= sc->min_size &&
				  d - 1 >= min_diff;

		/* No deadlock: one of the two may always go. */
		if (!may_insert && !may_sample)
			FAILF("step %d: D %.2f, size %u: neither an insert nor a sample may go",
			      step, d, t.size);
		if ((int)(lcg(&rng) % 100) < sc->insert_pct) {
			int rc = xr__tb_insert(&t, 1, &key, &slot, &ev);
			if (may_insert) {
				CHECK_RC(rc, 0);
			} else {
				CHECK_RC(rc, -EAGAIN);
				refused_i++;
			}
		} else {
			uint32_t n = 1 + (uint32_t)(lcg(&rng) % sc->max_batch);
			uint64_t allowed = 0;
			if (t.lim.inserts - t.lim.removes >= sc->min_size)
				while (allowed < n && d - (double)(allowed + 1) >= min_diff)
					allowed++;
			int rc = xr__tb_sample(&t, n, keys, NULL, NULL);
			if (!allowed || !t.size) {
				CHECK_RC(rc, -EAGAIN);
				refused_s++;
			} else {
				/* All the limiter allows, unless max_times_sampled
				 * empties the table on the way. */
				CHECK(rc >= 1 && (uint64_t)rc <= allowed);
				if (!sc->max_times)
					CHECK_EQ(rc, allowed);
				for (int i = 0; i < rc; i++)
					CHECK_RC(xr__tb_release(&t, keys[i]), 0);
			}
		}
		/* A sample never takes D below min_diff; an insert never takes
		 * it past max_diff but while the table is below min_size
		 * (removals, max_times_sampled among them, open that door, as
		 * in Reverb: samplers then wait for the table, not the ratio). */
		double d2 = xr_limiter_diff(&t.lim);
		if (d2 < d && d2 < min_diff)
			FAILF("step %d: a sample took D to %.2f < %.2f", step, d2, min_diff);
		if (d2 > d && d2 > max_diff && !filling)
			FAILF("step %d: an insert took D to %.2f > %.2f", step, d2, max_diff);
	}
	double ratio = (double)t.lim.samples / (double)t.lim.inserts;
	double err = (sc->eb + sc->spi * sc->min_size + sc->spi) / (double)t.lim.inserts;
	/* An item leaves after max_times_sampled samples, and the table
	 * below min_size lets inserts through: the ratio can then only be
	 * lower, and no item gives more than max_times_sampled. */
	if (sc->max_times && sc->max_times < sc->spi) {
		if (ratio > sc->max_times)
			FAILF("samples per insert %.4f > max_times_sampled %u", ratio, sc->max_times);
	} else if (fabs(ratio - sc->spi) > err) {
		FAILF("samples per insert %.4f, want %.4f within %.4f", ratio, sc->spi, err);
	}
	printf("spi %.2f eb %.1f cap %u min %u max_times %u: %llu inserts, %llu samples "
	       "(ratio %.4f), %llu removes, refused %llu inserts and %llu samples\n",
	       sc->spi, sc->eb, sc->capacity, sc->min_size, sc->max_times,
	       (unsigned long long)t.lim.inserts, (unsigned long long)t.lim.samples, ratio,
	       (unsigned long long)t.lim.removes, (unsigned long long)refused_i,
	       (unsigned long long)refused_s);
	fflush(stdout);
	CHECK(t.lim.inserts > 1000 && t.lim.samples > 1000);
	CHECK(refused_i > 0 && refused_s > 0); /* the limiter was exercised both ways */
	xr__tb_free(&t);
}

static void test_no_ratio(void)
{
	struct xr_tb t;
	uint64_t key, ev, got[64];
	uint32_t slot;

	table_make(&t, (struct xr_tb_cfg){.capacity = 8, .min_size = 3, .seed = 2});
	for (int i = 0; i < 2; i++)
		CHECK_RC(xr__tb_insert(&t, 1, &key, &slot, &ev), 0);
	CHECK_RC(xr__tb_sample(&t, 1, got, NULL, NULL), -EAGAIN);
	CHECK_RC(xr__tb_insert(&t, 1, &key, &slot, &ev), 0);
	for (int r = 0; r < 100; r++) {
		CHECK_RC(xr__tb_sample(&t, 64, got, NULL, NULL), 64);
		for (int i = 0; i < 64; i++)
			CHECK_RC(xr__tb_release(&t, got[i]), 0);
	}
	for (int i = 0; i < 100; i++) /* the remover makes room */
		CHECK_RC(xr__tb_insert(&t, 1, &key, &slot, &ev), 0);
	CHECK_EQ(t.size, 8);
	xr__tb_free(&t);
}

int main(void)
{
	/* Each near the balance where samplers ask for about spi per insert,
	 * so D wanders across the whole window and both bounds refuse. */
	static const struct sched scheds[] = {
		{.spi = 1, .eb = 1, .capacity = 1000, .min_size = 10, .insert_pct = 50,
		 .max_batch = 1},
		{.spi = 8, .eb = 64, .capacity = 500, .min_size = 100, .insert_pct = 80,
		 .max_batch = 63},
		{.spi = 0.25, .eb = 2, .capacity = 64, .min_size = 8, .insert_pct = 90,
		 .max_batch = 4},
		{.spi = 4, .eb = 32, .capacity = 200, .min_size = 50, .max_times = 3,
		 .insert_pct = 90, .max_batch = 63},
		{.spi = 2, .eb = 100, .capacity = 100000, .min_size = 0, .insert_pct = 93,
		 .max_batch = 64},
	};

	test_min_size();
	test_no_ratio();
	for (size_t i = 0; i < sizeof(scheds) / sizeof(scheds[0]); i++)
		run_schedule(&scheds[i], 100 + i);
	printf("ok\n");
	return 0;
}
