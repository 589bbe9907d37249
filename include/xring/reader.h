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

#include <stddef.h>
#include <stdint.h>

#include "xring/export.h"
#include "xring/record.h"
#include "xring/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xr_reader xr_reader;

/* A closed range of ids, [lo, hi]. */
typedef struct xr_id_range {
	uint32_t lo, hi;
} xr_id_range;

#define XR_FILTER_RANGES_MAX 64

enum xr_terminal_filter {
	XR_TERMINAL_ANY = 0,
	XR_TERMINAL_ONLY = 1, /* records with done or truncated set */
	XR_TERMINAL_NONE = 2, /* records with neither */
};

/*
 * Which records a reader wants, fixed at attach time (Experience streams
 * only). A record passes when it passes every test that is set. The engine
 * knows the filter too, so that it wakes the reader once per batch of
 * records that pass, not per record written. Records that do not pass are
 * skipped in place (counted in stats.filtered); those that do are handed out
 * in place, as usual. The caller owns the struct and its arrays; attach
 * copies what it needs.
 */
typedef struct xr_filter {
	const xr_id_range *games;   /* game_id in one of these; n_games == 0: any */
	uint32_t n_games;           /* <= XR_FILTER_RANGES_MAX */
	const xr_id_range *players; /* player_id in one of these; 0: any */
	uint32_t n_players;         /* <= XR_FILTER_RANGES_MAX */
	uint32_t min_turn;          /* turn >= min_turn */
	uint32_t terminal;          /* enum xr_terminal_filter */
	int has_reward_range;       /* if set: reward_min <= reward <= reward_max */
	float reward_min, reward_max;
	/* Keep this fraction of records, 0 < rate <= 1 (0 means 1). The choice
	 * is a hash of (seq, game_id, player_id, turn, sample_seed): the same
	 * records for every reader with the same rate and seed, on every run
	 * of a deterministic engine. */
	double sample_rate;
	uint64_t sample_seed;
} xr_filter;

/* How xr_reader_read() waits for records. */
enum xr_wait_mode {
	XR_WAIT_DEFAULT = 0, /* spin briefly, then sleep until the engine says a
			      * batch is there (a message on the reader's
			      * control connection) */
	XR_WAIT_SPIN = 1,    /* never sleep: lowest latency, one busy CPU */
	XR_WAIT_IDLE_POLL = 2, /* as DEFAULT, and while attached hold
				* /dev/cpu_dma_latency at 0, so that idle CPUs
				* poll instead of halting: on a VM, wakeups in a
				* few us instead of tens, for the power idle CPUs
				* then burn. Needs write access to that device
				* (root); without it, the same as DEFAULT
				* (stats.idle_poll says which). */
};

/* How a reader reaches the arena: always through the engine's control
 * socket, which is how the engine knows who holds each reader slot. */
enum xr_transport {
	XR_TRANSPORT_AUTO = 0,    /* the control socket */
	XR_TRANSPORT_CONTROL = 1, /* the same */
	XR_TRANSPORT_DIRECT = 2,  /* refused (-ENOTSUP): a reader can no longer
				   * claim a slot in shared memory by itself */
};

/* "auto", "control" or "direct" into *out (enum xr_transport): 0, or
 * -EINVAL. */
XR_API int xr_transport_parse(const char *s, uint32_t *out);

typedef struct xr_reader_opts {
	const char *stream;  /* NULL: XR_DEFAULT_STREAM */
	xr_policy policy;    /* DEFAULT: the stream's policy */
	const char *label;   /* shown by `xring info`; NULL: the program name */
	const xr_filter *filter; /* NULL: every record */
	uint32_t wait;       /* enum xr_wait_mode */
	/* Nonzero: the engine evicts this reader (XR_EEVICTED) once it has held
	 * the writer up for 100 ms with a batch, not after the engine's
	 * --lease-timeout: for a reader that would rather lose its place than
	 * stop a stream (an agent's, whose seats fall back meanwhile). */
	uint32_t short_lease;
	uint32_t transport;  /* enum xr_transport */
	/* The reader trusts an engine run by root or by its own uid; to read
	 * from an engine of another user, name that user's uid here (0: no
	 * other). The socket's peer and the arena's owner must be one of
	 * these, or attach fails with XR_EUNTRUSTED. */
	uint32_t engine_uid;
	/* Where the reader starts, in each ring of the stream (one per shard):
	 * 0, at the newest record: it reads what is written after it attached;
	 * N, up to N records before the newest, counted before the filter;
	 * XR_HISTORY_ALL, at the oldest record a new reader may still lease
	 * (the ring's tail, which the writer moves ahead in chunks of an eighth
	 * of the ring: older records an older reader holds stay out of reach). A late
	 * joiner's way to records written before it came. Lossless or lossy,
	 * the records it starts behind are its own from then on, as if it had
	 * attached when the first of them was written: a lossless reader holds
	 * the writer there until it reads on. */
	uint64_t history;
	/* NULL, or the consumer group of this stream to join (1 to 31 of
	 * A-Z a-z 0-9 _ . -; docs/groups.md). The members of a group split
	 * the stream's records: each record goes to one member, in batches
	 * read in place as usual, and what a member holds when it detaches or
	 * dies goes back to the group for another member. The group's policy
	 * is its first member's (policy above); it holds a lossless stream
	 * for all its members as one reader would; a lossy group is the
	 * engine's uid's alone (-EPERM). Groups are per uid: another uid's of
	 * the same name is another group. A member's batches are
	 * contiguous, of one ring, at most max records; one given back by a
	 * member that died may be smaller than min. Not with a filter or
	 * history (-EINVAL); xr_reader_arm() is -ENOTSUP and xr_reader_fd()
	 * -1 for a member. */
	const char *group;
} xr_reader_opts;

