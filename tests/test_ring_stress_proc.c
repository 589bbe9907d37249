/* SPDX-License-Identifier: MIT */
/*
 * Cross-process stress (see ring_stress.h for the scenario): the writer in
 * this process, each reader in a child process of its own that attaches by
 * engine name, as a trainer would. Usage: test_ring_stress_proc [RECORDS]
 * (default 1,000,000 per phase). Runs with or without huge pages.
 */
#include <signal.h>
#include <sys/wait.h>

#include "ring_stress.h"

struct child {
	pid_t pid;
	int role;
	int res_fd;
};

static struct child spawn(const char *name, int role, uint64_t total, int ready_fd)
{
	int fds[2];
	struct child c = {.role = role};

	CHECK(pipe(fds) == 0);
	c.pid = fork();
	CHECK(c.pid >= 0);
	if (c.pid == 0) {
		struct stress_result res = {0};
		xr_reader_opts o = {
			.policy = role <= ROLE_LOSSLESS_HOLD2 ? XR_POLICY_LOSSLESS : XR_POLICY_LOSSY,
			.label = "stress",
		};
		xr_reader *r;
		int rc = xr_reader_attach(name, &o, &r);

		close(fds[0]);
		if (rc < 0) {
			snprintf(res.err, sizeof(res.err), "attach: %s", xr_strerror(rc));
		} else {
			if (write(ready_fd, "r", 1) != 1)
				_exit(3);
			stress_read(r, role, total, &res);
			xr_reader_detach(r);
		}
		_exit(write(fds[1], &res, sizeof(res)) == (ssize_t)sizeof(res) ? 0 : 2);
	}
	close(fds[1]);
	c.res_fd = fds[0];
	return c;
}

static void collect(struct child *c, const char *phase, struct stress_result *out)
{
	int status;

	memset(out, 0, sizeof(*out));
	if (read(c->res_fd, out, sizeof(*out)) != (ssize_t)sizeof(*out))
		FAILF("%s: reader role %d sent no result", phase, c->role);
	CHECK(waitpid(c->pid, &status, 0) == c->pid);
	close(c->res_fd);
	if (!out->ok)
		FAILF("%s: reader role %d: %s", phase, c->role, out->err);
	printf("  %s reader role %d: read %llu, dropped %llu, %llu batches, %llu invariant checks\n",
	       phase, c->role, (unsigned long long)out->read, (unsigned long long)out->dropped,
	       (unsigned long long)out->batches, (unsigned long long)out->invariant_checks);
}

static void phase(const char *tag, xr_policy policy, const int *roles, int n_roles,
		  uint64_t total)
{
	char name[64];
	int ready[2];
	struct child kids[4];
	struct stress_result res[4];
	struct stress_writer_result wr;

	xr_test_name(name, sizeof(name), tag);
	xr_arena *a = stress_fixed_len
			      ? xr_test_arena_fixed(name, policy, 2u << 20, 16, &stress_fixed_len)
			      : xr_test_arena(name, policy, 2u << 20, 16, XR_HUGEPAGES_PREFER);
	xr_writer *w = xr_test_writer(a);

	CHECK(pipe(ready) == 0);
	for (int i = 0; i < n_roles; i++)
		kids[i] = spawn(name, roles[i], total, ready[1]);
	for (int i = 0; i < n_roles; i++) {
		char c;
		if (read(ready[0], &c, 1) != 1)
			FAILF("%s: a reader failed to attach", tag);
	}
	uint64_t t0 = xr__now_ns();
	CHECK_RC(stress_write(w, total, &wr), 0);
	for (int i = 0; i < n_roles; i++)
		collect(&kids[i], tag, &res[i]);
	double s = (double)(xr__now_ns() - t0) / 1e9;
	printf("  %s: %llu records (%llu dropped at the writer) in %.2f s, writer waited %llu times\n",
	       tag, (unsigned long long)total, (unsigned long long)wr.dropped, s,
	       (unsigned long long)wr.waits);
	if (policy == XR_POLICY_LOSSLESS)
		CHECK_EQ(wr.dropped, 0);
	else
		CHECK_EQ(wr.waits, 0);
	for (int i = 0; i < n_roles; i++)
		if (res[i].dropped < wr.dropped)
			FAILF("%s: reader role %d counted %llu drops, the writer dropped %llu", tag,
			      roles[i], (unsigned long long)res[i].dropped,
			      (unsigned long long)wr.dropped);
	close(ready[0]);
	close(ready[1]);
	xr_test_destroy(a);
}

int main(int argc, char **argv)
{
	uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
	static const int lossless_roles[] = {ROLE_LOSSLESS, ROLE_LOSSLESS_HOLD2, ROLE_LOSSY_STALL};
	static const int lossy_roles[] = {ROLE_LOSSY_FAST, ROLE_LOSSY_HOLD};

	signal(SIGPIPE, SIG_IGN);
	alarm(600); /* a hang fails the test instead of wedging the suite */
	printf("stress (processes): %llu records per phase\n", (unsigned long long)total);
	phase("lossless", XR_POLICY_LOSSLESS, lossless_roles, 3, total);
	phase("lossy", XR_POLICY_LOSSY, lossy_roles, 2, total / 4);
	stress_fixed_len = 1; /* one record length: readers take runs unwalked */
	phase("fixed-lossless", XR_POLICY_LOSSLESS, lossless_roles, 3, total);
	phase("fixed-lossy", XR_POLICY_LOSSY, lossy_roles, 2, total / 4);
	printf("stress (processes): passed\n");
	return 0;
}
