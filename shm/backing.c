/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stddef.h>
#include <hugetlbfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shm/backing.h"
#include "xring/error.h"

#define XR_SHM_DIR "/dev/shm"
#define XR_THP_SIZE (2ull << 20)

static long read_long(const char *path)
{
	char buf[64];
	FILE *f = fopen(path, "re");
	long v = -1;

	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		v = strtol(buf, NULL, 10);
	fclose(f);
	return v;
}

long xr__hugepages_free(uint64_t page_size)
{
	char path[128];
	long free_pages, resv;

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%llukB/free_hugepages",
		 (unsigned long long)(page_size >> 10));
	free_pages = read_long(path);
	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%llukB/resv_hugepages",
		 (unsigned long long)(page_size >> 10));
	resv = read_long(path);
	if (free_pages < 0)
		return -1;
	return resv > 0 ? free_pages - resv : free_pages;
}

/* Whether tmpfs will back a MADV_HUGEPAGE mapping with huge pages: the
 * selected word in shmem_enabled is one of always, within_size, advise. */
static bool shmem_thp_allowed(void)
{
	char buf[256];
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "re");
	bool ok = false;

	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f))
		ok = strstr(buf, "[always]") || strstr(buf, "[within_size]") ||
		     strstr(buf, "[advise]") || strstr(buf, "[force]");
	fclose(f);
	return ok;
}

static void append(char *why, size_t len, const char *msg)
{
	size_t used = strlen(why);

	if (used && used + 2 < len) {
		strcat(why, "; ");
		used += 2;
	}
	if (used < len)
		snprintf(why + used, len - used, "%s", msg);
}

int xr__places(xr_hugepages mode, struct xr_place places[XR_MAX_CANDIDATES],
	       char *why, size_t why_len)
{
	const char *env = getenv("XRING_DIR");
	long sys_page = sysconf(_SC_PAGESIZE);
	int n = 0;

	why[0] = '\0';
	if (env && *env) {
		snprintf(places[0].dir, sizeof(places[0].dir), "%s", env);
		if (mode != XR_HUGEPAGES_OFF && hugetlbfs_test_path(env) == 1) {
			places[0].kind = XR_BACKING_HUGETLBFS;
			places[0].page_size = (uint64_t)gethugepagesize();
			return 1;
		}
		places[0].kind = XR_BACKING_DIR;
		places[0].page_size = (uint64_t)sys_page;
		append(why, why_len, "XRING_DIR is not on hugetlbfs: base pages");
		return mode == XR_HUGEPAGES_REQUIRE ? XR_ENOHUGE : 1;
	}

	if (mode != XR_HUGEPAGES_OFF) {
		/* libhugetlbfs scans /proc/mounts for a hugetlbfs mount of the
		 * default huge page size. */
		long hp = gethugepagesize();
		const char *mnt = hp > 0 ? hugetlbfs_find_path_for_size(hp) : NULL;

		if (!mnt) {
			append(why, why_len, "no hugetlbfs mount found (run `xring setup`, "
					     "or mount -t hugetlbfs none /dev/hugepages)");
		} else {
			places[n].kind = XR_BACKING_HUGETLBFS;
			places[n].page_size = (uint64_t)hp;
			snprintf(places[n].dir, sizeof(places[n].dir), "%s", mnt);
			n++;
		}
	} else {
		append(why, why_len, "huge pages off by request");
	}

	if (mode == XR_HUGEPAGES_REQUIRE) {
		if (n == 0)
			return XR_ENOHUGE;
		return n;
	}

	places[n].dir[0] = '\0';
	snprintf(places[n].dir, sizeof(places[n].dir), "%s", XR_SHM_DIR);
	if (mode != XR_HUGEPAGES_OFF && shmem_thp_allowed()) {
		places[n].kind = XR_BACKING_SHM_THP;
		places[n].page_size = XR_THP_SIZE;
	} else {
		places[n].kind = XR_BACKING_SHM;
		places[n].page_size = (uint64_t)sys_page;
	}
	n++;
	return n;
}

int xr__arena_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/xring-%s", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int xr__check_name(const char *name, size_t max)
{
	size_t n;

	if (!name || !*name || name[0] == '.')
		return -EINVAL;
	for (n = 0; name[n]; n++) {
		char c = name[n];
		if (n >= max)
			return -EINVAL;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return -EINVAL;
	}
	return 0;
}
