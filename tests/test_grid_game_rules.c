/* SPDX-License-Identifier: MIT */
/*
 * The grid game's rules on hand-built positions: combat arithmetic (capture,
 * ties, neutral cities), a general's capture eliminating its player and
 * handing over the land, growth timing, the rotating move order, stale and
 * illegal moves, mountains, the legal mask against the rules written out
 * independently here, fog and every observation channel against a reference
 * (also across random play, which checks the incrementally kept visibility),
 * done / truncated / out flags and rewards, and config validation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/grid_game.h"
#include "ring_helpers.h"

#define NOOP(g) ((int32_t)((g)->n * 4))
#define AT(g, y, x) ((uint32_t)((y) * (g)->w + (x)))
#define MOVE(g, y, x, d) ((int32_t)(AT(g, y, x) * 4 + (d)))

static const xr_game_vtable *vt;

static struct xr_grid *make(uint32_t h, uint32_t w, uint32_t players, uint32_t turn_limit,
			    const char *params)
{
	xr_game_config cfg = {.board_h = h, .board_w = w, .players = players,
			      .turn_limit = turn_limit, .seed = 1, .params = params};
	void *g = NULL;

	CHECK_RC(vt->create(&cfg, &g), 0);
	xr__grid_clear(g);
	return g;
}

static uint32_t armies(struct xr_grid *g, uint32_t y, uint32_t x)
{
	return g->armies[AT(g, y, x)];
}

static int owner(struct xr_grid *g, uint32_t y, uint32_t x)
{
	return g->owner[AT(g, y, x)];
}

/* One step; every player not listed plays the no-op. */
static int step(struct xr_grid *g, const int32_t *acts, float *rew, uint32_t *flags)
{
	int32_t a[XR_GAME_MAX_PLAYERS];

	for (uint32_t p = 0; p < g->players; p++)
		a[p] = acts ? acts[p] : NOOP(g);
	return vt->step(g, a, rew, flags);
}

/* Two generals in the bottom corners, out of the way of the action. */
static struct xr_grid *two_player_board(uint32_t turn_limit)
{
	struct xr_grid *g = make(6, 6, 2, turn_limit, NULL);

	xr__grid_set(g, 5, 0, XR_GRID_GENERAL, 0, 1);
	xr__grid_set(g, 5, 5, XR_GRID_GENERAL, 1, 1);
	return g;
}

static void test_combat(void)
{
	struct xr_grid *g = two_player_board(0);
	float r[2];
	uint32_t f[2];
	int32_t a[2];

	/* Row 0: P0 10 | empty neutral. Row 1: P0 10 | P1 5. Row 2: P0 10 |
	 * P1 9. Row 3: P0 10 | neutral city 45. (1,3): P0 4 | (1,4) P0 3. */
	xr__grid_set(g, 0, 0, XR_GRID_PLAIN, 0, 10);
	xr__grid_set(g, 1, 0, XR_GRID_PLAIN, 0, 10);
	xr__grid_set(g, 1, 1, XR_GRID_PLAIN, 1, 5);
	xr__grid_set(g, 2, 0, XR_GRID_PLAIN, 0, 10);
	xr__grid_set(g, 2, 1, XR_GRID_PLAIN, 1, 9);
	xr__grid_set(g, 3, 0, XR_GRID_PLAIN, 0, 10);
	xr__grid_set(g, 3, 1, XR_GRID_CITY, -1, 45);
	xr__grid_set(g, 1, 3, XR_GRID_PLAIN, 0, 4);
	xr__grid_set(g, 1, 4, XR_GRID_PLAIN, 0, 3);
	xr__grid_sync(g);
	CHECK_EQ(g->land[0], 7);
	CHECK_EQ(g->land[1], 3);

	/* Into an empty neutral cell: captured with all but one army. */
	a[0] = MOVE(g, 0, 0, XR_GRID_RIGHT);
	a[1] = NOOP(g);
	CHECK_RC(step(g, a, r, f), 0);
	CHECK_EQ(owner(g, 0, 0), 0);
	CHECK_EQ(armies(g, 0, 0), 1);
	CHECK_EQ(owner(g, 0, 1), 0);
	CHECK_EQ(armies(g, 0, 1), 9);
	CHECK_EQ(g->land[0], 8);

	/* 9 attackers against 5: captured with 4. */
	a[0] = MOVE(g, 1, 0, XR_GRID_RIGHT);
	CHECK_RC(step(g, a, r, f), 0);
	CHECK_EQ(owner(g, 1, 1), 0);
	CHECK_EQ(armies(g, 1, 1), 4);
	CHECK_EQ(g->land[0], 9);
	CHECK_EQ(g->land[1], 2);

	/* 9 against 9: the defender holds with 0. */
	a[0] = MOVE(g, 2, 0, XR_GRID_RIGHT);
	CHECK_RC(step(g, a, r, f), 0);
	CHECK_EQ(owner(g, 2, 1), 1);
	CHECK_EQ(armies(g, 2, 1), 0);
	CHECK_EQ(armies(g, 2, 0), 1);

	/* 9 against a neutral city of 45: 36 left, still neutral, no growth. */
	a[0] = MOVE(g, 3, 0, XR_GRID_RIGHT);
	CHECK_RC(step(g, a, r, f), 0);
	CHECK_EQ(owner(g, 3, 1), -1);
	CHECK_EQ(armies(g, 3, 1), 36);

	/* Into an own cell: added (4 - 1 = 3 onto 3). */
	a[0] = MOVE(g, 1, 3, XR_GRID_RIGHT);
	CHECK_RC(step(g, a, r, f), 0);
	CHECK_EQ(armies(g, 1, 3), 1);
	CHECK_EQ(armies(g, 1, 4), 6);
	CHECK_EQ(owner(g, 1, 4), 0);
	for (int p = 0; p < 2; p++) {
		CHECK(r[p] == 0.0f);
		CHECK_EQ(f[p], 0);
	}
	vt->destroy(g);
}

