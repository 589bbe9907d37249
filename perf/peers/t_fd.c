/* SPDX-License-Identifier: MIT */
/*
 * A pipe and a Unix stream socket (socketpair), as a careful user would use
 * them: the writer fills records into a buffer of its own and write()s it
 * whole when the publish rule says so (bench_ring's: 64 records or 64 KiB),
 * so that small records do not cost a system call each; the reader read()s
 * as much as there is into a buffer of its own, checks every whole record
 * in it and keeps the partial one for the next read. Both copy every byte
 * twice (into the kernel, out of it): that is the price of the transport.
 * Kernel buffer sizes are left at their defaults (pipe 64 KiB, socket
 * net.core.wmem_default), which is what users get. The end of the stream is
 * the writer's close (EOF).
 *
 * Latency runs write each record at once; the reader blocks in read(), or
 * spins on a non-blocking descriptor (EAGAIN).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peers.h"
#include "bench_util.h"

struct fd_state {
	int rfd, wfd;
};

static int fd_prepare_pipe(const struct run *r, void **out)
{
	struct fd_state *s = malloc(sizeof(*s));
	int fds[2];

	(void)r;
	if (!s)
		return -ENOMEM;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		int rc = -errno;
		free(s);
		return rc;
	}
	s->rfd = fds[0];
	s->wfd = fds[1];
	*out = s;
	return 0;
}

static int fd_prepare_socket(const struct run *r, void **out)
{
	struct fd_state *s = malloc(sizeof(*s));
	int fds[2];

	(void)r;
	if (!s)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
		int rc = -errno;
		free(s);
		return rc;
	}
	s->rfd = fds[0];
	s->wfd = fds[1];
	*out = s;
	return 0;
}

static void fd_read(const struct run *r, void *st, int ready_fd, struct rres *res)
{
	struct fd_state *s = st;
	const bool spin = r->mode == M_LAT_SPIN;
	size_t cap = r->size * 2 > (256u << 10) ? r->size * 2 : 256u << 10, have = 0;
	uint64_t *buf = aligned_alloc(64, cap);
	int32_t ok = 0;

	/* Our copy of the writer's end would keep EOF from coming. */
	close(s->wfd);
	s->wfd = -1;
	if (!buf)
		ok = -ENOMEM;
	else if (spin && fcntl(s->rfd, F_SETFL, O_NONBLOCK) < 0)
		ok = -errno;
	write_all(ready_fd, &ok, sizeof(ok));
	if (ok < 0) {
		peers_fail(res, ok, "setup: %s", strerror(-ok));
		free(buf);
		return;
	}
	for (;;) {
		ssize_t n = read(s->rfd, (char *)buf + have, cap - have);

		if (n < 0 && errno == EAGAIN) {
			peers_relax();
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			peers_fail(res, -errno, "read: %s", strerror(errno));
			break;
		}
		if (n == 0) {
			if (have)
				peers_fail(res, -EPROTO, "%zu bytes of a record left at EOF", have);
			break;
		}
		have += (size_t)n;
		size_t off = 0;
		while (have - off >= r->size) {
			take_record(r, (const char *)buf + off, r->size, res);
			off += r->size;
		}
		/* Records are multiples of 8: the remainder stays aligned. */
		if (off && have - off)
			memmove(buf, (char *)buf + off, have - off);
		have -= off;
	}
	free(buf);
}

static void fd_write(const struct run *r, void *st, struct wres *res)
{
	struct fd_state *s = st;
	const bool lat = r->mode != M_TP;
	size_t cap = (size_t)r->publish_bytes + r->size, used = 0;
	uint64_t *buf = aligned_alloc(64, cap);
	uint64_t seq = 0, t0 = 0, rng = 0x2545F4914F6CDD1Dull ^ r->tag;
	uint32_t pend = 0, pend_bytes = 0;
	int rc;

	close(s->rfd);
	s->rfd = -1;
	if (!buf) {
		peers_fail(res, -ENOMEM, "no buffer");
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
		fill_record((uint64_t *)((char *)buf + used), seq, r->size, t0, lat);
		used += r->size;
		seq++;
		if (lat || peers_publish_due(r, &pend, &pend_bytes)) {
			rc = write_all(s->wfd, buf, used);
			if (rc < 0) {
				peers_fail(res, -errno, "write: %s", strerror(errno));
				goto out;
			}
			used = 0;
			if (!lat && peers_now() >= stop)
				break;
		}
	}
	if (used && write_all(s->wfd, buf, used) < 0)
		peers_fail(res, -errno, "write: %s", strerror(errno));
out:
	res->t_end = peers_now();
	res->records = seq;
	free(buf);
	close(s->wfd); /* the end of the stream */
	s->wfd = -1;
}

static void fd_cleanup(void *st)
{
	struct fd_state *s = st;

	if (s->rfd >= 0)
		close(s->rfd);
	if (s->wfd >= 0)
		close(s->wfd);
	free(s);
}

const struct transport peers_pipe = {
	.name = "pipe",
	.prepare = fd_prepare_pipe,
	.read = fd_read,
	.write = fd_write,
	.cleanup = fd_cleanup,
};

const struct transport peers_socket = {
	.name = "unix socket",
	.prepare = fd_prepare_socket,
	.read = fd_read,
	.write = fd_write,
	.cleanup = fd_cleanup,
};
