/* SPDX-License-Identifier: MIT */
#ifndef XR_BRIDGE_BRIDGE_H
#define XR_BRIDGE_BRIDGE_H

/*
 * `xring bridge out|in` (docs/bridge.md): a stream carried between hosts
 * through NATS JetStream.
 *
 * out: an ordinary reader of a local stream (lossless by default: the
 * records wait for the bridge) publishing batches of one ring's records
 * (bridge/wire.h) to subject SUBJECT.<source>.<ring> of a JetStream stream
 * it makes if missing, each with a message id JetStream deduplicates by;
 * a batch is released once JetStream acknowledged every message of it. On
 * a restart it reads, per ring, the last message it published, and goes on
 * after its last record (what the ring still holds: it reads with history).
 *
 * in: a durable pull consumer of SUBJECT.> writing the records into a
 * local stream as an external producer (xring/producer.h), in order,
 * exactly once: a record whose (source, incarnation, ring, seq) came
 * before is skipped, and each record carries a tag (the JetStream
 * sequence of its message and its place in it) which the engine keeps, so
 * that after the bridge's own restart it skips what the engine already
 * took. Messages are acknowledged once the engine has taken their records.
 * A message that is not a bridge message, or a record not of the local
 * stream's shape, is refused and counted, never written.
 *
 * With a key (both sides the same secret), every message is MACed and a
 * message without a good MAC is a stranger's: in refuses it, out does not
 * resume from it. Without one, whoever may publish on SUBJECT.> may forge
 * records, and the subject's permissions are all that stands in the way.
 */

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct xr_br_key;

struct xr_bridge_opts {
	const char *engine;      /* the local engine */
	const char *stream;      /* its stream (NULL: the default) */
	const char *nats;        /* NATS URL(s), comma-separated */
	const char *subject;     /* the subject prefix */
	const char *js_stream;   /* the JetStream stream (NULL: from the subject) */
	int replicas;            /* out, when it makes the stream: 1.. */
	int zstd;                /* out: 0 none, else the level */
	uint32_t max_bytes;      /* out: a message's records at most */
	int lossy;               /* out: read lossy */
	const char *durable;     /* in: the consumer's name (NULL: from the names) */
	int max_ack_pending;     /* in: messages in flight (0: 64) */
	uint32_t ring;           /* in: the producer slot's ring (0: the first free) */
	int ack_refused;         /* in: acknowledge refused messages even before a
				  * good one (else it stops, acknowledging none) */
	const struct xr_br_key *key; /* MAC messages with it, take none without
				      * a good one (NULL: unauthenticated) */
	int quiet;
	/* Stored by the CLI's signal handler (cli/cmd_bridge.c on_signal),
	 * loaded by any of the bridge's threads (out.c's loop, in.c's loop
	 * and stopping()). Relaxed: a flag through which nothing else is
	 * read; lock-free, so a handler may store it. */
	atomic_int *stop;
};

struct xr_bridge_stats {
	uint64_t records, bytes, messages;
	uint64_t duplicates;     /* in: records skipped, seen before */
	uint64_t refused;        /* in: messages (or records) refused */
	uint64_t retries;        /* out: publishes tried again */
	uint64_t copies;         /* out: messages sent again, after one ahead of
				  * them that JetStream stored later */
	uint64_t taken_ids;      /* out: message ids found taken by another's
				  * message: sent under ids of their own */
	uint64_t late;           /* in: messages that came before one ahead of
				  * them, passed over (their copy comes after) */
	uint64_t holes;          /* in: messages taken after records that never
				  * came (wire.h, base) */
	uint64_t dropped;        /* out, lossy: records the engine wrote over
				  * before the bridge read them (so never sent) */
	uint64_t gaps;           /* in: messages lost on the way, the consumer
				  * remade to have them again */
	uint64_t forged_answers; /* in: answers to its claim's asks without a
				  * good MAC, passed over (claim.h) */
};

/* Each runs until *o->stop, or a failure it cannot ride out. 0, or -errno
 * with why (one line: what went wrong and what to do). */
int xr__bridge_out(const struct xr_bridge_opts *o, struct xr_bridge_stats *st, char *why,
		   size_t len);
int xr__bridge_in(const struct xr_bridge_opts *o, struct xr_bridge_stats *st, char *why,
		  size_t len);

#endif