static void test_city_capture_and_growth(void)
{
	struct xr_grid *g = two_player_board(0);
	float r[2];
	uint32_t f[2];
	int32_t a[2];
	uint32_t gen0;

	xr__grid_set(g, 0, 0, XR_GRID_PLAIN, 0, 51);
	xr__grid_set(g, 0, 1, XR_GRID_CITY, -1, 44);
	xr__grid_set(g, 2, 2, XR_GRID_PLAIN, 0, 7);
	xr__grid_sync(g);
	CHECK_EQ(g->n_cities, 1);
	gen0 = armies(g, 5, 0);

	/* 50 against 44: the city is P0's with 6, and grows in the same turn. */
	a[0] = MOVE(g, 0, 0, XR_GRID_RIGHT);
	a[1] = NOOP(g);
	CHECK_RC(step(g, a, r, f), 0);
	CHECK_EQ(owner(g, 0, 1), 0);
	CHECK_EQ(armies(g, 0, 1), 7);
	CHECK_EQ(armies(g, 5, 0), gen0 + 1);
	CHECK_EQ(armies(g, 2, 2), 7);    /* plain land: no growth yet */
	CHECK_EQ(g->turn, 1);

	/* Turns 2..24: generals and owned cities +1 each, plain land nothing. */
	for (uint32_t t = 2; t < XR_GRID_GROWTH_PERIOD; t++)
		CHECK_RC(step(g, NULL, r, f), 0);
	CHECK_EQ(g->turn, XR_GRID_GROWTH_PERIOD - 1);
	CHECK_EQ(armies(g, 0, 1), 7 + (XR_GRID_GROWTH_PERIOD - 2));
	CHECK_EQ(armies(g, 5, 0), gen0 + XR_GRID_GROWTH_PERIOD - 1);
	CHECK_EQ(armies(g, 2, 2), 7);
	CHECK_EQ(armies(g, 0, 0), 1);

	/* Turn 25: every owned cell +1 on top (generals and cities get 2). */
	CHECK_RC(step(g, NULL, r, f), 0);
	CHECK_EQ(g->turn, XR_GRID_GROWTH_PERIOD);
	CHECK_EQ(armies(g, 2, 2), 8);
	CHECK_EQ(armies(g, 0, 0), 2);
	CHECK_EQ(armies(g, 0, 1), 7 + (XR_GRID_GROWTH_PERIOD - 2) + 2);
	CHECK_EQ(armies(g, 5, 0), gen0 + XR_GRID_GROWTH_PERIOD + 1);
	CHECK_EQ(armies(g, 5, 5), gen0 + XR_GRID_GROWTH_PERIOD + 1);
	CHECK_EQ(armies(g, 3, 3), 0);    /* neutral plain: never grows */

	/* Turn 26: plain land stays until turn 50. */
	CHECK_RC(step(g, NULL, r, f), 0);
	CHECK_EQ(armies(g, 2, 2), 8);
	for (uint32_t t = g->turn; t < 2 * XR_GRID_GROWTH_PERIOD; t++)
		CHECK_RC(step(g, NULL, r, f), 0);
	CHECK_EQ(armies(g, 2, 2), 9);
	vt->destroy(g);
}

