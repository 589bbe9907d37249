/* SPDX-License-Identifier: MIT */
/*
 * bench_games: games created and destroyed at runtime (issue 10), against an
 * engine (the `xring engine` program of this build) running flat out.
 *
 *   churn   creations and destructions a second through the control socket
 *           (requests of 64 games, one process), while the engine's shards
 *           step its 1,000 games as fast as they can; the engine's records a
 *           second during the churn as a fraction of its rate just before,
 *           in the same run. Targets: >= 5,000 creations/s, >= 0.8 of the
 *           steady rate.
 *   observe steps a second of 10,000 games with a reader of 1 % of them
 *           (games 0..99, lossless), with --observe subscribed (records for
 *           those 1 % only) against --observe all (every record built, the
 *           reader skipping 99 % in place), in the same run.
 *   memory  the engine's RSS with no game, then with 100,000 20x20 grid
 *           games: bytes per game beyond the rings (prefaulted at start, so
 *           in both). Target: <= 16 KiB.
 *
 *   bench_games [--seconds S] [--games N] [--json]
 *
 * Exit status 0 when it measured (a missed target is reported, not failed),
 * 1 when something did not work. The xring program it runs is $XRING_BIN, or
 * the one of its build tree.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "xring/games.h"
#include "xring/reader.h"

#define SEC 1000000000ull
#define BATCH 64

static char xring_bin[PATH_MAX], name[64];
static pid_t engine;

static void die(const char *what)
{
	fprintf(stderr, "bench_games: %s (%s)\n", what, xr_last_reason());
	if (engine > 0)
		kill(engine, SIGKILL);
	exit(1);
}

static const char *observe = "all";

static void start_engine(const char *games, const char *tick_ms)
{
	engine = fork();
	if (engine < 0)
		die("fork");
	if (engine == 0) {
		execl(xring_bin, xring_bin, "engine", "--name", name, "--games", games, "--max-games",
		      "100000", "--max-creates-per-uid", "10000000", "--tick-ms", tick_ms,
		      "--ring-size", "64M", "--observe", observe, "--quiet", (char *)NULL);
		_exit(127);
	}
	uint64_t end = xr__now_ns() + 30 * SEC;
	xr_games *c;
	while (xr_games_open(name, NULL, &c) < 0)
		if (xr__now_ns() > end)
			die("the engine did not come up");
	xr_games_close(c);
}

static void stop_engine(void)
{
	kill(engine, SIGTERM);
	waitpid(engine, NULL, 0);
	engine = 0;
}

/* Sum of `"key":N` over `xring info NAME --json`. */
static uint64_t info_sum(const char *key)
{
	char cmd[PATH_MAX + 128], pat[64];
	static char buf[1 << 16];
	uint64_t sum = 0;

	snprintf(cmd, sizeof(cmd), "%s info %s --json", xring_bin, name);
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	FILE *p = popen(cmd, "r");
	if (!p)
		die("popen");
	size_t n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	pclose(p);
	for (char *s = buf; (s = strstr(s, pat)); s++)
		sum += strtoull(s + strlen(pat), NULL, 10);
	return sum;
}

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			v = strtol(line + 6, NULL, 10);
	fclose(f);
	return v;
}

static void pause_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / SEC), (long)(ns % SEC)};
	nanosleep(&ts, NULL);
}

/* Records the engine wrote over `ns`, a second: from the arena's counters
 * (shards write flat out; no reader holds them back). */
static double engine_rate(uint64_t ns)
{
	uint64_t w0 = info_sum("written"), t0 = xr__now_ns();
	pause_ns(ns);
	return (double)(info_sum("written") - w0) * 1e9 / (double)(xr__now_ns() - t0);
}

struct churn {
	double creates_s, destroys_s, steady, during;
};

static void churn(double seconds, struct churn *r)
{
	xr_games *c;
	xr_game_spec spec = {.seed = 7};
	uint32_t ids[2][BATCH];
	uint64_t made = 0, gone = 0;
	int cur = 0;

	start_engine("1000", "0");
	r->steady = engine_rate(2 * SEC);
	if (xr_games_open(name, NULL, &c) < 0)
		die("open");
	uint64_t w0 = info_sum("written"), t0 = xr__now_ns(), end = t0 + (uint64_t)(seconds * 1e9);
	if (xr_games_create(c, &spec, BATCH, ids[cur]) != BATCH)
		die("create");
	made += BATCH;
	while (xr__now_ns() < end) {
		/* Make a batch, destroy the one before: the engine keeps its
		 * 1,000 games plus one batch. */
		spec.seed += BATCH;
		if (xr_games_create(c, &spec, BATCH, ids[!cur]) != BATCH)
			die("create");
		made += BATCH;
		if (xr_games_destroy(c, ids[cur], BATCH) < 0)
			die("destroy");
		gone += BATCH;
		cur = !cur;
	}
	uint64_t t1 = xr__now_ns();
	r->during = (double)(info_sum("written") - w0) * 1e9 / (double)(t1 - t0);
	r->creates_s = (double)made * 1e9 / (double)(t1 - t0);
	r->destroys_s = (double)gone * 1e9 / (double)(t1 - t0);
	xr_games_close(c);
	stop_engine();
}

struct observed {
	xr_reader *r;
	_Atomic int stop;
	uint64_t records;
};

static void *observer_main(void *p)
{
	struct observed *o = p;
	xr_batch b;

	while (!atomic_load(&o->stop)) {
		int n = xr_reader_read(o->r, 1, 4096, 10000000, &b);
		if (n < 0)
			break;
		if (n > 0) {
			o->records += b.count;
			xr_batch_release(o->r, &b);
		}
	}
	return NULL;
}

