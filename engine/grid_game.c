/* SPDX-License-Identifier: MIT */
/*
 * The built-in Generals-style grid game (the contract is xring/game.h, the
 * rules for players are in docs/games.md).
 *
 * State is structure-of-arrays over the n = h * w cells (grid_game.h), in
 * one allocation made by create(); nothing is allocated after that.
 *
 * Costs per call, for n cells and P players:
 *   step            O(P) moves + O(cities + P) growth; O(n) on every 25th turn
 *                   (growth of all land) and on a general's capture (land
 *                   transfer), both rare
 *   observe         O(n), branch-free over the cells
 *   legal_actions   O(n), one 4-byte store per cell
 * What makes observe O(n) rather than O(9n): vis[p][c] counts p's cells in
 * the 3 x 3 block around c and is updated incrementally whenever a cell
 * changes hands (9 increments and decrements), so "is c visible to p" is one
 * load. nbr[c] caches which moves out of c stay on the board and off
 * mountains, which never change within an episode.
 *
 * Randomness: only map generation draws numbers, from splitmix64 seeded with
 * the reset seed, so a game is a pure function of (config, seeds, actions).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "engine/grid_game.h"

/* ---- random numbers: splitmix64 (Steele, Lea, Flood 2014) */

static uint64_t sm_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, k) for k >= 1, up to a bias below k / 2^32. */
static uint32_t sm_below(uint64_t *s, uint32_t k)
{
	return (uint32_t)(((sm_next(s) >> 32) * (uint64_t)k) >> 32);
}

/* ---- derived state */

static void vis_add(struct xr_grid *g, uint32_t p, uint32_t c, int delta)
{
	uint8_t *v = g->vis + (size_t)p * g->n;
	uint32_t y = c / g->w, x = c % g->w;
	uint32_t y0 = y ? y - 1 : 0, y1 = y + 1 < g->h ? y + 1 : y;
	uint32_t x0 = x ? x - 1 : 0, x1 = x + 1 < g->w ? x + 1 : x;

	for (uint32_t yy = y0; yy <= y1; yy++)
		for (uint32_t xx = x0; xx <= x1; xx++)
			v[yy * g->w + xx] = (uint8_t)(v[yy * g->w + xx] + delta);
}

/* Gives cell c to player p (>= 0), keeping land and vis in step. */
static void set_owner(struct xr_grid *g, uint32_t c, int p)
{
	int prev = g->owner[c];

	if (prev == p)
		return;
	if (prev >= 0) {
		g->land[prev]--;
		vis_add(g, (uint32_t)prev, c, -1);
	}
	g->owner[c] = (int8_t)p;
	g->land[p]++;
	vis_add(g, (uint32_t)p, c, +1);
}

void xr__grid_sync(struct xr_grid *g)
{
	uint32_t h = g->h, w = g->w, n = g->n;

	memset(g->vis, 0, (size_t)g->players * n);
	for (uint32_t p = 0; p < XR_GAME_MAX_PLAYERS; p++) {
		g->general[p] = -1;
		g->land[p] = 0;
	}
	g->n_cities = 0;
	g->alive = 0;
	for (uint32_t c = 0; c < n; c++) {
		uint32_t y = c / w, x = c % w;
		const uint8_t *t = g->terrain;
		uint8_t bits = 0;
		int o = g->owner[c];

		if (y > 0 && t[c - w] != XR_GRID_MOUNTAIN)
			bits |= 1u << XR_GRID_UP;
		if (x + 1 < w && t[c + 1] != XR_GRID_MOUNTAIN)
			bits |= 1u << XR_GRID_RIGHT;
		if (y + 1 < h && t[c + w] != XR_GRID_MOUNTAIN)
			bits |= 1u << XR_GRID_DOWN;
		if (x > 0 && t[c - 1] != XR_GRID_MOUNTAIN)
			bits |= 1u << XR_GRID_LEFT;
		g->nbr[c] = bits;
		if (t[c] == XR_GRID_CITY)
			g->cities[g->n_cities++] = (uint16_t)c;
		if (o >= 0) {
			g->land[o]++;
			vis_add(g, (uint32_t)o, c, +1);
			if (t[c] == XR_GRID_GENERAL && g->general[o] < 0) {
				g->general[o] = (int32_t)c;
				g->alive++;
			}
		}
	}
	g->over = false;
}

