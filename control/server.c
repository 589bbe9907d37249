/* SPDX-License-Identifier: MIT */
/*
 * The control server: one thread per engine, whatever the number of readers,
 * serving the Unix socket readers attach through (control/proto.h). It is on
 * the control path only: after SUBSCRIBED, records go through shared memory,
 * and wakeups are the writers' sends on the same connection (shm/wake.c).
 *
 * Every peer is hostile until proven otherwise, and even then untrusted:
 *   - Who: SO_PEERCRED (and SO_PEERGROUPS) against the allow-list, at accept
 *     and again at ATTACH. A peer is known by its connection (an owner id
 *     the engine gives out), never by a pid.
 *   - How much: per connection a request rate; per uid, over all its
 *     connections, connections, reader slots and a request rate
 *     (control/limits.c). Every refusal names the limit.
 *   - What it sends: a message that is not exactly one of the protocol's gets
 *     ERROR with a one-line reason and the connection is closed. The engine
 *     takes no descriptors: the listening socket refuses SCM_RIGHTS where
 *     the kernel can (SO_PASSRIGHTS, inherited by every connection), and
 *     where it cannot, a message that brings any is an error.
 *   - What it could make us wait on: nothing. This thread makes no blocking
 *     call on anything a peer owns. Its sockets are non-blocking (accepted
 *     with SOCK_NONBLOCK), the writers' wakes are sent with MSG_DONTWAIT. Descriptors a peer touched (what it passed, the
 *     connection itself, whose unread messages may hold descriptors in
 *     flight) are shut down here, which cannot block, and closed by the
 *     closing thread (control/closer.c), which may.
 *   - What it holds: its reader slot, owned in the engine's memory by its
 *     connection (shm/peers.c) and released the moment the connection
 *     ends: DETACH, hangup, or death.
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
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "control/closer.h"
#include "control/limits.h"
#include "control/proto.h"
#include "control/run_dir.h"
#include "control/server.h"
#include "record/filter.h"
#include "shm/arena_priv.h"
#include "shm/peers.h"
#include "util/atomics.h"
#include "util/clock.h"
#include "xring/error.h"
#include "xring/server.h"

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83 /* Linux 6.16 */
#endif

#define XR_CTL_IDLE_MS 5000  /* a connection must ATTACH within this (default) */
#define XR_CTL_CLOSING_MAX 64 /* a uid's descriptors still closing: refuse it */
#define XR_CTL_CLOSING_TOTAL_MAX 1024 /* all uids' still closing: stop accepting */
#define XR_CTL_ACCEPT_PAUSE_MS 100 /* out of descriptors: stop accepting this long */
#define XR_CTL_DRAIN_CHECK_MS 100 /* how often hung-up connections are looked at */
#define XR_CTL_GAMES_QUIET_MS 10 /* a game request refused for its rate: the connection is
				  * not read for its retry time, and at least this */

static bool use_passrights = true;
static uint32_t closing_total_max = XR_CTL_CLOSING_TOTAL_MAX;
/* Room for a reason that names a run directory of any length allowed
 * (control/run_dir.c) and says what to do: more than a peer is sent. */
#define XR_SERVER_NOTE_MAX 512

static _Thread_local char server_note[XR_SERVER_NOTE_MAX];

const char *xr_server_last_note(void)
{
	return server_note;
}

static void set_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void set_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(server_note, sizeof(server_note), fmt, ap);
	va_end(ap);
}

void xr__server_test_passrights(bool on)
{
	use_passrights = on;
}

void xr__server_test_closing_cap(uint32_t n)
{
	closing_total_max = n ? n : XR_CTL_CLOSING_TOTAL_MAX;
}

struct conn {
	int fd;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	struct xr_owner owner;
	bool attached;
	int slot;                /* -1: none */
	struct xr_bucket bucket;
	uint64_t born_ns;
	/* Hung up on, with replies the peer has not read: kept (not polled,
	 * still counted against its uid) until it reads them or closes. */
	bool draining;
	/* A game request refused for the uid's rate: the connection (kept:
	 * its games would go with it) is not read before this, so that a
	 * peer sending as fast as it can costs this thread a refusal per
	 * retry time, not one per message it manages to send. */
	uint64_t quiet_until_ns;
};

struct xr_server {
	struct xr_arena *a;
	int lfd;
	int ro_fd;               /* the arena, O_RDONLY: what peers are given */
	bool ro_named;           /* ro_fd was opened by the arena's public name */
	int stop_fd;             /* eventfd: stop the thread */
	pthread_t th;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint32_t *allow_uid, n_uid;
	uint32_t *allow_gid, n_gid;
	uint32_t max_conns, n_conns;
	struct conn *conns;
	uint32_t idle_ms;        /* a connection must ATTACH within this */
	struct xr_limits lim;
	struct xr_closer *closer;
	uint64_t accept_after_ns; /* out of descriptors: no accept before */
	/* The game verbs' server (engine/games.c), set and cleared by the
	 * engine while this thread runs: games_mu orders the two. */
	pthread_mutex_t games_mu;
	const struct xr_server_games *games;
	void *games_ctx;
	uint8_t wake_msg[sizeof(struct xr_ctl_hdr)];
	/* The thread's counts (xr__server_work's fields, atomic: tests read
	 * them while it runs), and this poll's. */
	struct {
		_Atomic uint64_t polls, timeouts, idle, recvs, accepts;
		_Atomic uint32_t max_recvs, max_recvs_over, max_accepts;
	} work;
	uint32_t poll_recvs, poll_accepts, poll_acts;
};

/* Stores one of the thread's counts (relaxed: tests read them while it
 * runs, and they order nothing). */
#define WORK_ADD(c, f, n) xr_store_relaxed(&(c)->work.f, xr_load_relaxed(&(c)->work.f) + (n))
#define WORK_MAX(c, f, v)                                   \
	do {                                                 \
		if ((v) > xr_load_relaxed(&(c)->work.f))      \
			xr_store_relaxed(&(c)->work.f, (v));   \
	} while (0)

