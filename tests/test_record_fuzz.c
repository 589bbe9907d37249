/* SPDX-License-Identifier: MIT */
/*
 * Deterministic mutation fuzzing of the record verifier (label "fuzz").
 *
 * Seeds: builder records of several shapes, flatc-built records, a
 * hand-made back-to-front record. Each round copies a seed (or an earlier
 * mutant that still verified, so mutations compound), applies one to four
 * mutations (bit flips, random bytes, FlatBuffers-meaningful 16/32-bit
 * values at aligned positions, truncation, extension, splices) and hands
 * the result to xr_exp_view_init() in a heap block of exactly its size.
 *
 * For every accepted mutant the harness checks what the verifier promises:
 * all view pointers inside the buffer, ndim <= 8, dtype known, every dim
 * >= 1 and product(dims) * dtype size == obs_bytes, and it reads every byte
 * the view covers (ASan reports any escape). It also checks that appending
 * bytes to an accepted buffer neither makes it invalid nor changes the view.
 *
 * Usage: test_record_fuzz [ROUNDS [SEED]]   (default 200000 rounds)
 * Meaningful under -fsanitize=address,undefined (XRING_ASAN/XRING_UBSAN).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xring/error.h"
#include "xring/record.h"

#include "record_samples.h"

#define MAX_LEN 4096
#define POOL 64

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static uint32_t below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

struct buf {
	uint8_t b[MAX_LEN];
	uint32_t len;
};

static struct buf seeds[16];
static int nseeds;
static struct buf pool[POOL];
static int npool;

static void add_seed(const void *p, uint32_t len)
{
	if (nseeds == 16 || len > MAX_LEN) {
		fprintf(stderr, "seed table full or seed too long\n");
		exit(1);
	}
	memcpy(seeds[nseeds].b, p, len);
	seeds[nseeds].len = len;
	nseeds++;
}

static void add_built_seed(const xr_exp_shape *s)
{
	xr_exp_fields f = {.seq = 77, .t_ns = 1000, .game_id = 9,
			   .player_id = 2, .turn = 31, .action = -1,
			   .reward = 0.25f, .truncated = true};
	xr_exp_template t;
	xr_exp_slots slots;
	uint8_t *base;

	if (xr_exp_template_init(&t, s) || t.size > MAX_LEN) {
		fprintf(stderr, "bad fuzz seed shape\n");
		exit(1);
	}
	base = aligned_alloc(64, MAX_LEN + 64);
	if (!base) {
		perror("aligned_alloc");
		exit(1);
	}
	xr_exp_build(&t, base + XR_EXP_DEST_SKEW, &f, &slots);
	for (uint64_t i = 0; i < t.obs_bytes; i++)
		((uint8_t *)slots.obs)[i] = (uint8_t)(i * 13);
	if (slots.mask)
		memset(slots.mask, 1, s->mask_len);
	if (slots.extras)
		memset(slots.extras, 0x42, s->extras_len);
	add_seed(base + XR_EXP_DEST_SKEW, t.size);
	free(base);
}

static void put16(uint8_t *p, uint16_t x)
{
	memcpy(p, &x, 2);
}

static void put32(uint8_t *p, uint32_t x)
{
	memcpy(p, &x, 4);
}

static uint32_t interesting32(uint32_t len)
{
	static const uint32_t v[] = {0, 1, 2, 3, 4, 8, 9, 0x7f, 0x80, 0xff,
				     0xfffe, 0xffff, 0x10000, 0x3fffffff,
				     0x40000000, 0x40000001, 0x7fffffff,
				     0x80000000, 0xfffffffc, 0xffffffff};
	uint32_t r = below(24);

	if (r < 20)
		return v[r];
	if (r == 20)
		return len;
	if (r == 21)
		return len - 4;
	if (r == 22)
		return (uint32_t)-(int32_t)len;
	return below(len + 8);
}

static void mutate(struct buf *m)
{
	uint32_t len = m->len;
	uint32_t pos = len ? below(len) : 0;

	switch (below(8)) {
	case 0: /* flip a bit */
		if (len)
			m->b[pos] ^= (uint8_t)(1u << below(8));
		break;
	case 1: /* random byte */
		if (len)
			m->b[pos] = (uint8_t)rnd();
		break;
	case 2: /* meaningful u16 at an even position (vtable entries) */
		pos &= ~1u;
		if (pos + 2 <= len)
			put16(m->b + pos, (uint16_t)(below(2) ?
				interesting32(len) : below(64)));
		break;
	case 3: /* meaningful u32 at a 4-aligned position (offsets, lengths) */
	case 4:
		pos &= ~3u;
		if (pos + 4 <= len)
			put32(m->b + pos, interesting32(len));
		break;
	case 5: /* truncate */
		m->len = len ? below(len + 1) : 0;
		break;
	case 6: /* extend with random bytes */
	{
		uint32_t n = below(64);

		if (len + n > MAX_LEN)
			n = MAX_LEN - len;
		for (uint32_t i = 0; i < n; i++)
			m->b[len + i] = (uint8_t)rnd();
		m->len = len + n;
		break;
	}
	case 7: /* splice: copy a run of the buffer over another part */
	{
		uint32_t from = len ? below(len) : 0;
		uint32_t n = below(16);

		if (from + n <= len && pos + n <= len)
			memmove(m->b + pos, m->b + from, n);
		break;
	}
	}
}

