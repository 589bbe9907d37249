/* SPDX-License-Identifier: MIT */
/*
 * Red team of agents (docs/agents.md): an engine in this process, attacked
 * by hostile peers (raw protocol, other uids) and careless callers of
 * xring/agent.h. Each case is a finding, or an attack that should hold:
 *
 * (F: a finding, failing before its fix or still failing; H: held.)
 *
 *   send_after_eviction  F  an agent that held a batch past its short lease
 *                           (evicted, the batch overwritten) and then
 *                           answers it: xr_agent_send() tagged its answers
 *                           with records it never handed out. Then it
 *                           recovers.
 *   careless_calls       F  misuse of the library (recv before a claim,
 *                           stale and released batches, NULL actions, a
 *                           forked child: H); a batch whose count the
 *                           caller raised was read past its arrays.
 *   retiring_share       F  agents gone keep their slots until the shards
 *                           move on: a uid's did not count against its
 *                           quarter, and filled the table.
 *   claim_churn          F  a uid with no games claiming and releasing
 *                           seats of no game among its share of junk
 *                           claims doubled what a step costs every shard.
 *   claim_walk           F  a claim over another uid's claims walked every
 *                           directory id of the overlap on the control
 *                           thread, for one token (fixed by the rule below:
 *                           claims of two uids never conflict).
 *   engine_games_shared  H  claims of two uids never conflict, a uid's own
 *                           do, and the engine's uid claims its games over
 *                           strangers'.
 *   cancel_lost          F  a cancel pending when the agent's reader is
 *                           replaced (an eviction) was lost.
 *   cancel_race          F  a cancel from another thread while claims
 *                           replace the reader (ASan: a use after free).
 *   garbage              H  every field of the agent verbs, lengths, order,
 *                           random bodies, 300 sessions.
 *   terminal_action      F  a held seat's terminal record carried a policy
 *                           draw in its action field, not -1.
 *   kill_churn           H  agents SIGKILLed mid-call over and over on two
 *                           shards while a trainer pairs records.
 *   detach_forked        F  a detach while a forked child holds a copy of
 *                           the agent's socket left its seats held.
 *   engine_games_taken   F  any admitted uid may hold every seat of the
 *                           engine's games and answer none (fixed: an agent
 *                           acts only for its own uid's games).
 *   drops_stall          F  a stranger's lossy reader keeping a third of
 *                           the records dropped (never evicted) kept an
 *                           agent's games waiting 90-100 % of the time: a
 *                           held seat's dropped record, which nobody can
 *                           answer, was waited for the whole timeout.
 *                           (Measured now while it holds a batch: every
 *                           record dropped, the agent's games keep their
 *                           share of the shard's turns, whatever the load.)
 *   churn_beside         H  ...while another uid's held games, beside a
 *                           stranger's churn, stay held (claim_churn's fix).
 *   resubscribe_refused  F  an evicted agent whose new reader the engine
 *                           refused once (its uid's request rate) was left
 *                           readerless for good, its claims held.
 *
 * Arguments: the cases to run (all by default), or --except and those not
 * to run. ctest runs the cases that measure shares of the shards' work
 * alone (test_agents_red_rates) and the others beside other tests.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "engine/host.h"
#include "shm/arena_priv.h"
#include "util/atomics.h"
#include "peer_helpers.h"
#include "xring/agent.h"
#include "xring/games.h"

#define BOARD 8
#define PLAYERS 2
#define OTHER 65533u /* a second uid besides NOBODY */

struct engine {
	char name[64];
	struct xr_host *h;
	xr_exp_template t;
	xr_stream_spec ss;
	xr_arena_spec spec;
	xr_server_opts so;
	uint32_t allow[2];
	struct xr_engine_opts eo;
	struct xr_gdir_shape shape;
	struct xr_gdir_opts go;
	struct xr_shard_result res;
	pthread_t th;
	int rc;
};

struct eopts {
	uint32_t games, shards;
	double timeout_ms;
	uint32_t fallback;
	xr_policy policy;      /* the stream's; 0: lossless */
	uint64_t ring_bytes;   /* 0: 4 MiB */
	uint32_t max_agents;   /* 0: 8 */
	uint32_t max_games;    /* 0: the directory's default */
	uint32_t turn_limit;   /* of the games given at start; 0: the game's */
};

static void *engine_main(void *p)
{
	struct engine *e = p;

	e->rc = xr_host_run_games(e->h, &e->t, &e->eo, &e->res);
	return NULL;
}

static void engine_start(struct engine *e, const char *tag, const struct eopts *o)
{
	char why[512];
	const xr_game_vtable *vt = xr_game_builtin_grid();
	xr_game_config cfg = {.board_h = BOARD, .board_w = BOARD, .players = PLAYERS, .seed = 1};

	memset(e, 0, sizeof(*e));
	xr_test_name(e->name, sizeof(e->name), tag);
	e->ss = (xr_stream_spec){.policy = o->policy ? o->policy : XR_POLICY_LOSSLESS,
				 .n_rings = o->shards,
				 .ring_bytes = o->ring_bytes ? o->ring_bytes : 4u << 20,
				 .kind = XR_RECORD_EXPERIENCE};
	CHECK_RC(xr_shard_shape(vt, &cfg, XR_DTYPE_U8, &e->ss.shape), 0);
	CHECK_RC(xr_exp_template_init(&e->t, &e->ss.shape), 0);
	e->spec = (xr_arena_spec){.name = e->name, .streams = &e->ss, .n_streams = 1,
				  .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE};
	e->allow[0] = NOBODY;
	e->allow[1] = OTHER;
	e->so = (xr_server_opts){.allow_uid = e->allow, .n_allow_uid = 2};
	cfg.turn_limit = o->turn_limit;
	e->eo = (struct xr_engine_opts){
		.shard = {.vt = vt, .cfg = cfg, .games = o->games, .obs_dtype = XR_DTYPE_U8,
			  .high_watermark = 0.9, .low_watermark = 0.5},
		.shards = o->shards, .numa_node = -1};
	e->shape = (struct xr_gdir_shape){.vt = vt, .board_h = BOARD, .board_w = BOARD,
					  .players = PLAYERS, .obs_dtype = XR_DTYPE_U8,
					  .stream_name = XR_DEFAULT_STREAM};
	e->go = (struct xr_gdir_opts){.shards = o->shards, .shapes = &e->shape, .n_shapes = 1,
				      .start = o->games, .start_seed = 1,
				      .start_turn_limit = o->turn_limit,
				      .max_agents = o->max_agents ? o->max_agents : 8,
				      .max_games = o->max_games, .fallback = o->fallback,
				      .action_timeout_ns = (uint64_t)(o->timeout_ms * 1e6)};
	CHECK_RC(xr_host_create(&e->spec, &e->so, &e->go, &e->h, why, sizeof(why)), 0);
	CHECK(pthread_create(&e->th, NULL, engine_main, e) == 0);
}

static void engine_stop(struct engine *e)
{
	xr_host_stop(e->h);
	CHECK(pthread_join(e->th, NULL) == 0);
	CHECK_RC(e->rc, 0);
	xr_host_destroy(e->h);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0)
		;
}

/*
 * send_after_eviction. An agent's reader asks for the short lease: a batch
 * held 100 ms in the writer's way gets it evicted, and the writer then
 * overwrites the batch. An agent that answers the batch afterwards (a slow
 * policy, a GC pause) must at worst answer the records it was handed (a
 * past turn: a timeout). xr_agent_send() reads each frame's seq, game and
 * player again from the ring at send time: it tags its answers with the
 * records that now lie there, records it never handed out, and the engine
 * applies them as the agent's (applied_by AGENT) for observations the
 * agent never saw.
 */
static void send_after_eviction(void)
{
	struct engine e;
	const uint32_t games = 40;

	/* A lossy stream of a small ring, turns falling back after 5 us: the
	 * ring laps in about a millisecond once nothing holds it. */
	engine_start(&e, "red-evict", &(struct eopts){.games = games, .shards = 1,
						      .timeout_ms = 0.005,
						      .policy = XR_POLICY_LOSSY,
						      .ring_bytes = 256u << 10});
	xr_agent *a;
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "slow", .capacity = 64}, &a), 0);
	CHECK_RC(xr_agent_claim(a, 0, games - 1, 0, NULL), 0);
	void *base;
	size_t len;
	CHECK_RC(xr_agent_slots(a, &base, &len), 0);

	xr_obs_batch b;
	int n;
	do
		n = xr_agent_recv(a, 1, 64, 1000000000, &b);
	while (n == 0);
	CHECK(n > 0);
	/* What the batch held when it was handed out. */
	uint32_t tags[64];
	for (int i = 0; i < n; i++)
		tags[i] = xr_seat_tag(b.frames[i]->seq);
	/* The caller thinks: evicted after 100 ms, lapped since (500 ms, or
	 * more on a slow machine). */
	uint32_t moved = 0;
	for (int k = 0; k < 50 && (k < 5 || !moved); k++) {
		sleep_ms(100);
		moved = 0;
		for (int i = 0; i < n; i++)
			moved += xr_seat_tag(b.frames[i]->seq) != tags[i];
	}
	CHECK(moved > 0);
	memset(base, 0, len); /* only what the send writes from here */
	int32_t act[64] = {0};
	CHECK_RC(xr_agent_send(a, &b, act), 0);
	uint32_t foreign = 0, written = 0;
	for (size_t k = 0; k < len / 8; k++) {
		uint64_t w = xr_load_relaxed((_Atomic uint64_t *)base + k);
		if (!w)
			continue;
		written++;
		bool ok = false;
		for (int i = 0; i < n; i++)
			ok |= (uint32_t)(w >> 32) == tags[i];
		foreign += !ok;
	}
	printf("send_after_eviction: %d records handed out, %u of them overwritten by the "
	       "send; %u answers written, %u tagged for records never handed out\n",
	       n, moved, written, foreign);
	if (foreign)
		FAILF("xr_agent_send answered %u records it never handed out (the batch was "
		      "overwritten after the agent's eviction)",
		      foreign);
	/* It recovers: recv subscribes again, and its answers are taken. */
	xr_agent_stats s0, s1;
	CHECK_RC(xr_agent_stats_get(a, &s0), 0);
	uint64_t until = xr__now_ns() + 5 * SEC;
	do {
		static int32_t acts[4096];
		n = xr_agent_recv(a, 1, 4096, 10000000, &b);
		CHECK(n >= 0);
		for (int i = 0; i < n; i++)
			acts[i] = 0x7fffffff; /* out of range, but answered: counted */
		if (n > 0)
			CHECK_RC(xr_agent_send(a, &b, acts), 0);
		CHECK_RC(xr_agent_stats_get(a, &s1), 0);
	} while (s1.out_of_range < s0.out_of_range + 100 && xr__now_ns() < until);
	printf("send_after_eviction: evicted %llu time(s), then %llu answers taken\n",
	       (unsigned long long)s1.evictions,
	       (unsigned long long)(s1.out_of_range - s0.out_of_range));
	CHECK(s1.evictions >= 1);
	CHECK(s1.out_of_range >= s0.out_of_range + 100);
	xr_agent_detach(a);
	engine_stop(&e);
}

/* A decoded record's legal action (the highest), and its end flags. */
static int32_t best_of(const xr_exp_template *t, const xr_frame *f)
{
	const uint8_t *d = xr_frame_data(f);
	int32_t best = -1;

	for (uint32_t k = 0; k < t->shape.mask_len; k++)
		if (d[t->off_mask + k])
			best = (int32_t)k;
	return best;
}

/*
 * careless_calls: the library's misuse. Held: recv before any claim,
 * send of a released or stale batch, actions NULL, a forked child's calls
 * and its detach (the parent's agent goes on). The finding: a batch whose
 * count the caller raised (xr_obs_batch is the caller's struct) made send
 * read past the batch's arrays.
 */
static int32_t big_act[1 << 16];

static void careless_calls(void)
{
	struct engine e;
	const uint32_t games = 8;

	engine_start(&e, "red-careless", &(struct eopts){.games = games, .shards = 1,
							 .timeout_ms = 20,
							 .policy = XR_POLICY_LOSSY});
	xr_agent *a;
	xr_obs_batch b;
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "careless", .capacity = 8},
				 &a),
		 0);
	CHECK_EQ(xr_agent_recv(a, 1, 16, 0, &b), -EINVAL); /* no claims */
	CHECK_RC(xr_agent_claim(a, 0, games - 1, 0, NULL), 0);
	int n;
	while ((n = xr_agent_recv(a, 1, 4, 1000000000, &b)) == 0)
		;
	CHECK(n > 0);
	xr_obs_batch stale = b;
	CHECK_EQ(xr_agent_send(a, &b, NULL), -EINVAL);
	CHECK_RC(xr_agent_release_batch(a, &b), 0);
	CHECK_EQ(xr_agent_send(a, &stale, big_act), -EINVAL); /* released */
	while ((n = xr_agent_recv(a, 1, 4, 1000000000, &b)) == 0)
		;
	CHECK(n > 0);
	CHECK_EQ(xr_agent_send(a, &stale, big_act), -EINVAL); /* an earlier one */

	/* A forked child: its calls are refused, its detach leaves the
	 * parent's agent attached. */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int bad = xr_agent_send(a, &b, big_act) != -EINVAL ||
			  xr_agent_claim(a, 100, 101, 0, NULL) != -EINVAL;
		xr_agent_detach(a);
		_exit(bad);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	for (int i = 0; i < n; i++)
		big_act[i] = best_of(&e.t, b.frames[i]);
	CHECK_RC(xr_agent_send(a, &b, big_act), 0);
	xr_agent_stats s0, s1;
	CHECK_RC(xr_agent_stats_get(a, &s0), 0);
	uint64_t until = xr__now_ns() + 5 * SEC;
	/* Until 50 of its answers are taken (a batch at a time: draining all
	 * that came kept it at this for the whole 5 s). */
	do {
		n = xr_agent_recv(a, 1, 64, 10000000, &b);
		CHECK(n >= 0);
		if (n > 0) {
			for (int i = 0; i < n; i++)
				big_act[i] = best_of(&e.t, b.frames[i]);
			CHECK_RC(xr_agent_send(a, &b, big_act), 0);
		}
		CHECK_RC(xr_agent_stats_get(a, &s1), 0);
	} while (s1.actions < s0.actions + 50 && xr__now_ns() < until);
	CHECK(s1.actions >= s0.actions + 50); /* the parent's agent acts on */

	/* The finding: a count raised past the batch. */
	while ((n = xr_agent_recv(a, 1, 4, 1000000000, &b)) == 0)
		;
	CHECK(n > 0);
	b.count = 1u << 16;
	int rc = xr_agent_send(a, &b, big_act);
	printf("careless_calls: recv before a claim, stale and released batches, NULL actions, "
	       "a forked child's calls refused; the parent acted on (%llu answers); a batch of "
	       "%d raised to %u: send returned %d\n",
	       (unsigned long long)(s1.actions - s0.actions), n, b.count, rc);
	if (rc != -EINVAL)
		FAILF("xr_agent_send took a batch of %d records with its count raised to %u "
		      "(reads past the batch)",
		      n, 1u << 16);
	xr_agent_detach(a);
	engine_stop(&e);
}

/*
 * retiring_share: a uid holds at most a quarter of --max-agents, so that
 * it cannot keep other uids out. An agent gone keeps its slot until every
 * shard has copied a table without it (its page may still be read), and a
 * shard copies only between rounds: a shard paused for a lossless reader,
 * or in a long round, copies nothing meanwhile. Those retiring slots were
 * not counted as their uid's: a uid attaching and detaching agents over
 * and over took every slot of the table, and agents of every other uid
 * were refused (-EAGAIN) for as long as it kept on.
 */
static int churn_agents(void *arg)
{
	const char *name = arg;
	int opened = 0;

	for (int i = 0; i < 8; i++) {
		xr_agent *a;
		int rc = xr_agent_attach(name, &(xr_agent_opts){.label = "churn", .capacity = 1}, &a);
		if (rc == 0) {
			opened++;
			xr_agent_detach(a);
		} else if (rc != -EBUSY && rc != -EAGAIN) {
			return 100;
		}
		sleep_ms(20); /* its end taken by the control thread */
	}
	return opened;
}

static int attach_one(void *arg)
{
	xr_agent *a;
	int rc = xr_agent_attach(arg, &(xr_agent_opts){.label = "victim", .capacity = 1}, &a);

	if (rc < 0) {
		fprintf(stderr, "uid %u: xr_agent_attach: %s (%s)\n", (unsigned)getuid(),
			xr_strerror(rc), xr_last_reason());
		return 1;
	}
	xr_agent_detach(a);
	return 0;
}

static void retiring_share(void)
{
	struct engine e;

	if (geteuid() != 0) {
		printf("retiring_share: skipped (needs root to run as two other uids)\n");
		return;
	}
	/* 8 agents: a quarter, 2, a uid. */
	engine_start(&e, "red-retire", &(struct eopts){.games = 8, .shards = 1, .timeout_ms = 20,
						       .ring_bytes = 256u << 10,
						       .max_agents = 8});
	/* A lossless trainer that does not read for a while: the shard
	 * pauses at the high watermark, between two records of a round. */
	xr_reader *tr;
	CHECK_RC(xr_reader_attach(e.name, &(xr_reader_opts){.label = "slow trainer"}, &tr), 0);
	sleep_ms(200);
	int opened = run_as(NOBODY, NOBODY, churn_agents, e.name);
	CHECK(opened <= 8);
	int victim = run_as(OTHER, OTHER, attach_one, e.name);
	printf("retiring_share: uid %u opened %d agents one after another (its share: 2 of 8) "
	       "while the shard paused; then uid %u's attach: %s\n",
	       NOBODY, opened, OTHER, victim ? "refused" : "ok");
	/* The trainer reads again: the shard moves on. */
	xr_batch b;
	for (int i = 0; i < 50; i++)
		if (xr_reader_read(tr, 1, 4096, 1000000, &b) > 0)
			CHECK_RC(xr_batch_release(tr, &b), 0);
	xr_reader_detach(tr);
	if (victim)
		FAILF("uid %u kept uid %u out of the agent table: %d agents gone whose slots "
		      "were not counted as its own",
		      NOBODY, OTHER, opened);
	engine_stop(&e);
}

/* --- a hostile agent by hand (raw protocol) ------------------------------ */

struct reply {
	struct xr_ctl_hdr h;
	uint8_t b[512];
};

/* Connects, ATTACHes and opens an agent of `capacity` games: the socket
 * (the page's descriptor closed), or -errno / the refusal's code. */
static int raw_agent(const char *name, uint32_t capacity)
{
	char path[256];
	struct reply r;
	int fd, s;

	if (xr_engine_socket(name, 0, path, sizeof(path)) < 0)
		return -ENOENT;
	s = peer_connect(path);
	if (s < 0)
		return s;
	if (peer_send(s, XR_CTL_ATTACH, 1, NULL, 0, NULL, 0) < 0 ||
	    peer_recv(s, &r, sizeof(r), &fd, 5000) <= 0 || r.h.type != XR_CTL_ATTACHED) {
		close(s);
		return -EPROTO;
	}
	close(fd);
	struct xr_ctl_agent_open m = {.capacity = capacity};
	strcpy(m.label, "raw");
	if (peer_send(s, XR_CTL_AGENT_OPEN, 2, &m, sizeof(m), NULL, 0) < 0 ||
	    peer_recv(s, &r, sizeof(r), &fd, 5000) <= 0) {
		close(s);
		return -EPROTO;
	}
	if (fd >= 0)
		close(fd);
	if (r.h.type != XR_CTL_AGENT_OPENED) {
		int code = r.h.type == XR_CTL_ERROR ? ((struct xr_ctl_error *)r.b)->code : -EPROTO;
		if (r.h.type == XR_CTL_ERROR && getenv("RED_VERBOSE"))
			fprintf(stderr, "AGENT_OPEN: %s\n", ((struct xr_ctl_error *)r.b)->reason);
		close(s);
		return code < 0 ? code : -EPROTO;
	}
	return s;
}

/* One request on s, its reply: the claim's id (CLAIMED), 0 (OK) or the
 * refusal's code. */
static int raw_request(int s, uint16_t type, const void *body, uint32_t len)
{
	static uint32_t id = 100;
	struct reply r;
	int fd;

	if (peer_send(s, type, ++id, body, len, NULL, 0) < 0)
		return -EPIPE;
	int n = peer_recv(s, &r, sizeof(r), &fd, 10000);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return n < 0 ? n : -ECONNRESET;
	if (r.h.type == XR_CTL_ERROR)
		return ((struct xr_ctl_error *)r.b)->code;
	if (r.h.type == XR_CTL_SEATS_CLAIMED) {
		struct xr_ctl_seats_claimed c;
		memcpy(&c, r.b, sizeof(c));
		return (int)c.claim;
	}
	return r.h.type == XR_CTL_OK ? 0 : -EPROTO;
}

/* raw_agent() connected by a child of uid `uid` (the engine takes a
 * peer's uid at connect: SO_PEERCRED), its socket passed back here, so
 * that this process speaks for that uid. */
static int raw_agent_as(uid_t uid, const char *name, uint32_t capacity)
{
	int sp[2], st;

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(sp[0]);
		if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
			_exit(99);
		int s = raw_agent(name, capacity);
		int32_t code = s < 0 ? s : 0;
		_exit(xr__ctl_send(sp[1], XR_CTL_OK, (uint32_t)code, NULL, 0, s >= 0 ? &s : NULL,
				   s >= 0) < 0);
	}
	close(sp[1]);
	struct reply r;
	int fd;
	int n = peer_recv(sp[0], &r, sizeof(r), &fd, 10000);
	CHECK(waitpid(pid, &st, 0) == pid);
	close(sp[0]);
	CHECK(n >= (int)sizeof(r.h));
	return fd >= 0 ? fd : (int)(int32_t)r.h.id;
}

static int raw_claim(int s, uint32_t lo, uint32_t hi, uint32_t players)
{
	struct xr_ctl_seats_claim m = {.lo = lo, .hi = hi, .players = players};
	return raw_request(s, XR_CTL_SEATS_CLAIM, &m, sizeof(m));
}

static int raw_release(int s, uint32_t claim)
{
	struct xr_ctl_seats_release m = {.claim = claim};
	return raw_request(s, XR_CTL_SEATS_RELEASE, &m, sizeof(m));
}

/* The shards' steps per second of their threads' CPU time, over about
 * `ms` (their stats tick, 2 Hz): what a step costs, whatever else the
 * machine runs. */
