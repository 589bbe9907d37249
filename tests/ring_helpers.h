/* SPDX-License-Identifier: MIT */
#ifndef XR_TESTS_RING_HELPERS_H
#define XR_TESTS_RING_HELPERS_H

/*
 * Shared by the ring tests: unique engine names, arenas with one opaque
 * stream, and stamped records whose every byte is a function of their
 * sequence number, so a reader can prove a record is the one it expects and
 * is intact.
 */

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xring/arena.h"
#include "xring/error.h"
#include "xring/reader.h"
#include "xring/server.h"
#include "xring/writer.h"

#define XR_SKIP 77

static void xr_test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));

/* A failing test exits without destroying its arenas: remove what this
 * process named (xr_test_name: "t<pid>-..."), arena files and control
 * sockets, so that failed runs do not pile up in /dev/hugepages. */
static void xr_test_remove_own_files(void)
{
	char own[64];
	snprintf(own, sizeof(own), "/tmp/xring-%u", (unsigned)geteuid());
	const char *dirs[] = {"/dev/hugepages", "/dev/shm", getenv("XRING_RUN_DIR"), "/run/xring",
			      own};
	char mine[32];
	int n = snprintf(mine, sizeof(mine), "t%d-", (int)getpid());

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		DIR *d = dirs[i] ? opendir(dirs[i]) : NULL;
		struct dirent *e;

		if (!d)
			continue;
		while ((e = readdir(d))) {
			const char *s = e->d_name;
			s += *s == '.';
			s += strncmp(s, "xring-", 6) ? 0 : 6;
			if (!strncmp(s, mine, (size_t)n))
				unlinkat(dirfd(d), e->d_name, 0);
		}
		closedir(d);
	}
}

static void xr_test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL %s:%d (pid %d): ", file, line, (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	xr_test_remove_own_files();
	exit(1);
}

#define FAILF(...) xr_test_fail(__FILE__, __LINE__, __VA_ARGS__)
#define CHECK(cond) do { if (!(cond)) FAILF("%s", #cond); } while (0)
#define CHECK_RC(expr, want) do { \
	long _rc = (long)(expr), _w = (long)(want); \
	if (_rc != _w) FAILF("%s = %ld (%s), want %ld (%s)", #expr, _rc, xr_err_name((int)_rc), \
			     _w, xr_err_name((int)_w)); \
} while (0)
#define CHECK_EQ(a, b) do { \
	unsigned long long _a = (unsigned long long)(a), _b = (unsigned long long)(b); \
	if (_a != _b) FAILF("%s = %llu, want %s = %llu", #a, _a, #b, _b); \
} while (0)

/* The scheduler state of thread tid of this process ('R', 'S', ...), from
 * /proc: what a test waits on to know another thread is asleep. */
static inline char xr_test_task_state(pid_t tid)
{
	char path[64], buf[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return '?';
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

static inline void xr_test_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "t%d-%s", (int)getpid(), tag);
}

/* The control servers of the arenas made here, so that readers can attach
 * (they always do through the control socket) and so that
 * xr_test_destroy() can stop a server before destroying its arena. */
static struct {
	xr_arena *a;
	xr_server *s;
} xr_test_served[16];

static inline xr_server *xr_test_serve(xr_arena *a)
{
	for (size_t i = 0; i < sizeof(xr_test_served) / sizeof(xr_test_served[0]); i++)
		if (!xr_test_served[i].a) {
			int rc = xr_server_start(a, NULL, &xr_test_served[i].s);
			if (rc < 0)
				FAILF("xr_server_start: %s (%s)", xr_strerror(rc), xr_server_last_note());
			xr_test_served[i].a = a;
			return xr_test_served[i].s;
		}
	FAILF("more than 16 arenas served at once");
}

/* The server of an arena made here. */
static inline xr_server *xr_test_serve_of(xr_arena *a)
{
	for (size_t i = 0; i < sizeof(xr_test_served) / sizeof(xr_test_served[0]); i++)
		if (xr_test_served[i].a == a)
			return xr_test_served[i].s;
	FAILF("the arena has no server");
}

/* Closes a (readers drain, then see XR_ECLOSED), stops its server if it
 * has one, destroys it. */
static inline void xr_test_destroy(xr_arena *a)
{
	xr_arena_close(a);
	for (size_t i = 0; i < sizeof(xr_test_served) / sizeof(xr_test_served[0]); i++)
		if (xr_test_served[i].a == a) {
			xr_server_stop(xr_test_served[i].s);
			xr_test_served[i].a = NULL;
		}
	if (xr_arena_destroy(a) < 0)
		FAILF("xr_arena_destroy: still in use");
}

/* An arena with one opaque stream, served. */
static inline xr_arena *xr_test_arena(const char *name, xr_policy policy, uint64_t ring_bytes,
				      uint32_t align, xr_hugepages hp)
{
	xr_stream_spec ss = {.policy = policy, .ring_bytes = ring_bytes, .frame_align = align};
	xr_arena_spec spec = {.name = name, .streams = &ss, .n_streams = 1, .hugepages = hp,
			      .numa_node = XR_NUMA_DEFAULT, .max_readers = 16};
	xr_arena *a;
	int rc = xr_arena_create(&spec, &a);

	if (rc < 0)
		FAILF("xr_arena_create(%s): %s (%s)", name, xr_strerror(rc), xr_arena_last_note());
	xr_test_serve(a);
	return a;
}

