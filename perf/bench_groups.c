/* SPDX-License-Identifier: MIT */
/*
 * bench_groups: records a second a consumer group's members take between
 * them (docs/groups.md), against one plain reader of the same stream in the
 * same run: an engine (`xring engine` started here, G grid games of board
 * HxW, as fast as its readers let it: a small board's small records show
 * what the group's own path costs, which a large one's rate hides); first a lossless reader alone for S seconds, then,
 * for each M, a lossless group of M members in M processes for S seconds.
 * Each member takes batches of up to B records and releases each at once.
 * The ratio is the group's records/s over the reader's: what splitting one
 * stream through the group's thread costs. On a machine of few CPUs the
 * engine, the group's thread and the members share them: the line says how
 * many there are.
 *
 *   bench_groups XRING [--games G] [--board HxW] [--seconds S] [--members 1,2,4]
 *                [--batch B]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "xring/error.h"
#include "xring/reader.h"

/* Reads for secs from the signal on go, lossless, then says on out how
 * many records it took and its count of batches. */
static int reader_run(const char *engine, const char *group, int go, int out, double secs,
		      uint32_t batch)
{
	xr_reader_opts o = {.group = group, .label = "bench member"};
	xr_reader *r;
	char c;

	if (xr_reader_attach(engine, &o, &r) < 0) {
		fprintf(stderr, "bench_groups: attach: %s\n", xr_last_reason());
		return 1;
	}
	uint64_t got[2] = {0, 0};
	if (write(out, got, sizeof(got)) != sizeof(got) || read(go, &c, 1) != 1)
		return 1;
	uint64_t end = now_ns() + (uint64_t)(secs * 1e9);
	while (now_ns() < end) {
		xr_batch b;
		int n = xr_reader_read(r, 1, batch, 10000000, &b);
		if (n > 0) {
			got[0] += (uint64_t)n;
			got[1]++;
			xr_batch_release(r, &b);
		} else if (n < 0 && n != -EINTR) {
			fprintf(stderr, "bench_groups: read: %s\n", xr_strerror(n));
			return 1;
		}
	}
	xr_reader_detach(r);
	return write(out, got, sizeof(got)) == sizeof(got) ? 0 : 1;
}

/* M members of group (M = 0: one plain reader) in M child processes,
 * started together; their records and batches, summed. */
static int run(const char *engine, const char *group, int m, double secs, uint32_t batch,
	       uint64_t *recs, uint64_t *batches, double *took_s)
{
	int go[2], back[2];
	int procs = m ? m : 1;
	pid_t pid[64];

	if (pipe(go) < 0 || pipe(back) < 0)
		return -1;
	for (int i = 0; i < procs; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			close(go[1]);
			close(back[0]);
			_exit(reader_run(engine, m ? group : NULL, go[0], back[1], secs, batch));
		}
	}
	close(go[0]);
	close(back[1]);
	uint64_t got[2];
	for (int i = 0; i < procs; i++) /* each attached */
		if (read(back[0], got, sizeof(got)) != sizeof(got))
			return -1;
	uint64_t t0 = now_ns();
	char c[64] = {0};
	if (write(go[1], c, (size_t)procs) != procs)
		return -1;
	*recs = *batches = 0;
	for (int i = 0; i < procs; i++) {
		if (read(back[0], got, sizeof(got)) != sizeof(got))
			return -1;
		*recs += got[0];
		*batches += got[1];
	}
	*took_s = (double)(now_ns() - t0) / 1e9;
	int bad = 0;
	for (int i = 0; i < procs; i++) {
		int st;
		waitpid(pid[i], &st, 0);
		bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	close(go[1]);
	close(back[0]);
	return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
	int games = 1000, members[8] = {1, 2, 4}, n_members = 3;
	double secs = 3;
	uint32_t batch = 4096;
	const char *board = NULL; /* the engine's */
	char name[64], gs[16];

	if (argc < 2) {
		fprintf(stderr, "usage: bench_groups XRING [--games G] [--board HxW] "
				"[--seconds S] [--members 1,2,4] [--batch B]\n");
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--games")) {
			games = atoi(argv[i + 1]);
		} else if (!strcmp(argv[i], "--seconds")) {
			secs = atof(argv[i + 1]);
		} else if (!strcmp(argv[i], "--board")) {
			board = argv[i + 1]; /* the engine checks it */
		} else if (!strcmp(argv[i], "--batch")) {
			batch = (uint32_t)atoi(argv[i + 1]);
		} else if (!strcmp(argv[i], "--members")) {
			n_members = 0;
			for (char *p = argv[i + 1]; *p && n_members < 8;) {
				members[n_members++] = (int)strtol(p, &p, 10);
				if (*p == ',')
					p++;
				else if (*p)
					break;
			}
		} else {
			fprintf(stderr, "bench_groups: unknown option %s; see the usage line\n",
				argv[i]);
			return 2;
		}
	}
	for (int i = 0; i < n_members; i++)
		if (members[i] < 1 || members[i] > 16) {
			fprintf(stderr, "bench_groups: --members are 1 to 16 each\n");
			return 2;
		}
	if (games < 1 || !(secs > 0) || batch < 1) {
		fprintf(stderr, "bench_groups: --games >= 1, --seconds > 0, --batch >= 1\n");
		return 2;
	}
	snprintf(name, sizeof(name), "bench-groups-%d", (int)getpid());
	snprintf(gs, sizeof(gs), "%d", games);
	pid_t eng = fork();
	if (eng == 0) {
		if (board)
			execl(argv[1], argv[1], "engine", "--name", name, "--games", gs, "--board",
			      board, "--quiet", (char *)NULL);
		else
			execl(argv[1], argv[1], "engine", "--name", name, "--games", gs, "--quiet",
			      (char *)NULL);
		_exit(127);
	}
	/* The engine is starting: attach until it answers (10 s at most). */
	xr_reader *probe = NULL;
	uint64_t until = now_ns() + 10000000000ull;
	int rc;
	while ((rc = xr_reader_attach(name, NULL, &probe)) == -ENOENT && now_ns() < until)
		usleep(10000);
	if (rc < 0) {
		fprintf(stderr, "bench_groups: attach: %s\n", xr_last_reason());
		kill(eng, SIGTERM);
		return 1;
	}
	xr_reader_detach(probe);

	uint64_t recs, batches;
	double took;
	if (run(name, NULL, 0, secs, batch, &recs, &batches, &took) < 0) {
		fprintf(stderr, "bench_groups: the plain reader failed\n");
		kill(eng, SIGTERM);
		return 1;
	}
	double alone = (double)recs / took;
	printf("engine of %d games of %s", games, board ? board : "the default board");
	printf(", %ld CPUs: a plain reader takes %.0f records/s (%.0f a batch)\n",
	       sysconf(_SC_NPROCESSORS_ONLN), alone, (double)recs / (double)batches);
	printf("%8s | %14s | %10s | %s\n", "members", "records/s", "per batch",
	       "ratio to the plain reader");
	for (int i = 0; i < n_members; i++) {
		char group[32];
		snprintf(group, sizeof(group), "bench%d", i);
		if (run(name, group, members[i], secs, batch, &recs, &batches, &took) < 0) {
			fprintf(stderr, "bench_groups: a group of %d failed\n", members[i]);
			kill(eng, SIGTERM);
			return 1;
		}
		double rate = (double)recs / took;
		printf("%8d | %14.0f | %10.0f | %.2f\n", members[i], rate,
		       (double)recs / (double)batches, rate / alone);
	}
	kill(eng, SIGTERM);
	waitpid(eng, NULL, 0);
	return 0;
}