#define XR_HISTORY_ALL UINT64_MAX

/* At most this many records in one batch, and this many batches held. */
#define XR_BATCH_MAX 65536
#define XR_HELD_MAX 64

/*
 * A batch: `count` records taken from one ring, in sequence order. Plain
 * data filled by xr_reader_read(); the caller owns the struct, the reader
 * owns the memory it points to, which is valid until xr_batch_release().
 *
 * Without a filter the records are contiguous from `first` (step with
 * xr_frame_next()) and `frames` is NULL. With a filter, records that did not
 * pass may lie between those that did: then frames[0..count) point at each
 * of them, still in place in the ring, and `first` is frames[0]; when the
 * ones that passed happen to be back to back, frames is NULL as above.
 */
typedef struct xr_batch {
	const xr_frame *first;
	const xr_frame *const *frames; /* NULL: contiguous from first */
	uint32_t count;
	uint32_t ring;       /* which ring of the stream (one per shard) */
	uint64_t bytes;      /* bytes from first to the end of the last record's frame
			      * (filtered: records skipped between included) */
	uint64_t first_seq;
	uint32_t stride;     /* frame size if every frame has the same size, else 0 */
	uint32_t len;        /* record length if every record has the same length,
			      * else 0: with stride, a batch of fixed-size
			      * records is known as such without a walk */
	uint32_t dropped;    /* records lost just before this batch (with a
			      * filter, those lost among the records it
			      * skipped since this ring's last batch too) */
	uint64_t id_;        /* internal: identifies the lease */
} xr_batch;

typedef struct xr_reader_stats {
	/* Exact at every call: written == read + filtered + dropped + pending. */
	uint64_t written;    /* records produced since this reader attached (with
			      * history: since the first record it started at) */
	uint64_t read;       /* records handed to this reader */
	uint64_t filtered;   /* records skipped by the reader's filter */
	uint64_t dropped;    /* records this reader lost (lossy only) */
	uint64_t pending;    /* records waiting in the rings for this reader
			      * (whether or not they will pass its filter) */
	uint64_t lag_bytes;  /* bytes published but not yet read */
	uint64_t sleeps;     /* times xr_reader_read() slept waiting for a wakeup */
	uint64_t wakeups;    /* ...and was woken by the engine (not by its
			      * own max_wait) */
	/* Wakeup latency since attach: from the publish that woke the reader to
	 * the reader running again, over the wakeups a publish made (not the
	 * kicks of a blocked ring or an eviction); 0 when none yet. */
	uint64_t wake_ns_p50, wake_ns_p99, wake_ns_max;
	uint32_t held;       /* batches held (leases) */
	uint32_t policy;     /* the policy in force, LOSSLESS or LOSSY */
	uint32_t idle_poll;  /* XR_WAIT_IDLE_POLL in force */
	/* A group member's (opts.group): written, dropped and pending above
	 * are its group's, read is this member's, and for the group as a
	 * whole written == group_done + group_held + pending + dropped. */
	uint32_t members;    /* members of the group now */
	uint64_t group_done; /* records released by members, living or gone */
	uint64_t group_held; /* records in members' hands now */
	uint64_t redelivered; /* records a member left that went to another */
} xr_reader_stats;

