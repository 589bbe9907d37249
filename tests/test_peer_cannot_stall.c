/* SPDX-License-Identifier: MIT */
/*
 * Nothing an admitted peer does can block, spin or slow the engine beyond
 * its own share (docs/threat-model.md). Each case is an attack that stopped
 * the engine before the trust-boundary work (defects 1, 4 and 7 of that
 * issue), played here by hand:
 *
 *   wake_channel_never_blocks   a reader that sleeps and re-sleeps at every
 *                    publish, made its end of the wake channel blocking and
 *                    never reads it (formerly: cleared O_NONBLOCK on the
 *                    eventfd it passed and filled its counter: the shard's
 *                    write() blocked for ever). The writer goes through
 *                    200,000 records; stopping the server and destroying the
 *                    arena take well under a second. And an eventfd passed
 *                    with SUBSCRIBE is refused.
 *   passed_fd_never_blocks   a TCP socket with SO_LINGER and unsent data,
 *                    passed to the engine and closed by the peer (formerly:
 *                    the control thread's close() waited out the linger: no
 *                    attach served, shutdown hung on the join). With the
 *                    kernel's SO_PASSRIGHTS the sender gets EPERM; without
 *                    it (the server told not to ask, as on kernels before
 *                    6.16) the engine refuses the message, another reader
 *                    attaches within a second, the server stops within a
 *                    second, and the socket is closed in the background.
 *   lingering_closes_stay_with_their_uid   the same socket, and then 40
 *                    connections passing 2 descriptors each: another
 *                    uid's readers are served on (formerly: their hangups
 *                    queued behind the linger and, past 64, their
 *                    connections were refused), and the peer's connections
 *                    past its limit are hung up on unread.
 *   closing_cap_pauses_accept   with the closing threads' queues over a
 *                    cap (of all uids), the server reads no message (it
 *                    could bring descriptors) and stops accepting, then
 *                    accepts again once closes go on (formerly: a uid's
 *                    refused connections piled up behind its lingering
 *                    close until the engine ran out of descriptors).
 *   full_queue_times_out   a reader's connect to a listen queue that stays
 *                    full gives up after 5 s, saying so (formerly: it
 *                    waited for as long as the engine did not accept).
 *   unread_replies_stay_counted   a peer hung up on with ATTACHED (and
 *                    its descriptor) unread keeps its place among its uid's
 *                    connections until it reads (formerly: its place went
 *                    to its next connection, and descriptors in flight,
 *                    counted against the engine's uid, piled up until
 *                    every ATTACHED failed).
 *   own_end_in_flight_not_kept   peers that send garbage, then a message
 *                    carrying their own end of the connection, and close
 *                    without reading (kernels without SO_PASSRIGHTS): their
 *                    places are free again (formerly: their ends lived on
 *                    in flight in the engine's receive queue, the replies
 *                    stayed unread, and the connections were kept until the
 *                    engine stopped; found by tests/fuzz/fuzz_control.c).
 *   wake_work_is_bounded   eight filtered readers that re-sleep at every
 *                    publish with a wake position far behind head
 *                    (formerly: the writer walked the ring from there on
 *                    every publish). The frames writers examine for wakeups
 *                    never exceed the frames published times the sleepers.
 *   lease_work_is_bounded   eight readers rewrite their leases without pause
 *                    (none, in the way, stale, about head, ahead): the
 *                    writer scans the leases at most once per reserve and
 *                    once per publish, max_readers slots a scan.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "control/run_dir.h"
#include "control/server.h"
#include "peer_helpers.h"
#include "shm/arena_priv.h"
#include "util/atomics.h"

/* Keeps every page in pages[] asleep, always with a new generation, a
 * wake position far behind head, and `need`, until stop. */
struct sleeper {
	struct xr_peer_page *pages[8];
	int n;
	uint32_t ring;
	uint32_t need;            /* records each sleep asks for */
	atomic_int stop;
	_Atomic uint64_t toggles;
};

static void *sleeper_main(void *p)
{
	struct sleeper *s = p;
	uint32_t g = 1;

	while (!atomic_load(&s->stop)) {
		for (int i = 0; i < s->n; i++) {
			struct xr_cursor *c = &s->pages[i]->cursors[s->ring];
			xr_store_relaxed(&c->wake_pos, 0);
			xr_store_relaxed(&c->wake_need, s->need);
			if (++g == 0)
				g = 1;
			xr_store_sc(&s->pages[i]->sleep_gen, g);
		}
		atomic_fetch_add(&s->toggles, 1);
	}
	return NULL;
}

/* Page `slot` of the memfd made for this reader. */
static struct xr_peer_page *map_page(int fd, uint32_t slot)
{
	void *p = mmap(NULL, XR_PEER_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		       (off_t)slot * XR_PEER_PAGE_SIZE);

