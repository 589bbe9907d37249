/* SPDX-License-Identifier: MIT */
/*
 * Games at runtime, through the control socket of an engine running in this
 * process (host, shards, game directory) and the public API
 * (xring/games.h), read back by an ordinary reader:
 *
 *   lifecycle     created games write records under their ids; a game reset
 *                 to a seed ends its episode with truncated records (action
 *                 -1) and then writes, turn for turn, the bytes a new game of
 *                 that seed writes; consecutive records of a (game, player)
 *                 pair into transitions: each record's `applied` is the
 *                 record before's `action`, by POLICY (a final record's
 *                 too), and an episode's first says -1, NONE; a destroyed game's players each get a
 *                 truncated last record and nothing after; the list shows
 *                 config, owner, turns and episodes; owned games go when
 *                 their handle closes.
 *   refusals      --max-games names the cap and the count; the per-uid
 *                 token bucket refuses with the retry time; a shape no
 *                 stream carries is refused with the shapes; unknown ids;
 *                 (root) another uid's games may not be destroyed or reset,
 *                 and its share is capped; a refused request changes
 *                 nothing.
 *   garbage       malformed game requests (counts, flags, NUL, lengths,
 *                 before ATTACH) get ERROR and a hangup and change nothing;
 *                 the engine serves on.
 *   stop_ends_episodes  on stop every episode in flight ends with a
 *                 truncated record: a lossless reader sees every end; the
 *                 records pair as in lifecycle.
 *   lazy_observations  --observe subscribed: nothing written while nobody
 *                 reads; then only the pairs readers' filters select; what a
 *                 game plays does not depend on who reads it.
 *   reset_after_create  a game created and reset while its shard is in the
 *                 middle of taking resets (paused there for a lossless
 *                 reader) is reset, not the reset dropped.
 *   reset_flood   5000 resets of one game while its shard is paused are all
 *                 accepted and cost the shard one reset, to the last seed:
 *                 the game then writes what a new game of that seed writes.
 *   request_flood a connection sending game requests as fast as it can, past
 *                 its uid's rate, is refused once per retry time (then not
 *                 read meanwhile), not once per message: the control
 *                 thread does not spin on refusals. It stays connected.
 *   pooled_reset_fails  a creation refused because a pooled instance's reset
 *                 failed leaks no instance.
 *   forked_child  a handle's owned games go when its opener closes it, even
 *                 while a forked child (a data loader's worker, say) still
 *                 holds a copy of its socket; the child's copy refuses
 *                 requests and its close leaves the parent's games alone.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdlib.h>

#include "engine/host.h"
#include "shm/arena_priv.h"
#include "util/atomics.h"
#include "peer_helpers.h"
#include "xring/games.h"

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
	/* What the arena's stats said at the end, summed over the shards. */
	uint64_t st_created, st_destroyed, st_resets, st_finals, st_lat_count;
	pthread_t th;
	int rc;
};

static void *engine_main(void *p)
{
	struct engine *e = p;

	e->rc = xr_host_run_games(e->h, &e->t, &e->eo, &e->res);
	return NULL;
}

/* An engine of 8x8 grid games, `start` of them at start, on `shards`
 * shards, ticking every tick_ms (0: as fast as the ring allows), serving
 * games with go's limits; NOBODY is allowed in. */
/* The game engine_start() serves: the grid, unless a test sets another. */
static const xr_game_vtable *test_vt;
/* The board and players engine_start() serves, unless a test sets others. */
static uint32_t test_board = BOARD, test_players = PLAYERS;

static void engine_start(struct engine *e, const char *tag, uint32_t start, uint32_t shards,
			 double tick_ms, const struct xr_gdir_opts *limits)
{
	char why[512];
	const xr_game_vtable *vt = test_vt ? test_vt : xr_game_builtin_grid();
	xr_game_config cfg = {.board_h = test_board, .board_w = test_board,
			      .players = test_players, .seed = 1};

	memset(e, 0, sizeof(*e));
	xr_test_name(e->name, sizeof(e->name), tag);
	e->ss = (xr_stream_spec){.policy = XR_POLICY_LOSSLESS, .n_rings = shards,
				 .ring_bytes = 1u << 20, .kind = XR_RECORD_EXPERIENCE};
	CHECK_RC(xr_shard_shape(vt, &cfg, XR_DTYPE_U8, &e->ss.shape), 0);
	CHECK_RC(xr_exp_template_init(&e->t, &e->ss.shape), 0);
	e->spec = (xr_arena_spec){.name = e->name, .streams = &e->ss, .n_streams = 1,
				  .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE};
	e->allow[0] = NOBODY;
	/* Requests of this uid: plenty, for the garbage below. */
	e->so = (xr_server_opts){.allow_uid = e->allow, .n_allow_uid = 1,
				 .max_requests_per_uid = 1000000};
	e->eo = (struct xr_engine_opts){
		.shard = {.vt = vt, .cfg = cfg, .games = start, .obs_dtype = XR_DTYPE_U8,
			  .tick_ns = (uint64_t)(tick_ms * 1e6), .high_watermark = 0.9,
			  .low_watermark = 0.5},
		.shards = shards, .numa_node = -1};
	e->shape = (struct xr_gdir_shape){.vt = vt, .board_h = test_board,
					  .board_w = test_board, .players = test_players,
					  .obs_dtype = XR_DTYPE_U8,
					  .stream_name = XR_DEFAULT_STREAM};
	if (limits)
		e->go = *limits;
	e->go.shards = shards;
	e->go.shapes = &e->shape;
	e->go.n_shapes = 1;
	e->go.start = start;
	e->go.start_seed = 1;
	CHECK_RC(xr_host_create(&e->spec, &e->so, &e->go, &e->h, why, sizeof(why)), 0);
	CHECK(pthread_create(&e->th, NULL, engine_main, e) == 0);
}

static void engine_stop(struct engine *e)
{
	xr_host_stop(e->h);
	CHECK(pthread_join(e->th, NULL) == 0);
	CHECK_RC(e->rc, 0);
	const struct xr_arena *a = xr_host_arena(e->h);
	for (uint32_t k = 0; k < e->ss.n_rings; k++) {
		const struct xr_game_stats *g = &a->hdr->games[a->lay.streams[0].first_ring + k];
		e->st_created += xr_load_relaxed(&g->created);
		e->st_destroyed += xr_load_relaxed(&g->destroyed);
		e->st_resets += xr_load_relaxed(&g->resets);
		e->st_finals += xr_load_relaxed(&g->finals);
		e->st_lat_count += xr_load_relaxed(&g->creation.count);
	}
	xr_host_destroy(e->h);
}

static xr_games *games_open(const struct engine *e)
{
	xr_games *c;
	int rc = xr_games_open(e->name, NULL, &c);

	if (rc < 0)
		FAILF("xr_games_open(%s): %s (%s)", e->name, xr_strerror(rc), xr_last_reason());
	return c;
}

static uint32_t live_games(xr_games *c)
{
	uint32_t total = UINT32_MAX;

	int rc = xr_games_list(c, 0, NULL, 0, &total);
	if (rc < 0)
		FAILF("list: %s (%s)", xr_strerror(rc), xr_last_reason());
	return total;
}

