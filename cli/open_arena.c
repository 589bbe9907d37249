/* SPDX-License-Identifier: MIT */
/*
 * Opening an engine's arena for a tool (`xring info`, `stat`, `top`): by
 * name, read-only, as the engine's user, with one line saying what to do
 * when it cannot.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "shm/arena_priv.h"
#include "shm/backing.h"
#include "util/fs.h"
#include "xring/error.h"

/* The file xr__arena_open refused with rc: the first place, in its order,
 * holding a file of this name that is another user's (XR_EUNTRUSTED) or
 * that this user may not read (-EACCES). 0 with *st filled, or -ENOENT. */
static int find_refused(const char *name, int rc, char *path, size_t len, struct stat *st)
{
	struct xr_place places[XR_MAX_CANDIDATES];
	char why[XR_NOTE_MAX];
	int n = xr__places(XR_HUGEPAGES_PREFER, places, why, sizeof(why));

	for (int k = 0; k < n; k++) {
		if (xr__arena_path(path, len, places[k].dir, name) < 0 || lstat(path, st) < 0)
			continue;
		if (rc == XR_EUNTRUSTED ? !xr__trusted_uid(NULL, st->st_uid)
					: faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) < 0)
			return 0;
	}
	return -ENOENT;
}

/* Whose the refused arena is and the command that reads it, in one line.
 * Only the owner (or root, for root's) may read an arena, and root refuses
 * to trust another user's: either way the way in is to become the owner.
 * sudo drops XRING_DIR from the environment, so the command passes it on.
 * false if the file cannot be found again (it went, or a directory on the
 * way is closed to this user): the caller then says what it knows. */
static bool say_whose(const char *cmd, const char *name, int rc)
{
	char path[XR_PATH_MAX], sudo[64], user[64], why[64];
	const char *dir = getenv("XRING_DIR");
	struct stat st;
	struct passwd *pw;

	if (find_refused(name, rc, path, sizeof(path), &st) < 0)
		return false;
	pw = getpwuid(st.st_uid);
	if (pw)
		snprintf(user, sizeof(user), "user %s (uid %u)", pw->pw_name, (unsigned)st.st_uid);
	else
		snprintf(user, sizeof(user), "uid %u", (unsigned)st.st_uid);
	/* sudo -u takes '#UID' for a uid without a name. */
	if (st.st_uid == 0)
		snprintf(sudo, sizeof(sudo), "sudo");
	else if (pw)
		snprintf(sudo, sizeof(sudo), "sudo -u %s", pw->pw_name);
	else
		snprintf(sudo, sizeof(sudo), "sudo -u '#%u'", (unsigned)st.st_uid);
	if (rc == XR_EUNTRUSTED)
		snprintf(why, sizeof(why), "xring reads only arenas of this user or root");
	else
		snprintf(why, sizeof(why), "its mode %04o does not let uid %u read it",
			 (unsigned)(st.st_mode & 07777), (unsigned)geteuid());
	xr_cli_err(cmd, "arena of engine '%s' (%s) belongs to %s, and %s; run `%s %s%s%sxring %s %s`",
		   name, path, user, why, sudo, dir && *dir ? "env XRING_DIR=" : "",
		   dir && *dir ? dir : "", dir && *dir ? " " : "", cmd, name);
	return true;
}

int xr_cli_open_arena(const char *cmd, const char *name, struct xr_arena **a)
{
	int rc = xr__arena_open(name, 0, -1, a);

	if (rc == 0)
		return 0;
	if (rc == -ENOENT)
		xr_cli_err(cmd, "no engine '%s' is running; start one with `xring engine --name %s`",
			   name, name);
	else if (rc == XR_ECLOSED)
		xr_cli_err(cmd, "engine '%s' has stopped (its arena is closed)", name);
	else if ((rc == XR_EUNTRUSTED || rc == -EACCES) && say_whose(cmd, name, rc))
		;
	else if (rc == XR_EUNTRUSTED)
		xr_cli_err(cmd, "the arena named '%s' belongs to another user; run `xring %s` as "
				   "the engine's user",
			   name, cmd);
	else
		xr_cli_err(cmd, "cannot open engine '%s': %s", name, xr_strerror(rc));
	return XR_EXIT_FAIL;
}
