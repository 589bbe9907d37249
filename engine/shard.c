/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/shard.h"
#include "engine/timer_wheel.h"
#include "engine/uring_clock.h"
#include "shm/arena_priv.h"
#include "util/atomics.h"
#include "util/clock.h"
#include "xring/error.h"
#include "xring/writer.h"

#define XR_SHARD_STOP_CHECK_NS 100000000ull /* longest sleep without looking at stop */
#define XR_SHARD_STATS_NS 500000000ull     /* shard stats to the arena, 2 Hz */
#define XR_SHARD_FAST_TICK_NS 1000000ull   /* wheel tick without --tick-ms */
#define XR_SHARD_PUBLISH 64                /* records per publish */

struct game_slot {
	struct xr_timer timer;          /* turn deadline (tick mode) */
	void *g;
	uint64_t episode;
	uint32_t turn;
	bool ended;                     /* terminal records emitted: reset next */
	bool terminal;                  /* the last step ended the episode */
	float reward[XR_GAME_MAX_PLAYERS];
	uint32_t flags[XR_GAME_MAX_PLAYERS];
};

int xr_shard_shape(const xr_game_vtable *vt, const xr_game_config *cfg, xr_dtype dtype,
		   xr_exp_shape *out)
{
	xr_game_sizes sz;
	void *g;
	int rc = vt->create(cfg, &g);

	if (rc < 0)
		return rc;
	vt->sizes(g, &sz);
	vt->destroy(g);
	*out = (xr_exp_shape){
		.obs_dtype = dtype,
		.obs_ndim = 3,
		.obs_dims = {(int32_t)sz.obs_channels, (int32_t)sz.obs_h, (int32_t)sz.obs_w},
		.mask_len = sz.n_actions,
	};
	return 0;
}

/* Reserves a record, waiting while the writer may not go on: a lossless
 * ring full, or past its high watermark (the shard's games pause
 * meanwhile: backpressure; xr_writer_wait() is the one wait loop). 0,
 * XR_EDROPPED, -EINTR (stop asked) or -errno. */
static int reserve(xr_writer *w, uint32_t size, void **p, const struct xr_shard_opts *o,
		   struct xr_shard_result *res)
{
	uint64_t t0 = 0;
	int rc;

	for (;;) {
		rc = xr_writer_reserve(w, size, p);
		if (rc != -EAGAIN)
			break;
		if (!t0) {
			t0 = xr__now_ns();
			res->pauses++;
		}
		res->waits++;
		rc = xr_writer_wait(w, size, XR_SHARD_STOP_CHECK_NS);
		if (o->stop && *o->stop) {
			rc = -EINTR;
			break;
		}
		if (rc < 0 && rc != -ETIMEDOUT && rc != -EINTR)
			break;
	}
	if (t0)
		res->paused_ns += xr__now_ns() - t0;
	return rc;
}

/* Everything a turn needs; one per running shard. */
struct shard {
	xr_writer *w;
	const xr_exp_template *t;
	const struct xr_shard_opts *o;
	struct xr_shard_result *res;
	struct game_slot *gs;
	uint8_t *scratch;
	struct xr_wheel *wheel;         /* turn deadlines (tick mode), stats */
	uint64_t tick_ns;               /* the wheel's tick */
	uint64_t start;                 /* tick 0 */
	uint64_t tick_now;              /* the tick being processed */
	struct xr_timer stats;
	struct xr_shard_stats *st;      /* ours, in the arena header */
	uint64_t rng;
	uint64_t now;
	uint32_t since_publish;
	int err;              /* first error, or -EINTR when asked to stop */
};

/* Plays one turn of game i: a record per live player, then a step (or, after
 * the episode ended, the terminal records and a reset). */
