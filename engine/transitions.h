/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_TRANSITIONS_H
#define XR_ENGINE_TRANSITIONS_H

/*
 * Transitions from a stream of Experience records (xring/table.h,
 * XR_ITEM_TRANSITION): the last record of each seat is kept (copied: the
 * ring's batch is released), and the seat's next record, if it is the turn
 * after, makes a transition with it. Engine-private memory, one feed's
 * alone: not shared, not locked.
 */

#include <stdint.h>

#include "xring/record.h"
#include "xring/table.h"

/* Seats one feed keeps at most: a record of a seat past these starts
 * nothing (counted by the caller as dropped). */
#define XR_TRANS_SEATS_MAX (1u << 20)

struct xr_trans;

int xr__trans_create(const xr_exp_shape *sh, struct xr_trans **out);
void xr__trans_destroy(struct xr_trans *t);

/* Takes record rec[0..len) of the stream. Returns 1 with a transition in
 * out[0..xr__trans_item_size()) (record/transition.h) when rec is the turn after its seat's last
 * record; 0 when it makes none (the seat's first record, one after a
 * terminal, a gap); -EINVAL for a record that is not one of the shape;
 * -ENOSPC when XR_TRANS_SEATS_MAX seats are kept and rec is of a new one;
 * -ENOMEM. */
int xr__trans_feed(struct xr_trans *t, const void *rec, uint32_t len, uint8_t *out);
/* The stream had a gap (a feed that attached again): no seat's next record
 * pairs with its last one, which the gap may have made another episode's
 * (a turn that follows by number after a reset it did not see). */
void xr__trans_forget(struct xr_trans *t);

#endif
