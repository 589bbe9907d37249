/* SPDX-License-Identifier: MIT */
#include "transitions.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "record/transition.h"

/* A seat's last record: its turn, whether it ended its episode, and its
 * observation and mask, copied. */
struct seat {
	uint64_t key;      /* game_id << 8 | player_id, + 1 (0: empty) */
	uint32_t turn;
	bool terminal;
	uint8_t *data;     /* obs_bytes, then mask_len */
};

struct xr_trans {
	uint64_t obs_bytes;
	uint32_t mask_len;
	xr_item_layout l;
	uint32_t item_size;
	struct seat *tab;  /* open addressing, a power of two */
	uint32_t cap, n;
};

int xr__trans_create(const xr_exp_shape *sh, struct xr_trans **out)
{
	struct xr_trans *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	xr__trans_layout(sh, &t->l);
	t->obs_bytes = t->l.obs_bytes;
	t->mask_len = t->l.mask_len;
	t->item_size = xr__trans_item_size(sh);
	t->cap = 1024;
	t->tab = calloc(t->cap, sizeof(*t->tab));
	if (!t->tab) {
		free(t);
		return -ENOMEM;
	}
	*out = t;
	return 0;
}

void xr__trans_destroy(struct xr_trans *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->cap; i++)
		free(t->tab[i].data);
	free(t->tab);
	free(t);
}

void xr__trans_forget(struct xr_trans *t)
{
	/* As after a terminal record: the seat's next record starts anew. */
	for (uint32_t i = 0; t && i < t->cap; i++)
		t->tab[i].terminal = true;
}

static uint32_t slot_of(const struct seat *tab, uint32_t cap, uint64_t key)
{
	uint32_t i = (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);

	while (tab[i].key && tab[i].key != key)
		i = (i + 1) & (cap - 1);
	return i;
}

/* Doubles the table at three quarters full. */
static int grow(struct xr_trans *t)
{
	uint32_t cap = t->cap * 2;
	struct seat *tab = calloc(cap, sizeof(*tab));

	if (!tab)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->cap; i++)
		if (t->tab[i].key)
			tab[slot_of(tab, cap, t->tab[i].key)] = t->tab[i];
	free(t->tab);
	t->tab = tab;
	t->cap = cap;
	return 0;
}

int xr__trans_feed(struct xr_trans *t, const void *rec, uint32_t len, uint8_t *out)
{
	xr_exp_view v;

	/* The engine's own records, but a plugin game's bytes may be
	 * anything: each is checked, as a reader would. */
	if (xr_exp_view_init(&v, rec, len) < 0 || (v.obs && v.obs_bytes != t->obs_bytes) ||
	    (v.mask && v.mask_len != t->mask_len) || v.f.player_id > 0xff)
		return -EINVAL;
	uint64_t key = ((uint64_t)v.f.game_id << 8 | v.f.player_id) + 1;
	uint32_t i = slot_of(t->tab, t->cap, key);
	struct seat *s = &t->tab[i];
	int made = 0;

	if (!s->key) {
		if (t->n >= XR_TRANS_SEATS_MAX)
			return -ENOSPC;
		if (4 * (t->n + 1) > 3 * t->cap) {
			int rc = grow(t);
			if (rc < 0)
				return rc;
			i = slot_of(t->tab, t->cap, key);
			s = &t->tab[i];
		}
		s->data = malloc(t->obs_bytes + t->mask_len + 1);
		if (!s->data)
			return -ENOMEM;
		s->key = key;
		t->n++;
	} else if (!s->terminal && v.f.turn == s->turn + 1) {
		const xr_item_layout *l = &t->l;
		memset(out, 0, t->item_size);
		xr_transition h = {.seq = v.f.seq, .game_id = v.f.game_id,
				   .player_id = v.f.player_id, .turn = s->turn,
				   .action = v.f.applied, .reward = v.f.reward, .done = v.f.done,
				   .truncated = v.f.truncated, .applied_by = (uint8_t)v.f.applied_by,
				   .obs_bytes = l->obs_bytes, .mask_len = l->mask_len};
		memcpy(out, &h, sizeof(h));
		memcpy(out + l->obs_off, s->data, t->obs_bytes);
		if (v.obs)
			memcpy(out + l->next_obs_off, v.obs, t->obs_bytes);
		memcpy(out + l->mask_off, s->data + t->obs_bytes, t->mask_len);
		if (v.mask)
			memcpy(out + l->next_mask_off, v.mask, t->mask_len);
		made = 1;
	}
	/* This record is the seat's last now. */
	s->turn = v.f.turn;
	s->terminal = v.f.done || v.f.truncated;
	if (v.obs)
		memcpy(s->data, v.obs, t->obs_bytes);
	else
		memset(s->data, 0, t->obs_bytes);
	if (v.mask)
		memcpy(s->data + t->obs_bytes, v.mask, t->mask_len);
	else
		memset(s->data + t->obs_bytes, 0, t->mask_len);
	return made;
}
