/* SPDX-License-Identifier: MIT */
/*
 * The random-legal policy (contract in xring/game.h).
 *
 * Two passes over the mask: count the legal (non-zero) entries, draw r below
 * the count, find the r-th. Rejection sampling would be cheaper on full
 * masks but costs n / legal draws on the sparse masks real games have (the
 * grid game opens with 1 or 2 legal moves out of 1601). With SSE2 both
 * passes go 16 bytes at a time (psadbw sums a block's legal bytes, movemask
 * finds the r-th within the block); otherwise 8 bytes at a time, with a
 * word's legal bytes made 0x01 each and summed by one multiply.
 */
#include <errno.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

#if defined(__SSE2__)
#define BLOCK 16

/* 0x01 in each legal byte of mask[i..i+15], 0x00 elsewhere. */
static inline __m128i legal_bytes(const uint8_t *mask, uint32_t i)
{
	__m128i m = _mm_loadu_si128((const void *)(mask + i));

	return _mm_andnot_si128(_mm_cmpeq_epi8(m, _mm_setzero_si128()), _mm_set1_epi8(1));
}

static inline uint32_t block_count(const uint8_t *mask, uint32_t i)
{
	__m128i s = _mm_sad_epu8(legal_bytes(mask, i), _mm_setzero_si128());

	return (uint32_t)_mm_cvtsi128_si32(s) + (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(s, 8));
}

static uint32_t count_blocks(const uint8_t *mask, uint32_t blocks)
{
	__m128i acc = _mm_setzero_si128();

	for (uint32_t b = 0; b < blocks; b++)
		acc = _mm_add_epi64(acc, _mm_sad_epu8(legal_bytes(mask, b * BLOCK), _mm_setzero_si128()));
	return (uint32_t)_mm_cvtsi128_si32(acc) + (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(acc, 8));
}
#else
#define BLOCK 8

/* 0x01 in each non-zero byte of w, 0x00 elsewhere. */
static uint64_t nonzero_bytes(uint64_t w)
{
	return ((((w & LOW7) + LOW7) | w) >> 7) & ONES;
}

static inline uint32_t block_count(const uint8_t *mask, uint32_t i)
{
	uint64_t w;

	memcpy(&w, mask + i, 8);
	return (uint32_t)((nonzero_bytes(w) * ONES) >> 56);
}

static uint32_t count_blocks(const uint8_t *mask, uint32_t blocks)
{
	uint32_t legal = 0;

	for (uint32_t b = 0; b < blocks; b++)
		legal += block_count(mask, b * BLOCK);
	return legal;
}
#endif

int32_t xr_policy_random_legal(const uint8_t *mask, uint32_t n, uint64_t *rng_state)
{
	uint32_t blocks = n / BLOCK, legal, r, i;

	legal = count_blocks(mask, blocks);
	for (i = blocks * BLOCK; i < n; i++)
		legal += mask[i] != 0;
	if (!legal)
		return -ENOENT;
	r = (uint32_t)(((splitmix64(rng_state) >> 32) * (uint64_t)legal) >> 32);
	for (i = 0; i < blocks * BLOCK; i += BLOCK) {
		uint32_t k = block_count(mask, i);

		if (r < k)
			break;
		r -= k;
	}
	/* The r-th legal entry is at or after i (within the block found, or
	 * in the tail). */
	for (; i < n; i++)
		if (mask[i] && r-- == 0)
			return (int32_t)i;
	return -ENOENT; /* not reached: the count said the r-th legal entry exists */
}