static void test_general_capture_two_players(void)
{
	struct xr_grid *g = make(4, 4, 2, 0, NULL);
	float r[2];
	uint32_t f[2];
	int32_t a[2];

	xr__grid_set(g, 0, 0, XR_GRID_GENERAL, 0, 3);
	xr__grid_set(g, 3, 2, XR_GRID_PLAIN, 0, 20);
	xr__grid_set(g, 3, 3, XR_GRID_GENERAL, 1, 12);
	xr__grid_set(g, 2, 3, XR_GRID_PLAIN, 1, 7);
	xr__grid_set(g, 1, 3, XR_GRID_PLAIN, 1, 4);
	xr__grid_set(g, 0, 3, XR_GRID_CITY, 1, 1);
	xr__grid_set(g, 1, 1, XR_GRID_PLAIN, 1, 0);
	xr__grid_sync(g);
	CHECK_EQ(g->alive, 2);
	CHECK_EQ(g->land[1], 5);

	/* 19 against 12 takes the general with 7; player 1 is out. */
	a[0] = MOVE(g, 3, 2, XR_GRID_RIGHT);
	a[1] = NOOP(g);
	CHECK_RC(step(g, a, r, f), 1);
	CHECK_EQ(g->general[1], -1);
	CHECK_EQ(g->alive, 1);
	CHECK(g->over);
	CHECK_EQ(g->land[1], 0);
	CHECK_EQ(g->land[0], 7);
	/* The fallen general is now P0's city: 7, +1 city growth. */
	CHECK_EQ(g->terrain[AT(g, 3, 3)], XR_GRID_CITY);
	CHECK_EQ(owner(g, 3, 3), 0);
	CHECK_EQ(armies(g, 3, 3), 8);
	/* The rest of P1's land is P0's with armies halved, rounding up; the
	 * captured city grows afterwards. */
	CHECK_EQ(owner(g, 2, 3), 0);
	CHECK_EQ(armies(g, 2, 3), 4);
	CHECK_EQ(owner(g, 1, 3), 0);
	CHECK_EQ(armies(g, 1, 3), 2);
	CHECK_EQ(owner(g, 0, 3), 0);
	CHECK_EQ(armies(g, 0, 3), 1 + 1);
	CHECK_EQ(owner(g, 1, 1), 0);
	CHECK_EQ(armies(g, 1, 1), 0);
	/* Rewards and flags: the winner +1, the eliminated -1, both done. */
	CHECK(r[0] == 1.0f);
	CHECK(r[1] == -1.0f);
	CHECK_EQ(f[0], XR_GAME_DONE);
	CHECK_EQ(f[1], XR_GAME_DONE);
	/* No step after the end; reset starts a fresh episode. */
	CHECK_RC(vt->step(g, a, r, f), -EINVAL);
	CHECK_RC(vt->reset(g, 7), 0);
	CHECK(!g->over);
	CHECK_EQ(g->alive, 2);
	CHECK_EQ(g->turn, 0);
	CHECK_RC(step(g, NULL, r, f), 0);
	vt->destroy(g);
}

static void test_elimination_three_players(void)
{
	struct xr_grid *g = make(5, 5, 3, 0, NULL);
	float r[3];
	uint32_t f[3];
	int32_t a[3];

	xr__grid_set(g, 0, 0, XR_GRID_GENERAL, 0, 1);
	xr__grid_set(g, 2, 2, XR_GRID_GENERAL, 1, 2);
	xr__grid_set(g, 2, 1, XR_GRID_PLAIN, 2, 10);
	xr__grid_set(g, 2, 3, XR_GRID_PLAIN, 1, 6);
	xr__grid_set(g, 4, 4, XR_GRID_GENERAL, 2, 1);
	xr__grid_sync(g);

	/* P2 takes P1's general (9 against 2). P1 also sends its 6 from (2,3)
	 * down, but at turn 2 the order is 2, 0, 1: P2 moves first, and P1's
	 * move is void once P1 is out (and (2,3) is P2's, halved). */
	g->turn = 2;
	a[0] = NOOP(g);
	a[1] = MOVE(g, 2, 3, XR_GRID_DOWN);
	a[2] = MOVE(g, 2, 1, XR_GRID_RIGHT);
	CHECK_RC(step(g, a, r, f), 0);
	CHECK_EQ(g->alive, 2);
	CHECK_EQ(g->general[1], -1);
	CHECK_EQ(owner(g, 2, 3), 2);
	CHECK_EQ(armies(g, 2, 3), 3);    /* 6 halved, rounding up; not moved */
	CHECK_EQ(owner(g, 3, 3), -1);
	CHECK(r[1] == -1.0f);
	CHECK_EQ(f[1], XR_GAME_DONE);
	CHECK(r[0] == 0.0f && r[2] == 0.0f);
	CHECK_EQ(f[0], 0);
	CHECK_EQ(f[2], 0);

	/* Next step: P1 is out, its action ignored, reward 0. */
	a[1] = MOVE(g, 2, 3, XR_GRID_DOWN);
	CHECK_RC(step(g, a, r, f), 0);
	CHECK_EQ(f[1], XR_GAME_OUT);
	CHECK(r[1] == 0.0f);
	CHECK_EQ(owner(g, 3, 3), -1);
	/* Its mask holds the no-op alone. */
	{
		uint8_t mask[5 * 5 * 4 + 1];
		uint32_t legal = 0;

		CHECK_RC(vt->legal_actions(g, 1, mask), 0);
		for (uint32_t i = 0; i < sizeof(mask); i++)
			legal += mask[i];
		CHECK_EQ(legal, 1);
		CHECK_EQ(mask[NOOP(g)], 1);
	}
	vt->destroy(g);
}

