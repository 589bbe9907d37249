/* SPDX-License-Identifier: MIT */
/*
 * bench_ring: ring throughput, writer and reader in two processes (issue 2).
 *
 * For each record size the parent creates an arena with one lossless stream
 * of opaque records and forks; the child attaches by engine name as an
 * ordinary lossless reader and says so through a pipe (the start barrier).
 * The parent then writes for --seconds through reserve/fill/commit, publishing
 * every --publish-records records or --publish-bytes bytes, and closes the
 * arena; the child reads batches (min 1, max --batch), touches every payload
 * byte, releases, and sends its count, checksum and the time of its last
 * record back through a second pipe. Throughput is records over the time from
 * the first write to the reader's last record (both CLOCK_MONOTONIC).
 *
 * Honesty: the writer stores every payload byte (8-byte words, word i of the
 * record with sequence s is stamp(s) + i), the reader loads every byte
 * (sums the words) and checks length, sequence and first word of each record;
 * the reader's sum must equal the writer's closed-form sum. Lossless: nothing
 * may be dropped. A failed check makes the exit status 1; a missed target
 * does not (this is a measurement).
 *
 * The bound, printed beside each result: memcpy bandwidth on the writer's
 * CPU, for ring-sized blocks (same working set as the ring) and for a buffer
 * far larger than the caches (DRAM). Bytes are counted once (bytes/s written
 * to memcpy's destination), like the ring's payload bytes.
 *
 * The baseline: a bare ring, the least a cross-process ring can do. The same
 * records (same frame header, size, fill and check) through a hand-written
 * single-producer single-consumer ring in the same kind of memory, with the
 * same publish and batch sizes, no library call, and both sides spinning.
 * memcpy stays on one core; every ring byte has to move from the writer's
 * core to the reader's, and on a virtual machine what that costs changes
 * with where the host runs the two vCPUs. So each size runs in --rounds
 * rounds, xring and bare ring alternating, and the median round is reported:
 * xring / bare ring is the library's own efficiency, measured under the same
 * conditions; xring / memcpy is the target.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "xring/arena.h"
#include "xring/server.h"
#include "xring/error.h"
#include "xring/reader.h"
#include "xring/types.h"
#include "xring/writer.h"
#include "bench_util.h"

#define MAX_SIZES 16
#define MAX_ROUNDS 64
#define STAMP_MUL 0x9E3779B97F4A7C15ull

struct cfg {
	double seconds;        /* xring writing time per size (the bare ring gets as much) */
	double memcpy_seconds;
	uint32_t sizes[MAX_SIZES];
	uint32_t n_sizes;
	uint32_t rounds;
	bool bare;             /* run the bare-ring baseline */
	xr_hugepages hugepages;
	uint64_t ring_bytes;
	uint64_t dram_bytes;
	uint32_t publish_records;
	uint32_t publish_bytes;
	uint32_t batch;
	uint32_t batch_min;
	uint32_t frame_align;
	bool pin;
	bool json;
	bool nt;               /* writer fills with streaming (non-temporal) stores */
	int cpu_writer, cpu_reader; /* -1: not pinned */
};

/* What a reader process sends back. */
struct reader_result {
	int32_t rc;          /* 0, or the error that ended the read loop */
	uint32_t errors;     /* records that failed a check */
	uint64_t first_bad;  /* seq of the first record that failed, if any */
	uint64_t records;
	uint64_t batches;
	uint64_t dropped;
	uint64_t checksum;   /* sum of every payload word, mod 2^64 */
	uint64_t t_last;     /* CLOCK_MONOTONIC after the last record */
	uint64_t in_read_ns; /* time waiting for records (inside xr_reader_read) */
};

/* What the writer (the parent) saw. */
struct writer_out {
	uint64_t records;
	uint64_t checksum;
	uint64_t full_waits;
	uint64_t wait_ns;
	uint64_t publishes;
	uint64_t t_end;
};

/* One timed round of one ring. */
struct round {
	uint64_t records;
	double seconds;        /* first write .. reader's last record */
	double writer_seconds; /* first write .. last publish */
	double gbps;           /* payload bytes / seconds / 1e9 */
	uint64_t full_waits;
	double writer_wait_s;
	double reader_wait_s;
	uint64_t publishes;
	uint64_t batches;
	bool data_ok;
};

/* One record size: the median rounds and the verdict. */
struct result {
	uint32_t size;
	uint32_t rounds;
	struct round xr[MAX_ROUNDS], bare[MAX_ROUNDS];
	double rec_per_s;      /* xring, median round */
	double gbps;           /* xring payload GB/s, median round */
	double gbps_min, gbps_max;
	double bare_gbps;      /* bare ring, median round */
	double bare_rec_per_s;
	double ratio;          /* gbps / memcpy of ring-sized blocks */
	double ratio_dram;     /* gbps / memcpy of the DRAM-sized buffer */
	double vs_bare;        /* gbps / bare_gbps */
	bool data_ok;
	const char *target;    /* text of the target, "" if none */
	int met;               /* 1 met, 0 missed, -1 no target */
};

struct backing_info {
	char backing[16];
	uint64_t page_size;
	uint64_t total_size;
	int numa_node;
	char path[256];
	char note[256];
};

static inline uint64_t stamp(uint64_t seq, uint32_t size)
{
	return seq * STAMP_MUL + size;
}

/* Sum of the words stamp, stamp + 1, ..., stamp + n - 1 (mod 2^64). */
static inline uint64_t record_sum(uint64_t st, uint64_t n)
{
	uint64_t tri = n % 2 ? n * ((n - 1) / 2) : (n / 2) * (n - 1);

	return n * st + tri;
}

/* The same with streaming stores, which bypass the caches: no read for
 * ownership of lines the reader holds, at the price of a trip to DRAM.
 * Streaming stores are weakly ordered: fence_nt() before publishing. */
