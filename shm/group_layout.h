/* SPDX-License-Identifier: MIT */
#ifndef XR_SHM_GROUP_LAYOUT_H
#define XR_SHM_GROUP_LAYOUT_H

/*
 * A member's page of a consumer group (docs/groups.md): one memfd the engine
 * creates, maps, seals against resizing and hands to that member alone,
 * read-write for both. The member reads records in place from the arena it
 * already maps as a reader; the page only says which.
 *
 *   struct xr_gpage_req   the member's: its request and its releases.
 *                         Untrusted: the engine reads each field once into
 *                         its own memory and checks it.
 *   struct xr_gpage_resp  the engine's: its answer and the group's figures.
 *                         A member scribbling here harms only itself: the
 *                         engine never reads it back.
 *
 * A request is one round trip, as a table's (shm/table_layout.h): the
 * member fills the request and stores req.seq = s (release), then rings its
 * doorbell; the engine loads it (acquire), answers now or when records come
 * (or the wait ends), fills the answer and stores resp.seq = s (release),
 * then rings back. One request in flight per page.
 *
 * A batch handed out is a grant in hold slot `slot` with a `tag` the engine
 * chose. The member gives it back by storing rel[slot] = tag (release) and
 * ringing: with XR_GREL_DONE the records are its own for good (released),
 * with XR_GREL_RETURN they go back to the group for any member to take. A
 * rel word that names no grant the engine made is ignored.
 */

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define XR_GROUP_NAME_MAX 31
#define XR_GROUP_HOLD 64u         /* grants one member holds at once */

enum xr_gop {
	XR_GOP_TAKE = 1,  /* a batch of min..max records, waiting up to wait_ns */
	XR_GOP_STATS = 2, /* the group's figures, now */
};

/* rel[slot]'s low bits: tags are multiples of 4. */
#define XR_GREL_DONE 1ull
#define XR_GREL_RETURN 2ull
#define XR_GREL_MASK 3ull

struct xr_gpage_req {
	_Atomic uint64_t seq;
	uint32_t op;       /* enum xr_gop */
	uint32_t min, max; /* TAKE: 1 <= min <= max <= XR_BATCH_MAX */
	uint32_t pad_;
	int64_t wait_ns;   /* TAKE: < 0 as long as allowed (an hour); 0: no wait */
	uint8_t pad2_[32];
	_Atomic uint64_t rel[XR_GROUP_HOLD];
};

struct xr_gpage_resp {
	_Atomic uint64_t seq;
	int32_t rc;        /* records in the grant (0: none came), or -errno/XR_E* */
	uint32_t slot;     /* its hold slot */
	uint64_t tag;
	uint32_t ring;     /* index in the stream's rings, 0 <= ring < n_rings */
	uint32_t stride, len; /* as xr_batch's */
	uint32_t pad_;
	uint64_t off;      /* first frame: bytes from the ring's mapping */
	uint64_t bytes;    /* first frame to the end of the last */
	uint64_t first_seq;
	/* The group's figures, in the answer to a STATS (else left as they were):
	 * written == done + held + pending + dropped, in records. */
	uint64_t written;  /* since the group began */
	uint64_t done;     /* released by members, living or dead */
	uint64_t held;     /* in members' hands */
	uint64_t pending;  /* not yet handed out, or given back */
	uint64_t dropped;  /* lost by the group (lossy) */
	uint64_t redelivered; /* records a member left that went back to the group */
	uint32_t members;
	uint32_t policy;
	uint8_t pad2_[72];
};

struct xr_gpage {
	struct xr_gpage_req req;
	struct xr_gpage_resp resp;
};

#define XR_GPAGE_SIZE 4096u

_Static_assert(sizeof(struct xr_gpage_req) == 64 + 8 * XR_GROUP_HOLD, "group request");
_Static_assert(offsetof(struct xr_gpage_req, rel) == 64, "group request's releases");
_Static_assert(sizeof(struct xr_gpage_resp) == 192, "group answer");
_Static_assert(offsetof(struct xr_gpage, resp) == 576, "group answer's place");
_Static_assert(sizeof(struct xr_gpage) <= XR_GPAGE_SIZE, "group page");

#endif