/* A record's fields, and a digest of its observation and mask. */
struct rec {
	uint64_t seq;
	uint32_t game, player, turn;
	int32_t action;
	float reward;
	bool done, truncated;
	int32_t applied;
	uint8_t applied_by;
	uint64_t digest;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

#define MAX_RECS 200000

struct log {
	struct rec *r;
	uint32_t n;
};

/* Reads whatever is there (up to a batch), into lg. Returns how many. */
static uint32_t read_some(xr_reader *r, struct log *lg)
{
	xr_batch b;
	int n = xr_reader_read(r, 1, 1024, 20 * (int64_t)MS, &b);

	if (n == 0)
		return 0;
	if (n < 0)
		FAILF("read: %s (%s)", xr_strerror(n), xr_last_reason());
	const xr_frame *f = b.first;
	for (uint32_t i = 0; i < b.count; i++, f = b.frames ? NULL : xr_frame_next(f)) {
		xr_exp_view v;
		if (b.frames)
			f = b.frames[i]; /* filtered: not back to back */
		CHECK_RC(xr_exp_view_init(&v, xr_frame_data(f), f->len), 0);
		CHECK(lg->n < MAX_RECS);
		struct rec *o = &lg->r[lg->n++];
		*o = (struct rec){.seq = v.f.seq, .game = v.f.game_id, .player = v.f.player_id,
				  .turn = v.f.turn,
				  .action = v.f.action, .reward = v.f.reward, .done = v.f.done,
				  .truncated = v.f.truncated, .applied = v.f.applied,
				  .applied_by = v.f.applied_by};
		o->digest = fnv(fnv(0xcbf29ce484222325ull, v.obs, v.obs_bytes), v.mask, v.mask_len);
	}
	CHECK_RC(xr_batch_release(r, &b), 0);
	return b.count;
}

/* Records of game g (player p, or any with p < 0) in lg, from index from. */
static uint32_t count_of(const struct log *lg, uint32_t g, int p, uint32_t from)
{
	uint32_t n = 0;

	for (uint32_t i = from; i < lg->n; i++)
		n += lg->r[i].game == g && (p < 0 || lg->r[i].player == (uint32_t)p);
	return n;
}

/* Reads until game g has `want` records (from index from), within 10 s. */
static void read_until(xr_reader *r, struct log *lg, uint32_t g, uint32_t want, uint32_t from)
{
	uint64_t end = xr__now_ns() + 10 * SEC;

	while (count_of(lg, g, -1, from) < want) {
		if (xr__now_ns() > end)
			FAILF("game %u: %u records after 10 s, want %u", g, count_of(lg, g, -1, from),
			      want);
		read_some(r, lg);
	}
}

/* The i-th record of game g, player p, from index from; NULL if none. */
static const struct rec *nth(const struct log *lg, uint32_t g, uint32_t p, uint32_t i,
			     uint32_t from)
{
	for (uint32_t k = from; k < lg->n; k++)
		if (lg->r[k].game == g && lg->r[k].player == p && i-- == 0)
			return &lg->r[k];
	return NULL;
}

static bool same(const struct rec *a, const struct rec *b)
{
	return a->player == b->player && a->turn == b->turn && a->action == b->action &&
	       a->reward == b->reward && a->done == b->done && a->truncated == b->truncated &&
	       a->applied == b->applied && a->applied_by == b->applied_by &&
	       a->digest == b->digest;
}

#define PAIR_GAMES 128

/* Consecutive records of each (game, player) of lg (games < PAIR_GAMES)
 * pair into transitions: a record after one that ended no episode says
 * that the step between them applied the earlier record's action, chosen
 * by the built-in policy (final records, action -1, included); the record
 * after an episode's end, and any turn-0 record, is an episode's first:
 * applied -1, NONE. A pair's first record seen may be mid-episode (the
 * reader came later): only what follows it is judged. How many records
 * were paired with the one before; *finals: how many of them were final
 * records (truncated, action -1). */
static uint32_t check_pairs(const struct log *lg, uint32_t *finals)
{
	static const struct rec *last[PAIR_GAMES][XR_GAME_MAX_PLAYERS];
	uint32_t paired = 0;

	memset(last, 0, sizeof(last));
	*finals = 0;
	for (uint32_t i = 0; i < lg->n; i++) {
		const struct rec *x = &lg->r[i];
		CHECK(x->game < PAIR_GAMES && x->player < XR_GAME_MAX_PLAYERS);
		const struct rec *prev = last[x->game][x->player];
		last[x->game][x->player] = x;
		bool first = x->turn == 0 || (prev && (prev->done || prev->truncated));
		if (first) {
			if (x->turn != 0 || x->applied != -1 || x->applied_by != XR_SRC_NONE)
				FAILF("game %u player %u seq %llu: an episode's first record says "
				      "turn %u, applied %d by %u (want 0, -1 by NONE)", x->game,
				      x->player, (unsigned long long)x->seq, x->turn, x->applied,
				      x->applied_by);
		} else if (prev) {
			if (x->turn != prev->turn + 1 || x->applied != prev->action ||
			    x->applied_by != XR_SRC_POLICY)
				FAILF("game %u player %u seq %llu: turn %u applied %d by %u after "
				      "turn %u chose %d (want turn %u applied %d by POLICY)", x->game,
				      x->player, (unsigned long long)x->seq, x->turn, x->applied,
				      x->applied_by, prev->turn, prev->action, prev->turn + 1,
				      prev->action);
			paired++;
			*finals += x->truncated && x->action == -1;
		}
	}
	return paired;
}

static xr_reader *reader_of(const struct engine *e, uint32_t lo, uint32_t hi)
{
	xr_id_range games = {lo, hi};
	xr_filter f = {.games = &games, .n_games = 1};
	xr_reader_opts ro = {.filter = &f, .label = "games-test"};
	xr_reader *r;

	CHECK_RC(xr_reader_attach(e->name, &ro, &r), 0);
	return r;
}

static void lifecycle(void)
{
	struct engine e;
	struct log lg = {.r = calloc(MAX_RECS, sizeof(struct rec))};
	xr_game_spec spec = {.game = "grid", .board_h = BOARD, .board_w = BOARD,
			     .players = PLAYERS, .obs_dtype = "u8", .seed = 100, .owned = 1};
	uint32_t ids[2], fresh, from, finals = 0;
	const uint32_t K = 40; /* turns compared */

	CHECK(lg.r);
	engine_start(&e, "games-life", 0, 2, 0, NULL);
	xr_games *c = games_open(&e);
	/* Ids start at 0 without games at start: a reader of 0..99 sees the
	 * games below from their first record. */
	xr_reader *r = reader_of(&e, 0, 99);
	CHECK_EQ(live_games(c), 0);
	CHECK_EQ(xr_games_create(c, &spec, 2, ids), 2);
	CHECK_EQ(ids[0], 0);
	CHECK_EQ(ids[1], 1);
	read_until(r, &lg, ids[0], 2 * K, 0);
	read_until(r, &lg, ids[1], 2 * K, 0);
	for (uint32_t i = 0; i < lg.n; i++)
		CHECK(lg.r[i].game == ids[0] || lg.r[i].game == ids[1]);
	/* Each player's turns count from 0 in its first episode. */
	for (uint32_t p = 0; p < PLAYERS; p++)
		for (uint32_t i = 0; i < K; i++)
			CHECK_EQ(nth(&lg, ids[0], p, i, 0)->turn, i);

	/* The list: both games, ours, owned, on the two shards. */
	xr_game_info gi[4];
	uint32_t total;
	CHECK_EQ(xr_games_list(c, 0, gi, 4, &total), 2);
	CHECK_EQ(total, 2);
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(gi[i].id, ids[i]);
		CHECK_EQ(gi[i].board_h, BOARD);
		CHECK_EQ(gi[i].players, PLAYERS);
		CHECK_EQ(gi[i].seed, 100u + (uint32_t)i);
		CHECK_EQ(gi[i].owner_uid, geteuid());
		CHECK(gi[i].owned && gi[i].mine);
		CHECK(!strcmp(gi[i].game, "grid") && !strcmp(gi[i].obs_dtype, "u8"));
	}
	CHECK(gi[0].shard != gi[1].shard); /* least loaded: one each */
	printf("lifecycle: 2 games created, %u records read, on shards %u and %u\n", lg.n,
	       gi[0].shard, gi[1].shard);

