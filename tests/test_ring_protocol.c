/* SPDX-License-Identifier: MIT */
/*
 * The ring protocol, one step at a time, writer and readers in one thread so
 * that every interleaving here is the one written down. Covers DESIGN.md
 * invariants 1 (whole records), 3 (leases), 4 (lossless waits), 5 (lossy
 * drops, counted), 6 (exact accounting), 7 (contiguous across the wrap) and
 * 8 (untrusted cursors), and the reader library's errors.
 * Runs without huge pages (small rings on /dev/shm); runs under ASan/UBSan.
 */
#include <signal.h>
#include <sys/wait.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#include "ring_helpers.h"
#include "client/reader_priv.h"
#include "shm/arena_priv.h"
#include "shm/peers.h"
#include "shm/ring_reader.h"
#include "util/atomics.h"
#include "util/clock.h"

#define RING (64 << 10)

static xr_arena *arena(const char *tag, xr_policy policy, char *name)
{
	xr_test_name(name, 64, tag);
	return xr_test_arena(name, policy, RING, 64, XR_HUGEPAGES_OFF);
}

/* A ring of one record length (an Experience stream); *len is that length. */
static xr_arena *fixed_arena(const char *tag, xr_policy policy, char *name, uint32_t *len)
{
	xr_test_name(name, 64, tag);
	return xr_test_arena_fixed(name, policy, RING, 64, len);
}

static xr_reader *attach(const char *name, xr_policy policy)
{
	xr_reader_opts o = {.policy = policy, .label = "test"};
	xr_reader *r;

	CHECK_RC(xr_reader_attach(name, &o, &r), 0);
	return r;
}

