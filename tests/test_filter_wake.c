/* SPDX-License-Identifier: MIT */
/*
 * Subscribe-time filters and wakeups, with the writer, the control
 * server and the readers in one process (so that ThreadSanitizer sees the
 * whole sleep/wake protocol):
 *
 *   filter_rules      each test of xr_filter alone and together picks exactly
 *                     the records a reference predicate picks; records come
 *                     in place (pointers into the batch's ring span) and the
 *                     accounting written == read + filtered + dropped +
 *                     pending holds
 *   filter_sample     the sample is deterministic (same seed, same records;
 *                     other seed, other records) and near its rate
 *   filter_bad        bad filters are -EINVAL before the engine is asked
 *   wake_per_batch    a sleeping reader with a sparse filter is woken once
 *                     per batch of min records that pass, not per publish
 *   wake_no_loss      random bursts against random min: every sleep ends by
 *                     a writer's wakeup (a lost wakeup would end one by the
 *                     read's 2 s max_wait instead, not counted as a wakeup)
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

#include "ring_helpers.h"
#include "shm/arena_priv.h"
#include "shm/peers.h"
#include "xring/record.h"

#define GAMES 100

static xr_exp_shape shape = {.obs_dtype = XR_DTYPE_U8, .obs_ndim = 1, .obs_dims = {8},
			     .mask_len = 4};
static xr_exp_template tpl;

/* The fields of record seq: every filter test has something to bite on. */
static void fields(uint64_t seq, xr_exp_fields *f)
{
	memset(f, 0, sizeof(*f));
	f->seq = seq;
	f->game_id = (uint32_t)(seq % GAMES);
	f->player_id = (uint32_t)(seq / GAMES % 4);
	f->turn = (uint32_t)(seq / (GAMES * 4));
	f->reward = (float)((int)(seq % 7) - 3);
	f->done = seq % 11 == 0;
	f->truncated = seq % 13 == 0;
}

static xr_arena *exp_arena(const char *name, uint64_t ring_bytes, uint32_t max_readers)
{
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSLESS, .ring_bytes = ring_bytes,
			     .kind = XR_RECORD_EXPERIENCE, .shape = shape};
	xr_arena_spec spec = {.name = name, .streams = &ss, .n_streams = 1,
			      .hugepages = XR_HUGEPAGES_PREFER, .numa_node = XR_NUMA_DEFAULT,
			      .max_readers = max_readers};
	xr_arena *a;
	int rc = xr_arena_create(&spec, &a);

	if (rc < 0)
		FAILF("xr_arena_create: %s (%s)", xr_strerror(rc), xr_arena_last_note());
	xr_test_serve(a);
	return a;
}

static void put(xr_writer *w, uint64_t seq)
{
	void *p;
	xr_exp_fields f;
	xr_exp_slots s;

	for (;;) {
		int rc = xr_writer_reserve(w, tpl.size, &p);
		if (rc == 0)
			break;
		CHECK_RC(rc, -EAGAIN);
		CHECK_RC(xr_writer_wait(w, tpl.size, 5000000000ll), 0);
	}
	fields(seq, &f);
	xr_exp_build(&tpl, p, &f, &s);
	memset(s.obs, (int)(seq & 0xff), tpl.obs_bytes);
	memset(s.mask, 1, shape.mask_len);
	xr_writer_commit(w);
}

static bool in(const xr_id_range *r, uint32_t n, uint32_t v)
{
	for (uint32_t i = 0; i < n; i++)
		if (v >= r[i].lo && v <= r[i].hi)
			return true;
	return false;
}

/* The reference predicate, written from the header's words (sample aside). */
static bool passes(const xr_filter *f, const xr_exp_fields *x)
{
	if (f->n_games && !in(f->games, f->n_games, x->game_id))
		return false;
	if (f->n_players && !in(f->players, f->n_players, x->player_id))
		return false;
	if (x->turn < f->min_turn)
		return false;
	bool term = x->done || x->truncated;
	if (f->terminal == XR_TERMINAL_ONLY && !term)
		return false;
	if (f->terminal == XR_TERMINAL_NONE && term)
		return false;
	if (f->has_reward_range && !(x->reward >= f->reward_min && x->reward <= f->reward_max))
		return false;
	return true;
}

static const xr_frame *nth(const xr_batch *b, const xr_frame *prev, uint32_t i)
{
	return b->frames ? b->frames[i] : i == 0 ? b->first : xr_frame_next(prev);
}

/* Reads everything (n records written) through filter f; checks each record
 * against the reference and returns the seqs seen in *seen (a bitmap). */
