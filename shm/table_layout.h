/* SPDX-License-Identifier: MIT */
#ifndef XR_SHM_TABLE_LAYOUT_H
#define XR_SHM_TABLE_LAYOUT_H

/*
 * A replay table in shared memory (docs/replay.md, "The service"): two kinds
 * of region, neither in the arena, since tables come and go while it runs.
 *
 *   ITEM STORE (one per table; a memfd the engine creates, writes and seals;
 *   trainers map it read-only)
 *     struct xr_tstore_hdr    identity and sizes
 *     uint64_t keys[capacity] at keys_off: the key of the item in each slot
 *                             (0: none), stored with release after its bytes
 *     items                   at items_off, slot i at items_off + i * stride
 *
 *   TRAINER PAGE (one per trainer per table; a memfd the engine creates and
 *   hands to that trainer alone, read-write for it)
 *     struct xr_tpage_req     the trainer's request: untrusted input, read
 *                             once per field into the engine's own memory
 *     struct xr_tpage_resp    the engine's answer; the trainer could
 *                             scribble over it, which harms only itself:
 *                             the engine never reads it back
 *     insert area             at XR_TPAGE_INSERT_OFF: the bytes of the items
 *                             a trainer inserts, item_size each
 *
 * A request is one round trip: the trainer fills the request, then stores
 * req.seq = s (release); the engine loads it (acquire), copies what it
 * uses, serves it (now, or parked until the limiter allows or its timeout),
 * fills the answer and stores resp.seq = s (release), which the trainer
 * loads (acquire). One request in flight per page. While the service works
 * on a request it says so in resp.working, and the trainer spins on.
 */

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define XR_TSTORE_MAGIC 0x31455453524c5258ull /* "XRLRSTE1" */
#define XR_TABLE_BATCH_MAX 1024u     /* items per request */
#define XR_TABLE_NAME_MAX 31

enum xr_top {
	XR_TOP_SAMPLE = 1,   /* n items, waiting up to timeout_ns for the limiter */
	XR_TOP_RELEASE = 2,  /* end the leases on keys[0..n) */
	XR_TOP_UPDATE = 3,   /* priorities prio[0..n) for keys[0..n) */
	XR_TOP_INSERT = 4,   /* n items from the insert area, priorities prio[] */
	XR_TOP_CHECKPOINT = 5, /* write the table to the new file at path */
	XR_TOP_RESTORE = 6,  /* replace the table by the checkpoint at path */
};

#define XR_TPAGE_PATH_MAX 256

struct xr_tstore_hdr {
	uint64_t magic;
	uint32_t capacity;
	uint32_t item_size;  /* bytes of an item */
	uint64_t stride;     /* bytes from one slot's item to the next (64-aligned) */
	uint64_t keys_off;
	uint64_t items_off;
	uint64_t total_size;
	char name[XR_TABLE_NAME_MAX + 1];
	/* Figures, stored by the service after each poll (relaxed): numbers to
	 * show, never to act on. */
	_Atomic uint64_t size;       /* live items */
	_Atomic uint64_t leases;     /* held, all trainers */
	_Atomic uint64_t inserts, samples, removes; /* the limiter's counts */
	_Atomic uint32_t trainers;
	_Atomic uint32_t feed;       /* XR_TFEED_*: the engine's feed of it */
	_Atomic uint64_t feed_dropped; /* records the feed could not insert */
	/* What an item is (enum xr_table_item), and for transitions or
	 * Experience records fed from a stream that stream's record shape:
	 * written before the store is handed out. */
	uint32_t item_kind;
	uint32_t obs_dtype, obs_ndim;
	int32_t obs_dims[8];
	uint32_t mask_len;
	uint32_t extras_len;
	uint32_t has_shape;  /* 1: the fields above say the records' shape */
	_Atomic uint32_t dropped; /* 1: the table was dropped (requests: -EIDRM) */
};