static inline void fill_words_nt(uint64_t *p, uint64_t st, size_t n)
{
	size_t i = 0;

#if defined(__SSE2__)
	for (; i + 2 <= n; i += 2)
		_mm_stream_si128((__m128i *)(p + i),
				 _mm_set_epi64x((long long)(st + i + 1), (long long)(st + i)));
#endif
	for (; i < n; i++)
		p[i] = st + i;
}

static inline void fence_nt(bool nt)
{
#if defined(__SSE2__)
	if (nt)
		_mm_sfence();
#else
	(void)nt;
#endif
}

/* The reader's work per record: load every payload word. */
static inline uint64_t sum_words(const uint64_t *p, size_t n)
{
	uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
	size_t i = 0;

	for (; i + 4 <= n; i += 4) {
		a0 += p[i];
		a1 += p[i + 1];
		a2 += p[i + 2];
		a3 += p[i + 3];
	}
	for (; i < n; i++)
		a0 += p[i];
	return a0 + a1 + a2 + a3;
}

/* The reader's check of one record; returns its word sum. */
static inline uint64_t check_record(const xr_frame *f, uint32_t size, uint64_t *expect,
				    struct reader_result *res)
{
	const uint64_t *w = xr_frame_data(f);
	uint64_t sum = 0;

	if (f->len != size || f->seq != *expect || w[0] != stamp(*expect, size)) {
		if (!res->errors++)
			res->first_bad = f->seq;
		*expect = f->seq; /* resynchronise */
	}
	if (f->len == size)
		sum = sum_words(w, size / 8);
	(*expect)++;
	return sum;
}

static inline uint64_t frame_size(const struct cfg *c, uint32_t size)
{
	return ((uint64_t)size + XR_FRAME_HDR + c->frame_align - 1) &
	       ~(uint64_t)(c->frame_align - 1);
}

/* ---- memcpy bound ---- */

static void *big_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_HUGEPAGE);
	memset(p, 0x5a, len); /* fault it all in now */
	return p;
}

static volatile uint64_t sink;

/* memcpy bandwidth for len-byte blocks, in GB/s of destination bytes. */
static double memcpy_gbps(size_t len, double seconds)
{
	uint8_t *src = big_alloc(len), *dst = big_alloc(len);
	uint64_t bytes = 0, t0, t;

	if (!src || !dst) {
		if (src)
			munmap(src, len);
		if (dst)
			munmap(dst, len);
		return 0.0;
	}
	memcpy(dst, src, len); /* warm up */
	t0 = now_ns();
	do {
		memcpy(dst, src, len);
		src[bytes % len] ^= 1; /* the copies differ; nothing to hoist */
		bytes += len;
		t = now_ns();
	} while (t - t0 < (uint64_t)(seconds * 1e9));
	sink ^= dst[len / 2] ^ dst[len - 1];
	munmap(src, len);
	munmap(dst, len);
	return (double)bytes / (double)(t - t0);
}

/* ---- two processes: the child reads, the parent writes ---- */

typedef void (*reader_fn)(const struct cfg *c, void *ctx, uint32_t size, int ready_fd,
			  struct reader_result *res);

/*
 * Forks a reader running fn, waits for it to say it is ready (the start
 * barrier). Returns the child's pid, or -errno / the reader's attach error.
 */
static pid_t start_reader(const struct cfg *c, reader_fn fn, void *ctx, uint32_t size,
			  int *result_fd)
{
	int ready[2], result[2];
	int32_t child_rc;
	pid_t pid;
	int rc;

	if (pipe(ready) < 0)
		return -errno;
	if (pipe(result) < 0) {
		rc = -errno;
		close(ready[0]);
		close(ready[1]);
		return rc;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(ready[0]);
		close(ready[1]);
		close(result[0]);
		close(result[1]);
		return rc;
	}
	if (pid == 0) {
		struct reader_result res = {0};

		close(ready[0]);
		close(result[0]);
		rc = pin_to(c->cpu_reader);
		if (rc < 0) {
			write_all(ready[1], &rc, sizeof(rc));
			_exit(1);
		}
		fn(c, ctx, size, ready[1], &res); /* writes ready[1] itself */
		write_all(result[1], &res, sizeof(res));
		_exit(0);
	}
	close(ready[1]);
	close(result[1]);
	rc = read_all(ready[0], &child_rc, sizeof(child_rc));
	close(ready[0]);
	if (rc == 0 && child_rc < 0)
		rc = child_rc;
	if (rc < 0) {
		close(result[0]);
		waitpid(pid, NULL, 0);
		return rc;
	}
	*result_fd = result[0];
	return pid;
}

static int finish_reader(pid_t pid, int result_fd, struct reader_result *rr)
{
	int rc = read_all(result_fd, rr, sizeof(*rr));

	close(result_fd);
	waitpid(pid, NULL, 0);
	return rc;
}

static void fill_round(struct round *r, uint32_t size, uint64_t t0, const struct writer_out *wo,
		       const struct reader_result *rr)
{
	r->records = rr->records;
	r->seconds = (double)(rr->t_last - t0) / 1e9;
	r->writer_seconds = (double)(wo->t_end - t0) / 1e9;
	r->gbps = r->seconds > 0 ? (double)rr->records * size / r->seconds / 1e9 : 0;
	r->full_waits = wo->full_waits;
	r->writer_wait_s = (double)wo->wait_ns / 1e9;
	r->reader_wait_s = (double)rr->in_read_ns / 1e9;
	r->publishes = wo->publishes;
	r->batches = rr->batches;
	r->data_ok = rr->rc == 0 && rr->errors == 0 && rr->dropped == 0 &&
		     rr->records == wo->records && rr->checksum == wo->checksum;
}

