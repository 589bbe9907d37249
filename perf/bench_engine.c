/* SPDX-License-Identifier: MIT */
/*
 * bench_engine: experiences per second end to end, from N grid games on the
 * engine's shards to one reader process that verifies every record, for
 * several N; with CPU time per experience, threads and resident memory as N
 * grows. The bound printed beside each result, measured in the same run, is
 * memcpy bandwidth over the same bytes (how fast the records' bytes could be
 * moved at all) and the target (1,000,000 experiences/s at 10,000
 * games on this 2-core machine). A sampler thread reads the engine's
 * thread count and RSS while the shards run.
 *
 * The figures are of the steady state: the window opens at the reader's
 * first batch and lasts --seconds; the engine's CPU time is counted over
 * the same window. Starting N games (creating them, their first turns)
 * comes before it and is reported apart ("start s"): at 100,000 games it
 * takes seconds, and counted in a 3-second window it made the engine look
 * several times dearer per experience than it is.
 *
 *   bench_engine [--games 100,1000,10000] [--seconds S] [--shards S] [--json]
 *
 * --json: one JSON object per N on stdout, with the bound (memcpy_gbps)
 * and the ratio beside each figure, in place of the table.
 *
 * Also per N, before the engine runs: the same games alone on one thread
 * (game_alone()), and issue 14's bound on the engine's CPU per experience,
 * 1.5 x (the record's memcpy + the game's step), with the ratio.
 */
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "xring/error.h"
#include "xring/server.h"
#include "xring/reader.h"
#include "xring/record.h"
#include "bench_util.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* KiB of a /proc/self/status field ("VmRSS:", "Threads:"). */
static long status_field(const char *field)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			v = strtol(line + strlen(field), NULL, 10);
	fclose(f);
	return v;
}

static double memcpy_gbps(size_t len, double seconds)
{
	char *a = malloc(len), *b = malloc(len);
	double t0, t;
	size_t n = 0;

	memset(a, 1, len);
	memset(b, 2, len);
	t0 = now_s();
	do {
		memcpy(b, a, len);
		a[n % len]++;
		n++;
		t = now_s() - t0;
	} while (t < seconds);
	free(a);
	free(b);
	return (double)len * (double)n / t / 1e9;
}

/*
 * The game alone: what the same N games cost on one thread with no xring at
 * all, per experience (one player's turn): the step (step_ns, the game's
 * rules), and everything the shard asks of the game for a record (full_ns:
 * observe and legal_actions of each player into a record-sized slot of a
 * 64 MiB buffer walked like the ring, so the writes go to memory as the
 * engine's do, the random policy's draw, the step). Thread CPU time, so
 * what else the machine runs does not count.
 */
static double thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int game_alone(const xr_game_vtable *vt, xr_game_config cfg, uint32_t games,
		      const xr_exp_template *t, double seconds, double *step_ns, double *full_ns)
{
	const size_t buf_len = 64u << 20;
	void **g = calloc(games, sizeof(*g));
	int32_t (*act)[2] = calloc(games, sizeof(*act));
	uint8_t *buf = malloc(buf_len);
	uint64_t rng = 7, exps = 0;
	double t_step = 0, t0, t1;
	size_t off = 0;
	int rc = 0;

	if (!g || !act || !buf) {
		rc = -ENOMEM;
		goto out;
	}
	memset(buf, 0, buf_len);
	for (uint32_t i = 0; i < games && rc == 0; i++) {
		cfg.seed = i + 1;
		rc = vt->create(&cfg, &g[i]);
		if (rc == 0)
			rc = vt->reset(g[i], i + 1);
	}
	if (rc < 0)
		goto out;
	/* A round: every game's records (observe, mask, draw), then every
	 * game's step, so that the step is timed apart with two clock reads a
	 * round rather than two a step. */
	t0 = thread_cpu_s();
	do {
		for (uint32_t i = 0; i < games; i++)
			for (uint32_t p = 0; p < 2; p++) {
				if (off + t->size > buf_len)
					off = 0;
				uint8_t *rec = buf + off;
				off += t->size;
				vt->observe(g[i], p, XR_DTYPE_U8, rec + t->off_obs);
				vt->legal_actions(g[i], p, rec + t->off_mask);
				act[i][p] = xr_policy_random_legal(rec + t->off_mask, t->shape.mask_len,
								   &rng);
			}
		double ta = thread_cpu_s();
		for (uint32_t i = 0; i < games; i++) {
			float rew[2];
			uint32_t flags[2];

			if (vt->step(g[i], act[i], rew, flags) == 1)
				vt->reset(g[i], rng++);
		}
		t1 = thread_cpu_s();
		t_step += t1 - ta;
		exps += 2ull * games;
	} while (t1 - t0 < seconds);
	*step_ns = t_step * 1e9 / (double)exps;
	*full_ns = (t1 - t0) * 1e9 / (double)exps;
out:
	for (uint32_t i = 0; g && i < games; i++)
		if (g[i])
			vt->destroy(g[i]);
	free(g);
	free(act);
	free(buf);
	return rc;
}

