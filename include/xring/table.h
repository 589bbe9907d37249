/* SPDX-License-Identifier: MIT */
#ifndef XRING_TABLE_H
#define XRING_TABLE_H

/*
 * Replay tables: an engine hosts named tables of items; trainers sample
 * them in place, release what they sampled, update priorities, and insert
 * items of their own (docs/replay.md has the words: items, keys, samplers,
 * removers, leases, the rate limiter).
 *
 *     xr_table_create("demo", "replay", &(xr_table_opts){.capacity = 100000,
 *                     .item_size = 64, .sampler = XR_SAMPLER_PRIORITIZED,
 *                     .alpha = 0.6, .beta = 0.4, .remover = XR_REMOVER_FIFO});
 *     xr_table *t;
 *     xr_table_open("demo", "replay", NULL, &t);
 *     xr_table_insert(t, items, prios, n, 1000, keys);     -- n * 64 bytes
 *     xr_sample s;
 *     xr_table_sample(t, 256, 1000, &s);                   -- leased
 *     const void *item = xr_table_item(t, s.slots[0]);     -- in place
 *     xr_table_update(t, s.keys, new_prios, s.n, NULL);
 *     xr_table_release(t, s.keys, s.n);
 *     xr_table_close(t);
 *
 * Ownership. A table belongs to its engine and lives until the engine
 * stops. An xr_table is one trainer's handle: its own connection, page and
 * leases. Items are read in place from the table's memory, which this
 * process maps read-only: an item stays unchanged while this trainer holds
 * a lease on it (from xr_table_sample() to xr_table_release() of its key),
 * even if the table removes it meanwhile. Closing the handle, or the
 * process's death, ends every lease it holds.
 *
 * Calls return 0 or a count on success, or a negative errno (xring/error.h),
 * with xr_last_reason() saying what was wrong. Thread safety: one thread at
 * a time per handle, in the process that opened it.
 */

#include <stdint.h>

#include "xring/error.h"
#include "xring/export.h"
#include "xring/reader.h" /* xr_last_reason() */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xr_table xr_table;

enum xr_table_sampler {
	XR_SAMPLER_UNIFORM = 0,
	XR_SAMPLER_PRIORITIZED = 1,
	XR_SAMPLER_FIFO = 2,
	XR_SAMPLER_LIFO = 3,
};

enum xr_table_remover {
	XR_REMOVER_FIFO = 0,
	XR_REMOVER_LIFO = 1,
	XR_REMOVER_LOWEST = 2, /* lowest priority */
};

/* A table to create; zero fields take the defaults given. */
typedef struct xr_table_opts {
	uint32_t capacity;           /* items, 1..2^30 */
	uint32_t item_size;          /* bytes per item, 1..1 MiB (0 with source) */
	uint32_t sampler;            /* enum xr_table_sampler (UNIFORM) */
	uint32_t remover;            /* enum xr_table_remover (FIFO) */
	double alpha, beta;          /* prioritized: P(i) ~ p_i^alpha; weights' beta */
	uint32_t max_times_sampled;  /* 0: no limit */
	uint64_t min_size;           /* no sample until this many items (0) */
	double samples_per_insert;   /* the rate limiter's ratio; 0: none */
	double error_buffer;         /* >= max(1, samples_per_insert) with a ratio */
	uint64_t seed;               /* the sampler's random numbers */
	uint32_t engine_uid;         /* see xr_reader_opts.engine_uid */
	/* Fed by the engine: each record of stream `source` (NULL: not fed)
	 * becomes an item, its bytes the record's (item_size 0: the stream's
	 * largest record), at `priority`. The engine reads the stream as a
	 * reader of its own, of the stream's policy: a lossless one waits for
	 * the table's rate limiter, and the games with it. */
	const char *source;
	double priority;
	/* With source: what an item is (enum xr_table_item): a record as it
	 * is (XR_ITEM_RECORD), or a transition the engine builds from two
	 * consecutive records of one seat (XR_ITEM_TRANSITION, of an
	 * Experience stream; item_size must be 0: the engine sizes it). */
	uint32_t item;
} xr_table_opts;

enum xr_table_item {
	XR_ITEM_RECORD = 0,
	XR_ITEM_TRANSITION = 1,
};

