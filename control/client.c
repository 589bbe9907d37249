/* SPDX-License-Identifier: MIT */
/*
 * The reader's side of the control protocol. Before it believes anything an
 * engine says, a reader checks who the engine is: the directory the socket
 * is in (control/run_dir.c), the uid at the other end of the socket
 * (SO_PEERCRED), and later the owner of the arena it is handed
 * (client/reader.c): root, the reader's own uid, or the engine uid it was
 * told to expect. A local user who moved the socket aside and answered in
 * its place is refused with XR_EUNTRUSTED and a reason naming the uid.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/client.h"
#include "control/run_dir.h"
#include "util/clock.h"
#include "xring/error.h"
#include "xring/reader.h"

#define XR_CTL_REPLY_TIMEOUT_MS 5000 /* an engine answers in microseconds */

#define XR_REASON_MAX 512

static _Thread_local char last_reason[XR_REASON_MAX];

const char *xr_last_reason(void)
{
	return last_reason;
}

uint64_t xr__reason_retry_ns(void)
{
	const char *p = strstr(xr_last_reason(), "retry in ");
	unsigned ms;

	return p && sscanf(p, "retry in %u ms", &ms) == 1 ? (uint64_t)ms * 1000000ull : 0;
}

void xr__set_last_reason(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_reason, sizeof(last_reason), fmt, ap);
	va_end(ap);
}

/* How long a full listen queue is waited out before connecting gives up. */
#define XR_CONNECT_WAIT_MS 5000

/* Connects to path; -ENOENT for no engine there (no file, or nobody
 * listening: its engine was killed), -ETIMEDOUT when its listen queue
 * stayed full, else the socket or -errno. A blocking connect() to a full
 * queue waits for as long as the engine does not accept, which a busy
 * engine, or one that stopped accepting for a while (control/server.c:
 * out of descriptors, or too many of them still closing), makes long:
 * the connect is non-blocking and retried instead, within a deadline. */
static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint64_t deadline = xr__now_ns() + XR_CONNECT_WAIT_MS * 1000000ull;
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			/* The rest of the client waits with poll and timeouts,
			 * on a blocking socket. */
			if (fcntl(fd, F_SETFL, 0) == 0)
				return fd;
		}
		rc = -errno;
		if (rc != -EAGAIN || xr__now_ns() >= deadline)
			break;
		poll(NULL, 0, 10); /* the queue is full: try again shortly */
	}
	close(fd);
	if (rc == -EAGAIN)
		return -ETIMEDOUT;
	return rc == -ECONNREFUSED ? -ENOENT : rc;
}

/* Why connecting to path was denied: the directory, or the socket's mode. */
static void say_denied(char *why, size_t len, const char *path)
{
	char dir[108];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	if (slash && access(dir, X_OK) < 0)
		snprintf(why, len,
			 "cannot reach %s: uid %u may not enter that directory (set XRING_RUN_DIR, "
			 "for engine and readers alike, to one it may enter)",
			 dir, (unsigned)geteuid());
	else
		snprintf(why, len,
			 "cannot connect to %s: permission denied (its mode does not let uid %u in; "
			 "the engine's --allow-uid/--allow-gid set it)",
			 path, (unsigned)geteuid());
}

int xr__ctl_connect(const char *name, const struct xr_trust *t, struct ucred *peer)
{
	return xr__ctl_connect_at(name, t, peer, NULL, 0);
}

int xr__ctl_connect_at(const char *name, const struct xr_trust *t, struct ucred *peer,
		       char *where, size_t where_len)
{
	char path[108], why[XR_REASON_MAX], first[XR_REASON_MAX] = "";
	int err = -ENOENT;

	for (int k = 0;; k++) {
		int rc = xr__run_dir_lookup(name, t, k, path, sizeof(path), why, sizeof(why));
		/* -EINVAL without a reason is a bad name; with one, a bad
		 * XRING_RUN_DIR, said below. */
		if (rc == -ERANGE || (rc == -EINVAL && !why[0]))
			break;
		if (rc == 0) {
			rc = connect_to(path);
			if (rc == -EACCES)
				say_denied(why, sizeof(why), path);
			else if (rc == -ETIMEDOUT)
				snprintf(why, sizeof(why),
					 "the engine at %s accepted no connection within %u s (its "
					 "queue stayed full: it is busy, or a peer floods it); retry "
					 "later",
					 path, XR_CONNECT_WAIT_MS / 1000);
			else if (rc < 0 && rc != -ENOENT)
				snprintf(why, sizeof(why), "cannot connect to %s: %s", path,
					 strerror(-rc));
		}
		if (rc >= 0) {
			socklen_t len = sizeof(*peer);
			if (getsockopt(rc, SOL_SOCKET, SO_PEERCRED, peer, &len) < 0) {
				close(rc);
				return -errno;
			}
			if (xr__trusted_uid(t, peer->uid)) {
				if (where)
					snprintf(where, where_len, "%s", path);
				return rc;
			}
			close(rc);
			snprintf(why, sizeof(why),
				 "%s is served by uid %u, which is not root, this user, or the engine uid "
				 "this reader was told to expect: refusing to trust it",
				 path, (unsigned)peer->uid);
			rc = XR_EUNTRUSTED;
		}
		if (rc == -ENOENT)
			continue;
		/* Remember the first thing that went wrong where an engine
		 * might be, to say it if no engine is found anywhere. */
		if (err == -ENOENT) {
			err = rc;
			snprintf(first, sizeof(first), "%s", why);
		}
	}
	if (err != -ENOENT)
		xr__set_last_reason("%s", first);
	return err;
}

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

