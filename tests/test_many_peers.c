/* SPDX-License-Identifier: MIT */
/*
 * A hundred peers on one engine (issue 13, fault tests), the engine in
 * this process, every peer a process of its own:
 *
 *   readers100  100 lossless readers of one stream (max_readers 128; the
 *               default is 64), all attached before the first record:
 *               each reads every record the shards wrote, every seq of
 *               each ring in order (100 %), and its stats agree (read ==
 *               written, dropped 0, pending 0). Prints the aggregate
 *               throughput (records and bytes handed out per second,
 *               summed over the readers).
 *   agents100   100 agent processes on one engine (--max-agents 100; the
 *               arena's agent table has XR_MAX_AGENTS, 128, entries): each
 *               claims a game and all act (the engine counts each one's
 *               answers taken, in the arena's agent table); the 101st is
 *               refused naming the limit, and `xring engine --max-agents
 *               129` is refused in one line.
 *
 *   test_many_peers XRING [case]
 */
#include <fcntl.h>
#include <stdlib.h>

#include "fault_helpers.h"

#define N_READERS 100
#define N_AGENTS 100
_Static_assert(N_AGENTS <= XR_MAX_AGENTS, "the arena holds them");

struct many_shared {
	_Atomic uint32_t attached;
	struct {
		uint64_t read, gaps, batches;
		xr_reader_stats s;
		int rc;
	} r[N_READERS];
	struct {
		uint64_t answered;
		xr_agent_stats s;
		int rc;
	} a[N_AGENTS];
};

static struct many_shared *ms;
static const char *xring;

/* Waits for the go byte (the engine is made after the fork: this process
 * has no threads when it forks). */
static void wait_go(int go)
{
	char c;

	if (read(go, &c, 1) != 1)
		_exit(3);
}

/* Reader i: every record, frame seqs of each ring without a hole from 0
 * (attached before the first record), the first record of each batch
 * verified. */