static void report_bad(const char *what, uint32_t size, const struct writer_out *wo,
		       const struct reader_result *rr)
{
	fprintf(stderr,
		"bench_ring: DATA CHECK FAILED (%s, %u B): reader rc %s, %u bad records "
		"(first seq %" PRIu64 "), dropped %" PRIu64 ", read %" PRIu64 " of %" PRIu64
		", checksum %016" PRIx64 " want %016" PRIx64 "\n",
		what, size, rr->rc ? xr_err_name(rr->rc) : "0", rr->errors, rr->first_bad,
		rr->dropped, rr->records, wo->records, rr->checksum, wo->checksum);
}

/* ---- xring ---- */

static void xr_reader_main(const struct cfg *c, void *ctx, uint32_t size, int ready_fd,
			   struct reader_result *res)
{
	const char *name = ctx;
	xr_reader_opts o = {.policy = XR_POLICY_LOSSLESS, .label = "bench_ring"};
	xr_reader *r = NULL;
	uint64_t expect = 0, sum = 0, t;
	int32_t rc = xr_reader_attach(name, &o, &r);
	xr_batch b;

	write_all(ready_fd, &rc, sizeof(rc));
	close(ready_fd);
	if (rc < 0) {
		res->rc = rc;
		return;
	}
	t = now_ns();
	for (;;) {
		int n = xr_reader_read(r, c->batch_min, c->batch, -1, &b);
		uint64_t t_in = now_ns();

		res->in_read_ns += t_in - t;
		if (n == XR_ECLOSED)
			break;
		if (n < 0) {
			res->rc = n;
			break;
		}
		if (n == 0) {
			t = t_in;
			continue;
		}
		res->dropped += b.dropped;
		if (b.dropped && !res->errors++)
			res->first_bad = b.first_seq;
		const xr_frame *f = b.first;
		for (uint32_t i = 0; i < b.count; i++, f = xr_frame_next(f))
			sum += check_record(f, size, &expect, res);
		xr_batch_release(r, &b);
		res->records += (uint64_t)n;
		res->batches++;
		t = now_ns();
		res->t_last = t;
	}
	res->checksum = sum;
	xr_reader_detach(r);
}

static int xr_write_loop(const struct cfg *c, xr_writer *w, uint32_t size, uint64_t stop,
			 struct writer_out *out)
{
	const size_t nw = size / 8;
	uint64_t seq = xr_writer_next_seq(w), sum = 0, n = 0;
	uint32_t pend = 0, pend_bytes = 0;

	for (;;) {
		void *p;
		int rc;

		/* A full ring makes reserve publish what is committed. */
		if (c->nt && pend)
			fence_nt(true);
		rc = xr_writer_reserve(w, size, &p);

		if (rc == -EAGAIN) {
			uint64_t tw = now_ns();
			out->full_waits++;
			do
				rc = xr_writer_wait(w, size, -1);
			while (rc == -EINTR);
			out->wait_ns += now_ns() - tw;
			if (rc < 0)
				return rc;
			continue;
		}
		if (rc < 0)
			return rc;
		uint64_t st = stamp(seq, size);
		if (c->nt)
			fill_words_nt(p, st, nw);
		else
			fill_words(p, st, nw);
		xr_writer_commit(w);
		sum += record_sum(st, nw);
		seq++;
		n++;
		pend_bytes += size;
		if (++pend >= c->publish_records || pend_bytes >= c->publish_bytes) {
			fence_nt(c->nt);
			xr_writer_publish(w);
			out->publishes++;
			pend = pend_bytes = 0;
			if (now_ns() >= stop)
				break;
		}
	}
	fence_nt(c->nt);
	xr_writer_publish(w);
	out->publishes++;
	out->t_end = now_ns();
	out->records = n;
	out->checksum = sum;
	return 0;
}

static int xr_round(const struct cfg *c, uint32_t size, double seconds, struct round *r,
		    struct backing_info *bi)
{
	char name[XR_NAME_MAX + 1];
	xr_stream_spec ss = {
		.policy = XR_POLICY_LOSSLESS,
		.n_rings = 1,
		.ring_bytes = c->ring_bytes,
		.frame_align = c->frame_align,
		.kind = XR_RECORD_OPAQUE,
	};
	xr_arena_spec as = {
		.name = name,
		.streams = &ss,
		.n_streams = 1,
		.max_readers = 4,
		.hugepages = c->hugepages,
		.numa_node = XR_NUMA_DEFAULT,
	};
	struct writer_out wo = {0};
	struct reader_result rr = {0};
	xr_arena_facts f;
	xr_arena *a;
	xr_server *srv;
	xr_writer *w;
	int rc, result_fd = -1;
	pid_t pid = -1;

