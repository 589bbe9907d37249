/* SPDX-License-Identifier: MIT */
#ifndef XR_CONTROL_CLOSER_H
#define XR_CONTROL_CLOSER_H

/*
 * Closing what peers may have touched, away from the control thread.
 *
 * The last close of a file runs its release in the closing thread, and a
 * peer chooses what that costs: a TCP socket with SO_LINGER and unsent data
 * waits up to its linger time, a tty waits for its output to drain, a FUSE
 * file waits for its daemon. A peer's files reach the engine in two ways:
 * descriptors it passes with SCM_RIGHTS (refused at the socket where the
 * kernel can, SO_PASSRIGHTS; installed and handed here where it cannot), and
 * descriptors in flight in an unread message, which closing the connection
 * releases. So the control thread closes neither: it hands both here, and a
 * thread that may block for as long as a peer likes does the closing.
 *
 * Each descriptor is put with a tag (the peer's uid), so that the server
 * can refuse a uid whose descriptors are piling up (xr__closer_pending).
 */

#include <stdbool.h>
#include <stdint.h>

struct xr_closer;

/* Starts the closing thread. 0 or -errno. */
int xr__closer_start(struct xr_closer **out);

/* Queues fd to be closed (fd < 0 is ignored). Never blocks on fd; takes a
 * mutex that the closing thread holds only to dequeue. If memory for the
 * queue entry cannot be had, closes fd here (the one case). */
void xr__closer_put(struct xr_closer *c, int fd, uint32_t tag);

/* How many descriptors with this tag are still waiting to be closed, or
 * being closed. */
uint32_t xr__closer_pending(struct xr_closer *c, uint32_t tag);

/* Stops taking descriptors and lets the thread finish those queued on its
 * own, in the background: never waits for a close. */
void xr__closer_stop(struct xr_closer *c);

#endif
