/* SPDX-License-Identifier: MIT */
/*
 * The build fingerprint written into every arena header. It hashes the sizes
 * and offsets that two processes must agree on, so a reader built from
 * different sources (or with a different compiler's idea of a struct) refuses
 * the arena with XR_ELAYOUT instead of misreading it.
 *
 * The records in the rings are shared memory too: readers take every field
 * of a batch at the offsets their own build's xr_exp_template_init() gives
 * for the stream's shape, without parsing a record. So the fingerprint also
 * covers the record layout: the template of a reference shape that has
 * every part (dims, mask, extras), its offsets, size and fixed bytes (the
 * vtables, hence every field's slot and position).
 */
#include "shm/layout.h"

#define F(x) ((uint64_t)(x))

static uint64_t fnv_byte(uint64_t h, uint8_t b)
{
	return (h ^ b) * 0x100000001b3ull;
}

/* FNV-1a over the 8 little-endian bytes of each word. */
static uint64_t fnv_words(uint64_t h, const uint64_t *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (int b = 0; b < 8; b++)
			h = fnv_byte(h, (uint8_t)(w[i] >> (8 * b)));
	return h;
}

/* The record layout's facts, hashed into h. */
static uint64_t record_facts(uint64_t h)
{
	static const xr_exp_shape ref = {.obs_dtype = XR_DTYPE_F32, .obs_ndim = 3,
					 .obs_dims = {2, 3, 5}, .mask_len = 7,
					 .extras_len = 3};
	xr_exp_template t;

	if (xr_exp_template_init(&t, &ref) < 0)
		return fnv_byte(h, 0xff); /* cannot happen: a valid shape */
	const uint64_t facts[] = {
		t.size, t.head_len, t.obs_bytes, t.off_seq, t.off_t_ns, t.off_game_id,
		t.off_player_id, t.off_turn, t.off_action, t.off_reward, t.off_done,
		t.off_truncated, t.off_applied, t.off_applied_by, t.off_obs, t.off_mask,
		t.off_extras, XR_EXP_DEST_SKEW, XR_EXP_DATA_ALIGN,
	};
	h = fnv_words(h, facts, sizeof(facts) / sizeof(facts[0]));
	for (uint32_t i = 0; i < t.head_len; i++)
		h = fnv_byte(h, t.head[i]);
	return h;
}

uint64_t xr__layout_fingerprint(void)
{
	const uint64_t facts[] = {
		XR_LAYOUT_VERSION,
		F(sizeof(struct xr_arena_hdr)),
		F(offsetof(struct xr_arena_hdr, state)),
		F(offsetof(struct xr_arena_hdr, streams)),
		F(offsetof(struct xr_arena_hdr, rings)),
		F(offsetof(struct xr_arena_hdr, shards)),
		F(sizeof(struct xr_stream_desc)),
		F(offsetof(struct xr_stream_desc, shape)),
		F(offsetof(struct xr_stream_desc, producers)),
		F(sizeof(struct xr_ring_desc)),
		F(offsetof(struct xr_ring_desc, head)),
		F(offsetof(struct xr_ring_desc, writer)),
		F(offsetof(struct xr_ring_desc, written)),
		F(offsetof(struct xr_ring_desc, tail)),
		F(offsetof(struct xr_ring_desc, pub_gen)),
		F(offsetof(struct xr_ring_desc, publish_ns)),
		F(offsetof(struct xr_ring_desc, blocked)),
		F(offsetof(struct xr_ring_desc, blocked_need)),
		F(offsetof(struct xr_arena_hdr, tab_off)),
		F(offsetof(struct xr_arena_hdr, writer_uid)),
		F(sizeof(struct xr_reader_info)),
		F(offsetof(struct xr_reader_info, label)),
		F(sizeof(struct xr_cursor_view)),
		F(sizeof(struct xr_cursor)),
		F(offsetof(struct xr_cursor, lease)),
		F(offsetof(struct xr_cursor, wake_pos)),
		F(sizeof(struct xr_peer_page)),
		F(offsetof(struct xr_peer_page, cursors)),
		XR_PEER_PAGE_SIZE,
		F(offsetof(struct xr_ring_desc, wakeups)),
		F(sizeof(xr_frame)),
		F(sizeof(xr_exp_shape)),
		XR_MAX_STREAMS, XR_MAX_RINGS,
		/* The games' stats (layout 5), which tools read. */
		F(offsetof(struct xr_arena_hdr, games)),
		F(offsetof(struct xr_game_stats, finals_lost)),
		F(offsetof(struct xr_game_stats, creation)),
		/* The agent table (layout 6), after the cursor views. */
		XR_MAX_AGENTS,
		F(sizeof(struct xr_agent_info)),
		F(offsetof(struct xr_agent_info, seats)),
		F(sizeof(struct xr_agent_counts)),
		F(offsetof(struct xr_agent_counts, rtt)),
		/* The engine's stats and the shards' steps/s (layout 7). */
		F(offsetof(struct xr_arena_hdr, engine)),
		F(offsetof(struct xr_shard_stats, steps_per_s)),
		F(sizeof(struct xr_game_stats)), F(sizeof(struct xr_hist)),
		XR_LL_BUCKETS, XR_LL_MIN_SHIFT, XR_LL_SUB,
		F(sizeof(struct xr_reader_figs)), F(offsetof(struct xr_peer_page, figs)),
		XR_REFUSE_KINDS,
		/* The replay tables' views (layout 11). */
		XR_MAX_TABLES, F(offsetof(struct xr_arena_hdr, tables)),
		F(sizeof(struct xr_table_view)), F(offsetof(struct xr_table_view, size)),
		F(offsetof(struct xr_ring_desc, producer_pid)),
	};
	/* FNV-1a over the words: small, stable, good enough to tell layouts apart. */
	uint64_t h = fnv_words(0xcbf29ce484222325ull, facts, sizeof(facts) / sizeof(facts[0]));

	/* The record layout (layout 6), after the arena's facts. */
	return record_facts(h);
}
