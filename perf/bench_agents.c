/* SPDX-License-Identifier: MIT */
/*
 * bench_agents: agents acting for seats through shared memory (issue 11,
 * item 11), all in one run, each figure beside its bound of the same run.
 *
 * The engine runs in this process (host, shards, control server: the
 * in-process engine tests/test_agents.c starts), hosting 2-player grid
 * games (20x20 unless --board) with --action-timeout 10 s, so that a game
 * waits for its agent rather than falling back. The agents are this
 * program's threads, attached through the control socket like any other.
 *
 *   steps    game steps a second (records / players; the shards' own
 *            counters in the arena) of N games (default 100, 1,000,
 *            10,000) when a C agent answers every seat with a random legal
 *            action drawn from the record's mask (xr_policy_random_legal,
 *            the built-in policy's own draw), in batches of up to 4096,
 *            waiting XR_WAIT_SPIN and XR_WAIT_DEFAULT; against the built-in
 *            policy playing the same games of the same engine, no agent.
 *            The three take turns in --rounds rounds (rotating order);
 *            each round's agent/built-in ratio is of adjacent measurements.
 *            Target: >= 0.8 of the built-in rate at 10,000 games.
 *   rtt      one game, both seats held by one agent; per turn, agent side:
 *              turn    t_ns(t+1) - t_ns(t): the records' stamps (the
 *                      shard's clock at the start of the round that wrote
 *                      them), so one whole turn of the game: records
 *                      built and published, the agent's answers seen,
 *                      the step. An upper bound of the round trip.
 *              answer  the agent's answers stored - t_ns(t)
 *              full    record t+1 in the agent's hands - t_ns(t)
 *            and the engine's own count, record written -> answer seen by
 *            the shard (xr_agent_stats rtt: log-linear buckets, each bound
 *            within 25 % of its values; every turn of the mode, warm-up and
 *            the last round's second of linger included).
 *            Modes: spin (XR_WAIT_SPIN), default (XR_WAIT_DEFAULT: spins
 *            20 us, then sleeps until woken; its sleeps per turn are
 *            printed), woken (xr_agent_arm() + poll() on xr_agent_fd() +
 *            xr_agent_recv(..., 0): every turn through the kernel's wakeup
 *            unless the records are there before the arm). Bounds in the
 *            same run: the engine alone (built-in policy, no agent: its
 *            turn, what the game and its records cost), a bare eventfd
 *            ping-pong between two threads on the same two CPUs (write one
 *            eventfd, read the other, round trip) and a bare spin
 *            ping-pong (two threads spinning on each other's cache line:
 *            what moving a line there and back costs on this machine, the
 *            least a spinning turn can take). The modes take turns in
 *            --rtt-rounds rounds. Targets: spin p99 <= 2 us; eventfd
 *            within 10 % of the bare ping-pong. --think-us U: the agent
 *            answers U us after its batch came (a policy that takes its
 *            time), which shows what the shard's wait costs once its 50 us
 *            spin is over (engine/shard.c, run_fast).
 *   python   at --python-games games (default 1,000), perf/python_agent.py
 *            (Debian's /usr/bin/python3, numpy, the build's package) as an
 *            agent process, Agent.step() on batches of --python-batch
 *            (1,024), against this program's C agent on the same engine,
 *            the same batches and XR_WAIT_DEFAULT, taking turns per round.
 *            Two policies, each played by both: "first legal" (numpy's
 *            mask.argmax against memchr: the cheapest policy, so what is
 *            left is each agent's path through xring) and "random legal"
 *            (a numpy draw of one float per action against
 *            xr_policy_random_legal: what a numpy policy costs). Target:
 *            the Python agent >= 0.7 of the C agent's steps/s, first legal.
 *   baselines  at --baseline-games games (default 1,000), the same grid
 *            game and random-legal agent through the pipelines users have
 *            today, built in perf/baselines/: one worker process per
 *            environment, actions over a pipe, observations in shared
 *            memory, the parent acting for all (Gymnasium AsyncVectorEnv's
 *            design; baseline_pipe_envs), and a gRPC bidirectional stream
 *            (grpcio; perf/baselines/grpc_envs.py), one message per game
 *            step and one message per round of all games. xring's steps/s
 *            at the same game count (its best mode of the steps part)
 *            divided by each. Targets: >= 10x pipe-per-environment, >= 100x
 *            gRPC. A baseline that cannot run here is reported absent,
 *            with why.
 *
 *   bench_agents [--seconds S] [--rounds R] [--games 100,1000,10000]
 *                [--shards K] [--board HxW] [--rtt-turns T] [--rtt-rounds R]
 *                [--think-us U] [--python-games N] [--python-batch B]
 *                [--baseline-games N] [--no-steps] [--no-rtt] [--no-python]
 *                [--no-baselines] [--no-pin] [--hugepages prefer|require|off]
 *                [--json]
 *
 * Honesty: every answer the agent of the rtt part gave is checked in the
 * next record of its seat (applied == the answer, applied_by AGENT); a
 * mismatch exits 1. The steps and python parts print each agent's
 * fallbacks (0 when every answer was in time); a Python agent that fails
 * exits 1, one that cannot start (no numpy, no build/python) is reported
 * absent. A missed target exits 0.
 *
 * The machine has 2 CPUs, shared by the engine and the agent (and by
 * whatever else runs there): docs/benchmarks.md, "Agents".
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/host.h"
#include "shm/arena_priv.h"
#include "util/atomics.h"
#include "util/clock.h"
#include "xring/agent.h"
#include "xring/error.h"
#include "xring/game.h"
#include "xring/games.h"
#include "bench_util.h"

#define SEC 1000000000ull
#define PLAYERS 2
#define BATCH 4096
#define MAX_ROUNDS 32
#define MAX_SIZES 8
#define TIMEOUT_NS (10 * SEC) /* --action-timeout: "large" */

struct opts {
	double seconds;         /* per measurement */
	uint32_t rounds;
	uint32_t games[MAX_SIZES], n_games;
	uint32_t shards;
	uint32_t board_h, board_w;
	uint32_t rtt_turns, rtt_rounds;
	uint32_t baseline_games;
	uint32_t python_games, python_batch;
	bool steps, rtt, python, baselines, pin, json;
	xr_hugepages hugepages;
	int cpu_engine, cpu_agent; /* -1: not pinned */
};

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_agents: %s: %s (%s)\n", what, rc ? xr_strerror(rc) : "",
		xr_last_reason());
	exit(1);
}

static cpu_set_t allowed; /* at start */
static uint64_t think_ns;  /* --think-us */

static void unpin(void)
{
	sched_setaffinity(0, sizeof(allowed), &allowed);
}

static void pause_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / SEC), (long)(ns % SEC)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, uint32_t n)
{
	qsort(v, n, sizeof(*v), cmp_dbl);
	return n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0;
}

/* ---- the engine, in this process (as tests/test_agents.c starts it) ---- */

struct engine {
	char name[64];
	struct xr_host *h;
	xr_exp_template t;
	xr_stream_spec ss;
	xr_arena_spec spec;
	xr_server_opts so;
	struct xr_engine_opts eo;
	struct xr_gdir_shape shape;
	struct xr_gdir_opts go;
	struct xr_shard_result res;
	pthread_t th;
	int cpu;
	int rc;
};

static void *engine_main(void *p)
{
	struct engine *e = p;

	/* The shards are its threads: they inherit the pinning. */
	pin_to(e->cpu);
	e->rc = xr_host_run_games(e->h, &e->t, &e->eo, &e->res);
	return NULL;
}

