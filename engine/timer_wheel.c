/* SPDX-License-Identifier: MIT */
/*
 * Hierarchical timing wheel (see timer_wheel.h for the contract).
 *
 * Filing. With `now` the next tick to process and d = expires - now:
 *   d <  2^8   level 0, slot  expires        & 255
 *   d <  2^16  level 1, slot (expires >> 8)  & 255
 *   d <  2^24  level 2, slot (expires >> 16) & 255
 *   d <  2^32  level 3, slot (expires >> 24) & 255
 *   further    level 3, the slot that comes round last; re-filed from there
 *   past       level 0, slot now & 255 (fires on the next tick processed)
 * A level-L slot is cascaded (its timers re-filed) when `now` reaches the
 * start of its 2^(8L)-tick block, which is the first tick any of its timers
 * can be due: filing by distance guarantees the slot is not cascaded a
 * revolution early, so every timer moves down at most once per level.
 *
 * Processing tick T: cascade the levels whose index wraps at T (level 1
 * first, then 2, then 3: a higher level's timers land in lower levels, never
 * in the slot just emptied), detach level 0's slot T & 255, set now = T + 1,
 * then fire the detached timers in arming order. Because now has moved on,
 * a callback that re-arms for a past tick lands in the next tick's slot,
 * not in the list being fired.
 */
#include <string.h>

#include "engine/timer_wheel.h"

#define MASK (XR_WHEEL_SLOTS - 1)
/* t->slot of a timer on the list being fired: in no slot of the wheel. */
#define DETACHED UINT16_MAX

static struct xr_timer *head_of(struct xr_wheel *w, unsigned level, unsigned idx)
{
	return &w->slots[level * XR_WHEEL_SLOTS + idx];
}

static void list_init(struct xr_timer *h)
{
	h->next = h->prev = h;
}

static void list_append(struct xr_timer *h, struct xr_timer *t)
{
	t->prev = h->prev;
	t->next = h;
	h->prev->next = t;
	h->prev = t;
}

static void list_unlink(struct xr_timer *t)
{
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->next = t->prev = NULL;
}

/* Moves every timer of h onto the (empty, initialised) list `to`. */
static void list_move_all(struct xr_timer *h, struct xr_timer *to)
{
	if (h->next == h)
		return;
	to->next = h->next;
	to->prev = h->prev;
	to->next->prev = to;
	to->prev->next = to;
	list_init(h);
}

static void mark(struct xr_wheel *w, unsigned level, unsigned idx, bool on)
{
	uint64_t bit = 1ull << (idx & 63);

	if (on)
		w->occupied[level][idx >> 6] |= bit;
	else
		w->occupied[level][idx >> 6] &= ~bit;
}

static bool occupied(const struct xr_wheel *w, unsigned level, unsigned idx)
{
	return w->occupied[level][idx >> 6] >> (idx & 63) & 1;
}

void xr_wheel_init(struct xr_wheel *w, uint64_t now)
{
	memset(w, 0, sizeof(*w));
	w->now = now;
	for (unsigned i = 0; i < XR_WHEEL_LEVELS * XR_WHEEL_SLOTS; i++)
		list_init(&w->slots[i]);
}

void xr_timer_init(struct xr_timer *t, xr_timer_fn fn)
{
	memset(t, 0, sizeof(*t));
	t->fn = fn;
}

static void file(struct xr_wheel *w, struct xr_timer *t)
{
	uint64_t e = t->expires, d = e - w->now;
	unsigned level, idx;

	if ((int64_t)d < 0) {
		level = 0;
		idx = (unsigned)(w->now & MASK);
	} else if (d < (1ull << 8)) {
		level = 0;
		idx = (unsigned)(e & MASK);
	} else if (d < (1ull << 16)) {
		level = 1;
		idx = (unsigned)((e >> 8) & MASK);
	} else if (d < (1ull << 24)) {
		level = 2;
		idx = (unsigned)((e >> 16) & MASK);
	} else if (d < (1ull << 32)) {
		level = 3;
		idx = (unsigned)((e >> 24) & MASK);
	} else {
		/* Beyond the wheel: the level-3 slot cascaded last from here. */
		level = 3;
		idx = (unsigned)(((w->now >> 24) - 1) & MASK);
	}
	list_append(head_of(w, level, idx), t);
	mark(w, level, idx, true);
	t->slot = (uint16_t)(level * XR_WHEEL_SLOTS + idx);
}

