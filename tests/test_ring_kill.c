/* SPDX-License-Identifier: MIT */
/*
 * A reader killed with SIGKILL while it holds a lease corrupts nothing for
 * the others, and does not stop the writer for long: its connection ends with
 * it (a zombie has closed its descriptors), the control server releases its
 * slot, and the writer, which honours only leases of slots the engine holds
 * for someone, goes on. Lossless and lossy streams; readers in other
 * processes.
 */
#include <signal.h>
#include <sys/wait.h>

#include "ring_helpers.h"
#include "shm/arena_priv.h"
#include "util/atomics.h"
#include "util/clock.h"

#define TOTAL 300000
#define MAXLEN 512

/* Reads every record, checks each; reports its accounting on fd. */
static void verifier(const char *name, xr_policy policy, int ready_fd, int out_fd)
{
	xr_reader_opts o = {.policy = policy, .label = "verifier"};
	xr_reader *r;
	xr_reader_stats s;
	uint64_t next = 0, got = 0;

	if (xr_reader_attach(name, &o, &r) < 0)
		_exit(2);
	if (write(ready_fd, "v", 1) != 1)
		_exit(3);
	for (;;) {
		xr_batch b;
		int n = xr_reader_read(r, 1, 256, 200000000, &b);
		if (n == XR_ECLOSED)
			break; /* everything published has been read */
		if (n < 0)
			FAILF("verifier read: %s", xr_strerror(n));
		if (n == 0)
			continue;
		xr_test_check_batch(&b, &next, policy == XR_POLICY_LOSSLESS);
		got += b.count;
		xr_batch_release(r, &b);
	}
	CHECK_RC(xr_reader_stats_get(r, &s), 0);
	CHECK_EQ(s.read, got);
	CHECK_EQ(s.pending, 0);
	CHECK_EQ(s.written, s.read + s.dropped);
	CHECK(s.written >= TOTAL);
	if (policy == XR_POLICY_LOSSLESS)
		CHECK_EQ(s.dropped, 0);
	if (write(out_fd, &s, sizeof(s)) != (ssize_t)sizeof(s))
		_exit(4);
	xr_reader_detach(r);
	_exit(0);
}

/* Reads a while, then holds a batch, says so, and waits to be killed. */
static void victim(const char *name, xr_policy policy, int ready_fd, int holding_fd)
{
	xr_reader_opts o = {.policy = policy, .label = "victim"};
	xr_reader *r;
	uint64_t got = 0;
	xr_batch b;

	if (xr_reader_attach(name, &o, &r) < 0)
		_exit(2);
	if (write(ready_fd, "k", 1) != 1)
		_exit(3);
	/* Few enough that even a slow (sanitized) victim gets there long before
	 * a lossy writer is through its records. */
	while (got < 1000) {
		int n = xr_reader_read(r, 1, 256, -1, &b);
		if (n <= 0)
			_exit(5);
		got += (uint64_t)n;
		xr_batch_release(r, &b);
	}
	if (xr_reader_read(r, 1, 16, -1, &b) <= 0)
		_exit(6);
	if (write(holding_fd, "h", 1) != 1)
		_exit(7);
	for (;;)
		pause();
}

/* Whether the process pid holds a slot, as the engine's reader table shows
 * it (the pid is SO_PEERCRED's, recorded by the engine). */
static bool slot_of(const xr_arena *a, pid_t pid)
{
	for (uint32_t i = 0; i < a->lay.max_readers; i++)
		if (xr_load_acquire(&a->infos[i].state) != XR_SLOT_FREE && a->infos[i].pid == pid)
			return true;
	return false;
}

