/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_LIFECYCLE_QUEUE_H
#define XR_ENGINE_LIFECYCLE_QUEUE_H

/*
 * A shard's lifecycle queues: single-producer single-consumer rings of
 * fixed-size messages, one each way between the control thread (the game
 * directory, engine/games.c) and one shard. The directory pushes create,
 * destroy and reset orders; the shard drains them between turns. The shard
 * pushes back what a destruction freed (the slot and its game instance), and
 * the directory takes it up when it next needs a slot. Neither side ever
 * waits: a full queue is the producer's to handle (a refusal, or a retry on
 * the next round), so no game waits on a lock or on another shard's work.
 */

#include <stdbool.h>
#include <stdint.h>

#include "xring/game.h"

enum xr_lc_op {
	XR_LC_CREATE = 1,  /* slot: a new game, instance g ready, seed its first episode */
	XR_LC_DESTROY = 2, /* slot: final records, then hand slot and g back */
	XR_LC_RESET = 3,   /* slot: final records, then a new episode from seed */
	XR_LC_FREED = 4,   /* (shard to directory) slot and g are free again */
};

struct xr_lc_msg {
	uint32_t op;
	uint32_t slot;       /* in the shard's slot table */
	uint32_t game_id;
	uint32_t stream;     /* CREATE: the stream of its shape */
	uint32_t players;    /* CREATE */
	uint32_t uid;        /* CREATE: its creator's (agents act only for games
			      * of their uid or the engine's: engine/seats.h) */
	uint64_t seed;       /* CREATE, RESET */
	uint64_t t_ns;       /* when the order was given (creation latency) */
	void *g;             /* CREATE, FREED: the game instance */
	const xr_game_vtable *vt; /* ...and its game */
};

struct xr_lc_queue {
	uint32_t mask;       /* capacity - 1, a power of two */
	struct xr_lc_msg *msgs;
	/* Producer and consumer counters on their own lines: each side writes
	 * one, reads the other. */
	_Alignas(64) _Atomic uint64_t head; /* pushed; the producer's */
	_Alignas(64) _Atomic uint64_t tail; /* taken; the consumer's */
};

/* capacity: a power of two. 0 or -ENOMEM. */
int xr__lc_init(struct xr_lc_queue *q, uint32_t capacity);
void xr__lc_fini(struct xr_lc_queue *q);

/* Producer: room for n more messages? */
bool xr__lc_room(const struct xr_lc_queue *q, uint32_t n);
/* Producer: appends m; false when full. */
bool xr__lc_push(struct xr_lc_queue *q, const struct xr_lc_msg *m);
/* Consumer: the oldest message into *m; false when empty. */
bool xr__lc_pop(struct xr_lc_queue *q, struct xr_lc_msg *m);
/* Consumer: how many messages are there now (more may come). */
uint64_t xr__lc_waiting(const struct xr_lc_queue *q);

#endif
