/* SPDX-License-Identifier: MIT */
#include "sumtree.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FAN XR_SUMTREE_FAN
#define LEAF_FAN XR_SUMTREE_LEAF_FAN

static inline uint32_t fan_of(const struct xr_sumtree *t, uint32_t l)
{
	return l + 1 == t->levels ? LEAF_FAN : FAN;
}

int xr_sumtree_init(struct xr_sumtree *t, uint32_t n)
{
	uint64_t total;

	memset(t, 0, sizeof(*t));
	if (n == 0 || n > (1u << 31))
		return -EINVAL;
	t->levels = xr__tree_levels(n, LEAF_FAN, t->width, &total);
	if (xr__tree_alloc(&t->mem, 2 * total * sizeof(double)) < 0)
		return -ENOMEM;
	memset(t->mem, 0, 2 * total * sizeof(double));
	double *p = t->mem;
	for (uint32_t l = 0; l < t->levels; l++) { /* level 0 the top */
		t->level[l] = p;
		p += 2 * t->width[l];
	}
	t->n = n;
	return 0;
}

void xr_sumtree_free(struct xr_sumtree *t)
{
	free(t->mem);
	memset(t, 0, sizeof(*t));
}

/* A node's running sums r[0..fan) from its children's values c[0..fan), in
 * one fixed order (sumtree.h): returns the last, the node's sum. */
static double run_line(double *r, const double *c, uint32_t fan)
{
	double s = c[0];

	r[0] = s;
	for (uint32_t i = 1; i < fan; i++)
		r[i] = s += c[i];
	return s;
}

void xr_sumtree_set(struct xr_sumtree *t, uint32_t i, double w)
{
	uint64_t k = i;

	*xr__sumtree_val(t->level[t->levels - 1], k, LEAF_FAN) = w;
	for (uint32_t l = t->levels; l-- > 0;) {
		uint32_t fan = fan_of(t, l);
		double *run = xr__sumtree_run(t->level[l], k, fan);
		double sum = run_line(run, run + fan, fan);
		k /= fan;
		if (l == 0)
			t->total = sum;
		else
			*xr__sumtree_val(t->level[l - 1], k, FAN) = sum;
	}
}

/*
 * One step: within a node's running sums r[0..fan), the child where u
 * falls, u made relative to it. The child is the number of running sums at
 * or below u, branch-free, since which child a random u falls in is as
 * unpredictable as a branch can be. Only a child with a positive weight is
 * chosen: child j is taken when r[j-1] <= u < r[j], so r[j] > r[j-1] and
 * the child is positive. If rounding puts u at or past the node's sum (all
 * counted), the last positive child is taken, at its middle; the node had
 * a positive sum, so there is one, and the leaf reached has a positive
 * weight.
 */
static inline uint32_t finish(const double *r, double v, uint32_t j, uint32_t fan, double *u)
{
	if (__builtin_expect(j == fan, 0)) {
		j = fan - 1;
		while (j > 0 && !(r[j] > r[j - 1]))
			j--;
		*u = (j ? r[j] - r[j - 1] : r[0]) * 0.5;
		return j;
	}
	*u = j ? v - r[j - 1] : v;
	return j;
}

static inline uint32_t step(const double *r, uint32_t fan, double *u)
{
	double v = *u;
	uint32_t j = 0;

	for (uint32_t i = 0; i < fan; i++)
		j += r[i] <= v;
	return finish(r, v, j, fan, u);
}

uint32_t xr_sumtree_find(const struct xr_sumtree *t, double u)
{
	uint64_t k = 0;

	for (uint32_t l = 0; l < t->levels; l++) {
		uint32_t fan = fan_of(t, l);
		k = k * fan + step(t->level[l] + 2 * k * fan, fan, &u);
	}
	return (uint32_t)k;
}

/* The descents of find_many, level by level: every descent's next line is
 * asked for (prefetched) a whole level before it is read. At the leaves,
 * the leaf's value is read from the line just read, and the caller's
 * record of the leaf asked for: a batch's reads of them after the descents
 * (table.c: one slot a draw) then find them arrived, where a prefetch
 * issued after the descents, just before the reads, left each read
 * waiting. STEP(r, fan, u) is the step, generic or AVX2's. */
