/* SPDX-License-Identifier: MIT */
/*
 * bench_wakeup: how long a record takes from the writer's publish to the
 * return of the reader's xr_reader_read(), when the reader has to be woken
 * (a WAKE message on its control connection), and when it spins.
 *
 * Two processes: the reader is forked first, before anything but the
 * benchmark's own shared pages exists (no arena, no thread), and pinned to the
 * second allowed CPU; the writer (the parent) pins itself to the first, then
 * creates an arena with one lossless stream of 16-byte opaque records and
 * serves its control socket. For each record the writer takes CLOCK_MONOTONIC,
 * stores it in the record, commits and publishes it at once, then busy-waits a
 * random gap (default 50-500 us, uniform) before the next: long enough for a
 * sleeping reader, which spins about 20 us, to fall asleep every time. The
 * reader asks for xr_reader_read(r, 1, 64, 1 s) and records, for each record
 * it gets, the time after the call returned minus the record's stamp.
 *
 * Modes, each for --records records:
 *   woken    xring, XR_WAIT_DEFAULT: spins, then sleeps on its control socket,
 *            on which the writer's publish sends a WAKE (MSG_DONTWAIT) once the
 *            batch (one record) is there
 *   spin     xring, XR_WAIT_SPIN: never sleeps
 * and the bounds they are measured against, in the same run, between the same
 * two processes on the same CPUs, with the same gaps:
 *   bare eventfd  the writer stores the stamp in shared memory and writes an
 *                 eventfd; the reader sits in read() on it: what the kernel
 *                 (and, on a VM, the host) takes to wake a sleeping process
 *   bare spin     the reader spins on a shared-memory sequence word: what a
 *                 cache line takes to move from one CPU to the other
 * xring's p50 and p99 are printed as a ratio to the bound of their kind. The
 * machine changes from minute to minute (perf/probe_coherence), so the
 * records of each mode are split into --rounds rounds and the four modes take
 * turns, in a rotating order; percentiles are over the pooled rounds, and each
 * round's p50/p99 are printed too. The first --warmup records of a round are
 * not counted.
 *
 * Also printed: the time the writer spent in the publish (stamp to return,
 * which includes the wake send and the wakeup it starts), and the reader's
 * own counters (xr_reader_stats_get): sleeps, and wakeups by the engine, per
 * record. Each read returns one record here, so wakeups <= records shows that
 * a reader is woken once per batch, not more; sleeps == wakeups, that no
 * sleep ended by its timeout (a lost wakeup). The library's own wakeup
 * latency histogram (wake_ns_p50/p99, from the publish to the reader running
 * again) is printed per round beside what this program measures.
 *
 * Another busy process on the machine takes our CPUs now and then, and a
 * round it ran in measures that process. So each round also reports how much
 * of our two CPUs other tasks took: the writer's schedstat run delay (it never
 * sleeps in a round) plus the reader's CPU's time that was neither idle
 * (cpuidle's counters) nor the reader's (getrusage). Rounds where that stays
 * small (QUIET_*) are pooled again as "quiet rounds".
 *
 * Honesty: every record carries its index; the reader checks the sequence and
 * count. A failed check exits 1; a missed target still exits 0.
 *
 * Target (issue 3): a woken reader's p99 at most 50 us.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xring/arena.h"
#include "xring/server.h"
#include "xring/error.h"
#include "xring/reader.h"
#include "xring/types.h"
#include "xring/writer.h"
#include "bench_util.h"

#define TARGET_P99_NS 50000ull
#define MAX_ROUNDS 64
#define STAMPS 4096 /* bare modes: stamps in flight, far more than ever are */
#define REC_BYTES 16
/* A round is quiet when other tasks took at most 2 ms (a round's start and
 * end) plus 1% of its time from our two CPUs. In the eventfd modes, what each
 * wakeup costs the reader's CPU besides the reader (interrupt, leaving idle,
 * switching) is neither idle time nor the reader's: the least any eventfd
 * round shows per record is taken as that cost and allowed for. */
#define QUIET_SHARE 0.01
#define QUIET_MS 2.0

enum mode { M_BARE_EFD, M_XR_EFD, M_BARE_SPIN, M_XR_SPIN, M_COUNT, M_QUIT = M_COUNT };

static const char *const mode_name[M_COUNT] = {
	[M_BARE_EFD] = "bare eventfd",
	[M_XR_EFD] = "xring woken",
	[M_BARE_SPIN] = "bare spin",
	[M_XR_SPIN] = "xring spin",
};
static const char *const mode_key[M_COUNT] = {
	[M_BARE_EFD] = "bare_eventfd",
	[M_XR_EFD] = "xring_woken",
	[M_BARE_SPIN] = "bare_spin",
	[M_XR_SPIN] = "xring_spin",
};

struct cfg {
	uint32_t records;      /* measured records per mode */
	uint32_t rounds;
	uint32_t warmup;       /* records per round not counted */
	uint64_t gap_min_ns, gap_max_ns;
	xr_hugepages hugepages;
	bool pin;
	bool json;
	int cpu_writer, cpu_reader; /* -1: not pinned */
};

