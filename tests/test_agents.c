/* SPDX-License-Identifier: MIT */
/*
 * Agents acting for seats, through an engine running in this process
 * (host, shards, game directory) and the public API (xring/agent.h), with
 * a lossless trainer reading the same records:
 *
 *   turns         an agent answering every seat of 40 games: each record
 *                 of a held seat has action -1, and the next record of
 *                 that seat says the step applied exactly the agent's
 *                 answer (applied, applied_by AGENT); seats before the
 *                 claim pair with the policy's action; episodes start at
 *                 applied -1, NONE. Consecutive records pair into the
 *                 transitions the agent made.
 *   bad_answers   an agent answering some seats for another record, some
 *                 out of range, some illegal, some never: each next record
 *                 says which fallback, and the fallback is the no-op; the
 *                 agent's counts in the arena agree; garbage scribbled over
 *                 its whole page changes nothing for a second agent's seats.
 *   conflicts     a seat has one agent: an overlapping claim is refused
 *                 naming the holder; disjoint players of the same games
 *                 (self-play) are not; a released seat may be claimed.
 *   killed_agent  an agent process SIGSTOPped: its seats time out, the
 *                 games go on; SIGKILLed: its seats are the policy's again
 *                 (measured), and a new agent claims them in one call.
 *   handoff       an agent detaches while its games wait for its answers
 *                 and the next claims the same seats at once, 30 times
 *                 over: every game plays on within 5 s for each new agent
 *                 (the deadline is 10 s; 13 ms here), though the new agent
 *                 often has the old one's entry and page address.
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

static void *engine_main(void *p)
{
	struct engine *e = p;

	e->rc = xr_host_run_games(e->h, &e->t, &e->eo, &e->res);
	return NULL;
}

/* An engine of `games` 8x8 grid games of 2 players on `shards` shards, as
 * fast as its agents allow, their turns waiting timeout_ms for them. */
static double tick_ms; /* the next engine's --tick-ms */
static uint32_t input_delay; /* ...and --input-delay */
static uint32_t turn_limit;  /* ...and its games' turn limit (0: the game's) */