/* Reads every available record, checking stamps and order; returns count. */
static uint64_t drain(xr_reader *r, uint64_t *next_seq, uint64_t *dropped)
{
	uint64_t n = 0;
	xr_batch b;
	int rc;

	while ((rc = xr_reader_read(r, 1, 100, 0, &b)) > 0) {
		uint64_t gaps = xr_test_check_batch(&b, next_seq, dropped == NULL);
		if (dropped)
			*dropped += gaps;
		n += b.count;
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	CHECK_RC(rc, 0);
	return n;
}

static void check_accounting(xr_reader *r, const char *when)
{
	xr_reader_stats s;

	CHECK_RC(xr_reader_stats_get(r, &s), 0);
	if (s.written != s.read + s.dropped + s.pending)
		FAILF("%s: written %llu != read %llu + dropped %llu + pending %llu", when,
		      (unsigned long long)s.written, (unsigned long long)s.read,
		      (unsigned long long)s.dropped, (unsigned long long)s.pending);
}

static void test_publish_makes_whole_records_visible(void)
{
	char name[64];
	xr_arena *a = arena("pub", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	xr_batch b;
	uint64_t next = 0;

	for (int i = 0; i < 10; i++)
		CHECK_RC(xr_test_put(w, 100), 0);
	/* Committed but not published: invisible. */
	CHECK_RC(xr_reader_read(r, 1, 100, 0, &b), 0);
	xr_writer_publish(w);
	CHECK_EQ(drain(r, &next, NULL), 10);
	CHECK_EQ(next, 10);
	check_accounting(r, "after publish");
	xr_reader_detach(r);
	xr_test_destroy(a);
}

/* stride and len say whether a batch is one fixed-size record after
 * another (the bindings then view it as strided arrays without a walk). */
static void test_batch_says_uniform_sizes(void)
{
	char name[64];
	xr_arena *a = arena("uniform", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	static const struct {
		uint32_t lens[3];
		bool same_stride, same_len;
	} cases[] = {
		{{100, 100, 100}, true, true},
		{{100, 90, 100}, true, false},   /* same frame, different lengths */
		{{100, 100, 90}, true, false},   /* ...at the end */
		{{100, 300, 100}, false, false}, /* different frames */
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		xr_batch b;
		for (int i = 0; i < 3; i++)
			CHECK_RC(xr_test_put(w, cases[c].lens[i]), 0);
		xr_writer_publish(w);
		CHECK_RC(xr_reader_read(r, 3, 3, 0, &b), 3);
		const xr_frame *f = b.first;
		uint32_t size0 = f->size;
		CHECK_EQ(b.stride, cases[c].same_stride ? size0 : 0);
		CHECK_EQ(b.len, cases[c].same_len ? cases[c].lens[0] : 0);
		for (int i = 0; i < 3; i++, f = xr_frame_next(f))
			CHECK_EQ(f->len, cases[c].lens[i]);
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	xr_reader_detach(r);
	xr_test_destroy(a);
}

/* A ring of one record length (an Experience stream): the writer refuses
 * other lengths; readers take runs of frames reading only the first and
 * last, and refuse a run whose ends break the rule. */
static void test_fixed_length_ring(void)
{
	char name[64];
	uint32_t len;
	xr_arena *a = fixed_arena("fixed", XR_POLICY_LOSSLESS, name, &len);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	void *p;
	xr_batch b;
	uint64_t next = 0;

	CHECK_RC(xr_writer_reserve(w, len - 1, &p), -EINVAL);
	CHECK_RC(xr_writer_reserve(w, len + 64, &p), -EINVAL);
	for (int i = 0; i < 10; i++)
		CHECK_RC(xr_test_put(w, len), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r, 1, 4, 0, &b), 4);
	CHECK_EQ(b.len, len);
	CHECK_EQ(b.stride, b.first->size);
	CHECK_EQ(b.bytes, 4ull * b.stride);
	uint32_t stride = b.stride;
	CHECK_EQ(xr_test_check_batch(&b, &next, true), 0);
	CHECK_RC(xr_batch_release(r, &b), 0);
	CHECK_RC(xr_reader_read(r, 1, 100, 0, &b), 6);
	CHECK_EQ(xr_test_check_batch(&b, &next, true), 0);
	CHECK_EQ(next, 10);
	CHECK_RC(xr_batch_release(r, &b), 0);
	check_accounting(r, "fixed");

	/* A writer that broke the rule: the last frame of the run says a
	 * shorter length (which a walk would take as legal padding). */
	for (int i = 0; i < 5; i++)
		CHECK_RC(xr_test_put(w, len), 0);
	xr_writer_publish(w);
	xr_frame *last = (xr_frame *)((uint8_t *)a->ring_data[0] + 14ull * stride % RING);
	CHECK_EQ(last->seq, 14);
	last->len--;
	CHECK_RC(xr_reader_read(r, 1, 100, 0, &b), -EPROTO);
	last->len++;
	CHECK_RC(xr_reader_read(r, 1, 100, 0, &b), 5);
	CHECK_RC(xr_batch_release(r, &b), 0);
	xr_reader_detach(r);
	xr_test_destroy(a);
}

static void test_wrap_is_contiguous(void)
{
	char name[64];
	xr_arena *a = arena("wrap", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	uint64_t next = 0, total = 0;
	bool spanned = false;

	/* 5000-byte frames do not divide 64 KiB: records straddle the end. */
	for (int round = 0; round < 60; round++) {
		for (int i = 0; i < 5; i++)
			CHECK_RC(xr_test_put(w, 4990), 0);
		xr_writer_publish(w);
		xr_batch b;
		int n = xr_reader_read(r, 5, 5, 0, &b);
		CHECK_RC(n, 5);
		uint64_t off = (uint64_t)((const uint8_t *)b.first - (const uint8_t *)a->ring_data[0]);
		(void)off;
		const xr_frame *f = b.first;
		for (int i = 0; i < n; i++, f = xr_frame_next(f)) {
			const char *bad = xr_stamp_check(xr_frame_data(f), f->len, f->seq);
			if (bad)
				FAILF("seq %llu: %s", (unsigned long long)f->seq, bad);
			CHECK_EQ(f->seq, next);
			next++;
		}
		/* The reader's own mapping: did this batch cross its ring's end? */
		const struct xr_ring_rd *rr = NULL;
		(void)rr;
		uint64_t start = total % RING;
		if (start + b.bytes > RING)
			spanned = true;
		total += b.bytes;
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	CHECK(spanned);
	xr_reader_detach(r);
	xr_test_destroy(a);
}

static void test_lossless_writer_waits_for_reader(void)
{
	char name[64];
	xr_arena *a = arena("lossless", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	uint64_t put = 0, next = 0;
	xr_batch b;
	int rc;

	while ((rc = xr_test_put(w, 1000)) == 0)
		put++;
	CHECK_RC(rc, -EAGAIN);
	CHECK(put >= RING / 1024 - 1);
	CHECK_RC(xr_writer_wait(w, 1000, 0), -ETIMEDOUT);
	/* A held batch keeps the writer out too. */
	CHECK_RC(xr_reader_read(r, 5, 5, 0, &b), 5);
	CHECK_RC(xr_test_put(w, 1000), -EAGAIN);
	CHECK_RC(xr_batch_release(r, &b), 0);
	CHECK_RC(xr_test_put(w, 1000), 0);
	put++;
	xr_writer_publish(w);
	next = 5;
	CHECK_EQ(drain(r, &next, NULL) + 5, put);
	check_accounting(r, "lossless");
	xr_reader_detach(r);
	/* With no reader attached, a lossless writer never waits. */
	for (int i = 0; i < 1000; i++)
		CHECK_RC(xr_test_put(w, 1000), 0);
	xr_test_destroy(a);
}

static void test_lossy_reader_overrun_is_counted(void)
{
	char name[64];
	xr_arena *a = arena("overrun", XR_POLICY_LOSSY, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	uint64_t next = 0, dropped = 0, got;
	xr_reader_stats s;

	for (int i = 0; i < 3; i++)
		CHECK_RC(xr_test_put(w, 500), 0);
	xr_writer_publish(w);
	got = drain(r, &next, &dropped);
	CHECK_EQ(got, 3);
	/* Five laps of the ring while the reader holds nothing. */
	for (int i = 0; i < 5 * RING / 512; i++)
		CHECK_RC(xr_test_put(w, 500), 0);
	xr_writer_publish(w);
	check_accounting(r, "overrun, before reading");
	CHECK_RC(xr_reader_stats_get(r, &s), 0);
	CHECK(s.dropped > 0);
	got += drain(r, &next, &dropped);
	CHECK(dropped > 0);
	CHECK_RC(xr_reader_stats_get(r, &s), 0);
	CHECK_EQ(s.read, got);
	CHECK_EQ(s.dropped, dropped);
	CHECK_EQ(s.pending, 0);
	CHECK_EQ(s.written, xr_writer_next_seq(w));
	xr_reader_detach(r);
	xr_test_destroy(a);
}

static void test_lossy_lease_is_never_overwritten(void)
{
	char name[64];
	xr_arena *a = arena("stall", XR_POLICY_LOSSY, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	struct xr_ring_desc *rd = &a->hdr->rings[0];
	uint64_t next, dropped = 0, stalls = 0, got;
	xr_batch b;
	int rc;

	for (int i = 0; i < 20; i++)
		CHECK_RC(xr_test_put(w, 700), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r, 20, 20, 0, &b), 20);
	/* Write many laps: the writer must drop rather than touch the lease. */
	for (int i = 0; i < 4 * RING / 700; i++) {
		rc = xr_test_put(w, 700);
		if (rc == XR_EDROPPED)
			stalls++;
		else
			CHECK_RC(rc, 0);
	}
	xr_writer_publish(w);
	CHECK(stalls > 0);
	CHECK_EQ(xr_load_relaxed(&rd->lease_stalls), stalls);
	/* The held batch is exactly as it was written. */
	next = 0;
	xr_test_check_batch(&b, &next, true);
	check_accounting(r, "while holding");
	CHECK_RC(xr_batch_release(r, &b), 0);
	next = 20;
	got = 20 + drain(r, &next, &dropped);
	xr_reader_stats s;
	CHECK_RC(xr_reader_stats_get(r, &s), 0);
	CHECK_EQ(s.read, got);
	CHECK_EQ(s.written, xr_writer_next_seq(w));
	CHECK_EQ(s.read + s.dropped + s.pending, s.written);
	CHECK(s.dropped >= stalls);
	xr_reader_detach(r);
	xr_test_destroy(a);
}

static void test_lossy_reader_on_lossless_stream(void)
{
	char name[64];
	xr_arena *a = arena("mixed", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *lossy = attach(name, XR_POLICY_LOSSY);
	xr_reader_stats s;
	xr_batch b;

	/* Not holding: the lossy reader does not slow the writer. */
	for (int i = 0; i < 3 * RING / 1000; i++)
		CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_stats_get(lossy, &s), 0);
	CHECK(s.dropped > 0);
	CHECK_EQ(s.written, s.read + s.dropped + s.pending);
	/* Holding: a lossless stream never drops, so the writer waits. */
	CHECK(xr_reader_read(lossy, 1, 4, 0, &b) > 0);
	int rc = 0;
	for (int i = 0; i < 2 * RING / 1000 && rc == 0; i++)
		rc = xr_test_put(w, 1000);
	CHECK_RC(rc, -EAGAIN);
	CHECK_EQ(xr_load_relaxed(&a->hdr->rings[0].lease_stalls), 0);
	CHECK_RC(xr_batch_release(lossy, &b), 0);
	CHECK_RC(xr_test_put(w, 1000), 0);
	xr_reader_detach(lossy);

	/* And a lossless reader is refused on a lossy stream. */
	char name2[64];
	xr_arena *a2 = arena("policy", XR_POLICY_LOSSY, name2);
	xr_reader_opts o = {.policy = XR_POLICY_LOSSLESS};
	xr_reader *r;
	CHECK_RC(xr_reader_attach(name2, &o, &r), XR_EPOLICY);
	xr_test_destroy(a2);
	xr_test_destroy(a);
}

static void test_batches_released_out_of_order(void)
{
	char name[64];
	xr_arena *a = arena("order", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	xr_batch b1, b2, b3, dup;
	int rc;

	while (xr_test_put(w, 1000) == 0)
		;
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r, 2, 2, 0, &b1), 2);
	CHECK_RC(xr_reader_read(r, 2, 2, 0, &b2), 2);
	CHECK_RC(xr_reader_read(r, 2, 2, 0, &b3), 2);
	dup = b2;
	CHECK_RC(xr_batch_release(r, &b2), 0);
	CHECK_RC(xr_batch_release(r, &dup), -EINVAL);
	CHECK_RC(xr_batch_release(r, &b3), 0);
	/* b1 is the oldest and still held: no room yet. */
	CHECK_RC(xr_test_put(w, 1000), -EAGAIN);
	CHECK_RC(xr_batch_release(r, &b1), 0);
	rc = xr_test_put(w, 1000);
	CHECK_RC(rc, 0);
	xr_reader_detach(r);
	xr_test_destroy(a);
}

static void test_garbage_cursor_evicts_only_that_reader(void)
{
	char name[64];
	xr_arena *a = arena("garbage", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *good = attach(name, XR_POLICY_DEFAULT);
	const uint64_t bad_values[] = {XR_NO_LEASE - 1, 1ull << 62, 0x8000000000000000ull};
	uint64_t next = 0;

	for (size_t k = 0; k < sizeof(bad_values) / sizeof(bad_values[0]); k++) {
		xr_reader *bad = attach(name, XR_POLICY_LOSSLESS);
		/* The bad reader writes nonsense into its own cursor. */
		struct xr_cursor *c = &xr__reader_page(bad)->cursors[0];
		xr_store_relaxed(&c->lease, bad_values[k]);
		/* The writer goes on for three laps (draining the good reader)
		 * and never waits for the bad one. */
		for (int i = 0; i < 3 * RING / 1000; i++) {
			int rc = xr_test_put(w, 1000);
			if (rc == -EAGAIN) {
				xr_writer_publish(w);
				drain(good, &next, NULL);
				rc = xr_test_put(w, 1000);
			}
			CHECK_RC(rc, 0);
		}
		xr_writer_publish(w);
		xr_batch b;
		CHECK_RC(xr_reader_read(bad, 1, 1, 0, &b), XR_EEVICTED);
		CHECK_RC(xr_reader_stats_get(bad, &(xr_reader_stats){0}), XR_EEVICTED);
		xr_reader_detach(bad);
		drain(good, &next, NULL);
	}
	CHECK_EQ(xr_load_relaxed(&a->hdr->rings[0].evictions), 3);
	CHECK_EQ(next, xr_writer_next_seq(w));

	/* A value more than a lap old is what an overrun lossy reader publishes
	 * for an instant; it is ignored (the writer does not wait for it) and
	 * not punished. */
	{
		xr_reader *old = attach(name, XR_POLICY_LOSSLESS);
		struct xr_cursor *oc = &xr__reader_page(old)->cursors[0];
		xr_store_relaxed(&oc->lease, 0);
		for (int i = 0; i < 2 * RING / 1000; i++) {
			int rc = xr_test_put(w, 1000);
			if (rc == -EAGAIN) {
				xr_writer_publish(w);
				drain(good, &next, NULL);
				rc = xr_test_put(w, 1000);
			}
			CHECK_RC(rc, 0);
		}
		CHECK_EQ(xr_load_relaxed(&a->infos[xr__reader_slot(old)].state), XR_SLOT_ACTIVE);
		CHECK_EQ(xr_load_relaxed(&a->hdr->rings[0].evictions), 3);
		xr_reader_detach(old);
		xr_writer_publish(w);
		drain(good, &next, NULL);
	}

	/* A value inside the window cannot be told from a slow reader: it is
	 * honoured (the writer waits), and the reader recovers by releasing. */
	xr_reader *odd = attach(name, XR_POLICY_LOSSLESS);
	struct xr_cursor *c = &xr__reader_page(odd)->cursors[0];
	uint64_t head = xr_load_relaxed(&a->hdr->rings[0].head);
	xr_store_relaxed(&c->lease, head - RING / 2);
	int rc = 0;
	for (int i = 0; i < RING / 1000 && rc == 0; i++) {
		rc = xr_test_put(w, 1000);
		xr_writer_publish(w);
		drain(good, &next, NULL);
	}
	CHECK_RC(rc, -EAGAIN);
	xr_batch b;
	CHECK(xr_reader_read(odd, 1, 1, 0, &b) == 1);
	CHECK_RC(xr_batch_release(odd, &b), 0);
	xr_reader_detach(odd);
	CHECK_RC(xr_test_put(w, 1000), 0);
	xr_reader_detach(good);
	xr_test_destroy(a);
}

static void test_errors(void)
{
	char name[64], missing[64];
	xr_reader *r;
	xr_batch b;

	xr_test_name(missing, sizeof(missing), "missing");
	CHECK_RC(xr_reader_attach(missing, NULL, &r), -ENOENT);
	CHECK_RC(xr_reader_attach("bad/name", NULL, &r), -EINVAL);
	CHECK_RC(xr_reader_attach("", NULL, &r), -EINVAL);

	xr_arena *a = arena("errors", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader_opts o = {.stream = "nope"};
	CHECK_RC(xr_reader_attach(name, &o, &r), -ENOENT);
	r = attach(name, XR_POLICY_DEFAULT);
	CHECK_RC(xr_reader_read(r, 0, 1, 0, &b), -EINVAL);
	CHECK_RC(xr_reader_read(r, 2, 1, 0, &b), -EINVAL);
	CHECK_RC(xr_reader_read(r, 1, XR_BATCH_MAX + 1, 0, &b), -EINVAL);

	/* A second engine of the same name is refused while the first runs. */
	xr_stream_spec ss = {0};
	xr_arena_spec spec = {.name = name, .streams = &ss, .n_streams = 1,
			      .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE};
	xr_arena *dup;
	CHECK_RC(xr_arena_create(&spec, &dup), -EEXIST);
	spec.name = "bad name";
	CHECK_RC(xr_arena_create(&spec, &dup), -EINVAL);

	/* Layout mismatch and foreign files are refused, not misread. */
	a->hdr->layout_version++;
	xr_reader *r2;
	CHECK_RC(xr_reader_attach(name, NULL, &r2), XR_ELAYOUT);
	a->hdr->layout_version--;
	a->hdr->fingerprint ^= 1;
	CHECK_RC(xr_reader_attach(name, NULL, &r2), XR_ELAYOUT);
	a->hdr->fingerprint ^= 1;
	a->hdr->magic ^= 1;
	CHECK_RC(xr_reader_attach(name, NULL, &r2), XR_ENOTARENA);
	a->hdr->magic ^= 1;
	/* A frame alignment the reader would divide or mask by. */
	uint32_t fa = a->hdr->rings[0].frame_align;
	a->hdr->rings[0].frame_align = 0;
	CHECK_RC(xr_reader_attach(name, NULL, &r2), XR_ENOTARENA);
	a->hdr->rings[0].frame_align = 48;
	CHECK_RC(xr_reader_attach(name, NULL, &r2), XR_ENOTARENA);
	a->hdr->rings[0].frame_align = fa;
	/* A record length whose frames would not fit half the ring. */
	a->hdr->rings[0].record_len = RING / 2;
	CHECK_RC(xr_reader_attach(name, NULL, &r2), XR_ENOTARENA);
	a->hdr->rings[0].record_len = 0;
	/* ...which create refuses in the first place. */
	xr_stream_spec big = {.ring_bytes = 8192, .kind = XR_RECORD_EXPERIENCE,
			      .shape = {.obs_dtype = XR_DTYPE_U8, .obs_ndim = 1, .obs_dims = {6000}}};
	xr_arena_spec bspec = {.name = "big-records", .streams = &big, .n_streams = 1,
			       .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE};
	char bname[64];
	xr_test_name(bname, sizeof(bname), "big");
	bspec.name = bname;
	CHECK_RC(xr_arena_create(&bspec, &dup), -EMSGSIZE);
	CHECK(strstr(xr_arena_last_note(), "do not fit half a ring"));

	/* Closing: what was published is still read, then XR_ECLOSED. */
	for (int i = 0; i < 7; i++)
		CHECK_RC(xr_test_put(w, 64), 0);
	xr_test_destroy(a); /* publishes the 7 */
	uint64_t next = 0;
	int n = xr_reader_read(r, 1, 100, 0, &b);
	CHECK_RC(n, 7);
	CHECK_RC(xr_batch_release(r, &b), 0);
	CHECK_RC(xr_reader_read(r, 1, 100, 1000000, &b), XR_ECLOSED);
	(void)next;
	xr_reader_detach(r);
	CHECK_RC(xr_reader_attach(name, NULL, &r), -ENOENT);
}

static void test_reader_table_full(void)
{
	char name[64];
	xr_arena *a = arena("full", XR_POLICY_LOSSLESS, name);
	xr_reader *rs[16], *extra;

	for (int i = 0; i < 16; i++)
		rs[i] = attach(name, XR_POLICY_DEFAULT);
	CHECK_RC(xr_reader_attach(name, NULL, &extra), -EBUSY);
	xr_reader_detach(rs[3]);
	rs[3] = attach(name, XR_POLICY_DEFAULT);
	for (int i = 0; i < 16; i++)
		xr_reader_detach(rs[i]);
	xr_test_destroy(a);
}

static void test_dead_reader_is_released(void)
{
	char name[64];
	xr_arena *a = arena("release", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	int ready[2];
	pid_t pid;

	CHECK(pipe(ready) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		xr_reader *r;
		xr_batch b;
		if (xr_reader_attach(name, NULL, &r) < 0)
			_exit(2);
		if (write(ready[1], "a", 1) != 1)
			_exit(3);
		if (xr_reader_read(r, 1, 1, -1, &b) != 1)
			_exit(4);
		/* Dies holding a lease, without detaching. */
		_exit(0);
	}
	char c;
	CHECK(read(ready[0], &c, 1) == 1);
	CHECK_RC(xr_test_put(w, 100), 0);
	xr_writer_publish(w);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Its connection ended with it: the engine frees the slot, and the
	 * lease it died holding no longer counts. Three laps of the ring go
	 * through, waiting (if at all) only until the server has seen the
	 * hangup. */
	uint64_t t0 = xr__now_ns(), waited = 0;
	for (uint64_t i = 0; i < 3 * RING / 1000; i++) {
		int rc = xr_test_put(w, 1000);
		if (rc == -EAGAIN) {
			uint64_t t1 = xr__now_ns();
			CHECK_RC(xr_writer_wait(w, 1000, 5000000000ll), 0);
			waited += xr__now_ns() - t1;
			rc = xr_test_put(w, 1000);
		}
		CHECK_RC(rc, 0);
	}
	/* Ignored from RELEASING on; FREE after the grace period, soon. */
	uint64_t dl = xr__now_ns() + 5000000000ull;
	while (xr__peers_taken(a) && xr__now_ns() < dl)
		sched_yield();
	CHECK_EQ(xr__peers_taken(a), 0);
	printf("  dead reader's slot freed; 3 laps written in %.1f ms, %.1f ms of it waiting\n",
	       (double)(xr__now_ns() - t0) / 1e6, (double)waited / 1e6);
	close(ready[0]);
	close(ready[1]);
	xr_test_destroy(a);
}

static void test_readers_map_records_read_only(void)
{
	char name[64];
	xr_arena *a = arena("readonly", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	pid_t pid;
	int status;

	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	CHECK_RC(xr_test_put(w, 100), 0);
	xr_writer_publish(w);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		xr_batch b;
		if (xr_reader_read(r, 1, 1, 0, &b) != 1)
			_exit(2);
		signal(SIGSEGV, SIG_DFL);
		/* Must fault: records are mapped read-only in readers. */
		((volatile uint8_t *)xr_frame_data(b.first))[0] = 0xff;
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV)
		FAILF("a reader's write to ring memory did not fault (status %#x)", status);
	xr_reader_detach(r);
	xr_test_destroy(a);
}

/* ---- waits that can be ended from outside (-EINTR) ---- */

struct waiter {
	xr_writer *w;
	xr_reader *r;
	atomic_int done;
	int rc;
	_Atomic pid_t tid; /* the waiting thread's, for interrupt() to look at */
};

static void *writer_waits(void *p)
{
	struct waiter *wt = p;

	wt->tid = (pid_t)syscall(SYS_gettid);
	wt->rc = xr_writer_wait(wt->w, 1000, -1);
	atomic_store(&wt->done, 1);
	return NULL;
}

static void *reader_waits(void *p)
{
	struct waiter *wt = p;
	xr_batch b;

	wt->tid = (pid_t)syscall(SYS_gettid);
	wt->rc = xr_reader_read(wt->r, 1, 1, -1, &b);
	atomic_store(&wt->done, 1);
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
}

/* Ends wt's wait with a signal: sent again until it lands in a sleep (one
 * that lands between sleeps runs its handler and is gone). Bounded. */
static void interrupt(struct waiter *wt, pthread_t th)
{
	for (int i = 0; i < 200 && !atomic_load(&wt->done); i++) {
		uint64_t dl = xr__now_ns() + 5000000000ull;
		while ((!wt->tid || xr_test_task_state(wt->tid) != 'S') && xr__now_ns() < dl)
			sched_yield();
		pthread_kill(th, SIGUSR1);
		dl = xr__now_ns() + 20000000ull;
		while (!atomic_load(&wt->done) && xr__now_ns() < dl)
			sched_yield();
	}
	CHECK(atomic_load(&wt->done));
}

static void test_waits_are_cancellable(void)
{
	char name[64];
	struct sigaction sa = {.sa_handler = on_usr1}; /* no SA_RESTART */
	xr_arena *a = arena("cancel", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	pthread_t th;
	int rc;

	sigaction(SIGUSR1, &sa, NULL);
	/* The writer, stopped by a reader that does not read. */
	while ((rc = xr_test_put(w, 1000)) == 0)
		;
	CHECK_RC(rc, -EAGAIN);
	for (int how = 0; how < 2; how++) {
		struct waiter wt = {.w = w};
		CHECK(pthread_create(&th, NULL, writer_waits, &wt) == 0);
		if (how == 0) {
			/* Once the stop began (it is counted as it starts). */
			uint64_t dl = xr__now_ns() + 5000000000ull;
			while (!xr_load_relaxed(&a->hdr->rings[0].full_waits) && xr__now_ns() < dl)
				sched_yield();
			xr_writer_cancel(w);
		} else {
			interrupt(&wt, th);
		}
		pthread_join(th, NULL);
		CHECK_RC(wt.rc, -EINTR);
	}
	/* A cancel with nobody waiting ends the next wait at once. */
	xr_writer_cancel(w);
	CHECK_RC(xr_writer_wait(w, 1000, -1), -EINTR);

	/* The reader, asleep for a record that does not come. */
	xr_batch b;
	while (xr_reader_read(r, 1, 1024, 0, &b) > 0)
		CHECK_RC(xr_batch_release(r, &b), 0);
	for (int how = 0; how < 2; how++) {
		struct waiter wt = {.r = r};
		CHECK(pthread_create(&th, NULL, reader_waits, &wt) == 0);
		if (how == 0) {
			uint64_t dl = xr__now_ns() + 5000000000ull;
			while ((!wt.tid || xr_test_task_state(wt.tid) != 'S') && xr__now_ns() < dl)
				sched_yield();
			xr_reader_cancel(r);
		} else {
			interrupt(&wt, th);
		}
		pthread_join(th, NULL);
		CHECK_RC(wt.rc, -EINTR);
	}
	xr_reader_cancel(r);
	CHECK_RC(xr_reader_read(r, 1, 1, -1, &b), -EINTR);
	/* ...and the reader reads on. */
	CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r, 1, 1024, 0, &b), 1);
	CHECK_RC(xr_batch_release(r, &b), 0);
	signal(SIGUSR1, SIG_DFL);
	xr_reader_detach(r);
	xr_test_destroy(a);
}

/* A stop for readers ends when the writer goes on, whether its wait saw
 * the room or the caller's retried reserve did: the ring is unblocked, its
 * time counted, and the next stop counted anew. */
static void test_stop_ends_with_the_retry(void)
{
	char name[64];
	xr_arena *a = arena("stopend", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	const struct xr_ring_desc *rd = &a->hdr->rings[0];
	xr_batch b;
	int rc;

	for (int stop = 1; stop <= 2; stop++) {
		while ((rc = xr_test_put(w, 1000)) == 0)
			;
		CHECK_RC(rc, -EAGAIN);
		CHECK_RC(xr_writer_wait(w, 1000, 1000000), -ETIMEDOUT);
		CHECK_EQ(xr_load_relaxed(&rd->blocked), 1);
		CHECK_EQ(xr_load_relaxed(&rd->full_waits), stop);
		while (xr_reader_read(r, 1, 1024, 0, &b) > 0)
			CHECK_RC(xr_batch_release(r, &b), 0);
		CHECK_RC(xr_test_put(w, 1000), 0); /* the retry, no wait between */
		CHECK_EQ(xr_load_relaxed(&rd->blocked), 0);
		CHECK(xr_load_relaxed(&rd->wait_ns) >= 1000000ull * (uint64_t)stop);
	}
	xr_reader_detach(r);
	xr_test_destroy(a);
}

/* A put that a lossy writer may drop: counted, and whether it was. */
static void lossy_put(xr_writer *w, uint64_t *puts, uint64_t *dropped)
{
	int rc = xr_test_put(w, 1000);

	CHECK(rc == 0 || rc == XR_EDROPPED);
	(*puts)++;
	*dropped += rc == XR_EDROPPED;
}

/* A lossy reader the writer lapped, on a ring of one record length,
 * starts again halfway between tail and head, not at tail: there, each
 * batch it held was the first the writer reclaimed, and a reader slower
 * than the writer stopped it at every hold (red team, fifth pass). */
static void test_lapped_reader_restarts_ahead(void)
{
	char name[64];
	uint32_t len;
	xr_arena *a = fixed_arena("lapped", XR_POLICY_LOSSY, name, &len);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	const struct xr_ring_desc *rd = &a->hdr->rings[0];
	xr_batch b;

	CHECK_RC(xr_test_put(w, len), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r, 1, 1, 0, &b), 1); /* seq 0 */
	CHECK_RC(xr_batch_release(r, &b), 0);
	for (int i = 0; i < 3 * RING / 64; i++) /* laps: the reader's place is gone */
		CHECK_RC(xr_test_put(w, len), 0);
	xr_writer_publish(w);
	uint64_t fs = xr__frame_size(len, 64);
	uint64_t tail = xr_load_acquire(&rd->tail), head = xr_load_acquire(&rd->head);
	uint64_t tail_seq = w->seq - (head - tail) / fs, mid = tail_seq + (head - tail) / fs / 2;
	CHECK(tail < head - fs);
	CHECK_RC(xr_reader_read(r, 1, 1, 0, &b), 1);
	if (b.first_seq != mid)
		FAILF("lapped: restarted at seq %llu; tail is %llu, halfway %llu",
		      (unsigned long long)b.first_seq, (unsigned long long)tail_seq,
		      (unsigned long long)mid);
	CHECK_RC(xr_batch_release(r, &b), 0);
	/* Lapped again: a count for stats takes a lease too, but skips
	 * nothing (it catches up to tail): the next read starts at tail. */
	for (int i = 0; i < 3 * RING / 64; i++)
		CHECK_RC(xr_test_put(w, len), 0);
	xr_writer_publish(w);
	uint64_t first_tail = tail_seq;
	tail = xr_load_acquire(&rd->tail);
	head = xr_load_acquire(&rd->head);
	tail_seq = w->seq - (head - tail) / fs;
	xr_reader_stats st;
	CHECK_RC(xr_reader_stats_get(r, &st), 0);
	CHECK_RC(xr_reader_read(r, 1, 1, 0, &b), 1);
	CHECK_EQ(b.first_seq, tail_seq);
	CHECK_RC(xr_batch_release(r, &b), 0);
	xr_reader_detach(r);
	xr_test_destroy(a);
	printf("  lapped, a lossy reader started again at seq %llu, halfway from tail (%llu) to "
	       "head; a count for stats skipped nothing\n", (unsigned long long)mid,
	       (unsigned long long)first_tail);
}

/* A lossy reader's held batch that stands in the writer's way for the
 * lease timeout gets its reader evicted, and the writer goes on; a lossless
 * reader that does not read is waited for, however long. */
static void test_held_lease_times_out(void)
{
	char name[64];
	xr_arena *a = arena("leaseto", XR_POLICY_LOSSY, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	const struct xr_ring_desc *rd = &a->hdr->rings[0];
	xr_batch b;

	CHECK_RC(xr_writer_set_lease_timeout(w, 50000000), 0); /* 50 ms */
	CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r, 1, 1, 0, &b), 1); /* held from now on */
	uint64_t t0 = xr__now_ns(), dropped = 0;
	int rc = 0;
	while (xr_load_relaxed(&rd->evictions) == 0) {
		rc = xr_test_put(w, 1000);
		CHECK(rc == 0 || rc == XR_EDROPPED);
		dropped += rc == XR_EDROPPED;
		if (xr__now_ns() - t0 > 5000000000ull)
			FAILF("a held lease was not timed out in 5 s (%llu drops)",
			      (unsigned long long)dropped);
	}
	double ms = (double)(xr__now_ns() - t0) / 1e6;
	CHECK(dropped > 0 && ms >= 50);
	CHECK_EQ(xr_load_relaxed(&a->infos[xr__reader_slot(r)].evict_reason), XR_EVICT_LEASE);
	for (int i = 0; i < 2 * RING / 1000; i++)
		CHECK_RC(xr_test_put(w, 1000), 0); /* nothing in the way now */
	CHECK_RC(xr_reader_read(r, 1, 1, 0, &b), XR_EEVICTED);
	xr_reader_detach(r);
	xr_test_destroy(a);

	a = arena("leaseto2", XR_POLICY_LOSSLESS, name);
	w = xr_test_writer(a);
	r = attach(name, XR_POLICY_DEFAULT);
	CHECK_RC(xr_writer_set_lease_timeout(w, 50000000), 0);
	while ((rc = xr_test_put(w, 1000)) == 0)
		;
	CHECK_RC(rc, -EAGAIN);
	CHECK_RC(xr_writer_wait(w, 1000, 200000000), -ETIMEDOUT);
	CHECK_EQ(xr_load_relaxed(&a->infos[xr__reader_slot(r)].state), XR_SLOT_ACTIVE);
	CHECK(xr_reader_read(r, 1, 1024, 0, &b) > 0);
	CHECK_RC(xr_batch_release(r, &b), 0);
	xr_reader_detach(r);
	xr_test_destroy(a);

	/* A lossless stream paused at its high watermark by a lossy reader's
	 * held batch: the pause is timed out too (formerly only a full ring
	 * was, and the pause lasted as long as the peer liked). */
	a = arena("leaseto3", XR_POLICY_LOSSLESS, name);
	w = xr_test_writer(a);
	r = attach(name, XR_POLICY_LOSSY);
	CHECK_RC(xr_writer_set_lease_timeout(w, 50000000), 0);
	CHECK_RC(xr_writer_set_watermarks(w, 0.5, 0.25), 0);
	CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r, 1, 1, 0, &b), 1); /* held from now on */
	while ((rc = xr_test_put(w, 1000)) == 0)
		;
	CHECK_RC(rc, -EAGAIN);
	CHECK(w->paused);
	t0 = xr__now_ns();
	CHECK_RC(xr_writer_wait(w, 1000, 5000000000), 0);
	double pause_ms = (double)(xr__now_ns() - t0) / 1e6;
	CHECK_EQ(xr_load_relaxed(&a->infos[xr__reader_slot(r)].evict_reason), XR_EVICT_LEASE);
	CHECK_RC(xr_test_put(w, 1000), 0);
	xr_reader_detach(r);
	xr_test_destroy(a);
	printf("  a held lossy lease evicted after %.0f ms (timeout 50 ms, %llu drops); a "
	       "lossless reader waited for; a pause at the high watermark timed out after "
	       "%.0f ms\n", ms, (unsigned long long)dropped, pause_ms);
}

/* Lease creep (red team). A lossy reader that holds a batch and, well within
 * the lease timeout each time, takes the next record and releases the batch
 * (its lease moves one frame forward) keeps the writer stopped nearly all
 * the time: the lossy stream drops almost every record. The lease moves, and
 * the writer gets a frame of room after each move, so a timer restarted on
 * either never ran out; the stream's debt of dropped records (check_stall)
 * does. One thread drives both sides; time is read, never
 * slept on. The next record is taken before the release: a lossy reader
 * holding nothing starts again at tail, which a stopped writer has moved
 * up to head.
 * With bursts, the writer writes 50 records a tick, as a shard does, and is
 * idle in between, when the lease moves: the one record let through a tick
 * is a look that finds room, and the idle time with the lease still held
 * was counted as free (red team, second pass: 99.7 % of a stream dropped,
 * never evicted). A stop now lasts until the look that finds room. */
static void creep(bool bursts)
{
	char name[64];
	xr_arena *a = arena(bursts ? "creepb" : "creep", XR_POLICY_LOSSY, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	const struct xr_ring_desc *rd = &a->hdr->rings[0];
	uint64_t t0, nudged, now, puts = 0, dropped = 0, nudges = 0;
	int burst = 50;
	xr_batch b, next;

	CHECK_RC(xr_writer_set_lease_timeout(w, 50000000), 0); /* 50 ms */
	CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r, 1, 1, 0, &b), 1); /* held from now on */
	/* Before the writer first meets the lease, where its count starts: a
	 * preemption between the two must not make the timeout look short. */
	t0 = xr__now_ns();
	while (xr_test_put(w, 1000) == 0) /* up to the lease */
		;
	xr_writer_publish(w);
	nudged = xr__now_ns();
	for (;;) {
		if (!bursts || burst > 0)
			lossy_put(w, &puts, &dropped);
		if (bursts && burst > 0 && --burst == 0)
			xr_writer_publish(w);
		if (xr_load_relaxed(&rd->evictions))
			break;
		now = xr__now_ns();
		if (now - t0 > 5000000000ull)
			FAILF("a creeping lease was not timed out in 5 s (%llu nudges, %llu of "
			      "%llu records dropped)", (unsigned long long)nudges,
			      (unsigned long long)dropped, (unsigned long long)puts);
		if (now - nudged >= 20000000) { /* 20 ms: under the timeout */
			CHECK_RC(xr_reader_read(r, 1, 1, 0, &next), 1); /* the next frame */
			CHECK_RC(xr_batch_release(r, &b), 0);
			b = next;
			nudged = now;
			nudges++;
			burst = 50;
		}
	}
	double ms = (double)(xr__now_ns() - t0) / 1e6;
	CHECK(ms >= 50);
	CHECK(nudges >= 1 && dropped > puts / 2);
	CHECK_EQ(xr_load_relaxed(&a->infos[xr__reader_slot(r)].evict_reason), XR_EVICT_LEASE);
	for (int i = 0; i < 2 * RING / 1000; i++)
		CHECK_RC(xr_test_put(w, 1000), 0); /* nothing in the way now */
	CHECK_RC(xr_reader_read(r, 1, 1, 0, &b), XR_EEVICTED);
	xr_reader_detach(r);
	xr_test_destroy(a);
	printf("  a lease crept forward a frame every 20 ms%s: evicted after %.0f ms (timeout "
	       "50 ms, %llu moves, %llu of %llu records dropped)\n",
	       bursts ? ", the writer idle between bursts" : "", ms, (unsigned long long)nudges,
	       (unsigned long long)dropped, (unsigned long long)puts);
}

static void test_creeping_lease_times_out(void)
{
	creep(false);
	creep(true);
}

/* Two colluding lossy readers take turns holding the oldest batch: every
 * 20 ms the one holding it takes the record just past the other's batch and
 * lets go of its own (and of what it read on the way). The blocker changes
 * slot at every turn, the writer gets a frame of room at every turn, and the
 * stream is stopped all the while: the debt of dropped records is the
 * uid's, whichever of its slots is in the way, and the slot in the way
 * when it has lasted the timeout is evicted. */
static void test_colluding_leases_time_out(void)
{
	char name[64];
	xr_arena *a = arena("collude", XR_POLICY_LOSSY, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r[2] = {attach(name, XR_POLICY_DEFAULT), attach(name, XR_POLICY_DEFAULT)};
	const struct xr_ring_desc *rd = &a->hdr->rings[0];
	uint64_t t0, turned, now, puts = 0, dropped = 0, turns[2] = {0, 0};
	xr_batch b[2], skip, next;
	bool caught[2] = {false, false}; /* read up to the other's batch */

	CHECK_RC(xr_writer_set_lease_timeout(w, 50000000), 0); /* 50 ms */
	CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r[0], 1, 1, 0, &b[0]), 1); /* seq 0 */
	CHECK_RC(xr_reader_read(r[1], 1, 1, 0, &skip), 1);
	CHECK_RC(xr_reader_read(r[1], 1, 1, 0, &b[1]), 1); /* seq 1 */
	CHECK_RC(xr_batch_release(r[1], &skip), 0);
	t0 = turned = xr__now_ns();
	for (;;) {
		lossy_put(w, &puts, &dropped);
		if (xr_load_relaxed(&rd->evictions))
			break;
		now = xr__now_ns();
		if (now - t0 > 5000000000ull)
			FAILF("colluding leases were not timed out in 5 s (turns %llu + %llu, %llu "
			      "of %llu records dropped)", (unsigned long long)turns[0],
			      (unsigned long long)turns[1], (unsigned long long)dropped,
			      (unsigned long long)puts);
		if (now - turned >= 20000000) { /* 20 ms: under the timeout */
			int o = b[0].first_seq < b[1].first_seq ? 0 : 1; /* the oldest */
			/* Read up to the other's batch, then take the frame
			 * after it: this one's lease is newest now. When the
			 * writer has written nothing after it yet (a descheduled
			 * moment), write on and take it at the next pass. */
			while (!caught[o]) {
				CHECK_RC(xr_reader_read(r[o], 1, 1, 0, &skip), 1);
				CHECK(skip.first_seq <= b[!o].first_seq);
				CHECK_RC(xr_batch_release(r[o], &skip), 0);
				caught[o] = skip.first_seq >= b[!o].first_seq;
			}
			int n = xr_reader_read(r[o], 1, 1, 0, &next);
			if (n == 0)
				continue;
			CHECK_RC(n, 1);
			CHECK_RC(xr_batch_release(r[o], &b[o]), 0);
			b[o] = next;
			caught[o] = false;
			turns[o]++;
			turned = now;
		}
	}
	double ms = (double)(xr__now_ns() - t0) / 1e6;
	uint32_t why[2] = {
		xr_load_relaxed(&a->infos[xr__reader_slot(r[0])].evict_reason),
		xr_load_relaxed(&a->infos[xr__reader_slot(r[1])].evict_reason),
	};
	CHECK(ms >= 50 && turns[0] + turns[1] >= 1 && dropped > puts / 2);
	CHECK(why[0] == XR_EVICT_LEASE || why[1] == XR_EVICT_LEASE);
	CHECK_EQ(xr_load_relaxed(&rd->evictions), 1);
	for (int i = 0; i < 2; i++)
		xr_reader_detach(r[i]);
	xr_test_destroy(a);
	printf("  two lossy readers taking turns (%llu + %llu turns, every 20 ms): reader %d "
	       "evicted after %.0f ms (timeout 50 ms, %llu of %llu records dropped)\n",
	       (unsigned long long)turns[0], (unsigned long long)turns[1],
	       why[0] == XR_EVICT_LEASE ? 0 : 1, ms, (unsigned long long)dropped,
	       (unsigned long long)puts);
}

/* Evict the blocker at s's lease until evictions reach n; ms it took. */
static double evict_until(xr_writer *w, const struct xr_ring_desc *rd, uint64_t n,
			  uint64_t *puts, uint64_t *dropped)
{
	uint64_t t0 = xr__now_ns();

	while (xr_load_relaxed(&rd->evictions) < n) {
		lossy_put(w, puts, dropped);
		if (xr__now_ns() - t0 > 5000000000ull)
			FAILF("eviction %llu did not come in 5 s", (unsigned long long)n);
	}
	return (double)(xr__now_ns() - t0) / 1e6;
}

/* Two lossy readers of one uid holding the same oldest batch, and a third
 * that subscribes after and takes the same place: a uid's readers share
 * its count, so once the first is evicted the others go at their first
 * look, and each eviction struck the uid (its timeout halved). Red team,
 * third pass: readers that took turns being evicted and subscribing again,
 * each with a fresh timeout, kept a stream dark. */
static void test_a_uid_shares_its_count(void)
{
	char name[64];
	xr_arena *a = arena("relay", XR_POLICY_LOSSY, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r[3] = {attach(name, XR_POLICY_DEFAULT), attach(name, XR_POLICY_DEFAULT)};
	const struct xr_ring_desc *rd = &a->hdr->rings[0];
	uint64_t puts = 0, dropped = 0;
	xr_batch b[3];

	CHECK_RC(xr_writer_set_lease_timeout(w, 50000000), 0); /* 50 ms */
	CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	for (int i = 0; i < 2; i++)
		CHECK_RC(xr_reader_read(r[i], 1, 1, 0, &b[i]), 1); /* both at seq 0 */
	double ms[3];
	ms[0] = evict_until(w, rd, 1, &puts, &dropped);
	ms[1] = evict_until(w, rd, 2, &puts, &dropped);
	/* A newcomer takes the oldest record and holds it. */
	r[2] = attach(name, XR_POLICY_DEFAULT);
	CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r[2], 1, 1, 0, &b[2]), 1);
	ms[2] = evict_until(w, rd, 3, &puts, &dropped);
	CHECK(ms[0] >= 50);
	if (ms[1] >= 25 || ms[2] >= 25)
		FAILF("evictions after %.1f, %.1f, %.1f ms: the uid's count not shared", ms[0],
		      ms[1], ms[2]);
	uint32_t strikes = 0;
	for (int i = 0; i < XR_STRIKE_UIDS; i++)
		if (w->strikes[i].n && w->strikes[i].uid == getuid())
			strikes = w->strikes[i].n;
	CHECK_EQ(strikes, 3);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(xr_load_relaxed(&a->infos[xr__reader_slot(r[i])].evict_reason),
			 XR_EVICT_LEASE);
		xr_reader_detach(r[i]);
	}
	xr_test_destroy(a);
	printf("  three readers of one uid in the same place evicted after %.1f, %.1f and %.1f ms "
	       "(timeout 50 ms; the uid's count shared, and struck 3 times)\n",
	       ms[0], ms[1], ms[2]);
}

/* A reader that ran up a debt and let go just before the timeout leaves
 * its debt with its uid: a reader of another uid that then stands in the
 * way now and then, costing a fifth of the records each time, is not
 * evicted for it (red team, fourth pass: with one debt per stream, it was,
 * at its first record dropped, again and again). The other uid is the
 * reader table's: the writer counts by it. */
static void test_debt_stays_with_its_uid(void)
{
	char name[64];
	xr_arena *a = arena("framed", XR_POLICY_LOSSY, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *bad = attach(name, XR_POLICY_DEFAULT), *r = attach(name, XR_POLICY_DEFAULT);
	const struct xr_ring_desc *rd = &a->hdr->rings[0];
	uint64_t t0, puts = 0, dropped = 0, holds = 0;
	xr_batch b;

	CHECK_RC(xr_writer_set_lease_timeout(w, 50000000), 0); /* 50 ms */
	a->infos[xr__reader_slot(bad)].uid = 4242;
	CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(bad, 1, 1, 0, &b), 1);
	for (t0 = xr__now_ns(); xr__now_ns() - t0 < 30000000;) /* 30 ms of drops */
		lossy_put(w, &puts, &dropped);
	CHECK_RC(xr_batch_release(bad, &b), 0);
	CHECK(dropped > 0);
	/* 100 ms of the honest pattern: a fifth of the records lost at each
	 * hold (its batch at tail: it was lapped), paid back. */
	for (t0 = xr__now_ns(); xr__now_ns() - t0 < 100000000; holds++) {
		for (int i = 0; i < 80; i++)
			lossy_put(w, &puts, &dropped);
		xr_writer_publish(w);
		int rc = xr_reader_read(r, 1, 16, 0, &b);
		if (rc == XR_EEVICTED)
			FAILF("evicted for another reader's debt after %llu holds",
			      (unsigned long long)holds);
		CHECK(rc > 0);
		for (int i = 0; i < 20; i++)
			lossy_put(w, &puts, &dropped);
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	CHECK_EQ(xr_load_relaxed(&rd->evictions), 0);
	CHECK_EQ(xr_load_relaxed(&a->infos[xr__reader_slot(r)].state), XR_SLOT_ACTIVE);
	xr_reader_detach(bad);
	xr_reader_detach(r);
	xr_test_destroy(a);
	printf("  a reader that dropped records for 30 ms (timeout 50 ms) left its debt with its "
	       "uid: one of another uid, %llu holds of a fifth of the stream, not evicted\n",
	       (unsigned long long)holds);
}

/* Every clock owing (more uids with debts than the writer has clocks): a
 * newcomer is counted on the overflow clock, no debt is wiped to make room
 * (red team, fifth pass: two uids wiped each other's in turn, and a lossy
 * stream went dark without an eviction), and an eviction counted there
 * strikes nobody (sixth pass: with a table as small as the slots, honest
 * uids landed there, were evicted for others' debts, and their strikes
 * kept them evicted). White-box: the debts are set. */
static void test_no_debt_is_wiped(void)
{
	char name[64];
	xr_arena *a = arena("wipe", XR_POLICY_LOSSY, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	const struct xr_ring_desc *rd = &a->hdr->rings[0];
	uint64_t puts = 0, dropped = 0, now = xr__now_ns();
	xr_batch b;

	CHECK_RC(xr_writer_set_lease_timeout(w, 50000000), 0);
	for (uint32_t i = 0; i < XR_LEASE_CLOCKS; i++)
		w->lc[i] = (struct xr_lease_clock){.uid = 100000 + i, .used = true,
						   .drops2 = 1u << 30, .w0 = w->frames,
						   .since = now, .end = now};
	CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r, 1, 1, 0, &b), 1); /* held */
	while (!dropped)
		lossy_put(w, &puts, &dropped);
	for (uint32_t i = 0; i < XR_LEASE_CLOCKS; i++) {
		CHECK_EQ(w->lc[i].uid, 100000 + i);
		CHECK(w->lc[i].drops2 == 1u << 30);
	}
	CHECK(w->lc[XR_LEASE_CLOCKS].used && w->lc[XR_LEASE_CLOCKS].drops2 >= 2);
	evict_until(w, rd, 1, &puts, &dropped);
	for (int i = 0; i < XR_STRIKE_UIDS; i++)
		CHECK(!(w->strikes[i].n && w->strikes[i].uid == getuid()));
	xr_reader_detach(r);
	xr_test_destroy(a);
	printf("  all %u clocks owing: the newcomer counted on the overflow clock, no debt wiped, "
	       "its eviction no strike\n", XR_LEASE_CLOCKS);
}

/* The other side of the cases above: an honest lossy reader that holds a
 * batch now and then, costing the stream a fifth of its records each time,
 * for longer in all than the timeout, is not evicted: the records written
 * between its stops pay for those it cost. */
static void test_honest_lossy_reader_is_not_evicted(void)
{
	char name[64];
	xr_arena *a = arena("honest", XR_POLICY_LOSSY, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	const struct xr_ring_desc *rd = &a->hdr->rings[0];
	uint32_t slot = xr__reader_slot(r);
	uint64_t t0, t, now, puts = 0, dropped = 0, holds = 0, held_ns = 0;
	xr_batch b;
	int rc;

	/* Counted in records, so the case does not hang on the scheduler: 80
	 * records written freely, then a batch held (at tail: the reader was
	 * lapped) while the writer tries 20 more, which it drops. A fifth of
	 * the stream lost, again and again, for 2 s and more in all than the
	 * timeout: paid back each time. */
	CHECK_RC(xr_writer_set_lease_timeout(w, 200000000), 0);
	t0 = xr__now_ns();
	while ((now = xr__now_ns()) - t0 < 2000000000ull || held_ns <= 200000000ull) {
		for (int i = 0; i < 80; i++)
			lossy_put(w, &puts, &dropped);
		xr_writer_publish(w);
		rc = xr_reader_read(r, 1, 16, 0, &b);
		if (rc == XR_EEVICTED)
			FAILF("an honest lossy reader was evicted after %.0f ms (%llu holds, "
			      "%.0f ms held in all)", (double)(now - t0) / 1e6,
			      (unsigned long long)holds, (double)held_ns / 1e6);
		CHECK(rc > 0);
		t = xr__now_ns();
		for (int i = 0; i < 20; i++)
			lossy_put(w, &puts, &dropped);
		CHECK_RC(xr_batch_release(r, &b), 0);
		holds++;
		held_ns += xr__now_ns() - t;
		if (now - t0 > 20000000000ull)
			FAILF("20 s and only %.0f ms held", (double)held_ns / 1e6);
	}
	for (int i = 0; i < 2 * RING / 1000; i++)
		CHECK_RC(xr_test_put(w, 1000), 0); /* nothing in the way */
	xr_writer_publish(w);
	CHECK(dropped > 0); /* the held batches did stop the writer */
	CHECK(held_ns > 200000000ull); /* longer, in all, than the timeout */
	uint64_t laps = w->head / RING;
	CHECK(laps >= 10);
	CHECK_EQ(xr_load_relaxed(&rd->evictions), 0);
	CHECK_EQ(xr_load_relaxed(&a->infos[slot].evict_reason), 0);
	CHECK_EQ(xr_load_relaxed(&a->infos[slot].state), XR_SLOT_ACTIVE);
	CHECK(xr_reader_read(r, 1, 16, 0, &b) > 0);
	CHECK_RC(xr_batch_release(r, &b), 0);
	xr_reader_detach(r);
	xr_test_destroy(a);
	printf("  an honest lossy reader holding a batch for 20 records in every 100 (%llu times, %.0f ms in "
	       "all; %llu laps, %llu of %llu records dropped) was not evicted\n",
	       (unsigned long long)holds, (double)held_ns / 1e6,
	       (unsigned long long)laps, (unsigned long long)dropped,
	       (unsigned long long)puts);
}

/*
 * A reader evicted while it reads: the writer stops honouring its lease and
 * may overwrite the bytes its walk is on. What the walk then finds (a seq
 * lower than one already read, a head more than a ring ahead) is what a
 * malformed ring looks like, and the read said -EPROTO, with no reason:
 * 1 run in 6 of test_agents_red kill_churn, where an agent's short lease
 * gets it evicted mid-recv. It is XR_EEVICTED, which the reader acts on
 * (an agent subscribes again). The reader here holds a batch and sleeps in
 * a read, past the read's check of its slot; it is evicted as the writer
 * does it (PS3, PI1), but without the kick, which would wake it into its
 * slot check first: it learns from its walk, as one evicted between its
 * check and its walk does. The writer then laps it twice over and wakes
 * it with records. A frame really malformed, by a writer that broke the
 * protocol, is still -EPROTO, and says what and where.
 */
struct evicted_read {
	xr_reader *r;
	atomic_int done;
	int rc;
};

static void *read_long(void *p)
{
	struct evicted_read *er = p;
	xr_batch b;

	/* More records than two laps hold: only the writer's wake, after
	 * them, ends the sleep. */
	er->rc = xr_reader_read(er->r, 1024, 1024, 5000000000ll, &b);
	if (er->rc > 0)
		xr_batch_release(er->r, &b);
	atomic_store(&er->done, 1);
	return NULL;
}

static void test_evicted_mid_read(void)
{
	char name[64];
	xr_arena *a = arena("evmid", XR_POLICY_LOSSY, name);
	xr_writer *w = xr_test_writer(a);
	struct evicted_read er = {.r = attach(name, XR_POLICY_DEFAULT)};
	uint32_t slot = xr__reader_slot(er.r);
	struct xr_peer_page *pg = xr__reader_page(er.r);
	xr_batch b;
	pthread_t th;

	CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(er.r, 1, 1, 0, &b), 1); /* held: its lease stays */
	CHECK(pthread_create(&th, NULL, read_long, &er) == 0);
	uint64_t dl = xr__now_ns() + 5000000000ull;
	while (!xr_load_sc(&pg->sleep_gen) && !atomic_load(&er.done) && xr__now_ns() < dl)
		sched_yield();
	CHECK(xr_load_sc(&pg->sleep_gen) != 0); /* asleep in the read, past its checks */
	uint32_t st = XR_SLOT_ACTIVE;
	CHECK(xr_cas(&a->peers->slot[slot].state, &st, XR_SLOT_EVICTED));
	xr_store_relaxed(&a->infos[slot].evict_reason, XR_EVICT_LEASE);
	xr_store_release(&a->infos[slot].state, XR_SLOT_EVICTED);
	for (int i = 0; i < 2048; i++) /* 32 laps, none of them dropped */
		CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	pthread_join(th, NULL);
	if (er.rc != XR_EEVICTED)
		FAILF("a reader evicted in the middle of a read got %d (%s; reason '%s'), not "
		      "XR_EEVICTED", er.rc, xr_strerror(er.rc), xr_last_reason());
	xr_reader_detach(er.r);

	/* A malformed frame, the reader's slot active: -EPROTO, and why. */
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	uint64_t at = xr_load_acquire(&a->hdr->rings[0].head) - 1024;
	xr_frame *f = (xr_frame *)(a->ring_data[0] + (at & (RING - 1)));
	f->seq = 0; /* lower than one this reader counted from */
	CHECK_RC(xr_reader_read(r, 1, 1, 0, &b), -EPROTO);
	char pos[32];
	snprintf(pos, sizeof(pos), "%llu", (unsigned long long)at);
	if (!strstr(xr_last_reason(), "ring 0") || !strstr(xr_last_reason(), pos) ||
	    !strstr(xr_last_reason(), "sequence"))
		FAILF("a malformed frame's -EPROTO says '%s': not its ring, place (%s) and what",
		      xr_last_reason(), pos);
	xr_reader_detach(r);
	xr_test_destroy(a);
	printf("  a reader evicted in the middle of a read was told XR_EEVICTED; a malformed "
	       "frame: -EPROTO, '%s'\n", xr_last_reason());
}

/* The frame k frames back from head, in a ring of frames of one size. */
static xr_frame *back(xr_arena *a, uint32_t k, uint32_t size)
{
	uint64_t at = xr_load_acquire(&a->hdr->rings[0].head) - (uint64_t)k * size;

	return (xr_frame *)(a->ring_data[0] + (at & (RING - 1)));
}

/* Gives f another seq, stamped as a writer would have (the stamp checks it). */
static void reseq(xr_frame *f, uint64_t seq)
{
	f->seq = seq;
	xr_stamp((uint8_t *)f + XR_FRAME_HDR, seq, f->len);
}

/*
 * The walk checks a run of frames like the one before only for that: the
 * same size and length, the next seq (shm/ring_reader.c, walk). Whatever ends
 * a run must still be seen as the full step sees it: a frame of another
 * size or length is taken (and the batch says mixed), a seq that skips is
 * counted as lost records, a lower seq is -EPROTO naming the frame, and the
 * batch ends at max and at half a ring of bytes.
 */
static void test_runs_end_where_frames_differ(void)
{
	char name[64];
	xr_arena *a = arena("runs", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	uint64_t next = xr_writer_next_seq(w);
	xr_batch b;

	/* Another size, then another length of the same frame size. */
	for (int i = 0; i < 41; i++)
		CHECK_RC(xr_test_put(w, i == 20 ? 200 : i == 30 ? 110 : 100), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r, 1, 1000, 0, &b), 41);
	CHECK_EQ(b.stride, 0);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(xr_test_check_batch(&b, &next, true), 0);
	CHECK_RC(xr_batch_release(r, &b), 0);
	for (int i = 0; i < 20; i++)
		CHECK_RC(xr_test_put(w, i == 10 ? 110 : 100), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r, 1, 1000, 0, &b), 20);
	CHECK_EQ(b.stride, 128); /* one frame size, two lengths */
	CHECK_EQ(b.len, 0);
	CHECK_EQ(xr_test_check_batch(&b, &next, true), 0);
	CHECK_RC(xr_batch_release(r, &b), 0);

	/* max ends a run. */
	for (int i = 0; i < 50; i++)
		CHECK_RC(xr_test_put(w, 100), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r, 1, 30, 0, &b), 30);
	CHECK_EQ(b.stride, 128);
	CHECK_EQ(b.len, 100);
	CHECK_EQ(xr_test_check_batch(&b, &next, true), 0);
	CHECK_RC(xr_batch_release(r, &b), 0);
	CHECK_RC(xr_reader_read(r, 1, 1000, 0, &b), 20);
	CHECK_EQ(xr_test_check_batch(&b, &next, true), 0);
	CHECK_RC(xr_batch_release(r, &b), 0);

	/* Half a ring of bytes ends a run: 1,000-byte records are 1,024-byte
	 * frames, 32 of them half of 64 KiB. */
	for (int i = 0; i < 40; i++)
		CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r, 1, 1000, 0, &b), 32);
	CHECK_EQ(b.bytes, RING / 2);
	CHECK_EQ(xr_test_check_batch(&b, &next, true), 0);
	CHECK_RC(xr_batch_release(r, &b), 0);
	CHECK_RC(xr_reader_read(r, 1, 1000, 0, &b), 8);
	CHECK_EQ(xr_test_check_batch(&b, &next, true), 0);
	CHECK_RC(xr_batch_release(r, &b), 0);

	/* A seq that skips 3 in the middle of a run: 3 records lost. */
	for (int i = 0; i < 30; i++)
		CHECK_RC(xr_test_put(w, 100), 0);
	xr_writer_publish(w);
	for (uint32_t k = 15; k >= 1; k--) {
		xr_frame *f = back(a, k, 128);
		reseq(f, f->seq + 3);
	}
	CHECK_RC(xr_reader_read(r, 1, 1000, 0, &b), 30);
	CHECK_EQ(xr_test_check_batch(&b, &next, false), 3);
	CHECK_EQ(b.dropped, 3); /* the reader's count, not only the test's */
	CHECK_RC(xr_batch_release(r, &b), 0);
	xr_reader_stats st;
	CHECK_RC(xr_reader_stats_get(r, &st), 0);
	CHECK_EQ(st.read, 41 + 20 + 50 + 40 + 30);

	xr_reader_detach(r);
	xr_test_destroy(a);

	/* A seq lower than the one before, in the middle of a run (a ring of
	 * its own: the reader above now expects seqs the writer has not
	 * reached). */
	a = arena("runs2", XR_POLICY_LOSSLESS, name);
	w = xr_test_writer(a);
	r = attach(name, XR_POLICY_DEFAULT);
	for (int i = 0; i < 30; i++)
		CHECK_RC(xr_test_put(w, 100), 0);
	xr_writer_publish(w);
	xr_frame *f = back(a, 10, 128);
	reseq(f, back(a, 25, 128)->seq);
	CHECK_RC(xr_reader_read(r, 1, 1000, 0, &b), -EPROTO);
	char pos[32];
	snprintf(pos, sizeof(pos), "%llu",
		 (unsigned long long)(xr_load_acquire(&a->hdr->rings[0].head) - 10 * 128));
	if (!strstr(xr_last_reason(), "sequence") || !strstr(xr_last_reason(), pos))
		FAILF("a lower seq in a run: '%s', not the sequence at %s", xr_last_reason(), pos);
	xr_reader_detach(r);
	xr_test_destroy(a);
	printf("  a run of like frames ends at another size, another length, max, half a "
	       "ring, a seq gap (3 lost) and a lower seq ('%s')\n", xr_last_reason());
}

