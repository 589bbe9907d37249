/* SPDX-License-Identifier: MIT */
/*
 * Replay tables' bookkeeping (table/table.h), checked against the
 * definitions:
 *   - uniform draws: chi-square against 1/N over many draws; prob 1/N, weight 1
 *   - prioritized: chi-square against p^alpha / sum p^alpha; each draw's
 *     probability and importance weight (N P_i)^-beta / max_j (N P_j)^-beta
 *     equal to the test's own computation; zero-priority items never drawn;
 *     the same counts fail the test against alpha = 1 (the test has power);
 *     priorities updated, the distribution follows
 *   - fifo and lifo samplers: the oldest / newest items, in order;
 *     max_times_sampled 1 makes a queue that hands out each item once
 *   - removers fifo, lifo, lowest-priority: the right item goes, never a
 *     leased one; a full table of leased items refuses inserts (-EBUSY)
 *   - leases and keys: a removed leased item keeps its slot until released;
 *     stale keys and double releases are refused (-ESTALE)
 *   - the sum tree stays exact after a million updates
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table/mintree.h"
#include "table/sumtree.h"
#include "table_helpers.h"

static uint64_t ins(struct xr_tb *t, double p)
{
	uint64_t key, ev;
	uint32_t slot;

	CHECK_RC(xr__tb_insert(t, p, &key, &slot, &ev), 0);
	CHECK_EQ((uint32_t)key, slot);
	return key;
}

static void release_all(struct xr_tb *t, const uint64_t *keys, int n)
{
	for (int i = 0; i < n; i++)
		CHECK_RC(xr__tb_release(t, keys[i]), 0);
}

static void test_uniform(void)
{
	enum { N = 50, DRAWS = 400000, B = 64 };
	struct xr_tb t;
	uint64_t keys[B], counts[N] = {0}, slot_of_item[N];
	double prob[B], w[B], p[N];
	unsigned df;

	table_make(&t, (struct xr_tb_cfg){.capacity = 64, .sampler = XR_SAMPLER_UNIFORM,
					     .remover = XR_REMOVER_FIFO, .seed = 1});
	for (int i = 0; i < N; i++)
		slot_of_item[i] = (uint32_t)ins(&t, 1.0 + i);
	for (int d = 0; d < DRAWS; d += B) {
		CHECK_RC(xr__tb_sample(&t, B, keys, prob, w), B);
		for (int i = 0; i < B; i++) {
			uint32_t s = (uint32_t)keys[i];
			CHECK(s < N && slot_of_item[s] == s);
			CHECK(prob[i] == 1.0 / N && w[i] == 1.0);
			counts[s]++;
		}
		release_all(&t, keys, B);
	}
	for (int i = 0; i < N; i++)
		p[i] = 1.0 / N;
	double x = chi2(counts, p, N, DRAWS, &df);
	if (x > chi2_bound(df))
		FAILF("uniform: chi2 %.1f > %.1f (df %u)", x, chi2_bound(df), df);
	CHECK_EQ(t.leases, 0);
	CHECK_EQ(t.lim.samples, DRAWS);
	xr__tb_free(&t);
	printf("uniform: %d draws over %d items, chi2 %.1f (bound %.1f)\n", DRAWS, N, x,
	       chi2_bound(df));
}

/* Draws DRAWS items and checks them against priorities pr[] under alpha and
 * beta: per-draw probability and weight, and the counts. Returns chi2
 * against alpha_wrong as well, through *x_wrong. */