/* Ring bytes for `games` games: every seat's record of a turn at once
 * (they wait for answers together), four times over, at least 16 MiB. */
static uint64_t ring_bytes(uint32_t games, uint32_t shards, uint32_t rec)
{
	uint64_t want = 4ull * games * PLAYERS * rec / shards, b = 16u << 20;

	while (b < want)
		b <<= 1;
	return b;
}

/* The first engine's arena backing, for the output: on 4 KiB pages a
 * virtual machine's first touch of each page costs tens of microseconds,
 * which the round trip's p99 shows (docs/benchmarks.md). */
static char backing[64];

static void engine_start(struct engine *e, const struct opts *o, const char *tag, uint32_t games,
			 uint32_t shards, int cpu)
{
	char why[512];
	const xr_game_vtable *vt = xr_game_builtin_grid();
	xr_game_config cfg = {.board_h = o->board_h, .board_w = o->board_w, .players = PLAYERS,
			      .seed = 1};
	int rc;

	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "bench-agents-%d-%s", (int)getpid(), tag);
	e->cpu = cpu;
	e->ss = (xr_stream_spec){.policy = XR_POLICY_LOSSLESS, .n_rings = shards,
				 .kind = XR_RECORD_EXPERIENCE};
	if ((rc = xr_shard_shape(vt, &cfg, XR_DTYPE_U8, &e->ss.shape)) < 0 ||
	    (rc = xr_exp_template_init(&e->t, &e->ss.shape)) < 0)
		die("record shape", rc);
	e->ss.ring_bytes = ring_bytes(games, shards, e->t.size);
	e->spec = (xr_arena_spec){.name = e->name, .streams = &e->ss, .n_streams = 1,
				  .hugepages = o->hugepages, .numa_node = XR_NUMA_NONE};
	e->eo = (struct xr_engine_opts){
		.shard = {.vt = vt, .cfg = cfg, .games = games, .obs_dtype = XR_DTYPE_U8,
			  .high_watermark = 0.9, .low_watermark = 0.5},
		.shards = shards, .numa_node = -1};
	e->shape = (struct xr_gdir_shape){.vt = vt, .board_h = o->board_h, .board_w = o->board_w,
					  .players = PLAYERS, .obs_dtype = XR_DTYPE_U8,
					  .stream_name = XR_DEFAULT_STREAM};
	e->go = (struct xr_gdir_opts){.shards = shards, .shapes = &e->shape, .n_shapes = 1,
				      .start = games, .start_seed = 1, .max_agents = 8,
				      .fallback = XR_FALLBACK_NOOP,
				      .action_timeout_ns = TIMEOUT_NS};
	sigset_t was;
	bench_hold_signals(&was); /* until the arena is known (bench_util.h) */
	if ((rc = xr_host_create(&e->spec, &e->so, &e->go, &e->h, why, sizeof(why))) < 0) {
		fprintf(stderr, "bench_agents: engine: %s\n", why);
		exit(1);
	}
	xr_arena_facts gf; /* a signal from here on removes it (bench_util.h) */
	xr_arena_facts_get(xr_host_arena(e->h), &gf);
	bench_remove_on_signal(gf.path);
	if (!backing[0])
		snprintf(backing, sizeof(backing), "%s, %" PRIu64 " KiB pages",
			 xr_backing_name(gf.backing), (uint64_t)gf.page_size >> 10);
	bench_release_signals(&was);
	if (pthread_create(&e->th, NULL, engine_main, e))
		die("pthread_create", 0);
}

static void engine_stop(struct engine *e)
{
	xr_host_stop(e->h);
	pthread_join(e->th, NULL);
	if (e->rc < 0)
		die("engine", e->rc);
	bench_keep_all();
	xr_host_destroy(e->h);
}

/* Shard k's stats after its next stats tick (2 Hz): steps and when. */
static void next_tick(struct engine *e, uint32_t k, uint64_t *steps, uint64_t *t_ns)
{
	const struct xr_shard_stats *st = &xr_host_arena(e->h)->hdr->shards[k];
	uint64_t ticks = xr_load_relaxed(&st->ticks), until = xr__now_ns() + 5 * SEC;

	while (xr_load_relaxed(&st->ticks) == ticks) {
		if (xr__now_ns() > until)
			die("a shard published no stats for 5 s", 0);
		pause_ns(1000000);
	}
	*t_ns = xr_load_relaxed(&st->tick_ns);
	*steps = xr_load_relaxed(&st->steps);
}

/* Game steps a second over about `seconds`, from the shards' counters,
 * each between two of its own stats ticks. */
static double steps_rate(struct engine *e, double seconds)
{
	uint32_t n = e->eo.shards;
	uint64_t s0[XR_MAX_RINGS], t0[XR_MAX_RINGS], s1, t1;
	double rate = 0;

	for (uint32_t k = 0; k < n; k++)
		next_tick(e, k, &s0[k], &t0[k]);
	pause_ns((uint64_t)(seconds * 1e9));
	for (uint32_t k = 0; k < n; k++) {
		next_tick(e, k, &s1, &t1);
		rate += (double)(s1 - s0[k]) * 1e9 / (double)(t1 - t0[k]);
	}
	return rate;
}

/* ---- steps: a C agent answering every seat of N games ---- */

/* How an agent of this program chooses: the built-in policy's own uniform
 * draw among the legal actions, or the first legal action (the cheapest
 * policy there is: what is left is the agent's transport). */
enum { P_RANDOM, P_FIRST, P_N };
static const char *const p_name[P_N] = {"random legal", "first legal"};
static const char *const p_key[P_N] = {"random", "first"};

struct player {
	xr_agent *a;
	uint32_t batch;         /* records per recv, at most */
	int policy;
	xr_exp_template t;
	uint64_t rng;
	_Atomic int stop;
	int err;
};

/*
 * After a detach: until the engine has given the agent's seats back to the
 * policy (its agent entry no longer LIVE), and the shards have copied the
 * claims since. A game that waits for an agent's answer when its seat
 * passes straight to another agent (the engine seeing the detach and the
 * next agent's claim in one copy of the claims) waits for its deadline: the
 * new agent's reader starts after the record it would have to answer. So
 * each agent here starts on seats the policy holds, and measures the steady
 * state; docs/benchmarks.md ("Agents") says so.
 */
static void seats_back(struct engine *e, uint32_t agent)
{
	const struct xr_arena *ar = xr_host_arena(e->h);
	uint64_t until = xr__now_ns() + 5 * SEC;

	while (xr_load_acquire(&ar->agents[agent].state) == XR_AGENT_LIVE) {
		if (xr__now_ns() > until)
			die("the engine kept a detached agent's seats for 5 s", 0);
		pause_ns(1000000);
	}
	pause_ns(SEC / 20);
}

static void *player_main(void *p)
{
	struct player *pl = p;
	int32_t *act = malloc(pl->batch * sizeof(*act));
	xr_obs_batch b;

	if (!act) {
		pl->err = -ENOMEM;
		return NULL;
	}
	while (!xr_load_relaxed(&pl->stop)) {
		int n = xr_agent_recv(pl->a, 1, pl->batch, 50000000, &b);
		if (n < 0) {
			pl->err = n;
			break;
		}
		for (int i = 0; i < n; i++) {
			const uint8_t *mask = (const uint8_t *)xr_frame_data(b.frames[i]) + pl->t.off_mask;
			const uint8_t *one;

			if (pl->policy == P_RANDOM)
				act[i] = xr_policy_random_legal(mask, pl->t.shape.mask_len,
								&pl->rng);
			else
				act[i] = (one = memchr(mask, 1, pl->t.shape.mask_len)) ?
						 (int32_t)(one - mask) : -1;
		}
		if (n > 0 && (pl->err = xr_agent_send(pl->a, &b, act)) < 0)
			break;
	}
	free(act);
	return NULL;
}

