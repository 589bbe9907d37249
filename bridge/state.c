/* SPDX-License-Identifier: MIT */
/* A bridge's files across its restarts (state.h). */
#include "bridge/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xring/reader.h"

int xr__br_state_path(const char *engine, const char *kind, const char *key, char *path,
		      size_t len)
{
	char sock[512];
	int rc = xr_engine_socket(engine, 0, sock, sizeof(sock));

	if (rc < 0)
		return rc;
	char *slash = strrchr(sock, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	char k[300];
	snprintf(k, sizeof(k), "%s", key);
	for (char *c = k; *c; c++) /* a name, never a path */
		if (*c == '/' || *c < ' ' || *c > '~')
			*c = '_';
	int n = snprintf(path, len, "%s/%s.bridge-%s-%s.state", sock, engine, kind, k);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

long xr__br_state_load(const char *path, void *buf, size_t cap)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	long n = -EINVAL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
	    !(st.st_mode & 022) && (size_t)st.st_size <= cap) {
		ssize_t r = read(fd, buf, (size_t)st.st_size);
		n = r == st.st_size ? (long)r : -EIO;
	}
	close(fd);
	return n;
}

int xr__br_state_save(const char *path, const void *buf, size_t len)
{
	char tmp[600];
	int n = snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());

	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, buf, len);
	int rc = w == (ssize_t)len ? 0 : (w < 0 ? -errno : -EIO);
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}
