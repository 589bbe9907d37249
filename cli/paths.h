/* SPDX-License-Identifier: MIT */
#ifndef XR_CLI_PATHS_H
#define XR_CLI_PATHS_H

/*
 * Where the files that come with the xring program are: the benchmarks
 * (<libexecdir>/xring) and the Python helpers (<datadir>/xring), found
 * relative to the running program first, so that an install moved to
 * another prefix (cmake --install --prefix, a package) still finds its own,
 * then where the build configured them. In a build tree, perf/ holds both.
 */

#include <stdbool.h>
#include <stddef.h>

/* The directory of the running program: 0 or -errno. */
int xr_cli_exe_dir(char *buf, size_t len);

/* Whether the running program is the xring of the build tree it was built
 * in (then perf/ of its source and build trees are at hand). */
bool xr_cli_from_build(void);

/* Whether path is a regular file this user may execute (exe) or read. */
bool xr_cli_usable(const char *path, bool exe);

/* An installed file: <exe_dir>/../<libexecdir>/xring/NAME (libexec) or
 * <exe_dir>/../<datadir>/xring/NAME (data), then the configured absolute
 * directory. 0 with its path in out, or -ENOENT with the places tried (one
 * line) in out. An executable is wanted for libexec, a readable file for
 * data. */
int xr_cli_installed(bool libexec, const char *name, char *out, size_t len);

#endif