static void reader_main(const char *name, int i, int go)
{
	xr_reader_opts o = {.label = "many"};
	uint64_t next[XR_MAX_RINGS] = {0};
	xr_reader *r;
	xr_batch b;
	int n;

	wait_go(go);
	CHECK_RC(FAULT_RETRY_BUSY(xr_reader_attach(name, &o, &r)), 0);
	xr_store_relaxed(&ms->attached, xr_load_relaxed(&ms->attached) + 1);
	while ((n = xr_reader_read(r, 1, 4096, -1, &b)) > 0) {
		const xr_frame *f = b.first;
		xr_exp_view v;
		CHECK_RC(xr_exp_view_init(&v, xr_frame_data(f), f->len), 0);
		for (int k = 0; k < n; k++, f = xr_frame_next(f)) {
			if (f->seq != next[b.ring])
				FAILF("reader %d: ring %u seq %llu where %llu was expected", i, b.ring,
				      (unsigned long long)f->seq, (unsigned long long)next[b.ring]);
			next[b.ring] = f->seq + 1;
		}
		ms->r[i].read += (uint64_t)n;
		ms->r[i].batches++;
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	CHECK_RC(n, XR_ECLOSED);
	ms->r[i].rc = xr_reader_stats_get(r, &ms->r[i].s);
	xr_reader_detach(r);
	_exit(0);
}

static void readers100(void)
{
	struct fault_engine e;
	char name[64];
	int go[2];
	pid_t pid[N_READERS];
	const uint64_t target = XR_TEST_SANITIZED ? 20000 : 200000;
	const uint64_t cap_ms = XR_TEST_SANITIZED ? 10000 : 6000;

	ms = fault_shared(sizeof(*ms));
	memset(ms, 0, sizeof(*ms));
	xr_test_name(name, sizeof(name), "many-readers"); /* fault_engine_create()'s */
	CHECK(pipe(go) == 0);
	for (int i = 0; i < N_READERS; i++) {
		pid[i] = fault_fork();
		if (pid[i] == 0) {
			close(go[1]);
			reader_main(name, i, go[0]);
		}
	}
	close(go[0]);
	/* 100 games on one shard, a lossless stream of 4 MiB: its writer goes
	 * at the pace of the slowest of the hundred. */
	fault_engine_create(&e, "many-readers", &(struct fault_engine_opts){
		.games = 100, .shards = 1, .ring_bytes = 4u << 20, .max_readers = 128});
	CHECK(!strcmp(e.name, name));
	char gobytes[N_READERS];
	memset(gobytes, 'g', sizeof(gobytes));
	CHECK(write(go[1], gobytes, sizeof(gobytes)) == (ssize_t)sizeof(gobytes));
	if (!FAULT_WAIT(fault_slots_taken(&e) == N_READERS, 60000))
		FAILF("%u of %d readers attached in 60 s", fault_slots_taken(&e), N_READERS);
	uint64_t t0 = xr__now_ns();
	fault_engine_run(&e);
	/* A bounded run: so many records, or so long. */
	FAULT_WAIT(fault_written(&e) >= target, cap_ms);
	uint32_t frame = (uint32_t)(xr_load_relaxed(&e.a->hdr->rings[0].bytes) /
				    xr_load_relaxed(&e.a->hdr->rings[0].records));
	fault_engine_stop(&e);
	for (int i = 0; i < N_READERS; i++) {
		int st;
		CHECK(waitpid(pid[i], &st, 0) == pid[i]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			FAILF("reader %d ended with status 0x%x", i, st);
	}
	double s = (double)(xr__now_ns() - t0) / 1e9;
	uint64_t written = ms->r[0].s.written, sum = 0, batches = 0;
	for (int i = 0; i < N_READERS; i++) {
		const xr_reader_stats *rs = &ms->r[i].s;
		CHECK_RC(ms->r[i].rc, 0);
		/* 100 %: each read every record written, as its stats say. */
		CHECK_EQ(rs->written, written);
		CHECK_EQ(ms->r[i].read, written);
		CHECK_EQ(rs->read, written);
		CHECK_EQ(rs->dropped, 0);
		CHECK_EQ(rs->pending, 0);
		sum += ms->r[i].read;
		batches += ms->r[i].batches;
	}
	CHECK(written > 0);
	printf("readers100: %d lossless readers each read all %llu records (100 %%), in %.2f s "
	       "from the first record to the last reader's end: %.0f records/s handed out in all "
	       "(%.0f MB/s of %u-byte frames; %.0f records/s each), %.0f records a batch\n",
	       N_READERS, (unsigned long long)written, s, (double)sum / s,
	       (double)sum * frame / s / 1e6, frame, (double)written / s,
	       (double)sum / (double)batches);
	munmap(ms, sizeof(*ms));
}

/* Agent i: claims game i (every player), answers each record with its
 * highest legal action until the engine ends. */
static void agent_main(const char *name, int i, int go)
{
	static int32_t act[4096];
	xr_agent *a;
	xr_obs_batch b;
	int n;

	wait_go(go);
	CHECK_RC(FAULT_RETRY_BUSY(xr_agent_attach(name, &(xr_agent_opts){.label = "many",
									   .capacity = 1},
						  &a)),
		 0);
	CHECK_RC(xr_agent_claim(a, (uint32_t)i, (uint32_t)i, 0, NULL), 0);
	xr_store_relaxed(&ms->attached, xr_load_relaxed(&ms->attached) + 1);
	while ((n = xr_agent_recv(a, 1, 4096, -1, &b)) > 0) {
		for (int k = 0; k < n; k++) {
			xr_exp_view v;
			CHECK_RC(xr_exp_view_init(&v, xr_frame_data(b.frames[k]), b.frames[k]->len), 0);
			CHECK_EQ(v.f.game_id, i);
			act[k] = -1;
			for (uint32_t m = 0; m < v.mask_len; m++)
				if (v.mask[m])
					act[k] = (int32_t)m;
		}
		CHECK_RC(xr_agent_send(a, &b, act), 0);
		ms->a[i].answered += (uint64_t)n;
	}
	CHECK_RC(n, XR_ECLOSED);
	ms->a[i].rc = xr_agent_stats_get(a, &ms->a[i].s);
	xr_agent_detach(a);
	_exit(0);
}

/* The answers the engine took from agent entry i, over its rings (as of
 * the shards' last stats tick). */
static uint64_t actions_of(const struct fault_engine *e, uint32_t i)
{
	uint64_t n = 0;

	for (uint32_t k = 0; k < e->a->lay.n_rings; k++)
		n += xr_load_relaxed(&e->a->agent_stats[(size_t)i * e->a->lay.n_rings + k].actions);
	return n;
}

static bool all_acting(const struct fault_engine *e, uint64_t want)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < XR_MAX_AGENTS; i++)
		n += xr_load_acquire(&e->a->agents[i].state) == XR_AGENT_LIVE &&
		     actions_of(e, i) >= want;
	return n == N_AGENTS;
}

/* Runs `xring ARGS...`: its exit status, its stderr in err[]. */
static int run_cli(char *err, size_t len, const char *const *args)
{
	int pp[2], st;

	CHECK(pipe(pp) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(pp[1], 2);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execv(xring, (char *const *)args);
		_exit(127);
	}
	close(pp[1]);
	size_t got = 0;
	ssize_t k;
	while (got + 1 < len && (k = read(pp[0], err + got, len - 1 - got)) > 0)
		got += (size_t)k;
	err[got] = '\0';
	close(pp[0]);
	CHECK(waitpid(pid, &st, 0) == pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void agents100(void)
{
	struct fault_engine e;
	char name[64], err[1024];
	int go[2];
	pid_t pid[N_AGENTS];

	/* The command line refuses more than the arena holds, in one line. */
	const char *const args[] = {xring, "engine", "--name", "t-many", "--max-agents", "129", NULL};
	CHECK_EQ(run_cli(err, sizeof(err), args), 2);
	CHECK(strchr(err, '\n') == err + strlen(err) - 1);
	CHECK(strstr(err, "--max-agents must be 1..128, not '129'"));

	ms = fault_shared(sizeof(*ms));
	memset(ms, 0, sizeof(*ms));
	xr_test_name(name, sizeof(name), "many-agents");
	CHECK(pipe(go) == 0);
	for (int i = 0; i < N_AGENTS; i++) {
		pid[i] = fault_fork();
		if (pid[i] == 0) {
			close(go[1]);
			agent_main(name, i, go[0]);
		}
	}
	close(go[0]);
	/* One game per agent, no other: each game steps when its agent has
	 * answered. */
	fault_engine_create(&e, "many-agents", &(struct fault_engine_opts){
		.games = N_AGENTS, .shards = 1, .ring_bytes = 4u << 20, .max_readers = 128,
		.max_agents = 100, .action_timeout_ms = 1000});
	fault_engine_run(&e);
	char gobytes[N_AGENTS];
	memset(gobytes, 'g', sizeof(gobytes));
	CHECK(write(go[1], gobytes, sizeof(gobytes)) == (ssize_t)sizeof(gobytes));
	uint64_t t0 = xr__now_ns();
	if (!FAULT_WAIT(all_acting(&e, 20), 60000)) {
		uint32_t live = fault_agents_live(&e, 0, NULL), acting = 0;
		for (uint32_t i = 0; i < XR_MAX_AGENTS; i++)
			acting += actions_of(&e, i) >= 20;
		FAILF("after 60 s, %u agents live, %u of them with 20 answers taken", live, acting);
	}
	double s = (double)(xr__now_ns() - t0) / 1e9;
	CHECK_EQ(fault_agents_live(&e, 0, NULL), N_AGENTS);
	/* The 101st. */
	xr_agent *extra;
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "101st", .capacity = 1}, &extra),
		 -EBUSY);
	char why[256];
	snprintf(why, sizeof(why), "%s", xr_last_reason());
	CHECK(strstr(why, "100 agents, its most (--max-agents)"));
	fault_engine_stop(&e);
	uint64_t answered = 0, actions = 0;
	for (int i = 0; i < N_AGENTS; i++) {
		int st;
		CHECK(waitpid(pid[i], &st, 0) == pid[i]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			FAILF("agent %d ended with status 0x%x", i, st);
		CHECK_RC(ms->a[i].rc, 0);
		CHECK(ms->a[i].answered > 0);
		CHECK(ms->a[i].s.actions >= 20);
		answered += ms->a[i].answered;
		actions += ms->a[i].s.actions;
	}
	printf("agents100: %d agent processes, a game each, all acting within %.2f s (%llu "
	       "answers sent, %llu taken by the engine); the 101st refused: \"%s\"; `xring "
	       "engine --max-agents 129`: %s",
	       N_AGENTS, s, (unsigned long long)answered, (unsigned long long)actions, why, err);
	munmap(ms, sizeof(*ms));
}

int main(int argc, char **argv)
{
	const char *only = argc > 2 ? argv[2] : NULL;

	if (argc < 2) {
		fprintf(stderr, "usage: test_many_peers XRING [readers100|agents100]\n");
		return 2;
	}
	xring = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (!only || !strcmp(only, "readers100"))
		readers100();
	if (!only || !strcmp(only, "agents100"))
		agents100();
	printf("ok\n");
	return 0;
}
