/* SPDX-License-Identifier: MIT */
/*
 * The engine SIGKILLed under load (issue 13, fault tests): `xring engine`
 * in a child process, 200 grid games on 2 shards writing as fast as their
 * readers let them, and in this process, each on a thread of its own:
 *
 *   two lossless readers (one sleeping between batches, one spinning:
 *   XR_WAIT_SPIN, which looks at its connection every 50 ms), a lossy
 *   reader, and two agents (one sleeping, one spinning), each of ten
 *   games of its own.
 *
 * Three times over: once every peer has taken records of this engine, the
 * engine is SIGKILLed. Asserts: every peer's next call returns XR_ECLOSED
 * (the clear error: "engine closed") within a second of the kill; each
 * lossless reader read every seq of each ring in order up to the end, and
 * its stats then say it read all that was written (pending 0, dropped 0);
 * an engine of the same name starts over the dead one's files (arena and
 * socket); each reader and agent reattaches in one call
 * (xr_reader_reattach(), xr_agent_reattach(): made at once and waiting for
 * the new engine; the agent's claim of its ten games made again), and all
 * of them take records of the new engine (an agent's, of its own games
 * only, as the records' game ids say). At the end the engine is stopped with SIGTERM: every peer
 * gets XR_ECLOSED, the engine exits 0 and leaves no file behind.
 * (test_ring_kill engine_killed: one sleeping reader of a bare arena;
 * test_agents engine_gone: an agent of an engine stopped cleanly.)
 *
 *   test_faults_engine XRING [cycles]      (default 3)
 */
#include <fcntl.h>
#include <stdlib.h>

#include "fault_helpers.h"

enum { P_SLEEPER, P_SPINNER, P_LOSSY, P_AGENT, P_AGENT_SPIN, N_PEERS };
static const char *const peer_names[N_PEERS] = {"lossless reader (sleeps)",
						"lossless reader (spins)", "lossy reader",
						"agent (sleeps)", "agent (spins)"};

static char engine_name[64];
static const char *xring;

struct peer {
	pthread_t th;
	int kind;
	_Atomic uint32_t cycle;     /* the engine it reads from: 1, 2, ... */
	_Atomic uint64_t records;   /* taken from the engine of `cycle` */
	_Atomic uint32_t closed;    /* the last cycle whose end it saw */
	_Atomic uint64_t closed_at; /* ...when (CLOCK_MONOTONIC) */
	_Atomic int err;            /* ...and the code */
	_Atomic uint64_t reattached_ns; /* the last reattach: the call's length */
	_Atomic uint32_t publish_cut; /* stats found the engine killed mid-publish */
	uint64_t total;             /* records over all engines */
};

static struct peer peers[N_PEERS];
static _Atomic int stopping;    /* the last engine's end: peers leave */

static void fail_peer(const struct peer *p, const char *what, int rc)
{
	FAILF("%s: %s: %s (%s)", peer_names[p->kind], what, xr_strerror(rc), xr_last_reason());
}

/* The engine's end, seen by peer p: records it. */
static void saw_end(struct peer *p, int rc, uint64_t at)
{
	xr_store_relaxed(&p->closed_at, at);
	xr_store_relaxed(&p->err, rc);
	xr_store_release(&p->closed, xr_load_relaxed(&p->cycle));
}

