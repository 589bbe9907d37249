/* SPDX-License-Identifier: MIT */
#ifndef XR_SHM_MAP_H
#define XR_SHM_MAP_H

#include <stdbool.h>
#include <stdint.h>

/* Maps [off, off + len) of fd, shared, read-only or read-write.
 * Returns the address, or NULL with errno set. */
void *xr__map_region(int fd, uint64_t off, uint64_t len, bool writable);

/*
 * Maps the ring [off, off + cap) of fd twice, back to back, at an address
 * aligned to align (the backing page size), so that byte i and byte i + cap
 * are the same memory for i < cap. A record that wraps is then one
 * contiguous run of bytes: no split copies, no padding at the end of the
 * ring. Returns 0 and the base in *base, or a negative errno.
 */
int xr__map_ring(int fd, uint64_t off, uint64_t cap, uint64_t align, bool writable,
		 void **base);

void xr__unmap_ring(void *base, uint64_t cap);

#endif
