/* SPDX-License-Identifier: MIT */
#ifndef XRING_WRITER_H
#define XRING_WRITER_H

/*
 * Writing records into one ring. A writer belongs to its arena
 * (xr_arena_writer()) and is used by one thread at a time: the ring has one
 * writer, which is why no call here takes a lock or makes a system call on
 * the fast path.
 *
 * Writing is reserve, fill, commit; publishing is separate and covers every
 * record committed since the last publish with one release store, so the
 * cost per record is a handful of plain stores:
 *
 *     void *p;
 *     for (...) {
 *         int rc = xr_writer_reserve(w, len, &p);
 *         if (rc == -EAGAIN)       wait (xr_writer_wait) or pause the game
 *         else if (rc == XR_EDROPPED)  the record was dropped and counted
 *         else { fill p[0..len); xr_writer_commit(w); }
 *     }
 *     xr_writer_publish(w);
 *
 * Readers see a record only after the publish that covers it, and only
 * whole (DESIGN.md invariant 1).
 */

#include <stdint.h>

#include "xring/arena.h"
#include "xring/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Reserves room for a record of len bytes and returns where to write it in
 * *payload: contiguous, writable, aligned to the stream's frame alignment
 * plus 16 (the frame header in front of it). The frame header (size, len,
 * sequence number) is filled in already. The reservation stands until the
 * next xr_writer_commit() or xr_writer_reserve().
 *
 * Returns 0, or:
 *   -EAGAIN      lossless stream and no room: an attached reader (or a held
 *                lease) has not moved on yet, or the backlog passed the high
 *                watermark (xr_writer_set_watermarks). Everything committed
 *                so far has been published. Wait with xr_writer_wait().
 *   XR_EDROPPED  lossy stream and a reader's held lease stands where the
 *                record must go: the record is dropped, which consumes its
 *                sequence number and is counted as a lease stall.
 *   -EMSGSIZE    the frame would be larger than half the ring.
 *   -EINVAL      an Experience stream, and len is not its shape's record
 *                size (xr_exp_template.size): every record of such a
 *                stream has that one size.
 */
XR_API int xr_writer_reserve(xr_writer *w, uint32_t len, void **payload);

/* Makes the reserved record part of the next publish. */
XR_API void xr_writer_commit(xr_writer *w);

/* Makes every committed record visible to readers (one release store).
 * Cheap when nothing is pending. */
XR_API void xr_writer_publish(xr_writer *w);

/* Copies len bytes from data into a new record and commits it (not
 * published). Returns as xr_writer_reserve(). */
XR_API int xr_writer_write(xr_writer *w, const void *data, uint32_t len);

/*
 * Waits until a record of len bytes may be reserved, for at most timeout_ns
 * (negative: forever): until the ring has room and, with watermarks set, the
 * backlog is under the low watermark. Spins, then backs off to sleeping.
 * While it waits the ring is marked blocked, so that readers hand out
 * partial batches; the stop is counted once in the ring's stats however
 * many calls it takes (full_waits, wait_ns). A lossy writer never waits
 * (returns 0: reserve drops instead).
 *
 * Returns 0 when the record may be reserved, -ETIMEDOUT, -EMSGSIZE (the
 * frame would exceed half the ring), or -EINTR: xr_writer_cancel() was
 * called, or a signal handler ran while this thread slept in the wait (so a
 * SIGTERM handler can stop the engine; signals are seen in the wait's sleeps,
 * which begin a few microseconds in).
 */
XR_API int xr_writer_wait(xr_writer *w, uint32_t len, int64_t timeout_ns);

/* Makes the current xr_writer_wait() on w return -EINTR at once, or else
 * the next one that has to wait (a wait that finds room returns 0 and
 * leaves the cancel pending). Safe from any thread and from a signal
 * handler. */
XR_API void xr_writer_cancel(xr_writer *w);

/*
 * Backpressure before the ring is full (lossless streams): once more than
 * high * capacity bytes are unread by the slowest reader, reserve returns
 * -EAGAIN, and xr_writer_wait() waits until fewer than low * capacity are.
 * Checked at each publish; 0 < low < high <= 1, or high = 0 to turn it off
 * (the writer then stops only when the ring is full). On a lossy stream
 * they have no effect: its writer never waits. Returns 0, or -EINVAL
 * (values out of range).
 */
XR_API int xr_writer_set_watermarks(xr_writer *w, double high, double low);

/*
 * The lease timeout: how long a lossy reader may keep costing the stream
 * what its held batches stop before it is evicted (XR_EEVICTED, and the
 * writer goes on). On a lossy stream, while the records it made the writer
 * drop are more than half the records written since it last owed nothing;
 * on a lossless one, while its stops outweigh the time between them. Each
 * eviction halves the timeout for that uid's readers for a while. Hold a
 * lossy batch for less than the ring takes to fill; a reader that needs
 * records longer copies them. Lossless readers are never evicted for being
 * slow. Default 10 s; 0: never; values from 1 ns to 1 ms are taken as 1 ms,
 * and the largest is 2^50 ns (13 days). Returns 0, or -EINVAL.
 */
XR_API int xr_writer_set_lease_timeout(xr_writer *w, uint64_t timeout_ns);

/* The sequence number the next reserved record will carry. */
XR_API uint64_t xr_writer_next_seq(const xr_writer *w);

#ifdef __cplusplus
}
#endif
#endif
