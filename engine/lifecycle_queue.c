/* SPDX-License-Identifier: MIT */
/*
 * ORDERING. One producer, one consumer. The producer writes msgs[head]
 * and then stores head + 1 with release (LQ1); the consumer loads head with
 * acquire (LQ2), so the message's bytes, and everything the producer did
 * before (a game instance it built, for CREATE), happen before the
 * consumer reads them. Symmetrically the consumer stores tail + 1 with
 * release after copying the message out (LQ3), and the producer loads tail
 * with acquire (LQ4) before it reuses that cell, so a cell is never
 * overwritten while being read. Each counter has one writer, which reads
 * its own counter relaxed.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/lifecycle_queue.h"
#include "util/atomics.h"

int xr__lc_init(struct xr_lc_queue *q, uint32_t capacity)
{
	q->msgs = calloc(capacity, sizeof(*q->msgs));
	if (!q->msgs)
		return -ENOMEM;
	q->mask = capacity - 1;
	xr_store_relaxed(&q->head, 0);
	xr_store_relaxed(&q->tail, 0);
	return 0;
}

void xr__lc_fini(struct xr_lc_queue *q)
{
	free(q->msgs);
	q->msgs = NULL;
}

bool xr__lc_room(const struct xr_lc_queue *q, uint32_t n)
{
	uint64_t used = xr_load_relaxed(&q->head) - xr_load_acquire(&q->tail); /* LQ4 */

	return used + n <= (uint64_t)q->mask + 1;
}

bool xr__lc_push(struct xr_lc_queue *q, const struct xr_lc_msg *m)
{
	uint64_t head = xr_load_relaxed(&q->head);

	if (head - xr_load_acquire(&q->tail) > q->mask) /* LQ4: pairs with LQ3 */
		return false;
	q->msgs[head & q->mask] = *m;
	xr_store_release(&q->head, head + 1); /* LQ1: pairs with LQ2 */
	return true;
}

bool xr__lc_pop(struct xr_lc_queue *q, struct xr_lc_msg *m)
{
	uint64_t tail = xr_load_relaxed(&q->tail);

	if (tail == xr_load_acquire(&q->head)) /* LQ2: pairs with LQ1 */
		return false;
	*m = q->msgs[tail & q->mask];
	xr_store_release(&q->tail, tail + 1); /* LQ3: pairs with LQ4 */
	return true;
}

uint64_t xr__lc_waiting(const struct xr_lc_queue *q)
{
	/* LQ2: the messages counted are visible to the pops that follow. */
	return xr_load_acquire(&q->head) - xr_load_relaxed(&q->tail);
}
