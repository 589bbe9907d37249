/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/run_dir.h"
#include "shm/backing.h"
#include "xring/error.h"
#include "xring/types.h"

#define XR_RUN_ROOT "/run/xring"

static int sock_path(char *path, size_t len, const char *dir, const char *name)
{
	int n = snprintf(path, len, "%s/%s.sock", dir, name);

	return n < 0 || (size_t)n >= len ? -EINVAL : 0;
}

/* Makes dir (mode 0755, past the umask) if it does not exist, then checks
 * it may serve. */
static int prepare(const char *dir, char *why, size_t why_len)
{
	if (mkdir(dir, 0755) == 0) {
		chmod(dir, 0755);
	} else if (errno != EEXIST) {
		int err = -errno;
		snprintf(why, why_len, "cannot make %s: %s", dir, strerror(-err));
		return err;
	}
	int rc = xr__check_dir(dir, NULL, why, why_len);
	if (rc == 0 && access(dir, W_OK | X_OK) < 0) {
		rc = -errno;
		snprintf(why, why_len, "%s is not writable by this user", dir);
	}
	return rc;
}

int xr__run_dir_serve(const char *name, char *path, size_t len, char *why, size_t why_len)
{
	const char *env = getenv("XRING_RUN_DIR");
	char dir[128];
	int rc;

	why[0] = '\0';
	if (xr__check_name(name, XR_NAME_MAX) < 0)
		return -EINVAL;
	if (env && *env) {
		rc = prepare(env, why, why_len);
		if (rc < 0) {
			size_t n = strlen(why);
			snprintf(why + n, why_len - n, " (XRING_RUN_DIR)");
			return rc;
		}
		return sock_path(path, len, env, name);
	}
	rc = prepare(XR_RUN_ROOT, why, why_len);
	if (rc == 0)
		return sock_path(path, len, XR_RUN_ROOT, name);
	/* Not root, or /run/xring is root's: this uid's own directory. */
	snprintf(dir, sizeof(dir), "/tmp/xring-%u", (unsigned)geteuid());
	rc = prepare(dir, why, why_len);
	if (rc < 0) {
		size_t n = strlen(why);
		snprintf(why + n, why_len - n, "; remove it, or set XRING_RUN_DIR to a directory of "
						"this user's");
		return rc;
	}
	return sock_path(path, len, dir, name);
}

int xr__run_dir_lookup(const char *name, const struct xr_trust *t, int k, char *path,
		       size_t len, char *why, size_t why_len)
{
	const char *env = getenv("XRING_RUN_DIR");
	char dir[128];
	uid_t uids[2] = {geteuid(), t ? t->extra : (uid_t)-1};

	why[0] = '\0';
	if (xr__check_name(name, XR_NAME_MAX) < 0)
		return -EINVAL;
	if (env && *env) {
		if (k > 0)
			return -ERANGE;
		snprintf(dir, sizeof(dir), "%s", env);
	} else if (k == 0) {
		snprintf(dir, sizeof(dir), "%s", XR_RUN_ROOT);
	} else if (k <= 2) {
		uid_t u = uids[k - 1];
		if (u == (uid_t)-1 || (k == 2 && u == uids[0]) || u == 0)
			return -ENOENT; /* no such place to look: root's is /run/xring */
		snprintf(dir, sizeof(dir), "/tmp/xring-%u", (unsigned)u);
	} else {
		return -ERANGE;
	}
	int rc = xr__check_dir(dir, t, why, why_len);
	if (rc == -ENOTDIR)
		return XR_EUNTRUSTED;
	if (rc < 0)
		return rc;
	return sock_path(path, len, dir, name);
}