#define FIND_MANY(STEP)                                                                     \
	for (uint32_t base = 0; base < n; base += CHUNK) {                                  \
		uint32_t m = n - base < CHUNK ? n - base : CHUNK;                           \
		for (uint32_t d = 0; d < m; d++) {                                          \
			k[d] = 0;                                                           \
			v[d] = u[base + d];                                                 \
		}                                                                           \
		for (uint32_t l = 0; l + 1 < t->levels; l++) {                              \
			const double *lv = t->level[l], *next = t->level[l + 1];            \
			uint64_t nfan = fan_of(t, l + 1);                                  \
			for (uint32_t d = 0; d < m; d++) {                                  \
				k[d] = k[d] * FAN + STEP(lv + 2 * k[d] * FAN, FAN, &v[d]);  \
				__builtin_prefetch(next + 2 * k[d] * nfan);                 \
			}                                                                   \
		}                                                                           \
		const double *leaves = t->level[t->levels - 1];                             \
		for (uint32_t d = 0; d < m; d++) {                                          \
			const double *line = leaves + 2 * k[d] * LEAF_FAN;                 \
			uint32_t j = STEP(line, LEAF_FAN, &v[d]);                           \
			k[d] = k[d] * LEAF_FAN + j;                                         \
			out[base + d] = (uint32_t)k[d];                                     \
			val[base + d] = line[LEAF_FAN + j];                                 \
			if (pf)                                                             \
				__builtin_prefetch(pf + k[d] * pf_stride, 1);               \
		}                                                                           \
	}

enum { CHUNK = 256 };

void xr__sumtree_find_many_generic(const struct xr_sumtree *t, const double *u, uint32_t *out,
				   double *val, const void *prefetch, size_t pf_stride, uint32_t n)
{
	const char *pf = prefetch;
	uint64_t k[CHUNK];
	double v[CHUNK];

	FIND_MANY(step)
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* step() with 4-wide compares, two above the leaves and one at them: about
 * 30 % of a batch's time at a million leaves, where the generic step's
 * scalar compares were half of it (perf/bench_table). Same result bit for
 * bit: the same compares. */
__attribute__((target("avx2,popcnt"))) static inline uint32_t step_avx2(const double *r,
									uint32_t fan,
									double *u)
{
	double v = *u;
	__m256d vv = _mm256_set1_pd(v);
	unsigned mask = (unsigned)_mm256_movemask_pd(
		_mm256_cmp_pd(_mm256_loadu_pd(r), vv, _CMP_LE_OQ));

	if (fan == FAN)
		mask |= (unsigned)_mm256_movemask_pd(
				_mm256_cmp_pd(_mm256_loadu_pd(r + 4), vv, _CMP_LE_OQ))
			<< 4;
	return finish(r, v, (uint32_t)__builtin_popcount(mask), fan, u);
}

__attribute__((target("avx2,popcnt"))) static void find_many_avx2(const struct xr_sumtree *t,
								   const double *u, uint32_t *out,
								   double *val, const void *prefetch,
								   size_t pf_stride, uint32_t n)
{
	const char *pf = prefetch;
	uint64_t k[CHUNK];
	double v[CHUNK];

	FIND_MANY(step_avx2)
}

static bool have_avx2(void)
{
	/* __builtin_cpu_supports() reads what libgcc's constructor found:
	 * cheap, and the same answer every call. */
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
}
#else
static bool have_avx2(void)
{
	return false;
}

static void find_many_avx2(const struct xr_sumtree *t, const double *u, uint32_t *out,
			   double *val, const void *prefetch, size_t pf_stride, uint32_t n)
{
	xr__sumtree_find_many_generic(t, u, out, val, prefetch, pf_stride, n);
}
#endif

void xr_sumtree_find_many(const struct xr_sumtree *t, const double *u, uint32_t *out,
			  double *val, const void *prefetch, size_t pf_stride, uint32_t n)
{
	if (have_avx2())
		find_many_avx2(t, u, out, val, prefetch, pf_stride, n);
	else
		xr__sumtree_find_many_generic(t, u, out, val, prefetch, pf_stride, n);
}