enum { S_BUILTIN, S_SPIN, S_DEFAULT, S_N };
static const char *const s_name[S_N] = {"built-in policy", "agent, spin", "agent, default wait"};
static const char *const s_key[S_N] = {"builtin", "agent_spin", "agent_default"};

struct steps_row {
	uint32_t games;
	double rate[S_N][MAX_ROUNDS];
	double ratio[S_N][MAX_ROUNDS]; /* agent / built-in of the same round */
	double med[S_N], lo[S_N], hi[S_N], ratio_med[S_N], ratio_lo[S_N], ratio_hi[S_N];
	uint64_t actions[S_N], fallbacks[S_N], dropped[S_N], evictions[S_N];
};

/* One agent, attached, claiming every seat, playing on its thread for
 * `seconds` after a warm-up: the rate, and its counts into row. */
static double agent_rate(struct engine *e, const struct opts *o, uint32_t games, int mode,
			 uint32_t batch, int policy, struct steps_row *row)
{
	struct player pl = {.rng = 0x9e3779b97f4a7c15ull + (uint64_t)mode, .batch = batch,
			    .policy = policy};
	xr_agent_opts ao = {.label = "bench", .capacity = games,
			    .wait = mode == S_SPIN ? XR_WAIT_SPIN : XR_WAIT_DEFAULT};
	xr_stream_facts sf;
	xr_agent_stats st;
	pthread_t th;
	int rc;

	if ((rc = xr_agent_attach(e->name, &ao, &pl.a)) < 0 ||
	    (rc = xr_agent_claim(pl.a, 0, games - 1, 0, NULL)) < 0)
		die("agent", rc);
	xr_reader_stream_facts(xr_agent_reader(pl.a), &sf);
	if ((rc = xr_exp_template_init(&pl.t, &sf.shape)) < 0)
		die("template", rc);
	if (pthread_create(&th, NULL, player_main, &pl))
		die("pthread_create", 0);
	pause_ns(SEC / 2);
	double r = steps_rate(e, o->seconds);
	xr_store_relaxed(&pl.stop, 1);
	pthread_join(th, NULL);
	if (pl.err < 0)
		die("agent thread", pl.err);
	if ((rc = xr_agent_stats_get(pl.a, &st)) < 0)
		die("agent stats", rc);
	row->actions[mode] += st.actions;
	row->fallbacks[mode] += st.fallbacks;
	row->dropped[mode] += st.dropped;
	row->evictions[mode] += st.evictions;
	xr_agent_detach(pl.a);
	seats_back(e, st.agent);
	return r;
}

static void summarise_steps(struct steps_row *row, uint32_t rounds)
{
	double v[MAX_ROUNDS];

	for (int m = 0; m < S_N; m++) {
		memcpy(v, row->rate[m], rounds * sizeof(*v));
		row->med[m] = median(v, rounds);
		row->lo[m] = v[0];
		row->hi[m] = v[rounds - 1];
		memcpy(v, row->ratio[m], rounds * sizeof(*v));
		row->ratio_med[m] = median(v, rounds);
		row->ratio_lo[m] = v[0];
		row->ratio_hi[m] = v[rounds - 1];
	}
}

static void steps_bench(const struct opts *o, uint32_t games, struct steps_row *row)
{
	struct engine e;
	char tag[32];

	memset(row, 0, sizeof(*row));
	row->games = games;
	snprintf(tag, sizeof(tag), "steps%u", games);
	engine_start(&e, o, tag, games, o->shards, -1);
	pause_ns(SEC);
	for (uint32_t k = 0; k < o->rounds; k++) {
		for (int i = 0; i < S_N; i++) {
			int m = (int)((k + (uint32_t)i) % S_N);
			if (m == S_BUILTIN) {
				pause_ns(SEC / 2); /* the seats back to the policy */
				row->rate[m][k] = steps_rate(&e, o->seconds);
			} else {
				row->rate[m][k] = agent_rate(&e, o, games, m, BATCH, P_RANDOM, row);
			}
		}
		for (int m = 0; m < S_N; m++)
			row->ratio[m][k] = row->rate[m][k] / row->rate[S_BUILTIN][k];
		fprintf(stderr, "bench_agents: %u games, round %u: built-in %.0f, spin %.0f, "
			"default %.0f steps/s\n", games, k + 1, row->rate[S_BUILTIN][k],
			row->rate[S_SPIN][k], row->rate[S_DEFAULT][k]);
	}
	engine_stop(&e);
	summarise_steps(row, o->rounds);
}

/* ---- rtt: one game, both seats held ---- */

enum { R_PING, R_SPINPING, R_POLICY, R_SPIN, R_DEFAULT, R_WOKEN, R_N };
static const char *const r_name[R_N] = {"bare eventfd ping-pong", "bare spin ping-pong",
					"engine alone (policy)", "agent, spin",
					"agent, default wait", "agent, woken (arm+poll)"};
static const char *const r_key[R_N] = {"bare_pingpong", "bare_spin_pingpong", "engine_alone",
				       "agent_spin", "agent_default", "agent_woken"};
/* The bare ping-pongs: only their round trip (K_TURN) is measured. */
#define R_BARE(m) ((m) == R_PING || (m) == R_SPINPING)
enum { K_TURN, K_ANSWER, K_FULL, K_N };
static const char *const k_name[K_N] = {"turn", "answer", "full"};

struct samples {
	uint64_t *v;
	size_t n, cap;
};

static void add(struct samples *s, uint64_t x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 65536;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			die("realloc", -ENOMEM);
	}
	s->v[s->n++] = x;
}

struct rtt_mode {
	struct samples k[K_N];          /* R_BARE: K_TURN is the round trip */
	double round_p50[MAX_ROUNDS], round_p99[MAX_ROUNDS];
	double p50[K_N], p99[K_N], p999[K_N];
	double policy_turn_ns;          /* R_POLICY: 1 / its steps a second */
	uint64_t turns, sleeps, wakeups, polls;
	uint64_t all_turns;             /* warm-up and linger included */
	uint64_t mismatches;
	xr_agent_stats st;
};

/* What the agent keeps of each seat's last record. */
struct seat_prev {
	bool have, asked;       /* asked: the agent's to answer (action -1) */
	uint32_t turn;
	uint64_t t_ns;
	int32_t act;
};

struct rec1 {
	uint32_t player, turn;
	uint64_t t_ns;
	int32_t action, applied;
	uint8_t applied_by;
	bool terminal;
};

static struct rec1 decode1(const xr_exp_template *t, const xr_frame *f)
{
	const uint8_t *d = xr_frame_data(f);
	struct rec1 r;
	int8_t by;

	memcpy(&r.player, d + t->off_player_id, 4);
	memcpy(&r.turn, d + t->off_turn, 4);
	memcpy(&r.t_ns, d + t->off_t_ns, 8);
	memcpy(&r.action, d + t->off_action, 4);
	memcpy(&r.applied, d + t->off_applied, 4);
	memcpy(&by, d + t->off_applied_by, 1);
	r.applied_by = (uint8_t)by;
	r.terminal = d[t->off_done] || d[t->off_truncated];
	return r;
}

/* The next batch, in mode m: spinning or blocking in xr_agent_recv(), or
 * armed and polled (woken). */