/* Shared by both processes, mapped before the fork. */
struct shared {
	_Alignas(64) _Atomic uint64_t seq;      /* bare modes: records published */
	_Alignas(64) uint64_t stamp[STAMPS];    /* bare modes: stamp of record s at s % STAMPS */
	_Alignas(64) uint64_t lat[];            /* the reader's samples of one round, ns */
};

/* What the writer asks of the reader process, through a pipe. */
struct cmd {
	uint32_t mode;
	uint32_t n;            /* records in the round, warm-up included */
	uint32_t warmup;
	char name[64];         /* xring modes: the engine to attach to */
};

/* What the reader process answers when the round is over. */
struct reply {
	int32_t rc;            /* 0, or what ended the round early */
	uint32_t errors;       /* records out of sequence */
	uint64_t got;          /* samples in shared->lat (records after warm-up) */
	uint64_t batches;      /* reads that returned records, after warm-up */
	uint64_t sleeps, wakeups; /* xr_reader_stats, after warm-up */
	uint64_t lib_p50, lib_p99; /* xr_reader_stats' own wakeup latency, ns,
				    * since attach (warm-up included) */
	uint64_t cpu_ns;       /* CPU time the reader process used */
};

/* One mode's pooled result. */
struct result {
	uint64_t *lat;         /* every round's samples, ns */
	uint64_t *pub;         /* the writer's stamp-to-publish-return, ns */
	uint64_t n, n_pub;
	uint32_t round_off[MAX_ROUNDS + 1];
	double p50, p99, p999, max, mean;        /* us */
	double pub_p50, pub_p99;                 /* us */
	double round_p50[MAX_ROUNDS], round_p99[MAX_ROUNDS];
	double lib_p50[MAX_ROUNDS], lib_p99[MAX_ROUNDS]; /* us, per round */
	uint64_t batches, sleeps, wakeups;
	double round_others[MAX_ROUNDS]; /* ms of our two CPUs other tasks took */
	double round_ms[MAX_ROUNDS];     /* wall time of the round */
	uint32_t round_records[MAX_ROUNDS]; /* records in the round, warm-up included */
	bool quiet[MAX_ROUNDS];
	double q_p50, q_p99, q_p999, q_max; /* us, over the quiet rounds */
	uint64_t q_n;
	uint32_t q_rounds;
	bool ok;
};

/* How long this thread has waited runnable for a CPU, ns (schedstat). */
static uint64_t run_delay_ns(void)
{
	FILE *f = fopen("/proc/thread-self/schedstat", "re");
	unsigned long long run = 0, wait = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &run, &wait) != 2)
		wait = 0;
	fclose(f);
	return wait;
}

/* Time one CPU has spent idle so far, ns (cpuidle's per-state counters,
 * exact where /proc/stat counts ticks); -1 if unknown. */
static int64_t idle_ns(int cpu)
{
	int64_t sum = 0;
	int st = 0;

	for (; cpu >= 0; st++) {
		char path[96];
		unsigned long long us;
		FILE *f;

		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/cpuidle/state%d/time",
			 cpu, st);
		f = fopen(path, "re");
		if (!f)
			break;
		if (fscanf(f, "%llu", &us) == 1)
			sum += (int64_t)us * 1000;
		fclose(f);
	}
	return st > 0 ? sum : -1;
}