static double steps_per_cpu_s(const struct engine *e, uint32_t shards, unsigned ms)
{
	const struct xr_arena *ar = xr_host_arena(e->h);
	uint64_t s0 = 0, s1 = 0, c0 = 0, c1 = 0;

	for (uint32_t k = 0; k < shards; k++) {
		s0 += xr_load_relaxed(&ar->hdr->shards[k].steps);
		c0 += xr_load_relaxed(&ar->hdr->shards[k].cpu_ns);
	}
	sleep_ms(ms);
	for (uint32_t k = 0; k < shards; k++) {
		s1 += xr_load_relaxed(&ar->hdr->shards[k].steps);
		c1 += xr_load_relaxed(&ar->hdr->shards[k].cpu_ns);
	}
	return c1 > c0 ? (double)(s1 - s0) * 1e9 / (double)(c1 - c0) : 0;
}

/*
 * claim_churn. A uid with no games at all holds its share of the agent
 * table (16 of --max-agents 64) with claims of ids no game has (16 each),
 * and one of its agents claims and releases, as fast as its game request
 * rate allows (4096 a second). Each claim or release is a new table: every
 * shard copies it, and every game of every shard looks each of its seats
 * up again, in every claim (engine/shard.c refresh_seats, xr__seats_find:
 * O(claims) a seat). The shards' games, none of them that uid's, should
 * play on at their pace.
 */
struct churn {
	const char *name;
	unsigned ms;
	int junk;             /* claims of ids no game has, over 16 agents */
	bool refused;         /* the same requests, refused: no new table */
};

static int churn_claims(void *arg)
{
	const struct churn *c = arg;
	int socks[16], n = 0, junk = 0;

	for (int i = 0; i < 16; i++) {
		uint64_t until = xr__now_ns() + 2 * SEC;
		while ((socks[i] = raw_agent(c->name, 16)) == -EAGAIN && xr__now_ns() < until)
			sleep_ms(1); /* the last run's agents, not let go of yet */
		if (socks[i] < 0) {
			if (i < 2)
				fprintf(stderr, "churn: agent %d: %s\n", i, strerror(-socks[i]));
			break;
		}
		n++;
		for (int k = 0; k < 16 && junk < c->junk; k++, junk++)
			if (raw_claim(socks[i], 1000000000u + 16u * (uint32_t)i + (uint32_t)k,
				      1000000000u + 16u * (uint32_t)i + (uint32_t)k, 0) <= 0)
				return 2;
	}
	if (n < 2)
		return 3;
	/* The churn: its last agent's last junk claim, released and claimed
	 * again, 4000 requests a second. */
	int s = socks[n - 1];
	uint32_t id = 2000000000u;
	int claim = raw_claim(s, id, id, 0);
	if (claim <= 0)
		return 4;
	uint64_t t0 = xr__now_ns(), end = t0 + (uint64_t)c->ms * MS, reqs = 0;
	while (xr__now_ns() < end) {
		if (c->refused) {
			/* No such claim; a seat it holds already. */
			if (raw_release(s, 123456789) != -ENOENT || raw_claim(s, id, id, 0) != -EBUSY)
				return 7;
		} else {
			if (raw_release(s, (uint32_t)claim) < 0)
				return 5;
			claim = raw_claim(s, id, id, 0);
			if (claim <= 0)
				return 6;
		}
		reqs += 2;
		uint64_t due = t0 + reqs * 250000, now = xr__now_ns(); /* 4000 a second */
		if (now < due)
			nanosleep(&(struct timespec){0, (long)(due - now)}, NULL);
	}
	for (int i = 0; i < n; i++)
		close(socks[i]);
	return 0;
}

struct churn_run {
	struct churn c;
	pid_t pid;
};

static void churn_start(struct churn_run *r)
{
	r->pid = fork();
	CHECK(r->pid >= 0);
	if (r->pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(99);
		_exit(churn_claims(&r->c));
	}
}

static void churn_wait(struct churn_run *r)
{
	int st;
	CHECK(waitpid(r->pid, &st, 0) == r->pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAILF("the churning peer failed: status 0x%x", st);
}

static void claim_churn(void)
{
	struct engine e;

	if (geteuid() != 0) {
		printf("claim_churn: skipped (needs root to run as another uid)\n");
		return;
	}
	/* 4,000 games of the engine's on one shard, nobody's agents', no
	 * reader: the shard plays as fast as it can. */
	engine_start(&e, "red-churn", &(struct eopts){.games = 4000, .shards = 1, .timeout_ms = 20,
						      .policy = XR_POLICY_LOSSY,
						      .max_agents = 64});
	sleep_ms(600);
	double base = steps_per_cpu_s(&e, 1, 2000);
	struct churn_run r = {.c = {.name = e.name, .ms = 2600, .junk = 255}};
	double refused = 0, churn = 0;
	/* Three rounds at most, each measuring the refusals and the churn back
	 * to back: a CPU second of the shard's is also its caches, which
	 * whatever else runs on this 2-CPU VM (the host's other guests too) can
	 * cost it for a while; a cost the churn causes shows in every round.
	 * (With one measure of the refusals for two rounds of churn, a noisy
	 * stretch failed a full CI run: refused 60 %, churn 33 % of alone.) */
	for (int round = 0; round < 3 && (!round || churn < 0.7 * refused); round++) {
		r.c.refused = true;
		churn_start(&r);
		sleep_ms(300);
		refused = steps_per_cpu_s(&e, 1, 2000);
		churn_wait(&r);
		r.c.refused = false;
		churn_start(&r);
		sleep_ms(300);
		churn = steps_per_cpu_s(&e, 1, 2000);
		churn_wait(&r);
	}
	printf("claim_churn: steps per shard CPU second: alone %.0f; uid %u holding 255 claims "
	       "of ids no game has, its requests refused, %.0f (%.0f %%); claiming and "
	       "releasing %.0f (%.0f %%)\n",
	       base, NOBODY, refused, 100 * refused / base, churn, 100 * churn / base);
	if (churn < 0.7 * refused)
		FAILF("a uid with no games made each step of a shard's games cost %.1f times as "
		      "much by claiming and releasing seats of no game",
		      refused / churn);
	engine_stop(&e);
}

/*
 * claim_walk. A claim is checked against every other; where it meets a
 * claim of another uid, neither the engine's, the directory walks the
 * ids of the overlap for a live game of the engine's (engine_games_in),
 * on the control thread: up to the claim's range, bounded only by an
 * agent's capacity (--max-games). A claim costs its uid one game request
 * token, whatever the walk costs. uid OTHER holds its own 20,000 games
 * (two claims, a player each); uid NOBODY claims and releases the same
 * range, each claim two walks of 20,000 ids, at its request rate: the
 * control thread spends that on nothing, and every other uid's requests
 * (the engine's uid lists games meanwhile) wait behind it.
 */
#define WALK_GAMES 20000u
static uint32_t walk_first;

static int other_creates_8(void *arg)
{
	xr_games *g;
	uint32_t ids[8];

	if (xr_games_open(arg, NULL, &g) < 0 ||
	    xr_games_create(g, &(xr_game_spec){.seed = 5}, 8, ids) != 8)
		return 2;
	xr_games_close(g);
	return 0;
}

static int other_holds(void *arg)
{
	int *pp = arg; /* [0] ready (write), [1] done (read) */
	const char *name = (const char *)(pp + 2);
	xr_games *g;
	static uint32_t ids[WALK_GAMES];

	if (xr_games_open(name, NULL, &g) < 0)
		return 2;
	xr_game_spec spec = {.seed = 7};
	if (xr_games_create(g, &spec, WALK_GAMES, ids) != (int)WALK_GAMES) {
		fprintf(stderr, "create: %s\n", xr_last_reason());
		return 3;
	}
	int s = raw_agent(name, 2 * WALK_GAMES), c0 = 0, c1 = 0;
	if (s < 0 || (c0 = raw_claim(s, ids[0], ids[WALK_GAMES - 1], 1u << 0)) <= 0 ||
	    (c1 = raw_claim(s, ids[0], ids[WALK_GAMES - 1], 1u << 1)) <= 0) {
		fprintf(stderr, "uid %u: agent %d, claims %d %d\n", (unsigned)getuid(), s, c0, c1);
		return 4;
	}
	if (write(pp[0], &ids[0], sizeof(ids[0])) != sizeof(ids[0]))
		return 5;
	char c;
	if (read(pp[1], &c, 1) < 0)
		return 6;
	close(s);
	xr_games_close(g);
	return 0;
}

/* NOBODY: claims and releases lo..lo + WALK_GAMES - 1 for ms; the mean
 * round trip of a claim, and how many, into *out (shared memory). */
struct walker {
	const char *name;
	uint32_t lo;
	unsigned ms;
	struct walked {
		uint64_t mean_ns, n;
		int err;
	} *out;
};

static int walk_claims(void *arg)
{
	const struct walker *w = arg;
	int s = raw_agent(w->name, WALK_GAMES);

	if (s < 0) {
		w->out->err = s;
		return 1;
	}
	uint64_t t0 = xr__now_ns(), end = t0 + (uint64_t)w->ms * MS, in_claims = 0, n = 0;
	while (xr__now_ns() < end) {
		uint64_t a = xr__now_ns();
		int c = raw_claim(s, w->lo, w->lo + WALK_GAMES - 1, 0);
		in_claims += xr__now_ns() - a;
		if (c <= 0) {
			if (c == -EAGAIN) { /* its rate: wait the quiet time out */
				sleep_ms(20);
				continue;
			}
			w->out->err = c;
			return 1;
		}
		n++;
		int rc;
		while ((rc = raw_release(s, (uint32_t)c)) == -EAGAIN)
			sleep_ms(20);
		if (rc < 0) {
			w->out->err = rc;
			return 1;
		}
	}
	close(s);
	w->out->n = n;
	w->out->mean_ns = n ? in_claims / n : 0;
	return 0;
}

/* The engine's uid lists one game at a time for ms: the worst wait. */
static uint64_t list_worst_ns(const char *name, unsigned ms)
{
	xr_games *g;
	xr_game_info info;
	uint64_t worst = 0, end = xr__now_ns() + (uint64_t)ms * MS;

	CHECK_RC(xr_games_open(name, NULL, &g), 0);
	while (xr__now_ns() < end) {
		uint64_t a = xr__now_ns();
		uint32_t next;
		CHECK(xr_games_list(g, 0, &info, 1, &next) >= 0);
		uint64_t d = xr__now_ns() - a;
		if (d > worst)
			worst = d;
		sleep_ms(1);
	}
	xr_games_close(g);
	return worst;
}

static void claim_walk(void)
{
	struct engine e;

	if (geteuid() != 0) {
		printf("claim_walk: skipped (needs root to run as two other uids)\n");
		return;
	}
	engine_start(&e, "red-walk", &(struct eopts){.games = 4, .shards = 1, .timeout_ms = 20,
						     .policy = XR_POLICY_LOSSY, .max_agents = 16,
						     .max_games = 4 * WALK_GAMES + 100});
	int ready[2], done[2];
	CHECK(pipe(ready) == 0 && pipe(done) == 0);
	union {
		int fds[2 + 32];
	} arg;
	arg.fds[0] = ready[1];
	arg.fds[1] = done[0];
	snprintf((char *)(arg.fds + 2), 128, "%s", e.name);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(OTHER) < 0 || setuid(OTHER) < 0)
			_exit(99);
		_exit(other_holds(&arg));
	}
	close(ready[1]);
	close(done[0]);
	if (read(ready[0], &walk_first, sizeof(walk_first)) != sizeof(walk_first)) {
		int st;
		CHECK(waitpid(pid, &st, 0) == pid);
		FAILF("uid %u's games and claims: status 0x%x", OTHER, st);
	}

	uint64_t list_alone = list_worst_ns(e.name, 500);
	struct walked *out = mmap(NULL, 2 * sizeof(*out), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(out != MAP_FAILED);
	memset(out, 0, 2 * sizeof(*out));
	/* A range next to it (no walk), then the same range (two walks). */
	struct walker apart = {.name = e.name, .lo = walk_first + WALK_GAMES, .ms = 1500,
			       .out = &out[0]};
	if (run_as(NOBODY, NOBODY, walk_claims, &apart) != 0)
		FAILF("the walker beside: %d", out[0].err);
	struct walker over = {.name = e.name, .lo = walk_first, .ms = 3000, .out = &out[1]};
	pid_t wp = fork();
	CHECK(wp >= 0);
	if (wp == 0) {
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(99);
		_exit(walk_claims(&over));
	}
	sleep_ms(300);
	uint64_t list_during = list_worst_ns(e.name, 2000);
	int st;
	CHECK(waitpid(wp, &st, 0) == wp);
	CHECK(write(done[1], "x", 1) == 1);
	int st2;
	CHECK(waitpid(pid, &st2, 0) == pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAILF("the walker over: status 0x%x, %d", st, out[1].err);
	CHECK(WIFEXITED(st2) && WEXITSTATUS(st2) == 0);
	int us_apart = (int)(out[0].mean_ns / 1000), us_over = (int)(out[1].mean_ns / 1000);
	printf("claim_walk: %llu claims beside, %llu over\n", (unsigned long long)out[0].n,
	       (unsigned long long)out[1].n);
	double busy = (double)out[1].n * (double)out[1].mean_ns / 3e9;
	printf("claim_walk: a claim of 20,000 ids beside uid %u's claims: ~%d us; over them "
	       "(two walks of the directory): ~%d us, %.0f %% of the control thread's time for "
	       "one uid's claims at its rate; the engine's uid's worst list wait: %.2f ms alone, "
	       "%.2f ms meanwhile\n",
	       OTHER, us_apart, us_over, 100 * busy, (double)list_alone / 1e6,
	       (double)list_during / 1e6);
	if (us_over > 5 * us_apart + 50)
		FAILF("a claim over another uid's claims costs the control thread %d us, one "
		      "beside them %d us: a walk of every id of the overlap, for one token",
		      us_over, us_apart);
	close(ready[0]), close(done[1]);
	engine_stop(&e);
}

/*
 * engine_games_shared: claims of two uids never conflict, since each holds
 * only its own uid's games (the engine's uid's: those no claim of their
 * owner's holds). Strangers' claims over the engine's games are taken and
 * hold nothing; a uid's own claims conflict with each other; the engine's
 * uid claims its games back over a stranger's claim (engine_games_taken
 * measures that they then play at their pace).
 */
static void engine_games_shared(void)
{
	struct engine e;

	if (geteuid() != 0) {
		printf("engine_games_shared: skipped (needs root to run as two other uids)\n");
		return;
	}
	engine_start(&e, "red-shared", &(struct eopts){.games = 4, .shards = 2, .timeout_ms = 20,
						       .policy = XR_POLICY_LOSSY});
	int o = raw_agent_as(OTHER, e.name, 4096), n = raw_agent_as(NOBODY, e.name, 4096);
	int o2 = raw_agent_as(OTHER, e.name, 4096);
	CHECK(o >= 0 && n >= 0 && o2 >= 0);
	CHECK(raw_claim(o, 0, 1, 1u << 0) > 0); /* the engine's: taken, holds nothing */
	CHECK(raw_claim(n, 1, 2, 0) > 0);      /* another uid's over it: no conflict */
	CHECK_EQ(raw_claim(o2, 1, 1, 1u << 0), -EBUSY); /* its own uid's: conflict */
	CHECK(raw_claim(o2, 1, 1, 1u << 1) > 0);        /* other players: none */
	xr_agent *a;
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "engine", .capacity = 8}, &a),
		 0);
	CHECK_RC(xr_agent_claim(a, 0, 3, 0, NULL), 0); /* the engine's uid: its games back */
	printf("engine_games_shared: claims of two uids never conflict; a uid's own do; the "
	       "engine's uid claims its games over strangers' claims\n");
	xr_agent_detach(a);
	close(o);
	close(o2);
	close(n);
	engine_stop(&e);
}

