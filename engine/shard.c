/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "engine/shard.h"
#include "engine/timer_wheel.h"
#include "engine/uring_clock.h"
#include "shm/arena_priv.h"
#include "shm/hist.h"
#include "util/atomics.h"
#include "util/clock.h"
#include "xring/agent.h"
#include "xring/error.h"
#include "xring/writer.h"

#define XR_SHARD_STOP_CHECK_NS 100000000ull /* longest sleep without looking at stop */
#define XR_SHARD_STATS_NS 500000000ull     /* shard stats to the arena, 2 Hz */
#define XR_SHARD_FAST_TICK_NS 1000000ull   /* wheel tick without --tick-ms */
#define XR_SHARD_PUBLISH 64                /* records per publish */
#define XR_SHARD_IDLE_NS 1000000L          /* no game: look for orders this often */
#define XR_SHARD_SPIN_NS 50000ull          /* every game waits for agents: spin this
					    * long for their answers... */
#define XR_SHARD_NAP_NS 50000L             /* ...then look this often */

struct game_slot {
	struct xr_timer timer;          /* turn deadline (tick mode) */
	const xr_game_vtable *vt;
	void *g;
	uint64_t seed;                  /* of episode 0 */
	uint64_t episode;               /* since the last seeding */
	uint64_t episodes;              /* ended or cut short, since creation */
	uint64_t rng;                   /* the game's random-legal policy */
	uint64_t ordered_ns;            /* its creation order's time, until its
					 * first record is out; then 0 */
	uint32_t id;
	uint32_t uid;                   /* its creator's: whose agents may act for it */
	uint32_t live_at;               /* index in the live list */
	uint32_t turn;
	uint16_t stream;
	uint8_t players;
	uint8_t want;                   /* players some reader wants (lazy) */
	uint32_t want_gen;              /* ...as of this interest generation */
	uint32_t resets_taken;          /* reset orders of this game taken */
	bool in_use;
	bool shown;                     /* a record of this episode is out */
	bool ended;                     /* terminal records emitted: reset next */
	bool terminal;                  /* the last step ended the episode */
	float reward[XR_GAME_MAX_PLAYERS];
	uint32_t flags[XR_GAME_MAX_PLAYERS];
	/* The step that led here, for each player's next record. */
	int32_t applied[XR_GAME_MAX_PLAYERS];
	uint8_t applied_by[XR_GAME_MAX_PLAYERS];
	/* This turn: the actions the step will take, and who chose them. */
	int32_t act[XR_GAME_MAX_PLAYERS];
	uint8_t src[XR_GAME_MAX_PLAYERS];
	/* Agents: the seats held (as of seat_gen), and those whose records
	 * of this turn went out held, waiting for answers (awaiting). */
	uint32_t seat_gen;
	uint8_t held;
	uint8_t asked;
	uint8_t timed_out;              /* players whose last turn timed out */
	bool awaiting;
	uint64_t out_ns;                /* when this turn's records went out */
	uint64_t due_ns;                /* no tick: fallbacks from then on */
	uint8_t agent[XR_GAME_MAX_PLAYERS];
	/* The tag an answer to a record of turn t carries, at [p][t % depth]
	 * (0: none can come: not asked, or dropped), and the one the last
	 * step took. */
	uint32_t tag[XR_GAME_MAX_PLAYERS][XR_SEAT_DEPTH_MAX];
	uint32_t last_tag[XR_GAME_MAX_PLAYERS];
	_Atomic uint64_t *slot[XR_GAME_MAX_PLAYERS];
};

/* An agent's counts on this shard, published on the stats tick. */
struct agent_ctr {
	uint64_t actions, timeouts, late, wrong_turn, out_of_range, illegal, fallbacks;
	struct xr_lat rtt;
};

/* One stream the shard writes: its ring's writer and record template. */
struct sstream {
	xr_writer *w;
	const xr_exp_template *t;
	xr_dtype dtype;
	uint32_t since_publish;
	uint8_t *scratch;               /* a mask for a dropped record */
};

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t xr_episode_seed(uint64_t s, uint64_t e)
{
	/* Hashed rather than s + e, so that games seeded 1, 2, 3... do not
	 * replay each other's episodes one episode apart. */
	return e ? splitmix64(s ^ splitmix64(e)) : s;
}

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

/* Everything a turn needs; one per running shard. */
struct shard {
	struct sstream ss[XR_SHARD_STREAMS_MAX];
	uint32_t n_streams;
	const struct xr_shard_opts *o;
	struct xr_shard_result *res;
	struct game_slot *gs;           /* [cap] */
	uint32_t *live;                 /* slots in play, in round-robin order */
	uint32_t n_live, cap;
	struct xr_wheel *wheel;         /* turn deadlines (tick mode), stats */
	uint64_t tick_ns;               /* the wheel's tick */
	uint64_t start;                 /* tick 0 */
	uint64_t tick_now;              /* the tick being processed */
	struct xr_timer stats;
	struct xr_shard_stats *st;      /* ours, in the arena header */
	struct xr_game_stats *gst;      /* ...and our games' */
	struct xr_lat creation;         /* creation latencies */
	uint64_t last_report_ns;        /* and the counts then, for rates */
	uint64_t last_created, last_destroyed, last_resets, last_steps;
	uint64_t now;
	struct xr_interest_view iv;     /* lazy: our copy of who wants what */
	uint32_t igen;                  /* bumped at each new copy; 0: not lazy */
	struct xr_seats_view sv;        /* agents: our copy of who holds which seat */
	uint32_t sgen;                  /* bumped at each new copy; 0: no agents */
	struct agent_ctr *ag;           /* [XR_MAX_AGENTS] */
	uint32_t ag_gen[XR_MAX_AGENTS]; /* ...counting for that open of the entry */
	uint64_t idle_since;            /* fast: when the rounds stopped moving */
	uint32_t depth;                 /* slot sets per game: input_delay + 1 */
	uint32_t hw;                    /* one past the highest slot ever used: the
					 * slots past it were never touched, and
					 * reading them at the end would fault in
					 * all of gs[] (0.8 s at 100,000 games) */
	bool draining;                  /* stopping: final records only */
	uint64_t drain_end;
	int err;              /* first error, or -EINTR when asked to stop */
};

