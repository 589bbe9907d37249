/* SPDX-License-Identifier: MIT */
/*
 * Invariant 2 of ../shared/DESIGN.md: a ring's writer takes no lock and
 * makes no system call per record. The writing thread installs a seccomp
 * filter under which any system call but _exit and sigreturn (of this
 * architecture's convention: a 32-bit call is killed too) kills it, then
 * writes and publishes; the kernel is the judge. A lock that ever waited would be a futex call; a clock that
 * left the vDSO, a wake sent, a sleep, an madvise: all killed. (Not strict
 * mode itself: on Linux 6.18 in a Firecracker VM, a vDSO clock_gettime()
 * in a thread in strict mode dies of SIGSEGV now and then, without any
 * system call; under the filter, and without seccomp, it never does.)
 *
 *   no_readers       1,000,000 records of 64 bytes, published every 64, on a
 *                    lossy ring of 1 MiB nobody reads: about 76 laps, so
 *                    every reclaim (make_room, the lease scan) runs too
 *   spinning_reader  the same while a spinning lossy reader (another
 *                    thread, outside the filter) checks what it gets: the
 *                    writer scans its lease at every reclaim, and drops
 *                    records rather than wait when it is in the way
 *   one_writer       a ring has one writer: xr_arena_writer() hands out the
 *                    same handle for a ring however often it is asked
 *
 * A sleeping reader costs its writers one send per publish that brings its
 * batch (shm/wake.c): per publish, not per record, and not tested here.
 */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "peer_helpers.h"
#include "ring_helpers.h"
#include "shm/arena_priv.h"
#include "util/atomics.h"

#if defined(__SANITIZE_ADDRESS__) || XR_TEST_TSAN
static const bool under_sanitizer = true;
#else
static const bool under_sanitizer = false;
#endif

#define RECORDS 1000000u
#define LEN 64u

struct job {
	xr_writer *w;
	_Atomic int done; /* 1: wrote them all, 2: failed */
};

/* A filter stricter than strict mode: only exit (how the writer ends) and
 * rt_sigreturn, and only of this architecture's calling convention: a
 * 32-bit call (int 0x80) or an x32 one is another table of numbers, and
 * its number would pass a check of the number alone. Anything else kills
 * the calling thread. 0 or -1 (then the test cannot judge: it fails). */
static int strict_filter(void)
{
#if defined(__x86_64__)
	enum { ARCH = AUDIT_ARCH_X86_64 };
#elif defined(__aarch64__)
	enum { ARCH = AUDIT_ARCH_AARCH64 };
#else
#error "test_writer_syscalls: no seccomp architecture for this machine"
#endif
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_THREAD),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigreturn, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_THREAD),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0 ? -1 : 0;
}

/* The writer, under the filter from its first record on. Ends with the raw
 * exit system call (the filter's only way out; pthread_exit is not). */
static void *write_strict(void *p)
{
	struct job *j = p;

	if (strict_filter() != 0) {
		xr_store_release(&j->done, 2);
		syscall(SYS_exit, 0);
	}
	for (uint32_t i = 0; i < RECORDS; i++) {
		void *q;
		uint64_t seq = xr_writer_next_seq(j->w);
		int rc = xr_writer_reserve(j->w, LEN, &q);
		if (rc == XR_EDROPPED)
			continue; /* a lease in the way: dropped, not waited for */
		if (rc != 0) {
			xr_store_release(&j->done, 2);
			syscall(SYS_exit, 0);
		}
		xr_stamp(q, seq, LEN);
		xr_writer_commit(j->w);
		if (i % 64 == 63)
			xr_writer_publish(j->w);
	}
	xr_writer_publish(j->w);
	xr_store_release(&j->done, 1);
	syscall(SYS_exit, 0);
	return NULL;
}

/* Runs write_strict in a child process (a writer killed leaves its arena
 * and reader to that child); with_reader: a spinning lossy reader thread
 * beside it. */
static void run(const char *tag, bool with_reader)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		alarm(60); /* not inherited from the parent */
		char name[64];
		xr_test_name(name, sizeof(name), tag);
		xr_arena *a = xr_test_arena(name, XR_POLICY_LOSSY, 1u << 20, 16, XR_HUGEPAGES_OFF);
		struct job j = {.w = xr_test_writer(a)};
		xr_reader *r = NULL;
		if (with_reader) {
			xr_reader_opts o = {.wait = XR_WAIT_SPIN, .policy = XR_POLICY_LOSSY};
			CHECK_RC(xr_reader_attach(name, &o, &r), 0);
		}
		pthread_t th;
		CHECK_RC(pthread_create(&th, NULL, write_strict, &j), 0);
		/* The filter kills the offending thread alone: its end, seen
		 * by the join, without done = 1 is the verdict. */
		uint64_t next = 0;
		while (pthread_tryjoin_np(th, NULL) != 0) {
			xr_batch b;
			if (r && xr_reader_read(r, 1, 1024, 0, &b) > 0) {
				xr_test_check_batch(&b, &next, false);
				CHECK_RC(xr_batch_release(r, &b), 0);
			}
		}
		int done = xr_load_acquire(&j.done);
		if (done != 1) {
			xr_test_destroy(a);
			_exit(done == 2 ? 4 : 3); /* 3: killed by the filter */
		}
		/* Lapped many times: every reclaim ran under the filter. */
		CHECK(xr_load_relaxed(&a->hdr->rings[0].tail) > 8u * (1u << 20));
		if (r) {
			xr_batch b;
			while (next < RECORDS && xr_reader_read(r, 1, 1024, 0, &b) > 0) {
				xr_test_check_batch(&b, &next, false);
				CHECK_RC(xr_batch_release(r, &b), 0);
			}
			CHECK(next > 0 && next <= RECORDS);
			xr_reader_detach(r);
		}
		xr_test_destroy(a);
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 4)
		FAILF("%s: xr_writer_reserve failed in the writer", tag);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
		FAILF("%s: the writer made a system call: its thread was killed by the seccomp "
		      "filter", tag);
	if (WIFSIGNALED(st))
		FAILF("%s: the child died of signal %d (%s)", tag, WTERMSIG(st),
		      strsignal(WTERMSIG(st)));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	printf("%s: %u records written and published with no system call\n", tag, RECORDS);
}

static void one_writer(void)
{
	char name[64];
	xr_writer *w1, *w2;

	xr_test_name(name, sizeof(name), "onew");
	xr_arena *a = xr_test_arena(name, XR_POLICY_LOSSY, 64u << 10, 16, XR_HUGEPAGES_OFF);
	CHECK_RC(xr_arena_writer(a, 0, 0, &w1), 0);
	CHECK_RC(xr_arena_writer(a, 0, 0, &w2), 0);
	CHECK(w1 == w2);
	CHECK_RC(xr_arena_writer(a, 0, 1, &w2), -EINVAL); /* no second ring to write */
	xr_test_destroy(a);
	printf("one_writer: one handle per ring\n");
}

int main(void)
{
	alarm(100);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* A sanitizer's runtime makes system calls of its own in the
	 * writer's thread (its allocator, its reports): not ours to judge. */
	if (under_sanitizer) {
		printf("no_readers, spinning_reader: skipped under a sanitizer\n");
	} else {
		run("no_readers", false);
		run("spinning_reader", true);
	}
	one_writer();
	return 0;
}
