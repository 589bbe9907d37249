/* SPDX-License-Identifier: MIT */
#ifndef XRING_AGENT_H
#define XRING_AGENT_H

/*
 * Acting for seats. An agent attaches to an engine, claims seats (players
 * of games, by game id range), receives its seats' records in place, as a
 * reader does, and answers each with an action, written straight into its
 * action slots in shared memory. The engine steps a game when all its
 * seats have answered (or at its deadline, with fallbacks for those that
 * did not): docs/agents.md.
 *
 *     xr_agent *a;
 *     xr_obs_batch b;
 *     xr_agent_attach("demo", NULL, &a);
 *     xr_agent_claim(a, first_id, first_id + 63, 0, NULL);  -- all players
 *     while (xr_agent_recv(a, 1, 1024, -1, &b) > 0) {
 *         int32_t act[1024];
 *         for (uint32_t i = 0; i < b.count; i++)
 *             act[i] = choose(xr_frame_data(b.frames[i]));
 *         xr_agent_send(a, &b, act);     -- and releases the batch
 *     }
 *     xr_agent_detach(a);
 *
 * The record convention (docs/agents.md, "Records"): the record of a seat
 * at turn t carries obs_t, mask_t, the reward and done/truncated the step
 * before left, `applied`/`applied_by` (what that step applied, and whether
 * it was the agent's action or a fallback, and why), and action -1. The
 * answer to it is applied at the game's next step.
 *
 * Thread safety: one xr_agent is used by one thread at a time (stats
 * included); xr_agent_cancel() from any.
 */

#include <stddef.h>
#include <stdint.h>

#include "xring/export.h"
#include "xring/reader.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the engine applies for a seat whose answer is missing, late, for
 * another turn, out of range or illegal (`xring engine --fallback`). */
enum xr_fallback {
	XR_FALLBACK_NOOP = 0,   /* the game's no-op: action -1, which every game
				 * steps as its no-op (xring/game.h) */
	XR_FALLBACK_REPEAT = 1, /* the seat's previous action, if legal now; else
				 * the no-op */
	XR_FALLBACK_POLICY = 2, /* the built-in random-legal policy */
};

/* "noop", "repeat", "policy" into *out (enum xr_fallback): 0 or -EINVAL. */
XR_API int xr_fallback_parse(const char *s, uint32_t *out);
/* The name of f, or NULL. */
XR_API const char *xr_fallback_name(uint32_t f);

typedef struct xr_agent xr_agent;

typedef struct xr_agent_opts {
	const char *stream;   /* the stream of its games; NULL: XR_DEFAULT_STREAM */
	const char *label;    /* shown by `xring info`; NULL: the program name */
	uint32_t capacity;    /* games it may claim seats of at once; 0: 65536
			       * (at most the engine's --max-games) */
	uint32_t wait;        /* enum xr_wait_mode, as for readers */
	uint32_t engine_uid;  /* as xr_reader_opts.engine_uid */
} xr_agent_opts;

/*
 * A batch of records of the agent's seats, in place in the ring (read-only,
 * valid until xr_agent_send() or xr_agent_release()): frames[0..count), in
 * ring order. Each is a verified Experience record of one seat of this
 * agent at one turn; records of the stream that are not of its seats are
 * not in it. `reader` is the underlying reader batch (the lease).
 */
typedef struct xr_obs_batch {
	const xr_frame *const *frames;
	uint32_t count;
	uint32_t ring;
	uint32_t dropped;     /* records lost before this batch (the agent reads
			       * lossy: a slow agent falls back, never stalls
			       * the engine) */
	xr_batch reader;
} xr_obs_batch;

