/* SPDX-License-Identifier: MIT */
#ifndef XR_RECORD_FILTER_H
#define XR_RECORD_FILTER_H

/*
 * A reader's filter (xr_filter), compiled against its stream's record
 * layout. The same compiled form runs in two places: in the reader, to pick
 * records, and in the engine's writers, to count the records a sleeping
 * reader is waiting for (shm/wake.c). Both must agree record for record, so
 * there is one implementation.
 */

#include <stdbool.h>
#include <stdint.h>

#include "xring/reader.h"
#include "xring/record.h"

struct xr_filt {
	bool all;                      /* no test set: every record passes */
	bool has_reward;
	uint32_t n_games, n_players;
	uint32_t min_turn, terminal;
	float reward_min, reward_max;
	uint64_t sample_below;         /* keep if hash < this; UINT64_MAX: all */
	uint64_t sample_seed;
	/* Where the fields are in a record of the stream's template size. */
	uint32_t size;
	uint32_t off_seq, off_game_id, off_player_id, off_turn, off_reward, off_done,
		off_truncated;
	xr_id_range games[XR_FILTER_RANGES_MAX];
	xr_id_range players[XR_FILTER_RANGES_MAX];
};

/* Checks f (NULL: pass everything) and compiles it for records of shape
 * (NULL: the stream does not carry Experience records, and only a NULL or
 * empty filter is accepted). 0 or -EINVAL. */
int xr__filter_compile(struct xr_filt *out, const xr_filter *f, const xr_exp_shape *shape);

/* Whether the record rec[0..len) passes. A record whose size is not the
 * stream's is parsed and verified the slow way; a malformed one fails. */
bool xr__filter_pass_slow(const struct xr_filt *f, const uint8_t *rec, uint32_t len);

static inline bool xr__filter_pass(const struct xr_filt *f, const uint8_t *rec, uint32_t len)
{
	return f->all || xr__filter_pass_slow(f, rec, len);
}

#endif