static void engine_start(struct engine *e, const char *tag, uint32_t games, uint32_t shards,
			 double timeout_ms, uint32_t fallback)
{
	char why[512];
	const xr_game_vtable *vt = xr_game_builtin_grid();
	xr_game_config cfg = {.board_h = BOARD, .board_w = BOARD, .players = PLAYERS, .seed = 1,
			      .turn_limit = turn_limit};

	memset(e, 0, sizeof(*e));
	xr_test_name(e->name, sizeof(e->name), tag);
	e->ss = (xr_stream_spec){.policy = XR_POLICY_LOSSLESS, .n_rings = shards,
				 .ring_bytes = 4u << 20, .kind = XR_RECORD_EXPERIENCE};
	CHECK_RC(xr_shard_shape(vt, &cfg, XR_DTYPE_U8, &e->ss.shape), 0);
	CHECK_RC(xr_exp_template_init(&e->t, &e->ss.shape), 0);
	e->spec = (xr_arena_spec){.name = e->name, .streams = &e->ss, .n_streams = 1,
				  .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE};
	e->allow[0] = NOBODY;
	e->allow[1] = OTHER;
	e->so = (xr_server_opts){.allow_uid = e->allow, .n_allow_uid = 2};
	e->eo = (struct xr_engine_opts){
		.shard = {.vt = vt, .cfg = cfg, .games = games, .obs_dtype = XR_DTYPE_U8,
			  .tick_ns = (uint64_t)(tick_ms * 1e6), .high_watermark = 0.9,
			  .low_watermark = 0.5},
		.shards = shards, .numa_node = -1};
	e->shape = (struct xr_gdir_shape){.vt = vt, .board_h = BOARD, .board_w = BOARD,
					  .players = PLAYERS, .obs_dtype = XR_DTYPE_U8,
					  .stream_name = XR_DEFAULT_STREAM};
	e->go = (struct xr_gdir_opts){.shards = shards, .shapes = &e->shape, .n_shapes = 1,
				      .start = games, .start_seed = 1, .start_turn_limit = turn_limit,
				      .max_agents = 8,
				      .fallback = fallback,
				      .action_timeout_ns = (uint64_t)(timeout_ms * 1e6),
				      .tick_ns = (uint64_t)(tick_ms * 1e6),
				      .input_delay = input_delay};
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

/* What a record says, for pairing. */
struct rec {
	uint64_t seq, t_ns;
	uint32_t game, player, turn;
	int32_t action, applied;
	uint8_t applied_by;
	bool done, truncated;
	int32_t best;           /* the highest legal action of its mask */
	int32_t illegal;        /* an illegal action of its mask, or -1 */
};

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static struct rec decode(const xr_exp_template *t, const xr_frame *f)
{
	const uint8_t *d = xr_frame_data(f);
	struct rec r = {.seq = f->seq};

	memcpy(&r.t_ns, d + t->off_t_ns, 8);
	r.game = get32(d + t->off_game_id);
	r.player = get32(d + t->off_player_id);
	r.turn = get32(d + t->off_turn);
	memcpy(&r.action, d + t->off_action, 4);
	memcpy(&r.applied, d + t->off_applied, 4);
	r.applied_by = d[t->off_applied_by];
	r.done = d[t->off_done];
	r.truncated = d[t->off_truncated];
	r.best = r.illegal = -1;
	for (uint32_t a = 0; a < t->shape.mask_len; a++) {
		if (d[t->off_mask + a])
			r.best = (int32_t)a;
		else if (r.illegal < 0)
			r.illegal = (int32_t)a;
	}
	return r;
}

/* Every record a trainer reads, per (game, player), in order. */
struct log {
	struct rec *r;
	uint32_t n, cap;
};

static void log_add(struct log *lg, struct rec x)
{
	if (lg->n == lg->cap) {
		lg->cap = lg->cap ? 2 * lg->cap : 4096;
		lg->r = realloc(lg->r, lg->cap * sizeof(*lg->r));
		CHECK(lg->r);
	}
	lg->r[lg->n++] = x;
}

static xr_reader *trainer(const struct engine *e)
{
	xr_reader *r;
	xr_reader_opts o = {.label = "trainer"};

	CHECK_RC(xr_reader_attach(e->name, &o, &r), 0);
	return r;
}

/* Reads what there is (up to ms) into lg. */
static void drain(xr_reader *r, const xr_exp_template *t, struct log *lg, int64_t ms)
{
	xr_batch b;
	int n = xr_reader_read(r, 1, 4096, ms * 1000000, &b);

	CHECK(n >= 0);
	if (n <= 0)
		return;
	const xr_frame *f = b.first;
	for (int i = 0; i < n; i++, f = xr_frame_next(f))
		log_add(lg, decode(t, f));
	CHECK_RC(xr_batch_release(r, &b), 0);
}

/* The record of (game, player) after lg->r[i], or NULL. */
static const struct rec *next_of(const struct log *lg, uint32_t i)
{
	for (uint32_t j = i + 1; j < lg->n; j++)
		if (lg->r[j].game == lg->r[i].game && lg->r[j].player == lg->r[i].player)
			return &lg->r[j];
	return NULL;
}

/* An agent thread: answers its batches with answer(), until stop. */
struct actor {
	xr_agent *a;
	int32_t (*answer)(const struct rec *r, uint32_t i);
	const xr_exp_template *t;
	_Atomic int stop;
	_Atomic uint64_t answered;
};

static void *actor_main(void *p)
{
	struct actor *ac = p;
	static _Thread_local int32_t act[4096];
	xr_obs_batch b;

	while (!xr_load_relaxed(&ac->stop)) {
		int n = xr_agent_recv(ac->a, 1, 4096, 20000000, &b);
		if (n < 0)
			FAILF("agent recv: %s (%s)", xr_strerror(n), xr_last_reason());
		if (n == 0)
			continue;
		for (int i = 0; i < n; i++) {
			struct rec r = decode(ac->t, b.frames[i]);
			act[i] = ac->answer(&r, (uint32_t)i);
		}
		CHECK_RC(xr_agent_send(ac->a, &b, act), 0);
		xr_store_relaxed(&ac->answered, xr_load_relaxed(&ac->answered) + (uint64_t)n);
	}
	return NULL;
}

static int32_t answer_best(const struct rec *r, uint32_t i)
{
	(void)i;
	return r->best;
}

static void turns(uint32_t games, uint32_t want)
{
	struct engine e;
	struct log lg = {0};
	struct actor ac = {.answer = answer_best};

	engine_start(&e, "agents-turns", games, 2, 5000, XR_FALLBACK_NOOP);
	xr_reader *tr = trainer(&e);
	/* Some records of the policy's first. */
	while (lg.n < 4 * games * PLAYERS)
		drain(tr, &e.t, &lg, 100);
	xr_agent_opts ao = {.label = "best", .capacity = games};
	CHECK_RC(xr_agent_attach(e.name, &ao, &ac.a), 0);
	uint32_t claim;
	CHECK_RC(xr_agent_claim(ac.a, 0, games - 1, 0, &claim), 0);
	ac.t = &e.t;
	pthread_t th;
	CHECK(pthread_create(&th, NULL, actor_main, &ac) == 0);
	/* Until every seat has `want` records answered by the agent. */
	for (;;) {
		drain(tr, &e.t, &lg, 100);
		uint32_t ok = 0;
		static uint32_t agent_recs[1024][PLAYERS];
		CHECK(games <= 1024);
		memset(agent_recs, 0, sizeof(agent_recs));
		for (uint32_t i = 0; i < lg.n; i++)
			if (lg.r[i].applied_by == XR_SRC_AGENT)
				agent_recs[lg.r[i].game][lg.r[i].player]++;
		for (uint32_t g = 0; g < games; g++)
			for (uint32_t p = 0; p < PLAYERS; p++)
				ok += agent_recs[g][p] >= want;
		if (ok == games * PLAYERS)
			break;
	}
	xr_store_relaxed(&ac.stop, 1);
	CHECK(pthread_join(th, NULL) == 0);
	/* The shards publish their counts twice a second (while they run:
	 * the trainer reads on, or they would pause for it). */
	xr_agent_stats st;
	uint64_t until = xr__now_ns() + 5000000000ull;
	do {
		struct log more = {0};
		drain(tr, &e.t, &more, 10);
		free(more.r);
		CHECK_RC(xr_agent_stats_get(ac.a, &st), 0);
	} while (st.actions < games * PLAYERS * want && xr__now_ns() < until);
	xr_agent_detach(ac.a);

	/* Pair every record with the next of its seat. */
	uint64_t by_agent = 0, by_policy = 0, starts = 0, held = 0;
	for (uint32_t i = 0; i < lg.n; i++) {
		const struct rec *r = &lg.r[i], *n = next_of(&lg, i);
		if (r->turn == 0) {
			CHECK_EQ(r->applied, -1);
			CHECK_EQ(r->applied_by, XR_SRC_NONE);
			starts++;
		}
		if (!n || r->done || r->truncated)
			continue;
		if (n->turn != r->turn + 1)
			FAILF("game %u player %u: turn %u then %u", r->game, r->player, r->turn, n->turn);
		if (r->action >= 0) {
			/* The policy's seat: its draw was applied. */
			if (n->applied != r->action || n->applied_by != XR_SRC_POLICY)
				FAILF("game %u player %u turn %u: policy drew %d, next says %d by %u",
				      r->game, r->player, r->turn, r->action, n->applied,
				      n->applied_by);
			by_policy++;
		} else {
			held++;
			if (n->applied_by == XR_SRC_AGENT) {
				if (n->applied != r->best)
					FAILF("game %u player %u turn %u: agent answered %d, applied %d",
					      r->game, r->player, r->turn, r->best, n->applied);
				by_agent++;
			} else if (n->applied_by != XR_SRC_TIMEOUT) {
				FAILF("game %u player %u turn %u: applied_by %u", r->game, r->player,
				      r->turn, n->applied_by);
			}
		}
	}
	CHECK(by_agent >= games * PLAYERS * (want - 1));
	CHECK(by_policy > 0);
	/* The agent stopped with records unanswered: at most one timeout a
	 * seat, with a 5 s deadline none came before the agent stopped. */
	CHECK(held - by_agent <= games * PLAYERS);
	if (!(st.actions > 0 && st.timeouts == 0 && st.wrong_turn == 0 && st.illegal == 0))
		FAILF("agent stats: actions %llu timeouts %llu wrong turn %llu illegal %llu",
		      (unsigned long long)st.actions, (unsigned long long)st.timeouts,
		      (unsigned long long)st.wrong_turn, (unsigned long long)st.illegal);
	printf("turns: %u games: %llu transitions of the agent's, %llu of the policy's, %llu "
	       "episode starts; round trip p50 %llu us p99 %llu us\n",
	       games, (unsigned long long)by_agent, (unsigned long long)by_policy,
	       (unsigned long long)starts, (unsigned long long)st.rtt_p50_ns / 1000,
	       (unsigned long long)st.rtt_p99_ns / 1000);
	xr_reader_detach(tr);
	engine_stop(&e);
	free(lg.r);
}

/* The bad agent's answer to r, by game mod 5: 0 right; 1 right, under
 * the tag of a record not written yet; 2 out of range; 3 illegal; 4 none. Written into
 * its slot by hand. */
static void answer_badly(xr_agent *a, const struct rec *r, uint32_t lo)
{
	void *base;
	size_t len;
	int32_t act = r->best;
	uint32_t tag = xr_seat_tag(r->seq);

	CHECK_RC(xr_agent_slots(a, &base, &len), 0);
	switch (r->game % 5) {
	case 1: tag += 7; break;
	case 2: act = 1000000; break;
	case 3: act = r->illegal; break;
	case 4: return;
	}
	_Atomic uint64_t *slot = (_Atomic uint64_t *)base + (size_t)(r->game - lo) * 8 + r->player;
	CHECK((size_t)((uint8_t *)(slot + 1) - (uint8_t *)base) <= len);
	xr_store_release(slot, (uint64_t)tag << 32 | (uint32_t)act);
}

static void bad_answers(void)
{
	struct engine e;
	struct log lg = {0};
	const uint32_t games = 20;
	uint64_t by_src[8] = {0};

	engine_start(&e, "agents-bad", games + 5, 1, 20, XR_FALLBACK_NOOP);
	xr_reader *tr = trainer(&e);
	xr_agent *a, *good;
	xr_agent_opts ao = {.label = "bad", .capacity = 32};
	CHECK_RC(xr_agent_attach(e.name, &ao, &a), 0);
	CHECK_RC(xr_agent_claim(a, 0, games - 1, 0, NULL), 0);
	xr_agent_opts go = {.label = "good", .capacity = 8};
	CHECK_RC(xr_agent_attach(e.name, &go, &good), 0);
	CHECK_RC(xr_agent_claim(good, games, games + 4, 0, NULL), 0);
	struct actor gac = {.a = good, .answer = answer_best, .t = &e.t};
	pthread_t th;
	CHECK(pthread_create(&th, NULL, actor_main, &gac) == 0);

	/* Until every kind of answer has been paired 20 times. */
	for (;;) {
		xr_obs_batch b;
		int n = xr_agent_recv(a, 1, 4096, 10000000, &b);
		CHECK(n >= 0);
		for (int i = 0; i < n; i++) {
			struct rec r = decode(&e.t, b.frames[i]);
			if (!r.done && !r.truncated)
				answer_badly(a, &r, 0);
		}
		if (n > 0)
			CHECK_RC(xr_agent_release_batch(a, &b), 0);
		uint32_t from = lg.n;
		drain(tr, &e.t, &lg, 0);
		for (uint32_t i = from; i < lg.n; i++)
			if (lg.r[i].game < games && lg.r[i].applied_by < 8)
				by_src[lg.r[i].applied_by]++;
		if (by_src[XR_SRC_AGENT] >= 20 && by_src[XR_SRC_WRONG_TURN] >= 20 &&
		    by_src[XR_SRC_OUT_OF_RANGE] >= 20 && by_src[XR_SRC_ILLEGAL] >= 20 &&
		    by_src[XR_SRC_TIMEOUT] >= 20)
			break;
	}
	/* Each next record says what its seat's answer earned; every
	 * fallback is the no-op (-1). */
	static const uint8_t earned[5] = {XR_SRC_AGENT, XR_SRC_WRONG_TURN, XR_SRC_OUT_OF_RANGE,
					  XR_SRC_ILLEGAL, XR_SRC_TIMEOUT};
	uint64_t good_agent = 0;
	for (uint32_t i = 0; i < lg.n; i++) {
		const struct rec *r = &lg.r[i], *n = next_of(&lg, i);
		if (!n || r->done || r->truncated || r->action >= 0 || n->turn != r->turn + 1)
			continue;
		if (r->game >= games) {
			/* The other agent's seats: untouched by the bad one (its
			 * answers, or a timeout of its own on a busy machine). */
			if (n->applied_by == XR_SRC_AGENT ? n->applied != r->best
							  : n->applied_by != XR_SRC_TIMEOUT)
				FAILF("game %u (good agent's): applied %d by %u", r->game, n->applied,
				      n->applied_by);
			good_agent += n->applied_by == XR_SRC_AGENT;
			continue;
		}
		uint8_t want = earned[r->game % 5];
		/* What it earned, or a timeout when this test's agent was
		 * slower than the 20 ms deadline (a busy machine): never
		 * another kind. */
		if (n->applied_by != want && n->applied_by != XR_SRC_TIMEOUT)
			FAILF("game %u player %u turn %u: applied_by %u, earned %u", r->game,
			      r->player, r->turn, n->applied_by, want);
		if (n->applied_by == XR_SRC_AGENT ? n->applied != r->best : n->applied != -1)
			FAILF("game %u: applied %d", r->game, n->applied);
	}
	CHECK(good_agent > 0);

	/* Garbage over the bad agent's whole page: its seats fall back, the
	 * engine and the good agent go on. */
	void *base;
	size_t len;
	CHECK_RC(xr_agent_slots(a, &base, &len), 0);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int round = 0; round < 50; round++) {
		for (size_t k = 0; k < len / 8; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			xr_store_relaxed((_Atomic uint64_t *)base + k, x);
		}
		drain(tr, &e.t, &lg, 5);
	}
	uint64_t before = xr_load_relaxed(&gac.answered), until = xr__now_ns() + 10000000000ull;
	while (xr_load_relaxed(&gac.answered) < before + 100 && xr__now_ns() < until)
		drain(tr, &e.t, &lg, 5);
	CHECK(xr_load_relaxed(&gac.answered) >= before + 100);

	/* The counts of the records seen above, as the shards publish them
	 * (twice a second, while they run: the trainer reads on). */
	xr_agent_stats st;
	until = xr__now_ns() + 30000000000ull;
	do {
		drain(tr, &e.t, &lg, 5);
		CHECK_RC(xr_agent_stats_get(a, &st), 0);
	} while ((st.wrong_turn < by_src[XR_SRC_WRONG_TURN] ||
		  st.out_of_range < by_src[XR_SRC_OUT_OF_RANGE] ||
		  st.illegal < by_src[XR_SRC_ILLEGAL] || st.timeouts < by_src[XR_SRC_TIMEOUT] ||
		  st.actions < by_src[XR_SRC_AGENT]) &&
		 xr__now_ns() < until);
	if (st.wrong_turn < by_src[XR_SRC_WRONG_TURN] ||
	    st.out_of_range < by_src[XR_SRC_OUT_OF_RANGE] || st.illegal < by_src[XR_SRC_ILLEGAL] ||
	    st.timeouts < by_src[XR_SRC_TIMEOUT] || st.actions < by_src[XR_SRC_AGENT])
		FAILF("the agent's counts (actions %llu, wrong turn %llu, out of range %llu, "
		      "illegal %llu, timeouts %llu) are short of its records' (%llu, %llu, %llu, "
		      "%llu, %llu)",
		      (unsigned long long)st.actions, (unsigned long long)st.wrong_turn,
		      (unsigned long long)st.out_of_range, (unsigned long long)st.illegal,
		      (unsigned long long)st.timeouts, (unsigned long long)by_src[XR_SRC_AGENT],
		      (unsigned long long)by_src[XR_SRC_WRONG_TURN],
		      (unsigned long long)by_src[XR_SRC_OUT_OF_RANGE],
		      (unsigned long long)by_src[XR_SRC_ILLEGAL],
		      (unsigned long long)by_src[XR_SRC_TIMEOUT]);
	CHECK_EQ(st.fallbacks, st.wrong_turn + st.out_of_range + st.illegal + st.timeouts);
	printf("bad_answers: %llu right, %llu wrong turn, %llu out of range, %llu illegal, %llu "
	       "timeouts; the good agent's %llu transitions untouched, and on through garbage\n",
	       (unsigned long long)by_src[XR_SRC_AGENT],
	       (unsigned long long)by_src[XR_SRC_WRONG_TURN],
	       (unsigned long long)by_src[XR_SRC_OUT_OF_RANGE],
	       (unsigned long long)by_src[XR_SRC_ILLEGAL],
	       (unsigned long long)by_src[XR_SRC_TIMEOUT], (unsigned long long)good_agent);
	xr_agent_detach(a);
	xr_store_relaxed(&gac.stop, 1);
	CHECK(pthread_join(th, NULL) == 0);
	xr_agent_detach(good);
	xr_reader_detach(tr);
	engine_stop(&e);
	free(lg.r);
}

