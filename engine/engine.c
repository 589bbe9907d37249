/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <numa.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "xring/writer.h"

struct shard_thread {
	pthread_t th;
	xr_arena *a;
	xr_writer *w;
	const xr_exp_template *t;
	struct xr_shard_opts opts;
	struct xr_shard_result res;
	int cpu;                    /* -1: not pinned */
	int rc;
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

	if (st->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(st->cpu, &set);
		/* Best effort: an unpinned shard is slower, not wrong. */
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	st->rc = xr_shard_run(st->a, st->w, st->t, &st->opts, &st->res);
	return NULL;
}

int xr_engine_run(xr_arena *a, const xr_exp_template *t, const struct xr_engine_opts *o,
		  struct xr_shard_result *total)
{
	uint32_t s = o->shards ? o->shards : 1, given = 0;
	struct shard_thread *sts = calloc(s, sizeof(*sts));
	int rc = 0;

	memset(total, 0, sizeof(*total));
	if (!sts)
		return -ENOMEM;
	if (o->shard.games < s) {
		free(sts);
		return -EINVAL;
	}
	for (uint32_t k = 0; k < s; k++) {
		struct shard_thread *st = &sts[k];
		/* Even shares; the first games % s shards take one more. */
		uint32_t share = o->shard.games / s + (k < o->shard.games % s);

		st->a = a;
		st->t = t;
		st->opts = o->shard;
		st->opts.games = share;
		st->opts.first_game_id = o->shard.first_game_id + given;
		st->opts.cfg.seed = o->shard.cfg.seed + given;
		st->opts.count = o->shard.count ? (o->shard.count + s - 1) / s : 0;
		st->cpu = pick_cpu(o->numa_node, k);
		given += share;
		rc = xr_arena_writer(a, o->stream, k, &st->w);
		if (rc < 0)
			break;
	}
	uint32_t started = 0;
	for (; rc == 0 && started < s; started++)
		if (pthread_create(&sts[started].th, NULL, shard_main, &sts[started]) != 0) {
			rc = -EAGAIN;
			break;
		}
	/* A shard that could not start: stop those that did, rather than
	 * join them for ever. */
	if (rc < 0 && started && o->shard.stop)
		*o->shard.stop = 1;
	for (uint32_t k = 0; k < started; k++) {
		struct xr_shard_result *r = &sts[k].res;
		pthread_join(sts[k].th, NULL);
		if (!rc && sts[k].rc < 0)
			rc = sts[k].rc;
		total->records += r->records;
		total->dropped += r->dropped;
		total->steps += r->steps;
		total->episodes += r->episodes;
		total->waits += r->waits;
		total->pauses += r->pauses;
		total->paused_ns += r->paused_ns;
		total->turns_late += r->turns_late;
		if (r->elapsed_ns > total->elapsed_ns)
			total->elapsed_ns = r->elapsed_ns;
	}
	free(sts);
	return rc;
}