	snprintf(name, sizeof(name), "bench-ring-%d-%u", (int)getpid(), size);
	sigset_t was;
	bench_hold_signals(&was); /* until the arena is known (bench_util.h) */
	rc = xr_arena_create(&as, &a);
	if (rc < 0) {
		fprintf(stderr, "bench_ring: xr_arena_create: %s (%s)\n", xr_strerror(rc),
			xr_arena_last_note());
		bench_release_signals(&was);
		return rc;
	}
	/* Readers attach through the control socket: setup only, nothing of
	 * it on the data path measured below. */
	rc = xr_server_start(a, NULL, &srv);
	if (rc < 0) {
		fprintf(stderr, "bench_ring: xr_server_start: %s (%s)\n", xr_strerror(rc),
			xr_server_last_note());
		bench_keep_all();
		xr_arena_destroy(a);
		bench_release_signals(&was);
		return rc;
	}
	xr_arena_facts_get(a, &f);
	/* A signal from here on removes them (bench_util.h). */
	bench_remove_on_signal(f.path);
	bench_remove_on_signal(xr_server_path(srv));
	bench_release_signals(&was);
	/* Every round on the backing of the first: a round that fell back to
	 * 4 kB pages (huge pages gone) measures the page faults, not the ring. */
	if (bi->backing[0] && (strcmp(bi->backing, xr_backing_name(f.backing)) ||
			       bi->page_size != f.page_size)) {
		fprintf(stderr,
			"bench_ring: this round's arena is on %s (%" PRIu64 " kB pages), the first "
			"was on %s (%" PRIu64 " kB pages): free huge pages or use --hugepages off\n",
			xr_backing_name(f.backing), (uint64_t)f.page_size >> 10, bi->backing,
			bi->page_size >> 10);
		xr_server_stop(srv);
		bench_keep_all();
		xr_arena_destroy(a);
		return -ENOMEM;
	}
	snprintf(bi->backing, sizeof(bi->backing), "%s", xr_backing_name(f.backing));
	bi->page_size = f.page_size;
	bi->total_size = f.total_size;
	bi->numa_node = f.numa_node;
	snprintf(bi->path, sizeof(bi->path), "%s", f.path ? f.path : "");
	snprintf(bi->note, sizeof(bi->note), "%s", f.note ? f.note : "");
	rc = xr_arena_writer(a, 0, 0, &w);
	if (rc == 0)
		pid = start_reader(c, xr_reader_main, name, size, &result_fd);
	if (rc < 0 || pid < 0) {
		if (rc == 0)
			fprintf(stderr, "bench_ring: reader: %s\n", xr_strerror(pid));
		xr_server_stop(srv);
		bench_keep_all();
		xr_arena_destroy(a);
		return rc < 0 ? rc : pid;
	}
	/* The reader is attached: its lease stands at head. Go. */
	uint64_t t0 = now_ns();
	rc = xr_write_loop(c, w, size, t0 + (uint64_t)(seconds * 1e9), &wo);
	/* Closing is the end-of-stream mark: the reader drains, then XR_ECLOSED. */
	xr_arena_close(a);
	int rrc = finish_reader(pid, result_fd, &rr);
	xr_server_stop(srv);
	/* Its huge pages back to the pool for the next round (without this,
	 * the eighth 256 MiB round of a run found none and fell back). */
	bench_keep_all();
	xr_arena_destroy(a);
	if (rc < 0 || rrc < 0) {
		fprintf(stderr, "bench_ring: %s: %s\n", rc < 0 ? "writer" : "reader result",
			xr_strerror(rc < 0 ? rc : rrc));
		return rc < 0 ? rc : rrc;
	}
	fill_round(r, size, t0, &wo, &rr);
	if (!r->data_ok)
		report_bad("xring", size, &wo, &rr);
	return 0;
}

/* ---- the bare ring: the same records, no library ---- */

/*
 * One mapping shared across fork: the control lines, then the ring. Frames
 * as in xring ({size, len, seq} + payload + padding); a frame that would
 * cross the end of the ring is preceded by a pad frame (len 0) filling the
 * rest, since this ring is mapped once, not twice.
 */
struct bare_ctl {
	_Alignas(64) _Atomic uint64_t head; /* bytes published, by the writer */
	_Atomic uint32_t closed;
	_Alignas(64) _Atomic uint64_t tail; /* bytes consumed, by the reader */
	_Alignas(64) uint8_t pad_[64];
};

struct bare {
	struct bare_ctl *ctl;
	uint8_t *data;
	uint64_t cap;
	size_t map_len;
};

static void bare_reader_main(const struct cfg *c, void *ctx, uint32_t size, int ready_fd,
			     struct reader_result *res)
{
	struct bare *br = ctx;
	const uint64_t mask = br->cap - 1;
	uint64_t pos = 0, expect = 0, sum = 0, t;
	const uint64_t min_bytes = c->batch_min * frame_size(c, size);
	int32_t ok = 0;

	write_all(ready_fd, &ok, sizeof(ok));
	close(ready_fd);
	t = now_ns();
	for (;;) {
		uint64_t head = atomic_load_explicit(&br->ctl->head, memory_order_acquire);
		uint32_t n = 0;

		if (head - pos < min_bytes) {
			if (atomic_load_explicit(&br->ctl->closed, memory_order_acquire)) {
				head = atomic_load_explicit(&br->ctl->head, memory_order_acquire);
				if (head == pos)
					break;
			} else {
				cpu_relax();
				continue;
			}
		}
		uint64_t t_in = now_ns();
		res->in_read_ns += t_in - t;
		while (pos != head && n < c->batch) {
			const xr_frame *f = (const xr_frame *)(br->data + (pos & mask));
			uint32_t fs = f->size;

			if (fs < XR_FRAME_HDR || fs > head - pos) {
				res->rc = -EPROTO;
				res->checksum = sum;
				return;
			}
			if (f->len) { /* len 0: the pad before the wrap */
				sum += check_record(f, size, &expect, res);
				n++;
			}
			pos += fs;
		}
		atomic_store_explicit(&br->ctl->tail, pos, memory_order_release);
		res->records += n;
		res->batches++;
		t = now_ns();
		res->t_last = t;
	}
	res->checksum = sum;
}

static void bare_write_loop(const struct cfg *c, struct bare *br, uint32_t size, uint64_t stop,
			    struct writer_out *out)
{
	const size_t nw = size / 8;
	const uint64_t fs = frame_size(c, size), cap = br->cap, mask = cap - 1;
	uint64_t head = 0, tail = 0, seq = 0, sum = 0;
	uint32_t pend = 0, pend_bytes = 0;

