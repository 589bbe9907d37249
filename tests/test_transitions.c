/* SPDX-License-Identifier: MIT */
/*
 * The transitions a fed table is made of (engine/transitions.h): a seat's
 * record pairs with its last when its turn follows by one and the last did
 * not end the episode; a seat's first record, one after a terminal, and
 * one after a gap in turns make none; xr__trans_forget() (a feed attached
 * again after it failed: records were missed) makes the next record of
 * every seat start anew, even one whose turn follows by number (formerly a
 * reattached feed could pair the last record before the gap with a record
 * of another episode after it).
 */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "engine/transitions.h"
#include "record/transition.h"
#include "ring_helpers.h"
#include "xring/record.h"

static xr_exp_template tpl;
static alignas(64) uint8_t buf[4096];
static uint8_t *rec = buf + 64 - XR_EXP_DEST_SKEW;

/* A record of seat (game, player) at turn, its observation filled with v. */
static const uint8_t *record(uint32_t game, uint32_t player, uint32_t turn, bool done,
			     uint8_t v)
{
	xr_exp_fields f = {.seq = turn, .game_id = game, .player_id = player, .turn = turn,
			   .action = -1, .reward = 1.0f, .done = done, .applied = 2,
			   .applied_by = XR_SRC_AGENT};
	xr_exp_slots s;

	xr_exp_build(&tpl, rec, &f, &s);
	memset(s.obs, v, tpl.obs_bytes);
	memset(s.mask, 1, tpl.shape.mask_len);
	return rec;
}

int main(void)
{
	xr_exp_shape sh = {.obs_dtype = XR_DTYPE_U8, .obs_ndim = 2, .obs_dims = {4, 4},
			   .mask_len = 5};
	struct xr_trans *t;
	xr_item_layout l;

	CHECK_RC(xr_exp_template_init(&tpl, &sh), 0);
	CHECK(tpl.size + 64 <= sizeof(buf));
	CHECK_RC(xr__trans_create(&sh, &t), 0);
	xr__trans_layout(&sh, &l);
	uint8_t *item = malloc(xr__trans_item_size(&sh));
	CHECK(item);

#define FEED(g, p, turn, done, v) xr__trans_feed(t, record(g, p, turn, done, v), tpl.size, item)
	CHECK_RC(FEED(1, 0, 0, false, 10), 0); /* a seat's first record */
	CHECK_RC(FEED(1, 0, 1, false, 11), 1); /* the next turn: a transition */
	xr_transition h;
	memcpy(&h, item, sizeof(h));
	CHECK_EQ(h.turn, 0);
	CHECK_EQ(h.game_id, 1);
	CHECK_EQ(h.action, 2);
	CHECK_EQ(item[l.obs_off], 10);      /* obs: the last record's */
	CHECK_EQ(item[l.next_obs_off], 11); /* next obs: this one's */
	CHECK_RC(FEED(1, 1, 5, false, 20), 0); /* another seat: its own first */
	CHECK_RC(FEED(1, 0, 3, false, 12), 0); /* a gap in turns: none */
	CHECK_RC(FEED(1, 0, 4, true, 13), 1);  /* ends the episode */
	CHECK_RC(FEED(1, 0, 5, false, 14), 0); /* after a terminal: none */
	CHECK_RC(FEED(1, 0, 6, false, 15), 1);

	/* The feed missed records: nothing pairs across the gap, even a turn
	 * that follows by number (another episode's, for all it knows). */
	xr__trans_forget(t);
	CHECK_RC(FEED(1, 0, 7, false, 16), 0);
	CHECK_RC(FEED(1, 1, 6, false, 21), 0);
	CHECK_RC(FEED(1, 0, 8, false, 17), 1); /* and then pairs again */
	memcpy(&h, item, sizeof(h));
	CHECK_EQ(h.turn, 7);
	CHECK_EQ(item[l.obs_off], 16);
	CHECK_EQ(item[l.next_obs_off], 17);
#undef FEED

	free(item);
	xr__trans_destroy(t);
	printf("test_transitions: ok\n");
	return 0;
}