static void send_error(const struct xr_server *c, int fd, uint32_t id, int code,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The refusal's kind, for the engine's stats (shm/layout.h). */
static int refusal_kind(int code)
{
	switch (code) {
	case -EACCES: return XR_REFUSE_UID;
	case -EBUSY: return XR_REFUSE_LIMIT;
	case -EAGAIN: return XR_REFUSE_RATE;
	case -EPROTO: return XR_REFUSE_MALFORMED;
	case -ETIMEDOUT: return XR_REFUSE_TIMEOUT;
	}
	return XR_REFUSE_OTHER;
}

static void send_error(const struct xr_server *c, int fd, uint32_t id, int code,
		       const char *fmt, ...)
{
	struct xr_ctl_error e = {.code = code};
	va_list ap;
	_Atomic uint64_t *n = &c->a->hdr->engine.refusals[refusal_kind(code)];

	/* This thread alone counts: a plain increment, stored relaxed for
	 * tools (a figure, never acted on). */
	xr_store_relaxed(n, xr_load_relaxed(n) + 1);

	va_start(ap, fmt);
	vsnprintf(e.reason, sizeof(e.reason), fmt, ap);
	va_end(ap);
	/* Best effort, never waiting: the peer may be gone, or not reading. */
	xr__ctl_send(fd, XR_CTL_ERROR, id, &e, sizeof(e), NULL, 0);
}

/* The end of a peer's descriptor: hung up here (the peer sees it at once),
 * closed by the closing thread. */
static void dispose(struct xr_server *c, int fd, uint32_t uid)
{
	shutdown(fd, SHUT_RDWR);
	xr__closer_put(c->closer, fd, uid);
}

static void dispose_fds(struct xr_server *c, const int *fds, int n, uint32_t uid)
{
	for (int i = 0; i < n; i++)
		xr__closer_put(c->closer, fds[i], uid);
}

/* Bytes this end sent that the peer has not read (SIOCOUTQ of a Unix
 * socket: Linux has it for every socket type since 2.6; should it fail,
 * 0, and the connection leaves the table at once, as before draining). */
static int unread(int fd)
{
	int n = 0;

	return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : 0;
}

/* The connections for tools: `added` more accepted, and how many are open
 * (this thread alone writes them: relaxed, figures only). */
static void count_conns(struct xr_server *c, uint64_t added)
{
	struct xr_engine_stats *e = &c->a->hdr->engine;

	if (added)
		xr_store_relaxed(&e->connections, xr_load_relaxed(&e->connections) + added);
	xr_store_relaxed(&e->open, c->n_conns);
}

/* Removes connection i from the table (the last one moves into i). */
static void forget_conn(struct xr_server *c, uint32_t i)
{
	struct conn *k = &c->conns[i];

	xr__limits_drop_conn(&c->lim, k->uid);
	dispose(c, k->fd, k->uid);
	c->conns[i] = c->conns[--c->n_conns];
	count_conns(c, 0);
}

/*
 * Ends connection i: its slot is released at once. The connection itself
 * leaves the table at once too, unless the peer has not read what it was
 * sent: then it is hung up on but kept, still counted against its uid,
 * until the peer reads or closes (reap_drained). Why: a reply that carries
 * a descriptor (ATTACHED, SUBSCRIBED) and sits unread counts against the
 * engine's uid in the kernel (descriptors in flight, up to RLIMIT_NOFILE,
 * past which every such reply fails), however long the peer keeps its end
 * open; a peer that hung up on could open a new connection in its place
 * would pile them up without bound. Kept, they stay within its uid's
 * connections. Returns whether i left the table.
 */
/* Tells the engine's game directory (if any) that slot reads stream
 * through f now, or (f NULL) no longer. */
static void tell_reader(struct xr_server *c, uint32_t slot, uint32_t stream,
			const struct xr_filt *f)
{
	pthread_mutex_lock(&c->games_mu);
	if (c->games && c->games->reader)
		c->games->reader(c->games_ctx, slot, stream, f);
	pthread_mutex_unlock(&c->games_mu);
}

static bool drop_conn(struct xr_server *c, uint32_t i)
{
	struct conn *k = &c->conns[i];

	if (k->attached && !k->draining) {
		/* The games it created as its own go with it. */
		pthread_mutex_lock(&c->games_mu);
		if (c->games)
			c->games->gone(c->games_ctx, k->owner.id);
		pthread_mutex_unlock(&c->games_mu);
	}
	if (k->slot >= 0) {
		tell_reader(c, (uint32_t)k->slot, 0, NULL);
		xr__peers_release_owner(c->a, &k->owner);
		xr__limits_drop_reader(&c->lim, k->uid);
		k->slot = -1;
	}
	if (!k->draining && unread(k->fd) > 0) {
		shutdown(k->fd, SHUT_RDWR); /* it reads what is queued, then EOF */
		k->draining = true;
		return false;
	}
	forget_conn(c, i);
	return true;
}

/*
 * A kept connection may hold messages its peer sent that were never read:
 * those queued behind the one it was hung up for. Where the kernel lets
 * descriptors through (no SO_PASSRIGHTS), one of them may carry the peer's
 * own end of this very connection; closed by the peer, that end then lives
 * on in flight in our receive queue, the replies it has not read with it,
 * and the connection would be kept for ever, counted against its uid. So
 * each look at a kept connection reads one such message out, and hands
 * what it carried to the closing thread, under the caps on_message keeps.
 * The peer can add none (the connection is shut down): they run out.
 */
static void read_out(struct xr_server *c, struct conn *k)
{
	uint8_t b[XR_CTL_MSG_MAX + 1];
	int fds[XR_CTL_FDS_MAX], n_fds;

	if (xr__closer_stuck(c->closer, k->uid) >= XR_CTL_CLOSING_MAX ||
	    xr__closer_total(c->closer) >= closing_total_max)
		return;
	xr__ctl_recv(k->fd, b, sizeof(b), fds, &n_fds, MSG_DONTWAIT);
	dispose_fds(c, fds, n_fds, k->uid);
}

/* Connections whose peers have read all or closed leave the table. */
static void reap_drained(struct xr_server *c)
{
	for (uint32_t i = c->n_conns; i-- > 0;) {
		if (!c->conns[i].draining)
			continue;
		if (unread(c->conns[i].fd) == 0)
			forget_conn(c, i);
		else
			read_out(c, &c->conns[i]);
	}
}

static bool in_list(const uint32_t *l, uint32_t n, uint32_t v)
{
	for (uint32_t i = 0; i < n; i++)
		if (l[i] == v)
			return true;
	return false;
}

/* What peers are given: the arena, opened anew read-only, so that nobody
 * holding it can write the header, the tables or the rings. By its public
 * name when that still names the very file (so that /proc/PID/maps shows
 * it), else through the engine's own descriptor. */
static int open_read_only(struct xr_arena *a, int *out, bool *named)
{
	struct stat mine, st;
	char proc[64];
	/* By name only once the engine has given it: until then the name
	 * may be another user's file (a FIFO, or one whose open blocks). */
	int fd = xr_load_acquire(&a->name_pending)
			 ? -1
			 : open(a->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0 && (fstat(fd, &st) < 0 || fstat(a->fd, &mine) < 0 || st.st_ino != mine.st_ino ||
			st.st_dev != mine.st_dev)) {
		close(fd);
		fd = -1;
	}
	*named = fd >= 0;
	if (fd < 0) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", a->fd);
		fd = open(proc, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	*out = fd;
	return 0;
}

/* SO_PEERCRED's uid against the allow-list; its groups (SO_PEERGROUPS,
 * supplementary ones included, however many) against the gid list. */
static bool peer_allowed(const struct xr_server *c, int fd, uid_t uid, gid_t gid)
{
	gid_t small[64], *groups = small;
	socklen_t len = sizeof(small);
	bool ok = false;

	if (uid == geteuid() || in_list(c->allow_uid, c->n_uid, uid))
		return true;
	if (in_list(c->allow_gid, c->n_gid, gid))
		return true;
	if (!c->n_gid)
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		/* ERANGE: more groups than fit; len now says how many bytes. */
		if (errno != ERANGE || !(groups = malloc(len)) ||
		    getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
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

static void refuse_peer(const struct xr_server *c, int fd, uint32_t id, uid_t uid, gid_t gid)
{
	send_error(c, fd, id, -EACCES,
		   "engine %s refuses uid %u (gid %u): allowed are uid %u%s; start it with "
		   "--allow-uid %u or --allow-gid %u",
		   c->a->lay.name, (unsigned)uid, (unsigned)gid, (unsigned)geteuid(),
		   c->n_uid || c->n_gid ? " and its --allow-uid/--allow-gid lists" : " only",
		   (unsigned)uid, (unsigned)gid);
}

static void do_attach(struct xr_server *c, uint32_t ci, const struct xr_ctl_hdr *h)
{
	struct conn *k = &c->conns[ci];
	const struct xr_layout *l = &c->a->lay;

	/* One ATTACHED, with its descriptor, per connection (drop_conn says
	 * why descriptors sent are counted). */
	if (k->attached) {
		send_error(c, k->fd, h->id, -EPROTO, "ATTACH twice on one connection");
		drop_conn(c, ci);
		return;
	}
	/* Checked at accept already; again here, where the reply has an id. */
	if (!peer_allowed(c, k->fd, k->uid, k->gid)) {
		refuse_peer(c, k->fd, h->id, k->uid, k->gid);
		drop_conn(c, ci);
		return;
	}
	struct xr_ctl_attached r = {
		.layout_version = XR_LAYOUT_VERSION,
		.max_readers = l->max_readers,
		.fingerprint = xr__layout_fingerprint(),
		.engine_pid = l->writer_pid,
	};
	/* The engine names its arena only once this server listens
	 * (engine/host.c): the descriptor opened at start, through the
	 * engine's own, is taken anew by the name once there is one. Only
	 * this thread uses ro_fd. */
	if (!c->ro_named) {
		int fd;
		bool named;
		if (open_read_only(c->a, &fd, &named) == 0) {
			if (named) {
				close(c->ro_fd);
				c->ro_fd = fd;
				c->ro_named = true;
			} else {
				close(fd);
			}
		}
	}
	if (xr__ctl_send(k->fd, XR_CTL_ATTACHED, h->id, &r, sizeof(r), &c->ro_fd, 1) < 0) {
		drop_conn(c, ci);
		return;
	}
	k->attached = true;
}

/* The stream and policy a SUBSCRIBE asks for, checked against the engine's
 * own copy of the layout; its filter compiled. 0, or an error with the
 * reason sent. */
static int check_subscribe(struct xr_server *c, struct conn *k, const struct xr_ctl_hdr *h,
			   const struct xr_ctl_subscribe *m, uint32_t *stream, uint32_t *policy,
			   struct xr_filt *filt)
{
	const struct xr_layout *l = &c->a->lay;
	xr_filter f;
	int s = -1;

#define REFUSE(code, ...) do { send_error(c, k->fd, h->id, code, __VA_ARGS__); return code; } while (0)
	if (!k->attached)
		REFUSE(-EPROTO, "SUBSCRIBE before ATTACH");
	if (k->slot >= 0)
		REFUSE(-EINVAL, "this connection has a reader already: one reader per connection");
	if (!memchr(m->stream, 0, sizeof(m->stream)) || !memchr(m->label, 0, sizeof(m->label)))
		REFUSE(-EPROTO, "malformed SUBSCRIBE: stream or label not NUL-terminated");
	if (m->flags & ~(XR_CTL_SUB_WAKE | XR_CTL_SUB_SHORT_LEASE))
		REFUSE(-EPROTO, "malformed SUBSCRIBE: unknown flag bits 0x%x",
		       m->flags & ~(XR_CTL_SUB_WAKE | XR_CTL_SUB_SHORT_LEASE));
	for (uint32_t i = 0; i < l->n_streams; i++)
		if (!strncmp(l->streams[i].name, m->stream, sizeof(m->stream)))
			s = (int)i;
	if (s < 0)
		REFUSE(-ENOENT, "engine %s has no stream \"%s\"", c->a->lay.name, m->stream);
	const struct xr_stream_desc *sd = &l->streams[s];
	*stream = (uint32_t)s;
	*policy = m->policy ? m->policy : sd->policy;
	if (*policy > XR_POLICY_LOSSY)
		REFUSE(-EINVAL, "unknown policy %u", m->policy);
	if (*policy == XR_POLICY_LOSSLESS && sd->policy == XR_POLICY_LOSSY)
		REFUSE(XR_EPOLICY, "stream %s is lossy: a lossless reader cannot be promised every "
				   "record; attach with policy lossy",
		       sd->name);
	if (xr__ctl_filter_from_wire(&f, &m->filter) < 0 ||
	    xr__filter_compile(filt, &f,
			       sd->record_kind == XR_RECORD_EXPERIENCE ? &sd->shape : NULL) < 0)
		REFUSE(-EINVAL, "bad filter: ranges out of order or too many, rate not in [0, 1], or "
				"a filter on a stream without Experience records");
#undef REFUSE
	return 0;
}

static void do_subscribe(struct xr_server *c, uint32_t ci, const struct xr_ctl_hdr *h,
			 const struct xr_ctl_subscribe *m)
{
	struct conn *k = &c->conns[ci];
	const struct xr_layout *l = &c->a->lay;
	char why[XR_CTL_REASON_MAX];
	struct xr_filt filt;
	uint32_t stream, policy;
	int slot, page_fd = -1;

	if (check_subscribe(c, k, h, m, &stream, &policy, &filt) < 0) {
		drop_conn(c, ci);
		return;
	}
	if (xr__limits_add_reader(&c->lim, k->uid, why, sizeof(why)) < 0) {
		send_error(c, k->fd, h->id, -EBUSY, "engine %s: %s", l->name, why);
		drop_conn(c, ci);
		return;
	}
	struct xr_peer_claim claim = {
		.owner = k->owner, .stream = stream, .policy = policy, .uid = k->uid,
		.pid = k->pid, .label = m->label,
		.lease_timeout_ns = (m->flags & XR_CTL_SUB_SHORT_LEASE) ? XR_SHORT_LEASE_NS : 0};
	slot = xr__peer_claim(c->a, &claim, &page_fd);
	if (slot < 0) {
		if (slot == -EBUSY)
			send_error(c, k->fd, h->id, -EBUSY,
				   "engine %s has all %u reader slots taken (--max-readers %u)",
				   c->a->lay.name, l->max_readers, l->max_readers);
		else
			send_error(c, k->fd, h->id, slot, "engine %s cannot make a reader page: %s",
				   c->a->lay.name, strerror(-slot));
		xr__limits_drop_reader(&c->lim, k->uid);
		drop_conn(c, ci);
		return;
	}
	k->slot = slot;
	/* ACTIVE before the reply: a reader's first lease, stored after it
	 * reads SUBSCRIBED, is honoured (shm/peers.c, ORDERING). */
	xr__peer_activate(c->a, (uint32_t)slot, (m->flags & XR_CTL_SUB_WAKE) ? k->fd : -1,
			  c->wake_msg, sizeof(c->wake_msg), &filt);
	/* Before the reply: records the reader wants are built from the
	 * shards' next round on. */
	tell_reader(c, (uint32_t)slot, stream, &filt);
	struct xr_ctl_subscribed r = {.slot = (uint32_t)slot, .stream = stream, .policy = policy,
				      .gen = c->a->infos[slot].gen};
	int rc = xr__ctl_send(k->fd, XR_CTL_SUBSCRIBED, h->id, &r, sizeof(r), &page_fd, 1);
	/* The engine made this memfd: closing it cannot block. Its mapping
	 * stays, and the reader has its own descriptor. */
	close(page_fd);
	if (rc < 0)
		drop_conn(c, ci);
}

static void do_detach(struct xr_server *c, uint32_t ci, const struct xr_ctl_hdr *h,
		      const struct xr_ctl_detach *m)
{
	struct conn *k = &c->conns[ci];

	if (k->slot < 0 || m->slot != (uint32_t)k->slot) {
		send_error(c, k->fd, h->id, -EINVAL, "DETACH of slot %u, which is not this connection's",
			   m->slot);
		drop_conn(c, ci);
		return;
	}
	/* A member's slot goes, and its membership with it: what it holds
	 * goes back to its group now, not when the connection ends (a
	 * process that forked holds copies of the connection). */
	pthread_mutex_lock(&c->games_mu);
	if (c->games && c->games->group_leave)
		c->games->group_leave(c->games_ctx, k->owner.id);
	pthread_mutex_unlock(&c->games_mu);
	tell_reader(c, (uint32_t)k->slot, 0, NULL);
	xr__peers_release_owner(c->a, &k->owner);
	xr__limits_drop_reader(&c->lim, k->uid);
	k->slot = -1;
	xr__ctl_send(k->fd, XR_CTL_OK, h->id, NULL, 0, NULL, 0);
}

/* The verbs the engine's directory serves: games, and agents' seats. */
static bool is_game_verb(uint16_t type)
{
	return type >= XR_CTL_GAMES_CREATE && type <= XR_CTL_TABLE_DROP;
}

/* What is wrong with a game verb's body beyond its length, or NULL. */
static const char *bad_game_body(uint16_t type, const void *body)
{
	switch (type) {
	case XR_CTL_GAMES_CREATE: {
		struct xr_ctl_games_create m;
		memcpy(&m, body, sizeof(m));
		if (!memchr(m.kind, 0, sizeof(m.kind)))
			return "GAMES_CREATE's kind is not NUL-terminated";
		if (m.count < 1 || m.count > XR_CTL_CREATE_MAX)
			return "GAMES_CREATE's count is not 1..1024";
		if (m.flags & ~XR_CTL_GAMES_OWNED)
			return "GAMES_CREATE has unknown flag bits";
		if (m.obs_dtype > 1u + XR_DTYPE_BOOL)
			return "GAMES_CREATE's obs_dtype is not a dtype";
		if (m.turn_limit > 100000000u)
			return "GAMES_CREATE's turn limit is above 100000000";
		return NULL;
	}
	case XR_CTL_GAMES_DESTROY: {
		uint32_t n;
		memcpy(&n, body, sizeof(n));
		return n < 1 || n > XR_CTL_DESTROY_MAX ? "GAMES_DESTROY's count is not 1..1024" : NULL;
	}
	case XR_CTL_GAMES_LIST: {
		struct xr_ctl_games_list m;
		memcpy(&m, body, sizeof(m));
		return m.max < 1 || m.max > XR_CTL_LIST_MAX ? "GAMES_LIST's max is not 1..128" : NULL;
	}
	case XR_CTL_AGENT_OPEN: {
		struct xr_ctl_agent_open m;
		memcpy(&m, body, sizeof(m));
		if (!memchr(m.label, 0, sizeof(m.label)))
			return "AGENT_OPEN's label is not NUL-terminated";
		return m.flags ? "AGENT_OPEN has unknown flag bits" : NULL;
	}
	case XR_CTL_TABLE_CREATE: {
		struct xr_ctl_table_create m;
		memcpy(&m, body, sizeof(m));
		if (!memchr(m.name, 0, sizeof(m.name)))
			return "TABLE_CREATE's name is not NUL-terminated";
		if (!memchr(m.source, 0, sizeof(m.source)))
			return "TABLE_CREATE's source is not NUL-terminated";
		if (m.flags & ~(XR_CTL_TABLE_FED | XR_CTL_TABLE_TRANSITION))
			return "TABLE_CREATE has unknown flag bits";
		return (m.flags & XR_CTL_TABLE_TRANSITION) && !(m.flags & XR_CTL_TABLE_FED)
			       ? "TABLE_CREATE asks for transitions of no stream"
			       : NULL;
	}
	case XR_CTL_TABLE_OPEN:
	case XR_CTL_TABLE_DROP: {
		struct xr_ctl_table_open m;
		memcpy(&m, body, sizeof(m));
		if (memchr(m.name, 0, sizeof(m.name)))
			return NULL;
		return type == XR_CTL_TABLE_OPEN ? "TABLE_OPEN's name is not NUL-terminated"
						 : "TABLE_DROP's name is not NUL-terminated";
	}
	case XR_CTL_GROUP_JOIN: {
		struct xr_ctl_group_join m;
		memcpy(&m, body, sizeof(m));
		if (!memchr(m.group, 0, sizeof(m.group)))
			return "GROUP_JOIN's group is not NUL-terminated";
		if (m.policy > XR_POLICY_LOSSY)
			return "GROUP_JOIN's policy is not 0, 1 or 2";
		return m.flags ? "GROUP_JOIN has unknown flag bits" : NULL;
	}
	case XR_CTL_PRODUCER_OPEN: {
		struct xr_ctl_producer_open m;
		memcpy(&m, body, sizeof(m));
		if (!memchr(m.stream, 0, sizeof(m.stream)))
			return "PRODUCER_OPEN's stream is not NUL-terminated";
		return m.flags ? "PRODUCER_OPEN has unknown flag bits" : NULL;
	}
	case XR_CTL_SEATS_CLAIM: {
		struct xr_ctl_seats_claim m;
		memcpy(&m, body, sizeof(m));
		if (m.players >> 8)
			return "SEATS_CLAIM's players has bits past player 7";
		return m.lo > m.hi ? "SEATS_CLAIM's lo is past its hi" : NULL;
	}
	}
	return NULL;
}

/*
 * The game verbs: the message checked here, the request decided by the
 * engine's directory. A malformed message ends the connection like any
 * other; a refusal (a limit, an unknown or foreign id) does not, for the
 * connection's games would go with it.
 */
static void do_games(struct xr_server *c, uint32_t ci, const struct xr_ctl_hdr *h,
		     const void *body)
{
	struct conn *k = &c->conns[ci];
	const char *bad = bad_game_body(h->type, body);
	struct xr_ctl_caller who = {.conn = k->owner.id, .uid = k->uid, .pid = k->pid};
	char why[XR_CTL_REASON_MAX] = "";
	int rc = 0;

	if (!k->attached || bad) {
		send_error(c, k->fd, h->id, -EPROTO, "malformed message: %s",
			   bad ? bad : "a game request before ATTACH");
		drop_conn(c, ci);
		return;
	}
	pthread_mutex_lock(&c->games_mu);
	if (!c->games) {
		pthread_mutex_unlock(&c->games_mu);
		send_error(c, k->fd, h->id, -ENOTSUP, "engine %s hosts no games (a synthetic writer, or "
						   "stopping)",
			   c->a->lay.name);
		return;
	}
	switch (h->type) {
	case XR_CTL_GAMES_CREATE: {
		struct xr_ctl_games_create m;
		struct xr_ctl_games_created r;
		memcpy(&m, body, sizeof(m));
		rc = c->games->create(c->games_ctx, &who, &m, &r, why, sizeof(why));
		if (rc == 0)
			xr__ctl_send(k->fd, XR_CTL_GAMES_CREATED, h->id, &r, sizeof(r), NULL, 0);
		break;
	}
	case XR_CTL_GAMES_DESTROY: {
		struct xr_ctl_games_destroy m;
		memcpy(&m, body, sizeof(m));
		rc = c->games->destroy(c->games_ctx, &who, m.ids, m.count, why, sizeof(why));
		if (rc == 0)
			xr__ctl_send(k->fd, XR_CTL_OK, h->id, NULL, 0, NULL, 0);
		break;
	}
	case XR_CTL_GAME_RESET: {
		struct xr_ctl_game_reset m;
		memcpy(&m, body, sizeof(m));
		rc = c->games->reset(c->games_ctx, &who, m.id, m.seed, why, sizeof(why));
		if (rc == 0)
			xr__ctl_send(k->fd, XR_CTL_OK, h->id, NULL, 0, NULL, 0);
		break;
	}
	case XR_CTL_GAMES_LIST: {
		struct xr_ctl_games r;
		struct xr_ctl_games_list m;
		memcpy(&m, body, sizeof(m));
		c->games->list(c->games_ctx, &who, m.from_id, m.max, &r);
		xr__ctl_send(k->fd, XR_CTL_GAMES, h->id, &r,
			     (uint32_t)(offsetof(struct xr_ctl_games, games) +
					r.n * sizeof(r.games[0])),
			     NULL, 0);
		break;
	}
	case XR_CTL_AGENT_OPEN: {
		struct xr_ctl_agent_open m;
		struct xr_ctl_agent_opened r;
		int fd = -1;
		memcpy(&m, body, sizeof(m));
		if (!c->games->agent_open) {
			rc = -ENOTSUP;
			snprintf(why, sizeof(why), "this engine takes no agents");
			break;
		}
		rc = c->games->agent_open(c->games_ctx, &who, &m, &r, &fd, why, sizeof(why));
		if (rc == 0) {
			/* The engine made this memfd: closing it cannot block. */
			xr__ctl_send(k->fd, XR_CTL_AGENT_OPENED, h->id, &r, sizeof(r), &fd, 1);
			close(fd);
		}
		break;
	}
	case XR_CTL_SEATS_CLAIM: {
		struct xr_ctl_seats_claim m;
		struct xr_ctl_seats_claimed r;
		memcpy(&m, body, sizeof(m));
		rc = c->games->seats_claim ? c->games->seats_claim(c->games_ctx, &who, &m, &r, why,
								    sizeof(why))
					   : -ENOTSUP;
		if (rc == 0)
			xr__ctl_send(k->fd, XR_CTL_SEATS_CLAIMED, h->id, &r, sizeof(r), NULL, 0);
		else if (rc == -ENOTSUP)
			snprintf(why, sizeof(why), "this engine takes no agents");
		break;
	}
	case XR_CTL_SEATS_RELEASE: {
		struct xr_ctl_seats_release m;
		memcpy(&m, body, sizeof(m));
		rc = c->games->seats_release ? c->games->seats_release(c->games_ctx, &who, m.claim,
									why, sizeof(why))
					     : -ENOTSUP;
		if (rc == 0)
			xr__ctl_send(k->fd, XR_CTL_OK, h->id, NULL, 0, NULL, 0);
		else if (rc == -ENOTSUP)
			snprintf(why, sizeof(why), "this engine takes no agents");
		break;
	}
	case XR_CTL_TABLE_CREATE: {
		struct xr_ctl_table_create m;
		struct xr_ctl_table_created r;
		memcpy(&m, body, sizeof(m));
		rc = c->games->table_create ? c->games->table_create(c->games_ctx, &who, &m, &r, why,
								      sizeof(why))
					    : -ENOTSUP;
		if (rc == 0)
			xr__ctl_send(k->fd, XR_CTL_TABLE_CREATED, h->id, &r, sizeof(r), NULL, 0);
		else if (rc == -ENOTSUP)
			snprintf(why, sizeof(why), "this engine hosts no tables");
		break;
	}
	case XR_CTL_TABLE_OPEN: {
		struct xr_ctl_table_open m;
		struct xr_ctl_table_opened r;
		int fds[3] = {-1, -1, -1};
		memcpy(&m, body, sizeof(m));
		rc = c->games->table_open ? c->games->table_open(c->games_ctx, &who, &m, &r, fds, why,
								  sizeof(why))
					  : -ENOTSUP;
		if (rc == 0) {
			/* The engine made these: closing them cannot block. */
			xr__ctl_send(k->fd, XR_CTL_TABLE_OPENED, h->id, &r, sizeof(r), fds, 3);
			for (int i = 0; i < 3; i++)
				close(fds[i]);
		} else if (rc == -ENOTSUP) {
			snprintf(why, sizeof(why), "this engine hosts no tables");
		}
		break;
	}
	case XR_CTL_TABLE_DROP: {
		struct xr_ctl_table_open m;
		memcpy(&m, body, sizeof(m));
		rc = c->games->table_drop ? c->games->table_drop(c->games_ctx, &who, &m, why,
								  sizeof(why))
					  : -ENOTSUP;
		if (rc == 0)
			xr__ctl_send(k->fd, XR_CTL_OK, h->id, NULL, 0, NULL, 0);
		else if (rc == -ENOTSUP)
			snprintf(why, sizeof(why), "this engine hosts no tables");
		break;
	}
	case XR_CTL_GROUP_JOIN: {
		struct xr_ctl_group_join m;
		struct xr_ctl_group_joined r;
		int fds[2] = {-1, -1};
		memcpy(&m, body, sizeof(m));
		if (k->slot < 0) {
			rc = -EINVAL;
			snprintf(why, sizeof(why), "GROUP_JOIN before SUBSCRIBE: a member is a "
				 "reader of the stream first");
			break;
		}
		/* The engine's own records: the reader table's entry it wrote,
		 * and its private copy of the layout. */
		uint32_t si = c->a->infos[k->slot].stream;
		const struct xr_stream_desc *sd = &c->a->lay.streams[si];
		rc = c->games->group_join ? c->games->group_join(c->games_ctx, &who, sd->name,
								  sd->policy, &m, &r, fds, why,
								  sizeof(why))
					  : -ENOTSUP;
		if (rc == 0) {
			/* Relaxed: a flag for tools (cli/cmd_info.c loads it
			 * relaxed), ordering nothing. */
			xr_store_relaxed(&c->a->infos[k->slot].group_member, 1);
			/* The engine made these: closing them cannot block. */
			xr__ctl_send(k->fd, XR_CTL_GROUP_JOINED, h->id, &r, sizeof(r), fds, 2);
			for (int i = 0; i < 2; i++)
				close(fds[i]);
		} else if (rc == -ENOTSUP) {
			snprintf(why, sizeof(why), "this engine hosts no consumer groups");
		}
		break;
	}
	case XR_CTL_PRODUCER_OPEN: {
		struct xr_ctl_producer_open m;
		struct xr_ctl_producer_opened r;
		int fds[2] = {-1, -1};
		memcpy(&m, body, sizeof(m));
		if (!c->games->producer_open) {
			rc = -ENOTSUP;
			snprintf(why, sizeof(why), "this engine takes no producers");
			break;
		}
		rc = c->games->producer_open(c->games_ctx, &who, &m, &r, fds, why, sizeof(why));
		if (rc == 0) {
			/* The engine made these: closing them cannot block. */
			xr__ctl_send(k->fd, XR_CTL_PRODUCER_OPENED, h->id, &r, sizeof(r), fds, 2);
			for (int i = 0; i < 2; i++)
				close(fds[i]);
		}
		break;
	}
	}
	pthread_mutex_unlock(&c->games_mu);
	if (rc < 0)
		send_error(c, k->fd, h->id, rc, "engine %s: %s", c->a->lay.name, why);
}

void xr__server_set_games(struct xr_server *c, const struct xr_server_games *ops, void *ctx)
{
	pthread_mutex_lock(&c->games_mu);
	c->games = ops;
	c->games_ctx = ctx;
	pthread_mutex_unlock(&c->games_mu);
}

/* What is wrong with a message of n bytes with n_fds descriptors, or NULL. */
static const char *malformed(const struct xr_ctl_hdr *h, int n, int n_fds)
{
	uint32_t want;

	if ((size_t)n < sizeof(*h))
		return "shorter than a header";
	if (h->magic != XR_CTL_MAGIC)
		return "bad magic (not an xring control message)";
	if (h->version != XR_CTL_VERSION)
		return "unsupported protocol version";
	if (h->len != (uint32_t)n - sizeof(*h))
		return "length field disagrees with the message";
	switch (h->type) {
	case XR_CTL_ATTACH: want = 0; break;
	case XR_CTL_SUBSCRIBE: want = sizeof(struct xr_ctl_subscribe); break;
	case XR_CTL_DETACH: want = sizeof(struct xr_ctl_detach); break;
	case XR_CTL_GAMES_CREATE: want = sizeof(struct xr_ctl_games_create); break;
	case XR_CTL_GAMES_DESTROY: want = sizeof(struct xr_ctl_games_destroy); break;
	case XR_CTL_GAME_RESET: want = sizeof(struct xr_ctl_game_reset); break;
	case XR_CTL_GAMES_LIST: want = sizeof(struct xr_ctl_games_list); break;
	case XR_CTL_AGENT_OPEN: want = sizeof(struct xr_ctl_agent_open); break;
	case XR_CTL_SEATS_CLAIM: want = sizeof(struct xr_ctl_seats_claim); break;
	case XR_CTL_SEATS_RELEASE: want = sizeof(struct xr_ctl_seats_release); break;
	case XR_CTL_TABLE_CREATE: want = sizeof(struct xr_ctl_table_create); break;
	case XR_CTL_TABLE_OPEN: want = sizeof(struct xr_ctl_table_open); break;
	case XR_CTL_TABLE_DROP: want = sizeof(struct xr_ctl_table_open); break;
	case XR_CTL_GROUP_JOIN: want = sizeof(struct xr_ctl_group_join); break;
	case XR_CTL_PRODUCER_OPEN: want = sizeof(struct xr_ctl_producer_open); break;
	default: return "unknown message type";
	}
	if (h->len != want)
		return "wrong body length for its type";
	if (n_fds)
		return "file descriptors are not accepted";
	return NULL;
}

/* Rate limits: the connection's, then its uid's over all its connections;
 * for game requests, the uid's game request rate alone. */
static bool rate_ok(struct xr_server *c, struct conn *k, uint32_t id, bool game)
{
	uint64_t now = xr__now_ns();
	struct xr_uid_use *u = xr__limits_uid(&c->lim, k->uid, now);

	if (game) {
		if (u && !xr__bucket_take(&u->games, c->lim.games_rate, c->lim.games_burst, now)) {
			uint32_t ms = xr__bucket_retry_ms(&u->games, c->lim.games_rate);
			send_error(c, k->fd, id, -EAGAIN,
				   "too many game requests from uid %u (%.0f/s over all its "
				   "connections); retry in %u ms",
				   (unsigned)k->uid, c->lim.games_rate, ms);
			k->quiet_until_ns =
				now + (uint64_t)(ms > XR_CTL_GAMES_QUIET_MS ? ms : XR_CTL_GAMES_QUIET_MS) *
					      1000000ull;
			return false;
		}
		return true;
	}

	if (!xr__bucket_take(&k->bucket, c->lim.conn_rate, c->lim.conn_burst, now)) {
		send_error(c, k->fd, id, -EAGAIN,
			   "too many requests on one connection (%.0f/s); retry in %u ms",
			   c->lim.conn_rate, xr__bucket_retry_ms(&k->bucket, c->lim.conn_rate));
		return false;
	}
	if (u && !xr__bucket_take(&u->bucket, c->lim.uid_rate, c->lim.uid_burst, now)) {
		send_error(c, k->fd, id, -EAGAIN,
			   "too many requests from uid %u (%.0f/s over all its connections); retry "
			   "in %u ms",
			   (unsigned)k->uid, c->lim.uid_rate,
			   xr__bucket_retry_ms(&u->bucket, c->lim.uid_rate));
		return false;
	}
	return true;
}

static void on_message(struct xr_server *c, uint32_t ci)
{
	struct conn *k = &c->conns[ci];
	union {
		struct xr_ctl_hdr h;
		uint8_t b[XR_CTL_MSG_MAX + 1];
	} u;
	int fds[XR_CTL_FDS_MAX], n_fds;
	uint32_t closing = xr__closer_stuck(c->closer, k->uid);
	uint32_t total = xr__closer_total(c->closer);

	/* Where the kernel cannot refuse descriptors (SO_PASSRIGHTS), reading
	 * a message installs those it carries (up to XR_CTL_FDS_MAX) in the
	 * engine. A uid whose descriptors linger has no more read, nor does
	 * anyone while those of all uids waiting to be closed are past the cap
	 * (a uid's queue counts as stuck only after a while, and several
	 * uids may pile up at once): unread, they go with the connection. So
	 * what waits to be closed stays under the cap plus one message's. */
	if (closing >= XR_CTL_CLOSING_MAX) {
		send_error(c, k->fd, 0, -EBUSY,
			   "engine %s has %u descriptors of uid %u still closing (they linger); "
			   "hanging up",
			   c->a->lay.name, closing, (unsigned)k->uid);
		drop_conn(c, ci);
		c->poll_acts++;
		return;
	}
	if (total >= closing_total_max) {
		send_error(c, k->fd, 0, -EBUSY,
			   "engine %s has %u descriptors of all uids still closing (they linger); "
			   "hanging up",
			   c->a->lay.name, total);
		drop_conn(c, ci);
		c->poll_acts++;
		return;
	}
	int n = xr__ctl_recv(k->fd, u.b, sizeof(u.b), fds, &n_fds, MSG_DONTWAIT);

	/* Whatever came with it is not ours to keep, nor to close here. */
	dispose_fds(c, fds, n_fds, k->uid);
	if (n == -EAGAIN)
		return;
	c->poll_recvs++;
	c->poll_acts++;
	if (n == -EMSGSIZE) {
		send_error(c, k->fd, 0, -EPROTO, "malformed message: longer than any in the protocol");
		drop_conn(c, ci);
		return;
	}
	if (n <= 0) { /* hangup or reset: the reader is gone */
		drop_conn(c, ci);
		return;
	}
	const char *bad = malformed(&u.h, n, n_fds);
	if (bad) {
		send_error(c, k->fd, (size_t)n >= sizeof(u.h) ? u.h.id : 0, -EPROTO,
			   "malformed message: %s", bad);
		drop_conn(c, ci);
		return;
	}
	if (!rate_ok(c, k, u.h.id, is_game_verb(u.h.type))) {
		/* A connection that holds games is told to retry, not hung
		 * up on: its games would go with it. */
		if (!is_game_verb(u.h.type) || !k->attached)
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
		do_subscribe(c, ci, &u.h, &m);
		break;
	}
	case XR_CTL_DETACH: {
		struct xr_ctl_detach m;
		memcpy(&m, u.b + sizeof(u.h), sizeof(m));
		do_detach(c, ci, &u.h, &m);
		break;
	}
	default:
		do_games(c, ci, &u.h, u.b + sizeof(u.h));
		break;
	}
}

/* Whether a new connection of this peer may join the table; if not, the
 * peer has been told why. */
static bool admit(struct xr_server *c, int fd, uid_t uid, gid_t gid)
{
	char why[XR_CTL_REASON_MAX];
	uint32_t closing;

	/* A peer not on the allow-list gets no connection to hold: the table
	 * is for those who may read. (Id 0: no request yet.) */
	if (!peer_allowed(c, fd, uid, gid)) {
		refuse_peer(c, fd, 0, uid, gid);
		return false;
	}
	closing = xr__closer_stuck(c->closer, uid);
	if (closing >= XR_CTL_CLOSING_MAX) {
		send_error(c, fd, 0, -EBUSY,
			   "engine %s has %u descriptors of uid %u still closing (they linger); "
			   "refusing its connections until they are gone",
			   c->a->lay.name, closing, (unsigned)uid);
		return false;
	}
	if (c->n_conns == c->max_conns) {
		send_error(c, fd, 0, -EBUSY, "engine %s has too many connections (%u, all uids)",
			   c->a->lay.name, c->max_conns);
		return false;
	}
	if (xr__limits_add_conn(&c->lim, uid, why, sizeof(why)) < 0) {
		send_error(c, fd, 0, -EBUSY, "engine %s: %s", c->a->lay.name, why);
		return false;
	}
	return true;
}

static void on_accept(struct xr_server *c)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	/* Every connection refused or ended is closed by the closing threads,
	 * and a peer's lingering close holds up its uid's (control/closer.h):
	 * past a bound on what waits there, of all uids (a uid not allowed in
	 * included: it cannot be told before accept), stop accepting for a
	 * while, so that the descriptors it holds stay bounded. Connections
	 * wait in the listen queue meanwhile; connected readers are served. */
	c->poll_acts++; /* an accept, or a pause in accepting */
	if (xr__closer_total(c->closer) >= closing_total_max) {
		c->accept_after_ns = xr__now_ns() + XR_CTL_ACCEPT_PAUSE_MS * 1000000ull;
		return;
	}
	c->poll_accepts++;
	int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0) {
		/* Out of descriptors (a peer's pile in the closer, say): stop
		 * looking at the listener for a while rather than spin on it. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			c->accept_after_ns = xr__now_ns() + XR_CTL_ACCEPT_PAUSE_MS * 1000000ull;
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		dispose(c, fd, (uint32_t)-1);
		return;
	}
	if (!admit(c, fd, cr.uid, cr.gid)) {
		dispose(c, fd, cr.uid);
		return;
	}
	uint64_t now = xr__now_ns();
	struct conn k = {
		.fd = fd, .pid = cr.pid, .uid = cr.uid, .gid = cr.gid, .slot = -1,
		.owner = {.kind = XR_OWNER_CONN, .id = xr__peers_new_owner(c->a)}, .born_ns = now,
	};
	xr__bucket_init(&k.bucket, c->lim.conn_burst, now);
	c->conns[c->n_conns++] = k;
	count_conns(c, 1);
}

/* Milliseconds until the first connection that has not ATTACHed is due,
 * or until accepting resumes; -1 for none. */
static int next_timeout(const struct xr_server *c, uint64_t now)
{
	uint64_t idle_ns = c->idle_ms * 1000000ull, due = UINT64_MAX;

	for (uint32_t i = 0; i < c->n_conns; i++) {
		const struct conn *k = &c->conns[i];
		if (k->draining && now + XR_CTL_DRAIN_CHECK_MS * 1000000ull < due)
			due = now + XR_CTL_DRAIN_CHECK_MS * 1000000ull;
		else if (!k->draining && !k->attached && k->born_ns + idle_ns < due)
			due = k->born_ns + idle_ns;
		if (!k->draining && k->quiet_until_ns > now && k->quiet_until_ns < due)
			due = k->quiet_until_ns;
	}
	if (c->accept_after_ns > now && c->accept_after_ns < due)
		due = c->accept_after_ns;
	if (due == UINT64_MAX)
		return -1;
	uint64_t ms = due <= now ? 0 : (due - now + 999999) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Connections that have not ATTACHed in time and said nothing now get
 * ERROR and a hangup; pf[] follows the table as drop_conn reorders it. */
static void close_idle(struct xr_server *c, struct pollfd *pf, uint64_t now)
{
	uint64_t idle_ns = c->idle_ms * 1000000ull;

	for (uint32_t i = c->n_conns; i-- > 0;) {
		struct conn *k = &c->conns[i];
		if (k->attached || k->draining || pf[2 + i].revents || now - k->born_ns < idle_ns)
			continue;
		if (c->idle_ms % 1000 == 0)
			send_error(c, k->fd, 0, -ETIMEDOUT, "no ATTACH within %u s of connecting",
				   c->idle_ms / 1000);
		else
			send_error(c, k->fd, 0, -ETIMEDOUT, "no ATTACH within %u ms of connecting",
				   c->idle_ms);
		c->poll_acts++;
		if (drop_conn(c, i))
			pf[2 + i] = pf[2 + c->n_conns]; /* the last moved into i */
	}
}

static void *serve(void *p)
{
	struct xr_server *c = p;
	struct pollfd *pf = calloc(c->max_conns + 2, sizeof(*pf));

	pthread_setname_np(pthread_self(), "xr-control");
	if (!pf)
		return NULL;
	for (;;) {
		reap_drained(c);
		uint64_t now = xr__now_ns();
		uint32_t n = c->n_conns;
		bool accepting = now >= c->accept_after_ns;

		pf[0] = (struct pollfd){.fd = c->stop_fd, .events = POLLIN};
		pf[1] = (struct pollfd){.fd = accepting ? c->lfd : -1, .events = POLLIN};
		/* A draining connection is shut down: it would poll as hung up
		 * for ever. It is looked at by reap_drained only. A quiet one
		 * (rate_ok) is looked at again when its quiet ends. */
		uint32_t polled = 0;
		for (uint32_t i = 0; i < n; i++) {
			pf[2 + i] = (struct pollfd){
				.fd = c->conns[i].draining || c->conns[i].quiet_until_ns > now
					      ? -1
					      : c->conns[i].fd,
				.events = POLLIN};
			polled += pf[2 + i].fd >= 0;
		}
		int ready = poll(pf, n + 2, next_timeout(c, now));
		if (ready < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[0].revents)
			break;
		c->poll_recvs = c->poll_accepts = c->poll_acts = 0;
		close_idle(c, pf, xr__now_ns());
		/* Backwards: drop_conn moves the last connection into i, which
		 * was looked at already. */
		for (uint32_t i = c->n_conns; i-- > 0;) {
			if (!pf[2 + i].revents)
				continue;
			if (pf[2 + i].revents & POLLIN)
				on_message(c, i);
			else
				drop_conn(c, i); /* POLLHUP/POLLERR without data */
			if (!(pf[2 + i].revents & POLLIN))
				c->poll_acts++;
		}
		if (pf[1].revents & POLLIN)
			on_accept(c);
		WORK_ADD(c, polls, 1);
		if (!ready)
			WORK_ADD(c, timeouts, 1);
		else if (!c->poll_acts)
			WORK_ADD(c, idle, 1);
		WORK_ADD(c, recvs, c->poll_recvs);
		WORK_ADD(c, accepts, c->poll_accepts);
		WORK_MAX(c, max_recvs, c->poll_recvs);
		WORK_MAX(c, max_accepts, c->poll_accepts);
		if (c->poll_recvs > polled)
			WORK_MAX(c, max_recvs_over, c->poll_recvs - polled);
	}
	free(pf);
	return NULL;
}

/* Sets the socket file's group and mode through a descriptor of the very
 * inode bound, never through a path that someone could have swapped for a
 * link in between (the directory is checked to be writable by nobody else,
 * and this makes the path's last component not matter either). */
static int set_mode(const char *path, const xr_server_opts *o)
{
	char proc[64];
	struct stat st;
	int pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC), rc = 0;

	if (pfd < 0)
		return -errno;
	if (fstat(pfd, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
		close(pfd);
		return -EPERM;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	/* The umask must not decide who may connect: 0660 with the first
	 * allowed group, 0666 when --allow-uid names users (the allow-list,
	 * checked at accept, is then the gate). */
	if ((o && o->n_allow_gid &&
	     fchownat(pfd, "", (uid_t)-1, o->allow_gid[0], AT_EMPTY_PATH) < 0) ||
	    chmod(proc, o && o->n_allow_uid ? 0666 : 0660) < 0)
		rc = -errno;
	close(pfd);
	return rc;
}

/* Binds the listening socket at c->path, replacing a stale socket (one
 * nobody answers on) in a directory that only this uid or root can write. */
static int listen_at(struct xr_server *c, const xr_server_opts *o)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, rc, zero = 0;

	memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* No descriptors from peers, where the kernel can refuse them: every
	 * connection inherits it from the moment it connects. */
	if (use_passrights)
		setsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &zero, sizeof(zero));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EADDRINUSE)
			goto fail;
		/* Someone answering there is a live engine; nobody is a stale
		 * file left by a killed one. */
		int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
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
	rc = set_mode(c->path, o);
	if (rc == 0 && listen(fd, 64) < 0)
		rc = -errno;
	if (rc < 0) {
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

/* Descriptors enough for the connection table, the closer's backlog and
 * the engine itself: the soft limit raised to the hard one. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static uint32_t *copy_ids(const uint32_t *ids, uint32_t n)
{
	uint32_t *p = n ? malloc(n * sizeof(*p)) : NULL;

	if (p)
		memcpy(p, ids, n * sizeof(*p));
	return p;
}

static void free_server(struct xr_server *c)
{
	if (c->lfd >= 0) {
		unlink(c->path);
		close(c->lfd); /* never listened, or bound without a peer yet */
	}
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	if (c->ro_fd >= 0)
		close(c->ro_fd);
	xr__closer_stop(c->closer);
	xr__limits_free(&c->lim);
	free(c->conns);
	free(c->allow_uid);
	free(c->allow_gid);
	pthread_mutex_destroy(&c->games_mu);
	free(c);
}

/* The limits, from the options or their defaults. */
static void set_limits(struct xr_server *c, const xr_server_opts *o)
{
	uint32_t n = c->a->lay.max_readers;

	c->max_conns = 2 * n + 16;
	xr__limits_init(&c->lim, c->max_conns, n, o ? o->max_conns_per_uid : 0,
			o ? o->max_readers_per_uid : 0, o ? o->max_requests_per_uid : 0);
	c->idle_ms = o && o->idle_timeout_ms ? o->idle_timeout_ms : XR_CTL_IDLE_MS;
}

int xr_server_start(xr_arena *a, const xr_server_opts *o, xr_server **out)
{
	return xr__server_start_games(a, o, NULL, NULL, out);
}

int xr__server_start_games(xr_arena *a, const xr_server_opts *o, const struct xr_server_games *ops,
			   void *ctx, xr_server **out)
{
	char why[XR_SERVER_NOTE_MAX];
	struct xr_server *c;
	int rc;

	server_note[0] = '\0';
	if (!a || !a->owner || !out)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->a = a;
	c->lfd = c->stop_fd = c->ro_fd = -1;
	pthread_mutex_init(&c->games_mu, NULL);
	set_limits(c, o);
	struct xr_ctl_hdr wake = {XR_CTL_MAGIC, XR_CTL_VERSION, XR_CTL_WAKE, 0, 0};
	memcpy(c->wake_msg, &wake, sizeof(wake));
	c->conns = calloc(c->max_conns, sizeof(*c->conns));
	c->allow_uid = copy_ids(o ? o->allow_uid : NULL, o ? o->n_allow_uid : 0);
	c->allow_gid = copy_ids(o ? o->allow_gid : NULL, o ? o->n_allow_gid : 0);
	c->n_uid = c->allow_uid ? o->n_allow_uid : 0;
	c->n_gid = c->allow_gid ? o->n_allow_gid : 0;
	rc = -ENOMEM;
	if (!c->conns || (o && o->n_allow_uid && !c->allow_uid) ||
	    (o && o->n_allow_gid && !c->allow_gid))
		goto fail;
	raise_fd_limit();
	rc = open_read_only(a, &c->ro_fd, &c->ro_named);
	if (rc < 0)
		goto fail;
	rc = xr__run_dir_serve(a->lay.name, c->path, sizeof(c->path), why, sizeof(why));
	if (rc < 0) {
		set_note("%s", why);
		goto fail;
	}
	rc = listen_at(c, o);
	if (rc < 0) {
		set_note("%s: %s", c->path,
				    rc == -EADDRINUSE ? "another engine serves this name"
						      : strerror(-rc));
		goto fail;
	}
	c->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (c->stop_fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = xr__closer_start(&c->closer);
	if (rc < 0)
		goto fail;
	c->games = ops;
	c->games_ctx = ctx;
	rc = -pthread_create(&c->th, NULL, serve, c);
	if (rc < 0)
		goto fail;
	xr__arena_hold(a);
	*out = c;
	return 0;
fail:
	free_server(c);
	return rc;
}

const char *xr_server_path(const xr_server *c)
{
	return c ? c->path : NULL;
}

void xr_server_stop(xr_server *c)
{
	uint64_t one = 1;

	if (!c)
		return;
	/* The thread never blocks on a peer, so the join is bounded. */
	if (write(c->stop_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(c->th, NULL);
	unlink(c->path);
	/* Hang up on everyone (each reader sees it at once) and free their
	 * slots. The listener goes to the closer too: connections it never
	 * accepted may hold descriptors in flight. */
	while (c->n_conns) {
		drop_conn(c, c->n_conns - 1);
		if (c->n_conns && c->conns[c->n_conns - 1].draining)
			forget_conn(c, c->n_conns - 1); /* nobody is waiting now */
	}
	dispose(c, c->lfd, (uint32_t)-1);
	c->lfd = -1;
	xr__arena_unhold(c->a);
	free_server(c);
}

void xr__server_work(const struct xr_server *c, struct xr_server_work *out)
{
	*out = (struct xr_server_work){
		.polls = xr_load_relaxed(&c->work.polls),
		.timeouts = xr_load_relaxed(&c->work.timeouts),
		.idle = xr_load_relaxed(&c->work.idle),
		.recvs = xr_load_relaxed(&c->work.recvs),
		.accepts = xr_load_relaxed(&c->work.accepts),
		.max_recvs = xr_load_relaxed(&c->work.max_recvs),
		.max_recvs_over = xr_load_relaxed(&c->work.max_recvs_over),
		.max_accepts = xr_load_relaxed(&c->work.max_accepts),
	};
}

uint32_t xr__server_closing_stuck(struct xr_server *c, uint32_t uid)
{
	return xr__closer_stuck(c->closer, uid);
}