static uint64_t drain(xr_reader *r, const xr_filter *f, uint64_t n, uint8_t *seen)
{
	uint64_t got = 0;
	xr_batch b;
	int k;

	while ((k = xr_reader_read(r, 1, 97, 0, &b)) > 0) {
		const xr_frame *fr = NULL;
		const uint8_t *lo = (const uint8_t *)b.first, *hi = lo + b.bytes;
		for (uint32_t i = 0; i < b.count; i++) {
			xr_exp_view v;
			fr = nth(&b, fr, i);
			/* In place: inside the span the lease covers. */
			CHECK((const uint8_t *)fr >= lo && (const uint8_t *)fr < hi);
			CHECK_RC(xr_exp_view_init(&v, xr_frame_data(fr), fr->len), 0);
			CHECK(v.f.seq < n);
			CHECK(passes(f, &v.f));
			CHECK(((const uint8_t *)v.obs)[0] == (uint8_t)(v.f.seq & 0xff));
			if (seen) {
				CHECK(!(seen[v.f.seq / 8] & (1u << (v.f.seq % 8))));
				seen[v.f.seq / 8] |= (uint8_t)(1u << (v.f.seq % 8));
			}
			got++;
		}
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	CHECK_RC(k, 0);
	return got;
}

static void check_accounting(xr_reader *r, uint64_t written)
{
	xr_reader_stats s;

	CHECK_RC(xr_reader_stats_get(r, &s), 0);
	CHECK_EQ(s.written, written);
	CHECK_EQ(s.read + s.filtered + s.dropped + s.pending, s.written);
	CHECK_EQ(s.pending, 0);
}

static void filter_rules(void)
{
	char name[64];
	xr_test_name(name, sizeof(name), "rules");
	xr_arena *a = exp_arena(name, 8 << 20, 16);
	xr_writer *w = xr_test_writer(a);
	static const xr_id_range g[] = {{10, 19}, {42, 42}, {90, 200}};
	static const xr_id_range p1[] = {{1, 2}};
	const xr_filter cases[] = {
		{.games = g, .n_games = 3},
		{.players = p1, .n_players = 1},
		{.min_turn = 7},
		{.terminal = XR_TERMINAL_ONLY},
		{.terminal = XR_TERMINAL_NONE},
		{.has_reward_range = 1, .reward_min = -1, .reward_max = 1.5f},
		{.games = g, .n_games = 2, .players = p1, .n_players = 1, .min_turn = 3,
		 .terminal = XR_TERMINAL_NONE, .has_reward_range = 1, .reward_min = 0,
		 .reward_max = 3},
	};
	enum { NC = sizeof(cases) / sizeof(cases[0]), N = 20000 };
	xr_reader *r[NC];

	for (int i = 0; i < NC; i++) {
		xr_reader_opts o = {.filter = &cases[i], .transport = XR_TRANSPORT_CONTROL};
		CHECK_RC(xr_reader_attach(name, &o, &r[i]), 0);
	}
	for (uint64_t s = 0; s < N; s++) {
		put(w, s);
		if (s % 64 == 63)
			xr_writer_publish(w);
		/* Keep the lossless ring moving: readers take turns. */
		if (s % 4096 == 4095)
			for (int i = 0; i < NC; i++)
				(void)drain(r[i], &cases[i], N, NULL);
	}
	xr_writer_publish(w);
	for (int i = 0; i < NC; i++) {
		uint64_t want = 0;
		xr_reader_stats st;
		for (uint64_t s = 0; s < N; s++) {
			xr_exp_fields x;
			fields(s, &x);
			want += passes(&cases[i], &x);
		}
		(void)drain(r[i], &cases[i], N, NULL);
		CHECK_RC(xr_reader_stats_get(r[i], &st), 0);
		if (st.read != want)
			FAILF("filter case %d: read %llu records, the reference picks %llu", i,
			      (unsigned long long)st.read, (unsigned long long)want);
		CHECK(want > 0 && want < N);
		check_accounting(r[i], N);
		xr_reader_detach(r[i]);
	}
	xr_test_destroy(a);
	printf("filter_rules: %d filters agree with the reference over %d records\n", NC, N);
}

static void filter_sample(void)
{
	char name[64];
	xr_test_name(name, sizeof(name), "sample");
	xr_arena *a = exp_arena(name, 8 << 20, 16);
	xr_writer *w = xr_test_writer(a);
	enum { N = 20000 };
	const xr_filter f1 = {.sample_rate = 0.25, .sample_seed = 7};
	const xr_filter f2 = {.sample_rate = 0.25, .sample_seed = 8};
	xr_reader *r1, *r2, *r3;
	static uint8_t s1[N / 8], s2[N / 8], s3[N / 8];

	xr_reader_opts o = {.filter = &f1};
	CHECK_RC(xr_reader_attach(name, &o, &r1), 0);
	CHECK_RC(xr_reader_attach(name, &o, &r2), 0);
	o.filter = &f2;
	CHECK_RC(xr_reader_attach(name, &o, &r3), 0);
	for (uint64_t s = 0; s < N; s++)
		put(w, s);
	xr_writer_publish(w);
	uint64_t n1 = drain(r1, &f1, N, s1), n2 = drain(r2, &f1, N, s2), n3 = drain(r3, &f2, N, s3);
	CHECK(n1 == n2 && !memcmp(s1, s2, sizeof(s1)));
	CHECK(memcmp(s1, s3, sizeof(s1)) != 0);
	/* Binomial(20000, 0.25): sd about 61; 5 sd either side. */
	double sd = sqrt(N * 0.25 * 0.75);
	CHECK(fabs((double)n1 - N * 0.25) < 5 * sd);
	CHECK(fabs((double)n3 - N * 0.25) < 5 * sd);
	check_accounting(r1, N);
	check_accounting(r3, N);
	xr_reader_detach(r1);
	xr_reader_detach(r2);
	xr_reader_detach(r3);
	xr_test_destroy(a);
	printf("filter_sample: %llu and %llu of %d at rate 0.25, identical for one seed\n",
	       (unsigned long long)n1, (unsigned long long)n3, N);
}

static void filter_bad(void)
{
	char name[64];
	xr_test_name(name, sizeof(name), "bad");
	xr_arena *a = exp_arena(name, 1 << 20, 16);
	static const xr_id_range rev[] = {{5, 4}};
	static xr_id_range many[XR_FILTER_RANGES_MAX + 1];
	const xr_filter bad[] = {
		{.games = rev, .n_games = 1},
		{.games = many, .n_games = XR_FILTER_RANGES_MAX + 1},
		{.players = NULL, .n_players = 1},
		{.sample_rate = 1.5},
		{.sample_rate = -0.1},
		{.has_reward_range = 1, .reward_min = 2, .reward_max = 1},
		{.terminal = 3},
	};
	xr_reader *r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		xr_reader_opts o = {.filter = &bad[i]};
		CHECK_RC(xr_reader_attach(name, &o, &r), -EINVAL);
	}
	xr_test_destroy(a);

	/* A filter on a stream that does not carry Experience records. */
	xr_test_name(name, sizeof(name), "bad2");
	a = xr_test_arena(name, XR_POLICY_LOSSLESS, 1 << 20, 64, XR_HUGEPAGES_PREFER);
	const xr_filter ok = {.min_turn = 1};
	xr_reader_opts o = {.filter = &ok};
	CHECK_RC(xr_reader_attach(name, &o, &r), -EINVAL);
	CHECK(strstr(xr_last_reason(), "filter") != NULL);
	xr_test_destroy(a);
	printf("filter_bad: refused\n");
}

