/* SPDX-License-Identifier: MIT */
/*
 * Peers that die or stop while an engine runs (issue 13, fault tests), the
 * engine in this process (host, shards, game directory), every peer a
 * child process:
 *
 *   kill_storm    readers (lossless and lossy) and agents SIGKILLed over
 *                 and over at random points of attach, read, release,
 *                 claim and send (by the test at a random moment, or by
 *                 themselves at a chosen point), and lossless readers
 *                 holding the writer up killed once it waits for them,
 *                 while an honest lossless reader and an honest agent go
 *                 on. Asserts: every victim died of the kill (none failed
 *                 a check of the records it read); the blocked writer
 *                 resumed within the reaping bound each time (2 s, 5 s
 *                 sanitized: the engine frees a dead reader's slot at its
 *                 hangup, so this bounds only the machine's delays;
 *                 measured: SIGKILL -> slot FREE -> the ring's next
 *                 record); the lossless reader read every seq of the ring
 *                 in order; the honest agent was never evicted, kept its
 *                 seats (no record of them went back to the policy),
 *                 every transition of its seats applied its answer or a
 *                 timeout, and every record of its seats it missed (its
 *                 reader is lossy: lapped on a loaded machine) is counted
 *                 in its stats' dropped (a finding: they said 0); afterwards
 *                 the reader table holds the two survivors' slots only,
 *                 the agent table one live agent, this process as many
 *                 descriptors and threads as before, and the tables fill
 *                 to exactly their sizes (max_readers 8, max_agents 6): a
 *                 slot or seat leaked would make an attach fail.
 *                 test_ring_kill kills one reader holding a lease on a
 *                 bare writer; test_agents_red kill_churn kills agents
 *                 alone on a lossy stream: this is both at once, with the
 *                 engine's tables checked.
 *   stopped_lossless  a lossless reader SIGSTOPped: the ring fills to its
 *                 high watermark and the games pause (no record written
 *                 while it is stopped, the other reader has every record
 *                 written); SIGCONT: the games resume and both readers
 *                 end with every record, in order, none dropped.
 *   stopped_lossy a lossy reader stops itself (SIGSTOP, holding no batch)
 *                 while the writer laps it: after SIGCONT its own
 *                 count of seq gaps equals the sum of its batches' dropped
 *                 and xr_reader_stats_get()'s dropped, and read + dropped
 *                 + pending == written at every call; a lossy reader of
 *                 another process meanwhile lost nothing. Lapped with it:
 *                 a reader of terminal records only, whose batches must
 *                 say the records lost among those its filter skipped,
 *                 and an agent (its reader filtered to its seats), whose
 *                 stats must count what it lost (findings: both said 0).
 *   (An agent SIGSTOPped while the engine waits for it: only its seats
 *   fall back, the other games go on: test_agents killed_agent.)
 *
 *   test_faults [case|all] [kills]  (XR_FAULT_KILLS overrides kills; 200 by
 *                                 default; perf/faults.sh runs 1000)
 */
#include <sched.h>
#include <stdlib.h>

#include "fault_helpers.h"

/* ------------------------------------------------------------------------
 * kill_storm
 */

#define STORM_GAMES 40
#define HONEST_GAMES 10 /* the honest agent's: games 0..9 */
#define STORM_READERS 8
#define STORM_AGENTS 6

/* Victims alive at once: one of each kind, two agents (on games of their
 * own, 10..24 and 25..39: claims of one uid conflict). */
enum { V_LOSSLESS, V_LOSSY, V_AGENT, V_AGENT2, V_KINDS };
enum { M_EXTERNAL, M_SELF, M_BLOCKER, M_MODES };
/* Where a victim is: what it was doing when killed. */
enum { PH_NONE, PH_ATTACH, PH_CLAIM, PH_READ, PH_HOLD, PH_RELEASE, PH_SEND, PH_BLOCK, PH_N };
static const char *const phase_names[PH_N] = {"start", "attach", "claim", "read", "hold",
					      "release", "send", "block"};
/* Where a victim kills itself. */
enum { SP_ATTACHED, SP_CLAIMED, SP_HOLDING, SP_HOLDING_TWO, SP_RELEASED, SP_SENT, SP_N };
static const char *const point_names[SP_N] = {"attached", "claimed", "holding",
					      "holding 2, released 1", "released", "sent"};

struct seat_last {
	uint32_t turn;
	int32_t action, best;
	bool valid, final, held;
};

struct trainer_report {
	uint64_t read, gaps, agent_pairs, timeout_pairs, policy_pairs, bad, lost_hold, turn_gaps;
	xr_reader_stats s;
	char why[160];
};

struct agent_report {
	uint64_t records, turn_gaps, sent;
	xr_agent_stats s;
	int stats_rc;
};

struct storm_shared {
	_Atomic uint64_t trainer_read;
	_Atomic uint64_t agent_answered;
	struct {
		_Atomic uint32_t phase;
		_Atomic uint64_t held_seq; /* a blocker: the first seq it holds */
		_Atomic uint32_t held_ring;
	} v[V_KINDS];
	struct trainer_report tr;
	struct agent_report ag;
};

static struct storm_shared *sh;

static int32_t best_of(const xr_exp_view *v)
{
	int32_t best = -1;

	for (uint32_t k = 0; k < v->mask_len; k++)
		if (v->mask[k])
			best = (int32_t)k;
	return best;
}

/* The honest lossless reader: every record, every seq of each ring in
 * order; the transitions of the honest agent's seats paired. */
