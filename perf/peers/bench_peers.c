/* SPDX-License-Identifier: MIT */
/*
 * bench_peers: xring against what users would pick instead, in the same run
 * (issue 14, item 2).
 *
 * The same records go from a writer process to a reader process through
 * each transport in turn:
 *   xring        a lossless stream, the writer in this process, an ordinary
 *                lossless reader (attached by name through the control
 *                socket) in a forked one: bench_ring's way
 *   bare ring    bench_ring's hand-written SPSC ring in shared memory: the
 *                bound, what any shared-memory ring must at least cost
 *   pipe         pipe(2), writes and reads batched in user space
 *   unix socket  socketpair(AF_UNIX, SOCK_STREAM), likewise
 *   zeromq       PUSH/PULL over ipc:// in a private directory, a message
 *                per record
 *   iceoryx      through its C binding, a chunk per record, lossless
 *                (publisher waits for the subscriber), the RouDi daemon
 *                started by this program and stopped by its pid at the end
 * for each record size (default 64 B, 1 KiB, 16 KiB, 64 KiB).
 *
 * The work at both ends is the same everywhere (peers.h): the writer stores
 * every byte of each record (word 0 its sequence number, the rest a pattern
 * of the sequence number and the size), into the transport's memory where it
 * lends some (xring, bare ring, iceoryx) or into a buffer of its own that it
 * then hands over (pipe, socket, zeromq); the reader loads every byte and
 * compares it with what it must be, and checks that records come in
 * sequence, none lost, none twice. A failed check is reported with the
 * transport and what was wrong, that transport's figures for that size are
 * not printed, and the exit status is 1.
 *
 * Measured, per transport and size:
 *   throughput   in --rounds rounds, each transport once a round and their
 *                order rotated each round (on a VM what moving cache lines
 *                between the vCPUs costs drifts with where the host runs
 *                them: the drift falls on all alike), the median round
 *                reported. In a round the writer writes for --seconds,
 *                publishing every 64 records or 64 KiB (whichever comes
 *                first) where the transport has a publish step or a
 *                user-space buffer; records/s and payload
 *                GB/s over the time from the first record to the reader's
 *                check of the last (CLOCK_MONOTONIC in both processes). The
 *                reader waits as the transport's users do by default:
 *                blocking reads, xring's spin-then-sleep, iceoryx's WaitSet;
 *                the bare ring spins (it is the bound).
 *   latency      one-way, from timestamped records: the writer takes
 *                CLOCK_MONOTONIC before it begins a record, stores it in the
 *                record (word 1), fills, sends or publishes it alone; the
 *                reader takes the clock again after it has checked the whole
 *                record. One clock for both processes, so no round trip is
 *                halved. So a latency includes writing and checking the
 *                record, the same work for every transport. The writer
 *                busy-waits a random 50-150 us gap before each record, so
 *                that records do not queue and a blocking reader is asleep
 *                when one comes. p50/p99/p999 over --records records (the
 *                first tenth not counted), with the reader
 *                  spinning  never sleeping (non-blocking reads, xring's
 *                            XR_WAIT_SPIN, iceoryx polling take_chunk)
 *                  blocking  asleep in the transport (read(2), zmq_msg_recv,
 *                            xring's default wait, iceoryx's WaitSet, the bare
 *                            ring's reader in read() on an eventfd)
 *
 * Honesty: every figure is printed beside its ratio to xring and to the bare
 * ring measured in the same run, on the same CPUs (writer pinned to the first
 * allowed CPU, reader to the second), one transport after the other for
 * each size. No transport is tuned beyond what a careful user would do (user
 * space batching for byte streams, zero-copy loans where the library has
 * them, kernel buffers at their defaults); none is favoured by leaving out
 * work the others do. A transport that is not built in (its library was not
 * found by CMake) or cannot run (iox-roudi missing) is reported absent with
 * the Debian package to install, never left out silently. On a virtual
 * machine the cost of moving cache lines between the two vCPUs drifts from
 * minute to minute (perf/probe_coherence): compare within one run.
 *
 * Exit status: 0 measured, 1 a data check failed, 2 bad usage or a
 * transport that is built in could not be set up.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peers.h"
#include "bench_util.h"

#define MAX_SIZES 16

#ifndef XR_PEERS_HAVE_ZMQ
const struct transport peers_zmq = {.name = "zeromq", .absent = "package libzmq3-dev"};
#endif
#ifndef XR_PEERS_HAVE_IOX
const struct transport peers_iox = {.name = "iceoryx",
				    .absent = "packages iceoryx and libiceoryx-binding-c-dev"};
#endif

/* The order of the tables; xring and the bare ring first: the others are
 * divided by them. */
