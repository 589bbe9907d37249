/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine/shard.h"
#include "util/clock.h"
#include "xring/error.h"
#include "xring/writer.h"

#define XR_SHARD_HOUSEKEEPING_NS 100000000ull /* reap + heartbeat, 10 Hz */
#define XR_SHARD_PUBLISH 64                   /* records per publish */

struct game_slot {
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

/* Reserves a record, waiting while a lossless ring is full. 0, XR_EDROPPED,
 * -EINTR (stop asked) or -errno. */
static int reserve(xr_writer *w, uint32_t size, void **p, const struct xr_shard_opts *o,
		   struct xr_shard_result *res)
{
	for (;;) {
		int rc = xr_writer_reserve(w, size, p);
		if (rc != -EAGAIN)
			return rc;
		res->waits++;
		rc = xr_writer_wait(w, size, 100000000);
		if (o->stop && *o->stop)
			return -EINTR;
		if (rc < 0 && rc != -ETIMEDOUT)
			return rc;
	}
}

int xr_shard_run(xr_arena *a, xr_writer *w, const xr_exp_template *t,
		 const struct xr_shard_opts *o, struct xr_shard_result *res)
{
	uint32_t n = o->games, players = o->cfg.players, since_publish = 0;
	struct game_slot *gs = calloc(n, sizeof(*gs));
	uint8_t *scratch = malloc(t->shape.mask_len ? t->shape.mask_len : 1);
	uint64_t rng = o->cfg.seed * 0x9e3779b97f4a7c15ull + 1, start = xr__now_ns();
	uint64_t next_house = start + XR_SHARD_HOUSEKEEPING_NS;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	if (!gs || !scratch) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		xr_game_config c = o->cfg;
		c.seed = o->cfg.seed + i;
		rc = o->vt->create(&c, &gs[i].g);
		if (rc < 0)
			goto out;
	}

	while (!(o->stop && *o->stop)) {
		uint64_t now = xr__now_ns();

		for (uint32_t i = 0; i < n; i++) {
			struct game_slot *s = &gs[i];
			int32_t actions[XR_GAME_MAX_PLAYERS];

			if (s->ended) {
				s->episode++;
				o->vt->reset(s->g, o->cfg.seed + i + s->episode * (uint64_t)n);
				memset(s->reward, 0, sizeof(s->reward));
				memset(s->flags, 0, sizeof(s->flags));
				s->turn = 0;
				s->ended = s->terminal = false;
			}
			for (uint32_t p = 0; p < players; p++) {
				void *rec;
				uint8_t *mask;

				actions[p] = 0;
				if (s->flags[p] & XR_GAME_OUT)
					continue;
				xr_exp_fields f = {
					.seq = xr_writer_next_seq(w),
					.t_ns = now,
					.game_id = o->first_game_id + i,
					.player_id = p,
					.turn = s->turn,
					.reward = s->reward[p],
					.done = (s->flags[p] & XR_GAME_DONE) != 0,
					.truncated = (s->flags[p] & XR_GAME_TRUNCATED) != 0,
				};
				rc = reserve(w, t->size, &rec, o, res);
				if (rc == -EINTR) {
					rc = 0;
					goto out;
				}
				if (rc == XR_EDROPPED) {
					/* Lost to readers, but the game goes on. */
					res->dropped++;
					mask = scratch;
					o->vt->legal_actions(s->g, p, mask);
					actions[p] = xr_policy_random_legal(mask, t->shape.mask_len, &rng);
					continue;
				}
				if (rc < 0)
					goto out;
				xr_exp_slots sl;
				xr_exp_build(t, rec, &f, &sl);
				o->vt->observe(s->g, p, o->obs_dtype, sl.obs);
				o->vt->legal_actions(s->g, p, sl.mask);
				actions[p] = xr_policy_random_legal(sl.mask, t->shape.mask_len, &rng);
				memcpy((uint8_t *)rec + t->off_action, &actions[p], sizeof(int32_t));
				xr_writer_commit(w);
				res->records++;
				if (++since_publish == XR_SHARD_PUBLISH) {
					xr_writer_publish(w);
					since_publish = 0;
				}
			}
			if (s->terminal) {
				/* The terminal observations are out: start over next time. */
				s->ended = true;
				res->episodes++;
			} else {
				int r = o->vt->step(s->g, actions, s->reward, s->flags);
				res->steps++;
				s->turn++;
				s->terminal = r == 1;
			}
			if (o->count && res->records + res->dropped >= o->count)
				goto out;
		}
		xr_writer_publish(w);
		since_publish = 0;
		now = xr__now_ns();
		if (now >= next_house) {
			xr_arena_heartbeat(a);
			xr_arena_reap(a);
			next_house = now + XR_SHARD_HOUSEKEEPING_NS;
		}
	}
out:
	xr_writer_publish(w);
	res->elapsed_ns = xr__now_ns() - start;
	if (gs)
		for (uint32_t i = 0; i < n; i++)
			if (gs[i].g)
				o->vt->destroy(gs[i].g);
	free(gs);
	free(scratch);
	return rc;
}
