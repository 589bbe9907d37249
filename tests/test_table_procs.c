/* SPDX-License-Identifier: MIT */
/*
 * Replay tables across processes (xring/table.h), an engine in this
 * process and trainers in children:
 *   - create, refuse a duplicate, a bad field, an unknown table, each with
 *     a reason
 *   - insert and sample in place: the items' bytes where the slots say
 *   - leases honoured under concurrent insertion: two trainers sample a
 *     small table (so the fifo remover is always at work) while this
 *     process inserts, and every item they hold stays unchanged until they
 *     release it
 *   - a trainer SIGKILLed holding leases: they end, within a second
 *   - a sample parked for the rate limiter is answered by another
 *     process's inserts; -EAGAIN without a timeout, -ETIMEDOUT after one
 *   - the engine stopping ends a trainer's wait with an error within a
 *     second
 */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "fault_helpers.h"
#include "xring/table.h"

enum { ITEM = 64, SMALL = 64 };

static const char *engine;

/* An item: its first word a tag, every other word derived from it, so a
 * reader can tell an item intact from one overwritten in the middle. */
static void make_item(uint64_t *w, uint64_t tag)
{
	w[0] = tag;
	for (int i = 1; i < ITEM / 8; i++)
		w[i] = tag * 0x9e3779b97f4a7c15ull + (uint64_t)i;
}

static bool item_ok(const uint64_t *w)
{
	for (int i = 1; i < ITEM / 8; i++)
		if (w[i] != w[0] * 0x9e3779b97f4a7c15ull + (uint64_t)i)
			return false;
	return true;
}

static xr_table *open_table(const char *name)
{
	xr_table *t;
	int rc = xr_table_open(engine, name, NULL, &t);

	if (rc < 0)
		FAILF("open %s: %s (%s)", name, xr_strerror(rc), xr_last_reason());
	return t;
}

static void insert_tags(xr_table *t, uint64_t first, uint32_t n)
{
	uint64_t items[256][ITEM / 8];
	double prio[256];

	CHECK(n <= 256);
	for (uint32_t i = 0; i < n; i++) {
		make_item(items[i], first + i);
		prio[i] = 1.0 + (double)((first + i) % 7);
	}
	int rc = xr_table_insert(t, items, prio, n, 5000, NULL);
	if (rc != (int)n)
		FAILF("insert: %d (%s)", rc, xr_last_reason());
}

/* A trainer that samples the small table `rounds` times, holding each
 * batch while this looks again at every item it holds. */
/* At least `rounds` rounds, and on until *stop: the inserts must run while
 * batches are held, however fast the rounds go. */
static void churn_trainer(uint32_t rounds, _Atomic uint64_t *checked, _Atomic uint32_t *stop)
{
	xr_table *t = open_table("small");
	xr_sample s;
	uint64_t keys[32], first[32];

	for (uint32_t r = 0; r < rounds || !atomic_load(stop); r++) {
		int n = xr_table_sample(t, 32, 5000, &s);
		if (n != 32)
			FAILF("sample: %d (%s)", n, xr_last_reason());
		memcpy(keys, s.keys, sizeof(keys));
		for (int i = 0; i < n; i++) {
			const uint64_t *w = xr_table_item(t, s.slots[i]);
			if (!item_ok(w))
				FAILF("a sampled item is torn");
			first[i] = w[0];
		}
		const uint32_t *slots = s.slots;
		uint32_t sl[32];
		memcpy(sl, slots, sizeof(sl));
		sched_yield(); /* let the inserts run while the batch is held */
		for (int i = 0; i < n; i++) {
			const uint64_t *w = xr_table_item(t, sl[i]);
			if (w[0] != first[i] || !item_ok(w))
				FAILF("a leased item changed under its lease: tag %llu became %llu",
				      (unsigned long long)first[i], (unsigned long long)w[0]);
		}
		CHECK_RC(xr_table_release(t, keys, 32), 32);
		atomic_fetch_add(checked, 32);
	}
	xr_table_close(t);
}

static pid_t spawn(void (*fn)(void *), void *arg)
{
	pid_t pid = fault_fork();

	if (pid == 0) {
		fn(arg);
		_exit(0);
	}
	return pid;
}

