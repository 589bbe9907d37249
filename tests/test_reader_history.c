/* SPDX-License-Identifier: MIT */
/*
 * History (xr_reader_opts.history): a reader that attaches late starts N
 * records before the newest, or at the oldest the ring still holds, instead
 * of at the newest. Writer and readers in one thread, so that each case is
 * the interleaving written down. Asserts the records a late reader gets are
 * exactly the last N (or all there are), intact and in order; that its
 * accounting (written == read + dropped + pending) starts at the first of
 * them; that a lossless one holds the writer there and loses nothing; that a
 * lossy one lapped before it reads counts what it lost; that a ring of
 * fixed-size frames (counted, not walked) gives the same; and that frames
 * whose sizes cannot be make attach fail with -EPROTO naming them, not walk
 * off the mapping.
 */
#include "ring_helpers.h"
#include "shm/arena_priv.h"
#include "util/atomics.h"

#define RING (64 << 10)

static xr_reader *attach_back(const char *name, xr_policy policy, uint64_t history)
{
	xr_reader_opts o = {.policy = policy, .label = "history", .history = history};
	xr_reader *r;

	CHECK_RC(xr_reader_attach(name, &o, &r), 0);
	return r;
}

/* Reads all there is from a reader whose first record should be `first`;
 * returns the count. Lossless (exact): no seq may be skipped. */
