/* SPDX-License-Identifier: MIT */
/*
 * A bridge's key file (wire.h): the secret both sides MAC messages with.
 * Held to the rules ssh holds a private key to: a file anyone else may read
 * is a secret no more, so it is refused rather than used.
 */
#include "bridge/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int xr__br_key_load(const char *path, struct xr_br_key *k, char *why, size_t len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	int rc = 0;

	memset(k, 0, sizeof(*k));
	if (fd < 0) {
		rc = -errno;
		snprintf(why, len, "cannot open key file %s: %s%s", path, strerror(-rc),
			 rc == -ELOOP ? " (a symbolic link: give the file itself)" : "");
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(why, len, "key file %s: %s", path, strerror(-rc));
	} else if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(why, len, "key file %s is not a regular file", path);
	} else if (st.st_uid != geteuid()) {
		rc = -EPERM;
		snprintf(why, len, "key file %s belongs to uid %u, not to this user (%u): a secret "
			 "is kept by the one who uses it", path, (unsigned)st.st_uid,
			 (unsigned)geteuid());
	} else if (st.st_mode & 077) {
		rc = -EPERM;
		snprintf(why, len, "key file %s may be read or written by others (mode %03o): "
			 "chmod 600 it, and make a new key if anyone may have read it", path,
			 (unsigned)(st.st_mode & 0777));
	} else if (st.st_size < XR_BR_KEY_MIN || st.st_size > XR_BR_KEY_MAX) {
		rc = -EINVAL;
		snprintf(why, len, "key file %s has %lld bytes; a key has %u to %u (make one with "
			 "`head -c 32 /dev/urandom > FILE`)", path, (long long)st.st_size,
			 XR_BR_KEY_MIN, XR_BR_KEY_MAX);
	} else {
		ssize_t n = read(fd, k->bytes, sizeof(k->bytes));
		if (n != st.st_size) {
			rc = n < 0 ? -errno : -EIO;
			snprintf(why, len, "cannot read key file %s whole", path);
			OPENSSL_cleanse(k->bytes, sizeof(k->bytes));
		} else {
			k->len = (size_t)n;
		}
	}
	close(fd);
	return rc;
}