void xr__grid_clear(struct xr_grid *g)
{
	memset(g->terrain, XR_GRID_PLAIN, g->n);
	memset(g->owner, -1, g->n);
	memset(g->armies, 0, (size_t)g->n * sizeof(g->armies[0]));
	g->turn = 0;
	xr__grid_sync(g);
}

void xr__grid_set(struct xr_grid *g, uint32_t y, uint32_t x, enum xr_grid_terrain t,
		  int owner, uint32_t armies)
{
	uint32_t c = y * g->w + x;

	g->terrain[c] = (uint8_t)t;
	g->owner[c] = (int8_t)owner;
	g->armies[c] = armies;
}

/* ---- map generation */

/* Labels the 4-connected components of non-mountain cells; returns the
 * largest one's size and leaves its cells in list[0..size). lab[] is scratch
 * (0 = unvisited). */
static uint32_t largest_component(struct xr_grid *g, uint16_t *list, uint16_t *lab)
{
	static const int dy[4] = {-1, 0, 1, 0}, dx[4] = {0, 1, 0, -1};
	uint32_t n = g->n, w = g->w, h = g->h;
	uint32_t best = 0, best_label = 0, label = 0;

	memset(lab, 0, (size_t)n * sizeof(lab[0]));
	/* BFS each component with list[] as the queue; only the size and label
	 * of the best are kept, and its cells collected again at the end. */
	for (uint32_t s = 0; s < n; s++) {
		uint32_t head = 0, tail = 0;

		if (lab[s] || g->terrain[s] == XR_GRID_MOUNTAIN)
			continue;
		label++;
		lab[s] = (uint16_t)label;
		list[tail++] = (uint16_t)s;
		while (head < tail) {
			uint32_t c = list[head++], y = c / w, x = c % w;

			for (int d = 0; d < 4; d++) {
				int yy = (int)y + dy[d], xx = (int)x + dx[d];
				uint32_t m;

				if (yy < 0 || xx < 0 || yy >= (int)h || xx >= (int)w)
					continue;
				m = (uint32_t)yy * w + (uint32_t)xx;
				if (lab[m] || g->terrain[m] == XR_GRID_MOUNTAIN)
					continue;
				lab[m] = (uint16_t)label;
				list[tail++] = (uint16_t)m;
			}
		}
		if (tail > best) {
			best = tail;
			best_label = label;
		}
	}
	for (uint32_t c = 0, k = 0; c < n && best; c++)
		if (lab[c] == best_label)
			list[k++] = (uint16_t)c;
	return best;
}

static uint32_t manhattan(const struct xr_grid *g, uint32_t a, uint32_t b)
{
	uint32_t ay = a / g->w, ax = a % g->w, by = b / g->w, bx = b % g->w;

	return (ay > by ? ay - by : by - ay) + (ax > bx ? ax - bx : bx - ax);
}

/* Picks players cells of list[0..size) pairwise at least dmin apart (in
 * Manhattan distance), greedily over a random order; moves them to the
 * front of list. Returns whether it found enough. */
static bool place_generals(struct xr_grid *g, uint16_t *list, uint32_t size, uint32_t dmin,
			   uint64_t *rng)
{
	uint32_t got = 0;

	for (uint32_t i = 0; i < size && got < g->players; i++) {
		/* Fisher-Yates, one position at a time: list[i] is a uniform
		 * pick from list[i..size). */
		uint32_t j = i + sm_below(rng, size - i);
		uint16_t c = list[j];
		bool ok = true;

		list[j] = list[i];
		list[i] = c;
		for (uint32_t k = 0; k < got && ok; k++)
			ok = manhattan(g, list[k], c) >= dmin;
		if (ok) {
			list[i] = list[got];
			list[got++] = c;
		}
	}
	return got == g->players;
}

/*
 * A new map from seed: mountains with probability mountain_frac per cell;
 * generals in the largest mountain-free component, as far apart as can be
 * found (so every general can reach every other); cities on other cells of
 * that component with 40..50 neutral armies. A draw whose largest component
 * is too small is redrawn; after 32 draws mountains are dropped, which
 * always works since create() demands n >= 2 * players.
 */