static void wait_ok(pid_t pid, const char *what)
{
	int st;

	CHECK(waitpid(pid, &st, 0) == pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAILF("%s: exit status %#x", what, st);
}

struct churn_arg {
	uint32_t rounds;
	_Atomic uint64_t *checked;
	_Atomic uint32_t *stop; /* set by the inserting parent: enough inserts seen */
};

static void churn_main(void *p)
{
	struct churn_arg *a = p;

	churn_trainer(a->rounds, a->checked, a->stop);
}

struct holder_arg {
	_Atomic uint32_t *holding;
};

static void holder_main(void *p)
{
	struct holder_arg *a = p;
	xr_table *t = open_table("replay");
	xr_sample s;

	CHECK_RC(xr_table_sample(t, 256, 1000, &s), 256);
	CHECK_RC(xr_table_sample(t, 100, 1000, &s), 100);
	atomic_store(a->holding, 1);
	for (;;)
		pause(); /* SIGKILLed here, holding 356 leases */
}

static void parked_main(void *p)
{
	_Atomic uint32_t *state = p;
	xr_table *t = open_table("limited");
	xr_sample s;

	/* Nothing yet: -EAGAIN at once; then a wait the inserts end. */
	CHECK_RC(xr_table_sample(t, 4, 0, &s), -EAGAIN);
	atomic_store(state, 1);
	int n = xr_table_sample(t, 4, 20000, &s);
	if (n != 4)
		FAILF("parked sample: %d (%s)", n, xr_last_reason());
	for (int i = 0; i < 4; i++)
		CHECK(item_ok(xr_table_item(t, s.slots[i])));
	atomic_store(state, 2);
	xr_table_close(t);
}

static void orphan_main(void *p)
{
	_Atomic uint32_t *state = p;
	xr_table *t = open_table("never");
	xr_sample s;

	atomic_store(state, 1);
	int rc = xr_table_sample(t, 1, 60000, &s); /* nothing will come */
	uint64_t waited = xr__now_ns() - atomic_load((_Atomic uint64_t *)(state + 2));
	if (rc >= 0)
		FAILF("a sample of a table with no items gave %d", rc);
	if (waited > 1 * SEC)
		FAILF("the engine's stop ended the wait after %.0f ms", fault_ms(waited));
	xr_table_close(t);
}

int main(void)
{
	struct fault_engine e;
	xr_table *t;
	xr_table_stats st;

	fault_engine_create(&e, "tables", &(struct fault_engine_opts){.games = 4, .shards = 1});
	engine = e.name;

	/* Creation, and refusals with reasons. */
	xr_table_opts o = {.capacity = 1000, .item_size = ITEM, .sampler = XR_SAMPLER_PRIORITIZED,
			   .alpha = 0.6, .beta = 0.4, .remover = XR_REMOVER_FIFO, .seed = 1};
	CHECK_RC(xr_table_create(engine, "replay", &o), 0);
	CHECK_RC(xr_table_create(engine, "replay", &o), -EEXIST);
	CHECK(strstr(xr_last_reason(), "exists"));
	xr_table_opts bad = o;
	bad.alpha = -1;
	CHECK_RC(xr_table_create(engine, "bad", &bad), -EINVAL);
	CHECK(strstr(xr_last_reason(), "alpha"));
	bad = o;
	bad.samples_per_insert = 4;
	bad.error_buffer = 1;
	CHECK_RC(xr_table_create(engine, "bad", &bad), -EINVAL);
	CHECK(strstr(xr_last_reason(), "error_buffer"));
	CHECK_RC(xr_table_create(engine, "bad name", &o), -EINVAL);
	CHECK_RC(xr_table_open(engine, "nosuch", NULL, &t), -ENOENT);
	CHECK(strstr(xr_last_reason(), "nosuch"));

	/* Insert and sample in place. */
	t = open_table("replay");
	insert_tags(t, 0, 250);
	insert_tags(t, 250, 250);
	xr_sample s;
	CHECK_RC(xr_table_sample(t, 256, 1000, &s), 256);
	for (uint32_t i = 0; i < s.n; i++) {
		const uint64_t *w = xr_table_item(t, s.slots[i]);
		CHECK(item_ok(w) && w[0] < 500);
		CHECK(s.prob[i] > 0 && s.weight[i] > 0 && s.weight[i] <= 1);
	}
	CHECK_RC(xr_table_get_stats(t, &st), 0);
	CHECK_EQ(st.size, 500);
	CHECK_EQ(st.leases, 256);
	CHECK_EQ(st.samples, 256);
	uint64_t keys[256];
	memcpy(keys, s.keys, sizeof(keys));
	CHECK_RC(xr_table_release(t, keys, 256), 256);
	CHECK_RC(xr_table_release(t, keys, 1), 0); /* not held any more */
	double pr[4] = {5, NAN, -1, 2};
	uint32_t refused;
	CHECK_RC(xr_table_update(t, keys, pr, 4, &refused), 2);
	CHECK_EQ(refused, 2);

	/* A trainer killed holding leases: they end within a second. */
	_Atomic uint32_t *sh = fault_shared(4096);
	struct holder_arg ha = {.holding = &sh[0]};
	pid_t h = spawn(holder_main, &ha);
	CHECK(FAULT_WAIT(atomic_load(&sh[0]) == 1, 10000));
	CHECK_RC(xr_table_get_stats(t, &st), 0);
	CHECK_EQ(st.leases, 356);
	CHECK_EQ(st.trainers, 2);
	uint64_t k0 = xr__now_ns();
	kill(h, SIGKILL);
	waitpid(h, NULL, 0);
	CHECK(FAULT_WAIT(xr_table_get_stats(t, &st) == 0 && st.leases == 0 && st.trainers == 1,
			 1000));
	printf("a trainer SIGKILLed holding 356 leases: released in %.1f ms\n",
	       fault_ms(xr__now_ns() - k0));

	/* Leases under concurrent insertion: a small table, two trainers. */
	xr_table_opts so = {.capacity = SMALL, .item_size = ITEM, .seed = 2};
	CHECK_RC(xr_table_create(engine, "small", &so), 0);
	xr_table *small = open_table("small");
	insert_tags(small, 1000, SMALL);
	_Atomic uint64_t *checked = (_Atomic uint64_t *)&sh[8];
	_Atomic uint32_t *stop = &sh[40];
	struct churn_arg ca = {.rounds = 2000, .checked = checked, .stop = stop};
	pid_t c1 = spawn(churn_main, &ca), c2 = spawn(churn_main, &ca);
	uint64_t tag = 2000, inserted = 0, until = xr__now_ns() + 60 * SEC;
	while ((atomic_load(checked) < 2 * 2000 * 32 || inserted <= 2000) &&
	       xr__now_ns() < until) {
		/* All held at once would leave no room: the insert then
		 * waits, and tells us so; that is fine, the trainers go on. */
		uint64_t item[ITEM / 8];
		double p = 1;
		make_item(item, tag++);
		if (xr_table_insert(small, item, &p, 1, 1000, NULL) == 1)
			inserted++;
	}
	atomic_store(stop, 1);
	wait_ok(c1, "trainer 1");
	wait_ok(c2, "trainer 2");
	CHECK(inserted > 1000);
	CHECK_RC(xr_table_get_stats(small, &st), 0);
	CHECK_EQ(st.leases, 0);
	printf("two trainers checked %llu leased items while %llu inserts replaced items\n",
	       (unsigned long long)atomic_load(checked), (unsigned long long)inserted);

	/* The rate limiter across processes: a parked sample, answered. */
	xr_table_opts lo = {.capacity = 100, .item_size = ITEM, .min_size = 4,
			    .samples_per_insert = 1, .error_buffer = 4, .seed = 3};
	CHECK_RC(xr_table_create(engine, "limited", &lo), 0);
	xr_table *lim = open_table("limited");
	_Atomic uint32_t *pstate = &sh[16];
	pid_t pk = spawn(parked_main, (void *)pstate);
	CHECK(FAULT_WAIT(atomic_load(pstate) == 1, 10000));
	insert_tags(lim, 5000, 4);
	wait_ok(pk, "the parked trainer");
	CHECK_EQ(atomic_load(pstate), 2);
	/* D = 4 - 4 = 0 = min_diff + 0: no more without inserts. */
	uint64_t w0 = xr__now_ns();
	CHECK_RC(xr_table_sample(lim, 1, 50, &s), -ETIMEDOUT);
	CHECK(xr__now_ns() - w0 >= 50 * MS);
	CHECK(strstr(xr_last_reason(), "limiter"));

	/* The engine stopping ends a parked wait at once. */
	xr_table_opts no = {.capacity = 10, .item_size = ITEM, .seed = 4};
	CHECK_RC(xr_table_create(engine, "never", &no), 0);
	_Atomic uint32_t *ostate = &sh[32];
	pid_t orphan = spawn(orphan_main, (void *)ostate);
	CHECK(FAULT_WAIT(atomic_load(ostate) == 1, 10000));
	xr_table_close(t);
	xr_table_close(small);
	xr_table_close(lim);
	*(_Atomic uint64_t *)(ostate + 2) = xr__now_ns();
	fault_engine_stop(&e);
	wait_ok(orphan, "the trainer whose engine stopped");
	printf("ok\n");
	return 0;
}
