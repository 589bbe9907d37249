/* SPDX-License-Identifier: MIT */
#ifndef XR_TESTS_PEER_HELPERS_H
#define XR_TESTS_PEER_HELPERS_H

/*
 * For tests that play a hostile peer: the control protocol spoken by hand
 * (raw packets, descriptors kept for the caller to abuse), running a piece
 * of code as another uid, counting descriptors, waiting for a state with a
 * deadline instead of a sleep.
 */

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "control/proto.h"
#include "ring_helpers.h"
#include "util/clock.h"

#define NOBODY 65534u

/* Under TSan the process has a thread of the sanitizer's. */
#if defined(__SANITIZE_THREAD__)
#define XR_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define XR_TEST_TSAN 1
#endif
#endif
#ifndef XR_TEST_TSAN
#define XR_TEST_TSAN 0
#endif
#define MS 1000000ull
#define SEC 1000000000ull

static inline int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	CHECK(d != NULL);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Threads of this process. */
static inline int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;

	CHECK(d != NULL);
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Waits (bounded) until this process has no more than n threads: the
 * closing threads of servers stopped before end on their own. Before a
 * fork whose child starts threads: a sanitizer (TSan) refuses that in the
 * child of a process that had several. */
static inline void wait_threads(int n)
{
	uint64_t deadline = xr__now_ns() + 5 * SEC;

	while (count_threads() > n) {
		if (xr__now_ns() > deadline)
			FAILF("%d threads still running after 5 s, want %d", count_threads(), n);
		sched_yield();
	}
}

/* Connects to path; the socket, or -errno. */
static inline int peer_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	CHECK(s >= 0);
	CHECK(strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;
		close(s);
		return err;
	}
	return s;
}

/* Sends one message of the protocol (header + body) with up to 2 fds, as
 * the library's own side does. 0 or -errno (EPERM: the socket refuses
 * descriptors). */
static inline int peer_send(int s, uint16_t type, uint32_t id, const void *body, uint32_t len,
			    const int *fds, int n_fds)
{
	CHECK(n_fds <= 2);
	return xr__ctl_send(s, type, id, body, len, fds, n_fds);
}

/* The next message that is not a WAKE, within ms: its length (0: the
 * engine hung up; -errno), the fd that came with it in *fd (or -1). */
static inline int peer_recv(int s, void *buf, size_t cap, int *fd, int ms)
{
	for (;;) {
		union {
			struct cmsghdr c;
			char b[CMSG_SPACE(4 * sizeof(int))];
		} cm;
		struct iovec iov = {buf, cap};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
				   .msg_controllen = sizeof(cm.b)};
		struct pollfd pf = {.fd = s, .events = POLLIN};

		*fd = -1;
		if (poll(&pf, 1, ms) != 1)
			FAILF("no word from the engine within %d ms", ms);
		ssize_t n = recvmsg(s, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0)
			return -errno;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				memcpy(fd, CMSG_DATA(c), sizeof(int));
		const struct xr_ctl_hdr *h = buf;
		if (n >= (ssize_t)sizeof(*h) && h->type == XR_CTL_WAKE && *fd < 0)
			continue;
		return (int)n;
	}
}

/* A peer's session by hand: ATTACH (*arena_fd: what the engine handed
 * over), SUBSCRIBE with flags and filter f (NULL: none) (*page_fd: the
 * reader's page). Fails the test on any refusal. Returns the slot. */
static inline uint32_t peer_subscribe(int s, uint32_t flags, const xr_filter *f, int *arena_fd,
				      int *page_fd)
{
	struct {
		struct xr_ctl_hdr h;
		uint8_t b[512];
	} r;
	struct xr_ctl_subscribe m = {.flags = flags};
	struct xr_ctl_subscribed sub;
	int n;

	CHECK_RC(peer_send(s, XR_CTL_ATTACH, 1, NULL, 0, NULL, 0), 0);
	n = peer_recv(s, &r, sizeof(r), arena_fd, 5000);
	if (n >= (int)sizeof(r.h) && r.h.type == XR_CTL_ERROR)
		FAILF("ATTACH refused: %s", ((struct xr_ctl_error *)r.b)->reason);
	if (n < (int)sizeof(r.h) || r.h.type != XR_CTL_ATTACHED || *arena_fd < 0)
		FAILF("ATTACH: reply type 0x%x (%d bytes), fd %d", n > 0 ? r.h.type : 0, n, *arena_fd);
	strcpy(m.stream, XR_DEFAULT_STREAM);
	strcpy(m.label, "hostile");
	xr__ctl_filter_to_wire(&m.filter, f);
	CHECK_RC(peer_send(s, XR_CTL_SUBSCRIBE, 2, &m, sizeof(m), NULL, 0), 0);
	n = peer_recv(s, &r, sizeof(r), page_fd, 5000);
	if (n != (int)(sizeof(r.h) + sizeof(sub)) || r.h.type != XR_CTL_SUBSCRIBED || *page_fd < 0) {
		if (n >= (int)sizeof(r.h) && r.h.type == XR_CTL_ERROR)
			FAILF("SUBSCRIBE refused: %s", ((struct xr_ctl_error *)r.b)->reason);
		FAILF("SUBSCRIBE: reply type 0x%x (%d bytes)", n > 0 ? r.h.type : 0, n);
	}
	memcpy(&sub, r.b, sizeof(sub));
	return sub.slot;
}

/* The engine's refusal on s: its code, and its reason into why. */
static inline int peer_error(int s, char *why, size_t len)
{
	struct {
		struct xr_ctl_hdr h;
		struct xr_ctl_error e;
	} r;
	int fd, n = peer_recv(s, &r, sizeof(r), &fd, 5000);

	if (fd >= 0)
		close(fd);
	if (n != (int)sizeof(r) || r.h.type != XR_CTL_ERROR)
		FAILF("expected an ERROR, got %d bytes of type 0x%x", n, n > 0 ? r.h.type : 0);
	r.e.reason[sizeof(r.e.reason) - 1] = '\0';
	snprintf(why, len, "%s", r.e.reason);
	return r.e.code;
}

/* Runs fn(arg) in a child process as uid/gid; its exit status. fn returns
 * the exit code (0: what it checked held). */
static inline int run_as(uid_t uid, gid_t gid, int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	int st;

	CHECK(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(99);
		_exit(fn(arg));
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Polls cond() until it holds or ms pass; whether it held. */
#define WAIT_UNTIL(cond, ms) ({ \
	uint64_t _dl = xr__now_ns() + (uint64_t)(ms) * MS; \
	bool _ok; \
	while (!(_ok = (cond)) && xr__now_ns() < _dl) \
		sched_yield(); \
	_ok; \
})

#endif
