/* SPDX-License-Identifier: MIT */
/*
 * The latency histograms' arithmetic (util/llhist.h, shm/snapshot.c), which
 * every percentile of `xring stat`, `xring top`, the agents' stats and the
 * metrics endpoint comes from:
 *   - buckets tile [0, inf) in order: each value falls in the one bucket
 *     whose bounds hold it, and bucket indices never go down as values go up;
 *   - a bucket's upper bound is within 25 % of every value in it, from
 *     256 ns to 2^36 ns (docs/operations.md says so);
 *   - the bounds are 256 ns, then four per power of two, the last finite
 *     one 2^36 ns (68.7 s);
 *   - xr__snap_quantile() of a known sample gives, for p50, p99 and p999,
 *     the bound of the bucket holding the exact quantile: at or above it,
 *     within 25 %, for samples spread over six decades.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm/snapshot.h"
#include "ring_helpers.h"
#include "util/llhist.h"

static void test_buckets_tile(void)
{
	uint32_t last = 0;

	CHECK_EQ(XR_LL_BUCKETS, 114);
	CHECK_EQ(XR_SNAP_BUCKETS, XR_LL_BUCKETS);
	CHECK_EQ(xr_ll_upper(0), 256);
	CHECK_EQ(xr_ll_upper(XR_LL_BUCKETS - 2), 1ull << 36);
	CHECK_EQ(xr_ll_upper(XR_LL_BUCKETS - 1), UINT64_MAX);
	for (uint32_t b = 1; b < XR_LL_BUCKETS; b++) {
		if (xr_ll_upper(b) <= xr_ll_upper(b - 1))
			FAILF("bucket %u's bound %llu not above bucket %u's %llu", b,
			      (unsigned long long)xr_ll_upper(b), b - 1,
			      (unsigned long long)xr_ll_upper(b - 1));
		CHECK_EQ(xr__snap_bucket_le(b), xr_ll_upper(b));
	}
	/* Every bound and its neighbours, then values at random over all
	 * 64-bit magnitudes. */
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	for (uint32_t i = 0; i < 200000; i++) {
		uint64_t v;
		if (i < 3 * (XR_LL_BUCKETS - 1)) {
			uint64_t up = xr_ll_upper(i / 3);
			v = up - 1 + i % 3; /* up - 1, up, up + 1 */
		} else {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			v = rng >> (rng % 64);
		}
		uint32_t b = xr_ll_bucket(v);
		CHECK(b < XR_LL_BUCKETS);
		if (!(v < xr_ll_upper(b)) && b != XR_LL_BUCKETS - 1)
			FAILF("%llu in bucket %u, whose bound is %llu", (unsigned long long)v, b,
			      (unsigned long long)xr_ll_upper(b));
		if (b > 0 && v < xr_ll_upper(b - 1))
			FAILF("%llu in bucket %u, below its floor %llu", (unsigned long long)v, b,
			      (unsigned long long)xr_ll_upper(b - 1));
		if (v >= 256 && v < (1ull << 36) && (double)xr_ll_upper(b) > 1.25 * (double)v)
			FAILF("%llu in bucket %u: its bound %llu is more than 25 %% above it",
			      (unsigned long long)v, b, (unsigned long long)xr_ll_upper(b));
	}
	for (uint64_t v = 0; v < (1u << 20); v += 7) {
		uint32_t b = xr_ll_bucket(v);
		CHECK(b >= last);
		last = b;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_quantiles(void)
{
	enum { N = 100000 };
	static uint64_t v[N];
	static const double qs[] = {0.5, 0.99, 0.999};
	struct xr_snap_hist h;
	uint64_t rng = 12345;

	memset(&h, 0, sizeof(h));
	CHECK_EQ(xr__snap_quantile(&h, 0.5), 0); /* nothing counted */
	for (int i = 0; i < N; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		/* log-uniform from 1 us to 1 s, as latencies spread */
		double u = (double)(rng >> 11) * 0x1p-53;
		v[i] = (uint64_t)(1e3 * pow(10.0, 6.0 * u));
		h.b[xr_ll_bucket(v[i])]++;
		h.count++;
		h.sum_ns += v[i];
	}
	qsort(v, N, sizeof(v[0]), cmp_u64);
	for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
		/* The exact quantile: the smallest value with at least q of the
		 * sample at or below it. */
		uint64_t exact = v[(size_t)ceil(qs[k] * N) - 1];
		uint64_t got = xr__snap_quantile(&h, qs[k]);
		if (got != xr_ll_upper(xr_ll_bucket(exact)))
			FAILF("p%g: %llu ns, want the bound of %llu's bucket, %llu", qs[k] * 100,
			      (unsigned long long)got, (unsigned long long)exact,
			      (unsigned long long)xr_ll_upper(xr_ll_bucket(exact)));
		CHECK(got > exact && (double)got <= 1.25 * (double)exact + 1);
	}
	/* All in the last bucket: its bound is UINT64_MAX, +Inf. */
	memset(&h, 0, sizeof(h));
	h.b[XR_LL_BUCKETS - 1] = h.count = 3;
	CHECK_EQ(xr__snap_quantile(&h, 0.5), UINT64_MAX);
}

int main(void)
{
	test_buckets_tile();
	test_quantiles();
	printf("ok\n");
	return 0;
}
