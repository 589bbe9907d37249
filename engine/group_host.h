/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_GROUP_HOST_H
#define XR_ENGINE_GROUP_HOST_H

/*
 * Consumer groups (docs/groups.md): readers that join a named group of a
 * stream split its records, each record to one member; what a member held
 * when it died goes to another.
 *
 * One thread serves every group. A group is, to the rings, one ordinary
 * reader (attached by this thread through the engine's own socket, as a
 * table's feed is): its leases are what hold the writer, lossless or lossy
 * as the group's policy says. The thread takes batches from that reader and
 * grants them, whole or in pieces, to members that ask, through each
 * member's page (shm/group_layout.h) and doorbell (a socket pair, as a
 * table's trainer has: engine/service_base.h says why). A member reads the
 * records in place in the arena it maps as a reader, and gives each grant
 * back done (released) or returned (for another member). An internal batch
 * is released to the ring when every piece of it is done.
 *
 * Trust. Which grant a member holds, and what it covers, is this thread's
 * own record, keyed by the member's index, which the control thread ties to
 * the member's connection; the page says only which request to serve and
 * which grants (by tag) to give back. A member's connection ending gives
 * back every grant it had not released, to the group. Groups are per uid:
 * the same name of two uids is two groups (a member of another uid could
 * take a group's records, or hold them).
 */

#include <stddef.h>
#include <stdint.h>

#include "control/proto.h"
#include "control/server.h"

#define XR_GROUPS_MAX 16          /* groups at once, all streams */
#define XR_GMEMBERS_MAX 64        /* members at once, all groups */
#define XR_GROUPS_PER_UID 4       /* for uids other than the engine's */
#define XR_GMEMBERS_PER_UID 16
#define XR_GROUPS_OTHERS 8        /* all uids other than the engine's together */
#define XR_GMEMBERS_OTHERS 48

struct xr_ghost;

/* Starts the group thread of engine `engine` (the name its groups' readers
 * attach to). hold_ns: how long a member of a lossy group may hold a grant
 * before it is evicted and the grant goes back (a lossy reader holding a
 * batch too long is evicted by the writer: the group's reader must never
 * be; 0: none). Groups of uids other than the engine's are each a reader
 * slot of the engine's uid: they take at most an eighth of max_readers.
 * 0, or -errno with why. */
int xr__ghost_create(const char *engine, uint64_t hold_ns, uint32_t max_readers,
		     struct xr_ghost **out, char *why, size_t len);
/* Stops the thread; every member's next call says the engine closed. */
void xr__ghost_destroy(struct xr_ghost *h);

/* Connection who (subscribed to stream `stream`) joins group m->group:
 * made if new, with policy m->policy (0: the stream's, stream_policy).
 * Gives the member's page (fds[0]) and doorbell (fds[1]), the caller's to
 * send and close. Each uid's groups are its own. 0, or -errno with why:
 * -EPERM (a lossy group of a uid other than the engine's), -EDQUOT /
 * -ENOSPC (limits), -EINVAL (a bad name), -EEXIST (already a member). */
int xr__ghost_join(struct xr_ghost *h, const struct xr_ctl_caller *who, const char *stream,
		   uint32_t stream_policy, const struct xr_ctl_group_join *m,
		   struct xr_ctl_group_joined *r, int fds[2], char *why, size_t len);

/* Connection conn ended: its memberships end, and what they held goes back
 * to their groups. */
void xr__ghost_gone(struct xr_ghost *h, uint64_t conn);

#endif