static void test_move_order_rotates(void)
{
	/* P0 at (0,0) and P1 at (0,2), 10 armies each, both send 9 into the
	 * empty neutral (0,1). The first mover takes it, the second ties and
	 * the first keeps it with 0. Turn t's order starts with player t % 2. */
	for (uint32_t turn = 0; turn < 4; turn++) {
		struct xr_grid *g = two_player_board(0);
		float r[2];
		uint32_t f[2];
		int32_t a[2];

		xr__grid_set(g, 0, 0, XR_GRID_PLAIN, 0, 10);
		xr__grid_set(g, 0, 2, XR_GRID_PLAIN, 1, 10);
		xr__grid_sync(g);
		g->turn = turn;
		a[0] = MOVE(g, 0, 0, XR_GRID_RIGHT);
		a[1] = MOVE(g, 0, 2, XR_GRID_LEFT);
		CHECK_RC(step(g, a, r, f), 0);
		CHECK_EQ(owner(g, 0, 1), turn % 2);
		CHECK_EQ(armies(g, 0, 1), 0);
		CHECK_EQ(armies(g, 0, 0), 1);
		CHECK_EQ(armies(g, 0, 2), 1);
		vt->destroy(g);
	}
	/* Stale move: the source is taken by the earlier mover. */
	for (uint32_t turn = 0; turn < 2; turn++) {
		struct xr_grid *g = two_player_board(0);
		float r[2];
		uint32_t f[2];
		int32_t a[2];

		xr__grid_set(g, 0, 0, XR_GRID_PLAIN, 0, 10);
		xr__grid_set(g, 0, 1, XR_GRID_PLAIN, 1, 3);
		xr__grid_sync(g);
		g->turn = turn;
		a[0] = MOVE(g, 0, 0, XR_GRID_RIGHT);  /* 9 into P1's 3 */
		a[1] = MOVE(g, 0, 1, XR_GRID_RIGHT);  /* P1 moves its 2 away */
		CHECK_RC(step(g, a, r, f), 0);
		if (turn == 0) {
			/* P0 first: captures (0,1) with 6; P1's move is void. */
			CHECK_EQ(owner(g, 0, 1), 0);
			CHECK_EQ(armies(g, 0, 1), 6);
			CHECK_EQ(owner(g, 0, 2), -1);
		} else {
			/* P1 first: leaves 1, takes (0,2) with 2; P0 takes
			 * (0,1) with 8. */
			CHECK_EQ(owner(g, 0, 2), 1);
			CHECK_EQ(armies(g, 0, 2), 2);
			CHECK_EQ(owner(g, 0, 1), 0);
			CHECK_EQ(armies(g, 0, 1), 8);
		}
		vt->destroy(g);
	}
}

static void test_illegal_is_noop(void)
{
	struct xr_grid *g = two_player_board(0);
	float r[2];
	uint32_t f[2];
	int32_t a[2];
	int32_t bad[] = {-1, -5, NOOP(g) + 1, INT32_MAX,
			 MOVE(g, 0, 0, XR_GRID_UP),     /* off the board */
			 MOVE(g, 0, 0, XR_GRID_LEFT),   /* off the board */
			 MOVE(g, 1, 1, XR_GRID_RIGHT),  /* into a mountain */
			 MOVE(g, 2, 2, XR_GRID_UP),     /* only 1 army */
			 MOVE(g, 3, 3, XR_GRID_UP),     /* not its cell */
			 MOVE(g, 4, 4, XR_GRID_UP)};    /* nobody's cell */
	uint32_t before[36];
	int8_t own_before[36];

	xr__grid_set(g, 0, 0, XR_GRID_PLAIN, 0, 10);
	xr__grid_set(g, 1, 1, XR_GRID_PLAIN, 0, 10);
	xr__grid_set(g, 1, 2, XR_GRID_MOUNTAIN, -1, 0);
	xr__grid_set(g, 2, 2, XR_GRID_PLAIN, 0, 1);
	xr__grid_set(g, 3, 3, XR_GRID_PLAIN, 1, 10);
	xr__grid_set(g, 3, 2, XR_GRID_PLAIN, -1, 0);
	xr__grid_sync(g);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(before, g->armies, sizeof(before));
		memcpy(own_before, g->owner, sizeof(own_before));
		a[0] = bad[i];
		a[1] = NOOP(g);
		CHECK_RC(step(g, a, r, f), 0);
		for (uint32_t c = 0; c < 36; c++) {
			uint32_t grow = (g->terrain[c] == XR_GRID_GENERAL) +
					(g->turn % XR_GRID_GROWTH_PERIOD == 0 && g->owner[c] >= 0);

			if (g->owner[c] != own_before[c] || g->armies[c] != before[c] + grow)
				FAILF("action %d changed cell %u", bad[i], c);
		}
	}
	vt->destroy(g);
}

/* ---- references written from the rules, cell by coordinates */

static int ref_visible(struct xr_grid *g, uint32_t p, uint32_t y, uint32_t x)
{
	for (int dy = -1; dy <= 1; dy++)
		for (int dx = -1; dx <= 1; dx++) {
			int yy = (int)y + dy, xx = (int)x + dx;

			if (yy >= 0 && xx >= 0 && yy < (int)g->h && xx < (int)g->w &&
			    g->owner[yy * (int)g->w + xx] == (int)p)
				return 1;
		}
	return 0;
}

