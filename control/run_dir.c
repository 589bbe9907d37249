/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/run_dir.h"
#include "shm/backing.h"
#include "xring/error.h"
#include "xring/types.h"

#define XR_RUN_ROOT "/run/xring"

/* The longest socket path: sun_path holds it and its NUL. Longer cannot be
 * bound or connected to at all. */
#define XR_SOCK_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* XRING_RUN_DIR, or NULL when it is unset or empty. A relative one would
 * name another directory in each working directory, so engine and readers
 * started in different places would never meet: -EINVAL, with why. */
static int env_dir(const char **dir, char *why, size_t why_len)
{
	const char *env = getenv("XRING_RUN_DIR");

	*dir = env && *env ? env : NULL;
	if (*dir && *dir[0] != '/') {
		snprintf(why, why_len, "XRING_RUN_DIR must be an absolute path, not '%s'", env);
		return -EINVAL;
	}
	return 0;
}

/* "dir/name.sock" into path (len bytes). Checked before anything is made
 * or looked at: only XRING_RUN_DIR can be long enough to fail, and then
 * every engine and reader fails the same way. */
static int sock_path(char *path, size_t len, const char *dir, const char *name, char *why,
		     size_t why_len)
{
	size_t n = strlen(dir) + strlen(name) + sizeof("/.sock") - 1;

	if (n > XR_SOCK_PATH_MAX) {
		/* The path last: a long one may not fit why[]. */
		snprintf(why, why_len,
			 "set XRING_RUN_DIR to a directory path of at most %zu bytes: a Unix socket "
			 "address holds %zu, and the control socket path would be %zu: %s/%s.sock",
			 XR_SOCK_PATH_MAX - (n - strlen(dir)), XR_SOCK_PATH_MAX, n, dir, name);
		return -ENAMETOOLONG;
	}
	if (n >= len)
		return -EINVAL; /* the caller's buffer, not the user's doing */
	snprintf(path, len, "%s/%s.sock", dir, name);
	return 0;
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

/* Appends to why what to do about a refused run directory. */
static void advise(char *why, size_t why_len, const char *what)
{
	size_t n = strlen(why);

	snprintf(why + n, why_len - n, "; %s", what);
}

int xr__run_dir_serve(const char *name, char *path, size_t len, char *why, size_t why_len)
{
	const char *env;
	char dir[32];
	int rc;

	why[0] = '\0';
	if (xr__check_name(name, XR_NAME_MAX) < 0)
		return -EINVAL;
	rc = env_dir(&env, why, why_len);
	if (rc < 0)
		return rc;
	if (env) {
		rc = sock_path(path, len, env, name, why, why_len);
		if (rc == 0)
			rc = prepare(env, why, why_len);
		/* 0700 is what a run directory of one user needs; the check
		 * (xr__check_dir) also takes 0755, for readers of other users,
		 * and a directory of root's. Kept short: why[] also holds the
		 * reason and the path. */
		if (rc < 0 && rc != -ENAMETOOLONG)
			advise(why, why_len, "set XRING_RUN_DIR to a directory this user owns with "
					     "mode 0700");
		return rc;
	}
	rc = prepare(XR_RUN_ROOT, why, why_len);
	if (rc == 0)
		return sock_path(path, len, XR_RUN_ROOT, name, why, why_len);
	/* Not root, or /run/xring is root's: this uid's own directory. */
	snprintf(dir, sizeof(dir), "/tmp/xring-%u", (unsigned)geteuid());
	rc = prepare(dir, why, why_len);
	if (rc < 0) {
		advise(why, why_len, "remove it, or set XRING_RUN_DIR to a directory this user owns "
				     "with mode 0700");
		return rc;
	}
	return sock_path(path, len, dir, name, why, why_len);
}

int xr__run_dir_lookup(const char *name, const struct xr_trust *t, int k, char *path,
		       size_t len, char *why, size_t why_len)
{
	const char *env, *dir;
	char tmp[32];
	uid_t uids[2] = {geteuid(), t ? t->extra : (uid_t)-1};
	int rc;

	why[0] = '\0';
	if (xr__check_name(name, XR_NAME_MAX) < 0)
		return -EINVAL;
	if (env_dir(&env, why, why_len) < 0)
		return k > 0 ? -ERANGE : -EINVAL;
	if (env) {
		if (k > 0)
			return -ERANGE;
		dir = env;
	} else if (k == 0) {
		dir = XR_RUN_ROOT;
	} else if (k <= 2) {
		uid_t u = uids[k - 1];
		if (u == (uid_t)-1 || (k == 2 && u == uids[0]) || u == 0)
			return -ENOENT; /* no such place to look: root's is /run/xring */
		snprintf(tmp, sizeof(tmp), "/tmp/xring-%u", (unsigned)u);
		dir = tmp;
	} else {
		return -ERANGE;
	}
	rc = sock_path(path, len, dir, name, why, why_len);
	if (rc == 0)
		rc = xr__check_dir(dir, t, why, why_len);
	if (rc == -ENOTDIR)
		rc = XR_EUNTRUSTED;
	if (rc == XR_EUNTRUSTED)
		advise(why, why_len, env ? "set XRING_RUN_DIR, for engine and readers alike, to a "
					   "directory of the engine's user that no one else may write"
					 : "remove it if it was planted there, or set XRING_RUN_DIR, for "
					   "engine and readers alike, to a directory of the engine's user "
					   "that no one else may write");
	else if (rc == -EACCES)
		advise(why, why_len, "set XRING_RUN_DIR, for engine and readers alike, to a "
				     "directory this user may enter");
	return rc;
}
