/* SPDX-License-Identifier: MIT */
#ifndef XR_TABLE_TABLE_H
#define XR_TABLE_TABLE_H

/*
 * A replay table's bookkeeping: which slots hold items, how they are
 * sampled and removed, who holds leases on them, and the rate limiter. The
 * items' bytes live elsewhere (slot i's item is the caller's slot i); this
 * file decides which slot an insert fills, which items a sample returns and
 * when a slot may be reused.
 *
 * Words (docs/replay.md):
 *   item      one entry, in one slot; its key is (generation << 32) | slot,
 *             and the generation moves on each time the slot is filled, so
 *             a key names one item for ever and a stale key is refused.
 *   sampler   how sample() picks: uniform; prioritized (P(i) = p_i^alpha /
 *             sum_j p_j^alpha, with importance weight (N * P(i))^-beta /
 *             max_j (N * P(j))^-beta); fifo or lifo (the oldest or newest
 *             items, in order, each once per call).
 *   remover   which item an insert into a full table removes: fifo (the
 *             oldest), lifo (the newest) or lowest-priority. Never one that
 *             is leased: the next in the remover's order goes instead.
 *   lease     a sample leases each item it returns until release(): a leased
 *             item stays in its slot, unchanged, even if it is removed
 *             meanwhile (its slot is reused only when the last lease ends).
 *   max_times_sampled  an item sampled that many times leaves the table
 *             (as a removal) at that sample; its slot waits for its leases.
 *
 * Single-threaded: the engine's table service owns a table and is the only
 * caller (trainers ask it through their peer pages). Every operation is
 * O(log capacity) or better, except that the fifo and lifo removers step
 * over leased items, at most as many as there are leases.
 *
 * Returns: 0 or a count on success; -EINVAL for an argument that cannot be
 * (a priority that is negative or not finite), -ESTALE for a key that does
 * not name an item of the table (never did, or its slot was reused),
 * -EAGAIN when the rate limiter or an empty table says wait, -EBUSY for an
 * insert into a full table whose every item is leased, -ENOMEM.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limiter.h"
#include "mintree.h"
#include "sumtree.h"
#include "xring/table.h" /* the samplers and removers */


struct xr_tb_cfg {
	uint32_t capacity;            /* items, >= 1, <= XR_TB_MAX_ITEMS */
	enum xr_table_sampler sampler;
	enum xr_table_remover remover;
	double alpha;                 /* prioritized: exponent, >= 0 */
	double beta;                  /* prioritized: weights' exponent, >= 0 */
	uint32_t max_times_sampled;   /* 0: no limit */
	uint64_t min_size;            /* the limiter's (limiter.h); <= capacity */
	double samples_per_insert;    /* 0: no ratio */
	double error_buffer;
	uint64_t seed;                /* the sampler's random numbers */
};

#define XR_TB_MAX_ITEMS (1u << 30)
#define XR_TB_NO_SLOT UINT32_MAX

enum xr_slot_state { XR_TB_FREE, XR_TB_LIVE, XR_TB_SPENT };

/* What a sample reads and writes of a slot, together: a draw costs one
 * cache miss here, not one per field. */
struct xr_tb_slot {
	uint32_t gen;         /* the generation of its latest item */
	uint32_t held;        /* leases on it */
	uint32_t times;       /* times its item was sampled */
	uint8_t state;        /* enum xr_slot_state */
	uint8_t hidden;       /* out of the remover's tree while leased */
	uint8_t pad_[2];
};

/* Leased items a removal steps over at most before it gives up for now
 * (the insert then waits as for a table all leased): bounds what a trainer
 * holding many leases can make an insert cost. */
#define XR_TB_SKIP_MAX 1024u

struct xr_tb {
	struct xr_tb_cfg cfg;
	struct xr_limiter lim;
	uint32_t size;        /* live items: in the table, sampleable */
	uint32_t used;        /* live + spent (removed, waiting for leases) */
	uint64_t leases;      /* leases held, all items */
	struct xr_tb_slot *slot; /* per slot: what a sample touches, one line */
	double *prio;         /* per slot: its item's priority */
	uint32_t *free;       /* stack of free slots */
	uint32_t nfree;
	/* Live items in insertion order (fifo/lifo samplers and removers). */
	uint32_t *prev, *next;
	uint32_t oldest, newest;
	/* Live items packed, for uniform draws in O(1). */
	uint32_t *dense, *dense_at;
	/* Prioritized: p^alpha per slot, and the smallest positive one. */
	struct xr_sumtree sum;
	struct xr_mintree wmin;
	/* Lowest-priority remover: priority of each live item but those
	 * found leased at a removal (slot.hidden) until their leases end. */
	struct xr_mintree rmin;
	uint64_t rng[4];
	/* After a restore: per slot, the newest generation handed out before
	 * it, which later fills go past (NULL: none), so that no key is
	 * handed out twice. Owned; freed with the table. */
	uint32_t *gen_floor;
};