static void check_prioritized(struct xr_tb *t, const double *pr, int n, double alpha,
			      double beta, double alpha_wrong, double *x_right, double *x_wrong)
{
	enum { DRAWS = 600000, B = 256 };
	uint64_t keys[B], *counts = calloc(n, sizeof(uint64_t));
	double prob[B], w[B], *p = calloc(n, sizeof(double)), *q = calloc(n, sizeof(double));
	double sum = 0, sumq = 0, pmin = INFINITY;
	unsigned df;

	CHECK(counts && p && q);
	for (int i = 0; i < n; i++) {
		p[i] = pow(pr[i], alpha);
		q[i] = pow(pr[i], alpha_wrong);
		sum += p[i];
		sumq += q[i];
	}
	for (int i = 0; i < n; i++) {
		p[i] /= sum;
		q[i] /= sumq;
		if (p[i] > 0 && p[i] < pmin)
			pmin = p[i];
	}
	for (int d = 0; d < DRAWS; d += B) {
		CHECK_RC(xr__tb_sample(t, B, keys, prob, w), B);
		for (int i = 0; i < B; i++) {
			uint32_t s = (uint32_t)keys[i];
			CHECK(s < (uint32_t)n);
			CHECK(p[s] > 0);
			if (fabs(prob[i] - p[s]) > 1e-12 * (1 + p[s]))
				FAILF("draw of item %u: probability %.17g, want %.17g", s, prob[i], p[s]);
			double want = pow((double)n * p[s], -beta) / pow((double)n * pmin, -beta);
			if (fabs(w[i] - want) > 1e-9 * want)
				FAILF("draw of item %u: weight %.17g, want %.17g", s, w[i], want);
			counts[s]++;
		}
		release_all(t, keys, B);
	}
	*x_right = chi2(counts, p, n, DRAWS, &df);
	if (*x_right > chi2_bound(df))
		FAILF("prioritized alpha %.2f: chi2 %.1f > %.1f (df %u)", alpha, *x_right,
		      chi2_bound(df), df);
	*x_wrong = chi2(counts, q, n, DRAWS, &df);
	free(counts);
	free(p);
	free(q);
}

static void test_prioritized(void)
{
	enum { N = 100 };
	struct xr_tb t;
	double pr[N], xr, xw;
	uint64_t key[N];

	table_make(&t, (struct xr_tb_cfg){.capacity = 128, .sampler = XR_SAMPLER_PRIORITIZED,
					     .remover = XR_REMOVER_FIFO, .alpha = 0.6,
					     .beta = 0.4, .seed = 2});
	for (int i = 0; i < N; i++) {
		pr[i] = i % 10 == 3 ? 0.0 : 0.05 + (double)((i * 37) % 101); /* some zero */
		key[i] = ins(&t, pr[i]);
	}
	check_prioritized(&t, pr, N, 0.6, 0.4, 1.0, &xr, &xw);
	if (!(xw > chi2_bound(N - 11)))
		FAILF("the same draws against alpha 1 give chi2 %.1f: the test cannot tell", xw);
	printf("prioritized alpha 0.6: chi2 %.1f (bound %.1f), against alpha 1: %.1f\n", xr,
	       chi2_bound(N - 11), xw);

	/* New priorities: reversed, and the zeros made positive. */
	for (int i = 0; i < N; i++) {
		pr[i] = 1.0 + (double)(N - i);
		CHECK_RC(xr__tb_update(&t, key[i], pr[i]), 0);
	}
	check_prioritized(&t, pr, N, 0.6, 0.4, 0.0, &xr, &xw);
	printf("prioritized after updates: chi2 %.1f, against uniform %.1f\n", xr, xw);
	CHECK(xw > chi2_bound(N - 1));
	CHECK_RC(xr__tb_update(&t, key[0], -1), -EINVAL);
	CHECK_RC(xr__tb_update(&t, key[0], NAN), -EINVAL);
	CHECK_RC(xr__tb_update(&t, key[0] + (1ull << 32), 1), -ESTALE);
	xr__tb_free(&t);

	/* Every priority zero: no item more likely than another. */
	table_make(&t, (struct xr_tb_cfg){.capacity = 8, .sampler = XR_SAMPLER_PRIORITIZED,
					     .alpha = 1, .beta = 1, .seed = 3});
	for (int i = 0; i < 4; i++)
		ins(&t, 0);
	{
		uint64_t k[16];
		double prob[16], w[16];
		CHECK_RC(xr__tb_sample(&t, 16, k, prob, w), 16);
		for (int i = 0; i < 16; i++)
			CHECK(prob[i] == 0.25 && w[i] == 1);
		release_all(&t, k, 16);
	}
	xr__tb_free(&t);
}