/* Watches the process while the shards run: peak thread count and RSS. */
struct sampler {
	volatile int done;
	long threads, rss;
};

static void *sampler_main(void *p)
{
	struct sampler *s = p;
	const struct timespec tick = {0, 50000000};

	while (!s->done) {
		long th = status_field("Threads:"), rss = status_field("VmRSS:");
		if (th > s->threads)
			s->threads = th;
		if (rss > s->rss)
			s->rss = rss;
		nanosleep(&tick, NULL);
	}
	return NULL;
}

static _Atomic int stop;

static void on_alarm(int sig)
{
	(void)sig;
	atomic_store(&stop, 1);
}

/* The longest the games may take to start before the run is given up. */
#define START_LIMIT_S 300

/* Opens and closes the window on the reader's word: CPU time at its first
 * batch and at its figures, then stops the engine. */
struct window {
	int fd;
	bool ok;
	double first_s;        /* when the first batch came */
	struct rusage ru0, ru1;
	uint64_t got[4];       /* records, bytes, malformed, window ns */
};

static void *window_main(void *p)
{
	struct window *w = p;
	char c;

	if (read(w->fd, &c, 1) == 1) {
		getrusage(RUSAGE_SELF, &w->ru0);
		w->first_s = now_s();
		w->ok = read(w->fd, w->got, sizeof(w->got)) == (ssize_t)sizeof(w->got);
		getrusage(RUSAGE_SELF, &w->ru1);
	}
	atomic_store(&stop, 1);
	return NULL;
}

static double cpu_s(const struct rusage *a, const struct rusage *b)
{
	return (double)(b->ru_utime.tv_sec - a->ru_utime.tv_sec + b->ru_stime.tv_sec -
			a->ru_stime.tv_sec) +
	       (double)(b->ru_utime.tv_usec - a->ru_utime.tv_usec + b->ru_stime.tv_usec -
			a->ru_stime.tv_usec) / 1e6;
}

/* The reader process: once told to go, attaches through the control
 * socket (so it sleeps on its eventfd between batches, as trainers do).
 * Its first batch opens the window (it says so); it then reads and
 * verifies for `seconds` and reports experiences, bytes, malformed records
 * and the window's length. No batch within START_LIMIT_S: exits, and the
 * run fails. */
