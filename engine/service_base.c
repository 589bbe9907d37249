/* SPDX-License-Identifier: MIT */
#include "service_base.h"

#include <errno.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/closer.h"
#include "control/proto.h"

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83 /* Linux 6.16 */
#endif

int xr__svc_init(struct xr_svc_base *b, uint32_t stop_tag, uint32_t kick_tag)
{
	int rc;

	*b = (struct xr_svc_base){.ep = -1, .stop_fd = -1, .kick_fd = -1};
	pthread_mutex_init(&b->mu, NULL);
	b->ep = epoll_create1(EPOLL_CLOEXEC);
	b->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	b->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	rc = xr__closer_start(&b->closer);
	if (b->ep < 0 || b->stop_fd < 0 || b->kick_fd < 0 || rc < 0) {
		rc = rc < 0 ? rc : -errno;
		goto fail;
	}
	struct epoll_event e = {.events = EPOLLIN, .data.u32 = stop_tag};
	struct epoll_event k = {.events = EPOLLIN, .data.u32 = kick_tag};
	if (epoll_ctl(b->ep, EPOLL_CTL_ADD, b->stop_fd, &e) < 0 ||
	    epoll_ctl(b->ep, EPOLL_CTL_ADD, b->kick_fd, &k) < 0) {
		rc = -errno;
		goto fail;
	}
	return 0;
fail:
	xr__svc_fini(b);
	return rc;
}

void xr__svc_fini(struct xr_svc_base *b)
{
	if (b->closer)
		xr__closer_stop(b->closer);
	if (b->ep >= 0)
		close(b->ep);
	if (b->stop_fd >= 0)
		close(b->stop_fd);
	if (b->kick_fd >= 0)
		close(b->kick_fd);
	pthread_mutex_destroy(&b->mu);
	b->closer = NULL;
	b->ep = b->stop_fd = b->kick_fd = -1;
}

void xr__svc_control_lock(struct xr_svc_base *b)
{
	atomic_fetch_add_explicit(&b->waiting, 1, memory_order_relaxed);
	pthread_mutex_lock(&b->mu);
	atomic_fetch_sub_explicit(&b->waiting, 1, memory_order_relaxed);
}

void xr__svc_thread_lock(struct xr_svc_base *b)
{
	/* Relaxed: a hint of who goes first; the mutex orders the rest. */
	while (atomic_load_explicit(&b->waiting, memory_order_relaxed))
		sched_yield();
	pthread_mutex_lock(&b->mu);
}

void xr__svc_kick(struct xr_svc_base *b)
{
	uint64_t one = 1;
	(void)!write(b->kick_fd, &one, sizeof(one)); /* ours alone: never blocks */
}

void xr__svc_stop(struct xr_svc_base *b)
{
	uint64_t one = 1;
	(void)!write(b->stop_fd, &one, sizeof(one));
}

void xr__svc_kicked(struct xr_svc_base *b)
{
	uint64_t v;
	(void)!read(b->kick_fd, &v, sizeof(v));
}

int xr__svc_bell_pair(int pair[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
		return -errno;
	/* Refuse descriptors on the engine's end where the kernel can; where
	 * it cannot, xr__svc_bell_drain() hands them to the closer. */
	int zero = 0;
	(void)setsockopt(pair[0], SOL_SOCKET, SO_PASSRIGHTS, &zero, sizeof(zero));
	return 0;
}

bool xr__svc_bell_drain(struct xr_svc_base *b, int bell, uint32_t uid)
{
	for (int j = 0; j < 8; j++) {
		char buf[8];
		int fds[XR_CTL_FDS_MAX], n_fds = 0;
		int r = xr__ctl_recv(bell, buf, sizeof(buf), fds, &n_fds, MSG_DONTWAIT);
		for (int i = 0; i < n_fds; i++)
			xr__closer_put(b->closer, fds[i], uid);
		if (r > 0 || r == -EMSGSIZE)
			continue;
		/* The peer closed its end (0), or the pair failed: out of the
		 * set. Its requests are served only when something else wakes
		 * the thread: its own doing. */
		if (r == 0 || (r != -EAGAIN && r != -EINTR)) {
			epoll_ctl(b->ep, EPOLL_CTL_DEL, bell, NULL);
			return false;
		}
		break;
	}
	return true;
}

void xr__svc_bell_ring(int bell)
{
	static const char one = 1;
	(void)send(bell, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void xr__svc_bell_close(struct xr_svc_base *b, int bell, uint32_t uid)
{
	epoll_ctl(b->ep, EPOLL_CTL_DEL, bell, NULL);
	shutdown(bell, SHUT_RDWR);
	xr__closer_put(b->closer, bell, uid);
}
