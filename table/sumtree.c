/* SPDX-License-Identifier: MIT */
#include "sumtree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int xr_sumtree_init(struct xr_sumtree *t, uint32_t n)
{
	uint64_t total;

	memset(t, 0, sizeof(*t));
	if (n == 0 || n > (1u << 31))
		return -EINVAL;
	t->levels = xr__tree_levels(n, t->width, &total);
	if (xr__tree_alloc(&t->mem, total * sizeof(double)) < 0)
		return -ENOMEM;
	memset(t->mem, 0, total * sizeof(double));
	double *p = t->mem;
	for (uint32_t l = 0; l < t->levels; l++) { /* level 0 the top */
		t->level[l] = p;
		p += t->width[l];
	}
	t->n = n;
	return 0;
}

void xr_sumtree_free(struct xr_sumtree *t)
{
	free(t->mem);
	memset(t, 0, sizeof(*t));
}

static double line_sum(const double *c)
{
	/* In a fixed order, so a node is a function of its children alone. */
	return ((c[0] + c[1]) + (c[2] + c[3])) + ((c[4] + c[5]) + (c[6] + c[7]));
}

void xr_sumtree_set(struct xr_sumtree *t, uint32_t i, double w)
{
	uint64_t k = i;

	t->level[t->levels - 1][k] = w;
	for (uint32_t l = t->levels - 1; l > 0; l--) {
		uint64_t parent = k / XR_SUMTREE_FAN;
		t->level[l - 1][parent] = line_sum(t->level[l] + parent * XR_SUMTREE_FAN);
		k = parent;
	}
	t->total = line_sum(t->level[0]);
}

/*
 * One step: within the line of 8 children at c, the child where u falls,
 * u made relative to it. Branch-free, since which child a random u falls in
 * is as unpredictable as a branch can be: the child is the number of
 * running sums at or below u. Only a child with a positive weight is
 * chosen: child j is taken when sum(c[0..j)) <= u < sum(c[0..j]), so c[j]
 * > 0. If rounding puts u at or past the line's sum (all 8 counted), the
 * last positive child is taken, at its middle; the node had a positive
 * sum, so there is one, and the leaf reached has a positive weight.
 */
static inline uint32_t step(const double *c, double *u)
{
	/* Running sums by pairs, three additions deep rather than eight, and
	 * associated so that a zero child's running sum equals the one before
	 * it exactly (it is never chosen) and the last is line_sum(), the
	 * parent's own value. */
	double a01 = c[0] + c[1], a23 = c[2] + c[3], a45 = c[4] + c[5], a67 = c[6] + c[7];
	double a03 = a01 + a23, a47 = a45 + a67;
	double pre[XR_SUMTREE_FAN] = {c[0],	  a01,		a01 + c[2],	    a03,
				      a03 + c[4], a03 + a45, a03 + (a45 + c[6]), a03 + a47};
	double v = *u;
	uint32_t j = 0;

	for (uint32_t i = 0; i < XR_SUMTREE_FAN; i++)
		j += pre[i] <= v;
	if (__builtin_expect(j == XR_SUMTREE_FAN, 0)) {
		j = XR_SUMTREE_FAN - 1;
		while (j > 0 && !(c[j] > 0))
			j--;
		*u = c[j] * 0.5;
		return j;
	}
	*u = j ? v - pre[j - 1] : v;
	return j;
}

uint32_t xr_sumtree_find(const struct xr_sumtree *t, double u)
{
	uint64_t k = 0;

	for (uint32_t l = 0; l < t->levels; l++)
		k = k * XR_SUMTREE_FAN + step(t->level[l] + k * XR_SUMTREE_FAN, &u);
	return (uint32_t)k;
}

void xr_sumtree_find_many(const struct xr_sumtree *t, const double *u, uint32_t *out, uint32_t n)
{
	enum { CHUNK = 256 };
	uint64_t k[CHUNK];
	double v[CHUNK];

	for (uint32_t base = 0; base < n; base += CHUNK) {
		uint32_t m = n - base < CHUNK ? n - base : CHUNK;
		for (uint32_t d = 0; d < m; d++) {
			k[d] = 0;
			v[d] = u[base + d];
		}
		/* Level by level: every descent's next line is asked for
		 * (prefetched) a whole level before it is read. */
		for (uint32_t l = 0; l < t->levels; l++) {
			const double *lv = t->level[l];
			for (uint32_t d = 0; d < m; d++) {
				k[d] = k[d] * XR_SUMTREE_FAN + step(lv + k[d] * XR_SUMTREE_FAN, &v[d]);
				if (l + 1 < t->levels)
					__builtin_prefetch(t->level[l + 1] + k[d] * XR_SUMTREE_FAN);
			}
		}
		for (uint32_t d = 0; d < m; d++)
			out[base + d] = (uint32_t)k[d];
	}
}