static double ref_obs(struct xr_grid *g, uint32_t p, uint32_t ch, uint32_t y, uint32_t x)
{
	uint32_t c = AT(g, y, x);
	int o = g->owner[c], v = ref_visible(g, p, y, x);
	unsigned t = g->terrain[c];
	double a = g->armies[c];

	switch (ch) {
	case XR_GRID_CH_OWN_ARMIES: return o == (int)p ? a : 0;
	case XR_GRID_CH_ENEMY_ARMIES: return v && o >= 0 && o != (int)p ? a : 0;
	case XR_GRID_CH_NEUTRAL_ARMIES: return v && o < 0 ? a : 0;
	case XR_GRID_CH_OWN_LAND: return o == (int)p;
	case XR_GRID_CH_ENEMY_LAND: return v && o >= 0 && o != (int)p;
	case XR_GRID_CH_OBSTACLE: return t == XR_GRID_MOUNTAIN || (!v && t == XR_GRID_CITY);
	case XR_GRID_CH_CITY: return v && t == XR_GRID_CITY;
	case XR_GRID_CH_GENERAL: return v && t == XR_GRID_GENERAL;
	case XR_GRID_CH_VISIBLE: return v;
	}
	FAILF("channel %u", ch);
}

static int ref_legal(struct xr_grid *g, uint32_t p, uint32_t action)
{
	static const int dy[4] = {-1, 0, 1, 0}, dx[4] = {0, 1, 0, -1};
	uint32_t c = action / 4, d = action % 4, y, x;
	int yy, xx;

	if (action == g->n * 4)
		return 1;
	y = c / g->w;
	x = c % g->w;
	yy = (int)y + dy[d];
	xx = (int)x + dx[d];
	if (g->owner[c] != (int)p || g->armies[c] < 2)
		return 0;
	if (yy < 0 || xx < 0 || yy >= (int)g->h || xx >= (int)g->w)
		return 0;
	return g->terrain[yy * (int)g->w + xx] != XR_GRID_MOUNTAIN;
}

/* Every player's observation (both dtypes) and mask against the references,
 * and the incrementally kept land and visibility against a recount. */
static void check_against_reference(struct xr_grid *g)
{
	uint32_t n = g->n, P = g->players;
	uint8_t *u8 = malloc((size_t)XR_GRID_CHANNELS * n);
	float *f32 = malloc((size_t)XR_GRID_CHANNELS * n * sizeof(float));
	uint8_t *mask = malloc((size_t)n * 4 + 1);

	CHECK(u8 && f32 && mask);
	for (uint32_t p = 0; p < P; p++) {
		uint32_t land = 0;

		CHECK_RC(vt->observe(g, p, XR_DTYPE_U8, u8), 0);
		CHECK_RC(vt->observe(g, p, XR_DTYPE_F32, f32), 0);
		CHECK_RC(vt->legal_actions(g, p, mask), 0);
		for (uint32_t ch = 0; ch < XR_GRID_CHANNELS; ch++)
			for (uint32_t y = 0; y < g->h; y++)
				for (uint32_t x = 0; x < g->w; x++) {
					double want = ref_obs(g, p, ch, y, x);
					double want8 = want > 255 ? 255 : want;
					size_t i = (size_t)ch * n + AT(g, y, x);

					if ((double)f32[i] != want || (double)u8[i] != want8)
						FAILF("player %u channel %u cell (%u,%u): f32 %g u8 %u, "
						      "want %g", p, ch, y, x, (double)f32[i], u8[i], want);
				}
		for (uint32_t a = 0; a <= n * 4; a++)
			if (mask[a] != ref_legal(g, p, a))
				FAILF("player %u action %u: mask %u, rules say %d", p, a, mask[a],
				      ref_legal(g, p, a));
		for (uint32_t c = 0; c < n; c++)
			land += g->owner[c] == (int)p;
		CHECK_EQ(g->land[p], land);
		for (uint32_t c = 0; c < n; c++)
			CHECK_EQ(g->vis[(size_t)p * n + c] != 0, ref_visible(g, p, c / g->w, c % g->w));
	}
	free(u8);
	free(f32);
	free(mask);
}

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint32_t rnd(uint32_t k)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)((rng >> 32) % k);
}

/* A random position: mountains, cities (neutral or owned), owned and neutral
 * plain cells, armies 0..599 (some past u8's 255), one general each. */