static void generate(struct xr_grid *g, uint64_t seed)
{
	uint64_t rng = seed;
	uint16_t *list = g->scratch, *lab = g->scratch + g->n;
	uint32_t n = g->n, size;
	uint32_t dstart = (g->h + g->w) / (g->players <= 2 ? 2 : g->players <= 4 ? 3 : 4);

	for (uint32_t attempt = 0;; attempt++) {
		double frac = attempt < 32 ? g->mountain_frac : 0.0;
		uint64_t thr = (uint64_t)(frac * 4294967296.0);
		bool placed = false;

		memset(g->owner, -1, n);
		memset(g->armies, 0, (size_t)n * sizeof(g->armies[0]));
		for (uint32_t c = 0; c < n; c++)
			g->terrain[c] = (sm_next(&rng) >> 32) < thr ? XR_GRID_MOUNTAIN : XR_GRID_PLAIN;
		size = largest_component(g, list, lab);
		if (size < 2 * g->players && frac > 0)
			continue;
		for (uint32_t d = dstart > 1 ? dstart : 1; d >= 1 && !placed; d--)
			for (int tries = 0; tries < 4 && !placed; tries++)
				placed = place_generals(g, list, size, d, &rng);
		if (placed)
			break;
	}
	for (uint32_t p = 0; p < g->players; p++) {
		g->terrain[list[p]] = XR_GRID_GENERAL;
		g->owner[list[p]] = (int8_t)p;
		g->armies[list[p]] = 1;
	}
	for (uint32_t k = 0, i = g->players; k < g->cities_cfg && i < size; k++, i++) {
		uint32_t j = i + sm_below(&rng, size - i);
		uint16_t c = list[j];

		list[j] = list[i];
		list[i] = c;
		g->terrain[c] = XR_GRID_CITY;
		g->armies[c] = XR_GRID_CITY_MIN + sm_below(&rng, XR_GRID_CITY_MAX - XR_GRID_CITY_MIN + 1);
	}
	g->turn = 0;
	xr__grid_sync(g);
}

/* ---- params: "mountains=F,cities=N,shaping=F" */

static int parse_params(struct xr_grid *g, const char *params)
{
	const char *s = params;

	while (s && *s) {
		const char *eq = strchr(s, '='), *end = strchr(s, ',');
		size_t klen;
		char *stop;
		double v;

		if (!end)
			end = s + strlen(s);
		if (!eq || eq > end)
			return -EINVAL;
		klen = (size_t)(eq - s);
		errno = 0;
		v = strtod(eq + 1, &stop);
		if (stop != end || errno || !isfinite(v))
			return -EINVAL;
		if (klen == 9 && !memcmp(s, "mountains", 9)) {
			if (v < 0 || v > 0.9)
				return -EINVAL;
			g->mountain_frac = v;
		} else if (klen == 6 && !memcmp(s, "cities", 6)) {
			if (v < 0 || v > g->n || v != (double)(uint32_t)v)
				return -EINVAL;
			g->cities_cfg = (uint32_t)v;
		} else if (klen == 7 && !memcmp(s, "shaping", 7)) {
			g->shaping = (float)v;
		} else {
			return -EINVAL;
		}
		if (*end && !end[1])
			return -EINVAL; /* a trailing comma */
		s = *end ? end + 1 : end;
	}
	return 0;
}

/* ---- the vtable */

static int grid_create(const xr_game_config *cfg, void **out)
{
	uint32_t h = cfg->board_h ? cfg->board_h : XR_GRID_DEFAULT_SIDE;
	uint32_t w = cfg->board_w ? cfg->board_w : XR_GRID_DEFAULT_SIDE;
	uint32_t p = cfg->players, n;
	struct xr_grid *g;
	size_t off, total;
	char *base;
	int rc;

	if (p < 2 || p > XR_GAME_MAX_PLAYERS || h < 2 || w < 2 || h > XR_GRID_MAX_SIDE ||
	    w > XR_GRID_MAX_SIDE || h * w < 2 * p)
		return -EINVAL;
	n = h * w;
	/* One block: the struct, then arrays from widest to narrowest
	 * element, so each stays aligned without padding. */
	off = (sizeof(*g) + 7) & ~(size_t)7;
	total = off + (size_t)n * (4 + 2 + 4 + 1 + 1 + 1 + p);
	base = calloc(1, total);
	if (!base)
		return -ENOMEM;
	g = (struct xr_grid *)(void *)base;
	g->h = h;
	g->w = w;
	g->n = n;
	g->players = p;
	g->turn_limit = cfg->turn_limit ? cfg->turn_limit : XR_GRID_DEFAULT_TURN_LIMIT;
	g->mountain_frac = XR_GRID_DEFAULT_MOUNTAINS;
	g->cities_cfg = n / 50 ? n / 50 : 1;
	g->armies = (uint32_t *)(void *)(base + off);
	off += (size_t)n * 4;
	g->cities = (uint16_t *)(void *)(base + off);
	off += (size_t)n * 2;
	g->scratch = (uint16_t *)(void *)(base + off);
	off += (size_t)n * 4;
	g->owner = (int8_t *)(base + off);
	off += n;
	g->terrain = (uint8_t *)(base + off);
	off += n;
	g->nbr = (uint8_t *)(base + off);
	off += n;
	g->vis = (uint8_t *)(base + off);
	rc = parse_params(g, cfg->params);
	if (rc < 0) {
		free(base);
		return rc;
	}
	generate(g, cfg->seed);
	*out = g;
	return 0;
}

static void grid_destroy(void *game)
{
	free(game);
}

static void grid_sizes(const void *game, xr_game_sizes *out)
{
	const struct xr_grid *g = game;

	out->obs_channels = XR_GRID_CHANNELS;
	out->obs_h = g->h;
	out->obs_w = g->w;
	out->n_actions = g->n * 4 + 1;
	out->players = g->players;
}

static int grid_reset(void *game, uint64_t seed)
{
	generate(game, seed);
	return 0;
}

/* Player q's general fell to p: q is out, p takes q's land with its armies
 * halved (rounding up), the general becomes p's city. */
static void eliminate(struct xr_grid *g, uint32_t q, uint32_t p, uint32_t gc)
{
	uint32_t n = g->n;
	uint8_t *vp = g->vis + (size_t)p * n, *vq = g->vis + (size_t)q * n;

	g->terrain[gc] = XR_GRID_CITY;
	g->cities[g->n_cities++] = (uint16_t)gc;
	g->general[q] = -1;
	g->alive--;
	for (uint32_t c = 0; c < n; c++) {
		if (g->owner[c] == (int8_t)q) {
			g->owner[c] = (int8_t)p;
			g->armies[c] = (g->armies[c] + 1) / 2;
		}
		vp[c] = (uint8_t)(vp[c] + vq[c]);
		vq[c] = 0;
	}
	g->land[p] += g->land[q];
	g->land[q] = 0;
}

