/* SPDX-License-Identifier: MIT */
#ifndef XR_CONTROL_RUN_DIR_H
#define XR_CONTROL_RUN_DIR_H

/*
 * Where control sockets live, and which of those places may be trusted.
 *
 *   $XRING_RUN_DIR   if set: that directory only (an absolute path)
 *   /run/xring       engines of root (made 0755 by the first)
 *   /tmp/xring-UID   engines of uid UID that cannot use /run/xring
 *                    (made 0755 by that uid's first engine)
 *
 * A directory serves only if it is a real directory owned by the engine's
 * uid or root and writable by nobody else: otherwise another user could
 * move the socket aside and answer in its place. Readers look in the same
 * places, trusting only directories owned by root, by themselves, or by the
 * engine uid they were told to expect, and /tmp/xring-UID only for those
 * uids; the socket's peer is then checked too (control/client.c).
 */

#include <stddef.h>

#include "util/fs.h"

/* Engine: prepares the directory to serve name from and writes the socket's
 * path into path. Returns 0, -EINVAL (bad name; or, with why[], a relative
 * XRING_RUN_DIR), -ENAMETOOLONG (the socket's path would not fit a
 * sockaddr_un: why[] names the limit), or the first usable place's error
 * with why[] saying what is wrong with it and what to do (XR_EUNTRUSTED
 * for a directory of someone else's, -EACCES...). */
int xr__run_dir_serve(const char *name, char *path, size_t len, char *why, size_t why_len);

/* Reader: the k-th place to look for engine name (k = 0, 1, ...): 0 and
 * the socket's path, XR_EUNTRUSTED (that place exists but is not to be
 * trusted; why[] says why and what to do), -ENOENT (that place does not
 * exist), -ERANGE past the last place, -ENAMETOOLONG (as for serving), or
 * -EINVAL (bad name; or, with why[], a relative XRING_RUN_DIR). */
int xr__run_dir_lookup(const char *name, const struct xr_trust *t, int k, char *path,
		       size_t len, char *why, size_t why_len);

#endif