static void random_position(struct xr_grid *g)
{
	xr__grid_clear(g);
	for (uint32_t y = 0; y < g->h; y++)
		for (uint32_t x = 0; x < g->w; x++) {
			uint32_t k = rnd(20);
			int o = (int)rnd(g->players + 2) - 2;
			uint32_t a = rnd(4) ? rnd(4) : rnd(600);

			if (o < -1)
				o = -1;
			if (k < 3)
				xr__grid_set(g, y, x, XR_GRID_MOUNTAIN, -1, 0);
			else if (k < 5)
				xr__grid_set(g, y, x, XR_GRID_CITY, o, o < 0 ? 40 + rnd(11) : a);
			else
				xr__grid_set(g, y, x, XR_GRID_PLAIN, o, o < 0 ? 0 : a);
		}
	for (uint32_t p = 0; p < g->players; p++) {
		uint32_t y, x;

		do {
			y = rnd(g->h);
			x = rnd(g->w);
		} while (g->terrain[AT(g, y, x)] == XR_GRID_GENERAL);
		xr__grid_set(g, y, x, XR_GRID_GENERAL, (int)p, 1 + rnd(30));
	}
	xr__grid_sync(g);
}

static void test_observation_and_mask_reference(void)
{
	static const uint32_t shapes[][3] = {{6, 6, 2}, {5, 9, 3}, {20, 20, 2}, {8, 3, 8}, {2, 2, 2}};

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		struct xr_grid *g = make(shapes[s][0], shapes[s][1], shapes[s][2], 100000, NULL);
		uint8_t *mask = malloc((size_t)g->n * 4 + 1);
		uint64_t prng = 99;
		int32_t a[XR_GAME_MAX_PLAYERS];
		float r[XR_GAME_MAX_PLAYERS];
		uint32_t f[XR_GAME_MAX_PLAYERS];

		CHECK(mask);
		for (int pos = 0; pos < 40; pos++) {
			random_position(g);
			check_against_reference(g);
			/* Random legal play keeps land and visibility in step
			 * through captures and eliminations. */
			for (int t = 0; t < 30 && !g->over; t++) {
				for (uint32_t p = 0; p < g->players; p++) {
					CHECK_RC(vt->legal_actions(g, p, mask), 0);
					a[p] = xr_policy_random_legal(mask, g->n * 4 + 1, &prng);
					CHECK(a[p] >= 0);
				}
				CHECK(vt->step(g, a, r, f) >= 0);
				check_against_reference(g);
			}
		}
		free(mask);
		vt->destroy(g);
	}
}

static void test_fog(void)
{
	struct xr_grid *g = make(7, 7, 2, 0, NULL);
	uint32_t n = 49;
	uint8_t obs[XR_GRID_CHANNELS * 49];

#define OBS(ch, y, x) obs[(ch) * n + AT(g, y, x)]
	xr__grid_set(g, 3, 3, XR_GRID_GENERAL, 0, 5);
	xr__grid_set(g, 2, 4, XR_GRID_PLAIN, 1, 8);    /* adjacent (diagonal) */
	xr__grid_set(g, 3, 5, XR_GRID_PLAIN, 1, 9);    /* distance 2 */
	xr__grid_set(g, 4, 2, XR_GRID_CITY, -1, 42);   /* visible city */
	xr__grid_set(g, 0, 0, XR_GRID_CITY, -1, 45);   /* fogged city */
	xr__grid_set(g, 6, 6, XR_GRID_GENERAL, 1, 3);  /* fogged general */
	xr__grid_set(g, 0, 6, XR_GRID_MOUNTAIN, -1, 0);/* fogged mountain */
	xr__grid_set(g, 2, 2, XR_GRID_MOUNTAIN, -1, 0);/* visible mountain */
	xr__grid_sync(g);
	CHECK_RC(vt->observe(g, 0, XR_DTYPE_U8, obs), 0);

	CHECK_EQ(OBS(XR_GRID_CH_OWN_ARMIES, 3, 3), 5);
	CHECK_EQ(OBS(XR_GRID_CH_OWN_LAND, 3, 3), 1);
	CHECK_EQ(OBS(XR_GRID_CH_GENERAL, 3, 3), 1);
	CHECK_EQ(OBS(XR_GRID_CH_ENEMY_ARMIES, 2, 4), 8);
	CHECK_EQ(OBS(XR_GRID_CH_ENEMY_LAND, 2, 4), 1);
	CHECK_EQ(OBS(XR_GRID_CH_VISIBLE, 2, 4), 1);
	CHECK_EQ(OBS(XR_GRID_CH_ENEMY_ARMIES, 3, 5), 0);
	CHECK_EQ(OBS(XR_GRID_CH_ENEMY_LAND, 3, 5), 0);
	CHECK_EQ(OBS(XR_GRID_CH_VISIBLE, 3, 5), 0);
	CHECK_EQ(OBS(XR_GRID_CH_CITY, 4, 2), 1);
	CHECK_EQ(OBS(XR_GRID_CH_NEUTRAL_ARMIES, 4, 2), 42);
	CHECK_EQ(OBS(XR_GRID_CH_OBSTACLE, 4, 2), 0);
	CHECK_EQ(OBS(XR_GRID_CH_CITY, 0, 0), 0);
	CHECK_EQ(OBS(XR_GRID_CH_NEUTRAL_ARMIES, 0, 0), 0);
	CHECK_EQ(OBS(XR_GRID_CH_OBSTACLE, 0, 0), 1);
	CHECK_EQ(OBS(XR_GRID_CH_GENERAL, 6, 6), 0);
	CHECK_EQ(OBS(XR_GRID_CH_OBSTACLE, 6, 6), 0);
	CHECK_EQ(OBS(XR_GRID_CH_ENEMY_ARMIES, 6, 6), 0);
	CHECK_EQ(OBS(XR_GRID_CH_OBSTACLE, 0, 6), 1);
	CHECK_EQ(OBS(XR_GRID_CH_OBSTACLE, 2, 2), 1);
	CHECK_EQ(OBS(XR_GRID_CH_VISIBLE, 2, 2), 1);
	{
		uint32_t visible = 0;

		for (uint32_t c = 0; c < n; c++)
			visible += obs[XR_GRID_CH_VISIBLE * n + c];
		CHECK_EQ(visible, 9);
	}
	/* Player 1 sees its own general and the 3 x 3 around its cells. */
	CHECK_RC(vt->observe(g, 1, XR_DTYPE_U8, obs), 0);
	CHECK_EQ(OBS(XR_GRID_CH_GENERAL, 6, 6), 1);
	CHECK_EQ(OBS(XR_GRID_CH_OWN_ARMIES, 6, 6), 3);
	CHECK_EQ(OBS(XR_GRID_CH_ENEMY_ARMIES, 3, 3), 5);  /* next to (2,4) */
	CHECK_EQ(OBS(XR_GRID_CH_GENERAL, 3, 3), 1);
	CHECK_EQ(OBS(XR_GRID_CH_OWN_ARMIES, 2, 4), 8);

	/* Army channels clamp at 255 in u8 only. */
	{
		float f[XR_GRID_CHANNELS * 49];

		g->armies[AT(g, 3, 3)] = 300;
		CHECK_RC(vt->observe(g, 0, XR_DTYPE_U8, obs), 0);
		CHECK_RC(vt->observe(g, 0, XR_DTYPE_F32, f), 0);
		CHECK_EQ(OBS(XR_GRID_CH_OWN_ARMIES, 3, 3), 255);
		CHECK(f[XR_GRID_CH_OWN_ARMIES * n + AT(g, 3, 3)] == 300.0f);
	}
	CHECK_RC(vt->observe(g, 2, XR_DTYPE_U8, obs), -EINVAL);
	CHECK_RC(vt->observe(g, 0, XR_DTYPE_I32, obs), -EINVAL);
	CHECK_RC(vt->legal_actions(g, 2, obs), -EINVAL);
#undef OBS
	vt->destroy(g);
}