static void conflicts(void)
{
	struct engine e;
	xr_agent *a, *b;
	uint32_t ca, cb;

	engine_start(&e, "agents-seats", 16, 1, 20, XR_FALLBACK_POLICY);
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "alice", .capacity = 16}, &a),
		 0);
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "bob", .capacity = 24}, &b),
		 0);
	CHECK_RC(xr_agent_claim(a, 0, 9, 1u << 0, &ca), 0);
	CHECK_EQ(xr_agent_claim(b, 5, 15, 0, &cb), -EBUSY);
	CHECK(strstr(xr_last_reason(), "seat (game 5, player 0) is held by agent"));
	CHECK(strstr(xr_last_reason(), "alice"));
	printf("conflicts: %s\n", xr_last_reason());
	CHECK_EQ(xr_agent_claim(a, 9, 9, 1u << 0, NULL), -EBUSY); /* its own too */
	CHECK_EQ(xr_agent_claim(b, 0, 40, 0, NULL), -ENOSPC);      /* past its capacity */
	/* Self-play: the other players of the same games. */
	CHECK_RC(xr_agent_claim(b, 0, 9, 1u << 1, &cb), 0);
	CHECK_EQ(xr_agent_release(b, 12345), -ENOENT);
	/* Released, a seat may be claimed by another. */
	CHECK_RC(xr_agent_release(a, ca), 0);
	CHECK_RC(xr_agent_claim(b, 0, 9, 1u << 0, NULL), 0);
	xr_agent_stats st;
	CHECK_RC(xr_agent_stats_get(b, &st), 0);
	CHECK_EQ(st.claims, 2);
	CHECK_EQ(st.seats, 20);
	/* The arena's agent table shows both. */
	const struct xr_arena *ar = xr_host_arena(e.h);
	CHECK_EQ(xr_load_acquire(&ar->agents[st.agent].state), XR_AGENT_LIVE);
	CHECK_EQ(xr_load_relaxed(&ar->agents[st.agent].seats), 20);
	char label[sizeof(ar->agents[st.agent].label)];
	xr__label_get(label, ar->agents[st.agent].label, sizeof(label));
	CHECK(!strcmp(label, "bob"));
	xr_agent_detach(a);
	xr_agent_detach(b);
	engine_stop(&e);
}