/*
 * cancel_lost. xr_agent_cancel() "ends a wait in xr_agent_recv() with
 * -EINTR", from any thread: like xr_reader_cancel(), a cancel with no wait
 * under way ends the next one. But the agent's reader is not one reader:
 * xr_agent_recv() subscribes a new one after an eviction (and claims do),
 * and a cancel left pending on the old one is lost with it: the caller's
 * wait goes on to its end (forever with -1).
 */
static void cancel_lost(void)
{
	struct engine e;

	engine_start(&e, "red-cancel", &(struct eopts){.games = 40, .shards = 1,
						       .timeout_ms = 0.005,
						       .policy = XR_POLICY_LOSSY,
						       .ring_bytes = 256u << 10});
	xr_agent *a;
	xr_obs_batch b;
	xr_games *g;
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "cancel", .capacity = 8}, &a), 0);
	CHECK_RC(xr_agent_claim(a, 0, 3, 0, NULL), 0);
	int n;
	while ((n = xr_agent_recv(a, 1, 64, 1000000000, &b)) == 0)
		;
	CHECK(n > 0);
	/* Its games go; it holds the batch while the others lap the ring:
	 * evicted (100 ms). */
	CHECK_RC(xr_games_open(e.name, NULL, &g), 0);
	uint32_t ids[4] = {0, 1, 2, 3};
	CHECK_RC(xr_games_destroy(g, ids, 4), 0);
	sleep_ms(400);
	xr_agent_cancel(a);
	uint64_t t0 = xr__now_ns();
	int rc = xr_agent_recv(a, 1, 64, 2000000000, &b);
	double ms = (double)(xr__now_ns() - t0) / 1e6;
	xr_agent_stats st;
	CHECK_RC(xr_agent_stats_get(a, &st), 0);
	printf("cancel_lost: cancelled, then recv: %d after %.0f ms (%llu evictions)\n", rc, ms,
	       (unsigned long long)st.evictions);
	if (rc != -EINTR)
		FAILF("a cancel before an eviction was lost: recv returned %d after %.0f ms", rc,
		      ms);
	xr_agent_detach(a);
	xr_games_close(g);
	engine_stop(&e);
}

/*
 * cancel_race. xr_agent_cancel() from another thread while the agent's
 * thread claims and releases (each subscribes a new reader, the old one
 * freed): the cancel reads a->r unlocked and cancels a reader that may be
 * freed meanwhile. A sanitizer build reports it (TSan: a race on a->r;
 * ASan: a use after free, when it lands).
 */
static _Atomic int race_stop;

static void *canceller(void *p)
{
	xr_agent *a = p;

	while (!xr_load_relaxed(&race_stop))
		xr_agent_cancel(a);
	return NULL;
}

static void cancel_race(void)
{
	struct engine e;

	engine_start(&e, "red-cancel-race", &(struct eopts){.games = 8, .shards = 1,
							    .timeout_ms = 20,
							    .policy = XR_POLICY_LOSSY});
	xr_agent *a;
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "race", .capacity = 8}, &a), 0);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, canceller, a) == 0);
	uint32_t c;
	int rounds = 0;
	for (uint64_t end = xr__now_ns() + SEC; xr__now_ns() < end; rounds++) {
		int rc;
		while ((rc = xr_agent_claim(a, 0, 7, 0, &c)) == -EAGAIN)
			sleep_ms(50); /* the connection's request rate */
		CHECK_RC(rc, 0);
		while ((rc = xr_agent_release(a, c)) == -EAGAIN)
			sleep_ms(50);
		CHECK_RC(rc, 0);
	}
	xr_store_relaxed(&race_stop, 1);
	CHECK(pthread_join(th, NULL) == 0);
	printf("cancel_race: %d claims and releases under a cancelling thread\n", rounds);
	xr_agent_detach(a);
	engine_stop(&e);
}

/* A raw connection, ATTACHed (or not). */
static int raw_conn(const char *name, bool attach)
{
	char path[256];
	struct reply r;
	int fd;

	CHECK_RC(xr_engine_socket(name, 0, path, sizeof(path)), 0);
	int s = peer_connect(path);
	CHECK(s >= 0);
	if (attach) {
		CHECK_RC(peer_send(s, XR_CTL_ATTACH, 1, NULL, 0, NULL, 0), 0);
		CHECK(peer_recv(s, &r, sizeof(r), &fd, 5000) > 0 && r.h.type == XR_CTL_ATTACHED);
		close(fd);
	}
	return s;
}

/* Sends type/body on s; wants an ERROR with code (0: any), and then the
 * connection hung up on, or kept. */
static void want_error(int s, const char *what, uint16_t type, const void *body, uint32_t len,
		       int code, bool hung_up)
{
	struct reply r;
	int fd;

	CHECK_RC(peer_send(s, type, 9, body, len, NULL, 0), 0);
	int n = peer_recv(s, &r, sizeof(r), &fd, 5000);
	if (fd >= 0)
		close(fd);
	if (n < (int)sizeof(r.h) || r.h.type != XR_CTL_ERROR)
		FAILF("%s: reply type 0x%x (%d bytes), not an ERROR", what, n > 0 ? r.h.type : 0, n);
	const struct xr_ctl_error *e = (const void *)r.b;
	if (code && e->code != code)
		FAILF("%s: code %d (%s), want %d", what, e->code, e->reason, code);
	struct pollfd pf = {.fd = s, .events = POLLIN};
	bool gone = poll(&pf, 1, hung_up ? 2000 : 50) == 1 && recv(s, &r, sizeof(r), MSG_DONTWAIT) == 0;
	if (gone != hung_up)
		FAILF("%s: the connection was %s", what, gone ? "hung up on" : "kept");
}

static int count_maps(const char *what)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, what) != NULL;
	fclose(f);
	return n;
}

/*
 * garbage: every field of AGENT_OPEN, SEATS_CLAIM and SEATS_RELEASE, wrong
 * lengths, before ATTACH, twice, on a reader's connection, random bodies;
 * 300 sessions opened and dropped. The engine goes on, an honest agent
 * acts, and its descriptors and page mappings come back to where they
 * were.
 */