int xr__ctl_request_fds(int sock, uint16_t type, const void *body, uint32_t len, uint16_t ok_type,
			void *reply, uint32_t reply_len, uint32_t *got, int *fds_out, int want)
{
	static _Thread_local uint32_t next_id;
	uint32_t id = ++next_id;
	union {
		struct xr_ctl_hdr h;
		uint8_t b[XR_CTL_REPLY_MAX];
	} u;
	int fds[XR_CTL_FDS_MAX], n_fds, n, rc;
	struct pollfd pf = {.fd = sock, .events = POLLIN};
	uint64_t deadline = xr__now_ns() + XR_CTL_REPLY_TIMEOUT_MS * 1000000ull;

	for (int i = 0; i < want; i++)
		fds_out[i] = -1;
	rc = xr__ctl_send(sock, type, id, body, len, NULL, 0);
	/* A refusal at accept comes before our request is read, and the engine
	 * hangs up: the send fails, but its ERROR may wait in the socket. */
	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
		goto hung_up;
	for (;;) {
		uint64_t now = xr__now_ns();
		int ms = now >= deadline ? 0 : (int)((deadline - now) / 1000000) + 1;
		do
			rc = poll(&pf, 1, ms);
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
		if (n <= 0 && n != -EMSGSIZE) {
			rc = n;
			goto hung_up;
		}
		if (n >= (int)sizeof(u.h) && u.h.magic == XR_CTL_MAGIC && u.h.type == XR_CTL_WAKE &&
		    n_fds == 0)
			continue;
		break;
	}
	/* An ERROR before any request was read carries id 0. */
	bool early = n >= (int)sizeof(u.h) && u.h.type == XR_CTL_ERROR && u.h.id == 0;
	/* Exactly the descriptors asked for, or none kept. */
	bool keep = want && n_fds == want;
	for (int i = 0; i < n_fds; i++) {
		if (keep)
			fds_out[i] = fds[i];
		else
			close(fds[i]);
	}
	if (n < (int)sizeof(u.h) || u.h.magic != XR_CTL_MAGIC || u.h.version != XR_CTL_VERSION ||
	    u.h.len != (uint32_t)n - sizeof(u.h) || (u.h.id != id && !early))
		goto proto;
	if (u.h.type == XR_CTL_ERROR && u.h.len == sizeof(struct xr_ctl_error)) {
		struct xr_ctl_error e;
		memcpy(&e, u.b + sizeof(u.h), sizeof(e));
		e.reason[sizeof(e.reason) - 1] = '\0';
		xr__set_last_reason("%s", e.reason);
		close_all(fds_out, want);
		/* Only codes an engine can mean; anything else is garbage. */
		return e.code < 0 && e.code > -(XR_ERRNO_BASE + 100) ? e.code : -EPROTO;
	}
	if (u.h.type != ok_type || (got ? u.h.len > reply_len : u.h.len != reply_len) ||
	    (want && fds_out[0] < 0))
		goto proto;
	if (u.h.len && reply) /* reply_len 0 (no buffer) admits no bytes: checked above */
		memcpy(reply, u.b + sizeof(u.h), u.h.len);
	if (got)
		*got = u.h.len;
	return 0;
proto:
	close_all(fds_out, want);
	xr__set_last_reason("the engine's reply is not the xring control protocol");
	return -EPROTO;
hung_up:
	xr__set_last_reason("the engine hung up (it is stopping, or refused the connection)");
	return rc == 0 || rc == -EPIPE || rc == -ECONNRESET ? -ECONNRESET : rc;
}

int xr__ctl_request(int sock, uint16_t type, const void *body, uint32_t len, uint16_t ok_type,
		    void *reply, uint32_t reply_len, uint32_t *got, int *fd_out)
{
	return xr__ctl_request_fds(sock, type, body, len, ok_type, reply, reply_len, got, fd_out,
				   fd_out ? 1 : 0);
}

int xr_engine_socket(const char *engine, uint32_t engine_uid, char *path, size_t len)
{
	struct xr_trust t = {.extra = engine_uid ? engine_uid : (uid_t)-1};
	struct ucred peer;
	int fd;

	if (!engine || !path)
		return -EINVAL;
	xr__set_last_reason("%s", "");
	fd = xr__ctl_connect_at(engine, &t, &peer, path, len);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int xr__ctl_attach(int sock, int *arena_fd, struct xr_ctl_attached *out)
{
	return xr__ctl_request(sock, XR_CTL_ATTACH, NULL, 0, XR_CTL_ATTACHED, out, sizeof(*out), NULL,
			       arena_fd);
}

int xr__ctl_subscribe(int sock, const struct xr_ctl_subscribe *m, int *page_fd,
		      struct xr_ctl_subscribed *out)
{
	return xr__ctl_request(sock, XR_CTL_SUBSCRIBE, m, sizeof(*m), XR_CTL_SUBSCRIBED, out,
			       sizeof(*out), NULL, page_fd);
}

int xr__ctl_detach(int sock, uint32_t slot)
{
	struct xr_ctl_detach m = {.slot = slot};
	return xr__ctl_request(sock, XR_CTL_DETACH, &m, sizeof(m), XR_CTL_OK, NULL, 0, NULL, NULL);
}

bool xr__ctl_drain(int sock)
{
	struct xr_ctl_hdr h;
	int fds[XR_CTL_FDS_MAX], n_fds;

	for (;;) {
		int n = xr__ctl_recv(sock, &h, sizeof(h), fds, &n_fds, MSG_DONTWAIT);
		for (int i = 0; i < n_fds; i++)
			close(fds[i]);
		if (n == -EAGAIN)
			return false;
		/* End of connection, or an error on it: the engine is gone.
		 * Anything else an engine sends unasked is a wake (or, after
		 * an eviction, a kick): dropped, it said all it had to. */
		if (n == 0 || (n < 0 && n != -EMSGSIZE))
			return true;
	}
}
