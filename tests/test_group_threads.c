/* SPDX-License-Identifier: MIT */
/*
 * Consumer groups with every member a thread of this process, beside the
 * engine's own threads (shards, control, the group thread), for
 * ThreadSanitizer to see the group thread's locking and the page protocol
 * (acquire/release of req.seq, resp.seq and the release words):
 *   - four members split a lossless stream; one detaches holding two
 *     batches halfway, and joins again; every record is used once, none
 *     missing, and the detached member's batches reach the others
 */
#include <pthread.h>
#include <stdlib.h>

#include "fault_helpers.h"

#define MEMBERS 4
#define WANT 20000u
#define LOG_MAX (1u << 22)

struct used {
	uint32_t ring;
	uint64_t seq;
};

static const char *engine;
static struct used *log_;
static _Atomic uint64_t n_log;
static _Atomic uint32_t stop;
static _Atomic uint64_t given_back;

static xr_reader *join(void)
{
	xr_reader *r = NULL;
	int rc = 0;

	/* The engine's thread (fault_engine_run starts it) serves groups once
	 * it runs its games: -ENOTSUP, "hosts no games", till then (a CI run's
	 * first join came that early). */
	(void)FAULT_WAIT((rc = xr_reader_attach(engine,
						&(xr_reader_opts){.group = "t", .label = "thread"},
						&r)) != -ENOTSUP,
			 10000);
	if (rc < 0)
		FAILF("join: %s (%s)", xr_strerror(rc), xr_last_reason());
	return r;
}

static void use(const xr_batch *b)
{
	const xr_frame *f = b->first;

	for (uint32_t i = 0; i < b->count; i++, f = i < b->count ? xr_frame_next(f) : f) {
		uint64_t k = atomic_fetch_add(&n_log, 1);
		if (k >= LOG_MAX)
			FAILF("the log is full");
		log_[k] = (struct used){.ring = b->ring, .seq = f->seq};
	}
}

static void *member(void *arg)
{
	uintptr_t who = (uintptr_t)arg;
	xr_reader *r = join();
	xr_batch b, held[2];
	bool left = false;

	while (!atomic_load(&stop)) {
		/* Member 0 leaves once, holding two batches, and comes back. */
		if (who == 0 && !left && atomic_load(&n_log) > WANT / 2) {
			CHECK(xr_reader_read(r, 1, 32, 5 * SEC, &held[0]) > 0);
			CHECK(xr_reader_read(r, 1, 32, 5 * SEC, &held[1]) > 0);
			atomic_fetch_add(&given_back, held[0].count + held[1].count);
			xr_reader_detach(r);
			r = join();
			left = true;
			continue;
		}
		int n = xr_reader_read(r, 1, 32, 50 * MS, &b);
		if (n < 0)
			FAILF("member %u: %s (%s)", (unsigned)who, xr_strerror(n), xr_last_reason());
		if (n == 0)
			continue;
		use(&b);
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	xr_reader_detach(r);
	return NULL;
}

static int by_ring_seq(const void *a, const void *b)
{
	const struct used *x = a, *y = b;

	if (x->ring != y->ring)
		return x->ring < y->ring ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int main(void)
{
	struct fault_engine e;
	pthread_t th[MEMBERS];
	xr_reader_stats st;
	xr_batch b;

	log_ = calloc(LOG_MAX, sizeof(*log_));
	CHECK(log_ != NULL);
	fault_engine_create(&e, "gthreads",
			    &(struct fault_engine_opts){.games = 8, .shards = 2,
							.ring_bytes = 8u << 20});
	engine = e.name;
	fault_engine_run(&e);
	/* This thread's member holds the group from the start: the members'
	 * threads all join the same one. */
	xr_reader *mine = join();
	for (uintptr_t i = 0; i < MEMBERS; i++)
		CHECK(pthread_create(&th[i], NULL, member, (void *)i) == 0);
	if (!FAULT_WAIT(atomic_load(&n_log) >= WANT, 120000))
		FAILF("the members used %llu records in 120 s",
		      (unsigned long long)atomic_load(&n_log));
	/* The games stop; what the group has left goes to this thread's
	 * member too, until nothing is pending or held. */
	xr_host_stop(e.h);
	CHECK(pthread_join(e.th, NULL) == 0);
	CHECK_RC(e.rc, 0);
	atomic_store(&stop, 1);
	for (int i = 0; i < MEMBERS; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	for (;;) {
		int n = xr_reader_read(mine, 1, 64, 100 * MS, &b);
		if (n < 0)
			FAILF("draining: %s", xr_strerror(n));
		if (n > 0) {
			use(&b);
			CHECK_RC(xr_batch_release(mine, &b), 0);
			continue;
		}
		CHECK_RC(xr_reader_stats_get(mine, &st), 0);
		if (st.pending == 0 && st.group_held == 0)
			break;
	}
	uint64_t total = atomic_load(&n_log);
	qsort(log_, total, sizeof(*log_), by_ring_seq);
	for (uint64_t i = 1; i < total; i++)
		if (log_[i - 1].ring == log_[i].ring && log_[i - 1].seq + 1 != log_[i].seq)
			FAILF("ring %u: seq %llu then %llu (a record twice, or one missing)",
			      log_[i].ring, (unsigned long long)log_[i - 1].seq,
			      (unsigned long long)log_[i].seq);
	CHECK_EQ(st.written, st.group_done);
	CHECK_EQ(st.group_done, total);
	CHECK_EQ(st.redelivered, atomic_load(&given_back));
	printf("group threads: %llu records to %d member threads, each once; %llu given back by "
	       "a detach\n",
	       (unsigned long long)total, MEMBERS + 1, (unsigned long long)atomic_load(&given_back));
	xr_reader_detach(mine);
	xr_host_destroy(e.h);
	free(log_);
	return 0;
}