static const struct transport *const transports[] = {
	&peers_xring, &peers_bare, &peers_pipe, &peers_socket, &peers_zmq, &peers_iox,
};
#define N_T (sizeof(transports) / sizeof(transports[0]))
enum { T_XRING = 0, T_BARE = 1 };

struct cfg {
	uint32_t sizes[MAX_SIZES];
	uint32_t n_sizes;
	double seconds;   /* throughput: writing time per round */
	uint32_t rounds;  /* throughput rounds, transports alternating; the median counts */
	uint64_t records; /* per latency run */
	uint64_t gap_min_ns, gap_max_ns;
	uint64_t ring_bytes;
	bool huge;
	bool pin;
	bool json;
	bool quick;
	bool only[N_T]; /* all true unless --only */
	int cpu_writer, cpu_reader;
	unsigned timeout_s; /* a run's limit; 0: from the run's length */
};

enum status { ST_OK, ST_ABSENT, ST_ERROR, ST_BAD, ST_SKIPPED };

/* One transport at one size. */
struct cell {
	enum status st;
	char why[320];
	double rps, gbps;      /* the median round */
	double rps_min, rps_max;
	double lat[2][3]; /* [spin, block][p50, p99, p999], ns */
};

#define MAX_ROUNDS 15
static double round_rps[MAX_SIZES][N_T][MAX_ROUNDS];

cpu_set_t peers_all_cpus;
static struct cell cells[MAX_SIZES][N_T];
static bool started[N_T];
static char tmpdir[64];
static pid_t main_pid; /* children leave what the parent started alone */
/* The run under way (between prepare and cleanup), for stop_all(). */
static const struct transport *volatile cur_t;
static void *volatile cur_st;
/* Its reader and writer children, for stop_all() to end before the
 * daemons (a client left running would outlive them, and keep its files). */
static volatile pid_t cur_child[2] = {-1, -1};

/* ---- one run: fork the reader, write, collect ---- */

static int nftw_rm(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb, (void)flag, (void)f;
	remove(p);
	return 0;
}

/* Stops what this process started: its run's children, then every
 * transport's daemon (kill(2), waitpid(2), nanosleep(2), and the leftovers
 * removed by precomputed names with lstat(2) and unlink(2): safe in a
 * signal handler, peers_in_signal()), then removes the
 * temporary directory (nftw(3), which is not; on_signal() has made a second
 * signal fatal by then, so the worst case is a directory left in /tmp). */
static void stop_all(void)
{
	if (getpid() != main_pid)
		return;
	for (int k = 0; k < 2; k++)
		if (cur_child[k] > 0) {
			kill(cur_child[k], SIGKILL);
			waitpid(cur_child[k], NULL, 0);
			cur_child[k] = -1;
		}
	if (cur_t && cur_t->abandon)
		cur_t->abandon(cur_st);
	for (size_t i = 0; i < N_T; i++)
		if (started[i] && transports[i]->stop) {
			transports[i]->stop();
			started[i] = false;
		}
	if (tmpdir[0]) {
		nftw(tmpdir, nftw_rm, 8, FTW_DEPTH | FTW_PHYS);
		tmpdir[0] = '\0';
	}
}

static volatile sig_atomic_t in_signal;

bool peers_in_signal(void)
{
	return in_signal;
}

static void on_signal(int sig)
{
	signal(sig, SIG_DFL);
	in_signal = 1;
	stop_all();
	raise(sig);
}

static void child_exit(const struct transport *t)
{
	/* iceoryx's runtime says goodbye to RouDi in a C++ destructor, which
	 * only exit() runs; the others leave as forked children should. */
	if (t == &peers_iox)
		exit(0);
	_exit(0);
}

static void child_setup(int cpu, unsigned timeout_s)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	/* A transport that hangs ends its child (SIGALRM's default), and the
	 * parent reports it; a benchmark must not wait forever. */
	alarm(timeout_s);
	pin_to(cpu);
}

static void describe_death(int wstatus, const char *who, char *why, size_t len)
{
	if (WIFSIGNALED(wstatus))
		snprintf(why, len, "%s killed by signal %d%s", who, WTERMSIG(wstatus),
			 WTERMSIG(wstatus) == SIGALRM ? " (timed out)" : "");
	else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus))
		snprintf(why, len, "%s exited with status %d", who, WEXITSTATUS(wstatus));
}

