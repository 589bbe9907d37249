/* SPDX-License-Identifier: MIT */
/*
 * Consumer groups (xr_reader_opts.group), an engine in this process playing
 * grid games on a lossless stream of two rings, members in children:
 *   - refusals: a bad name, a filter or history with a group, a lossless
 *     group of a lossy stream
 *   - every record to exactly one member, across a kill: three members
 *     split the stream; one is SIGKILLed holding three batches; the others
 *     go on, one scribbling nonsense over release words of its page's
 *     slots it does not hold before every read. In the end the records the members used (logged, then
 *     released) are, ring by ring, every seq from the group's first to its
 *     last, each once; the killed member's unreleased batches are among
 *     them, taken by the others; and the group's figures say so:
 *     redelivered == what the victim held, written == done + held +
 *     pending + dropped
 *   - a member that held records detaching gives them back too (done by
 *     this process's own member); members that ask alike get alike shares
 *   - a lossy group (lease timeout 2 s: members hold a batch 0.5 s at most):
 *     a member holding a batch too long is evicted from the group
 *     (XR_EEVICTED), and the group goes on for the others, the stream with
 *     it; another member holding 64 batches while one waits leaves the
 *     waiter its deadline's answer
 *   - a lossy group's member clock starts when it gets a piece: one handed
 *     a piece another gave back late has its whole hold time for it
 *   - a reader holding XR_HELD_MAX batches cannot arm (-ENOBUFS)
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "client/reader_priv.h"
#include "fault_helpers.h"
#include "shm/group_layout.h"
#include "util/clock.h"

#define LOG_MAX (8u << 20)

struct used {
	uint32_t ring;
	uint32_t who;
	uint64_t seq;
};

struct shared {
	_Atomic uint64_t n;           /* entries in log */
	_Atomic uint32_t victim_ready;
	_Atomic uint32_t stop;        /* members: release, detach, exit */
	uint32_t n_held;              /* the victim's held records */
	uint64_t held_seq[3 * 64];
	uint32_t held_ring[3 * 64];
	struct used log[];
};

static const char *engine;
static struct shared *sh;

static xr_reader *join(const char *group, uint32_t policy)
{
	xr_reader *r;
	xr_reader_opts o = {.group = group, .policy = policy, .label = "member"};
	int rc = xr_reader_attach(engine, &o, &r);

	if (rc < 0)
		FAILF("join %s: %s (%s)", group, xr_strerror(rc), xr_last_reason());
	return r;
}

/* Checks each record of b (a verified Experience record whose seq is its
 * frame's) and, with log, notes it as used by `who`. */
static void use(const xr_batch *b, uint32_t who, bool log)
{
	const xr_frame *f = b->first;

	for (uint32_t i = 0; i < b->count; i++, f = i < b->count ? xr_frame_next(f) : f) {
		xr_exp_view v;
		if (xr_exp_view_init(&v, xr_frame_data(f), f->len) < 0 || v.f.seq != f->seq)
			FAILF("member %u: ring %u seq %llu is not a whole record", who, b->ring,
			      (unsigned long long)f->seq);
		if (!log)
			continue;
		uint64_t k = atomic_fetch_add(&sh->n, 1);
		if (k >= LOG_MAX)
			FAILF("the log is full");
		sh->log[k] = (struct used){.ring = b->ring, .who = who, .seq = f->seq};
	}
}

/* A member in a child: reads, uses, releases until told to stop or the
 * stream ends. The victim holds three batches after ten and waits to die;
 * the scribbler writes nonsense over its release words first. */