	for (;;) {
		uint64_t off = head & mask, to_end = cap - off;
		uint64_t need = fs <= to_end ? fs : to_end + fs;

		if (head + need - tail > cap) {
			tail = atomic_load_explicit(&br->ctl->tail, memory_order_acquire);
			if (head + need - tail > cap) {
				uint64_t tw = now_ns();
				out->full_waits++;
				fence_nt(c->nt);
				atomic_store_explicit(&br->ctl->head, head, memory_order_release);
				do {
					cpu_relax();
					tail = atomic_load_explicit(&br->ctl->tail,
								    memory_order_acquire);
				} while (head + need - tail > cap);
				out->wait_ns += now_ns() - tw;
			}
		}
		if (fs > to_end) {
			struct { uint32_t size, len; uint64_t seq; } *pad = (void *)(br->data + off);
			pad->size = (uint32_t)to_end;
			pad->len = 0;
			pad->seq = seq;
			head += to_end;
			off = 0;
		}
		struct { uint32_t size, len; uint64_t seq; } *f = (void *)(br->data + off);
		f->size = (uint32_t)fs;
		f->len = size;
		f->seq = seq;
		uint64_t st = stamp(seq, size);
		if (c->nt)
			fill_words_nt((uint64_t *)(f + 1), st, nw);
		else
			fill_words((uint64_t *)(f + 1), st, nw);
		sum += record_sum(st, nw);
		head += fs;
		seq++;
		pend_bytes += size;
		if (++pend >= c->publish_records || pend_bytes >= c->publish_bytes) {
			fence_nt(c->nt);
			atomic_store_explicit(&br->ctl->head, head, memory_order_release);
			out->publishes++;
			pend = pend_bytes = 0;
			if (now_ns() >= stop)
				break;
		}
	}
	fence_nt(c->nt);
	atomic_store_explicit(&br->ctl->head, head, memory_order_release);
	out->publishes++;
	out->t_end = now_ns();
	atomic_store_explicit(&br->ctl->closed, 1, memory_order_release);
	out->records = seq;
	out->checksum = sum;
}

static int bare_round(const struct cfg *c, uint32_t size, double seconds, bool huge,
		      struct round *r)
{
	struct bare br = {.cap = c->ring_bytes};
	struct writer_out wo = {0};
	struct reader_result rr = {0};
	int result_fd = -1;
	void *m = MAP_FAILED;
	pid_t pid;

	/* The ring's memory like the arena's: huge pages when the arena got
	 * them, shared, prefaulted. */
	br.map_len = (c->ring_bytes + sizeof(struct bare_ctl) + (2u << 20) - 1) & ~((2ull << 20) - 1);
	if (huge)
		m = mmap(NULL, br.map_len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
	if (m == MAP_FAILED)
		m = mmap(NULL, br.map_len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	memset(m, 0, br.map_len);
	br.ctl = m;
	/* Ring data page-aligned, like the arena's ring region. */
	br.data = (uint8_t *)m + (br.map_len - c->ring_bytes);
	pid = start_reader(c, bare_reader_main, &br, size, &result_fd);
	if (pid < 0) {
		munmap(m, br.map_len);
		return pid;
	}
	uint64_t t0 = now_ns();
	bare_write_loop(c, &br, size, t0 + (uint64_t)(seconds * 1e9), &wo);
	int rrc = finish_reader(pid, result_fd, &rr);
	munmap(m, br.map_len);
	if (rrc < 0) {
		fprintf(stderr, "bench_ring: bare reader: %s\n", xr_strerror(rrc));
		return rrc;
	}
	fill_round(r, size, t0, &wo, &rr);
	if (!r->data_ok)
		report_bad("bare ring", size, &wo, &rr);
	return 0;
}

/* ---- one size ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median_gbps(const struct round *r, uint32_t n, double *min, double *max)
{
	double v[MAX_ROUNDS];

	for (uint32_t i = 0; i < n; i++)
		v[i] = r[i].gbps;
	qsort(v, n, sizeof(v[0]), cmp_double);
	if (min)
		*min = v[0];
	if (max)
		*max = v[n - 1];
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int run_size(const struct cfg *c, uint32_t size, double mc_ring, double mc_dram,
		    struct result *res, struct backing_info *bi)
{
	double secs = c->seconds / c->rounds;
	int rc;

	memset(res, 0, sizeof(*res));
	res->size = size;
	res->rounds = c->rounds;
	res->data_ok = true;
	for (uint32_t i = 0; i < c->rounds; i++) {
		/* Alternate which goes first, so neither always follows the other. */
		for (int k = 0; k < 2; k++) {
			bool do_xr = (i + (uint32_t)k) % 2 == 0;

			if (do_xr) {
				rc = xr_round(c, size, secs, &res->xr[i], bi);
				if (rc < 0)
					return rc;
				res->data_ok &= res->xr[i].data_ok;
			} else if (c->bare) {
				bool huge = !strcmp(bi->backing, "hugetlbfs") ||
					    (!bi->backing[0] && c->hugepages != XR_HUGEPAGES_OFF);
				rc = bare_round(c, size, secs, huge, &res->bare[i]);
				if (rc < 0)
					return rc;
				res->data_ok &= res->bare[i].data_ok;
			}
		}
	}
	res->gbps = median_gbps(res->xr, c->rounds, &res->gbps_min, &res->gbps_max);
	res->rec_per_s = res->gbps * 1e9 / size;
	if (c->bare) {
		res->bare_gbps = median_gbps(res->bare, c->rounds, NULL, NULL);
		res->bare_rec_per_s = res->bare_gbps * 1e9 / size;
		res->vs_bare = res->bare_gbps > 0 ? res->gbps / res->bare_gbps : 0;
	}
	res->ratio = mc_ring > 0 ? res->gbps / mc_ring : 0;
	res->ratio_dram = mc_dram > 0 ? res->gbps / mc_dram : 0;
	if (size == 64) {
		res->target = ">= 20 M records/s";
		res->met = res->rec_per_s >= 20e6;
	} else if (size == 16384 || size == 65536) {
		res->target = ">= 0.6 x memcpy";
		res->met = res->ratio >= 0.6;
	} else {
		res->target = "";
		res->met = -1;
	}
	return 0;
}

