/* SPDX-License-Identifier: MIT */
/*
 * Tables the engine feeds from a stream (xr_table_opts.source): an engine
 * playing grid games in this process, a trainer here.
 *   - every item sampled is one of the stream's records, whole: a verified
 *     Experience record, of a seq the engine wrote
 *   - the items are the records in order: inserts keep pace with the
 *     stream (a fifo sampler over a queue table sees seqs that only grow,
 *     each once)
 *   - the rate limiter holds the feed: with samples_per_insert 1, inserts
 *     stop within error_buffer of the samples, and a lossless stream's
 *     games with them; sampling moves both on
 *   - refusals: a stream the engine does not have, items too small
 *   - a trainer holding every item of a fed table does not stop the games
 */
#include <stdlib.h>

#include "fault_helpers.h"
#include "xring/table.h"

static const char *engine;

static void stats(xr_table *t, xr_table_stats *st)
{
	CHECK_RC(xr_table_get_stats(t, st), 0);
}

int main(void)
{
	struct fault_engine e;
	xr_table *t;
	xr_table_stats st;
	xr_sample s;

	fault_engine_create(&e, "feed", &(struct fault_engine_opts){.games = 8, .shards = 1});
	engine = e.name;
	fault_engine_run(&e);

	/* Refusals first. */
	xr_table_opts bad = {.capacity = 100, .source = "nosuch", .seed = 1};
	CHECK_RC(xr_table_create(engine, "bad", &bad), -ENOENT);
	CHECK(strstr(xr_last_reason(), "nosuch"));
	bad.source = "experience";
	bad.item_size = 8;
	CHECK_RC(xr_table_create(engine, "bad", &bad), -EINVAL);
	CHECK(strstr(xr_last_reason(), "cannot hold"));

	/* A queue of records: fifo sampler, each item once. */
	xr_table_opts q = {.capacity = 4096, .sampler = XR_SAMPLER_FIFO,
			   .remover = XR_REMOVER_FIFO, .max_times_sampled = 1,
			   .source = "experience", .priority = 1, .seed = 2};
	CHECK_RC(xr_table_create(engine, "queue", &q), 0);
	CHECK_RC(xr_table_open(engine, "queue", NULL, &t), 0);
	stats(t, &st);
	CHECK(st.item_size > 0);
	CHECK_EQ(st.feed, 1);
	CHECK_EQ(st.feed_dropped, 0);
	/* The table says its items are the stream's records, of its shape. */
	xr_item_layout lay;
	xr_table_item_layout(t, &lay);
	CHECK_EQ(lay.item, XR_ITEM_RECORD);
	CHECK(lay.obs_bytes > 0 && lay.shape.obs_ndim > 0);
	uint64_t last = 0, got = 0;
	bool first = true;
	uint64_t until = xr__now_ns() + 30 * SEC;
	while (got < 20000 && xr__now_ns() < until) {
		int n = xr_table_sample(t, 256, 2000, &s);
		if (n < 0)
			FAILF("sample of a fed queue: %d (%s)", n, xr_last_reason());
		uint64_t keys[256];
		memcpy(keys, s.keys, (size_t)n * sizeof(uint64_t));
		for (int i = 0; i < n; i++) {
			xr_exp_view v;
			const uint8_t *item = xr_table_item(t, s.slots[i]);
			if (xr_exp_view_init(&v, item, st.item_size) < 0)
				FAILF("item %d of a fed table is not an Experience record", i);
			CHECK_EQ(v.obs_bytes, lay.obs_bytes);
			CHECK_EQ(v.mask_len, lay.mask_len);
			if (!first && v.f.seq <= last)
				FAILF("fed items out of order: seq %llu after %llu",
				      (unsigned long long)v.f.seq, (unsigned long long)last);
			first = false;
			last = v.f.seq;
		}
		CHECK_RC(xr_table_release(t, keys, (uint32_t)n), n);
		got += (uint64_t)n;
	}
	CHECK(got >= 20000);
	printf("a fed queue: %llu records taken in order, each once\n", (unsigned long long)got);
	xr_table_close(t);

	/* A trainer leasing every item of a fed table does not stop the
	 * games: the records the table cannot take are dropped. */
	xr_table_opts tiny = {.capacity = 64, .sampler = XR_SAMPLER_FIFO, .source = "experience",
			      .priority = 1, .seed = 4};
	CHECK_RC(xr_table_create(engine, "tiny", &tiny), 0);
	CHECK_RC(xr_table_open(engine, "tiny", NULL, &t), 0);
	CHECK(FAULT_WAIT(xr_table_get_stats(t, &st) == 0 && st.size == 64, 10000));
	CHECK_RC(xr_table_sample(t, 64, 1000, &s), 64); /* all of them, held */
	stats(t, &st);
	CHECK_EQ(st.leases, 64);
	uint64_t w0 = fault_written(&e);
	CHECK(FAULT_WAIT(fault_written(&e) > w0 + 10000, 10000));
	CHECK(FAULT_WAIT(xr_table_get_stats(t, &st) == 0 && st.feed_dropped > 0, 10000));
	CHECK_EQ(st.feed, 1);
	printf("64 items held by a trainer: the engine wrote %llu more records meanwhile\n",
	       (unsigned long long)(fault_written(&e) - w0));
	xr_table_close(t);
	/* The limiter holds the feed: spi 1, error_buffer 32, min_size 64 (last:
	 * once nobody samples, it holds the games of this lossless stream). */
	xr_table_opts lim = {.capacity = 10000, .source = "experience", .priority = 1,
			     .min_size = 64, .samples_per_insert = 1, .error_buffer = 32,
			     .seed = 3};
	CHECK_RC(xr_table_create(engine, "limited", &lim), 0);
	CHECK_RC(xr_table_open(engine, "limited", NULL, &t), 0);
	/* It fills to where the limiter stops it: 64 + 32 inserts. */
	CHECK(FAULT_WAIT(xr_table_get_stats(t, &st) == 0 && st.inserts == 96, 10000));
	stats(t, &st);
	CHECK_EQ(st.inserts, 96); /* held there, not one more */
	for (int r = 0; r < 50; r++) {
		int n = xr_table_sample(t, 32, 5000, &s);
		if (n != 32)
			FAILF("sample %d: %d (%s)", r, n, xr_last_reason());
		uint64_t keys[32];
		memcpy(keys, s.keys, sizeof(keys));
		CHECK_RC(xr_table_release(t, keys, 32), 32);
		stats(t, &st);
		double d = (double)st.inserts - (double)st.samples;
		if (d > 64 + 32 + 1 || d < 64 - 32 - 1)
			FAILF("inserts %llu, samples %llu: outside the limiter's window",
			      (unsigned long long)st.inserts, (unsigned long long)st.samples);
	}
	printf("the limiter held the feed: %llu inserts for %llu samples\n",
	       (unsigned long long)st.inserts, (unsigned long long)st.samples);
	xr_table_close(t);

	fault_engine_stop(&e);
	printf("ok\n");
	return 0;
}