static unsigned long failures;

#define FAIL(...)                                                             \
	do {                                                                  \
		if (failures++ < 20) {                                        \
			fprintf(stderr, "round %lu: ", round);                \
			fprintf(stderr, __VA_ARGS__);                         \
			fputc('\n', stderr);                                  \
		}                                                             \
	} while (0)

/* Checks what an accepted view promises; reads every covered byte. */
static unsigned int check_view(const xr_exp_view *v, const uint8_t *c,
			       uint32_t len, unsigned long round)
{
	const uint8_t *end = c + len;
	const uint8_t *o = v->obs;
	unsigned int sum = 0;
	uint64_t n;

	if (o && !(o >= c && o <= end && v->obs_bytes <= (uint64_t)(end - o)))
		FAIL("obs escapes the buffer");
	if (v->mask && !(v->mask >= c && v->mask <= end &&
			 v->mask_len <= (size_t)(end - v->mask)))
		FAIL("mask escapes the buffer");
	if (v->extras && !(v->extras >= c && v->extras <= end &&
			   v->extras_len <= (size_t)(end - v->extras)))
		FAIL("extras escapes the buffer");
	if (v->obs_ndim > XR_EXP_MAX_DIMS) {
		FAIL("ndim %u", v->obs_ndim);
		return 0;
	}
	if (o) {
		n = xr_dtype_size(v->obs_dtype);
		if (!n)
			FAIL("dtype %d", v->obs_dtype);
		for (uint32_t i = 0; i < v->obs_ndim; i++) {
			if (v->obs_dims[i] < 1)
				FAIL("dim %u = %d", i, v->obs_dims[i]);
			n *= (uint64_t)v->obs_dims[i];
		}
		if (n != v->obs_bytes)
			FAIL("shape says %llu bytes, data has %llu",
			     (unsigned long long)n,
			     (unsigned long long)v->obs_bytes);
	} else if (v->obs_bytes || v->obs_ndim) {
		FAIL("no obs but %llu bytes, ndim %u",
		     (unsigned long long)v->obs_bytes, v->obs_ndim);
	}
	for (uint64_t i = 0; o && i < v->obs_bytes; i++)
		sum += o[i];
	for (uint32_t i = 0; v->mask && i < v->mask_len; i++)
		sum += v->mask[i];
	for (uint32_t i = 0; v->extras && i < v->extras_len; i++)
		sum += v->extras[i];
	return sum;
}

/* Offset of p in buffer b, or -1 for NULL, so views of copies compare. */
static int64_t off(const void *p, const uint8_t *b)
{
	return p ? (int64_t)((const uint8_t *)p - b) : -1;
}

static int same_view(const xr_exp_view *x, const uint8_t *xb,
		     const xr_exp_view *y, const uint8_t *yb)
{
	return x->f.seq == y->f.seq && x->f.t_ns == y->f.t_ns &&
	       x->f.game_id == y->f.game_id &&
	       x->f.player_id == y->f.player_id && x->f.turn == y->f.turn &&
	       x->f.action == y->f.action &&
	       !memcmp(&x->f.reward, &y->f.reward, 4) &&
	       x->f.done == y->f.done && x->f.truncated == y->f.truncated &&
	       x->obs_dtype == y->obs_dtype && x->obs_ndim == y->obs_ndim &&
	       !memcmp(x->obs_dims, y->obs_dims, sizeof(x->obs_dims)) &&
	       off(x->obs, xb) == off(y->obs, yb) &&
	       x->obs_bytes == y->obs_bytes &&
	       off(x->mask, xb) == off(y->mask, yb) &&
	       x->mask_len == y->mask_len &&
	       off(x->extras, xb) == off(y->extras, yb) &&
	       x->extras_len == y->extras_len;
}