	CHECK(p != MAP_FAILED);
	close(fd);
	return p;
}

static void wake_channel_never_blocks(void)
{
	char name[64];
	int afd, pfd;

	xr_test_name(name, sizeof(name), "nostall");
	xr_arena *a = xr_test_arena(name, XR_POLICY_LOSSY, 1u << 20, 64, XR_HUGEPAGES_OFF);
	xr_writer *w = xr_test_writer(a);
	const char *path = xr_server_path(xr_test_serve_of(a));

	int s = peer_connect(path);
	CHECK(s >= 0);
	uint32_t slot = peer_subscribe(s, XR_CTL_SUB_WAKE, NULL, &afd, &pfd);
	close(afd);
	/* Its own end made blocking (that is all fcntl can reach), and never
	 * read from. */
	CHECK(fcntl(s, F_SETFL, fcntl(s, F_GETFL) & ~O_NONBLOCK) == 0);
	/* One record a sleep: every publish brings it one, and a wake. */
	struct sleeper sl = {.pages = {map_page(pfd, slot)}, .n = 1, .ring = 0, .need = 1};
	pthread_t th;
	CHECK(pthread_create(&th, NULL, sleeper_main, &sl) == 0);

	/* An eventfd for the engine to write, as readers used to pass: refused
	 * by the kernel (SO_PASSRIGHTS) or by the server. */
	int s2 = peer_connect(path), efd = eventfd(0, 0);
	CHECK(s2 >= 0 && efd >= 0);
	int rc = peer_send(s2, XR_CTL_ATTACH, 1, NULL, 0, &efd, 1);
	if (rc == 0) {
		char why[XR_CTL_REASON_MAX];
		CHECK_RC(peer_error(s2, why, sizeof(why)), -EPROTO);
		CHECK(strstr(why, "not accepted"));
	} else {
		CHECK_RC(rc, -EPERM);
	}
	close(s2);
	close(efd);

	uint64_t t0 = xr__now_ns();
	for (uint64_t i = 0; i < 200000; i++) {
		int r = xr_test_put(w, 64);
		CHECK(r == 0 || r == XR_EDROPPED);
		if ((i & 15) == 15)
			xr_writer_publish(w);
		if (xr__now_ns() - t0 > 30 * SEC)
			FAILF("the writer is stuck after %llu records", (unsigned long long)i);
	}
	xr_writer_publish(w);
	double write_ms = (double)(xr__now_ns() - t0) / 1e6;
	uint64_t sent = xr_load_relaxed(&a->hdr->rings[0].wakeups);
	atomic_store(&sl.stop, 1);
	pthread_join(th, NULL);
	/* The peer's queue filled long ago: the writer kept going anyway. */
	CHECK(sent > 0);

	t0 = xr__now_ns();
	xr_test_destroy(a);
	double stop_ms = (double)(xr__now_ns() - t0) / 1e6;
	if (stop_ms > 1000)
		FAILF("stopping the server and destroying the arena took %.0f ms", stop_ms);
	printf("wake_channel_never_blocks: 200000 records in %.0f ms past a reader that never "
	       "reads its wakeups (%llu sleeps, %llu wakes sent before its queue filled); "
	       "shutdown %.1f ms; a passed eventfd refused (%s)\n",
	       write_ms, (unsigned long long)atomic_load(&sl.toggles), (unsigned long long)sent, stop_ms,
	       rc == 0 ? "by the server" : "by the kernel: EPERM");
	munmap(sl.pages[0], XR_PEER_PAGE_SIZE);
	close(s);
}

/* A lossless arena of one small ring, named from tag, with a server of its
 * own (options o); passrights false: as on kernels before 6.16, the
 * kernel lets descriptors through and the server refuses them itself. */
static xr_arena *served(const char *tag, char name[64], const xr_server_opts *o,
			bool passrights, xr_server **srv)
{
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSLESS, .ring_bytes = 256u << 10,
			     .frame_align = 64};
	xr_arena_spec spec = {.name = name, .streams = &ss, .n_streams = 1,
			      .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE,
			      .max_readers = 16};
	xr_arena *a;

	xr_test_name(name, 64, tag);
	CHECK_RC(xr_arena_create(&spec, &a), 0);
	xr__server_test_passrights(passrights);
	CHECK_RC(xr_server_start(a, o, srv), 0);
	xr__server_test_passrights(true);
	return a;
}

static void unserve(xr_arena *a, xr_server *srv)
{
	xr_arena_close(a);
	xr_server_stop(srv);
	CHECK_RC(xr_arena_destroy(a), 0);
}

/* A TCP socket whose close() lingers: connected over loopback to a
 * listener that does not read, its send queue full, SO_LINGER 30 s.
 * *acc is the listener's end, to drain later. */