static void test_ordered_samplers(void)
{
	struct xr_tb t;
	uint64_t key[10], got[10];

	for (int lifo = 0; lifo < 2; lifo++) {
		table_make(&t, (struct xr_tb_cfg){
				       .capacity = 16,
				       .sampler = lifo ? XR_SAMPLER_LIFO : XR_SAMPLER_FIFO,
				       .seed = 4});
		for (int i = 0; i < 10; i++)
			key[i] = ins(&t, 1);
		/* Each call: the oldest (newest) items in order, each once. */
		CHECK_RC(xr__tb_sample(&t, 4, got, NULL, NULL), 4);
		for (int i = 0; i < 4; i++)
			CHECK_EQ(got[i], key[lifo ? 9 - i : i]);
		release_all(&t, got, 4);
		CHECK_RC(xr__tb_sample(&t, 20, got, NULL, NULL), 10);
		release_all(&t, got, 10);
		xr__tb_free(&t);
	}

	/* A queue: fifo sampler, max_times_sampled 1. Each item once, in order,
	 * and the table empties. */
	table_make(&t, (struct xr_tb_cfg){.capacity = 16, .sampler = XR_SAMPLER_FIFO,
					     .max_times_sampled = 1, .seed = 5});
	for (int i = 0; i < 10; i++)
		key[i] = ins(&t, 1);
	CHECK_RC(xr__tb_sample(&t, 3, got, NULL, NULL), 3);
	CHECK_RC(xr__tb_sample(&t, 3, got + 3, NULL, NULL), 3);
	CHECK_RC(xr__tb_sample(&t, 8, got + 6, NULL, NULL), 4);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(got[i], key[i]);
	CHECK_EQ(t.size, 0);
	CHECK_EQ(t.used, 10); /* spent, leased: the bytes stay */
	CHECK_RC(xr__tb_sample(&t, 1, got + 10 - 1, NULL, NULL), -EAGAIN);
	CHECK(xr__tb_slot(&t, key[5]) == (uint32_t)key[5]);
	CHECK_RC(xr__tb_update(&t, key[5], 2), -ESTALE); /* gone from the table */
	release_all(&t, key, 10);
	CHECK_EQ(t.used, 0);
	CHECK(xr__tb_slot(&t, key[5]) == XR_TB_NO_SLOT);
	CHECK_RC(xr__tb_release(&t, key[5]), -ESTALE);
	CHECK_EQ(t.lim.removes, 10);
	xr__tb_free(&t);
}

/* Fills a table of 8, leases items `leased` (a bit mask of insertion
 * order), inserts one more: the remover must take item `want`. */