int main(int argc, char **argv)
{
	unsigned long rounds = argc > 1 ? strtoul(argv[1], NULL, 0) : 200000;
	unsigned long accepted = 0;
	unsigned int sum = 0;
	struct buf m;
	uint8_t hand[32] = {0};

	rng = argc > 2 ? strtoull(argv[2], NULL, 0) : 0x243f6a8885a308d3ull;
	if (!rng)
		rng = 1;

	{
		xr_exp_shape s1 = {.obs_dtype = XR_DTYPE_U8, .obs_ndim = 3,
				   .obs_dims = {3, 4, 5}, .mask_len = 7,
				   .extras_len = 3};
		xr_exp_shape s2 = {.obs_dtype = XR_DTYPE_F32, .obs_ndim = 1,
				   .obs_dims = {6}};
		xr_exp_shape s3 = {.obs_dtype = XR_DTYPE_I64, .obs_ndim = 0,
				   .extras_len = 9};
		xr_exp_shape s4 = {.obs_dtype = XR_DTYPE_BOOL, .obs_ndim = 8,
				   .obs_dims = {1, 2, 1, 2, 1, 2, 1, 2},
				   .mask_len = 1};

		add_built_seed(&s1);
		add_built_seed(&s2);
		add_built_seed(&s3);
		add_built_seed(&s4);
	}
	add_seed(flatc_full, sizeof(flatc_full));
	add_seed(flatc_min, sizeof(flatc_min));
	add_seed(flatc_applied, sizeof(flatc_applied));
	/* Back to front: table at 8, its vtable after it at 16. */
	put32(hand, 8);
	put32(hand + 8, (uint32_t)-8);
	put32(hand + 12, 77);
	put16(hand + 16, 14);
	put16(hand + 18, 8);
	put16(hand + 28, 4);
	add_seed(hand, 32);

	for (int i = 0; i < nseeds; i++) {
		xr_exp_view v;

		if (xr_exp_view_init(&v, seeds[i].b, seeds[i].len)) {
			fprintf(stderr, "seed %d does not verify\n", i);
			return 1;
		}
	}

	for (unsigned long round = 0; round < rounds; round++) {
		xr_exp_view v;
		uint8_t *c;
		int rc, nmut = 1 + (int)below(4);

		if (npool && below(4) == 0)
			m = pool[below((uint32_t)npool)];
		else
			m = seeds[below((uint32_t)nseeds)];
		for (int k = 0; k < nmut; k++)
			mutate(&m);

		c = malloc(m.len ? m.len : 1);
		if (!c) {
			perror("malloc");
			return 1;
		}
		memcpy(c, m.b, m.len);
		rc = xr_exp_view_init(&v, c, m.len);
		if (rc != 0 && rc != XR_EBADREC)
			FAIL("unexpected return %d", rc);
		if (rc == 0) {
			accepted++;
			sum += check_view(&v, c, m.len, round);
			if (npool < POOL)
				pool[npool++] = m;
			else
				pool[below(POOL)] = m;
			/* Longer buffers keep it valid, with the same view. */
			if (round % 8 == 0 && m.len + 24 <= MAX_LEN) {
				uint8_t *e = malloc(m.len + 24);
				xr_exp_view w;

				if (!e) {
					perror("malloc");
					return 1;
				}
				memcpy(e, m.b, m.len);
				memset(e + m.len, 0xa5, 24);
				if (xr_exp_view_init(&w, e, m.len + 24))
					FAIL("valid record invalid when extended");
				else if (!same_view(&v, c, &w, e))
					FAIL("view changed when extended");
				free(e);
			}
		}
		free(c);
	}
	__asm__ volatile("" : : "r"(sum));

	printf("test_record_fuzz: %lu rounds, %lu accepted, %lu failures\n",
	       rounds, accepted, failures);
	if (failures) {
		fprintf(stderr, "test_record_fuzz: %lu check(s) failed\n",
			failures);
		return 1;
	}
	return 0;
}