static void member(uint32_t who, bool victim, bool scribble)
{
	xr_reader *r = join("g", 0);
	xr_batch b;
	uint64_t x = 0x9e3779b97f4a7c15ull * (who + 1);
	int batches = 0;

	for (;;) {
		if (atomic_load(&sh->stop))
			break;
		if (scribble) {
			/* Slots it never holds (it holds one batch at a
			 * time, in the lowest free slots): over its own
			 * releases, nonsense would only lose them for it. */
			struct xr_gpage *p = xr__reader_group_page(r);
			for (uint32_t s = XR_GROUP_HOLD / 2; s < XR_GROUP_HOLD; s++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				atomic_store(&p->req.rel[s], x);
			}
		}
		int n = xr_reader_read(r, 1, 64, 200 * MS, &b);
		if (n == XR_ECLOSED)
			break;
		if (n < 0)
			FAILF("member %u: read: %s (%s)", who, xr_strerror(n), xr_last_reason());
		if (n == 0)
			continue;
		if (victim && batches >= 10) {
			use(&b, who, false);
			const xr_frame *f = b.first;
			for (uint32_t i = 0; i < b.count; i++, f = xr_frame_next(f)) {
				sh->held_seq[sh->n_held] = f->seq;
				sh->held_ring[sh->n_held++] = b.ring;
			}
			if (++batches == 13) {
				atomic_store(&sh->victim_ready, 1);
				for (;;)
					pause();
			}
			continue;
		}
		use(&b, who, true);
		CHECK_RC(xr_batch_release(r, &b), 0);
		batches++;
	}
	xr_reader_detach(r);
}