typedef struct xr_agent_stats {
	/* Counted by the engine, summed over its shards (as of their last
	 * stats tick, twice a second). */
	uint64_t actions;      /* answers taken: for the turn, in range, legal */
	uint64_t timeouts;     /* no answer for the turn by its deadline */
	uint64_t late;         /* ...of which the answer came afterwards */
	uint64_t wrong_turn;   /* answers tagged for no turn the seat was at */
	uint64_t out_of_range; /* actions past the game's actions */
	uint64_t illegal;      /* actions its mask forbade */
	uint64_t fallbacks;    /* all but actions */
	uint64_t waiting;      /* seats whose records wait for an answer now */
	/* Round trip, record written -> answer seen by its shard, ns (0: none
	 * yet): the upper bound of the log-linear bucket holding the quantile,
	 * within 25 % of it (UINT64_MAX past 68.7 s). */
	uint64_t rtt_count, rtt_p50_ns, rtt_p99_ns, rtt_p999_ns;
	/* Counted here. */
	uint64_t records;      /* records of its seats received */
	uint64_t sent;         /* answers written */
	uint64_t skipped;      /* records of the stream not of its seats */
	uint64_t dropped;      /* records of the stream lost to its lagging (of
			       * its seats and others': whose a lost record
			       * was, nobody can tell), by its readers' own
			       * counts */
	uint64_t evictions;    /* times it held the engine up 100 ms with a batch
			       * and was evicted: xr_agent_recv() subscribed
			       * again, from the newest record */
	uint32_t agent;        /* its index in the engine's agent table */
	uint32_t claims;
	uint64_t seats;
} xr_agent_stats;

/*
 * Attaches as an agent of engine `engine` (through its control socket, as
 * a reader does: the same allow-list and trust checks): gets a page of
 * action slots for opts->capacity games. Holds no seats until claimed.
 * 0 and the handle in *out, or as xr_reader_attach(), and:
 *   -EBUSY    --max-agents agents are attached (or this uid's share of them)
 *   -EAGAIN   ...some of them gone, their slots not let go of by the
 *             shards yet: retry in a moment
 *   -ENOTSUP  the engine hosts no games (a synthetic writer)
 *   -EINVAL   capacity past the engine's --max-games
 * xr_last_reason() says why.
 */
XR_API int xr_agent_attach(const char *engine, const xr_agent_opts *opts, xr_agent **out);

/*
 * Claims players (bit p: player p; 0: every player) of games lo..hi (ids;
 * games created later in the range are claimed too, ids never being
 * reused). From the shards' next round those seats wait for this agent's
 * answers. 0 and the claim's id in *claim (may be NULL), or:
 *   -EBUSY    a seat of it is held (the reason names the holder), or the
 *             agent holds 16 claims already
 *   -ENOSPC   the range does not fit the agent's capacity
 *   -EINVAL   lo > hi, a player past 7
 * The agent reads its seats' records from the newest on: claiming
 * re-subscribes it, so held batches are released.
 */
XR_API int xr_agent_claim(xr_agent *a, uint32_t lo, uint32_t hi, uint32_t players,
			  uint32_t *claim);

/* Gives a claim up: its seats go back to the built-in policy. 0, or
 * -ENOENT (no such claim of this agent). Held batches are released. */
XR_API int xr_agent_release(xr_agent *a, uint32_t claim);

/*
 * Takes the next batch of records of the agent's seats: between min and
 * max, waiting at most max_wait_ns (negative: forever) as xr_reader_read()
 * does. Returns the count (> 0), 0 if none came in time, or an error of
 * xr_reader_read() (XR_ECLOSED: the engine is gone). One batch is held at
 * a time: a batch still held is released first.
 */
XR_API int xr_agent_recv(xr_agent *a, uint32_t min, uint32_t max, int64_t max_wait_ns,
			 xr_obs_batch *b);

/*
 * Answers batch b: actions[i] for b->frames[i], each written into its
 * seat's action slot tagged with the record it answers, then releases b.
 * An answer to a terminal record (done or truncated) is not asked for and
 * is skipped. 0, or -EINVAL (b is not this agent's held batch).
 */
XR_API int xr_agent_send(xr_agent *a, xr_obs_batch *b, const int32_t *actions);

/*
 * A record of the agent's seats as xr_agent_recv() handed it out: enough to
 * answer it later, after its batch is released (a policy that answers
 * once it has records of every seat it plays, which come in several
 * batches: xring.gym). Plain values, owned by the caller.
 */
