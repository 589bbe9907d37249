/* SPDX-License-Identifier: MIT */
#ifndef XR_TESTS_FAULT_HELPERS_H
#define XR_TESTS_FAULT_HELPERS_H

/*
 * Shared by the fault tests (tests/faults.cmake): an engine of grid games
 * run in this process (host, shards and game directory, as `xring engine`
 * runs them), what a peer in a child process checks of every record it
 * reads, and a page of shared memory through which children say what they
 * are doing and what they found.
 */

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "engine/host.h"
#include "shm/arena_priv.h"
#include "util/atomics.h"
#include "peer_helpers.h"
#include "xring/agent.h"

/* Sanitized builds run the same cases with smaller counts and looser
 * bounds on time: ASan (GCC: __SANITIZE_ADDRESS__) and TSan. */
#if defined(__SANITIZE_ADDRESS__)
#define XR_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XR_TEST_ASAN 1
#endif
#endif
#ifndef XR_TEST_ASAN
#define XR_TEST_ASAN 0
#endif
#define XR_TEST_SANITIZED (XR_TEST_ASAN || XR_TEST_TSAN)

struct fault_engine_opts {
	uint32_t games, shards, board, players;
	xr_policy policy;        /* 0: lossless */
	uint64_t ring_bytes;     /* 0: 1 MiB */
	uint32_t max_readers;    /* 0: 64 */
	uint32_t max_agents;     /* 0: 16 */
	double action_timeout_ms; /* 0: the shard's default (100 ms) */
	double tick_ms;          /* 0: as fast as the rings allow */
	double lease_timeout_ms; /* 0: the writers' default (10 s) */
	uint32_t producers;      /* producer slots after the shards' rings */
};

struct fault_engine {
	char name[64];
	struct xr_host *h;
	xr_arena *a;
	xr_exp_template t;
	xr_stream_spec ss;
	xr_arena_spec spec;
	xr_server_opts so;
	struct xr_engine_opts eo;
	struct xr_gdir_shape shape;
	struct xr_gdir_opts go;
	struct xr_shard_result res;
	pthread_t th;
	int rc;
	bool running;
};

static void *fault_engine_main(void *p)
{
	struct fault_engine *e = p;

	e->rc = xr_host_run_games(e->h, &e->t, &e->eo, &e->res);
	return NULL;
}

/* Creates the engine: from here its control socket answers (attaches,
 * agents), and its games play once fault_engine_run() runs them. */
static inline void fault_engine_create(struct fault_engine *e, const char *tag,
				       const struct fault_engine_opts *o)
{
	char why[512];
	const xr_game_vtable *vt = xr_game_builtin_grid();
	uint32_t board = o->board ? o->board : 8, players = o->players ? o->players : 2;
	xr_game_config cfg = {.board_h = board, .board_w = board, .players = players, .seed = 1};

	memset(e, 0, sizeof(*e));
	xr_test_name(e->name, sizeof(e->name), tag);
	e->ss = (xr_stream_spec){.policy = o->policy ? o->policy : XR_POLICY_LOSSLESS,
				 .n_rings = o->shards + o->producers,
				 .producers = o->producers,
				 .ring_bytes = o->ring_bytes ? o->ring_bytes : 1u << 20,
				 .kind = XR_RECORD_EXPERIENCE};
	CHECK_RC(xr_shard_shape(vt, &cfg, XR_DTYPE_U8, &e->ss.shape), 0);
	CHECK_RC(xr_exp_template_init(&e->t, &e->ss.shape), 0);
	e->spec = (xr_arena_spec){.name = e->name, .streams = &e->ss, .n_streams = 1,
				  .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE,
				  .max_readers = o->max_readers};
	e->eo = (struct xr_engine_opts){
		.shard = {.vt = vt, .cfg = cfg, .games = o->games, .obs_dtype = XR_DTYPE_U8,
			  .tick_ns = (uint64_t)(o->tick_ms * 1e6), .high_watermark = 0.9,
			  .lease_timeout_ns = (uint64_t)(o->lease_timeout_ms * 1e6),
			  .low_watermark = 0.5},
		.shards = o->shards, .numa_node = -1};
	e->shape = (struct xr_gdir_shape){.vt = vt, .board_h = board, .board_w = board,
					  .players = players, .obs_dtype = XR_DTYPE_U8,
					  .stream_name = XR_DEFAULT_STREAM};
	e->go = (struct xr_gdir_opts){.shards = o->shards, .shapes = &e->shape, .n_shapes = 1,
				      .start = o->games, .start_seed = 1,
				      .max_readers = o->max_readers ? o->max_readers : 64,
				      .max_agents = o->max_agents,
				      .fallback = XR_FALLBACK_NOOP,
				      .action_timeout_ns = (uint64_t)(o->action_timeout_ms * 1e6),
				      .tick_ns = (uint64_t)(o->tick_ms * 1e6),
				      .lease_timeout_ns = (uint64_t)(o->lease_timeout_ms * 1e6),
				      .high_watermark = 0.9, .low_watermark = 0.5};
	int rc = xr_host_create(&e->spec, &e->so, &e->go, &e->h, why, sizeof(why));
	if (rc < 0)
		FAILF("engine %s: %s (%s)", e->name, xr_strerror(rc), why);
	e->a = xr_host_arena(e->h);
}

static inline void fault_engine_run(struct fault_engine *e)
{
	CHECK(pthread_create(&e->th, NULL, fault_engine_main, e) == 0);
	e->running = true;
}

/* Stops the games (readers then drain and get XR_ECLOSED) and shuts the
 * engine down. */