static int lingering_socket(int *acc)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int small = 4096, l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char buf[4096] = {0};

	CHECK(l >= 0 && c >= 0);
	CHECK(setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) == 0);
	CHECK(bind(l, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(l, 1) == 0);
	CHECK(getsockname(l, (struct sockaddr *)&sa, &len) == 0);
	CHECK(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) == 0);
	CHECK(connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	*acc = accept(l, NULL, NULL);
	CHECK(*acc >= 0);
	close(l);
	CHECK(fcntl(c, F_SETFL, O_NONBLOCK) == 0);
	while (send(c, buf, sizeof(buf), MSG_NOSIGNAL) > 0)
		;
	CHECK(errno == EAGAIN);
	struct linger lg = {.l_onoff = 1, .l_linger = 30};
	CHECK(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
	return c;
}

/* Reads what acc's peer sent until it closes (it can only close once its
 * unsent data went): whether that happened within ms. */
static bool drained_to_eof(int acc, int ms)
{
	char buf[65536];
	uint64_t dl = xr__now_ns() + (uint64_t)ms * MS;

	while (xr__now_ns() < dl) {
		struct pollfd pf = {.fd = acc, .events = POLLIN};
		if (poll(&pf, 1, 100) == 1) {
			ssize_t n = read(acc, buf, sizeof(buf));
			if (n == 0)
				return true;
			CHECK(n > 0);
		}
	}
	return false;
}

struct passing {
	int s, fd, rc;
	atomic_bool done;
};

static void *pass_main(void *p)
{
	struct passing *c = p;

	c->rc = peer_send(c->s, XR_CTL_ATTACH, 1, NULL, 0, &c->fd, 1);
	close(c->fd);
	atomic_store(&c->done, true);
	return NULL;
}

/* Passes a lingering socket to the engine over a new connection to path,
 * and closes our copy so that the engine's is the last. Who closes last
 * pays the linger, and the engine may close its copy (hand it to its
 * closing thread, which closes at once) before we close ours: then ours
 * lingers, and the engine's close proved nothing. So a thread of ours
 * sends and closes at once (real-time, where we may, so that it is not
 * preempted between the two), while we watch: a close that is not the
 * last returns at once; one that lingers means we lost that race, and we
 * drain the other end to end it and try again with a new socket. Returns the other end of a socket whose last copy the
 * engine holds (or held: closing). */
static int pass_lingering(const char *path)
{
	char why[XR_CTL_REASON_MAX];

	for (int tries = 0; tries < 10; tries++) {
		int acc;
		struct passing c = {.fd = lingering_socket(&acc), .s = peer_connect(path)};
		pthread_t th;
		pthread_attr_t at;
		struct sched_param sp = {.sched_priority = 1};
		CHECK(c.s >= 0);
		pthread_attr_init(&at);
		pthread_attr_setinheritsched(&at, PTHREAD_EXPLICIT_SCHED);
		pthread_attr_setschedpolicy(&at, SCHED_FIFO);
		pthread_attr_setschedparam(&at, &sp);
		if (pthread_create(&th, &at, pass_main, &c) != 0) /* not allowed */
			CHECK(pthread_create(&th, NULL, pass_main, &c) == 0);
		pthread_attr_destroy(&at);
		bool engines_last = WAIT_UNTIL(atomic_load(&c.done), 1000);
		if (!engines_last)
			CHECK(drained_to_eof(acc, 10000));
		pthread_join(th, NULL);
		CHECK_RC(c.rc, 0);
		CHECK_RC(peer_error(c.s, why, sizeof(why)), -EPROTO);
		CHECK(strstr(why, "file descriptors are not accepted"));
		close(c.s);
		if (engines_last)
			return acc;
		close(acc);
	}
	FAILF("the engine closed the passed socket before we could, 10 times");
}

static void passed_fd_never_blocks(bool kernel_refuses)
{
	char name[64];

	xr__server_test_passrights(kernel_refuses);
	xr_test_name(name, sizeof(name), kernel_refuses ? "linger-k" : "linger-s");
	xr_arena *a = xr_test_arena(name, XR_POLICY_LOSSLESS, 1u << 20, 64, XR_HUGEPAGES_OFF);
	xr__server_test_passrights(true);
	const char *path = xr_server_path(xr_test_serve_of(a));
	if (kernel_refuses) {
		/* Any descriptor will do to see whether the kernel refuses. */
		int e = eventfd(0, EFD_CLOEXEC), s = peer_connect(path);
		CHECK(e >= 0 && s >= 0);
		int rc = peer_send(s, XR_CTL_ATTACH, 1, NULL, 0, &e, 1);
		close(e);
		close(s);
		if (rc == -EPERM) {
			xr_test_destroy(a);
			printf("passed_fd_never_blocks: the kernel refuses descriptors "
			       "(SO_PASSRIGHTS): EPERM at the sender\n");
			return;
		}
		CHECK_RC(rc, 0);
	}
	int acc = pass_lingering(path);

	/* The control thread serves on while the socket lingers. */
	uint64_t t0 = xr__now_ns();
	xr_reader *r;
	CHECK_RC(xr_reader_attach(name, NULL, &r), 0);
	double attach_ms = (double)(xr__now_ns() - t0) / 1e6;
	CHECK(attach_ms < 1000);
	xr_reader_detach(r);
	/* ...and its socket has not been closed yet: no end of stream to the
	 * other side while the data cannot go. */
	struct pollfd pf = {.fd = acc, .events = POLLRDHUP};
	CHECK_EQ(poll(&pf, 1, 0), 0);

	t0 = xr__now_ns();
	xr_test_destroy(a);
	double stop_ms = (double)(xr__now_ns() - t0) / 1e6;
	CHECK(stop_ms < 1000);
	/* Once the other side reads, the close completes, in the background. */
	CHECK(drained_to_eof(acc, 10000));
	close(acc);
	printf("passed_fd_never_blocks: with the server's own refusal: attach %.1f ms and "
	       "shutdown %.1f ms while the passed socket lingered; closed once drained\n",
	       attach_ms, stop_ms);
}

/* Sessions of uid nobody: connect, subscribe, hang up, 100 times, more
 * than the descriptors a uid may have closing. 0 if every one was served. */
static int nobody_sessions(void *p)
{
	const char *path = p;

	for (int i = 0; i < 100; i++) {
		int afd, pfd, s = peer_connect(path);
		if (s < 0)
			return 1;
		peer_subscribe(s, 0, NULL, &afd, &pfd); /* exits the child on refusal */
		close(afd);
		close(pfd);
		close(s);
	}
	return 0;
}

/* Without SO_PASSRIGHTS, a peer's descriptors are installed in the engine
 * as it reads them. One that lingers on close holds up the closing of its
 * own uid's descriptors only: a reader of another uid is served 100 times
 * (formerly: its hangups queued behind the linger in the one closing
 * thread, and from the 65th on its connections were refused). And a uid
 * with descriptors piling up has no more messages read: past the limit its
 * connections are hung up on unread, so what it gets installed in the
 * engine is bounded. */
static void lingering_closes_stay_with_their_uid(void)
{
	enum { CONNS = 40, FDS = 2 };
	char name[64], why[XR_CTL_REASON_MAX];
	uint32_t uid = NOBODY;
	xr_server_opts o = {.allow_uid = &uid, .n_allow_uid = 1};
	xr_server *srv;
	int socks[CONNS], efds[FDS], before = count_fds();

	xr_arena *a = served("linger-uid", name, &o, false, &srv);
	const char *path = xr_server_path(srv);
	/* The lingering socket blocks this uid's closing thread... */
	int acc = pass_lingering(path);
	CHECK(WAIT_UNTIL(xr__server_closing_stuck(srv, getuid()) >= 1, 5000));
	/* ...and 40 connections, admitted first, send 2 descriptors each. */
	for (int i = 0; i < FDS; i++)
		CHECK((efds[i] = eventfd(0, EFD_CLOEXEC)) >= 0);
	for (int i = 0; i < CONNS; i++)
		CHECK((socks[i] = peer_connect(path)) >= 0);
	for (int i = 0; i < CONNS; i++)
		CHECK_RC(peer_send(socks[i], XR_CTL_ATTACH, 2, NULL, 0, efds, FDS), 0);
	int read_ = 0, unread = 0;
	for (int i = 0; i < CONNS; i++) {
		int rc = peer_error(socks[i], why, sizeof(why));
		if (rc == -EPROTO && strstr(why, "file descriptors are not accepted"))
			read_++;
		else if (rc == -EBUSY && strstr(why, "still closing"))
			unread++;
		else
			FAILF("connection %d: %d (%s)", i, rc, why);
		close(socks[i]);
	}
	/* Read until 64 were closing, then no more: each read brings FDS (its
	 * connection follows once we have read the reply and closed). */
	if (!(read_ >= 1 && read_ <= 64 / FDS + 1 && unread == CONNS - read_))
		FAILF("%d read, %d unread", read_, unread);

	/* Another uid is served all the while. */
	CHECK_EQ(run_as(NOBODY, NOBODY, nobody_sessions, (void *)path), 0);
	struct pollfd pf = {.fd = acc, .events = POLLRDHUP};
	CHECK_EQ(poll(&pf, 1, 0), 0); /* still lingering */

	unserve(a, srv);
	/* Drained, the socket closes, and everything queued behind it. */
	CHECK(drained_to_eof(acc, 10000));
	close(acc);
	for (int i = 0; i < FDS; i++)
		close(efds[i]);
	CHECK(WAIT_UNTIL(count_fds() <= before, 5000));
	printf("lingering_closes_stay_with_their_uid: %d connections read, %d hung up on "
	       "unread; 100 sessions of uid %u served while uid %u's close lingered\n",
	       read_, unread, NOBODY, (unsigned)getuid());
}

/* Descriptors of all uids waiting to be closed are bounded: past the cap
 * (1024; 4 here), the server accepts nothing for a while, and connections
 * wait in the listen queue, rather than its descriptors pile up without
 * end behind a close a peer made linger (a uid not allowed in too: it is
 * known only once accepted). Once the close completes, it accepts again. */
static void closing_cap_pauses_accept(void)
{
	char name[64], why[XR_CTL_REASON_MAX], buf[512];
	xr_server *srv;
	int e = eventfd(0, EFD_CLOEXEC), fd;

	xr__server_test_closing_cap(4);
	xr_arena *a = served("closecap", name, NULL, false, &srv);
	const char *path = xr_server_path(srv);
	int acc = pass_lingering(path);
	/* A connection taken in meanwhile. */
	int pre = peer_connect(path);
	CHECK(pre >= 0);
	CHECK_RC(peer_send(pre, XR_CTL_ATTACH, 1, NULL, 0, NULL, 0), 0);
	CHECK(peer_recv(pre, buf, sizeof(buf), &fd, 5000) > 0 && fd >= 0);
	close(fd);
	/* Behind it, in its uid's queue: two descriptors passed, and the
	 * connection that passed them. */
	int es[2] = {e, e};
	CHECK(e >= 0);
	int s = peer_connect(path);
	CHECK(s >= 0);
	CHECK_RC(peer_send(s, XR_CTL_ATTACH, 1, NULL, 0, es, 2), 0);
	CHECK_RC(peer_error(s, why, sizeof(why)), -EPROTO);
	close(s);
	/* A message on a connection already taken is not read (it could
	 * bring more): hung up on. */
	CHECK_RC(peer_send(pre, XR_CTL_ATTACH, 2, NULL, 0, es, 2), 0);
	CHECK_RC(peer_error(pre, why, sizeof(why)), -EBUSY);
	CHECK(strstr(why, "of all uids still closing"));
	close(pre);
	/* The next connection waits in the queue, unanswered. */
	s = peer_connect(path);
	CHECK(s >= 0);
	CHECK_RC(peer_send(s, XR_CTL_ATTACH, 1, NULL, 0, NULL, 0), 0);
	struct pollfd pf = {.fd = s, .events = POLLIN};
	CHECK_EQ(poll(&pf, 1, 300), 0);
	/* The linger ends (the other side reads): closes go on, and the
	 * connection is served. */
	uint64_t t0 = xr__now_ns();
	CHECK(drained_to_eof(acc, 10000));
	CHECK(peer_recv(s, buf, sizeof(buf), &fd, 5000) > 0 && fd >= 0);
	double ms = (double)(xr__now_ns() - t0) / 1e6;
	close(fd);
	close(s);
	close(acc);
	close(e);
	unserve(a, srv);
	xr__server_test_closing_cap(0);
	printf("closing_cap_pauses_accept: with 4 descriptors closing, a message left unread and "
	       "no connection taken for 300 ms; served %.0f ms after the close completed\n", ms);
}

/* A reply that carries a descriptor and sits unread counts against the
 * engine's uid in the kernel (in flight) for as long as the peer keeps its
 * end. A peer hung up on with such replies unread stays counted against
 * its uid's connections until it reads them or closes (formerly: dropped
 * at once, its place taken by the next connection, and in flight
 * descriptors piled up until every ATTACHED failed). */
static void unread_replies_stay_counted(void)
{
	enum { CONNS = 3 };
	char name[64], why[XR_CTL_REASON_MAX], buf[512];
	xr_server_opts o = {.max_conns_per_uid = CONNS};
	xr_server *srv;
	int s[CONNS + 1], fd;

	xr_arena *a = served("unread", name, &o, true, &srv);
	const char *path = xr_server_path(srv);

	/* ATTACHED (with the arena's descriptor) left unread, then garbage:
	 * hung up on, replies unread. */
	CHECK((s[0] = peer_connect(path)) >= 0);
	CHECK_RC(peer_send(s[0], XR_CTL_ATTACH, 1, NULL, 0, NULL, 0), 0);
	CHECK(send(s[0], "garbage!", 8, MSG_NOSIGNAL) == 8);
	for (int i = 1; i < CONNS; i++) {
		CHECK((s[i] = peer_connect(path)) >= 0);
		CHECK_RC(peer_send(s[i], XR_CTL_ATTACH, 1, NULL, 0, NULL, 0), 0);
		CHECK(peer_recv(s[i], buf, sizeof(buf), &fd, 5000) > 0 && fd >= 0);
		close(fd);
	}
	/* Still counted: the uid has no room for another connection. */
	CHECK((s[CONNS] = peer_connect(path)) >= 0);
	CHECK_RC(peer_error(s[CONNS], why, sizeof(why)), -EBUSY);
	CHECK(strstr(why, "--max-conns-per-uid 3"));
	close(s[CONNS]);
	/* Read: ATTACHED, the ERROR, the end. Then the place is free. */
	CHECK(peer_recv(s[0], buf, sizeof(buf), &fd, 5000) > 0 && fd >= 0);
	close(fd);
	CHECK_RC(peer_error(s[0], why, sizeof(why)), -EPROTO);
	CHECK_EQ(peer_recv(s[0], buf, sizeof(buf), &fd, 5000), 0);
	uint64_t t0 = xr__now_ns();
	for (;;) {
		/* Refused (-EBUSY, the hangup: EPIPE) until the server has
		 * looked again at the connection we read out. */
		CHECK((s[CONNS] = peer_connect(path)) >= 0);
		if (peer_send(s[CONNS], XR_CTL_ATTACH, 1, NULL, 0, NULL, 0) == 0 &&
		    peer_recv(s[CONNS], buf, sizeof(buf), &fd, 5000) > 0 && fd >= 0)
			break;
		close(s[CONNS]);
		if (xr__now_ns() - t0 > 5 * SEC)
			FAILF("the place of a connection whose replies were read was not freed");
	}
	close(fd);
	double ms = (double)(xr__now_ns() - t0) / 1e6;
	for (int i = 0; i <= CONNS; i++)
		close(s[i]);
	unserve(a, srv);
	printf("unread_replies_stay_counted: a connection hung up on with ATTACHED unread kept "
	       "its uid's place until read; freed %.0f ms after\n", ms);
}

/* A peer hung up on with replies unread, whose unread messages carry its
 * own end of the connection (kernels without SO_PASSRIGHTS): once it
 * closes, that end lives on in flight, in the engine's receive queue, and
 * keeps the replies unread for ever. The engine reads such messages out of
 * a connection it keeps (found by the control fuzzer, tests/fuzz: formerly
 * the connection stayed in the table after the peer was gone, counted
 * against its uid, until the engine stopped; with the engine's uid, until
 * the table was full for every uid). */
static void own_end_in_flight_not_kept(void)
{
	enum { CONNS = 3, SESSIONS = 30 };
	char name[64], buf[512];
	xr_server_opts o = {.max_conns_per_uid = CONNS};
	xr_server *srv;
	int cycles = 0, fd, s;

	xr_arena *a = served("inflight", name, &o, false, &srv);
	const char *path = xr_server_path(srv);

	for (int i = 0; i < SESSIONS; i++) {
		/* Refused at accept while the uid has CONNS kept: then the
		 * cycles so far were enough. */
		CHECK((s = peer_connect(path)) >= 0);
		if (peer_send(s, XR_CTL_ATTACH, 1, NULL, 0, NULL, 0) == 0 &&
		    send(s, "garbage!", 8, MSG_NOSIGNAL) == 8 &&
		    peer_send(s, XR_CTL_ATTACH, 2, NULL, 0, &s, 1) == 0)
			cycles++; /* queued behind the garbage, or read: either way */
		close(s);
	}
	uint64_t t0 = xr__now_ns();
	for (;;) {
		CHECK((s = peer_connect(path)) >= 0);
		if (peer_send(s, XR_CTL_ATTACH, 1, NULL, 0, NULL, 0) == 0 &&
		    peer_recv(s, buf, sizeof(buf), &fd, 5000) > 0 && fd >= 0)
			break;
		close(s);
		if (xr__now_ns() - t0 > 5 * SEC)
			FAILF("connections of peers gone, their own ends in flight, are still "
			      "counted 5 s after (%d sessions sent theirs)", cycles);
		poll(NULL, 0, 10); /* a pause between tries, not a synchronisation */
	}
	close(fd);
	close(s);
	unserve(a, srv);
	printf("own_end_in_flight_not_kept: %d peers sent their own end behind garbage and "
	       "closed; a new connection served %.0f ms after the last\n", cycles,
	       (double)(xr__now_ns() - t0) / 1e6);
}

/* An engine that does not accept (busy, or paused as above) with its
 * listen queue full: a reader's connect gives up after 5 s with a reason
 * (formerly: a blocking connect() waited for as long as that lasted). */
static void full_queue_times_out(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char name[64], why[256];
	int fds[64], n = 0;
	xr_reader *r;

	xr_test_name(name, sizeof(name), "fullq");
	CHECK_RC(xr__run_dir_serve(name, sa.sun_path, sizeof(sa.sun_path), why, sizeof(why)), 0);
	int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(l >= 0);
	CHECK(bind(l, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(l, 0) == 0);
	for (; n < 64; n++) {
		fds[n] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		CHECK(fds[n] >= 0);
		if (connect(fds[n], (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			CHECK_EQ(errno, EAGAIN);
			close(fds[n]);
			break;
		}
	}
	CHECK(n < 64);
	uint64_t t0 = xr__now_ns();
	CHECK_RC(xr_reader_attach(name, NULL, &r), -ETIMEDOUT);
	double s = (double)(xr__now_ns() - t0) / 1e9;
	CHECK(strstr(xr_last_reason(), "accepted no connection within 5 s"));
	CHECK(s >= 4.9 && s < 15);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	close(l);
	unlink(sa.sun_path);
	printf("full_queue_times_out: a full listen queue: attach gave up after %.1f s (%s)\n", s,
	       xr_last_reason());
}

/* A real Experience record of turn `turn` (filters read its fields). */
static void put_exp(xr_writer *w, const xr_exp_template *t, uint32_t turn)
{
	void *p;
	xr_exp_slots sl;
	xr_exp_fields f = {.seq = xr_writer_next_seq(w), .game_id = 1, .turn = turn};
	int rc = xr_writer_reserve(w, t->size, &p);

	if (rc == XR_EDROPPED)
		return;
	CHECK_RC(rc, 0);
	xr_exp_build(t, p, &f, &sl);
	xr_writer_commit(w);
}

static void wake_work_is_bounded(void)
{
	static const xr_exp_shape shape = {.obs_dtype = XR_DTYPE_U8, .obs_ndim = 1,
					   .obs_dims = {64}, .mask_len = 4};
	char name[64];
	xr_exp_template t;
	enum { PEERS = 8, PUBLISHES = 3000, PER = 16 };

	xr_test_name(name, sizeof(name), "wakebound");
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSY, .ring_bytes = 4u << 20,
			     .kind = XR_RECORD_EXPERIENCE, .shape = shape};
	xr_arena_spec spec = {.name = name, .streams = &ss, .n_streams = 1,
			      .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE,
			      .max_readers = 16};
	xr_arena *a;
	CHECK_RC(xr_arena_create(&spec, &a), 0);
	xr_test_serve(a);
	CHECK_RC(xr_exp_template_init(&t, &shape), 0);
	xr_writer *w = xr_test_writer(a);
	const char *path = xr_server_path(xr_test_serve_of(a));
	const xr_filter f = {.min_turn = 1};
	struct sleeper sl = {.n = PEERS, .ring = 0, .need = 0xffffffffu};
	int socks[PEERS];

	/* A record behind head for the wake positions to point at. */
	for (int i = 0; i < 1000; i++)
		put_exp(w, &t, 5);
	xr_writer_publish(w);
	for (int i = 0; i < PEERS; i++) {
		int afd, pfd;
		socks[i] = peer_connect(path);
		CHECK(socks[i] >= 0);
		uint32_t slot = peer_subscribe(socks[i], XR_CTL_SUB_WAKE, &f, &afd, &pfd);
		close(afd);
		sl.pages[i] = map_page(pfd, slot);
	}
	pthread_t th;
	CHECK(pthread_create(&th, NULL, sleeper_main, &sl) == 0);
	CHECK(WAIT_UNTIL(atomic_load(&sl.toggles) > 10, 5000));
	uint64_t walked0 = w->wake_walked;
	for (int p = 0; p < PUBLISHES; p++) {
		for (int i = 0; i < PER; i++)
			put_exp(w, &t, 7);
		xr_writer_publish(w);
	}
	uint64_t walked = w->wake_walked - walked0;
	atomic_store(&sl.stop, 1);
	pthread_join(th, NULL);
	/* Each publish walks at most its own frames once per sleeper. */
	uint64_t bound = (uint64_t)PEERS * PUBLISHES * PER;
	if (walked > bound)
		FAILF("writers walked %llu frames for wakeups; %d sleepers of %d publishes of %d "
		      "frames allow %llu",
		      (unsigned long long)walked, PEERS, PUBLISHES, PER, (unsigned long long)bound);
	printf("wake_work_is_bounded: %d filtered sleepers re-sleeping behind head (%llu sleeps): "
	       "%llu frames walked for wakeups over %d publishes of %d (bound %llu)\n",
	       PEERS, (unsigned long long)atomic_load(&sl.toggles), (unsigned long long)walked, PUBLISHES, PER,
	       (unsigned long long)bound);
	for (int i = 0; i < PEERS; i++) {
		munmap(sl.pages[i], XR_PEER_PAGE_SIZE);
		close(socks[i]);
	}
	xr_test_destroy(a);
}

/* Peers that rewrite their leases as fast as they can, cycling through
 * every kind of value the writer's scan tells apart. */
struct lease_churn {
	struct xr_peer_page *pages[8];
	int n;
	const _Atomic uint64_t *head;
	uint64_t cap;
	atomic_int stop;
	_Atomic uint64_t rounds;
};

static void *lease_churn_main(void *p)
{
	struct lease_churn *c = p;
	uint64_t k = 0;

	while (!atomic_load(&c->stop)) {
		uint64_t head = xr_load_relaxed(c->head);
		for (int i = 0; i < c->n; i++, k++) {
			uint64_t v;
			switch (k % 5) {
			case 0: v = XR_NO_LEASE; break;
			case 1: v = head > 64 ? head - 64 : 0; break;       /* in the way */
			case 2: v = head > c->cap ? head - c->cap - 1 : 0; break; /* stale */
			case 3: v = head - (k & 4095); break;               /* about head */
			default: v = i == 0 ? head + (1ull << 30) : head; break; /* ahead: evicts */
			}
			xr_store_sc(&c->pages[i]->cursors[0].lease, v);
		}
		atomic_fetch_add(&c->rounds, 1);
	}
	return NULL;
}

/* Gap 10 of docs/invariants.md: the writer's other loop a peer can steer,
 * the lease scan (W3). Hostile pages keep every lease moving: blocking,
 * stale, ahead (evicting), none. The writer still scans at most once per
 * reserve and once per publish, and each scan looks at max_readers slots,
 * never more. */
static void lease_work_is_bounded(void)
{
	enum { PEERS = 8, RESERVES = 300000, PER = 16 };
	char name[64];
	struct lease_churn c = {.n = PEERS};
	int socks[PEERS];

	xr_test_name(name, sizeof(name), "leasebound");
	xr_arena *a = xr_test_arena(name, XR_POLICY_LOSSY, 1u << 20, 64, XR_HUGEPAGES_OFF);
	xr_writer *w = xr_test_writer(a);
	const char *path = xr_server_path(xr_test_serve_of(a));

	for (int i = 0; i < PEERS; i++) {
		int afd, pfd;
		socks[i] = peer_connect(path);
		CHECK(socks[i] >= 0);
		uint32_t slot = peer_subscribe(socks[i], 0, NULL, &afd, &pfd);
		close(afd);
		c.pages[i] = map_page(pfd, slot);
	}
	c.head = &a->hdr->rings[0].head;
	c.cap = a->hdr->rings[0].capacity;
	pthread_t th;
	CHECK(pthread_create(&th, NULL, lease_churn_main, &c) == 0);
	CHECK(WAIT_UNTIL(atomic_load(&c.rounds) > 10, 5000));

	uint64_t scans0 = w->lease_scans;
	uint64_t written = 0, dropped = 0, t0 = xr__now_ns();
	for (uint32_t i = 0; i < RESERVES; i++) {
		int r = xr_test_put(w, 64);
		CHECK(r == 0 || r == XR_EDROPPED);
		written += r == 0;
		dropped += r != 0;
		if (i % PER == PER - 1) {
			xr_writer_publish(w);
			/* Each publish sees the leases moved at least once: the
			 * pressure does not depend on how the two threads are
			 * scheduled. */
			uint64_t r0 = atomic_load(&c.rounds), spins = 0;
			while (atomic_load(&c.rounds) == r0 && ++spins < 100000000)
				;
		}
	}
	double s = (double)(xr__now_ns() - t0) / 1e9;
	uint64_t scans = w->lease_scans - scans0;
	atomic_store(&c.stop, 1);
	pthread_join(th, NULL);

	/* A scan walks the slot table (max_readers slots, whatever the pages
	 * say: the loop's bound is the engine's own); what a peer could steer
	 * is how often the writer scans. */
	uint32_t max_readers = a->hdr->max_readers;
	if (scans > RESERVES + RESERVES / PER)
		FAILF("%llu lease scans for %u reserves and %u publishes",
		      (unsigned long long)scans, RESERVES, RESERVES / PER);
	CHECK(scans > 0 && written > 0);
	for (int i = 0; i < PEERS; i++) {
		munmap(c.pages[i], XR_PEER_PAGE_SIZE);
		close(socks[i]);
	}
	xr_test_destroy(a);
	printf("lease_work_is_bounded: %d peers churning leases (%llu rounds): %u reserves "
	       "(%llu written, %llu dropped) in %.2f s, %llu scans of %u slots\n",
	       PEERS, (unsigned long long)atomic_load(&c.rounds), RESERVES,
	       (unsigned long long)written, (unsigned long long)dropped, s,
	       (unsigned long long)scans, max_readers);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0); /* nothing buffered to copy into a fork */
	alarm(120);
	wake_channel_never_blocks();
	passed_fd_never_blocks(true);
	passed_fd_never_blocks(false);
	lingering_closes_stay_with_their_uid();
	unread_replies_stay_counted();
	own_end_in_flight_not_kept();
	closing_cap_pauses_accept();
	full_queue_times_out();
	wake_work_is_bounded();
	lease_work_is_bounded();
	return 0;
}
