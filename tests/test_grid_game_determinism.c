/* SPDX-License-Identifier: MIT */
/*
 * The grid game is a pure function of its config, seeds and actions:
 *  - 200 games (several board sizes and player counts) played to the end by
 *    random-legal policies give the same hash of every observation, mask,
 *    action, reward and flag whether each game gets a fresh instance
 *    (create with the seed) or reuses one that has played before (reset);
 *    and every game's hash changes with its seed;
 *  - u8 and f32 observations agree (u8 = min(f32, 255)) along the way;
 *  - maps over 1000 seeds per config: every general reaches every other
 *    through passable cells, generals stand apart, cities are neutral with
 *    40..50 armies, mountains come near the asked fraction, and no two
 *    seeds give the same map (boards of 64 cells or more).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/grid_game.h"
#include "ring_helpers.h"

#define GAMES 200

struct spec {
	uint32_t h, w, players, turn_limit;
	const char *params;
};

static const struct spec specs[] = {
	{20, 20, 2, 300, NULL},
	{10, 10, 4, 300, NULL},
	{6, 6, 2, 400, NULL},
	{5, 5, 3, 400, "mountains=0.05"},
	{8, 8, 8, 300, NULL},
	{4, 4, 2, 500, "cities=0"},
};
#define NSPECS (sizeof(specs) / sizeof(specs[0]))

static const xr_game_vtable *vt;

static uint64_t mix(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t w;

	for (; len >= 8; len -= 8, b += 8) {
		memcpy(&w, b, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; len; len--, b++)
		h = (h ^ *b) * 0x100000001b3ull;
	return h;
}

static void *create(const struct spec *s, uint64_t seed)
{
	xr_game_config cfg = {.board_h = s->h, .board_w = s->w, .players = s->players,
			      .turn_limit = s->turn_limit, .seed = seed, .params = s->params};
	void *g;

	CHECK_RC(vt->create(&cfg, &g), 0);
	return g;
}

struct totals {
	uint64_t steps, won, truncated, eliminations;
};

/* Plays one episode from the game's current state; returns its hash. */
static uint64_t play(void *g, uint64_t policy_seed, struct totals *t)
{
	xr_game_sizes sz;
	uint8_t *u8, *mask;
	float *f32;
	uint64_t h = 0xcbf29ce484222325ull, rng = policy_seed;
	int32_t a[XR_GAME_MAX_PLAYERS];
	float r[XR_GAME_MAX_PLAYERS];
	uint32_t f[XR_GAME_MAX_PLAYERS];
	size_t obs_n;
	int rc;

	vt->sizes(g, &sz);
	obs_n = (size_t)sz.obs_channels * sz.obs_h * sz.obs_w;
	u8 = malloc(obs_n);
	f32 = malloc(obs_n * sizeof(float));
	mask = malloc(sz.n_actions);
	CHECK(u8 && f32 && mask);
	for (uint32_t turn = 0;; turn++) {
		for (uint32_t p = 0; p < sz.players; p++) {
			CHECK_RC(vt->observe(g, p, XR_DTYPE_U8, u8), 0);
			CHECK_RC(vt->legal_actions(g, p, mask), 0);
			h = mix(h, u8, obs_n);
			h = mix(h, mask, sz.n_actions);
			if (turn % 8 == p % 8) {
				CHECK_RC(vt->observe(g, p, XR_DTYPE_F32, f32), 0);
				for (size_t i = 0; i < obs_n; i++)
					if ((f32[i] > 255 ? 255 : f32[i]) != (float)u8[i])
						FAILF("element %zu: f32 %g, u8 %u", i, (double)f32[i], u8[i]);
			}
			a[p] = xr_policy_random_legal(mask, sz.n_actions, &rng);
			CHECK(a[p] >= 0 && (uint32_t)a[p] < sz.n_actions && mask[a[p]]);
		}
		rc = vt->step(g, a, r, f);
		CHECK(rc == 0 || rc == 1);
		t->steps++;
		h = mix(h, a, sizeof(a[0]) * sz.players);
		h = mix(h, r, sizeof(r[0]) * sz.players);
		h = mix(h, f, sizeof(f[0]) * sz.players);
		for (uint32_t p = 0; p < sz.players; p++)
			t->eliminations += f[p] == XR_GAME_DONE && r[p] < 0;
		if (rc == 1) {
			uint32_t cut = 0;

			for (uint32_t p = 0; p < sz.players; p++) {
				CHECK(f[p] != 0);
				cut |= f[p] & XR_GAME_TRUNCATED;
			}
			t->won += !cut;
			t->truncated += !!cut;
			break;
		}
	}
	free(u8);
	free(f32);
	free(mask);
	return h;
}

