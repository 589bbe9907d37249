/* SPDX-License-Identifier: MIT */
#ifndef XR_TABLE_TREE_LEVELS_H
#define XR_TABLE_TREE_LEVELS_H

/*
 * The shape both of the table's trees share (sumtree.h, mintree.h): eight
 * children a node, each level an array of whole cache lines in which the
 * children of node i of the level above are entries 8i..8i+7.
 */

#include <stdint.h>

#define XR_TREE_FAN 8
#define XR_TREE_LEVELS_MAX 12 /* 8^11 > 2^31 leaves */

/* The widths of a tree of n leaves (1..2^31), top level first, into
 * width[]; returns the number of levels; *total gets their sum. The top
 * level is one line: the root's children. */
static inline uint32_t xr__tree_levels(uint32_t n, uint64_t width[XR_TREE_LEVELS_MAX],
				       uint64_t *total)
{
	uint64_t up[XR_TREE_LEVELS_MAX], w = ((uint64_t)n + XR_TREE_FAN - 1) / XR_TREE_FAN * XR_TREE_FAN;
	uint32_t levels = 0;

	for (;;) {
		up[levels++] = w;
		if (w <= XR_TREE_FAN)
			break;
		w = (w / XR_TREE_FAN + XR_TREE_FAN - 1) / XR_TREE_FAN * XR_TREE_FAN;
	}
	*total = 0;
	for (uint32_t l = 0; l < levels; l++) {
		width[l] = up[levels - 1 - l];
		*total += width[l];
	}
	return levels;
}

#endif
