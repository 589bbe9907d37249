/* SPDX-License-Identifier: MIT */
/*
 * The control server: one thread per engine, whatever the number of readers,
 * serving the Unix socket readers attach through (control/proto.h). It is on
 * the control path only: after SUBSCRIBED, records and wakeups go through
 * shared memory and eventfds without it.
 *
 * It owns the reader slots it hands out: only this thread frees them, when
 * the reader detaches or its connection ends, which the kernel reports the
 * moment the reader's process dies. Ownership is recorded in the engine's
 * own memory (arena->ctl_owned), not in the slot, which its reader could
 * rewrite. Writers still evict such a reader for a bad cursor, but never
 * reap it by pid, so a slot is never freed twice or under a new owner.
 *
 * Everything a peer sends is untrusted: a message that is not exactly one
 * of the protocol's gets ERROR with a one-line reason, and its connection
 * is closed; fds that come with it are closed unless the message is a
 * SUBSCRIBE that wants exactly one eventfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/proto.h"
#include "control/server.h"
#include "record/filter.h"
#include "shm/arena_priv.h"
#include "shm/atomics.h"
#include "shm/wake.h"
#include "util/clock.h"
#include "util/proc.h"
#include "xring/error.h"

#define XR_CTL_BURST 32      /* requests a connection may send at once */
#define XR_CTL_RATE 16       /* ...and per second after that */
#define XR_CTL_IDLE_MS 5000  /* a connection must ATTACH within this (default) */

struct conn {
	int fd;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	bool attached;
	int slot;                /* -1: none */
	double tokens;
	uint64_t last_ns;
	uint64_t born_ns;
};

struct xr_ctl {
	struct xr_arena *a;
	int lfd;
	int stop_fd;             /* eventfd: stop the thread */
	pthread_t th;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint32_t *allow_uid, n_uid;
	uint32_t *allow_gid, n_gid;
	uint32_t max_conns, n_conns;
	struct conn *conns;
	uint32_t idle_ms;        /* a connection must ATTACH within this */
};

static void send_error(struct conn *k, uint32_t id, int code, const char *fmt, ...)
{
	struct xr_ctl_error e = {.code = code};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e.reason, sizeof(e.reason), fmt, ap);
	va_end(ap);
	/* Best effort: the peer may be gone already. */
	xr__ctl_send(k->fd, XR_CTL_ERROR, id, &e, sizeof(e), NULL, 0);
}

/* Frees a slot this server handed out. Writers may be evicting it at the
 * same moment (ACTIVE -> EVICTED); nobody else frees it. */
static void release_slot(struct xr_ctl *c, uint32_t slot)
{
	struct xr_arena *a = c->a;
	struct xr_reader_slot *s = &a->slots[slot];
	uint32_t st = xr_load_acquire(&s->state);

	if (a->wake)
		xr__wake_remove(a->wake, slot);
	while (!xr_cas(&s->state, &st, XR_SLOT_REAPING))
		;
	for (uint32_t r = 0; r < a->hdr->n_rings; r++)
		xr_store_release(&xr__cursor(a, r, slot)->lease, XR_NO_LEASE);
	xr_store_relaxed(&s->sleep_gen, 0);
	xr_store_relaxed(&s->flags, 0);
	xr_store_release(&s->state, XR_SLOT_FREE);
	/* A zero pid is what makes the slot claimable again. Ownership goes
	 * after it: a reaper that saw the old (dead) pid must still find the
	 * slot ours, or it could free it under a new claim. (A new direct
	 * claim that finds it ours for an instant is merely not reaped.) */
	xr_store_release(&s->pid, 0);
	atomic_store_explicit(&a->ctl_owned[slot], 0, memory_order_release);
}

static void drop_conn(struct xr_ctl *c, uint32_t i)
{
	struct conn *k = &c->conns[i];

	if (k->slot >= 0)
		release_slot(c, (uint32_t)k->slot);
	close(k->fd);
	c->conns[i] = c->conns[--c->n_conns];
}

static bool in_list(const uint32_t *l, uint32_t n, uint32_t v)
{
	for (uint32_t i = 0; i < n; i++)
		if (l[i] == v)
			return true;
	return false;
}

