/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "record/filter.h"

int xr__filter_compile(struct xr_filt *out, const xr_filter *f, const xr_exp_shape *shape)
{
	memset(out, 0, sizeof(*out));
	out->all = true;
	out->sample_below = UINT64_MAX;
	if (!f)
		return 0;
	if (f->n_games > XR_FILTER_RANGES_MAX || f->n_players > XR_FILTER_RANGES_MAX ||
	    (f->n_games && !f->games) || (f->n_players && !f->players) ||
	    f->terminal > XR_TERMINAL_NONE || !(f->sample_rate >= 0 && f->sample_rate <= 1) ||
	    (f->has_reward_range && !(f->reward_min <= f->reward_max)))
		return -EINVAL;
	for (uint32_t i = 0; i < f->n_games; i++)
		if (f->games[i].lo > f->games[i].hi)
			return -EINVAL;
	for (uint32_t i = 0; i < f->n_players; i++)
		if (f->players[i].lo > f->players[i].hi)
			return -EINVAL;
	out->n_games = f->n_games;
	out->n_players = f->n_players;
	if (f->n_games)
		memcpy(out->games, f->games, f->n_games * sizeof(*f->games));
	if (f->n_players)
		memcpy(out->players, f->players, f->n_players * sizeof(*f->players));
	out->min_turn = f->min_turn;
	out->terminal = f->terminal;
	out->has_reward = f->has_reward_range != 0;
	out->reward_min = f->reward_min;
	out->reward_max = f->reward_max;
	if (f->sample_rate > 0 && f->sample_rate < 1)
		out->sample_below = (uint64_t)ldexp(f->sample_rate, 64);
	out->sample_seed = f->sample_seed;
	out->all = !out->n_games && !out->n_players && !out->min_turn && !out->terminal &&
		   !out->has_reward && out->sample_below == UINT64_MAX;
	if (out->all)
		return 0;
	if (!shape)
		return -EINVAL;

	xr_exp_template t;
	int rc = xr_exp_template_init(&t, shape);
	if (rc < 0)
		return -EINVAL;
	out->size = t.size;
	out->off_seq = t.off_seq;
	out->off_game_id = t.off_game_id;
	out->off_player_id = t.off_player_id;
	out->off_turn = t.off_turn;
	out->off_reward = t.off_reward;
	out->off_done = t.off_done;
	out->off_truncated = t.off_truncated;
	return 0;
}

static bool in_ranges(const xr_id_range *r, uint32_t n, uint32_t v)
{
	for (uint32_t i = 0; i < n; i++)
		if (v >= r[i].lo && v <= r[i].hi)
			return true;
	return false;
}

/* splitmix64's finaliser: every input bit moves every output bit. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

bool xr__filter_pass_slow(const struct xr_filt *f, const uint8_t *rec, uint32_t len)
{
	xr_exp_fields x;

	if (f->all)
		return true;
	if (len == f->size) {
		/* The engine's records: every field at the template's offset. */
		memcpy(&x.seq, rec + f->off_seq, 8);
		x.game_id = get32(rec + f->off_game_id);
		x.player_id = get32(rec + f->off_player_id);
		x.turn = get32(rec + f->off_turn);
		memcpy(&x.reward, rec + f->off_reward, 4);
		x.done = rec[f->off_done] != 0;
		x.truncated = rec[f->off_truncated] != 0;
	} else {
		xr_exp_view v;
		if (xr_exp_view_init(&v, rec, len) < 0)
			return false;
		x = v.f;
	}
	if (f->n_games && !in_ranges(f->games, f->n_games, x.game_id))
		return false;
	if (f->n_players && !in_ranges(f->players, f->n_players, x.player_id))
		return false;
	if (x.turn < f->min_turn)
		return false;
	if (f->terminal == XR_TERMINAL_ONLY && !(x.done || x.truncated))
		return false;
	if (f->terminal == XR_TERMINAL_NONE && (x.done || x.truncated))
		return false;
	if (f->has_reward && !(x.reward >= f->reward_min && x.reward <= f->reward_max))
		return false;
	if (f->sample_below != UINT64_MAX) {
		uint64_t h = mix(x.seq ^ mix(((uint64_t)x.game_id << 32 | x.player_id) ^
					     mix((uint64_t)x.turn ^ mix(f->sample_seed))));
		if (h >= f->sample_below)
			return false;
	}
	return true;
}
