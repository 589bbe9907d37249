/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/client.h"
#include "xring/error.h"
#include "xring/reader.h"

#define XR_CTL_REPLY_TIMEOUT_MS 5000 /* an engine answers in microseconds */

static _Thread_local char last_reason[XR_CTL_REASON_MAX];

const char *xr_last_reason(void)
{
	return last_reason;
}

void xr__set_last_reason(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_reason, sizeof(last_reason), fmt, ap);
	va_end(ap);
}

int xr__ctl_connect(const char *name)
{
	int err = -ENOENT;

	for (int k = 0;; k++) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int rc = xr__ctl_path(sa.sun_path, sizeof(sa.sun_path), name, k, false);
		if (rc == -ERANGE)
			return err;
		if (rc < 0)
			return rc;
		int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		rc = -errno;
		close(fd);
		/* No file, or a file nobody listens on (its engine was
		 * killed): no engine here. */
		if (rc != -ENOENT && rc != -ECONNREFUSED && err == -ENOENT)
			err = rc;
	}
}

/* Sends a request and waits for its reply of type ok_type into body.
 * Returns 0, the engine's error code (reason saved), or -errno. */
static int request(int sock, uint16_t type, const void *body, uint32_t len, int efd,
		   uint16_t ok_type, void *reply, uint32_t reply_len, int *fd_out)
{
	static _Thread_local uint32_t next_id;
	uint32_t id = ++next_id;
	union {
		struct xr_ctl_hdr h;
		uint8_t b[sizeof(struct xr_ctl_hdr) + sizeof(struct xr_ctl_error) + 8];
	} u;
	int fds[2], n_fds, n, rc;
	struct pollfd pf = {.fd = sock, .events = POLLIN};

	rc = xr__ctl_send(sock, type, id, body, len, efd >= 0 ? &efd : NULL, efd >= 0);
	/* A refusal at accept comes before our request is read, and the engine
	 * hangs up: the send fails, but its ERROR may wait in the socket. */
	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
		goto hung_up;
	do
		rc = poll(&pf, 1, XR_CTL_REPLY_TIMEOUT_MS);
	while (rc < 0 && errno == EINTR);
	if (rc == 0) {
		xr__set_last_reason("the engine did not answer within %d ms",
				    XR_CTL_REPLY_TIMEOUT_MS);
		return -ETIMEDOUT;
	}
	n = xr__ctl_recv(sock, u.b, sizeof(u.b), fds, &n_fds, 0);
	/* An engine that hangs up with our request unread makes the kernel
	 * report ECONNRESET once, ahead of the reply it queued: read on. */
	if (n == -ECONNRESET)
		n = xr__ctl_recv(sock, u.b, sizeof(u.b), fds, &n_fds, MSG_DONTWAIT);
	if (n <= 0) {
		rc = n;
		goto hung_up;
	}
	/* An ERROR before any request was read carries id 0. */
	bool early = (size_t)n >= sizeof(u.h) && u.h.type == XR_CTL_ERROR && u.h.id == 0;
	if (fd_out && n_fds == 1) {
		*fd_out = fds[0];
	} else {
		for (int i = 0; i < n_fds; i++)
			close(fds[i]);
		if (fd_out)
			*fd_out = -1;
	}
	if ((size_t)n < sizeof(u.h) || u.h.magic != XR_CTL_MAGIC || u.h.version != XR_CTL_VERSION ||
	    u.h.len != (uint32_t)n - sizeof(u.h) || (u.h.id != id && !early))
		goto proto;
	if (u.h.type == XR_CTL_ERROR && u.h.len == sizeof(struct xr_ctl_error)) {
		struct xr_ctl_error e;
		memcpy(&e, u.b + sizeof(u.h), sizeof(e));
		e.reason[sizeof(e.reason) - 1] = '\0';
		xr__set_last_reason("%s", e.reason);
		if (fd_out && *fd_out >= 0)
			close(*fd_out);
		/* Only codes an engine can mean; anything else is garbage. */
		return e.code < 0 && e.code > -(XR_ERRNO_BASE + 100) ? e.code : -EPROTO;
	}
	if (u.h.type != ok_type || u.h.len != reply_len || (fd_out && *fd_out < 0))
		goto proto;
	if (reply_len)
		memcpy(reply, u.b + sizeof(u.h), reply_len);
	return 0;
proto:
	if (fd_out && *fd_out >= 0)
		close(*fd_out);
	xr__set_last_reason("the engine's reply is not the xring control protocol");
	return -EPROTO;
hung_up:
	xr__set_last_reason("the engine hung up (it is stopping, or refused the connection)");
	return rc == 0 || rc == -EPIPE || rc == -ECONNRESET ? -ECONNRESET : rc;
}

int xr__ctl_attach(int sock, int *arena_fd, struct xr_ctl_attached *out)
{
	return request(sock, XR_CTL_ATTACH, NULL, 0, -1, XR_CTL_ATTACHED, out, sizeof(*out),
		       arena_fd);
}

int xr__ctl_subscribe(int sock, const struct xr_ctl_subscribe *m, int efd,
		      struct xr_ctl_subscribed *out)
{
	return request(sock, XR_CTL_SUBSCRIBE, m, sizeof(*m), efd, XR_CTL_SUBSCRIBED, out,
		       sizeof(*out), NULL);
}

int xr__ctl_detach(int sock, uint32_t slot)
{
	struct xr_ctl_detach m = {.slot = slot};
	return request(sock, XR_CTL_DETACH, &m, sizeof(m), -1, XR_CTL_OK, NULL, 0, NULL);
}
