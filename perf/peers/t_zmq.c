/* SPDX-License-Identifier: MIT */
/*
 * ZeroMQ, PUSH to PULL over ipc:// (a Unix socket in the run's private
 * directory), a message per record: what a ZeroMQ user writes. The writer
 * fills a buffer of its own and zmq_send()s it (ZeroMQ copies it into a
 * message; its I/O thread batches messages onto the socket, so there is no
 * publish step of ours); the reader takes each message with zmq_msg_recv()
 * and checks it in place in ZeroMQ's buffer. High-water marks at their
 * defaults (1000 messages), at which PUSH blocks: lossless. An empty
 * message ends the stream; the writer's zmq_ctx_term() then waits (linger
 * forever, the default) until everything has gone out.
 *
 * Both sides run in children of their own: ZeroMQ starts an I/O thread per
 * context, which a later fork of the benchmark must not inherit. That
 * thread is left free to run on either CPU (zq_socket()); on a machine of
 * two CPUs it then shares them with the writer and the reader, which is
 * what ZeroMQ costs there. Blocking:
 * zmq_msg_recv(); spinning: zmq_msg_recv(ZMQ_DONTWAIT) until it has one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "peers.h"
#include "bench_util.h"

struct zmq_state {
	char path[160];     /* the socket file */
	char endpoint[180]; /* ipc://path */
};

/*
 * A context and a socket, whose I/O thread may run on any of our CPUs:
 * only the thread that calls ZeroMQ is pinned, like every transport's
 * writer and reader. (A pinned process would put the I/O thread on the
 * CPU its own spinning reader holds.)
 */
static void *zq_socket(void **ctx, int type)
{
	cpu_set_t mine;
	void *sock = NULL;
	bool pinned = sched_getaffinity(0, sizeof(mine), &mine) == 0 &&
		      sched_setaffinity(0, sizeof(peers_all_cpus), &peers_all_cpus) == 0;

	*ctx = zmq_ctx_new();
	if (*ctx)
		sock = zmq_socket(*ctx, type); /* the first socket starts the threads */
	if (pinned)
		sched_setaffinity(0, sizeof(mine), &mine);
	return sock;
}

static int zq_prepare(const struct run *r, void **out)
{
	struct zmq_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	snprintf(s->path, sizeof(s->path), "%s/zmq-%u", r->dir, r->tag);
	snprintf(s->endpoint, sizeof(s->endpoint), "ipc://%s", s->path);
	*out = s;
	return 0;
}

static void zq_read(const struct run *r, void *st, int ready_fd, struct rres *res)
{
	struct zmq_state *s = st;
	const int flags = r->mode == M_LAT_SPIN ? ZMQ_DONTWAIT : 0;
	void *ctx, *sock = zq_socket(&ctx, ZMQ_PULL);
	int32_t ok = 0;

	if (!sock || zmq_bind(sock, s->endpoint) < 0)
		ok = -errno;
	write_all(ready_fd, &ok, sizeof(ok));
	if (ok < 0) {
		peers_fail(res, ok, "PULL bind %.100s: %s", s->endpoint, zmq_strerror(-ok));
		goto out;
	}
	for (;;) {
		zmq_msg_t m;
		int n;

		zmq_msg_init(&m);
		n = zmq_msg_recv(&m, sock, flags);
		if (n < 0) {
			int e = errno;
			zmq_msg_close(&m);
			if (e == EAGAIN) {
				peers_relax();
				continue;
			}
			if (e == EINTR)
				continue;
			peers_fail(res, -e, "zmq_msg_recv: %s", zmq_strerror(e));
			break;
		}
		if (n == 0) { /* the end of the stream */
			zmq_msg_close(&m);
			break;
		}
		take_record(r, zmq_msg_data(&m), zmq_msg_size(&m), res);
		zmq_msg_close(&m);
	}
out:
	if (sock)
		zmq_close(sock);
	if (ctx)
		zmq_ctx_term(ctx);
}

static void zq_write(const struct run *r, void *st, struct wres *res)
{
	struct zmq_state *s = st;
	const bool lat = r->mode != M_TP;
	void *ctx, *sock = zq_socket(&ctx, ZMQ_PUSH);
	uint64_t *buf = aligned_alloc(64, r->size);
	uint64_t seq = 0, t0 = 0, rng = 0x2545F4914F6CDD1Dull ^ r->tag;
	uint32_t pend = 0, pend_bytes = 0;

	if (!sock || !buf || zmq_connect(sock, s->endpoint) < 0) {
		peers_fail(res, buf ? -errno : -ENOMEM, "PUSH connect %.100s: %s", s->endpoint,
			   zmq_strerror(errno));
		goto out;
	}
	res->t0 = peers_now();
	const uint64_t stop = res->t0 + r->write_ns;
	for (;;) {
		if (lat) {
			if (seq == r->n)
				break;
			peers_gap(r, &rng);
			t0 = peers_now();
		}
		fill_record(buf, seq, r->size, t0, lat);
		while (zmq_send(sock, buf, r->size, 0) < 0) {
			if (errno != EINTR) {
				peers_fail(res, -errno, "zmq_send: %s", zmq_strerror(errno));
				goto out;
			}
		}
		seq++;
		/* The clock as often as the others look at it. */
		if (!lat && peers_publish_due(r, &pend, &pend_bytes) && peers_now() >= stop)
			break;
	}
	if (zmq_send(sock, "", 0, 0) < 0)
		peers_fail(res, -errno, "zmq_send (end): %s", zmq_strerror(errno));
out:
	res->t_end = peers_now();
	res->records = seq;
	free(buf);
	if (sock)
		zmq_close(sock);
	if (ctx)
		zmq_ctx_term(ctx); /* linger: until the reader has it all */
}

static void zq_cleanup(void *st)
{
	struct zmq_state *s = st;

	unlink(s->path);
	free(s);
}

const struct transport peers_zmq = {
	.name = "zeromq",
	.fork_writer = true,
	.prepare = zq_prepare,
	.read = zq_read,
	.write = zq_write,
	.cleanup = zq_cleanup,
};