/* Makes an empty table. Returns 0, -EINVAL with *why naming the bad field,
 * or -ENOMEM. The table owns its arrays until xr__tb_free(). */
int xr__tb_init(struct xr_tb *t, const struct xr_tb_cfg *cfg, const char **why);
void xr__tb_free(struct xr_tb *t);

/* Inserts an item of priority p (finite, >= 0; uniform, fifo and lifo tables
 * keep it for the remover and the checkpoint). On success *key is the new
 * item's and *slot where its bytes go; *evicted the key the remover took to
 * make room, or 0 when none. -EAGAIN: the limiter says wait. -EBUSY: full,
 * and every item is leased. */
int xr__tb_insert(struct xr_tb *t, double p, uint64_t *key, uint32_t *slot,
		    uint64_t *evicted);

/* Samples up to n items (n >= 1), leasing each: keys[i], and when not NULL,
 * prob[i] (the probability the draw had) and weight[i] (its importance
 * weight: 1 but for prioritized). Returns how many were drawn (1..n): fewer
 * than n when the limiter allows fewer now, or the table runs out (fifo and
 * lifo take each item at most once per call, and max_times_sampled may
 * empty it). -EAGAIN: none may be drawn now (limiter, or an empty table). */
int xr__tb_sample(struct xr_tb *t, uint32_t n, uint64_t *keys, double *prob, double *weight);

/* Ends one lease on key's item. -ESTALE: no item of that key holds a lease. */
int xr__tb_release(struct xr_tb *t, uint64_t key);

/* Sets the priority of key's item. -ESTALE: no live item of that key. */
int xr__tb_update(struct xr_tb *t, uint64_t key, double p);
/* What xr__tb_update() would return, changing nothing; 0 with *slot set
 * to the item's slot. */
int xr__tb_update_check(const struct xr_tb *t, uint64_t key, double p, uint32_t *slot);

/* Removes key's item (its slot waits for any leases). -ESTALE as above. */
int xr__tb_remove(struct xr_tb *t, uint64_t key);

/* The slot of key's item, live or spent but leased: where its bytes are.
 * XR_TB_NO_SLOT when the key names no such item. */
uint32_t xr__tb_slot(const struct xr_tb *t, uint64_t key);

static inline uint64_t xr__tb_key(const struct xr_tb *t, uint32_t slot)
{
	return (uint64_t)t->slot[slot].gen << 32 | slot;
}

/*
 * Checkpoints. A checkpoint holds the configuration, the limiter's counts,
 * the random state and every live item (key, priority, times sampled) in
 * insertion order, each with its item_size bytes: item(ctx, slot) says where
 * they are (save) or go (restore); item_size 0 saves none.
 * Leases are not saved: they belong to processes that a restore does not
 * bring back, and items spent but leased were removed already.
 *
 * put() and get() move exactly n bytes or return a negative errno (get:
 * -ENODATA when the input ends first). A checksum covers every byte, items'
 * included, and a restore checks every field it reads: a truncated or
 * altered checkpoint is -EINVAL with *why, never a table that breaks later.
 * Items keep their keys, so keys handed out before the checkpoint still name
 * the same items after it, and no key is handed out twice. The item size and
 * io->item_tag are saved too: a checkpoint of other items is refused with a
 * reason that says so.
 */
#define XR_TB_TAG 64

struct xr_tb_io {
	int (*put)(void *ctx, const void *p, size_t n);
	int (*get)(void *ctx, void *p, size_t n);
	void *(*item)(void *ctx, uint32_t slot);
	size_t item_size;
	void *ctx;
	uint32_t max_capacity;  /* restore: refuse a larger table before any
				 * memory is set aside for it (-E2BIG); 0: any */
	/* What the items are, in the caller's words (the engine's: item size,
	 * item kind, a fed stream's record shape): saved in the header; a
	 * restore whose tag differs is refused. Zeros: untagged. */
	uint8_t item_tag[XR_TB_TAG];
};

int xr__tb_save(const struct xr_tb *t, const struct xr_tb_io *io);
/* Makes *t from a checkpoint (t uninitialised on entry, freed on failure). */
int xr__tb_restore(struct xr_tb *t, const struct xr_tb_io *io, const char **why);

#endif
