/* SPDX-License-Identifier: MIT */
/*
 * Games at runtime under load: an engine (the `xring engine` program) with
 * two lossless readers, and ten creator processes that create and destroy
 * games through the control socket.
 *
 *   test_games_load XRING ramp SECONDS       0 -> 1,000 games, made by 10
 *                                            creators over SECONDS
 *   test_games_load XRING sustained SECONDS  2,000 games for SECONDS
 *   test_games_load XRING burst SECONDS      500 creations and 500
 *                                            destructions a second on 500
 *                                            games, for SECONDS
 *
 * Each asserts: no record lost by either lossless reader (sequence numbers
 * per ring without a gap, and its stats exact); every episode seen ends in
 * a done or truncated record (destroyed games' with their truncated record,
 * the rest at the engine's stop); the engine's threads and open descriptors
 * the same after the load as before it, and its RSS flat over the second
 * half; the arena's stats (xring info --json) and the list equal what the
 * creators did. It prints the engine's record rate before and during the
 * load. The suite runs short variants (tests/engine.cmake); perf/
 * games_load.sh the full ones.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "peer_helpers.h"
#include "xring/games.h"

#define CREATORS 10
#define MAX_IDS (1u << 20)          /* game ids this test can track */
#define PLAYERS 2
#define RSS_SLACK_KIB (8u << 10)    /* what "flat" allows over the second half */

static const char *xring_bin;
static char name[64];
static pid_t engine_pid;

/* --- the engine, seen from outside --------------------------------------- */

