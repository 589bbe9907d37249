/* SPDX-License-Identifier: MIT */
#ifndef XR_TABLE_SUMTREE_H
#define XR_TABLE_SUMTREE_H

/*
 * A sum tree over a fixed number of leaves: set a leaf's weight, read the
 * total, and find the leaf where a prefix sum falls (the prioritized
 * sampler's draw), each in O(log n).
 *
 * Eight children a node above the leaves, four at the leaves, each node's
 * children stored together: each level is an array in which the children
 * of node i of the level above are entries 8i..8i+7 (4i..4i+3 at the
 * leaves). A node's children are kept twice: their running sums (what a
 * descent reads: the child where u falls is the number of running sums at
 * or below u, compares and no additions, vector compares where the CPU has
 * AVX2), then their own values (what a set recomputes from, and what
 * xr_sumtree_get() reads). Above the leaves that is a block of two cache
 * lines, sums then values; at the leaves one line, four sums then four
 * values, so that a descent's last step reads the leaf's value from the
 * line it has just read: a draw's leaf costs one line, where two lines
 * (sums, values) cost two misses. A descent reads one line per level: 7
 * levels for a million leaves, where a binary tree reads 20 lines, most of
 * them misses once the tree outgrows the cache. xr_sumtree_find_many()
 * runs many descents level by level and prefetches each one's next line,
 * so their misses overlap instead of following one another; at the leaves
 * it reads the found leaf's value too, and asks for the caller's record of
 * the leaf.
 *
 * A set recomputes every line on the leaf's path from the values of its
 * children instead of adding a delta: the sums then never drift from the
 * leaves however many updates there are (a delta tree accumulates rounding
 * error and, after millions of updates, can hold a positive total over
 * leaves all zero). A line's running sums are added in one fixed order, so
 * a zero child's running sum equals the one before it exactly (it is never
 * chosen) and the last is the parent's value exactly.
 */

#include <stddef.h>
#include <stdint.h>

#include "tree_levels.h"

#define XR_SUMTREE_FAN XR_TREE_FAN /* above the leaves */
#define XR_SUMTREE_LEAF_FAN 4       /* the leaves' nodes: 4 sums, 4 values, a line */
#define XR_SUMTREE_LEVELS_MAX XR_TREE_LEVELS_MAX

struct xr_sumtree {
	uint32_t n;                 /* leaves asked for */
	uint32_t levels;            /* level 0: the root's children ... leaves */
	double total;
	/* Level l (0 the top, levels - 1 the leaves) of width[l] entries:
	 * width[l] / fan blocks of 2 * fan doubles, the running sums of a
	 * node's children and then their values; fan is 8, 4 at the leaves. */
	double *level[XR_SUMTREE_LEVELS_MAX];
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

/* Entry i's value in a level's blocks of fan; and the running sums of the
 * block it is in. */
static inline double *xr__sumtree_val(double *level, uint64_t i, uint32_t fan)
{
	return level + i / fan * 2 * fan + fan + i % fan;
}

static inline double *xr__sumtree_run(double *level, uint64_t i, uint32_t fan)
{
	return level + i / fan * 2 * fan;
}

static inline double xr_sumtree_get(const struct xr_sumtree *t, uint32_t i)
{
	return *xr__sumtree_val(t->level[t->levels - 1], i, XR_SUMTREE_LEAF_FAN);
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

/* xr_sumtree_find() of u[0..n) into out[0..n), and each found leaf's
 * xr_sumtree_get() into val[0..n); the descents interleaved, with AVX2
 * where the CPU has it. prefetch, when not NULL, is the caller's array of
 * a record of pf_stride bytes per leaf: each found leaf's record is asked
 * for (prefetched for writing) as soon as the leaf is known. */
void xr_sumtree_find_many(const struct xr_sumtree *t, const double *u, uint32_t *out,
			  double *val, const void *prefetch, size_t pf_stride, uint32_t n);

/* The same without AVX2, whatever the CPU: for the tests, which check both. */
void xr__sumtree_find_many_generic(const struct xr_sumtree *t, const double *u, uint32_t *out,
				   double *val, const void *prefetch, size_t pf_stride, uint32_t n);

#endif