static void garbage(void)
{
	struct engine e;
	int s;

	engine_start(&e, "red-garbage", &(struct eopts){.games = 8, .shards = 2, .timeout_ms = 20,
							.policy = XR_POLICY_LOSSY,
							.max_games = 1000});
	sleep_ms(50);
	int fds0 = count_fds(), maps0 = count_maps("xring-agent");
	struct xr_ctl_agent_open ao = {.capacity = 4};
	strcpy(ao.label, "garbage");
	struct xr_ctl_seats_claim sc = {.lo = 0, .hi = 1};
	struct xr_ctl_seats_release sr = {.claim = 1};

	s = raw_conn(e.name, false);
	want_error(s, "AGENT_OPEN before ATTACH", XR_CTL_AGENT_OPEN, &ao, sizeof(ao), -EPROTO, true);
	close(s);
	s = raw_conn(e.name, false);
	want_error(s, "SEATS_CLAIM before ATTACH", XR_CTL_SEATS_CLAIM, &sc, sizeof(sc), -EPROTO, true);
	close(s);
	s = raw_conn(e.name, true);
	want_error(s, "AGENT_OPEN short", XR_CTL_AGENT_OPEN, &ao, sizeof(ao) - 1, -EPROTO, true);
	close(s);
	s = raw_conn(e.name, true);
	struct xr_ctl_agent_open bad = ao;
	bad.flags = 1;
	want_error(s, "AGENT_OPEN flags", XR_CTL_AGENT_OPEN, &bad, sizeof(bad), -EPROTO, true);
	close(s);
	s = raw_conn(e.name, true);
	bad = ao;
	memset(bad.label, 'x', sizeof(bad.label));
	want_error(s, "AGENT_OPEN label", XR_CTL_AGENT_OPEN, &bad, sizeof(bad), -EPROTO, true);
	close(s);
	/* Refusals of well-formed requests keep the connection. */
	s = raw_conn(e.name, true);
	uint32_t caps[] = {0, 1001, UINT32_MAX, 1u << 22, (1u << 22) + 1};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		bad = ao;
		bad.capacity = caps[i];
		want_error(s, "AGENT_OPEN capacity", XR_CTL_AGENT_OPEN, &bad, sizeof(bad), -EINVAL,
			   false);
	}
	want_error(s, "SEATS_CLAIM before AGENT_OPEN", XR_CTL_SEATS_CLAIM, &sc, sizeof(sc), -EINVAL,
		   false);
	want_error(s, "SEATS_RELEASE before AGENT_OPEN", XR_CTL_SEATS_RELEASE, &sr, sizeof(sr),
		   -EINVAL, false);
	close(s);
	s = raw_agent(e.name, 16);
	CHECK(s >= 0);
	want_error(s, "AGENT_OPEN twice", XR_CTL_AGENT_OPEN, &ao, sizeof(ao), -EINVAL, false);
	CHECK_EQ(raw_claim(s, 0, UINT32_MAX, 0), -ENOSPC); /* hi - lo + 1 = 2^32 */
	CHECK_EQ(raw_claim(s, UINT32_MAX - 16, UINT32_MAX, 0), -ENOSPC);
	int top = raw_claim(s, UINT32_MAX - 3, UINT32_MAX, 0);
	CHECK(top > 0);
	CHECK_EQ(raw_claim(s, UINT32_MAX, UINT32_MAX, 1u << 7), -EBUSY); /* its own */
	CHECK_EQ(raw_claim(s, 0, 12, 0), -ENOSPC);                       /* 12 left */
	CHECK_RC(raw_release(s, (uint32_t)top), 0);
	CHECK_EQ(raw_release(s, (uint32_t)top), -ENOENT);
	CHECK_EQ(raw_release(s, 0), -ENOENT);
	CHECK_EQ(raw_release(s, UINT32_MAX), -ENOENT);
	int ids[16];
	for (int k = 0; k < 16; k++) {
		ids[k] = raw_claim(s, 100 + (uint32_t)k, 100 + (uint32_t)k, 1u << (k % 8));
		CHECK(ids[k] > 0);
	}
	CHECK_EQ(raw_claim(s, 200, 200, 0), -EBUSY); /* a 17th */
	sc = (struct xr_ctl_seats_claim){.lo = 5, .hi = 4};
	want_error(s, "SEATS_CLAIM lo > hi", XR_CTL_SEATS_CLAIM, &sc, sizeof(sc), -EPROTO, true);
	close(s);
	s = raw_agent(e.name, 4);
	sc = (struct xr_ctl_seats_claim){.lo = 0, .hi = 1, .players = 0x100};
	want_error(s, "SEATS_CLAIM players", XR_CTL_SEATS_CLAIM, &sc, sizeof(sc), -EPROTO, true);
	close(s);
	s = raw_agent(e.name, 4);
	want_error(s, "SEATS_RELEASE long", XR_CTL_SEATS_RELEASE, &sc, sizeof(sc), -EPROTO, true);
	close(s);
	/* An agent on a reader's connection, its reader detached, then gone. */
	{
		int afd, pfd;
		struct reply r;
		int rs = raw_conn(e.name, false);
		uint32_t slot = peer_subscribe(rs, 0, NULL, &afd, &pfd);
		close(afd), close(pfd);
		CHECK_RC(peer_send(rs, XR_CTL_AGENT_OPEN, 3, &ao, sizeof(ao), NULL, 0), 0);
		int fd, n = peer_recv(rs, &r, sizeof(r), &fd, 5000);
		CHECK(n > 0 && r.h.type == XR_CTL_AGENT_OPENED && fd >= 0);
		close(fd);
		CHECK(raw_claim(rs, 0, 1, 0) > 0);
		struct xr_ctl_detach d = {.slot = slot};
		CHECK_RC(raw_request(rs, XR_CTL_DETACH, &d, sizeof(d)), 0);
		CHECK_EQ(raw_claim(rs, 1, 1, 0), -EBUSY); /* still its agent's */
		close(rs);
	}
	/* Random bodies of the agent verbs, on agents. */
	uint64_t rng = 7;
	int hung = 0, refused = 0, taken = 0;
	for (int i = 0; i < 600; i++) {
		uint8_t body[sizeof(struct xr_ctl_agent_open)];
		for (size_t j = 0; j < sizeof(body); j++) {
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			body[j] = (uint8_t)(rng >> 56);
		}
		if (i % 3 == 1 && (rng >> 20) & 1) /* some claims of sane shape */
			memcpy(body + 4, &(uint32_t){*(uint32_t *)body + (uint32_t)(rng >> 40) % 8}, 4);
		static const uint16_t types[] = {XR_CTL_AGENT_OPEN, XR_CTL_SEATS_CLAIM,
						 XR_CTL_SEATS_RELEASE};
		static const uint32_t lens[] = {sizeof(struct xr_ctl_agent_open),
						sizeof(struct xr_ctl_seats_claim),
						sizeof(struct xr_ctl_seats_release)};
		s = i % 3 == 0 ? raw_conn(e.name, true) : raw_agent(e.name, 1 + (uint32_t)(rng >> 54));
		if (s < 0) {
			sleep_ms(5); /* slots not let go of yet */
			continue;
		}
		CHECK_RC(peer_send(s, types[i % 3], 5, body, lens[i % 3], NULL, 0), 0);
		struct reply r;
		int fd, n = peer_recv(s, &r, sizeof(r), &fd, 5000);
		if (fd >= 0)
			close(fd);
		CHECK(n > 0);
		if (r.h.type == XR_CTL_ERROR) {
			struct pollfd pf = {.fd = s, .events = POLLIN};
			if (poll(&pf, 1, 20) == 1 && recv(s, &r, sizeof(r), MSG_DONTWAIT) == 0)
				hung++;
			else
				refused++;
		} else {
			taken++;
		}
		close(s);
	}
	/* 300 sessions: attach, claim, drop. */
	for (int i = 0; i < 300; i++) {
		/* -EAGAIN: the slots of agents just gone are not free until
		 * their shards have moved on, which a loaded machine slows. */
		uint64_t until = xr__now_ns() + 10 * SEC;
		while ((s = raw_agent(e.name, 8)) == -EAGAIN && xr__now_ns() < until)
			sleep_ms(1);
		if (s < 0)
			FAILF("session %d of 300: attach as an agent: %s", i, xr_strerror(s));
		CHECK(raw_claim(s, 0, 7, 0) > 0);
		close(s);
	}
	/* The engine goes on: an honest agent acts for games 0..7. */
	xr_agent *a;
	uint64_t until = xr__now_ns() + 2 * SEC;
	int rc;
	while ((rc = xr_agent_attach(e.name, &(xr_agent_opts){.label = "honest", .capacity = 8},
				     &a)) == -EAGAIN &&
	       xr__now_ns() < until)
		sleep_ms(1);
	CHECK_RC(rc, 0);
	CHECK_RC(xr_agent_claim(a, 0, 7, 0, NULL), 0);
	xr_agent_stats st = {0};
	until = xr__now_ns() + 5 * SEC;
	while (st.actions < 100 && xr__now_ns() < until) {
		xr_obs_batch b;
		static int32_t act[64];
		int n = xr_agent_recv(a, 1, 64, 10000000, &b);
		CHECK(n >= 0);
		for (int i = 0; i < n; i++)
			act[i] = best_of(&e.t, b.frames[i]);
		if (n > 0)
			CHECK_RC(xr_agent_send(a, &b, act), 0);
		CHECK_RC(xr_agent_stats_get(a, &st), 0);
	}
	CHECK(st.actions >= 100);
	xr_agent_detach(a);
	/* Descriptors and mappings back where they were. A retired agent's
	 * page is let go of at the next open (or release) once every shard
	 * has passed its retirement: the last one's waits for it, and on a
	 * loaded machine so may those whose shards were behind at the last
	 * open (a CI run under ASan kept 5): each look opens one more. */
	until = xr__now_ns() + 2 * SEC;
	while ((count_fds() > fds0 || count_maps("xring-agent") > maps0 + 1) && xr__now_ns() < until) {
		xr_agent *next;
		if (xr_agent_attach(e.name, &(xr_agent_opts){.label = "next", .capacity = 1}, &next) == 0)
			xr_agent_detach(next);
		sleep_ms(10);
	}
	int fds1 = count_fds(), maps1 = count_maps("xring-agent");
	printf("garbage: agent verbs before ATTACH, malformed, out of range, twice, on a reader's "
	       "connection; %d random bodies (%d hung up on, %d refused, %d taken); 300 sessions; "
	       "an honest agent acts after; descriptors %d -> %d, agent pages mapped %d -> %d\n",
	       hung + refused + taken, hung, refused, taken, fds0, fds1, maps0, maps1);
	CHECK(fds1 <= fds0);
	CHECK(maps1 <= maps0 + 1);
	engine_stop(&e);
}

/*
 * terminal_action. docs/agents.md, "Records": the action field of a record
 * of a seat an agent holds is -1 ("for the agent chooses"); a seat of the
 * policy's carries the policy's draw. A held seat's terminal record (done
 * or truncated: no step follows, nothing is asked) is written as the
 * policy's (REC_POLICY in observe()): it carries a policy draw, as if the
 * policy played the seat, and a trainer that tells held seats by action
 * -1 takes the agent's last record of each episode for the policy's.
 */
