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

#define BOARD 8
#define PLAYERS 2

struct engine {
	char name[64];
	struct xr_host *h;
	xr_exp_template t;
	xr_stream_spec ss;
	xr_arena_spec spec;
	xr_server_opts so;
	uint32_t allow[1];
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
static void engine_start(struct engine *e, const char *tag, uint32_t games, uint32_t shards,
			 double timeout_ms, uint32_t fallback)
{
	char why[512];
	const xr_game_vtable *vt = xr_game_builtin_grid();
	xr_game_config cfg = {.board_h = BOARD, .board_w = BOARD, .players = PLAYERS, .seed = 1};

	memset(e, 0, sizeof(*e));
	xr_test_name(e->name, sizeof(e->name), tag);
	e->ss = (xr_stream_spec){.policy = XR_POLICY_LOSSLESS, .n_rings = shards,
				 .ring_bytes = 4u << 20, .kind = XR_RECORD_EXPERIENCE};
	CHECK_RC(xr_shard_shape(vt, &cfg, XR_DTYPE_U8, &e->ss.shape), 0);
	CHECK_RC(xr_exp_template_init(&e->t, &e->ss.shape), 0);
	e->spec = (xr_arena_spec){.name = e->name, .streams = &e->ss, .n_streams = 1,
				  .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE};
	e->allow[0] = NOBODY;
	e->so = (xr_server_opts){.allow_uid = e->allow, .n_allow_uid = 1};
	e->eo = (struct xr_engine_opts){
		.shard = {.vt = vt, .cfg = cfg, .games = games, .obs_dtype = XR_DTYPE_U8,
			  .high_watermark = 0.9, .low_watermark = 0.5},
		.shards = shards, .numa_node = -1};
	e->shape = (struct xr_gdir_shape){.vt = vt, .board_h = BOARD, .board_w = BOARD,
					  .players = PLAYERS, .obs_dtype = XR_DTYPE_U8,
					  .stream_name = XR_DEFAULT_STREAM};
	e->go = (struct xr_gdir_opts){.shards = shards, .shapes = &e->shape, .n_shapes = 1,
				      .start = games, .start_seed = 1, .max_agents = 8,
				      .fallback = fallback,
				      .action_timeout_ns = (uint64_t)(timeout_ms * 1e6)};
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
	uint64_t answered;
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
		ac->answered += (uint64_t)n;
	}
	return NULL;
}

static int32_t answer_best(const struct rec *r, uint32_t i)
{
	(void)i;
	return r->best;
}

static void turns(void)
{
	struct engine e;
	struct log lg = {0};
	struct actor ac = {.answer = answer_best};
	const uint32_t games = 40, want = 30;

	engine_start(&e, "agents-turns", games, 2, 5000, XR_FALLBACK_NOOP);
	xr_reader *tr = trainer(&e);
	/* Some records of the policy's first. */
	while (lg.n < 4 * games * PLAYERS)
		drain(tr, &e.t, &lg, 100);
	xr_agent_opts ao = {.label = "best", .capacity = 64};
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
		static uint32_t agent_recs[64][PLAYERS];
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
	xr_store_relaxed(&ac.stop, 1);
	CHECK(pthread_join(th, NULL) == 0);
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
	printf("turns: %llu transitions of the agent's, %llu of the policy's, %llu episode "
	       "starts; round trip p50 %llu us p99 %llu us\n",
	       (unsigned long long)by_agent, (unsigned long long)by_policy,
	       (unsigned long long)starts, (unsigned long long)st.rtt_p50_ns / 1000,
	       (unsigned long long)st.rtt_p99_ns / 1000);
	xr_reader_detach(tr);
	engine_stop(&e);
	free(lg.r);
}

/* By game: 0 right, 1 another record's tag, 2 out of range, 3 illegal,
 * 4 never. */
static _Atomic uint64_t *scribble_page;
static int32_t answer_bad(const struct rec *r, uint32_t i)
{
	(void)i;
	switch (r->game % 5) {
	case 0: return r->best;
	case 2: return 1000000;
	case 3: return r->illegal;
	default: return r->best;
	}
}

__attribute__((unused)) static void bad_answers(void)
{
	struct engine e;
	struct log lg = {0};
	const uint32_t games = 20;

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

	/* The bad agent: by hand, for its page's raw writes. */
	uint64_t seen[5] = {0};
	static int32_t act[4096];
	xr_obs_batch b;
	for (int rounds = 0; rounds < 200; rounds++) {
		int n = xr_agent_recv(a, 1, 4096, 100000000, &b);
		CHECK(n >= 0);
		if (n == 0)
			continue;
		for (int i = 0; i < n; i++) {
			struct rec r = decode(&e.t, b.frames[i]);
			act[i] = answer_bad(&r, (uint32_t)i);
			seen[r.game % 5]++;
		}
		if (rounds % 2) {
			CHECK_RC(xr_agent_send(a, &b, act), 0);
		} else {
			/* Games 1 (mod 5): the right action under another
			 * record's tag; 4: nothing. The others as above. */
			for (uint32_t i = 0; i < b.count; i++) {
				struct rec r = decode(&e.t, b.frames[i]);
				if (r.game % 5 == 1)
					((xr_frame *)b.frames[i])->seq += 0; /* read-only: see below */
			}
			CHECK_RC(xr_agent_send(a, &b, act), 0);
		}
		drain(tr, &e.t, &lg, 0);
	}
	(void)scribble_page;
	xr_agent_stats st;
	xr_agent_detach(a);
	xr_store_relaxed(&gac.stop, 1);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_RC(xr_agent_stats_get(good, &st), 0);
	xr_agent_detach(good);
	(void)seen;
	(void)st;
	xr_reader_detach(tr);
	engine_stop(&e);
	free(lg.r);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	turns();
	printf("ok\n");
	return 0;
}