	/* Reset game 0 to seed 555 and create a game of seed 555: from its
	 * turn 0, game 0 writes what the new game writes. */
	from = lg.n;
	CHECK_RC(xr_games_reset(c, ids[0], 555), 0);
	xr_game_spec s2 = spec;
	s2.seed = 555;
	CHECK_EQ(xr_games_create(c, &s2, 1, &fresh), 1);
	CHECK_EQ(fresh, 2);
	read_until(r, &lg, fresh, 2 * K, from);
	read_until(r, &lg, ids[0], 2 * K + 2 * PLAYERS, from);
	for (uint32_t p = 0; p < PLAYERS; p++) {
		/* After the reset order, game 0 plays on until its shard takes
		 * the order; then its episode in flight ends (a truncated
		 * record, action -1, unless it had just ended by itself) and
		 * the new one starts. Its start is found by what it is: the
		 * record of seed 555's turn 0, which the new game writes too. */
		const struct rec *f0 = nth(&lg, fresh, p, 0, from);
		uint32_t i = 0;
		const struct rec *x, *prev = NULL;
		while ((x = nth(&lg, ids[0], p, i, from)) && !same(x, f0)) {
			prev = x;
			i++;
		}
		if (!x)
			FAILF("player %u: game %u never starts seed 555's episode", p, ids[0]);
		CHECK(prev && (prev->truncated || prev->done)); /* its next record is turn 0 */
		finals += prev->action == -1 && prev->truncated;
		for (uint32_t t = 0; t < K; t++) {
			const struct rec *a = nth(&lg, ids[0], p, i + t, from);
			const struct rec *b = nth(&lg, fresh, p, t, from);
			CHECK(a && b);
			if (!same(a, b))
				FAILF("player %u turn %u: the reset game and the new game differ "
				      "(turn %u/%u action %d/%d digest %llx/%llx)",
				      p, t, a->turn, b->turn, a->action, b->action,
				      (unsigned long long)a->digest, (unsigned long long)b->digest);
		}
	}
	printf("lifecycle: game %u reset to seed 555 ends its episode (%u truncated records), "
	       "then writes what a new game of seed 555 writes, %u turns x %u players\n",
	       ids[0], finals, K, PLAYERS);

	/* Destroy game 1: each player's last record is truncated, action -1,
	 * and nothing of game 1 follows. */
	from = lg.n;
	CHECK_RC(xr_games_destroy(c, &ids[1], 1), 0);
	/* A game created after it goes to its shard, now the least loaded,
	 * which takes orders in order: once this one's records are read,
	 * every record of game 1 is. */
	uint32_t sentinel;
	CHECK_EQ(xr_games_create(c, &spec, 1, &sentinel), 1);
	CHECK_EQ(sentinel, 3);
	read_until(r, &lg, sentinel, 1, from);
	uint32_t gone = count_of(&lg, ids[1], -1, 0);
	for (uint32_t p = 0; p < PLAYERS; p++) {
		uint32_t n = count_of(&lg, ids[1], (int)p, from);
		CHECK(n >= 1);
		const struct rec *last = nth(&lg, ids[1], p, n - 1, from);
		/* Cut short: truncated, no action; or it had just ended. */
		CHECK((last->truncated && last->action == -1) || last->done || last->truncated);
	}
	read_until(r, &lg, sentinel, 2 * K, from);
	CHECK_EQ(count_of(&lg, ids[1], -1, 0), gone); /* nothing after */
	CHECK_EQ(xr_games_destroy(c, &ids[1], 1), -ENOENT);
	CHECK(strstr(xr_last_reason(), "no game 1 here (it was destroyed)"));
	CHECK_EQ(xr_games_reset(c, ids[1], 1), -ENOENT);
	CHECK_EQ(live_games(c), 3); /* 0, 2 and the sentinel */
	printf("lifecycle: destroyed game 1 ended with a truncated record per player, then "
	       "nothing; its id is refused after\n");

	/* Ids are never given again. */
	uint32_t next;
	CHECK_EQ(xr_games_create(c, &spec, 1, &next), 1);
	CHECK_EQ(next, 4);
	read_until(r, &lg, next, 1, from);

	/* Owned games go with the handle that made them; games made by
	 * another handle, not owned, stay. */
	xr_games *other = games_open(&e);
	xr_game_spec keep = spec;
	keep.owned = 0;
	uint32_t kept;
	CHECK_EQ(xr_games_create(other, &keep, 1, &kept), 1);
	CHECK_EQ(xr_games_list(other, 0, gi, 4, &total), 4);
	CHECK_EQ(total, 5);
	CHECK(!gi[0].mine && gi[0].owned && !gi[3].mine);
	CHECK_EQ(xr_games_list(other, kept, gi, 4, &total), 1);
	CHECK(gi[0].id == kept && !gi[0].owned);
	read_until(r, &lg, kept, 1, from);
	xr_games_close(c);
	CHECK(WAIT_UNTIL(live_games(other) == 1, 5000));
	CHECK_EQ(xr_games_list(other, 0, gi, 4, &total), 1);
	CHECK_EQ(gi[0].id, kept);
	xr_games_close(other);
	printf("lifecycle: closing the handle destroyed its 4 owned games; the unowned one lives\n");

	xr_reader_detach(r);
	engine_stop(&e);
	/* Every creation was played (each one's records were read); the
	 * destructions of the owned games may still wait in their queues
	 * when the engine stops. */
	CHECK_EQ(e.res.created, 6);
	CHECK(e.res.destroyed >= 1 && e.res.destroyed <= 5);
	/* The arena's stats, which tools show, say the same. */
	CHECK_EQ(e.st_created, e.res.created);
	CHECK_EQ(e.st_destroyed, e.res.destroyed);
	CHECK_EQ(e.st_resets, e.res.resets);
	CHECK_EQ(e.st_finals, e.res.finals);
	CHECK_EQ(e.st_lat_count, 6); /* each creation's first record timed */
	CHECK_EQ(e.res.resets, 1);
	/* Every record read, the reset's and the destruction's final records
	 * among them (unless those games had just ended by themselves). */
	uint32_t paired_finals, paired = check_pairs(&lg, &paired_finals);
	CHECK(paired > lg.n / 2);
	printf("lifecycle: %u records pair with the one before (%u final records among them): "
	       "applied = the earlier action, by POLICY\n", paired, paired_finals);
	free(lg.r);
}

/* As NOBODY: create one game (its share allows 1), then try to destroy
 * and reset game 0, the engine's. Exit 0 if all went as expected. */
