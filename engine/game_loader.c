/* SPDX-License-Identifier: MIT */
/*
 * Loading game plugins (contract in xring/game.h).
 *
 * The file is stat()ed first so a missing file is told apart from a file that
 * is not a plugin: dlopen() reports both only as text. A path is always a
 * file path: a bare name means the file in the working directory, never a
 * search of the library path. RTLD_NOW makes a plugin
 * with an unresolved symbol fail here rather than at its first step in a
 * shard; RTLD_LOCAL keeps two plugins' symbols apart. A loaded plugin is never
 * closed: its vtable and instances may live as long as the process.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "xring/game.h"

static _Thread_local char note[256];

static int fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(note, sizeof(note), fmt, ap);
	va_end(ap);
	return rc;
}

const char *xr_game_last_note(void)
{
	return note;
}

int xr_game_load(const char *path, const xr_game_vtable **out)
{
	xr_game_plugin_fn entry;
	const xr_game_vtable *vt;
	char local[PATH_MAX + 2];
	struct stat st;
	void *h, *sym;
	const char *err;

	note[0] = '\0';
	if (!path || !out)
		return fail(-EINVAL, "no plugin path given");
	if (stat(path, &st) < 0) {
		int e = errno;

		return fail(-e, "%s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode))
		return fail(-ENOEXEC, "%s: not a regular file", path);
	/* dlopen() searches the library path for a name without a slash; the
	 * file stat() found is the one meant. */
	if (!strchr(path, '/')) {
		if (snprintf(local, sizeof(local), "./%s", path) >= (int)sizeof(local))
			return fail(-ENAMETOOLONG, "%s: path too long", path);
		path = local;
	}
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		err = dlerror();
		return fail(-ENOEXEC, "%s", err ? err : "dlopen failed");
	}
	dlerror();
	sym = dlsym(h, XR_GAME_PLUGIN_SYMBOL);
	if (!sym) {
		dlclose(h);
		return fail(-ENOEXEC, "%s: no %s() (not a game plugin)", path, XR_GAME_PLUGIN_SYMBOL);
	}
	/* POSIX guarantees a function's address survives the trip through
	 * void *; the copy avoids ISO C's object-to-function cast warning. */
	_Static_assert(sizeof(entry) == sizeof(sym), "function and object pointers differ");
	memcpy(&entry, &sym, sizeof(entry));
	vt = entry();
	if (!vt) {
		dlclose(h);
		return fail(-ENOEXEC, "%s: %s() returned NULL", path, XR_GAME_PLUGIN_SYMBOL);
	}
	if (vt->abi != XR_GAME_ABI_VERSION) {
		uint32_t abi = vt->abi;

		dlclose(h);
		return fail(-EPROTO, "%s: game ABI %u, this xring speaks %u", path, abi,
			    XR_GAME_ABI_VERSION);
	}
	if (!vt->name || !vt->create || !vt->destroy || !vt->sizes || !vt->reset || !vt->step ||
	    !vt->observe || !vt->legal_actions) {
		dlclose(h);
		return fail(-ENOEXEC, "%s: vtable lacks its name or a function", path);
	}
	*out = vt;
	return 0;
}
