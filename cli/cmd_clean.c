/* SPDX-License-Identifier: MIT */
/*
 * `xring clean`: removes the arenas of this user's engines that are gone.
 * An engine that exits removes its arena; one killed (SIGKILL, a crash, the
 * machine's OOM killer) leaves it, with its huge pages or /dev/shm memory,
 * until an engine of the same name starts. Nothing of another user's, no
 * live engine's, and nothing that is not an arena is touched
 * (xr__arena_reap_stale in shm/arena.c says how each is told apart).
 */
#include <inttypes.h>
#include <stdio.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "shm/arena_priv.h"
#include "shm/backing.h"
#include "xring/error.h"

static const char clean_help[] =
	"usage: xring clean [NAME...] [--dry-run]\n"
	"\n"
	"Removes the arenas of this user's engines that are gone (closed, or their\n"
	"process dead): what a killed engine leaves in hugetlbfs or /dev/shm, holding\n"
	"its memory. Live engines, other users' files and files that are not arenas\n"
	"are left alone. With NAMEs, only those engines' arenas. Prints a line for\n"
	"each arena and a summary.\n"
	"\n"
	"  --dry-run   say what would be removed, remove nothing\n";

struct tally {
	bool dry_run;
	uint64_t bytes, removed, left;
};

static void found(const char *path, uint64_t bytes, bool removed, void *ctx)
{
	struct tally *t = ctx;

	if (t->dry_run) {
		printf("would remove %s (%.1f MiB): its engine is gone\n", path, bytes / 1048576.0);
	} else if (removed) {
		printf("removed %s (%.1f MiB): its engine was gone\n", path, bytes / 1048576.0);
		t->removed++;
		t->bytes += bytes;
	} else {
		/* Replaced meanwhile: an engine of that name started. */
		printf("left %s: it changed while being looked at\n", path);
		t->left++;
	}
	if (t->dry_run)
		t->bytes += bytes;
}

int xr_cmd_clean(int argc, char **argv)
{
	static const struct xr_opt opts[] = {
		{"--dry-run", false}, {"--help", false}, {NULL, false},
	};
	struct tally t = {0};
	const char *v, *names[64];
	int i = 1, k, n_names = 0;

	while (i < argc) {
		k = xr_next_opt("clean", argc, argv, &i, opts, &v);
		switch (k) {
		case -2: return XR_EXIT_USAGE;
		case -1:
			if (xr__check_name(v, XR_NAME_MAX) < 0) {
				xr_cli_err("clean", "'%s' is not an engine name (1-%d characters of "
						    "A-Z a-z 0-9 _ . -, not starting with '.')",
					   v, XR_NAME_MAX);
				return XR_EXIT_USAGE;
			}
			if (n_names == 64) {
				xr_cli_err("clean", "at most 64 names at once");
				return XR_EXIT_USAGE;
			}
			names[n_names++] = v;
			break;
		case 0: t.dry_run = true; break;
		case 1: fputs(clean_help, stdout); return 0;
		}
	}
	int n = xr__arena_reap_stale(names, n_names, t.dry_run, found, &t);
	if (n < 0) {
		xr_cli_err("clean", "cannot look for arenas: %s", xr_strerror(n));
		return XR_EXIT_FAIL;
	}
	if (n == 0)
		printf("xring clean: no arena of an engine that is gone\n");
	else if (t.dry_run)
		printf("xring clean: %d arena(s) of engines that are gone, %.1f MiB; run without "
		       "--dry-run to remove them\n", n, t.bytes / 1048576.0);
	else
		printf("xring clean: removed %" PRIu64 " arena(s), %.1f MiB%s\n", t.removed,
		       t.bytes / 1048576.0, t.left ? "; some changed meanwhile (see above)" : "");
	return 0;
}