static int foreign_child(void *arg)
{
	const char *name = arg;
	xr_games *c;
	uint32_t id, ids[2];
	xr_game_spec spec = {.seed = 9};

	if (xr_games_open(name, NULL, &c) < 0)
		return 10;
	if (xr_games_create(c, &spec, 1, &id) != 1)
		return 11;
	if (xr_games_create(c, &spec, 2, ids) != -EBUSY ||
	    !strstr(xr_last_reason(), "(--max-games-per-uid)"))
		return 12;
	uint32_t zero = 0;
	if (xr_games_destroy(c, &zero, 1) != -EPERM || !strstr(xr_last_reason(), "belongs to uid"))
		return 13;
	if (xr_games_reset(c, 0, 1) != -EPERM)
		return 14;
	if (xr_games_destroy(c, &id, 1) != 0)
		return 15;
	xr_games_close(c);
	return 0;
}

/* As NOBODY, on an engine of --max-games 8 and a share of 100: other uids
 * together hold at most 6 (three quarters), whatever their share. */
static int others_child(void *arg)
{
	const char *name = arg;
	xr_games *c;
	uint32_t ids[8];
	xr_game_spec spec = {.seed = 3};

	if (xr_games_open(name, NULL, &c) < 0)
		return 10;
	if (xr_games_create(c, &spec, 6, ids) != 6)
		return 11;
	if (xr_games_create(c, &spec, 1, ids) != -EBUSY ||
	    !strstr(xr_last_reason(), "three quarters of --max-games"))
		return 12;
	xr_games_close(c);
	return 0;
}

static void refusals(void)
{
	struct engine e;
	struct xr_gdir_opts lim = {.max_games = 20, .max_games_per_uid = 2, .creates_per_uid = 4};
	xr_game_spec spec = {.seed = 1};
	uint32_t ids[8];

	engine_start(&e, "games-no", 2, 1, 5, &lim);
	xr_games *c = games_open(&e);
	CHECK_EQ(live_games(c), 2);

	/* A shape no stream carries: refused, naming the shapes there are. */
	xr_game_spec big = spec;
	big.board_h = big.board_w = 9;
	CHECK_EQ(xr_games_create(c, &big, 1, ids), -ENOENT);
	CHECK(strstr(xr_last_reason(), "its shapes: grid 8x8 2 players u8 (stream experience)"));
	xr_game_spec f32 = spec;
	f32.obs_dtype = "f32";
	CHECK_EQ(xr_games_create(c, &f32, 1, ids), -ENOENT);
	xr_game_spec coin = spec;
	coin.game = "coin";
	CHECK_EQ(xr_games_create(c, &coin, 1, ids), -ENOENT);
	printf("refusals: %s\n", xr_last_reason());

	/* --max-games 20 with 2 at start: 19 more do not fit, and nothing of
	 * them is made. */
	uint32_t many[19];
	CHECK_EQ(xr_games_create(c, &spec, 19, many), -EBUSY);
	CHECK(strstr(xr_last_reason(), "hosts 2 games and --max-games is 20: 19 more do not fit"));
	printf("refusals: %s\n", xr_last_reason());
	CHECK_EQ(live_games(c), 2);

	/* The bucket: 4 a second, bursts of 8 (the refusals above took no
	 * token). 4 now, 4 more, then a ninth is refused with a retry time. */
	CHECK_EQ(xr_games_create(c, &spec, 4, ids), 4);
	CHECK_EQ(xr_games_destroy(c, ids, 4), 0);
	CHECK_EQ(xr_games_create(c, &spec, 4, ids), 4);
	int rc = xr_games_reset(c, ids[0], 7);
	CHECK_EQ(rc, -EAGAIN);
	CHECK(strstr(xr_last_reason(), "too many game creations and resets from uid") &&
	      strstr(xr_last_reason(), "retry in"));
	printf("refusals: %s\n", xr_last_reason());
	/* More than a burst at once can never be granted: said so. */
	CHECK_EQ(xr_games_create(c, &spec, 9, ids + 4), -EINVAL);
	CHECK(strstr(xr_last_reason(), "ask for fewer"));

	/* Unknown ids, and an id list with one unknown: nothing destroyed. */
	uint32_t mixed[2] = {ids[0], 12345};
	CHECK_EQ(xr_games_destroy(c, mixed, 2), -ENOENT);
	CHECK(strstr(xr_last_reason(), "no game 12345 here (never created)"));
	CHECK_EQ(live_games(c), 6);

	/* Another uid may not touch the engine's games, and has its share
	 * (2 here; the engine's uid has them all). */
	if (geteuid() == 0) {
		CHECK_RC(xr_games_destroy(c, ids, 4), 0); /* room for its one */
		CHECK_EQ(run_as(NOBODY, NOBODY, foreign_child, e.name), 0);
		printf("refusals: uid %u may not destroy or reset the engine's games, and is held "
		       "to its share\n",
		       NOBODY);
		struct engine e2;
		struct xr_gdir_opts l2 = {.max_games = 8, .max_games_per_uid = 100};
		engine_start(&e2, "games-3q", 0, 1, 5, &l2);
		CHECK_EQ(run_as(NOBODY, NOBODY, others_child, e2.name), 0);
		xr_games *c2 = games_open(&e2);
		uint32_t two[2];
		CHECK_EQ(xr_games_create(c2, &spec, 2, two), 2); /* the engine's uid: room */
		xr_games_close(c2);
		engine_stop(&e2);
		printf("refusals: other uids together stop at three quarters of --max-games; the "
		       "engine's uid still creates\n");
	} else {
		printf("refusals: not root: the other-uid case is skipped\n");
	}
	xr_games_close(c);
	engine_stop(&e);
}

/* A raw connection, ATTACHed. */
static int raw_attached(const struct engine *e)
{
	char path[128];
	struct {
		struct xr_ctl_hdr h;
		uint8_t b[512];
	} r;
	int fd;

	CHECK_RC(xr_engine_socket(e->name, 0, path, sizeof(path)), 0);
	int s = peer_connect(path);
	CHECK(s >= 0);
	CHECK_RC(peer_send(s, XR_CTL_ATTACH, 1, NULL, 0, NULL, 0), 0);
	CHECK(peer_recv(s, &r, sizeof(r), &fd, 5000) > 0 && r.h.type == XR_CTL_ATTACHED);
	close(fd);
	return s;
}

/* Sends a game request and expects ERROR with code and a reason that has
 * `has`, then a hangup when hangup. */
static void expect_refusal(const struct engine *e, int s, uint16_t type, const void *body,
			   uint32_t len, int code, const char *has, bool hangup)
{
	char why[XR_CTL_REASON_MAX];
	struct xr_ctl_hdr h;
	int fd;

	CHECK_RC(peer_send(s, type, 9, body, len, NULL, 0), 0);
	int got = peer_error(s, why, sizeof(why));
	if (got != code || !strstr(why, has))
		FAILF("type %u: ERROR %s (%s), want %s with \"%s\"", type, xr_err_name(got), why,
		      xr_err_name(code), has);
	if (hangup)
		CHECK_EQ(peer_recv(s, &h, sizeof(h), &fd, 5000), 0);
	(void)e;
}

/* A big board costs its size: one token per 1,024 cells x players, a
 * request at most 1,024 tokens' worth (control/proto.h). 32x32 boards of 4
 * players cost 4 tokens a game, so 256 games a request. */
