/* SPDX-License-Identifier: MIT */
/*
 * bench_fanout: wakeup latency against the number of sleeping readers.
 *
 * One writer (the parent) and N reader processes of one lossless stream,
 * for each N of --readers (default 1,10,100). Every reader sleeps when a
 * record is published: the writer waits until all N have taken the last
 * record, then a random gap (--gap-us, default 300-800 us; a reader spins
 * about 20 us before it sleeps), then stamps CLOCK_MONOTONIC into one
 * 16-byte record and publishes it. Each reader notes, for each record, its
 * read's return minus the stamp.
 *
 * Two figures per round: the latency over every (reader, record) pair, and
 * the latency of the last reader woken per record (the max over readers):
 * what a trainer that waits for all of its reader processes sees.
 *
 * The bound, measured in the same run by the same processes with the same
 * gaps: a bare eventfd per reader, each reader asleep in read() on its own;
 * the writer stores the stamp, then writes the N eventfds in turn. That is
 * the least the kernel (and, on a VM, the host) takes to wake N sleeping
 * processes one after another; xring's p50 and p99 are printed as ratios to
 * it. The two kinds take turns, --rounds rounds each, pooled.
 *
 * Nothing is pinned: N processes share the machine's CPUs, as trainers
 * would; on a machine with fewer CPUs than readers, the last reader's
 * latency is mostly the scheduler running the readers before it.
 *
 * Honesty: every record carries its index; each reader checks the sequence
 * and count, and says how many of its reads slept (xr_reader_stats); a
 * failed check exits 1.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xring/arena.h"
#include "xring/error.h"
#include "xring/reader.h"
#include "xring/server.h"
#include "xring/writer.h"
#include "bench_util.h"

#define MAX_READERS 200
#define MAX_POINTS 16
#define REC_BYTES 16
#define STAMPS 64          /* bare: stamps in flight (one ever is) */
#define TAKE_WAIT_NS 5000000000ull /* a reader that has not taken a record in 5 s is stuck */

enum kind { K_BARE, K_XRING, K_COUNT };
static const char *const kind_name[K_COUNT] = {"bare eventfd", "xring woken"};
static const char *const kind_key[K_COUNT] = {"bare_eventfd", "xring"};

/* Per reader, in shared memory: what it reports of a round. */
struct rstat {
	int32_t rc;               /* 0, or what ended its round early */
	uint32_t errors;          /* records out of sequence */
	uint64_t got;
	uint64_t sleeps, wakeups; /* xring rounds: xr_reader_stats deltas */
};

/* Mapped before the readers are forked. */
struct shared {
	_Alignas(64) _Atomic uint32_t gen;   /* round generation: futex word */
	uint32_t kind, n;                    /* the round: its kind, its records */
	_Alignas(64) _Atomic uint32_t ready; /* readers set up for the round */
	_Alignas(64) _Atomic uint64_t taken; /* (reader, record) pairs taken */
	_Alignas(64) _Atomic uint64_t seq;   /* bare: records published */
	uint64_t stamp[STAMPS];              /* bare: stamp of record s at s % STAMPS */
	struct rstat st[MAX_READERS];
	_Alignas(64) uint64_t lat[];         /* [reader][record], ns */
};

struct cfg {
	uint32_t readers[MAX_POINTS], n_points;
	uint32_t records, rounds;
	uint64_t gap_min_ns, gap_max_ns;
	xr_hugepages hugepages;
	bool json;
};

static int futex(_Atomic uint32_t *w, int op, uint32_t v)
{
	return (int)syscall(SYS_futex, w, op, v, NULL, NULL, 0);
}

/* ---- a reader process ---- */