static int rtt_recv(xr_agent *a, int m, xr_obs_batch *b, struct rtt_mode *r)
{
	if (m != R_WOKEN)
		return xr_agent_recv(a, 1, 64, (int64_t)SEC, b);
	int rc = xr_agent_arm(a, 1);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		struct pollfd pf = {.fd = xr_agent_fd(a), .events = POLLIN};
		r->polls++;
		if (poll(&pf, 1, 1000) < 0 && errno != EINTR)
			return -errno;
	}
	return xr_agent_recv(a, 1, 64, 0, b);
}

/* The samples of record r of a batch that arrived at t_arr, answered
 * with act at t_ans; checks that the step applied the seat's last answer. */
static void rtt_account(struct rtt_mode *r, struct seat_prev *prev, const struct rec1 *x,
			int32_t act, uint64_t t_arr, uint64_t t_ans, bool count)
{
	struct seat_prev *p = &prev[x->player];

	if (p->have && p->asked && x->turn == p->turn + 1) {
		if (x->applied != p->act || x->applied_by != XR_SRC_AGENT)
			r->mismatches++;
		else if (count && x->player == 0) {
			add(&r->k[K_TURN], x->t_ns - p->t_ns);
			add(&r->k[K_FULL], t_arr - p->t_ns);
		}
	}
	if (count && x->player == 0 && !x->terminal && x->action == -1) {
		add(&r->k[K_ANSWER], t_ans - x->t_ns);
		r->turns++;
	}
	*p = (struct seat_prev){.have = true, .asked = !x->terminal && x->action == -1,
				.turn = x->turn,
				.t_ns = x->t_ns, .act = act};
}

/* One round of mode m on game `game`: the agent claims its seats, answers
 * `turns` turns (after `warm` uncounted), then, if `linger`, goes on
 * answering for a second (the shards publish its counts twice a second)
 * and takes the engine's counts, and gives the seats back. */
static void rtt_round(xr_agent *a, uint32_t game, int m, uint32_t turns, uint32_t warm,
		      bool linger, struct rtt_mode *r)
{
	struct seat_prev prev[PLAYERS] = {{0}};
	int32_t act[64];
	uint64_t rng = 12345, seen = 0, until = 0;
	uint32_t claim;
	xr_exp_template t;
	xr_stream_facts sf;
	int rc;

	if ((rc = xr_agent_claim(a, game, game, 0, &claim)) < 0)
		die("claim", rc);
	xr_reader_stream_facts(xr_agent_reader(a), &sf);
	if ((rc = xr_exp_template_init(&t, &sf.shape)) < 0)
		die("template", rc);
	while (seen < (uint64_t)turns + warm || (linger && xr__now_ns() < until)) {
		xr_obs_batch b;
		int n = rtt_recv(a, m, &b, r);
		uint64_t t_arr = xr__now_ns();
		if (n < 0)
			die("agent recv", n);
		struct rec1 x[64];
		for (int i = 0; i < n; i++) {
			const uint8_t *d = xr_frame_data(b.frames[i]);
			x[i] = decode1(&t, b.frames[i]);
			act[i] = xr_policy_random_legal(d + t.off_mask, t.shape.mask_len, &rng);
		}
		while (think_ns && n > 0 && xr__now_ns() - t_arr < think_ns)
			xr_cpu_relax(); /* --think-us: a policy that takes its time */
		if (n > 0 && (rc = xr_agent_send(a, &b, act)) < 0)
			die("agent send", rc);
		uint64_t t_ans = xr__now_ns();
		bool count = seen >= warm && seen < (uint64_t)turns + warm;
		for (int i = 0; i < n; i++) {
			rtt_account(r, prev, &x[i], act[i], t_arr, t_ans, count);
			seen += x[i].player == 0 && !x[i].terminal && x[i].action == -1;
		}
		if (!until && seen >= (uint64_t)turns + warm)
			until = xr__now_ns() + SEC;
	}
	xr_reader_stats rs;
	if ((rc = xr_reader_stats_get(xr_agent_reader(a), &rs)) < 0)
		die("reader stats", rc);
	r->sleeps += rs.sleeps;
	r->wakeups += rs.wakeups;
	r->all_turns += seen;
	if (linger && (rc = xr_agent_stats_get(a, &r->st)) < 0)
		die("agent stats", rc);
	if ((rc = xr_agent_release(a, claim)) < 0)
		die("release", rc);
}

/* The bare bound: two threads, two eventfds, a round trip per turn. */
struct pong {
	int efd[2];
	int cpu;
};

static void *pong_main(void *p)
{
	struct pong *pg = p;
	uint64_t v;

	pin_to(pg->cpu);
	for (;;) {
		if (read(pg->efd[0], &v, 8) != 8)
			return NULL;
		if (v == UINT64_MAX - 1)
			return NULL; /* told to stop */
		v = 1;
		if (write(pg->efd[1], &v, 8) != 8)
			return NULL;
	}
}

static void ping_round(int cpu_b, uint32_t turns, uint32_t warm, struct rtt_mode *r)
{
	struct pong pg = {.cpu = cpu_b};
	pthread_t th;
	uint64_t v;

	pg.efd[0] = eventfd(0, EFD_CLOEXEC);
	pg.efd[1] = eventfd(0, EFD_CLOEXEC);
	if (pg.efd[0] < 0 || pg.efd[1] < 0 || pthread_create(&th, NULL, pong_main, &pg))
		die("eventfd ping-pong", -errno);
	for (uint32_t i = 0; i < turns + warm; i++) {
		uint64_t t0 = xr__now_ns();
		v = 1;
		if (write(pg.efd[0], &v, 8) != 8 || read(pg.efd[1], &v, 8) != 8)
			die("eventfd ping-pong", -errno);
		if (i >= warm) {
			add(&r->k[K_TURN], xr__now_ns() - t0);
			r->turns++;
		}
	}
	v = UINT64_MAX - 1;
	if (write(pg.efd[0], &v, 8) != 8)
		die("eventfd ping-pong", -errno);
	pthread_join(th, NULL);
	close(pg.efd[0]);
	close(pg.efd[1]);
}

/*
 * The bare bound of a spinning agent: two threads on the same two CPUs, each
 * spinning on a word the other stores, each word on its own cache line. A
 * round trip moves two lines between the CPUs, as a spinning turn must at
 * the least (the records' publication to the agent, its answer to the
 * shard), and nothing else: what this machine's coherence costs.
 * Release/acquire: the round number is all that passes, but the pair is
 * what a real exchange needs, so it is what is measured.
 */
struct spinpong {
	alignas(64) _Atomic uint64_t ping;
	alignas(64) _Atomic uint64_t pong;
	int cpu;
};

#define SPINPONG_STOP UINT64_MAX

static void *spinpong_main(void *p)
{
	struct spinpong *sp = p;
	uint64_t last = 0;

	pin_to(sp->cpu);
	for (;;) {
		uint64_t v;
		while ((v = atomic_load_explicit(&sp->ping, memory_order_acquire)) == last)
			xr_cpu_relax();
		if (v == SPINPONG_STOP)
			return NULL;
		last = v;
		atomic_store_explicit(&sp->pong, v, memory_order_release);
	}
}

