/* SPDX-License-Identifier: MIT */
#ifndef XR_SHM_RING_READER_H
#define XR_SHM_RING_READER_H

/* One reader's side of one ring: the protocol of shm/ring_writer.c seen
 * from the reader. Used by client/reader.c; one thread at a time. */

#include <stdbool.h>
#include <stdint.h>

#include "record/filter.h"
#include "shm/arena_priv.h"
#include "shm/layout.h"

struct xr_ring_rd {
	const struct xr_ring_desc *rd;
	struct xr_cursor *cur;   /* ours, in our peer page */
	const uint8_t *data;     /* read-only, mapped twice */
	uint64_t cap, mask;
	uint32_t align;
	uint32_t fixed_len;      /* every record this long (rd->record_len), 0: any */
	uint32_t fixed_size;     /* ...and so every frame this size */
	bool lossless;

	uint64_t pos;            /* next byte to read */
	uint64_t lease;          /* mirror of cur->lease */
	uint64_t start_seq;      /* first seq counted as written for us */
	uint64_t next_seq;       /* seq expected next */
	uint64_t read, dropped;
	uint64_t filtered;       /* records skipped by the reader's filter */
	uint32_t held;           /* batches held on this ring */
	const char *bad;         /* what the last walk refused (-EPROTO)... */
	uint64_t bad_at;         /* ...and where: for the caller's reason */
};

/* What a walk of the ring from pos found. With a filter, frames that fail
 * it are walked over: those before the first that passes form the "skip"
 * prefix, which may be consumed on its own (xr__rr_skip). */
struct xr_take {
	uint64_t start, end;     /* byte positions: first taken frame, past the last walked */
	uint64_t taken_end;      /* past the last taken frame */
	uint64_t head;           /* the head the walk went towards */
	uint32_t count;          /* frames taken (that passed the filter) */
	uint32_t seen;           /* frames walked, taken or skipped */
	uint32_t stride;         /* common frame size, 0 if mixed */
	uint32_t len;            /* common record length, 0 if mixed */
	bool full;               /* stopped at max frames or max bytes, not at head */
	bool contiguous;         /* the taken frames are back to back from start */
	uint64_t first_seq, next_seq;
	uint64_t gaps;           /* records lost before/among these frames */
	uint64_t skip_end, skip_next_seq, skip_gaps;
	uint32_t skip_frames;
	const char *bad;         /* -EPROTO: what was wrong (a static string)... */
	uint64_t bad_at;         /* ...at which position */
};

/* rd: the ring's shared producer state (atomics only are read from it);
 * rf: its constants, from the reader's own validated copy of the layout;
 * cur: this reader's cursor, in its peer page. */
void xr__rr_init(struct xr_ring_rd *rr, const struct xr_ring_desc *rd,
		 const struct xr_ring_fixed *rf, struct xr_cursor *cur, const uint8_t *data,
		 bool lossless);

/* How long a writer may stay mid-publish before a reader gives up on it. */
#define XR_SNAPSHOT_MAX_NS 1000000000ull

/* Puts the reader at the newest record (attach). Slot must be ACTIVE.
 * Returns 0, or -EPROTO: the writer stayed mid-publish for
 * XR_SNAPSHOT_MAX_NS (it died or was stopped in the middle of one; rr->bad
 * NULL), or the ring's tail is past its head (rr->bad says so). */
int xr__rr_start(struct xr_ring_rd *rr);

/* Puts the reader `back` records before the newest (0: at the newest, as
 * xr__rr_start; more than the ring holds: at the oldest it still holds), per
 * ring, counting every record whatever the filter. Returns 0, or -EPROTO as
 * xr__rr_start, or for frames that cannot be (rr->bad says which). */
int xr__rr_start_back(struct xr_ring_rd *rr, uint64_t back);

/*
 * Walks from pos until max frames pass the filter (NULL or f->all: every
 * frame passes), max_bytes would be exceeded, or head, taking a lease first
 * if none is held. With idx, stores a pointer to each frame that passes in
 * idx[0..count). Fills *t; does not move pos. Returns 0 or -EPROTO for a
 * malformed frame (rr->bad and rr->bad_at say what and where). A walk
 * trusts nothing but a lease the writer honours: one whose slot was
 * evicted meanwhile may have walked bytes being overwritten, and the
 * caller must check its slot after the walk (RI2, client/reader.c) before
 * it believes either answer.
 */
int xr__rr_peek(struct xr_ring_rd *rr, uint32_t max, uint64_t max_bytes,
		const struct xr_filt *filter, const xr_frame **idx, struct xr_take *t);

/* Takes what peek found: pos moves past it, counters move, held++. */
void xr__rr_commit(struct xr_ring_rd *rr, const struct xr_take *t);

/* Consumes only the skip prefix of a peek: frames that failed the filter
 * before the first that passed. The lease is the caller's to move. */
void xr__rr_skip(struct xr_ring_rd *rr, const struct xr_take *t);

/* After a peek that was not committed: drops a lease nobody needs. */
void xr__rr_unpeek(struct xr_ring_rd *rr);

/* Moves the lease to `oldest` (start of the oldest batch still held), or,
 * when none is held (oldest == XR_NO_LEASE), to pos (lossless) or off
 * (lossy). R4: release store. */
void xr__rr_set_lease(struct xr_ring_rd *rr, uint64_t oldest);

/* Counts pending records and not-yet-seen drops up to the current head.
 * *written is records produced since start. Returns 0, -ETIMEDOUT where
 * xr__rr_start returns -EPROTO (the writer stayed mid-publish), or -EPROTO
 * for a malformed frame (rr->bad, rr->bad_at; and the same caveat as
 * xr__rr_peek: check the slot after). */
int xr__rr_count(struct xr_ring_rd *rr, uint64_t *pending, uint64_t *unseen_drops,
		 uint64_t *written, uint64_t *lag);

/* Mirrors the local counters into the cursor, for `xring info`. */
void xr__rr_mirror(struct xr_ring_rd *rr);

#endif
