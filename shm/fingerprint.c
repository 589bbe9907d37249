/* SPDX-License-Identifier: MIT */
/*
 * The build fingerprint written into every arena header. It hashes the sizes
 * and offsets that two processes must agree on, so a reader built from
 * different sources (or with a different compiler's idea of a struct) refuses
 * the arena with XR_ELAYOUT instead of misreading it.
 */
#include "shm/layout.h"

#define F(x) ((uint64_t)(x))

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
		F(sizeof(struct xr_ring_desc)),
		F(offsetof(struct xr_ring_desc, head)),
		F(offsetof(struct xr_ring_desc, written)),
		F(offsetof(struct xr_ring_desc, tail)),
		F(offsetof(struct xr_ring_desc, pub_gen)),
		F(offsetof(struct xr_ring_desc, publish_ns)),
		F(offsetof(struct xr_ring_desc, blocked)),
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
		F(offsetof(struct xr_game_stats, lat_count)),
		XR_GAME_LAT_BUCKETS,
	};
	/* FNV-1a over the words: small, stable, good enough to tell layouts apart. */
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++)
		for (int b = 0; b < 8; b++) {
			h ^= (facts[i] >> (8 * b)) & 0xff;
			h *= 0x100000001b3ull;
		}
	return h;
}