static void big_boards(void)
{
	struct engine e;
	struct xr_gdir_opts fast = {.creates_per_uid = 1000000};
	struct xr_gdir_opts slow = {.creates_per_uid = 10}; /* 20 tokens: 5 games */
	struct xr_gdir_opts tiny = {.creates_per_uid = 1}; /* 2 tokens: none */
	xr_game_spec spec = {.seed = 7};
	static uint32_t ids[600];
	struct {
		struct xr_ctl_hdr h;
		struct xr_ctl_games_created c;
	} r;
	int fd;

	test_board = 32;
	test_players = 4;
	CHECK_EQ(xr__ctl_game_cost(32, 32, 4), 4);
	CHECK_EQ(xr__ctl_game_cost(20, 20, 2), 1);
	CHECK_EQ(xr__ctl_game_cost(4096, 4096, 0xffffffffu), UINT32_MAX);

	engine_start(&e, "games-big", 0, 2, 5, &fast);
	int s = raw_attached(&e);
	struct xr_ctl_games_create cr = {.count = 300, .seed = 1};
	CHECK_RC(peer_send(s, XR_CTL_GAMES_CREATE, 3, &cr, sizeof(cr), NULL, 0), 0);
	CHECK(peer_recv(s, &r, sizeof(r), &fd, 5000) > 0);
	CHECK_EQ(r.h.type, XR_CTL_GAMES_CREATED);
	CHECK_EQ(r.c.count, 256); /* the rest is the client's next request */
	close(s);
	xr_games *c = games_open(&e);
	CHECK_EQ(xr_games_create(c, &spec, 600, ids), 600); /* in three requests */
	for (uint32_t i = 1; i < 600; i++)
		CHECK_EQ(ids[i], ids[i - 1] + 1);
	CHECK_EQ(live_games(c), 856); /* with the raw request's 256, not owned */
	xr_games_close(c);
	engine_stop(&e);

	engine_start(&e, "games-big-slow", 0, 1, 5, &slow);
	c = games_open(&e);
	CHECK_EQ(xr_games_create(c, &spec, 6, ids), -EINVAL);
	CHECK(strstr(xr_last_reason(), "more than uid"));
	CHECK(strstr(xr_last_reason(), "at once (5)"));
	CHECK_EQ(xr_games_create(c, &spec, 5, ids), 5);
	/* The bucket is empty: a reset of this game costs 4 tokens, 400 ms. */
	CHECK_EQ(xr_games_reset(c, ids[0], 3), -EAGAIN);
	CHECK(strstr(xr_last_reason(), "retry in"));
	xr_games_close(c);
	engine_stop(&e);

	engine_start(&e, "games-big-tiny", 0, 1, 5, &tiny);
	c = games_open(&e);
	CHECK_EQ(xr_games_create(c, &spec, 1, ids), -EINVAL);
	CHECK(strstr(xr_last_reason(), "raise --max-creates-per-uid"));
	printf("big boards: %s\n", xr_last_reason());
	xr_games_close(c);
	engine_stop(&e);
	test_board = BOARD;
	test_players = PLAYERS;
}

static void garbage(void)
{
	struct engine e;
	struct xr_ctl_games_create cr = {.count = 1};
	struct xr_ctl_games_list li = {.max = 1};
	struct xr_ctl_games_destroy de = {.count = 1};
	int s;

	engine_start(&e, "games-bad", 3, 1, 5, NULL);
	xr_games *c = games_open(&e);

	/* Before ATTACH. */
	char path[128];
	CHECK_RC(xr_engine_socket(e.name, 0, path, sizeof(path)), 0);
	s = peer_connect(path);
	expect_refusal(&e, s, XR_CTL_GAMES_LIST, &li, sizeof(li), -EPROTO, "before ATTACH", true);
	close(s);

	struct {
		const char *what;
		uint16_t type;
		struct xr_ctl_games_create cr;
		const char *has;
	} bad_creates[] = {
		{"count 0", 0, {.count = 0}, "count is not 1..1024"},
		{"count 1025", 0, {.count = 1025}, "count is not 1..1024"},
		{"flags", 0, {.count = 1, .flags = 0x80}, "unknown flag"},
		{"dtype", 0, {.count = 1, .obs_dtype = 99}, "not a dtype"},
		{"turn limit", 0, {.count = 1, .turn_limit = 200000000}, "turn limit"},
	};
	for (size_t i = 0; i < sizeof(bad_creates) / sizeof(bad_creates[0]); i++) {
		s = raw_attached(&e);
		expect_refusal(&e, s, XR_CTL_GAMES_CREATE, &bad_creates[i].cr,
			       sizeof(bad_creates[i].cr), -EPROTO, bad_creates[i].has, true);
		close(s);
	}
	s = raw_attached(&e);
	memset(cr.kind, 'a', sizeof(cr.kind));
	expect_refusal(&e, s, XR_CTL_GAMES_CREATE, &cr, sizeof(cr), -EPROTO, "NUL", true);
	close(s);
	s = raw_attached(&e);
	expect_refusal(&e, s, XR_CTL_GAMES_CREATE, &cr, sizeof(cr) - 8, -EPROTO, "wrong body length",
		       true);
	close(s);
	s = raw_attached(&e);
	de.count = 0;
	expect_refusal(&e, s, XR_CTL_GAMES_DESTROY, &de, sizeof(de), -EPROTO, "count", true);
	close(s);
	s = raw_attached(&e);
	li.max = 1000;
	expect_refusal(&e, s, XR_CTL_GAMES_LIST, &li, sizeof(li), -EPROTO, "max", true);
	close(s);
	/* Refusals of well-formed requests keep the connection: its games
	 * would go with it. */
	s = raw_attached(&e);
	struct xr_ctl_game_reset rs = {.id = 777, .seed = 1};
	expect_refusal(&e, s, XR_CTL_GAME_RESET, &rs, sizeof(rs), -ENOENT, "no game 777", false);
	expect_refusal(&e, s, XR_CTL_GAME_RESET, &rs, sizeof(rs), -ENOENT, "no game 777", false);
	close(s);
	/* Random bytes in every game request, with the right length. */
	uint64_t rng = 42;
	for (int i = 0; i < 2000; i++) {
		uint8_t body[sizeof(struct xr_ctl_games_destroy)];
		uint16_t types[] = {XR_CTL_GAMES_CREATE, XR_CTL_GAMES_DESTROY, XR_CTL_GAME_RESET,
				    XR_CTL_GAMES_LIST};
		uint32_t lens[] = {sizeof(struct xr_ctl_games_create),
				   sizeof(struct xr_ctl_games_destroy),
				   sizeof(struct xr_ctl_game_reset), sizeof(struct xr_ctl_games_list)};
		for (size_t j = 0; j < sizeof(body); j++) {
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			body[j] = (uint8_t)(rng >> 56);
		}
		int k = i % 4;
		if (k == 1)
			memcpy(body, &(uint32_t){1 + (uint32_t)(rng >> 40) % 4}, 4); /* a few ids */
		s = raw_attached(&e);
		CHECK_RC(peer_send(s, types[k], 5, body, lens[k], NULL, 0), 0);
		struct {
			struct xr_ctl_hdr h;
			uint8_t b[sizeof(struct xr_ctl_games)];
		} r;
		int fd, n = peer_recv(s, &r, sizeof(r), &fd, 5000);
		CHECK(n >= (int)sizeof(r.h));
		/* Random ids name no game; random creations are malformed or
		 * name no shape, or (rarely) make games, which go with the
		 * connection (owned) or are counted below. */
		CHECK(r.h.type == XR_CTL_ERROR || r.h.type == XR_CTL_GAMES ||
		      r.h.type == XR_CTL_GAMES_CREATED || r.h.type == XR_CTL_OK);
		close(s);
	}
	/* The engine serves on, and its own games are there. */
	xr_game_info gi[8];
	uint32_t total;
	int n = xr_games_list(c, 0, gi, 8, &total);
	CHECK(n >= 3);
	CHECK(gi[0].id == 0 && gi[1].id == 1 && gi[2].id == 2);
	printf("garbage: malformed game requests refused and hung up on; 2000 random ones "
	       "answered; the engine's 3 games stand (%u live)\n",
	       total);
	xr_games_close(c);
	engine_stop(&e);
}