/* A writer that died between W1a and W1c leaves pub_gen odd: readers say so
 * within a bound (XR_SNAPSHOT_MAX_NS), rather than spin on it for good. */
static void test_writer_dead_mid_publish(void)
{
	char name[64];
	xr_arena *a = arena("midpub", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT), *r2;
	xr_reader *lossy = attach(name, XR_POLICY_LOSSY);
	struct xr_cursor *lc = &xr__reader_page(lossy)->cursors[0];
	struct xr_ring_desc *rd = &a->hdr->rings[0];
	xr_reader_opts o = {.label = "late"};
	xr_reader_stats st;

	CHECK_RC(xr_test_put(w, 100), 0);
	xr_writer_publish(w);
	xr_fetch_add_release(&rd->pub_gen, 1); /* W1a, and no W1c */
	uint64_t t0 = xr__now_ns();
	char why[160];
	snprintf(why, sizeof(why),
		 "engine %s stopped in the middle of a publish on ring 0; restart the engine", name);
	CHECK(xr_last_reason()[0] == 0); /* the attaches above succeeded */
	CHECK_RC(xr_reader_stats_get(r, &st), -EPROTO);
	/* Stats say why, in attach's words: -EPROTO alone is also a malformed
	 * frame, which restarting would not mend. */
	if (strcmp(xr_last_reason(), why) != 0)
		FAILF("stats_get's reason '%s', want '%s'", xr_last_reason(), why);
	CHECK_RC(xr_reader_attach(name, &o, &r2), -EPROTO);
	if (strcmp(xr_last_reason(), why) != 0)
		FAILF("attach's reason '%s', want '%s'", xr_last_reason(), why);
	double s = (double)(xr__now_ns() - t0) / 1e9;
	CHECK(s >= 2 * XR_SNAPSHOT_MAX_NS / 1e9 && s < 10);
	/* A lossy reader holding nothing has no lease; counting takes one for
	 * its walk and must give it back on the refusal too, or the writer of
	 * this lossless stream would wait for a reader that reads nothing. */
	CHECK_EQ(xr_load_relaxed(&lc->lease), XR_NO_LEASE);
	CHECK_RC(xr_reader_stats_get(lossy, &st), -EPROTO);
	CHECK_EQ(xr_load_relaxed(&lc->lease), XR_NO_LEASE);
	/* The publish completes: both work again. */
	xr_fetch_add_release(&rd->pub_gen, 1);
	CHECK_RC(xr_reader_stats_get(r, &st), 0);
	CHECK_EQ(st.written, 1);
	CHECK_RC(xr_reader_attach(name, &o, &r2), 0);
	xr_reader_detach(r2);
	xr_reader_detach(lossy);
	xr_reader_detach(r);
	xr_test_destroy(a);
	printf("  a publish left half done: stats and attach refused in %.1f s, with the reason, "
	       "fine once it completed\n", s);
}

