/* SPDX-License-Identifier: MIT */
/*
 * A shard turns game steps into Experience records in the ring: every record
 * verifies and has the game's shapes; its action is legal under the mask in
 * the same record; per (game, player) turns count up by one within an
 * episode, a done/truncated record ends it and the next record starts at
 * turn 0; consecutive records pair into transitions (a record's `applied`
 * is the previous record's `action`, by POLICY; an episode's first record
 * says -1, NONE); terminal rewards are in {-1, 0, +1}; the shard's counts match what
 * a reader sees; and the same seed gives the same records. A shard waiting
 * on a full lossless ring keeps the arena's heartbeat going.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "engine/engine.h"
#include "shm/arena_priv.h"
#include "engine/host.h"
#include "engine/shard.h"
#include "ring_helpers.h"
#include "util/clock.h"

#define GAMES 40
#define PLAYERS 2
#define RECORDS 30000

struct track {
	int64_t turn; /* last turn seen, -1 = none */
	bool ended;
	int32_t action; /* the last record's */
};

/* An arena whose one Experience stream is shaped for the grid game under
 * cfg (u8 observations); ss gives its policy, ring size and rings. *t gets
 * the record template, name the arena's name ("t<pid>-tag"). */
static xr_arena *grid_arena(const char *tag, const xr_game_config *cfg, xr_stream_spec ss,
			    xr_exp_template *t, char name[64])
{
	xr_arena *a;

	ss.kind = XR_RECORD_EXPERIENCE;
	CHECK_RC(xr_shard_shape(xr_game_builtin_grid(), cfg, XR_DTYPE_U8, &ss.shape), 0);
	CHECK_RC(xr_exp_template_init(t, &ss.shape), 0);
	xr_test_name(name, 64, tag);
	xr_arena_spec spec = {.name = name, .streams = &ss, .n_streams = 1,
			      .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE};
	CHECK_RC(xr_arena_create(&spec, &a), 0);
	xr_test_serve(a);
	return a;
}