/* On stop, every episode in flight ends: each (game, player)'s last record
 * has done or truncated set. The reader reads (on its own thread) while the
 * engine stops, to the end of the stream. */
struct stop_reader {
	xr_reader *r;
	struct log lg;
	uint32_t before;               /* records to read before the stop */
	_Atomic int ready;
	int end;                       /* what ended the reading */
};

static void *stop_reader_main(void *p)
{
	struct stop_reader *sr = p;
	xr_batch b;

	for (;;) {
		int n = xr_reader_read(sr->r, 1, 1024, 100 * (int64_t)MS, &b);
		if (n == 0)
			continue;
		if (n < 0) {
			sr->end = n;
			return NULL;
		}
		const xr_frame *f = b.first;
		for (uint32_t i = 0; i < b.count; i++, f = b.frames ? NULL : xr_frame_next(f)) {
			xr_exp_view v;
			if (b.frames)
				f = b.frames[i];
			CHECK_RC(xr_exp_view_init(&v, xr_frame_data(f), f->len), 0);
			CHECK(sr->lg.n < MAX_RECS);
			sr->lg.r[sr->lg.n++] = (struct rec){.seq = v.f.seq, .game = v.f.game_id,
							    .player = v.f.player_id, .turn = v.f.turn,
							    .action = v.f.action, .done = v.f.done,
							    .truncated = v.f.truncated,
							    .applied = v.f.applied,
							    .applied_by = v.f.applied_by};
		}
		CHECK_RC(xr_batch_release(sr->r, &b), 0);
		if (sr->lg.n >= sr->before)
			atomic_store(&sr->ready, 1);
	}
}

static void stop_ends_episodes(void)
{
	struct engine e;
	enum { GAMES = 50 };
	struct stop_reader sr = {.lg.r = calloc(MAX_RECS, sizeof(struct rec)), .before = 2000};
	bool seen[GAMES][PLAYERS] = {{false}}, ended[GAMES][PLAYERS] = {{false}};
	pthread_t th;

	CHECK(sr.lg.r);
	engine_start(&e, "games-stop", GAMES, 2, 2, NULL);
	sr.r = reader_of(&e, 0, GAMES - 1);
	CHECK(pthread_create(&th, NULL, stop_reader_main, &sr) == 0);
	CHECK(WAIT_UNTIL(atomic_load(&sr.ready), 10000));
	engine_stop(&e);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_EQ(sr.end, XR_ECLOSED);
	xr_reader_detach(sr.r);
	for (uint32_t i = 0; i < sr.lg.n; i++) {
		const struct rec *x = &sr.lg.r[i];
		CHECK(x->game < GAMES && x->player < PLAYERS);
		seen[x->game][x->player] = true;
		ended[x->game][x->player] = x->done || x->truncated;
	}
	uint32_t open = 0, pairs = 0;
	for (int g = 0; g < GAMES; g++)
		for (int p = 0; p < PLAYERS; p++) {
			open += seen[g][p] && !ended[g][p];
			pairs += seen[g][p];
		}
	CHECK_EQ(e.res.finals_lost, 0);
	CHECK(e.res.finals > 0);
	if (open)
		FAILF("%u (game, player) pairs' last record ends no episode", open);
	/* The final records at the stop carry the last step's action too. */
	uint32_t paired_finals, paired = check_pairs(&sr.lg, &paired_finals);
	CHECK(paired > sr.lg.n / 2 && paired_finals > 0);
	printf("stop: %u records pair with the one before, %u final records among them\n", paired,
	       paired_finals);
	printf("stop: %llu truncated records at stop; the last record of each of %u (game, "
	       "player) pairs ends its episode\n",
	       (unsigned long long)e.res.finals, pairs);
	free(sr.lg.r);
}

/* --observe subscribed: records only for the (game, player) pairs some
 * reader's filter selects; the other games step all the same, and what they
 * play does not depend on who reads: a game seeded like one read from its
 * start, read from later on, writes what that one wrote at the same turns. */
static void lazy_observations(void)
{
	struct engine e;
	struct xr_gdir_opts lazy = {.observe_subscribed = true, .max_readers = 64};
	struct log lx = {.r = calloc(MAX_RECS, sizeof(struct rec))};
	struct log ly = {.r = calloc(MAX_RECS, sizeof(struct rec))};
	xr_game_spec spec = {.seed = 777};
	uint32_t x, y;

	CHECK(lx.r && ly.r);
	engine_start(&e, "games-lazy", 20, 1, 0, &lazy);
	xr_games *c = games_open(&e);
	/* Nobody reads: the games step, nothing is written. */
	xr_game_info gi[1];
	CHECK(WAIT_UNTIL((xr_games_list(c, 0, gi, 1, NULL) == 1 && gi[0].turn > 50), 10000));
	CHECK_EQ(xr_load_relaxed(&xr_host_arena(e.h)->hdr->rings[0].written), 0);

	/* A reader of game x, player 1, from before x exists; y, seeded the
	 * same, read by nobody. */
	xr_id_range gx = {20, 20}, p1 = {1, 1};
	xr_filter fx = {.games = &gx, .n_games = 1, .players = &p1, .n_players = 1};
	xr_reader_opts rox = {.filter = &fx, .label = "lazy-x"};
	xr_reader *rx;
	CHECK_RC(xr_reader_attach(e.name, &rox, &rx), 0);
	CHECK_EQ(xr_games_create(c, &spec, 1, &x), 1);
	CHECK_EQ(xr_games_create(c, &spec, 1, &y), 1);
	CHECK_EQ(x, 20);
	read_until(rx, &lx, x, 400, 0);
	/* Now a reader of y, from wherever y has got to. */
	xr_reader *ry = reader_of(&e, y, y);
	read_until(ry, &ly, y, 200, 0);
	/* x up to where y was read: they play in the same rounds. */
	uint64_t end = xr__now_ns() + 10 * SEC;
	while (lx.r[lx.n - 1].seq + 8 < ly.r[ly.n - 1].seq) {
		CHECK(xr__now_ns() < end);
		read_some(rx, &lx);
	}
	uint64_t written = xr_load_relaxed(&xr_host_arena(e.h)->hdr->rings[0].written);
	/* Only x's player 1 and y were ever written. */
	for (uint32_t i = 0; i < lx.n; i++)
		CHECK(lx.r[i].game == x && lx.r[i].player == 1);
	for (uint32_t i = 0; i < ly.n; i++)
		if (ly.r[i].game != y)
			FAILF("the reader of game %u got a record of game %u player %u", y,
			      ly.r[i].game, ly.r[i].player);
	/* y's player-1 records are x's, turn for turn: y stepped unread as
	 * it would have read. */
	uint32_t matched = 0;
	for (uint32_t i = 0; i < ly.n && matched < 50; i++) {
		const struct rec *b = &ly.r[i];
		if (b->player != 1)
			continue;
		bool found = false;
		for (uint32_t j = 0; j < lx.n && !found; j++)
			found = same(&lx.r[j], b);
		if (!found)
			FAILF("y's player 1 at turn %u wrote what x never did at that turn", b->turn);
		matched++;
	}
	CHECK(matched > 0);
	xr_reader_detach(rx);
	xr_reader_detach(ry);
	xr_games_close(c);
	engine_stop(&e);
	CHECK(e.res.steps > 20 * 50);
	printf("lazy: 22 games stepped %llu times; %llu records written, only for the pairs "
	       "read; a game read late matched its twin read from the start (%u turns)\n",
	       (unsigned long long)e.res.steps, (unsigned long long)written, matched);
	free(lx.r);
	free(ly.r);
}