/*
 * Runs r through t once. Returns 0 when both sides ran (the caller checks
 * what they say), or -errno when the run could not be set up (*why says).
 */
static int run_one(const struct cfg *c, const struct transport *t, struct run *r,
		   struct wres *wr, struct rres *rr, char *why, size_t why_len)
{
	unsigned timeout = c->timeout_s ? c->timeout_s
					: 30 + (unsigned)(3 * (c->seconds + (double)c->records *
								     (double)c->gap_max_ns / 1e9));
	int ready[2], result[2], wresult[2] = {-1, -1}, ws = 0;
	const char *late = NULL; /* which side the alarm ended */
	/* Tests only: this transport's reader hangs, as a stuck transport's
	 * would, so that the timeout's path is exercised. */
	const char *stall = getenv("XR_PEERS_TEST_STALL");
	bool stall_here = stall && !strcmp(stall, t->name);
	pid_t rp, wp = -1;
	int32_t ok = 0;
	void *st = NULL;
	int rc;

	memset(wr, 0, sizeof(*wr));
	memset(rr, 0, sizeof(*rr));
	rc = t->prepare(r, &st);
	if (rc < 0) {
		snprintf(why, why_len, "setup: %s", strerror(-rc));
		return rc;
	}
	cur_st = st;
	cur_t = t;
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(result, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(why, why_len, "pipe: %s", strerror(errno));
		cur_t = NULL;
		t->cleanup(st);
		return rc;
	}
	fflush(NULL);
	rp = fork();
	if (rp > 0) {
		cur_child[0] = rp;
		if (t->forked)
			t->forked(r, rp, 'r');
	}
	if (rp == 0) {
		close(ready[0]);
		close(result[0]);
		child_setup(c->cpu_reader, timeout);
		if (stall_here) {
			write_all(ready[1], &ok, sizeof(ok));
			for (;;)
				pause();
		}
		t->read(r, st, ready[1], rr);
		write_all(result[1], rr, sizeof(*rr));
		child_exit(t);
	}
	close(ready[1]);
	close(result[1]);
	if (rp < 0) {
		rc = -errno;
		goto fail_fds;
	}
	rc = read_all(ready[0], &ok, sizeof(ok));
	if (rc == 0 && ok < 0)
		rc = ok;
	if (rc < 0) {
		snprintf(why, why_len, "reader not ready: %s", strerror(-rc));
		waitpid(rp, NULL, 0);
		cur_child[0] = -1;
		goto fail_fds;
	}
	if (t->fork_writer) {
		if (pipe2(wresult, O_CLOEXEC) < 0) {
			rc = -errno;
			kill(rp, SIGKILL);
			waitpid(rp, NULL, 0);
			cur_child[0] = -1;
			goto fail_fds;
		}
		wp = fork();
		if (wp > 0) {
			cur_child[1] = wp;
			if (t->forked)
				t->forked(r, wp, 'w');
		}
		if (wp == 0) {
			close(wresult[0]);
			child_setup(c->cpu_writer, timeout);
			t->write(r, st, wr);
			write_all(wresult[1], wr, sizeof(*wr));
			child_exit(t);
		}
		close(wresult[1]);
		if (wp < 0 || read_all(wresult[0], wr, sizeof(*wr)) < 0) {
			wr->rc = -EPIPE;
			snprintf(wr->why, sizeof(wr->why), "no result from the writer");
		}
		close(wresult[0]);
		if (wp > 0)
			waitpid(wp, &ws, 0);
		cur_child[1] = -1;
		describe_death(ws, "writer", wr->why, sizeof(wr->why));
		if (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGALRM)
			late = "the writer";
	} else {
		t->write(r, st, wr);
	}
	if (read_all(result[0], rr, sizeof(*rr)) < 0) {
		rr->rc = -EPIPE;
		snprintf(rr->why, sizeof(rr->why), "no result from the reader");
	}
	waitpid(rp, &ws, 0);
	cur_child[0] = -1;
	describe_death(ws, "reader", rr->why, sizeof(rr->why));
	if (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGALRM)
		late = late ? "the writer and the reader" : "the reader";
	close(ready[0]);
	close(result[0]);
	cur_t = NULL;
	t->cleanup(st);
	/* A side that hung says nothing of the data: the run is not measured,
	 * which is not a failed check. */
	if (late) {
		snprintf(why, why_len, "%s did not finish within %u s (timed out)", late, timeout);
		return -ETIME;
	}
	return 0;
fail_fds:
	close(ready[0]);
	close(result[0]);
	cur_t = NULL;
	t->cleanup(st);
	return rc;
}

