/* SPDX-License-Identifier: MIT */
/*
 * Replay table checkpoints (table/checkpoint.c):
 *   - a round trip keeps configuration, limiter counts, every item (key,
 *     priority, times sampled, bytes), the insertion order and the random
 *     state: the restored table draws exactly what the original draws next
 *   - keys from before the checkpoint still work after it; keys of items
 *     removed before it stay refused; no key is handed out twice
 *   - the limiter stands where it stood: a table that could sample before
 *     can after (no block after a restore)
 *   - every truncation, and a flipped byte anywhere, is refused (-EINVAL);
 *     fields altered under a valid checksum are refused by their checks
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table_helpers.h"

enum { ITEM = 24 };

struct buf {
	unsigned char *p;
	size_t len, cap, at;
	unsigned char (*items)[ITEM]; /* the table's item bytes, per slot */
};

static int put(void *ctx, const void *p, size_t n)
{
	struct buf *b = ctx;

	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			return -ENOMEM;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static int get(void *ctx, void *p, size_t n)
{
	struct buf *b = ctx;

	if (b->len - b->at < n)
		return -ENODATA;
	memcpy(p, b->p + b->at, n);
	b->at += n;
	return 0;
}

static void *item(void *ctx, uint32_t slot)
{
	return ((struct buf *)ctx)->items[slot];
}

static struct xr_tb_io io_of(struct buf *b)
{
	return (struct xr_tb_io){.put = put, .get = get, .item = item, .item_size = ITEM, .ctx = b};
}

static int restore_from(struct xr_tb *t, const unsigned char *p, size_t len,
			unsigned char (*items)[ITEM], const char **why)
{
	struct buf b = {.p = (unsigned char *)p, .len = len, .items = items};
	struct xr_tb_io io = io_of(&b);

	*why = NULL;
	return xr__tb_restore(t, &io, why);
}

static uint64_t fnv(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* Re-seals an altered checkpoint: the checksum over everything before it. */
static void reseal(unsigned char *p, size_t len)
{
	uint64_t h = fnv(p, len - 8);

	memcpy(p + len - 8, &h, 8);
}

enum { CAP = 64, HEAD = 200 };

int main(void)
{
	static unsigned char items[CAP][ITEM], items2[CAP][ITEM];
	struct xr_tb t, r;
	struct buf b = {.items = items};
	struct xr_tb_io io = io_of(&b);
	uint64_t keys[CAP], k, ev, got[32], got2[32];
	double pr[32], pr2[32], w[32], w2[32];
	uint32_t slot;
	const char *why;
	int n = 0;

	table_make(&t, (struct xr_tb_cfg){.capacity = CAP, .sampler = XR_SAMPLER_PRIORITIZED,
					     .remover = XR_REMOVER_LOWEST, .alpha = 0.7,
					     .beta = 0.5, .max_times_sampled = 50, .min_size = 10,
					     .samples_per_insert = 3, .error_buffer = 40,
					     .seed = 77});
	/* Fill past capacity so the remover has been at work, sample some. */
	for (int i = 0; i < 100; i++) {
		int rc = xr__tb_insert(&t, 1 + (i * 13) % 17, &k, &slot, &ev);
		if (rc == -EAGAIN) {
			int m = xr__tb_sample(&t, 32, got, NULL, NULL);
			CHECK(m > 0);
			for (int j = 0; j < m; j++)
				CHECK_RC(xr__tb_release(&t, got[j]), 0);
			i--;
			continue;
		}
		CHECK_RC(rc, 0);
		memset(items[slot], i + 1, ITEM);
		keys[n++ % CAP] = k;
	}
	uint64_t removed = ev; /* the last insert's victim: a key that is gone */
	CHECK(removed && xr__tb_slot(&t, removed) == XR_TB_NO_SLOT);

	CHECK_RC(xr__tb_save(&t, &io), 0);
	CHECK_EQ(b.len, HEAD + CAP * 4 + t.size * (16 + ITEM) + 8);
	CHECK_RC(restore_from(&r, b.p, b.len, items2, &why), 0);

	/* Same state... */
	CHECK(r.cfg.capacity == t.cfg.capacity && r.cfg.sampler == t.cfg.sampler &&
	      r.cfg.remover == t.cfg.remover && r.cfg.alpha == t.cfg.alpha &&
	      r.cfg.beta == t.cfg.beta && r.cfg.max_times_sampled == t.cfg.max_times_sampled &&
	      r.cfg.min_size == t.cfg.min_size &&
	      r.cfg.samples_per_insert == t.cfg.samples_per_insert &&
	      r.cfg.error_buffer == t.cfg.error_buffer && r.cfg.seed == t.cfg.seed);
	CHECK_EQ(r.lim.inserts, t.lim.inserts);
	CHECK_EQ(r.lim.samples, t.lim.samples);
	CHECK_EQ(r.lim.removes, t.lim.removes);
	CHECK_EQ(r.size, t.size);
	for (uint32_t i = 0; i < CAP; i++)
		CHECK_EQ(r.slot[i].gen, t.slot[i].gen);
	for (uint32_t s = t.oldest, q = r.oldest; s != XR_TB_NO_SLOT;
	     s = t.next[s], q = r.next[q]) {
		CHECK_EQ(q, s);
		CHECK(r.prio[s] == t.prio[s]);
		CHECK_EQ(r.slot[s].times, t.slot[s].times);
		CHECK(memcmp(items2[s], items[s], ITEM) == 0);
	}
	/* ... so the same draws, probabilities and weights. */
	for (int round = 0; round < 20; round++) {
		int m = xr__tb_sample(&t, 32, got, pr, w);
		int m2 = xr__tb_sample(&r, 32, got2, pr2, w2);
		CHECK_EQ(m2, m);
		if (m < 0) {
			CHECK_RC(m, -EAGAIN);
			CHECK_RC(xr__tb_insert(&t, 2, &k, &slot, &ev), 0);
			uint64_t k2;
			CHECK_RC(xr__tb_insert(&r, 2, &k2, &slot, &ev), 0);
			CHECK_EQ(k2, k);
			continue;
		}
		for (int j = 0; j < m; j++) {
			CHECK_EQ(got2[j], got[j]);
			CHECK(pr2[j] == pr[j] && w2[j] == w[j]);
			CHECK_RC(xr__tb_release(&t, got[j]), 0);
			CHECK_RC(xr__tb_release(&r, got[j]), 0);
		}
	}
	/* Old keys work, removed ones stay refused, new keys are new. */
	int live = 0;
	for (int i = 0; i < CAP; i++)
		if (xr__tb_slot(&r, keys[i]) != XR_TB_NO_SLOT) {
			CHECK_RC(xr__tb_update(&r, keys[i], 5), 0);
			live++;
		}
	CHECK(live > 0);
	CHECK_RC(xr__tb_update(&r, removed, 5), -ESTALE);
	for (int i = 0; i < 200; i++) {
		int rc = xr__tb_insert(&r, 1, &k, &slot, &ev);
		if (rc == -EAGAIN) {
			int m = xr__tb_sample(&r, 32, got, NULL, NULL);
			CHECK(m > 0);
			for (int j = 0; j < m; j++)
				CHECK_RC(xr__tb_release(&r, got[j]), 0);
			continue;
		}
		CHECK_RC(rc, 0);
		CHECK(k != removed);
		for (int j = 0; j < CAP; j++)
			CHECK(k != keys[j]);
	}
	xr__tb_free(&r);

	/* Every truncation is refused. */
	for (size_t len = 0; len < b.len; len++) {
		int rc = restore_from(&r, b.p, len, items2, &why);
		if (rc != -EINVAL)
			FAILF("a checkpoint cut to %zu of %zu bytes: %s, want -EINVAL", len, b.len,
			      xr_err_name(rc));
		CHECK(why && *why);
	}
	/* A flipped byte anywhere is refused. */
	unsigned char *c = malloc(b.len);
	CHECK(c);
	for (size_t at = 0; at < b.len; at++) {
		memcpy(c, b.p, b.len);
		c[at] ^= 0x5a;
		int rc = restore_from(&r, c, b.len, items2, &why);
		if (rc != -EINVAL)
			FAILF("byte %zu flipped: %s, want -EINVAL", at, xr_err_name(rc));
	}
	/* Fields altered under a valid checksum: each refused by its check. */
	struct {
		size_t at;
		const void *v;
		size_t n;
		const char *what;
	} alter[] = {
		{8, &(uint32_t){0}, 4, "capacity"},
		{12, &(uint32_t){7}, 4, "sampler"},
		{24, &(double){-1}, 8, "alpha"},
		{72, &(uint64_t){1000000}, 8, "limiter"},   /* inserts */
		{128, &(uint32_t){CAP + 1}, 4, "more items"},  /* count */
		{HEAD + CAP * 4, &(uint32_t){CAP}, 4, "slot"}, /* first item's slot */
		{HEAD + CAP * 4 + 4, &(uint32_t){50}, 4, "max_times"},
		{HEAD + CAP * 4 + 8, &(double){-2}, 8, "priority"},
		{HEAD + CAP * 4 + 8, &(double){NAN}, 8, "priority"},
	};
	for (size_t i = 0; i < sizeof(alter) / sizeof(alter[0]); i++) {
		memcpy(c, b.p, b.len);
		memcpy(c + alter[i].at, alter[i].v, alter[i].n);
		reseal(c, b.len);
		int rc = restore_from(&r, c, b.len, items2, &why);
		if (rc != -EINVAL)
			FAILF("%s altered: %s, want -EINVAL", alter[i].what, xr_err_name(rc));
		printf("%-10s altered: refused: %s\n", alter[i].what, why);
	}
	/* Items of another size, or of another kind (the caller's tag), are
	 * refused as such, not as a damaged file. */
	{
		struct buf b2 = {.p = b.p, .len = b.len, .items = items2};
		struct xr_tb_io io2 = io_of(&b2);
		io2.item_size = ITEM - 1;
		CHECK_RC(xr__tb_restore(&r, &io2, &why), -EINVAL);
		CHECK(strstr(why, "another size") != NULL);
		b2.len = b.len;
		b2.at = 0;
		io2 = io_of(&b2);
		io2.item_tag[3] = 1;
		CHECK_RC(xr__tb_restore(&r, &io2, &why), -EINVAL);
		CHECK(strstr(why, "kind") != NULL);
		printf("other items: refused: %s\n", why);
	}
	/* The second item in the first one's slot. */
	memcpy(c, b.p, b.len);
	memcpy(c + HEAD + CAP * 4 + 16 + ITEM, c + HEAD + CAP * 4, 4);
	reseal(c, b.len);
	CHECK_RC(restore_from(&r, c, b.len, items2, &why), -EINVAL);
	printf("repeated slot: refused: %s\n", why);
	free(c);
	free(b.p);
	xr__tb_free(&t);
	printf("ok\n");
	return 0;
}
