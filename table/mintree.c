/* SPDX-License-Identifier: MIT */
#include "mintree.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

int xr_mintree_init(struct xr_mintree *t, uint32_t n)
{
	uint32_t cap = 1;

	if (n == 0 || n > (1u << 31))
		return -EINVAL;
	while (cap < n)
		cap <<= 1;
	t->node = malloc(2 * (size_t)cap * sizeof(double));
	if (!t->node)
		return -ENOMEM;
	for (size_t k = 0; k < 2 * (size_t)cap; k++)
		t->node[k] = INFINITY;
	t->cap = cap;
	return 0;
}

void xr_mintree_free(struct xr_mintree *t)
{
	free(t->node);
	t->node = NULL;
	t->cap = 0;
}

void xr_mintree_set(struct xr_mintree *t, uint32_t i, double v)
{
	uint32_t k = t->cap + i;

	t->node[k] = v;
	for (k >>= 1; k; k >>= 1) {
		double l = t->node[2 * k], r = t->node[2 * k + 1];
		t->node[k] = r < l ? r : l;
	}
}

uint32_t xr_mintree_argmin(const struct xr_mintree *t)
{
	uint32_t k = 1;

	/* A node's value is one of its children's, exactly: follow it down. */
	while (k < t->cap)
		k = t->node[2 * k] <= t->node[k] ? 2 * k : 2 * k + 1;
	return k - t->cap;
}