/* Steps a second of `games` games with a lossless reader of games 0..99. */
static double observe_rate(const char *mode, const char *games, uint64_t *records)
{
	xr_id_range some = {0, 99};
	xr_filter f = {.games = &some, .n_games = 1};
	xr_reader_opts ro = {.filter = &f, .label = "bench-1%"};
	struct observed o = {0};
	pthread_t th;

	observe = mode;
	start_engine(games, "0");
	if (xr_reader_attach(name, &ro, &o.r) < 0)
		die("attach");
	if (pthread_create(&th, NULL, observer_main, &o))
		die("pthread_create");
	pause_ns(1 * SEC); /* warm up */
	uint64_t s0 = info_sum("steps"), t0 = xr__now_ns();
	pause_ns(3 * SEC);
	double r = (double)(info_sum("steps") - s0) * 1e9 / (double)(xr__now_ns() - t0);
	atomic_store(&o.stop, 1);
	pthread_join(th, NULL);
	*records = o.records;
	xr_reader_detach(o.r);
	stop_engine();
	observe = "all";
	return r;
}

struct memory {
	long rss0, rss1;
	uint32_t games;
	double per_game;
};

static void memory(uint32_t games, struct memory *m)
{
	xr_games *c;
	xr_game_spec spec = {.seed = 1};
	uint32_t *ids = malloc(games * sizeof(*ids));

	if (!ids)
		die("malloc");
	/* Turns once a second: the shards take orders, the games sit. */
	start_engine("0", "1000");
	m->rss0 = rss_kib(engine);
	if (xr_games_open(name, NULL, &c) < 0)
		die("open");
	if (xr_games_create(c, &spec, games, ids) != (int)games)
		die("create");
	/* Every game taken up by its shard (stats at 2 Hz). */
	uint64_t end = xr__now_ns() + 60 * SEC;
	while (info_sum("created") < games) {
		if (xr__now_ns() > end)
			die("the shards did not take every game within 60 s");
		pause_ns(100000000);
	}
	m->rss1 = rss_kib(engine);
	m->games = games;
	m->per_game = (double)(m->rss1 - m->rss0) * 1024.0 / games;
	xr_games_close(c);
	stop_engine();
	free(ids);
}

int main(int argc, char **argv)
{
	double seconds = 5;
	uint32_t games = 100000;
	bool json = false;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--games") && i + 1 < argc)
			games = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else {
			fprintf(stderr, "usage: bench_games [--seconds S] [--games N] [--json]\n");
			return 2;
		}
	}
	if (n <= 0)
		die("readlink /proc/self/exe");
	exe[n] = '\0';
	/* $XRING_BIN (`xring bench` sets it to itself), else build/perf/bench_games
	 * -> build/xring */
	const char *env = getenv("XRING_BIN");
	if (env && *env)
		snprintf(xring_bin, sizeof(xring_bin), "%s", env);
	else
		snprintf(xring_bin, sizeof(xring_bin), "%s/../xring", dirname(exe));
	if (access(xring_bin, X_OK) < 0)
		die("no xring program next to the build's perf/ (build the xring_cli target)");
	snprintf(name, sizeof(name), "bench-games-%d", (int)getpid());
	signal(SIGPIPE, SIG_IGN);

	struct churn ch;
	struct memory mem;
	uint64_t rec_all, rec_sub;
	churn(seconds, &ch);
	double all = observe_rate("all", "10000", &rec_all);
	double sub = observe_rate("subscribed", "10000", &rec_sub);
	memory(games, &mem);
	if (json) {
		printf("{\"bench\":\"games\",\"creates_per_s\":%.0f,\"destroys_per_s\":%.0f,"
		       "\"creates_target\":5000,\"engine_steady_per_s\":%.0f,\"engine_during_per_s\":%.0f,"
		       "\"engine_fraction\":%.3f,\"games\":%u,\"rss0_kib\":%ld,\"rss1_kib\":%ld,"
		       "\"bytes_per_game\":%.0f,\"bytes_per_game_target\":16384,"
		       "\"steps_per_s_observe_all\":%.0f,\"steps_per_s_observe_subscribed\":%.0f,"
		       "\"observe_speedup\":%.2f}\n",
		       ch.creates_s, ch.destroys_s, ch.steady, ch.during, ch.during / ch.steady,
		       mem.games, mem.rss0, mem.rss1, mem.per_game, all, sub, sub / all);
		return 0;
	}
	printf("bench_games: churn, requests of %d games, one process, %.0f s, on 1,000 20x20 grid "
	       "games stepping flat out:\n", BATCH, seconds);
	printf("  creations    %8.0f/s  (%.2f x the 5,000/s target)\n", ch.creates_s,
	       ch.creates_s / 5000.0);
	printf("  destructions %8.0f/s\n", ch.destroys_s);
	printf("  engine       %8.0f records/s during, %.0f/s steady just before: %.2f of steady "
	       "(target >= 0.80)\n",
	       ch.during, ch.steady, ch.during / ch.steady);
	printf("bench_games: observe, 10,000 20x20 grid games, a lossless reader of games 0..99:\n"
	       "  --observe all         %9.0f steps/s (%llu records read)\n"
	       "  --observe subscribed  %9.0f steps/s (%llu records read): %.2f x all\n",
	       all, (unsigned long long)rec_all, sub, (unsigned long long)rec_sub, sub / all);
	printf("bench_games: memory, %u 20x20 grid games: RSS %ld -> %ld KiB, %.0f bytes a game "
	       "(%.2f of the 16 KiB target)\n",
	       mem.games, mem.rss0, mem.rss1, mem.per_game, mem.per_game / 16384.0);
	return 0;
}