static inline void fault_engine_stop(struct fault_engine *e)
{
	xr_host_stop(e->h);
	if (e->running) {
		CHECK(pthread_join(e->th, NULL) == 0);
		CHECK_RC(e->rc, 0);
	}
	xr_host_destroy(e->h);
}

/* Records produced on every ring of the engine's stream (dropped
 * included): the next seq of each, summed. */
static inline uint64_t fault_written(const struct fault_engine *e)
{
	uint64_t n = 0;

	for (uint32_t r = 0; r < e->a->lay.n_rings; r++)
		n += xr_load_acquire(&e->a->hdr->rings[r].written);
	return n;
}

/* Reader slots the engine holds for someone (not FREE), and whether one of
 * them is pid's (SO_PEERCRED's pid, as the engine recorded it). */
static inline uint32_t fault_slots_taken(const struct fault_engine *e)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < e->a->lay.max_readers; i++)
		n += xr_load_acquire(&e->a->infos[i].state) != XR_SLOT_FREE;
	return n;
}

static inline bool fault_slot_of(const struct fault_engine *e, pid_t pid)
{
	for (uint32_t i = 0; i < e->a->lay.max_readers; i++)
		if (xr_load_acquire(&e->a->infos[i].state) != XR_SLOT_FREE &&
		    e->a->infos[i].pid == pid)
			return true;
	return false;
}

/* Agents LIVE in the engine's agent table, and whether one is pid's. */
static inline uint32_t fault_agents_live(const struct fault_engine *e, pid_t pid, bool *of_pid)
{
	uint32_t n = 0;

	if (of_pid)
		*of_pid = false;
	for (uint32_t i = 0; i < XR_MAX_AGENTS; i++)
		if (xr_load_acquire(&e->a->agents[i].state) == XR_AGENT_LIVE) {
			n++;
			if (of_pid && e->a->agents[i].pid == pid)
				*of_pid = true;
		}
	return n;
}

/* Answers the engine has taken from agents (for the turn, in range,
 * legal), all agents and shards together. */
static inline uint64_t fault_agent_actions(const struct fault_engine *e)
{
	uint64_t n = 0;

	for (size_t i = 0; i < (size_t)XR_MAX_AGENTS * e->a->lay.n_rings; i++)
		n += xr_load_relaxed(&e->a->agent_stats[i].actions);
	return n;
}

/* fork(), the child to die with this process (a test killed by its
 * timeout leaves no peers behind). */
static inline pid_t fault_fork(void)
{
	pid_t parent = getpid(), pid = fork();

	CHECK(pid >= 0);
	if (pid == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent))
		_exit(98);
	return pid;
}

/* One page of memory shared with the children forked after it. */
static inline void *fault_shared(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

/* What a reader checks of each record, ring by ring: a verified
 * Experience record whose seq is the frame's, and frame seqs that only grow,
 * and with exact (a lossless reader) run on without a hole from the first
 * it saw. expect[ring]: 0 before the first, else the next seq + 1. Returns
 * the records skipped; fails the test on anything else. */
static inline uint64_t fault_check_batch(const xr_batch *b, uint64_t *expect, bool exact)
{
	const xr_frame *f = b->first;
	uint64_t gaps = 0;

	for (uint32_t i = 0; i < b->count; i++) {
		xr_exp_view v;
		f = b->frames ? b->frames[i] : i ? xr_frame_next(f) : b->first;
		if (xr_exp_view_init(&v, xr_frame_data(f), f->len) < 0)
			FAILF("ring %u seq %llu: not a valid Experience record", b->ring,
			      (unsigned long long)f->seq);
		if (v.f.seq != f->seq)
			FAILF("ring %u: record seq %llu in frame %llu", b->ring,
			      (unsigned long long)v.f.seq, (unsigned long long)f->seq);
		uint64_t *e = &expect[b->ring], next = *e - 1;
		if (*e && f->seq != next) {
			if (f->seq < next || exact)
				FAILF("ring %u: seq %llu where %llu was expected%s", b->ring,
				      (unsigned long long)f->seq, (unsigned long long)next,
				      exact ? " (a lossless reader missed records)" : "");
			gaps += f->seq - next;
		}
		*e = f->seq + 2; /* the next seq, plus 1 */
	}
	return gaps;
}

/* Looks at cond until it holds or ms pass, 50 us apart (the deadline is
 * a bound, not a pause: on two shared CPUs a look that spins would take
 * one from the engine it waits for); whether it held. */
#define FAULT_WAIT(cond, ms) ({ \
	uint64_t _dl = xr__now_ns() + (uint64_t)(ms) * MS; \
	bool _ok; \
	while (!(_ok = (cond)) && xr__now_ns() < _dl) \
		xr__sleep_ns(50000); \
	_ok; \
})

/* Retries what a dead peer's slot, seat or agent entry may hold for a
 * moment yet (-EBUSY, -EAGAIN), for up to 10 s, 1 ms apart. */
#define FAULT_RETRY_BUSY(expr) ({ \
	uint64_t _dl = xr__now_ns() + 10 * SEC; \
	int _frc; \
	while (((_frc = (expr)) == -EBUSY || _frc == -EAGAIN) && xr__now_ns() < _dl) \
		xr__sleep_ns(1000000); \
	_frc; \
})

static inline double fault_ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* Sorts v[0..n) and returns the q-quantile. */
static inline uint64_t fault_quantile(uint64_t *v, uint32_t n, double q)
{
	if (!n)
		return 0;
	for (uint32_t i = 1; i < n; i++)
		for (uint32_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
			uint64_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	uint32_t k = (uint32_t)(q * (n - 1) + 0.5);
	return v[k];
}

#endif