/* ---- options and output ---- */

static const char usage[] =
	"usage: bench_ring [options]\n"
	"\n"
	"Ring throughput, writer and reader in two processes, against memcpy and\n"
	"against a bare hand-written ring doing the same work.\n"
	"\n"
	"  --seconds S            xring writing time per record size, split over the\n"
	"                         rounds; the bare ring gets as much again (default 2)\n"
	"  --rounds N             rounds per size, xring and bare ring alternating;\n"
	"                         the median round is reported (default 4)\n"
	"  --sizes LIST           payload sizes, comma-separated, k/m suffixes allowed,\n"
	"                         multiples of 8 (default 64,1k,16k,64k)\n"
	"  --hugepages MODE       prefer|require|off (default prefer)\n"
	"  --ring-mib N           ring size in MiB, a power of two (default 8)\n"
	"  --publish-records N    publish at least every N records (default 64)\n"
	"  --publish-bytes B      ... or every B payload bytes (default 65536)\n"
	"  --batch N              reader batch maximum (default 1024)\n"
	"  --batch-min N          reader batch minimum (default 1)\n"
	"  --align N              frame alignment, power of two >= 16 (default 16)\n"
	"  --memcpy-seconds S     time per memcpy measurement (default 0.5)\n"
	"  --dram-mib N           memcpy buffer for the DRAM bound (default 256)\n"
	"  --fill plain|stream    how the writer stores payload words: plain 8-byte\n"
	"                         stores (default), or streaming (non-temporal) 16-byte\n"
	"                         stores that bypass the caches (x86 only)\n"
	"  --no-bare              skip the bare-ring baseline\n"
	"  --no-pin               do not pin writer and reader to CPUs\n"
	"  --json                 one JSON object on stdout\n"
	"\n"
	"Exit status: 0 measured (targets met or not), 1 a data check failed,\n"
	"2 bad usage or setup failure.\n";

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end && *end != ',')
		return -1;
	*out = v;
	return (int)(end - s);
}

static int parse_sizes(const char *s, struct cfg *c)
{
	c->n_sizes = 0;
	while (*s) {
		uint64_t v;
		int n = parse_size(s, &v);

		if (n < 0 || v < 8 || v % 8 || v > (1u << 30) || c->n_sizes == MAX_SIZES)
			return -1;
		c->sizes[c->n_sizes++] = (uint32_t)v;
		s += n;
		if (*s == ',')
			s++;
	}
	return c->n_sizes ? 0 : -1;
}

static void size_str(uint32_t size, char *buf, size_t len)
{
	if (size % (1u << 20) == 0)
		snprintf(buf, len, "%u MiB", size >> 20);
	else if (size % 1024 == 0)
		snprintf(buf, len, "%u KiB", size >> 10);
	else
		snprintf(buf, len, "%u B", size);
}

static void json_round(const struct round *r)
{
	printf("{\"records\":%" PRIu64 ",\"seconds\":%.6f,\"gbps\":%.3f,\"writer_seconds\":%.6f,"
	       "\"writer_full_waits\":%" PRIu64 ",\"writer_wait_seconds\":%.6f,"
	       "\"reader_wait_seconds\":%.6f,\"publishes\":%" PRIu64 ",\"batches\":%" PRIu64
	       ",\"data_ok\":%s}",
	       r->records, r->seconds, r->gbps, r->writer_seconds, r->full_waits,
	       r->writer_wait_s, r->reader_wait_s, r->publishes, r->batches,
	       r->data_ok ? "true" : "false");
}

static void print_json(const struct cfg *c, const char *model, long nproc, const char *kernel,
		       const struct backing_info *bi, double mc_ring, double mc_dram,
		       const struct result *res, uint32_t done, bool data_ok, bool complete)
{
	printf("{\"bench\":\"ring\",\"machine\":{\"nproc\":%ld,\"cpu\":", nproc);
	json_str(model);
	printf(",\"kernel\":");
	json_str(kernel);
	printf("},\"config\":{\"seconds\":%g,\"rounds\":%u,\"ring_bytes\":%" PRIu64
	       ",\"frame_align\":%u,\"publish_records\":%u,\"publish_bytes\":%u,"
	       "\"batch\":%u,\"batch_min\":%u,\"fill\":\"%s\",\"cpu_writer\":%d,"
	       "\"cpu_reader\":%d},",
	       c->seconds, c->rounds, c->ring_bytes, c->frame_align, c->publish_records,
	       c->publish_bytes, c->batch, c->batch_min, c->nt ? "stream" : "plain",
	       c->cpu_writer, c->cpu_reader);
	printf("\"backing\":{\"kind\":");
	json_str(bi->backing);
	printf(",\"page_size\":%" PRIu64 ",\"total_size\":%" PRIu64 ",\"numa_node\":%d,\"note\":",
	       bi->page_size, bi->total_size, bi->numa_node);
	json_str(bi->note);
	printf("},\"memcpy\":{\"ring_block_bytes\":%" PRIu64 ",\"ring_gbps\":%.3f,"
	       "\"dram_bytes\":%" PRIu64 ",\"dram_gbps\":%.3f},\"results\":[",
	       c->ring_bytes, mc_ring, c->dram_bytes, mc_dram);
	for (uint32_t i = 0; i < done; i++) {
		const struct result *r = &res[i];
		printf("%s{\"size\":%u,\"records_per_s\":%.0f,\"gbps\":%.3f,\"gbps_min\":%.3f,"
		       "\"gbps_max\":%.3f,\"memcpy_gbps\":%.3f,\"ratio\":%.3f,\"ratio_dram\":%.3f,",
		       i ? "," : "", r->size, r->rec_per_s, r->gbps, r->gbps_min, r->gbps_max,
		       mc_ring, r->ratio, r->ratio_dram);
		if (c->bare)
			printf("\"bare_records_per_s\":%.0f,\"bare_gbps\":%.3f,\"vs_bare\":%.3f,",
			       r->bare_rec_per_s, r->bare_gbps, r->vs_bare);
		printf("\"target\":");
		json_str(r->target);
		printf(",\"met\":%s,\"data_ok\":%s,\"xring_rounds\":[",
		       r->met < 0 ? "null" : r->met ? "true" : "false",
		       r->data_ok ? "true" : "false");
		for (uint32_t k = 0; k < r->rounds; k++) {
			printf(k ? "," : "");
			json_round(&r->xr[k]);
		}
		printf("],\"bare_rounds\":[");
		for (uint32_t k = 0; c->bare && k < r->rounds; k++) {
			printf(k ? "," : "");
			json_round(&r->bare[k]);
		}
		printf("]}");
	}
	printf("],\"data_ok\":%s,\"complete\":%s}\n", data_ok ? "true" : "false",
	       complete ? "true" : "false");
}