/* The child of killed_agent: an agent answering games 0..9 for ever;
 * one byte down `ready` after its first answers. */
static void agent_child(const char *engine, int ready)
{
	xr_agent *a;
	xr_obs_batch b;
	static int32_t act[4096];
	xr_exp_template t;
	bool told = false;

	if (xr_agent_attach(engine, &(xr_agent_opts){.label = "child", .capacity = 16}, &a) < 0 ||
	    xr_agent_claim(a, 0, 9, 0, NULL) < 0)
		_exit(2);
	xr_stream_facts sf;
	xr_reader_stream_facts(xr_agent_reader(a), &sf);
	if (xr_exp_template_init(&t, &sf.shape) < 0)
		_exit(3);
	for (;;) {
		int n = xr_agent_recv(a, 1, 4096, 100000000, &b);
		if (n < 0)
			_exit(4);
		for (int i = 0; i < n; i++)
			act[i] = decode(&t, b.frames[i]).best;
		if (n > 0 && xr_agent_send(a, &b, act) < 0)
			_exit(5);
		if (n > 0 && !told) {
			told = write(ready, "r", 1) == 1;
		}
	}
}

/* Per seat of games 0..9: records whose applied_by is src, written at or
 * after t0 (CLOCK_MONOTONIC, as t_ns). */