/* SO_PEERCRED's uid against the allow-list; its groups (SO_PEERGROUPS,
 * supplementary ones included, however many) against the gid list. */
static bool peer_allowed(const struct xr_ctl *c, const struct conn *k)
{
	gid_t small[64], *groups = small;
	socklen_t len = sizeof(small);
	bool ok = false;

	if (k->uid == geteuid() || in_list(c->allow_uid, c->n_uid, k->uid))
		return true;
	if (in_list(c->allow_gid, c->n_gid, k->gid))
		return true;
	if (!c->n_gid)
		return false;
	if (getsockopt(k->fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		/* ERANGE: more groups than fit; len now says how many bytes. */
		if (errno != ERANGE || !(groups = malloc(len)) ||
		    getsockopt(k->fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
			if (groups != small)
				free(groups);
			return false;
		}
	}
	for (size_t i = 0; i < len / sizeof(gid_t) && !ok; i++)
		ok = in_list(c->allow_gid, c->n_gid, groups[i]);
	if (groups != small)
		free(groups);
	return ok;
}

static bool is_eventfd(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = '\0';
	return strcmp(link, "anon_inode:[eventfd]") == 0;
}

static int claim_slot(struct xr_ctl *c, const struct conn *k, uint32_t stream, uint32_t policy,
		      const char *label)
{
	struct xr_arena *a = c->a;

	for (uint32_t i = 0; i < a->hdr->max_readers; i++) {
		struct xr_reader_slot *s = &a->slots[i];
		int32_t zero = 0;

		if (xr_load_relaxed(&s->pid) != 0)
			continue;
		/* Claimed with -1 first: a reaper skips a slot whose pid is not
		 * positive, so it cannot free this one while it is filled in,
		 * and finds it in ctl_owned by the time it sees the pid. */
		if (!atomic_compare_exchange_strong_explicit(&s->pid, &zero, -1,
							     memory_order_acq_rel,
							     memory_order_relaxed))
			continue;
		s->pid_start = xr__proc_start(k->pid);
		s->stream = stream;
		s->policy = policy;
		s->gen++;
		s->attach_ns = xr__wall_ns();
		xr_store_relaxed(&s->flags, XR_SLOT_F_CONTROL); /* for tools; reapers look at ctl_owned */
		atomic_store_explicit(&a->ctl_owned[i], 1, memory_order_relaxed);
		xr_store_relaxed(&s->sleep_gen, 0);
		xr_store_relaxed(&s->evict_reason, XR_EVICT_NONE);
		memset(s->label, 0, sizeof(s->label));
		memcpy(s->label, label, strnlen(label, sizeof(s->label) - 1));
		xr_store_release(&s->state, XR_SLOT_CLAIMED);
		xr_store_release(&s->pid, (int32_t)k->pid);
		return (int)i;
	}
	return -EBUSY;
}

static void refuse_peer(const struct xr_ctl *c, struct conn *k, uint32_t id)
{
	send_error(k, id, -EACCES,
		   "engine %s refuses uid %u (gid %u): allowed are uid %u%s; start it with "
		   "--allow-uid %u or --allow-gid %u",
		   c->a->hdr->name, (unsigned)k->uid, (unsigned)k->gid, (unsigned)geteuid(),
		   c->n_uid || c->n_gid ? " and its --allow-uid/--allow-gid lists" : " only",
		   (unsigned)k->uid, (unsigned)k->gid);
}

static void do_attach(struct xr_ctl *c, uint32_t ci, const struct xr_ctl_hdr *h)
{
	struct conn *k = &c->conns[ci];
	const struct xr_arena_hdr *ah = c->a->hdr;

	/* Checked at accept already; again here, where the reply has an id. */
	if (!peer_allowed(c, k)) {
		refuse_peer(c, k, h->id);
		drop_conn(c, ci);
		return;
	}
	struct xr_ctl_attached r = {
		.layout_version = ah->layout_version,
		.max_readers = ah->max_readers,
		.fingerprint = ah->fingerprint,
		.engine_pid = ah->writer_pid,
	};
	if (xr__ctl_send(k->fd, XR_CTL_ATTACHED, h->id, &r, sizeof(r), &c->a->fd, 1) < 0) {
		drop_conn(c, ci);
		return;
	}
	k->attached = true;
}

static void do_subscribe(struct xr_ctl *c, uint32_t ci, const struct xr_ctl_hdr *h,
			 const struct xr_ctl_subscribe *m, int efd)
{
	struct conn *k = &c->conns[ci];
	struct xr_arena *a = c->a;
	struct xr_filt filt;
	xr_filter f;
	int stream = -1, slot;

#define FAIL(code, ...) do { send_error(k, h->id, code, __VA_ARGS__); goto fail; } while (0)
	if (!k->attached)
		FAIL(-EPROTO, "SUBSCRIBE before ATTACH");
	if (k->slot >= 0)
		FAIL(-EINVAL, "this connection has a reader already: one reader per connection");
	if (!memchr(m->stream, 0, sizeof(m->stream)) || !memchr(m->label, 0, sizeof(m->label)))
		FAIL(-EPROTO, "malformed SUBSCRIBE: stream or label not NUL-terminated");
	if (m->flags & ~XR_CTL_SUB_EVENTFD)
		FAIL(-EPROTO, "malformed SUBSCRIBE: unknown flag bits 0x%x",
		     m->flags & ~XR_CTL_SUB_EVENTFD);
	if (!(m->flags & XR_CTL_SUB_EVENTFD) != (efd < 0))
		FAIL(-EPROTO, "malformed SUBSCRIBE: the EVENTFD flag and the fds passed disagree");
	if (efd >= 0 && !is_eventfd(efd))
		FAIL(-EPROTO, "malformed SUBSCRIBE: the fd passed is not an eventfd");
	for (uint32_t i = 0; i < a->hdr->n_streams; i++)
		if (!strncmp(a->hdr->streams[i].name, m->stream, sizeof(m->stream)))
			stream = (int)i;
	if (stream < 0)
		FAIL(-ENOENT, "engine %s has no stream \"%s\"", a->hdr->name, m->stream);
	const struct xr_stream_desc *sd = &a->hdr->streams[stream];
	uint32_t policy = m->policy ? m->policy : sd->policy;
	if (policy > XR_POLICY_LOSSY)
		FAIL(-EINVAL, "unknown policy %u", m->policy);
	if (policy == XR_POLICY_LOSSLESS && sd->policy == XR_POLICY_LOSSY)
		FAIL(XR_EPOLICY, "stream %s is lossy: a lossless reader cannot be promised "
				 "every record; attach with policy lossy",
		     sd->name);
	if (xr__ctl_filter_from_wire(&f, &m->filter) < 0 ||
	    xr__filter_compile(&filt, &f,
			       sd->record_kind == XR_RECORD_EXPERIENCE ? &sd->shape : NULL) < 0)
		FAIL(-EINVAL, "bad filter: ranges out of order or too many, rate not in [0, 1], "
			      "or a filter on a stream without Experience records");
	slot = claim_slot(c, k, (uint32_t)stream, policy, m->label);
	if (slot < 0)
		FAIL(-EBUSY, "engine %s has all %u reader slots taken (--max-readers %u)",
		     a->hdr->name, a->hdr->max_readers, a->hdr->max_readers);
	k->slot = slot;
	if (efd >= 0 && a->wake) {
		xr__wake_add(a->wake, (uint32_t)slot, efd, &filt);
		efd = -1; /* the wake table owns it now */
	}
	if (efd >= 0)
		close(efd);
	struct xr_ctl_subscribed r = {.slot = (uint32_t)slot, .stream = (uint32_t)stream,
				      .policy = policy};
	if (xr__ctl_send(k->fd, XR_CTL_SUBSCRIBED, h->id, &r, sizeof(r), NULL, 0) < 0)
		drop_conn(c, ci);
	return;
fail:
#undef FAIL
	if (efd >= 0)
		close(efd);
	drop_conn(c, ci);
}

static void do_detach(struct xr_ctl *c, uint32_t ci, const struct xr_ctl_hdr *h,
		      const struct xr_ctl_detach *m)
{
	struct conn *k = &c->conns[ci];

	if (k->slot < 0 || m->slot != (uint32_t)k->slot) {
		send_error(k, h->id, -EINVAL, "DETACH of slot %u, which is not this connection's",
			   m->slot);
		drop_conn(c, ci);
		return;
	}
	release_slot(c, (uint32_t)k->slot);
	k->slot = -1;
	xr__ctl_send(k->fd, XR_CTL_OK, h->id, NULL, 0, NULL, 0);
}

/* Token bucket per connection: a peer cannot make the engine spin. */
static bool take_token(struct conn *k)
{
	uint64_t now = xr__now_ns();

	k->tokens += (double)(now - k->last_ns) * XR_CTL_RATE / 1e9;
	if (k->tokens > XR_CTL_BURST)
		k->tokens = XR_CTL_BURST;
	k->last_ns = now;
	if (k->tokens < 1)
		return false;
	k->tokens -= 1;
	return true;
}

static void on_message(struct xr_ctl *c, uint32_t ci)
{
	struct conn *k = &c->conns[ci];
	union {
		struct xr_ctl_hdr h;
		uint8_t b[XR_CTL_MSG_MAX + 1];
	} u;
	int fds[2], n_fds;
	int n = xr__ctl_recv(k->fd, u.b, sizeof(u.b), fds, &n_fds, MSG_DONTWAIT);
	int efd = -1;

	if (n == -EAGAIN)
		return;
	if (n == -EMSGSIZE || n == -ETOOMANYREFS) {
		send_error(k, 0, -EPROTO, "malformed message: %s",
			   n == -EMSGSIZE ? "longer than any in the protocol"
					  : "more file descriptors than any message carries");
		drop_conn(c, ci);
		return;
	}
	if (n <= 0) { /* hangup or reset: the reader is gone */
		drop_conn(c, ci);
		return;
	}
	/* Only a SUBSCRIBE keeps an fd, and only one. */
	if (n_fds == 1 && (size_t)n >= sizeof(u.h) && u.h.type == XR_CTL_SUBSCRIBE)
		efd = fds[0];
	else
		for (int i = 0; i < n_fds; i++)
			close(fds[i]);

	const char *bad = NULL;
	uint32_t want = 0;
	if ((size_t)n < sizeof(u.h))
		bad = "shorter than a header";
	else if (u.h.magic != XR_CTL_MAGIC)
		bad = "bad magic (not an xring control message)";
	else if (u.h.version != XR_CTL_VERSION)
		bad = "unsupported protocol version";
	else if (u.h.len != (uint32_t)n - sizeof(u.h))
		bad = "length field disagrees with the message";
	else {
		switch (u.h.type) {
		case XR_CTL_ATTACH: want = 0; break;
		case XR_CTL_SUBSCRIBE: want = sizeof(struct xr_ctl_subscribe); break;
		case XR_CTL_DETACH: want = sizeof(struct xr_ctl_detach); break;
		default: bad = "unknown message type"; break;
		}
		if (!bad && u.h.len != want)
			bad = "wrong body length for its type";
	}
	if (!bad && n_fds > (u.h.type == XR_CTL_SUBSCRIBE))
		bad = "unexpected file descriptors";
	if (bad) {
		if (efd >= 0)
			close(efd);
		send_error(k, (size_t)n >= sizeof(u.h) ? u.h.id : 0, -EPROTO, "malformed message: %s",
			   bad);
		drop_conn(c, ci);
		return;
	}
	if (!take_token(k)) {
		if (efd >= 0)
			close(efd);
		send_error(k, u.h.id, -EAGAIN, "too many requests on one connection (%d/s)",
			   XR_CTL_RATE);
		drop_conn(c, ci);
		return;
	}
	switch (u.h.type) {
	case XR_CTL_ATTACH:
		do_attach(c, ci, &u.h);
		break;
	case XR_CTL_SUBSCRIBE: {
		struct xr_ctl_subscribe m;
		memcpy(&m, u.b + sizeof(u.h), sizeof(m));
		do_subscribe(c, ci, &u.h, &m, efd);
		break;
	}
	case XR_CTL_DETACH: {
		struct xr_ctl_detach m;
		memcpy(&m, u.b + sizeof(u.h), sizeof(m));
		do_detach(c, ci, &u.h, &m);
		break;
	}
	}
}

static void on_accept(struct xr_ctl *c)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		close(fd);
		return;
	}
	struct conn k = {
		.fd = fd, .pid = cr.pid, .uid = cr.uid, .gid = cr.gid, .slot = -1,
		.tokens = XR_CTL_BURST, .last_ns = xr__now_ns(), .born_ns = xr__now_ns(),
	};
	/* A peer not on the allow-list gets no connection to hold: the
	 * table is for those who may read. (Id 0: no request yet.) */
	if (!peer_allowed(c, &k)) {
		refuse_peer(c, &k, 0);
		close(fd);
		return;
	}
	if (c->n_conns == c->max_conns) {
		send_error(&k, 0, -EBUSY, "engine %s has too many connections (%u)",
			   c->a->hdr->name, c->max_conns);
		close(fd);
		return;
	}
	c->conns[c->n_conns++] = k;
}

