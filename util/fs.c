/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"
#include "xring/error.h"

bool xr__trusted_uid(const struct xr_trust *t, uid_t uid)
{
	return uid == 0 || uid == geteuid() || (t && t->extra != (uid_t)-1 && uid == t->extra);
}

int xr__open_trusted(const char *path, int flags, const struct xr_trust *t, struct stat *st)
{
	char proc[64];
	/* O_PATH opens nothing: no FIFO open that waits for a writer, no
	 * device open with side effects, no following of a last-component
	 * link (O_NOFOLLOW). What it names is checked, then reopened through
	 * the descriptor itself, so the check and the open see one inode. */
	int pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	int fd, err;

	if (pfd < 0)
		return -errno;
	if (fstat(pfd, st) < 0) {
		err = -errno;
		close(pfd);
		return err;
	}
	if (!xr__trusted_uid(t, st->st_uid)) {
		close(pfd);
		return XR_EUNTRUSTED;
	}
	if (S_ISLNK(st->st_mode)) {
		close(pfd);
		return -ELOOP;
	}
	if (!S_ISREG(st->st_mode)) {
		close(pfd);
		return -EMEDIUMTYPE;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = open(proc, (flags & O_ACCMODE) | O_CLOEXEC);
	err = fd < 0 ? -errno : 0;
	close(pfd);
	return fd < 0 ? err : fd;
}

/*
 * Only the last component of dir is checked: its owner and mode. The
 * parents are the administrator's: /run is root's, 0755; /tmp is 1777 with
 * the sticky bit, so no other user may rename or remove a directory of
 * ours there and put theirs in its place. Checking every parent the same
 * way would refuse /tmp itself (writable by every user). So the last
 * component is the one another user could own or write, and the one a
 * link could stand in for (lstat: a link is refused, not followed); a link
 * among the parents is followed. Whoever sets XRING_RUN_DIR vouches for the
 * parents of the directory it names: none writable by another user unless
 * sticky.
 */
int xr__check_dir(const char *dir, const struct xr_trust *t, char *why, size_t why_len)
{
	struct stat st;

	if (lstat(dir, &st) < 0) {
		int err = -errno;
		if (why)
			snprintf(why, why_len, "%s: %s", dir,
				 err == -ENOENT  ? "no such directory"
				 : err == -EACCES ? "permission denied (this user cannot reach it)"
						  : strerror(-err));
		return err;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (why)
			snprintf(why, why_len, "%s is %s, not a directory", dir,
				 S_ISLNK(st.st_mode) ? "a symbolic link" : "a file");
		/* A link is a place someone could point elsewhere. */
		return S_ISLNK(st.st_mode) ? XR_EUNTRUSTED : -ENOTDIR;
	}
	if (!xr__trusted_uid(t, st.st_uid)) {
		if (why)
			snprintf(why, why_len,
				 "%s belongs to uid %u, not to this user or root: another user could "
				 "replace what is served there",
				 dir, (unsigned)st.st_uid);
		return XR_EUNTRUSTED;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		if (why)
			snprintf(why, why_len,
				 "%s is writable by %s (mode %04o): another user could replace what is "
				 "served there",
				 dir, st.st_mode & S_IWOTH ? "every user" : "its group",
				 (unsigned)(st.st_mode & 07777));
		return XR_EUNTRUSTED;
	}
	return 0;
}

/* xr__memfd_map: the seals go on before the mapping is handed to anyone;
 * F_SEAL_FUTURE_WRITE only after this process's own writable mapping. */
int xr__memfd_map(const char *tag, uint64_t n, bool read_only, int *fd_out, uint8_t **map)
{
	int fd = memfd_create(tag, MFD_CLOEXEC | MFD_ALLOW_SEALING), err;
	void *p = MAP_FAILED;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)n) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0 ||
	    (p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED ||
	    fcntl(fd, F_ADD_SEALS, (read_only ? F_SEAL_FUTURE_WRITE : 0) | F_SEAL_SEAL) < 0) {
		err = -errno;
		if (p != MAP_FAILED)
			munmap(p, n);
		close(fd);
		return err;
	}
	*fd_out = fd;
	*map = p;
	return 0;
}

int xr__open_no_links(const char *path, int flags, mode_t mode)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
			       .mode = (flags & O_CREAT) ? mode : 0,
			       .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
	long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS)
		fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	return fd < 0 ? -errno : (int)fd;
}