static uint32_t seats_with(const struct log *lg, uint32_t from, uint8_t src, uint64_t t0,
			   uint32_t want, uint64_t *first_ns)
{
	uint32_t n[10][PLAYERS] = {{0}}, ok = 0;
	uint64_t first[10][PLAYERS] = {{0}};

	for (uint32_t i = from; i < lg->n; i++) {
		const struct rec *r = &lg->r[i];
		if (r->game < 10 && r->applied_by == src && r->t_ns >= t0) {
			if (!n[r->game][r->player]++)
				first[r->game][r->player] = r->t_ns;
		}
	}
	if (first_ns)
		*first_ns = 0;
	for (uint32_t g = 0; g < 10; g++)
		for (uint32_t p = 0; p < PLAYERS; p++) {
			ok += n[g][p] >= want;
			if (first_ns && first[g][p] > *first_ns)
				*first_ns = first[g][p];
		}
	return ok;
}

static void killed_agent(void)
{
	struct engine e;
	struct log lg = {0};
	int pp[2];

	engine_start(&e, "agents-kill", 12, 1, 20, XR_FALLBACK_NOOP);
	xr_reader *tr = trainer(&e);
	CHECK(pipe(pp) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(pp[0]);
		agent_child(e.name, pp[1]);
	}
	close(pp[1]);
	/* Waiting for it, the trainer reads on: a lossless reader that
	 * stopped would pause the engine, and the agent would wait for ever. */
	struct pollfd pf = {.fd = pp[0], .events = POLLIN};
	uint64_t ready_by = xr__now_ns() + 10000000000ull;
	char c;
	while (poll(&pf, 1, 0) == 0 && xr__now_ns() < ready_by)
		drain(tr, &e.t, &lg, 10);
	if (!(pf.revents & POLLIN) || read(pp[0], &c, 1) != 1) {
		int st = 0;
		pid_t w = waitpid(pid, &st, WNOHANG);
		FAILF("the agent child did not answer: waitpid %d status 0x%x", (int)w, st);
	}
	uint64_t t0 = xr__now_ns(), until = t0 + 10000000000ull;
	while (seats_with(&lg, 0, XR_SRC_AGENT, 0, 5, NULL) < 10 * PLAYERS && xr__now_ns() < until)
		drain(tr, &e.t, &lg, 10);
	CHECK_EQ(seats_with(&lg, 0, XR_SRC_AGENT, 0, 5, NULL), 10 * PLAYERS);

	/* Stopped: its seats time out, turn after turn; the games go on. */
	CHECK(kill(pid, SIGSTOP) == 0);
	uint32_t from = lg.n;
	uint64_t t_stop = xr__now_ns();
	until = t_stop + 10000000000ull;
	while (seats_with(&lg, from, XR_SRC_TIMEOUT, t_stop, 5, NULL) < 10 * PLAYERS &&
	       xr__now_ns() < until)
		drain(tr, &e.t, &lg, 10);
	if (seats_with(&lg, from, XR_SRC_TIMEOUT, t_stop, 5, NULL) != 10 * PLAYERS) {
		uint64_t cnt[8] = {0}, held = 0;
		for (uint32_t i = from; i < lg.n; i++) {
			if (lg.r[i].game < 10)
				held++, cnt[lg.r[i].applied_by & 7]++;
		}
		FAILF("after SIGSTOP: %u records, %llu of held games: none %llu policy %llu agent %llu timeout %llu wrong %llu",
		      lg.n - from, (unsigned long long)held, (unsigned long long)cnt[0], (unsigned long long)cnt[1],
		      (unsigned long long)cnt[2], (unsigned long long)cnt[3], (unsigned long long)cnt[4]);
	}
	/* The games no agent holds never waited. */
	uint64_t free_turns = 0;
	for (uint32_t i = from; i < lg.n; i++)
		free_turns += lg.r[i].game >= 10 && lg.r[i].applied_by == XR_SRC_POLICY;
	CHECK(free_turns > 10 * 5);

	/* Killed: its seats are the policy's again. */
	CHECK(kill(pid, SIGKILL) == 0);
	uint64_t t_kill = xr__now_ns();
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	from = lg.n;
	uint64_t last_first = 0;
	until = t_kill + 10000000000ull;
	while (seats_with(&lg, from, XR_SRC_POLICY, t_kill, 1, &last_first) < 10 * PLAYERS &&
	       xr__now_ns() < until)
		drain(tr, &e.t, &lg, 10);
	CHECK_EQ(seats_with(&lg, from, XR_SRC_POLICY, t_kill, 1, &last_first), 10 * PLAYERS);
	double ms = (double)(last_first - t_kill) / 1e6;
	/* The target (100 ms) is measured by perf/bench_agents; a test on a
	 * shared machine only bounds it loosely. */
	CHECK(ms < 2000);

	/* A new agent takes the seats back in one call. */
	xr_agent *a;
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "again", .capacity = 16}, &a), 0);
	CHECK_RC(xr_agent_claim(a, 0, 9, 0, NULL), 0);
	printf("killed_agent: stopped, its 20 seats timed out and the other games went on (%llu "
	       "policy turns); killed, every seat was the policy's %.1f ms later; reclaimed in "
	       "one call\n",
	       (unsigned long long)free_turns, ms);
	xr_agent_detach(a);
	close(pp[0]);
	xr_reader_detach(tr);
	engine_stop(&e);
	free(lg.r);
}