/* Invariant 5's bound on a lease: a batch covers at most half the ring's
 * bytes, whatever max asks, so that a reader's lease never keeps the writer
 * from half the ring. */
static void test_a_batch_is_half_the_ring_at_most(void)
{
	char name[64];
	xr_arena *a = arena("halfring", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	uint64_t put = 0, got = 0;
	xr_batch b;
	int n, rc;

	while ((rc = xr_test_put(w, 1000)) == 0)
		put++;
	CHECK_RC(rc, -EAGAIN);
	xr_writer_publish(w);
	CHECK(put * 1000 > RING / 2); /* more than half the ring is waiting */
	while ((n = xr_reader_read(r, 1, XR_BATCH_MAX, 0, &b)) > 0) {
		if (b.bytes > RING / 2)
			FAILF("a batch of %u records covers %llu bytes of a %u-byte ring", b.count,
			      (unsigned long long)b.bytes, RING);
		CHECK(b.count < put);
		got += (uint64_t)n;
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	CHECK_RC(n, 0);
	CHECK_EQ(got, put);
	xr_reader_detach(r);
	xr_test_destroy(a);
}

/* Backpressure (lossless, watermarks): past the high watermark the writer
 * pauses, counted once and timed, the ring marked blocked with where the
 * leases must be; it goes on only once the backlog is under the low
 * watermark, not a record before. */
static void test_watermarks_pause_and_resume(void)
{
	char name[64];
	xr_arena *a = arena("watermarks", XR_POLICY_LOSSLESS, name);
	xr_writer *w = xr_test_writer(a);
	xr_reader *r = attach(name, XR_POLICY_DEFAULT);
	const struct xr_ring_desc *rd = &a->hdr->rings[0];
	const uint64_t frame = 1024, high = RING / 2, low = RING / 4;
	uint64_t put = 0, head = 0;
	xr_batch b;

	CHECK_RC(xr_writer_set_watermarks(w, 0.5, 0.25), 0);
	/* Fill one record a publish until the writer stops. */
	for (;;) {
		int rc = xr_writer_wait(w, 1000, 0);
		if (rc == -ETIMEDOUT)
			break;
		CHECK_RC(rc, 0);
		CHECK_RC(xr_test_put(w, 1000), 0);
		xr_writer_publish(w);
		put++;
		head += frame;
		CHECK(put < RING / frame);
	}
	CHECK(head > high && head <= high + frame); /* paused at the first record past high */
	CHECK_EQ(xr_load_acquire(&rd->blocked), 1);
	CHECK_EQ(xr_load_relaxed(&rd->blocked_need), head - low + 1);
	CHECK_EQ(xr_load_relaxed(&rd->full_waits), 1);
	/* More waits of the same stop: counted once, and timed. */
	CHECK_RC(xr_writer_wait(w, 1000, 2000000), -ETIMEDOUT);
	CHECK_EQ(xr_load_relaxed(&rd->full_waits), 1);
	CHECK(xr_load_relaxed(&rd->wait_ns) >= 2000000);

	/* Read one record at a time: the writer stays paused while the
	 * backlog is at or above low, and goes on at the first release that
	 * takes it below. */
	uint64_t read = 0, next = 0;
	for (;;) {
		CHECK_RC(xr_reader_read(r, 1, 1, 0, &b), 1);
		xr_test_check_batch(&b, &next, true);
		CHECK_RC(xr_batch_release(r, &b), 0);
		read++;
		int rc = xr_writer_wait(w, 1000, 0);
		if (head - read * frame >= low) {
			if (rc != -ETIMEDOUT)
				FAILF("the writer went on with a backlog of %llu bytes (low %llu)",
				      (unsigned long long)(head - read * frame), (unsigned long long)low);
			continue;
		}
		CHECK_RC(rc, 0);
		break;
	}
	CHECK_EQ(xr_load_acquire(&rd->blocked), 0);
	CHECK_EQ(xr_load_relaxed(&rd->full_waits), 1);
	printf("  paused at %llu bytes of backlog (high %llu), went on at %llu (low %llu), "
	       "%.1f ms stopped\n",
	       (unsigned long long)head, (unsigned long long)high,
	       (unsigned long long)(head - read * frame), (unsigned long long)low,
	       (double)xr_load_relaxed(&rd->wait_ns) / 1e6);
	/* A low watermark of 0: the pause ends once nothing is unread
	 * (nothing is ever below 0), and blocked_need is the head. */
	CHECK_RC(xr_writer_set_watermarks(w, 0.5, 0), 0);
	int rc;
	while ((rc = xr_writer_wait(w, 1000, 0)) == 0) {
		CHECK_RC(xr_test_put(w, 1000), 0);
		xr_writer_publish(w);
	}
	CHECK_RC(rc, -ETIMEDOUT);
	CHECK_EQ(xr_load_relaxed(&rd->blocked_need), xr_load_relaxed(&rd->head));
	int n;
	while ((n = xr_reader_read(r, 1, 64, 0, &b)) > 0) {
		CHECK_RC(xr_writer_wait(w, 1000, 0), -ETIMEDOUT); /* still something unread */
		xr_test_check_batch(&b, &next, true);
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	CHECK_RC(n, 0);
	CHECK_RC(xr_writer_wait(w, 1000, 0), 0);
	xr_reader_detach(r);
	xr_test_destroy(a);
}

int main(void)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
		{"publish makes whole records visible", test_publish_makes_whole_records_visible},
		{"batch says uniform sizes", test_batch_says_uniform_sizes},
		{"fixed-length ring", test_fixed_length_ring},
		{"a lapped lossy reader restarts ahead", test_lapped_reader_restarts_ahead},
		{"wrap is contiguous", test_wrap_is_contiguous},
		{"lossless writer waits for reader", test_lossless_writer_waits_for_reader},
		{"a batch is half the ring at most", test_a_batch_is_half_the_ring_at_most},
		{"watermarks pause and resume", test_watermarks_pause_and_resume},
		{"lossy reader overrun is counted", test_lossy_reader_overrun_is_counted},
		{"lossy lease is never overwritten", test_lossy_lease_is_never_overwritten},
		{"lossy reader on lossless stream", test_lossy_reader_on_lossless_stream},
		{"batches released out of order", test_batches_released_out_of_order},
		{"garbage cursor evicts only that reader", test_garbage_cursor_evicts_only_that_reader},
		{"errors", test_errors},
		{"reader table full", test_reader_table_full},
		{"writer dead mid-publish", test_writer_dead_mid_publish},
		{"evicted in the middle of a read", test_evicted_mid_read},
		{"runs end where frames differ", test_runs_end_where_frames_differ},
		{"dead reader is released", test_dead_reader_is_released},
		{"readers map records read-only", test_readers_map_records_read_only},
		{"waits are cancellable", test_waits_are_cancellable},
		{"a stop ends with the retry", test_stop_ends_with_the_retry},
		{"a held lease times out", test_held_lease_times_out},
		{"a creeping lease times out", test_creeping_lease_times_out},
		{"colluding leases time out", test_colluding_leases_time_out},
		{"a uid's readers share its count", test_a_uid_shares_its_count},
		{"a debt stays with its uid", test_debt_stays_with_its_uid},
		{"no debt is wiped", test_no_debt_is_wiped},
		{"an honest lossy reader is not evicted", test_honest_lossy_reader_is_not_evicted},
	};

	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		printf("ring protocol: %s\n", tests[i].name);
		fflush(stdout);
		tests[i].fn();
	}
	printf("ring protocol: all %zu cases passed\n", sizeof(tests) / sizeof(tests[0]));
	return 0;
}