static uint64_t drain_from(xr_reader *r, uint64_t first, bool exact, uint64_t *dropped)
{
	uint64_t next = first, n = 0;
	xr_batch b;
	int rc;

	while ((rc = xr_reader_read(r, 1, 100, 0, &b)) > 0) {
		if (n == 0 && exact)
			CHECK_EQ(b.first_seq, first);
		uint64_t gaps = xr_test_check_batch(&b, &next, exact);
		if (dropped)
			*dropped += gaps;
		n += b.count;
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	CHECK_RC(rc, 0);
	return n;
}

static void check_accounting(xr_reader *r, uint64_t written, uint64_t read, uint64_t dropped)
{
	xr_reader_stats s;

	CHECK_RC(xr_reader_stats_get(r, &s), 0);
	CHECK_EQ(s.written, written);
	CHECK_EQ(s.read, read);
	CHECK_EQ(s.dropped, dropped);
	CHECK_EQ(s.pending, 0);
}

/* The oldest seq the ring still holds: the frame at its tail. */
static uint64_t oldest_seq(xr_arena *a)
{
	uint64_t tail = xr_load_acquire(&a->hdr->rings[0].tail);

	return ((const xr_frame *)(a->ring_data[0] + (tail & (RING - 1))))->seq;
}

/* Before the ring wraps: N back gives the last N, ALL gives every record,
 * 0 none of them, and more than there are gives them all. */
static void test_last_n_and_all(void)
{
	char name[64];
	xr_test_name(name, sizeof(name), "hist");
	xr_arena *a = xr_test_arena(name, XR_POLICY_LOSSLESS, RING, 64, XR_HUGEPAGES_OFF);
	xr_writer *w = xr_test_writer(a);

	for (int i = 0; i < 40; i++)
		CHECK_RC(xr_test_put(w, xr_stamp_len((uint64_t)i, 400)), 0);
	xr_writer_publish(w);

	xr_reader *now = attach_back(name, XR_POLICY_DEFAULT, 0);
	xr_reader *ten = attach_back(name, XR_POLICY_DEFAULT, 10);
	xr_reader *all = attach_back(name, XR_POLICY_DEFAULT, XR_HISTORY_ALL);
	xr_reader *more = attach_back(name, XR_POLICY_LOSSY, 1000);
	CHECK_EQ(drain_from(now, 40, true, NULL), 0);
	CHECK_EQ(drain_from(ten, 30, true, NULL), 10);
	CHECK_EQ(drain_from(all, 0, true, NULL), 40);
	CHECK_EQ(drain_from(more, 0, true, NULL), 40);
	check_accounting(now, 0, 0, 0);
	check_accounting(ten, 10, 10, 0);
	check_accounting(all, 40, 40, 0);
	check_accounting(more, 40, 40, 0);
	/* And on from there, like any reader. */
	for (int i = 40; i < 45; i++)
		CHECK_RC(xr_test_put(w, xr_stamp_len((uint64_t)i, 400)), 0);
	xr_writer_publish(w);
	CHECK_EQ(drain_from(now, 40, true, NULL), 5);
	CHECK_EQ(drain_from(ten, 40, true, NULL), 5);
	check_accounting(now, 5, 5, 0);
	check_accounting(ten, 15, 15, 0);
	xr_reader_detach(now);
	xr_reader_detach(ten);
	xr_reader_detach(all);
	xr_reader_detach(more);
	xr_test_destroy(a);
}

/* After many laps: ALL starts at the frame at the ring's tail, and a
 * lossless reader there holds the writer back until it reads (nothing it
 * started behind is overwritten), then gets every record from there on. */
static void test_all_after_laps_holds_the_writer(void)
{
	char name[64];
	xr_test_name(name, sizeof(name), "histlap");
	xr_arena *a = xr_test_arena(name, XR_POLICY_LOSSLESS, RING, 64, XR_HUGEPAGES_OFF);
	xr_writer *w = xr_test_writer(a);
	uint64_t put = 0;

	for (; put < 10 * RING / 200; put++)
		CHECK_RC(xr_test_put(w, xr_stamp_len(put, 400)), 0);
	xr_writer_publish(w);
	uint64_t first = oldest_seq(a);
	CHECK(first > 0);

	xr_reader *r = attach_back(name, XR_POLICY_LOSSLESS, XR_HISTORY_ALL);
	int rc;
	while ((rc = xr_test_put(w, xr_stamp_len(put, 400))) == 0)
		put++;
	CHECK_RC(rc, -EAGAIN); /* the history reader's lease holds */
	xr_writer_publish(w);
	uint64_t got = drain_from(r, first, true, NULL);
	CHECK_EQ(got, put - first);
	check_accounting(r, put - first, got, 0);
	CHECK_RC(xr_test_put(w, 100), 0); /* read, released: room again */
	xr_reader_detach(r);
	xr_test_destroy(a);
}

/* A lossy reader keeps no lease between batches: lapped before its first
 * read, it starts again further on and counts the records it lost. */
static void test_lossy_lapped_before_reading(void)
{
	char name[64];
	xr_test_name(name, sizeof(name), "histlossy");
	xr_arena *a = xr_test_arena(name, XR_POLICY_LOSSY, RING, 64, XR_HUGEPAGES_OFF);
	xr_writer *w = xr_test_writer(a);
	uint64_t put = 0, dropped = 0;

	for (; put < 50; put++)
		CHECK_RC(xr_test_put(w, 500), 0);
	xr_writer_publish(w);
	xr_reader *r = attach_back(name, XR_POLICY_DEFAULT, 20);
	for (; put < 50 + 5 * RING / 512; put++)
		CHECK_RC(xr_test_put(w, 500), 0);
	xr_writer_publish(w);
	uint64_t got = drain_from(r, 30, false, &dropped);
	CHECK(dropped > 0);
	CHECK_EQ(got + dropped, put - 30);
	check_accounting(r, put - 30, got, dropped);
	xr_reader_detach(r);
	xr_test_destroy(a);
}

/* Frames of one size are counted from the bytes, not walked: the same
 * records as a walk would give, before and after the ring wraps. */
static void test_fixed_size_ring(void)
{
	char name[64];
	uint32_t len;
	xr_test_name(name, sizeof(name), "histfix");
	xr_arena *a = xr_test_arena_fixed(name, XR_POLICY_LOSSLESS, RING, 64, &len);
	xr_writer *w = xr_test_writer(a);
	uint64_t put = 0;

	for (; put < 7; put++)
		CHECK_RC(xr_test_put(w, len), 0);
	xr_writer_publish(w);
	xr_reader *r = attach_back(name, XR_POLICY_DEFAULT, 3);
	CHECK_EQ(drain_from(r, 4, true, NULL), 3);
	xr_reader_detach(r);
	for (; put < 7 + 3 * RING / len; put++)
		CHECK_RC(xr_test_put(w, len), 0);
	xr_writer_publish(w);
	r = attach_back(name, XR_POLICY_DEFAULT, 25);
	CHECK_EQ(drain_from(r, put - 25, true, NULL), 25);
	check_accounting(r, 25, 25, 0);
	xr_reader_detach(r);
	r = attach_back(name, XR_POLICY_DEFAULT, XR_HISTORY_ALL);
	uint64_t first = oldest_seq(a);
	CHECK_EQ(drain_from(r, first, true, NULL), put - first);
	xr_reader_detach(r);
	xr_test_destroy(a);
}

/* A frame size that cannot be, between the tail and the head: attach with
 * history refuses with -EPROTO and says where; attach at the head, which
 * does not walk those frames, still works. */
static void test_malformed_sizes_refused(void)
{
	static const uint32_t bad[] = {0, 3, RING};
	char name[64];
	xr_test_name(name, sizeof(name), "histbad");
	xr_arena *a = xr_test_arena(name, XR_POLICY_LOSSLESS, RING, 64, XR_HUGEPAGES_OFF);
	xr_writer *w = xr_test_writer(a);

	for (int i = 0; i < 20; i++)
		CHECK_RC(xr_test_put(w, 200), 0);
	xr_writer_publish(w);
	xr_frame *f = (xr_frame *)(a->ring_data[0] + 5 * xr__frame_size(200, 64));
	uint32_t good = f->size;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		xr_reader_opts o = {.label = "history", .history = XR_HISTORY_ALL};
		xr_reader *r;

		f->size = bad[i];
		CHECK_RC(xr_reader_attach(name, &o, &r), -EPROTO);
		CHECK(strstr(xr_last_reason(), "malformed") != NULL);
		CHECK(strstr(xr_last_reason(), "size") != NULL);
	}
	xr_reader *r = attach_back(name, XR_POLICY_DEFAULT, 0);
	f->size = good;
	xr_reader_detach(r);
	r = attach_back(name, XR_POLICY_DEFAULT, XR_HISTORY_ALL);
	CHECK_EQ(drain_from(r, 0, true, NULL), 20);
	xr_reader_detach(r);
	xr_test_destroy(a);
}

int main(void)
{
	test_last_n_and_all();
	test_all_after_laps_holds_the_writer();
	test_lossy_lapped_before_reading();
	test_fixed_size_ring();
	test_malformed_sizes_refused();
	printf("test_reader_history: ok\n");
	return 0;
}