/* Answers every record, counting answers per game (games < 1024). */
static _Atomic uint32_t handoff_seen[1024];
static int32_t answer_count(const struct rec *r, uint32_t i)
{
	(void)i;
	if (r->game < 1024)
		xr_store_relaxed(&handoff_seen[r->game], xr_load_relaxed(&handoff_seen[r->game]) + 1);
	return r->best;
}

static void handoff(void)
{
	const uint32_t games = 64, rounds = 30;
	struct engine e;
	struct log lg = {0};
	uint32_t same_entry = 0, last_agent = UINT32_MAX;
	double worst_ms = 0;

	engine_start(&e, "agents-handoff", games, 1, 10000, XR_FALLBACK_NOOP);
	xr_reader *tr = trainer(&e);
	for (uint32_t k = 0; k < rounds; k++) {
		struct actor ac = {.answer = answer_count, .t = &e.t};
		xr_agent_opts ao = {.label = "handoff", .capacity = games};
		xr_agent_stats st;
		pthread_t th;
		int rc;

		for (uint32_t g = 0; g < games; g++)
			xr_store_relaxed(&handoff_seen[g], 0);
		/* The last agent detached just now: its entry may not be
		 * free yet (-EAGAIN, the shards not past it). */
		uint64_t t0 = xr__now_ns(), until = t0 + 5000000000ull;
		while ((rc = xr_agent_attach(e.name, &ao, &ac.a)) == -EAGAIN &&
		       xr__now_ns() < until)
			drain(tr, &e.t, &lg, 1);
		CHECK_RC(rc, 0);
		CHECK_RC(xr_agent_claim(ac.a, 0, games - 1, 0, NULL), 0);
		CHECK(pthread_create(&th, NULL, actor_main, &ac) == 0);
		/* Every game answered twice (so it stepped on this agent's
		 * answer at least once) well before the 10 s deadline (5 s:
		 * room for a sanitizer's slowness; a game that waits for the
		 * last agent's answer waits all 10). */
		uint32_t behind = games;
		until = t0 + 5000000000ull;
		while (behind && xr__now_ns() < until) {
			drain(tr, &e.t, &lg, 1);
			behind = 0;
			for (uint32_t g = 0; g < games; g++)
				behind += xr_load_relaxed(&handoff_seen[g]) < 2 * PLAYERS;
		}
		double ms = (double)(xr__now_ns() - t0) / 1e6;
		if (behind)
			FAILF("handoff %u: %u of %u games had not played on for the new agent "
			      "%.0f ms after its attach (its deadline is 10 s: they wait for an "
			      "answer the last agent owed)", k, behind, games, ms);
		worst_ms = ms > worst_ms ? ms : worst_ms;
		xr_store_relaxed(&ac.stop, 1);
		CHECK(pthread_join(th, NULL) == 0);
		CHECK_RC(xr_agent_stats_get(ac.a, &st), 0);
		same_entry += st.agent == last_agent;
		last_agent = st.agent;
		xr_agent_detach(ac.a);
		lg.n = 0; /* the records are not looked at: only read */
	}
	printf("handoff: %u agents in turn on the same %u games, each playing every game within "
	       "%.1f ms of its attach (%u of them on the last one's entry)\n",
	       rounds, games, worst_ms, same_entry);
	xr_reader_detach(tr);
	engine_stop(&e);
	free(lg.r);
}

/* With a tick, a turn a tick: an agent that answers every other record
 * gets exactly those answered applied, and a timeout for the others at
 * the tick; the games keep the tick's pace. Lazy observations: with
 * nobody else reading, the agent's seats are observed. */
static _Atomic uint64_t odd_skipped;
static int32_t answer_even_turns(const struct rec *r, uint32_t i)
{
	(void)i;
	return r->best;
}

