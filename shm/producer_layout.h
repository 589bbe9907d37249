/* SPDX-License-Identifier: MIT */
#ifndef XR_SHM_PRODUCER_LAYOUT_H
#define XR_SHM_PRODUCER_LAYOUT_H

/*
 * An external producer's staging ring (docs/producers.md): a memfd the
 * engine makes for one producer, mapped read-write by both. The producer
 * writes frames into it and publishes them (head); the engine's producer
 * thread copies each published frame into the producer's ring of the arena,
 * checking it first, and gives the room back (tail). Readers never see this
 * memory: what they read is the engine's copy, in the arena, which no peer
 * can write (DESIGN.md, trust boundary).
 *
 * Everything here is writable by the producer, so the engine reads every
 * field as hostile: it keeps its own copies of the constants and of tail,
 * loads head once per round and checks it against what it knows (never
 * behind its tail, never more than a lap ahead, frame aligned), reads each
 * frame's header once, and copies a record out before checking it (the
 * producer may change the bytes while they are copied: the check is of the
 * copy). Fields the engine writes here (tail, state, figures) are for the
 * producer's eyes only; the engine never reads them back.
 *
 * Frames. Each frame starts XR_PFRAME_ALIGN-aligned with a 16-byte header,
 * then the record (as a ring's frames do, so a record built in place in
 * the staging ring has the alignment it will have in the arena), padded to
 * XR_PFRAME_ALIGN. A frame never wraps: when the next one does not fit
 * before the end, the producer writes a PAD header there and the frame
 * starts at offset 0 of the next lap.
 *
 * Wakeups, both ways, are the store-buffering pattern: a side that is about
 * to sleep stores its flag (seq_cst) and then loads the other side's
 * position again (seq_cst); the other side stores its position (seq_cst)
 * and then loads the flag (seq_cst). Either the sleeper sees the new
 * position, or the other side sees the flag and sends a byte on the
 * doorbell (a socket pair: the engine's end is its own, never blocking).
 */

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define XR_PSTAGE_MAGIC 0x31475453505258ull /* "XRPSTG1" */
#define XR_PSTAGE_HDR 4096u                 /* the header page; frames after it */
#define XR_PSTAGE_MIN (64u << 10)
#define XR_PSTAGE_MAX (256u << 20)
#define XR_PSTAGE_DEFAULT (4u << 20)
#define XR_PFRAME_ALIGN 64u
#define XR_PFRAME_HDR 16u

enum xr_pframe_kind {
	XR_PFRAME_RECORD = 1,
	XR_PFRAME_PAD = 2,   /* the rest of this lap is empty */
};

struct xr_pframe {
	uint32_t len;        /* the record's bytes (RECORD) */
	uint32_t kind;       /* enum xr_pframe_kind */
	uint64_t tag;        /* the producer's word for the record (a bridge's:
			      * where it came from); the engine keeps the last
			      * one it took, for the slot's next producer */
};

/* The producer's state as the engine shows it (xr_pstage_hdr.state). */
enum xr_pstage_state {
	XR_PSTAGE_LIVE = 1,
	XR_PSTAGE_FAULT = 2,  /* the engine stopped taking from it: `reason` */
	XR_PSTAGE_CLOSED = 3, /* the engine stopped (its arena closed) */
};

struct xr_pstage_hdr {
	/* Constants, written before the memfd is handed out. */
	uint64_t magic;
	uint32_t version;     /* 1 */
	uint32_t ring;        /* the arena ring this producer writes */
	uint64_t capacity;    /* frame bytes, a power of two */
	uint32_t record_len;  /* every record this long (an Experience stream); 0: any */
	uint32_t max_len;     /* the longest record the engine takes */
	uint8_t pad0_[32];

	/* The producer's line. */
	_Atomic uint64_t head;    /* bytes published, free-running */
	_Atomic uint32_t waiting; /* the producer sleeps until tail moves */
	uint8_t pad1_[52];

	/* The engine's line (for the producer to read; never read back). */
	_Atomic uint64_t tail;     /* bytes the engine has taken */
	_Atomic uint32_t sleeping; /* the engine sleeps until head moves */
	_Atomic uint32_t state;    /* enum xr_pstage_state */
	_Atomic uint64_t records;  /* written into the ring */
	_Atomic uint64_t dropped;  /* a lossy ring's drops of them */
	uint8_t pad2_[32];

	int32_t fault;             /* with FAULT: an error code ... */
	char reason[252];          /* ... and one line saying what was wrong */
};

_Static_assert(offsetof(struct xr_pstage_hdr, head) == 64, "producer line");
_Static_assert(offsetof(struct xr_pstage_hdr, tail) == 128, "engine line");
_Static_assert(sizeof(struct xr_pstage_hdr) <= XR_PSTAGE_HDR, "staging header");
_Static_assert(sizeof(struct xr_pframe) == XR_PFRAME_HDR, "frame header");

#endif
