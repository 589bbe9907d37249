/* SPDX-License-Identifier: MIT */
#ifndef XR_BRIDGE_STATE_H
#define XR_BRIDGE_STATE_H

/*
 * What a bridge keeps across its own restarts, on this host, beside the
 * engine's control socket (its run directory: the engine's user's, checked
 * as readers check it): `out`, the last record it published of each ring;
 * `in`, the last record it took of each source ring. NATS alone cannot be
 * trusted with either: whoever may publish on the subject can make the
 * subject's last message a stranger's, or publish a real message again
 * after `in` forgot what it had.
 *
 * Files are written whole to a temporary name and renamed over the old, so
 * a bridge killed mid-write leaves the old file or the new one. A file that
 * is not a regular file of this user's, of the size it should be, is not
 * believed.
 */

#include <stddef.h>

/* "<run dir of engine>/<engine>.bridge-<kind>-<key>.state" into path:
 * 0, or -errno (no engine answers: no place for the file). */
int xr__br_state_path(const char *engine, const char *kind, const char *key, char *path,
		      size_t len);

/* Reads up to cap bytes of path into buf: the bytes read (>= 0), or
 * -errno (-ENOENT: none yet). */
long xr__br_state_load(const char *path, void *buf, size_t cap);

/* Writes len bytes of buf as path's content: 0, or -errno. */
int xr__br_state_save(const char *path, const void *buf, size_t len);

#endif
