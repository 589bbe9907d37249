/* SPDX-License-Identifier: MIT */
/* The baselines' game loop: perf/baselines/envs.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "envs.h"
#include "xring/game.h"

struct bench_envs {
	const xr_game_vtable *vt;
	struct bench_envs_sizes sz;
	uint64_t next_seed;
	uint32_t flags[XR_GAME_MAX_PLAYERS];
	void *g[];
};

int bench_envs_create(uint32_t n, uint32_t h, uint32_t w, uint32_t players, uint64_t seed,
		      struct bench_envs **out)
{
	const xr_game_vtable *vt = xr_game_builtin_grid();
	struct bench_envs *e;
	xr_game_sizes gs;
	int rc = 0;

	if (!n || !out)
		return -EINVAL;
	e = calloc(1, sizeof(*e) + n * sizeof(void *));
	if (!e)
		return -ENOMEM;
	e->vt = vt;
	e->next_seed = seed + n;
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		xr_game_config cfg = {.board_h = h, .board_w = w, .players = players,
				      .seed = seed + i};
		rc = vt->create(&cfg, &e->g[i]);
		e->sz.games = i + (rc == 0);
	}
	if (rc < 0) {
		bench_envs_destroy(e);
		return rc;
	}
	vt->sizes(e->g[0], &gs);
	e->sz.players = gs.players;
	e->sz.obs_bytes = gs.obs_channels * gs.obs_h * gs.obs_w;
	e->sz.n_actions = gs.n_actions;
	e->sz.seat_bytes = e->sz.obs_bytes + gs.n_actions;
	*out = e;
	return 0;
}

void bench_envs_sizes(const struct bench_envs *e, struct bench_envs_sizes *out)
{
	*out = e->sz;
}

static void observe_one(struct bench_envs *e, uint32_t g, uint8_t *seats)
{
	for (uint32_t p = 0; p < e->sz.players; p++, seats += e->sz.seat_bytes) {
		e->vt->observe(e->g[g], p, XR_DTYPE_U8, seats);
		e->vt->legal_actions(e->g[g], p, seats + e->sz.obs_bytes);
	}
}

int bench_envs_observe(struct bench_envs *e, uint32_t first, uint32_t count, uint8_t *seats)
{
	if (!e || first > e->sz.games || count > e->sz.games - first)
		return -EINVAL;
	for (uint32_t g = first; g < first + count; g++)
		observe_one(e, g, seats + (size_t)(g - first) * e->sz.players * e->sz.seat_bytes);
	return 0;
}

int bench_envs_step(struct bench_envs *e, uint32_t first, uint32_t count, const int32_t *actions,
		    uint8_t *seats, float *rewards, uint8_t *done)
{
	const uint32_t np = e ? e->sz.players : 0;
	int ended = 0;

	if (!e || first > e->sz.games || count > e->sz.games - first)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		void *g = e->g[first + i];
		int r = e->vt->step(g, actions + (size_t)i * np, rewards + (size_t)i * np, e->flags);
		if (r < 0)
			return r;
		for (uint32_t p = 0; p < np; p++)
			done[(size_t)i * np + p] =
				(e->flags[p] & (XR_GAME_DONE | XR_GAME_TRUNCATED)) != 0;
		if (r == 1) {
			/* Auto-reset, as a vector environment does: the next
			 * episode's first observation goes out with done. */
			int rc = e->vt->reset(g, e->next_seed++);
			if (rc < 0)
				return rc;
			ended++;
		}
		observe_one(e, first + i, seats + (size_t)i * np * e->sz.seat_bytes);
	}
	return ended;
}

void bench_envs_destroy(struct bench_envs *e)
{
	if (!e)
		return;
	for (uint32_t i = 0; i < e->sz.games; i++)
		e->vt->destroy(e->g[i]);
	free(e);
}
