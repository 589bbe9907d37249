/* SPDX-License-Identifier: MIT */
#ifndef XR_TABLE_SUMTREE_H
#define XR_TABLE_SUMTREE_H

/*
 * A sum tree over a fixed number of leaves: set a leaf's weight, read the
 * total, and find the leaf where a prefix sum falls (the prioritized
 * sampler's draw), each in O(log n).
 *
 * Eight children a node, stored together: each level is an array in which
 * the children of node i of the level above are entries 8i..8i+7, one
 * cache line. A descent reads one line per level: 7 levels for a million
 * leaves, where a binary tree reads 20 lines, most of them misses once the
 * tree outgrows the cache. xr_sumtree_find_many() runs many descents level
 * by level and prefetches each one's next line, so their misses overlap
 * instead of following one another.
 *
 * A set recomputes every node on the leaf's path from its children instead
 * of adding a delta: the sums then never drift from the leaves however many
 * updates there are (a delta tree accumulates rounding error and, after
 * millions of updates, can hold a positive total over leaves all zero).
 */

#include <stdint.h>

#include "tree_levels.h"

#define XR_SUMTREE_FAN XR_TREE_FAN
#define XR_SUMTREE_LEVELS_MAX XR_TREE_LEVELS_MAX

struct xr_sumtree {
	uint32_t n;                 /* leaves asked for */
	uint32_t levels;            /* level 0: the root's children ... leaves */
	double total;
	double *level[XR_SUMTREE_LEVELS_MAX]; /* level[levels - 1]: the leaves */
	uint64_t width[XR_SUMTREE_LEVELS_MAX];
	void *mem;
};

/* Makes a tree of at least n leaves (n >= 1), all zero. Returns 0 or -ENOMEM,
 * -EINVAL for n beyond 2^31. The tree owns its memory; xr_sumtree_free()
 * frees it. */
int xr_sumtree_init(struct xr_sumtree *t, uint32_t n);
void xr_sumtree_free(struct xr_sumtree *t);

/* Sets leaf i (i < n) to w (finite, >= 0; the caller checks). */
void xr_sumtree_set(struct xr_sumtree *t, uint32_t i, double w);

static inline double xr_sumtree_get(const struct xr_sumtree *t, uint32_t i)
{
	return t->level[t->levels - 1][i];
}

static inline double xr_sumtree_total(const struct xr_sumtree *t)
{
	return t->total;
}

/* The leaf whose span of the prefix sums holds u, for 0 <= u < total: leaf i
 * with sum(w[0..i)) <= u < sum(w[0..i]). With a positive total the leaf
 * returned always has a positive weight, even when rounding puts u at or
 * past the total; with a zero total the result is meaningless (the caller
 * checks the total first). */
uint32_t xr_sumtree_find(const struct xr_sumtree *t, double u);

/* xr_sumtree_find() of u[0..n) into out[0..n), the descents interleaved. */
void xr_sumtree_find_many(const struct xr_sumtree *t, const double *u, uint32_t *out, uint32_t n);

#endif