static void *reader_main(void *arg)
{
	struct peer *p = arg;
	xr_reader_opts o = {.label = "fault", .policy = p->kind == P_LOSSY ? XR_POLICY_LOSSY
									  : XR_POLICY_LOSSLESS,
			    .wait = p->kind == P_SPINNER ? XR_WAIT_SPIN : XR_WAIT_DEFAULT};
	bool exact = p->kind != P_LOSSY;
	uint64_t expect[XR_MAX_RINGS] = {0};
	xr_reader *r;
	int rc;

	/* The first engine may not be up yet. */
	uint64_t deadline = xr__now_ns() + 60 * SEC;
	while ((rc = xr_reader_attach(engine_name, &o, &r)) < 0) {
		if (rc != -ENOENT && rc != -ECONNREFUSED && rc != XR_ECLOSED)
			fail_peer(p, "attach", rc);
		if (xr__now_ns() > deadline)
			fail_peer(p, "attach for 60 s", rc);
		xr__sleep_ns(5000000);
	}
	xr_store_release(&p->cycle, 1);
	for (;;) {
		xr_batch b;
		int n = xr_reader_read(r, 1, 4096, 20000000, &b);
		if (n > 0) {
			fault_check_batch(&b, expect, exact);
			p->total += (uint64_t)n;
			xr_store_relaxed(&p->records, xr_load_relaxed(&p->records) + (uint64_t)n);
			CHECK_RC(xr_batch_release(r, &b), 0);
			continue;
		}
		if (n == 0)
			continue;
		if (n != XR_ECLOSED)
			fail_peer(p, "read", n);
		uint64_t at = xr__now_ns();
		/* Everything published was handed out before XR_ECLOSED (unless
		 * the kill came between the two stores of a publish: the stats
		 * then wait 1 s for it and say so). */
		xr_reader_stats s;
		rc = xr_reader_stats_get(r, &s);
		if (rc == -EPROTO && strstr(xr_last_reason(), "in the middle of a publish"))
			xr_store_relaxed(&p->publish_cut, xr_load_relaxed(&p->publish_cut) + 1);
		else if (rc != 0)
			fail_peer(p, "stats after the end", rc);
		else if (exact && (s.pending || s.dropped || s.read != s.written))
			FAILF("%s: at the end read %llu of %llu, pending %llu, dropped %llu",
			      peer_names[p->kind], (unsigned long long)s.read,
			      (unsigned long long)s.written, (unsigned long long)s.pending,
			      (unsigned long long)s.dropped);
		saw_end(p, n, at);
		if (xr_load_acquire(&stopping))
			break;
		/* One call: it waits for the engine to come back. */
		uint64_t t0 = xr__now_ns();
		if ((rc = xr_reader_reattach(r, 60 * SEC)) < 0)
			fail_peer(p, "reattach", rc);
		xr_store_relaxed(&p->reattached_ns, xr__now_ns() - t0);
		memset(expect, 0, sizeof(expect)); /* a new engine's rings */
		xr_store_relaxed(&p->records, 0);
		xr_store_release(&p->cycle, xr_load_relaxed(&p->cycle) + 1);
	}
	xr_reader_detach(r);
	return NULL;
}

/* Attaches and claims the agent's ten games, retrying while the engine is
 * not up (yet). */
static xr_agent *agent_up(struct peer *p)
{
	xr_agent_opts o = {.label = "fault", .capacity = 16,
			   .wait = p->kind == P_AGENT_SPIN ? XR_WAIT_SPIN : XR_WAIT_DEFAULT};
	uint32_t lo = p->kind == P_AGENT ? 0 : 10;
	uint64_t deadline = xr__now_ns() + 60 * SEC;
	xr_agent *a;
	int rc;

	while ((rc = xr_agent_attach(engine_name, &o, &a)) < 0) {
		if (rc != -ENOENT && rc != -ECONNREFUSED && rc != -ECONNRESET && rc != XR_ECLOSED &&
		    rc != -EAGAIN)
			fail_peer(p, "attach", rc);
		if (xr__now_ns() > deadline)
			fail_peer(p, "attach for 60 s", rc);
		xr__sleep_ns(5000000);
	}
	if ((rc = xr_agent_claim(a, lo, lo + 9, 0, NULL)) < 0)
		fail_peer(p, "claim", rc);
	return a;
}

