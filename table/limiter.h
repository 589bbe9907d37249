/* SPDX-License-Identifier: MIT */
#ifndef XR_TABLE_LIMITER_H
#define XR_TABLE_LIMITER_H

/*
 * A replay table's rate limiter: how many items may be sampled per item
 * inserted, as Reverb's SampleToInsertRatio (and, with samples_per_insert 0,
 * its MinSize).
 *
 * With I items inserted, S sampled and R removed over the table's life, the
 * limiter watches D = I * spi - S, which grows by spi per insert and shrinks
 * by one per sample, and keeps it in [min_diff, max_diff] =
 * [spi * min_size - error_buffer, spi * min_size + error_buffer]:
 *   - n samples may go when the table holds at least min_size items
 *     (I - R >= min_size) and D - n >= min_diff;
 *   - n inserts may go while the table is still filling to min_size
 *     (I + n - R <= min_size), or when (I + n) * spi - S <= max_diff.
 * So over any stretch samples keep to spi per insert within error_buffer
 * either way, and a sampler never sees a table smaller than min_size.
 *
 * It cannot deadlock: xr_limiter_init() insists on error_buffer >=
 * max(1, spi) (Reverb's bound too), so the window is at least spi + 1 wide
 * and at any D either one insert (D <= max_diff - spi) or one sample
 * (D >= min_diff + 1) may go, once min_size items are in. A sample of n at
 * once needs D >= min_diff + n, which inserts can always reach for n <=
 * 2 * error_buffer - spi: the table's sample() takes what the limiter allows
 * now and its caller waits for the rest.
 *
 * The counts are the whole state: a checkpoint saves them and a restore puts
 * them back, so the ratio holds across a restart (Reverb's users have hit a
 * limiter that blocked for ever after a restore that reset some counts and
 * not others; here the restore checks I - R against the items it restores).
 */

#include <stdbool.h>
#include <stdint.h>

struct xr_limiter {
	double spi;          /* samples per insert; 0: no ratio, only min_size */
	double min_diff, max_diff;
	uint64_t min_size;
	uint64_t inserts, samples, removes;
};

/* Sets up a limiter with zero counts. spi >= 0 and finite; error_buffer
 * finite and >= max(1, spi) when spi > 0 (ignored when spi is 0).
 * Returns 0 or -EINVAL, with *why saying which bound was broken. */
int xr_limiter_init(struct xr_limiter *l, uint64_t min_size, double spi, double error_buffer,
		    const char **why);

/* How many of n samples may go now (0..n). */
uint64_t xr_limiter_samples_allowed(const struct xr_limiter *l, uint64_t n);
/* Whether n inserts may go now. */
bool xr_limiter_can_insert(const struct xr_limiter *l, uint64_t n);

/* D = I * spi - S: where the limiter stands. */
double xr_limiter_diff(const struct xr_limiter *l);

#endif