static void check_remover(enum xr_table_remover rm, const double *pr, unsigned leased, int want)
{
	struct xr_tb t;
	uint64_t key[8], k, ev, got[8];
	uint32_t slot;
	int n = 0;

	table_make(&t, (struct xr_tb_cfg){.capacity = 8, .sampler = XR_SAMPLER_FIFO,
					     .remover = rm, .seed = 6});
	for (int i = 0; i < 8; i++)
		key[i] = ins(&t, pr[i]);
	/* Lease by sampling fifo up to the last leased item, then releasing
	 * the ones not in the mask. */
	if (leased) {
		int top = 31 - __builtin_clz(leased);
		CHECK_RC(xr__tb_sample(&t, (uint32_t)top + 1, got, NULL, NULL), top + 1);
		for (int i = 0; i <= top; i++)
			if (!(leased >> i & 1))
				CHECK_RC(xr__tb_release(&t, got[i]), 0);
			else
				n++;
	}
	int rc = xr__tb_insert(&t, 5, &k, &slot, &ev);
	if (want < 0) {
		CHECK_RC(rc, -EBUSY);
	} else {
		CHECK_RC(rc, 0);
		if (ev != key[want])
			FAILF("remover %d, leased %#x: took the item inserted %d-th, want %d", rm,
			      leased, ev ? (int)((uint32_t)ev) : -1, want);
		CHECK_EQ(slot, (uint32_t)key[want]); /* the slot is reused at once */
		CHECK(k != key[want]);              /* with a new key */
		CHECK_RC(xr__tb_update(&t, key[want], 1), -ESTALE);
	}
	for (int i = 0; i < 8; i++)
		if (leased >> i & 1)
			CHECK_RC(xr__tb_release(&t, key[i]), 0);
	CHECK_EQ(t.leases, 0);
	(void)n;
	xr__tb_free(&t);
}

static void test_removers(void)
{
	const double pr[8] = {5, 3, 9, 1, 7, 1, 8, 6};

	check_remover(XR_REMOVER_FIFO, pr, 0, 0);
	check_remover(XR_REMOVER_FIFO, pr, 0x3, 2);
	check_remover(XR_REMOVER_LIFO, pr, 0, 7);
	check_remover(XR_REMOVER_LIFO, pr, 0xc0, 5);
	check_remover(XR_REMOVER_LOWEST, pr, 0, 3);    /* 1 at 3 and 5: the first */
	check_remover(XR_REMOVER_LOWEST, pr, 0x8, 5);  /* 3 leased: the other 1 */
	check_remover(XR_REMOVER_LOWEST, pr, 0x2f, 7); /* 0-3 and 5 leased: 6 < 7, 8 */
	check_remover(XR_REMOVER_FIFO, pr, 0xff, -1);
	check_remover(XR_REMOVER_LOWEST, pr, 0xff, -1);

	/* Lowest-priority after updates and a release: the released item
	 * competes again at its (updated) priority. */
	struct xr_tb t;
	uint64_t key[4], got[1], k, ev;
	uint32_t slot;

	table_make(&t, (struct xr_tb_cfg){.capacity = 4, .sampler = XR_SAMPLER_FIFO,
					     .remover = XR_REMOVER_LOWEST, .seed = 7});
	for (int i = 0; i < 4; i++)
		key[i] = ins(&t, 10 + i);
	CHECK_RC(xr__tb_sample(&t, 1, got, NULL, NULL), 1); /* leases key[0] */
	CHECK_RC(xr__tb_update(&t, key[0], 0.5), 0);        /* lowest, but leased */
	CHECK_RC(xr__tb_update(&t, key[2], 1), 0);
	CHECK_RC(xr__tb_insert(&t, 20, &k, &slot, &ev), 0);
	CHECK_EQ(ev, key[2]);
	CHECK_RC(xr__tb_release(&t, key[0]), 0);
	CHECK_RC(xr__tb_insert(&t, 20, &k, &slot, &ev), 0);
	CHECK_EQ(ev, key[0]);
	xr__tb_free(&t);
}

