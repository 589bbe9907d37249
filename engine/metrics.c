/* SPDX-License-Identifier: MIT */
/*
 * The metrics endpoint's HTTP side (engine/metrics.h). Everything is
 * non-blocking and bounded, because the loop it runs in is the one that
 * beats the engine's heart and mirrors reader progress: a client that
 * connects and says nothing, sends a byte a second, or never reads its
 * answer costs one of XR_METRICS_CONNS places until its deadline, never a
 * wait. Each answer is rendered once from a fresh snapshot when its
 * request is complete, and then written as the socket takes it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine/metrics.h"
#include "util/clock.h"

/* A rendered exposition, shared by the cache and every connection still
 * sending it: a client that never reads holds a reference, not a copy. */
struct blob {
	uint32_t refs;
	size_t len;
	char data[];
};

struct mconn {
	int fd;                        /* -1: free */
	uint64_t deadline;             /* CLOCK_MONOTONIC ns */
	uint64_t born;                 /* accepted, for choosing whom to drop */
	size_t got;                    /* request bytes read */
	char req[XR_METRICS_REQ_MAX];
	bool answering;                /* head and body are set: sending them */
	bool draining;                 /* answered: reading to the client's end */
	char head[256];                /* the status line and headers */
	size_t head_len;
	const char *body;              /* into blob, or a static message */
	size_t body_len;
	struct blob *blob;             /* a reference, or NULL */
	size_t sent;                   /* of head, then body */
};

struct xr_metrics {
	int lfd;
	uint16_t port;
	struct mconn c[XR_METRICS_CONNS];
	int where[1 + XR_METRICS_CONNS]; /* pollfd k -> c[where[k]] (k >= 1) */
	struct blob *cache;            /* the last exposition rendered... */
	uint64_t cache_ns;             /* ...and when: reused for XR_METRICS_CACHE_NS */
};

static void unref(struct blob *b)
{
	if (b && --b->refs == 0)
		free(b);
}

/* A client asking in a loop gets the same text for this long: rendering
 * is the only work a request costs the housekeeping loop. */
#define XR_METRICS_CACHE_NS 100000000ull

int xr__metrics_parse_addr(const char *addr, uint32_t *ip_be, uint16_t *port, char *why,
			   size_t len)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	char host[64];
	struct in_addr in;
	char *end;

	if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host)) {
		snprintf(why, len, "'%s' is not HOST:PORT (e.g. 127.0.0.1:9464)", addr ? addr : "");
		return -EINVAL;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	errno = 0;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end || errno || p > 65535) {
		snprintf(why, len, "'%s': the port must be 0..65535", addr);
		return -EINVAL;
	}
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &in) != 1) {
		snprintf(why, len, "'%s': the host must be an IPv4 address such as 127.0.0.1", addr);
		return -EINVAL;
	}
	if ((ntohl(in.s_addr) >> 24) != 127) {
		snprintf(why, len, "'%s' is not a loopback address: metrics are served on 127.0.0.0/8 "
				   "only (put a proxy in front to publish them)",
			 addr);
		return -EINVAL;
	}
	*ip_be = in.s_addr;
	*port = (uint16_t)p;
	return 0;
}

int xr__metrics_open(const char *addr, struct xr_metrics **out, char *why, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	uint16_t port;
	socklen_t sl = sizeof(sa);
	int rc, one = 1;

	if ((rc = xr__metrics_parse_addr(addr, &sa.sin_addr.s_addr, &port, why, len)) < 0)
		return rc;
	sa.sin_port = htons(port);
	struct xr_metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (int i = 0; i < XR_METRICS_CONNS; i++)
		m->c[i].fd = -1;
	m->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->lfd < 0 || setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(m->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(m->lfd, 64) < 0 ||
	    getsockname(m->lfd, (struct sockaddr *)&sa, &sl) < 0) {
		rc = -errno;
		snprintf(why, len, "cannot listen on %s: %s%s", addr, strerror(-rc),
			 rc == -EADDRINUSE ? " (another program has that port: choose another, or 0)"
					   : "");
		if (m->lfd >= 0)
			close(m->lfd);
		free(m);
		return rc;
	}
	m->port = ntohs(sa.sin_port);
	*out = m;
	return 0;
}

uint16_t xr__metrics_port(const struct xr_metrics *m)
{
	return m->port;
}