static void terminal_action(void)
{
	struct engine e;
	const uint32_t games = 8;

	engine_start(&e, "red-terminal", &(struct eopts){.games = games, .shards = 1,
							 .timeout_ms = 20, .turn_limit = 4});
	xr_reader *tr;
	CHECK_RC(xr_reader_attach(e.name, &(xr_reader_opts){.label = "trainer"}, &tr), 0);
	xr_agent *a;
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "term", .capacity = 8}, &a), 0);
	CHECK_RC(xr_agent_claim(a, 0, games - 1, 0, NULL), 0);
	uint64_t held_final = 0, held_final_policy = 0, held = 0;
	uint64_t until = xr__now_ns() + 10 * SEC;
	bool claimed_seen = false;
	while (held_final < 50 && xr__now_ns() < until) {
		xr_obs_batch b;
		static int32_t act[4096];
		int n = xr_agent_recv(a, 1, 4096, 1000000, &b);
		CHECK(n >= 0);
		for (int i = 0; i < n; i++)
			act[i] = best_of(&e.t, b.frames[i]);
		if (n > 0)
			CHECK_RC(xr_agent_send(a, &b, act), 0);
		xr_batch tb;
		int m = xr_reader_read(tr, 1, 4096, 0, &tb);
		CHECK(m >= 0);
		const xr_frame *f = tb.first;
		for (int i = 0; i < m; i++, f = xr_frame_next(f)) {
			const uint8_t *d = xr_frame_data(f);
			int32_t action;
			memcpy(&action, d + e.t.off_action, 4);
			bool final = d[e.t.off_done] || d[e.t.off_truncated];
			/* From the first held record on, every seat is held. */
			claimed_seen |= action == -1 && !final;
			if (!claimed_seen)
				continue;
			held += !final;
			if (final) {
				held_final++;
				held_final_policy += action != -1;
			}
		}
		if (m > 0)
			CHECK_RC(xr_batch_release(tr, &tb), 0);
	}
	printf("terminal_action: %llu records of held seats, %llu terminal, %llu of those with "
	       "a policy draw in their action field\n",
	       (unsigned long long)held, (unsigned long long)held_final,
	       (unsigned long long)held_final_policy);
	CHECK(held_final >= 50);
	if (held_final_policy)
		FAILF("%llu terminal records of seats an agent holds carry a policy draw as "
		      "their action (docs/agents.md: -1)",
		      (unsigned long long)held_final_policy);
	xr_agent_detach(a);
	xr_reader_detach(tr);
	engine_stop(&e);
}

/*
 * kill_churn: agents killed mid-call (SIGKILL at any point of recv, send,
 * claim), over and over, on two shards, while their games wait; each next
 * agent gets a slot whose page the last one's may have been (SE7/SE8).
 * A trainer pairs every two consecutive records of a seat: a policy seat's
 * draw is what the next says was applied; a held seat's next record says
 * AGENT with the answer the agents give (the best legal action), a
 * fallback, or POLICY (its agent gone while the game waited). The engine
 * goes on, its descriptors come back, and a last agent attaches.
 */
struct last_rec {
	uint32_t turn;
	int32_t action, best;
	bool valid, final;
};

/*
 * The seats' last records belong to one pairing and start empty: a record
 * left by an earlier case's engine would pair with this engine's record of
 * the same game and seat whenever their turns happen to meet.
 */
struct pairing {
	const struct engine *e;
	_Atomic int stop;
	_Atomic uint64_t pairs, agent, policy_after, fallbacks, bad; /* read while it runs */
	uint32_t watch_lo, watch_hi;     /* games whose policy records are counted */
	_Atomic uint64_t watched_policy;
	char why[256];
	struct last_rec last[64][PLAYERS]; /* the pairing thread's own */
	uint64_t next_seq[XR_MAX_RINGS];    /* ...and so are these */
};

static void *pair_main(void *p)
{
	struct pairing *pr = p;
	const xr_exp_template *t = &pr->e->t;
	struct last_rec (*last)[PLAYERS] = pr->last;
	xr_reader *r;

	CHECK_RC(xr_reader_attach(pr->e->name, &(xr_reader_opts){.label = "pairs",
							  .policy = XR_POLICY_LOSSY},
				  &r),
		 0);
	while (!xr_load_relaxed(&pr->stop)) {
		xr_batch b;
		int n = xr_reader_read(r, 1, 4096, 10000000, &b);
		if (n == XR_EEVICTED) {
			CHECK_RC(xr_reader_reattach(r, SEC), 0);
			memset(pr->last, 0, sizeof(pr->last));
			memset(pr->next_seq, 0, sizeof(pr->next_seq));
			continue;
		}
		CHECK(n >= 0);
		/*
		 * A seat's next record may be among those lost, and then the
		 * record that follows could belong to a later episode at the
		 * very turn expected. b.dropped says how many were lost before
		 * and inside the batch, not where: a gap is found by seq, record
		 * by record. (Resetting on b.dropped alone failed churn_beside
		 * in a -j2 run: a record of turn 490 paired with one of turn
		 * 491 that said another action was applied, most likely a later
		 * episode's behind the writer's drops while the owner's agent
		 * held its batch.)
		 */
		const xr_frame *f = b.first;
		for (int i = 0; i < n; i++, f = xr_frame_next(f)) {
			if (f->seq != pr->next_seq[b.ring])
				memset(pr->last, 0, sizeof(pr->last));
			pr->next_seq[b.ring] = f->seq + 1;
			const uint8_t *d = xr_frame_data(f);
			uint32_t g, pl, turn;
			int32_t action, applied;
			memcpy(&g, d + t->off_game_id, 4);
			memcpy(&pl, d + t->off_player_id, 4);
			memcpy(&turn, d + t->off_turn, 4);
			memcpy(&action, d + t->off_action, 4);
			memcpy(&applied, d + t->off_applied, 4);
			uint8_t by = d[t->off_applied_by];
			if (g >= 64 || pl >= PLAYERS)
				continue;
			struct last_rec *l = &last[g][pl];
			if (g >= pr->watch_lo && g <= pr->watch_hi && action >= 0)
				pr->watched_policy++;
			if (l->valid && !l->final && turn == l->turn + 1) {
				pr->pairs++;
				bool ok;
				if (l->action >= 0)
					ok = by == XR_SRC_POLICY && applied == l->action;
				else if (by == XR_SRC_AGENT)
					ok = applied == l->best, pr->agent++;
				else if (by == XR_SRC_POLICY)
					ok = applied >= 0, pr->policy_after++;
				else
					ok = by >= XR_SRC_TIMEOUT && by <= XR_SRC_ILLEGAL && applied == -1,
					pr->fallbacks++;
				if (!ok && !pr->bad++)
					snprintf(pr->why, sizeof(pr->why),
						 "game %u player %u turn %u: action %d (best %d), next "
						 "applied %d by %u",
						 g, pl, l->turn, l->action, l->best, applied, by);
			}
			*l = (struct last_rec){.turn = turn, .action = action, .best = best_of(t, f),
					       .valid = true,
					       .final = d[t->off_done] || d[t->off_truncated]};
		}
		if (n > 0)
			CHECK_RC(xr_batch_release(r, &b), 0);
	}
	xr_reader_detach(r);
	return NULL;
}

static void doomed_agent(const char *name, uint32_t lo, uint32_t hi)
{
	xr_agent *a;
	xr_exp_template t;
	static int32_t act[4096];

	if (xr_agent_attach(name, &(xr_agent_opts){.label = "doomed", .capacity = 64}, &a) < 0)
		_exit(0); /* slots not let go of yet: fine */
	if (xr_agent_claim(a, lo, hi, 0, NULL) < 0)
		_exit(0); /* the last one's seats not let go of yet */
	xr_stream_facts sf;
	xr_reader_stream_facts(xr_agent_reader(a), &sf);
	if (xr_exp_template_init(&t, &sf.shape) < 0)
		_exit(3);
	for (;;) {
		xr_obs_batch b;
		int n = xr_agent_recv(a, 1, 4096, 10000000, &b);
		if (n < 0) {
			fprintf(stderr, "doomed agent: recv: %s (%s)\n", xr_strerror(n),
				xr_last_reason());
			_exit(4);
		}
		for (int i = 0; i < n; i++)
			act[i] = best_of(&t, b.frames[i]);
		if (n > 0 && xr_agent_send(a, &b, act) < 0)
			_exit(5);
	}
}

static void kill_churn(void)
{
	struct engine e;

	engine_start(&e, "red-kill", &(struct eopts){.games = 40, .shards = 2, .timeout_ms = 5,
						     .policy = XR_POLICY_LOSSY, .max_agents = 8});
	struct pairing pr = {.e = &e};
	pthread_t th;
	CHECK(pthread_create(&th, NULL, pair_main, &pr) == 0);
	sleep_ms(100);
	int fds0 = count_fds();
	uint64_t rng = 99, end = xr__now_ns() + 3 * SEC;
	int kills = 0;
	while (xr__now_ns() < end) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		/* Two at once, on overlapping ranges by turns: one may be
		 * refused its claim, as it should. */
		uint32_t lo = (uint32_t)(rng >> 60) * 2;
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0)
			doomed_agent(e.name, lo, lo + 7 + (uint32_t)(rng >> 58) % 16);
		sleep_ms((unsigned)(rng >> 40) % 30);
		CHECK(kill(pid, SIGKILL) == 0);
		int st;
		CHECK(waitpid(pid, &st, 0) == pid);
		if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
			FAILF("a doomed agent failed: exit %d", WEXITSTATUS(st));
		kills++;
	}
	/* A last agent takes every seat. */
	xr_agent *a;
	uint64_t until = xr__now_ns() + 5 * SEC;
	int rc;
	while ((rc = xr_agent_attach(e.name, &(xr_agent_opts){.label = "last", .capacity = 64},
				     &a)) == -EAGAIN &&
	       xr__now_ns() < until)
		sleep_ms(1);
	CHECK_RC(rc, 0);
	CHECK_RC(xr_agent_claim(a, 0, 39, 0, NULL), 0);
	/* ...and plays until the trainer has paired answers of an agent: a
	 * doomed one may have been killed before it answered anything (under
	 * a sanitizer, attaching alone can take its 0-30 ms). */
	xr_stream_facts sf;
	xr_exp_template lt;
	xr_reader_stream_facts(xr_agent_reader(a), &sf);
	CHECK_RC(xr_exp_template_init(&lt, &sf.shape), 0);
	until = xr__now_ns() + 20 * SEC;
	while (xr_load_relaxed(&pr.agent) == 0 && xr__now_ns() < until) {
		static int32_t act[4096];
		xr_obs_batch b;
		int n = xr_agent_recv(a, 1, 4096, 10000000, &b);
		CHECK(n >= 0);
		for (int i = 0; i < n; i++)
			act[i] = best_of(&lt, b.frames[i]);
		if (n > 0)
			CHECK_RC(xr_agent_send(a, &b, act), 0);
	}
	xr_agent_detach(a);
	sleep_ms(200);
	xr_store_relaxed(&pr.stop, 1);
	CHECK(pthread_join(th, NULL) == 0);
	until = xr__now_ns() + 2 * SEC;
	while (count_fds() > fds0 && xr__now_ns() < until)
		sleep_ms(10);
	printf("kill_churn: %d agents killed mid-call; %llu pairs of records (%llu the agents', "
	       "%llu fallbacks, %llu the policy's after an agent went), %llu wrong; descriptors "
	       "%d -> %d\n",
	       kills, (unsigned long long)pr.pairs, (unsigned long long)pr.agent,
	       (unsigned long long)pr.fallbacks, (unsigned long long)pr.policy_after,
	       (unsigned long long)pr.bad, fds0, count_fds());
	if (pr.bad)
		FAILF("%llu pairs of records lie, first: %s", (unsigned long long)pr.bad, pr.why);
	CHECK(pr.agent > 0);
	CHECK(count_fds() <= fds0);
	engine_stop(&e);
}