static int64_t tv_ns(const struct timeval *tv)
{
	return (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000;
}

/* ---- the reader process ---- */

struct reader_ctx {
	struct shared *sh;
	int efd;               /* the bare eventfd */
	int cmd_fd, reply_fd;
};

/* xring: one round through the library, in mode XR_WAIT_DEFAULT or _SPIN. */
static void read_xring(struct reader_ctx *rc, const struct cmd *c, struct reply *rep)
{
	xr_reader_opts o = {.policy = XR_POLICY_LOSSLESS, .label = "bench_wakeup",
			    .wait = c->mode == M_XR_SPIN ? XR_WAIT_SPIN : XR_WAIT_DEFAULT};
	xr_reader_stats s0 = {0}, s1;
	bool counting = false;
	uint64_t got = 0, expect = 0;
	uint32_t timeouts = 0;
	xr_reader *r;
	int32_t ok = xr_reader_attach(c->name, &o, &r);

	write_all(rc->reply_fd, &ok, sizeof(ok)); /* the start barrier */
	if (ok < 0) {
		rep->rc = ok;
		return;
	}
	while (got < c->n) {
		/* Warm-up over: count the sleeps and wakeups from here. */
		if (!counting && got >= c->warmup)
			counting = xr_reader_stats_get(r, &s0) == 0;
		xr_batch b;
		int n = xr_reader_read(r, 1, 64, 1000000000, &b);
		uint64_t t = now_ns();

		if (n == 0 && ++timeouts < 3)
			continue;
		if (n <= 0) {
			rep->rc = n ? n : -ETIMEDOUT;
			break;
		}
		const xr_frame *f = b.first;
		for (int i = 0; i < n; i++, f = xr_frame_next(f)) {
			const uint64_t *w = xr_frame_data(f);

			if (f->len != REC_BYTES || w[1] != expect)
				rep->errors++;
			expect = w[1] + 1;
			if (got >= c->warmup)
				rc->sh->lat[got - c->warmup] = t - w[0];
			got++;
		}
		xr_batch_release(r, &b);
		if (counting)
			rep->batches++;
	}
	rep->got = got > c->warmup ? got - c->warmup : 0;
	if (xr_reader_stats_get(r, &s1) == 0) {
		rep->sleeps = s1.sleeps - s0.sleeps;
		rep->wakeups = s1.wakeups - s0.wakeups;
		rep->lib_p50 = s1.wake_ns_p50;
		rep->lib_p99 = s1.wake_ns_p99;
	}
	xr_reader_detach(r);
}

/* The bounds: the same round with no library, asleep in read(efd) or
 * spinning on the sequence word. */
static void read_bare(struct reader_ctx *rc, const struct cmd *c, struct reply *rep)
{
	struct shared *sh = rc->sh;
	uint64_t got = 0, drain;
	int32_t ok = 0;

	/* Whatever an earlier round left in the counter. */
	struct pollfd pf = {.fd = rc->efd, .events = POLLIN};
	if (c->mode == M_BARE_EFD && poll(&pf, 1, 0) == 1 &&
	    read(rc->efd, &drain, sizeof(drain)) < 0)
		rep->rc = -errno;
	uint64_t next = atomic_load_explicit(&sh->seq, memory_order_acquire);
	const uint64_t start = next;

	write_all(rc->reply_fd, &ok, sizeof(ok));
	while (got < c->n) {
		uint64_t s;

		if (c->mode == M_BARE_EFD) {
			if (read(rc->efd, &drain, sizeof(drain)) < 0) {
				if (errno == EINTR)
					continue;
				rep->rc = -errno;
				break;
			}
			s = atomic_load_explicit(&sh->seq, memory_order_acquire);
		} else {
			while ((s = atomic_load_explicit(&sh->seq, memory_order_acquire)) == next)
				cpu_relax();
		}
		uint64_t t = now_ns();
		if (s - next > STAMPS) {
			rep->errors++;
			rep->rc = -EOVERFLOW;
			break;
		}
		if (s != next && got >= c->warmup)
			rep->batches++;
		for (; next != s && got < c->n; next++, got++)
			if (got >= c->warmup)
				sh->lat[got - c->warmup] = t - sh->stamp[next % STAMPS];
	}
	if (next - start != got)
		rep->errors++;
	rep->got = got > c->warmup ? got - c->warmup : 0;
}

static void reader_process(struct reader_ctx *rc)
{
	struct cmd c;

	while (read_all(rc->cmd_fd, &c, sizeof(c)) == 0 && c.mode != M_QUIT) {
		struct reply rep = {0};
		struct rusage ru0, ru1;

		getrusage(RUSAGE_SELF, &ru0);
		if (c.mode == M_XR_EFD || c.mode == M_XR_SPIN)
			read_xring(rc, &c, &rep);
		else
			read_bare(rc, &c, &rep);
		getrusage(RUSAGE_SELF, &ru1);
		rep.cpu_ns = (uint64_t)(tv_ns(&ru1.ru_utime) + tv_ns(&ru1.ru_stime) -
					tv_ns(&ru0.ru_utime) - tv_ns(&ru0.ru_stime));
		if (write_all(rc->reply_fd, &rep, sizeof(rep)) < 0)
			break;
	}
	_exit(0);
}

/* ---- the writer ---- */

struct writer_ctx {
	const struct cfg *c;
	struct shared *sh;
	int efd;
	xr_writer *w;
	uint64_t rng;
	int cmd_fd, reply_fd;
};

static uint64_t next_gap(struct writer_ctx *wc)
{
	/* xorshift64*: uniform enough for gaps */
	wc->rng ^= wc->rng >> 12;
	wc->rng ^= wc->rng << 25;
	wc->rng ^= wc->rng >> 27;
	uint64_t x = (wc->rng * 0x2545F4914F6CDD1Dull) >> 11;
	uint64_t span = wc->c->gap_max_ns - wc->c->gap_min_ns + 1;

	return wc->c->gap_min_ns + x % span;
}

/* Writes one round of n records in mode m, the first `warm` not timed. */
static int write_round(struct writer_ctx *wc, enum mode m, uint32_t n, uint32_t warm,
		       uint64_t *pub)
{
	uint64_t idx = 0, until = now_ns() + next_gap(wc);

	for (uint32_t i = 0; i < n; i++) {
		uint64_t t, t1;

		while (now_ns() < until)
			cpu_relax();
		if (m == M_XR_EFD || m == M_XR_SPIN) {
			uint64_t *p;
			int rc;

			while ((rc = xr_writer_reserve(wc->w, REC_BYTES, (void **)&p)) == -EAGAIN)
				if ((rc = xr_writer_wait(wc->w, REC_BYTES, 1000000000)) < 0)
					return rc;
			if (rc < 0)
				return rc;
			t = now_ns();
			p[0] = t;
			p[1] = idx++;
			xr_writer_commit(wc->w);
			xr_writer_publish(wc->w);
			t1 = now_ns();
		} else {
			uint64_t s = atomic_load_explicit(&wc->sh->seq, memory_order_relaxed);
			const uint64_t one = 1;

			t = now_ns();
			wc->sh->stamp[s % STAMPS] = t;
			/* Pairs with the reader's acquire load of seq. */
			atomic_store_explicit(&wc->sh->seq, s + 1, memory_order_release);
			if (m == M_BARE_EFD && write(wc->efd, &one, sizeof(one)) != sizeof(one))
				return -errno;
			t1 = now_ns();
		}
		if (i >= warm)
			pub[i - warm] = t1 - t;
		until = t1 + next_gap(wc);
	}
	return 0;
}

static bool is_efd(int m)
{
	return m == M_BARE_EFD || m == M_XR_EFD;
}

/* The reader's CPU's time per wakeup that is neither idle nor the reader's,
 * ms: the least of any eventfd round (the quietest). */
static double wake_kernel_ms(const struct result *res, uint32_t rounds)
{
	double least = -1;

	for (int m = 0; m < M_COUNT; m++)
		for (uint32_t k = 0; is_efd(m) && k < rounds; k++) {
			double per = res[m].round_others[k] / res[m].round_records[k];
			if (least < 0 || per < least)
				least = per;
		}
	return least > 0 ? least : 0;
}

static void summarise(struct result *r, int m, uint32_t rounds, double wake_ms)
{
	uint64_t *q = malloc((r->n ? r->n : 1) * sizeof(*q));
	double sum = 0;

	for (uint32_t k = 0; k < rounds; k++) {
		uint64_t *v = r->lat + r->round_off[k];
		uint64_t n = r->round_off[k + 1] - r->round_off[k];

		qsort(v, n, sizeof(*v), cmp_u64);
		r->round_p50[k] = pct_us(v, n, 0.50);
		r->round_p99[k] = pct_us(v, n, 0.99);
		double allow = QUIET_MS + QUIET_SHARE * r->round_ms[k];
		if (is_efd(m))
			allow += wake_ms * r->round_records[k];
		r->quiet[k] = r->round_others[k] <= allow;
		if (r->quiet[k] && q) {
			memcpy(q + r->q_n, v, n * sizeof(*v));
			r->q_n += n;
			r->q_rounds++;
		}
	}
	if (q) {
		qsort(q, r->q_n, sizeof(*q), cmp_u64);
		r->q_p50 = pct_us(q, r->q_n, 0.50);
		r->q_p99 = pct_us(q, r->q_n, 0.99);
		r->q_p999 = pct_us(q, r->q_n, 0.999);
		r->q_max = r->q_n ? (double)q[r->q_n - 1] / 1e3 : 0;
		free(q);
	}
	for (uint64_t i = 0; i < r->n; i++)
		sum += (double)r->lat[i];
	qsort(r->lat, r->n, sizeof(*r->lat), cmp_u64);
	qsort(r->pub, r->n_pub, sizeof(*r->pub), cmp_u64);
	r->p50 = pct_us(r->lat, r->n, 0.50);
	r->p99 = pct_us(r->lat, r->n, 0.99);
	r->p999 = pct_us(r->lat, r->n, 0.999);
	r->max = r->n ? (double)r->lat[r->n - 1] / 1e3 : 0;
	r->mean = r->n ? sum / (double)r->n / 1e3 : 0;
	r->pub_p50 = pct_us(r->pub, r->n_pub, 0.50);
	r->pub_p99 = pct_us(r->pub, r->n_pub, 0.99);
}

/* ---- options and output ---- */

static const char usage[] =
	"usage: bench_wakeup [options]\n"
	"\n"
	"Latency from the writer's publish to the return of the reader's read, reader\n"
	"asleep until woken or spinning, writer and reader in two processes on two\n"
	"CPUs; against a bare eventfd and a bare spinning reader between the same two\n"
	"processes.\n"
	"\n"
	"  --records N        measured records per mode (default 20000)\n"
	"  --rounds N         rounds per mode, the modes taking turns (default 10)\n"
	"  --warmup N         records per round not counted (default 50)\n"
	"  --gap-us MIN,MAX   the writer's pause between records, uniform, in us\n"
	"                     (default 50,500)\n"
	"  --hugepages MODE   prefer|require|off (default prefer)\n"
	"  --no-pin           do not pin writer and reader to CPUs\n"
	"  --idle-poll        hold /dev/cpu_dma_latency at 0 for the whole run (every\n"
	"                     mode): idle CPUs poll instead of halting, as a reader\n"
	"                     with XR_WAIT_IDLE_POLL asks (root)\n"
	"  --json             one JSON object on stdout\n"
	"\n"
	"Exit status: 0 measured (target met or not), 1 a data check failed,\n"
	"2 bad usage or setup failure.\n";

/* First line of a sysfs file, or "-". */
static void sysfs_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	snprintf(buf, len, "-");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

static const char *met(double p99_us)
{
	return p99_us * 1e3 <= (double)TARGET_P99_NS ? "true" : "false";
}

static double ratio(double x, double bound)
{
	return bound > 0 ? x / bound : 0;
}

static void print_json(const struct cfg *c, const char *model, long nproc, const char *kernel,
		       const char *idle, const char *poll_ns, const xr_arena_facts *f,
		       const struct result *res, double wake_ms, bool data_ok)
{
	const struct result *xe = &res[M_XR_EFD];

	printf("{\"bench\":\"wakeup\",\"machine\":{\"nproc\":%ld,\"cpu\":", nproc);
	json_str(model);
	printf(",\"kernel\":");
	json_str(kernel);
	printf(",\"cpuidle\":");
	json_str(idle);
	printf(",\"guest_halt_poll_ns\":");
	json_str(poll_ns);
	printf("},\"config\":{\"records\":%u,\"rounds\":%u,\"warmup\":%u,\"gap_us_min\":%.1f,"
	       "\"gap_us_max\":%.1f,\"read_min\":1,\"read_max\":64,\"max_wait_ns\":1000000000,"
	       "\"cpu_writer\":%d,\"cpu_reader\":%d},\"backing\":{\"kind\":",
	       c->records, c->rounds, c->warmup, (double)c->gap_min_ns / 1e3,
	       (double)c->gap_max_ns / 1e3, c->cpu_writer, c->cpu_reader);
	json_str(xr_backing_name(f->backing));
	printf(",\"page_size\":%" PRIu64 "},\"results\":[", f->page_size);
	for (int m = 0; m < M_COUNT; m++) {
		const struct result *r = &res[m];
		const struct result *bound = &res[m == M_XR_EFD ? M_BARE_EFD : M_BARE_SPIN];

		printf("%s{\"mode\":\"%s\",\"records\":%" PRIu64 ",\"p50_us\":%.2f,"
		       "\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,\"mean_us\":%.2f,"
		       "\"publish_p50_us\":%.2f,\"publish_p99_us\":%.2f,\"batches\":%" PRIu64,
		       m ? "," : "", mode_key[m], r->n, r->p50, r->p99, r->p999, r->max, r->mean,
		       r->pub_p50, r->pub_p99, r->batches);
		if (m == M_XR_EFD || m == M_XR_SPIN)
			printf(",\"sleeps\":%" PRIu64 ",\"wakeups\":%" PRIu64
			       ",\"wakeups_per_record\":%.4f,\"p50_vs_bare\":%.3f,"
			       "\"p99_vs_bare\":%.3f",
			       r->sleeps, r->wakeups, r->n ? (double)r->wakeups / (double)r->n : 0,
			       ratio(r->p50, bound->p50), ratio(r->p99, bound->p99));
		printf(",\"round_p50_us\":[");
		for (uint32_t k = 0; k < c->rounds; k++)
			printf("%s%.2f", k ? "," : "", r->round_p50[k]);
		printf("],\"round_p99_us\":[");
		for (uint32_t k = 0; k < c->rounds; k++)
			printf("%s%.2f", k ? "," : "", r->round_p99[k]);
		printf("]");
		if (m == M_XR_EFD) {
			printf(",\"lib_wake_p50_us\":[");
			for (uint32_t k = 0; k < c->rounds; k++)
				printf("%s%.2f", k ? "," : "", r->lib_p50[k]);
			printf("],\"lib_wake_p99_us\":[");
			for (uint32_t k = 0; k < c->rounds; k++)
				printf("%s%.2f", k ? "," : "", r->lib_p99[k]);
			printf("]");
		}
		printf(",\"round_ms\":[");
		for (uint32_t k = 0; k < c->rounds; k++)
			printf("%s%.1f", k ? "," : "", r->round_ms[k]);
		printf("],\"round_others_ms\":[");
		for (uint32_t k = 0; k < c->rounds; k++)
			printf("%s%.2f", k ? "," : "", r->round_others[k]);
		printf("],\"round_quiet\":[");
		for (uint32_t k = 0; k < c->rounds; k++)
			printf("%s%s", k ? "," : "", r->quiet[k] ? "true" : "false");
		printf("],\"quiet\":{\"rounds\":%u,\"records\":%" PRIu64 ",\"p50_us\":%.2f,"
		       "\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f},\"data_ok\":%s}",
		       r->q_rounds, r->q_n, r->q_p50, r->q_p99, r->q_p999, r->q_max,
		       r->ok ? "true" : "false");
	}
	printf("],\"wake_kernel_us\":%.2f,\"target\":{\"text\":\"woken p99 <= 50 us\","
	       "\"p99_us\":%.2f,\"met\":%s,\"quiet_p99_us\":%.2f,\"quiet_met\":%s},"
	       "\"data_ok\":%s}\n",
	       wake_ms * 1e3, xe->p99, met(xe->p99), xe->q_p99,
	       xe->q_n ? met(xe->q_p99) : "null", data_ok ? "true" : "false");
}

static void print_text(const struct cfg *c, const struct result *res, double wake_ms)
{
	printf("%-14s %8s %8s %8s %8s %8s  %9s %9s  %-13s %s\n", "mode", "p50 us", "p99 us",
	       "p999 us", "max us", "mean us", "p50/bound", "p99/bound", "publish p50/99",
	       "wakeups/record");
	for (int m = 0; m < M_COUNT; m++) {
		const struct result *r = &res[m];
		const struct result *bound = &res[m == M_XR_EFD ? M_BARE_EFD : M_BARE_SPIN];
		char r50[16] = "bound", r99[16] = "bound", pub[32], wk[64] = "-";

		if (m == M_XR_EFD || m == M_XR_SPIN) {
			snprintf(r50, sizeof(r50), "%.2f", ratio(r->p50, bound->p50));
			snprintf(r99, sizeof(r99), "%.2f", ratio(r->p99, bound->p99));
			snprintf(wk, sizeof(wk), "%.3f (%" PRIu64 " sleeps, %" PRIu64 " wakeups)",
				 r->n ? (double)r->wakeups / (double)r->n : 0, r->sleeps,
				 r->wakeups);
		}
		snprintf(pub, sizeof(pub), "%.2f/%.2f", r->pub_p50, r->pub_p99);
		printf("%-14s %8.2f %8.2f %8.2f %8.2f %8.2f  %9s %9s  %-13s %s%s\n",
		       mode_name[m], r->p50, r->p99, r->p999, r->max, r->mean, r50, r99, pub, wk,
		       r->ok ? "" : "  DATA CHECK FAILED");
	}
	/* Another busy process on the machine takes our CPUs from time to
	 * time, and a round it ran in measures it, not the wakeup. */
	printf("\nper round: p50/p99 us [ms of our two CPUs that other tasks took, or the kernel "
	       "beside the reader;\n* = more than %.0f ms + %.0f%% of the round, + %.2f us per "
	       "record in the eventfd modes (the least\nany eventfd round shows: the kernel's "
	       "work per wakeup on the reader's CPU): not quiet]\n", QUIET_MS, QUIET_SHARE * 100,
	       wake_ms * 1e3);
	printf("%5s", "round");
	for (int m = 0; m < M_COUNT; m++)
		printf("  %-21s", mode_name[m]);
	printf("  %s\n", "xring woken, library's own");
	for (uint32_t k = 0; k < c->rounds; k++) {
		printf("%5u", k);
		for (int m = 0; m < M_COUNT; m++) {
			char cell[64];
			snprintf(cell, sizeof(cell), "%.1f/%.1f [%.1f%s]", res[m].round_p50[k],
				 res[m].round_p99[k], res[m].round_others[k],
				 res[m].quiet[k] ? "" : "*");
			printf("  %-21s", cell);
		}
		printf("  %.1f/%.1f\n", res[M_XR_EFD].lib_p50[k], res[M_XR_EFD].lib_p99[k]);
	}
	printf("\nquiet rounds only:\n");
	for (int m = 0; m < M_COUNT; m++) {
		const struct result *r = &res[m];
		const struct result *bound = &res[m == M_XR_EFD ? M_BARE_EFD : M_BARE_SPIN];

		printf("  %-14s %u of %u rounds", mode_name[m], r->q_rounds, c->rounds);
		if (r->q_n)
			printf(", p50 %.2f p99 %.2f p999 %.2f max %.2f us", r->q_p50, r->q_p99,
			       r->q_p999, r->q_max);
		if ((m == M_XR_EFD || m == M_XR_SPIN) && r->q_n && bound->q_n)
			printf("; p50 %.2f x, p99 %.2f x bound", ratio(r->q_p50, bound->q_p50),
			       ratio(r->q_p99, bound->q_p99));
		printf("\n");
	}
	const struct result *xe = &res[M_XR_EFD];
	printf("\ntarget: woken p99 <= 50 us: %.2f us, %s", xe->p99,
	       xe->p99 * 1e3 <= (double)TARGET_P99_NS ? "met" : "MISSED");
	if (xe->q_n)
		printf(" (quiet rounds: %.2f us, %s)", xe->q_p99,
		       xe->q_p99 * 1e3 <= (double)TARGET_P99_NS ? "met" : "MISSED");
	printf("\n");
}

static int parse_gap(const char *s, struct cfg *c)
{
	char *end;
	double lo = strtod(s, &end), hi;

	if (end == s || *end != ',')
		return -1;
	s = end + 1;
	hi = strtod(s, &end);
	if (end == s || *end || !(lo >= 0) || !(hi >= lo) || hi > 1e6)
		return -1;
	c->gap_min_ns = (uint64_t)(lo * 1e3);
	c->gap_max_ns = (uint64_t)(hi * 1e3);
	return 0;
}

int main(int argc, char **argv)
{
	struct cfg c = {
		.records = 20000,
		.rounds = 10,
		.warmup = 50,
		.gap_min_ns = 50000,
		.gap_max_ns = 500000,
		.hugepages = XR_HUGEPAGES_PREFER,
		.pin = true,
		.cpu_writer = -1,
		.cpu_reader = -1,
	};
	enum { O_RECORDS = 256, O_ROUNDS, O_WARMUP, O_GAP, O_HUGE, O_NOPIN, O_JSON, O_HELP, O_IDLE };
	bool idle_poll = false;
	static const struct option lo[] = {
		{"records", required_argument, NULL, O_RECORDS},
		{"rounds", required_argument, NULL, O_ROUNDS},
		{"warmup", required_argument, NULL, O_WARMUP},
		{"gap-us", required_argument, NULL, O_GAP},
		{"hugepages", required_argument, NULL, O_HUGE},
		{"no-pin", no_argument, NULL, O_NOPIN},
		{"idle-poll", no_argument, NULL, O_IDLE},
		{"json", no_argument, NULL, O_JSON},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case O_RECORDS:
			c.records = (uint32_t)strtoul(optarg, NULL, 10);
			if (!c.records || c.records > 100000000)
				goto bad;
			break;
		case O_ROUNDS:
			c.rounds = (uint32_t)strtoul(optarg, NULL, 10);
			if (!c.rounds || c.rounds > MAX_ROUNDS)
				goto bad;
			break;
		case O_WARMUP:
			c.warmup = (uint32_t)strtoul(optarg, NULL, 10);
			if (c.warmup > 1000000)
				goto bad;
			break;
		case O_GAP:
			if (parse_gap(optarg, &c) < 0)
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
		case O_NOPIN:
			c.pin = false;
			break;
		case O_IDLE:
			idle_poll = true;
			break;
		case O_JSON:
			c.json = true;
			break;
		case O_HELP:
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc || c.rounds > c.records)
		goto bad;
	/* Held until exit: the kernel drops the request when the fd closes. */
	if (idle_poll) {
		int32_t zero = 0;
		int qos = open("/dev/cpu_dma_latency", O_WRONLY | O_CLOEXEC);
		if (qos < 0 || write(qos, &zero, sizeof(zero)) != sizeof(zero)) {
			fprintf(stderr, "bench_wakeup: --idle-poll: cannot hold /dev/cpu_dma_latency "
					"at 0 (%s); run as root\n", strerror(errno));
			return 2;
		}
	}

	signal(SIGPIPE, SIG_IGN);

	/* Writer on the first CPU we may use, reader on the second. */
	if (c.pin)
		two_cpus(&c.cpu_writer, &c.cpu_reader);

	/* The benchmark's own shared pages and the bare eventfd: all the two
	 * processes share before the reader starts. */
	uint32_t per_round_max = (c.records + c.rounds - 1) / c.rounds;
	size_t sh_len = sizeof(struct shared) + (size_t)per_round_max * sizeof(uint64_t);
	struct shared *sh = mmap(NULL, sh_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				 -1, 0);
	int efd = eventfd(0, EFD_CLOEXEC);
	int cmd_p[2], rep_p[2];

	if (sh == MAP_FAILED || efd < 0 || pipe(cmd_p) < 0 || pipe(rep_p) < 0) {
		perror("bench_wakeup: setup");
		return 2;
	}
	memset(sh, 0, sh_len); /* fault it in before anything is timed */
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("bench_wakeup: fork");
		return 2;
	}
	if (pid == 0) {
		struct reader_ctx rc = {.sh = sh, .efd = efd, .cmd_fd = cmd_p[0],
					.reply_fd = rep_p[1]};
		close(cmd_p[1]);
		close(rep_p[0]);
		if (pin_to(c.cpu_reader) < 0)
			_exit(1);
		reader_process(&rc);
	}
	close(cmd_p[0]);
	close(rep_p[1]);
	pin_to(c.cpu_writer); /* before serve: the control thread stays on our CPU */

	char name[64];
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSLESS, .ring_bytes = 1u << 20,
			     .kind = XR_RECORD_OPAQUE};
	xr_arena_spec as = {.name = name, .streams = &ss, .n_streams = 1, .max_readers = 4,
			    .hugepages = c.hugepages, .numa_node = XR_NUMA_DEFAULT};
	struct writer_ctx wc = {.c = &c, .sh = sh, .efd = efd, .rng = 0x9E3779B97F4A7C15ull,
				.cmd_fd = cmd_p[1], .reply_fd = rep_p[0]};
	xr_arena_facts facts;
	xr_arena *a;
	xr_server *srv = NULL;
	int rc, status = 0;

	snprintf(name, sizeof(name), "bench-wakeup-%d", (int)getpid());
	sigset_t was;
	bench_hold_signals(&was); /* until the arena is known (bench_util.h) */
	rc = xr_arena_create(&as, &a);
	if (rc < 0) {
		fprintf(stderr, "bench_wakeup: xr_arena_create: %s (%s)\n", xr_strerror(rc),
			xr_arena_last_note());
		bench_release_signals(&was);
		status = 2;
		goto out_reader;
	}
	rc = xr_server_start(a, NULL, &srv);
	if (rc == 0) {
		xr_arena_facts gf; /* a signal from here on removes them (bench_util.h) */
		xr_arena_facts_get(a, &gf);
		bench_remove_on_signal(gf.path);
		bench_remove_on_signal(xr_server_path(srv));
		rc = xr_arena_writer(a, 0, 0, &wc.w);
	}
	bench_release_signals(&was);
	if (rc < 0) {
		fprintf(stderr, "bench_wakeup: serve: %s\n", xr_strerror(rc));
		status = 2;
		goto out_arena;
	}
	xr_arena_facts_get(a, &facts);

	char model[128], idle[64], poll_ns[32];
	struct utsname un;
	cpu_model(model, sizeof(model));
	uname(&un);
	sysfs_line("/sys/devices/system/cpu/cpuidle/current_driver", idle, sizeof(idle));
	sysfs_line("/sys/module/haltpoll/parameters/guest_halt_poll_ns", poll_ns, sizeof(poll_ns));
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);

	if (!c.json) {
		printf("bench_wakeup: %ld CPUs (%s), kernel %s, cpuidle %s (guest_halt_poll_ns "
		       "%s)%s\n", nproc, model, un.release, idle, poll_ns,
		       idle_poll ? "; idle CPUs poll (cpu_dma_latency 0)" : "");
		if (c.cpu_writer >= 0)
			printf("  writer pinned to CPU %d, reader to CPU %d\n", c.cpu_writer,
			       c.cpu_reader);
		else
			printf("  not pinned\n");
		printf("  %u records per mode in %u rounds (+%u warm-up each), modes taking "
		       "turns; one %u-byte record per publish, then a %.0f-%.0f us gap; reads of "
		       "1..64, max_wait 1 s\n  backing %s, %" PRIu64 " kB pages; latency = "
		       "reader's return - stamp taken just before publish\n\n",
		       c.records, c.rounds, c.warmup, REC_BYTES, (double)c.gap_min_ns / 1e3,
		       (double)c.gap_max_ns / 1e3, xr_backing_name(facts.backing),
		       facts.page_size >> 10);
		fflush(stdout);
	}

	static struct result res[M_COUNT];
	double wake_ms = 0;
	bool data_ok = true;
	for (int m = 0; m < M_COUNT; m++) {
		res[m].lat = calloc(c.records, sizeof(uint64_t));
		res[m].pub = calloc(c.records, sizeof(uint64_t));
		res[m].ok = true;
		if (!res[m].lat || !res[m].pub) {
			status = 2;
			goto out_arena;
		}
	}
	for (uint32_t k = 0; k < c.rounds && !status; k++) {
		uint32_t n = c.records / c.rounds + (k < c.records % c.rounds);

		for (int j = 0; j < M_COUNT; j++) {
			enum mode m = (enum mode)((j + k) % M_COUNT);
			struct result *r = &res[m];
			struct cmd cm = {.mode = m, .n = n + c.warmup, .warmup = c.warmup};
			struct reply rep;
			int32_t ready;

			snprintf(cm.name, sizeof(cm.name), "%s", name);
			r->round_off[k] = (uint32_t)r->n;
			/* What other tasks take from our two CPUs: the writer's
			 * wait for its own (it never sleeps in a round), and the
			 * reader's CPU's time neither idle nor the reader's. */
			uint64_t t0 = now_ns(), wd = run_delay_ns();
			int64_t idle0 = idle_ns(c.cpu_reader);

			if (write_all(wc.cmd_fd, &cm, sizeof(cm)) < 0 ||
			    read_all(wc.reply_fd, &ready, sizeof(ready)) < 0) {
				fprintf(stderr, "bench_wakeup: the reader process is gone\n");
				status = 2;
				break;
			}
			if (ready < 0) {
				fprintf(stderr, "bench_wakeup: attach: %s\n", xr_strerror(ready));
				status = 2;
				break;
			}
			rc = write_round(&wc, m, cm.n, c.warmup, r->pub + r->n_pub);
			if (rc < 0) {
				fprintf(stderr, "bench_wakeup: %s writer: %s\n", mode_name[m],
					xr_strerror(rc));
				status = 2;
				break;
			}
			wd = run_delay_ns() - wd;
			r->n_pub += n;
			if (read_all(wc.reply_fd, &rep, sizeof(rep)) < 0) {
				status = 2;
				break;
			}
			int64_t wall = (int64_t)(now_ns() - t0), idle1 = idle_ns(c.cpu_reader);
			int64_t other1 = idle0 < 0 || idle1 < 0 ? 0 :
					 wall - (idle1 - idle0) - (int64_t)rep.cpu_ns;
			if (other1 < 0)
				other1 = 0;
			r->round_others[k] = (double)((int64_t)wd + other1) / 1e6;
			r->round_ms[k] = (double)wall / 1e6;
			r->round_records[k] = cm.n;
			if (rep.rc < 0 || rep.errors || rep.got != n) {
				fprintf(stderr, "bench_wakeup: DATA CHECK FAILED (%s, round %u): "
					"%s, %u out of sequence, %" PRIu64 " of %u records\n",
					mode_name[m], k, rep.rc ? xr_strerror(rep.rc) : "ok",
					rep.errors, rep.got, n);
				r->ok = data_ok = false;
			}
			if (rep.got > n)
				rep.got = n;
			memcpy(r->lat + r->n, sh->lat, rep.got * sizeof(uint64_t));
			r->n += rep.got;
			r->round_off[k + 1] = (uint32_t)r->n;
			r->batches += rep.batches;
			r->sleeps += rep.sleeps;
			r->wakeups += rep.wakeups;
			r->lib_p50[k] = (double)rep.lib_p50 / 1e3;
			r->lib_p99[k] = (double)rep.lib_p99 / 1e3;
		}
	}
	if (!status) {
		wake_ms = wake_kernel_ms(res, c.rounds);
		for (int m = 0; m < M_COUNT; m++)
			summarise(&res[m], m, c.rounds, wake_ms);
		if (c.json)
			print_json(&c, model, nproc, un.release, idle, poll_ns, &facts, res,
				   wake_ms, data_ok);
		else
			print_text(&c, res, wake_ms);
		if (!data_ok)
			status = 1;
	}
out_arena:
	xr_arena_close(a);
	xr_server_stop(srv);
	bench_keep_all();
	xr_arena_destroy(a);
out_reader:;
	struct cmd quit = {.mode = M_QUIT};
	write_all(cmd_p[1], &quit, sizeof(quit));
	close(cmd_p[1]);
	close(rep_p[0]);
	waitpid(pid, NULL, 0);
	for (int m = 0; m < M_COUNT; m++) {
		free(res[m].lat);
		free(res[m].pub);
	}
	return status;
bad:
	fputs(usage, stderr);
	return 2;
}