static int grid_step(void *game, const int32_t *actions, float *rewards, uint32_t *flags)
{
	static const int dy[4] = {-1, 0, 1, 0}, dx[4] = {0, 1, 0, -1};
	struct xr_grid *g = game;
	uint32_t P = g->players, n = g->n;
	uint32_t land0[XR_GAME_MAX_PLAYERS];
	uint32_t p;

	if (g->over)
		return -EINVAL;
	for (p = 0; p < P; p++) {
		rewards[p] = 0.0f;
		flags[p] = g->general[p] < 0 ? XR_GAME_OUT : 0;
		land0[p] = g->land[p];
	}

	/* Moves, one player after another, starting with player turn % P. A
	 * move is checked again against the board as it is now: an earlier
	 * move this turn may have taken its source or its armies. */
	p = g->turn % P;
	for (uint32_t k = 0; k < P; k++, p = p + 1 == P ? 0 : p + 1) {
		int32_t a = actions[p];
		uint32_t src, dst, d, move;

		if (g->general[p] < 0 || a < 0 || (uint32_t)a >= n * 4)
			continue;
		src = (uint32_t)a >> 2;
		d = (uint32_t)a & 3;
		if (g->owner[src] != (int8_t)p || g->armies[src] < 2 || !((g->nbr[src] >> d) & 1))
			continue;
		dst = (uint32_t)((int)src + dy[d] * (int)g->w + dx[d]);
		move = g->armies[src] - 1;
		g->armies[src] = 1;
		if (g->owner[dst] == (int8_t)p) {
			g->armies[dst] += move;
		} else if (move > g->armies[dst]) {
			int q = g->owner[dst];

			g->armies[dst] = move - g->armies[dst];
			set_owner(g, dst, (int)p);
			if (g->terrain[dst] == XR_GRID_GENERAL) {
				eliminate(g, (uint32_t)q, p, dst);
				rewards[q] = -1.0f;
				flags[q] = XR_GAME_DONE;
			}
		} else {
			g->armies[dst] -= move;
		}
	}

	/* Growth. */
	g->turn++;
	for (p = 0; p < P; p++)
		if (g->general[p] >= 0)
			g->armies[g->general[p]]++;
	for (uint32_t k = 0; k < g->n_cities; k++)
		if (g->owner[g->cities[k]] >= 0)
			g->armies[g->cities[k]]++;
	if (g->turn % XR_GRID_GROWTH_PERIOD == 0)
		for (uint32_t c = 0; c < n; c++)
			g->armies[c] += g->owner[c] >= 0;

	if (g->shaping != 0.0f)
		for (p = 0; p < P; p++)
			if (!(flags[p] & XR_GAME_OUT))
				rewards[p] += g->shaping * ((float)g->land[p] - (float)land0[p]);

	if (g->alive == 1) {
		for (p = 0; p < P; p++)
			if (g->general[p] >= 0) {
				rewards[p] += 1.0f;
				flags[p] = XR_GAME_DONE;
			}
		g->over = true;
		return 1;
	}
	if (g->turn >= g->turn_limit) {
		for (p = 0; p < P; p++)
			if (g->general[p] >= 0)
				flags[p] = XR_GAME_TRUNCATED;
		g->over = true;
		return 1;
	}
	return 0;
}

/*
 * Observation. Channel c of cell i goes to out[c * n + i]. Per cell, with
 * o = owner, v = visible to p, t = terrain, a = armies:
 *   0 own armies      o == p ? a : 0
 *   1 enemy armies    v && o >= 0 && o != p ? a : 0
 *   2 neutral armies  v && o < 0 ? a : 0
 *   3 own land        o == p
 *   4 enemy land      v && o >= 0 && o != p
 *   5 obstacle        t == mountain || (!v && t == city)
 *   6 city            v && t == city
 *   7 general         v && t == general
 *   8 visible         v
 * u8 clamps a at 255. The scalar loop is the definition. With SSE2 (every
 * x86-64), blocks of 16 cells compute the same selects as byte-lane masks,
 * several times faster than the scalar loop (which GCC does not vectorise
 * at -O2: the loop count is not known); the scalar loop does the rest.
 */
#define GRID_OBSERVE_SCALAR(T, CLAMP, from)                                            \
	do {                                                                           \
		/* Locals, so stores through out (a char type may alias     \
		 * anything) do not force the game's pointers to be reloaded. */ \
		const int8_t *restrict own_ = g->owner;                                \
		const uint32_t *restrict arm_ = g->armies;                             \
		const uint8_t *restrict ter_ = g->terrain;                             \
		const uint8_t *restrict vis_ = g->vis + (size_t)p * n;                 \
		T *restrict out_ = out;                                                \
		for (uint32_t j_ = (from); j_ < n; j_++) {                             \
			int o = own_[j_];                                              \
			uint32_t a = arm_[j_];                                         \
			unsigned t = ter_[j_];                                         \
			int v = vis_[j_] != 0;                                         \
			int mine = o == (int)p;                                        \
			/* & and * rather than && and ?: -- no branches to    \
			 * mispredict on a random board. */                       \
			int enemy = v & (o >= 0) & !mine;                              \
			int neutral = v & (o < 0);                                     \
			T ca = CLAMP(a);                                               \
			out_[0 * (size_t)n + j_] = (T)(mine * ca);                     \
			out_[1 * (size_t)n + j_] = (T)(enemy * ca);                    \
			out_[2 * (size_t)n + j_] = (T)(neutral * ca);                  \
			out_[3 * (size_t)n + j_] = (T)mine;                            \
			out_[4 * (size_t)n + j_] = (T)enemy;                           \
			out_[5 * (size_t)n + j_] = (T)((t == XR_GRID_MOUNTAIN) |       \
						      (!v & (t == XR_GRID_CITY)));     \
			out_[6 * (size_t)n + j_] = (T)(v & (t == XR_GRID_CITY));       \
			out_[7 * (size_t)n + j_] = (T)(v & (t == XR_GRID_GENERAL));    \
			out_[8 * (size_t)n + j_] = (T)v;                               \
		}                                                                      \
	} while (0)

