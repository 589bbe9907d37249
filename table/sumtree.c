/* SPDX-License-Identifier: MIT */
#include "sumtree.h"

#include <errno.h>
#include <stdlib.h>

int xr_sumtree_init(struct xr_sumtree *t, uint32_t n)
{
	uint32_t cap = 1;

	if (n == 0 || n > (1u << 31))
		return -EINVAL;
	while (cap < n)
		cap <<= 1;
	t->node = calloc(2 * (size_t)cap, sizeof(double));
	if (!t->node)
		return -ENOMEM;
	t->cap = cap;
	return 0;
}

void xr_sumtree_free(struct xr_sumtree *t)
{
	free(t->node);
	t->node = NULL;
	t->cap = 0;
}

void xr_sumtree_set(struct xr_sumtree *t, uint32_t i, double w)
{
	uint32_t k = t->cap + i;

	t->node[k] = w;
	for (k >>= 1; k; k >>= 1)
		t->node[k] = t->node[2 * k] + t->node[2 * k + 1];
}

uint32_t xr_sumtree_find(const struct xr_sumtree *t, double u)
{
	uint32_t k = 1;

	/* Every step goes to a child with a positive sum: if u falls left, the
	 * left sum exceeds u >= 0; otherwise right unless the right sum is zero
	 * (u at or past the total by rounding), and then the left sum is the
	 * node's own, positive. So the leaf reached has a positive weight. */
	while (k < t->cap) {
		double left = t->node[2 * k];

		if (u < left || t->node[2 * k + 1] <= 0) {
			k = 2 * k;
		} else {
			u -= left;
			k = 2 * k + 1;
		}
	}
	return k - t->cap;
}