static void trainer_main(const char *name)
{
	static struct seat_last last[HONEST_GAMES][8];
	xr_reader_opts o = {.label = "trainer"};
	uint64_t expect[XR_MAX_RINGS] = {0};
	struct trainer_report *rep = &sh->tr;
	xr_reader *r;
	xr_batch b;
	int n;

	CHECK_RC(xr_reader_attach(name, &o, &r), 0);
	while ((n = xr_reader_read(r, 1, 4096, -1, &b)) > 0) {
		rep->gaps += fault_check_batch(&b, expect, true);
		const xr_frame *f = b.first;
		for (int i = 0; i < n; i++, f = xr_frame_next(f)) {
			xr_exp_view v;
			CHECK_RC(xr_exp_view_init(&v, xr_frame_data(f), f->len), 0);
			if (v.f.game_id >= HONEST_GAMES || v.f.player_id >= 8)
				continue;
			struct seat_last *l = &last[v.f.game_id][v.f.player_id];
			if (l->valid && v.f.turn != l->turn + 1 && !(l->final && v.f.turn == 0))
				rep->turn_gaps++;
			if (l->valid && !l->final && v.f.turn == l->turn + 1) {
				bool ok;
				if (l->action >= 0) {
					ok = v.f.applied_by == XR_SRC_POLICY && v.f.applied == l->action;
					rep->policy_pairs++;
				} else if (v.f.applied_by == XR_SRC_AGENT) {
					ok = v.f.applied == l->best;
					rep->agent_pairs++;
				} else {
					ok = v.f.applied_by == XR_SRC_TIMEOUT && v.f.applied == -1;
					rep->timeout_pairs++;
				}
				if (!ok && !rep->bad++)
					snprintf(rep->why, sizeof(rep->why),
						 "game %u player %u turn %u: action %d (best %d), next "
						 "applied %d by %u",
						 v.f.game_id, v.f.player_id, l->turn, l->action, l->best,
						 v.f.applied, v.f.applied_by);
			}
			/* Once the honest agent holds a seat, every record of it says
			 * so (action -1) until the engine stops. */
			bool held = v.f.action < 0;
			if (l->held && !held && !rep->lost_hold++ && !rep->bad)
				snprintf(rep->why, sizeof(rep->why),
					 "game %u player %u turn %u: the policy's again", v.f.game_id,
					 v.f.player_id, v.f.turn);
			*l = (struct seat_last){.turn = v.f.turn, .action = v.f.action,
						.best = best_of(&v), .valid = true,
						.final = v.f.done || v.f.truncated,
						.held = l->held || held};
		}
		rep->read += (uint64_t)n;
		xr_store_relaxed(&sh->trainer_read, rep->read);
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	CHECK_RC(n, XR_ECLOSED);
	CHECK_RC(xr_reader_stats_get(r, &rep->s), 0);
	xr_reader_detach(r);
	_exit(0);
}

/* The honest agent: every seat of games 0..9, answered with the highest
 * legal action; counts its seats' records missing (turns skipped). */
static void honest_agent_main(const char *name)
{
	static struct seat_last last[HONEST_GAMES][8];
	static int32_t act[4096];
	struct agent_report *rep = &sh->ag;
	xr_agent *a;
	xr_obs_batch b;
	int n;

	CHECK_RC(xr_agent_attach(name, &(xr_agent_opts){.label = "honest", .capacity = 16}, &a),
		 0);
	CHECK_RC(xr_agent_claim(a, 0, HONEST_GAMES - 1, 0, NULL), 0);
	for (;;) {
		n = xr_agent_recv(a, 1, 4096, 10000000, &b);
		if (n == XR_ECLOSED)
			break;
		if (n < 0)
			FAILF("honest agent: recv: %s (%s)", xr_strerror(n), xr_last_reason());
		for (int i = 0; i < n; i++) {
			const xr_frame *f = b.frames[i];
			xr_exp_view v;
			CHECK_RC(xr_exp_view_init(&v, xr_frame_data(f), f->len), 0);
			CHECK(v.f.game_id < HONEST_GAMES && v.f.player_id < 8);
			struct seat_last *l = &last[v.f.game_id][v.f.player_id];
			/* A record of this seat missing: lost to a lap of its lossy
			 * reader (never silently: its dropped says so). */
			if (l->valid && v.f.turn != l->turn + 1 && !(l->final && v.f.turn == 0))
				rep->turn_gaps += v.f.turn > l->turn ? v.f.turn - l->turn - 1 : 1;
			*l = (struct seat_last){.turn = v.f.turn, .valid = true,
						.final = v.f.done || v.f.truncated};
			act[i] = best_of(&v);
		}
		if (n > 0) {
			CHECK_RC(xr_agent_send(a, &b, act), 0);
			rep->records += (uint64_t)n;
			rep->sent += (uint64_t)n;
			xr_store_relaxed(&sh->agent_answered, rep->sent);
		}
	}
	/* The engine's counts stay readable after its end, as a reader's. */
	rep->stats_rc = xr_agent_stats_get(a, &rep->s);
	xr_agent_detach(a);
	_exit(0);
}

static uint64_t rng_next(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

static void set_phase(int kind, uint32_t ph)
{
	xr_store_release(&sh->v[kind].phase, ph);
}

static void die(void)
{
	raise(SIGKILL);
	_exit(99); /* not reached */
}

static void reader_victim(const char *name, int kind, int mode, int point, uint32_t iters)
{
	xr_reader_opts o = {.label = "victim",
			    .policy = kind == V_LOSSLESS ? XR_POLICY_LOSSLESS : XR_POLICY_LOSSY};
	uint64_t expect[XR_MAX_RINGS] = {0};
	xr_reader *r;
	xr_batch b, b2;
	int n, rc;

	set_phase(kind, PH_ATTACH);
	if ((rc = FAULT_RETRY_BUSY(xr_reader_attach(name, &o, &r))) < 0) {
		fprintf(stderr, "victim attach: %s (%s)\n", xr_strerror(rc), xr_last_reason());
		_exit(10);
	}
	if (mode == M_BLOCKER) {
		set_phase(kind, PH_READ);
		do
			n = xr_reader_read(r, 1, 64, SEC, &b);
		while (n == 0);
		if (n < 0)
			_exit(11);
		xr_store_relaxed(&sh->v[kind].held_seq, b.first_seq);
		xr_store_relaxed(&sh->v[kind].held_ring, b.ring);
		set_phase(kind, PH_BLOCK);
		for (;;)
			pause();
	}
	if (mode == M_SELF && point == SP_ATTACHED)
		die();
	for (uint32_t i = 0;; i++) {
		bool last = mode == M_SELF && i >= iters;
		set_phase(kind, PH_READ);
		n = xr_reader_read(r, 1, 256, 5000000, &b);
		if (n < 0) {
			fprintf(stderr, "victim read: %s (%s)\n", xr_strerror(n), xr_last_reason());
			_exit(12);
		}
		if (n == 0)
			continue;
		set_phase(kind, PH_HOLD);
		/* A victim checks what it reads too: a kill must not cost
		 * anyone a record, the next victim included. */
		fault_check_batch(&b, expect, kind == V_LOSSLESS);
		if (last && point == SP_HOLDING)
			die();
		if (last && point == SP_HOLDING_TWO) {
			n = xr_reader_read(r, 1, 256, 5000000, &b2);
			if (n < 0)
				_exit(13);
			set_phase(kind, PH_RELEASE);
			CHECK_RC(xr_batch_release(r, &b), 0);
			set_phase(kind, PH_HOLD);
			die(); /* holding the second, if it came */
		}
		set_phase(kind, PH_RELEASE);
		CHECK_RC(xr_batch_release(r, &b), 0);
		if (last && point == SP_RELEASED)
			die();
	}
}

static void agent_victim(const char *name, int kind, int mode, int point, uint32_t iters,
			 uint32_t lo, uint32_t hi)
{
	static int32_t act[4096];
	xr_agent *a;
	xr_obs_batch b;
	int rc;

	set_phase(kind, PH_ATTACH);
	rc = FAULT_RETRY_BUSY(xr_agent_attach(name, &(xr_agent_opts){.label = "victim", .capacity = 16},
					&a));
	if (rc < 0) {
		fprintf(stderr, "victim agent attach: %s (%s)\n", xr_strerror(rc), xr_last_reason());
		_exit(20);
	}
	if (mode == M_SELF && point == SP_ATTACHED)
		die();
	set_phase(kind, PH_CLAIM);
	/* The last victim's claim may not be let go of yet: -EBUSY naming it. */
	if ((rc = FAULT_RETRY_BUSY(xr_agent_claim(a, lo, hi, 0, NULL))) < 0) {
		fprintf(stderr, "victim claim: %s (%s)\n", xr_strerror(rc), xr_last_reason());
		_exit(21);
	}
	if (mode == M_SELF && point == SP_CLAIMED)
		die();
	for (uint32_t i = 0;; i++) {
		bool last = mode == M_SELF && i >= iters;
		set_phase(kind, PH_READ);
		int n = xr_agent_recv(a, 1, 4096, 5000000, &b);
		if (n < 0) {
			fprintf(stderr, "victim recv: %s (%s)\n", xr_strerror(n), xr_last_reason());
			_exit(22);
		}
		if (n == 0)
			continue;
		set_phase(kind, PH_HOLD);
		for (int k = 0; k < n; k++) {
			xr_exp_view v;
			if (xr_exp_view_init(&v, xr_frame_data(b.frames[k]), b.frames[k]->len) < 0)
				_exit(23);
			act[k] = best_of(&v);
		}
		if (last && point == SP_HOLDING)
			die();
		set_phase(kind, PH_SEND);
		CHECK_RC(xr_agent_send(a, &b, act), 0);
		if (last && point == SP_SENT)
			die();
	}
}

struct victim {
	pid_t pid;
	int mode, point;
	uint64_t born, kill_at, delay;
	bool after_attach; /* kill_at counts from its attach, not its fork */
	bool killed;
};

static const int reader_points[] = {SP_ATTACHED, SP_HOLDING, SP_HOLDING_TWO, SP_RELEASED};
static const int agent_points[] = {SP_ATTACHED, SP_CLAIMED, SP_HOLDING, SP_SENT};

static bool is_agent(int kind)
{
	return kind == V_AGENT || kind == V_AGENT2;
}

static void spawn(const struct fault_engine *e, int kind, struct victim *v, uint64_t *rng,
		  uint32_t *lossless_born)
{
	uint64_t x = rng_next(rng), y = rng_next(rng);

	memset(v, 0, sizeof(*v));
	v->mode = x % 100 < 50 ? M_EXTERNAL : M_SELF;
	/* Every fifth lossless victim holds the writer up until killed. */
	if (kind == V_LOSSLESS && ++*lossless_born % 5 == 0)
		v->mode = M_BLOCKER;
	v->point = is_agent(kind) ? agent_points[(x >> 8) % 4] : reader_points[(x >> 8) % 4];
	uint32_t iters = (uint32_t)((x >> 12) % 8);
	/* Killed at random: a quarter within 20 ms of the fork (in attach,
	 * mostly), the others within 10 ms of their attach (reading,
	 * holding, releasing, sending). */
	v->born = xr__now_ns();
	v->after_attach = y % 4 != 0;
	v->delay = (y >> 8) % ((v->after_attach ? 10 : 20) * MS);
	v->kill_at = v->after_attach ? UINT64_MAX : v->born + v->delay;
	uint32_t half = (STORM_GAMES - HONEST_GAMES) / 2, base = HONEST_GAMES;
	if (kind == V_AGENT2)
		base += half;
	uint32_t lo = base + (uint32_t)((x >> 20) % (half - 7));
	uint32_t hi = lo + (uint32_t)((x >> 28) % 8);
	xr_store_relaxed(&sh->v[kind].phase, PH_NONE);
	v->pid = fault_fork();
	if (v->pid == 0) {
		if (is_agent(kind))
			agent_victim(e->name, kind, v->mode, v->point, iters, lo, hi);
		reader_victim(e->name, kind, v->mode, v->point, iters);
	}
}

/* Records a ring holds: its frames are of one size (an Experience
 * stream), which the writer's counts of bytes and records say. */
static uint32_t ring_records(const struct fault_engine *e, uint32_t ring)
{
	const struct xr_ring_desc *rd = &e->a->hdr->rings[ring];
	uint64_t n = xr_load_relaxed(&rd->records), bytes = xr_load_relaxed(&rd->bytes);

	CHECK(n > 0);
	return (uint32_t)(e->a->lay.rings[ring].capacity / (bytes / n));
}

/* A blocker victim holds a batch and its lossless lease keeps the writer
 * stopped: the ring is blocked, its backlog behind the blocker's batch at
 * least the low watermark (a pause, begun at the high watermark, goes on
 * until the backlog is under the low one), the trainer caught up. */
static bool blocked_by(const struct fault_engine *e, int kind)
{
	uint32_t ring = xr_load_relaxed(&sh->v[kind].held_ring);
	uint64_t held = xr_load_relaxed(&sh->v[kind].held_seq);
	const struct xr_ring_desc *rd = &e->a->hdr->rings[ring];
	uint64_t w = xr_load_acquire(&rd->written);

	return xr_load_acquire(&rd->blocked) && (w - held) * 2 >= ring_records(e, ring) &&
	       xr_load_relaxed(&sh->trainer_read) >= w;
}

static void kill_storm(uint32_t want)
{
	struct fault_engine e;
	const uint64_t bound = (XR_TEST_SANITIZED ? 5000 : 2000) * MS;

	sh = fault_shared(sizeof(*sh));
	memset(sh, 0, sizeof(*sh));
	/* 16 MiB: the honest agent's reader is lossy (docs/agents.md), and the
	 * games no agent holds write up to 400,000 records a second here: a
	 * ring of 1 MiB laps it whenever it is descheduled for 3 ms, this one
	 * after 40 ms. (Each blocker has the writer fill most of it before it
	 * is killed.) */
	fault_engine_create(&e, "storm", &(struct fault_engine_opts){
		.games = STORM_GAMES, .shards = 1, .ring_bytes = 16u << 20,
		.max_readers = STORM_READERS, .max_agents = STORM_AGENTS,
		.action_timeout_ms = 2000});
	pid_t trainer = fault_fork();
	if (trainer == 0)
		trainer_main(e.name);
	CHECK(FAULT_WAIT(fault_slots_taken(&e) == 1, 10000));
	fault_engine_run(&e);
	pid_t honest = fault_fork();
	if (honest == 0)
		honest_agent_main(e.name);
	/* Going: the trainer reads, and the engine has taken the agent's
	 * answers. (Answers sent are not enough: the agent's first records
	 * are its seats' turns from before its claim, which the policy took,
	 * and a lap of its lossy reader can then cost it the turns it holds:
	 * a CI run stormed for 0.6 s with 800 answers sent and none taken.) */
	CHECK(FAULT_WAIT(fault_agent_actions(&e) > 0 && xr_load_relaxed(&sh->agent_answered) > 100 &&
			 xr_load_relaxed(&sh->trainer_read) > 1000, 20000));
	CHECK_EQ(fault_slots_taken(&e), 2);
	int fds0 = count_fds(), threads0 = count_threads();

	struct victim vs[V_KINDS] = {{0}};
	uint64_t rng = 0x5eed ^ (uint64_t)getpid(), kills = 0, t0 = xr__now_ns();
	uint64_t by_mode[V_KINDS][M_MODES] = {{0}}, ext_phase[V_KINDS][PH_N] = {{0}};
	uint64_t self_point[V_KINDS][SP_N] = {{0}};
	uint64_t reap_ns[256], resume_ns[256];
	uint32_t n_block = 0, lossless_born = 0;
	const uint64_t deadline = t0 + (XR_TEST_SANITIZED ? 600 : 240) * SEC;
	const bool verbose = getenv("XR_FAULT_VERBOSE") != NULL;

	while (kills < want) {
		if (xr__now_ns() > deadline)
			FAILF("%llu kills of %u after %.0f s", (unsigned long long)kills, want,
			      (double)(xr__now_ns() - t0) / 1e9);
		for (int k = 0; k < V_KINDS; k++) {
			struct victim *v = &vs[k];
			if (!v->pid) {
				uint64_t alive = 0;
				for (int j = 0; j < V_KINDS; j++)
					alive += vs[j].pid != 0;
				if (kills + alive < want)
					spawn(&e, k, v, &rng, &lossless_born);
				continue;
			}
			uint64_t now = xr__now_ns();
			uint32_t ph = xr_load_acquire(&sh->v[k].phase);
			if (v->kill_at == UINT64_MAX && ph >= PH_CLAIM)
				v->kill_at = now + v->delay; /* attached */
			if (!v->killed && v->mode == M_EXTERNAL && now >= v->kill_at) {
				ext_phase[k][ph]++;
				CHECK(kill(v->pid, SIGKILL) == 0);
				v->killed = true;
			} else if (!v->killed && v->mode == M_BLOCKER &&
				   xr_load_acquire(&sh->v[k].phase) == PH_BLOCK && blocked_by(&e, k)) {
				uint32_t ring = xr_load_relaxed(&sh->v[k].held_ring);
				const struct xr_ring_desc *rd = &e.a->hdr->rings[ring];
				uint64_t w = xr_load_acquire(&rd->written), tk = xr__now_ns();
				CHECK(kill(v->pid, SIGKILL) == 0);
				v->killed = true;
				/* The engine sees the hangup and frees the slot; the
				 * writer finds the room at its next look. */
				if (!FAULT_WAIT(!fault_slot_of(&e, v->pid), bound / MS))
					FAILF("a killed blocker's slot still held after %.0f ms",
					      fault_ms(bound));
				uint64_t tr = xr__now_ns();
				if (!FAULT_WAIT(xr_load_acquire(&rd->written) > w, bound / MS))
					FAILF("the writer did not resume within %.0f ms of a blocker's kill",
					      fault_ms(bound));
				if (n_block < 256) {
					reap_ns[n_block] = tr - tk;
					resume_ns[n_block] = xr__now_ns() - tk;
					n_block++;
				}
			} else if (!v->killed && v->mode == M_BLOCKER &&
				   now - v->born > 30 * SEC) {
				uint32_t ring = xr_load_relaxed(&sh->v[k].held_ring);
				const struct xr_ring_desc *rd = &e.a->hdr->rings[ring];
				FAILF("a blocker victim (phase %s, holding seq %llu) did not stop the "
				      "writer in 30 s: ring %u blocked %u, written %llu (%u records a "
				      "ring), trainer read %llu",
				      phase_names[xr_load_acquire(&sh->v[k].phase)],
				      (unsigned long long)xr_load_relaxed(&sh->v[k].held_seq), ring,
				      xr_load_acquire(&rd->blocked),
				      (unsigned long long)xr_load_acquire(&rd->written),
				      ring_records(&e, ring),
				      (unsigned long long)xr_load_relaxed(&sh->trainer_read));
			}
			int st;
			pid_t w = waitpid(v->pid, &st, WNOHANG);
			CHECK(w >= 0);
			if (w == 0)
				continue;
			if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
				FAILF("a victim (kind %d, mode %d) ended with status 0x%x, in phase %s", k,
				      v->mode, st, phase_names[xr_load_acquire(&sh->v[k].phase)]);
			kills++;
			if (verbose && kills % 20 == 0)
				fprintf(stderr, "  %llu kills, %.1f s, %llu written, %u slots, %u agents\n",
					(unsigned long long)kills, (double)(xr__now_ns() - t0) / 1e9,
					(unsigned long long)fault_written(&e), fault_slots_taken(&e),
					fault_agents_live(&e, 0, NULL));
			by_mode[k][v->mode]++;
			if (v->mode == M_SELF)
				self_point[k][v->point]++;
			v->pid = 0;
		}
		xr__sleep_ns(100000); /* a look every 0.1 ms: the children need the CPUs */
	}
	double storm_s = (double)(xr__now_ns() - t0) / 1e9;
	CHECK(n_block > 0);

	/* Nothing leaked: the tables hold the survivors alone, and this
	 * process (the engine) its descriptors and threads of before. */
	if (!FAULT_WAIT(fault_slots_taken(&e) == 2, 5000))
		FAILF("%u reader slots held after the storm, want the survivors' 2",
		      fault_slots_taken(&e));
	CHECK(fault_slot_of(&e, trainer));
	bool honest_live;
	if (!FAULT_WAIT(fault_agents_live(&e, honest, &honest_live) == 1, 5000)) {
		for (uint32_t i = 0; i < XR_MAX_AGENTS; i++)
			if (xr_load_acquire(&e.a->agents[i].state) == XR_AGENT_LIVE)
				fprintf(stderr, "  agent %u live: pid %d (%s), claims %u\n", i,
					e.a->agents[i].pid, kill(e.a->agents[i].pid, 0) ? "gone" : "alive",
					xr_load_relaxed(&e.a->agents[i].claims));
		FAILF("%u agents live after the storm, want the honest one",
		      fault_agents_live(&e, honest, NULL));
	}
	CHECK(honest_live);
	if (!FAULT_WAIT(count_fds() <= fds0 && count_threads() <= threads0, 5000))
		FAILF("descriptors %d -> %d, threads %d -> %d", fds0, count_fds(), threads0,
		      count_threads());
	int fds1 = count_fds(), threads1 = count_threads();
	/* ...and fill to exactly their sizes. */
	xr_reader *extra[STORM_READERS];
	for (int i = 0; i < STORM_READERS - 2; i++)
		CHECK_RC(FAULT_RETRY_BUSY(xr_reader_attach(e.name, NULL, &extra[i])), 0);
	CHECK_RC(xr_reader_attach(e.name, NULL, &extra[STORM_READERS - 2]), -EBUSY);
	for (int i = 0; i < STORM_READERS - 2; i++)
		xr_reader_detach(extra[i]);
	CHECK(FAULT_WAIT(fault_slots_taken(&e) == 2, 5000));
	xr_agent *more[STORM_AGENTS];
	for (int i = 0; i < STORM_AGENTS - 1; i++)
		CHECK_RC(FAULT_RETRY_BUSY(xr_agent_attach(e.name, NULL, &more[i])), 0);
	CHECK_RC(xr_agent_attach(e.name, NULL, &more[STORM_AGENTS - 1]), -EBUSY);
	printf("kill_storm: the full agent table says: %s\n", xr_last_reason());
	for (int i = 0; i < STORM_AGENTS - 1; i++)
		xr_agent_detach(more[i]);

	/* The survivors' accounts. */
	uint64_t written = fault_written(&e);
	fault_engine_stop(&e);
	int st;
	CHECK(waitpid(trainer, &st, 0) == trainer);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAILF("the trainer ended with status 0x%x", st);
	CHECK(waitpid(honest, &st, 0) == honest);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAILF("the honest agent ended with status 0x%x", st);

	const struct trainer_report *tr = &sh->tr;
	const struct agent_report *ag = &sh->ag;
	/* The two agent kinds are one in what is printed. */
	for (int m = 0; m < M_MODES; m++)
		by_mode[V_AGENT][m] += by_mode[V_AGENT2][m];
	for (int p = 0; p < PH_N; p++)
		ext_phase[V_AGENT][p] += ext_phase[V_AGENT2][p];
	for (int p = 0; p < SP_N; p++)
		self_point[V_AGENT][p] += self_point[V_AGENT2][p];
	printf("kill_storm: %llu kills in %.1f s (lossless readers %llu at random, %llu by "
	       "themselves, %llu holding the writer up; lossy readers %llu/%llu; agents %llu/%llu)\n",
	       (unsigned long long)kills, storm_s, (unsigned long long)by_mode[0][M_EXTERNAL],
	       (unsigned long long)by_mode[0][M_SELF], (unsigned long long)by_mode[0][M_BLOCKER],
	       (unsigned long long)by_mode[1][M_EXTERNAL], (unsigned long long)by_mode[1][M_SELF],
	       (unsigned long long)by_mode[2][M_EXTERNAL], (unsigned long long)by_mode[2][M_SELF]);
	for (int k = 0; k < V_AGENT2; k++) {
		printf("  %s killed at random while in:", k == 0 ? "lossless" : k == 1 ? "lossy" : "agents");
		for (int p = 0; p < PH_N; p++)
			if (ext_phase[k][p])
				printf(" %s %llu", phase_names[p], (unsigned long long)ext_phase[k][p]);
		printf("; by themselves when:");
		for (int p = 0; p < SP_N; p++)
			if (self_point[k][p])
				printf(" %s %llu", point_names[p], (unsigned long long)self_point[k][p]);
		printf("\n");
	}
	uint32_t nb = n_block;
	printf("  blocked writer, %u times: SIGKILL -> slot free p50 %.2f ms max %.2f ms; -> next "
	       "record p50 %.2f ms max %.2f ms (bound %.0f ms)\n",
	       nb, fault_ms(fault_quantile(reap_ns, nb, 0.5)), fault_ms(fault_quantile(reap_ns, nb, 1)),
	       fault_ms(fault_quantile(resume_ns, nb, 0.5)),
	       fault_ms(fault_quantile(resume_ns, nb, 1)), fault_ms(bound));
	printf("  trainer: read %llu of %llu written, dropped %llu, pending %llu, gaps %llu; "
	       "honest seats: %llu answers applied, %llu timeouts, %llu policy turns before the "
	       "claim\n",
	       (unsigned long long)tr->read, (unsigned long long)tr->s.written,
	       (unsigned long long)tr->s.dropped, (unsigned long long)tr->s.pending,
	       (unsigned long long)tr->gaps, (unsigned long long)tr->agent_pairs,
	       (unsigned long long)tr->timeout_pairs, (unsigned long long)tr->policy_pairs);
	printf("  honest agent: %llu records, %llu answers, evicted %llu; %llu records of its seats "
	       "missed, %llu of the stream's dropped (lapped: its reader is lossy); engine: %llu "
	       "actions, %llu timeouts; descriptors %d -> %d, threads %d -> %d\n",
	       (unsigned long long)ag->records, (unsigned long long)ag->sent,
	       (unsigned long long)ag->s.evictions, (unsigned long long)ag->turn_gaps,
	       (unsigned long long)ag->s.dropped, (unsigned long long)ag->s.actions,
	       (unsigned long long)ag->s.timeouts, fds0, fds1, threads0, threads1);
	if (tr->bad || tr->lost_hold)
		FAILF("%llu transitions of the honest agent's seats lie, %llu records went back to "
		      "the policy; first: %s",
		      (unsigned long long)tr->bad, (unsigned long long)tr->lost_hold, tr->why);
	CHECK_EQ(tr->gaps, 0);
	CHECK_EQ(tr->turn_gaps, 0);
	CHECK_EQ(tr->s.dropped, 0);
	CHECK_EQ(tr->s.pending, 0);
	CHECK_EQ(tr->read, tr->s.written);
	CHECK(tr->s.written >= written);
	CHECK(tr->agent_pairs > 0);
	CHECK_RC(ag->stats_rc, 0);
	/* Whatever the agent missed, it was told: an agent's reader is lossy
	 * (it never stalls the engine), so on a loaded machine a ring may lap
	 * it, and its seats then time out; never a silent loss. */
	CHECK(ag->turn_gaps <= ag->s.dropped);
	CHECK_EQ(ag->s.evictions, 0);
	CHECK(ag->sent > 0);
	munmap(sh, sizeof(*sh));
}

/* ------------------------------------------------------------------------
 * stopped_lossless, stopped_lossy
 */

struct stop_shared {
	struct {
		_Atomic uint64_t read, batches;
		_Atomic uint64_t checks; /* accounting checked while the writer runs */
		_Atomic int stop_now;    /* stop yourself, holding nothing */
		uint64_t gaps, batch_dropped;
		xr_reader_stats s;
		int rc;
	} r[3];
	struct {                     /* the agent of games 0 and 1 */
		_Atomic uint64_t records, looks;
		_Atomic int stop_now;
		uint64_t missed;      /* records of its seats it never got */
		xr_agent_stats s;
		int rc;
	} ag;
};

static struct stop_shared *ss;

/* An agent of games 0 and 1 in the lossy engine: answers each record,
 * counts the turns of its seats it never got, stops itself when told
 * (holding nothing), and at the end takes its stats. */
static void stop_agent_main(const char *name)
{
	static int32_t act[4096];
	static struct seat_last last[2][8];
	xr_agent *a;
	xr_obs_batch b;
	int n;

	CHECK_RC(xr_agent_attach(name, &(xr_agent_opts){.label = "stopped", .capacity = 2}, &a), 0);
	CHECK_RC(xr_agent_claim(a, 0, 1, 0, NULL), 0);
	while ((n = xr_agent_recv(a, 1, 4096, 10000000, &b)) >= 0) {
		for (int i = 0; i < n; i++) {
			xr_exp_view v;
			CHECK_RC(xr_exp_view_init(&v, xr_frame_data(b.frames[i]), b.frames[i]->len), 0);
			CHECK(v.f.game_id < 2 && v.f.player_id < 8);
			struct seat_last *l = &last[v.f.game_id][v.f.player_id];
			if (l->valid && v.f.turn != l->turn + 1 && !(l->final && v.f.turn == 0))
				ss->ag.missed += v.f.turn > l->turn ? v.f.turn - l->turn - 1 : 1;
			*l = (struct seat_last){.turn = v.f.turn, .valid = true,
						.final = v.f.done || v.f.truncated};
			act[i] = best_of(&v);
		}
		if (n > 0) {
			CHECK_RC(xr_agent_send(a, &b, act), 0);
			xr_store_relaxed(&ss->ag.records, xr_load_relaxed(&ss->ag.records) + (uint64_t)n);
		}
		xr_store_relaxed(&ss->ag.looks, xr_load_relaxed(&ss->ag.looks) + 1);
		if (xr_load_acquire(&ss->ag.stop_now)) {
			xr_store_relaxed(&ss->ag.stop_now, 0);
			raise(SIGSTOP);
		}
	}
	CHECK_RC(n, XR_ECLOSED);
	ss->ag.rc = xr_agent_stats_get(a, &ss->ag.s);
	xr_agent_detach(a);
	_exit(0);
}

/* Reader i: reads until the engine closes, checking every record (a gap
 * fails a lossless reader); a lossy one checks its accounting at every
 * 8th look while the writer runs. Reader 2 reads terminal records only
 * (done or truncated): its filter skips most of the stream. */
static void stop_reader_main(const char *name, int i, xr_policy policy)
{
	const xr_filter terminal = {.terminal = XR_TERMINAL_ONLY};
	xr_reader_opts o = {.label = i ? "other" : "stopped", .policy = policy,
			    .filter = i == 2 ? &terminal : NULL};
	uint64_t expect[XR_MAX_RINGS], read = 0, looks = 0;
	xr_reader *r;
	xr_batch b;
	int n;

	/* Attached before the first record: from seq 0 on, a lost record
	 * before the first one read is a gap too. */
	for (uint32_t k = 0; k < XR_MAX_RINGS; k++)
		expect[k] = 1;
	CHECK_RC(xr_reader_attach(name, &o, &r), 0);
	while ((n = xr_reader_read(r, 1, 1024, 10000000, &b)) >= 0) {
		if (n > 0) {
			uint64_t g = fault_check_batch(&b, expect, policy == XR_POLICY_LOSSLESS);
			ss->r[i].gaps += i == 2 ? 0 : g; /* filtered: gaps are not losses */
			ss->r[i].batch_dropped += b.dropped;
			read += (uint64_t)n;
			/* Said before the release: a reader stopped between the two
			 * holds its lease at or before what it said. */
			xr_store_relaxed(&ss->r[i].read, read);
			CHECK_RC(xr_batch_release(r, &b), 0);
			xr_store_relaxed(&ss->r[i].batches, xr_load_relaxed(&ss->r[i].batches) + 1);
		}
		if (policy == XR_POLICY_LOSSY && ++looks % 8 == 0) {
			xr_reader_stats s;
			CHECK_RC(xr_reader_stats_get(r, &s), 0);
			if (s.read + s.filtered + s.dropped + s.pending != s.written)
				FAILF("reader %d: read %llu + filtered %llu + dropped %llu + pending %llu "
				      "!= written %llu",
				      i, (unsigned long long)s.read, (unsigned long long)s.filtered,
				      (unsigned long long)s.dropped, (unsigned long long)s.pending,
				      (unsigned long long)s.written);
			xr_store_relaxed(&ss->r[i].checks, xr_load_relaxed(&ss->r[i].checks) + 1);
		}
		/* Holding nothing: a lossy reader stopped here leaves the writer
		 * free (one stopped holding a batch is evicted after the lease
		 * timeout: test_ring_protocol "a held lease times out"). */
		if (xr_load_acquire(&ss->r[i].stop_now)) {
			xr_store_relaxed(&ss->r[i].stop_now, 0);
			raise(SIGSTOP);
		}
	}
	CHECK_RC(n, XR_ECLOSED);
	ss->r[i].rc = xr_reader_stats_get(r, &ss->r[i].s);
	CHECK_EQ(ss->r[i].s.read, read);
	xr_reader_detach(r);
	_exit(0);
}

static pid_t stop_reader(const struct fault_engine *e, int i, xr_policy policy)
{
	pid_t pid = fault_fork();

	if (pid == 0)
		stop_reader_main(e->name, i, policy);
	return pid;
}

static void wait_ok(pid_t pid, const char *who)
{
	int st;

	CHECK(waitpid(pid, &st, 0) == pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAILF("%s ended with status 0x%x", who, st);
}

static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "re")))
		return '?';
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

