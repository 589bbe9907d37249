/* SPDX-License-Identifier: MIT */
/*
 * An example game plugin: the coin game. The smallest complete game behind
 * xring/game.h, meant to be copied as the skeleton of a real one.
 *
 * Rules. A 1 x 1 board holds a pile of coins. Every step each player either
 * passes (action 0, the no-op) or takes a coin (action 1, legal while the
 * pile is not empty), for a reward of +1. The pile starts with
 * `players * turns` coins, so it never runs out before the end. The episode
 * ends (XR_GAME_DONE for everyone) after `turns` steps (params "turns=N",
 * default 10), or is truncated by the config's turn limit if that comes
 * first. The observation is one channel: how many coins the player holds.
 * The seed picks nothing; the game is deterministic anyway.
 *
 * Build: cc -shared -fPIC -I<xring>/include coin_game.c -o libxr_coin_game.so
 * Run:   xring engine --game ./libxr_coin_game.so ...
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xring/game.h"

struct coin {
	uint32_t players, turns, turn_limit, turn;
	uint32_t pile;
	uint32_t held[XR_GAME_MAX_PLAYERS];
};

static int coin_reset(void *game, uint64_t seed)
{
	struct coin *c = game;

	(void)seed;
	c->turn = 0;
	c->pile = c->players * c->turns;
	memset(c->held, 0, sizeof(c->held));
	return 0;
}

static int coin_create(const xr_game_config *cfg, void **out)
{
	struct coin *c;
	unsigned long turns = 10;

	if (cfg->players < 1 || cfg->players > XR_GAME_MAX_PLAYERS)
		return -EINVAL;
	if ((cfg->board_h && cfg->board_h != 1) || (cfg->board_w && cfg->board_w != 1))
		return -EINVAL;
	if (cfg->params && *cfg->params) {
		char *end;

		if (strncmp(cfg->params, "turns=", 6) != 0)
			return -EINVAL;
		errno = 0;
		turns = strtoul(cfg->params + 6, &end, 10);
		if (*end || errno || turns < 1 || turns > 1000000)
			return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->players = cfg->players;
	c->turns = (uint32_t)turns;
	c->turn_limit = cfg->turn_limit;
	coin_reset(c, cfg->seed);
	*out = c;
	return 0;
}

static void coin_destroy(void *game)
{
	free(game);
}

static void coin_sizes(const void *game, xr_game_sizes *out)
{
	const struct coin *c = game;

	out->obs_channels = 1;
	out->obs_h = 1;
	out->obs_w = 1;
	out->n_actions = 2;
	out->players = c->players;
}

static int coin_step(void *game, const int32_t *actions, float *rewards, uint32_t *flags)
{
	struct coin *c = game;
	uint32_t end = 0;

	if (c->turn >= c->turns || (c->turn_limit && c->turn >= c->turn_limit))
		return -EINVAL;
	for (uint32_t p = 0; p < c->players; p++) {
		/* Anything but a legal "take" is the no-op. */
		int take = actions[p] == 1 && c->pile > 0;

		c->pile -= (uint32_t)take;
		c->held[p] += (uint32_t)take;
		rewards[p] = (float)take;
	}
	c->turn++;
	if (c->turn >= c->turns)
		end = XR_GAME_DONE;
	else if (c->turn_limit && c->turn >= c->turn_limit)
		end = XR_GAME_TRUNCATED;
	for (uint32_t p = 0; p < c->players; p++)
		flags[p] = end;
	return end ? 1 : 0;
}

static int coin_observe(void *game, uint32_t player, xr_dtype dtype, void *out)
{
	const struct coin *c = game;

	if (player >= c->players)
		return -EINVAL;
	if (dtype == XR_DTYPE_U8)
		*(uint8_t *)out = (uint8_t)(c->held[player] > 255 ? 255 : c->held[player]);
	else if (dtype == XR_DTYPE_F32)
		*(float *)out = (float)c->held[player];
	else
		return -EINVAL;
	return 0;
}

static int coin_legal_actions(void *game, uint32_t player, uint8_t *mask)
{
	const struct coin *c = game;

	if (player >= c->players)
		return -EINVAL;
	mask[0] = 1;
	mask[1] = c->pile > 0;
	return 0;
}

static const xr_game_vtable coin_vtable = {
	.abi = XR_GAME_ABI_VERSION,
	.name = "coin",
	.create = coin_create,
	.destroy = coin_destroy,
	.sizes = coin_sizes,
	.reset = coin_reset,
	.step = coin_step,
	.observe = coin_observe,
	.legal_actions = coin_legal_actions,
};

/* The one symbol xr_game_load() looks for (declared in xring/game.h, which
 * also gives it default visibility). */
const xr_game_vtable *xr_game_plugin(void)
{
	return &coin_vtable;
}