static long proc_status(pid_t pid, const char *key)
{
	char path[64], line[256];
	long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			v = strtol(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return v;
}

static int proc_fds(pid_t pid)
{
	char path[64];
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	CHECK(d);
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* A failing check exits: the engine must not outlive the test (it would
 * hold the test's output open, and its name). */
static void kill_engine(void)
{
	if (engine_pid > 0)
		kill(engine_pid, SIGKILL);
}

static void start_engine(uint32_t games)
{
	char g[16];

	snprintf(g, sizeof(g), "%u", games);
	engine_pid = fork();
	CHECK(engine_pid >= 0);
	if (engine_pid == 0) {
		engine_pid = 0;
		execl(xring_bin, xring_bin, "engine", "--name", name, "--games", g, "--board", "8x8",
		      "--players", "2", "--max-games", "4000", "--ring-size", "8M", "--hugepages",
		      "off", "--quiet", (char *)NULL);
		_exit(127);
	}
	xr_games *c = NULL;
	CHECK(WAIT_UNTIL(xr_games_open(name, NULL, &c) == 0, 10000));
	xr_games_close(c);
}

/* The sums of the arena's game stats over all rings, from xring info --json:
 * "created", "destroyed". */
static void info_counts(uint64_t *created, uint64_t *destroyed)
{
	char cmd[256], buf[1 << 16];
	size_t n;

	snprintf(cmd, sizeof(cmd), "%s info %s --json", xring_bin, name);
	FILE *p = popen(cmd, "r");
	CHECK(p);
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	pclose(p);
	*created = *destroyed = 0;
	for (char *s = buf; (s = strstr(s, "\"created\":")); s++)
		*created += strtoull(s + 10, NULL, 10);
	for (char *s = buf; (s = strstr(s, "\"destroyed\":")); s++)
		*destroyed += strtoull(s + 12, NULL, 10);
}

/* --- readers ------------------------------------------------------------- */

struct reader {
	pthread_t th;
	xr_reader *r;
	uint64_t next_seq[XR_MAX_RINGS]; /* 0: none seen yet; else last + 1 */
	uint64_t gaps, records;
	_Atomic uint64_t seen;           /* records so far, for rates */
	uint8_t *state;                  /* [MAX_IDS * PLAYERS]: 1 seen, 2 ended */
	xr_reader_stats st;
	int end;
};

static void *reader_main(void *p)
{
	struct reader *rd = p;
	xr_batch b;

	for (;;) {
		int n = xr_reader_read(rd->r, 1, 4096, 100 * (int64_t)MS, &b);
		if (n == 0)
			continue;
		if (n < 0) {
			rd->end = n;
			break;
		}
		const xr_frame *f = b.first;
		for (uint32_t i = 0; i < b.count; i++, f = xr_frame_next(f)) {
			xr_exp_view v;
			CHECK_RC(xr_exp_view_init(&v, xr_frame_data(f), f->len), 0);
			uint64_t *next = &rd->next_seq[b.ring];
			if (*next && v.f.seq != *next)
				rd->gaps++;
			*next = v.f.seq + 1;
			CHECK(v.f.game_id < MAX_IDS && v.f.player_id < PLAYERS);
			rd->state[v.f.game_id * PLAYERS + v.f.player_id] =
				v.f.done || v.f.truncated ? 2 : 1;
		}
		rd->records += b.count;
		atomic_store_explicit(&rd->seen, rd->records, memory_order_relaxed);
		CHECK_RC(xr_batch_release(rd->r, &b), 0);
	}
	CHECK_RC(xr_reader_stats_get(rd->r, &rd->st), 0);
	return NULL;
}

static void start_reader(struct reader *rd)
{
	xr_reader_opts ro = {.policy = XR_POLICY_LOSSLESS, .label = "load"};

	memset(rd, 0, sizeof(*rd));
	rd->state = calloc(MAX_IDS * PLAYERS, 1);
	CHECK(rd->state);
	CHECK_RC(xr_reader_attach(name, &ro, &rd->r), 0);
	CHECK(pthread_create(&rd->th, NULL, reader_main, rd) == 0);
}

static double rate(struct reader *rd, uint64_t ns)
{
	uint64_t a = atomic_load(&rd->seen), t0 = xr__now_ns();
	struct timespec ts = {(time_t)(ns / SEC), (long)(ns % SEC)};

	nanosleep(&ts, NULL); /* a measuring window, not synchronisation */
	return (double)(atomic_load(&rd->seen) - a) * 1e9 / (double)(xr__now_ns() - t0);
}

/* --- creators ------------------------------------------------------------ */

struct tally {
	_Atomic uint64_t created, destroyed, failed;
};

/* One creator: every period, `create` games (not owned: they outlive it)
 * and the destruction of `destroy` of its own oldest ones, `steps` times. */
static int creator(struct tally *t, uint32_t steps, uint64_t period_ns, uint32_t create,
		   uint32_t destroy, uint64_t seed)
{
	xr_games *c;
	uint32_t *mine = malloc((size_t)steps * create * sizeof(*mine)), made = 0, gone = 0;
	xr_game_spec spec = {.seed = seed};
	uint64_t t0 = xr__now_ns();

	if (!mine || xr_games_open(name, NULL, &c) < 0)
		return 10;
	for (uint32_t s = 0; s < steps; s++) {
		int n = xr_games_create(c, &spec, create, mine + made);
		if (n != (int)create) {
			fprintf(stderr, "creator: create %u: %d (%s)\n", create, n, xr_last_reason());
			atomic_fetch_add(&t->failed, 1);
		} else {
			made += create;
			atomic_fetch_add(&t->created, create);
		}
		spec.seed += create;
		uint32_t k = made - gone < destroy ? made - gone : destroy;
		if (s > 0 && k) {
			int rc = xr_games_destroy(c, mine + gone, k);
			if (rc < 0) {
				fprintf(stderr, "creator: destroy: %s\n", xr_last_reason());
				atomic_fetch_add(&t->failed, 1);
			} else {
				gone += k;
				atomic_fetch_add(&t->destroyed, k);
			}
		}
		/* Paced: the load's shape in time, not a wait for anything. */
		uint64_t due = t0 + (s + 1) * period_ns, now = xr__now_ns();
		if (due > now) {
			struct timespec ts = {(time_t)((due - now) / SEC), (long)((due - now) % SEC)};
			nanosleep(&ts, NULL);
		}
	}
	xr_games_close(c);
	free(mine);
	return 0;
}

static void run_creators(struct tally *t, uint32_t steps, uint64_t period_ns, uint32_t create,
			 uint32_t destroy)
{
	pid_t kids[CREATORS];

	for (int i = 0; i < CREATORS; i++) {
		kids[i] = fork();
		CHECK(kids[i] >= 0);
		if (kids[i] == 0)
			_exit(creator(t, steps, period_ns, create, destroy, 1000000ull * (i + 1)));
	}
	for (int i = 0; i < CREATORS; i++) {
		int st;
		CHECK(waitpid(kids[i], &st, 0) == kids[i]);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			FAILF("creator %d ended with status 0x%x", i, st);
	}
}

/* --- the checks ---------------------------------------------------------- */

static uint32_t live_games(void)
{
	xr_games *c;
	uint32_t total = 0;

	CHECK_RC(xr_games_open(name, NULL, &c), 0);
	CHECK(xr_games_list(c, 0, NULL, 0, &total) >= 0);
	xr_games_close(c);
	return total;
}

static void stop_and_check(struct reader rd[2], uint32_t start_games, const struct tally *t)
{
	int st;

	/* The list and the arena's stats say what the creators did. */
	uint64_t want_live = start_games + t->created - t->destroyed, ic = 0, id = 0;
	CHECK_EQ(live_games(), want_live);
	CHECK(WAIT_UNTIL((info_counts(&ic, &id), ic == t->created && id == t->destroyed), 10000));
	CHECK(kill(engine_pid, SIGTERM) == 0);
	CHECK(waitpid(engine_pid, &st, 0) == engine_pid);
	engine_pid = 0;
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	uint64_t pairs = 0;
	for (int i = 0; i < 2; i++) {
		CHECK(pthread_join(rd[i].th, NULL) == 0);
		CHECK_EQ(rd[i].end, XR_ECLOSED);
		if (rd[i].gaps)
			FAILF("reader %d: %llu gaps in sequence numbers (records lost)", i,
			      (unsigned long long)rd[i].gaps);
		CHECK_EQ(rd[i].st.dropped, 0);
		CHECK_EQ(rd[i].st.written, rd[i].st.read + rd[i].st.filtered + rd[i].st.pending);
		CHECK_EQ(rd[i].st.read, rd[i].records);
		/* Every episode seen ended: destroyed games with their last
		 * record, the others at the stop. */
		uint64_t open = 0;
		for (uint32_t k = 0; k < MAX_IDS * PLAYERS; k++) {
			open += rd[i].state[k] == 1;
			pairs += i == 0 && rd[i].state[k];
		}
		if (open)
			FAILF("reader %d: %llu (game, player) pairs whose last record ends no episode",
			      i, (unsigned long long)open);
		xr_reader_detach(rd[i].r);
		free(rd[i].state);
	}
	printf("load: %llu games created, %llu destroyed, %llu live at the end (list and "
	       "arena stats agree); %llu (game, player) pairs seen, every episode ended; "
	       "readers read %llu and %llu records, none lost\n",
	       (unsigned long long)t->created, (unsigned long long)t->destroyed,
	       (unsigned long long)want_live, (unsigned long long)pairs,
	       (unsigned long long)rd[0].records, (unsigned long long)rd[1].records);
}

struct sample {
	long threads, rss_kib;
	int fds;
};

static struct sample sample(void)
{
	return (struct sample){proc_status(engine_pid, "Threads"), proc_status(engine_pid, "VmRSS"),
			       proc_fds(engine_pid)};
}

static void check_flat(struct sample before, struct sample mid, struct sample after)
{
	printf("load: engine threads %ld -> %ld, fds %d -> %d, RSS %ld -> %ld -> %ld KiB\n",
	       before.threads, after.threads, before.fds, after.fds, before.rss_kib, mid.rss_kib,
	       after.rss_kib);
	/* Before may count a probe connection still closing, and its uid's
	 * closing thread: after the load, nothing more may be left. */
	CHECK(after.threads <= before.threads);
	CHECK(after.fds <= before.fds);
	if (after.rss_kib > mid.rss_kib + RSS_SLACK_KIB)
		FAILF("RSS grew from %ld to %ld KiB over the second half of the load", mid.rss_kib,
		      after.rss_kib);
}

int main(int argc, char **argv)
{
	struct reader rd[2];
	long secs;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc != 4 || !(secs = strtol(argv[3], NULL, 10)) || secs < 2) {
		fprintf(stderr, "usage: test_games_load XRING ramp|sustained|burst SECONDS(>=2)\n");
		return 2;
	}
	xring_bin = argv[1];
	const char *mode = argv[2];
	bool ramp = !strcmp(mode, "ramp"), burst = !strcmp(mode, "burst");
	uint32_t start_games = ramp ? 0 : burst ? 500 : 2000;
	xr_test_name(name, sizeof(name), mode);
	struct tally *t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			       -1, 0);
	CHECK(t != MAP_FAILED);

	atexit(kill_engine);
	start_engine(start_games);
	start_reader(&rd[0]);
	start_reader(&rd[1]);
	double steady = start_games ? rate(&rd[0], 1 * SEC) : 0;
	/* The control socket answers before the shard starts (the server is
	 * up first, so that games may be asked for at once): the count to
	 * compare with is the one with the shard running (main, control
	 * thread, shard), or a slow start (ASan) makes "before" short. */
	CHECK(WAIT_UNTIL(proc_status(engine_pid, "Threads") >= 3, 10000));
	struct sample before = sample(), mid, after;

	if (ramp) {
		/* 10 creators x 10 steps x 10 games over secs. */
		run_creators(t, 10, (uint64_t)secs * SEC / 10, 10, 0);
		mid = sample();
		after = mid;
		CHECK_EQ(t->created, 1000);
	} else if (burst) {
		/* 10 creators, every 100 ms 5 creations and 5 destructions
		 * each: 500 a second of both, the first half then the second. */
		uint32_t steps = (uint32_t)secs * 10 / 2;
		uint64_t seen0 = atomic_load(&rd[0].seen), t0 = xr__now_ns();
		run_creators(t, steps, 100 * MS, 5, 5);
		mid = sample();
		run_creators(t, steps, 100 * MS, 5, 5);
		double in_burst = (double)(atomic_load(&rd[0].seen) - seen0) * 1e9 /
				  (double)(xr__now_ns() - t0);
		after = sample();
		CHECK_EQ(t->failed, 0);
		printf("load: %.0f records/s steady, %.0f/s during the burst (%.2f of steady)\n",
		       steady, in_burst, steady > 0 ? in_burst / steady : 0.0);
	} else {
		struct timespec half = {(time_t)(secs / 2), 0};
		nanosleep(&half, NULL); /* the load's length, not a wait for anything */
		mid = sample();
		nanosleep(&half, NULL);
		after = sample();
		printf("load: %.0f records/s with %u games\n", rate(&rd[0], 1 * SEC), start_games);
	}
	CHECK_EQ(t->failed, 0);
	/* Every creator's connection is closed by now; the engine's closer
	 * closes them on its own thread (what is counted is its fds). */
	CHECK(WAIT_UNTIL(proc_fds(engine_pid) <= before.fds, 5000));
	after.fds = proc_fds(engine_pid);
	/* A uid's closing thread (control/closer.c) lives while closes of
	 * that uid are pending: the count settles once they are done. */
	if (!WAIT_UNTIL(proc_status(engine_pid, "Threads") <= before.threads, 20000)) {
		char cmd[96];
		snprintf(cmd, sizeof(cmd), "cat /proc/%d/task/*/comm /proc/%d/task/*/stat >&2",
			 (int)engine_pid, (int)engine_pid);
		if (system(cmd) != 0)
			fprintf(stderr, "(no task list)\n");
		FAILF("the engine has %ld threads 20 s after the load, %ld before",
		      proc_status(engine_pid, "Threads"), before.threads);
	}
	after.threads = proc_status(engine_pid, "Threads");
	check_flat(before, mid, after);
	stop_and_check(rd, start_games, t);
	printf("ok\n");
	return 0;
}
