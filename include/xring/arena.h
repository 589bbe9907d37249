/* SPDX-License-Identifier: MIT */
#ifndef XRING_ARENA_H
#define XRING_ARENA_H

/*
 * The writer's side: an arena is one named shared-memory file, created and
 * owned by one engine process, holding its streams' rings and the table of
 * attached readers. Readers attach through the engine's control server
 * (xring/server.h), which hands them the arena read-only; tools of the
 * engine's own uid may open it by name.
 *
 * Thread safety: an xr_arena may be used from several threads as long as
 * xr_arena_destroy() runs after all of them stop. Each ring has exactly one
 * writer handle (xring/writer.h), used by one thread at a time.
 */

#include <stddef.h>
#include <stdint.h>

#include "xring/export.h"
#include "xring/record.h"
#include "xring/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xr_arena xr_arena;
typedef struct xr_writer xr_writer;

#define XR_NUMA_DEFAULT (-1) /* node of the first CPU this process may run on */
#define XR_NUMA_NONE (-2)    /* do not bind */

typedef struct xr_stream_spec {
	const char *name;        /* NULL: XR_DEFAULT_STREAM */
	xr_policy policy;        /* DEFAULT means LOSSLESS */
	uint32_t n_rings;        /* one per writer (shard); 0 means 1 */
	uint64_t ring_bytes;     /* per ring; rounded up to a power of two and to
				  * the backing page size; 0 means 4 MiB */
	uint32_t frame_align;    /* power of two in [16, 4096]; 0 means 64 */
	xr_record_kind kind;
	xr_exp_shape shape;      /* the record shape when kind is EXPERIENCE */
	uint32_t producers;      /* of n_rings, the last this many are slots for
				  * external producers (xring/producer.h),
				  * written by no shard; <= n_rings */
} xr_stream_spec;

typedef struct xr_arena_spec {
	const char *name;        /* engine name, [A-Za-z0-9_.-], <= XR_NAME_MAX */
	const xr_stream_spec *streams;
	uint32_t n_streams;      /* 1 .. 8 */
	uint32_t max_readers;    /* 0 means 64; at most 256 */
	xr_hugepages hugepages;
	int numa_node;           /* a node, XR_NUMA_DEFAULT or XR_NUMA_NONE */
} xr_arena_spec;

/*
 * Creates, sizes, binds and maps the arena, then publishes it under its
 * name. Memory is prefaulted here, so no record write ever faults a page in.
 * The file (mode 0600: the engine's uid only) appears under its final name
 * only once it is complete: a reader never sees a half-built arena.
 *
 * Returns 0 and the handle in *out, or:
 *   -EINVAL       a bad spec (name, sizes, too many streams/rings/readers)
 *   -EEXIST       an engine of that name is running, or something else holds
 *                 the name: another user's file, a link, a FIFO, a file of
 *                 ours that is not an arena (xr_arena_last_note() says what
 *                 and where). A stale arena of this user left by a dead
 *                 engine is replaced.
 *   XR_ENOHUGE    hugepages == REQUIRE and no hugetlbfs mount or too few free
 *                 huge pages; xr_arena_last_note() says which
 *   -EMSGSIZE     an Experience stream whose record frame would not fit half
 *                 its ring (xr_arena_last_note() names the stream)
 *   -ENOMEM, -ENOSPC, other -errno from the system
 * The caller owns the handle and must xr_arena_destroy() it.
 */
XR_API int xr_arena_create(const xr_arena_spec *spec, xr_arena **out);

/* Why the last xr_arena_create() in this thread chose (or failed to find)
 * its backing, e.g. "too few free 2048 kB huge pages (need 36, have 0; run
 * `xring setup` or raise vm.nr_hugepages)". Static
 * thread-local storage; "" if nothing to say. */
XR_API const char *xr_arena_last_note(void);

/*
 * Marks the arena closed: publishes what every writer committed, stores
 * CLOSED (readers then get XR_ECLOSED once they have read what was
 * published), removes its name and wakes every sleeping reader. The memory
 * stays mapped: stop the writers first. Idempotent.
 */
XR_API void xr_arena_close(xr_arena *a);

/*
 * Closes the arena (xr_arena_close) if not done yet, unmaps it and frees the
 * handle and its writers. Readers that still map it keep their memory until
 * they detach. Returns 0, or -EBUSY while something still uses the arena (a
 * control server: stop it first with xr_server_stop(), which also releases
 * every reader's slot); the arena is then left as it was. NULL is ignored.
 */
XR_API int xr_arena_destroy(xr_arena *a);

/* Index of the stream called name, or -ENOENT. */
XR_API int xr_arena_stream(const xr_arena *a, const char *name);

/*
 * The writer handle of ring `ring` of stream `stream`. The arena owns it;
 * it lives until xr_arena_destroy(). Returns 0, or -EINVAL for indices out
 * of range.
 */
XR_API int xr_arena_writer(xr_arena *a, uint32_t stream, uint32_t ring, xr_writer **out);

/* Stores the current time as the engine's heartbeat, shown by `xring info`. */
XR_API void xr_arena_heartbeat(xr_arena *a);

/* Facts about the arena's memory, for logs and the CLI. */
typedef struct xr_arena_facts {
	xr_backing backing;
	uint64_t page_size;
	uint64_t total_size;
	int numa_node;           /* -1 if unbound */
	const char *path;        /* valid while the arena lives */
	const char *note;        /* why this backing; valid while the arena lives */
} xr_arena_facts;

XR_API void xr_arena_facts_get(const xr_arena *a, xr_arena_facts *f);

/* "hugetlbfs", "shm+thp", "shm", "dir" */
XR_API const char *xr_backing_name(xr_backing b);

#ifdef __cplusplus
}
#endif
#endif
