/* SPDX-License-Identifier: MIT */
#include "mintree.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int xr_mintree_init(struct xr_mintree *t, uint32_t n)
{
	uint64_t width[XR_TREE_LEVELS_MAX] = {0}, total;

	memset(t, 0, sizeof(*t));
	if (n == 0 || n > (1u << 31))
		return -EINVAL;
	t->levels = xr__tree_levels(n, XR_TREE_FAN, width, &total);
	if (xr__tree_alloc(&t->mem, total * sizeof(double)) < 0)
		return -ENOMEM;
	double *p = t->mem;
	for (uint64_t k = 0; k < total; k++)
		p[k] = INFINITY;
	for (uint32_t l = 0; l < t->levels; l++) {
		t->level[l] = p;
		p += width[l];
	}
	t->n = n;
	t->min = INFINITY;
	return 0;
}

void xr_mintree_free(struct xr_mintree *t)
{
	free(t->mem);
	memset(t, 0, sizeof(*t));
}

static double line_min(const double *c)
{
	double a = c[0] < c[1] ? c[0] : c[1], b = c[2] < c[3] ? c[2] : c[3];
	double d = c[4] < c[5] ? c[4] : c[5], e = c[6] < c[7] ? c[6] : c[7];

	a = a < b ? a : b;
	d = d < e ? d : e;
	return a < d ? a : d;
}

void xr_mintree_set(struct xr_mintree *t, uint32_t i, double v)
{
	uint64_t k = i;

	t->level[t->levels - 1][k] = v;
	for (uint32_t l = t->levels - 1; l > 0; l--) {
		uint64_t parent = k / XR_MINTREE_FAN;
		double m = line_min(t->level[l] + parent * XR_MINTREE_FAN);
		if (t->level[l - 1][parent] == m)
			return; /* nothing above changes: min below is t->min's path */
		t->level[l - 1][parent] = m;
		k = parent;
	}
	t->min = line_min(t->level[0]);
}

uint32_t xr_mintree_argmin(const struct xr_mintree *t)
{
	uint64_t k = 0;
	double m = t->min;

	/* A node's value is one of its children's, exactly: follow it down,
	 * leftmost first. */
	for (uint32_t l = 0; l < t->levels; l++) {
		const double *c = t->level[l] + k * XR_MINTREE_FAN;
		uint32_t j = 0;
		while (j < XR_MINTREE_FAN - 1 && c[j] != m)
			j++;
		k = k * XR_MINTREE_FAN + j;
	}
	return (uint32_t)k;
}