static void print_diag(const char *what, const struct round *rs, uint32_t n)
{
	uint64_t waits = 0, batches = 0, publishes = 0, records = 0;
	double wwait = 0, rwait = 0, secs = 0;

	for (uint32_t k = 0; k < n; k++) {
		waits += rs[k].full_waits;
		wwait += rs[k].writer_wait_s;
		rwait += rs[k].reader_wait_s;
		secs += rs[k].seconds;
		batches += rs[k].batches;
		publishes += rs[k].publishes;
		records += rs[k].records;
	}
	printf("        %-6s rounds GB/s:", what);
	for (uint32_t k = 0; k < n; k++)
		printf(" %.1f", rs[k].gbps);
	printf("; writer waited for room %.0f%% (%" PRIu64 " times), reader waited/in read "
	       "%.0f%%; %.0f records/publish, %.0f/batch\n",
	       secs > 0 ? 100 * wwait / secs : 0, waits, secs > 0 ? 100 * rwait / secs : 0,
	       publishes ? (double)records / publishes : 0,
	       batches ? (double)records / batches : 0);
}

static void print_line(const struct cfg *c, const struct result *r, double mc_ring)
{
	char sz[32], range[48], bare[16] = "-", vs[16] = "-";

	size_str(r->size, sz, sizeof(sz));
	snprintf(range, sizeof(range), "%.2f-%.2f", r->gbps_min, r->gbps_max);
	if (c->bare) {
		snprintf(bare, sizeof(bare), "%.2f", r->bare_gbps);
		snprintf(vs, sizeof(vs), "%.2f", r->vs_bare);
	}
	printf("%-7s %11.0f %7.2f %12s %9s %7s %8.2f %6.2f  %-17s %s%s\n", sz, r->rec_per_s,
	       r->gbps, range, bare, vs, mc_ring, r->ratio, r->target[0] ? r->target : "-",
	       r->met < 0 ? "-" : r->met ? "met" : "MISSED",
	       r->data_ok ? "" : "  DATA CHECK FAILED");
	print_diag("xring", r->xr, r->rounds);
	if (c->bare)
		print_diag("bare", r->bare, r->rounds);
}

