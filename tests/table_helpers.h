/* SPDX-License-Identifier: MIT */
#ifndef XR_TESTS_TABLE_HELPERS_H
#define XR_TESTS_TABLE_HELPERS_H

/* What the replay-table tests share: a table from a few fields, and the
 * chi-square test of counts against a distribution. */

#include <math.h>

#include "ring_helpers.h"
#include "table/table.h"

static inline void table_make(struct xr_tb *t, struct xr_tb_cfg c)
{
	const char *why = NULL;
	int rc = xr__tb_init(t, &c, &why);

	if (rc < 0)
		FAILF("xr__tb_init: %s (%s)", xr_err_name(rc), why ? why : "?");
}

/* The chi-square statistic of counts[k] against probabilities p[k] over
 * `total` draws; categories expected to hold nothing must hold nothing
 * (returns INFINITY otherwise). *df gets the degrees of freedom. */
static inline double chi2(const uint64_t *counts, const double *p, size_t k, uint64_t total,
			  unsigned *df)
{
	double x = 0;
	unsigned cats = 0;

	for (size_t i = 0; i < k; i++) {
		double e = p[i] * (double)total;
		if (e == 0) {
			if (counts[i])
				return INFINITY;
			continue;
		}
		x += ((double)counts[i] - e) * ((double)counts[i] - e) / e;
		cats++;
	}
	*df = cats ? cats - 1 : 0;
	return x;
}

/* The chi-square quantile at 1 - 1e-6 for df degrees of freedom (Wilson and
 * Hilferty's cube-root normal approximation, z = 4.753): a correct sampler
 * exceeds it once in a million runs; the draws are seeded, so a run is
 * reproducible, and the bound is only crossed by a real departure. */
static inline double chi2_bound(unsigned df)
{
	double k = df, a = 2.0 / (9.0 * k), z = 4.753;

	return k * pow(1 - a + z * sqrt(a), 3);
}

#endif
