/* SPDX-License-Identifier: MIT */
/*
 * Red team of agents (docs/agents.md): an engine in this process, attacked
 * by hostile peers (raw protocol, other uids) and careless callers of
 * xring/agent.h. Each case is a finding, or an attack that should hold:
 *
 *   send_after_eviction  an agent that held a batch past its short lease
 *                        (evicted, its records overwritten) and then
 *                        answers it: xr_agent_send() must not tag answers
 *                        with records it never handed out.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

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
	e->eo = (struct xr_engine_opts){
		.shard = {.vt = vt, .cfg = cfg, .games = o->games, .obs_dtype = XR_DTYPE_U8,
			  .high_watermark = 0.9, .low_watermark = 0.5},
		.shards = o->shards, .numa_node = -1};
	e->shape = (struct xr_gdir_shape){.vt = vt, .board_h = BOARD, .board_w = BOARD,
					  .players = PLAYERS, .obs_dtype = XR_DTYPE_U8,
					  .stream_name = XR_DEFAULT_STREAM};
	e->go = (struct xr_gdir_opts){.shards = o->shards, .shapes = &e->shape, .n_shapes = 1,
				      .start = o->games, .start_seed = 1,
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
	/* The caller thinks for 500 ms: evicted after 100, lapped since. */
	sleep_ms(500);
	uint32_t moved = 0;
	for (int i = 0; i < n; i++)
		moved += xr_seat_tag(b.frames[i]->seq) != tags[i];
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
	do {
		while ((n = xr_agent_recv(a, 1, 64, 10000000, &b)) > 0) {
			for (int i = 0; i < n; i++)
				big_act[i] = best_of(&e.t, b.frames[i]);
			CHECK_RC(xr_agent_send(a, &b, big_act), 0);
		}
		CHECK(n == 0);
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
	struct churn_run r = {.c = {.name = e.name, .ms = 2600, .junk = 255, .refused = true}};
	churn_start(&r);
	sleep_ms(300);
	double refused = steps_per_cpu_s(&e, 1, 2000);
	churn_wait(&r);
	r.c.refused = false;
	churn_start(&r);
	sleep_ms(300);
	double churn = steps_per_cpu_s(&e, 1, 2000);
	churn_wait(&r);
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

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	send_after_eviction();
	careless_calls();
	retiring_share();
	claim_churn();
	printf("ok\n");
	return 0;
}