/*
 * Attaches to the stream of the running engine `engine`. Lossless readers
 * start at the newest record (or opts->history records before it) and see
 * every record after it; lossy readers likewise, minus what they are too
 * slow for.
 *
 * Through the engine's control socket (docs/control-protocol.md) the engine
 * checks the caller's uid/gid and hands over the arena (read-only) and a page
 * of the reader's own for its cursors; reads sleep until the engine says a
 * batch is ready. The reader checks the engine first: the socket's directory,
 * the uid serving it and the arena's owner must be root, its own uid, or
 * opts->engine_uid. The socket's end is the reader's end: the engine frees
 * the reader's slot and leases when this process dies or detaches.
 *
 * Returns 0 and the handle in *out (owned by the caller, freed by
 * xr_reader_detach()), or:
 *   -EINVAL       bad name or options (a filter on a stream that is not of
 *                 Experience records, too many ranges, a rate out of range)
 *   -ENOTSUP      XR_TRANSPORT_DIRECT
 *   XR_EUNTRUSTED the engine found is run by, or its socket lives in a
 *                 directory of, a user this reader does not trust
 *   -ENOENT       no engine of that name, or no such stream
 *   XR_ELAYOUT    the engine was built with an incompatible xring
 *   XR_ECLOSED    the engine has closed its arena or died
 *   XR_EPOLICY    a lossless reader asked for on a lossy stream
 *   -EBUSY        the engine's reader table is full (--max-readers), or a
 *                 limit of this uid's is reached (connections, readers,
 *                 descriptors still closing); the reason names it
 *   -EACCES       refused: this uid/gid is not allowed (--allow-uid), or the
 *                 socket cannot be reached (the reason names the path)
 *   -EPERM        opts->group: a lossy group of a uid not the engine's
 *   -EDQUOT, -ENOSPC  opts->group: this uid's groups or members, or the
 *                 engine's, are at their most (the reason says which)
 *   -EPROTO       the engine answered with something that is not the
 *                 control protocol
 * After a refusal by the engine, xr_last_reason() has its one-line reason.
 */
XR_API int xr_reader_attach(const char *engine, const xr_reader_opts *opts, xr_reader **out);

/*
 * Takes the next batch: between min and max records from one ring, waiting
 * at most max_wait_ns (negative: forever; 0: do not wait) for min records to
 * be there. When the wait ends with fewer than min, returns what there is.
 * Waiting spins briefly, then sleeps until the engine says min records are
 * there (one wakeup per batch) or max_wait_ns passes.
 *
 * Returns the number of records in *b (> 0; the batch is leased), 0 if none
 * arrived in time, or:
 *   -EINVAL       min == 0, min > max, max > XR_BATCH_MAX
 *   -ENOBUFS      XR_HELD_MAX batches are held already: release one
 *   XR_ECLOSED    the engine closed or died and every published record has
 *                 been read
 *   XR_EEVICTED   the engine detached this reader (it wrote a cursor that
 *                 cannot be right, held a batch past its lease timeout, or
 *                 was taken for dead), before or during this call
 *   -EPROTO       the ring holds a malformed frame (a bug or corruption;
 *                 never the bytes an eviction let the engine overwrite,
 *                 which are XR_EEVICTED); xr_last_reason() says what was
 *                 found where
 *   -EINTR        the wait was cancelled (xr_reader_cancel), or a signal
 *                 handler ran while it slept: nothing was taken
 *   -EDEADLK      max_wait_ns < 0 and the wait would be for good: a lossless
 *                 reader's writer is stopped until a batch this reader holds
 *                 is released, and what it waits for comes after it (in
 *                 every ring of the stream). Release the oldest batch, or
 *                 wait with a deadline (which then ends as usual, with 0)
 */
XR_API int xr_reader_read(xr_reader *r, uint32_t min, uint32_t max, int64_t max_wait_ns,
			  xr_batch *b);

/*
 * Waits as xr_reader_read() would for min records (at most max_wait_ns),
 * without taking them: returns how many are ready in one ring (>= min, or
 * fewer when the wait ended or the engine closed), 0 if none, or an error
 * as xr_reader_read(). For callers that wait in slices, e.g. to handle
 * signals between them, then take with xr_reader_read(..., 0, &b).
 */
XR_API int xr_reader_wait(xr_reader *r, uint32_t min, int64_t max_wait_ns);

/* Ends the lease on b; its memory may be overwritten from now on. Batches
 * may be released in any order. Returns 0, or -EINVAL if b is not a batch
 * this reader holds (released twice, or from another reader). */
XR_API int xr_batch_release(xr_reader *r, xr_batch *b);

/* Fills *s. Takes a short lease to count what is pending. Returns 0, or
 * XR_EEVICTED, XR_ECLOSED (after a failed xr_reader_reattach()), -EPROTO
 * (a malformed frame in the ring; or the engine stopped in the middle of a
 * publish; xr_last_reason() says which, as at attach). */
XR_API int xr_reader_stats_get(xr_reader *r, xr_reader_stats *s);

/* Counts one batch of r copied out of the ring rather than viewed in place,
 * in the figures tools show for this reader (`xring stat`'s copies): for
 * bindings that copy where they cannot view. NULL is ignored. */
XR_API void xr_reader_note_copy(xr_reader *r);

/* Releases every lease, frees the reader's slot and the handle. Safe after
 * any error, including XR_ECLOSED and XR_EEVICTED. NULL is ignored. */