static void drop(struct mconn *c)
{
	close(c->fd);
	unref(c->blob);
	c->fd = -1;
	c->blob = NULL;
	c->body = NULL;
	c->got = c->head_len = c->body_len = c->sent = 0;
	c->answering = c->draining = false;
}

int xr__metrics_pollfds(const struct xr_metrics *m, struct pollfd *pf)
{
	struct xr_metrics *mm = (struct xr_metrics *)m;
	int n = 1;

	pf[0] = (struct pollfd){.fd = m->lfd, .events = POLLIN};
	for (int i = 0; i < XR_METRICS_CONNS; i++) {
		if (m->c[i].fd < 0)
			continue;
		bool writing = m->c[i].answering && !m->c[i].draining;
		pf[n] = (struct pollfd){.fd = m->c[i].fd, .events = writing ? POLLOUT : POLLIN};
		mm->where[n++] = i;
	}
	return n;
}

int xr__metrics_timeout_ms(const struct xr_metrics *m, uint64_t now)
{
	uint64_t first = UINT64_MAX;

	for (int i = 0; i < XR_METRICS_CONNS; i++)
		if (m->c[i].fd >= 0 && m->c[i].deadline < first)
			first = m->c[i].deadline;
	if (first == UINT64_MAX)
		return -1;
	return first <= now ? 0 : (int)((first - now) / 1000000 + 1);
}

static void on_accept(struct xr_metrics *m)
{
	/* A few per call: the listener stays readable while more wait. */
	for (int k = 0; k < 4; k++) {
		int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		int i = 0, idle = -1;
		while (i < XR_METRICS_CONNS && m->c[i].fd >= 0) {
			/* The oldest that has not sent a whole request yet. */
			if (!m->c[i].answering && (idle < 0 || m->c[i].born < m->c[idle].born))
				idle = i;
			i++;
		}
		if (i == XR_METRICS_CONNS) {
			/* Full: the oldest silent connection makes way, so that
			 * clients that connect and say nothing cannot keep a
			 * scraper out (it sends its request at once, and is then
			 * past this); with none silent, the newcomer goes. */
			if (idle < 0) {
				close(fd);
				continue;
			}
			drop(&m->c[idle]);
			i = idle;
		}
		m->c[i].fd = fd;
		m->c[i].born = xr__now_ns();
		m->c[i].deadline = m->c[i].born + XR_METRICS_DEADLINE_MS * 1000000ull;
	}
}

/* The exposition as of at most XR_METRICS_CACHE_NS ago (a new reference),
 * or NULL. */
static struct blob *exposition(struct xr_metrics *m, const struct xr_arena *a)
{
	uint64_t now = xr__now_ns();
	struct xr_snapshot s;
	char *text;
	size_t len;

	if (!m->cache || now - m->cache_ns >= XR_METRICS_CACHE_NS) {
		if (xr__snap_take(a, &s) < 0)
			return NULL;
		int rc = xr__metrics_render(&s, &text, &len);
		xr__snap_free(&s);
		if (rc < 0)
			return NULL;
		struct blob *b = malloc(sizeof(*b) + len);
		if (!b) {
			free(text);
			return NULL;
		}
		memcpy(b->data, text, len);
		free(text);
		b->len = len;
		b->refs = 1; /* the cache's */
		unref(m->cache);
		m->cache = b;
		m->cache_ns = now;
	}
	m->cache->refs++;
	return m->cache;
}