#define CLAMP_U8(a) ((uint8_t)((a) > 255 ? 255 : (a)))
#define CLAMP_F32(a) ((float)(a))

#if defined(__SSE2__)
/* The lane masks (0xff / 0x00) of every channel for cells i..i+15, as
 * locals (an array of them would be kept on the stack at -O2). */
#define GRID_LANES(i)                                                                  \
	const __m128i zero_ = _mm_setzero_si128(), ones_ = _mm_set1_epi8(-1);           \
	__m128i own_ = _mm_loadu_si128((const void *)(g->owner + (i)));                \
	__m128i vis_ = _mm_loadu_si128((const void *)(vis_row + (i)));                 \
	__m128i ter_ = _mm_loadu_si128((const void *)(g->terrain + (i)));              \
	__m128i fog_ = _mm_cmpeq_epi8(vis_, zero_);                                    \
	__m128i city_ = _mm_cmpeq_epi8(ter_, _mm_set1_epi8(XR_GRID_CITY));             \
	__m128i neg_ = _mm_cmplt_epi8(own_, zero_);                                    \
	__m128i m_mine = _mm_cmpeq_epi8(own_, _mm_set1_epi8((char)p));                 \
	__m128i m_enemy = _mm_andnot_si128(_mm_or_si128(_mm_or_si128(neg_, m_mine), fog_), ones_); \
	__m128i m_neutral = _mm_andnot_si128(fog_, neg_);                              \
	__m128i m_obstacle = _mm_or_si128(                                             \
		_mm_cmpeq_epi8(ter_, _mm_set1_epi8(XR_GRID_MOUNTAIN)), _mm_and_si128(city_, fog_)); \
	__m128i m_city = _mm_andnot_si128(fog_, city_);                                \
	__m128i m_general = _mm_andnot_si128(fog_, _mm_cmpeq_epi8(ter_, _mm_set1_epi8(XR_GRID_GENERAL))); \
	__m128i m_visible = _mm_andnot_si128(fog_, ones_);                             \
	__m128i arm0 = _mm_loadu_si128((const void *)(g->armies + (i)));               \
	__m128i arm1 = _mm_loadu_si128((const void *)(g->armies + (i) + 4));           \
	__m128i arm2 = _mm_loadu_si128((const void *)(g->armies + (i) + 8));           \
	__m128i arm3 = _mm_loadu_si128((const void *)(g->armies + (i) + 12))

/* min(a, 255) for u32 lanes: SSE2 compares signed only, so both sides are
 * offset by 2^31. */
static inline __m128i clamp255(__m128i a)
{
	const __m128i bias = _mm_set1_epi32(INT32_MIN);
	__m128i big = _mm_cmpgt_epi32(_mm_xor_si128(a, bias), _mm_set1_epi32(INT32_MIN + 255));

	return _mm_or_si128(_mm_and_si128(big, _mm_set1_epi32(255)), _mm_andnot_si128(big, a));
}

/* u32 lanes to float, over the whole u32 range (SSE2 converts signed only):
 * hi * 65536 + lo. */
static inline __m128i u32_to_f32(__m128i a)
{
	__m128 hi = _mm_cvtepi32_ps(_mm_srli_epi32(a, 16));
	__m128 lo = _mm_cvtepi32_ps(_mm_and_si128(a, _mm_set1_epi32(0xffff)));

	return _mm_castps_si128(_mm_add_ps(_mm_mul_ps(hi, _mm_set1_ps(65536.0f)), lo));
}