static void ticks(void)
{
	struct engine e;
	struct log lg = {0};
	const uint32_t games = 8;

	tick_ms = 5;
	uint64_t t_begin = xr__now_ns();
	engine_start(&e, "agents-tick", games, 1, 0, XR_FALLBACK_REPEAT);
	tick_ms = 0;
	xr_reader *tr = trainer(&e);
	xr_agent *a;
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "ticks", .capacity = 8}, &a), 0);
	CHECK_RC(xr_agent_claim(a, 0, games - 1, 1u << 0, NULL), 0);
	uint64_t until = xr__now_ns() + 20000000000ull;
	uint32_t agent_n = 0, timeout_n = 0;
	while ((agent_n < 40 || timeout_n < 40) && xr__now_ns() < until) {
		xr_obs_batch b;
		static int32_t act[4096];
		int n = xr_agent_recv(a, 1, 4096, 2000000, &b);
		CHECK(n >= 0);
		if (n > 0) {
			/* Records of odd turns get no answer. */
			uint32_t k = 0;
			for (int i = 0; i < n; i++) {
				struct rec r = decode(&e.t, b.frames[i]);
				act[i] = answer_even_turns(&r, 0);
				k += r.turn % 2;
			}
			if (k == 0)
				CHECK_RC(xr_agent_send(a, &b, act), 0);
			else
				CHECK_RC(xr_agent_release_batch(a, &b), 0); /* a mix: none */
			xr_fetch_add_sc(&odd_skipped, k);
		}
		uint32_t from = lg.n;
		drain(tr, &e.t, &lg, 0);
		for (uint32_t i = from; i < lg.n; i++) {
			agent_n += lg.r[i].applied_by == XR_SRC_AGENT;
			timeout_n += lg.r[i].applied_by == XR_SRC_TIMEOUT;
		}
	}
	CHECK(agent_n >= 40 && timeout_n >= 40);
	/* Pairs: an answered record's next applies it; an unanswered one's
	 * falls back to the seat's previous action (repeat), if legal. */
	uint64_t paired = 0;
	for (uint32_t i = 0; i < lg.n; i++) {
		const struct rec *r = &lg.r[i], *n = next_of(&lg, i);
		if (!n || r->player != 0 || r->action >= 0 || r->done || r->truncated)
			continue;
		if (n->applied_by == XR_SRC_AGENT) {
			CHECK_EQ(n->applied, r->best);
			paired++;
		} else {
			CHECK_EQ(n->applied_by, XR_SRC_TIMEOUT);
			CHECK(n->applied == -1 || n->applied == r->applied);
		}
	}
	CHECK(paired >= 20);
	/* The games keep the tick's pace: never a turn before its tick (a
	 * shard behind, under TSan, catches up, but never runs ahead). */
	uint64_t turns0 = 0, t_end = xr__now_ns();
	for (uint32_t i = 0; i < lg.n; i++)
		turns0 += lg.r[i].game == 0 && lg.r[i].player == 0;
	double ticks_gone = (double)(t_end - t_begin) / 5e6;
	if (turns0 < 5 || (double)turns0 > ticks_gone + 2)
		FAILF("game 0 took %llu turns in %.1f ticks", (unsigned long long)turns0, ticks_gone);
	double per_turn = (double)(t_end - t_begin) / 1e6 / (double)turns0;
	printf("ticks: %u answers applied at their ticks, %u timeouts (repeat), %.2f ms a turn\n",
	       agent_n, timeout_n, per_turn);
	xr_agent_detach(a);
	xr_reader_detach(tr);
	engine_stop(&e);
	free(lg.r);
}

/* --input-delay 2: the answer to the record of turn t is applied at the
 * step from turn t + 2 (the record of turn t + 3 says so); an episode's
 * first 2 steps have no answer (DELAY). */
static void delay(void)
{
	struct engine e;
	struct log lg = {0};
	struct actor ac = {.answer = answer_best};
	const uint32_t games = 6, K = 2;

	input_delay = K;
	turn_limit = 12; /* episodes start often */
	engine_start(&e, "agents-delay", games, 1, 5000, XR_FALLBACK_NOOP);
	input_delay = turn_limit = 0;
	xr_reader *tr = trainer(&e);
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "delayed", .capacity = 8},
				 &ac.a),
		 0);
	CHECK_RC(xr_agent_claim(ac.a, 0, games - 1, 0, NULL), 0);
	ac.t = &e.t;
	pthread_t th;
	CHECK(pthread_create(&th, NULL, actor_main, &ac) == 0);
	uint64_t agent = 0, delayed = 0, until = xr__now_ns() + 20000000000ull;
	while ((agent < 400 || delayed < 4) && xr__now_ns() < until) {
		uint32_t from = lg.n;
		drain(tr, &e.t, &lg, 10);
		for (uint32_t i = from; i < lg.n; i++) {
			agent += lg.r[i].applied_by == XR_SRC_AGENT;
			delayed += lg.r[i].applied_by == XR_SRC_DELAY;
		}
	}
	xr_store_relaxed(&ac.stop, 1);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK(agent >= 400 && delayed >= 4);
	uint64_t paired = 0;
	for (uint32_t i = 0; i < lg.n; i++) {
		const struct rec *r = &lg.r[i];
		if (r->action >= 0 || r->done || r->truncated)
			continue;
		/* The seat's record K + 1 turns on, in the same episode. */
		const struct rec *n = r;
		uint32_t j = i;
		for (uint32_t k = 0; k <= K && n; k++) {
			n = next_of(&lg, j);
			j = n ? (uint32_t)(n - lg.r) : j;
		}
		if (!n || n->turn != r->turn + K + 1)
			continue;
		if (n->applied_by == XR_SRC_AGENT) {
			if (n->applied != r->best)
				FAILF("game %u player %u: answer to turn %u (%d) applied at turn %u as %d",
				      r->game, r->player, r->turn, r->best, n->turn - 1, n->applied);
			paired++;
		} else if (n->applied_by != XR_SRC_ILLEGAL) {
			/* Legal at turn t, perhaps not at t + K. */
			FAILF("game %u player %u turn %u: applied_by %u", n->game, n->player, n->turn,
			      n->applied_by);
		}
	}
	/* A step from turn < K of a held seat (its record said action -1):
	 * no answer, DELAY. */
	uint64_t starts = 0;
	for (uint32_t i = 0; i < lg.n; i++) {
		const struct rec *r = &lg.r[i], *n = next_of(&lg, i);
		if (r->action < 0 && r->turn < K && n && n->turn == r->turn + 1) {
			CHECK_EQ(n->applied_by, XR_SRC_DELAY);
			starts += r->turn == 0;
		}
	}
	CHECK(paired >= 300);
	if (!starts)
		FAILF("delay: %llu DELAY records but no held episode start paired", (unsigned long long)delayed);
	printf("delay: %llu answers applied %u turns after their records; the first %u steps of "
	       "%llu seats' episodes without (DELAY)\n",
	       (unsigned long long)paired, K, K, (unsigned long long)starts);
	xr_agent_detach(ac.a);
	xr_reader_detach(tr);
	engine_stop(&e);
	free(lg.r);
}

