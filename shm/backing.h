/* SPDX-License-Identifier: MIT */
#ifndef XR_SHM_BACKING_H
#define XR_SHM_BACKING_H

/*
 * Where arena files live and what memory backs them.
 *
 * Candidates, in the order the writer tries them:
 *   $XRING_DIR set:  that directory only (tests, unusual setups)
 *   hugetlbfs:       the mount libhugetlbfs finds for the default huge page
 *                    size (skipped with --hugepages off)
 *   /dev/shm:        tmpfs, with transparent huge pages advised where the
 *                    kernel's shmem_enabled allows it (skipped with require)
 *
 * Tools of the engine's uid (xring info) search the same places, by name,
 * in the same order; readers get the arena from the engine's socket.
 */

#include <stdbool.h>
#include <stdint.h>

#include "xring/types.h"

#define XR_MAX_CANDIDATES 3

struct xr_place {
	xr_backing kind;
	uint64_t page_size; /* unit every region and ring is rounded to */
	char dir[160];
};

/* Fills places[] with the directories to try for mode, best first; returns
 * how many (>= 1), or XR_ENOHUGE (with why[] saying why) when mode is
 * REQUIRE and no hugetlbfs mount exists. why[] also collects the reasons a
 * better candidate was skipped, for the arena's note. */
int xr__places(xr_hugepages mode, struct xr_place places[XR_MAX_CANDIDATES],
	       char *why, size_t why_len);

/* Free huge pages of page_size bytes (free minus reserved), or -1 if the
 * kernel does not say. */
long xr__hugepages_free(uint64_t page_size);

/* "<dir>/xring-<name>" into buf. -ENAMETOOLONG if it does not fit. */
int xr__arena_path(char *buf, size_t len, const char *dir, const char *name);

/* Checks an engine or stream name: 1..max chars of [A-Za-z0-9_.-], not
 * starting with '.'. Returns 0 or -EINVAL. */
int xr__check_name(const char *name, size_t max);

#endif