static void stopped_lossless(void)
{
	struct fault_engine e;
	const uint64_t window = (XR_TEST_SANITIZED ? 500 : 300) * MS;

	ss = fault_shared(sizeof(*ss));
	memset(ss, 0, sizeof(*ss));
	fault_engine_create(&e, "stop-lossless", &(struct fault_engine_opts){
		.games = 40, .shards = 1, .ring_bytes = 1u << 20, .max_readers = 4});
	pid_t a = stop_reader(&e, 0, XR_POLICY_LOSSLESS), b = stop_reader(&e, 1, XR_POLICY_LOSSLESS);
	/* Both attached before the first record: each must read them all. */
	CHECK(FAULT_WAIT(fault_slots_taken(&e) == 2, 10000));
	fault_engine_run(&e);
	const struct xr_ring_desc *rd = &e.a->hdr->rings[0];
	CHECK(FAULT_WAIT(xr_load_relaxed(&ss->r[0].read) > 1000, 10000));

	CHECK(kill(a, SIGSTOP) == 0);
	uint64_t t_stop = xr__now_ns();
	/* The ring fills to the high watermark behind it; the games pause.
	 * (A pause begun earlier, the other reader lagging a moment, goes on
	 * while the backlog is above the low watermark: behind the stopped
	 * reader, that is for good.) */
	uint64_t at = xr_load_relaxed(&ss->r[0].read);
	if (!FAULT_WAIT(xr_load_acquire(&rd->blocked) &&
			 (xr_load_acquire(&rd->written) - at) * 2 >= ring_records(&e, 0) &&
			 xr_load_relaxed(&ss->r[1].read) >= xr_load_acquire(&rd->written), 10000))
		FAILF("the writer never stopped for a stopped lossless reader (state %c): ring "
		      "blocked %u, written %llu, the stopped reader at %llu, %u records a ring",
		      proc_state(a), xr_load_acquire(&rd->blocked),
		      (unsigned long long)xr_load_acquire(&rd->written), (unsigned long long)at,
		      ring_records(&e, 0));
	double fill_ms = fault_ms(xr__now_ns() - t_stop);
	uint64_t w0 = xr_load_acquire(&rd->written), tw = xr__now_ns();
	/* Nothing is written while it is stopped... */
	while (xr__now_ns() - tw < window) {
		CHECK_EQ(xr_load_acquire(&rd->written), w0);
		CHECK(xr_load_acquire(&rd->blocked));
		xr__sleep_ns(100000);
	}
	CHECK(proc_state(a) == 'T');
	CHECK(xr_load_relaxed(&rd->full_waits) > 0); /* this pause may have begun before */
	/* ...and the other reader has all that was. */
	CHECK(FAULT_WAIT(xr_load_relaxed(&ss->r[1].read) == w0, 5000));
	uint64_t stopped_read = xr_load_relaxed(&ss->r[0].read);

	CHECK(kill(a, SIGCONT) == 0);
	uint64_t t_cont = xr__now_ns();
	CHECK(FAULT_WAIT(xr_load_acquire(&rd->written) > w0, 5000));
	double resume_ms = fault_ms(xr__now_ns() - t_cont);
	/* Two laps more, then the end: both read every one. */
	uint64_t laps = 2ull * ring_records(&e, 0);
	CHECK(FAULT_WAIT(xr_load_acquire(&rd->written) > w0 + laps, 20000));
	fault_engine_stop(&e);
	wait_ok(a, "the stopped reader");
	wait_ok(b, "the other reader");
	printf("stopped_lossless: stopped at %llu records read, the ring blocked %.1f ms later, "
	       "nothing written for %.0f ms (%llu written), the other reader had them all; "
	       "continued, the games resumed in %.2f ms\n",
	       (unsigned long long)stopped_read, fill_ms, fault_ms(window), (unsigned long long)w0,
	       resume_ms);
	for (int i = 0; i < 2; i++) {
		const xr_reader_stats *s = &ss->r[i].s;
		printf("  reader %d: read %llu of %llu, dropped %llu, pending %llu\n", i,
		       (unsigned long long)s->read, (unsigned long long)s->written,
		       (unsigned long long)s->dropped, (unsigned long long)s->pending);
		CHECK_RC(ss->r[i].rc, 0);
		CHECK_EQ(ss->r[i].gaps, 0);
		CHECK_EQ(s->dropped, 0);
		CHECK_EQ(s->pending, 0);
		CHECK_EQ(s->read, s->written);
		CHECK(s->written > w0 + laps);
	}
	CHECK_EQ(ss->r[0].s.written, ss->r[1].s.written);
	munmap(ss, sizeof(*ss));
}