/* ---- wakeups ---- */

struct wake_job {
	xr_arena *a;
	xr_writer *w;
	uint64_t n;
	uint32_t burst;           /* records per publish; 0 = random 1..64 */
	_Atomic uint64_t *reader_read; /* the writer paces itself on this */
	uint64_t window;          /* ...staying at most this far ahead */
	uint32_t sleep_every;     /* before one publish in this many, wait until
				   * the reader sleeps (0: never) */
	_Atomic uint32_t *sleep_gen; /* the reader's sleep word, in its page */
	uint64_t goal;            /* records the reader takes in all */
};

/* The sleep word of the only reader attached, as the engine maps its
 * page. */
static _Atomic uint32_t *only_sleep_word(xr_arena *a)
{
	for (uint32_t i = 0; i < a->lay.max_readers; i++)
		if (atomic_load(&a->peers->slot[i].state) == XR_SLOT_ACTIVE)
			return &a->peers->slot[i].page->sleep_gen;
	FAILF("no reader attached");
}

static void *writer_main(void *p)
{
	struct wake_job *j = p;
	uint64_t rng = 12345;

	for (uint64_t s = 0; s < j->n;) {
		uint32_t burst = j->burst;
		if (!burst) {
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			burst = 1 + (uint32_t)(rng >> 58);
		}
		for (uint32_t i = 0; i < burst && s < j->n; i++)
			put(j->w, s++);
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		/* The reader must fall asleep: it needs records not yet
		 * published, so it will. */
		if (j->sleep_every && (rng >> 33) % j->sleep_every == 0)
			while (atomic_load(j->sleep_gen) == 0 &&
			       atomic_load(j->reader_read) < j->goal)
				sched_yield();
		xr_writer_publish(j->w);
		/* Let the reader fall asleep now and then: wait until it has
		 * caught up to within the window. */
		while (s - atomic_load(j->reader_read) > j->window)
			sched_yield();
	}
	return NULL;
}