int main(int argc, char **argv)
{
	struct cfg c = {
		.seconds = 2.0,
		.memcpy_seconds = 0.5,
		.sizes = {64, 1024, 16384, 65536},
		.n_sizes = 4,
		.rounds = 4,
		.bare = true,
		.hugepages = XR_HUGEPAGES_PREFER,
		.ring_bytes = 8ull << 20,
		.dram_bytes = 256ull << 20,
		.publish_records = 64,
		.publish_bytes = 65536,
		.batch = 1024,
		.batch_min = 1,
		.frame_align = 16,
		.pin = true,
		.cpu_writer = -1,
		.cpu_reader = -1,
	};
	enum { O_SECONDS = 256, O_ROUNDS, O_SIZES, O_HUGE, O_RING, O_PUBR, O_PUBB, O_BATCH,
	       O_BATCH_MIN, O_ALIGN, O_MCS, O_DRAM, O_NOBARE, O_NOPIN, O_JSON, O_FILL, O_HELP };
	static const struct option lo[] = {
		{"seconds", required_argument, NULL, O_SECONDS},
		{"rounds", required_argument, NULL, O_ROUNDS},
		{"sizes", required_argument, NULL, O_SIZES},
		{"hugepages", required_argument, NULL, O_HUGE},
		{"ring-mib", required_argument, NULL, O_RING},
		{"publish-records", required_argument, NULL, O_PUBR},
		{"publish-bytes", required_argument, NULL, O_PUBB},
		{"batch", required_argument, NULL, O_BATCH},
		{"batch-min", required_argument, NULL, O_BATCH_MIN},
		{"align", required_argument, NULL, O_ALIGN},
		{"memcpy-seconds", required_argument, NULL, O_MCS},
		{"dram-mib", required_argument, NULL, O_DRAM},
		{"no-bare", no_argument, NULL, O_NOBARE},
		{"no-pin", no_argument, NULL, O_NOPIN},
		{"json", no_argument, NULL, O_JSON},
		{"fill", required_argument, NULL, O_FILL},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case O_SECONDS:
			c.seconds = atof(optarg);
			if (!(c.seconds > 0))
				goto bad;
			break;
		case O_ROUNDS:
			c.rounds = (uint32_t)strtoul(optarg, NULL, 10);
			if (!c.rounds || c.rounds > MAX_ROUNDS)
				goto bad;
			break;
		case O_SIZES:
			if (parse_sizes(optarg, &c) < 0)
				goto bad;
			break;
		case O_HUGE:
			if (!strcmp(optarg, "prefer"))
				c.hugepages = XR_HUGEPAGES_PREFER;
			else if (!strcmp(optarg, "require"))
				c.hugepages = XR_HUGEPAGES_REQUIRE;
			else if (!strcmp(optarg, "off"))
				c.hugepages = XR_HUGEPAGES_OFF;
			else
				goto bad;
			break;
		case O_RING:
			c.ring_bytes = strtoull(optarg, NULL, 10) << 20;
			if (!c.ring_bytes || (c.ring_bytes & (c.ring_bytes - 1)))
				goto bad;
			break;
		case O_PUBR:
			c.publish_records = (uint32_t)strtoul(optarg, NULL, 10);
			if (!c.publish_records)
				goto bad;
			break;
		case O_PUBB:
			c.publish_bytes = (uint32_t)strtoul(optarg, NULL, 10);
			if (!c.publish_bytes)
				goto bad;
			break;
		case O_BATCH:
			c.batch = (uint32_t)strtoul(optarg, NULL, 10);
			if (!c.batch || c.batch > XR_BATCH_MAX)
				goto bad;
			break;
		case O_BATCH_MIN:
			c.batch_min = (uint32_t)strtoul(optarg, NULL, 10);
			if (!c.batch_min)
				goto bad;
			break;
		case O_ALIGN:
			c.frame_align = (uint32_t)strtoul(optarg, NULL, 10);
			if (c.frame_align < 16 || c.frame_align > 4096 ||
			    (c.frame_align & (c.frame_align - 1)))
				goto bad;
			break;
		case O_MCS:
			c.memcpy_seconds = atof(optarg);
			if (!(c.memcpy_seconds > 0))
				goto bad;
			break;
		case O_DRAM:
			c.dram_bytes = strtoull(optarg, NULL, 10) << 20;
			if (!c.dram_bytes)
				goto bad;
			break;
		case O_NOBARE:
			c.bare = false;
			break;
		case O_NOPIN:
			c.pin = false;
			break;
		case O_JSON:
			c.json = true;
			break;
		case O_FILL:
			if (!strcmp(optarg, "plain"))
				c.nt = false;
			else if (!strcmp(optarg, "stream"))
				c.nt = true;
			else
				goto bad;
			break;
		case O_HELP:
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc || c.batch_min > c.batch)
		goto bad;
	for (uint32_t i = 0; i < c.n_sizes; i++)
		if (frame_size(&c, c.sizes[i]) > c.ring_bytes / 2) {
			fprintf(stderr, "bench_ring: %u B records do not fit a %" PRIu64
				" MiB ring (a frame may take at most half)\n",
				c.sizes[i], c.ring_bytes >> 20);
			return 2;
		}

	signal(SIGPIPE, SIG_IGN);

	/* Writer on the first CPU we may use, reader on the second. */
	if (c.pin && two_cpus(&c.cpu_writer, &c.cpu_reader) >= 2)
		pin_to(c.cpu_writer);

	char model[128];
	struct utsname un;
	cpu_model(model, sizeof(model));
	uname(&un);
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);

	/* The bound, measured on the writer's CPU with no reader running. */
	double mc_ring = memcpy_gbps(c.ring_bytes, c.memcpy_seconds);
	double mc_dram = memcpy_gbps(c.dram_bytes, c.memcpy_seconds);

	static struct result res[MAX_SIZES];
	struct backing_info bi = {0};
	bool data_ok = true;
	int failed = 0;
	uint32_t done = 0;

	if (!c.json) {
		printf("bench_ring: %ld CPUs (%s), kernel %s\n", nproc, model, un.release);
		if (c.cpu_writer >= 0)
			printf("  writer pinned to CPU %d, reader to CPU %d\n", c.cpu_writer,
			       c.cpu_reader);
		else
			printf("  not pinned\n");
		printf("  ring %" PRIu64 " MiB, frame align %u, lossless, publish every %u "
		       "records or %u bytes, reader batches of %u..%u, %s stores\n"
		       "  %u rounds of %.2f s per size (xring and bare ring alternating), "
		       "median round reported\n",
		       c.ring_bytes >> 20, c.frame_align, c.publish_records, c.publish_bytes,
		       c.batch_min, c.batch, c.nt ? "streaming" : "plain", c.rounds,
		       c.seconds / c.rounds);
		printf("  bound: memcpy %" PRIu64 " MiB blocks %.2f GB/s; %" PRIu64
		       " MiB blocks (DRAM) %.2f GB/s\n",
		       c.ring_bytes >> 20, mc_ring, c.dram_bytes >> 20, mc_dram);
		fflush(stdout);
	}

	for (uint32_t i = 0; i < c.n_sizes; i++) {
		int rc = run_size(&c, c.sizes[i], mc_ring, mc_dram, &res[i], &bi);
		if (rc < 0) {
			failed = 1;
			break;
		}
		done++;
		if (!res[i].data_ok)
			data_ok = false;
		if (c.json)
			continue;
		if (i == 0)
			printf("  backing %s, %" PRIu64 " kB pages, arena %" PRIu64
			       " MiB, NUMA node %d (%s)\n  note: %s\n\n"
			       "%-7s %11s %7s %12s %9s %7s %8s %6s  %-17s %s\n",
			       bi.backing, bi.page_size >> 10, bi.total_size >> 20, bi.numa_node,
			       bi.path, bi.note[0] ? bi.note : "-", "size", "records/s", "GB/s",
			       "range", "bare GB/s", "vs bare", "memcpy", "ratio", "target",
			       "result");
		print_line(&c, &res[i], mc_ring);
		fflush(stdout);
	}
	if (failed && !c.json)
		printf("bench_ring: stopped early (see stderr)\n");
	if (c.json)
		print_json(&c, model, nproc, un.release, &bi, mc_ring, mc_dram, res, done, data_ok,
			   !failed);
	if (!data_ok)
		return 1;
	return failed ? 2 : 0;
bad:
	fputs(usage, stderr);
	return 2;
}