/*
 * detach_forked. xr_agent_detach() says "its seats go back to the built-in
 * policy"; the seats are the connection's, and the detach only closes the
 * agent's descriptor of it. A child forked meanwhile (a worker pool, a
 * subprocess before exec) holds a copy: the connection lives on, and the
 * seats with it, answered by nobody: every turn of those games waits its
 * timeout, for as long as the child lives. (xr_games_close() shuts its
 * connection down for this very reason.)
 */
static void detach_forked(void)
{
	struct engine e;
	const uint32_t games = 8;

	engine_start(&e, "red-forked", &(struct eopts){.games = games, .shards = 1,
						       .timeout_ms = 20,
						       .policy = XR_POLICY_LOSSY});
	xr_reader *tr;
	CHECK_RC(xr_reader_attach(e.name, &(xr_reader_opts){.label = "trainer"}, &tr), 0);
	xr_agent *a;
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "parent", .capacity = 8}, &a), 0);
	CHECK_RC(xr_agent_claim(a, 0, games - 1, 0, NULL), 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		sleep_ms(5000); /* a worker, doing something else */
		_exit(0);
	}
	xr_agent_detach(a);
	sleep_ms(200); /* the shards' next round, many times over */
	uint64_t held = 0, policy = 0, until = xr__now_ns() + 300 * MS;
	while (xr__now_ns() < until) {
		xr_batch b;
		int n = xr_reader_read(tr, 1, 4096, 10000000, &b);
		CHECK(n >= 0);
		const xr_frame *f = b.first;
		for (int i = 0; i < n; i++, f = xr_frame_next(f)) {
			int32_t action;
			const uint8_t *d = xr_frame_data(f);
			memcpy(&action, d + e.t.off_action, 4);
			if (d[e.t.off_done] || d[e.t.off_truncated])
				continue;
			held += action == -1;
			policy += action >= 0;
		}
		if (n > 0)
			CHECK_RC(xr_batch_release(tr, &b), 0);
	}
	kill(pid, SIGKILL);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	printf("detach_forked: after the detach, with a forked child alive: %llu records of "
	       "seats still held, %llu of the policy's\n",
	       (unsigned long long)held, (unsigned long long)policy);
	if (held)
		FAILF("xr_agent_detach() left its seats held while a forked child lives (%llu "
		      "records of them waiting for nobody)",
		      (unsigned long long)held);
	xr_reader_detach(tr);
	engine_stop(&e);
}

/*
 * engine_games_taken. docs/agents.md: "An agent acts only for games of its
 * own uid and the engine's". Any admitted uid's agent may so claim every
 * seat of every game of the engine's (its page holds up to --max-games),
 * answer none, and have each of their turns wait the action timeout: the
 * engine's games go from as fast as the shards play them to one turn per
 * timeout, and the engine's own uid cannot take them back (its claims are
 * refused: the seats are held). DESIGN.md's trust boundary: an admitted
 * peer may never slow the engine beyond its own share.
 */
static void engine_games_taken(void)
{
	struct engine e;
	const uint32_t games = 400;

	if (geteuid() != 0) {
		printf("engine_games_taken: skipped (needs root to run as another uid)\n");
		return;
	}
	engine_start(&e, "red-taken", &(struct eopts){.games = games, .shards = 1,
						      .timeout_ms = 100,
						      .policy = XR_POLICY_LOSSY});
	sleep_ms(600);
	const struct xr_arena *ar = xr_host_arena(e.h);
	uint64_t s0 = xr_load_relaxed(&ar->hdr->shards[0].steps);
	sleep_ms(1000);
	uint64_t alone = xr_load_relaxed(&ar->hdr->shards[0].steps) - s0;
	int s = raw_agent_as(NOBODY, e.name, games);
	CHECK(s >= 0);
	CHECK(raw_claim(s, 0, games - 1, 0) > 0);
	sleep_ms(600);
	s0 = xr_load_relaxed(&ar->hdr->shards[0].steps);
	sleep_ms(1000);
	uint64_t taken = xr_load_relaxed(&ar->hdr->shards[0].steps) - s0;
	/* The engine's own agent cannot have them back. */
	xr_agent *a;
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "owner", .capacity = games},
				 &a),
		 0);
	int rc = xr_agent_claim(a, 0, games - 1, 0, NULL);
	printf("engine_games_taken: the engine's %u games took %llu steps a second; with uid %u "
	       "holding every seat and answering none, %llu; the engine's uid's claim: %d (%s)\n",
	       games, (unsigned long long)alone, NOBODY, (unsigned long long)taken, rc,
	       rc < 0 ? xr_last_reason() : "ok");
	xr_agent_detach(a);
	close(s);
	if (taken * 100 < alone)
		FAILF("one admitted uid with no games slowed the engine's games %.0f times",
		      (double)alone / (double)(taken ? taken : 1));
	engine_stop(&e);
}

/*
 * drops_stall. On a lossy stream a reader in the writer's way has records
 * dropped, for every reader, up to a third of them for as long as it likes
 * without being evicted (docs/threat-model.md, "What is not promised"). A
 * dropped record of a held seat can never be answered (its agent never saw
 * it: tag 0), yet its game waited the whole action timeout for it: a
 * reader of another uid that kept the drops near that third kept the
 * agent's games waiting nearly all the time (each timeout is 100 ms of a
 * seat), while the policy's games only lost records. Now such a seat falls
 * back at once (engine/shard.c, answered()).
 *
 * What is measured: while a stranger (uid NOBODY) holds a batch in the
 * writer's way, within its lease timeout, the writer drops every record,
 * so the agent's games move only by their fallbacks, in the shard's rounds
 * like every other game: their share of the shard's turns is their share
 * of its games (8 of 48), whatever CPU time the agent's thread gets. A
 * dropped record waited for holds each of them to the timeout's pace, 10
 * steps a second, against the shard's tens of thousands (0.05 %, or 1.6 %
 * on a shard starved down to 5,000 steps a second). (Its first versions
 * measured the agent's share of turns while the stranger kept a third of
 * the records dropped, against its share alone: two measures of the CPU
 * time the agent's thread gets beside the shard's, and a CI run under load
 * saw the second fall 30 times, 14.9 % to 0.5 %, with every dropped record
 * falling back at once: 925 timeouts in the second, where waiting for each
 * would have allowed at most 176.) The agent answers what it gets, so that
 * its slots carry tags: a seat whose last answer's tag is still in its
 * slot is one the engine would wait on.
 */
struct answerer {
	xr_agent *a;
	const xr_exp_template *t;
	_Atomic int stop;
};

static void *answer_main(void *p)
{
	struct answerer *an = p;
	static int32_t act[4096];

	while (!xr_load_relaxed(&an->stop)) {
		xr_obs_batch b;
		int n = xr_agent_recv(an->a, 1, 4096, 10000000, &b);
		CHECK(n >= 0);
		for (int i = 0; i < n; i++)
			act[i] = best_of(an->t, b.frames[i]);
		if (n > 0)
			CHECK_RC(xr_agent_send(an->a, &b, act), 0);
	}
	return NULL;
}

/* The stranger: a lossy reader that takes a batch, says so on `held`, and
 * keeps it until a byte comes on `go`; then reports whether it was evicted
 * meanwhile (it must not be: 1 s is well within the lease timeout) and the
 * records it saw dropped. */
struct holder_out {
	uint64_t dropped, read;
	int evicted;
	int held, go;          /* pipe ends */
	char name[64];
};

static int hold_batch(void *arg)
{
	struct holder_out *out = arg;
	xr_reader *r;
	xr_batch b;
	char c = 0;
	int n;

	if (xr_reader_attach(out->name, &(xr_reader_opts){.label = "holder"}, &r) < 0)
		return 2;
	while ((n = xr_reader_read(r, 1, 4096, SEC, &b)) == 0)
		;
	if (n < 0)
		return 3;
	if (write(out->held, &c, 1) != 1 || read(out->go, &c, 1) != 1)
		return 4;
	xr_reader_stats st;
	n = xr_reader_stats_get(r, &st);
	if (n == XR_EEVICTED) {
		out->evicted = 1;
		return 0;
	}
	if (n < 0)
		return 5;
	out->dropped = st.dropped;
	out->read = st.read;
	xr_batch_release(r, &b);
	xr_reader_detach(r);
	return 0;
}

/* What shard 0 said at its next stats tick (twice a second): the turns
 * agent `agent` took there (actions and fallbacks; timeouts among them),
 * the shard's steps, and when. Both counts come from the one report, so
 * that their differences cover the same time: a report the shard was
 * preempted in the middle of (its steps new, the agent's counts not yet)
 * cut a 1 s window's agent turns by half, under load. The tick's time is
 * the report's last store. */
struct snap {
	uint64_t turns, timeouts, steps, ns;
};

static struct snap next_report(const struct xr_arena *ar, uint32_t agent)
{
	const struct xr_agent_counts *c = &ar->agent_stats[(size_t)agent * ar->lay.n_rings];
	const struct xr_shard_stats *sh = &ar->hdr->shards[0];
	uint64_t t0 = xr_load_acquire(&sh->tick_ns), end = xr__now_ns() + 5 * SEC;
	struct snap s;

	while ((s.ns = xr_load_acquire(&sh->tick_ns)) == t0) {
		if (xr__now_ns() > end)
			FAILF("shard 0 made no stats report in 5 s");
		sleep_ms(1);
	}
	s.turns = xr_load_relaxed(&c->actions) + xr_load_relaxed(&c->fallbacks);
	s.timeouts = xr_load_relaxed(&c->timeouts);
	s.steps = xr_load_relaxed(&sh->steps);
	return s;
}