static void test_leases_and_keys(void)
{
	struct xr_tb t;
	uint64_t a, b, got[2], k, ev;
	uint32_t slot;

	table_make(&t, (struct xr_tb_cfg){.capacity = 2, .sampler = XR_SAMPLER_FIFO,
					     .remover = XR_REMOVER_FIFO, .seed = 8});
	CHECK_RC(xr__tb_insert(&t, -1, &k, &slot, &ev), -EINVAL);
	CHECK_RC(xr__tb_insert(&t, INFINITY, &k, &slot, &ev), -EINVAL);
	a = ins(&t, 1);
	b = ins(&t, 1);
	CHECK_RC(xr__tb_sample(&t, 1, got, NULL, NULL), 1); /* a, leased */
	CHECK_EQ(got[0], a);
	/* Removing a leased item: out of the table, its slot kept. */
	CHECK_RC(xr__tb_remove(&t, a), 0);
	CHECK_RC(xr__tb_remove(&t, a), -ESTALE);
	CHECK_EQ(t.size, 1);
	CHECK(xr__tb_slot(&t, a) == (uint32_t)a);
	/* The table is full (one live, one spent): the insert takes b. */
	CHECK_RC(xr__tb_insert(&t, 1, &k, &slot, &ev), 0);
	CHECK_EQ(ev, b);
	CHECK_EQ(slot, (uint32_t)b);
	/* Now a is spent and leased, k live: full, nothing removable but k. */
	CHECK_RC(xr__tb_sample(&t, 1, got, NULL, NULL), 1);
	CHECK_EQ(got[0], k);
	CHECK_RC(xr__tb_insert(&t, 1, &k, &slot, &ev), -EBUSY);
	CHECK_RC(xr__tb_release(&t, a), 0);
	CHECK_RC(xr__tb_release(&t, a), -ESTALE); /* once only */
	CHECK(xr__tb_slot(&t, a) == XR_TB_NO_SLOT);
	uint64_t c = ins(&t, 1); /* a's slot, a new generation */
	CHECK_EQ((uint32_t)c, (uint32_t)a);
	CHECK(c != a);
	CHECK_RC(xr__tb_release(&t, a), -ESTALE);
	CHECK_RC(xr__tb_release(&t, (uint64_t)1 << 32 | 7), -ESTALE); /* slot out of range */
	CHECK_RC(xr__tb_release(&t, got[0]), 0);
	CHECK_EQ(t.leases, 0);
	xr__tb_free(&t);
}

/* What one trainer can make of a table for everyone: generations that wrap
 * (key 0 is never handed out), priorities too large for a sum, and leases
 * on the lowest items making the lowest-priority remover search. */
static void test_hostile_use(void)
{
	struct xr_tb t;
	uint64_t key, ev, got[1100];
	uint32_t slot;

	table_make(&t, (struct xr_tb_cfg){.capacity = 2, .sampler = XR_SAMPLER_PRIORITIZED,
					  .alpha = 1, .remover = XR_REMOVER_FIFO, .seed = 10});
	t.slot[0].gen = UINT32_MAX; /* slot 0 filled 2^32 - 1 times */
	CHECK_RC(xr__tb_insert(&t, 1, &key, &slot, &ev), 0);
	CHECK_EQ(slot, 0);
	CHECK_EQ(key >> 32, 1); /* not generation 0: key 0 means none */
	CHECK_RC(xr__tb_insert(&t, 1e308, &key, &slot, &ev), -EINVAL);
	CHECK_RC(xr__tb_insert(&t, 1, &key, &slot, &ev), 0);
	CHECK_RC(xr__tb_update(&t, key, 1e308), -EINVAL);
	CHECK(isfinite(xr_sumtree_total(&t.sum)));
	xr__tb_free(&t);

	/* 1,100 of the lowest items leased: the remover gives up after 1,024
	 * (the insert waits), then finds an unleased item on the next try;
	 * the ones it hid come back when released. */
	table_make(&t, (struct xr_tb_cfg){.capacity = 2048, .sampler = XR_SAMPLER_FIFO,
					  .remover = XR_REMOVER_LOWEST, .seed = 11});
	for (int i = 0; i < 2048; i++)
		CHECK_RC(xr__tb_insert(&t, 1 + i, &key, &slot, &ev), 0);
	CHECK_RC(xr__tb_sample(&t, 1100, got, NULL, NULL), 1100); /* the oldest: lowest */
	CHECK_RC(xr__tb_insert(&t, 5000, &key, &slot, &ev), -EBUSY);
	CHECK_RC(xr__tb_insert(&t, 5000, &key, &slot, &ev), 0);
	CHECK_EQ((uint32_t)ev, 1100); /* priority 1101: the lowest unleased */
	for (int i = 0; i < 1100; i++)
		CHECK_RC(xr__tb_release(&t, got[i]), 0);
	CHECK_RC(xr__tb_insert(&t, 5000, &key, &slot, &ev), 0);
	CHECK_EQ((uint32_t)ev, 0); /* priority 1, back in the remover's tree */
	xr__tb_free(&t);
}