static inline void put_u8(uint8_t *dst, __m128i m, __m128i v)
{
	_mm_storeu_si128((void *)dst, _mm_and_si128(m, v));
}

/* 16 floats: v0..v3 (or 1.0f) where the byte mask m is set, 0 elsewhere. */
static inline void put_f32(float *dst, __m128i m, __m128i v0, __m128i v1, __m128i v2, __m128i v3)
{
	__m128i lo = _mm_unpacklo_epi8(m, m), hi = _mm_unpackhi_epi8(m, m);

	_mm_storeu_si128((void *)dst, _mm_and_si128(_mm_unpacklo_epi16(lo, lo), v0));
	_mm_storeu_si128((void *)(dst + 4), _mm_and_si128(_mm_unpackhi_epi16(lo, lo), v1));
	_mm_storeu_si128((void *)(dst + 8), _mm_and_si128(_mm_unpacklo_epi16(hi, hi), v2));
	_mm_storeu_si128((void *)(dst + 12), _mm_and_si128(_mm_unpackhi_epi16(hi, hi), v3));
}

static void observe_u8(const struct xr_grid *g, uint32_t p, uint8_t *out)
{
	const __m128i one = _mm_set1_epi8(1);
	const uint8_t *vis_row = g->vis + (size_t)p * g->n;
	uint32_t n = g->n, i = 0;

	for (; i + 16 <= n; i += 16) {
		GRID_LANES(i);
		__m128i a8 = _mm_packus_epi16(_mm_packs_epi32(clamp255(arm0), clamp255(arm1)),
					      _mm_packs_epi32(clamp255(arm2), clamp255(arm3)));
		uint8_t *o = out + i;

		put_u8(o, m_mine, a8);
		put_u8(o + n, m_enemy, a8);
		put_u8(o + 2 * (size_t)n, m_neutral, a8);
		put_u8(o + 3 * (size_t)n, m_mine, one);
		put_u8(o + 4 * (size_t)n, m_enemy, one);
		put_u8(o + 5 * (size_t)n, m_obstacle, one);
		put_u8(o + 6 * (size_t)n, m_city, one);
		put_u8(o + 7 * (size_t)n, m_general, one);
		put_u8(o + 8 * (size_t)n, m_visible, one);
	}
	GRID_OBSERVE_SCALAR(uint8_t, CLAMP_U8, i);
}

static void observe_f32(const struct xr_grid *g, uint32_t p, float *out)
{
	const __m128i one = _mm_castps_si128(_mm_set1_ps(1.0f));
	const uint8_t *vis_row = g->vis + (size_t)p * g->n;
	uint32_t n = g->n, i = 0;

	for (; i + 16 <= n; i += 16) {
		GRID_LANES(i);
		__m128i f0 = u32_to_f32(arm0), f1 = u32_to_f32(arm1);
		__m128i f2 = u32_to_f32(arm2), f3 = u32_to_f32(arm3);
		float *o = out + i;

		put_f32(o, m_mine, f0, f1, f2, f3);
		put_f32(o + n, m_enemy, f0, f1, f2, f3);
		put_f32(o + 2 * (size_t)n, m_neutral, f0, f1, f2, f3);
		put_f32(o + 3 * (size_t)n, m_mine, one, one, one, one);
		put_f32(o + 4 * (size_t)n, m_enemy, one, one, one, one);
		put_f32(o + 5 * (size_t)n, m_obstacle, one, one, one, one);
		put_f32(o + 6 * (size_t)n, m_city, one, one, one, one);
		put_f32(o + 7 * (size_t)n, m_general, one, one, one, one);
		put_f32(o + 8 * (size_t)n, m_visible, one, one, one, one);
	}
	GRID_OBSERVE_SCALAR(float, CLAMP_F32, i);
}
#else
static void observe_u8(const struct xr_grid *g, uint32_t p, uint8_t *out)
{
	uint32_t n = g->n;

	GRID_OBSERVE_SCALAR(uint8_t, CLAMP_U8, 0);
}

static void observe_f32(const struct xr_grid *g, uint32_t p, float *out)
{
	uint32_t n = g->n;

	GRID_OBSERVE_SCALAR(float, CLAMP_F32, 0);
}
#endif