/*
 * A transition item: what a seat saw at turn t, what was applied, and what
 * followed. The engine pairs record t of (game, player) with the next
 * record of the same seat, turn t + 1, and writes:
 *
 *     offset 0                          struct xr_transition
 *     offset XR_TRANSITION_OBS          obs_t: obs_bytes, the stream's dtype and dims
 *     + round16(obs_bytes)              obs_t+1
 *     + 2 round16(obs_bytes)            mask_t: legal actions at t, mask_len bytes
 *     + 2 round16(obs_bytes) + round16(mask_len)   mask_t+1
 *
 * (round16: up to a multiple of 16). A record that is done or truncated
 * starts no transition (the seat's next record is turn 0 of a new episode),
 * and neither does a record whose successor is missing (a lossy stream's
 * gap): a pair is made only of turns t and t + 1. xr_table_item_layout()
 * gives the offsets and the observation's shape of a table's items.
 */
typedef struct xr_transition {
	uint64_t seq;        /* record t+1's */
	uint32_t game_id, player_id;
	uint32_t turn;       /* t */
	int32_t action;      /* applied at the step from t: record t+1's applied */
	float reward;        /* record t+1's: what that step gave */
	uint8_t done;        /* record t+1's: the episode ended there */
	uint8_t truncated;   /* ...or was cut short there */
	uint8_t applied_by;  /* record t+1's (enum xr_action_source) */
	uint8_t pad_;
	uint32_t obs_bytes, mask_len;
	uint8_t pad2_[24];
} xr_transition;

#define XR_TRANSITION_OBS 64u

/*
 * What a table's items are (xr_table_item_layout()). TRANSITION: the
 * offsets above and the stream's shape. RECORD, of a table fed from an
 * Experience stream: obs_bytes != 0 and shape is the stream's record shape,
 * so each item is one such record (read it with xr_exp_view_init() over
 * the item's item_size bytes; the bytes past the record are zero). RECORD
 * otherwise: obs_bytes 0, the items are what their inserters made them.
 */
typedef struct xr_item_layout {
	uint32_t item;       /* enum xr_table_item */
	uint32_t obs_off, next_obs_off, mask_off, next_mask_off; /* TRANSITION */
	uint32_t obs_bytes, mask_len;
	xr_exp_shape shape;  /* of the stream's records (see above) */
} xr_item_layout;

typedef struct xr_table_open_opts {
	uint32_t engine_uid;         /* see xr_reader_opts.engine_uid */
} xr_table_open_opts;

/* What a sample gave: n items, each leased. The arrays are this handle's
 * (valid until its next call); copy what must outlive it. */
typedef struct xr_sample {
	uint32_t n;
	const uint64_t *keys;        /* release and update by these */
	const uint32_t *slots;       /* xr_table_item(t, slots[i]) */
	const double *prob;          /* the probability each draw had */
	const double *weight;        /* importance weights (1 unless prioritized) */
} xr_sample;

typedef struct xr_table_stats {
	uint64_t size;               /* items in the table */
	uint64_t leases;             /* held by all its trainers */
	uint64_t inserts, samples, removes; /* over its life */
	uint32_t trainers;
	uint32_t capacity, item_size;
	uint32_t feed;               /* 0: not fed; 1: the engine feeds it; 2: its
				      * feed failed (the engine stopped, or its
				      * stream could not be read) */
	uint64_t feed_dropped;       /* records the feed could not insert (a table
				      * all leased; a lossy stream's refused) */
} xr_table_stats;

/* Creates table `name` (1..31 of A-Z a-z 0-9 _ . -) in engine `engine`.
 * -EEXIST: it exists; -EINVAL: a field out of range (the reason says which);
 * -EDQUOT: this uid created its most tables. */
XR_API int xr_table_create(const char *engine, const char *name, const xr_table_opts *o);

/* Opens table `name` as a trainer. -ENOENT: no such table. */
XR_API int xr_table_open(const char *engine, const char *name, const xr_table_open_opts *o,
			 xr_table **out);

/* Drops table `name` (its creator's uid or the engine's; o may be NULL):
 * its name is free at once, for a new table to take. Its trainers' calls
 * but xr_table_release() fail -EIDRM from then on ("the table was
 * dropped"), waiting ones at once; what they hold stays readable, and unchanging, until they close
 * (xr_table_close()), when the table's memory goes. A fed table's feed
 * stops (its reader leaves the stream). -ENOENT: no such table; -EPERM:
 * another uid's. */
