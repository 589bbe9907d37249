/* SPDX-License-Identifier: MIT */
#ifndef XR_SHM_ARENA_PRIV_H
#define XR_SHM_ARENA_PRIV_H

/* The process-local handles behind xr_arena and xr_writer, and the internal
 * API the reader library and tools use to open an existing arena. */

#include <stdbool.h>
#include <stdint.h>

#include "shm/layout.h"
#include "xring/arena.h"

/* Slot states beyond the public four: a reaper owns the slot. */
#define XR_SLOT_REAPING 4u

struct xr_writer {
	struct xr_arena *arena;
	struct xr_ring_desc *rd;
	struct xr_cursor *cursors;   /* this ring's cursors, [max_readers] */
	struct xr_reader_slot *slots;
	uint8_t *data;               /* ring bytes, mapped twice back to back */
	uint64_t cap;
	uint64_t mask;
	uint64_t chunk;              /* how far tail advances at once */
	uint32_t align;
	uint32_t max_frame;
	uint32_t record_len;         /* nonzero: the only length accepted */
	uint32_t max_readers;
	uint32_t policy;

	/* Writer-private state: only this thread touches it. */
	uint64_t head;               /* committed bytes (published or not) */
	uint64_t published;          /* last head stored to rd->head */
	uint64_t seq;                /* next sequence number */
	uint64_t seq_published;
	uint64_t tail;               /* last tail stored to rd->tail */
	uint64_t limit;              /* head + size <= limit: room, no scan */
	uint32_t reserved;           /* size of the reserved frame, 0 if none */
	uint64_t records;            /* not yet flushed to rd stats */
	uint64_t bytes;              /* head at the last stats flush */
	int blocker;                 /* slot that blocked the last make-room */
	uint32_t stalls_since_reap;  /* lossy: drops since the last reap check */
	uint64_t last_reap_ns;
	/* Frame boundaries recorded every cap/32 bytes, so that advancing tail
	 * does not walk every frame. */
	uint64_t next_mark;
	uint32_t mark_first, mark_end;
	uint64_t marks[64];
	/* Waking sleeping readers after a publish (shm/wake.c); NULL when no
	 * control server runs. */
	struct xr_wake *wake;
	struct xr_wake_memo *memo;   /* [max_readers] */
};

struct xr_arena {
	int fd;
	bool owner;                  /* created it: writer side */
	uint64_t map_len;            /* writer: whole file mapped at hdr */
	struct xr_arena_hdr *hdr;
	struct xr_reader_slot *slots;
	struct xr_cursor *cursors;
	uint8_t *ring_data[XR_MAX_RINGS];
	struct xr_writer *writers;   /* owner only, [n_rings] */
	struct xr_wake *wake;        /* owner only, with a control server */
	struct xr_ctl *ctl;          /* owner only: the control server */
	_Atomic uint8_t *ctl_owned;  /* owner only, [max_readers]: slots the
				      * control server handed out (and frees) */
	char path[XR_PATH_MAX];
	char note[XR_NOTE_MAX];
};

/* How xr__arena_open maps things. */
enum {
	XR_OPEN_CTL_RW = 1,   /* map the control region writable (readers) */
	XR_OPEN_RINGS = 2,    /* map ring data (of stream `stream`, or all) */
};

/*
 * Opens the arena of engine `name` read-only (header, rings) with the control
 * region read-only or read-write per flags. With XR_OPEN_RINGS maps the rings
 * of stream index `stream`, or of every stream if stream < 0.
 * Returns 0, -ENOENT (no such engine), XR_ENOTARENA, XR_ELAYOUT, XR_ECLOSED
 * (closed, or its engine is dead), or -errno.
 */
int xr__arena_open(const char *name, int flags, int stream, struct xr_arena **out);
void xr__arena_close(struct xr_arena *a);

/* The same, for an arena file already open on fd (handed over by the
 * engine's control socket). Takes ownership of fd, also on failure. */
int xr__arena_open_fd(int fd, int flags, int stream, struct xr_arena **out);

/* Whether the engine behind an opened arena still runs and has not closed. */
bool xr__arena_alive(const struct xr_arena *a);

static inline struct xr_cursor *xr__cursor(const struct xr_arena *a, uint32_t ring,
					   uint32_t slot)
{
	return &a->cursors[(uint64_t)ring * a->hdr->max_readers + slot];
}

/* Writer side: reap one slot whose process is gone. Returns 1 if this call
 * reaped it. */
int xr__reap_slot(struct xr_arena *a, uint32_t slot);

/* Writer side: evict a reader that broke the protocol. Returns whether this
 * call evicted it (false: it was not ACTIVE, or another writer got there). */
bool xr__evict_slot(struct xr_arena *a, uint32_t slot, uint32_t reason);

void xr__writer_init(struct xr_writer *w, struct xr_arena *a, uint32_t ring);

/* Bytes committed that the slowest honoured lease has not released yet (0
 * with no lease): how full the ring is for backpressure. Scans the leases
 * like a reclaim does, without moving tail or evicting anyone. */
uint64_t xr__writer_backlog(const struct xr_writer *w);

/* Counts a stop of the writer for its readers in the ring's stats: call
 * with ns == 0 when it starts (full_waits++, visible at once to `xring
 * info`), and with its length when it ends (wait_ns). */
void xr__writer_count_pause(struct xr_writer *w, uint64_t ns);

#endif