static void reader_main(const char *name, double seconds, int go_fd, int fd)
{
	xr_reader_opts o = {.transport = XR_TRANSPORT_CONTROL};
	xr_reader *r;
	uint64_t got[4] = {0, 0, 0, 0}; /* records, bytes, malformed, window ns */
	char c;
	xr_batch b0;

	if (read(go_fd, &c, 1) != 1 || xr_reader_attach(name, &o, &r) < 0)
		_exit(2);
	if (write(fd, got, 1) != 1) /* attached */
		_exit(3);
	if (xr_reader_read(r, 1, 1024, (int64_t)START_LIMIT_S * 1000000000, &b0) <= 0)
		_exit(5);
	xr_batch_release(r, &b0);
	double t0 = now_s(), end = t0 + seconds;
	if (write(fd, got, 1) != 1) /* the window opens */
		_exit(3);
	while (now_s() < end) {
		xr_batch b;
		int n = xr_reader_read(r, 64, 1024, 10000000, &b);
		if (n < 0)
			_exit(6); /* the engine is gone, or the read failed: no figures */
		if (n == 0)
			continue;
		const xr_frame *f = b.first;
		for (int i = 0; i < n; i++, f = xr_frame_next(f))
			got[2] += xr_exp_verify(xr_frame_data(f), f->len) != 0;
		got[0] += (uint64_t)n;
		got[1] += b.bytes;
		xr_batch_release(r, &b);
	}
	got[3] = (uint64_t)((now_s() - t0) * 1e9);
	xr_reader_detach(r);
	_exit(write(fd, got, sizeof(got)) == (ssize_t)sizeof(got) ? 0 : 4);
}