static void run_fresh(uint64_t base, uint64_t *hash, struct totals *t)
{
	for (uint32_t i = 0; i < GAMES; i++) {
		void *g = create(&specs[i % NSPECS], base + i);

		hash[i] = play(g, base ^ (0x9e37ull * i), t);
		vt->destroy(g);
	}
}

/* One instance per spec, created with an unrelated seed and reused. */
static void run_reused(uint64_t base, uint64_t *hash, struct totals *t)
{
	void *inst[NSPECS];

	for (size_t s = 0; s < NSPECS; s++)
		inst[s] = create(&specs[s], 0xdeadbeefull + s);
	for (uint32_t i = 0; i < GAMES; i++) {
		void *g = inst[i % NSPECS];

		/* A reset that leads nowhere first: only the last one counts. */
		CHECK_RC(vt->reset(g, ~(base + i)), 0);
		CHECK_RC(vt->reset(g, base + i), 0);
		hash[i] = play(g, base ^ (0x9e37ull * i), t);
	}
	for (size_t s = 0; s < NSPECS; s++)
		vt->destroy(inst[s]);
}

static void test_trajectories(void)
{
	static uint64_t a[GAMES], b[GAMES], c[GAMES];
	struct totals ta = {0}, tb = {0}, tc = {0};

	run_fresh(1000, a, &ta);
	run_reused(1000, b, &tb);
	run_fresh(5000000, c, &tc);
	for (uint32_t i = 0; i < GAMES; i++) {
		if (a[i] != b[i])
			FAILF("game %u: fresh and reused instances differ", i);
		if (a[i] == c[i])
			FAILF("game %u: another seed gave the same trajectory", i);
	}
	CHECK_EQ(ta.steps, tb.steps);
	CHECK_EQ(ta.eliminations, tb.eliminations);
	/* The trajectories exercised the whole game: wins by capture,
	 * eliminations, and truncations. */
	printf("%llu steps, %llu won, %llu truncated, %llu eliminations\n",
	       (unsigned long long)ta.steps, (unsigned long long)ta.won,
	       (unsigned long long)ta.truncated, (unsigned long long)ta.eliminations);
	CHECK(ta.won > 0);
	CHECK(ta.truncated > 0);
	CHECK(ta.eliminations > ta.won);
}

/* Maps: connectivity of generals, placement, cities, mountain fraction,
 * distinct maps per seed. */