static void test_mountains_block(void)
{
	struct xr_grid *g = two_player_board(0);
	uint8_t mask[6 * 6 * 4 + 1];
	float r[2];
	uint32_t f[2];
	int32_t a[2];

	xr__grid_set(g, 2, 2, XR_GRID_PLAIN, 0, 10);
	xr__grid_set(g, 1, 2, XR_GRID_MOUNTAIN, -1, 0);
	xr__grid_set(g, 2, 3, XR_GRID_MOUNTAIN, -1, 0);
	xr__grid_sync(g);
	CHECK_RC(vt->legal_actions(g, 0, mask), 0);
	CHECK_EQ(mask[MOVE(g, 2, 2, XR_GRID_UP)], 0);
	CHECK_EQ(mask[MOVE(g, 2, 2, XR_GRID_RIGHT)], 0);
	CHECK_EQ(mask[MOVE(g, 2, 2, XR_GRID_DOWN)], 1);
	CHECK_EQ(mask[MOVE(g, 2, 2, XR_GRID_LEFT)], 1);
	a[0] = MOVE(g, 2, 2, XR_GRID_UP);
	a[1] = NOOP(g);
	CHECK_RC(step(g, a, r, f), 0);
	CHECK_EQ(armies(g, 2, 2), 10);
	CHECK_EQ(owner(g, 1, 2), -1);
	CHECK_EQ(g->terrain[AT(g, 1, 2)], XR_GRID_MOUNTAIN);
	a[0] = MOVE(g, 2, 2, XR_GRID_LEFT);
	CHECK_RC(step(g, a, r, f), 0);
	CHECK_EQ(armies(g, 2, 1), 9);
	CHECK_EQ(armies(g, 2, 2), 1);
	/* One army left: nothing moves from there any more. */
	CHECK_RC(vt->legal_actions(g, 0, mask), 0);
	for (int d = 0; d < 4; d++)
		CHECK_EQ(mask[MOVE(g, 2, 2, d)], 0);
	CHECK_EQ(mask[NOOP(g)], 1);
	vt->destroy(g);
}

