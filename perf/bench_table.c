/* SPDX-License-Identifier: MIT */
/*
 * bench_table: the replay table's bookkeeping (table/), in one process, on
 * one core: what a sample of B items costs the engine's table service
 * before any round trip to a trainer, and inserts a second into a full
 * table (the remover at work).
 *
 * Each figure is printed against a bare version of the same work measured
 * in the same run, as a ratio: a uniform draw as one random index into an
 * array; a prioritized draw as a bare sum-tree descent (no leases, no
 * limiter, no weights); an insert as a bare write of a priority into a sum
 * tree. The ratio is what the table's bookkeeping (leases, generations,
 * weights, the remover's structures, the limiter) adds.
 *
 *   bench_table [--items 100000,1000000] [--batches 32,256,1024]
 *               [--rounds N] [--json]
 *
 * Issue 15's targets for the whole path (these figures plus the round trip
 * to the trainer): a prioritized batch of 256 from 1,000,000 items in at
 * most 30 us p99, uniform in at most 10 us p50, at least 1 M inserts/s.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "table/sumtree.h"
#include "table/table.h"

static uint64_t rng_state = 88172645463325252ull;

static uint64_t xs(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int parse_list(const char *s, uint64_t *out, int max)
{
	int n = 0;
	char *end;

	while (*s && n < max) {
		double v = strtod(s, &end);
		if (end == s || v < 1)
			return -1;
		if (*end == 'k' || *end == 'K')
			v *= 1e3, end++;
		else if (*end == 'm' || *end == 'M')
			v *= 1e6, end++;
		out[n++] = (uint64_t)v;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return n;
}

struct lat {
	double p50, p99, p999;
};

static struct lat summarise(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return (struct lat){pct_us(v, n, 0.5), pct_us(v, n, 0.99), pct_us(v, n, 0.999)};
}

static void fill_table(struct xr_tb *t, uint32_t items, bool prio)
{
	uint64_t key, ev;
	uint32_t slot;

	for (uint32_t i = 0; i < items; i++) {
		double p = prio ? 0.01 + (double)(xs() % 100000) / 1000.0 : 1;
		if (xr__tb_insert(t, p, &key, &slot, &ev) < 0) {
			fprintf(stderr, "bench_table: insert failed\n");
			exit(1);
		}
	}
}

static volatile uint64_t sink;

int main(int argc, char **argv)
{
	uint64_t items[8] = {100000, 1000000}, batches[8] = {32, 256, 1024};
	int n_items = 2, n_batches = 3, rounds = 2000, json = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--items") && i + 1 < argc)
			n_items = parse_list(argv[++i], items, 8);
		else if (!strcmp(argv[i], "--batches") && i + 1 < argc)
			n_batches = parse_list(argv[++i], batches, 8);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else {
			fprintf(stderr, "usage: bench_table [--items LIST] [--batches LIST] "
					"[--rounds N] [--json]\n");
			return 2;
		}
		if (n_items < 1 || n_batches < 1 || rounds < 10) {
			fprintf(stderr, "bench_table: bad value for %s; see --help\n", argv[i]);
			return 2;
		}
	}
	uint64_t *t_ns = malloc(rounds * sizeof(uint64_t));
	uint64_t *b_ns = malloc(rounds * sizeof(uint64_t));
	uint64_t *keys = malloc(65536 * sizeof(uint64_t));
	double *prob = malloc(65536 * sizeof(double)), *w = malloc(65536 * sizeof(double));
	if (!t_ns || !b_ns || !keys || !prob || !w)
		return 1;
	if (!json)
		printf("%-11s %9s %6s | %-26s | %-26s | %s\n", "sampler", "items", "batch",
		       "table us p50/p99/p999", "bare us p50/p99/p999", "p50 ratio");

	for (int a = 0; a < n_items; a++) {
		for (int prio = 0; prio < 2; prio++) {
			struct xr_tb t;
			struct xr_sumtree bare;
			uint32_t *arr = NULL;
			const char *why;
			struct xr_tb_cfg cfg = {
				.capacity = (uint32_t)items[a],
				.sampler = prio ? XR_SAMPLER_PRIORITIZED : XR_SAMPLER_UNIFORM,
				.remover = prio ? XR_REMOVER_LOWEST : XR_REMOVER_FIFO,
				.alpha = 0.6, .beta = 0.4, .seed = 1};

			if (xr__tb_init(&t, &cfg, &why) < 0) {
				fprintf(stderr, "bench_table: %s\n", why);
				return 1;
			}
			fill_table(&t, (uint32_t)items[a], prio);
			/* The bare structures over the same priorities. */
			if (prio) {
				xr_sumtree_init(&bare, (uint32_t)items[a]);
				for (uint32_t i = 0; i < items[a]; i++)
					xr_sumtree_set(&bare, i, xr_sumtree_get(&t.sum, i));
			} else {
				arr = malloc(items[a] * sizeof(uint32_t));
				for (uint32_t i = 0; i < items[a]; i++)
					arr[i] = i;
			}
			for (int c = 0; c < n_batches; c++) {
				uint32_t bsz = (uint32_t)batches[c];
				for (int r = 0; r < rounds; r++) {
					uint64_t t0 = now_ns();
					int m = xr__tb_sample(&t, bsz, keys, prob, w);
					for (int j = 0; j < m; j++)
						xr__tb_release(&t, keys[j]);
					uint64_t t1 = now_ns();
					if (m != (int)bsz) {
						fprintf(stderr, "bench_table: sample gave %d\n", m);
						return 1;
					}
					uint64_t acc = 0;
					if (prio) {
						double tot = xr_sumtree_total(&bare);
						for (uint32_t j = 0; j < bsz; j++)
							acc += xr_sumtree_find(
								&bare, (double)(xs() >> 11) * 0x1p-53 * tot);
					} else {
						for (uint32_t j = 0; j < bsz; j++)
							acc += arr[(uint32_t)(((xs() >> 32) * items[a]) >> 32)];
					}
					sink = acc;
					uint64_t t2 = now_ns();
					t_ns[r] = t1 - t0;
					b_ns[r] = t2 - t1;
				}
				struct lat lt = summarise(t_ns, rounds), lb = summarise(b_ns, rounds);
				const char *name = prio ? "prioritized" : "uniform";
				if (json)
					printf("{\"bench\":\"table_sample\",\"sampler\":\"%s\",\"items\":%llu,"
					       "\"batch\":%u,\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,"
					       "\"bare_p50_us\":%.2f,\"bare_p99_us\":%.2f,\"ratio_p50\":%.2f}\n",
					       name, (unsigned long long)items[a], bsz, lt.p50, lt.p99,
					       lt.p999, lb.p50, lb.p99, lt.p50 / lb.p50);
				else
					printf("%-11s %9llu %6u | %7.2f %7.2f %8.2f   | %7.2f %7.2f %8.2f   | "
					       "%.2f\n",
					       name, (unsigned long long)items[a], bsz, lt.p50, lt.p99,
					       lt.p999, lb.p50, lb.p99, lb.p999, lt.p50 / lb.p50);
			}
			/* Inserts into the full table: each one removes an item. */
			uint64_t n_ins = items[a] * 2, key, ev, t0, t1, t2;
			uint32_t slot;
			t0 = now_ns();
			for (uint64_t i = 0; i < n_ins; i++)
				xr__tb_insert(&t, 0.01 + (double)(i % 1000), &key, &slot, &ev);
			t1 = now_ns();
			if (prio) {
				for (uint64_t i = 0; i < n_ins; i++)
					xr_sumtree_set(&bare, (uint32_t)(i % items[a]),
						       pow(0.01 + (double)(i % 1000), 0.6));
			} else {
				for (uint64_t i = 0; i < n_ins; i++)
					arr[i % items[a]] = (uint32_t)i;
			}
			t2 = now_ns();
			sink = arr ? arr[0] : (uint64_t)xr_sumtree_total(&bare);
			double mt = n_ins / ((t1 - t0) / 1e9) / 1e6, mb = n_ins / ((t2 - t1) / 1e9) / 1e6;
			if (json)
				printf("{\"bench\":\"table_insert\",\"sampler\":\"%s\",\"items\":%llu,"
				       "\"minserts_s\":%.2f,\"bare_minserts_s\":%.2f,\"ratio\":%.2f}\n",
				       prio ? "prioritized" : "uniform", (unsigned long long)items[a],
				       mt, mb, mt / mb);
			else
				printf("%-11s %9llu insert | %.2f M/s into a full table (remover at work); "
				       "bare %.2f M/s; ratio %.2f\n",
				       prio ? "prioritized" : "uniform", (unsigned long long)items[a], mt,
				       mb, mt / mb);
			if (prio)
				xr_sumtree_free(&bare);
			free(arr);
			xr__tb_free(&t);
		}
	}
	return 0;
}