static int by_ring_seq(const void *a, const void *b)
{
	const struct used *x = a, *y = b;

	if (x->ring != y->ring)
		return x->ring < y->ring ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void refusals(void)
{
	xr_reader *r;
	xr_id_range g = {0, 3};
	xr_filter f = {.games = &g, .n_games = 1};

	CHECK_RC(xr_reader_attach(engine, &(xr_reader_opts){.group = ""}, &r), -EINVAL);
	CHECK_RC(xr_reader_attach(engine,
				  &(xr_reader_opts){.group = "a-name-that-is-longer-than-31-chars"},
				  &r),
		 -EINVAL);
	CHECK_RC(xr_reader_attach(engine, &(xr_reader_opts){.group = "g", .filter = &f}, &r),
		 -EINVAL);
	CHECK_RC(xr_reader_attach(engine, &(xr_reader_opts){.group = "g", .history = 10}, &r),
		 -EINVAL);
	CHECK_RC(xr_reader_attach(engine, &(xr_reader_opts){.group = "bad/name"}, &r), -EINVAL);
	CHECK(strstr(xr_last_reason(), "group"));
}

/* A lossy group: the member that holds a batch past a quarter of the
 * lease timeout is evicted from the group, which goes on. */
static void lossy_group(void)
{
	struct fault_engine e;
	xr_batch b, held[XR_HELD_MAX];
	xr_reader_stats st;

	fault_engine_create(&e, "glossy",
			    &(struct fault_engine_opts){.games = 8, .shards = 1,
							.policy = XR_POLICY_LOSSY,
							.lease_timeout_ms = 2000});
	engine = e.name;
	fault_engine_run(&e);
	xr_reader *slow = join("lossy", 0), *fast = join("lossy", 0);
	CHECK_RC(xr_reader_stats_get(slow, &st), 0);
	CHECK_EQ(st.policy, XR_POLICY_LOSSY);
	/* The slow one holds 64 batches: the fast one's wait still ends. */
	for (int i = 0; i < XR_HELD_MAX; i++)
		CHECK(xr_reader_read(slow, 1, 8, 5 * SEC, &held[i]) > 0);
	CHECK_RC(xr_reader_read(slow, 1, 8, 0, &b), -ENOBUFS);
	uint64_t t0 = xr__now_ns();
	int n = xr_reader_read(fast, 1, 8, 200 * MS, &b);
	CHECK(n >= 0);
	if (n > 0)
		CHECK_RC(xr_batch_release(fast, &b), 0);
	CHECK(xr__now_ns() - t0 < 3 * SEC);
	/* Past 0.5 s the slow member is out, and the group goes on: the
	 * fast one reads on, without an error, for as long again. */
	uint64_t got = 0, until = xr__now_ns() + 1500 * MS;
	while (xr__now_ns() < until) {
		int rc = xr_reader_read(fast, 1, 8, 100 * MS, &b);
		if (rc < 0)
			FAILF("the member that releases: %s", xr_strerror(rc));
		if (rc > 0) {
			got += (uint64_t)rc;
			CHECK_RC(xr_batch_release(fast, &b), 0);
		}
	}
	CHECK(got > 0);
	/* Its releases come too late to count (the engine took the batches
	 * back); its next request is told. */
	for (int i = 0; i < XR_HELD_MAX; i++)
		CHECK_RC(xr_batch_release(slow, &held[i]), 0);
	CHECK_RC(xr_reader_read(slow, 1, 8, 0, &b), XR_EEVICTED);
	CHECK_RC(xr_reader_stats_get(fast, &st), 0);
	CHECK_EQ(st.members, 1);
	CHECK(st.dropped + st.redelivered > 0);
	xr_reader_detach(slow);
	xr_reader_detach(fast);
	fault_engine_stop(&e);
}

/* A lossy group's member clock is its grant's: a member handed a piece
 * another gave back, of a batch near its group's hold time, has a whole
 * hold time to release it (lease timeout 8 s: 2 s each). */
static void lossy_late_piece(void)
{
	struct fault_engine e;
	xr_batch a, b;

	fault_engine_create(&e, "glate",
			    &(struct fault_engine_opts){.games = 8, .shards = 1,
							.policy = XR_POLICY_LOSSY,
							.lease_timeout_ms = 8000});
	engine = e.name;
	fault_engine_run(&e);
	xr_reader *first = join("late", 0), *second = join("late", 0);
	CHECK(xr_reader_read(first, 1, 8, 5 * SEC, &a) > 0);
	uint64_t got_at = xr__now_ns();
	uint32_t ring = a.ring;
	uint64_t seq = a.first_seq;
	/* Held for half the hold time, then given back by leaving. */
	xr__sleep_ns(1000 * MS);
	xr_reader_detach(first);
	/* The second takes it (after fresh pieces it releases at once, if
	 * it asks before the engine has seen the first leave). */
	for (;;) {
		CHECK(xr__now_ns() - got_at < 1800 * MS);
		int n = xr_reader_read(second, 1, 8, 100 * MS, &b);
		CHECK(n >= 0);
		if (n > 0 && b.ring == ring && b.first_seq == seq)
			break;
		if (n > 0)
			CHECK_RC(xr_batch_release(second, &b), 0);
	}
	/* Held past the batch's hold time, within its own. */
	xr__sleep_ns(1500 * MS);
	CHECK(xr__now_ns() - got_at > 2000 * MS);
	CHECK_RC(xr_batch_release(second, &b), 0);
	int n = xr_reader_read(second, 1, 8, 1 * SEC, &b);
	if (n < 0)
		FAILF("a member that held a late piece within its own time: %s", xr_strerror(n));
	if (n > 0)
		CHECK_RC(xr_batch_release(second, &b), 0);
	xr_reader_detach(second);
	fault_engine_stop(&e);
}

int main(void)
{
	struct fault_engine e;
	pid_t kids[3];
	xr_reader_stats st;

	lossy_group();
	lossy_late_piece();
	/* A plain reader with XR_HELD_MAX batches: nothing to arm with. */
	{
		struct fault_engine e2;
		xr_reader *r;
		xr_batch bs[XR_HELD_MAX];
		xr_id_range g = {0, 1000};
		xr_filter f = {.games = &g, .n_games = 1};
		fault_engine_create(&e2, "gheld", &(struct fault_engine_opts){.games = 4, .shards = 1});
		fault_engine_run(&e2);
		CHECK_RC(xr_reader_attach(e2.name, &(xr_reader_opts){.filter = &f}, &r), 0);
		for (int i = 0; i < XR_HELD_MAX; i++)
			CHECK(xr_reader_read(r, 1, 4, 5 * SEC, &bs[i]) > 0);
		CHECK_RC(xr_reader_arm(r, 1), -ENOBUFS);
		xr_reader_detach(r);
		fault_engine_stop(&e2);
	}
	sh = fault_shared(sizeof(*sh) + LOG_MAX * sizeof(struct used));
	/* Rings large enough that the batch this process holds until its
	 * detach stops no writer before the victim has its batches. */
	fault_engine_create(&e, "groups",
			    &(struct fault_engine_opts){.games = 16, .shards = 2, .ring_bytes = 16u << 20});
	engine = e.name;
	fault_engine_run(&e);
	refusals();

	/* This process's member first: it makes the group (lossless, as the
	 * stream), and takes one batch it will not use: detaching gives it
	 * back, and another member uses it. */
	xr_reader *mine = join("g", 0);
	xr_batch b;
	int n = xr_reader_read(mine, 1, 16, 5 * SEC, &b);
	if (n <= 0)
		FAILF("first read of a group: %d (%s)", n, xr_last_reason());
	uint32_t first_ring = b.ring;
	uint64_t first_seq = b.first_seq;
	CHECK_RC(xr_reader_stats_get(mine, &st), 0);
	CHECK_EQ(st.members, 1);
	CHECK_EQ(st.group_held, (uint64_t)n);
	CHECK_EQ(st.policy, XR_POLICY_LOSSLESS);

	for (uint32_t i = 0; i < 3; i++) {
		kids[i] = fault_fork();
		if (kids[i] == 0) {
			member(i, i == 0, i == 2);
			_exit(0);
		}
	}
	if (!FAULT_WAIT(atomic_load(&sh->victim_ready), 30000))
		FAILF("the victim member never held its three batches");
	/* The other two join in their time. */
	if (!FAULT_WAIT(xr_reader_stats_get(mine, &st) == 0 && st.members == 4, 10000))
		FAILF("the group has %u members, not 4", st.members);
	CHECK(st.group_held >= sh->n_held);
	kill(kids[0], SIGKILL);
	CHECK(waitpid(kids[0], NULL, 0) == kids[0]);
	/* Ours back too: detaching with a batch held. */
	xr_reader_detach(mine);
	mine = join("g", 0);
	uint64_t at_kill = atomic_load(&sh->n);
	if (!FAULT_WAIT(atomic_load(&sh->n) >= at_kill + 20000, 60000))
		FAILF("the members left took %llu records in 60 s after the kill",
		      (unsigned long long)(atomic_load(&sh->n) - at_kill));
	/* The ends of the victim's connection and of ours reach the engine
	 * in their time: looked at until they have. */
	if (!FAULT_WAIT(xr_reader_stats_get(mine, &st) == 0 && st.members == 3, 10000))
		FAILF("the group has %u members, not 3, after a kill and a detach", st.members);
	CHECK_EQ(st.redelivered, (uint64_t)sh->n_held + (uint64_t)n);

	/* The games stop: the members take what the group still has, this
	 * process's too, until the group's figures say nothing is left. */
	xr_host_stop(e.h);
	CHECK(pthread_join(e.th, NULL) == 0);
	CHECK_RC(e.rc, 0);
	e.running = false;
	uint64_t until = xr__now_ns() + 60 * SEC;
	for (;;) {
		int m = xr_reader_read(mine, 1, 64, 100 * MS, &b);
		if (m < 0)
			FAILF("our member's read after the games stopped: %s", xr_strerror(m));
		if (m > 0) {
			use(&b, 9, true);
			CHECK_RC(xr_batch_release(mine, &b), 0);
			continue;
		}
		CHECK_RC(xr_reader_stats_get(mine, &st), 0);
		if (st.pending == 0 && st.group_held == 0)
			break;
		if (xr__now_ns() > until)
			FAILF("the group still has %llu records pending, %llu held, a minute after "
			      "the games stopped",
			      (unsigned long long)st.pending, (unsigned long long)st.group_held);
	}
	atomic_store(&sh->stop, 1);
	for (uint32_t i = 1; i < 3; i++) {
		int status;
		CHECK(waitpid(kids[i], &status, 0) == kids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			FAILF("member %u ended with status %#x", i, status);
	}
	CHECK_RC(xr_reader_stats_get(mine, &st), 0);

	/* Every record once, ring by ring, from the group's first to last. */
	uint64_t total = atomic_load(&sh->n);
	qsort(sh->log, total, sizeof(struct used), by_ring_seq);
	uint64_t per_ring[2] = {0, 0};
	for (uint64_t i = 0; i < total; i++) {
		const struct used *u = &sh->log[i];
		CHECK(u->ring < 2);
		per_ring[u->ring]++;
		if (i && sh->log[i - 1].ring == u->ring && sh->log[i - 1].seq == u->seq)
			FAILF("ring %u seq %llu used twice (members %u and %u)", u->ring,
			      (unsigned long long)u->seq, sh->log[i - 1].who, u->who);
		if (i && sh->log[i - 1].ring == u->ring && sh->log[i - 1].seq + 1 != u->seq)
			FAILF("ring %u: seqs %llu to %llu reached no member", u->ring,
			      (unsigned long long)sh->log[i - 1].seq + 1,
			      (unsigned long long)u->seq - 1);
	}
	/* Both shards' rings fed the group (seen once not to, under ASan with
	 * both CPUs loaded: the figures say how it stood then). */
	if (!per_ring[0] || !per_ring[1])
		FAILF("members used %llu records of ring 0 and %llu of ring 1 (group: written "
		      "%llu, done %llu, held %llu, pending %llu, dropped %llu, redelivered %llu)",
		      (unsigned long long)per_ring[0], (unsigned long long)per_ring[1],
		      (unsigned long long)st.written, (unsigned long long)st.group_done,
		      (unsigned long long)st.group_held, (unsigned long long)st.pending,
		      (unsigned long long)st.dropped, (unsigned long long)st.redelivered);
	/* The two members that read to the end asked alike: neither starved. */
	uint64_t by[10] = {0};
	for (uint64_t i = 0; i < total; i++)
		by[sh->log[i].who]++;
	if (by[1] * 20 < total || by[2] * 20 < total)
		FAILF("members 1 and 2 took %llu and %llu of %llu records: one starved",
		      (unsigned long long)by[1], (unsigned long long)by[2], (unsigned long long)total);
	/* The first batch this process took, given back at its detach, was
	 * used by someone. */
	bool found = false;
	for (uint64_t i = 0; i < total; i++)
		found |= sh->log[i].ring == first_ring && sh->log[i].seq == first_seq;
	CHECK(found);
	/* And so was each record the victim held when it died. */
	for (uint32_t j = 0; j < sh->n_held; j++) {
		struct used key = {.ring = sh->held_ring[j], .seq = sh->held_seq[j]};
		const struct used *u = bsearch(&key, sh->log, total, sizeof(struct used),
					       by_ring_seq);
		if (!u)
			FAILF("ring %u seq %llu, held by the killed member, reached no other",
			      key.ring, (unsigned long long)key.seq);
		CHECK(u->who != 0);
	}
	/* The group's own account: all of it used, nothing held or lost. */
	CHECK_EQ(st.group_held, 0);
	CHECK_EQ(st.pending, 0);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(st.written, st.group_done);
	CHECK_EQ(st.group_done, total);
	printf("groups: %llu records over 2 rings to 4 members, each once; %u held by a killed "
	       "member and %d by a detached one went to others\n",
	       (unsigned long long)total, sh->n_held, n);
	/* The engine's stop ends the group: a member's next read says so. */
	xr_host_destroy(e.h);
	CHECK_RC(xr_reader_read(mine, 1, 64, 5 * SEC, &b), XR_ECLOSED);
	xr_reader_detach(mine);
	return 0;
}
