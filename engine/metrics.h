/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_METRICS_H
#define XR_ENGINE_METRICS_H

/*
 * The engine's metrics endpoint (`xring engine --metrics-addr
 * 127.0.0.1:PORT`): the stats region (shm/snapshot.h) in the Prometheus
 * text exposition format, over HTTP/1.x on a loopback address, served from
 * the host's housekeeping loop (engine/host.c) with non-blocking sockets:
 * no thread of its own, and nothing a client does can hold that loop.
 *
 * Whoever can connect to the port can read the figures (as whoever can read
 * the arena can): the address must be loopback, and the figures carry no
 * record data. Clients share XR_METRICS_CONNS connections (when they are
 * all taken, the oldest that has not sent a whole request yet is closed for
 * the newcomer), and each gets XR_METRICS_REQ_MAX bytes of request and
 * XR_METRICS_DEADLINE_MS to send it and read the answer, which it shares
 * with the others asking (one rendering, never a copy per client).
 */

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "shm/snapshot.h"

#define XR_METRICS_CONNS 16
#define XR_METRICS_REQ_MAX 4096
#define XR_METRICS_DEADLINE_MS 5000

struct xr_metrics;

/* Parses "HOST:PORT" (HOST an IPv4 loopback address, 127.0.0.0/8, or
 * "localhost"; PORT 0..65535, 0 choosing a free one). 0, or -EINVAL with
 * the reason in why. */
int xr__metrics_parse_addr(const char *addr, uint32_t *ip_be, uint16_t *port, char *why,
			   size_t len);

/* Listens on addr. 0 and *out, or a negative errno with the reason in why
 * (the port taken, an address not loopback). */
int xr__metrics_open(const char *addr, struct xr_metrics **out, char *why, size_t len);

/* The port it listens on (the one chosen, for port 0). */
uint16_t xr__metrics_port(const struct xr_metrics *m);

/* Fills pf[0..) with the descriptors to poll (the listener first, then the
 * connections) and returns how many, at most 1 + XR_METRICS_CONNS. */
int xr__metrics_pollfds(const struct xr_metrics *m, struct pollfd *pf);

/* Milliseconds until the first connection's deadline (-1: none). */
int xr__metrics_timeout_ms(const struct xr_metrics *m, uint64_t now);

/* Serves what pf (as filled by xr__metrics_pollfds, after poll) says is
 * ready: accepts, reads requests, answers from a snapshot of a, writes,
 * closes connections past their deadline. Never blocks. */
void xr__metrics_serve(struct xr_metrics *m, const struct pollfd *pf, int n,
		       const struct xr_arena *a);

void xr__metrics_close(struct xr_metrics *m);

/* The exposition of s: a malloc'd text in *out of *len bytes (the
 * caller frees it). 0 or -ENOMEM. */
int xr__metrics_render(const struct xr_snapshot *s, char **out, size_t *len);

#endif