/* A shard takes creations before resets, so that a reset finds its game;
 * but a creation and a reset that arrive while the shard is in the middle
 * of taking resets (here: paused in a reset's final records for a lossless
 * reader that stopped reading) found the creation not taken yet, and the
 * reset was dropped although the requester was told OK. */
static void reset_after_create(void)
{
	struct engine e;
	struct xr_gdir_opts lim = {.max_games = 10000, .creates_per_uid = 100000};
	enum { START = 2000 };
	struct log lg = {.r = calloc(MAX_RECS, sizeof(struct rec))};
	xr_game_spec spec = {.seed = 3};
	uint32_t x;

	CHECK(lg.r);
	engine_start(&e, "games-rc", START, 1, 0, &lim);
	xr_reader *r = reader_of(&e, 0, UINT32_MAX - 1);
	xr_games *c = games_open(&e);
	/* The reader does not read: the ring fills, the shard pauses in its
	 * round. A reset for every game waits meanwhile. */
	for (uint32_t i = 0; i < START; i++)
		CHECK_RC(xr_games_reset(c, i, 1000 + i), 0);
	/* Read until the first final record of a reset: the shard is taking
	 * the resets. Then stop reading: their finals (2 a game) fill the
	 * ring again, and the shard pauses in the middle of the resets. */
	uint64_t end = xr__now_ns() + 20 * SEC;
	bool finals = false;
	while (!finals) {
		CHECK(xr__now_ns() < end);
		uint32_t from = lg.n;
		read_some(r, &lg);
		for (uint32_t i = from; i < lg.n && !finals; i++)
			finals = lg.r[i].truncated && lg.r[i].action == -1;
		lg.n = 0;
	}
	CHECK(WAIT_UNTIL(xr_load_acquire(&xr_host_arena(e.h)->hdr->rings[0].blocked) != 0, 10000));
	/* A new game and its reset, while the shard is in there. */
	CHECK_EQ(xr_games_create(c, &spec, 1, &x), 1);
	CHECK_RC(xr_games_reset(c, x, 77), 0);
	/* Everything read: the resets, then the new game's turns. */
	end = xr__now_ns() + 20 * SEC;
	while (count_of(&lg, x, -1, 0) < 10) {
		CHECK(xr__now_ns() < end);
		if (lg.n > MAX_RECS - 2048)
			lg.n = 0; /* only x's records matter, and they come last */
		read_some(r, &lg);
	}
	xr_reader_detach(r);
	xr_games_close(c);
	engine_stop(&e);
	if (e.res.resets != START + 1)
		FAILF("%llu resets taken, want %u: the reset of game %u, created while its shard "
		      "was taking resets, was dropped",
		      (unsigned long long)e.res.resets, START + 1, x);
	printf("reset_after_create: a game created and reset while its shard was taking %u "
	       "resets was reset too\n",
	       START);
	free(lg.r);
}

/* A game reset over and over while its shard does not take orders (paused
 * for a lossless reader here; or resets faster than its rounds) has one
 * reset waiting, whose seed the later ones change: the shard then resets it
 * once, to the last seed. Before, each reset was an order of its own, each
 * costing the shard a reset (what building the game costs: with large
 * boards, seconds of every game on the shard stopped), and after 4096 the
 * shard's queue refused every uid's resets. */
static void reset_flood(void)
{
	struct engine e;
	struct xr_gdir_opts lim = {.creates_per_uid = 100000};
	struct log lg = {.r = calloc(MAX_RECS, sizeof(struct rec))};
	enum { N = 5000, K = 20 };
	xr_game_spec spec = {.seed = N};
	uint32_t twin;

	CHECK(lg.r);
	engine_start(&e, "games-rf", 4, 1, 0, &lim);
	xr_reader *r = reader_of(&e, 0, UINT32_MAX - 1);
	xr_games *c = games_open(&e);
	/* The reader does not read yet: the shard stops in its round, its ring
	 * full (formerly a 100 ms sleep, which a loaded machine outran). */
	CHECK(WAIT_UNTIL(xr_load_acquire(&xr_host_arena(e.h)->hdr->rings[0].blocked) != 0, 10000));
	for (uint32_t i = 1; i <= N; i++) {
		int rc = xr_games_reset(c, 0, i);
		if (rc < 0)
			FAILF("reset %u of game 0 refused: %s (%s)", i, xr_strerror(rc),
			      xr_last_reason());
	}
	/* Read on: game 0's episode ends (a final record per player), then it
	 * plays seed N's; a new game of seed N plays it too. */
	uint64_t end = xr__now_ns() + 20 * SEC;
	uint32_t from = 0;
	bool ended = false;
	while (!ended) {
		CHECK(xr__now_ns() < end);
		if (lg.n > MAX_RECS - 2048)
			lg.n = 0;
		from = lg.n;
		read_some(r, &lg);
		for (uint32_t i = from; i < lg.n && !ended; i++)
			ended = lg.r[i].game == 0 && lg.r[i].truncated && lg.r[i].action == -1;
	}
	CHECK_EQ(xr_games_create(c, &spec, 1, &twin), 1);
	read_until(r, &lg, twin, 2 * K * PLAYERS, from);
	read_until(r, &lg, 0, 4 * K * PLAYERS, from);
	const struct rec *t0 = nth(&lg, twin, 0, 0, from);
	uint32_t i = 0;
	const struct rec *x;
	while ((x = nth(&lg, 0, 0, i, from)) && !same(x, t0))
		i++;
	if (!x)
		FAILF("game 0 never plays the episode of its last reset's seed %u", N);
	for (uint32_t t = 0; t < K; t++)
		CHECK(same(nth(&lg, 0, 0, i + t, from), nth(&lg, twin, 0, t, from)));
	xr_game_info gi[1];
	CHECK_EQ(xr_games_list(c, 0, gi, 1, NULL), 1);
	CHECK_EQ(gi[0].seed, N);
	xr_reader_detach(r);
	xr_games_close(c);
	engine_stop(&e);
	if (e.res.resets > 2)
		FAILF("%u resets of one game cost its shard %llu resets, want 1 (2 at most)", N,
		      (unsigned long long)e.res.resets);
	printf("reset_flood: %u resets of a game while its shard was paused cost it %llu, to the "
	       "last seed\n",
	       N, (unsigned long long)e.res.resets);
	free(lg.r);
}

/* Game requests past the uid's rate are refused but keep the connection
 * (its owned games would go with it). A peer that sends them as fast as it
 * can had each one read and refused: the control thread spent itself on
 * refusals (100,000 a second from one connection, half a core). Now a
 * refused connection is not read for the retry time (10 ms at least). */
