/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_PRODUCERS_H
#define XR_ENGINE_PRODUCERS_H

/*
 * External producers (docs/producers.md): processes that are not the engine
 * writing a ring of a stream. Each stream may keep its last rings as
 * producer slots (xr_stream_spec.producers). A peer takes a slot through
 * the control socket (PRODUCER_OPEN) and gets a staging ring of its own
 * (shm/producer_layout.h); the engine's producer thread, the only writer of
 * every producer ring, copies what the peer publishes there into the ring,
 * checking each record on the way: readers read it like any ring's, and no
 * peer ever writes the arena. When the connection ends, what the peer had
 * published is still taken, then the ring is marked ended
 * (XR_RING_PRODUCER_ENDED) until another producer takes the slot.
 *
 * Threads. The control thread opens slots and reports connections' ends;
 * the producer thread does everything else. They share the slots under the
 * service mutex (engine/service_base.h).
 */

#include <stddef.h>
#include <stdint.h>

#include "control/server.h"

struct xr_arena;
struct xr_prods;

struct xr_prod_opts {
	uint32_t engine_uid;
	uint64_t lease_timeout_ns;   /* the ring writers' (0: their default) */
	double high_watermark, low_watermark; /* the ring writers' (0, 0: none) */
};

/* The service of arena a's producer slots, its thread running: 0 and the
 * service in *out (NULL when no stream has a producer slot), or -errno
 * with why saying what failed. */
int xr__prods_create(struct xr_arena *a, const struct xr_prod_opts *o, struct xr_prods **out,
		     char *why, size_t len);
/* Stops the thread and ends every producer (its staging ring says the
 * engine stopped). No hook may run meanwhile or after. */
void xr__prods_destroy(struct xr_prods *p);

/* The control thread's verbs (control/server.h's producer hooks). */
int xr__prods_open(struct xr_prods *p, const struct xr_ctl_caller *who,
		   const struct xr_ctl_producer_open *m, struct xr_ctl_producer_opened *r,
		   int fds[2], char *why, size_t len);
/* Connection conn ended: its producer, if any, is drained and ended. */
void xr__prods_gone(struct xr_prods *p, uint64_t conn);

#endif
