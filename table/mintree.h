/* SPDX-License-Identifier: MIT */
#ifndef XR_TABLE_MINTREE_H
#define XR_TABLE_MINTREE_H

/*
 * A min tree over a fixed number of leaves: set a leaf, read the minimum and
 * the leftmost leaf holding it, in O(log n). Empty leaves hold +infinity.
 * The replay table keeps two: the smallest sampling weight (for importance
 * weights' normalisation) and the lowest priority of the items a remover may
 * take (for the lowest-priority remover), which changes at every sample's
 * first lease of an item. Eight children a node, a line each, as the sum
 * tree (sumtree.h): a set writes one line per level, 7 for a million
 * leaves, where a binary tree writes 20.
 */

#include <stdint.h>

#include "tree_levels.h"

#define XR_MINTREE_FAN XR_TREE_FAN
#define XR_MINTREE_LEVELS_MAX XR_TREE_LEVELS_MAX

struct xr_mintree {
	uint32_t n, levels;
	double min;
	double *level[XR_MINTREE_LEVELS_MAX]; /* level[levels - 1]: the leaves */
	void *mem;
};

/* Makes a tree of at least n leaves (n >= 1), all +infinity. Returns 0,
 * -ENOMEM, or -EINVAL for n beyond 2^31. */
int xr_mintree_init(struct xr_mintree *t, uint32_t n);
void xr_mintree_free(struct xr_mintree *t);

/* Sets leaf i (i < n) to v (+infinity: empty). */
void xr_mintree_set(struct xr_mintree *t, uint32_t i, double v);

static inline double xr_mintree_min(const struct xr_mintree *t)
{
	return t->min;
}

/* The leftmost leaf holding the minimum; meaningless when the tree is empty
 * (minimum +infinity: the caller checks). */
uint32_t xr_mintree_argmin(const struct xr_mintree *t);

#endif