static int grid_observe(void *game, uint32_t player, xr_dtype dtype, void *out)
{
	const struct xr_grid *g = game;

	if (player >= g->players)
		return -EINVAL;
	if (dtype == XR_DTYPE_U8)
		observe_u8(g, player, out);
	else if (dtype == XR_DTYPE_F32)
		observe_f32(g, player, out);
	else
		return -EINVAL;
	return 0;
}

/*
 * Legal moves of player p: from each cell p owns with at least 2 armies,
 * in each direction nbr[] allows (on the board, not a mountain); plus the
 * no-op. With SSE2, 16 cells at a time: their 4-bit masks are spread to
 * 4 bytes each by unpacking, then tested against 1, 2, 4, 8.
 */
static int grid_legal_actions(void *game, uint32_t player, uint8_t *mask)
{
	/* The four mask bytes of a cell for each neighbour mask. */
	static const uint8_t pat[16][4] = {
		{0, 0, 0, 0}, {1, 0, 0, 0}, {0, 1, 0, 0}, {1, 1, 0, 0},
		{0, 0, 1, 0}, {1, 0, 1, 0}, {0, 1, 1, 0}, {1, 1, 1, 0},
		{0, 0, 0, 1}, {1, 0, 0, 1}, {0, 1, 0, 1}, {1, 1, 0, 1},
		{0, 0, 1, 1}, {1, 0, 1, 1}, {0, 1, 1, 1}, {1, 1, 1, 1},
	};
	const struct xr_grid *g = game;
	uint32_t n = g->n, c = 0;
	int8_t me = (int8_t)player;

	if (player >= g->players)
		return -EINVAL;
#if defined(__SSE2__)
	{
		const __m128i zero = _mm_setzero_si128(), one = _mm_set1_epi8(1);
		const __m128i dirs = _mm_set1_epi32(0x08040201); /* bytes 1, 2, 4, 8 */
		const __m128i mev = _mm_set1_epi8(me);

		for (; c + 16 <= n; c += 16) {
			const uint32_t *arm = g->armies + c;
			uint8_t *out = mask + (size_t)c * 4;
			/* Lanes with fewer than 2 armies: a >> 1 == 0. */
#define FEW(k) _mm_cmpeq_epi32(_mm_srli_epi32(_mm_loadu_si128((const void *)(arm + 4 * (k))), 1), zero)
			__m128i few = _mm_packs_epi16(_mm_packs_epi32(FEW(0), FEW(1)),
						      _mm_packs_epi32(FEW(2), FEW(3)));
#undef FEW
			__m128i mine = _mm_cmpeq_epi8(_mm_loadu_si128((const void *)(g->owner + c)), mev);
			__m128i bits = _mm_and_si128(_mm_andnot_si128(few, mine),
						     _mm_loadu_si128((const void *)(g->nbr + c)));
			__m128i lo = _mm_unpacklo_epi8(bits, bits), hi = _mm_unpackhi_epi8(bits, bits);
#define PUT(k, e) _mm_storeu_si128((void *)(out + 16 * (k)), \
				   _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128((e), dirs), dirs), one))
			PUT(0, _mm_unpacklo_epi16(lo, lo));
			PUT(1, _mm_unpackhi_epi16(lo, lo));
			PUT(2, _mm_unpacklo_epi16(hi, hi));
			PUT(3, _mm_unpackhi_epi16(hi, hi));
#undef PUT
		}
	}
#endif
	for (; c < n; c++) {
		unsigned bits = g->owner[c] == me && g->armies[c] >= 2 ? g->nbr[c] : 0;

		memcpy(mask + (size_t)c * 4, pat[bits], 4);
	}
	mask[(size_t)n * 4] = 1;
	return 0;
}

static const xr_game_vtable grid_vtable = {
	.abi = XR_GAME_ABI_VERSION,
	.name = "grid",
	.create = grid_create,
	.destroy = grid_destroy,
	.sizes = grid_sizes,
	.reset = grid_reset,
	.step = grid_step,
	.observe = grid_observe,
	.legal_actions = grid_legal_actions,
};

const xr_game_vtable *xr_game_builtin_grid(void)
{
	return &grid_vtable;
}