static void stopped_lossy(void)
{
	struct fault_engine e;
	pid_t pid[4];

	ss = fault_shared(sizeof(*ss));
	memset(ss, 0, sizeof(*ss));
	/* A bounded rate (10 games of 2 players, a turn every 2 ms: 10,000
	 * records/s) into 16 MiB: the ring laps in about 1.6 s, which the
	 * other reader, descheduled on a loaded machine, does not fall
	 * behind by. */
	fault_engine_create(&e, "stop-lossy", &(struct fault_engine_opts){
		.games = 10, .shards = 1, .ring_bytes = 16u << 20, .max_readers = 4,
		.policy = XR_POLICY_LOSSY, .tick_ms = 2, .max_agents = 2});
	for (int i = 0; i < 3; i++)
		pid[i] = stop_reader(&e, i, XR_POLICY_LOSSY);
	CHECK(FAULT_WAIT(fault_slots_taken(&e) == 3, 10000));
	fault_engine_run(&e);
	pid[3] = fault_fork();
	if (pid[3] == 0)
		stop_agent_main(e.name);
	const struct xr_ring_desc *rd = &e.a->hdr->rings[0];
	CHECK(FAULT_WAIT(xr_load_relaxed(&ss->r[0].read) > 1000 &&
			 xr_load_relaxed(&ss->r[2].batches) > 0 &&
			 xr_load_relaxed(&ss->ag.records) > 100, 20000));

	/* Reader 0, the filtered reader 2 and the agent stop. */
	xr_store_release(&ss->r[0].stop_now, 1);
	xr_store_release(&ss->r[2].stop_now, 1);
	xr_store_release(&ss->ag.stop_now, 1);
	CHECK(FAULT_WAIT(proc_state(pid[0]) == 'T' && proc_state(pid[2]) == 'T' &&
			 proc_state(pid[3]) == 'T', 10000));
	uint64_t h0 = xr_load_acquire(&rd->head), w0 = xr_load_acquire(&rd->written);
	uint64_t other0 = xr_load_relaxed(&ss->r[1].read), t0 = xr__now_ns();
	uint64_t cap = e.a->lay.rings[0].capacity;
	/* The writer laps them, never waiting. */
	CHECK(FAULT_WAIT(xr_load_acquire(&rd->head) - h0 > cap + cap / 4, 30000));
	double lapped_ms = fault_ms(xr__now_ns() - t0);
	uint64_t w1 = xr_load_acquire(&rd->written), other1 = xr_load_relaxed(&ss->r[1].read);
	uint64_t per_ring = ring_records(&e, 0);
	CHECK_EQ(xr_load_relaxed(&rd->full_waits), 0);
	CHECK_EQ(xr_load_relaxed(&rd->lease_stalls), 0);
	uint64_t checks = xr_load_relaxed(&ss->r[0].checks);
	uint64_t batches2 = xr_load_relaxed(&ss->r[2].batches);
	uint64_t agent_records = xr_load_relaxed(&ss->ag.records);
	CHECK(kill(pid[0], SIGCONT) == 0 && kill(pid[2], SIGCONT) == 0 && kill(pid[3], SIGCONT) == 0);
	/* They read on from where the writer left them room: the accounts
	 * checked while it writes, the filtered one's batches of terminal
	 * records coming again, the agent's records too. */
	CHECK(FAULT_WAIT(xr_load_relaxed(&ss->r[0].checks) >= checks + 3 &&
			 xr_load_relaxed(&ss->r[2].batches) > batches2 + 1 &&
			 xr_load_relaxed(&ss->ag.records) > agent_records + 100, 20000));
	fault_engine_stop(&e);
	for (int i = 0; i < 4; i++)
		wait_ok(pid[i], i == 1 ? "the other reader" : i == 3 ? "the agent" : "a stopped reader");
	const xr_reader_stats *sa = &ss->r[0].s, *sb = &ss->r[1].s, *sc = &ss->r[2].s;
	printf("stopped_lossy: two readers and an agent stopped (holding nothing), lapped in %.0f ms "
	       "(%llu records written, the other reader read %llu meanwhile)\n",
	       lapped_ms, (unsigned long long)(w1 - w0), (unsigned long long)(other1 - other0));
	printf("  continued: dropped %llu (its seq gaps %llu, its batches said %llu), read %llu + "
	       "dropped + pending %llu == written %llu, checked %llu times while running\n",
	       (unsigned long long)sa->dropped, (unsigned long long)ss->r[0].gaps,
	       (unsigned long long)ss->r[0].batch_dropped, (unsigned long long)sa->read,
	       (unsigned long long)sa->pending, (unsigned long long)sa->written,
	       (unsigned long long)xr_load_relaxed(&ss->r[0].checks));
	printf("  terminal records only: read %llu, filtered %llu, dropped %llu (its batches said "
	       "%llu), pending %llu, of %llu\n",
	       (unsigned long long)sc->read, (unsigned long long)sc->filtered,
	       (unsigned long long)sc->dropped, (unsigned long long)ss->r[2].batch_dropped,
	       (unsigned long long)sc->pending, (unsigned long long)sc->written);
	printf("  the agent of games 0 and 1: %llu records, %llu of its seats' missed, dropped "
	       "%llu; the engine: %llu actions, %llu timeouts\n",
	       (unsigned long long)ss->ag.s.records, (unsigned long long)ss->ag.missed,
	       (unsigned long long)ss->ag.s.dropped, (unsigned long long)ss->ag.s.actions,
	       (unsigned long long)ss->ag.s.timeouts);
	printf("  the other: read %llu of %llu, dropped %llu\n", (unsigned long long)sb->read,
	       (unsigned long long)sb->written, (unsigned long long)sb->dropped);
	for (int i = 0; i < 3; i++)
		CHECK_RC(ss->r[i].rc, 0);
	/* Its drops, counted exactly: by its own seq gaps, by its batches, by
	 * its stats; and accounted for. */
	CHECK(sa->dropped >= w1 - w0 - per_ring);
	CHECK_EQ(ss->r[0].gaps, sa->dropped);
	CHECK_EQ(ss->r[0].batch_dropped, sa->dropped);
	CHECK_EQ(sa->read + sa->dropped + sa->pending, sa->written);
	/* A filtered reader lapped is told too: its batches' dropped say the
	 * records lost among those its filter skipped (they said none). */
	CHECK(sc->dropped >= w1 - w0 - per_ring);
	CHECK_EQ(ss->r[2].batch_dropped, sc->dropped);
	CHECK_EQ(sc->read + sc->filtered + sc->dropped + sc->pending, sc->written);
	/* An agent lapped is told too (its stats summed its batches' dropped,
	 * which said nothing of what its filter skipped): it lost at least
	 * what the writer wrote past a ring while it was stopped. */
	CHECK_RC(ss->ag.rc, 0);
	CHECK(ss->ag.missed > 0);
	CHECK(ss->ag.missed <= ss->ag.s.dropped);
	CHECK(ss->ag.s.dropped >= w1 - w0 - per_ring);
	CHECK_EQ(ss->ag.s.evictions, 0);
	/* The other lost nothing, and all counted the same stream. */
	CHECK_EQ(sb->dropped, 0);
	CHECK_EQ(ss->r[1].gaps, 0);
	CHECK_EQ(sb->read, sb->written);
	CHECK_EQ(sa->written, sb->written);
	CHECK_EQ(sc->written, sb->written);
	munmap(ss, sizeof(*ss));
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 && strcmp(argv[1], "all") ? argv[1] : NULL;
	uint32_t kills = argc > 2 ? (uint32_t)atoi(argv[2]) : 200;

	if (getenv("XR_FAULT_KILLS"))
		kills = (uint32_t)atoi(getenv("XR_FAULT_KILLS"));
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (!only || !strcmp(only, "kill_storm"))
		kill_storm(kills);
	if (!only || !strcmp(only, "stopped_lossless"))
		stopped_lossless();
	if (!only || !strcmp(only, "stopped_lossy"))
		stopped_lossy();
	printf("ok\n");
	return 0;
}