static void *serve(void *p)
{
	struct xr_ctl *c = p;
	struct pollfd *pf = calloc(c->max_conns + 2, sizeof(*pf));

	if (!pf)
		return NULL;
	for (;;) {
		uint32_t n = c->n_conns;

		pf[0] = (struct pollfd){.fd = c->stop_fd, .events = POLLIN};
		pf[1] = (struct pollfd){.fd = c->lfd, .events = POLLIN};
		for (uint32_t i = 0; i < n; i++)
			pf[2 + i] = (struct pollfd){.fd = c->conns[i].fd, .events = POLLIN};
		/* While someone has not ATTACHed, wake when the first of them
		 * is due, so that a short period is kept to the millisecond. */
		uint64_t idle_ns = c->idle_ms * 1000000ull, now = xr__now_ns();
		int timeout = -1;
		for (uint32_t i = 0; i < n; i++) {
			const struct conn *k = &c->conns[i];
			if (k->attached)
				continue;
			uint64_t age = now - k->born_ns;
			uint64_t ms = age >= idle_ns ? 0 : (idle_ns - age + 999999) / 1000000;
			if (ms > INT_MAX)
				ms = INT_MAX;
			if (timeout < 0 || (int)ms < timeout)
				timeout = (int)ms;
		}
		if (poll(pf, n + 2, timeout) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[0].revents)
			break;
		now = xr__now_ns();
		for (uint32_t i = n; i-- > 0;) {
			struct conn *k = &c->conns[i];
			if (!k->attached && !pf[2 + i].revents && now - k->born_ns >= idle_ns) {
				if (c->idle_ms % 1000 == 0)
					send_error(k, 0, -ETIMEDOUT, "no ATTACH within %u s of connecting",
						   c->idle_ms / 1000);
				else
					send_error(k, 0, -ETIMEDOUT, "no ATTACH within %u ms of connecting",
						   c->idle_ms);
				drop_conn(c, i);
				pf[2 + i] = pf[2 + c->n_conns]; /* drop_conn moved the last into i */
			}
		}
		n = c->n_conns;
		/* Backwards: drop_conn moves the last connection into i. */
		for (uint32_t i = n; i-- > 0;) {
			if (!pf[2 + i].revents)
				continue;
			if (pf[2 + i].revents & POLLIN)
				on_message(c, i);
			else
				drop_conn(c, i); /* POLLHUP/POLLERR without data */
		}
		if (pf[1].revents & POLLIN)
			on_accept(c);
	}
	free(pf);
	return NULL;
}