/* What went wrong in a run both sides finished, or "" if nothing did. */
static bool verdict(const struct wres *wr, const struct rres *rr, char *why, size_t len)
{
	if (wr->rc)
		snprintf(why, len, "writer: %s", wr->why[0] ? wr->why : strerror(-wr->rc));
	else if (rr->bad)
		snprintf(why, len, "%llu bad records; first: %s", (unsigned long long)rr->bad,
			 rr->why);
	else if (rr->rc)
		snprintf(why, len, "reader: %s", rr->why[0] ? rr->why : strerror(-rr->rc));
	else if (rr->records != wr->records)
		snprintf(why, len, "reader got %llu records of the %llu written",
			 (unsigned long long)rr->records, (unsigned long long)wr->records);
	else if (rr->why[0]) /* died after sending its result */
		snprintf(why, len, "%s", rr->why);
	else
		return true;
	return false;
}

static void percentiles(uint64_t *v, uint64_t n, double out[3])
{
	static const double q[3] = {0.50, 0.99, 0.999};

	qsort(v, n, sizeof(*v), cmp_u64);
	for (int i = 0; i < 3; i++) {
		uint64_t k = (uint64_t)(q[i] * (double)n);
		out[i] = (double)v[k < n ? k : n - 1];
	}
}

/* Throughput, then latency spinning and blocking, of one transport at one
 * size, into *cell. Returns -errno when a run could not be set up. */
/* Runs modes [m0, m1) of transport ti at size: throughput (0: one round,
 * its records/s in *rps) and the latencies (1, 2: into cell). A failed
 * run or check marks the cell. */
static int measure(const struct cfg *c, size_t ti, uint32_t size, uint64_t *lat, uint32_t *tag,
		   struct cell *cell, int m0, int m1, double *rps)
{
	const struct transport *t = transports[ti];
	static const enum peer_mode modes[3] = {M_TP, M_LAT_SPIN, M_LAT_BLOCK};
	struct wres wr;
	struct rres rr;

