/* SPDX-License-Identifier: MIT */
#ifndef XR_TABLE_TREE_LEVELS_H
#define XR_TABLE_TREE_LEVELS_H

/*
 * The shape both of the table's trees share (sumtree.h, mintree.h): eight
 * children a node, each level an array of whole cache lines in which the
 * children of node i of the level above are entries 8i..8i+7.
 */

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define XR_TREE_FAN 8
#define XR_TREE_LEVELS_MAX 13 /* 4 * 8^10 > 2^31 leaves, and a top level */

/* The widths of a tree of n leaves (1..2^31) whose lowest nodes have
 * leaf_fan children (4 or 8) and all others XR_TREE_FAN, top level first,
 * into width[]: the leaves rounded up to whole lowest nodes, then each
 * level above one entry per node below, rounded up to whole nodes, up to
 * a top level of one node (the root's children). Returns the number of
 * levels; *total gets their sum. */
static inline uint32_t xr__tree_levels(uint32_t n, uint32_t leaf_fan,
				       uint64_t width[XR_TREE_LEVELS_MAX], uint64_t *total)
{
	uint64_t up[XR_TREE_LEVELS_MAX], w = ((uint64_t)n + leaf_fan - 1) / leaf_fan * leaf_fan;
	uint32_t levels = 0, fan = leaf_fan;

	for (;;) {
		up[levels++] = w;
		if (w <= XR_TREE_FAN && fan == XR_TREE_FAN)
			break;
		w = (w / fan + XR_TREE_FAN - 1) / XR_TREE_FAN * XR_TREE_FAN;
		fan = XR_TREE_FAN;
	}
	*total = 0;
	for (uint32_t l = 0; l < levels; l++) {
		width[l] = up[levels - 1 - l];
		*total += width[l];
	}
	return levels;
}

/* Memory for a tree of `bytes`, zeroed: aligned to a cache line, and past
 * 2 MiB to a huge page with transparent huge pages asked for (a sample of
 * a large table is a walk of random lines: with 4 KiB pages nearly each
 * is a TLB miss too). Best effort: without them, 4 KiB pages. 0, -1. */
static inline int xr__tree_alloc(void **mem, uint64_t bytes)
{
	const uint64_t huge = 2u << 20;
	uint64_t align = bytes >= huge ? huge : 64;
	uint64_t len = bytes >= huge ? (bytes + huge - 1) / huge * huge : bytes;

	if (posix_memalign(mem, align, len))
		return -1;
#ifdef MADV_HUGEPAGE
	if (bytes >= huge)
		(void)madvise(*mem, len, MADV_HUGEPAGE);
#endif
	return 0;
}

#endif