/* Binds the listening socket at c->path, replacing a stale file (a socket
 * nobody answers on). Mode 0660, group the first --allow-gid group if any,
 * so that its members can connect; 0666 when --allow-uid names users, who
 * could not connect otherwise: the allow-list checked at accept is then
 * the gate. */
static int listen_at(struct xr_ctl *c, const xr_control_opts *o)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, rc;

	memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EADDRINUSE)
			goto fail;
		/* Someone answering there is a live engine; nobody is a stale
		 * file left by a killed one. */
		int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		rc = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (probe >= 0)
			close(probe);
		if (rc) {
			close(fd);
			return -EADDRINUSE;
		}
		unlink(c->path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto fail;
	}
	/* The umask must not decide who may connect. */
	if ((o && o->n_allow_gid && chown(c->path, (uid_t)-1, o->allow_gid[0]) < 0) ||
	    chmod(c->path, o && o->n_allow_uid ? 0666 : 0660) < 0 || listen(fd, 64) < 0) {
		rc = -errno;
		unlink(c->path);
		close(fd);
		return rc;
	}
	c->lfd = fd;
	return 0;
fail:
	rc = -errno;
	close(fd);
	return rc;
}

int xr_arena_serve(xr_arena *a, const xr_control_opts *o)
{
	struct xr_ctl *c;
	int rc;

	if (!a || !a->owner)
		return -EINVAL;
	if (a->ctl)
		return -EEXIST;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->a = a;
	c->lfd = c->stop_fd = -1;
	c->max_conns = 2 * a->hdr->max_readers + 16;
	c->idle_ms = o && o->idle_timeout_ms ? o->idle_timeout_ms : XR_CTL_IDLE_MS;
	c->conns = calloc(c->max_conns, sizeof(*c->conns));
	if (o && o->n_allow_uid) {
		c->allow_uid = malloc(o->n_allow_uid * sizeof(uint32_t));
		if (c->allow_uid)
			memcpy(c->allow_uid, o->allow_uid, o->n_allow_uid * sizeof(uint32_t));
		c->n_uid = o->n_allow_uid;
	}
	if (o && o->n_allow_gid) {
		c->allow_gid = malloc(o->n_allow_gid * sizeof(uint32_t));
		if (c->allow_gid)
			memcpy(c->allow_gid, o->allow_gid, o->n_allow_gid * sizeof(uint32_t));
		c->n_gid = o->n_allow_gid;
	}
	rc = -ENOMEM;
	if (!c->conns || (c->n_uid && !c->allow_uid) || (c->n_gid && !c->allow_gid))
		goto fail;
	a->ctl_owned = calloc(a->hdr->max_readers, sizeof(*a->ctl_owned));
	if (!a->ctl_owned)
		goto fail;
	/* The first place that works: $XRING_RUN_DIR alone, or /run/xring and
	 * then /tmp/xring when /run/xring cannot be made or written (an engine
	 * without root, a directory of root's). */
	for (int k = 0;; k++) {
		int err = xr__ctl_path(c->path, sizeof(c->path), a->hdr->name, k, true);
		if (err == -ERANGE)
			break; /* no more places: rc keeps the last place's reason */
		if (err == 0)
			err = listen_at(c, o);
		rc = err;
		if (rc == 0 || (rc != -EACCES && rc != -EPERM && rc != -EROFS))
			break;
	}
	if (rc < 0)
		goto fail;
	c->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (c->stop_fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = xr__wake_attach(a);
	if (rc < 0)
		goto fail;
	rc = -pthread_create(&c->th, NULL, serve, c);
	if (rc < 0) {
		xr__wake_detach(a);
		goto fail;
	}
	a->ctl = c;
	return 0;
fail:
	free(a->ctl_owned);
	a->ctl_owned = NULL;
	if (c->lfd >= 0) {
		close(c->lfd);
		unlink(c->path);
	}
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	free(c->conns);
	free(c->allow_uid);
	free(c->allow_gid);
	free(c);
	return rc;
}

const char *xr_arena_control_path(const xr_arena *a)
{
	return a && a->ctl ? a->ctl->path : NULL;
}

void xr__ctl_stop(struct xr_ctl *c)
{
	uint64_t one = 1;

	if (!c)
		return;
	if (write(c->stop_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(c->th, NULL);
	unlink(c->path);
	close(c->lfd);
	/* Hang up: each reader sees POLLHUP on its socket at once. Slots are
	 * not freed; the arena is closing. */
	for (uint32_t i = 0; i < c->n_conns; i++)
		close(c->conns[i].fd);
	close(c->stop_fd);
	free(c->conns);
	free(c->allow_uid);
	free(c->allow_gid);
	free(c);
}