/* The answer to a complete request head in c->req. */
static void answer(struct xr_metrics *m, struct mconn *c, const struct xr_arena *a)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\n"
				 "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
				 "Content-Length: %zu\r\nConnection: close\r\n\r\n";
	const char *status = NULL, *msg = NULL;
	bool head = !strncmp(c->req, "HEAD ", 5);

	if (memchr(c->req, '\0', c->got)) {
		status = "400 Bad Request";
		msg = "a NUL byte in the request\n";
	} else if (strncmp(c->req, "GET ", 4) && !head) {
		status = "405 Method Not Allowed";
		msg = "only GET and HEAD\n";
	} else {
		const char *path = c->req + (head ? 5 : 4);
		size_t plen = strcspn(path, " \r\n?");
		if (plen == 1 && path[0] == '/') {
			status = "200 OK";
			msg = "xring engine metrics: GET /metrics\n";
		} else if (plen != 8 || strncmp(path, "/metrics", 8)) {
			status = "404 Not Found";
			msg = "not found: the metrics are at /metrics\n";
		}
	}
	if (!status && !(c->blob = exposition(m, a))) {
		status = "503 Service Unavailable";
		msg = "out of memory\n";
	}
	c->body = c->blob ? c->blob->data : msg;
	c->body_len = c->blob ? c->blob->len : strlen(msg);
	int n = c->blob ? snprintf(c->head, sizeof(c->head), ok, c->body_len)
			: snprintf(c->head, sizeof(c->head),
				   "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
				   "Content-Length: %zu\r\nConnection: close\r\n\r\n",
				   status, c->body_len);
	c->head_len = (size_t)n; /* the longest is 140 bytes */
	if (head)
		c->body_len = 0;
	c->answering = true;
}

static void on_read(struct xr_metrics *m, struct mconn *c, const struct xr_arena *a)
{
	ssize_t n = read(c->fd, c->req + c->got, sizeof(c->req) - 1 - c->got);

	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			drop(c);
		return;
	}
	c->got += (size_t)n;
	c->req[c->got] = '\0';
	if (memmem(c->req, c->got, "\r\n\r\n", 4) || memmem(c->req, c->got, "\n\n", 2)) {
		answer(m, c, a);
	} else if (c->got == sizeof(c->req) - 1) {
		static const char big[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
					  "Content-Length: 0\r\nConnection: close\r\n\r\n";
		memcpy(c->head, big, sizeof(big) - 1);
		c->head_len = sizeof(big) - 1;
		c->answering = true;
	}
}

static void on_write(struct mconn *c)
{
	/* The rest of the head, then the rest of the body, in one call. */
	struct iovec iov[2];
	int k = 0;
	if (c->sent < c->head_len)
		iov[k++] = (struct iovec){c->head + c->sent, c->head_len - c->sent};
	size_t b = c->sent > c->head_len ? c->sent - c->head_len : 0;
	if (b < c->body_len)
		iov[k++] = (struct iovec){(char *)c->body + b, c->body_len - b};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)k};
	ssize_t n = k ? sendmsg(c->fd, &mh, MSG_NOSIGNAL) : 0;

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			drop(c);
		return;
	}
	c->sent += (size_t)n;
	if (c->sent < c->head_len + c->body_len)
		return;
	/* Connection: close. Closing with bytes of the client's unread (a
	 * request past XR_METRICS_REQ_MAX) would reset the connection, and the
	 * client could lose the answer: end our side, then read to the
	 * client's end (or the deadline) before closing. */
	shutdown(c->fd, SHUT_WR);
	c->draining = true;
}

static void on_drain(struct mconn *c)
{
	char sink[4096];
	ssize_t n = read(c->fd, sink, sizeof(sink));

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		drop(c);
}

void xr__metrics_serve(struct xr_metrics *m, const struct pollfd *pf, int n,
		       const struct xr_arena *a)
{
	uint64_t now = xr__now_ns();

	for (int k = 1; k < n; k++) {
		struct mconn *c = &m->c[m->where[k]];
		if (c->fd != pf[k].fd)
			continue;
		if (pf[k].revents & (POLLERR | POLLNVAL)) {
			drop(c);
			continue;
		}
		if (c->draining && (pf[k].revents & (POLLIN | POLLHUP)))
			on_drain(c);
		else if (c->answering && !c->draining && (pf[k].revents & (POLLOUT | POLLHUP)))
			on_write(c);
		else if (!c->answering && (pf[k].revents & (POLLIN | POLLHUP)))
			on_read(m, c, a);
	}
	for (int i = 0; i < XR_METRICS_CONNS; i++)
		if (m->c[i].fd >= 0 && m->c[i].deadline <= now)
			drop(&m->c[i]);
	if (n > 0 && pf[0].revents & POLLIN)
		on_accept(m);
}

void xr__metrics_close(struct xr_metrics *m)
{
	if (!m)
		return;
	for (int i = 0; i < XR_METRICS_CONNS; i++)
		if (m->c[i].fd >= 0)
			drop(&m->c[i]);
	close(m->lfd);
	unref(m->cache);
	free(m);
}