typedef struct xr_seat_ref {
	uint64_t seq;            /* the record's: its answer's tag */
	uint32_t game, player;
	uint32_t turn;           /* which slot set (--input-delay) */
	uint32_t final;          /* done or truncated: nothing is asked */
} xr_seat_ref;

/* Copies the references of held batch b's records into refs[0..b->count)
 * (the caller's array). 0, or -EINVAL (b is not this agent's held batch). */
XR_API int xr_agent_refs(const xr_agent *a, const xr_obs_batch *b, xr_seat_ref *refs);

/*
 * Answers records by reference, whether their batch is still held or not:
 * actions[i] for refs[i], written into the seat's action slot as
 * xr_agent_send() writes it. Skipped: final records (nothing is asked) and
 * seats the agent no longer holds. An answer the engine no longer waits
 * for (its deadline passed, its game was reset) is a late answer, counted
 * by the engine, harmless. Returns the number written, or -EINVAL.
 */
XR_API int xr_agent_answer(xr_agent *a, const xr_seat_ref *refs, const int32_t *actions,
			   uint32_t n);

/* Releases b without answering (its seats then get their fallbacks at their
 * deadlines, unless xr_agent_answer() answers them before). */
XR_API int xr_agent_release_batch(xr_agent *a, xr_obs_batch *b);

/* Fills *s. 0, or -EINVAL. */
XR_API int xr_agent_stats_get(xr_agent *a, xr_agent_stats *s);

/* The descriptor to poll for a batch, as xr_reader_fd() (-1 with
 * XR_WAIT_SPIN), and arming it, as xr_reader_arm(). */
XR_API int xr_agent_fd(const xr_agent *a);
XR_API int xr_agent_arm(xr_agent *a, uint32_t min);

/* Ends a wait in xr_agent_recv() with -EINTR, or else the next one that
 * has to wait, as xr_reader_cancel() (any thread, or a signal handler; a
 * cancel holds across the agent's reader being replaced: an eviction, a
 * claim, a release). */
XR_API void xr_agent_cancel(xr_agent *a);

/* Where the agent's page of action slots is mapped in this process, and
 * its length (xring's shm layout: docs/agents.md, "Action slots"), for
 * bindings and tests that write slots themselves. 0 or -EINVAL. */
XR_API int xr_agent_slots(const xr_agent *a, void **base, size_t *len);

/* The reader under the agent (stream facts, ring memory); owned by a. */
XR_API xr_reader *xr_agent_reader(xr_agent *a);

/*
 * Attaches this agent again, with the same options, to the engine of the
 * same name after that engine restarted (the old one is gone: calls
 * returned XR_ECLOSED), and claims its seats again, claim by claim in the
 * order they were made (their ids are the new engine's). A held batch is
 * dropped; the counts kept here go on, the engine's start from zero. Waits
 * up to timeout_ns (negative: forever) for the engine to come up; claims
 * refused for the uid's request rate are asked again meanwhile. Returns 0;
 * -ETIMEDOUT (no engine came); as xr_agent_attach(); or as xr_agent_claim()
 * (-EAGAIN: the rate still refused one when the time was up; -EBUSY: a seat
 * taken meanwhile). Then the agent holds the claims made before the refused
 * one, and the next xr_agent_reattach() goes on from there (its seats kept
 * held; it starts over if the engine went meanwhile). Claims still to make
 * count against the 16 an agent may hold; one the caller makes that shares
 * a seat with one still to make takes its place. Until a reattach
 * connects, other calls return XR_ECLOSED; xr_agent_detach() is always
 * allowed.
 */
XR_API int xr_agent_reattach(xr_agent *a, int64_t timeout_ns);

/* The ids of the claims the agent holds, in the order they were made, into
 * ids[0..max): returns how many it holds (at most 16; more than max: only
 * max written), or -EINVAL. */
XR_API int xr_agent_claims(const xr_agent *a, uint32_t *ids, uint32_t max);

/* Detaches: its seats go back to the built-in policy, at once, even while a
 * forked child holds a copy of its socket (the attaching process shuts the
 * connection down; a child's detach closes only its copies). NULL is
 * ignored. */
XR_API void xr_agent_detach(xr_agent *a);

#ifdef __cplusplus
}
#endif
#endif