static void test_sumtree_exact(void)
{
	enum { N = 1000, UPDATES = 1000000 };
	struct xr_sumtree st;
	double w[N] = {0};
	uint64_t s = 9;

	CHECK_RC(xr_sumtree_init(&st, N), 0);
	for (int i = 0; i < UPDATES; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t leaf = (uint32_t)(s >> 33) % N;
		/* Mostly tiny and huge values, the worst case for a delta tree. */
		double v = (s >> 20 & 3) == 0 ? 0 : ((s >> 22) & 1 ? 1e-9 : 1e9) * (double)(s >> 40);
		w[leaf] = v;
		xr_sumtree_set(&st, leaf, v);
	}
	double sum = 0;
	for (int i = 0; i < N; i++)
		sum += w[i];
	CHECK(fabs(xr_sumtree_total(&st) - sum) <= 1e-12 * sum);
	for (int i = 0; i < N; i++)
		xr_sumtree_set(&st, (uint32_t)i, 0);
	CHECK(xr_sumtree_total(&st) == 0);
	xr_sumtree_set(&st, 777, 2.5);
	CHECK(xr_sumtree_total(&st) == 2.5);
	CHECK_EQ(xr_sumtree_find(&st, 0), 777);
	CHECK_EQ(xr_sumtree_find(&st, 2.5), 777); /* u at the total: still a positive leaf */
	xr_sumtree_free(&st);
}

/* The trees against brute force: random sets (zeros and empties among
 * them) over sizes around the fan-outs' powers (8, and the sum tree's 4
 * at its leaves times 8s), each followed by checks of
 * the total, the minimum and its leftmost leaf, and finds at random points
 * and at every boundary of the prefix sums. */
