/* SPDX-License-Identifier: MIT */
#ifndef XRING_READER_H
#define XRING_READER_H

/*
 * Reading a stream. A reader attaches to an engine by name, to one of its
 * streams, and takes batches of records in place: the records stay in the
 * ring, mapped read-only into this process, and the reader holds a lease on
 * each batch until it releases it. While the lease is held the writer does not
 * overwrite the batch, in any policy.
 *
 *     xr_reader *r;
 *     xr_batch b;
 *     int n = xr_reader_attach("demo", NULL, &r);
 *     while ((n = xr_reader_read(r, 1, 256, 10000000, &b)) >= 0) {
 *         const xr_frame *f = b.first;
 *         for (uint32_t i = 0; i < b.count; i++, f = xr_frame_next(f))
 *             use(xr_frame_data(f), f->len);
 *         xr_batch_release(r, &b);
 *     }
 *     xr_reader_detach(r);
 *
 * Thread safety: one xr_reader is used by one thread at a time. Several
 * readers, in one process or many, each see every record (broadcast).
 */

#include <stdint.h>

#include "xring/export.h"
#include "xring/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xr_reader xr_reader;

typedef struct xr_reader_opts {
	const char *stream;  /* NULL: XR_DEFAULT_STREAM */
	xr_policy policy;    /* DEFAULT: the stream's policy */
	const char *label;   /* shown by `xring info`; NULL: the program name */
} xr_reader_opts;

/* At most this many records in one batch, and this many batches held. */
#define XR_BATCH_MAX 65536
#define XR_HELD_MAX 64

/*
 * A batch: `count` records taken from one ring, contiguous in memory starting
 * at `first`, in sequence order. Plain data filled by xr_reader_read(); the
 * caller owns the struct, the reader owns the memory it points to, which is
 * valid until xr_batch_release().
 */
typedef struct xr_batch {
	const xr_frame *first;
	uint32_t count;
	uint32_t ring;       /* which ring of the stream (one per shard) */
	uint64_t bytes;      /* frame bytes from first to the end of the batch */
	uint64_t first_seq;
	uint32_t stride;     /* frame size if every frame has the same size, else 0 */
	uint32_t dropped;    /* records lost just before this batch */
	uint64_t id_;        /* internal: identifies the lease */
} xr_batch;

typedef struct xr_reader_stats {
	/* Exact at any quiet point (writer idle): written == read + dropped + pending. */
	uint64_t written;    /* records produced since this reader attached */
	uint64_t read;       /* records handed to this reader */
	uint64_t dropped;    /* records this reader lost (lossy only) */
	uint64_t pending;    /* records waiting in the rings for this reader */
	uint64_t lag_bytes;  /* bytes published but not yet read */
	uint32_t held;       /* batches held (leases) */
	uint32_t policy;     /* the policy in force, LOSSLESS or LOSSY */
} xr_reader_stats;

/*
 * Attaches to the stream of the running engine `engine`. Lossless readers
 * start at the newest record and see every record after it; lossy readers
 * likewise, minus what they are too slow for.
 *
 * Returns 0 and the handle in *out (owned by the caller, freed by
 * xr_reader_detach()), or:
 *   -EINVAL       bad name or options
 *   -ENOENT       no engine of that name, or no such stream
 *   XR_ELAYOUT    the engine was built with an incompatible xring
 *   XR_ECLOSED    the engine has closed its arena or died
 *   XR_EPOLICY    a lossless reader asked for on a lossy stream
 *   -EBUSY        the engine's reader table is full
 *   -EACCES       no permission to open the arena
 */
XR_API int xr_reader_attach(const char *engine, const xr_reader_opts *opts, xr_reader **out);

/*
 * Takes the next batch: between min and max records from one ring, waiting
 * at most max_wait_ns (negative: forever; 0: do not wait) for min records to
 * be there. When the wait ends with fewer than min, returns what there is.
 * Waiting spins briefly, then sleeps in growing steps (eventfd wakeups come
 * with the engine).
 *
 * Returns the number of records in *b (> 0; the batch is leased), 0 if none
 * arrived in time, or:
 *   -EINVAL       min == 0, min > max, max > XR_BATCH_MAX
 *   -ENOBUFS      XR_HELD_MAX batches are held already: release one
 *   XR_ECLOSED    the engine closed or died and every published record has
 *                 been read
 *   XR_EEVICTED   the engine detached this reader (it wrote a cursor that
 *                 cannot be right, or was taken for dead)
 *   -EPROTO       the ring holds a malformed frame (a bug or corruption)
 */
XR_API int xr_reader_read(xr_reader *r, uint32_t min, uint32_t max, int64_t max_wait_ns,
			  xr_batch *b);

/* Ends the lease on b; its memory may be overwritten from now on. Batches
 * may be released in any order. Returns 0, or -EINVAL if b is not a batch
 * this reader holds (released twice, or from another reader). */
XR_API int xr_batch_release(xr_reader *r, xr_batch *b);

/* Fills *s. Takes a short lease to count what is pending. Returns 0, or
 * XR_EEVICTED. */
XR_API int xr_reader_stats_get(xr_reader *r, xr_reader_stats *s);

/* Releases every lease, frees the reader's slot and the handle. Safe after
 * any error, including XR_ECLOSED and XR_EEVICTED. NULL is ignored. */
XR_API void xr_reader_detach(xr_reader *r);

/* Facts about the stream this reader reads. */
typedef struct xr_stream_facts {
	const char *name;
	uint32_t policy;     /* the stream's policy */
	uint32_t n_rings;
	uint64_t ring_capacity;
	uint32_t frame_align;
	uint32_t record_kind; /* xr_record_kind */
} xr_stream_facts;

XR_API void xr_reader_stream_facts(const xr_reader *r, xr_stream_facts *f);

#ifdef __cplusplus
}
#endif
#endif
