/* SPDX-License-Identifier: MIT */
#ifndef XR_BRIDGE_CLAIM_H
#define XR_BRIDGE_CLAIM_H

/*
 * One `xring bridge in` per durable consumer. A second one on the same
 * consumer would remake it under the first (a restart begins from the ack
 * floor anew) and the two would share the messages between two engines.
 * JetStream does not say whether a pull consumer has a live puller, so each
 * bridge in answers for itself: it subscribes to
 * _XRING.in.<stream>.<durable> (core NATS, nothing stored), answers who it
 * is, and, before touching the consumer, asks whether anyone else answers.
 * Two that start at once may each hear the other and both refuse: safe,
 * and said. Once running, a bridge in does not ask again: one that took
 * over while it was paused (SIGSTOP, a VM's pause) made the consumer anew,
 * which the first sees in the token in the consumer's description
 * (bridge/in.c, still_ours) and gives way.
 *
 * With the bridges' key, an ask carries a MAC of its challenge (fresh for
 * each ask), and only such asks are answered, each challenge once; an
 * answer carries a MAC of the ask's challenge and who answers, and answers
 * without a good one are passed over and counted. So only a holder of the
 * key can keep a bridge in from starting, and a flood of strangers' asks
 * takes no answer away. Without a key (--unauthenticated), anyone who may publish
 * there may answer and so stop a bridge in from starting (never make one
 * share): the subject's permissions are the deployment's (docs/bridge.md).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <nats/nats.h>

struct xr_br_claim;
struct xr_br_key;

/* Claims consumer durable of js_stream for this process (who: what to
 * answer, e.g. "engine B ring 2"; key: the bridges' key, NULL for none,
 * kept by the caller while the claim lives). 0 and *out
 * (xr__br_claim_drop it), or -EBUSY (another answers: why names it),
 * -EIO. */
int xr__br_claim(natsConnection *nc, const char *js_stream, const char *durable,
		 const char *who, const struct xr_br_key *key, struct xr_br_claim **out,
		 char *why, size_t len);
/* Answers passed over so far: without a good MAC (with a key). */
uint64_t xr__br_claim_ignored(const struct xr_br_claim *c);
void xr__br_claim_drop(struct xr_br_claim *c);

#endif