static void read_round(struct shared *sh, uint32_t j, int efd, xr_reader *r)
{
	struct rstat *st = &sh->st[j];
	uint64_t *lat = sh->lat + (size_t)j * sh->n;
	uint64_t got = 0, expect = 0, next = atomic_load_explicit(&sh->seq, memory_order_acquire);
	xr_reader_stats s0 = {0}, s1;

	*st = (struct rstat){0};
	if (sh->kind == K_XRING && xr_reader_stats_get(r, &s0) < 0)
		st->rc = -EIO;
	/* Pairs with the writer's acquire load: our rstat and start are set. */
	atomic_fetch_add_explicit(&sh->ready, 1, memory_order_release);
	while (got < sh->n && !st->rc) {
		uint64_t t, s;

		if (sh->kind == K_XRING) {
			xr_batch b;
			int n = xr_reader_read(r, 1, 64, 2000000000, &b);

			t = now_ns();
			if (n <= 0) {
				st->rc = n ? n : -ETIMEDOUT;
				break;
			}
			const xr_frame *f = b.first;
			for (int i = 0; i < n; i++, f = xr_frame_next(f)) {
				const uint64_t *w = xr_frame_data(f);

				if (f->len != REC_BYTES || w[1] != expect || got >= sh->n)
					st->errors++;
				else
					lat[got] = t - w[0];
				expect = w[1] + 1;
				got++;
			}
			xr_batch_release(r, &b);
			/* After the release: the writer's next record may reuse
			 * nothing we still read. Release pairs with the writer's
			 * acquire of taken. */
			atomic_fetch_add_explicit(&sh->taken, (uint64_t)n, memory_order_release);
		} else {
			uint64_t drain;

			if (read(efd, &drain, sizeof(drain)) < 0) {
				if (errno == EINTR)
					continue;
				st->rc = -errno;
				break;
			}
			t = now_ns();
			/* Acquire pairs with the writer's release store of
			 * seq: the stamps before it are visible. */
			s = atomic_load_explicit(&sh->seq, memory_order_acquire);
			if (s - next > STAMPS) {
				st->errors++; /* a lap: the writer does not wait for us */
				st->rc = -EOVERFLOW;
				break;
			}
			uint64_t k = 0;
			for (; next != s; next++, k++, got++)
				if (got < sh->n)
					lat[got] = t - sh->stamp[next % STAMPS];
			atomic_fetch_add_explicit(&sh->taken, k, memory_order_release);
		}
	}
	if (sh->kind == K_XRING && xr_reader_stats_get(r, &s1) == 0) {
		st->sleeps = s1.sleeps - s0.sleeps;
		st->wakeups = s1.wakeups - s0.wakeups;
	}
	/* Last, and release: the writer takes got != 0 (or rc) as "this
	 * reader's round and its figures are in". */
	__atomic_store_n(&st->got, got ? got : UINT64_MAX, __ATOMIC_RELEASE);
}

/* seen: the round generation when it was forked (the last point's end). */
static void reader_process(struct shared *sh, uint32_t j, int efd, const char *name, uint32_t seen)
{
	xr_reader_opts o = {.policy = XR_POLICY_LOSSLESS, .label = "bench_fanout",
			    .wait = XR_WAIT_DEFAULT};
	xr_reader *r = NULL;
	uint64_t until = now_ns() + 20000000000ull;
	int rc;

	/* A hundred attaches at once meet the engine's request rate (256 a
	 * second for one uid): come back. */
	while ((rc = xr_reader_attach(name, &o, &r)) == -EAGAIN || rc == -EBUSY) {
		if (now_ns() > until)
			break;
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
	}
	for (;;) {
		uint32_t g;

		/* Acquire pairs with the writer's release of gen: the round's
		 * kind and n are set. */
		while ((g = atomic_load_explicit(&sh->gen, memory_order_acquire)) == seen)
			futex(&sh->gen, FUTEX_WAIT, seen);
		seen = g;
		if (sh->n == 0)
			break; /* the end */
		if (rc < 0) {
			sh->st[j] = (struct rstat){.rc = rc, .got = UINT64_MAX};
			atomic_fetch_add_explicit(&sh->ready, 1, memory_order_release);
			continue;
		}
		read_round(sh, j, efd, r);
	}
	if (r)
		xr_reader_detach(r);
	_exit(0);
}

/* ---- the writer ---- */

struct writer {
	const struct cfg *c;
	struct shared *sh;
	xr_writer *w;
	int *efd;
	uint64_t rng;
};

