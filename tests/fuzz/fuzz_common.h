/* SPDX-License-Identifier: MIT */
#ifndef XR_FUZZ_COMMON_H
#define XR_FUZZ_COMMON_H

/*
 * Shared by the fuzz harnesses (docs/fuzzing.md): reading an input as a
 * stream of little fields (past its end, every field reads 0), a private
 * directory per process for arenas and sockets (removed at exit), and the
 * check that aborts, which libFuzzer and the replay driver both report as a
 * crash with the input that caused it.
 */

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <time.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

#define FZ_CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "fuzz check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

#define FZ_FAIL(...) do { \
	fprintf(stderr, "fuzz check failed at %s:%d: ", __FILE__, __LINE__); \
	fprintf(stderr, __VA_ARGS__); \
	fputc('\n', stderr); \
	abort(); \
} while (0)

struct fz_in {
	const uint8_t *p;
	size_t n;
};

static inline bool fz_more(const struct fz_in *in)
{
	return in->n > 0;
}

/* Up to k bytes into out, zeros past the input's end; how many were real. */
static inline size_t fz_bytes(struct fz_in *in, void *out, size_t k)
{
	size_t m = k < in->n ? k : in->n;

	memcpy(out, in->p, m);
	memset((uint8_t *)out + m, 0, k - m);
	in->p += m;
	in->n -= m;
	return m;
}

static inline uint8_t fz_u8(struct fz_in *in)
{
	uint8_t v;
	fz_bytes(in, &v, 1);
	return v;
}

static inline uint16_t fz_u16(struct fz_in *in)
{
	uint16_t v;
	fz_bytes(in, &v, 2);
	return v;
}

static inline uint32_t fz_u32(struct fz_in *in)
{
	uint32_t v;
	fz_bytes(in, &v, 4);
	return v;
}

static inline uint64_t fz_u64(struct fz_in *in)
{
	uint64_t v;
	fz_bytes(in, &v, 8);
	return v;
}

/* poll() that a signal does not end early: libFuzzer's timeout is a
 * SIGALRM each second, which any thread may take. */
static inline int fz_poll(struct pollfd *pf, nfds_t n, int ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int rc = poll(pf, n, ms);
		if (rc >= 0 || errno != EINTR)
			return rc;
		if (ms < 0)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &t);
		int64_t spent = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (spent >= ms)
			return 0;
		ms -= (int)spent;
		t0 = t;
	}
}

static char fz_dir_path[64];

/* Removes the private directory and what is in it (one level: the
 * harnesses make files there, nothing deeper). */
static void fz_dir_remove(void)
{
	DIR *d = opendir(fz_dir_path);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(fz_dir_path);
}

/* A directory of this process's own, mode 0700, removed at exit; set as
 * XRING_DIR (arena files) and XRING_RUN_DIR (control sockets) so that
 * nothing a harness makes lands in a shared place. */
static inline const char *fz_private_dir(const char *tag)
{
	if (fz_dir_path[0])
		return fz_dir_path;
	snprintf(fz_dir_path, sizeof(fz_dir_path), "/tmp/xr-fuzz-%s-XXXXXX", tag);
	FZ_CHECK(mkdtemp(fz_dir_path) != NULL);
	atexit(fz_dir_remove);
	FZ_CHECK(setenv("XRING_DIR", fz_dir_path, 1) == 0);
	FZ_CHECK(setenv("XRING_RUN_DIR", fz_dir_path, 1) == 0);
	return fz_dir_path;
}

#endif
