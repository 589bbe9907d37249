/* SPDX-License-Identifier: MIT */
#ifndef XRING_PRODUCER_H
#define XRING_PRODUCER_H

/*
 * External producers: a process that is not the engine writing records
 * into a stream, which trainers then read like any other (filters, wakeups,
 * accounting). The engine keeps the last rings of a stream as producer
 * slots (`xring engine --producers N`); a producer takes one and writes
 * into a staging ring of its own, which the engine copies into the arena
 * ring, checking every record (docs/producers.md):
 *
 *     xr_producer *p;
 *     int rc = xr_producer_open("demo", NULL, &p);
 *     const xr_exp_template *t = xr_producer_template(p);
 *     for (...) {
 *         void *dst;
 *         while ((rc = xr_producer_reserve(p, t->size, &dst)) == -EAGAIN)
 *             xr_producer_wait(p, t->size, -1);   (publishes first)
 *         if (rc < 0) break;                      (the engine ended it)
 *         xr_exp_slots s;
 *         xr_exp_build(t, dst, &fields, &s);
 *         fill s.obs, s.mask;
 *         xr_producer_commit(p);
 *     }
 *     xr_producer_flush(p, -1);   (everything published is in the ring)
 *     xr_producer_close(p);
 *
 * What the engine writes into the ring. Opaque streams: the producer's
 * bytes as they are. Experience streams: any well-formed Experience record
 * of the stream's shape (built with xr_exp_build() and the stream's
 * template, or by another FlatBuffers builder), verified, then built anew
 * with the stream's template, so that readers can view it in place; its
 * seq is the ring's (each ring numbers its records), every other field
 * the producer's. A record that is not well-formed, or of another shape,
 * ends the producer (XR_EBADREC from its next call, the reason in
 * xr_last_reason()); the records before it are in the ring.
 *
 * Backpressure and loss. The stream's policy holds: on a lossless stream a
 * full ring stops the engine taking from the staging ring, which fills,
 * and xr_producer_reserve() returns -EAGAIN until the readers move on; on
 * a lossy stream the engine drops what a held lease stands in the way of,
 * and counts it (xr_producer_stats().dropped).
 *
 * The end. Closing the producer, or its process's death (SIGKILL
 * included), ends its connection: the engine still takes every record
 * published before, then marks the ring ended (readers hand out what it
 * has without waiting for more; xr_reader_ring_writer() says so) until another
 * producer opens the slot. Records reserved or committed but not published
 * are not taken. The engine's stop ends the producer too (XR_ECLOSED).
 *
 * Thread safety: one xr_producer is used by one thread at a time, in the
 * process that opened it.
 */

#include <stdint.h>

#include "xring/export.h"
#include "xring/record.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xr_producer xr_producer;

typedef struct xr_producer_opts {
	const char *stream;      /* NULL: XR_DEFAULT_STREAM */
	uint64_t stage_bytes;    /* the staging ring: 0 for 4 MiB, else a power of
				  * two from 64 KiB to 256 MiB (64 MiB for uids
				  * other than the engine's) */
	uint32_t engine_uid;     /* see xr_reader_opts.engine_uid */
	uint32_t ring;           /* 0: the stream's first free producer slot;
				  * else the slot of the stream's ring `ring`
				  * (xr_producer_stats.ring of an earlier
				  * producer: a bridge coming back takes its
				  * slot again, and learns where it was) */
} xr_producer_opts;

typedef struct xr_producer_stats {
	uint64_t records;        /* the engine put into the ring */
	uint64_t dropped;        /* a lossy ring dropped (counted, not written) */
	uint64_t published;      /* records this producer published */
	uint64_t pending_bytes;  /* published, not yet taken by the engine */
	uint32_t ring;           /* the ring it writes, of the stream's rings */
	uint32_t max_len;        /* the longest record the engine takes */
	/* What the engine had taken from the slot's earlier producers when this
	 * one opened it: the tag of the last record (xr_producer_commit_tag(),
	 * 0: none) and how many records. A producer that resumes a sequence
	 * (a bridge after its restart) starts after that tag. */
	uint64_t resume_tag;
	uint64_t resume_taken;
} xr_producer_stats;

/* Takes a producer slot of a stream of engine `engine` (o may be NULL).
 * Returns 0 and the producer in *out, or -ENOENT (no such engine or
 * stream), -ENOTSUP (the engine has no producer slots for it), -EBUSY
 * (every slot is taken), -EDQUOT (this uid holds its most), -EINVAL (a bad
 * stage_bytes), -EACCES (the engine does not admit this uid), or another
 * -errno; xr_last_reason() says which. The caller owns *out. */
XR_API int xr_producer_open(const char *engine, const xr_producer_opts *o, xr_producer **out);

/* The stream's record template (an Experience stream), to build records
 * in place with xr_exp_build(); NULL for an opaque stream. Valid until
 * xr_producer_close(). */
XR_API const xr_exp_template *xr_producer_template(const xr_producer *p);

/* Reserves room for a record of len bytes in the staging ring, at *payload
 * (aligned as a ring's records are: 64-byte aligned plus 16). It stands
 * until the next xr_producer_commit() or xr_producer_reserve(). Returns 0,
 * -EAGAIN (no room until the engine takes more: xr_producer_wait()),
 * -EMSGSIZE (len is 0 or past stats.max_len), or the producer's end:
 * XR_EBADREC or -EPROTO (the engine refused what it wrote: the reason in
 * xr_last_reason()), XR_ECLOSED (the engine stopped). */
XR_API int xr_producer_reserve(xr_producer *p, uint32_t len, void **payload);
/* Makes the reserved record part of the next publish. */
XR_API void xr_producer_commit(xr_producer *p);
/* The same, with a tag: the producer's word for where the record came
 * from (e.g. a bridge's position in its source). The engine keeps the tag
 * of the last record it took from the slot, across producers: the slot's
 * next producer finds it in xr_producer_stats.resume_tag. */
XR_API void xr_producer_commit_tag(xr_producer *p, uint64_t tag);
/* Hands every committed record to the engine (one release store, and a
 * doorbell byte if the engine sleeps). Returns 0, or the producer's end as
 * xr_producer_reserve() does. */
XR_API int xr_producer_publish(xr_producer *p);
/* reserve, copy len bytes from data, commit (not published). */
XR_API int xr_producer_write(xr_producer *p, const void *data, uint32_t len);
/* Publishes, then waits until a record of len bytes may be reserved, for
 * at most timeout_ns (negative: for ever). Returns 0, -ETIMEDOUT,
 * -EMSGSIZE, or the producer's end. */
XR_API int xr_producer_wait(xr_producer *p, uint32_t len, int64_t timeout_ns);
/* Publishes, then waits until the engine has taken every published record
 * (it is in the ring, or a lossy ring dropped and counted it), for at most
 * timeout_ns (negative: for ever). Returns 0, -ETIMEDOUT, or the end. */
XR_API int xr_producer_flush(xr_producer *p, int64_t timeout_ns);
/* The figures now. Returns 0, or -EINVAL. */
XR_API int xr_producer_get_stats(const xr_producer *p, xr_producer_stats *s);
/* A descriptor that is readable when the engine gave room back or ended
 * the producer (for epoll users: then call xr_producer_reserve()). */
XR_API int xr_producer_fd(const xr_producer *p);
/* Publishes what is committed and ends the producer: the engine takes what
 * was published, then marks the ring ended. Frees p. NULL is a no-op. */
XR_API void xr_producer_close(xr_producer *p);

#ifdef __cplusplus
}
#endif

#endif
