/* SPDX-License-Identifier: MIT */
/*
 * bench_table_trainer: what a trainer sees of a replay table, through an
 * engine (`xring engine` started here, stopped at the end): the latency of
 * xr_table_sample() of B items and of the xr_table_release() that follows,
 * for prioritized and uniform tables of N items.
 *
 * Bounds printed in the same run, as ratios:
 *   - the bookkeeping alone: the same sample and release on a table in this
 *     process (table/, no engine), the work the engine's thread does;
 *   - the transport: a one-byte ping-pong over a socket pair between two
 *     processes, the doorbell's round trip with both sides asleep;
 * so the service's own overhead is p50(trainer) - p50(bookkeeping), to be
 * read against the ping-pong. Each round of those does the bookkeeping in
 * this process between two requests, as a trainer does work between its
 * samples (here: of the same size as the engine's, which also takes this
 * CPU's caches); the `alone` columns are rounds of requests back to back,
 * the engine's path with nothing between. Issue 15's targets: a prioritized batch of
 * 256 from 1,000,000 items in at most 30 us p99, uniform in 10 us p50.
 *
 *   bench_table_trainer XRING [--items 100000,1000000] [--rounds N]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "table/table.h"
#include "xring/table.h"

enum { ITEM = 64 };

static int cmp_d(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct lat {
	double p50, p99, p999;
};

static struct lat summarise(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return (struct lat){pct_us(v, n, 0.5), pct_us(v, n, 0.99), pct_us(v, n, 0.999)};
}

/* The bare transport: one byte there and back over a socket pair. */
static double pingpong_p50(int rounds)
{
	int sv[2];
	char b = 1;
	uint64_t *v = malloc(rounds * sizeof(uint64_t));

	if (!v || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		while (read(sv[1], &b, 1) == 1 && b)
			if (write(sv[1], &b, 1) != 1)
				break;
		_exit(0);
	}
	close(sv[1]);
	for (int r = 0; r < rounds; r++) {
		uint64_t t0 = now_ns();
		if (write(sv[0], &b, 1) != 1 || read(sv[0], &b, 1) != 1)
			return -1;
		v[r] = now_ns() - t0;
	}
	b = 0;
	(void)!write(sv[0], &b, 1);
	close(sv[0]);
	waitpid(pid, NULL, 0);
	double p = summarise(v, rounds).p50;
	free(v);
	return p;
}

