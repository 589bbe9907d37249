/* SPDX-License-Identifier: MIT */
/*
 * The random-legal policy (contract in xring/game.h).
 *
 * Two passes over the mask: count the legal entries, draw r below the count,
 * find the r-th. Both passes go eight bytes at a time. A word's legal bytes
 * become 0x01 each, and one multiply sums them into the top byte (at most 8,
 * so no byte overflows). Rejection sampling would be cheaper on full masks but
 * costs n / legal draws on the sparse masks real games have (the grid game
 * opens with 1 or 2 legal moves out of 1601).
 */
#include <errno.h>
#include <string.h>

#include "xring/game.h"

#define ONES 0x0101010101010101ull
#define LOW7 0x7f7f7f7f7f7f7f7full

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* 0x01 in each byte of w that is non-zero, 0x00 elsewhere. */
static uint64_t nonzero_bytes(uint64_t w)
{
	return ((((w & LOW7) + LOW7) | w) >> 7) & ONES;
}

static uint32_t count_word(uint64_t w)
{
	return (uint32_t)((nonzero_bytes(w) * ONES) >> 56);
}

int32_t xr_policy_random_legal(const uint8_t *mask, uint32_t n, uint64_t *rng_state)
{
	uint32_t words = n / 8, legal = 0, r, i;
	uint64_t w;

	for (i = 0; i < words; i++) {
		memcpy(&w, mask + (size_t)i * 8, 8);
		legal += count_word(w);
	}
	for (i = words * 8; i < n; i++)
		legal += mask[i] != 0;
	if (!legal)
		return -ENOENT;
	r = (uint32_t)(((splitmix64(rng_state) >> 32) * (uint64_t)legal) >> 32);
	for (i = 0; i < words; i++) {
		uint32_t k;

		memcpy(&w, mask + (size_t)i * 8, 8);
		k = count_word(w);
		if (r < k)
			break;
		r -= k;
	}
	for (i *= 8; i < n; i++)
		if (mask[i] && r-- == 0)
			return (int32_t)i;
	return -ENOENT; /* not reached: the count said the r-th legal entry exists */
}