XR_API void xr_reader_detach(xr_reader *r);

/*
 * Attaches this reader again, with the same options, to the engine of the
 * same name, after that engine restarted (the old one is gone: reads
 * returned XR_ECLOSED, or XR_EEVICTED). Held batches are dropped; stats
 * start again from zero. Waits up to timeout_ns (negative: forever) for the
 * engine to come up. Returns 0, -ETIMEDOUT, or as xr_reader_attach(); on
 * failure the reader stays detached and may be retried or detached.
 */
XR_API int xr_reader_reattach(xr_reader *r, int64_t timeout_ns);

/*
 * Ends the current xr_reader_read()/xr_reader_wait() on r with -EINTR, or
 * else the next one that has to wait (a call that finds its batch returns it
 * and leaves the cancel pending). For another thread, or a signal handler,
 * to stop a reader that may be asleep: safe from any thread and
 * async-signal-safe.
 */
XR_API void xr_reader_cancel(xr_reader *r);

/*
 * A file descriptor that becomes readable when a batch may be ready (the
 * reader's control connection, on which the engine sends its wakeups), for
 * epoll loops. Call xr_reader_read() with max_wait_ns = 0 when it fires.
 * -1 with XR_WAIT_SPIN (the engine then sends no wakeups). Owned by the
 * reader; do not read from it.
 *
 * For the engine to signal it, the reader must say it is about to wait:
 * xr_reader_arm(r, min) returns 0 when armed (wait on the fd now), or 1
 * when min records are there already (read them instead); or -EDEADLK when
 * nothing could come before a batch the reader holds is released (as
 * xr_reader_read() with no deadline), -ENOTSUP with XR_WAIT_SPIN, or an error
 * of xr_reader_read().
 */
XR_API int xr_reader_fd(const xr_reader *r);
XR_API int xr_reader_arm(xr_reader *r, uint32_t min);

/*
 * Where ring k (0 <= k < n_rings) of the reader's stream is mapped in this
 * process: *base, *len = 2 * capacity bytes (the ring twice, back to back),
 * read-only. Every batch of that ring lies inside. For bindings that hand out
 * views of batches and want to prove they are views. 0 or -EINVAL.
 */
XR_API int xr_reader_ring_memory(const xr_reader *r, uint32_t k, const void **base,
				 uint64_t *len);

/*
 * Where engine `engine` serves its control socket, looking where readers
 * look and trusting what they trust (root, this uid, or engine_uid when
 * nonzero): writes the path into path[0..len). Returns 0, -ENOENT (no such
 * engine answers), XR_EUNTRUSTED (only an untrusted one does), or -errno;
 * xr_last_reason() says why.
 */
XR_API int xr_engine_socket(const char *engine, uint32_t engine_uid, char *path, size_t len);

/* The one-line reason the engine gave for the last refused attach in this
 * thread, or "" if none; also set when xr_reader_stats_get() finds a
 * publish left half done. */
XR_API const char *xr_last_reason(void);

/* Facts about the stream this reader reads. */
typedef struct xr_stream_facts {
	const char *name;
	uint32_t policy;     /* the stream's policy */
	uint32_t n_rings;
	uint64_t ring_capacity;
	uint32_t frame_align;
	uint32_t record_kind; /* xr_record_kind */
	xr_exp_shape shape;   /* when record_kind is XR_RECORD_EXPERIENCE */
	uint32_t producers;   /* of n_rings, the last this many are producer
			       * slots (xring/producer.h), the rest shards' */
	uint64_t engine_start; /* the engine process's start (its clock ticks
				* since boot): another number once the engine
				* restarts, whose rings number from 0 again */
} xr_stream_facts;

XR_API void xr_reader_stream_facts(const xr_reader *r, xr_stream_facts *f);

/* Who writes ring k (0 .. n_rings) of r's stream now. */
enum xr_ring_writer_state {
	XR_WRITER_ENGINE = 0,        /* a shard of the engine */
	XR_WRITER_IDLE = 1,          /* a producer slot nobody has taken yet */
	XR_WRITER_PRODUCER = 2,      /* an external producer */
	XR_WRITER_ENDED = 3,         /* its producer went: what it wrote is all
				      * there is, until another takes the slot
				      * (reads hand it out without waiting for
				      * min) */
};
/* Returns an xr_ring_writer_state, or -EINVAL for no such ring. */
XR_API int xr_reader_ring_writer(const xr_reader *r, uint32_t k);

/* Whether r may still read, without reading: 0, XR_EEVICTED (the engine
 * detached it: its batches' bytes may be overwritten now), or XR_ECLOSED (a
 * reattach failed). Cheap: no ring is walked. */
XR_API int xr_reader_status(const xr_reader *r);

#ifdef __cplusplus
}
#endif
#endif