static void *agent_main(void *arg)
{
	struct peer *p = arg;
	static _Thread_local int32_t act[4096];
	xr_agent *a = agent_up(p);
	uint32_t lo = p->kind == P_AGENT ? 0 : 10;
	xr_agent_stats st0;

	CHECK_RC(xr_agent_stats_get(a, &st0), 0);
	uint64_t seats = st0.seats; /* ten games' players */
	CHECK(seats >= 10);
	xr_store_release(&p->cycle, 1);
	for (;;) {
		xr_obs_batch b;
		int n = xr_agent_recv(a, 1, 4096, 20000000, &b);
		if (n > 0) {
			for (int i = 0; i < n; i++) {
				xr_exp_view v;
				CHECK_RC(xr_exp_view_init(&v, xr_frame_data(b.frames[i]), b.frames[i]->len),
					 0);
				if (v.f.game_id < lo || v.f.game_id > lo + 9)
					FAILF("%s: a record of game %u, not of its games %u..%u",
					      peer_names[p->kind], v.f.game_id, lo, lo + 9);
				act[i] = 0;
				for (uint32_t k = 0; k < v.mask_len; k++)
					if (v.mask[k])
						act[i] = (int32_t)k;
			}
			CHECK_RC(xr_agent_send(a, &b, act), 0);
			p->total += (uint64_t)n;
			xr_store_relaxed(&p->records, xr_load_relaxed(&p->records) + (uint64_t)n);
			continue;
		}
		if (n == 0)
			continue;
		if (n != XR_ECLOSED)
			fail_peer(p, "recv", n);
		saw_end(p, n, xr__now_ns());
		if (xr_load_acquire(&stopping)) {
			xr_agent_detach(a);
			return NULL;
		}
		uint64_t t0 = xr__now_ns();
		int rc = xr_agent_reattach(a, 60 * (int64_t)SEC);
		if (rc < 0)
			fail_peer(p, "reattach", rc);
		xr_agent_stats st;
		CHECK_RC(xr_agent_stats_get(a, &st), 0);
		if (st.claims != 1 || st.seats != seats)
			FAILF("%s: after its reattach %u claims, %llu seats (want 1, %llu)",
			      peer_names[p->kind], st.claims, (unsigned long long)st.seats,
			      (unsigned long long)seats);
		xr_store_relaxed(&p->reattached_ns, xr__now_ns() - t0);
		xr_store_relaxed(&p->records, 0);
		xr_store_release(&p->cycle, xr_load_relaxed(&p->cycle) + 1);
	}
}

static pid_t engine_start(void)
{
	pid_t parent = getpid(), pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(98);
		execl(xring, xring, "engine", "--name", engine_name, "--games", "200", "--board",
		      "8x8", "--shards", "2", "--ring-size", "4M", "--hugepages", "off",
		      "--max-agents", "8", "--action-timeout-ms", "1000", "--quiet", (char *)NULL);
		_exit(97);
	}
	return pid;
}

/* Every peer reads from engine `cycle` and has taken records of it. */
static bool all_going(uint32_t cycle)
{
	for (int i = 0; i < N_PEERS; i++)
		if (xr_load_acquire(&peers[i].cycle) != cycle ||
		    xr_load_relaxed(&peers[i].records) < (i >= P_AGENT ? 50 : 1000))
			return false;
	return true;
}

static bool all_ended(uint32_t cycle)
{
	for (int i = 0; i < N_PEERS; i++)
		if (xr_load_acquire(&peers[i].closed) != cycle)
			return false;
	return true;
}

static void say_going(uint32_t cycle)
{
	for (int i = 0; i < N_PEERS; i++)
		fprintf(stderr, "  %s: engine %u, %llu records\n", peer_names[i],
			xr_load_acquire(&peers[i].cycle),
			(unsigned long long)xr_load_relaxed(&peers[i].records));
	FAILF("the peers did not all take records of engine %u within 60 s", cycle);
}