static void play_turn(struct shard *sh, uint32_t i)
{
	const struct xr_shard_opts *o = sh->o;
	const xr_exp_template *t = sh->t;
	struct game_slot *s = &sh->gs[i];
	int32_t actions[XR_GAME_MAX_PLAYERS];

	if (s->ended) {
		s->episode++;
		o->vt->reset(s->g, o->cfg.seed + i + s->episode * (uint64_t)o->games);
		memset(s->reward, 0, sizeof(s->reward));
		memset(s->flags, 0, sizeof(s->flags));
		s->turn = 0;
		s->ended = s->terminal = false;
	}
	for (uint32_t p = 0; p < o->cfg.players; p++) {
		void *rec;

		actions[p] = 0;
		if (s->flags[p] & XR_GAME_OUT)
			continue;
		xr_exp_fields f = {
			.seq = xr_writer_next_seq(sh->w),
			.t_ns = sh->now,
			.game_id = o->first_game_id + i,
			.player_id = p,
			.turn = s->turn,
			.reward = s->reward[p],
			.done = (s->flags[p] & XR_GAME_DONE) != 0,
			.truncated = (s->flags[p] & XR_GAME_TRUNCATED) != 0,
		};
		int rc = reserve(sh->w, t->size, &rec, o, sh->res);
		if (rc == XR_EDROPPED) {
			/* Lost to readers, but the game goes on. */
			sh->res->dropped++;
			o->vt->legal_actions(s->g, p, sh->scratch);
			actions[p] = xr_policy_random_legal(sh->scratch, t->shape.mask_len, &sh->rng);
			continue;
		}
		if (rc < 0) {
			sh->err = rc;
			return;
		}
		xr_exp_slots sl;
		xr_exp_build(t, rec, &f, &sl);
		o->vt->observe(s->g, p, o->obs_dtype, sl.obs);
		o->vt->legal_actions(s->g, p, sl.mask);
		actions[p] = xr_policy_random_legal(sl.mask, t->shape.mask_len, &sh->rng);
		memcpy((uint8_t *)rec + t->off_action, &actions[p], sizeof(int32_t));
		xr_writer_commit(sh->w);
		sh->res->records++;
		if (++sh->since_publish == XR_SHARD_PUBLISH) {
			/* Past the high watermark, this publish pauses the
			 * writer: the next reserve waits (backpressure). */
			xr_writer_publish(sh->w);
			sh->since_publish = 0;
		}
	}
	if (s->terminal) {
		/* The terminal observations are out: start over next turn. */
		s->ended = true;
		sh->res->episodes++;
	} else {
		int r = o->vt->step(s->g, actions, s->reward, s->flags);
		sh->res->steps++;
		s->turn++;
		s->terminal = r == 1;
	}
}

static bool done(const struct shard *sh)
{
	const struct xr_shard_opts *o = sh->o;

	return sh->err || (o->stop && *o->stop) ||
	       (o->count && sh->res->records + sh->res->dropped >= o->count);
}

static uint64_t ticks_of(const struct shard *sh, uint64_t ns)
{
	uint64_t t = ns / sh->tick_ns;
	return t ? t : 1;
}

static void report_stats(struct shard *sh)
{
	struct xr_shard_stats *st = sh->st;
	struct timespec cpu;

	xr_store_relaxed(&st->games, sh->o->games);
	xr_store_relaxed(&st->steps, sh->res->steps);
	xr_store_relaxed(&st->episodes, sh->res->episodes);
	xr_store_relaxed(&st->turns_late, sh->res->turns_late);
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0)
		xr_store_relaxed(&st->cpu_ns, (uint64_t)cpu.tv_sec * 1000000000ull +
						      (uint64_t)cpu.tv_nsec);
	xr_store_relaxed(&st->ticks, xr_load_relaxed(&st->ticks) + 1);
	xr_store_relaxed(&st->tick_ns, xr__now_ns());
}

/* Stats timer: the shard's counters into the arena, for tools. */
static void on_stats(struct xr_timer *tm, void *ctx)
{
	struct shard *sh = ctx;

	report_stats(sh);
	xr_wheel_arm(sh->wheel, tm, sh->tick_now + ticks_of(sh, XR_SHARD_STATS_NS));
}

/* After each round of games (fast mode) or each wheel advance (tick mode):
 * publish what the round committed and run the due timers. (The engine's
 * heartbeat is the host's, once per engine: engine/host.c.) */
static void round_end(struct shard *sh)
{
	xr_writer_publish(sh->w);
	sh->since_publish = 0;
	sh->now = xr__now_ns();
	if (!sh->o->tick_ns) {
		sh->tick_now = (sh->now - sh->start) / sh->tick_ns;
		xr_wheel_advance(sh->wheel, sh->tick_now, sh);
	}
}

/* Turn deadlines: each game's timer fires once per tick; its callback plays
 * the turn and re-arms for the next tick. */