/* An arena whose one stream has Experience records of a fixed shape, so
 * every record is *len bytes long (the ring's record_len: readers then take
 * runs of frames without walking them). Records need not be Experience
 * records to the ring: stamped records of *len bytes do. */
static inline xr_arena *xr_test_arena_fixed(const char *name, xr_policy policy,
					    uint64_t ring_bytes, uint32_t align, uint32_t *len)
{
	static const xr_exp_shape shape = {.obs_dtype = XR_DTYPE_U8, .obs_ndim = 1,
					   .obs_dims = {300}, .mask_len = 7};
	xr_stream_spec ss = {.policy = policy, .ring_bytes = ring_bytes, .frame_align = align,
			     .kind = XR_RECORD_EXPERIENCE, .shape = shape};
	xr_arena_spec spec = {.name = name, .streams = &ss, .n_streams = 1,
			      .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_DEFAULT,
			      .max_readers = 16};
	xr_exp_template t;
	xr_arena *a;
	int rc = xr_arena_create(&spec, &a);

	if (rc < 0)
		FAILF("xr_arena_create(%s): %s (%s)", name, xr_strerror(rc), xr_arena_last_note());
	xr_test_serve(a);
	CHECK_RC(xr_exp_template_init(&t, &shape), 0);
	*len = t.size;
	return a;
}

static inline xr_writer *xr_test_writer(xr_arena *a)
{
	xr_writer *w;

	CHECK_RC(xr_arena_writer(a, 0, 0, &w), 0);
	return w;
}

/* ---- stamped records ---- */

static inline uint64_t xr_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* Record length for seq: 16..max_len, varied. */
static inline uint32_t xr_stamp_len(uint64_t seq, uint32_t max_len)
{
	return 16 + (uint32_t)(xr_mix(seq ^ 0x5eed) % (max_len - 15));
}

static inline void xr_stamp(uint8_t *p, uint64_t seq, uint32_t len)
{
	uint64_t x = xr_mix(seq + 1);
	uint32_t i = 16;

	memcpy(p, &seq, 8);
	memcpy(p + 8, &len, 4);
	memset(p + 12, 0xa5, 4);
	for (; i + 8 <= len; i += 8) {
		x = xr_mix(x);
		memcpy(p + i, &x, 8);
	}
	x = xr_mix(x);
	for (; i < len; i++)
		p[i] = (uint8_t)(x >> (8 * (i & 7)));
}

/* 0 if p[0..len) is the stamped record seq, else a description. */
static inline const char *xr_stamp_check(const uint8_t *p, uint32_t len, uint64_t seq)
{
	uint64_t got_seq, x = xr_mix(seq + 1), w;
	uint32_t got_len, i = 16;

	if (len < 16)
		return "record shorter than its stamp";
	memcpy(&got_seq, p, 8);
	memcpy(&got_len, p + 8, 4);
	if (got_seq != seq)
		return "stamped seq differs from frame seq";
	if (got_len != len)
		return "stamped length differs from frame length";
	for (; i + 8 <= len; i += 8) {
		x = xr_mix(x);
		memcpy(&w, p + i, 8);
		if (w != x)
			return "payload bytes corrupted";
	}
	x = xr_mix(x);
	for (; i < len; i++)
		if (p[i] != (uint8_t)(x >> (8 * (i & 7))))
			return "payload tail corrupted";
	return NULL;
}

/* Checks every frame of batch b: an intact stamp, seq >= *next (== *next
 * when exact, as for a lossless reader). Advances *next; returns the records
 * skipped. Fails the test on anything else. */
static inline uint64_t xr_test_check_batch(const xr_batch *b, uint64_t *next, bool exact)
{
	const xr_frame *f = b->first;
	uint64_t gaps = 0;

	for (uint32_t i = 0; i < b->count; i++, f = xr_frame_next(f)) {
		const char *bad = xr_stamp_check(xr_frame_data(f), f->len, f->seq);
		if (bad)
			FAILF("seq %llu: %s", (unsigned long long)f->seq, bad);
		if (f->seq < *next || (exact && f->seq != *next))
			FAILF("seq %llu where %llu was expected%s", (unsigned long long)f->seq,
			      (unsigned long long)*next, exact ? " (a lossless reader missed records)" : "");
		gaps += f->seq - *next;
		*next = f->seq + 1;
	}
	return gaps;
}

/* Writes one stamped record of length len with the writer's next seq;
 * returns as xr_writer_reserve(). */
static inline int xr_test_put(xr_writer *w, uint32_t len)
{
	void *p;
	uint64_t seq = xr_writer_next_seq(w);
	int rc = xr_writer_reserve(w, len, &p);

	if (rc < 0)
		return rc;
	xr_stamp(p, seq, len);
	xr_writer_commit(w);
	return 0;
}

#endif