static void spinping_round(int cpu_b, uint32_t turns, uint32_t warm, struct rtt_mode *r)
{
	static struct spinpong sp;
	pthread_t th;

	atomic_store(&sp.ping, 0);
	atomic_store(&sp.pong, 0);
	sp.cpu = cpu_b;
	if (pthread_create(&th, NULL, spinpong_main, &sp))
		die("spin ping-pong", -EAGAIN);
	for (uint32_t i = 1; i <= turns + warm; i++) {
		uint64_t t0 = xr__now_ns();
		atomic_store_explicit(&sp.ping, i, memory_order_release);
		while (atomic_load_explicit(&sp.pong, memory_order_acquire) != i)
			xr_cpu_relax();
		if (i > warm) {
			add(&r->k[K_TURN], xr__now_ns() - t0);
			r->turns++;
		}
	}
	atomic_store_explicit(&sp.ping, SPINPONG_STOP, memory_order_release);
	pthread_join(th, NULL);
}

static void summarise_rtt(struct rtt_mode *r, uint32_t rounds, const size_t *round_end)
{
	size_t from = 0;

	for (uint32_t k = 0; k < rounds; k++) {
		struct samples *s = &r->k[K_TURN];
		qsort(s->v + from, round_end[k] - from, sizeof(uint64_t), cmp_u64);
		r->round_p50[k] = pct_us(s->v + from, round_end[k] - from, 0.50);
		r->round_p99[k] = pct_us(s->v + from, round_end[k] - from, 0.99);
		from = round_end[k];
	}
	for (int k = 0; k < K_N; k++) {
		struct samples *s = &r->k[k];
		qsort(s->v, s->n, sizeof(uint64_t), cmp_u64);
		r->p50[k] = pct_us(s->v, s->n, 0.50);
		r->p99[k] = pct_us(s->v, s->n, 0.99);
		r->p999[k] = pct_us(s->v, s->n, 0.999);
	}
}

/* A game for one round (ids are never reused), its first turn played. */
static uint32_t new_game(xr_games *c, uint64_t seed)
{
	xr_game_spec spec = {.seed = seed};
	uint32_t id;
	int rc = xr_games_create(c, &spec, 1, &id);

	if (rc != 1)
		die("create a game", rc < 0 ? rc : -EIO);
	pause_ns(SEC / 10);
	return id;
}

static void gone_game(xr_games *c, uint32_t id)
{
	int rc = xr_games_destroy(c, &id, 1);

	if (rc < 0)
		die("destroy a game", rc);
}

/*
 * The engine hosts no game but the round's: while the bare ping-pong runs,
 * its shard has none and sleeps (it looks for orders every millisecond),
 * so the ping-pong has the two CPUs as the agent modes have them.
 */
static void rtt_bench(const struct opts *o, struct rtt_mode *res)
{
	struct engine e;
	xr_agent *ag[R_N] = {0};
	xr_games *c;
	size_t ends[R_N][MAX_ROUNDS];
	uint32_t warm = o->rtt_turns / 10;
	int rc;

	memset(res, 0, R_N * sizeof(*res));
	/* The host's own threads (control server, housekeeping) are made
	 * before this thread pins itself: they run where the kernel likes. */
	engine_start(&e, o, "rtt", 0, 1, o->cpu_engine);
	pin_to(o->cpu_agent);
	if ((rc = xr_games_open(e.name, NULL, &c)) < 0)
		die("games", rc);
	for (int m = R_SPIN; m < R_N; m++) {
		xr_agent_opts ao = {.label = r_key[m], .capacity = 1,
				    .wait = m == R_SPIN ? XR_WAIT_SPIN : XR_WAIT_DEFAULT};
		if ((rc = xr_agent_attach(e.name, &ao, &ag[m])) < 0)
			die("agent", rc);
	}
	for (uint32_t k = 0; k < o->rtt_rounds; k++) {
		for (int i = 0; i < R_N; i++) {
			int m = (int)((k + (uint32_t)i) % R_N);
			if (m == R_PING) {
				ping_round(o->cpu_engine, o->rtt_turns, warm, &res[m]);
			} else if (m == R_SPINPING) {
				spinping_round(o->cpu_engine, o->rtt_turns, warm, &res[m]);
			} else {
				uint32_t g = new_game(c, 1 + k * R_N + (uint32_t)m);
				if (m == R_POLICY)
					res[m].policy_turn_ns += 1e9 / steps_rate(&e, 1.0) / o->rtt_rounds;
				else
					rtt_round(ag[m], g, m, o->rtt_turns, warm,
						  k + 1 == o->rtt_rounds, &res[m]);
				gone_game(c, g);
			}
			ends[m][k] = res[m].k[K_TURN].n;
		}
	}
	for (int m = R_SPIN; m < R_N; m++)
		xr_agent_detach(ag[m]);
	xr_games_close(c);
	engine_stop(&e);
	unpin();
	for (int m = 0; m < R_N; m++)
		if (m != R_POLICY)
			summarise_rtt(&res[m], o->rtt_rounds, ends[m]);
}


/* The number after "key": in a JSON line, or -1. */
static double json_num(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	return p ? strtod(p + strlen(pat), NULL) : -1;
}

/* ---- python: a numpy agent against the C agent, batches of --python-batch ---- */

struct py_part {
	bool ran;
	char why[256];          /* when it did not */
	uint32_t games, batch;
	struct py_policy {
		double c[MAX_ROUNDS], py[MAX_ROUNDS], ratio[MAX_ROUNDS];
		double c_med, py_med, ratio_med, ratio_lo, ratio_hi;
		uint64_t py_fallbacks, py_copies, c_fallbacks;
	} p[P_N];
};

struct py_child {
	pid_t pid;
	FILE *out;              /* its stdout */
};

/* Starts perf/python_agent.py on engine e with Debian's python3 and the
 * build's package (PYTHONPATH), and waits up to 30 s for its "ready": 0,
 * or -1 with why. */
static int py_start(struct engine *e, uint32_t games, uint32_t batch, int policy,
		    struct py_child *c, char *why, size_t len)
{
	char g[16], b[16], line[512];
	int pfd[2];

