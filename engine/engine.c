/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <numa.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/games.h"
#include "util/atomics.h"
#include "xring/writer.h"

struct shard_thread {
	pthread_t th;
	xr_writer *w;
	const xr_exp_template *t;
	struct xr_shard_opts opts;
	struct xr_shard_result res;
	int cpu;                    /* -1: not pinned */
	int rc;
	struct xr_engine *e;
};

struct xr_engine {
	uint32_t n;                 /* shards */
	uint32_t started;
	struct shard_thread *sts;
	void (*ended)(void *);      /* called by each shard as it ends */
	void *ended_arg;
};

/* The k-th CPU (cyclically) of node, or of this process's allowed set when
 * node < 0 or libnuma is unavailable; -1 if none is known. */
static int pick_cpu(int node, uint32_t k)
{
	cpu_set_t allowed;
	int cpus[CPU_SETSIZE], n = 0;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		return -1;
	struct bitmask *bm = NULL;
	if (node >= 0 && numa_available() >= 0) {
		bm = numa_allocate_cpumask();
		if (bm && numa_node_to_cpus(node, bm) < 0) {
			numa_free_cpumask(bm);
			bm = NULL;
		}
	}
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &allowed) && (!bm || numa_bitmask_isbitset(bm, (unsigned)c)))
			cpus[n++] = c;
	if (bm)
		numa_free_cpumask(bm);
	return n ? cpus[k % (uint32_t)n] : -1;
}

static void *shard_main(void *p)
{
	struct shard_thread *st = p;
	char name[16];

	/* Named for operators and profiles (top -H, perf report --sort comm). */
	snprintf(name, sizeof(name), "xr-shard%u", (unsigned)(st - st->e->sts));
	pthread_setname_np(pthread_self(), name);
	if (st->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(st->cpu, &set);
		/* Best effort: an unpinned shard is slower, not wrong. */
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	st->rc = xr_shard_run(st->w, st->t, &st->opts, &st->res);
	if (st->e->ended)
		st->e->ended(st->e->ended_arg);
	return NULL;
}

int xr_engine_start(xr_arena *a, const xr_exp_template *t, const struct xr_engine_opts *o,
		    void (*ended)(void *), void *arg, struct xr_engine **out)
{
	uint32_t s = o->shards ? o->shards : 1, given = 0;
	struct xr_engine *e;
	int rc = 0;

	if (o->shard.games < s && !o->games)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->sts = calloc(s, sizeof(*e->sts)))) {
		free(e);
		return -ENOMEM;
	}
	e->n = s;
	e->ended = ended;
	e->ended_arg = arg;
	for (uint32_t k = 0; k < s && rc == 0; k++) {
		struct shard_thread *st = &e->sts[k];
		/* Even shares; the first games % s shards take one more. */
		uint32_t share = o->shard.games / s + (k < o->shard.games % s);

		st->e = e;
		st->t = t;
		st->opts = o->shard;
		st->opts.games = share;
		st->opts.first_game_id = o->shard.first_game_id + given;
		st->opts.cfg.seed = o->shard.cfg.seed + given;
		st->opts.count = o->shard.count ? (o->shard.count + s - 1) / s : 0;
		st->cpu = pick_cpu(o->numa_node, k);
		if (o->games)
			xr__gdir_wire(o->games, k, &st->opts);
		given += share;
		rc = xr_arena_writer(a, o->stream, k, &st->w);
		st->opts.n_more = o->n_more;
		for (uint32_t i = 0; i < o->n_more && rc == 0; i++) {
			st->opts.more[i].t = o->more_t[i];
			st->opts.more[i].obs_dtype = o->more_dtype[i];
			rc = xr_arena_writer(a, o->stream + 1 + i, k, &st->opts.more[i].w);
		}
	}
	for (; rc == 0 && e->started < s; e->started++)
		if (pthread_create(&e->sts[e->started].th, NULL, shard_main, &e->sts[e->started])) {
			rc = -EAGAIN;
			break;
		}
	if (rc < 0) {
		/* A shard that could not start: stop those that did, rather
		 * than join them for ever. */
		if (e->started && o->shard.stop)
			xr_store_relaxed(o->shard.stop, 1);
		xr_engine_join(e, NULL);
		return rc;
	}
	*out = e;
	return 0;
}

uint32_t xr_engine_shards(const struct xr_engine *e)
{
	return e->n;
}

xr_writer *xr_engine_writer(const struct xr_engine *e, uint32_t k)
{
	return k < e->n ? e->sts[k].w : NULL;
}

uint32_t xr_engine_writers(const struct xr_engine *e, xr_writer **ws, uint32_t max)
{
	uint32_t n = 0;

	for (uint32_t k = 0; k < e->n; k++) {
		if (n < max)
			ws[n++] = e->sts[k].w;
		for (uint32_t i = 0; i < e->sts[k].opts.n_more && n < max; i++)
			ws[n++] = e->sts[k].opts.more[i].w;
	}
	return n;
}

int xr_engine_join(struct xr_engine *e, struct xr_shard_result *total)
{
	int rc = 0;

	if (total)
		memset(total, 0, sizeof(*total));
	for (uint32_t k = 0; k < e->started; k++) {
		struct xr_shard_result *r = &e->sts[k].res;
		pthread_join(e->sts[k].th, NULL);
		if (!rc && e->sts[k].rc < 0)
			rc = e->sts[k].rc;
		if (!total)
			continue;
		total->records += r->records;
		total->dropped += r->dropped;
		total->steps += r->steps;
		total->episodes += r->episodes;
		total->waits += r->waits;
		total->pauses += r->pauses;
		total->paused_ns += r->paused_ns;
		total->turns_late += r->turns_late;
		total->created += r->created;
		total->destroyed += r->destroyed;
		total->resets += r->resets;
		total->finals += r->finals;
		total->finals_lost += r->finals_lost;
		if (r->elapsed_ns > total->elapsed_ns)
			total->elapsed_ns = r->elapsed_ns;
	}
	free(e->sts);
	free(e);
	return rc;
}

int xr_engine_run(xr_arena *a, const xr_exp_template *t, const struct xr_engine_opts *o,
		  struct xr_shard_result *total)
{
	struct xr_engine *e;
	int rc = xr_engine_start(a, t, o, NULL, NULL, &e);

	if (rc < 0) {
		memset(total, 0, sizeof(*total));
		return rc;
	}
	return xr_engine_join(e, total);
}