static void wake_per_batch(void)
{
	char name[64];
	xr_test_name(name, sizeof(name), "perbatch");
	xr_arena *a = exp_arena(name, 8 << 20, 16);
	static const xr_id_range g3[] = {{3, 3}};
	const xr_filter f = {.games = g3, .n_games = 1};
	enum { N = 40000, MIN = 8 };
	_Atomic uint64_t done = 0;
	struct wake_job j = {.a = a, .w = xr_test_writer(a), .n = N, .burst = 50,
			     .reader_read = &done, .window = N, .sleep_every = 1,
			     .goal = N / GAMES};
	xr_reader *r;
	xr_reader_opts o = {.filter = &f};
	pthread_t th;
	uint64_t got = 0, batches = 0;
	xr_batch b;

	CHECK_RC(xr_reader_attach(name, &o, &r), 0);
	CHECK(xr_reader_fd(r) >= 0);
	j.sleep_gen = only_sleep_word(a);
	CHECK_RC(pthread_create(&th, NULL, writer_main, &j), 0);
	/* Game 3 is one record in 100, so a batch of 8 spans 16 publishes. */
	while (got < N / GAMES) {
		int k = xr_reader_read(r, MIN, MIN, 2000000000, &b);
		CHECK(k == MIN);
		got += (uint64_t)k;
		atomic_store(&done, got);
		batches++;
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	pthread_join(th, NULL);
	xr_reader_stats s;
	CHECK_RC(xr_reader_stats_get(r, &s), 0);
	printf("wake_per_batch: %llu batches of %d, %llu sleeps, %llu wakeups, %llu publishes\n",
	       (unsigned long long)batches, MIN, (unsigned long long)s.sleeps,
	       (unsigned long long)s.wakeups, (unsigned long long)(N / 50));
	/* It slept for (nearly) every batch, was woken at most once per batch,
	 * and every sleep ended by a wakeup. */
	CHECK(s.wakeups <= batches);
	CHECK(s.wakeups >= batches - 1);
	CHECK_EQ(s.sleeps, s.wakeups);
	xr_reader_detach(r);
	xr_test_destroy(a);
}

static void wake_no_loss(void)
{
	char name[64];
	xr_test_name(name, sizeof(name), "noloss");
	xr_arena *a = exp_arena(name, 1 << 20, 16);
	enum { N = 200000 };
	_Atomic uint64_t done = 0;
	struct wake_job j = {.a = a, .w = xr_test_writer(a), .n = N, .burst = 0,
			     .reader_read = &done, .window = 256, .sleep_every = 8,
			     .goal = N};
	xr_reader *r;
	pthread_t th;
	uint64_t got = 0, rng = 99, next = 0;
	xr_batch b;

	CHECK_RC(xr_reader_attach(name, NULL, &r), 0);
	j.sleep_gen = only_sleep_word(a);
	CHECK_RC(pthread_create(&th, NULL, writer_main, &j), 0);
	while (got < N) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t min = 1 + (uint32_t)(rng >> 59);
		if (min > N - got)
			min = (uint32_t)(N - got);
		int k = xr_reader_read(r, min, 64, 2000000000, &b);
		CHECK(k >= (int)min);
		const xr_frame *fr = b.first;
		for (int i = 0; i < k; i++, fr = xr_frame_next(fr)) {
			xr_exp_view v;
			CHECK_RC(xr_exp_view_init(&v, xr_frame_data(fr), fr->len), 0);
			CHECK_EQ(v.f.seq, next);
			next++;
		}
		got += (uint64_t)k;
		atomic_store(&done, got);
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	pthread_join(th, NULL);
	xr_reader_stats s;
	CHECK_RC(xr_reader_stats_get(r, &s), 0);
	printf("wake_no_loss: %d records, %llu sleeps, all ended by %llu wakeups\n", N,
	       (unsigned long long)s.sleeps, (unsigned long long)s.wakeups);
	CHECK(s.sleeps > 500); /* about one publish in 8 waits for a sleep */
	CHECK_EQ(s.sleeps, s.wakeups);
	xr_reader_detach(r);
	xr_test_destroy(a);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	CHECK_RC(xr_exp_template_init(&tpl, &shape), 0);
	filter_rules();
	filter_sample();
	filter_bad();
	wake_per_batch();
	wake_no_loss();
	return 0;
}
