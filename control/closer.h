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
 * Each descriptor is put with a tag (the peer's uid). Each tag's are closed
 * in order by a thread of its own, so that a close that blocks delays only
 * the descriptors of the uid that arranged it; and the server refuses a uid
 * whose descriptors pile up behind a stuck close (xr__closer_stuck).
 */

#include <stdbool.h>
#include <stdint.h>

struct xr_closer;

/* Makes a closer; its threads start with the first descriptor of each tag
 * and end when that tag has none left. 0 or -ENOMEM. */
int xr__closer_start(struct xr_closer **out);

/* Queues fd to be closed by tag's thread (fd < 0 is ignored), starting the
 * thread if need be. Never blocks on fd, and never closes it here; takes a
 * mutex that closing threads hold only to dequeue. If memory for the queue
 * entry cannot be had, fd is left open (leaked). Should the thread not
 * start (no memory, thread limit), the next put for the tag tries again. */
void xr__closer_put(struct xr_closer *c, int fd, uint32_t tag);

/* A close that has taken this long is one a peer made slow (an honest
 * close takes microseconds). */
#define XR_CLOSER_SLOW_NS (100 * 1000000ull)

/* How many descriptors with this tag are waiting to be closed, or being
 * closed, when the tag's queue is stuck: the descriptor being closed was
 * put XR_CLOSER_SLOW_NS ago or more (it waited behind others, or its close
 * takes that long), or its thread could not be started; 0 when it is
 * moving (a burst of honest hangups drains in microseconds). */
uint32_t xr__closer_stuck(struct xr_closer *c, uint32_t tag);

/* How many descriptors, of every tag, are waiting to be closed or being
 * closed. */
uint32_t xr__closer_total(struct xr_closer *c);

/* Lets go of c: threads still closing finish their tags' queues on their
 * own, in the background, and the last frees c. Never waits for a close:
 * a queue whose thread never started gets one more try, and else its
 * descriptors are left open for the process's exit. */
void xr__closer_stop(struct xr_closer *c);

#endif