static bool stop_asked(const struct shard *sh)
{
	return sh->o->stop && xr_load_relaxed(sh->o->stop);
}

/* Reserves a record, waiting while the writer may not go on: a lossless
 * ring full, or past its high watermark (the shard's games pause
 * meanwhile: backpressure; xr_writer_wait() is the one wait loop). While
 * draining, waits past a stop but not past the drain's end. 0,
 * XR_EDROPPED, -EINTR (stop asked), -ETIMEDOUT (drain over) or -errno. */
static int reserve(struct shard *sh, struct sstream *ss, void **p)
{
	struct xr_shard_result *res = sh->res;
	uint32_t size = ss->t->size;
	uint64_t t0 = 0;
	int rc;

	for (;;) {
		rc = xr_writer_reserve(ss->w, size, p);
		if (rc != -EAGAIN)
			break;
		uint64_t now = xr__now_ns(), wait = XR_SHARD_STOP_CHECK_NS;
		if (!t0) {
			t0 = now;
			res->pauses++;
		}
		if (sh->draining) {
			if (now >= sh->drain_end) {
				rc = -ETIMEDOUT;
				break;
			}
			if (sh->drain_end - now < wait)
				wait = sh->drain_end - now;
		}
		res->waits++;
		rc = xr_writer_wait(ss->w, size, (int64_t)wait);
		if (!sh->draining && stop_asked(sh)) {
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

/* Starts episode e of slot s from its seed: the game, the rewards and
 * flags, and the policy's generator, so that the episode depends on the
 * seed alone. */
static void start_episode(struct game_slot *s, uint64_t e, bool fresh)
{
	uint64_t seed = xr_episode_seed(s->seed, e);

	if (!fresh)
		s->vt->reset(s->g, seed); /* a new instance is in reset(seed) already */
	s->episode = e;
	s->rng = splitmix64(seed ^ 0x243f6a8885a308d3ull);
	memset(s->reward, 0, sizeof(s->reward));
	memset(s->flags, 0, sizeof(s->flags));
	for (uint32_t p = 0; p < XR_GAME_MAX_PLAYERS; p++) {
		s->applied[p] = -1;
		s->applied_by[p] = XR_SRC_NONE;
	}
	s->awaiting = false;
	memset(s->tag, 0, sizeof(s->tag)); /* the last episode's answers answer nothing */
	s->turn = 0;
	s->shown = s->ended = s->terminal = false;
}

/* A created game's first turn is being played (its first records written,
 * or dropped, or, lazy, not wanted): how long since it was asked for. */
static void creation_done(struct shard *sh, struct game_slot *s)
{
	uint64_t now = xr__now_ns(), ns = now > s->ordered_ns ? now - s->ordered_ns : 0;

	xr__lat_add(&sh->creation, ns);
	s->ordered_ns = 0;
}

/* What write_record() puts in a record's action field. */
enum rec_mode {
	REC_POLICY, /* the policy's draw at this observation, into *action */
	REC_AGENT,  /* -1: an agent holds the seat; its tag into s->tag[p] */
	REC_FINAL,  /* -1: no step follows */
};

/* Writes player p's record of slot s's current state: the reward and
 * flags its last step left and the action that step applied, the
 * observation and mask now, and the action field as mode says. The
 * policy's draw is made even when the record is dropped. 0 or an error
 * of reserve() (XR_EDROPPED is not one: the record is counted as dropped). */
static int write_record(struct shard *sh, struct game_slot *s, uint32_t p, bool done,
			bool truncated, enum rec_mode mode, int32_t *action)
{
	struct sstream *ss = &sh->ss[s->stream];
	const xr_exp_template *t = ss->t;
	void *rec;
	int rc = reserve(sh, ss, &rec);

	s->shown = true;
	*action = -1;
	if (rc == XR_EDROPPED) {
		/* Lost to readers, but the game goes on, drawing as it would;
		 * an agent cannot answer a record it never saw (tag 0 is
		 * never an answer: the seat falls back at once, TIMEOUT,
		 * answered()). */
		sh->res->dropped++;
		if (mode == REC_POLICY) {
			s->vt->legal_actions(s->g, p, ss->scratch);
			*action = xr_policy_random_legal(ss->scratch, t->shape.mask_len, &s->rng);
		} else if (mode == REC_AGENT) {
			s->tag[p][s->turn % sh->depth] = 0;
		}
		return 0;
	}
	if (rc < 0)
		return rc;
	xr_exp_fields f = {
		.seq = xr_writer_next_seq(ss->w),
		.t_ns = sh->now,
		.game_id = s->id,
		.player_id = p,
		.turn = s->turn,
		.reward = s->reward[p],
		.done = done,
		.truncated = truncated,
		.applied = s->applied[p],
		.applied_by = s->applied_by[p],
	};
	xr_exp_slots sl;
	xr_exp_build(t, rec, &f, &sl);
	s->vt->observe(s->g, p, ss->dtype, sl.obs);
	s->vt->legal_actions(s->g, p, sl.mask);
	if (mode == REC_POLICY)
		*action = xr_policy_random_legal(sl.mask, t->shape.mask_len, &s->rng);
	else if (mode == REC_AGENT)
		s->tag[p][s->turn % sh->depth] = xr_seat_tag(f.seq);
	memcpy((uint8_t *)rec + t->off_action, action, sizeof(int32_t));
	xr_writer_commit(ss->w);
	sh->res->records++;
	if (++ss->since_publish == XR_SHARD_PUBLISH) {
		/* Past the high watermark, this publish pauses the writer:
		 * the next reserve waits (backpressure). */
		xr_writer_publish(ss->w);
		ss->since_publish = 0;
	}
	return 0;
}

static void publish_all(struct shard *sh)
{
	for (uint32_t k = 0; k < sh->n_streams; k++) {
		xr_writer_publish(sh->ss[k].w);
		sh->ss[k].since_publish = 0;
	}
}

static void episode_over(struct shard *sh, struct game_slot *s)
{
	s->ended = true;
	s->episodes++;
	sh->res->episodes++;
	if (sh->o->pub)
		xr_store_relaxed(&sh->o->pub[s - sh->gs].episodes, s->episodes);
}

/* The players of s whose records some reader wants: all, unless lazy. */
static uint32_t wanted(struct shard *sh, struct game_slot *s)
{
	if (!sh->igen)
		return UINT32_MAX;
	if (s->want_gen != sh->igen) {
		s->want = (uint8_t)xr__interest_players(&sh->iv, s->stream, s->id, s->players);
		s->want_gen = sh->igen;
	}
	return s->want;
}

/* Which seats of s agents hold, from the shard's latest copy of the
 * claims. Called before any use of s->slot[]: a page is unmapped only
 * once every shard has copied a table without it (engine/seats.c). */
static void refresh_seats(struct shard *sh, struct game_slot *s)
{
	if (s->seat_gen == sh->sgen)
		return;
	s->seat_gen = sh->sgen;
	s->held = 0;
	for (uint32_t p = 0; sh->sgen && p < s->players; p++) {
		uint32_t agent;
		_Atomic uint64_t *slot;
		if (!xr__seats_find(&sh->sv, s->id, s->uid, p, &agent, &slot))
			continue;
		s->held |= (uint8_t)(1u << p);
		if (s->agent[p] != agent || s->slot[p] != slot) {
			/* A new holder: records asked of another answer nothing. */
			s->last_tag[p] = 0;
			memset(s->tag[p], 0, sizeof(s->tag[p]));
		}
		s->agent[p] = (uint8_t)agent;
		s->slot[p] = slot;
	}
}

/* The word in a held seat's action slot. ORDERING: AC2, relaxed: the word
 * is all the shard takes from the agent, tag and action together in one
 * 64-bit store (AC1, client/agent.c), so no other memory needs ordering
 * with it, and it is never torn. */
static uint64_t slot_word(const struct game_slot *s, uint32_t p, uint32_t m)
{
	return xr_load_relaxed(s->slot[p] + 8 * m); /* AC2 */
}

/* The step from s's turn takes the answers to the records of turn - K
 * (--input-delay K): their set of slots, or -1 in an episode's first K
 * steps, which no answer is for. */
static int answer_set(const struct shard *sh, const struct game_slot *s)
{
	uint32_t k = sh->o->input_delay;

	return s->turn < k ? -1 : (int)((s->turn - k) % sh->depth);
}

/* Whether every seat of s asked for an answer has one tagged for this
 * turn (whatever it says: it is checked when taken). */
static bool answered(struct shard *sh, struct game_slot *s)
{
	int m = answer_set(sh, s);

	refresh_seats(sh, s);
	if (m < 0)
		return true; /* nothing to wait for */
	for (uint32_t p = 0; p < s->players; p++) {
		if (!(s->asked & s->held & (1u << p)))
			continue;
		uint32_t want = s->tag[p][m];
		/* A record not asked of this holder, or dropped, gets no
		 * answer: not worth waiting for. */
		if (want && (uint32_t)(slot_word(s, p, (uint32_t)m) >> 32) != want)
			return false;
	}
	return true;
}

/* The fallback of player p of s, with the game's mask in mask. */
static int32_t fallback(struct shard *sh, struct game_slot *s, uint32_t p, const uint8_t *mask,
			uint32_t n)
{
	switch (sh->o->fallback) {
	case XR_FALLBACK_REPEAT:
		if (s->applied[p] >= 0 && (uint32_t)s->applied[p] < n && mask[s->applied[p]])
			return s->applied[p];
		return -1;
	case XR_FALLBACK_POLICY:
		return xr_policy_random_legal(mask, n, &s->rng);
	default:
		/* step() treats an action out of range as the game's no-op
		 * (xring/game.h): -1 is every game's no-op. */
		return -1;
	}
}

/* Takes the answer of held player p of s, or its fallback and why. */
static void take_answer(struct shard *sh, struct game_slot *s, uint32_t p, uint64_t now)
{
	struct sstream *ss = &sh->ss[s->stream];
	uint32_t n = ss->t->shape.mask_len;
	struct agent_ctr *c = &sh->ag[s->agent[p]];
	int m = answer_set(sh, s);
	uint8_t src;

	s->vt->legal_actions(s->g, p, ss->scratch);
	if (m < 0) {
		/* --input-delay: no answer is for this step. Not the agent's
		 * doing: not counted. */
		s->act[p] = fallback(sh, s, p, ss->scratch, n);
		s->src[p] = XR_SRC_DELAY;
		return;
	}
	uint32_t want = s->tag[p][m];
	uint64_t w = slot_word(s, p, (uint32_t)m);
	uint32_t tag = (uint32_t)(w >> 32);
	int32_t a = (int32_t)(uint32_t)w;

	if (want && tag == want) {
		if (!sh->o->input_delay)
			xr__lat_add(&c->rtt, now - s->out_ns); /* this turn's records' answer */
		if (a < 0 || (uint32_t)a >= n)
			src = XR_SRC_OUT_OF_RANGE;
		else
			src = ss->scratch[a] ? XR_SRC_AGENT : XR_SRC_ILLEGAL;
	} else if (tag == 0 || !want || (int32_t)(want - tag) > 0) {
		/* Nothing yet, or an answer to an earlier record (tags follow
		 * the ring's seq): nothing for this turn in time. */
		src = XR_SRC_TIMEOUT;
	} else {
		src = XR_SRC_WRONG_TURN; /* tagged for a record not yet written */
	}
	/* An answer to the step before's record that came after that step
	 * timed out (in the set before this one's). */
	uint32_t before = ((uint32_t)m + sh->depth - 1) % sh->depth;
	if ((s->timed_out >> p & 1u) && s->last_tag[p] &&
	    (uint32_t)(slot_word(s, p, before) >> 32) == s->last_tag[p])
		c->late++;
	s->timed_out = (uint8_t)((s->timed_out & ~(1u << p)) | (src == XR_SRC_TIMEOUT) << p);
	s->last_tag[p] = want;
	switch (src) {
	case XR_SRC_AGENT: c->actions++; sh->res->agent_actions++; break;
	case XR_SRC_TIMEOUT: c->timeouts++; break;
	case XR_SRC_WRONG_TURN: c->wrong_turn++; break;
	case XR_SRC_OUT_OF_RANGE: c->out_of_range++; break;
	default: c->illegal++; break;
	}
	if (src != XR_SRC_AGENT) {
		c->fallbacks++;
		sh->res->agent_fallbacks++;
		a = fallback(sh, s, p, ss->scratch, n);
	}
	s->act[p] = a;
	s->src[p] = src;
}

/* Steps s with s->act (or, after the episode ended, starts over next
 * turn): what each player's next record says was applied. */
static void step(struct shard *sh, struct game_slot *s)
{
	uint32_t before[XR_GAME_MAX_PLAYERS];

	s->awaiting = false;
	if (s->terminal) {
		/* The terminal observations are out: start over next turn. */
		episode_over(sh, s);
		return;
	}
	memcpy(before, s->flags, sizeof(before));
	int r = s->vt->step(s->g, s->act, s->reward, s->flags);
	sh->res->steps++;
	s->turn++;
	s->terminal = r == 1;
	for (uint32_t p = 0; p < s->players; p++) {
		if (before[p] & XR_GAME_OUT)
			continue;
		s->applied[p] = s->act[p];
		s->applied_by[p] = s->src[p];
	}
	if (sh->o->pub)
		xr_store_relaxed(&sh->o->pub[s - sh->gs].turn, s->turn);
}

/* The answers of a game waiting for its agents are in (or its time is
 * up): takes them, or the fallbacks, and steps. */
static void act(struct shard *sh, struct game_slot *s)
{
	uint64_t now = xr__now_ns();

	refresh_seats(sh, s);
	for (uint32_t p = 0; p < s->players; p++) {
		if (!(s->asked >> p & 1u))
			continue;
		if (s->held >> p & 1u) {
			take_answer(sh, s, p, now);
		} else {
			/* Its agent went while the game waited: the policy's. */
			struct sstream *ss = &sh->ss[s->stream];
			s->vt->legal_actions(s->g, p, ss->scratch);
			s->act[p] = xr_policy_random_legal(ss->scratch, ss->t->shape.mask_len,
							   &s->rng);
			s->src[p] = XR_SRC_POLICY;
		}
	}
	step(sh, s);
}

/* Writes the records of s's turn: one per live player (lazy: per player
 * some reader or agent wants; the others' actions are drawn as if their
 * records were written, so that what is played does not depend on who
 * reads). A seat an agent holds is asked for its action: the game then
 * waits (awaiting); otherwise it steps at once. */
static void observe(struct shard *sh, struct game_slot *s)
{
	refresh_seats(sh, s);
	uint32_t want = wanted(sh, s) | s->held;

	if (s->ordered_ns)
		creation_done(sh, s); /* its first turn: its first records, if read */
	if (s->ended)
		start_episode(s, s->episode + 1, false);
	s->asked = 0;
	for (uint32_t p = 0; p < s->players; p++) {
		s->act[p] = 0;
		s->src[p] = XR_SRC_POLICY;
		if (s->flags[p] & XR_GAME_OUT)
			continue;
		if (!(want & (1u << p))) {
			uint8_t *mask = sh->ss[s->stream].scratch;
			s->vt->legal_actions(s->g, p, mask);
			s->act[p] = xr_policy_random_legal(
				mask, sh->ss[s->stream].t->shape.mask_len, &s->rng);
			continue;
		}
		/* A held seat's last record of the episode asks nothing: the
		 * game's (terminal: no step follows) or the player's own (out
		 * while the others play on: the game ignores its actions from
		 * now on, and an agent does not answer a done record, so
		 * waiting for one would hold the game up to its deadline). It
		 * is still the agent's seat: -1, not a policy draw. */
		bool held = (s->held >> p & 1u) && !s->terminal && !(s->flags[p] & XR_GAME_DONE);
		enum rec_mode mode = held ? REC_AGENT
				     : (s->held >> p & 1u) ? REC_FINAL : REC_POLICY;
		int rc = write_record(sh, s, p, (s->flags[p] & XR_GAME_DONE) != 0,
				      (s->flags[p] & XR_GAME_TRUNCATED) != 0, mode, &s->act[p]);
		if (rc < 0) {
			sh->err = rc;
			return;
		}
		if (held)
			s->asked |= (uint8_t)(1u << p);
	}
	if (s->asked) {
		s->awaiting = true;
		s->out_ns = xr__now_ns();
		uint64_t t = sh->o->action_timeout_ns ? sh->o->action_timeout_ns
						      : XR_SHARD_ACTION_TIMEOUT_NS;
		s->due_ns = s->out_ns + t;
		return;
	}
	step(sh, s);
}

/* Plays one turn of slot s: its step, when it waits for agents' answers
 * and they are in (or its time is up: force, its tick), then the records
 * of its next turn. Returns whether it moved. */
static bool play_turn(struct shard *sh, struct game_slot *s, bool force)
{
	if (s->awaiting) {
		if (!force && !answered(sh, s) && sh->now < s->due_ns &&
		    (sh->now = xr__now_ns()) < s->due_ns)
			return false;
		act(sh, s);
	}
	observe(sh, s);
	return true;
}

/* Ends slot s's episode in flight, if a record of it is out: each player
 * not out yet (and, lazy, that some reader wants) gets its last record now,
 * truncated set (or done, where the last step ended it), action -1. A player is marked out as its record is
 * written, so that a call cut short by an error can be taken up again. 0
 * or reserve()'s error. */
static int end_episode(struct shard *sh, struct game_slot *s)
{
	int32_t none;

	/* Its agents' answers (or fallbacks) are taken first: the final
	 * records then follow a step, as every record does, and say what it
	 * applied. */
	if (s->awaiting)
		act(sh, s);
	refresh_seats(sh, s);
	uint32_t want = wanted(sh, s) | s->held; /* lazy: nobody reads the others */

	if (!s->shown || s->ended)
		return 0;
	for (uint32_t p = 0; p < s->players; p++) {
		uint32_t fl = s->flags[p];
		if (fl & XR_GAME_OUT)
			continue;
		if (!(want & (1u << p))) {
			s->flags[p] |= XR_GAME_OUT;
			continue;
		}
		bool done = (fl & XR_GAME_DONE) != 0;
		int rc = write_record(sh, s, p, done, !done || (fl & XR_GAME_TRUNCATED), REC_FINAL,
				      &none);
		if (rc < 0)
			return rc;
		s->flags[p] |= XR_GAME_OUT;
		if (!done)
			sh->res->finals++;
	}
	episode_over(sh, s);
	return 0;
}

/* The players whose episode end end_episode() has not written yet. */
static uint32_t ends_owed(struct shard *sh, struct game_slot *s)
{
	uint32_t n = 0, want = wanted(sh, s) | s->held;

	if (s->shown && !s->ended)
		for (uint32_t p = 0; p < s->players; p++)
			n += !(s->flags[p] & XR_GAME_OUT) && (want & (1u << p));
	return n;
}

static void on_deadline(struct xr_timer *tm, void *ctx);

static void go_live(struct shard *sh, struct game_slot *s)
{
	s->live_at = sh->n_live;
	sh->live[sh->n_live++] = (uint32_t)(s - sh->gs);
	s->in_use = true;
	if (sh->o->pub) {
		xr_store_relaxed(&sh->o->pub[s - sh->gs].turn, 0);
		xr_store_relaxed(&sh->o->pub[s - sh->gs].episodes, 0);
	}
	if (sh->o->tick_ns) {
		/* A game's first turn is at the next tick boundary (perhaps
		 * at once), each turn arming the next a tick later. */
		xr_timer_init(&s->timer, on_deadline);
		xr_wheel_arm(sh->wheel, &s->timer, sh->tick_now + 1);
	}
}

/* Out of play: the last live slot takes its place in the round robin. */
static void leave(struct shard *sh, struct game_slot *s)
{
	uint32_t last = sh->live[--sh->n_live];

	sh->live[s->live_at] = last;
	sh->gs[last].live_at = s->live_at;
	if (sh->o->tick_ns)
		xr_wheel_cancel(sh->wheel, &s->timer);
	s->in_use = false;
}

/* One order of the directory. A slot of an order is the directory's
 * choice, and it sends no order for a slot it has not been given back:
 * the checks are for a directory with a bug, not a peer (peers never
 * name slots). */
static void take_order(struct shard *sh, const struct xr_lc_msg *m)
{
	struct game_slot *s = m->slot < sh->cap ? &sh->gs[m->slot] : NULL;

	if (!s || (m->op == XR_LC_CREATE) == s->in_use || (m->op != XR_LC_CREATE && s->id != m->game_id))
		return;
	switch (m->op) {
	case XR_LC_CREATE:
		if (m->slot >= sh->hw)
			sh->hw = m->slot + 1;
		*s = (struct game_slot){.vt = m->vt, .g = m->g, .seed = m->seed, .id = m->game_id,
					.uid = m->uid,
					.stream = (uint16_t)m->stream, .players = (uint8_t)m->players,
					.ordered_ns = m->t_ns ? m->t_ns : 1};
		start_episode(s, 0, true);
		go_live(sh, s);
		sh->res->created++;
		break;
	case XR_LC_RESET: {
		uint64_t seed = m->seed;
		if ((sh->err = end_episode(sh, s)) < 0)
			return;
		if (sh->o->pub) {
			/* GR3, then GR4 (engine/games.c, "Resets"): taken, and only
			 * then the seed, which resets asked for while this order
			 * waited have changed. */
			struct xr_game_pub *p = &sh->o->pub[m->slot];
			xr_store_sc(&p->resets, ++s->resets_taken);
			seed = xr_load_sc(&p->reset_seed);
			xr_store_relaxed(&p->turn, 0);
		}
		s->seed = seed;
		start_episode(s, 0, false);
		sh->res->resets++;
		break;
	}
	case XR_LC_DESTROY: {
		if ((sh->err = end_episode(sh, s)) < 0)
			return;
		leave(sh, s);
		struct xr_lc_msg back = {.op = XR_LC_FREED, .slot = m->slot, .game_id = s->id,
					 .g = s->g, .vt = s->vt};
		/* The queue back holds every slot: never full. */
		xr__lc_push(sh->o->out, &back);
		s->g = NULL;
		sh->res->destroyed++;
		break;
	}
	}
}

/* Whether reset order m names the game in its slot now. */
static bool reset_finds_game(const struct shard *sh, const struct xr_lc_msg *m)
{
	return m->slot < sh->cap && sh->gs[m->slot].in_use && sh->gs[m->slot].id == m->game_id;
}

/* The creations and destructions waiting now (not those that come
 * meanwhile: see take_orders). */
static void take_in(struct shard *sh)
{
	struct xr_lc_msg m;

	if (!sh->o->in)
		return;
	for (uint64_t n = xr__lc_waiting(sh->o->in); n && !sh->err && xr__lc_pop(sh->o->in, &m); n--)
		take_order(sh, &m);
}

/* The directory's orders, between rounds: those waiting when the round
 * ended, not those that come while they are taken. A reset costs what
 * building its game does (milliseconds for a large board) and its final
 * records may wait for readers; a peer that kept ordering as fast as the
 * shard took its orders (a game reset again the moment its reset is
 * taken) would otherwise keep the shard here for as long as it liked,
 * every game on it stopped. So a round's orders are bounded by what was
 * there, at most one reset of each game (engine/games.c, "Resets"). */
static void take_orders(struct shard *sh)
{
	struct xr_lc_msg m;

	/* Creations first, so that a reset of a game created meanwhile
	 * finds it. */
	take_in(sh);
	uint64_t n = sh->o->resets ? xr__lc_waiting(sh->o->resets) : 0;
	for (; n && !sh->err && xr__lc_pop(sh->o->resets, &m); n--) {
		/* A reset whose game is not here may be of a game created since
		 * `in` was drained (taking resets can take a while: their final
		 * records wait for lossless readers): the directory pushed its
		 * CREATE before the RESET, and popping the RESET (LQ2) makes
		 * that CREATE visible, so take `in` again before giving up on
		 * it. Otherwise the reset was dropped although its requester
		 * was told OK. A reset of a game destroyed meanwhile is still
		 * dropped by take_order. */
		if (!reset_finds_game(sh, &m))
			take_in(sh);
		if (!sh->err)
			take_order(sh, &m);
	}
}

static bool done(const struct shard *sh)
{
	const struct xr_shard_opts *o = sh->o;

	return sh->err || stop_asked(sh) ||
	       (o->count && sh->res->records + sh->res->dropped >= o->count);
}

static uint64_t ticks_of(const struct shard *sh, uint64_t ns)
{
	uint64_t t = ns / sh->tick_ns;
	return t ? t : 1;
}

static uint64_t per_s(uint64_t now, uint64_t last, uint64_t dt_ns)
{
	return dt_ns ? (uint64_t)((double)(now - last) * 1e9 / (double)dt_ns + 0.5) : 0;
}

/* The games' lifecycle counts and creation latencies, and the shard's
 * steps/s, for tools. */
static void report_games(struct shard *sh)
{
	struct xr_game_stats *g = sh->gst;
	const struct xr_shard_result *r = sh->res;
	uint64_t now = xr__now_ns(), dt = now - sh->last_report_ns;

	xr_store_relaxed(&g->created, r->created);
	xr_store_relaxed(&g->destroyed, r->destroyed);
	xr_store_relaxed(&g->resets, r->resets);
	xr_store_relaxed(&g->finals, r->finals);
	xr_store_relaxed(&g->finals_lost, r->finals_lost);
	xr_store_relaxed(&g->created_per_s, per_s(r->created, sh->last_created, dt));
	xr_store_relaxed(&g->destroyed_per_s, per_s(r->destroyed, sh->last_destroyed, dt));
	xr_store_relaxed(&g->resets_per_s, per_s(r->resets, sh->last_resets, dt));
	xr_store_relaxed(&sh->st->steps_per_s, per_s(r->steps, sh->last_steps, dt));
	xr__hist_publish(&g->creation, &sh->creation);
	sh->last_report_ns = now;
	sh->last_created = r->created;
	sh->last_destroyed = r->destroyed;
	sh->last_resets = r->resets;
	sh->last_steps = r->steps;
}

/* An agent entry opened again since our last copy of the claims starts
 * its counts from 0. Its new agent had no claim before the copy that
 * shows its first one (the control thread bumps the entry's gen before it
 * publishes a claim, and the copy's acquire orders the two), so no count
 * of it is lost. */
static void new_agents(struct shard *sh)
{
	if (!sh->o->agent_infos)
		return;
	for (uint32_t a = 0; a < XR_MAX_AGENTS; a++) {
		uint32_t gen = xr_load_relaxed(&sh->o->agent_infos[a].gen);
		if (gen != sh->ag_gen[a]) {
			memset(&sh->ag[a], 0, sizeof(sh->ag[a]));
			sh->ag_gen[a] = gen;
		}
	}
}

/* A new copy of the claims: the games whose seats it changed look them up
 * again before any use of a slot (refresh_seats), the others keep theirs,
 * which the copy has unchanged: a page is unmapped only once a copy
 * without its claims is taken (engine/seats.c), and every game of those
 * claims is among the changed. */
static void copy_seats(struct shard *sh)
{
	const struct xr_seats_view *v = &sh->sv;

	xr__seats_copy(sh->o->seats, &sh->sv, sh->o->index);
	new_agents(sh);
	if (v->all_changed) {
		/* Never 0: 0 is "no agents" (sh->sgen) and "look again"
		 * (a game's seat_gen). */
		if (++sh->sgen == 0)
			sh->sgen = 1;
		return;
	}
	for (uint32_t i = 0; i < sh->n_live && v->n_changed; i++) {
		struct game_slot *s = &sh->gs[sh->live[i]];
		for (uint32_t k = 0; k < v->n_changed; k++)
			if (s->id >= v->changed[k].lo && s->id <= v->changed[k].hi) {
				s->seat_gen = 0; /* sgen is never 0 */
				break;
			}
	}
}

/* Each agent's counts on this shard, for tools. */
static void report_agents(struct shard *sh)
{
	uint64_t waiting[XR_MAX_AGENTS] = {0};

	if (!sh->o->agent_stats || !sh->sgen)
		return;
	for (uint32_t i = 0; i < sh->n_live; i++) {
		const struct game_slot *s = &sh->gs[sh->live[i]];
		if (s->awaiting)
			for (uint32_t p = 0; p < s->players; p++)
				if (s->asked & s->held & (1u << p))
					waiting[s->agent[p]]++;
	}
	for (uint32_t a = 0; a < XR_MAX_AGENTS; a++) {
		const struct agent_ctr *c = &sh->ag[a];
		struct xr_agent_counts *o = &sh->o->agent_stats[(size_t)a * sh->o->agent_stats_stride];
		xr_store_relaxed(&o->actions, c->actions);
		xr_store_relaxed(&o->timeouts, c->timeouts);
		xr_store_relaxed(&o->late, c->late);
		xr_store_relaxed(&o->wrong_turn, c->wrong_turn);
		xr_store_relaxed(&o->out_of_range, c->out_of_range);
		xr_store_relaxed(&o->illegal, c->illegal);
		xr_store_relaxed(&o->fallbacks, c->fallbacks);
		xr_store_relaxed(&o->waiting, waiting[a]);
		xr__hist_publish(&o->rtt, &c->rtt);
	}
}

static void report_stats(struct shard *sh)
{
	struct xr_shard_stats *st = sh->st;
	struct timespec cpu;

	xr_store_relaxed(&st->games, sh->n_live);
	xr_store_relaxed(&st->steps, sh->res->steps);
	xr_store_relaxed(&st->episodes, sh->res->episodes);
	xr_store_relaxed(&st->turns_late, sh->res->turns_late);
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0)
		xr_store_relaxed(&st->cpu_ns, (uint64_t)cpu.tv_sec * 1000000000ull +
						      (uint64_t)cpu.tv_nsec);
	xr_store_relaxed(&st->ticks, xr_load_relaxed(&st->ticks) + 1);
	report_games(sh);
	report_agents(sh);
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
 * publish what the round committed, take the directory's orders and run
 * the due timers. (The engine's heartbeat is the host's, once per engine:
 * engine/host.c.) */
static void round_end(struct shard *sh)
{
	publish_all(sh);
	sh->now = xr__now_ns();
	take_orders(sh);
	if (sh->igen && xr__interest_changed(sh->o->interest, &sh->iv)) {
		xr__interest_copy(sh->o->interest, &sh->iv);
		sh->igen++;
	}
	if (sh->sgen && xr__seats_changed(sh->o->seats, &sh->sv))
		copy_seats(sh);
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

	if (done(sh))
		return; /* stopping: leave it disarmed */
	if (tm->expires < sh->tick_now)
		sh->res->turns_late++;
	play_turn(sh, s, true); /* the tick is its agents' deadline */
	xr_wheel_arm(sh->wheel, tm, tm->expires + 1);
}

/* Asked to stop: every episode in flight ends with its final records,
 * waiting for lossless readers no longer than the drain allows; what is
 * left then is counted as lost. */
static void drain(struct shard *sh)
{
	uint64_t ns = sh->o->drain_ns ? sh->o->drain_ns : XR_SHARD_DRAIN_NS;

	sh->draining = true;
	sh->now = xr__now_ns();
	sh->drain_end = sh->now + ns;
	for (uint32_t i = 0; i < sh->n_live; i++) {
		struct game_slot *s = &sh->gs[sh->live[i]];
		if (sh->err == 0 && (sh->err = end_episode(sh, s)) < 0 && sh->err != -ETIMEDOUT)
			break;
		sh->res->finals_lost += ends_owed(sh, s);
	}
	if (sh->err == -ETIMEDOUT)
		sh->err = 0;
	publish_all(sh);
}

/* The games given at start: slots 0.., stream 0. 0 or the game's error. */
static int start_games(struct shard *sh)
{
	const struct xr_shard_opts *o = sh->o;

	for (uint32_t i = 0; i < o->games; i++) {
		struct game_slot *s = &sh->gs[i];
		xr_game_config c = o->cfg;
		sh->hw = i + 1;
		c.seed = o->cfg.seed + i;
		*s = (struct game_slot){.vt = o->vt, .seed = c.seed, .id = o->first_game_id + i,
					.uid = (uint32_t)geteuid(), .players = (uint8_t)o->cfg.players};
		int rc = o->vt->create(&c, &s->g);
		if (rc < 0)
			return rc;
		start_episode(s, 0, true);
		go_live(sh, s);
	}
	return 0;
}

/* Fast mode: round robin over the games, as fast as the rings allow, the
 * orders and the wheel between rounds. */
static void run_fast(struct shard *sh)
{
	while (!done(sh)) {
		uint32_t moved = 0;
		for (uint32_t i = 0; i < sh->n_live && !done(sh); i++)
			moved += play_turn(sh, &sh->gs[sh->live[i]], false);
		if (!sh->n_live) {
			/* No game to play: look for orders every idle tick
			 * rather than spin on an empty queue. */
			struct timespec ts = {0, XR_SHARD_IDLE_NS};
			nanosleep(&ts, NULL);
		} else if (!moved) {
			/* Every game waits for its agents: spin a while, for
			 * the answers of agents that answer in microseconds;
			 * then look every XR_SHARD_NAP_NS, their deadlines
			 * being milliseconds away. */
			uint64_t now = xr__now_ns();
			if (!sh->idle_since)
				sh->idle_since = now;
			if (now - sh->idle_since < XR_SHARD_SPIN_NS) {
				xr_cpu_relax();
			} else {
				struct timespec ts = {0, XR_SHARD_NAP_NS};
				nanosleep(&ts, NULL);
			}
		} else {
			sh->idle_since = 0;
		}
		round_end(sh);
	}
}

/* Tick mode: sleep on io_uring until the wheel's next tick, play the
 * turns due. 0 or -errno. */
static int run_ticks(struct shard *sh)
{
	const struct xr_shard_opts *o = sh->o;
	struct xr_uclock clock;
	int rc = xr_uclock_init(&clock);

	if (rc < 0)
		return rc;
	while (!done(sh)) {
		sh->tick_now = (sh->now - sh->start) / o->tick_ns;
		xr_wheel_advance(sh->wheel, sh->tick_now, sh);
		round_end(sh);
		uint64_t next = xr_wheel_next(sh->wheel);
		if (next == UINT64_MAX || done(sh))
			break;
		/* One absolute io_uring timeout for the whole shard; at most
		 * XR_SHARD_STOP_CHECK_NS away, so that a stop request (a flag:
		 * the signal goes to another thread) is seen within that even
		 * with long ticks. Orders wait for the next tick (or that). */
		uint64_t due = sh->start + next * o->tick_ns;
		if (due > sh->now + XR_SHARD_STOP_CHECK_NS)
			due = sh->now + XR_SHARD_STOP_CHECK_NS;
		rc = xr_uclock_sleep_until(&clock, due);
		if (rc < 0 && rc != -EINTR)
			break;
		rc = 0;
		sh->now = xr__now_ns();
	}
	xr_uclock_fini(&clock);
	return rc;
}

static int set_up(struct shard *sh, xr_writer *w, const xr_exp_template *t)
{
	const struct xr_shard_opts *o = sh->o;
	int rc;

	sh->n_streams = 1 + o->n_more;
	sh->ss[0] = (struct sstream){.w = w, .t = t, .dtype = o->obs_dtype};
	for (uint32_t k = 0; k < o->n_more; k++)
		sh->ss[1 + k] = (struct sstream){.w = o->more[k].w, .t = o->more[k].t,
						 .dtype = o->more[k].obs_dtype};
	for (uint32_t k = 0; k < sh->n_streams; k++) {
		rc = xr_writer_set_watermarks(sh->ss[k].w, o->high_watermark, o->low_watermark);
		if (rc == 0 && o->lease_timeout_ns)
			rc = xr_writer_set_lease_timeout(sh->ss[k].w, o->lease_timeout_ns);
		if (rc < 0)
			return rc;
		uint32_t ml = sh->ss[k].t->shape.mask_len;
		if (!(sh->ss[k].scratch = malloc(ml ? ml : 1)))
			return -ENOMEM;
	}
	if (o->interest) {
		if (xr__interest_view_init(o->interest, &sh->iv) < 0)
			return -ENOMEM;
		xr__interest_copy(o->interest, &sh->iv);
		sh->igen = 1;
	}
	if (o->seats) {
		/* The nap while every game waits for agents is 50 us: with the
		 * default 50 us of timer slack it lasts twice that, which a
		 * slow agent's answer then waits for (perf/bench_agents). */
		prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
		if (xr__seats_view_init(o->seats, &sh->sv) < 0)
			return -ENOMEM;
		xr__seats_copy(o->seats, &sh->sv, o->index);
		sh->sgen = 1;
	}
	if (!(sh->ag = calloc(XR_MAX_AGENTS, sizeof(*sh->ag))))
		return -ENOMEM;
	if (o->input_delay >= XR_SEAT_DEPTH_MAX)
		return -EINVAL;
	sh->depth = o->input_delay + 1;
	sh->cap = o->capacity > o->games ? o->capacity : o->games;
	sh->gs = calloc(sh->cap ? sh->cap : 1, sizeof(*sh->gs));
	sh->live = calloc(sh->cap ? sh->cap : 1, sizeof(*sh->live));
	sh->wheel = malloc(sizeof(*sh->wheel));
	return sh->gs && sh->live && sh->wheel ? 0 : -ENOMEM;
}

int xr_shard_run(xr_writer *w, const xr_exp_template *t, const struct xr_shard_opts *o,
		 struct xr_shard_result *res)
{
	struct shard sh = {.o = o, .res = res};
	int rc;

	memset(res, 0, sizeof(*res));
	if (o->n_more >= XR_SHARD_STREAMS_MAX)
		return -EINVAL;
	sh.start = xr__now_ns();
	sh.now = sh.start;
	sh.tick_ns = o->tick_ns ? o->tick_ns : XR_SHARD_FAST_TICK_NS;
	sh.st = xr__writer_shard_stats(w);
	sh.gst = xr__writer_game_stats(w);
	sh.last_report_ns = sh.start;
	rc = set_up(&sh, w, t);
	if (rc < 0)
		goto out;
	/* One wheel for everything timed: tick k is at start + k * tick_ns.
	 * The stats tick is a timer on it like the turn deadlines. */
	xr_wheel_init(sh.wheel, 0);
	xr_timer_init(&sh.stats, on_stats);
	xr_wheel_arm(sh.wheel, &sh.stats, ticks_of(&sh, XR_SHARD_STATS_NS));
	rc = start_games(&sh);
	if (rc < 0)
		goto out;
	report_stats(&sh);
	if (o->tick_ns)
		rc = run_ticks(&sh);
	else
		run_fast(&sh);
	if (sh.err == -EINTR || (sh.err == 0 && stop_asked(&sh))) {
		sh.err = 0;
		drain(&sh);
	}
	if (sh.err && rc == 0)
		rc = sh.err;
out:
	if (sh.ss[0].w)
		publish_all(&sh);
	res->elapsed_ns = xr__now_ns() - sh.start;
	if (sh.gs && sh.wheel)
		report_stats(&sh);
	if (sh.gs)
		for (uint32_t i = 0; i < sh.hw; i++)
			if (sh.gs[i].g)
				sh.gs[i].vt->destroy(sh.gs[i].g);
	for (uint32_t k = 0; k < XR_SHARD_STREAMS_MAX; k++)
		free(sh.ss[k].scratch);
	xr__interest_view_fini(&sh.iv);
	xr__seats_view_fini(&sh.sv);
	free(sh.ag);
	free(sh.gs);
	free(sh.live);
	free(sh.wheel);
	return rc;
}