static void test_maps(void)
{
	static const struct spec mspecs[] = {
		{20, 20, 2, 0, NULL},
		{10, 10, 8, 0, NULL},
		{2, 4, 4, 0, NULL},
		{20, 20, 2, 0, "mountains=0.6"},
		{5, 5, 2, 0, "mountains=0.9"},
		{13, 7, 3, 0, "cities=20"},
	};
	const uint32_t seeds = 1000;
	uint64_t *hashes = malloc(seeds * sizeof(uint64_t));
	uint16_t *queue = malloc(65536 * sizeof(uint16_t));
	uint8_t *seen = malloc(65536);

	CHECK(hashes && queue && seen);
	for (size_t s = 0; s < sizeof(mspecs) / sizeof(mspecs[0]); s++) {
		const struct spec *sp = &mspecs[s];
		struct xr_grid *g = create(sp, 0);
		uint64_t mountains = 0, cells = 0;
		uint32_t min_dist = UINT32_MAX;

		for (uint32_t seed = 0; seed < seeds; seed++) {
			uint32_t n = g->n, gens = 0, cities = 0, head = 0, tail = 0, reached = 0;

			CHECK_RC(vt->reset(g, seed * 7919ull + 1), 0);
			CHECK_EQ(g->turn, 0);
			CHECK_EQ(g->alive, sp->players);
			for (uint32_t c = 0; c < n; c++) {
				unsigned t = g->terrain[c];

				mountains += t == XR_GRID_MOUNTAIN;
				if (t == XR_GRID_GENERAL) {
					gens++;
					CHECK(g->owner[c] >= 0 && g->owner[c] < (int)sp->players);
					CHECK_EQ(g->general[g->owner[c]], c);
					CHECK_EQ(g->armies[c], 1);
				} else {
					CHECK_EQ(g->owner[c], -1);
				}
				if (t == XR_GRID_CITY) {
					cities++;
					CHECK(g->armies[c] >= XR_GRID_CITY_MIN &&
					      g->armies[c] <= XR_GRID_CITY_MAX);
				}
				if (t == XR_GRID_PLAIN || t == XR_GRID_MOUNTAIN)
					CHECK_EQ(g->armies[c], 0);
			}
			cells += n;
			CHECK_EQ(gens, sp->players);
			CHECK(cities <= g->cities_cfg);
			if (!sp->params)
				CHECK_EQ(cities, g->cities_cfg);
			/* BFS from general 0 over passable cells reaches every
			 * general. */
			memset(seen, 0, n);
			queue[tail++] = (uint16_t)g->general[0];
			seen[g->general[0]] = 1;
			while (head < tail) {
				uint32_t c = queue[head++], y = c / g->w, x = c % g->w;
				int nb[4] = {y > 0 ? (int)(c - g->w) : -1,
					     x + 1 < g->w ? (int)c + 1 : -1,
					     y + 1 < g->h ? (int)(c + g->w) : -1,
					     x > 0 ? (int)c - 1 : -1};

				reached += g->terrain[c] == XR_GRID_GENERAL;
				for (int d = 0; d < 4; d++)
					if (nb[d] >= 0 && !seen[nb[d]] &&
					    g->terrain[nb[d]] != XR_GRID_MOUNTAIN) {
						seen[nb[d]] = 1;
						queue[tail++] = (uint16_t)nb[d];
					}
			}
			if (reached != sp->players)
				FAILF("%ux%u seed %u: %u of %u generals reachable", sp->h, sp->w,
				      seed, reached, sp->players);
			for (uint32_t p = 0; p < sp->players; p++)
				for (uint32_t q = p + 1; q < sp->players; q++) {
					uint32_t a = (uint32_t)g->general[p], b = (uint32_t)g->general[q];
					int dy = (int)(a / g->w) - (int)(b / g->w);
					int dx = (int)(a % g->w) - (int)(b % g->w);
					uint32_t d = (uint32_t)(abs(dy) + abs(dx));

					CHECK(d >= 1);
					if (d < min_dist)
						min_dist = d;
				}
			hashes[seed] = mix(mix(0, g->terrain, n), g->armies, n * 4);
			hashes[seed] = mix(hashes[seed], g->owner, n);
		}
		printf("%ux%u %up %s: mountains %.3f, closest generals %u\n", sp->h, sp->w,
		       sp->players, sp->params ? sp->params : "", (double)mountains / (double)cells,
		       min_dist);
		if (s == 0) {
			/* Default 15%: within a point and a half over 400,000
			 * cells; generals well apart on the open board. */
			CHECK((double)mountains / (double)cells > 0.135);
			CHECK((double)mountains / (double)cells < 0.165);
			CHECK(min_dist >= 15);
		}
		if (s == 3)
			CHECK((double)mountains / (double)cells > 0.3);
		for (uint32_t i = 0; i < seeds; i++)
			for (uint32_t j = i + 1; j < seeds && sp->h * sp->w >= 64; j++)
				if (hashes[i] == hashes[j])
					FAILF("%ux%u: seeds %u and %u give the same map", sp->h, sp->w, i, j);
		vt->destroy(g);
	}
	free(hashes);
	free(queue);
	free(seen);
}

/* The policy is uniform over the legal entries and a function of its state. */
static void test_policy(void)
{
	uint8_t mask[1601] = {0};
	uint32_t hits[1601] = {0};
	uint64_t s1 = 42, s2 = 42;
	const uint32_t draws = 200000;
	uint32_t legal[] = {0, 7, 8, 9, 63, 64, 800, 1599, 1600};
	const uint32_t nl = sizeof(legal) / sizeof(legal[0]);

	CHECK_RC(xr_policy_random_legal(mask, 1601, &s1), -ENOENT);
	CHECK_RC(xr_policy_random_legal(mask, 0, &s1), -ENOENT);
	for (uint32_t i = 0; i < nl; i++)
		mask[legal[i]] = (uint8_t)(i == 3 ? 0x80 : 1); /* any non-zero is legal */
	for (uint32_t i = 0; i < draws; i++) {
		int32_t a = xr_policy_random_legal(mask, 1601, &s1);

		CHECK_EQ(a, xr_policy_random_legal(mask, 1601, &s2));
		CHECK(a >= 0 && a < 1601 && mask[a]);
		hits[a]++;
	}
	CHECK_EQ(s1, s2);
	for (uint32_t i = 0; i < nl; i++) {
		double want = (double)draws / nl, got = hits[legal[i]];

		/* 5 sigma of a binomial with p = 1/9 is ~700. */
		if (got < want - 1000 || got > want + 1000)
			FAILF("action %u drawn %u times, want about %.0f", legal[i], hits[legal[i]],
			      want);
	}
	/* A single legal entry at every position, including the tail bytes. */
	for (uint32_t n = 1; n <= 40; n++)
		for (uint32_t k = 0; k < n; k++) {
			uint8_t m[40] = {0};

			m[k] = 1;
			CHECK_EQ(xr_policy_random_legal(m, n, &s1), k);
		}
}

int main(void)
{
	vt = xr_game_builtin_grid();
	test_policy();
	test_maps();
	test_trajectories();
	printf("grid game determinism: ok\n");
	return 0;
}
