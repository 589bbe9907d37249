/* SPDX-License-Identifier: MIT */
#include "limiter.h"

#include <errno.h>
#include <math.h>

int xr_limiter_init(struct xr_limiter *l, uint64_t min_size, double spi, double error_buffer,
		    const char **why)
{
	*l = (struct xr_limiter){.spi = spi, .min_size = min_size};
	if (!isfinite(spi) || spi < 0) {
		*why = "samples_per_insert must be a finite number >= 0";
		return -EINVAL;
	}
	if (spi == 0) {
		l->min_diff = -INFINITY;
		l->max_diff = INFINITY;
		return 0;
	}
	if (!isfinite(error_buffer) || error_buffer < (spi > 1 ? spi : 1)) {
		*why = "error_buffer must be at least max(1, samples_per_insert), "
		       "or sampling and inserting could both wait for ever";
		return -EINVAL;
	}
	l->min_diff = spi * (double)min_size - error_buffer;
	l->max_diff = spi * (double)min_size + error_buffer;
	return 0;
}

double xr_limiter_diff(const struct xr_limiter *l)
{
	return (double)l->inserts * l->spi - (double)l->samples;
}

uint64_t xr_limiter_samples_allowed(const struct xr_limiter *l, uint64_t n)
{
	double room;

	if (l->inserts - l->removes < l->min_size)
		return 0;
	if (l->spi == 0)
		return n;
	room = floor(xr_limiter_diff(l) - l->min_diff);
	if (!(room > 0))
		return 0;
	return room < (double)n ? (uint64_t)room : n;
}

bool xr_limiter_can_insert(const struct xr_limiter *l, uint64_t n)
{
	if (l->inserts + n - l->removes <= l->min_size)
		return true;
	return (double)(l->inserts + n) * l->spi - (double)l->samples <= l->max_diff;
}