static void on_deadline(struct xr_timer *tm, void *ctx)
{
	struct shard *sh = ctx;
	struct game_slot *s = (struct game_slot *)((uint8_t *)tm - offsetof(struct game_slot, timer));
	uint32_t i = (uint32_t)(s - sh->gs);

	if (done(sh))
		return; /* stopping: leave it disarmed */
	if (tm->expires < sh->tick_now)
		sh->res->turns_late++;
	play_turn(sh, i);
	xr_wheel_arm(sh->wheel, tm, tm->expires + 1);
}

int xr_shard_run(xr_writer *w, const xr_exp_template *t, const struct xr_shard_opts *o,
		 struct xr_shard_result *res)
{
	struct shard sh = {.w = w, .t = t, .o = o, .res = res,
			   .rng = o->cfg.seed * 0x9e3779b97f4a7c15ull + 1};
	struct xr_uclock clock;
	bool clock_ok = false;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	sh.start = xr__now_ns();
	sh.tick_ns = o->tick_ns ? o->tick_ns : XR_SHARD_FAST_TICK_NS;
	sh.st = xr__writer_shard_stats(w);
	rc = xr_writer_set_watermarks(w, o->high_watermark, o->low_watermark);
	if (rc == 0 && o->lease_timeout_ns)
		rc = xr_writer_set_lease_timeout(w, o->lease_timeout_ns);
	if (rc < 0)
		return rc;
	sh.gs = calloc(o->games, sizeof(*sh.gs));
	sh.scratch = malloc(t->shape.mask_len ? t->shape.mask_len : 1);
	sh.wheel = malloc(sizeof(*sh.wheel));
	if (!sh.gs || !sh.scratch || !sh.wheel) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < o->games; i++) {
		xr_game_config c = o->cfg;
		c.seed = o->cfg.seed + i;
		rc = o->vt->create(&c, &sh.gs[i].g);
		if (rc < 0)
			goto out;
	}
	sh.now = sh.start;

	/* One wheel for everything timed: tick k is at start + k * tick_ns.
	 * The stats tick is a timer on it like the turn deadlines. */
	xr_wheel_init(sh.wheel, 0);
	xr_timer_init(&sh.stats, on_stats);
	xr_wheel_arm(sh.wheel, &sh.stats, ticks_of(&sh, XR_SHARD_STATS_NS));
	report_stats(&sh);

	if (!o->tick_ns) {
		/* As fast as the ring allows: round robin over the games, the
		 * wheel advanced between rounds. */
		while (!done(&sh)) {
			for (uint32_t i = 0; i < o->games && !done(&sh); i++)
				play_turn(&sh, i);
			round_end(&sh);
		}
	} else {
		rc = xr_uclock_init(&clock);
		if (rc < 0)
			goto out;
		clock_ok = true;
		/* Every game's first turn is at tick 1, and each turn arms the
		 * next one tick later. */
		for (uint32_t i = 0; i < o->games; i++) {
			xr_timer_init(&sh.gs[i].timer, on_deadline);
			xr_wheel_arm(sh.wheel, &sh.gs[i].timer, 1);
		}
		while (!done(&sh)) {
			sh.tick_now = (sh.now - sh.start) / o->tick_ns;
			xr_wheel_advance(sh.wheel, sh.tick_now, &sh);
			round_end(&sh);
			uint64_t next = xr_wheel_next(sh.wheel);
			if (next == UINT64_MAX || done(&sh))
				break;
			/* One absolute io_uring timeout for the whole shard; at
			 * most XR_SHARD_STOP_CHECK_NS away, so that a stop request
			 * (a flag: the signal goes to another thread) is seen
			 * within that even with long ticks. */
			uint64_t due = sh.start + next * o->tick_ns;
			if (due > sh.now + XR_SHARD_STOP_CHECK_NS)
				due = sh.now + XR_SHARD_STOP_CHECK_NS;
			rc = xr_uclock_sleep_until(&clock, due);
			if (rc < 0 && rc != -EINTR)
				goto out;
			rc = 0;
			sh.now = xr__now_ns();
		}
	}
	if (sh.err && sh.err != -EINTR)
		rc = sh.err;
out:
	xr_writer_publish(w);
	res->elapsed_ns = xr__now_ns() - sh.start;
	if (sh.gs && sh.wheel)
		report_stats(&sh);
	if (clock_ok)
		xr_uclock_fini(&clock);
	if (sh.gs)
		for (uint32_t i = 0; i < o->games; i++)
			if (sh.gs[i].g)
				o->vt->destroy(sh.gs[i].g);
	free(sh.gs);
	free(sh.scratch);
	free(sh.wheel);
	return rc;
}