/* foreign_games: uid OTHER creates 8 games (not owned: they stay). */
static uint32_t other_first;
static int other_creates(void *arg)
{
	xr_games *c;
	uint32_t ids[8];
	xr_game_spec spec = {.seed = 5};

	if (xr_games_open(arg, NULL, &c) < 0 || xr_games_create(c, &spec, 8, ids) != 8)
		return 2;
	xr_games_close(c);
	/* The child's exit code carries nothing but 0/1: ids are found by
	 * the parent in the list. */
	return 0;
}

/* An agent of uid `getuid()` claims other_first..+7 and answers them: it
 * acts (its answers applied) only where `mine`. Its reader has the games in
 * its filter before the claim reaches the shard (docs/agents.md: so that the
 * first record that waits for it is one it reads), so the records written
 * in between are the policy's; a busy machine can make them hundreds. The
 * owner therefore counts from its first held record on, 300 of them; the
 * stranger, whose claim never holds, counts 300 from the start. */
static int claim_and_act(void *arg)
{
	const char *name = arg;
	bool mine = getuid() == OTHER;
	xr_agent *a;
	xr_exp_template t;
	static int32_t act[4096];
	uint32_t seen = 0, counted = 0, held = 0, applied = 0;

	if (xr_agent_attach(name, &(xr_agent_opts){.label = mine ? "owner" : "stranger",
						    .capacity = 8},
			    &a) < 0)
		return 2;
	if (xr_agent_claim(a, other_first, other_first + 7, 0, NULL) < 0) {
		fprintf(stderr, "claim: %s\n", xr_last_reason());
		return 3;
	}
	xr_stream_facts sf;
	xr_reader_stream_facts(xr_agent_reader(a), &sf);
	if (xr_exp_template_init(&t, &sf.shape) < 0)
		return 4;
	uint64_t until = xr__now_ns() + 20000000000ull;
	while (counted < 300 && xr__now_ns() < until) {
		xr_obs_batch b;
		int n = xr_agent_recv(a, 1, 4096, 100000000, &b);
		if (n < 0)
			return 5;
		for (int i = 0; i < n; i++) {
			struct rec r = decode(&t, b.frames[i]);
			bool asks = r.action == -1 && !r.done && !r.truncated;
			act[i] = r.best;
			seen++;
			if (!counted && !asks && mine)
				continue; /* the claim has not reached the shard yet */
			counted++;
			held += asks;
			applied += r.applied_by == XR_SRC_AGENT;
		}
		if (n > 0 && xr_agent_send(a, &b, act) < 0)
			return 6;
	}
	xr_agent_detach(a);
	if (counted < 300) {
		fprintf(stderr, "uid %u: %u records, %u of them after the claim took\n",
			(unsigned)getuid(), seen, counted);
		return 7;
	}
	/* The owner's seats wait for it; the stranger's claim holds nothing. */
	if (mine ? (held < counted / 2 || applied == 0) : (held != 0 || applied != 0)) {
		fprintf(stderr, "uid %u: %u records, %u counted, %u held, %u applied\n",
			(unsigned)getuid(), seen, counted, held, applied);
		return 8;
	}
	return 0;
}

static void foreign_games(void)
{
	struct engine e;

	if (geteuid() != 0) {
		printf("foreign_games: skipped (needs root to run as two other uids)\n");
		return;
	}
	engine_start(&e, "agents-uids", 4, 1, 20, XR_FALLBACK_NOOP);
	CHECK_EQ(run_as(OTHER, OTHER, other_creates, e.name), 0);
	other_first = 4; /* after the engine's 4: ids are given in order */
	/* A stranger's claim of them is taken (nothing of its uid's or the
	 * engine's is there to conflict over) but holds nothing: the
	 * policy plays on, whatever it writes. */
	CHECK_EQ(run_as(NOBODY, NOBODY, claim_and_act, e.name), 0);
	/* Their owner's agent acts for them. */
	CHECK_EQ(run_as(OTHER, OTHER, claim_and_act, e.name), 0);
	printf("foreign_games: an agent of uid %u claiming uid %u's games acts for none of them; "
	       "their owner's does\n",
	       NOBODY, OTHER);
	engine_stop(&e);
}

/* The engine stopping ends an agent's wait with XR_ECLOSED, soon. */
struct waiter {
	xr_agent *a;
	_Atomic int rc;
	_Atomic uint64_t at;
};

static void *wait_main(void *p)
{
	struct waiter *w = p;
	xr_obs_batch b;
	int n;

	while ((n = xr_agent_recv(w->a, 1, 64, -1, &b)) > 0)
		CHECK_RC(xr_agent_release_batch(w->a, &b), 0);
	xr_store_relaxed(&w->at, xr__now_ns());
	xr_store_release(&w->rc, n);
	return NULL;
}

static void engine_gone(void)
{
	struct engine e;
	struct waiter w = {.rc = 1};

	engine_start(&e, "agents-gone", 4, 1, 20, XR_FALLBACK_NOOP);
	CHECK_RC(xr_agent_attach(e.name, &(xr_agent_opts){.label = "waits", .capacity = 4}, &w.a),
		 0);
	CHECK_RC(xr_agent_claim(w.a, 0, 3, 0, NULL), 0);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, wait_main, &w) == 0);
	uint64_t t0 = xr__now_ns();
	engine_stop(&e);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_EQ(xr_load_acquire(&w.rc), XR_ECLOSED);
	double ms = (double)(xr_load_relaxed(&w.at) - t0) / 1e6;
	/* Within a second (the bound; the engine's stop itself, its
	 * last records included, is most of it), five under TSan, whose
	 * engine stops several times slower. */
	CHECK(ms < (XR_TEST_TSAN ? 5000 : 1000));
	printf("engine_gone: the agent's wait ended with XR_ECLOSED %.1f ms after the engine "
	       "stopped\n",
	       ms);
	xr_agent_detach(w.a);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	turns(40, 30);
	turns(1000, 5);
	bad_answers();
	conflicts();
	killed_agent();
	handoff();
	ticks();
	delay();
	foreign_games();
	engine_gone();
	printf("ok\n");
	return 0;
}
