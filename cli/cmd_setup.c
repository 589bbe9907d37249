/* SPDX-License-Identifier: MIT */
/*
 * `xring setup`: prepares huge pages where it may (root), and says what it
 * did or why it could not. xring works without huge pages (it falls back to
 * /dev/shm and says so), so this exits 0 unless --require is given.
 */
#include <errno.h>
#include <stddef.h>
#include <hugetlbfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "shm/backing.h"

static const char setup_help[] =
	"usage: xring setup [--pages N] [--mount DIR] [--require]\n"
	"\n"
	"Reserves N default-size huge pages (vm.nr_hugepages; default 1024, i.e. 2 GiB of\n"
	"2 MiB pages) and mounts hugetlbfs at DIR (default /dev/hugepages) if no\n"
	"hugetlbfs mount exists. Needs root; without it, says what to run instead.\n"
	"\n"
	"  --require   exit non-zero if huge pages are not usable afterwards\n";

#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"

static long read_nr(void)
{
	FILE *f = fopen(NR_HUGEPAGES, "re");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int write_nr(long n)
{
	FILE *f = fopen(NR_HUGEPAGES, "we");
	int err = 0;

	if (!f)
		return -errno;
	if (fprintf(f, "%ld\n", n) < 0)
		err = -errno;
	if (fclose(f) != 0 && !err)
		err = -errno;
	return err;
}

int xr_cmd_setup(int argc, char **argv)
{
	static const struct xr_opt opts[] = {
		{"--pages", true}, {"--mount", true}, {"--require", false}, {"--help", false},
		{NULL, false},
	};
	const char *mnt_dir = "/dev/hugepages", *v;
	long want = 1024;
	bool require = false;
	int i = 1, k;

	while (i < argc) {
		k = xr_next_opt("setup", argc, argv, &i, opts, &v);
		switch (k) {
		case -2: return XR_EXIT_USAGE;
		case -1:
			xr_cli_err("setup", "unexpected argument '%s'; see `xring setup --help`", v);
			return XR_EXIT_USAGE;
		case 0:
			if (!xr_parse_int(v, 0, 1L << 24, &want)) {
				xr_cli_err("setup", "--pages '%s' is not a page count", v);
				return XR_EXIT_USAGE;
			}
			break;
		case 1: mnt_dir = v; break;
		case 2: require = true; break;
		case 3: fputs(setup_help, stdout); return 0;
		}
	}

	long page_kb = gethugepagesize() > 0 ? gethugepagesize() >> 10 : 2048;
	long have = read_nr();
	if (have < 0) {
		printf("xring setup: this kernel has no huge page support (%s missing); xring will use "
		       "/dev/shm with base pages (slower)\n", NR_HUGEPAGES);
	} else if (have >= want) {
		printf("xring setup: vm.nr_hugepages is %ld (>= %ld): left as is\n", have, want);
	} else {
		int err = write_nr(want);
		long now = read_nr();
		if (err < 0)
			printf("xring setup: cannot raise vm.nr_hugepages from %ld to %ld (%s); as root run "
			       "`echo %ld > %s`; until then xring uses /dev/shm (slower)\n",
			       have, want, strerror(-err), want, NR_HUGEPAGES);
		else
			printf("xring setup: vm.nr_hugepages %ld -> %ld (asked for %ld)%s\n", have, now, want,
			       now < want ? "; memory is fragmented, reboot or drop caches for more" : "");
	}

	const char *found = hugetlbfs_find_path();
	bool mounted = found != NULL;
	if (found) {
		printf("xring setup: hugetlbfs is mounted at %s\n", found);
	} else {
		mkdir(mnt_dir, 0755);
		/* libhugetlbfs reads the mount table once per process, so what we
		 * mount here is judged by hugetlbfs_test_path(), not found again. */
		mounted = mount("none", mnt_dir, "hugetlbfs", 0, "mode=1777") == 0 &&
			  hugetlbfs_test_path(mnt_dir) == 1;
		if (mounted)
			printf("xring setup: mounted hugetlbfs at %s\n", mnt_dir);
		else
			printf("xring setup: cannot mount hugetlbfs at %s (%s); as root run `mount -t "
			       "hugetlbfs none %s`; until then xring uses /dev/shm (slower)\n",
			       mnt_dir, strerror(errno), mnt_dir);
	}

	long free_pages = xr__hugepages_free((uint64_t)page_kb << 10);
	bool usable = free_pages > 0 && mounted;
	printf("xring setup: %ld free %ld kB huge pages; engines will use %s\n",
	       free_pages < 0 ? 0 : free_pages, page_kb,
	       usable ? "hugetlbfs" : "/dev/shm (no usable huge pages)");
	if (require && !usable) {
		xr_cli_err("setup", "huge pages are not usable here; run as root or see above");
		return 1;
	}
	return 0;
}
