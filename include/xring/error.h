/* SPDX-License-Identifier: MIT */
#ifndef XRING_ERROR_H
#define XRING_ERROR_H

/*
 * Error convention, used by every xring function that can fail:
 *
 *   return >= 0    success (0, or a count where the function says so)
 *   return <  0    a negative errno value (-EINVAL, -ENOMEM, -ENOENT, ...)
 *                  or one of the xring codes below, which live in a reserved
 *                  range far above any errno so the two never collide.
 *
 * xr_strerror() and xr_err_name() cover both kinds.
 */

#include <errno.h>

#include "xring/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XR_ERRNO_BASE 5000

enum xr_error {
	/* The arena was made by an xring build with another shared layout. */
	XR_ELAYOUT = -(XR_ERRNO_BASE + 1),
	/* The engine closed the arena, or its process is no longer running. */
	XR_ECLOSED = -(XR_ERRNO_BASE + 2),
	/* The engine detached this reader (it wrote a lease no reader can
	 * hold). The reader must detach and attach again. */
	XR_EEVICTED = -(XR_ERRNO_BASE + 3),
	/* A record failed verification: it is not a well-formed Experience. */
	XR_EBADREC = -(XR_ERRNO_BASE + 4),
	/* Huge pages were required but none (or too few) are available. */
	XR_ENOHUGE = -(XR_ERRNO_BASE + 5),
	/* The reader asked for a policy the stream does not allow
	 * (a lossless reader on a lossy stream). */
	XR_EPOLICY = -(XR_ERRNO_BASE + 6),
	/* Lossy writer: a reader's lease stands where the record must go,
	 * so the record was dropped (and counted) instead of written. */
	XR_EDROPPED = -(XR_ERRNO_BASE + 7),
	/* The file is not an xring arena: bad magic, or sizes and offsets in
	 * its header that cannot be right. */
	XR_ENOTARENA = -(XR_ERRNO_BASE + 8),
	/* A file, socket or directory belongs to a user that is not trusted
	 * here: for a reader, not root, its own uid or the engine uid it was
	 * told to expect (the control socket's peer, the arena's owner, the
	 * directory holding them); for an engine, its run directory belongs to
	 * another user or others may write it. */
	XR_EUNTRUSTED = -(XR_ERRNO_BASE + 9),
};

/* A one-line human description of err (negative errno or XR_E*). Never NULL;
 * the string is static. Unknown codes yield "unknown error". */
XR_API const char *xr_strerror(int err);

/* The symbolic name of err ("EINVAL", "XR_ECLOSED", ...). Never NULL. */
XR_API const char *xr_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif
