/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_GRID_GAME_H
#define XR_ENGINE_GRID_GAME_H

/*
 * The built-in Generals-style grid game: its instance layout and the few
 * internal hooks the rule tests use to build positions by hand. The engine
 * itself uses the game only through xr_game_builtin_grid()'s vtable; the
 * rules are in grid_game.c and docs/games.md.
 *
 * Cells are numbered i = y * w + x. Every per-cell array has n = h * w
 * entries; vis has one row of n per player.
 */

#include <stdbool.h>
#include <stdint.h>

#include "xring/game.h"

enum xr_grid_terrain {
	XR_GRID_PLAIN = 0,
	XR_GRID_MOUNTAIN = 1,
	XR_GRID_CITY = 2,
	XR_GRID_GENERAL = 3,
};

/* Move directions: action = cell * 4 + dir; action n * 4 is the no-op. */
enum xr_grid_dir {
	XR_GRID_UP = 0,    /* y - 1 */
	XR_GRID_RIGHT = 1, /* x + 1 */
	XR_GRID_DOWN = 2,  /* y + 1 */
	XR_GRID_LEFT = 3,  /* x - 1 */
};

/* Observation channels, in order. */
enum xr_grid_channel {
	XR_GRID_CH_OWN_ARMIES = 0,
	XR_GRID_CH_ENEMY_ARMIES = 1,   /* visible cells only */
	XR_GRID_CH_NEUTRAL_ARMIES = 2, /* visible cells only */
	XR_GRID_CH_OWN_LAND = 3,
	XR_GRID_CH_ENEMY_LAND = 4,     /* visible cells only */
	XR_GRID_CH_OBSTACLE = 5,       /* every mountain; a city in fog */
	XR_GRID_CH_CITY = 6,           /* visible cities */
	XR_GRID_CH_GENERAL = 7,        /* visible generals */
	XR_GRID_CH_VISIBLE = 8,
	XR_GRID_CHANNELS = 9,
};

#define XR_GRID_DEFAULT_SIDE 20u
#define XR_GRID_MAX_SIDE 256u
#define XR_GRID_DEFAULT_TURN_LIMIT 500u
#define XR_GRID_DEFAULT_MOUNTAINS 0.15
#define XR_GRID_GROWTH_PERIOD 25u   /* every owned cell +1 each this many turns */
#define XR_GRID_CITY_MIN 40u        /* neutral city garrison, inclusive */
#define XR_GRID_CITY_MAX 50u

struct xr_grid {
	uint32_t h, w, n;
	uint32_t players;
	uint32_t turn_limit;
	uint32_t turn;          /* steps taken in this episode */
	uint32_t alive;         /* players whose general stands */
	uint32_t n_cities;      /* entries of cities[] */
	uint32_t cities_cfg;    /* cities a new map gets */
	double mountain_frac;   /* of a new map's cells */
	float shaping;          /* land-change reward coefficient; 0 = off */
	bool over;              /* the episode ended; step() refuses */
	int32_t general[XR_GAME_MAX_PLAYERS]; /* cell, or -1 once eliminated */
	uint32_t land[XR_GAME_MAX_PLAYERS];   /* cells owned */

	uint32_t *armies;       /* [n] */
	uint16_t *cities;       /* [n] cells that are cities (owned or not) */
	uint16_t *scratch;      /* [2n] map generation only */
	int8_t *owner;          /* [n] player, or -1 neutral */
	uint8_t *terrain;       /* [n] enum xr_grid_terrain */
	uint8_t *nbr;           /* [n] bit d: the neighbour in direction d is on
				 * the board and not a mountain */
	uint8_t *vis;           /* [players][n] cells of that player within
				 * Chebyshev distance 1 (0..9); > 0 = visible */
};

/* For tests. Makes every cell plain, neutral and empty, no generals, turn 0,
 * episode not over; follow with xr__grid_set() calls and xr__grid_sync(). */
void xr__grid_clear(struct xr_grid *g);

/* For tests. Sets one cell; owner -1 = neutral. A general must be owned by
 * its player (one general per player). */
void xr__grid_set(struct xr_grid *g, uint32_t y, uint32_t x, enum xr_grid_terrain t,
		  int owner, uint32_t armies);

/* Recomputes everything derived from the cells: generals, alive count, land
 * counts, visibility, neighbour masks, the city list. Map generation ends
 * with it; tests call it after xr__grid_set(). */
void xr__grid_sync(struct xr_grid *g);

#endif