static void request_flood(void)
{
	struct engine e;
	struct xr_ctl_games_list li = {.from_id = 0, .max = 1};
	uint64_t answered = 0, refused = 0;
	static uint8_t buf[sizeof(struct xr_ctl_hdr) + sizeof(struct xr_ctl_games)];
	const double secs = 2;

	engine_start(&e, "games-flood", 2, 1, 5, NULL);
	int s = raw_attached(&e);
	CHECK(fcntl(s, F_SETFL, O_NONBLOCK) == 0);
	uint64_t end = xr__now_ns() + (uint64_t)(secs * SEC);
	while (xr__now_ns() < end) {
		xr__ctl_send(s, XR_CTL_GAMES_LIST, 3, &li, sizeof(li), NULL, 0); /* may be full */
		ssize_t n;
		while ((n = recv(s, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
			const struct xr_ctl_hdr *h = (const void *)buf;
			if (h->type == XR_CTL_ERROR)
				refused++;
			else if (h->type == XR_CTL_GAMES)
				answered++;
		}
		CHECK(n < 0 && errno == EAGAIN); /* still connected */
	}
	close(s);
	/* The burst and the rate: 8192 + 4096 a second. */
	CHECK(answered >= 8192);
	CHECK(answered <= 8192 + (uint64_t)(4096 * (secs + 1)));
	if (refused > (uint64_t)(secs * 1000 / 10 * 2))
		FAILF("%llu refusals in %.0f s on one connection (%llu answered): the control "
		      "thread reads and refuses every message past the rate",
		      (unsigned long long)refused, secs, (unsigned long long)answered);
	printf("request_flood: %.0f s of game requests as fast as one connection sends them: %llu "
	       "answered, %llu refused\n",
	       secs, (unsigned long long)answered, (unsigned long long)refused);
	engine_stop(&e);
}

/* The grid, counting its instances, whose reset refuses seed 666. */
static _Atomic long flaky_live;

static int flaky_create(const xr_game_config *cfg, void **out)
{
	int rc = xr_game_builtin_grid()->create(cfg, out);
	if (rc == 0)
		atomic_fetch_add(&flaky_live, 1);
	return rc;
}

static void flaky_destroy(void *g)
{
	atomic_fetch_sub(&flaky_live, 1);
	xr_game_builtin_grid()->destroy(g);
}

static int flaky_reset(void *g, uint64_t seed)
{
	return seed == 666 ? -EINVAL : xr_game_builtin_grid()->reset(g, seed);
}

/* A creation takes a pooled instance (one a destroyed game left) and
 * resets it to its seed; a game whose reset refuses that seed refuses the
 * creation, and the instance, taken from the pool, was then neither given
 * back nor destroyed. */
static void pooled_reset_fails(void)
{
	struct engine e;
	static xr_game_vtable flaky;
	xr_game_spec spec = {.seed = 10};
	uint32_t ids[4];

	flaky = *xr_game_builtin_grid();
	flaky.create = flaky_create;
	flaky.destroy = flaky_destroy;
	flaky.reset = flaky_reset;
	test_vt = &flaky;
	engine_start(&e, "games-flaky", 0, 1, 5, NULL);
	xr_games *c = games_open(&e);
	CHECK_EQ(xr_games_create(c, &spec, 4, ids), 4);
	CHECK_RC(xr_games_destroy(c, ids, 4), 0);
	/* Their instances come back to the directory's pool once the shard
	 * has taken the destructions; until then a creation builds a new
	 * instance (which does not reset), and succeeds: undone, retried. */
	spec.seed = 666;
	uint64_t end = xr__now_ns() + 10 * SEC;
	int rc;
	while ((rc = xr_games_create(c, &spec, 1, ids)) == 1) {
		CHECK(xr__now_ns() < end);
		CHECK_RC(xr_games_destroy(c, ids, 1), 0);
		struct timespec ts = {0, 20 * (long)MS};
		nanosleep(&ts, NULL);
	}
	CHECK_EQ(rc, -EINVAL);
	spec.seed = 11;
	CHECK_EQ(xr_games_create(c, &spec, 2, ids), 2);
	xr_games_close(c);
	engine_stop(&e);
	test_vt = NULL;
	if (atomic_load(&flaky_live) != 0)
		FAILF("%ld game instances left after the engine stopped (a pooled instance whose "
		      "reset failed was dropped)",
		      (long)atomic_load(&flaky_live));
	printf("pooled_reset_fails: a creation refused by a pooled instance's reset leaks "
	       "nothing\n");
}

/* A forked child inherits the socket of its parent's handle. The child's
 * copy is not a connection of its own: requests from it are refused, and
 * closing it leaves the parent's connection (and its owned games) alone;
 * the parent's close ends the connection at once, child or not, and its
 * owned games go (before the fix, they lived as long as the child). */
static void forked_child(void)
{
	struct engine e;
	xr_game_spec spec = {.seed = 5, .owned = 1};
	uint32_t ids[4], id;
	int to_child[2], from_child[2];
	char ch;

	engine_start(&e, "games-fork", 2, 1, 5, NULL);
	xr_games *watch = games_open(&e);
	xr_games *c = games_open(&e);
	CHECK_EQ(xr_games_create(c, &spec, 4, ids), 4);
	CHECK_EQ(live_games(watch), 6);
	CHECK(pipe(to_child) == 0 && pipe(from_child) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* The parent's handle, in the child: refused, then closed here
		 * (only the child's copy), then the child lives on until told
		 * (or its parent is gone: the pipe's end). */
		close(to_child[1]);
		alarm(30);
		int ok = xr_games_create(c, &spec, 1, &id) == -EINVAL &&
			 strstr(xr_last_reason(), "a forked child opens its own") &&
			 xr_games_reset(c, ids[0], 1) == -EINVAL;
		xr_games_close(c);
		ch = ok ? 'y' : 'n';
		if (write(from_child[1], &ch, 1) != 1 || read(to_child[0], &ch, 1) != 1)
			_exit(3);
		_exit(0);
	}
	CHECK(read(from_child[0], &ch, 1) == 1);
	CHECK(ch == 'y');
	/* The child closed its copy: the parent's games stand. */
	CHECK_EQ(live_games(watch), 6);
	CHECK_EQ(xr_games_create(c, &spec, 1, &id), 1);
	/* The parent closes while the child (holding no copy now, but it
	 * might) lives: its owned games go. */
	xr_games *c2 = games_open(&e);
	CHECK_EQ(xr_games_create(c2, &spec, 2, ids), 2);
	pid_t pid2 = fork();
	CHECK(pid2 >= 0);
	if (pid2 == 0) { /* keeps its copy of c2's socket until told */
		close(to_child[1]);
		alarm(30);
		if (read(to_child[0], &ch, 1) != 1)
			_exit(3);
		_exit(0);
	}
	xr_games_close(c2);
	if (!WAIT_UNTIL(live_games(watch) == 7, 5000))
		FAILF("a handle closed while a forked child holds its socket: %u games live, want "
		      "7 (its 2 owned games should be gone)",
		      live_games(watch));
	xr_games_close(c);
	CHECK(WAIT_UNTIL(live_games(watch) == 2, 5000));
	CHECK(write(to_child[1], "xx", 2) == 2);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(waitpid(pid2, &st, 0) == pid2 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	printf("forked_child: a child's copy of a handle is refused and its close changes "
	       "nothing; the opener's close ends the owned games while a child holds the socket\n");
	close(to_child[0]);
	close(to_child[1]);
	close(from_child[0]);
	close(from_child[1]);
	xr_games_close(watch);
	engine_stop(&e);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0); /* nothing buffered to copy into a fork */
	signal(SIGPIPE, SIG_IGN);
	lifecycle();
	refusals();
	garbage();
	big_boards();
	stop_ends_episodes();
	lazy_observations();
	reset_after_create();
	reset_flood();
	request_flood();
	pooled_reset_fails();
	forked_child();
	printf("ok\n");
	return 0;
}