XR_API int xr_table_drop(const char *engine, const char *name, const xr_table_open_opts *o);

/* Samples up to n items (1..1024), waiting up to timeout_ms (0: not at all;
 * -1: an hour, the longest a request may wait) for the rate limiter. Returns
 * the count sampled (fewer than n only for fifo and lifo tables, or when
 * max_times_sampled empties the table), -EAGAIN (timeout 0, nothing may be
 * sampled now), -ETIMEDOUT, -EINVAL (n larger than the limiter could ever
 * allow at once), -ENOBUFS (65536 leases held: release first). */
XR_API int xr_table_sample(xr_table *t, uint32_t n, int timeout_ms, xr_sample *s);

/* As xr_table_sample(), and first ends the leases on release[0..n_release)
 * (at most 1024; keys this trainer does not hold are ignored), in the same
 * request: a trainer's round (the last batch back, the next one out) is one
 * round trip. The releases happen even if the sample then fails or times
 * out. */
XR_API int xr_table_sample_release(xr_table *t, uint32_t n, int timeout_ms,
				   const uint64_t *release, uint32_t n_release, xr_sample *s);

/* What the items of t are, and for transitions where their fields lie
 * (xr_item_layout). */
XR_API void xr_table_item_layout(const xr_table *t, xr_item_layout *l);

/* The item in slot (slots[i] of a sample), read-only; NULL past capacity. */
XR_API const void *xr_table_item(const xr_table *t, uint32_t slot);

/* Ends this trainer's leases on keys[0..n). Returns how many it held;
 * keys it does not hold are skipped (counted in n - the result). */
XR_API int xr_table_release(xr_table *t, const uint64_t *keys, uint32_t n);

/* Sets priorities[i] on keys[i] for i < n (any trainer may). Returns how
 * many were set; *refused (when not NULL) counts keys no longer in the
 * table and priorities that are negative or not a number. */
XR_API int xr_table_update(xr_table *t, const uint64_t *keys, const double *priorities,
			   uint32_t n, uint32_t *refused);

/* Inserts n items (n * item_size bytes from items) at priorities[0..n),
 * waiting up to timeout_ms for the rate limiter or for room. keys (when not
 * NULL) gets each new item's key. Returns n, or how many went before the
 * timeout when some did; -ETIMEDOUT, -EAGAIN (timeout 0) when none did. */
XR_API int xr_table_insert(xr_table *t, const void *items, const double *priorities, uint32_t n,
			   int timeout_ms, uint64_t *keys);

/* Checkpoints (the engine's own uid only: -EPERM for others). The engine
 * writes the table, bookkeeping, rate limiter and items, to a new file at
 * path (never over an existing file: -EEXIST; never through a symbolic
 * link anywhere on the path: -ELOOP), as its
 * uid, and returns the items written. The engine writes it on a thread of
 * its own: other tables are served meanwhile; this one's samples and
 * inserts wait (for at most their timeouts), its releases and priority
 * updates are answered at once and applied after. Relative paths are the
 * engine's working directory's: give absolute ones. */
XR_API int xr_table_checkpoint(xr_table *t, const char *path);

/* Replaces the table by the checkpoint at path (one of a table of the same
 * capacity and item size): items, keys, priorities, and the rate limiter
 * where it stood, so a table that could sample before the checkpoint can
 * after. Returns the items restored. -EBUSY while any trainer holds a
 * lease; -EINVAL for a file that is not an intact checkpoint of such a
 * table (the table is left as it was). Read on a thread of the engine's
 * own, as a checkpoint is written: other tables are served meanwhile; this
 * one's samples, inserts and priority updates wait. */
XR_API int xr_table_restore(xr_table *t, const char *path);

/* The table's figures now (refreshed by the engine as it serves). */
XR_API int xr_table_get_stats(const xr_table *t, xr_table_stats *s);

/* Ends this trainer: its connection closes and every lease it holds ends;
 * the items stay mapped (readable, no longer leased: they may change)
 * until xr_table_close(). Other calls then fail with -ENOTCONN. For
 * bindings whose views of the items may outlive the trainer. */
XR_API void xr_table_disconnect(xr_table *t);

/* Closes the handle: every lease it holds ends, and the items' mapping
 * goes (pointers from xr_table_item() with it). */
XR_API void xr_table_close(xr_table *t);

#ifdef __cplusplus
}
#endif

#endif
