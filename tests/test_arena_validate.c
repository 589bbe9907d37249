/* SPDX-License-Identifier: MIT */
/*
 * A reader validates an arena before it follows anything in it, and unmaps
 * by its own copies (defect 10 of the trust-boundary issue: a crafted arena
 * whose stream named another stream's ring made the reader use a ring it had
 * not mapped; closing unmapped by live header fields).
 *
 *   crafted   one header field made wrong at a time, each a way to send a
 *             reader off its mappings: refused with XR_ENOTARENA, never a
 *             crash.
 *   fuzzed    8,000 headers with random bytes flipped: opened or refused,
 *             never a crash (ASan runs it in CI); every one that opens maps
 *             rings inside the file.
 *   own_copies   a header rewritten after the reader opened it: closing
 *             unmaps exactly what was mapped (no mapping of the file left).
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "ring_helpers.h"
#include "shm/arena_priv.h"
#include "shm/layout.h"

static char dir[64];
static struct xr_arena_hdr good;
static uint64_t good_size;

/* A valid header to mutate: an arena of two streams, three rings. */
static void make_good(void)
{
	static const xr_exp_shape shape = {.obs_dtype = XR_DTYPE_U8, .obs_ndim = 1,
					   .obs_dims = {100}, .mask_len = 3};
	xr_stream_spec ss[2] = {
		{.name = "a", .policy = XR_POLICY_LOSSLESS, .n_rings = 2, .ring_bytes = 64u << 10},
		{.name = "b", .policy = XR_POLICY_LOSSY, .ring_bytes = 64u << 10,
		 .kind = XR_RECORD_EXPERIENCE, .shape = shape},
	};
	char name[64];
	xr_test_name(name, sizeof(name), "valid");
	xr_arena_spec spec = {.name = name, .streams = ss, .n_streams = 2,
			      .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE,
			      .max_readers = 4};
	xr_arena *a;
	CHECK_RC(xr_arena_create(&spec, &a), 0);
	memcpy(&good, a->hdr, sizeof(good));
	good_size = a->lay.total_size;
	CHECK_RC(xr_arena_destroy(a), 0);
	/* As the live engine left it. */
	atomic_store(&good.state, XR_ARENA_READY);
}

/* A file holding h, of the size the engine made (whatever h says).
 * Returns its fd. */
static int file_of(const struct xr_arena_hdr *h)
{
	char path[96];
	uint64_t size = good_size;

	snprintf(path, sizeof(path), "%s/arena", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)size) == 0);
	CHECK(pwrite(fd, h, sizeof(*h), 0) == (ssize_t)sizeof(*h));
	unlink(path);
	return fd;
}

/* Opens h as a reader would (rings of every stream mapped); the result. */
static int open_hdr(const struct xr_arena_hdr *h)
{
	struct xr_arena *a;
	int rc = xr__arena_open_fd(file_of(h), XR_OPEN_RINGS | XR_OPEN_SERVED, -1, &a);

	if (rc == 0) {
		/* Everything it mapped is inside the file: touch the first and
		 * last byte of each ring (twice mapped). */
		for (uint32_t r = 0; r < a->lay.n_rings; r++) {
			volatile const uint8_t *d = a->ring_data[r];
			CHECK(d != NULL);
			(void)d[0];
			(void)d[2 * a->lay.rings[r].capacity - 1];
		}
		xr__arena_close(a);
	}
	return rc;
}

#define CRAFT(what, stmt) do { \
	struct xr_arena_hdr h = good; \
	stmt; \
	int _rc = open_hdr(&h); \
	if (_rc != XR_ENOTARENA) \
		FAILF("crafted header (%s) opened as %s, want XR_ENOTARENA", what, xr_err_name(_rc)); \
	n++; \
} while (0)