/* One line on stderr about a bad option; the exit status of a usage error. */
__attribute__((format(printf, 1, 2))) static int usage_err(const char *fmt, ...)
{
	va_list ap;

	fputs("bench_engine: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

int main(int argc, char **argv)
{
	uint32_t sizes[8] = {100, 1000, 10000}, n_sizes = 3, shards = 2;
	double seconds = 3;
	bool json = false;

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;

		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--seconds") && v) {
			seconds = strtod(v, &end);
			i++;
			if (*end || end == v || !(seconds >= 0.1 && seconds <= 3600))
				return usage_err("--seconds '%s': give a time of 0.1 to 3600 seconds", v);
		} else if (!strcmp(argv[i], "--shards") && v) {
			unsigned long n = strtoul(v, &end, 10);
			i++;
			if (*end || end == v || v[0] == '-' || n < 1 || n > 64)
				return usage_err("--shards '%s': give 1 to 64 shards", v);
			shards = (uint32_t)n;
		} else if (!strcmp(argv[i], "--games") && v) {
			char list[256];
			i++;
			if (strlen(v) >= sizeof(list))
				return usage_err("--games: a list of at most 8 counts, not '%s'", v);
			strcpy(list, v);
			n_sizes = 0;
			for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
				unsigned long n = strtoul(tok, &end, 10);
				if (*end || end == tok || tok[0] == '-' || n < 1 || n > 10000000 ||
				    n_sizes == 8)
					return usage_err("--games '%s': give up to 8 counts of 1 to "
							 "10,000,000 games, e.g. 100,1000", v);
				sizes[n_sizes++] = (uint32_t)n;
			}
			if (!n_sizes)
				return usage_err("--games '%s': give up to 8 counts of 1 to 10,000,000 "
						 "games, e.g. 100,1000", v);
		} else {
			fprintf(stderr, "usage: bench_engine [--games N,N,...] [--seconds S] [--shards S] "
					"[--json]\n");
			return 2;
		}
	}

	const xr_game_vtable *vt = xr_game_builtin_grid();
	xr_game_config cfg = {.players = 2, .seed = 1};
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSLESS, .ring_bytes = 64u << 20,
			     .n_rings = shards, .kind = XR_RECORD_EXPERIENCE};
	xr_exp_template t;

	if (xr_shard_shape(vt, &cfg, XR_DTYPE_U8, &ss.shape) < 0 ||
	    xr_exp_template_init(&t, &ss.shape) < 0) {
		fprintf(stderr, "bench_engine: cannot lay out grid records\n");
		return 2;
	}
	double mc = memcpy_gbps(64u << 20, 0.5);
	if (!json) {
		printf("bench_engine: grid 20x20, 2 players, u8 obs 9x20x20, %u-byte records, %u "
		       "shard(s), one verifying reader process, %.1f s per N\n",
		       t.size, shards, seconds);
		printf("bound: memcpy %.2f GB/s (64 MiB blocks, this run); target: >= 1,000,000 "
		       "experiences/s at 10,000 games\n\n", mc);
		printf("%8s %12s %8s %9s %10s %8s %10s %10s %8s %8s %9s %8s %8s\n", "games", "exp/s",
		       "GB/s", "x memcpy", "cpu ns/exp", "threads", "rss MiB", "KiB/game",
		       "game ns", "step ns", "bound ns", "x bound", "start s");
	}

	for (uint32_t s = 0; s < n_sizes; s++) {
		char name[64];
		int fds[2];
		uint32_t games = sizes[s] < shards ? shards : sizes[s];

		int go[2];
		/* The game alone first, while nothing else of ours runs. */
		double step_ns = 0, game_ns = 0;
		if (game_alone(vt, cfg, games, &t, seconds < 1 ? seconds : 1, &step_ns, &game_ns) < 0) {
			fprintf(stderr, "bench_engine: the game alone: cannot create %u games\n", games);
			return 2;
		}
		/* Issue 14's bound: 1.5 x (the record's memcpy + the game's step). */
		double bound_ns = 1.5 * ((double)t.size / mc + step_ns);

		snprintf(name, sizeof(name), "bench-engine-%d-%u", (int)getpid(), games);
		/* The reader is forked before this process has more threads than
		 * main, and attaches when the engine serves. */
		if (pipe(fds) < 0 || pipe(go) < 0)
			return 2;
		pid_t pid = fork();
		if (pid == 0) {
			/* Not one moment past this process: a signal that ends it
			 * (bench_util.h) would leave the reader mapping the arena. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() == 1)
				_exit(7);
			reader_main(name, seconds, go[0], fds[1]);
		}
		close(go[0]);
		/* A signal between the arena's making and the handler knowing
		 * it would leave the arena behind. */
		sigset_t was;
		bench_hold_signals(&was);
		xr_arena_spec spec = {.name = name, .streams = &ss, .n_streams = 1,
				      .hugepages = XR_HUGEPAGES_PREFER, .numa_node = XR_NUMA_DEFAULT};
		xr_arena *a;
		xr_server *srv;
		if (xr_arena_create(&spec, &a) < 0) {
			fprintf(stderr, "bench_engine: %s\n", xr_arena_last_note());
			return 2;
		}
		if (xr_server_start(a, NULL, &srv) < 0) {
			fprintf(stderr, "bench_engine: %s\n", xr_server_last_note());
			xr_arena_destroy(a);
			return 2;
		}
	{ /* a signal from here on removes them (bench_util.h) */
		xr_arena_facts gf;
		xr_arena_facts_get(a, &gf);
		bench_remove_on_signal(gf.path);
		bench_remove_on_signal(xr_server_path(srv));
		bench_release_signals(&was);
	}
		char c;
		if (write(go[1], "g", 1) != 1 || read(fds[0], &c, 1) != 1)
			return 2;
		close(go[1]);

		long rss0 = status_field("VmRSS:");
		stop = 0;
		/* A safety only: the window's end stops the engine. */
		signal(SIGALRM, on_alarm);
		struct itimerval it = {.it_value = {.tv_sec = (long)seconds + START_LIMIT_S + 30}};
		struct xr_engine_opts eo = {
			.shard = {.vt = vt, .cfg = cfg, .games = games, .obs_dtype = XR_DTYPE_U8,
				  .stop = &stop},
			.shards = shards,
			.numa_node = -1,
		};
		struct xr_shard_result res;
		struct sampler sm = {0};
		struct window win = {.fd = fds[0]};
		pthread_t sth, wth;
		setitimer(ITIMER_REAL, &it, NULL);
		pthread_create(&sth, NULL, sampler_main, &sm);
		pthread_create(&wth, NULL, window_main, &win);
		double started = now_s();
		int rc = xr_engine_run(a, &t, &eo, &res);
		sm.done = 1;
		pthread_join(sth, NULL);
		/* The reader gone, the window thread's read ends too. */
		waitpid(pid, NULL, 0);
		close(fds[1]);
		fds[1] = -1;
		pthread_join(wth, NULL);
		setitimer(ITIMER_REAL, &(struct itimerval){0}, NULL);
		/* The sampler and the window thread are two of the threads counted. */
		long threads = sm.threads - 2, rss1 = sm.rss;
		uint64_t *got = win.got;
		xr_arena_close(a);
		xr_server_stop(srv);
		bench_keep_all();
		xr_arena_destroy(a);
		close(fds[0]);
		if (rc < 0 || got[2] || !win.ok || !got[0] || !got[3]) {
			if (!win.ok || !got[0])
				fprintf(stderr, "bench_engine: %u games: the reader %s (%s)\n", games,
					win.first_s ? "got no figures" : "got no record",
					win.first_s ? "it failed" : "the games did not start within the "
								    "limit, or the reader failed");
			else
				fprintf(stderr, "bench_engine: run failed (%s, %llu malformed records)\n",
					xr_strerror(rc), (unsigned long long)got[2]);
			return 1;
		}
		double win_s = (double)got[3] / 1e9, start_s = win.first_s - started;
		double eps = (double)got[0] / win_s, gbps = (double)got[1] / win_s / 1e9;
		double cpu_ns = cpu_s(&win.ru0, &win.ru1) * 1e9 / (double)got[0];
		if (json)
			printf("{\"benchmark\": \"bench_engine\", \"games\": %u, \"shards\": %u, "
			       "\"record_bytes\": %u, \"seconds\": %.3f, \"exp_per_s\": %.0f, "
			       "\"gbps\": %.4f, \"memcpy_gbps\": %.4f, \"vs_memcpy\": %.4f, "
			       "\"cpu_ns_per_exp\": %.1f, \"threads\": %ld, \"rss_kib\": %ld, "
			       "\"kib_per_game\": %.3f, \"game_ns_per_exp\": %.1f, "
			       "\"step_ns_per_exp\": %.1f, \"bound_ns_per_exp\": %.1f, "
			       "\"vs_bound\": %.4f, \"start_s\": %.3f}\n",
			       games, shards, t.size, win_s, eps, gbps, mc, gbps / mc, cpu_ns,
			       threads, rss1, (double)(rss1 - rss0) / games, game_ns, step_ns,
			       bound_ns, cpu_ns / bound_ns, start_s);
		else
			printf("%8u %12.0f %8.3f %9.3f %10.0f %8ld %10.1f %10.2f %8.0f %8.0f %9.0f "
			       "%8.2f %8.1f\n", games, eps, gbps, gbps / mc, cpu_ns, threads,
			       (double)rss1 / 1024.0, (double)(rss1 - rss0) / games, game_ns,
			       step_ns, bound_ns, cpu_ns / bound_ns, start_s);
	}
	if (json)
		return 0;
	printf("\nexp/s: experiences verified by the reader per second; GB/s: their bytes; cpu: "
	       "engine process (shards) only;\nthreads: engine threads while running (main + "
	       "control server + shards); KiB/game: RSS growth per game beyond ring space (hugetlbfs pages are "
	       "not in RSS);\ngame ns: the same games alone on one thread, no xring (observe and mask "
	       "into 64 MiB of record slots, the policy's draw, the step), per experience; step ns: "
	       "the step alone;\nbound ns: 1.5 x (the record's memcpy + the step); x bound: cpu "
	       "ns/exp over it (issue 14: at most 1);\nexp/s and cpu ns/exp: over the window from the "
	       "reader's first batch (start s: the games' start before it, not counted).\n");
	return 0;
}