static void drops_stall(void)
{
	struct engine e;

	if (geteuid() != 0) {
		printf("drops_stall: skipped (needs root to run as another uid)\n");
		return;
	}
	engine_start(&e, "red-drops", &(struct eopts){.games = 48, .shards = 1, .timeout_ms = 100,
						      .policy = XR_POLICY_LOSSY});
	const struct xr_arena *ar = xr_host_arena(e.h);
	struct answerer an = {.t = &e.t};
	xr_agent_stats ast;
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "victim", .capacity = 8}, &an.a),
		 0);
	CHECK_RC(xr_agent_claim(an.a, 0, 7, 0, NULL), 0);
	CHECK_RC(xr_agent_stats_get(an.a, &ast), 0);
	uint32_t agent = ast.agent; /* its counts are read from the arena, here */
	pthread_t th;
	CHECK(pthread_create(&th, NULL, answer_main, &an) == 0);
	/* Alone, for the record: the agent's pace, which is its thread's. */
	sleep_ms(600);
	struct snap s0 = next_report(ar, agent);
	sleep_ms(1000);
	struct snap s1 = next_report(ar, agent);
	double share_alone = (double)(s1.turns - s0.turns) / 2 / (double)(s1.steps - s0.steps + 1);

	struct holder_out *out = mmap(NULL, sizeof(*out), PROT_READ | PROT_WRITE,
				      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int held[2], go[2];
	CHECK(out != MAP_FAILED);
	CHECK(pipe(held) == 0 && pipe(go) == 0);
	*out = (struct holder_out){.held = held[1], .go = go[0]};
	snprintf(out->name, sizeof(out->name), "%s", e.name);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(held[0]);
		close(go[1]); /* the parent's end: its exit is our EOF */
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(99);
		_exit(hold_batch(out));
	}
	close(held[1]);
	close(go[0]);
	char c = 0;
	CHECK(read(held[0], &c, 1) == 1); /* it holds its batch */
	s0 = next_report(ar, agent);
	sleep_ms(1000);
	s1 = next_report(ar, agent);
	CHECK(write(go[1], &c, 1) == 1);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(held[0]);
	close(go[1]);
	xr_store_relaxed(&an.stop, 1);
	CHECK(pthread_join(th, NULL) == 0);
	xr_agent_detach(an.a);
	double share_held = (double)(s1.turns - s0.turns) / 2 / (double)(s1.steps - s0.steps + 1);
	double fair = 8.0 / 48;
	printf("drops_stall: while uid %u's lossy reader held a batch (%s; %llu records dropped), "
	       "the agent's 8 games took %.2f %% of the shard's %llu turns in %.2f s (%llu "
	       "timeouts; their share of its games: %.1f %%; alone, at their agent's pace: "
	       "%.1f %%)\n",
	       NOBODY, out->evicted ? "evicted" : "never evicted",
	       (unsigned long long)out->dropped, 100 * share_held,
	       (unsigned long long)(s1.steps - s0.steps), (double)(s1.ns - s0.ns) / 1e9,
	       (unsigned long long)(s1.timeouts - s0.timeouts), 100 * fair, 100 * share_alone);
	CHECK(!out->evicted);
	if (share_held * 4 < fair)
		FAILF("a stranger's lossy reader in the writer's way cut the agent's games to "
		      "%.2f %% of the shard's turns (their share: %.1f %%): they waited the timeout "
		      "for dropped records, that nobody can answer",
		      100 * share_held, 100 * fair);
	munmap(out, sizeof(*out));
	engine_stop(&e);
}

/*
 * churn_beside: what claim_churn's fix must keep. Games look their seats up
 * again only when a claim that may hold one came or went: uid OTHER's
 * agent holds OTHER's 8 games and answers them while uid NOBODY claims and
 * releases over the very same range, at its rate (its claims hold nothing
 * there); the trainer pairs every record of OTHER's games: each next record
 * says AGENT (with its answer) or a fallback, never POLICY, until OTHER's
 * agent lets go; then POLICY.
 */
struct owner_run {
	char name[64];
	uint32_t lo;
	unsigned ms;
};

static int owner_answers(void *arg)
{
	const struct owner_run *o = arg;
	xr_agent *a;
	xr_exp_template t;
	static int32_t act[4096];

	if (xr_agent_attach(o->name, &(xr_agent_opts){.label = "owner", .capacity = 8}, &a) < 0 ||
	    xr_agent_claim(a, o->lo, o->lo + 7, 0, NULL) < 0)
		return 2;
	xr_stream_facts sf;
	xr_reader_stream_facts(xr_agent_reader(a), &sf);
	if (xr_exp_template_init(&t, &sf.shape) < 0)
		return 3;
	uint64_t end = xr__now_ns() + (uint64_t)o->ms * MS;
	while (xr__now_ns() < end) {
		xr_obs_batch b;
		int n = xr_agent_recv(a, 1, 4096, 10000000, &b);
		if (n < 0)
			return 4;
		for (int i = 0; i < n; i++)
			act[i] = best_of(&t, b.frames[i]);
		if (n > 0 && xr_agent_send(a, &b, act) < 0)
			return 5;
	}
	xr_agent_detach(a);
	return 0;
}

static void churn_beside(void)
{
	struct engine e;

	if (geteuid() != 0) {
		printf("churn_beside: skipped (needs root to run as two other uids)\n");
		return;
	}
	engine_start(&e, "red-beside", &(struct eopts){.games = 4, .shards = 2, .timeout_ms = 20,
						       .policy = XR_POLICY_LOSSY});
	CHECK_EQ(run_as(OTHER, OTHER, other_creates_8, e.name), 0); /* games 4..11 */
	struct pairing pr = {.e = &e, .watch_lo = 4, .watch_hi = 11};
	pthread_t th;
	CHECK(pthread_create(&th, NULL, pair_main, &pr) == 0);
	static struct owner_run o;
	snprintf(o.name, sizeof(o.name), "%s", e.name);
	o.lo = 4;
	o.ms = 2500;
	pid_t owner = fork();
	CHECK(owner >= 0);
	if (owner == 0) {
		if (setgroups(0, NULL) < 0 || setgid(OTHER) < 0 || setuid(OTHER) < 0)
			_exit(99);
		_exit(owner_answers(&o));
	}
	sleep_ms(300);
	uint64_t free0 = pr.watched_policy;
	/* NOBODY over the same range, claiming and releasing. */
	int s = raw_agent_as(NOBODY, e.name, 64);
	CHECK(s >= 0);
	uint64_t end = xr__now_ns() + 1500 * MS, reqs = 0;
	while (xr__now_ns() < end) {
		int c = raw_claim(s, 4, 67, 0); /* not the engine's games: it would hold them */
		if (c == -EAGAIN) {
			sleep_ms(20);
			continue;
		}
		CHECK(c > 0);
		int rc;
		while ((rc = raw_release(s, (uint32_t)c)) == -EAGAIN)
			sleep_ms(20);
		CHECK_RC(rc, 0);
		reqs += 2;
	}
	uint64_t policy_while_held = pr.policy_after + (pr.watched_policy - free0);
	uint64_t agent_while_held = pr.agent, free1 = pr.watched_policy;
	int st;
	CHECK(waitpid(owner, &st, 0) == owner);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	sleep_ms(300);
	xr_store_relaxed(&pr.stop, 1);
	CHECK(pthread_join(th, NULL) == 0);
	close(s);
	printf("churn_beside: uid %u claimed and released over uid %u's held games %llu times; "
	       "meanwhile %llu of their turns were the agent's, %llu the policy's; after it let "
	       "go, %llu records of the policy's; %llu pairs wrong\n",
	       NOBODY, OTHER, (unsigned long long)reqs / 2, (unsigned long long)agent_while_held,
	       (unsigned long long)policy_while_held,
	       (unsigned long long)(pr.watched_policy - free1), (unsigned long long)pr.bad);
	if (pr.bad)
		FAILF("%llu pairs of records lie, first: %s", (unsigned long long)pr.bad, pr.why);
	CHECK(agent_while_held > 100);
	CHECK_EQ(policy_while_held, 0);
	CHECK(pr.watched_policy > free1);
	engine_stop(&e);
}

/*
 * resubscribe_refused. An evicted agent's xr_agent_recv() subscribes a new
 * reader; when the engine refuses it (here: its uid's request rate, spent
 * by its other connections; or reader slots, a reply late), recv returns
 * the error and the agent is left with no reader, its claims still held by
 * the engine: every later recv said "this agent holds no seats: claim some
 * first" (-EINVAL), and its seats fell back for as long as it lived.
 */
static int refused_agent(void *arg)
{
	const char *name = arg;
	xr_agent *a;
	xr_obs_batch b;
	int n;

	if (xr_agent_attach(name, &(xr_agent_opts){.label = "refused", .capacity = 8}, &a) < 0 ||
	    xr_agent_claim(a, 0, 3, 0, NULL) < 0)
		return 2;
	while ((n = xr_agent_recv(a, 1, 64, SEC, &b)) == 0)
		;
	if (n < 0)
		return 3;
	/* Held until overwritten: evicted. */
	const xr_frame *f0 = b.frames[0];
	uint64_t seq0 = f0->seq;
	for (int k = 0; k < 50 && f0->seq == seq0; k++)
		sleep_ms(100);
	/* Its uid's reader requests spent (512 a burst, 256 a second). */
	char path[256];
	if (xr_engine_socket(name, 0, path, sizeof(path)) < 0)
		return 4;
	for (int i = 0; i < 700; i++) {
		struct reply r;
		int fd, s = peer_connect(path);
		if (s < 0)
			continue;
		if (peer_send(s, XR_CTL_ATTACH, 1, NULL, 0, NULL, 0) == 0 &&
		    peer_recv(s, &r, sizeof(r), &fd, 5000) > 0 && fd >= 0)
			close(fd);
		close(s);
	}
	int first = xr_agent_recv(a, 1, 64, 100000000, &b);
	if (first > 0)
		xr_agent_release_batch(a, &b);
	sleep_ms(3000); /* the rate's bucket fills again */
	int later = 0;
	for (int k = 0; k < 20 && later == 0; k++)
		later = xr_agent_recv(a, 1, 64, 100000000, &b);
	fprintf(stderr, "resubscribe_refused: recv after the eviction: %d (%s); 3 s later: %d (%s)\n",
		first, first < 0 ? xr_strerror(first) : "ok", later,
		later < 0 ? xr_last_reason() : "ok");
	xr_agent_detach(a);
	if (first >= 0)
		return 77; /* not refused: nothing shown */
	return later > 0 ? 0 : 1;
}

static void resubscribe_refused(void)
{
	struct engine e;

	if (geteuid() != 0) {
		printf("resubscribe_refused: skipped (needs root to run as another uid)\n");
		return;
	}
	engine_start(&e, "red-resub", &(struct eopts){.games = 40, .shards = 1,
						      .timeout_ms = 0.005,
						      .policy = XR_POLICY_LOSSY,
						      .ring_bytes = 256u << 10});
	int rc = run_as(NOBODY, NOBODY, refused_agent, e.name);
	printf("resubscribe_refused: %s\n", rc == 0    ? "the agent recovered"
					     : rc == 77 ? "its resubscription was not refused"
							: "the agent did not recover");
	if (rc != 0 && rc != 77)
		FAILF("an evicted agent whose new reader was refused once never read again (exit "
		      "%d)",
		      rc);
	engine_stop(&e);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} cases[] = {
		{"send_after_eviction", send_after_eviction},
		{"careless_calls", careless_calls},
		{"retiring_share", retiring_share},
		{"claim_walk", claim_walk},
		{"engine_games_shared", engine_games_shared},
		{"cancel_lost", cancel_lost},
		{"cancel_race", cancel_race},
		{"garbage", garbage},
		{"terminal_action", terminal_action},
		{"kill_churn", kill_churn},
		{"detach_forked", detach_forked},
		{"drops_stall", drops_stall},
		{"churn_beside", churn_beside},
		{"resubscribe_refused", resubscribe_refused},
		{"claim_churn", claim_churn},
		{"engine_games_taken", engine_games_taken},
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Arguments: the cases to run (all by default), or --except and the
	 * cases not to run (so a case added later runs unless a list leaves it
	 * out). A name that is no case is refused: a typo in a ctest list
	 * would otherwise run nothing, and pass.
	 */
	const size_t ncases = sizeof(cases) / sizeof(cases[0]);
	bool except = argc > 1 && !strcmp(argv[1], "--except");
	for (int k = 1 + except; k < argc; k++) {
		size_t i = 0;
		while (i < ncases && strcmp(argv[k], cases[i].name))
			i++;
		if (i == ncases) {
			fprintf(stderr, "test_agents_red: no case '%s'\n", argv[k]);
			return 2;
		}
	}
	for (size_t i = 0; i < ncases; i++) {
		bool named = false;
		for (int k = 1 + except; k < argc; k++)
			named |= !strcmp(argv[k], cases[i].name);
		if (argc < 2 || named != except)
			cases[i].fn();
	}
	printf("ok\n");
	return 0;
}
