/* SPDX-License-Identifier: MIT */
/*
 * xring, as bench_ring runs it: an arena with one lossless stream of opaque
 * records, its control server, the writer in the parent; the reader attaches
 * by the engine's name through the control socket, as any lossless reader
 * does, and reads batches in place. Closing the arena ends the stream
 * (XR_ECLOSED once the reader has read everything).
 *
 * Throughput runs publish like bench_ring (every 64 records or 64 KiB) and
 * the reader waits as readers do by default (spin briefly, then sleep until
 * woken); latency runs publish each record at once, and the reader waits
 * with XR_WAIT_SPIN or XR_WAIT_DEFAULT.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xring/arena.h"
#include "xring/error.h"
#include "xring/reader.h"
#include "xring/server.h"
#include "xring/types.h"
#include "xring/writer.h"
#include "peers.h"
#include "bench_util.h"

struct xr_state {
	char name[XR_NAME_MAX + 1];
	char arena_path[256], sock_path[256]; /* for xr_abandon */
	xr_arena *a;
	xr_server *srv;
	xr_writer *w;
};

static int xr_prepare(const struct run *r, void **out)
{
	struct xr_state *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	snprintf(s->name, sizeof(s->name), "bench-peers-%d-%u", (int)getpid(), r->tag);
	xr_stream_spec ss = {
		.policy = XR_POLICY_LOSSLESS,
		.n_rings = 1,
		.ring_bytes = r->ring_bytes,
		.frame_align = 16,
		.kind = XR_RECORD_OPAQUE,
	};
	xr_arena_spec as = {
		.name = s->name,
		.streams = &ss,
		.n_streams = 1,
		.max_readers = 4,
		.hugepages = r->huge ? XR_HUGEPAGES_PREFER : XR_HUGEPAGES_OFF,
		.numa_node = XR_NUMA_DEFAULT,
	};
	rc = xr_arena_create(&as, &s->a);
	if (rc < 0) {
		fprintf(stderr, "bench_peers: xr_arena_create: %s (%s)\n", xr_strerror(rc),
			xr_arena_last_note());
		free(s);
		return rc;
	}
	/* Readers attach through the control socket: setup only. */
	rc = xr_server_start(s->a, NULL, &s->srv);
	if (rc == 0)
		rc = xr_arena_writer(s->a, 0, 0, &s->w);
	if (rc < 0) {
		fprintf(stderr, "bench_peers: xring setup: %s\n", xr_strerror(rc));
		if (s->srv)
			xr_server_stop(s->srv);
		xr_arena_destroy(s->a);
		free(s);
		return rc;
	}
	xr_arena_facts f;
	xr_arena_facts_get(s->a, &f);
	snprintf(s->arena_path, sizeof(s->arena_path), "%s", f.path ? f.path : "");
	snprintf(s->sock_path, sizeof(s->sock_path), "%s", xr_server_path(s->srv));
	*out = s;
	return 0;
}

/* The arena's file and the control socket carry this process's pid: no one
 * would ever reclaim them. unlink(2) is async-signal-safe. */
static void xr_abandon(void *st)
{
	struct xr_state *s = st;

	if (s->arena_path[0])
		unlink(s->arena_path);
	if (s->sock_path[0])
		unlink(s->sock_path);
}

static void xr_read(const struct run *r, void *st, int ready_fd, struct rres *res)
{
	struct xr_state *s = st;
	xr_reader_opts o = {
		.policy = XR_POLICY_LOSSLESS,
		.label = "bench_peers",
		.wait = r->mode == M_LAT_SPIN ? XR_WAIT_SPIN : XR_WAIT_DEFAULT,
	};
	xr_reader *rd = NULL;
	int32_t rc = xr_reader_attach(s->name, &o, &rd);
	xr_batch b;

	write_all(ready_fd, &rc, sizeof(rc));
	if (rc < 0) {
		peers_fail(res, rc, "attach: %s", xr_strerror(rc));
		return;
	}
	for (;;) {
		int n = xr_reader_read(rd, 1, r->batch, -1, &b);

		if (n == XR_ECLOSED)
			break;
		if (n < 0) {
			peers_fail(res, n, "xr_reader_read: %s", xr_strerror(n));
			break;
		}
		if (b.dropped && !res->bad++)
			snprintf(res->why, sizeof(res->why), "%llu records dropped before %llu",
				 (unsigned long long)b.dropped, (unsigned long long)b.first_seq);
		const xr_frame *f = b.first;
		for (int i = 0; i < n; i++, f = xr_frame_next(f)) {
			if (f->seq != res->records && !res->bad++)
				snprintf(res->why, sizeof(res->why),
					 "record %llu in frame of seq %llu",
					 (unsigned long long)res->records,
					 (unsigned long long)f->seq);
			take_record(r, xr_frame_data(f), f->len, res);
		}
		xr_batch_release(rd, &b);
	}
	xr_reader_detach(rd);
}

static void xr_write(const struct run *r, void *st, struct wres *res)
{
	struct xr_state *s = st;
	const bool lat = r->mode != M_TP;
	uint64_t seq = 0, rng = 0x2545F4914F6CDD1Dull ^ r->tag, t0 = 0;
	uint32_t pend = 0, pend_bytes = 0;

	res->t0 = peers_now();
	const uint64_t stop = res->t0 + r->write_ns;
	for (;;) {
		void *p;
		int rc;

		if (lat) {
			if (seq == r->n)
				break;
			peers_gap(r, &rng);
			t0 = peers_now();
		}
		/* A full ring makes reserve publish what is committed. */
		while ((rc = xr_writer_reserve(s->w, r->size, &p)) == -EAGAIN) {
			do
				rc = xr_writer_wait(s->w, r->size, -1);
			while (rc == -EINTR);
			if (rc < 0)
				break;
		}
		if (rc < 0) {
			peers_fail(res, rc, "reserve: %s", xr_strerror(rc));
			break;
		}
		fill_record(p, seq, r->size, t0, lat);
		xr_writer_commit(s->w);
		seq++;
		if (lat || peers_publish_due(r, &pend, &pend_bytes)) {
			xr_writer_publish(s->w);
			if (!lat && peers_now() >= stop)
				break;
		}
	}
	xr_writer_publish(s->w);
	res->t_end = peers_now();
	res->records = seq;
	/* The end-of-stream mark: the reader drains, then XR_ECLOSED. */
	xr_arena_close(s->a);
}

static void xr_cleanup(void *st)
{
	struct xr_state *s = st;

	xr_server_stop(s->srv);
	xr_arena_destroy(s->a);
	free(s);
}

const struct transport peers_xring = {
	.name = "xring",
	.prepare = xr_prepare,
	.read = xr_read,
	.write = xr_write,
	.cleanup = xr_cleanup,
	.abandon = xr_abandon,
};
