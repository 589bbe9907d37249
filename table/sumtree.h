/* SPDX-License-Identifier: MIT */
#ifndef XR_TABLE_SUMTREE_H
#define XR_TABLE_SUMTREE_H

/*
 * A sum tree over a fixed number of leaves: set a leaf's weight, read the
 * total, and find the leaf where a prefix sum falls (the prioritized
 * sampler's draw), each in O(log n).
 *
 * Stored as an implicit complete binary tree: node 1 is the root, node i's
 * children are 2i and 2i+1, the leaves are nodes [cap, 2cap) with cap the
 * leaf count rounded up to a power of two. A set recomputes every node on
 * the leaf's path from its two children instead of adding a delta: the sums
 * then never drift from the leaves however many updates there are (a delta
 * tree accumulates rounding error and, after millions of updates, can hold
 * a positive total over leaves that are all zero).
 */

#include <stdint.h>

struct xr_sumtree {
	uint32_t cap;  /* leaves, a power of two */
	double *node;  /* 2 * cap doubles; node[0] unused */
};

/* Makes a tree of at least n leaves (n >= 1), all zero. Returns 0 or -ENOMEM,
 * -EINVAL for n beyond 2^31. The tree owns node[]; xr_sumtree_free() frees it. */
int xr_sumtree_init(struct xr_sumtree *t, uint32_t n);
void xr_sumtree_free(struct xr_sumtree *t);

/* Sets leaf i (i < cap) to w (finite, >= 0; the caller checks). */
void xr_sumtree_set(struct xr_sumtree *t, uint32_t i, double w);

static inline double xr_sumtree_get(const struct xr_sumtree *t, uint32_t i)
{
	return t->node[t->cap + i];
}

static inline double xr_sumtree_total(const struct xr_sumtree *t)
{
	return t->node[1];
}

/* The leaf whose span of the prefix sums holds u, for 0 <= u < total: leaf i
 * with sum(w[0..i)) <= u < sum(w[0..i]). With a positive total the leaf
 * returned always has a positive weight, even when rounding puts u at or
 * past the total; with a zero total the result is meaningless (the caller
 * checks the total first). */
uint32_t xr_sumtree_find(const struct xr_sumtree *t, double u);

#endif
