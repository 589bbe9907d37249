/* SPDX-License-Identifier: MIT */
/*
 * bench_game: what one step of the built-in grid game costs a shard, by
 * part (2 observes, 2 legal masks, 2 random-legal draws, the step), for N
 * instances stepped round robin on one core; no ring involved.
 *
 *   bench_game [GAMES [STEPS [u8|f32]]]        (default 1000 200 u8)
 *
 * The bound printed in the same run: issue 3's budget, 1,000,000 experiences
 * per second on this machine's 2 cores, i.e. 2 * 1e9 / 1e6 ns of CPU per
 * experience, of which the game may take at most all (it takes the rest of
 * the engine's share too); and the ratio of the measured cost to it.
 * docs/games.md has results.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "xring/game.h"
#include "xring/record.h"

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }

int main(int argc, char **argv)
{
	uint32_t games = argc > 1 ? atoi(argv[1]) : 1000, steps = argc > 2 ? atoi(argv[2]) : 200;
	int dtype = argc > 3 && !strcmp(argv[3], "f32") ? XR_DTYPE_F32 : XR_DTYPE_U8;
	const xr_game_vtable *vt = xr_game_builtin_grid();
	xr_game_config cfg = {.players = 2, .seed = 1};
	void **g = malloc(games * sizeof(void *));
	xr_game_sizes sz;
	for (uint32_t i = 0; i < games; i++) { cfg.seed = i; vt->create(&cfg, &g[i]); }
	vt->sizes(g[0], &sz);
	size_t obs_bytes = (size_t)sz.obs_channels * sz.obs_h * sz.obs_w * (dtype == XR_DTYPE_F32 ? 4 : 1);
	uint8_t *obs = aligned_alloc(64, obs_bytes * 2), *mask = malloc(sz.n_actions * 2);
	uint64_t rng = 7, resets = 0;
	double t_obs = 0, t_legal = 0, t_pol = 0, t_step = 0, t_reset = 0;
	int32_t a[2]; float r[2]; uint32_t f[2];
	double t0 = now();
	for (uint32_t s = 0; s < steps; s++)
		for (uint32_t i = 0; i < games; i++) {
			double ta = now();
			for (uint32_t p = 0; p < 2; p++) vt->observe(g[i], p, dtype, obs + p * obs_bytes);
			double tb = now();
			for (uint32_t p = 0; p < 2; p++) vt->legal_actions(g[i], p, mask + p * sz.n_actions);
			double tc = now();
			for (uint32_t p = 0; p < 2; p++) a[p] = xr_policy_random_legal(mask + p * sz.n_actions, sz.n_actions, &rng);
			double td = now();
			int rc = vt->step(g[i], a, r, f);
			double te = now();
			if (rc == 1) { vt->reset(g[i], rng); resets++; }
			double tf = now();
			t_obs += tb - ta; t_legal += tc - tb; t_pol += td - tc; t_step += te - td; t_reset += tf - te;
		}
	double total = now() - t0, n = (double)games * steps;
	printf("%u games x %u steps (%s): %.0f ns per game-step total (incl. timer overhead)\n", games, steps, dtype == XR_DTYPE_F32 ? "f32" : "u8", total / n);
	printf("  observe x2 %.0f  legal x2 %.0f  policy x2 %.0f  step %.0f  reset %.1f (resets %llu)\n",
	       t_obs / n, t_legal / n, t_pol / n, t_step / n, t_reset / n, (unsigned long long)resets);
	/* pure loop without timers */
	t0 = now();
	for (uint32_t s = 0; s < steps; s++)
		for (uint32_t i = 0; i < games; i++) {
			for (uint32_t p = 0; p < 2; p++) vt->observe(g[i], p, dtype, obs + p * obs_bytes);
			for (uint32_t p = 0; p < 2; p++) vt->legal_actions(g[i], p, mask + p * sz.n_actions);
			for (uint32_t p = 0; p < 2; p++) a[p] = xr_policy_random_legal(mask + p * sz.n_actions, sz.n_actions, &rng);
			if (vt->step(g[i], a, r, f) == 1) vt->reset(g[i], rng);
		}
	total = now() - t0;
	printf("  untimed loop: %.0f ns per game-step (2 observes, 2 masks, 2 policy draws, 1 step)\n", total / n);
	{
		double per_exp = total / n / 2.0, budget = 2.0 * 1e9 / 1e6;
		printf("  bound: %.0f ns per experience vs the budget of %.0f ns (1 M experiences/s on "
		       "2 cores): %.2f of it\n", per_exp, budget, per_exp / budget);
	}
	t0 = now();
	for (uint32_t s = 0; s < steps; s++)
		for (uint32_t i = 0; i < games; i++) {
			for (uint32_t p = 0; p < 2; p++) vt->observe(g[i], p, dtype, obs + p * obs_bytes);
			a[0] = a[1] = (int32_t)(sz.n_actions - 1);
			if (vt->step(g[i], a, r, f) == 1) vt->reset(g[i], rng);
		}
	total = now() - t0;
	printf("  step + 2 observes only: %.0f ns per game-step\n", total / n);
	return 0;
}