	snprintf(g, sizeof(g), "%u", games);
	snprintf(b, sizeof(b), "%u", batch);
	if (pipe(pfd) < 0)
		die("pipe", -errno);
	c->pid = fork();
	if (c->pid < 0)
		die("fork", -errno);
	if (c->pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		unpin();
		setenv("PYTHONPATH", XR_BUILD_DIR "/python", 1);
		setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
		execl("/usr/bin/python3", "python3", XR_PERF_DIR "/python_agent.py", "--name",
		      e->name, "--games", g, "--batch", b, "--policy", p_key[policy],
		      (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	c->out = fdopen(pfd[0], "r");
	if (!c->out)
		die("fdopen", -errno);
	struct pollfd p = {.fd = pfd[0], .events = POLLIN};
	if (poll(&p, 1, 30000) == 1 && fgets(line, sizeof(line), c->out) &&
	    !strcmp(line, "ready\n"))
		return 0;
	kill(c->pid, SIGKILL);
	int st;
	waitpid(c->pid, &st, 0);
	fclose(c->out);
	snprintf(why, len, "/usr/bin/python3 %s/python_agent.py did not start (%s; its stderr "
		 "above says why; it needs python3-numpy and the build's python/ package)",
		 XR_PERF_DIR, WIFEXITED(st) ? "exited" : "no ready line in 30 s");
	return -1;
}

/* Stops it (SIGTERM: it stops after its current step and prints its
 * counts), and waits for the engine to have its seats back. */
static void py_stop(struct engine *e, struct py_child *c, uint64_t *fallbacks,
		    uint64_t *copies)
{
	char line[1024] = "";
	int st;

	kill(c->pid, SIGTERM);
	while (fgets(line, sizeof(line), c->out) && line[0] != '{')
		;
	fclose(c->out);
	if (waitpid(c->pid, &st, 0) != c->pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
	    line[0] != '{')
		die("the Python agent failed (its stderr above says why)", 0);
	*fallbacks += (uint64_t)json_num(line, "fallbacks");
	*copies += (uint64_t)json_num(line, "copies");
	seats_back(e, (uint32_t)json_num(line, "agent"));
}

/* Per policy and round, the C agent (on this program's thread) and the
 * Python agent (a process) in turn, the order alternating by round, each
 * starting on seats the built-in policy holds (seats_back). */
static void python_bench(const struct opts *o, struct py_part *r)
{
	struct engine e;
	struct steps_row row;
	struct py_child c;
	double v[MAX_ROUNDS];

	memset(r, 0, sizeof(*r));
	r->games = o->python_games;
	r->batch = o->python_batch;
	engine_start(&e, o, "python", r->games, o->shards, -1);
	pause_ns(SEC);
	for (int p = 0; p < P_N; p++) {
		struct py_policy *q = &r->p[p];

		memset(&row, 0, sizeof(row));
		for (uint32_t k = 0; k < o->rounds; k++) {
			for (int i = 0; i < 2; i++) {
				if ((i + (int)k) % 2 == 0) {
					q->c[k] = agent_rate(&e, o, r->games, S_DEFAULT, r->batch,
							     p, &row);
					continue;
				}
				if (py_start(&e, r->games, r->batch, p, &c, r->why,
					     sizeof(r->why)) < 0) {
					engine_stop(&e);
					return;
				}
				q->py[k] = steps_rate(&e, o->seconds);
				py_stop(&e, &c, &q->py_fallbacks, &q->py_copies);
			}
			q->ratio[k] = q->py[k] / q->c[k];
			fprintf(stderr, "bench_agents: python part, %s, %u games, round %u: C "
				"agent %.0f, Python agent %.0f steps/s\n", p_name[p], r->games,
				k + 1, q->c[k], q->py[k]);
		}
		q->c_fallbacks = row.fallbacks[S_DEFAULT];
		memcpy(v, q->c, o->rounds * sizeof(*v));
		q->c_med = median(v, o->rounds);
		memcpy(v, q->py, o->rounds * sizeof(*v));
		q->py_med = median(v, o->rounds);
		memcpy(v, q->ratio, o->rounds * sizeof(*v));
		q->ratio_med = median(v, o->rounds);
		q->ratio_lo = v[0];
		q->ratio_hi = v[o->rounds - 1];
	}
	engine_stop(&e);
	r->ran = true;
}

/* ---- baselines: programs of perf/baselines/, one JSON line each ---- */

enum { B_PIPE, B_GRPC_GAME, B_GRPC_ROUND, B_N };
static const char *const b_name[B_N] = {
	"pipe per environment (AsyncVectorEnv design)", "gRPC stream, a message per game step",
	"gRPC stream, a message per round of all games"};
static const char *const b_key[B_N] = {"pipe_per_env", "grpc_per_game", "grpc_per_round"};

struct baseline {
	bool ran;
	double rate;            /* game steps a second */
	char line[1024];        /* its JSON line, or why it is absent */
};

/* Runs cmd (a shell command line), keeps its last stdout line. */
static void run_baseline(const char *cmd, struct baseline *b)
{
	char buf[1024];
	FILE *f;

	fprintf(stderr, "bench_agents: %s\n", cmd);
	b->ran = false;
	snprintf(b->line, sizeof(b->line), "did not run");
	f = popen(cmd, "r");
	if (!f)
		return;
	while (fgets(buf, sizeof(buf), f))
		if (buf[0] == '{') {
			buf[strcspn(buf, "\n")] = '\0';
			snprintf(b->line, sizeof(b->line), "%s", buf);
		}
	int st = pclose(f);
	b->rate = json_num(b->line, "steps_per_s");
	b->ran = st == 0 && b->rate > 0;
	if (!b->ran && !strstr(b->line, "absent"))
		snprintf(b->line, sizeof(b->line), "{\"absent\":\"exit status %d\"}",
			 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void baselines_bench(const struct opts *o, const char *dir, struct baseline *b)
{
	char cmd[PATH_MAX * 2 + 256];
	const char *modes[2] = {"per-game", "per-round"};

	snprintf(cmd, sizeof(cmd), "'%s/baseline_pipe_envs' --games %u --board %ux%u --seconds %g",
		 dir, o->baseline_games, o->board_h, o->board_w, o->seconds);
	run_baseline(cmd, &b[B_PIPE]);
	for (int i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd),
			 "/usr/bin/python3 '%s/baselines/grpc_envs.py' --lib '%s/libbench_envs.so' "
			 "--games %u --board %ux%u --seconds %g --mode %s",
			 XR_PERF_DIR, dir, o->baseline_games, o->board_h, o->board_w, o->seconds,
			 modes[i]);
		run_baseline(cmd, &b[B_GRPC_GAME + i]);
	}
}

/* ---- output ---- */

static const char *met(bool ok)
{
	return ok ? "met" : "NOT met";
}

static void print_steps(const struct opts *o, const struct steps_row *rows, uint32_t n)
{
	printf("steps/s: game steps a second (records / %d players), median of %u rounds "
	       "[range]; agent/built-in of each round's adjacent measurements; arena on %s:\n",
	       PLAYERS, o->rounds, backing);
	for (uint32_t i = 0; i < n; i++) {
		const struct steps_row *r = &rows[i];
		printf("  %6u games\n", r->games);
		for (int m = 0; m < S_N; m++) {
			printf("    %-20s %10.0f [%.0f-%.0f]", s_name[m], r->med[m], r->lo[m],
			       r->hi[m]);
			if (m != S_BUILTIN)
				printf("  %.2f x built-in [%.2f-%.2f]; answers taken %" PRIu64
				       ", fallbacks %" PRIu64 ", dropped %" PRIu64,
				       r->ratio_med[m], r->ratio_lo[m], r->ratio_hi[m], r->actions[m],
				       r->fallbacks[m], r->dropped[m]);
			printf("\n");
		}
		if (r->games == 10000)
			printf("    target: agent >= 0.80 x built-in at 10,000 games: spin %.2f (%s), "
			       "default wait %.2f (%s)\n", r->ratio_med[S_SPIN],
			       met(r->ratio_med[S_SPIN] >= 0.8), r->ratio_med[S_DEFAULT],
			       met(r->ratio_med[S_DEFAULT] >= 0.8));
	}
}

static void print_rtt(const struct opts *o, const struct rtt_mode *r)
{
	printf("round trip, one game, both seats held by one agent; %u rounds x %u turns a mode; "
	       "arena on %s; us, p50 / p99 / p999:\n", o->rtt_rounds, o->rtt_turns, backing);
	printf("  %-26s %-24s %-24s %-24s %-22s %s\n", "", "turn", "answer", "full",
	       "engine rtt (<= bucket)", "slept/turn");
	for (int m = 0; m < R_N; m++) {
		const struct rtt_mode *x = &r[m];
		if (m == R_POLICY) {
			printf("  %-26s %.2f (1 / its steps a second: the game and its records)\n",
			       r_name[m], x->policy_turn_ns / 1e3);
			continue;
		}
		printf("  %-26s", r_name[m]);
		for (int k = 0; k < K_N; k++) {
			char c[32] = "";
			if (!R_BARE(m) || k == K_TURN)
				snprintf(c, sizeof(c), "%.2f / %.2f / %.2f", x->p50[k], x->p99[k],
					 x->p999[k]);
			printf(" %-24s", c);
		}
		if (!R_BARE(m))
			printf(" %.2f / %.2f / %.2f %10.2f", x->st.rtt_p50_ns / 1e3,
			       x->st.rtt_p99_ns / 1e3, x->st.rtt_p999_ns / 1e3,
			       (double)(m == R_WOKEN ? x->polls : x->sleeps) /
				       (double)(x->all_turns ? x->all_turns : 1));
		printf("\n");
		printf("  %-26s  rounds' turn p50:", "");
		for (uint32_t k = 0; k < o->rtt_rounds; k++)
			printf(" %.2f", x->round_p50[k]);
		printf("; p99:");
		for (uint32_t k = 0; k < o->rtt_rounds; k++)
			printf(" %.2f", x->round_p99[k]);
		printf("\n");
	}
	const struct rtt_mode *p = &r[R_PING], *s = &r[R_SPIN], *b = &r[R_SPINPING];
	uint64_t e99 = s->st.rtt_p99_ns;
	/* The engine's histogram is log-linear (util/llhist.h): a bound of
	 * 2.048 us is the bucket [1.792, 2.048) us, so at or under it is met. */
	printf("  target: spin p99 <= 2 us: the engine's round trip (record written -> answer seen, "
	       "every turn of the mode, warm-up and the last round's linger included) p99 "
	       "< %.3f us (its histogram's bucket bound): %s; agent side, the whole turn (the "
	       "game's step and records included) p99 %.2f us; the machine's own bound, the bare "
	       "spin ping-pong, p99 %.2f us (%s); engine p99 / bare p99 %.2f\n",
	       e99 / 1e3, e99 && e99 <= 2048 ? "met" : "NOT met", s->p99[K_TURN],
	       b->p99[K_TURN], b->p99[K_TURN] > 2.0 ? "itself over 2 us: not to be met here"
						    : "under 2 us",
	       b->p99[K_TURN] > 0 ? e99 / 1e3 / b->p99[K_TURN] : 0.0);
	for (int m = R_DEFAULT; m <= R_WOKEN; m++)
		printf("  target: %s within 10%% of the bare ping-pong: turn / ping-pong round trip "
		       "p50 %.2f, p99 %.2f, p999 %.2f: %s\n", r_name[m],
		       r[m].p50[K_TURN] / p->p50[K_TURN], r[m].p99[K_TURN] / p->p99[K_TURN],
		       r[m].p999[K_TURN] / p->p999[K_TURN],
		       met(r[m].p50[K_TURN] <= 1.1 * p->p50[K_TURN] &&
			   r[m].p99[K_TURN] <= 1.1 * p->p99[K_TURN]));
}

static void print_baselines(const struct opts *o, const struct baseline *b, double xr,
			    const char *xr_mode)
{
	printf("baselines, %u games, the same grid game and random-legal agent; xring %.0f "
	       "steps/s (%s):\n", o->baseline_games, xr, xr_mode);
	for (int i = 0; i < B_N; i++) {
		if (!b[i].ran) {
			printf("  %-48s absent: %s\n", b_name[i], b[i].line);
			continue;
		}
		double want = i == B_PIPE ? 10 : 100;
		printf("  %-48s %10.0f steps/s: xring %.1f x (target >= %.0fx: %s)\n", b_name[i],
		       b[i].rate, xr / b[i].rate, want, met(xr / b[i].rate >= want));
	}
}

static void json_steps(const struct steps_row *rows, uint32_t n)
{
	printf("\"steps\":[");
	for (uint32_t i = 0; i < n; i++) {
		printf("%s{\"games\":%u", i ? "," : "", rows[i].games);
		for (int m = 0; m < S_N; m++) {
			printf(",\"%s\":{\"median\":%.0f,\"min\":%.0f,\"max\":%.0f", s_key[m],
			       rows[i].med[m], rows[i].lo[m], rows[i].hi[m]);
			if (m != S_BUILTIN)
				printf(",\"ratio\":%.3f,\"ratio_min\":%.3f,\"ratio_max\":%.3f,"
				       "\"fallbacks\":%" PRIu64, rows[i].ratio_med[m],
				       rows[i].ratio_lo[m], rows[i].ratio_hi[m],
				       rows[i].fallbacks[m]);
			printf("}");
		}
		printf("}");
	}
	printf("]");
}

static void json_rtt(const struct rtt_mode *r)
{
	printf("\"rtt_us\":{");
	for (int m = 0; m < R_N; m++) {
		printf("%s\"%s\":{", m ? "," : "", r_key[m]);
		if (m == R_POLICY) {
			printf("\"turn\":%.3f}", r[m].policy_turn_ns / 1e3);
			continue;
		}
		for (int k = 0; k < K_N; k++)
			if (!R_BARE(m) || k == K_TURN)
				printf("%s\"%s\":[%.3f,%.3f,%.3f]", k ? "," : "", k_name[k],
				       r[m].p50[k], r[m].p99[k], r[m].p999[k]);
		if (!R_BARE(m))
			printf(",\"engine_rtt_bucket\":[%.3f,%.3f,%.3f],\"sleeps_per_turn\":%.3f",
			       r[m].st.rtt_p50_ns / 1e3, r[m].st.rtt_p99_ns / 1e3,
			       r[m].st.rtt_p999_ns / 1e3,
			       (double)(m == R_WOKEN ? r[m].polls : r[m].sleeps) /
				       (double)(r[m].all_turns ? r[m].all_turns : 1));
		printf("}");
	}
	printf("}");
}

static void print_python(const struct py_part *r)
{
	if (!r->ran) {
		printf("Python agent: absent: %s\n", r->why);
		return;
	}
	printf("Python agent (numpy, Agent.step, batches of %u) against the C agent (the same "
	       "batches, default wait, the same policy), %u games, median of rounds [range]:\n",
	       r->batch, r->games);
	for (int p = P_N - 1; p >= 0; p--) {
		const struct py_policy *q = &r->p[p];

		printf("  %-12s C agent %9.0f steps/s (fallbacks %" PRIu64 "), Python %9.0f "
		       "(fallbacks %" PRIu64 ", batches copied %" PRIu64 "): %.2f x [%.2f-%.2f]",
		       p_name[p], q->c_med, q->c_fallbacks, q->py_med, q->py_fallbacks,
		       q->py_copies, q->ratio_med, q->ratio_lo, q->ratio_hi);
		if (p == P_FIRST)
			printf(" (target >= 0.70: %s)\n", met(q->ratio_med >= 0.7));
		else
			printf(" (numpy's draw against C's: the policy's cost, no target)\n");
	}
}

static void json_python(const struct py_part *r)
{
	if (!r->ran) {
		printf("\"python\":{\"absent\":true}");
		return;
	}
	printf("\"python\":{\"games\":%u,\"batch\":%u", r->games, r->batch);
	for (int p = 0; p < P_N; p++) {
		const struct py_policy *q = &r->p[p];

		printf(",\"%s\":{\"c_agent\":%.0f,\"python_agent\":%.0f,\"ratio\":%.3f,"
		       "\"ratio_min\":%.3f,\"ratio_max\":%.3f,\"python_fallbacks\":%" PRIu64 "}",
		       p_key[p], q->c_med, q->py_med, q->ratio_med, q->ratio_lo, q->ratio_hi,
		       q->py_fallbacks);
	}
	printf("}");
}

static void json_baselines(const struct baseline *b, double xr)
{
	printf("\"baselines\":{\"xring\":%.0f", xr);
	for (int i = 0; i < B_N; i++) {
		if (b[i].ran)
			printf(",\"%s\":{\"steps_per_s\":%.0f,\"xring_ratio\":%.2f}", b_key[i],
			       b[i].rate, xr / b[i].rate);
		else
			printf(",\"%s\":{\"absent\":true}", b_key[i]);
	}
	printf("}");
}

/* ---- main ---- */

static const char usage[] =
	"usage: bench_agents [--seconds S] [--rounds R] [--games 100,1000,10000] [--shards K]\n"
	"                    [--board HxW] [--rtt-turns T] [--rtt-rounds R]\n"
	"                    [--think-us U] [--python-games N] [--python-batch B]\n"
	"                    [--baseline-games N] [--no-steps] [--no-rtt] [--no-python]\n"
	"                    [--no-baselines] [--no-pin] [--hugepages prefer|require|off]\n"
	"                    [--json]\n"
	"Agents acting for seats: steps/s against the built-in policy, the action round\n"
	"trip against a bare eventfd ping-pong, a Python agent against the C agent, and\n"
	"the pipe-per-environment and gRPC baselines (perf/bench_agents.c,\n"
	"docs/benchmarks.md \"Agents\").\n";

static void parse_games(struct opts *o, char *s)
{
	o->n_games = 0;
	for (char *t = strtok(s, ","); t && o->n_games < MAX_SIZES; t = strtok(NULL, ","))
		o->games[o->n_games++] = (uint32_t)strtoul(t, NULL, 10);
}

static void parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){.seconds = 2, .rounds = 5, .games = {100, 1000, 10000}, .n_games = 3,
			   .shards = 1, .board_h = 20, .board_w = 20, .rtt_turns = 20000,
			   .rtt_rounds = 5, .baseline_games = 1000, .python_games = 1000,
			   .python_batch = 1024, .steps = true, .rtt = true, .python = true,
			   .baselines = true, .pin = true, .hugepages = XR_HUGEPAGES_PREFER};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool took = v != NULL;
		if (!strcmp(a, "--seconds") && v)
			o->seconds = atof(v);
		else if (!strcmp(a, "--rounds") && v)
			o->rounds = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--games") && v)
			parse_games(o, argv[i + 1]);
		else if (!strcmp(a, "--shards") && v)
			o->shards = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--board") && v)
			took = sscanf(v, "%ux%u", &o->board_h, &o->board_w) == 2;
		else if (!strcmp(a, "--rtt-turns") && v)
			o->rtt_turns = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--rtt-rounds") && v)
			o->rtt_rounds = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--think-us") && v)
			think_ns = (uint64_t)(atof(v) * 1e3);
		else if (!strcmp(a, "--baseline-games") && v)
			o->baseline_games = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--python-games") && v)
			o->python_games = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--hugepages") && v)
			took = !strcmp(v, "prefer")    ? (o->hugepages = XR_HUGEPAGES_PREFER, true)
			       : !strcmp(v, "require") ? (o->hugepages = XR_HUGEPAGES_REQUIRE, true)
			       : !strcmp(v, "off")     ? (o->hugepages = XR_HUGEPAGES_OFF, true)
						       : false;
		else if (!strcmp(a, "--python-batch") && v)
			o->python_batch = (uint32_t)strtoul(v, NULL, 10);
		else {
			took = false;
			if (!strcmp(a, "--no-steps"))
				o->steps = false;
			else if (!strcmp(a, "--no-rtt"))
				o->rtt = false;
			else if (!strcmp(a, "--no-baselines"))
				o->baselines = false;
			else if (!strcmp(a, "--no-python"))
				o->python = false;
			else if (!strcmp(a, "--no-pin"))
				o->pin = false;
			else if (!strcmp(a, "--json"))
				o->json = true;
			else {
				fputs(usage, stderr);
				exit(2);
			}
			continue;
		}
		if (!took) {
			fputs(usage, stderr);
			exit(2);
		}
		i++;
	}
	if (!o->rounds || o->rounds > MAX_ROUNDS || !o->rtt_rounds || o->rtt_rounds > MAX_ROUNDS ||
	    !o->shards || o->shards > 8 || !o->n_games || !o->rtt_turns || !o->python_games ||
	    !o->python_batch || o->python_batch > 65536) {
		fputs(usage, stderr);
		exit(2);
	}
	o->cpu_engine = o->cpu_agent = -1;
	if (o->pin)
		two_cpus(&o->cpu_engine, &o->cpu_agent);
}