static void crafted(void)
{
	int n = 0;

	CHECK_RC(open_hdr(&good), 0);
	CRAFT("stream a names stream b's ring", h.streams[0].first_ring = 1;
	      h.streams[0].n_rings = 2);
	CRAFT("a stream's ring says another stream", h.rings[2].stream = 0);
	CRAFT("rings overlap", h.rings[1].data_off = h.rings[0].data_off);
	CRAFT("a ring past the file's end", h.rings[2].data_off = good_size);
	CRAFT("a ring's end past the file's end", h.rings[2].capacity = 1ull << 40);
	CRAFT("a capacity not a power of two", h.rings[1].capacity = 3 * 4096);
	CRAFT("a ring over the reader table", h.rings[0].data_off = h.tab_off);
	CRAFT("a ring's index not its own", h.rings[1].index = 0);
	CRAFT("no rings", h.n_rings = 0);
	CRAFT("more rings than exist", h.n_rings = 33);
	CRAFT("more streams than exist", h.n_streams = 9);
	CRAFT("a ring no stream covers", h.streams[1].n_rings = 0);
	CRAFT("a stream's rings past the last", h.streams[1].first_ring = 3);
	CRAFT("first_ring wrapping", h.streams[1].first_ring = UINT32_MAX);
	CRAFT("n_rings wrapping", h.streams[0].n_rings = UINT32_MAX);
	CRAFT("a reader table that does not fit", h.max_readers = 256);
	CRAFT("a reader table past the end", h.tab_size = 1ull << 40);
	CRAFT("a page size not a power of two", h.page_size = 4095);
	CRAFT("a page size of one byte", h.page_size = 1);
	CRAFT("a file size other than the header's", h.total_size = good_size + 4096);
	CRAFT("a stream name without its NUL", memset(h.streams[0].name, 'x', sizeof(h.streams[0].name)));
	CRAFT("an engine name without its NUL", memset(h.name, 'x', sizeof(h.name)));
	CRAFT("an unknown policy", h.streams[0].policy = 7);
	CRAFT("an unknown record kind", h.streams[0].record_kind = 9);
	CRAFT("a record length unlike its shape's", h.rings[2].record_len = 8);
	CRAFT("frame alignment zero", h.rings[0].frame_align = 0);
	CRAFT("frame alignment not a power of two", h.rings[0].frame_align = 48);
	CRAFT("frames larger than half the ring", h.rings[0].record_len = 64u << 10);
	CRAFT("a stream's alignment unlike its rings'", h.streams[0].frame_align = 128);
	CRAFT("a stream's capacity unlike its rings'", h.streams[0].ring_capacity = 4096);
	CRAFT("max_frame past half a ring", h.streams[0].max_frame = 64u << 10);
	printf("crafted: %d wrong headers refused, none followed\n", n);
}

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fuzzed(void)
{
	/* The bytes a mutation may reach: up to the end of the rings. The
	 * identity (magic, version, fingerprint) is left alone, or almost
	 * every mutant would stop at the first check. */
	const size_t lo = offsetof(struct xr_arena_hdr, total_size);
	const size_t hi = offsetof(struct xr_arena_hdr, shards);
	int opened = 0, refused = 0;

	for (int i = 0; i < 8000; i++) {
		struct xr_arena_hdr h = good;
		uint8_t *b = (uint8_t *)&h;
		int flips = 1 + (int)(next_rand() % 4);
		for (int k = 0; k < flips; k++) {
			size_t at = lo + next_rand() % (hi - lo);
			b[at] = (uint8_t)next_rand();
		}
		atomic_store(&h.state, XR_ARENA_READY);
		int rc = open_hdr(&h);
		if (rc == 0)
			opened++;
		else if (rc == XR_ENOTARENA)
			refused++;
		else
			FAILF("mutant %d: %s", i, xr_err_name(rc));
	}
	printf("fuzzed: 8000 mutants: %d opened (within the file), %d refused\n", opened,
	       refused);
}

static int maps_of(const char *path)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int n = 0;

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, path) != NULL;
	fclose(f);
	return n;
}

static void own_copies(void)
{
	char path[96];
	struct xr_arena *a;

	snprintf(path, sizeof(path), "%s/kept", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0 && ftruncate(fd, (off_t)good_size) == 0);
	CHECK(pwrite(fd, &good, sizeof(good), 0) == (ssize_t)sizeof(good));
	int ro = open(path, O_RDONLY | O_CLOEXEC);
	CHECK_RC(xr__arena_open_fd(ro, XR_OPEN_RINGS | XR_OPEN_SERVED, -1, &a), 0);
	CHECK(maps_of(path) > 0);
	/* Rewritten under the reader: every size a close could go by. */
	struct xr_arena_hdr bad = good;
	bad.tab_off = bad.tab_size = 1ull << 20;
	for (uint32_t r = 0; r < XR_MAX_RINGS; r++)
		bad.rings[r].capacity = 1ull << 30;
	CHECK(pwrite(fd, &bad, sizeof(bad), 0) == (ssize_t)sizeof(bad));
	xr__arena_close(a);
	if (maps_of(path))
		FAILF("closing left %d mapping(s) of the arena behind", maps_of(path));
	close(fd);
	unlink(path);
	printf("own_copies: a header rewritten under the reader; closing unmapped exactly what "
	       "was mapped\n");
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/xr-validate-%d", (int)getpid());
	CHECK(mkdir(dir, 0700) == 0);
	make_good();
	crafted();
	fuzzed();
	own_copies();
	rmdir(dir);
	return 0;
}
