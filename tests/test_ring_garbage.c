/* SPDX-License-Identifier: MIT */
/*
 * A reader process that writes garbage into its cursor (every field of it,
 * thousands of times) cannot crash or hang the writer, and costs the other
 * readers nothing: the writer evicts it and goes on, and a verifying reader
 * sees every record intact. DESIGN.md invariant 8, across processes.
 */
#include <signal.h>
#include <sys/wait.h>

#include "ring_helpers.h"
#include "client/reader_priv.h"
#include "shm/arena_priv.h"
#include "util/atomics.h"
#include "util/clock.h"

#define TOTAL 400000
#define MAXLEN 600

static void scribbler(const char *name, int ready_fd)
{
	xr_reader_opts o = {.policy = XR_POLICY_LOSSLESS, .label = "scribbler"};
	xr_reader *r;
	uint64_t x = 12345;

	if (xr_reader_attach(name, &o, &r) < 0)
		_exit(2);
	/* Everything this reader may write: its page, sleep word and wake
	 * hints included, rewritten with random words as fast as it can. */
	struct xr_peer_page *pg = xr__reader_page(r);
	struct xr_cursor *c = &pg->cursors[0];
	if (write(ready_fd, "g", 1) != 1)
		_exit(4);
	for (;;) {
		x = xr_mix(x);
		xr_store_relaxed(&c->lease, x);
		xr_store_relaxed(&c->pos, xr_mix(x + 1));
		xr_store_relaxed(&c->next_seq, xr_mix(x + 2));
		xr_store_relaxed(&c->read, xr_mix(x + 3));
		xr_store_relaxed(&c->dropped, xr_mix(x + 4));
		xr_store_relaxed(&c->wake_pos, xr_mix(x + 5));
		xr_store_relaxed(&c->wake_need, (uint32_t)xr_mix(x + 6));
		xr_store_relaxed(&pg->sleep_gen, (uint32_t)xr_mix(x + 7));
	}
}

int main(void)
{
	char name[64];
	int ready[2];
	pid_t g;

	signal(SIGPIPE, SIG_IGN);
	alarm(300);
	xr_test_name(name, sizeof(name), "garbage");
	xr_arena *a = xr_test_arena(name, XR_POLICY_LOSSLESS, 2u << 20, 16, XR_HUGEPAGES_PREFER);
	xr_writer *w = xr_test_writer(a);
	xr_reader *v;

	CHECK(pipe(ready) == 0);
	if ((g = fork()) == 0)
		scribbler(name, ready[1]);
	char ch;
	CHECK(read(ready[0], &ch, 1) == 1);
	CHECK_RC(xr_reader_attach(name, NULL, &v), 0);

	/* Write and verify in turns, so the verifier never blocks the writer
	 * and any wait is the scribbler's doing. */
	uint64_t next = 0, longest = 0;
	while (xr_writer_next_seq(w) < TOTAL) {
		for (int i = 0; i < 200 && xr_writer_next_seq(w) < TOTAL; i++) {
			uint64_t seq = xr_writer_next_seq(w);
			int rc = xr_test_put(w, xr_stamp_len(seq, MAXLEN));
			if (rc == -EAGAIN) {
				xr_writer_publish(w);
				break; /* the verifier holds the space: drain first */
			}
			CHECK_RC(rc, 0);
		}
		xr_writer_publish(w);
		uint64_t t0 = xr__now_ns();
		xr_batch b;
		int n;
		while ((n = xr_reader_read(v, 1, 512, 0, &b)) > 0) {
			xr_test_check_batch(&b, &next, true);
			CHECK_RC(xr_batch_release(v, &b), 0);
		}
		CHECK_RC(n, 0);
		if (xr__now_ns() - t0 > longest)
			longest = xr__now_ns() - t0;
	}
	CHECK_EQ(next, TOTAL);
	uint64_t ev = xr_load_relaxed(&a->hdr->rings[0].evictions);
	printf("garbage cursor: %d records verified, scribbler evicted %llu time(s)\n", TOTAL,
	       (unsigned long long)ev);
	CHECK(ev >= 1);
	kill(g, SIGKILL);
	int status;
	CHECK(waitpid(g, &status, 0) == g);
	xr_reader_detach(v);
	xr_test_destroy(a);
	return 0;
}