void xr_wheel_arm(struct xr_wheel *w, struct xr_timer *t, uint64_t expires)
{
	xr_wheel_cancel(w, t);
	t->expires = expires;
	t->armed = true;
	w->count++;
	file(w, t);
}

bool xr_wheel_cancel(struct xr_wheel *w, struct xr_timer *t)
{
	if (!t->armed)
		return false;
	uint16_t slot = t->slot;
	list_unlink(t);
	t->armed = false;
	w->count--;
	/* A timer on the list being fired is in no slot: nothing to clear. */
	if (slot != DETACHED && w->slots[slot].next == &w->slots[slot])
		mark(w, slot / XR_WHEEL_SLOTS, slot % XR_WHEEL_SLOTS, false);
	return true;
}

/* The first occupied level-0 index after idx in this revolution, or
 * XR_WHEEL_SLOTS if none. */
static unsigned next_occupied(const struct xr_wheel *w, unsigned idx)
{
	unsigned i = idx + 1;

	while (i < XR_WHEEL_SLOTS) {
		uint64_t bits = w->occupied[0][i >> 6] >> (i & 63);
		if (bits)
			return i + (unsigned)__builtin_ctzll(bits);
		i = (i | 63) + 1;
	}
	return XR_WHEEL_SLOTS;
}

static void cascade(struct xr_wheel *w, unsigned level, unsigned idx)
{
	struct xr_timer moving;

	list_init(&moving);
	list_move_all(head_of(w, level, idx), &moving);
	mark(w, level, idx, false);
	while (moving.next != &moving) {
		struct xr_timer *t = moving.next;
		list_unlink(t);
		file(w, t);
	}
}

uint64_t xr_wheel_advance(struct xr_wheel *w, uint64_t now, void *ctx)
{
	uint64_t fired = 0;

	while ((int64_t)(now - w->now) >= 0) {
		uint64_t tick = w->now;
		unsigned idx = (unsigned)(tick & MASK);

		if (idx == 0) {
			for (unsigned level = 1; level < XR_WHEEL_LEVELS; level++) {
				unsigned li = (unsigned)((tick >> (XR_WHEEL_BITS * level)) & MASK);
				if (occupied(w, level, li))
					cascade(w, level, li);
				if (li != 0)
					break;
			}
		}
		if (!occupied(w, 0, idx)) {
			/* Skip to the next occupied slot or the wrap, whichever
			 * comes first: empty ticks cost nothing. */
			uint64_t next = tick - idx + next_occupied(w, idx);
			w->now = (int64_t)(next - now) > 0 ? now + 1 : next;
			continue;
		}
		struct xr_timer due;
		list_init(&due);
		list_move_all(head_of(w, 0, idx), &due);
		mark(w, 0, idx, false);
		for (struct xr_timer *t = due.next; t != &due; t = t->next)
			t->slot = DETACHED;
		w->now = tick + 1;
		while (due.next != &due) {
			struct xr_timer *t = due.next;
			list_unlink(t);
			t->armed = false;
			w->count--;
			fired++;
			t->fn(t, ctx);
		}
	}
	return fired;
}

uint64_t xr_wheel_next(const struct xr_wheel *w)
{

	unsigned idx = (unsigned)(w->now & MASK);

	if (w->count == 0)
		return UINT64_MAX;
	if (occupied(w, 0, idx))
		return w->now;
	/* Before the wrap, level 0 is exact; at the wrap, cascaded timers may
	 * come first, so the wrap is the bound. */
	return w->now - idx + next_occupied(w, idx);
}