/* xring's steps/s at n games, agent playing: the best agent mode's median
 * (measured now if the steps part did not). */
static double xring_at(const struct opts *o, uint32_t n, struct steps_row *rows, uint32_t n_rows,
		       const char **mode)
{
	struct steps_row extra, *r = NULL;

	for (uint32_t i = 0; i < n_rows; i++)
		if (rows[i].games == n)
			r = &rows[i];
	if (!r) {
		steps_bench(o, n, &extra);
		r = &extra;
	}
	int m = r->med[S_SPIN] >= r->med[S_DEFAULT] ? S_SPIN : S_DEFAULT;
	*mode = s_name[m];
	return r->med[m];
}

int main(int argc, char **argv)
{
	struct opts o;
	static struct steps_row rows[MAX_SIZES];
	static struct rtt_mode rtt[R_N];
	struct baseline base[B_N];
	char exe[PATH_MAX], model[128];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	sched_getaffinity(0, sizeof(allowed), &allowed);
	parse(argc, argv, &o);
	if (len <= 0)
		die("readlink /proc/self/exe", -errno);
	exe[len] = '\0';
	cpu_model(model, sizeof(model));
	if (!o.json)
		printf("bench_agents: 2-player %ux%u grid games, %u shard%s, engine and agent "
		       "threads in one process; %s, %d CPUs shared by engine and agent%s\n",
		       o.board_h, o.board_w, o.shards, o.shards > 1 ? "s" : "", model,
		       CPU_COUNT(&allowed), o.pin ? " (round trip: engine on one, agent on the other)"
						  : "");
	for (uint32_t i = 0; o.steps && i < o.n_games; i++)
		steps_bench(&o, o.games[i], &rows[i]);
	if (o.steps && !o.json)
		print_steps(&o, rows, o.n_games);
	if (o.rtt) {
		rtt_bench(&o, rtt);
		for (int m = R_SPIN; m < R_N; m++)
			if (rtt[m].mismatches)
				die("an answer was not applied at its turn", 0);
		if (!o.json)
			print_rtt(&o, rtt);
	}
	static struct py_part py;
	if (o.python) {
		python_bench(&o, &py);
		if (!o.json)
			print_python(&py);
	}
	double xr = 0;
	const char *xr_mode = "";
	if (o.baselines) {
		xr = xring_at(&o, o.baseline_games, rows, o.steps ? o.n_games : 0, &xr_mode);
		baselines_bench(&o, dirname(exe), base);
		if (!o.json)
			print_baselines(&o, base, xr, xr_mode);
	}
	if (o.json) {
		printf("{\"bench\":\"agents\",\"board\":\"%ux%u\",\"shards\":%u,\"cpus\":%d,"
		       "\"backing\":\"%s\"",
		       o.board_h, o.board_w, o.shards, CPU_COUNT(&allowed), backing);
		if (o.steps)
			printf(","), json_steps(rows, o.n_games);
		if (o.rtt)
			printf(","), json_rtt(rtt);
		if (o.python)
			printf(","), json_python(&py);
		if (o.baselines)
			printf(","), json_baselines(base, xr);
		printf("}\n");
	}
	return 0;
}