static uint64_t next_gap(struct writer *wr)
{
	wr->rng ^= wr->rng >> 12;
	wr->rng ^= wr->rng << 25;
	wr->rng ^= wr->rng >> 27;
	uint64_t x = (wr->rng * 0x2545F4914F6CDD1Dull) >> 11;

	return wr->c->gap_min_ns + x % (wr->c->gap_max_ns - wr->c->gap_min_ns + 1);
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Waits until `want` (reader, record) pairs are taken; -ETIMEDOUT when
 * none moves for TAKE_WAIT_NS. The writer sleeps 20 us a look: it must
 * not hold a CPU the readers it waits for need. */
static int wait_taken(struct shared *sh, uint64_t want)
{
	uint64_t last = 0, since = now_ns();

	for (;;) {
		uint64_t t = atomic_load_explicit(&sh->taken, memory_order_acquire);

		if (t >= want)
			return 0;
		if (t != last) {
			last = t;
			since = now_ns();
		} else if (now_ns() - since > TAKE_WAIT_NS) {
			return -ETIMEDOUT;
		}
		sleep_ns(20000);
	}
}

static int write_round(struct writer *wr, enum kind k, uint32_t readers)
{
	struct shared *sh = wr->sh;

	for (uint32_t i = 0; i < sh->n; i++) {
		int rc = wait_taken(sh, (uint64_t)readers * i);

		if (rc < 0)
			return rc;
		sleep_ns(next_gap(wr));
		if (k == K_XRING) {
			uint64_t *p;

			rc = xr_writer_reserve(wr->w, REC_BYTES, (void **)&p);
			if (rc < 0)
				return rc; /* never full: every record was taken */
			p[0] = now_ns();
			p[1] = i;
			xr_writer_commit(wr->w);
			xr_writer_publish(wr->w);
		} else {
			uint64_t s = atomic_load_explicit(&sh->seq, memory_order_relaxed);
			const uint64_t one = 1;

			sh->stamp[s % STAMPS] = now_ns();
			/* Pairs with the readers' acquire load of seq. */
			atomic_store_explicit(&sh->seq, s + 1, memory_order_release);
			for (uint32_t j = 0; j < readers; j++)
				if (write(wr->efd[j], &one, sizeof(one)) != sizeof(one))
					return -errno;
		}
	}
	return wait_taken(sh, (uint64_t)readers * sh->n);
}

static void start_round(struct shared *sh, enum kind k, uint32_t n)
{
	sh->kind = k;
	sh->n = n;
	atomic_store_explicit(&sh->ready, 0, memory_order_relaxed);
	atomic_store_explicit(&sh->taken, 0, memory_order_relaxed);
	/* Release pairs with the readers' acquire of gen. */
	atomic_fetch_add_explicit(&sh->gen, 1, memory_order_release);
	futex(&sh->gen, FUTEX_WAKE, INT_MAX);
}

struct result {
	uint64_t *all, *last; /* every (reader, record) latency; per record, the max */
	uint64_t n_all, n_last;
	uint64_t sleeps, wakeups, pairs;
	double p50, p99, last_p50, last_p99;
	bool ok;
};

/* One N: forks the readers, runs the rounds, joins them. 0, 1 (a data
 * check failed) or 2. */
static int run_point(const struct cfg *c, const char *name, xr_writer *w, struct shared *sh,
		     uint32_t readers, struct result *res)
{
	int efd[MAX_READERS];
	pid_t pid[MAX_READERS];
	int status = 0;
	struct writer wr = {.c = c, .sh = sh, .w = w, .efd = efd, .rng = 0x9E3779B97F4A7C15ull};

	for (uint32_t j = 0; j < readers; j++) {
		efd[j] = eventfd(0, EFD_CLOEXEC);
		if (efd[j] < 0) {
			fprintf(stderr, "bench_fanout: eventfd: %s\n", strerror(errno));
			for (uint32_t i = 0; i < j; i++)
				close(efd[i]);
			return 2;
		}
	}
	uint32_t started = 0, gen = atomic_load_explicit(&sh->gen, memory_order_relaxed);
	for (; started < readers; started++) {
		pid[started] = fork();
		if (pid[started] < 0)
			break;
		if (pid[started] == 0)
			reader_process(sh, started, efd[started], name, gen);
	}
	if (started < readers) {
		fprintf(stderr, "bench_fanout: fork: %s\n", strerror(errno));
		status = 2;
	}
	for (uint32_t k = 0; k < K_COUNT; k++) {
		res[k] = (struct result){.ok = true};
		res[k].all = malloc((size_t)c->records * readers * sizeof(uint64_t));
		res[k].last = malloc((size_t)c->records * sizeof(uint64_t));
		if (!res[k].all || !res[k].last)
			status = 2;
	}
	for (uint32_t round = 0; round < 2 * c->rounds && !status; round++) {
		enum kind k = (enum kind)((round + readers) % K_COUNT);
		struct result *r = &res[k];
		uint32_t n = c->records / c->rounds + (round / 2 < c->records % c->rounds);

		start_round(sh, k, n);
		uint64_t until = now_ns() + 30000000000ull;
		while (atomic_load_explicit(&sh->ready, memory_order_acquire) < started &&
		       now_ns() < until)
			sleep_ns(100000);
		if (atomic_load_explicit(&sh->ready, memory_order_acquire) < started) {
			fprintf(stderr, "bench_fanout: readers not set up in 30 s\n");
			status = 2;
			break;
		}
		for (uint32_t j = 0; j < readers; j++)
			if (sh->st[j].rc < 0) {
				fprintf(stderr, "bench_fanout: reader %u: %s\n", j,
					xr_strerror(sh->st[j].rc));
				status = 2;
			}
		if (status)
			break;
		int rc = write_round(&wr, k, readers);
		if (rc < 0) {
			fprintf(stderr, "bench_fanout: DATA CHECK FAILED (%u readers, %s): the "
				"readers took %" PRIu64 " of %" PRIu64 " records: %s\n", readers,
				kind_name[k], (uint64_t)atomic_load(&sh->taken),
				(uint64_t)readers * n, xr_strerror(rc));
			r->ok = false;
			status = 1;
			break;
		}
		/* Every reader's round is over once all it took is counted
		 * (its stats follow, before its next futex wait): wait for
		 * them as they note their results. */
		for (uint32_t j = 0; j < readers; j++) {
			const struct rstat *st = &sh->st[j];
			uint64_t until2 = now_ns() + 5000000000ull;

			while (!__atomic_load_n(&st->got, __ATOMIC_ACQUIRE) && now_ns() < until2)
				sleep_ns(20000);
			if (st->rc || st->errors || st->got != n) {
				fprintf(stderr, "bench_fanout: DATA CHECK FAILED (%u readers, %s, "
					"reader %u): %s, %u out of sequence, %" PRIu64
					" of %u records\n", readers, kind_name[k], j,
					st->rc ? xr_strerror(st->rc) : "ok", st->errors, st->got, n);
				r->ok = false;
				status = 1;
			}
		}
		if (status)
			break;
		for (uint32_t j = 0; j < readers; j++) {
			r->sleeps += sh->st[j].sleeps;
			r->wakeups += sh->st[j].wakeups;
		}
		r->pairs += (uint64_t)readers * n;
		for (uint32_t i = 0; i < n; i++) {
			uint64_t m = 0;

			for (uint32_t j = 0; j < readers; j++) {
				uint64_t v = sh->lat[(size_t)j * n + i];

				r->all[r->n_all++] = v;
				m = v > m ? v : m;
			}
			r->last[r->n_last++] = m;
		}
	}
	/* The end: readers leave their futex and detach. */
	sh->n = 0;
	atomic_fetch_add_explicit(&sh->gen, 1, memory_order_release);
	futex(&sh->gen, FUTEX_WAKE, INT_MAX);
	for (uint32_t j = 0; j < started; j++)
		waitpid(pid[j], NULL, 0);
	for (uint32_t j = 0; j < readers; j++)
		close(efd[j]);
	if (!status) {
		for (uint32_t k = 0; k < K_COUNT; k++) {
			struct result *r = &res[k];

			qsort(r->all, r->n_all, sizeof(uint64_t), cmp_u64);
			qsort(r->last, r->n_last, sizeof(uint64_t), cmp_u64);
			r->p50 = pct_us(r->all, r->n_all, 0.5);
			r->p99 = pct_us(r->all, r->n_all, 0.99);
			r->last_p50 = pct_us(r->last, r->n_last, 0.5);
			r->last_p99 = pct_us(r->last, r->n_last, 0.99);
		}
	}
	return status;
}

/* ---- options and output ---- */

static const char usage[] =
	"usage: bench_fanout [options]\n"
	"\n"
	"Wakeup latency against the number of sleeping readers: one publish, N reader\n"
	"processes asleep, against a bare eventfd per reader in the same run.\n"
	"\n"
	"  --readers LIST     reader counts, comma-separated, 1..200 (default 1,10,100)\n"
	"  --records N        measured records per kind and count (default 1000)\n"
	"  --rounds N         rounds per kind, the kinds taking turns (default 2)\n"
	"  --gap-us MIN,MAX   the writer's pause once every reader took the last\n"
	"                     record, uniform, in us (default 300,800)\n"
	"  --hugepages MODE   prefer|require|off (default prefer)\n"
	"  --quick            --records 200\n"
	"  --json             one JSON object on stdout\n"
	"\n"
	"Exit status: 0 measured, 1 a data check failed, 2 bad usage or setup failure.\n";

static int parse_list(const char *s, struct cfg *c)
{
	char *end;

	c->n_points = 0;
	for (;;) {
		unsigned long v = strtoul(s, &end, 10);

		if (end == s || v < 1 || v > MAX_READERS || c->n_points == MAX_POINTS)
			return -EINVAL;
		c->readers[c->n_points++] = (uint32_t)v;
		if (*end == '\0')
			return 0;
		if (*end != ',')
			return -EINVAL;
		s = end + 1;
	}
}

static void print_text(const struct cfg *c, struct result (*res)[K_COUNT])
{
	printf("%7s  %-12s %9s %9s %10s %10s %12s %9s %9s\n", "readers", "kind", "p50 us",
	       "p99 us", "last p50", "last p99", "sleeps/read", "x p50", "x p99");
	for (uint32_t i = 0; i < c->n_points; i++) {
		const struct result *b = &res[i][K_BARE];

		for (int k = 0; k < K_COUNT; k++) {
			const struct result *r = &res[i][k];

			printf("%7u  %-12s %9.1f %9.1f %10.1f %10.1f", c->readers[i], kind_name[k],
			       r->p50, r->p99, r->last_p50, r->last_p99);
			if (k == K_XRING)
				printf(" %12.2f %9.2f %9.2f\n",
				       r->pairs ? (double)r->sleeps / (double)r->pairs : 0,
				       b->p50 > 0 ? r->p50 / b->p50 : 0,
				       b->p99 > 0 ? r->p99 / b->p99 : 0);
			else
				printf(" %12s %9s %9s\n", "-", "1", "1");
		}
	}
	printf("\np50/p99: over every (reader, record); last: the reader woken last, per record;\n"
	       "sleeps/read: the xring readers' sleeps per record taken (1: each slept and was "
	       "woken); x: xring over the bare eventfd bound of the same N, this run.\n");
}

static void print_json(const struct cfg *c, const char *model, long nproc,
		       struct result (*res)[K_COUNT])
{
	printf("{\"benchmark\": \"bench_fanout\", \"cpu\": ");
	json_str(model);
	printf(", \"cpus\": %ld, \"records\": %u, \"gap_us\": [%.0f, %.0f], \"points\": [", nproc,
	       c->records, (double)c->gap_min_ns / 1e3, (double)c->gap_max_ns / 1e3);
	for (uint32_t i = 0; i < c->n_points; i++) {
		printf("%s{\"readers\": %u", i ? ", " : "", c->readers[i]);
		for (int k = 0; k < K_COUNT; k++) {
			const struct result *r = &res[i][k];

			printf(", \"%s\": {\"p50_us\": %.2f, \"p99_us\": %.2f, \"last_p50_us\": "
			       "%.2f, \"last_p99_us\": %.2f, \"samples\": %" PRIu64, kind_key[k],
			       r->p50, r->p99, r->last_p50, r->last_p99, r->n_all);
			if (k == K_XRING)
				printf(", \"sleeps\": %" PRIu64 ", \"wakeups\": %" PRIu64, r->sleeps,
				       r->wakeups);
			printf("}");
		}
		const struct result *b = &res[i][K_BARE], *x = &res[i][K_XRING];
		printf(", \"ratio_p50\": %.3f, \"ratio_p99\": %.3f, \"ratio_last_p99\": %.3f}",
		       b->p50 > 0 ? x->p50 / b->p50 : 0, b->p99 > 0 ? x->p99 / b->p99 : 0,
		       b->last_p99 > 0 ? x->last_p99 / b->last_p99 : 0);
	}
	printf("], \"data_ok\": true}\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"readers", required_argument, NULL, 'n'},
		{"records", required_argument, NULL, 'r'},
		{"rounds", required_argument, NULL, 'R'},
		{"gap-us", required_argument, NULL, 'g'},
		{"hugepages", required_argument, NULL, 'H'},
		{"quick", no_argument, NULL, 'q'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct cfg c = {.readers = {1, 10, 100}, .n_points = 3, .records = 1000, .rounds = 2,
			.gap_min_ns = 300000, .gap_max_ns = 800000, .hugepages = XR_HUGEPAGES_PREFER};
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end;
		unsigned long a, b;

		switch (o) {
		case 'n':
			if (parse_list(optarg, &c) < 0)
				goto bad;
			break;
		case 'r':
			a = strtoul(optarg, &end, 10);
			if (*end || a < 10 || a > 1000000)
				goto bad;
			c.records = (uint32_t)a;
			break;
		case 'R':
			a = strtoul(optarg, &end, 10);
			if (*end || a < 1 || a > 100)
				goto bad;
			c.rounds = (uint32_t)a;
			break;
		case 'g':
			if (sscanf(optarg, "%lu,%lu", &a, &b) != 2 || a < 50 || b < a || b > 1000000)
				goto bad;
			c.gap_min_ns = a * 1000;
			c.gap_max_ns = b * 1000;
			break;
		case 'H':
			if (!strcmp(optarg, "prefer"))
				c.hugepages = XR_HUGEPAGES_PREFER;
			else if (!strcmp(optarg, "require"))
				c.hugepages = XR_HUGEPAGES_REQUIRE;
			else if (!strcmp(optarg, "off"))
				c.hugepages = XR_HUGEPAGES_OFF;
			else
				goto bad;
			break;
		case 'q':
			c.records = 200;
			break;
		case 'j':
			c.json = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc || c.records < c.rounds)
		goto bad;

	uint32_t most = 0;
	for (uint32_t i = 0; i < c.n_points; i++)
		most = c.readers[i] > most ? c.readers[i] : most;
	size_t bytes = sizeof(struct shared) + (size_t)most * c.records * sizeof(uint64_t);
	struct shared *sh = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				 -1, 0);
	if (sh == MAP_FAILED) {
		fprintf(stderr, "bench_fanout: mmap: %s\n", strerror(errno));
		return 2;
	}

	char name[64];
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSLESS, .ring_bytes = 1u << 20,
			     .kind = XR_RECORD_OPAQUE};
	xr_arena_spec as = {.name = name, .streams = &ss, .n_streams = 1,
			    .max_readers = most + 8 > 64 ? most + 8 : 64,
			    .hugepages = c.hugepages, .numa_node = XR_NUMA_DEFAULT};
	xr_arena *a = NULL;
	xr_server *srv = NULL;
	xr_writer *w = NULL;
	int rc, status = 0;

	snprintf(name, sizeof(name), "bench-fanout-%d", (int)getpid());
	sigset_t was;
	bench_hold_signals(&was); /* until the arena is known (bench_util.h) */
	rc = xr_arena_create(&as, &a);
	if (rc < 0) {
		fprintf(stderr, "bench_fanout: xr_arena_create: %s (%s)\n", xr_strerror(rc),
			xr_arena_last_note());
		return 2;
	}
	rc = xr_server_start(a, NULL, &srv);
	if (rc == 0) {
		xr_arena_facts gf; /* a signal from here on removes them (bench_util.h) */
		xr_arena_facts_get(a, &gf);
		bench_remove_on_signal(gf.path);
		bench_remove_on_signal(xr_server_path(srv));
		rc = xr_arena_writer(a, 0, 0, &w);
	}
	bench_release_signals(&was);
	if (rc < 0) {
		fprintf(stderr, "bench_fanout: serve: %s\n", xr_strerror(rc));
		status = 2;
		goto out;
	}

	char model[128];
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);
	xr_arena_facts facts;
	cpu_model(model, sizeof(model));
	xr_arena_facts_get(a, &facts);
	if (!c.json) {
		printf("bench_fanout: %ld CPUs (%s); N reader processes of one lossless stream, "
		       "not pinned, all asleep when a record is published; %u records per kind "
		       "and N in %u rounds, kinds taking turns; a %.0f-%.0f us gap once all took "
		       "the last; backing %s\n", nproc, model, c.records, c.rounds,
		       (double)c.gap_min_ns / 1e3, (double)c.gap_max_ns / 1e3,
		       xr_backing_name(facts.backing));
		printf("bound: a bare eventfd per reader, each asleep in read(), written in turn "
		       "(same processes, same gaps, this run)\n\n");
		fflush(stdout);
	}

	static struct result res[MAX_POINTS][K_COUNT];
	for (uint32_t i = 0; i < c.n_points && !status; i++) {
		status = run_point(&c, name, w, sh, c.readers[i], res[i]);
		if (!c.json && !status)
			fprintf(stderr, "bench_fanout: %u readers done\n", c.readers[i]);
	}
	if (!status) {
		if (c.json)
			print_json(&c, model, nproc, res);
		else
			print_text(&c, res);
	}
out:
	xr_arena_close(a);
	xr_server_stop(srv);
	bench_keep_all();
	xr_arena_destroy(a);
	for (uint32_t i = 0; i < MAX_POINTS; i++)
		for (int k = 0; k < K_COUNT; k++) {
			free(res[i][k].all);
			free(res[i][k].last);
		}
	munmap(sh, bytes);
	return status;
bad:
	fputs(usage, stderr);
	return 2;
}