int main(int argc, char **argv)
{
	uint64_t items[4] = {100000, 1000000};
	int n_items = 2, rounds = 2000;
	static const uint32_t batches[] = {32, 256, 1024};
	char name[64];

	if (argc < 2) {
		fprintf(stderr, "usage: bench_table_trainer XRING [--items 100000,1000000] "
				"[--rounds N]\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--items") && i + 1 < argc) {
			char *s = argv[++i], *end;
			n_items = 0;
			while (*s && n_items < 4) {
				items[n_items++] = strtoull(s, &end, 10);
				s = *end == ',' ? end + 1 : end;
				if (end == s && *s)
					break;
			}
		} else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
			rounds = atoi(argv[++i]);
		} else {
			fprintf(stderr, "bench_table_trainer: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (rounds < 10 || n_items < 1) {
		fprintf(stderr, "bench_table_trainer: --rounds at least 10, --items a list\n");
		return 2;
	}
	snprintf(name, sizeof(name), "bench-tables-%d", (int)getpid());
	pid_t eng = fork();
	if (eng == 0) {
		execl(argv[1], argv[1], "engine", "--name", name, "--games", "1", "--tick-ms", "1000",
		      "--quiet", (char *)NULL);
		_exit(127);
	}
	double pp = pingpong_p50(rounds * 4);
	printf("transport: socket-pair ping-pong between two processes, p50 %.2f us\n", pp);
	printf("%-11s %8s %5s | %-24s | %-18s | %-22s | %-24s | %s\n", "sampler", "items", "batch",
	       "sample us p50/p99/p999", "release us p50/p99", "bookkeeping us p50/p99",
	       "overhead p50 / ping-pong", "alone: sample us p50/p99");

	uint64_t *sv = malloc(rounds * sizeof(uint64_t)), *rv = malloc(rounds * sizeof(uint64_t));
	uint64_t *bv = malloc(rounds * sizeof(uint64_t)), keys[1024];
	uint8_t *buf = malloc(1024 * ITEM);
	double prio[1024];
	int status = 0;
	if (!sv || !rv || !bv || !buf)
		return 1;
	memset(buf, 7, 1024 * ITEM);

	for (int a = 0; a < n_items && !status; a++) {
		for (int prioritized = 1; prioritized >= 0 && !status; prioritized--) {
			char tname[32];
			xr_table_opts o = {.capacity = (uint32_t)items[a], .item_size = ITEM,
					   .sampler = prioritized ? XR_SAMPLER_PRIORITIZED
								  : XR_SAMPLER_UNIFORM,
					   .remover = prioritized ? XR_REMOVER_LOWEST : XR_REMOVER_FIFO,
					   .alpha = 0.6, .beta = 0.4, .seed = 1};
			snprintf(tname, sizeof(tname), "t%d%d", a, prioritized);
			int rc;
			uint64_t until = now_ns() + 10000000000ull;
			while ((rc = xr_table_create(name, tname, &o)) == -ENOENT && now_ns() < until)
				usleep(10000); /* the engine is starting: its socket comes */
			if (rc < 0) {
				fprintf(stderr, "bench_table_trainer: create: %s\n", xr_last_reason());
				status = 1;
				break;
			}
			xr_table *t;
			if (xr_table_open(name, tname, NULL, &t) < 0) {
				fprintf(stderr, "bench_table_trainer: open: %s\n", xr_last_reason());
				status = 1;
				break;
			}
			/* The bookkeeping alone, same configuration and contents. */
			struct xr_tb tb;
			const char *why;
			struct xr_tb_cfg cfg = {.capacity = o.capacity, .sampler = o.sampler,
						.remover = o.remover, .alpha = 0.6, .beta = 0.4,
						.seed = 1};
			if (xr__tb_init(&tb, &cfg, &why) < 0)
				return 1;
			uint64_t x = 1;
			for (uint64_t i = 0; i < items[a]; i += 1024) {
				uint32_t n = items[a] - i < 1024 ? (uint32_t)(items[a] - i) : 1024;
				for (uint32_t j = 0; j < n; j++) {
					x = x * 6364136223846793005ull + 1442695040888963407ull;
					prio[j] = 0.01 + (double)(x >> 44) / 1000.0;
					uint64_t k, ev;
					uint32_t sl;
					xr__tb_insert(&tb, prio[j], &k, &sl, &ev);
				}
				if (xr_table_insert(t, buf, prio, n, 5000, NULL) != (int)n) {
					fprintf(stderr, "bench_table_trainer: insert: %s\n",
						xr_last_reason());
					return 1;
				}
			}
			for (size_t c = 0; c < sizeof(batches) / sizeof(batches[0]); c++) {
				uint32_t b = batches[c];
				for (int r = 0; r < rounds; r++) {
					xr_sample s;
					uint64_t t0 = now_ns();
					int n = xr_table_sample(t, b, 1000, &s);
					uint64_t t1 = now_ns();
					if (n != (int)b) {
						fprintf(stderr, "bench_table_trainer: sample: %d %s\n", n,
							xr_last_reason());
						return 1;
					}
					memcpy(keys, s.keys, b * sizeof(uint64_t));
					uint64_t t2 = now_ns();
					xr_table_release(t, keys, b);
					uint64_t t3 = now_ns();
					int m = xr__tb_sample(&tb, b, keys, prio, prio);
					for (int j = 0; j < m; j++)
						xr__tb_release(&tb, keys[j]);
					bv[r] = now_ns() - t3;
					sv[r] = t1 - t0;
					rv[r] = t3 - t2;
				}
				struct lat ls = summarise(sv, rounds), lr = summarise(rv, rounds),
					   lb = summarise(bv, rounds);
				/* The same requests back to back: nothing between. */
				for (int r = 0; r < rounds; r++) {
					xr_sample s2;
					uint64_t t0 = now_ns();
					int n = xr_table_sample(t, b, 1000, &s2);
					sv[r] = now_ns() - t0;
					if (n != (int)b) {
						fprintf(stderr, "bench_table_trainer: sample: %d %s\n", n,
							xr_last_reason());
						return 1;
					}
					memcpy(keys, s2.keys, b * sizeof(uint64_t));
					xr_table_release(t, keys, b);
				}
				struct lat la = summarise(sv, rounds);
				printf("%-11s %8llu %5u | %7.2f %7.2f %8.2f | %7.2f %8.2f | %9.2f %9.2f   | "
				       "%-24.2f | %7.2f %7.2f\n",
				       prioritized ? "prioritized" : "uniform", (unsigned long long)items[a],
				       b, ls.p50, ls.p99, ls.p999, lr.p50, lr.p99, lb.p50, lb.p99,
				       (ls.p50 + lr.p50 - lb.p50) / pp, la.p50, la.p99);
				fflush(stdout);
			}
			xr__tb_free(&tb);
			xr_table_close(t);
		}
	}
	kill(eng, SIGTERM);
	waitpid(eng, NULL, 0);
	return status;
}