static uint64_t run(uint64_t seed, uint64_t *episodes_seen)
{
	char name[64];
	xr_game_config cfg = {.board_h = 8, .board_w = 8, .players = PLAYERS, .turn_limit = 40,
			      .seed = seed};
	const xr_game_vtable *vt = xr_game_builtin_grid();
	xr_exp_template t;
	xr_arena *a = grid_arena(seed == 7 ? "shard-a" : "shard-b", &cfg,
				 (xr_stream_spec){.policy = XR_POLICY_LOSSLESS,
						  .ring_bytes = 64u << 20},
				 &t, name);

	CHECK_EQ(t.shape.obs_dims[0], 9);
	CHECK_EQ(t.shape.obs_dims[1], 8);
	CHECK_EQ(t.shape.mask_len, 8 * 8 * 4 + 1);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r;
	CHECK_RC(xr_reader_attach(name, NULL, &r), 0);

	/* The ring holds all of it, so one thread can write, then read. */
	struct xr_shard_opts o = {.vt = vt, .cfg = cfg, .games = GAMES, .first_game_id = 100,
				  .obs_dtype = XR_DTYPE_U8, .count = RECORDS};
	struct xr_shard_result res;
	CHECK_RC(xr_shard_run(w, &t, &o, &res), 0);
	CHECK_EQ(res.records, RECORDS);
	CHECK_EQ(res.dropped, 0);

	struct track tr[GAMES][PLAYERS];
	for (int g = 0; g < GAMES; g++)
		for (int p = 0; p < PLAYERS; p++)
			tr[g][p] = (struct track){.turn = -1};
	uint64_t got = 0, hash = 1469598103934665603ull, terminals = 0, paired = 0;
	xr_batch b;
	int n;
	while ((n = xr_reader_read(r, 1, 1000, 0, &b)) > 0) {
		const xr_frame *f = b.first;
		/* Fixed shapes: one stride for the whole batch (invariant 7). */
		CHECK(b.count == 1 || b.stride != 0);
		for (int i = 0; i < n; i++, f = xr_frame_next(f)) {
			xr_exp_view v;
			CHECK_RC(xr_exp_view_init(&v, xr_frame_data(f), f->len), 0);
			CHECK_EQ(v.f.seq, f->seq);
			CHECK(v.f.game_id >= 100 && v.f.game_id < 100 + GAMES);
			CHECK(v.f.player_id < PLAYERS);
			CHECK_EQ(v.obs_ndim, 3);
			CHECK_EQ(v.mask_len, t.shape.mask_len);
			CHECK(v.f.action >= 0 && (uint32_t)v.f.action < v.mask_len);
			if (v.mask[v.f.action] != 1)
				FAILF("seq %llu: action %d is not legal in its own mask",
				      (unsigned long long)v.f.seq, v.f.action);
			struct track *t1 = &tr[v.f.game_id - 100][v.f.player_id];
			int64_t want = t1->ended || t1->turn < 0 ? 0 : t1->turn + 1;
			if ((int64_t)v.f.turn != want)
				FAILF("game %u player %u: turn %u after %lld%s", v.f.game_id,
				      v.f.player_id, v.f.turn, (long long)t1->turn,
				      t1->ended ? " (episode ended)" : "");
			/* The step between two records of a pair applied what the
			 * first one's action said; the first record of an episode
			 * follows no step. */
			if (want == 0 && (v.f.applied != -1 || v.f.applied_by != XR_SRC_NONE))
				FAILF("game %u player %u turn 0: applied %d by %u, want -1 by NONE",
				      v.f.game_id, v.f.player_id, v.f.applied, v.f.applied_by);
			if (want > 0 && (v.f.applied != t1->action || v.f.applied_by != XR_SRC_POLICY))
				FAILF("game %u player %u turn %u: applied %d by %u, but the record "
				      "before chose %d (POLICY)", v.f.game_id, v.f.player_id, v.f.turn,
				      v.f.applied, v.f.applied_by, t1->action);
			paired += want > 0;
			t1->turn = v.f.turn;
			t1->action = v.f.action;
			t1->ended = v.f.done || v.f.truncated;
			if (t1->ended) {
				terminals++;
				CHECK(v.f.reward == 1.0f || v.f.reward == -1.0f || v.f.reward == 0.0f);
			} else {
				CHECK(v.f.reward == 0.0f);
			}
			/* Everything but the timestamp is a function of the seed. */
			const uint8_t *p = xr_frame_data(f);
			for (uint32_t k = 0; k < f->len; k++) {
				uint8_t byte = p[k];
				if (k >= t.off_t_ns && k < t.off_t_ns + 8)
					byte = 0;
				hash = (hash ^ byte) * 1099511628211ull;
			}
		}
		got += (uint64_t)n;
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	CHECK_RC(n, 0);
	CHECK_EQ(got, RECORDS);
	CHECK(paired > RECORDS / 2);
	/* Each finished episode emits one terminal record per player still in
	 * it; at least one per episode, at most PLAYERS. */
	CHECK(res.episodes > 0);
	CHECK(terminals >= res.episodes && terminals <= res.episodes * PLAYERS + GAMES * PLAYERS);
	*episodes_seen = res.episodes;
	xr_reader_detach(r);
	xr_test_destroy(a);
	return hash;
}

/* Turn deadlines: no game takes a turn before its deadline. With a 2 ms
 * tick, 25 turns of every game cannot finish in less than 24 ticks. (A lower
 * bound only: how late a slow machine runs is not this test's business.) */
static void deadlines(void)
{
	char name[64];
	xr_game_config cfg = {.board_h = 6, .board_w = 6, .players = 2, .turn_limit = 1000,
			      .seed = 3};
	const xr_game_vtable *vt = xr_game_builtin_grid();
	xr_exp_template t;
	const uint64_t tick = 2000000, turns = 25, games = 20;
	xr_arena *a = grid_arena("shard-tick", &cfg,
				 (xr_stream_spec){.policy = XR_POLICY_LOSSY, .ring_bytes = 8u << 20},
				 &t, name);
	struct xr_shard_opts o = {.vt = vt, .cfg = cfg, .games = (uint32_t)games,
				  .obs_dtype = XR_DTYPE_U8, .count = turns * games * 2,
				  .tick_ns = tick};
	struct xr_shard_result res;
	CHECK_RC(xr_shard_run(xr_test_writer(a), &t, &o, &res), 0);
	CHECK_EQ(res.records, turns * games * 2);
	/* A turn is a step, or the emission of an episode's terminal records;
	 * every game takes one per tick, so this many ticks have passed. */
	uint64_t ticks = (res.steps + res.episodes) / games;
	CHECK(ticks >= turns - 2);
	if (res.elapsed_ns < (ticks - 1) * tick)
		FAILF("%llu turns of 2 ms took %.1f ms: turns ran before their deadlines",
		      (unsigned long long)ticks, (double)res.elapsed_ns / 1e6);
	printf("shard: %llu turns at a 2 ms tick took %.1f ms\n", (unsigned long long)ticks,
	       (double)res.elapsed_ns / 1e6);
	xr_test_destroy(a);
}

/* Shards: each thread owns its share of the games and writes only its own
 * ring; together they cover every game once. */
static void shards(void)
{
	char name[64];
	xr_game_config cfg = {.board_h = 6, .board_w = 6, .players = 2, .seed = 5};
	const xr_game_vtable *vt = xr_game_builtin_grid();
	xr_exp_template t;
	enum { G = 11, PER_SHARD = 3000 };
	xr_arena *a = grid_arena("shards", &cfg,
				 (xr_stream_spec){.policy = XR_POLICY_LOSSLESS,
						  .ring_bytes = 16u << 20, .n_rings = 3},
				 &t, name);
	xr_reader *r;
	CHECK_RC(xr_reader_attach(name, NULL, &r), 0);
	struct xr_engine_opts eo = {
		.shard = {.vt = vt, .cfg = cfg, .games = G, .first_game_id = 0,
			  .obs_dtype = XR_DTYPE_U8, .count = 3 * PER_SHARD},
		.shards = 3,
		.numa_node = -1,
	};
	struct xr_shard_result res;
	CHECK_RC(xr_engine_run(a, &t, &eo, &res), 0);
	CHECK_EQ(res.records, 3 * PER_SHARD);

	/* Shares of 11 over 3 shards: 4, 4, 3 games, ids 0-3, 4-7, 8-10. */
	static const uint32_t lo[3] = {0, 4, 8}, hi[3] = {4, 8, 11};
	uint64_t per_ring[3] = {0}, seen_games = 0;
	xr_batch b;
	int n;
	while ((n = xr_reader_read(r, 1, 1000, 0, &b)) > 0) {
		const xr_frame *f = b.first;
		CHECK(b.ring < 3);
		for (int i = 0; i < n; i++, f = xr_frame_next(f)) {
			xr_exp_view v;
			CHECK_RC(xr_exp_view_init(&v, xr_frame_data(f), f->len), 0);
			if (v.f.game_id < lo[b.ring] || v.f.game_id >= hi[b.ring])
				FAILF("ring %u holds game %u, outside its shard's %u..%u", b.ring,
				      v.f.game_id, lo[b.ring], hi[b.ring] - 1);
			seen_games |= 1ull << v.f.game_id;
		}
		per_ring[b.ring] += (uint64_t)n;
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	CHECK_RC(n, 0);
	for (int k = 0; k < 3; k++)
		CHECK_EQ(per_ring[k], PER_SHARD);
	CHECK_EQ(seen_games, (1ull << G) - 1);
	printf("shard: 3 shards wrote %d records each, every game in its own shard's ring\n",
	       PER_SHARD);
	xr_reader_detach(r);
	xr_test_destroy(a);
}

/* Backpressure: with a reader that does not read, a lossless shard pauses
 * its games once half the ring is unread (high watermark 0.5), not when the
 * ring is full; it resumes once the reader brings the backlog under 0.25,
 * and nothing is lost. */
struct bp_reader {
	const char *name;
	const struct xr_ring_desc *rd;
	uint64_t want, got, backlog_at_pause, cap;
	atomic_int *writer_done;
	pthread_barrier_t *attached;
};

static void *bp_reader_main(void *p)
{
	struct bp_reader *br = p;
	xr_reader *r;
	xr_reader_stats s;
	xr_batch b;
	uint64_t next = 0;

	CHECK_RC(xr_reader_attach(br->name, NULL, &r), 0);
	pthread_barrier_wait(br->attached);
	/* Read nothing until the writer stops for us (an observable state,
	 * polled; no timed sleep). */
	while (atomic_load_explicit(&br->rd->full_waits, memory_order_relaxed) == 0 &&
	       !atomic_load(br->writer_done))
		sched_yield();
	CHECK_RC(xr_reader_stats_get(r, &s), 0);
	br->backlog_at_pause = s.lag_bytes;
	while (br->got < br->want) {
		int n = xr_reader_read(r, 1, 512, 1000000000, &b);
		CHECK(n > 0);
		const xr_frame *f = b.first;
		for (int i = 0; i < n; i++, f = xr_frame_next(f)) {
			CHECK_EQ(f->seq, next);
			next++;
		}
		br->got += (uint64_t)n;
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	xr_reader_detach(r);
	return NULL;
}

static void watermarks(void)
{
	char name[64];
	xr_game_config cfg = {.board_h = 6, .board_w = 6, .players = 2, .seed = 9};
	const xr_game_vtable *vt = xr_game_builtin_grid();
	xr_exp_template t;
	pthread_barrier_t attached;
	pthread_t th;
	atomic_int writer_done = 0;
	enum { N = 6000 };
	xr_arena *a = grid_arena("watermark", &cfg,
				 (xr_stream_spec){.policy = XR_POLICY_LOSSLESS, .ring_bytes = 1u << 20},
				 &t, name);
	struct bp_reader br = {.name = name, .rd = &a->hdr->rings[0], .want = N,
			       .cap = a->hdr->rings[0].capacity, .writer_done = &writer_done,
			       .attached = &attached};
	pthread_barrier_init(&attached, NULL, 2);
	CHECK(pthread_create(&th, NULL, bp_reader_main, &br) == 0);
	pthread_barrier_wait(&attached);
	struct xr_shard_opts o = {.vt = vt, .cfg = cfg, .games = 10, .obs_dtype = XR_DTYPE_U8,
				  .count = N, .high_watermark = 0.5, .low_watermark = 0.25};
	struct xr_shard_result res;
	CHECK_RC(xr_shard_run(xr_test_writer(a), &t, &o, &res), 0);
	atomic_store(&writer_done, 1);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&attached);

	CHECK_EQ(br.got, N);
	CHECK(res.pauses >= 1);
	/* Paused at half the ring (checked once per 64-record publish), well
	 * before full. */
	uint64_t slack = 64ull * (t.size + 64);
	if (br.backlog_at_pause > br.cap / 2 + slack || br.backlog_at_pause < br.cap / 2)
		FAILF("backlog when the shard paused: %llu bytes of a %llu-byte ring; want about half",
		      (unsigned long long)br.backlog_at_pause, (unsigned long long)br.cap);
	printf("shard: paused %llu time(s) at a backlog of %.0f%% (high watermark 50%%), "
	       "nothing lost\n", (unsigned long long)res.pauses,
	       100.0 * (double)br.backlog_at_pause / (double)br.cap);
	xr_test_destroy(a);
}

/* Heartbeat under backpressure: a lossless shard whose ring is full waits in
 * reserve() for its reader, and the engine's heartbeat (its host's
 * housekeeping, once per engine) still advances while it waits: the engine
 * is alive; its reader is not reading. Then the reader reads, the shard
 * finishes, and nothing is lost. */
struct hb_host {
	struct xr_host *h;
	const xr_exp_template *t;
	struct xr_engine_opts eo;
	struct xr_shard_result res;
	int rc;
};

static void *hb_host_main(void *p)
{
	struct hb_host *hh = p;

	hh->rc = xr_host_run_games(hh->h, hh->t, &hh->eo, &hh->res);
	return NULL;
}

static void heartbeat_while_full(void)
{
	char name[64], why[256];
	xr_game_config cfg = {.board_h = 6, .board_w = 6, .players = 2, .seed = 11};
	const xr_game_vtable *vt = xr_game_builtin_grid();
	xr_exp_template t;
	xr_reader_stats s0, s1;
	xr_reader *r;
	xr_batch b;
	pthread_t th;
	struct xr_host *h;
	const uint64_t N = 2000;
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSLESS, .ring_bytes = 64u << 10,
			     .kind = XR_RECORD_EXPERIENCE};

	CHECK_RC(xr_shard_shape(vt, &cfg, XR_DTYPE_U8, &ss.shape), 0);
	CHECK_RC(xr_exp_template_init(&t, &ss.shape), 0);
	xr_test_name(name, sizeof(name), "shard-hb");
	xr_arena_spec spec = {.name = name, .streams = &ss, .n_streams = 1,
			      .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE};
	if (xr_host_create(&spec, NULL, NULL, &h, why, sizeof(why)) < 0)
		FAILF("xr_host_create: %s", why);
	xr_arena *a = xr_host_arena(h);
	CHECK_RC(xr_reader_attach(name, NULL, &r), 0);
	const struct xr_ring_desc *rd = &a->hdr->rings[0];
	_Atomic uint64_t *hb = &a->hdr->heartbeat_ns;
	/* No watermarks: the shard waits only in reserve(), for a full ring. */
	struct hb_host hh = {.h = h, .t = &t,
			     .eo = {.shard = {.vt = vt, .cfg = cfg, .games = 4,
					      .obs_dtype = XR_DTYPE_U8, .count = N},
				    .shards = 1, .numa_node = -1}};
	CHECK(N * t.size > rd->capacity);
	CHECK(pthread_create(&th, NULL, hb_host_main, &hh) == 0);

	/* The reader reads nothing until the writer waits for it. */
	uint64_t deadline = xr__now_ns() + 5000000000ull;
	while (atomic_load_explicit(&rd->full_waits, memory_order_relaxed) == 0) {
		if (xr__now_ns() > deadline)
			FAILF("the shard never found its %llu-byte ring full within 5 s",
			      (unsigned long long)rd->capacity);
		sched_yield();
	}
	CHECK_RC(xr_reader_stats_get(r, &s0), 0);
	CHECK(s0.written > 0 && s0.written < N);

	/* While it waits, the heartbeat moves on: twice within 2 s (the host
	 * beats every 100 ms). */
	uint64_t t0 = xr__now_ns(), last = atomic_load_explicit(hb, memory_order_relaxed);
	uint64_t first = last, beats = 0;
	deadline = t0 + 2000000000ull;
	while (beats < 2) {
		if (xr__now_ns() > deadline)
			FAILF("heartbeat advanced %llu time(s) in 2 s while the shard waited for "
			      "its reader; want 2", (unsigned long long)beats);
		uint64_t now = atomic_load_explicit(hb, memory_order_relaxed);
		if (now != last) {
			CHECK(now > last);
			beats++;
			last = now;
		}
		sched_yield();
	}
	uint64_t dt = xr__now_ns() - t0;
	/* ...and it was still waiting: nothing written meanwhile. */
	CHECK_RC(xr_reader_stats_get(r, &s1), 0);
	CHECK_EQ(s1.written, s0.written);

	uint64_t next = 0;
	int n;
	while (next < N) {
		n = xr_reader_read(r, 1, 512, 1000000000, &b);
		if (n <= 0)
			FAILF("read after %llu of %llu records: %d (%s)", (unsigned long long)next,
			      (unsigned long long)N, n, xr_strerror(n));
		const xr_frame *f = b.first;
		for (int i = 0; i < n; i++, f = xr_frame_next(f)) {
			CHECK_EQ(f->seq, next);
			next++;
		}
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	pthread_join(th, NULL);
	CHECK_RC(hh.rc, 0);
	CHECK_EQ(hh.res.records, N);
	CHECK_EQ(hh.res.dropped, 0);
	CHECK(hh.res.pauses >= 1);
	CHECK_RC(xr_reader_read(r, 1, 512, 0, &b), 0);
	printf("host: ring full after %llu records; heartbeat advanced twice in %.0f ms "
	       "(%.0f ms apart) while the shard waited; all %llu records read in order\n",
	       (unsigned long long)s0.written, (double)dt / 1e6, (double)(last - first) / 2e6,
	       (unsigned long long)N);
	xr_host_destroy(h);
	/* The host closed the arena before hanging up: a clean end. */
	CHECK_RC(xr_reader_read(r, 1, 512, 1000000000, &b), XR_ECLOSED);
	xr_reader_detach(r);
}

int main(void)
{
	uint64_t e1, e2, e3;
	uint64_t h1 = run(7, &e1), h2 = run(7, &e2), h3 = run(8, &e3);

	CHECK_EQ(h1, h2);
	CHECK_EQ(e1, e2);
	CHECK(h1 != h3);
	deadlines();
	shards();
	watermarks();
	heartbeat_while_full();
	printf("shard: %d records per run, %llu episodes, deterministic per seed\n", RECORDS,
	       (unsigned long long)e1);
	return 0;
}
