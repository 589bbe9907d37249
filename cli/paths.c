/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/paths.h"

int xr_cli_exe_dir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);

	if (n <= 0)
		return -errno;
	buf[n] = '\0';
	char *slash = strrchr(buf, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	return 0;
}

bool xr_cli_from_build(void)
{
	char dir[PATH_MAX];

	return xr_cli_exe_dir(dir, sizeof(dir)) == 0 && strcmp(dir, XR_BENCH_BUILD_ROOT) == 0;
}

bool xr_cli_usable(const char *path, bool exe)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, exe ? X_OK : R_OK) == 0;
}

int xr_cli_installed(bool libexec, const char *name, char *out, size_t len)
{
	char dir[PATH_MAX], near[PATH_MAX];
	const char *rel = libexec ? XR_LIBEXEC_REL : XR_DATA_REL;
	const char *abs = libexec ? XR_LIBEXEC_ABS : XR_DATA_ABS;
	int n;

	near[0] = '\0';
	/* A relative <libexecdir> (the usual) sits beside bin/ under the prefix. */
	if (rel[0] != '/' && xr_cli_exe_dir(dir, sizeof(dir)) == 0) {
		n = snprintf(near, sizeof(near), "%s/../%s/%s", dir, rel, name);
		if (n > 0 && (size_t)n < sizeof(near) && xr_cli_usable(near, libexec)) {
			snprintf(out, len, "%s", near);
			return 0;
		}
	}
	n = snprintf(out, len, "%s/%s", abs, name);
	if (n > 0 && (size_t)n < len && xr_cli_usable(out, libexec))
		return 0;
	if (near[0]) {
		char abs_path[PATH_MAX];
		snprintf(abs_path, sizeof(abs_path), "%s", out);
		snprintf(out, len, "%s, %s", near, abs_path);
	}
	return -ENOENT;
}
