/* SPDX-License-Identifier: MIT */
#ifndef XR_CLIENT_GROUP_H
#define XR_CLIENT_GROUP_H

/*
 * A reader's membership of a consumer group (xr_reader_opts.group): its
 * batches come from the engine's group service (engine/group_host.h) through
 * its page and doorbell, instead of from its own cursors. client/reader.c
 * calls these when the reader is a member; the records are read in place in
 * the rings the reader maps, as any reader's.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "xring/reader.h"

struct xr_gmember;

/* Where the member's reader maps its stream's rings. */
struct xr_gm_rings {
	uint32_t n;
	const uint8_t *base[64];
	uint64_t len[64]; /* 2 * capacity: the ring twice */
};

/* Joins group `group` over control connection sock (subscribed already),
 * asking for policy (0: the stream's) if the group is new. 0, or as the
 * engine refused (-EACCES, -EDQUOT, -ENOSPC, -EINVAL, XR_EPOLICY, -ENOTSUP;
 * the reason in xr_last_reason()). */
int xr__gm_join(int sock, const char *engine, const char *group, uint32_t policy,
		const struct xr_gm_rings *rings, struct xr_gmember **out);

/* How a wait is cancelled: the reader's eventfd, and a check that takes
 * the reader's cancel (xr_reader_cancel). */
struct xr_gm_cancel {
	int fd;
	bool (*taken)(void *arg);
	void *arg;
};

/* xr_reader_read() (b given) or xr_reader_wait() (b NULL: the batch is
 * kept for the next read) for a member. */
int xr__gm_read(struct xr_gmember *g, uint32_t min, uint32_t max, int64_t wait_ns, xr_batch *b,
		const struct xr_gm_cancel *c);
int xr__gm_release(struct xr_gmember *g, xr_batch *b);
/* Fills the group's figures into s (written, dropped, pending, group_*),
 * asking the engine when no request is in flight. */
int xr__gm_stats(struct xr_gmember *g, xr_reader_stats *s);
uint32_t xr__gm_held(const struct xr_gmember *g);
uint32_t xr__gm_policy(const struct xr_gmember *g);
/* The page, for tests that scribble over it. */
struct xr_gpage *xr__gm_page(struct xr_gmember *g);
/* Unmaps the page and closes the doorbell; the membership ends with the
 * reader's connection. */
void xr__gm_leave(struct xr_gmember *g);

#endif