static void test_trees_brute_force(void)
{
	static const uint32_t sizes[] = {1,  3,  4,   5,   7,   8,   9,    31,   32,  33,
					 63, 64, 65, 255, 256, 257, 513, 2049, 4097};
	uint64_t r = 12345;

	for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		uint32_t n = sizes[z];
		struct xr_sumtree st;
		struct xr_mintree mt;
		double *w = calloc(n, sizeof(double)), *m = malloc(n * sizeof(double));
		CHECK(w && m);
		CHECK_RC(xr_sumtree_init(&st, n), 0);
		CHECK_RC(xr_mintree_init(&mt, n), 0);
		for (uint32_t i = 0; i < n; i++)
			m[i] = INFINITY;
		for (int it = 0; it < 2000; it++) {
			r = r * 6364136223846793005ull + 1442695040888963407ull;
			uint32_t i = (uint32_t)(r >> 33) % n;
			double v = (r >> 20) % 3 == 0 ? 0 : (double)((r >> 40) % 1000) / 8;
			w[i] = v;
			m[i] = (r >> 24) % 5 == 0 ? INFINITY : v;
			xr_sumtree_set(&st, i, v);
			xr_mintree_set(&mt, i, m[i]);
			double total = 0, lo = INFINITY;
			uint32_t arg = 0;
			for (uint32_t j = 0; j < n; j++) {
				total += w[j];
				if (m[j] < lo) {
					lo = m[j];
					arg = j;
				}
			}
			CHECK(fabs(xr_sumtree_total(&st) - total) <= 1e-9 * (1 + total));
			CHECK(xr_mintree_min(&mt) == lo);
			if (lo < INFINITY)
				CHECK_EQ(xr_mintree_argmin(&mt), arg);
			if (total <= 0)
				continue;
			/* Inside each positive leaf's span, it is found. */
			double pre = 0;
			for (uint32_t j = 0; j < n; j++) {
				if (w[j] > 0) {
					uint32_t f = xr_sumtree_find(&st, pre + w[j] * 0.5), g;
					if (f != j)
						FAILF("n %u: find in leaf %u's span gave %u", n, j, f);
					double u = pre + w[j] * 0.5, val = -1;
					xr_sumtree_find_many(&st, &u, &g, &val, NULL, 0, 1);
					CHECK_EQ(g, j);
					CHECK(val == xr_sumtree_get(&st, j));
					g = UINT32_MAX;
					val = -1;
					xr__sumtree_find_many_generic(&st, &u, &g, &val, NULL, 0, 1);
					CHECK_EQ(g, j);
					CHECK(val == xr_sumtree_get(&st, j));
				}
				pre += w[j];
			}
			/* At and past the total: a positive leaf, never a zero one. */
			CHECK(w[xr_sumtree_find(&st, total)] > 0);
			CHECK(w[xr_sumtree_find(&st, total * 2)] > 0);
			double past[2] = {total, total * 2};
			uint32_t got[2];
			double vals[2];
			xr_sumtree_find_many(&st, past, got, vals, NULL, 0, 2);
			CHECK(w[got[0]] > 0 && w[got[1]] > 0);
			xr__sumtree_find_many_generic(&st, past, got, vals, NULL, 0, 2);
			CHECK(w[got[0]] > 0 && w[got[1]] > 0);
			if (it % 500 == 0) {
				/* A batch past one chunk (256): each descent as the
				 * single find's, both ways. */
				enum { B = 300 };
				double u[B], va[B], vb[B];
				uint32_t a[B], b[B];
				for (int q = 0; q < B; q++) {
					r = r * 6364136223846793005ull + 1442695040888963407ull;
					u[q] = (double)(r >> 11) * 0x1p-53 * total;
				}
				/* The prefetch of a record per leaf reads nothing:
				 * any array of n records will do. */
				xr_sumtree_find_many(&st, u, a, va, w, sizeof(w[0]), B);
				xr__sumtree_find_many_generic(&st, u, b, vb, m, sizeof(m[0]), B);
				for (int q = 0; q < B; q++)
					if (a[q] != xr_sumtree_find(&st, u[q]) || b[q] != a[q] ||
					    va[q] != xr_sumtree_get(&st, a[q]) || vb[q] != va[q])
						FAILF("n %u: batch draw %d gave %u and %u (values %g, "
						      "%g), find %u", n, q, a[q], b[q], va[q], vb[q],
						      xr_sumtree_find(&st, u[q]));
			}
		}
		xr_sumtree_free(&st);
		xr_mintree_free(&mt);
		free(w);
		free(m);
	}
}

static void test_bad_config(void)
{
	struct xr_tb t;
	const char *why = NULL;
	struct xr_tb_cfg bad[] = {
		{.capacity = 0},
		{.capacity = 4, .sampler = (enum xr_table_sampler)9},
		{.capacity = 4, .remover = (enum xr_table_remover)9},
		{.capacity = 4, .alpha = -1},
		{.capacity = 4, .beta = NAN},
		{.capacity = 4, .min_size = 5},
		{.capacity = 4, .samples_per_insert = -1},
		{.capacity = 4, .samples_per_insert = 4, .error_buffer = 3},
		{.capacity = 4, .samples_per_insert = 0.5, .error_buffer = 0.5},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		CHECK_RC(xr__tb_init(&t, &bad[i], &why), -EINVAL);
		CHECK(why && *why);
	}
}

int main(void)
{
	test_bad_config();
	test_uniform();
	test_prioritized();
	test_ordered_samplers();
	test_removers();
	test_leases_and_keys();
	test_sumtree_exact();
	test_trees_brute_force();
	test_hostile_use();
	printf("ok\n");
	return 0;
}
