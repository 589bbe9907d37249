/* SPDX-License-Identifier: MIT */
#ifndef XR_UTIL_LLHIST_H
#define XR_UTIL_LLHIST_H

/*
 * Log-linear latency buckets, the one scheme of every histogram in the
 * stats region (struct xr_hist, shm/layout.h): four buckets per power of
 * two, so a bucket's bound is within 25 % of any value in it, from 256 ns
 * to 68.7 s, in 114 buckets:
 *
 *   bucket 0                 [0, 256) ns
 *   bucket 1 + 4(e - 8) + s  [2^e (4 + s) / 4, 2^e (5 + s) / 4) ns,
 *                            e = 8..35, s = 0..3
 *   bucket 113               [2^36, inf) ns
 *
 * An update is an index (a count-leading-zeros and two shifts) and three
 * relaxed adds by the histogram's one writer: no lock, no CAS.
 */

#include <stdint.h>

#define XR_LL_MIN_SHIFT 8
#define XR_LL_MAX_SHIFT 36
#define XR_LL_SUB 4
#define XR_LL_BUCKETS (2 + (XR_LL_MAX_SHIFT - XR_LL_MIN_SHIFT) * XR_LL_SUB)

static inline uint32_t xr_ll_bucket(uint64_t ns)
{
	if (ns < (1ull << XR_LL_MIN_SHIFT))
		return 0;
	uint32_t e = 63 - (uint32_t)__builtin_clzll(ns);
	if (e >= XR_LL_MAX_SHIFT)
		return XR_LL_BUCKETS - 1;
	return 1 + (e - XR_LL_MIN_SHIFT) * XR_LL_SUB + (uint32_t)((ns >> (e - 2)) & 3);
}

/* Bucket b's upper bound (exclusive), in ns; UINT64_MAX for the last. */
static inline uint64_t xr_ll_upper(uint32_t b)
{
	if (b == 0)
		return 1ull << XR_LL_MIN_SHIFT;
	if (b >= XR_LL_BUCKETS - 1)
		return UINT64_MAX;
	uint32_t e = XR_LL_MIN_SHIFT + (b - 1) / XR_LL_SUB, s = (b - 1) % XR_LL_SUB;
	return (5ull + s) << (e - 2);
}

#endif