enum { XR_TFEED_NONE = 0, XR_TFEED_ON = 1, XR_TFEED_FAILED = 2 };

struct xr_tpage_req {
	_Atomic uint32_t seq;
	uint32_t op;         /* enum xr_top */
	uint32_t n;
	uint32_t n_release;  /* SAMPLE: keys[0..n_release) released first, once */
	uint64_t timeout_ns; /* SAMPLE and INSERT: how long it may wait */
	uint64_t keys[XR_TABLE_BATCH_MAX];
	double prio[XR_TABLE_BATCH_MAX];
	char path[XR_TPAGE_PATH_MAX]; /* CHECKPOINT, RESTORE: NUL-terminated */
};

struct xr_tpage_resp {
	_Atomic uint32_t seq;   /* the request answered */
	int32_t rc;             /* items served (>= 0) or a negative errno */
	uint32_t refused;       /* RELEASE, UPDATE: keys that named nothing of
				 * this trainer's (or of the table's) */
	/* The seq of the request the service is working on now, stored
	 * (relaxed) before it serves a SAMPLE, RELEASE, UPDATE or INSERT and
	 * cleared when one parks: a hint that the answer is coming soon, on
	 * which the trainer keeps spinning instead of going to sleep. Nothing
	 * is read through it (resp.seq carries the answer). */
	_Atomic uint32_t working;
	char why[160];          /* with rc < 0: what was wrong */
	uint64_t keys[XR_TABLE_BATCH_MAX];   /* SAMPLE, INSERT */
	uint32_t slots[XR_TABLE_BATCH_MAX];  /* SAMPLE, INSERT */
	double prob[XR_TABLE_BATCH_MAX];     /* SAMPLE */
	double weight[XR_TABLE_BATCH_MAX];   /* SAMPLE */
};

#define XR_TPAGE_RESP_OFF 20480u
#define XR_TPAGE_INSERT_OFF 65536u
#define XR_TPAGE_INSERT_BYTES (16u << 20) /* an insert moves at most this */

/* Items one insert request may carry: a batch, or fewer of large items, so
 * that no request costs the engine more than 16 MiB of copying. */
static inline uint32_t xr_tpage_insert_max(uint32_t item_size)
{
	uint32_t n = XR_TPAGE_INSERT_BYTES / (item_size ? item_size : 1);
	return n < 1 ? 1 : n > XR_TABLE_BATCH_MAX ? XR_TABLE_BATCH_MAX : n;
}

/* A trainer page for items of item_size bytes: the insert area holds
 * xr_tpage_insert_max() items. */
static inline uint64_t xr_tpage_size(uint32_t item_size)
{
	return XR_TPAGE_INSERT_OFF + (uint64_t)item_size * xr_tpage_insert_max(item_size);
}

_Static_assert(sizeof(struct xr_tpage_req) <= XR_TPAGE_RESP_OFF, "request before answer");
_Static_assert(XR_TPAGE_RESP_OFF + sizeof(struct xr_tpage_resp) <= XR_TPAGE_INSERT_OFF,
	       "answer before the insert area");
_Static_assert(offsetof(struct xr_tpage_req, keys) == 24, "request keys");
_Static_assert(offsetof(struct xr_tpage_req, path) == 24 + 16 * XR_TABLE_BATCH_MAX, "request path");
_Static_assert(offsetof(struct xr_tpage_resp, why) == 16, "answer reason");
_Static_assert(offsetof(struct xr_tpage_resp, keys) == 176, "answer keys");
_Static_assert(offsetof(struct xr_tstore_hdr, size) == 80, "store figures");
_Static_assert(offsetof(struct xr_tstore_hdr, dropped) == 192, "store dropped");
_Static_assert(sizeof(struct xr_tstore_hdr) == 200, "store header");
_Static_assert(offsetof(struct xr_tstore_hdr, item_kind) == 136, "store item kind");

#endif
