/* SPDX-License-Identifier: MIT */
/*
 * bench_table_feed: items a second into a table the engine feeds from its
 * stream (`xring engine` started here with G grid games, as fast as its
 * readers let it), against the stream's own rate to a plain reader in the
 * same run: first a reader alone for S seconds (records/s it takes), then a
 * fed table (uniform, fifo remover, 100,000 items) for S seconds once it is
 * full (inserts/s, each one replacing an item), as a ratio; and how fast it
 * filled (each insert the first write of its slot: page faults of the
 * table's memory). Issue 15's target: at least 1 M inserts/s.
 *
 *   bench_table_feed XRING [--games G] [--seconds S]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "xring/reader.h"
#include "xring/table.h"

int main(int argc, char **argv)
{
	int games = 1000;
	double secs = 3;
	char name[64], gs[16];

	if (argc < 2) {
		fprintf(stderr, "usage: bench_table_feed XRING [--games G] [--seconds S]\n");
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--games"))
			games = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--seconds"))
			secs = atof(argv[i + 1]);
	}
	if (games < 1 || !(secs > 0)) {
		fprintf(stderr, "bench_table_feed: --games >= 1, --seconds > 0\n");
		return 2;
	}
	snprintf(name, sizeof(name), "bench-feed-%d", (int)getpid());
	snprintf(gs, sizeof(gs), "%d", games);
	pid_t eng = fork();
	if (eng == 0) {
		execl(argv[1], argv[1], "engine", "--name", name, "--games", gs, "--quiet",
		      (char *)NULL);
		_exit(127);
	}
	/* The stream alone: a reader taking every record as fast as it can. */
	xr_reader *r = NULL;
	uint64_t until = now_ns() + 10000000000ull;
	int rc;
	while ((rc = xr_reader_attach(name, NULL, &r)) == -ENOENT && now_ns() < until)
		usleep(10000); /* the engine is starting */
	if (rc < 0) {
		fprintf(stderr, "bench_table_feed: attach: %s\n", xr_last_reason());
		kill(eng, SIGTERM);
		return 1;
	}
	uint64_t took = 0, t0 = now_ns(), end = t0 + (uint64_t)(secs * 1e9);
	while (now_ns() < end) {
		xr_batch b;
		int n = xr_reader_read(r, 1, 65536, 10000000, &b);
		if (n > 0) {
			took += (uint64_t)n;
			xr_batch_release(r, &b);
		}
	}
	double alone = (double)took / ((double)(now_ns() - t0) / 1e9);
	xr_reader_detach(r);

	/* A fed table instead. */
	xr_table_opts o = {.capacity = 100000, .source = "experience", .priority = 1, .seed = 1};
	xr_table *t;
	uint64_t f0 = now_ns();
	if (xr_table_create(name, "fed", &o) < 0 || xr_table_open(name, "fed", NULL, &t) < 0) {
		fprintf(stderr, "bench_table_feed: table: %s\n", xr_last_reason());
		kill(eng, SIGTERM);
		return 1;
	}
	xr_table_stats s0, s1;
	do {
		usleep(10000); /* a look every 10 ms at how full it is */
		xr_table_get_stats(t, &s0);
	} while (s0.size < o.capacity && now_ns() < f0 + 60000000000ull);
	double fill = (double)s0.inserts / ((double)(now_ns() - f0) / 1e9);
	t0 = now_ns();
	usleep((useconds_t)(secs * 1e6)); /* a measurement's span, not a synchronisation */
	xr_table_get_stats(t, &s1);
	double fed = (double)(s1.inserts - s0.inserts) / ((double)(now_ns() - t0) / 1e9);
	printf("engine of %d games: a reader alone takes %.0f records/s; a full fed table of "
	       "%u items inserts %.0f items/s (%u-byte records); ratio %.2f; it filled at %.0f "
	       "items/s\n",
	       games, alone, o.capacity, fed, s1.item_size, fed / alone, fill);
	xr_table_close(t);
	kill(eng, SIGTERM);
	waitpid(eng, NULL, 0);
	return 0;
}
