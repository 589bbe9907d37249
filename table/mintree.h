/* SPDX-License-Identifier: MIT */
#ifndef XR_TABLE_MINTREE_H
#define XR_TABLE_MINTREE_H

/*
 * A min tree over a fixed number of leaves: set a leaf, read the minimum and
 * the leftmost leaf holding it, in O(log n). Empty leaves hold +infinity.
 * The replay table keeps two: the smallest sampling weight (for importance
 * weights' normalisation) and the lowest priority of the items a remover may
 * take (for the lowest-priority remover). Same layout as the sum tree
 * (sumtree.h): node 1 the root, leaves at [cap, 2cap).
 */

#include <stdint.h>

struct xr_mintree {
	uint32_t cap;
	double *node;
};

/* Makes a tree of at least n leaves (n >= 1), all +infinity. Returns 0,
 * -ENOMEM, or -EINVAL for n beyond 2^31. */
int xr_mintree_init(struct xr_mintree *t, uint32_t n);
void xr_mintree_free(struct xr_mintree *t);

/* Sets leaf i (i < cap) to v (+infinity: empty). */
void xr_mintree_set(struct xr_mintree *t, uint32_t i, double v);

static inline double xr_mintree_min(const struct xr_mintree *t)
{
	return t->node[1];
}

/* The leftmost leaf holding the minimum; meaningless when the tree is empty
 * (minimum +infinity: the caller checks). */
uint32_t xr_mintree_argmin(const struct xr_mintree *t);

#endif
