/* SPDX-License-Identifier: MIT */
#ifndef XR_UTIL_FS_H
#define XR_UTIL_FS_H

/*
 * Opening files and trusting directories in places other users can write
 * (/dev/shm, /dev/hugepages, /tmp): nothing followed, nothing opened that
 * could block, nothing trusted that someone else owns.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* The uids a process trusts with a file or directory: root and its own
 * effective uid always, plus up to one more (an engine uid a reader was
 * told to expect; (uid_t)-1 for none). */
struct xr_trust {
	uid_t extra;
};

bool xr__trusted_uid(const struct xr_trust *t, uid_t uid);

/*
 * Opens path with flags (O_RDONLY or O_RDWR; O_CLOEXEC added) if it is a
 * regular file owned by a trusted uid, and *st describes it. Symbolic links
 * are not followed and nothing but a regular file is ever opened for real
 * (a FIFO, socket or device is looked at through an O_PATH descriptor only),
 * so this never blocks. Returns the fd, or -ENOENT, XR_EUNTRUSTED (owned by
 * someone else, whatever it is), -ELOOP (a symbolic link), -EMEDIUMTYPE
 * (not a regular file), or -errno; *st describes what was there.
 */
int xr__open_trusted(const char *path, int flags, const struct xr_trust *t, struct stat *st);

/*
 * Whether dir may hold what a process serves or looks up: a real directory
 * (not a link), owned by a trusted uid, writable by nobody else (no group or
 * other write bit, sticky or not). Only dir itself is checked, not its
 * parents (util/fs.c says why). Returns 0, -ENOENT, -ENOTDIR (not a
 * directory), XR_EUNTRUSTED (a link, another owner, or writable by others),
 * or -errno; with why, a one-line reason naming dir.
 */
int xr__check_dir(const char *dir, const struct xr_trust *t, char *why, size_t why_len);

/*
 * open(path, flags, mode) with no symbolic link followed anywhere in the
 * path, not only in its last component (openat2's RESOLVE_NO_SYMLINKS), so
 * that a link planted in a directory on the way (another user's, in /tmp)
 * cannot send a file the engine writes or reads as its uid elsewhere; the
 * last component is never followed either (-ELOOP). On a kernel without
 * openat2 (before 5.6), O_NOFOLLOW alone. The fd, or -errno.
 */
int xr__open_no_links(const char *path, int flags, mode_t mode);

/*
 * A memfd of n bytes (named tag), sealed so that nobody can resize it under
 * a mapping, and mapped read-write here (*map). With read_only, sealed
 * against writing too once this mapping is made (F_SEAL_FUTURE_WRITE):
 * nobody, whatever descriptor of it they hold or reopen through /proc, can
 * map it writable or write() it; this mapping alone stays writable. 0 and
 * the descriptor in *fd_out, or -errno with nothing left open.
 */
int xr__memfd_map(const char *tag, uint64_t n, bool read_only, int *fd_out, uint8_t **map);

#endif