int main(int argc, char **argv)
{
	uint32_t cycles = argc > 2 ? (uint32_t)atoi(argv[2]) : 3;
	/* The bound; the same under the sanitizers, whose peers only
	 * have to notice a hangup. */
	const uint64_t bound = 1000 * MS;
	uint64_t worst = 0, worst_reattach = 0;
	int worst_peer = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: test_faults_engine XRING [cycles]\n");
		return 2;
	}
	xring = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	xr_test_name(engine_name, sizeof(engine_name), "faults-engine");
	pid_t eng = engine_start();
	for (int i = 0; i < N_PEERS; i++) {
		peers[i].kind = i;
		CHECK(pthread_create(&peers[i].th, NULL, i >= P_AGENT ? agent_main : reader_main,
				     &peers[i]) == 0);
	}
	for (uint32_t c = 1; c <= cycles; c++) {
		if (!FAULT_WAIT(all_going(c), 60000))
			say_going(c);
		CHECK(kill(eng, SIGKILL) == 0);
		uint64_t t_kill = xr__now_ns();
		int st;
		CHECK(waitpid(eng, &st, 0) == eng && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		if (!FAULT_WAIT(all_ended(c), 10000))
			for (int i = 0; i < N_PEERS; i++)
				if (xr_load_acquire(&peers[i].closed) != c)
					FAILF("%s saw no end of engine %u in 10 s", peer_names[i], c);
		printf("engine %u SIGKILLed:", c);
		for (int i = 0; i < N_PEERS; i++) {
			const struct peer *p = &peers[i];
			uint64_t ns = xr_load_relaxed(&p->closed_at) - t_kill;
			CHECK_RC(xr_load_relaxed(&p->err), XR_ECLOSED);
			if (ns > bound)
				FAILF("%s: XR_ECLOSED %.1f ms after the kill, bound %.0f ms", peer_names[i],
				      fault_ms(ns), fault_ms(bound));
			if (ns > worst)
				worst = ns, worst_peer = i;
			printf("%s %s %.1f ms", i ? "," : "", peer_names[i], fault_ms(ns));
		}
		printf("\n");
		/* The same name again, over the dead engine's arena and socket. */
		eng = engine_start();
		if (c > 1)
			for (int i = 0; i < N_PEERS; i++)
				if (xr_load_relaxed(&peers[i].reattached_ns) > worst_reattach)
					worst_reattach = xr_load_relaxed(&peers[i].reattached_ns);
	}
	if (!FAULT_WAIT(all_going(cycles + 1), 60000))
		say_going(cycles + 1);
	for (int i = 0; i < N_PEERS; i++)
		if (xr_load_relaxed(&peers[i].reattached_ns) > worst_reattach)
			worst_reattach = xr_load_relaxed(&peers[i].reattached_ns);
	/* A clean stop: the same error, and nothing left behind. */
	xr_store_release(&stopping, 1);
	CHECK(kill(eng, SIGTERM) == 0);
	int st;
	CHECK(waitpid(eng, &st, 0) == eng);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAILF("the last engine ended with status 0x%x after SIGTERM", st);
	for (int i = 0; i < N_PEERS; i++) {
		CHECK(pthread_join(peers[i].th, NULL) == 0);
		CHECK_RC(xr_load_relaxed(&peers[i].err), XR_ECLOSED);
		CHECK_EQ(xr_load_relaxed(&peers[i].closed), cycles + 1);
	}
	char path[256];
	snprintf(path, sizeof(path), "/dev/shm/xring-%s", engine_name);
	CHECK(access(path, F_OK) < 0);
	char sock[256];
	CHECK(xr_engine_socket(engine_name, 0, sock, sizeof(sock)) == -ENOENT);
	uint32_t cuts = 0;
	for (int i = 0; i < N_PEERS; i++)
		cuts += xr_load_relaxed(&peers[i].publish_cut);
	printf("%u engines SIGKILLed under load: every peer got XR_ECLOSED (\"%s\"), the slowest "
	       "%.1f ms after the kill (%s; bound %.0f ms); %u times a reader's stats found the "
	       "engine killed mid-publish; every peer back on the restarted engine, its "
	       "reattach call waiting for it at most %.0f ms; records taken: ",
	       cycles, xr_strerror(XR_ECLOSED), fault_ms(worst), peer_names[worst_peer],
	       fault_ms(bound), cuts, fault_ms(worst_reattach));
	for (int i = 0; i < N_PEERS; i++)
		printf("%s%llu", i ? ", " : "", (unsigned long long)peers[i].total);
	printf("\n");
	return 0;
}