	for (int m = m0; m < m1; m++) {
		struct run r = {
			.size = size,
			.mode = modes[m],
			.n = modes[m] == M_TP ? 0 : c->records,
			.gap_min_ns = c->gap_min_ns,
			.gap_max_ns = c->gap_max_ns,
			.publish_records = 64,
			.publish_bytes = 65536,
			.batch = 1024,
			.ring_bytes = c->ring_bytes,
			.huge = c->huge,
			.lat = lat,
			.tag = (*tag)++,
			.dir = tmpdir,
		};
		char why[sizeof(cell->why)];

		r.write_ns = (uint64_t)(c->seconds * 1e9);
		int rc = run_one(c, t, &r, &wr, &rr, why, sizeof(why));
		if (rc < 0) {
			cell->st = ST_ERROR;
			snprintf(cell->why, sizeof(cell->why), "%s", why);
			/* A peer that hung is reported as not measured, and the
			 * others' figures stand; xring or the bare ring hanging is
			 * the run's failure. */
			if (rc == -ETIME && ti != T_XRING && ti != T_BARE)
				return 0;
			return rc;
		}
		if (!verdict(&wr, &rr, why, sizeof(why))) {
			cell->st = ST_BAD;
			snprintf(cell->why, sizeof(cell->why), "%s", why);
			fprintf(stderr, "bench_peers: DATA CHECK FAILED (%s, %u B, %s): %s\n",
				t->name, size, m == 0 ? "throughput" : m == 1 ? "latency, spinning" :
				"latency, blocking", why);
			return 0;
		}
		if (modes[m] == M_TP) {
			double s = (double)(rr.t_last - wr.t0) / 1e9;
			*rps = s > 0 ? (double)rr.records / s : 0;
		} else {
			uint64_t skip = c->records / 10;
			percentiles(lat + skip, c->records - skip, cell->lat[m - 1]);
		}
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * One size: the throughput rounds first, every transport once a round and
 * the order rotated each round, so that a change in the machine (on a VM,
 * where the host puts the two vCPUs) falls on all of them alike; the median
 * round is the figure, as in bench_ring. Then each transport's latencies.
 */
static void measure_size(const struct cfg *c, uint32_t si, uint64_t *lat, uint32_t *tag,
			 bool *setup_ok, bool *data_ok)
{
	uint32_t size = c->sizes[si];

	for (uint32_t k = 0; k < c->rounds; k++) {
		for (size_t j = 0; j < N_T; j++) {
			size_t i = (j + k) % N_T;
			struct cell *x = &cells[si][i];
			if (x->st != ST_OK)
				continue;
			if (measure(c, i, size, lat, tag, x, 0, 1, &round_rps[si][i][k]) < 0)
				*setup_ok = false;
		}
	}
	for (size_t i = 0; i < N_T; i++) {
		struct cell *x = &cells[si][i];
		if (x->st != ST_OK)
			goto checked;
		double v[MAX_ROUNDS];
		memcpy(v, round_rps[si][i], c->rounds * sizeof(v[0]));
		qsort(v, c->rounds, sizeof(v[0]), cmp_double);
		x->rps = v[c->rounds / 2];
		x->rps_min = v[0];
		x->rps_max = v[c->rounds - 1];
		x->gbps = x->rps * size / 1e9;
		if (measure(c, i, size, lat, tag, x, 1, 3, NULL) < 0)
			*setup_ok = false;
	checked:
		if (x->st == ST_BAD)
			*data_ok = false;
	}
}

/* ---- output ---- */

static void size_str(uint32_t size, char *buf, size_t len)
{
	if (size % 1024 == 0)
		snprintf(buf, len, "%u KiB", size >> 10);
	else
		snprintf(buf, len, "%u B", size);
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

static void cell_status_line(const struct transport *t, const struct cell *x)
{
	if (x->st == ST_ABSENT)
		printf("  %-12s %s\n", t->name, x->why);
	else if (x->st == ST_ERROR)
		printf("  %-12s not measured: %s\n", t->name, x->why);
	else if (x->st == ST_BAD)
		printf("  %-12s DATA CHECK FAILED: %s\n", t->name, x->why);
	else if (x->st == ST_SKIPPED)
		printf("  %-12s not asked for (--only)\n", t->name);
}

static void print_size_text(uint32_t si, uint32_t size)
{
	const struct cell *xr = &cells[si][T_XRING], *br = &cells[si][T_BARE];
	bool have_xr = xr->st == ST_OK, have_br = br->st == ST_OK, any = false;
	char sz[32];

	size_str(size, sz, sizeof(sz));
	printf("\n%s records\n  %-12s %12s %8s %8s %8s\n", sz, "throughput", "records/s",
	       "GB/s", "/xring", "/bare");
	for (size_t i = 0; i < N_T; i++) {
		const struct cell *x = &cells[si][i];
		if (x->st != ST_OK) {
			cell_status_line(transports[i], x);
			continue;
		}
		any = true;
		printf("  %-12s %12.0f %8.3f", transports[i]->name, x->rps, x->gbps);
		if (have_xr)
			printf(" %8.2f", ratio(x->rps, xr->rps));
		else
			printf(" %8s", "-");
		if (have_br)
			printf(" %8.2f\n", ratio(x->rps, br->rps));
		else
			printf(" %8s\n", "-");
	}
	if (!any)
		return;
	printf("  %-12s %8s %8s %8s   %8s %8s %8s\n", "latency, us", "spin p50", "p99", "p999",
	       "block p50", "p99", "p999");
	for (size_t i = 0; i < N_T; i++) {
		const struct cell *x = &cells[si][i];
		if (x->st != ST_OK)
			continue; /* said above */
		printf("  %-12s", transports[i]->name);
		for (int m = 0; m < 2; m++) {
			for (int q = 0; q < 3; q++)
				printf(" %8.1f", x->lat[m][q] / 1e3);
			printf(m ? "\n" : "  ");
		}
		for (int k = 0; k < 2; k++) {
			const struct cell *b = k ? br : xr;
			if (!(k ? have_br : have_xr))
				continue;
			printf("  %-12s", k ? "    /bare" : "    /xring");
			for (int m = 0; m < 2; m++) {
				for (int q = 0; q < 3; q++)
					printf(" %8.2f", ratio(x->lat[m][q], b->lat[m][q]));
				printf(m ? "\n" : "  ");
			}
		}
	}
	fflush(stdout);
}

static void json_lat(const char *key, const double v[3])
{
	printf(",\"%s\":{\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f}", key, v[0], v[1], v[2]);
}

static void json_lat_ratio(const char *key, const double v[3], const double b[3])
{
	printf(",\"%s\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f}", key, ratio(v[0], b[0]),
	       ratio(v[1], b[1]), ratio(v[2], b[2]));
}

static void print_size_json(uint32_t si, uint32_t size)
{
	static const char *const st_name[] = {"ok", "absent", "error", "data_check_failed",
					      "skipped"};
	const struct cell *xr = &cells[si][T_XRING], *br = &cells[si][T_BARE];

	for (size_t i = 0; i < N_T; i++) {
		const struct cell *x = &cells[si][i];

		if (x->st == ST_SKIPPED)
			continue;
		printf("{\"bench\":\"peers\",\"transport\":");
		json_str(transports[i]->name);
		printf(",\"size\":%u,\"status\":\"%s\"", size, st_name[x->st]);
		if (x->st != ST_OK) {
			printf(",\"why\":");
			json_str(x->why);
			printf("}\n");
			continue;
		}
		printf(",\"records_per_s\":%.0f,\"records_per_s_min\":%.0f,"
		       "\"records_per_s_max\":%.0f,\"gbps\":%.4f",
		       x->rps, x->rps_min, x->rps_max, x->gbps);
		json_lat("latency_spin_ns", x->lat[0]);
		json_lat("latency_block_ns", x->lat[1]);
		if (xr->st == ST_OK) {
			printf(",\"throughput_vs_xring\":%.3f", ratio(x->rps, xr->rps));
			json_lat_ratio("latency_spin_vs_xring", x->lat[0], xr->lat[0]);
			json_lat_ratio("latency_block_vs_xring", x->lat[1], xr->lat[1]);
		}
		if (br->st == ST_OK) {
			printf(",\"throughput_vs_bare\":%.3f", ratio(x->rps, br->rps));
			json_lat_ratio("latency_spin_vs_bare", x->lat[0], br->lat[0]);
			json_lat_ratio("latency_block_vs_bare", x->lat[1], br->lat[1]);
		}
		printf("}\n");
	}
	fflush(stdout);
}

/* ---- options ---- */

static const char usage[] =
	"usage: bench_peers [options]\n"
	"\n"
	"The same records between two processes through xring, a bare shared-memory\n"
	"ring, a pipe, a Unix socket, ZeroMQ and iceoryx: throughput and one-way\n"
	"latency, each with its ratio to xring and to the bare ring.\n"
	"\n"
	"  --sizes LIST      record sizes, comma-separated, k suffix allowed,\n"
	"                    multiples of 8, at least 16 (default 64,1k,16k,64k)\n"
	"  --seconds S       throughput: writing time per transport, size and round\n"
	"                    (default 0.4)\n"
	"  --rounds N        throughput rounds, the transports' order rotated each\n"
	"                    round; the median is reported (default 3, at most 15)\n"
	"  --records N       latency: records per transport, size and wait (default 5000)\n"
	"  --quick           --seconds 0.1 --rounds 3 --records 1000: within 30 s\n"
	"  --only LIST       these transports only (xring,bare,pipe,socket,zmq,iceoryx)\n"
	"  --ring-mib N      xring's and the bare ring's size, a power of two (default 8)\n"
	"  --no-huge         no huge pages for xring and the bare ring\n"
	"  --no-pin          do not pin writer and reader to CPUs\n"
	"  --json            one JSON object per line\n"
	"  --timeout S       a run's limit in seconds (default: 30 + 3 x its length);\n"
	"                    a peer that does not finish in it is reported as not\n"
	"                    measured, the others' figures stand\n"
	"\n"
	"Exit status: 0 measured (a peer that timed out is said, not measured), 1 a\n"
	"data check failed, 2 bad usage, or a transport built in could not be set up,\n"
	"or xring or the bare ring timed out.\n";

static int parse_sizes(const char *s, struct cfg *c)
{
	c->n_sizes = 0;
	while (*s) {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno || end == s)
			return -EINVAL;
		if (*end == 'k' || *end == 'K')
			v <<= 10, end++;
		if ((*end && *end != ',') || v < 16 || v % 8 || v > (1u << 20) ||
		    c->n_sizes == MAX_SIZES)
			return -EINVAL;
		c->sizes[c->n_sizes++] = (uint32_t)v;
		s = *end ? end + 1 : end;
	}
	return c->n_sizes ? 0 : -EINVAL;
}

static int parse_only(char *s, struct cfg *c)
{
	static const char *const key[N_T] = {"xring", "bare", "pipe", "socket", "zmq", "iceoryx"};
	char *save = NULL;

	memset(c->only, 0, sizeof(c->only));
	for (char *w = strtok_r(s, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		size_t i = 0;
		while (i < N_T && strcmp(w, key[i]))
			i++;
		if (i == N_T)
			return -EINVAL;
		c->only[i] = true;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct cfg *c)
{
	enum { O_SIZES = 256, O_SECONDS, O_RECORDS, O_QUICK, O_ONLY, O_RING, O_NOHUGE, O_NOPIN,
	       O_JSON, O_HELP, O_ROUNDS, O_TIMEOUT };
	static const struct option lo[] = {
		{"sizes", required_argument, NULL, O_SIZES},
		{"seconds", required_argument, NULL, O_SECONDS},
		{"records", required_argument, NULL, O_RECORDS},
		{"rounds", required_argument, NULL, O_ROUNDS},
		{"quick", no_argument, NULL, O_QUICK},
		{"only", required_argument, NULL, O_ONLY},
		{"ring-mib", required_argument, NULL, O_RING},
		{"no-huge", no_argument, NULL, O_NOHUGE},
		{"no-pin", no_argument, NULL, O_NOPIN},
		{"json", no_argument, NULL, O_JSON},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	bool set_seconds = false, set_records = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case O_SIZES:
			if (parse_sizes(optarg, c) < 0)
				return -EINVAL;
			break;
		case O_SECONDS:
			c->seconds = atof(optarg);
			if (!(c->seconds > 0 && c->seconds <= 600))
				return -EINVAL;
			set_seconds = true;
			break;
		case O_RECORDS:
			c->records = strtoull(optarg, NULL, 10);
			if (c->records < 100 || c->records > 10000000)
				return -EINVAL;
			set_records = true;
			break;
		case O_ROUNDS:
			c->rounds = (uint32_t)strtoul(optarg, NULL, 10);
			if (c->rounds < 1 || c->rounds > MAX_ROUNDS)
				return -EINVAL;
			break;
		case O_QUICK:
			c->quick = true;
			break;
		case O_ONLY:
			if (parse_only(optarg, c) < 0)
				return -EINVAL;
			break;
		case O_RING:
			c->ring_bytes = strtoull(optarg, NULL, 10) << 20;
			if (!c->ring_bytes || (c->ring_bytes & (c->ring_bytes - 1)) ||
			    c->ring_bytes > (1ull << 30))
				return -EINVAL;
			break;
		case O_NOHUGE:
			c->huge = false;
			break;
		case O_NOPIN:
			c->pin = false;
			break;
		case O_JSON:
			c->json = true;
			break;
		case O_TIMEOUT:
			c->timeout_s = (unsigned)strtoul(optarg, NULL, 10);
			if (c->timeout_s < 1 || c->timeout_s > 3600)
				return -EINVAL;
			break;
		case O_HELP:
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			return -EINVAL;
		}
	}
	if (optind != argc)
		return -EINVAL;
	if (c->quick) {
		if (!set_seconds)
			c->seconds = 0.1;
		if (!set_records)
			c->records = 1000;
	}
	for (uint32_t i = 0; i < c->n_sizes; i++)
		if (c->sizes[i] + 64 > c->ring_bytes / 2)
			return -EINVAL;
	return 0;
}

/* ---- main ---- */

static void print_header(const struct cfg *c)
{
	char model[128];
	struct utsname un;

	cpu_model(model, sizeof(model));
	uname(&un);
	if (c->json) {
		printf("{\"bench\":\"peers\",\"machine\":{\"nproc\":%ld,\"cpu\":",
		       sysconf(_SC_NPROCESSORS_ONLN));
		json_str(model);
		printf(",\"kernel\":");
		json_str(un.release);
		printf("},\"config\":{\"seconds\":%g,\"rounds\":%u,\"records\":%" PRIu64
		       ",\"gap_ns\":[%" PRIu64
		       ",%" PRIu64 "],\"ring_bytes\":%" PRIu64 ",\"huge\":%s,\"cpu_writer\":%d,"
		       "\"cpu_reader\":%d,\"publish_records\":64,\"publish_bytes\":65536}}\n",
		       c->seconds, c->rounds, c->records, c->gap_min_ns, c->gap_max_ns,
		       c->ring_bytes, c->huge ? "true" : "false", c->cpu_writer, c->cpu_reader);
		return;
	}
	printf("bench_peers: %ld CPUs (%s), kernel %s\n", sysconf(_SC_NPROCESSORS_ONLN), model,
	       un.release);
	if (c->cpu_writer >= 0)
		printf("  writer pinned to CPU %d, reader to CPU %d\n", c->cpu_writer,
		       c->cpu_reader);
	else
		printf("  not pinned\n");
	printf("  throughput: the median of %u rounds of %.2f s of writing per transport and "
	       "size,\n  the order rotated each round; publish every 64 records or 64 KiB\n"
	       "  latency: %" PRIu64 " records per wait mode (first tenth not counted), "
	       "%.0f-%.0f us apart;\n"
	       "  one-way, writer's clock before the fill to reader's after the check\n"
	       "  ratios: this transport's figure / xring's, / the bare ring's (same run)\n",
	       c->rounds, c->seconds, c->records, c->gap_min_ns / 1e3, c->gap_max_ns / 1e3);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct cfg c = {
		.sizes = {64, 1024, 16384, 65536},
		.n_sizes = 4,
		.seconds = 0.4,
		.rounds = 3,
		.records = 5000,
		.gap_min_ns = 50000,
		.gap_max_ns = 150000,
		.ring_bytes = 8ull << 20,
		.huge = true,
		.pin = true,
		.cpu_writer = -1,
		.cpu_reader = -1,
	};
	bool data_ok = true, setup_ok = true;
	uint32_t tag = 0;
	uint64_t *lat;

	for (size_t i = 0; i < N_T; i++)
		c.only[i] = true;
	if (parse_args(argc, argv, &c) < 0) {
		fputs(usage, stderr);
		return 2;
	}
	main_pid = getpid();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	atexit(stop_all);

	/* Latency samples, written by each reader child, read here. */
	lat = mmap(NULL, c.records * sizeof(*lat), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bench-peers-XXXXXX");
	if (lat == MAP_FAILED || !mkdtemp(tmpdir)) {
		tmpdir[0] = '\0';
		fprintf(stderr, "bench_peers: setup: %s\n", strerror(errno));
		return 2;
	}

	/* Daemons first, before we pin ourselves: they inherit no CPU. */
	for (size_t i = 0; i < N_T; i++) {
		const struct transport *t = transports[i];
		char why[256] = "";

		for (uint32_t s = 0; s < c.n_sizes; s++)
			cells[s][i].st = c.only[i] ? ST_OK : ST_SKIPPED;
		if (!c.only[i])
			continue;
		int rc = 0;
		if (t->absent) {
			snprintf(why, sizeof(why), "absent (install Debian %s)", t->absent);
			rc = -ENOENT;
		} else if (t->start) {
			rc = t->start(tmpdir, c.sizes, c.n_sizes, why, sizeof(why));
			started[i] = rc == 0;
		}
		if (rc < 0) {
			for (uint32_t s = 0; s < c.n_sizes; s++) {
				cells[s][i].st = rc == -ENOENT ? ST_ABSENT : ST_ERROR;
				snprintf(cells[s][i].why, sizeof(cells[s][i].why), "%s", why);
			}
			/* Absent, or its daemon busy with another run (-EBUSY):
			 * said in its rows, the others' figures stand. */
			if (rc != -ENOENT && rc != -EBUSY)
				setup_ok = false;
		}
	}
	sched_getaffinity(0, sizeof(peers_all_cpus), &peers_all_cpus);
	if (c.pin && two_cpus(&c.cpu_writer, &c.cpu_reader) >= 2)
		pin_to(c.cpu_writer);
	print_header(&c);

	for (uint32_t s = 0; s < c.n_sizes; s++) {
		measure_size(&c, s, lat, &tag, &setup_ok, &data_ok);
		if (c.json)
			print_size_json(s, c.sizes[s]);
		else
			print_size_text(s, c.sizes[s]);
	}
	stop_all();
	if (c.json)
		printf("{\"bench\":\"peers\",\"data_ok\":%s,\"complete\":%s}\n",
		       data_ok ? "true" : "false", setup_ok ? "true" : "false");
	else if (!data_ok)
		printf("\nbench_peers: DATA CHECK FAILED (see above); no figures for those\n");
	if (!data_ok)
		return 1;
	return setup_ok ? 0 : 2;
}
