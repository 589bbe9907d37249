/* SPDX-License-Identifier: MIT */
#ifndef XR_FUZZ_ENGINE_H
#define XR_FUZZ_ENGINE_H

/*
 * An engine in the fuzz harness's own process, started once, as
 * tests/test_agents.c starts one: the host (arena, control server, game
 * directory with agents) and its shards on a thread of their own, playing
 * 8x8 grid games of 2 players. Stopped at exit. Whether it still runs is
 * fz_engine_check()'s to say: a shard thread that ended by itself is a
 * failure of the input that was running.
 */

#include <pthread.h>
#include <stdatomic.h>

#include "engine/host.h"
#include "fuzz_common.h"
#include "xring/agent.h"
#include "xring/error.h"

struct fz_engine_cfg {
	uint32_t games;            /* at start */
	uint32_t max_games;
	uint32_t max_agents;
	uint32_t max_readers;
	uint64_t ring_bytes;
	double tick_ms;            /* 0: as fast as the games go */
	double action_timeout_ms;
	double lease_timeout_ms;   /* 0: the writer's default */
	bool observe_subscribed;
	uint32_t max_requests_per_uid;
	uint32_t max_conns_per_uid;  /* 0: the default */
	uint32_t producers;        /* producer slots after the shard's ring */
};

struct fz_engine {
	char name[48];
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
	int rc;
	_Atomic int ended;
};

static struct fz_engine *fz_the_engine;

static void *fz_engine_main(void *p)
{
	struct fz_engine *e = p;

	e->rc = xr_host_run_games(e->h, &e->t, &e->eo, &e->res);
	atomic_store_explicit(&e->ended, 1, memory_order_release);
	return NULL;
}

static void fz_engine_stop(void)
{
	struct fz_engine *e = fz_the_engine;

	if (!e)
		return;
	xr_host_stop(e->h);
	pthread_join(e->th, NULL);
	xr_host_destroy(e->h);
	fz_the_engine = NULL;
}

static inline struct fz_engine *fz_engine_start(const char *tag, const struct fz_engine_cfg *c)
{
	static struct fz_engine e;
	const xr_game_vtable *vt = xr_game_builtin_grid();
	xr_game_config cfg = {.board_h = 8, .board_w = 8, .players = 2, .seed = 1};
	char why[512];
	int rc;

	fz_private_dir(tag);
	snprintf(e.name, sizeof(e.name), "fz%d-%s", (int)getpid(), tag);
	e.ss = (xr_stream_spec){.policy = XR_POLICY_LOSSLESS, .n_rings = 1 + c->producers,
				.producers = c->producers, .ring_bytes = c->ring_bytes,
				.kind = XR_RECORD_EXPERIENCE};
	FZ_CHECK(xr_shard_shape(vt, &cfg, XR_DTYPE_U8, &e.ss.shape) == 0);
	FZ_CHECK(xr_exp_template_init(&e.t, &e.ss.shape) == 0);
	e.spec = (xr_arena_spec){.name = e.name, .streams = &e.ss, .n_streams = 1,
				 .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE,
				 .max_readers = c->max_readers};
	e.so = (xr_server_opts){.max_requests_per_uid = c->max_requests_per_uid,
				.max_conns_per_uid = c->max_conns_per_uid};
	e.eo = (struct xr_engine_opts){
		.shard = {.vt = vt, .cfg = cfg, .games = c->games, .obs_dtype = XR_DTYPE_U8,
			  .tick_ns = (uint64_t)(c->tick_ms * 1e6), .high_watermark = 0.9,
			  .low_watermark = 0.5,
			  .lease_timeout_ns = (uint64_t)(c->lease_timeout_ms * 1e6)},
		.shards = 1, .numa_node = -1};
	e.shape = (struct xr_gdir_shape){.vt = vt, .board_h = 8, .board_w = 8, .players = 2,
					 .obs_dtype = XR_DTYPE_U8,
					 .stream_name = XR_DEFAULT_STREAM};
	e.go = (struct xr_gdir_opts){.shards = 1, .max_games = c->max_games, .shapes = &e.shape,
				     .n_shapes = 1, .start = c->games, .start_seed = 1,
				     .observe_subscribed = c->observe_subscribed,
				     .max_readers = c->max_readers, .max_agents = c->max_agents,
				     .fallback = XR_FALLBACK_NOOP,
				     .action_timeout_ns = (uint64_t)(c->action_timeout_ms * 1e6),
				     .tick_ns = (uint64_t)(c->tick_ms * 1e6)};
	rc = xr_host_create(&e.spec, &e.so, &e.go, &e.h, why, sizeof(why));
	if (rc < 0)
		FZ_FAIL("xr_host_create: %s (%s)", xr_strerror(rc), why);
	FZ_CHECK(pthread_create(&e.th, NULL, fz_engine_main, &e) == 0);
	fz_the_engine = &e;
	atexit(fz_engine_stop);
	return &e;
}

/* The engine's shards still run: they end only when stopped. */
static inline void fz_engine_check(struct fz_engine *e)
{
	if (atomic_load_explicit(&e->ended, memory_order_acquire))
		FZ_FAIL("the engine's shards ended by themselves: %s", xr_strerror(e->rc));
}

#endif
