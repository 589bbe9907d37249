/* SPDX-License-Identifier: MIT */
#ifndef XR_SHM_HIST_H
#define XR_SHM_HIST_H

/*
 * Updating the stats region's histograms (struct xr_hist, shm/layout.h;
 * buckets: util/llhist.h). Each histogram has one writer, so an update is
 * loads and stores, relaxed: tools read the fields a moment apart and may
 * see a count and its buckets differ by what came in between, never a
 * torn word. Writers that keep their own copy (a shard, publishing on its
 * stats tick) use struct xr_lat and xr__hist_publish().
 */

#include "shm/layout.h"
#include "util/atomics.h"
#include "util/llhist.h"

/* A writer's private histogram. */
struct xr_lat {
	uint64_t count, sum_ns;
	uint64_t b[XR_LL_BUCKETS];
};

static inline void xr__lat_add(struct xr_lat *l, uint64_t ns)
{
	l->b[xr_ll_bucket(ns)]++;
	l->count++;
	l->sum_ns += ns;
}

/* Stores l into h, for tools. */
static inline void xr__hist_publish(struct xr_hist *h, const struct xr_lat *l)
{
	for (uint32_t b = 0; b < XR_LL_BUCKETS; b++)
		xr_store_relaxed(&h->b[b], l->b[b]);
	xr_store_relaxed(&h->sum_ns, l->sum_ns);
	xr_store_relaxed(&h->count, l->count);
}

/* Adds ns to h in place: h's one writer only. */
static inline void xr__hist_add(struct xr_hist *h, uint64_t ns)
{
	_Atomic uint64_t *b = &h->b[xr_ll_bucket(ns)];

	xr_store_relaxed(b, xr_load_relaxed(b) + 1);
	xr_store_relaxed(&h->sum_ns, xr_load_relaxed(&h->sum_ns) + ns);
	xr_store_relaxed(&h->count, xr_load_relaxed(&h->count) + 1);
}

#endif
