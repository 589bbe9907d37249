/* SPDX-License-Identifier: MIT */
/*
 * The threaded twin of test_ring_stress_proc: the same scenario
 * (ring_stress.h) with each reader on a thread of this process, so that
 * ThreadSanitizer sees every access of the protocol and can check its
 * ordering. Usage: test_ring_stress_threads [RECORDS] (default 200,000).
 */
#include <pthread.h>

#include "ring_stress.h"

struct reader_arg {
	const char *name;
	int role;
	uint64_t total;
	pthread_barrier_t *ready;
	struct stress_result res;
};

static void *reader_main(void *p)
{
	struct reader_arg *a = p;
	xr_reader_opts o = {
		.policy = a->role <= ROLE_LOSSLESS_HOLD2 ? XR_POLICY_LOSSLESS : XR_POLICY_LOSSY,
		.label = "stress-thread",
	};
	xr_reader *r;
	int rc = xr_reader_attach(a->name, &o, &r);

	if (rc < 0)
		snprintf(a->res.err, sizeof(a->res.err), "attach: %s", xr_strerror(rc));
	pthread_barrier_wait(a->ready);
	if (rc < 0)
		return NULL;
	stress_read(r, a->role, a->total, &a->res);
	xr_reader_detach(r);
	return NULL;
}

static void phase(const char *tag, xr_policy policy, const int *roles, int n, uint64_t total)
{
	char name[64];
	pthread_t th[4];
	struct reader_arg args[4];
	pthread_barrier_t ready;
	struct stress_writer_result wr;

	xr_test_name(name, sizeof(name), tag);
	xr_arena *a = stress_fixed_len
			      ? xr_test_arena_fixed(name, policy, 256u << 10, 16, &stress_fixed_len)
			      : xr_test_arena(name, policy, 256u << 10, 16, XR_HUGEPAGES_OFF);
	xr_writer *w = xr_test_writer(a);

	pthread_barrier_init(&ready, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++) {
		args[i] = (struct reader_arg){.name = name, .role = roles[i], .total = total,
					      .ready = &ready};
		CHECK(pthread_create(&th[i], NULL, reader_main, &args[i]) == 0);
	}
	pthread_barrier_wait(&ready);
	CHECK_RC(stress_write(w, total, &wr), 0);
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		if (!args[i].res.ok)
			FAILF("%s: reader role %d: %s", tag, roles[i], args[i].res.err);
		if (args[i].res.dropped < wr.dropped)
			FAILF("%s: reader role %d counted fewer drops than the writer made", tag, roles[i]);
		printf("  %s reader role %d: read %llu, dropped %llu\n", tag, roles[i],
		       (unsigned long long)args[i].res.read, (unsigned long long)args[i].res.dropped);
	}
	if (policy == XR_POLICY_LOSSLESS)
		CHECK_EQ(wr.dropped, 0);
	else
		CHECK_EQ(wr.waits, 0);
	pthread_barrier_destroy(&ready);
	xr_test_destroy(a);
}

int main(int argc, char **argv)
{
	uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
	static const int lossless_roles[] = {ROLE_LOSSLESS, ROLE_LOSSLESS_HOLD2, ROLE_LOSSY_STALL};
	static const int lossy_roles[] = {ROLE_LOSSY_FAST, ROLE_LOSSY_HOLD};

	alarm(600);
	printf("stress (threads): %llu records per phase\n", (unsigned long long)total);
	phase("tlossless", XR_POLICY_LOSSLESS, lossless_roles, 3, total);
	phase("tlossy", XR_POLICY_LOSSY, lossy_roles, 2, total / 4);
	/* Again on a ring of one record length, which readers take without
	 * walking its frames (shm/ring_reader.c, take_fixed). */
	stress_fixed_len = 1;
	phase("tfixed-lossless", XR_POLICY_LOSSLESS, lossless_roles, 3, total);
	phase("tfixed-lossy", XR_POLICY_LOSSY, lossy_roles, 2, total / 4);
	printf("stress (threads): passed\n");
	return 0;
}