static void test_truncation(void)
{
	struct xr_grid *g = two_player_board(3);
	float r[2];
	uint32_t f[2];

	xr__grid_sync(g);
	CHECK_RC(step(g, NULL, r, f), 0);
	CHECK_EQ(f[0], 0);
	CHECK_RC(step(g, NULL, r, f), 0);
	CHECK_RC(step(g, NULL, r, f), 1);
	CHECK_EQ(f[0], XR_GAME_TRUNCATED);
	CHECK_EQ(f[1], XR_GAME_TRUNCATED);
	CHECK(r[0] == 0.0f && r[1] == 0.0f);
	CHECK_RC(step(g, NULL, r, f), -EINVAL);
	vt->destroy(g);

	/* A win on the last turn is a win, not a truncation. */
	g = make(3, 3, 2, 1, NULL);
	xr__grid_set(g, 0, 0, XR_GRID_GENERAL, 0, 9);
	xr__grid_set(g, 0, 1, XR_GRID_GENERAL, 1, 1);
	xr__grid_sync(g);
	{
		int32_t a[2] = {MOVE(g, 0, 0, XR_GRID_RIGHT), NOOP(g)};

		CHECK_RC(step(g, a, r, f), 1);
		CHECK_EQ(f[0], XR_GAME_DONE);
		CHECK_EQ(f[1], XR_GAME_DONE);
		CHECK(r[0] == 1.0f && r[1] == -1.0f);
	}
	vt->destroy(g);
}

static void test_shaping(void)
{
	struct xr_grid *g = make(4, 4, 2, 0, "shaping=0.5");
	float r[2];
	uint32_t f[2];
	int32_t a[2];

	xr__grid_set(g, 0, 0, XR_GRID_GENERAL, 0, 1);
	xr__grid_set(g, 1, 0, XR_GRID_PLAIN, 0, 5);
	xr__grid_set(g, 1, 1, XR_GRID_PLAIN, 1, 1);
	xr__grid_set(g, 3, 3, XR_GRID_GENERAL, 1, 1);
	xr__grid_sync(g);
	a[0] = MOVE(g, 1, 0, XR_GRID_RIGHT);
	a[1] = NOOP(g);
	CHECK_RC(step(g, a, r, f), 0);
	CHECK(r[0] == 0.5f);
	CHECK(r[1] == -0.5f);
	vt->destroy(g);
}

static void test_config(void)
{
	static const char *bad_params[] = {"foo=1", "mountains", "mountains=2", "cities=-1",
					   "cities=1.5", "shaping=x", "mountains=0.1,", ",",
					   "shaping=inf"};
	xr_game_config cfg = {.players = 2, .seed = 1};
	xr_game_sizes sz;
	void *g = (void *)&cfg;

	for (uint32_t p = 0; p < 12; p++) {
		cfg.players = p;
		if (p >= 2 && p <= 8) {
			CHECK_RC(vt->create(&cfg, &g), 0);
			vt->sizes(g, &sz);
			CHECK_EQ(sz.players, p);
			CHECK_EQ(sz.obs_channels, 9);
			CHECK_EQ(sz.obs_h, 20);
			CHECK_EQ(sz.obs_w, 20);
			CHECK_EQ(sz.n_actions, 20 * 20 * 4 + 1);
			CHECK_EQ(((struct xr_grid *)g)->turn_limit, 500);
			vt->destroy(g);
		} else {
			CHECK_RC(vt->create(&cfg, &g), -EINVAL);
		}
	}
	cfg.players = 2;
	cfg.board_h = 1;
	CHECK_RC(vt->create(&cfg, &g), -EINVAL);
	cfg.board_h = 257;
	CHECK_RC(vt->create(&cfg, &g), -EINVAL);
	cfg.board_h = 2;
	cfg.board_w = 2;
	cfg.players = 3;
	CHECK_RC(vt->create(&cfg, &g), -EINVAL);   /* fewer than 2 cells per player */
	cfg.players = 2;
	CHECK_RC(vt->create(&cfg, &g), 0);
	vt->destroy(g);
	cfg.board_h = 7;
	cfg.board_w = 11;
	cfg.params = "mountains=0.3,cities=5,shaping=0.01";
	CHECK_RC(vt->create(&cfg, &g), 0);
	vt->sizes(g, &sz);
	CHECK_EQ(sz.obs_h, 7);
	CHECK_EQ(sz.obs_w, 11);
	CHECK_EQ(((struct xr_grid *)g)->n_cities, 5);
	vt->destroy(g);
	for (size_t i = 0; i < sizeof(bad_params) / sizeof(bad_params[0]); i++) {
		cfg.params = bad_params[i];
		g = (void *)&cfg;
		if (vt->create(&cfg, &g) != -EINVAL)
			FAILF("params \"%s\" accepted", bad_params[i]);
		CHECK(g == (void *)&cfg);
	}
	vt->destroy(NULL);
}

int main(void)
{
	vt = xr_game_builtin_grid();
	CHECK(vt && vt->abi == XR_GAME_ABI_VERSION && strcmp(vt->name, "grid") == 0);
	test_config();
	test_combat();
	test_city_capture_and_growth();
	test_general_capture_two_players();
	test_elimination_three_players();
	test_move_order_rotates();
	test_illegal_is_noop();
	test_mountains_block();
	test_fog();
	test_truncation();
	test_shaping();
	test_observation_and_mask_reference();
	printf("grid game rules: ok\n");
	return 0;
}