static void scenario(const char *tag, xr_policy policy)
{
	char name[64];
	int ready[2], holding[2], out[2];
	pid_t v, k;

	xr_test_name(name, sizeof(name), tag);
	xr_arena *a = xr_test_arena(name, policy, 2u << 20, 16, XR_HUGEPAGES_PREFER);
	xr_writer *w = xr_test_writer(a);
	CHECK(pipe(ready) == 0 && pipe(holding) == 0 && pipe(out) == 0);
	if ((v = fork()) == 0)
		verifier(name, policy, ready[1], out[1]);
	if ((k = fork()) == 0)
		victim(name, policy, ready[1], holding[1]);
	CHECK(v > 0 && k > 0);
	char c;
	CHECK(read(ready[0], &c, 1) == 1 && read(ready[0], &c, 1) == 1);

	uint64_t longest_wait = 0, stalls = 0, written = 0;
	uint64_t deadline = xr__now_ns() + 60000000000ull;
	bool killed = false;
	/* Write TOTAL records, and go on until the engine has released the
	 * victim's slot (at its hangup). */
	while (written + stalls < TOTAL || !killed || slot_of(a, k)) {
		uint64_t seq = xr_writer_next_seq(w);
		uint32_t len = xr_stamp_len(seq, MAXLEN);
		int rc = xr_test_put(w, len);

		if (xr__now_ns() > deadline)
			FAILF("%s: not done after 60 s (killed %d, victim slot %s)", tag, killed,
			      slot_of(a, k) ? "still held" : "released");
		if (rc == -EAGAIN) {
			uint64_t t0 = xr__now_ns();
			/* Short waits: the kill below must still get its turn. */
			rc = xr_writer_wait(w, len, 100000000);
			if (rc < 0 && rc != -ETIMEDOUT)
				FAILF("%s: writer wait: %s", tag, xr_strerror(rc));
			if (rc == 0 && xr__now_ns() - t0 > longest_wait)
				longest_wait = xr__now_ns() - t0;
			if (rc == 0)
				continue;
		}
		if (rc == XR_EDROPPED)
			stalls++;
		else if (rc != -ETIMEDOUT)
			CHECK_RC(rc, 0);
		written += rc == 0;
		if ((seq & 31) == 0)
			xr_writer_publish(w);
		if (!killed && (rc == -ETIMEDOUT || (seq & 1023) == 0)) {
			/* Once the victim says it holds a batch, kill it: it stays a
			 * zombie until the end (not waited for), which must count as
			 * dead. */
			struct timeval tv = {0, 0};
			fd_set fds;
			FD_ZERO(&fds);
			FD_SET(holding[0], &fds);
			if (select(holding[0] + 1, &fds, NULL, NULL, &tv) == 1) {
				CHECK(read(holding[0], &c, 1) == 1);
				CHECK(kill(k, SIGKILL) == 0);
				killed = true;
			}
		}
	}
	xr_writer_publish(w);
	CHECK(killed);
	/* The loop ended, so the victim's slot was released (the zombie is
	 * still unwaited: gone all the same). Closing ends the verifier's
	 * reading. */
	CHECK(!slot_of(a, k));
	xr_test_destroy(a);

	xr_reader_stats s;
	CHECK(read(out[0], &s, sizeof(s)) == (ssize_t)sizeof(s));
	int status;
	CHECK(waitpid(v, &status, 0) == v && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(waitpid(k, &status, 0) == k && WIFSIGNALED(status));
	CHECK_EQ(s.written, written + stalls);
	printf("  %s: verifier read %llu, dropped %llu; writer dropped %llu, longest wait %.1f ms\n",
	       tag, (unsigned long long)s.read, (unsigned long long)s.dropped,
	       (unsigned long long)stalls, (double)longest_wait / 1e6);
	if (policy == XR_POLICY_LOSSY)
		CHECK(s.dropped >= stalls);
}

/* The engine killed: a reader drains what was published, then gets
 * XR_ECLOSED, never a hang. */
static void engine_killed(void)
{
	char name[64];
	int ready[2];
	pid_t pid;

	xr_test_name(name, sizeof(name), "kill-engine");
	CHECK(pipe(ready) == 0);
	if ((pid = fork()) == 0) {
		xr_arena *a = xr_test_arena(name, XR_POLICY_LOSSLESS, 2u << 20, 16,
					    XR_HUGEPAGES_PREFER);
		xr_writer *w = xr_test_writer(a);
		for (int i = 0; i < 1000; i++)
			if (xr_test_put(w, xr_stamp_len((uint64_t)i, MAXLEN)) < 0)
				_exit(2);
		xr_writer_publish(w);
		if (write(ready[1], "w", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	char c;
	CHECK(read(ready[0], &c, 1) == 1);
	xr_reader *r;
	CHECK_RC(xr_reader_attach(name, NULL, &r), 0);
	CHECK(kill(pid, SIGKILL) == 0);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	/* Attached after the records were written: nothing to read, and the
	 * engine is gone. */
	uint64_t t0 = xr__now_ns();
	xr_batch b;
	CHECK_RC(xr_reader_read(r, 1, 100, 10000000000ll, &b), XR_ECLOSED);
	double ms = (double)(xr__now_ns() - t0) / 1e6;
	printf("  engine SIGKILL noticed by a blocked reader after %.1f ms\n", ms);
	CHECK(ms < 1000);
	xr_reader_detach(r);
	/* The dead engine's file is stale: a new engine replaces it. */
	xr_arena *a = xr_test_arena(name, XR_POLICY_LOSSLESS, 2u << 20, 16, XR_HUGEPAGES_PREFER);
	xr_test_destroy(a);
	close(ready[0]);
	close(ready[1]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	alarm(300);
	scenario("kill-lossless", XR_POLICY_LOSSLESS);
	scenario("kill-lossy", XR_POLICY_LOSSY);
	engine_killed();
	printf("reader SIGKILL: passed\n");
	return 0;
}
