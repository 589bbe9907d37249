/* SPDX-License-Identifier: MIT */
#ifndef XRING_TYPES_H
#define XRING_TYPES_H

/* Vocabulary shared by the writer, reader and inspection APIs. */

#include <stdint.h>

#include "xring/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest engine or stream name, without the terminating NUL. Names are
 * [A-Za-z0-9_.-]+. */
#define XR_NAME_MAX 47
#define XR_STREAM_NAME_MAX 31
#define XR_DEFAULT_STREAM "experience"

/* What happens when a reader falls behind.
 *
 * A stream's policy is the strongest a reader may ask for:
 *   lossless stream: readers may be lossless or lossy. The writer never drops
 *     a record; it waits for lossless readers (and for any held lease).
 *   lossy stream: readers are lossy. The writer never waits; a slow reader
 *     loses its oldest unleased records, and a held lease in the writer's way
 *     makes the writer drop the new record instead (counted).
 */
typedef enum xr_policy {
	XR_POLICY_DEFAULT = 0, /* reader: take the stream's policy */
	XR_POLICY_LOSSLESS = 1,
	XR_POLICY_LOSSY = 2,
} xr_policy;

/* "lossless" or "lossy" into *out: 0, or -EINVAL for any other name. */
XR_API int xr_policy_parse(const char *s, xr_policy *out);
/* "lossless", "lossy", or NULL for XR_POLICY_DEFAULT and unknown values. */
XR_API const char *xr_policy_name(xr_policy p);

/* Where the arena's memory comes from. */
typedef enum xr_hugepages {
	XR_HUGEPAGES_PREFER = 0,  /* hugetlbfs if possible, else /dev/shm */
	XR_HUGEPAGES_REQUIRE = 1, /* hugetlbfs or fail with XR_ENOHUGE */
	XR_HUGEPAGES_OFF = 2,     /* /dev/shm with base pages */
} xr_hugepages;

/* "prefer", "require" or "off" into *out: 0, or -EINVAL. */
XR_API int xr_hugepages_parse(const char *s, xr_hugepages *out);

typedef enum xr_backing {
	XR_BACKING_HUGETLBFS = 1, /* hugetlbfs file, explicit huge pages */
	XR_BACKING_SHM_THP = 2,   /* /dev/shm file, transparent huge pages advised */
	XR_BACKING_SHM = 3,       /* /dev/shm file, base pages */
	XR_BACKING_DIR = 4,       /* a file in $XRING_DIR (tests, odd setups) */
} xr_backing;

/* What a stream's records are. */
typedef enum xr_record_kind {
	XR_RECORD_OPAQUE = 0,     /* bytes, meaning known to writer and reader */
	XR_RECORD_EXPERIENCE = 1, /* FlatBuffers Experience with a fixed shape */
} xr_record_kind;

/*
 * Every record in a ring sits in a frame: this 16-byte header, then the
 * record's bytes, then zero padding up to the stream's frame alignment.
 * Frames are contiguous in the reader's address space even across the ring's
 * wrap (rings are mapped twice, back to back).
 */
typedef struct xr_frame {
	uint32_t size; /* whole frame in bytes: header + record + padding */
	uint32_t len;  /* record bytes */
	uint64_t seq;  /* per-ring sequence number, from 0; a record dropped at the
			* writer (lossy lease stall) uses up its seq, so gaps mean loss */
} xr_frame;

#define XR_FRAME_HDR 16u

static inline const void *xr_frame_data(const xr_frame *f)
{
	return (const uint8_t *)f + XR_FRAME_HDR;
}

static inline const xr_frame *xr_frame_next(const xr_frame *f)
{
	return (const xr_frame *)((const uint8_t *)f + f->size);
}

#ifdef __cplusplus
}
#endif
#endif
