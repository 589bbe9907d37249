/* SPDX-License-Identifier: MIT */
/*
 * The engine's control server (control/server.c, control/client.c), from
 * the outside: what a reader sees through xr_reader_attach(), and what a
 * peer that speaks garbage gets.
 *
 *   attach_ok        no server: -ENOENT (auto or control), and
 *                    XR_TRANSPORT_DIRECT is -ENOTSUP; through the server:
 *                    the socket's mode is 0660, the slot is the
 *                    connection's (ACTIVE in both tables; its pid, uid
 *                    and label in the reader table), records intact, a
 *                    read that sleeps (its page's sleep_gen set, its
 *                    thread blocked) is ended by the writer's WAKE, and
 *                    the fd (the control connection) fires when an armed
 *                    batch is there
 *   peer_creds       (root only) a uid 65534 peer that the socket's mode lets
 *                    in is refused by SO_PEERCRED; admitted by --allow-uid,
 *                    by --allow-gid on its primary group or on a
 *                    supplementary one (SO_PEERGROUPS), also with 100 groups,
 *                    and reads through the arena fd it was handed
 *   max_readers      the reader table full: -EBUSY and --max-readers in the
 *                    reason; a detach makes room at once
 *   detach_frees     DETACH waits for the engine's OK: with one reader slot,
 *                    attach/detach three times in a row, the slot FREE (and
 *                    a new claim generation) each time
 *   malformed        raw packets that are not the protocol: ERROR with the
 *                    right code and a one-line reason, then a hangup; the
 *                    server lives on; ATTACHED hands the arena O_RDONLY and
 *                    SUBSCRIBED the slot's own sealed page; a burst of
 *                    requests is cut off with -EAGAIN. Packets that carry
 *                    fds: refused by the kernel at the sender (EPERM) where
 *                    SO_PASSRIGHTS exists; with it off
 *                    (xr__server_test_passrights), ERROR -EPROTO and a
 *                    hangup, and none of the fds stays open in the engine
 *   conn_table_full  a connection past a uid's limit (given), then past the
 *                    server's table (the engine's own uid may fill it), is
 *                    refused at accept with -EBUSY naming the limit, also
 *                    for the library's reader; room once others close
 *   idle_timeout     with idle_timeout_ms 200, a connection that sends
 *                    nothing gets ERROR -ETIMEDOUT and a hangup after 200 ms
 *                    (not before, and well before the 5 s default); a reader
 *                    that attached in time outlives three such periods and
 *                    reads on
 *   reader_killed    a lossless writer blocked by a reader process resumes
 *                    within 100 ms of that process's SIGKILL, retrying
 *                    xr_writer_reserve only: the server frees the slot on
 *                    hangup
 *   named_late       an arena created unnamed (the engine's way) is not
 *                    found by its name until published, after its server
 *                    listens; a second engine of the same name that got as
 *                    far is refused at publish (-EEXIST, "already
 *                    running"), and its end removes its own file, not the
 *                    first engine's name
 *   named_in_two_places   the same race across places: one engine's name
 *                    on hugetlbfs, the other's in /dev/shm (a link is
 *                    atomic in one directory only); the second to publish
 *                    is refused in either order and leaves nothing
 *   close_leaves_anothers_name   an engine whose name was removed and taken
 *                    by another engine does not remove it when it closes
 *   held_back        a lossless reader that holds a batch its stopped
 *                    writer waits for, and has read everything after it:
 *                    a read with no deadline (and an arm) is -EDEADLK at
 *                    once, not a sleep for good; one with a deadline ends
 *                    at it with 0; released, the writer goes on and the
 *                    read gets its records. A reader whose held batch is
 *                    not in the way (another reader's lease is) sleeps
 *                    (ended by a cancel), it is not told -EDEADLK
 *   engine_closes    xr_arena_destroy() refuses (-EBUSY) while the server
 *                    runs and leaves the arena open; close, stop, destroy
 *                    under a sleeping reader: it gets what was published,
 *                    then XR_ECLOSED, at once
 *   engine_killed    a reader asleep in xr_reader_read() sees XR_ECLOSED
 *                    within 1 s of its engine's SIGKILL
 *   reattach         ...and xr_reader_reattach() finds the restarted engine
 *                    and reads its records
 *
 * Everything runs as one uid except peer_creds' children. The control
 * sockets live in a directory of this test's own (mkdtemp, 0755), so that
 * uid 65534 can reach them and trusts them (root's). Synchronisation is by
 * pipes and by polling shared state against a deadline, never by sleeping.
 * Small rings on /dev/shm; runs under ASan/UBSan and TSan (forks happen
 * only while this process runs no thread of its own).
 */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "client/reader_priv.h"
#include "control/proto.h"
#include "control/server.h"
#include "peer_helpers.h"
#include "ring_helpers.h"
#include "shm/arena_priv.h"
#include "shm/backing.h"
#include "shm/peers.h"
#include "util/atomics.h"
#include "util/clock.h"

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83 /* Linux 6.16 */
#endif


#define MAXLEN 512

/* Whether this kernel knows SO_PASSRIGHTS: then a server that sets it
 * never sees a peer's fds (the sender's sendmsg fails with EPERM). */
static bool kernel_passrights;

static xr_arena *make_arena(const char *name, xr_policy policy, uint64_t ring_bytes,
			    uint32_t max_readers)
{
	xr_stream_spec ss = {.policy = policy, .ring_bytes = ring_bytes, .frame_align = 64};
	xr_arena_spec spec = {.name = name, .streams = &ss, .n_streams = 1,
			      .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_DEFAULT,
			      .max_readers = max_readers};
	xr_arena *a;
	int rc = xr_arena_create(&spec, &a);

	if (rc < 0)
		FAILF("xr_arena_create(%s): %s (%s)", name, xr_strerror(rc), xr_arena_last_note());
	return a;
}

static xr_server *serve(xr_arena *a, const xr_server_opts *o)
{
	xr_server *s;
	int rc = xr_server_start(a, o, &s);

	if (rc < 0)
		FAILF("xr_server_start: %s (%s)", xr_strerror(rc), xr_server_last_note());
	CHECK(xr_server_path(s) != NULL);
	return s;
}

/* The engine's order: close (readers drain, then see XR_ECLOSED), stop the
 * server (it frees every slot), destroy. */
static void unserve(xr_arena *a, xr_server *s)
{
	xr_arena_close(a);
	xr_server_stop(s);
	CHECK_RC(xr_arena_destroy(a), 0);
}

static xr_reader *attach_ctl(const char *name, const char *label)
{
	xr_reader_opts o = {.transport = XR_TRANSPORT_CONTROL, .label = label};
	xr_reader *r;
	int rc = xr_reader_attach(name, &o, &r);

	if (rc < 0)
		FAILF("attach %s through the control socket: %s (%s)", name, xr_strerror(rc),
		      xr_last_reason());
	return r;
}

/* The slot held by reader process pid, or -1. The reader table's pid is
 * SO_PEERCRED's, shown for tools; it is read only once the slot's state
 * (acquire, PI1) says the entry is published. */
static int slot_of(const xr_arena *a, pid_t pid)
{
	for (uint32_t i = 0; i < a->lay.max_readers; i++)
		if (xr_load_acquire(&a->infos[i].state) != XR_SLOT_FREE &&
		    a->infos[i].pid == (int32_t)pid)
			return (int)i;
	return -1;
}

/* Slots taken, as the reader table shows them; at a quiet point the
 * engine's own table must say the same. */
static uint32_t slots_taken(const xr_arena *a)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < a->lay.max_readers; i++)
		n += xr_load_acquire(&a->infos[i].state) != XR_SLOT_FREE;
	if (n != xr__peers_taken(a))
		FAILF("the reader table shows %u slots taken, the engine's table %u", n,
		      xr__peers_taken(a));
	return n;
}

/* Slot i is held by the connection of process pid, uid uid: ACTIVE in the
 * engine's table and in the reader table, which shows the connection's
 * SO_PEERCRED. (Who owns it, p->owner, is the control thread's alone to
 * read.) */
static void check_conn_slot(const xr_arena *a, int i, pid_t pid, uid_t uid)
{
	CHECK(i >= 0 && (uint32_t)i < a->lay.max_readers);
	CHECK_EQ(xr_load_acquire(&a->peers->slot[i].state), XR_SLOT_ACTIVE);
	CHECK_EQ(xr_load_acquire(&a->infos[i].state), XR_SLOT_ACTIVE);
	CHECK_EQ(a->infos[i].pid, pid);
	CHECK_EQ(a->infos[i].uid, uid);
}

/* Polls until slot i is free again in both tables, for at most 2 s. */
static void wait_slot_free(const xr_arena *a, uint32_t i, const char *what)
{
	uint64_t deadline = xr__now_ns() + 2 * SEC;

	while (xr_load_acquire(&a->infos[i].state) != XR_SLOT_FREE ||
	       xr_load_acquire(&a->peers->slot[i].state) != XR_SLOT_FREE) {
		if (xr__now_ns() > deadline)
			FAILF("%s: slot %u still taken after 2 s (reader table %u, engine %u)", what,
			      i, xr_load_acquire(&a->infos[i].state),
			      xr_load_acquire(&a->peers->slot[i].state));
		sched_yield();
	}
}

static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Threads of this process when it runs none of its own: 1, and under
 * ThreadSanitizer its background thread, once there is one. */
static int own_threads_none = 1 + XR_TEST_TSAN;

/* Before a fork: a stopped server leaves its closing thread to finish on
 * its own (control/closer.c); wait until it has, so that the child starts
 * from a process of one thread (and may start servers of its own under
 * TSan, which refuses threads after a multi-threaded fork). */
static void quiesce(void)
{
	uint64_t deadline = xr__now_ns() + 5 * SEC;
	int n;

	while ((n = count_dir("/proc/self/task")) > own_threads_none) {
		if (xr__now_ns() > deadline)
			FAILF("%d threads still running 5 s after every server stopped", n);
		sched_yield();
	}
}

/* The scheduler state ('R', 'S', ...) of thread tid of this process. */
static char task_state(pid_t tid)
{
	char path[64], buf[512];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

static pid_t gettid_(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* Reads exactly len bytes from fd within ms milliseconds. Returns 0, or -1
 * if the other end closed first (its process died). */
static int read_within(int fd, void *buf, size_t len, int ms)
{
	uint64_t deadline = xr__now_ns() + (uint64_t)ms * MS;
	size_t got = 0;

	while (got < len) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int64_t left = (int64_t)(deadline - xr__now_ns());
		if (left <= 0)
			FAILF("nothing on the pipe within %d ms", ms);
		if (poll(&pf, 1, (int)(left / (int64_t)MS) + 1) <= 0)
			continue;
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n == 0)
			return -1;
		if (n < 0 && errno != EINTR)
			FAILF("read pipe: %s", strerror(errno));
		if (n > 0)
			got += (size_t)n;
	}
	return 0;
}

static void put_published(xr_writer *w)
{
	CHECK_RC(xr_test_put(w, xr_stamp_len(xr_writer_next_seq(w), MAXLEN)), 0);
	xr_writer_publish(w);
}

/* Whether a reader sleeps: its page's sleep word is set (RS2, shm/wake.c)
 * and its thread is blocked, which it only is in that ppoll. */
static bool asleep(_Atomic uint32_t *sleep_gen, pid_t tid)
{
	return atomic_load(sleep_gen) != 0 && task_state(tid) == 'S';
}

/* ======================================================================
 * 1. attach through the socket
 * ====================================================================== */

struct waker {
	xr_writer *w;
	_Atomic uint32_t *sleep_gen; /* in the reader's page, its own mapping */
	pid_t tid;                   /* the reader's thread */
	bool wrote;
};

/* Waits until the reader sleeps, then publishes one record. */
static void *waker_main(void *p)
{
	struct waker *k = p;
	uint64_t deadline = xr__now_ns() + 5 * SEC;

	while (!asleep(k->sleep_gen, k->tid)) {
		if (xr__now_ns() > deadline)
			return NULL; /* the reader's read then times out: reported there */
		sched_yield();
	}
	put_published(k->w);
	k->wrote = true;
	return NULL;
}

static void attach_ok(void)
{
	char name[64];
	struct stat st;
	xr_reader *r;

	/* Without a server there is no engine to attach to, whichever
	 * transport; and the direct one is gone. */
	xr_test_name(name, sizeof(name), "nosrv");
	xr_arena *a = make_arena(name, XR_POLICY_LOSSLESS, 64 << 10, 4);
	xr_reader_opts oc = {.transport = XR_TRANSPORT_CONTROL};
	xr_reader_opts od = {.transport = XR_TRANSPORT_DIRECT};
	CHECK_RC(xr_reader_attach(name, &oc, &r), -ENOENT);
	if (!strstr(xr_last_reason(), name))
		FAILF("no server: reason \"%s\" does not name the engine", xr_last_reason());
	CHECK_RC(xr_reader_attach(name, NULL, &r), -ENOENT);
	CHECK_RC(xr_reader_attach(name, &od, &r), -ENOTSUP);
	CHECK(xr_last_reason()[0] != '\0');
	CHECK_RC(xr_arena_destroy(a), 0);

	xr_test_name(name, sizeof(name), "attach");
	a = make_arena(name, XR_POLICY_LOSSLESS, 256 << 10, 4);
	xr_writer *w = xr_test_writer(a);
	xr_server *srv = serve(a, NULL);
	/* Who may connect at all is the socket's mode, whatever the umask. */
	CHECK(stat(xr_server_path(srv), &st) == 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_EQ(st.st_mode & 07777, 0660);
	CHECK_RC(xr_reader_attach(name, &od, &r), -ENOTSUP);

	r = attach_ctl(name, "ctl-test");
	CHECK(xr_reader_fd(r) >= 0);
	CHECK_EQ(xr_reader_fd(r), xr__reader_sock(r)); /* wakeups come on the connection */
	int si = (int)xr__reader_slot(r);
	CHECK_EQ(slot_of(a, getpid()), si);
	check_conn_slot(a, si, getpid(), geteuid());
	char label[sizeof(a->infos[si].label)];
	xr__label_get(label, a->infos[si].label, sizeof(label));
	CHECK(strncmp(label, "ctl-test", sizeof(label)) == 0);
	CHECK_EQ(slots_taken(a), 1);

	/* Records through the arena fd the engine handed over, intact. */
	enum { N = 300 };
	for (uint64_t i = 0; i < N; i++)
		CHECK_RC(xr_test_put(w, xr_stamp_len(i, MAXLEN)), 0);
	xr_writer_publish(w);
	uint64_t next = 0;
	while (next < N) {
		xr_batch b;
		int n = xr_reader_read(r, 1, 64, 0, &b);
		if (n <= 0)
			FAILF("read after %llu of %d records: %d (%s)", (unsigned long long)next, N,
			      n, xr_strerror(n));
		xr_test_check_batch(&b, &next, true);
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	xr_reader_stats rs;
	CHECK_RC(xr_reader_stats_get(r, &rs), 0);
	CHECK_EQ(rs.written, N);
	CHECK_EQ(rs.read, N);
	CHECK_EQ(rs.pending, 0);
	CHECK_EQ(rs.sleeps, 0); /* nothing made it wait yet */

	/* A read that has to wait sleeps, and the writer's publish is what
	 * ends the sleep: the waker publishes only once this thread is
	 * blocked, and no WAKE from an earlier sleep is left to cut it short
	 * (there was none, and RS0 drains them anyway): one sleep, one
	 * wakeup. */
	struct waker k = {.w = w, .sleep_gen = &xr__reader_page(r)->sleep_gen, .tid = gettid_()};
	pthread_t th;
	xr_batch b;
	CHECK_RC(pthread_create(&th, NULL, waker_main, &k), 0);
	uint64_t t0 = xr__now_ns();
	int n = xr_reader_read(r, 1, 16, 5 * (int64_t)SEC, &b);
	uint64_t dt = xr__now_ns() - t0;
	pthread_join(th, NULL);
	if (!k.wrote)
		FAILF("the reader never slept (sleep_gen %u, state %c)", atomic_load(k.sleep_gen),
		      task_state(k.tid));
	CHECK_RC(n, 1);
	CHECK(dt < 4 * SEC); /* ended by the record, not by max_wait */
	xr_test_check_batch(&b, &next, true);
	CHECK_RC(xr_batch_release(r, &b), 0);
	CHECK_RC(xr_reader_stats_get(r, &rs), 0);
	printf("attach_ok: %d records intact; %llu sleeps, %llu wakeups, wake latency max %.1f us\n",
	       N, (unsigned long long)rs.sleeps, (unsigned long long)rs.wakeups,
	       (double)rs.wake_ns_max / 1e3);
	CHECK_EQ(rs.sleeps, 1);
	CHECK_EQ(rs.wakeups, 1);
	CHECK_EQ(rs.read, next);
	CHECK_EQ(atomic_load(k.sleep_gen), 0);

	/* The wakeup is a message on the connection: watch the fd itself.
	 * Armed, it stays quiet until a publish brings the batch, and then it
	 * fires. */
	struct pollfd pf = {.fd = xr_reader_fd(r), .events = POLLIN};
	CHECK_RC(xr_reader_arm(r, 2), 0);
	CHECK(atomic_load(k.sleep_gen) != 0);
	CHECK_RC(poll(&pf, 1, 0), 0);
	put_published(w);
	CHECK_RC(poll(&pf, 1, 0), 0); /* one record of the two */
	put_published(w);
	CHECK_RC(poll(&pf, 1, 5000), 1);
	CHECK(pf.revents & POLLIN);
	CHECK_EQ(atomic_load(k.sleep_gen), 0); /* the writer took the sleep */
	CHECK_RC(xr_reader_read(r, 2, 16, 0, &b), 2);
	xr_test_check_batch(&b, &next, true);
	CHECK_RC(xr_batch_release(r, &b), 0);
	xr_reader_detach(r);
	CHECK_EQ(slots_taken(a), 0);
	unserve(a, srv);
}

/* ======================================================================
 * 2. who may attach: SO_PEERCRED, SO_PEERGROUPS
 * ====================================================================== */

struct perm_case {
	const char *tag;
	uint32_t allow_uid, n_uid; /* at most one of each */
	uint32_t allow_gid, n_gid;
	gid_t gid;                 /* the child's primary group */
	bool supp0;                /* ...and group 0 as a supplementary one */
	uint32_t n_more;           /* ...and this many more (20000, 20001, ...) */
	int want;
	const char *reason_has;    /* when refused */
};

struct perm_result {
	int rc;
	int read_rc;
	int intact;
	char reason[XR_CTL_REASON_MAX];
};

/* Child: becomes uid 65534 (groups as pc says), attaches on "go", reports;
 * if admitted, reads one record on the second "go" and reports again. It
 * keeps XRING_RUN_DIR: a directory of root's, which it trusts. */
static void perm_child(const char *name, const struct perm_case *pc, int go_fd, int res_fd)
{
	struct perm_result res = {0};
	gid_t groups[256];
	size_t ng = 0;
	char c;

	if (pc->supp0)
		groups[ng++] = 0;
	for (uint32_t i = 0; i < pc->n_more && ng < 256; i++)
		groups[ng++] = 20000 + i;
	if (setgroups(ng, groups) < 0 || setgid(pc->gid) < 0 || setuid(NOBODY) < 0)
		_exit(10);
	if (getuid() != NOBODY || geteuid() != NOBODY || getegid() != pc->gid)
		_exit(11);
	if (read(go_fd, &c, 1) != 1)
		_exit(12);
	xr_reader_opts o = {.transport = XR_TRANSPORT_CONTROL, .label = "nobody"};
	xr_reader *r = NULL;
	res.rc = xr_reader_attach(name, &o, &r);
	snprintf(res.reason, sizeof(res.reason), "%s", xr_last_reason());
	if (write(res_fd, &res, sizeof(res)) != (ssize_t)sizeof(res))
		_exit(13);
	if (res.rc < 0)
		_exit(0);
	if (read(go_fd, &c, 1) != 1)
		_exit(14);
	xr_batch b;
	res.read_rc = xr_reader_read(r, 1, 1, 5 * (int64_t)SEC, &b);
	if (res.read_rc == 1) {
		res.intact = b.first->seq == 0 &&
			     !xr_stamp_check(xr_frame_data(b.first), b.first->len, b.first->seq);
		xr_batch_release(r, &b);
	}
	if (write(res_fd, &res, sizeof(res)) != (ssize_t)sizeof(res))
		_exit(15);
	xr_reader_detach(r);
	_exit(0);
}

/* Returns false if the child could not drop privileges (skip). */
static bool perm_run(const struct perm_case *pc)
{
	char name[64];
	int go[2], res[2], status;
	struct perm_result pr;
	pid_t pid;

	xr_test_name(name, sizeof(name), pc->tag);
	CHECK(pipe(go) == 0 && pipe(res) == 0);
	/* Forked before the server's threads exist. */
	quiesce();
	if ((pid = fork()) == 0) {
		close(go[1]);
		close(res[0]);
		perm_child(name, pc, go[0], res[1]);
	}
	CHECK(pid > 0);
	close(go[0]);
	close(res[1]);
	xr_arena *a = make_arena(name, XR_POLICY_LOSSLESS, 64 << 10, 4);
	xr_writer *w = xr_test_writer(a);
	xr_server_opts o = {.allow_uid = &pc->allow_uid, .n_allow_uid = pc->n_uid,
			    .allow_gid = &pc->allow_gid, .n_allow_gid = pc->n_gid};
	xr_server *srv = serve(a, &o);
	CHECK(write(go[1], "g", 1) == 1);
	if (read_within(res[0], &pr, sizeof(pr), 10000) < 0) {
		CHECK(waitpid(pid, &status, 0) == pid);
		unserve(a, srv);
		close(go[1]);
		close(res[0]);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 10)
			return false;
		FAILF("%s: child died before reporting (status 0x%x)", pc->tag, status);
	}
	if (pr.rc != pc->want)
		FAILF("%s: attach as uid %u gid %u = %d (%s), want %d (%s); reason \"%s\"", pc->tag,
		      NOBODY, (unsigned)pc->gid, pr.rc, xr_err_name(pr.rc), pc->want,
		      xr_err_name(pc->want), pr.reason);
	if (pc->want < 0) {
		if (!pc->reason_has || !strstr(pr.reason, pc->reason_has))
			FAILF("%s: reason \"%s\" does not mention \"%s\"", pc->tag, pr.reason,
			      pc->reason_has);
		CHECK_EQ(slots_taken(a), 0);
		printf("  %-14s refused: %s\n", pc->tag, pr.reason);
	} else {
		/* Admitted: its slot is its connection's, with the child's pid
		 * and uid, and it reads through the arena fd the engine handed
		 * over. */
		int si = slot_of(a, pid);
		check_conn_slot(a, si, pid, NOBODY);
		CHECK_EQ(slots_taken(a), 1);
		CHECK_EQ(xr_writer_next_seq(w), 0);
		put_published(w);
		CHECK(write(go[1], "g", 1) == 1);
		if (read_within(res[0], &pr, sizeof(pr), 10000) < 0)
			FAILF("%s: child died while reading", pc->tag);
		CHECK_RC(pr.read_rc, 1);
		CHECK(pr.intact);
		printf("  %-14s admitted, read its record\n", pc->tag);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		FAILF("%s: child status 0x%x", pc->tag, status);
	close(go[1]);
	close(res[0]);
	/* The child detached (or was refused) before it exited. */
	CHECK_EQ(slots_taken(a), 0);
	unserve(a, srv);
	return true;
}

static void peer_creds(void)
{
	static const struct perm_case cases[] = {
		{.tag = "refused", .gid = 0, .want = -EACCES, .reason_has = "uid 65534"},
		{.tag = "allow-uid", .allow_uid = NOBODY, .n_uid = 1, .gid = 0, .want = 0},
		{.tag = "allow-gid", .allow_gid = 0, .n_gid = 1, .gid = 0, .want = 0},
		/* Primary group 65534, group 0 only as a supplementary group:
		 * the socket's mode admits it, and only SO_PEERGROUPS can. */
		{.tag = "allow-gid-supp", .allow_gid = 0, .n_gid = 1, .gid = NOBODY,
		 .supp0 = true, .want = 0},
		/* The same peer in 100 groups (users in many LDAP groups): more
		 * than a first SO_PEERGROUPS buffer of 64 holds. */
		{.tag = "allow-gid-100", .allow_gid = 0, .n_gid = 1, .gid = NOBODY,
		 .supp0 = true, .n_more = 99, .want = 0},
		/* Lists that do not name it. */
		{.tag = "other-lists", .allow_uid = 1, .n_uid = 1, .allow_gid = 12345,
		 .n_gid = 1, .gid = 0, .want = -EACCES, .reason_has = "uid 65534"},
	};

	if (geteuid() != 0) {
		printf("peer_creds: skipped (needs root to become uid %u; CI runs as root)\n",
		       NOBODY);
		return;
	}
	printf("peer_creds:\n");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (!perm_run(&cases[i])) {
			printf("  skipped: cannot drop privileges here (setgroups/setuid)\n");
			return;
		}
}

/* ======================================================================
 * 3. reader table full
 * ====================================================================== */

static void max_readers(void)
{
	char name[64];
	xr_reader_opts o = {.transport = XR_TRANSPORT_CONTROL, .label = "third"};
	xr_reader *r[3];

	xr_test_name(name, sizeof(name), "maxrd");
	xr_arena *a = make_arena(name, XR_POLICY_LOSSLESS, 64 << 10, 2);
	xr_server *srv = serve(a, NULL);
	r[0] = attach_ctl(name, "one");
	r[1] = attach_ctl(name, "two");
	CHECK_EQ(slots_taken(a), 2);
	CHECK_RC(xr_reader_attach(name, &o, &r[2]), -EBUSY);
	/* The table's limit, not a uid's (which defaults to the table's). */
	const char *why = xr_last_reason();
	if (!strstr(why, "--max-readers 2") || strstr(why, "per-uid"))
		FAILF("reason \"%s\" does not name --max-readers 2", why);
	printf("max_readers: third refused: %s\n", why);
	CHECK_EQ(slots_taken(a), 2);
	xr_reader_detach(r[0]);
	r[2] = attach_ctl(name, "third");
	CHECK_EQ(slots_taken(a), 2);
	xr_reader_detach(r[1]);
	xr_reader_detach(r[2]);
	CHECK_EQ(slots_taken(a), 0);
	unserve(a, srv);
}

/* ======================================================================
 * 4. DETACH waits for OK
 * ====================================================================== */

static void detach_frees(void)
{
	char name[64];
	uint32_t gen = 0;

	xr_test_name(name, sizeof(name), "detach");
	xr_arena *a = make_arena(name, XR_POLICY_LOSSLESS, 64 << 10, 1);
	xr_server *srv = serve(a, NULL);
	for (int i = 0; i < 3; i++) {
		xr_reader *r = attach_ctl(name, "once");
		CHECK_EQ(xr__reader_slot(r), 0);
		check_conn_slot(a, 0, getpid(), geteuid());
		/* Each claim of the slot is a new generation. */
		if (i > 0)
			CHECK_EQ(a->infos[0].gen, gen + 1);
		gen = a->infos[0].gen;
		xr_reader_detach(r);
		/* Not eventually: the engine freed it before it said OK. */
		CHECK_EQ(xr_load_acquire(&a->infos[0].state), XR_SLOT_FREE);
		CHECK_EQ(xr_load_acquire(&a->peers->slot[0].state), XR_SLOT_FREE);
	}
	printf("detach_frees: 3 attach/detach in a row on one reader slot\n");
	unserve(a, srv);
}

/* ======================================================================
 * 5. malformed messages, raw
 * ====================================================================== */

/* What this process has open, for a failure's report. */
static void list_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[300], to[256];

	while (d && (e = readdir(d))) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, to, sizeof(to) - 1);
		if (n > 0)
			fprintf(stderr, "  fd %s -> %.*s\n", e->d_name, (int)n, to);
	}
	if (d)
		closedir(d);
}

/* Polls until this process (the server in it) has fds0 fds open again:
 * what came with garbage, and the connections the server hung up on, go to
 * its closing thread, which closes them soon after. */
static void wait_fds(int fds0, const char *what)
{
	uint64_t deadline = xr__now_ns() + 5 * SEC;
	int fds1;

	while ((fds1 = count_fds()) != fds0) {
		if (xr__now_ns() > deadline) {
			list_fds();
			FAILF("%s: fds in this process (server included): %d before, %d after", what,
			      fds0, fds1);
		}
		sched_yield();
	}
}

static int raw_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	CHECK(s >= 0);
	CHECK(strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		FAILF("connect(%s): %s", path, strerror(errno));
	return s;
}

/* One packet buf[0..len) with n_fds fds. 0 or -errno. */
static int raw_send(int s, const void *buf, size_t len, const int *fds, int n_fds)
{
	union {
		struct cmsghdr c;
		char b[CMSG_SPACE(16 * sizeof(int))];
	} cm;
	struct iovec iov = {(void *)buf, len};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

	CHECK(n_fds <= 16);
	if (n_fds > 0) {
		memset(&cm, 0, sizeof(cm));
		m.msg_control = cm.b;
		m.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, n_fds * sizeof(int));
	}
	ssize_t n = sendmsg(s, &m, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	CHECK_EQ(n, len);
	return 0;
}

struct pkt {
	struct xr_ctl_hdr h;
	uint8_t body[XR_CTL_MSG_MAX + 256];
};

/* A message as the protocol builds it, or with fields made wrong by the
 * caller afterwards. Returns its length. */
static size_t pkt_make(struct pkt *p, uint16_t type, uint32_t id, const void *body, uint32_t len)
{
	memset(p, 0, sizeof(*p));
	p->h = (struct xr_ctl_hdr){XR_CTL_MAGIC, XR_CTL_VERSION, type, len, id};
	if (len)
		memcpy(p->body, body, len);
	return sizeof(p->h) + len;
}

static int msg_send(int s, uint16_t type, uint32_t id, const void *body, uint32_t len,
		    const int *fds, int n_fds)
{
	struct pkt p;
	size_t n = pkt_make(&p, type, id, body, len);

	return raw_send(s, &p, n, fds, n_fds);
}

/* The next packet within 5 s: its length, 0 at the end of the connection,
 * or -errno. The fds it carries (*n_fds of them) go to fds[0..8) when fds
 * is given, for the caller to close; else they are closed here. */
static int raw_recv(int s, void *buf, size_t cap, int *fds, int *n_fds)
{
	union {
		struct cmsghdr c;
		char b[CMSG_SPACE(8 * sizeof(int))];
	} cm;
	struct iovec iov = {buf, cap};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
			   .msg_controllen = sizeof(cm.b)};
	struct pollfd pf = {.fd = s, .events = POLLIN};
	ssize_t n;
	int rc;

	*n_fds = 0;
	do
		rc = poll(&pf, 1, 5000);
	while (rc < 0 && errno == EINTR);
	if (rc == 0)
		FAILF("no word from the control server within 5 s");
	n = recvmsg(s, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fds)
				fds[*n_fds] = fd;
			else
				close(fd);
			(*n_fds)++;
		}
	}
	CHECK(!(m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)));
	return (int)n;
}

/* A well-formed reply of type `type` with id: checks the header; returns the
 * body length. */
static uint32_t check_reply(const struct pkt *p, int n, const char *what, uint16_t type,
			    uint32_t id)
{
	if (n < (int)sizeof(p->h))
		FAILF("%s: reply of %d bytes", what, n);
	if (p->h.magic != XR_CTL_MAGIC || p->h.version != XR_CTL_VERSION ||
	    p->h.len != (uint32_t)n - sizeof(p->h))
		FAILF("%s: reply header is not the protocol's", what);
	if (p->h.type != type) {
		if (p->h.type == XR_CTL_ERROR) {
			struct xr_ctl_error e;
			memcpy(&e, p->body, sizeof(e));
			e.reason[sizeof(e.reason) - 1] = '\0';
			FAILF("%s: ERROR %s (%s) where type 0x%x was expected", what,
			      xr_err_name(e.code), e.reason, type);
		}
		FAILF("%s: reply type 0x%x, want 0x%x", what, p->h.type, type);
	}
	if (p->h.id != id)
		FAILF("%s: reply id %u, want %u", what, p->h.id, id);
	return p->h.len;
}

/* The server's answer to garbage: ERROR {code, one line}, then hangup. */
static void expect_error(int s, const char *what, uint32_t id, int code, const char *has)
{
	struct pkt p;
	struct xr_ctl_error e;
	int n_fds, n = raw_recv(s, &p, sizeof(p), NULL, &n_fds);

	if (n <= 0)
		FAILF("%s: connection ended (%d: %s) without an ERROR", what, n,
		      n ? strerror(-n) : "EOF");
	CHECK_EQ(check_reply(&p, n, what, XR_CTL_ERROR, id), sizeof(e));
	CHECK_EQ(n_fds, 0);
	memcpy(&e, p.body, sizeof(e));
	if (!memchr(e.reason, 0, sizeof(e.reason)))
		FAILF("%s: reason not NUL-terminated", what);
	if (e.code != code)
		FAILF("%s: code %d (%s), want %d (%s); reason \"%s\"", what, e.code,
		      xr_err_name(e.code), code, xr_err_name(code), e.reason);
	if (!e.reason[0] || strchr(e.reason, '\n'))
		FAILF("%s: reason \"%s\" is not one non-empty line", what, e.reason);
	if (has && !strstr(e.reason, has))
		FAILF("%s: reason \"%s\" does not mention \"%s\"", what, e.reason, has);
	n = raw_recv(s, &p, sizeof(p), NULL, &n_fds);
	if (n != 0)
		FAILF("%s: after the ERROR, recv = %d (want 0: the server hangs up)", what, n);
	printf("  %-36s %-8s %s\n", what, xr_err_name(code), e.reason);
	close(s);
}

/* ATTACH: ATTACHED with the engine's facts and one fd, the arena opened
 * read-only. With `deep`, that fd is the engine's very file, and it can
 * be mapped for reading only. */
static void raw_attach(int s, uint32_t id, const xr_arena *a, bool deep)
{
	struct pkt p;
	struct xr_ctl_attached at;
	struct stat st, mine;
	int fd, n_fds, n;

	CHECK_RC(msg_send(s, XR_CTL_ATTACH, id, NULL, 0, NULL, 0), 0);
	n = raw_recv(s, &p, sizeof(p), &fd, &n_fds);
	CHECK_EQ(check_reply(&p, n, "ATTACH", XR_CTL_ATTACHED, id), sizeof(at));
	CHECK_EQ(n_fds, 1); /* the arena fd */
	memcpy(&at, p.body, sizeof(at));
	CHECK_EQ(at.engine_pid, getpid());
	CHECK_EQ(at.max_readers, a->lay.max_readers);
	CHECK_EQ(at.layout_version, XR_LAYOUT_VERSION);
	CHECK_EQ(at.fingerprint, xr__layout_fingerprint());
	int fl = fcntl(fd, F_GETFL);
	CHECK(fl >= 0);
	CHECK_EQ(fl & O_ACCMODE, O_RDONLY);
	if (deep) {
		CHECK(fstat(fd, &st) == 0 && fstat(a->fd, &mine) == 0);
		CHECK(S_ISREG(st.st_mode));
		CHECK(st.st_dev == mine.st_dev && st.st_ino == mine.st_ino);
		CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
		CHECK_EQ(errno, EACCES);
		const struct xr_arena_hdr *h = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
		CHECK(h != MAP_FAILED);
		CHECK_EQ(h->magic, XR_MAGIC);
		munmap((void *)h, 4096);
	}
	close(fd);
}

static struct xr_ctl_subscribe sub_body(uint32_t flags)
{
	struct xr_ctl_subscribe m;

	memset(&m, 0, sizeof(m));
	strcpy(m.stream, XR_DEFAULT_STREAM);
	strcpy(m.label, "raw");
	m.flags = flags;
	return m;
}

/* SUBSCRIBE asking for wakeups (no fd goes with it): SUBSCRIBED with the
 * slot and one fd, a memfd made for this reader. With `deep`, its page
 * `slot` is what the engine reads for the slot: sealed, a page per slot,
 * initialised, and what this process writes into it the engine sees.
 * Returns the slot. */
static uint32_t raw_subscribe(int s, uint32_t id, const xr_arena *a, bool deep)
{
	struct xr_ctl_subscribe m = sub_body(XR_CTL_SUB_WAKE);
	struct xr_ctl_subscribed sub;
	struct pkt p;
	struct stat st;
	int fd, n_fds, n;

	CHECK_RC(msg_send(s, XR_CTL_SUBSCRIBE, id, &m, sizeof(m), NULL, 0), 0);
	n = raw_recv(s, &p, sizeof(p), &fd, &n_fds);
	CHECK_EQ(check_reply(&p, n, "SUBSCRIBE", XR_CTL_SUBSCRIBED, id), sizeof(sub));
	CHECK_EQ(n_fds, 1);
	memcpy(&sub, p.body, sizeof(sub));
	CHECK(sub.slot < a->lay.max_readers);
	CHECK_EQ(sub.stream, 0);
	CHECK_EQ(sub.policy, XR_POLICY_LOSSLESS); /* the stream's */
	check_conn_slot(a, (int)sub.slot, getpid(), geteuid());
	CHECK_EQ(sub.gen, a->infos[sub.slot].gen);
	char label[sizeof(a->infos[sub.slot].label)];
	xr__label_get(label, a->infos[sub.slot].label, sizeof(label));
	CHECK(strncmp(label, "raw", sizeof(label)) == 0);
	if (deep) {
		CHECK(fstat(fd, &st) == 0);
		CHECK(S_ISREG(st.st_mode));
		CHECK_EQ(st.st_size, (uint64_t)a->lay.max_readers * XR_PEER_PAGE_SIZE);
		int seals = fcntl(fd, F_GET_SEALS);
		CHECK(seals >= 0);
		CHECK_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
			 F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
		CHECK(ftruncate(fd, st.st_size + XR_PEER_PAGE_SIZE) < 0);
		CHECK(ftruncate(fd, 0) < 0);
		struct xr_peer_page *pg = mmap(NULL, XR_PEER_PAGE_SIZE, PROT_READ | PROT_WRITE,
					       MAP_SHARED, fd, (off_t)sub.slot * XR_PEER_PAGE_SIZE);
		CHECK(pg != MAP_FAILED);
		CHECK_EQ(xr_load_relaxed(&pg->sleep_gen), 0);
		for (uint32_t r = 0; r < a->lay.n_rings; r++)
			CHECK_EQ(xr_load_relaxed(&pg->cursors[r].lease), XR_NO_LEASE);
		xr_store_relaxed(&pg->cursors[0].pos, 0x5eedull);
		const struct xr_peer_page *eng = a->peers->slot[sub.slot].page;
		CHECK_EQ(xr_load_relaxed(&eng->cursors[0].pos), 0x5eedull);
		munmap(pg, XR_PEER_PAGE_SIZE);
	}
	close(fd);
	return sub.slot;
}

static void server_survives(const char *name, const char *after)
{
	xr_reader_opts o = {.transport = XR_TRANSPORT_CONTROL, .label = "survivor"};
	xr_reader *r;
	int rc = xr_reader_attach(name, &o, &r);

	if (rc < 0)
		FAILF("after %s: attach: %s (%s)", after, xr_strerror(rc), xr_last_reason());
	xr_reader_detach(r);
}

/* Sends a packet with fds to a server that takes none. Where the kernel
 * refuses them (SO_PASSRIGHTS on the server's socket), the send fails with
 * EPERM and nothing reaches the server: returns true. Else it is sent. */
static bool send_fds(int s, const char *what, const void *buf, size_t len, const int *fds,
		     int n_fds, bool kernel_refuses)
{
	int rc = raw_send(s, buf, len, fds, n_fds);

	if (!kernel_refuses) {
		if (rc < 0)
			FAILF("%s: sendmsg: %s", what, strerror(-rc));
		return false;
	}
	if (rc != -EPERM)
		FAILF("%s: sendmsg with %d fds = %d (%s), want EPERM (SO_PASSRIGHTS off)", what,
		      n_fds, rc, rc ? strerror(-rc) : "sent");
	printf("  %-36s EPERM    refused by the kernel at the sender\n", what);
	return true;
}

/* After a send the kernel refused: the connection lives on and nothing of
 * the packet reached the server. An ATTACHed one SUBSCRIBEs (and gets the
 * slot it would have had); else it ATTACHes. Closes s. */
static void still_fresh(int s, uint32_t id, const xr_arena *a, bool attached)
{
	if (attached) {
		uint32_t slot = raw_subscribe(s, id, a, false);
		close(s);
		wait_slot_free(a, slot, "hangup after a refused send");
	} else {
		raw_attach(s, id, a, false);
		close(s);
	}
}

/* Packets that carry fds, one connection each: the kernel refuses them at
 * the sender (kernel_refuses), or the server answers ERROR -EPROTO and
 * hangs up, and closes (through its closing thread) every fd it got. */
static void stray_fds(const char *name, const char *path, const xr_arena *a, bool kernel_refuses)
{
	struct xr_ctl_subscribe m;
	struct pkt p;
	int s, n, efd, pfd[2];
	const char *no_fds = "file descriptors are not accepted";

	/* SUBSCRIBE before ATTACH, with an eventfd. */
	m = sub_body(XR_CTL_SUB_WAKE);
	s = raw_connect(path);
	efd = eventfd(0, EFD_CLOEXEC);
	CHECK(efd >= 0);
	n = (int)pkt_make(&p, XR_CTL_SUBSCRIBE, 60, &m, sizeof(m));
	if (send_fds(s, "SUBSCRIBE before ATTACH + an eventfd", &p, (size_t)n, &efd, 1,
		     kernel_refuses))
		still_fresh(s, 61, a, false);
	else
		expect_error(s, "SUBSCRIBE before ATTACH + an eventfd", 60, -EPROTO, no_fds);
	close(efd);

	/* A SUBSCRIBE of protocol 1's kind: an eventfd for the wakeups. */
	s = raw_connect(path);
	raw_attach(s, 62, a, false);
	efd = eventfd(0, EFD_CLOEXEC);
	n = (int)pkt_make(&p, XR_CTL_SUBSCRIBE, 63, &m, sizeof(m));
	if (send_fds(s, "SUBSCRIBE + an eventfd", &p, (size_t)n, &efd, 1, kernel_refuses))
		still_fresh(s, 64, a, true);
	else
		expect_error(s, "SUBSCRIBE + an eventfd", 63, -EPROTO, no_fds);
	close(efd);
	CHECK_EQ(slots_taken(a), 0);

	/* A pipe's write end: once ours is closed, the read end sees EOF
	 * only if the server closed its copy too (it would block if a copy
	 * leaked). */
	s = raw_connect(path);
	raw_attach(s, 65, a, false);
	CHECK(pipe2(pfd, O_CLOEXEC) == 0);
	n = (int)pkt_make(&p, XR_CTL_SUBSCRIBE, 66, &m, sizeof(m));
	if (send_fds(s, "SUBSCRIBE + a pipe", &p, (size_t)n, &pfd[1], 1, kernel_refuses))
		still_fresh(s, 67, a, true);
	else
		expect_error(s, "SUBSCRIBE + a pipe", 66, -EPROTO, no_fds);
	close(pfd[1]);
	{
		struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
		char c;
		CHECK(poll(&pf, 1, 5000) == 1);
		CHECK(read(pfd[0], &c, 1) == 0);
	}
	close(pfd[0]);

	/* Two fds with a SUBSCRIBE; one with an ATTACH; twelve. */
	s = raw_connect(path);
	raw_attach(s, 68, a, false);
	int fds[12];
	for (int i = 0; i < 12; i++)
		CHECK((fds[i] = eventfd(0, EFD_CLOEXEC)) >= 0);
	n = (int)pkt_make(&p, XR_CTL_SUBSCRIBE, 69, &m, sizeof(m));
	if (send_fds(s, "SUBSCRIBE + two eventfds", &p, (size_t)n, fds, 2, kernel_refuses))
		still_fresh(s, 70, a, true);
	else
		expect_error(s, "SUBSCRIBE + two eventfds", 69, -EPROTO, no_fds);
	s = raw_connect(path);
	n = (int)pkt_make(&p, XR_CTL_ATTACH, 71, NULL, 0);
	if (send_fds(s, "ATTACH + an eventfd", &p, (size_t)n, fds, 1, kernel_refuses))
		still_fresh(s, 72, a, false);
	else
		expect_error(s, "ATTACH + an eventfd", 71, -EPROTO, no_fds);
	s = raw_connect(path);
	n = (int)pkt_make(&p, XR_CTL_ATTACH, 73, NULL, 0);
	if (send_fds(s, "ATTACH + 12 eventfds", &p, (size_t)n, fds, 12, kernel_refuses))
		still_fresh(s, 74, a, false);
	else
		expect_error(s, "ATTACH + 12 eventfds", 73, -EPROTO, no_fds);

	/* Longer than any message, with an eventfd riding along: cut, so
	 * refused for its length, with id 0. */
	s = raw_connect(path);
	pkt_make(&p, XR_CTL_SUBSCRIBE, 75, NULL, 0);
	p.h.len = (uint32_t)(XR_CTL_MSG_MAX + 64 - sizeof(p.h));
	if (send_fds(s, "MSG_MAX + 64 bytes + an eventfd", &p, XR_CTL_MSG_MAX + 64, fds, 1,
		     kernel_refuses))
		still_fresh(s, 76, a, false);
	else
		expect_error(s, "MSG_MAX + 64 bytes + an eventfd", 0, -EPROTO, "longer");
	for (int i = 0; i < 12; i++)
		close(fds[i]);
	server_survives(name, "stray fds");
	CHECK_EQ(slots_taken(a), 0);
}

/* Garbage of every kind, one connection each. */
static void malformed(void)
{
	char name[64];
	struct pkt p;
	int s, n, n_fds;
	/* Requests of this uid over all its connections: plenty, so that the
	 * one connection's limit is what the burst below meets. */
	xr_server_opts o = {.max_requests_per_uid = 100000};

	xr_test_name(name, sizeof(name), "garbage");
	xr_arena *a = make_arena(name, XR_POLICY_LOSSLESS, 64 << 10, 4);
	/* The fds of servers stopped before are closed by their closing
	 * threads: once these have ended, and before any connection, the
	 * count is this server's own. */
	quiesce();
	xr_server *srv = serve(a, &o);
	const char *path = xr_server_path(srv);
	int fds0 = count_fds();
	server_survives(name, "start");
	wait_fds(fds0, "a first reader");
	printf("malformed: (what was sent, code, reason)\n");

	/* The well-formed session first, raw: so that what follows is
	 * refused for what it is, not for how it is sent. */
	s = raw_connect(path);
	raw_attach(s, 1, a, true);
	uint32_t slot = raw_subscribe(s, 2, a, true);
	struct xr_ctl_detach d = {.slot = slot};
	CHECK_RC(msg_send(s, XR_CTL_DETACH, 3, &d, sizeof(d), NULL, 0), 0);
	n = raw_recv(s, &p, sizeof(p), NULL, &n_fds);
	CHECK_EQ(check_reply(&p, n, "DETACH", XR_CTL_OK, 3), 0);
	CHECK_EQ(n_fds, 0);
	/* Freed before the OK, in both tables. */
	CHECK_EQ(xr_load_acquire(&a->infos[slot].state), XR_SLOT_FREE);
	CHECK_EQ(xr_load_acquire(&a->peers->slot[slot].state), XR_SLOT_FREE);
	/* Hanging up without DETACH frees the slot too. */
	slot = raw_subscribe(s, 4, a, false);
	close(s);
	wait_slot_free(a, slot, "hangup after SUBSCRIBE");
	/* Not one fd more: each reader's memfd went with its slot. */
	wait_fds(fds0, "a session");
	printf("  %-36s fine; a hangup frees the slot\n", "ATTACH, SUBSCRIBE, DETACH");

	/* Too short for a header. */
	s = raw_connect(path);
	CHECK_RC(raw_send(s, "XRC1", 4, NULL, 0), 0);
	expect_error(s, "4-byte packet", 0, -EPROTO, "shorter");
	server_survives(name, "short packet");

	/* Bad magic. */
	s = raw_connect(path);
	n = (int)pkt_make(&p, XR_CTL_ATTACH, 11, NULL, 0);
	p.h.magic = 0xdeadbeef;
	CHECK_RC(raw_send(s, &p, (size_t)n, NULL, 0), 0);
	expect_error(s, "bad magic", 11, -EPROTO, "magic");
	server_survives(name, "bad magic");

	/* Another version: the next one, and the one before (version 1,
	 * whose SUBSCRIBE passed an eventfd). */
	s = raw_connect(path);
	n = (int)pkt_make(&p, XR_CTL_ATTACH, 12, NULL, 0);
	p.h.version = XR_CTL_VERSION + 1;
	CHECK_RC(raw_send(s, &p, (size_t)n, NULL, 0), 0);
	expect_error(s, "version + 1", 12, -EPROTO, "version");
	s = raw_connect(path);
	n = (int)pkt_make(&p, XR_CTL_ATTACH, 10, NULL, 0);
	p.h.version = XR_CTL_VERSION - 1;
	CHECK_RC(raw_send(s, &p, (size_t)n, NULL, 0), 0);
	expect_error(s, "version - 1", 10, -EPROTO, "version");
	server_survives(name, "wrong version");

	/* The len field disagreeing with the packet, both ways. */
	s = raw_connect(path);
	n = (int)pkt_make(&p, XR_CTL_ATTACH, 13, NULL, 0);
	p.h.len = 8;
	CHECK_RC(raw_send(s, &p, (size_t)n, NULL, 0), 0);
	expect_error(s, "len 8, no body", 13, -EPROTO, "length");
	s = raw_connect(path);
	n = (int)pkt_make(&p, XR_CTL_DETACH, 14, &d, sizeof(d));
	p.h.len = 0;
	CHECK_RC(raw_send(s, &p, (size_t)n, NULL, 0), 0);
	expect_error(s, "len 0, 8-byte body", 14, -EPROTO, "length");
	server_survives(name, "bad len");

	/* Unknown types: one never defined, and a reply type sent as a
	 * request (WAKE, which only the engine sends, among them). */
	s = raw_connect(path);
	CHECK_RC(msg_send(s, 0x42, 15, NULL, 0, NULL, 0), 0);
	expect_error(s, "type 0x42", 15, -EPROTO, "unknown");
	s = raw_connect(path);
	CHECK_RC(msg_send(s, XR_CTL_OK, 16, NULL, 0, NULL, 0), 0);
	expect_error(s, "type OK from a reader", 16, -EPROTO, "unknown");
	s = raw_connect(path);
	CHECK_RC(msg_send(s, XR_CTL_WAKE, 9, NULL, 0, NULL, 0), 0);
	expect_error(s, "type WAKE from a reader", 9, -EPROTO, "unknown");
	server_survives(name, "unknown type");

	/* A known type with the wrong body size for it. */
	s = raw_connect(path);
	CHECK_RC(msg_send(s, XR_CTL_DETACH, 17, &d, 4, NULL, 0), 0);
	expect_error(s, "DETACH with a 4-byte body", 17, -EPROTO, "body length");
	server_survives(name, "short body");

	/* SUBSCRIBE before ATTACH. */
	struct xr_ctl_subscribe m = sub_body(XR_CTL_SUB_WAKE);
	s = raw_connect(path);
	CHECK_RC(msg_send(s, XR_CTL_SUBSCRIBE, 18, &m, sizeof(m), NULL, 0), 0);
	expect_error(s, "SUBSCRIBE before ATTACH", 18, -EPROTO, "before ATTACH");
	server_survives(name, "SUBSCRIBE before ATTACH");

	/* Stream name, then label, without their NUL. */
	s = raw_connect(path);
	raw_attach(s, 19, a, false);
	m = sub_body(XR_CTL_SUB_WAKE);
	memset(m.stream, 'x', sizeof(m.stream));
	CHECK_RC(msg_send(s, XR_CTL_SUBSCRIBE, 20, &m, sizeof(m), NULL, 0), 0);
	expect_error(s, "stream not NUL-terminated", 20, -EPROTO, "NUL");
	s = raw_connect(path);
	raw_attach(s, 21, a, false);
	m = sub_body(XR_CTL_SUB_WAKE);
	memset(m.label, 'y', sizeof(m.label));
	CHECK_RC(msg_send(s, XR_CTL_SUBSCRIBE, 22, &m, sizeof(m), NULL, 0), 0);
	expect_error(s, "label not NUL-terminated", 22, -EPROTO, "NUL");
	server_survives(name, "unterminated strings");

	/* Flag bits the protocol does not define. */
	s = raw_connect(path);
	raw_attach(s, 27, a, false);
	m = sub_body(XR_CTL_SUB_WAKE | 0x80);
	CHECK_RC(msg_send(s, XR_CTL_SUBSCRIBE, 28, &m, sizeof(m), NULL, 0), 0);
	expect_error(s, "unknown flag bits", 28, -EPROTO, "flag");
	server_survives(name, "flags");

	/* DETACH of a slot that is not the connection's: with none, and with
	 * one of its own (which the hangup then frees). */
	s = raw_connect(path);
	raw_attach(s, 34, a, false);
	d.slot = 0;
	CHECK_RC(msg_send(s, XR_CTL_DETACH, 35, &d, sizeof(d), NULL, 0), 0);
	expect_error(s, "DETACH, no slot", 35, -EINVAL, "not this connection's");
	s = raw_connect(path);
	raw_attach(s, 36, a, false);
	slot = raw_subscribe(s, 37, a, false);
	d.slot = (slot + 1) % a->lay.max_readers;
	CHECK_RC(msg_send(s, XR_CTL_DETACH, 38, &d, sizeof(d), NULL, 0), 0);
	expect_error(s, "DETACH of another slot", 38, -EINVAL, "not this connection's");
	wait_slot_free(a, slot, "DETACH of another slot");
	server_survives(name, "DETACH of another slot");

	/* Well-formed requests the server refuses: they close the
	 * connection too, and free what it had. */
	s = raw_connect(path);
	raw_attach(s, 39, a, false);
	m = sub_body(XR_CTL_SUB_WAKE);
	strcpy(m.stream, "nosuch");
	CHECK_RC(msg_send(s, XR_CTL_SUBSCRIBE, 40, &m, sizeof(m), NULL, 0), 0);
	expect_error(s, "SUBSCRIBE to no such stream", 40, -ENOENT, "nosuch");
	s = raw_connect(path);
	raw_attach(s, 41, a, false);
	m = sub_body(XR_CTL_SUB_WAKE);
	m.policy = 7;
	CHECK_RC(msg_send(s, XR_CTL_SUBSCRIBE, 42, &m, sizeof(m), NULL, 0), 0);
	expect_error(s, "SUBSCRIBE, policy 7", 42, -EINVAL, "policy");
	s = raw_connect(path);
	raw_attach(s, 43, a, false);
	m = sub_body(XR_CTL_SUB_WAKE);
	m.filter.n_games = XR_FILTER_RANGES_MAX + 1;
	CHECK_RC(msg_send(s, XR_CTL_SUBSCRIBE, 44, &m, sizeof(m), NULL, 0), 0);
	expect_error(s, "SUBSCRIBE, 65 game ranges", 44, -EINVAL, "filter");
	s = raw_connect(path);
	raw_attach(s, 45, a, false);
	slot = raw_subscribe(s, 46, a, false);
	m = sub_body(XR_CTL_SUB_WAKE);
	CHECK_RC(msg_send(s, XR_CTL_SUBSCRIBE, 47, &m, sizeof(m), NULL, 0), 0);
	expect_error(s, "second SUBSCRIBE", 47, -EINVAL, "one reader per connection");
	wait_slot_free(a, slot, "second SUBSCRIBE");
	server_survives(name, "refused requests");

	/* Longer than any message: cut, so refused with id 0. */
	s = raw_connect(path);
	pkt_make(&p, XR_CTL_SUBSCRIBE, 48, NULL, 0);
	p.h.len = (uint32_t)(XR_CTL_MSG_MAX + 64 - sizeof(p.h));
	CHECK_RC(raw_send(s, &p, XR_CTL_MSG_MAX + 64, NULL, 0), 0);
	expect_error(s, "XR_CTL_MSG_MAX + 64 bytes", 0, -EPROTO, "longer");
	/* Just one byte too long, len field agreeing. */
	s = raw_connect(path);
	pkt_make(&p, XR_CTL_SUBSCRIBE, 49, NULL, 0);
	p.h.len = (uint32_t)(XR_CTL_MSG_MAX + 1 - sizeof(p.h));
	CHECK_RC(raw_send(s, &p, XR_CTL_MSG_MAX + 1, NULL, 0), 0);
	expect_error(s, "XR_CTL_MSG_MAX + 1 bytes", 49, -EPROTO, NULL);
	server_survives(name, "oversized packets");

	/* Packets with fds, to a server that asked the kernel to refuse
	 * them. */
	stray_fds(name, path, a, kernel_passrights);

	/* An empty packet reads as end-of-connection on SOCK_SEQPACKET: the
	 * server may hang up without an ERROR, but must hang up and live. */
	s = raw_connect(path);
	CHECK_RC(raw_send(s, "", 0, NULL, 0), 0);
	n = raw_recv(s, &p, sizeof(p), NULL, &n_fds);
	if (n > 0) {
		check_reply(&p, n, "empty packet", XR_CTL_ERROR, 0);
		n = raw_recv(s, &p, sizeof(p), NULL, &n_fds);
	}
	CHECK_RC(n, 0);
	close(s);
	printf("  %-36s closed\n", "empty packet");
	server_survives(name, "empty packet");

	/* A burst of requests: the first ones answered, then -EAGAIN and a
	 * hangup. ATTACH is answered once a connection, so the burst is of
	 * SUBSCRIBE and DETACH, each answered before the next is sent. */
	s = raw_connect(path);
	raw_attach(s, 999, a, false);
	int sent = 0, answered = 0, errors = 0;
	for (; sent < 100 && !errors; sent++) {
		struct xr_ctl_subscribe sb = sub_body(0);
		struct xr_ctl_detach dt = {0};
		CHECK_RC(msg_send(s, XR_CTL_SUBSCRIBE, 1000 + (uint32_t)sent, &sb, sizeof(sb), NULL,
				  0), 0);
		n = raw_recv(s, &p, sizeof(p), NULL, &n_fds);
		if (n <= 0)
			FAILF("burst: recv = %d after %d answered", n, answered);
		if (p.h.type == XR_CTL_SUBSCRIBED) {
			struct xr_ctl_subscribed r;
			CHECK_EQ(check_reply(&p, n, "burst", XR_CTL_SUBSCRIBED, 1000 + (uint32_t)sent),
				 sizeof(r));
			memcpy(&r, p.body, sizeof(r));
			CHECK_EQ(n_fds, 1);
			dt.slot = r.slot; /* the next DETACH's */
			answered++;
			sent++;
			CHECK_RC(msg_send(s, XR_CTL_DETACH, 1000 + (uint32_t)sent, &dt, sizeof(dt),
					  NULL, 0), 0);
			n = raw_recv(s, &p, sizeof(p), NULL, &n_fds);
			if (n > 0 && p.h.type == XR_CTL_OK) {
				answered++;
				continue;
			}
		}
		struct xr_ctl_error e;
		CHECK_EQ(check_reply(&p, n, "burst", XR_CTL_ERROR, 1000 + (uint32_t)sent), sizeof(e));
		memcpy(&e, p.body, sizeof(e));
		e.reason[sizeof(e.reason) - 1] = '\0';
		if (e.code != -EAGAIN || !strstr(e.reason, "too many requests on one connection"))
			FAILF("burst: ERROR %s (%s), want EAGAIN, too many requests on one connection",
			      xr_err_name(e.code), e.reason);
		CHECK(e.reason[0] && !strchr(e.reason, '\n'));
		errors++;
		printf("  %-36s %-8s %s (after %d answered)\n", "SUBSCRIBE, DETACH, ... at once",
		       "EAGAIN", e.reason, answered);
	}
	CHECK_EQ(raw_recv(s, &p, sizeof(p), NULL, &n_fds), 0); /* hung up on */
	close(s);
	CHECK_EQ(errors, 1);
	CHECK(answered >= 1 && answered < 100);

	/* A second ATTACH on one connection: refused (each ATTACHED brings a
	 * descriptor, and the engine sends one per connection). */
	s = raw_connect(path);
	raw_attach(s, 1, a, false);
	CHECK_RC(msg_send(s, XR_CTL_ATTACH, 2, NULL, 0, NULL, 0), 0);
	expect_error(s, "ATTACH twice", 2, -EPROTO, "ATTACH twice on one connection");
	server_survives(name, "a burst");

	/* Every connection the server hung up on is closed (the last one as
	 * soon as it notices our hangup). */
	wait_fds(fds0, "passrights on");
	CHECK_EQ(slots_taken(a), 0);
	printf("  no fd left open (%d before and after)\n", fds0);
	unserve(a, srv);

	/* The server's own refusal, as on kernels without SO_PASSRIGHTS: the
	 * fds reach it, it answers ERROR and hangs up, and closes them all. */
	printf("malformed, SO_PASSRIGHTS not set: (what was sent, code, reason)\n");
	xr_test_name(name, sizeof(name), "garbage-fds");
	a = make_arena(name, XR_POLICY_LOSSLESS, 64 << 10, 4);
	xr__server_test_passrights(false);
	quiesce();
	srv = serve(a, &o);
	xr__server_test_passrights(true);
	fds0 = count_fds();
	server_survives(name, "start");
	wait_fds(fds0, "a first reader");
	stray_fds(name, xr_server_path(srv), a, false);
	wait_fds(fds0, "passrights off");
	printf("  no fd left open (%d before and after)\n", fds0);
	unserve(a, srv);
}

/* ======================================================================
 * 6. too many connections
 * ====================================================================== */

/* Connections that ATTACH and then idle, until one is refused at accept
 * with -EBUSY naming the limit (has); max_readers 1, so the server's table
 * holds 2 + 16 connections in all. The library's reader refused the same
 * way says the same. Room again once connections close. */
static void conn_limit(const char *tag, const xr_server_opts *o, int want, const char *has)
{
	char name[64];
	int held[256], n_held = 0, n, n_fds, rc;
	struct xr_ctl_error e;
	struct pkt p;

	xr_test_name(name, sizeof(name), tag);
	xr_arena *a = make_arena(name, XR_POLICY_LOSSLESS, 64 << 10, 1);
	xr_server *srv = serve(a, o);
	const char *path = xr_server_path(srv);
	/* The refused one may see ECONNRESET first (the server hung up with
	 * our ATTACH unread); its ERROR is queued behind. */
	for (;;) {
		CHECK(n_held < 256);
		int s = raw_connect(path);
		rc = msg_send(s, XR_CTL_ATTACH, 1, NULL, 0, NULL, 0);
		CHECK(rc == 0 || rc == -EPIPE || rc == -ECONNRESET);
		do
			n = raw_recv(s, &p, sizeof(p), NULL, &n_fds);
		while (n == -ECONNRESET);
		if (n > 0 && p.h.type == XR_CTL_ATTACHED) {
			CHECK_EQ(n_fds, 1);
			held[n_held++] = s;
			continue;
		}
		if (n <= 0)
			FAILF("connection %d: hung up (%d) without an ERROR", n_held + 1, n);
		CHECK_EQ(check_reply(&p, n, "connection past the limit", XR_CTL_ERROR, 0), sizeof(e));
		memcpy(&e, p.body, sizeof(e));
		CHECK(memchr(e.reason, 0, sizeof(e.reason)) != NULL);
		if (e.code != -EBUSY || !strstr(e.reason, has))
			FAILF("connection %d refused with %s (%s), want EBUSY, %s", n_held + 1,
			      xr_err_name(e.code), e.reason, has);
		do /* ECONNRESET here if the hangup came after we read the ERROR */
			n = raw_recv(s, &p, sizeof(p), NULL, &n_fds);
		while (n == -ECONNRESET);
		CHECK_RC(n, 0);
		close(s);
		break;
	}
	if (n_held != want)
		FAILF("%s: connection %d refused, want %d held first", tag, n_held + 1, want);
	printf("conn_table_full: connection %d refused at accept: %s\n", n_held + 1, e.reason);

	/* The library's reader refused the same way must say why. */
	xr_reader_opts ro = {.transport = XR_TRANSPORT_CONTROL};
	xr_reader *r;
	rc = xr_reader_attach(name, &ro, &r);
	if (rc != -EBUSY || !strstr(xr_last_reason(), has))
		FAILF("reader refused at accept: %s (%s), want EBUSY, %s", xr_err_name(rc),
		      xr_last_reason(), has);

	/* The server drops hung-up connections before it accepts the next. */
	for (int i = 0; i < n_held; i++)
		close(held[i]);
	server_survives(name, "a full connection table");
	CHECK_EQ(slots_taken(a), 0);
	unserve(a, srv);
}

static void conn_table_full(void)
{
	/* Everything here is the engine's own uid, which by default may use
	 * the whole table; a per-uid limit given applies to it too. */
	xr_server_opts o = {.max_conns_per_uid = 9};
	conn_limit("conns-uid", &o, 9, "--max-conns-per-uid 9");
	conn_limit("conns", NULL, 2 + 16, "too many connections");
}

/* ======================================================================
 * 7. a connection that does not ATTACH in time is closed
 * ====================================================================== */

#define IDLE_MS 200u

/* Connects raw and sends nothing. The server must send ERROR -ETIMEDOUT and
 * hang up IDLE_MS after it accepted: not before, and not at the 5 s default
 * nor at a once-a-second look at the clock. Returns the time from just
 * before connect() to the hangup being readable, in ns. */
static uint64_t idle_closed(const char *path, const char *what)
{
	uint64_t t0 = xr__now_ns(), deadline = t0 + 5 * SEC, dt;
	int s = raw_connect(path);
	struct pollfd pf = {.fd = s, .events = POLLIN};
	int rc;

	for (;;) {
		int64_t left = (int64_t)(deadline - xr__now_ns());
		if (left <= 0)
			FAILF("%s: still open after 5 s (idle_timeout_ms %u)", what, IDLE_MS);
		rc = poll(&pf, 1, (int)(left / (int64_t)MS) + 1);
		if (rc < 0 && errno != EINTR)
			FAILF("poll: %s", strerror(errno));
		if (rc > 0)
			break;
	}
	dt = xr__now_ns() - t0;
	CHECK(pf.revents & (POLLIN | POLLHUP));
	/* The server counts from accept, which is after t0. The upper
	 * bound leaves 600 ms for scheduling, and is still under the
	 * second the server once took between looks at the clock. */
	if (dt < IDLE_MS * MS)
		FAILF("%s: closed %.1f ms after connect, before the %u ms period", what,
		      (double)dt / 1e6, IDLE_MS);
	if (dt > 800 * MS)
		FAILF("%s: closed %.1f ms after connect; the period is %u ms", what,
		      (double)dt / 1e6, IDLE_MS);
	expect_error(s, what, 0, -ETIMEDOUT, "no ATTACH within 200 ms");
	return dt;
}

static void idle_timeout(void)
{
	char name[64];
	xr_server_opts o = {.idle_timeout_ms = IDLE_MS};
	uint64_t dt_max = 0;
	xr_batch b;
	enum { N = 20 };

	xr_test_name(name, sizeof(name), "idle");
	xr_arena *a = make_arena(name, XR_POLICY_LOSSLESS, 64 << 10, 4);
	xr_writer *w = xr_test_writer(a);
	xr_server *srv = serve(a, &o);
	const char *path = xr_server_path(srv);
	printf("idle_timeout: (what was sent, code, reason)\n");

	/* A reader that attached at once is not idle, however long it stays:
	 * it outlives three idle connections closed one after the other,
	 * each closed by the rule after a full period. */
	xr_reader *r = attach_ctl(name, "not-idle");
	uint64_t t_attached = xr__now_ns();
	int si = (int)xr__reader_slot(r);
	check_conn_slot(a, si, getpid(), geteuid());
	uint32_t gen = a->infos[si].gen;
	for (int i = 0; i < 3; i++) {
		uint64_t dt = idle_closed(path, "nothing, one connection");
		if (dt > dt_max)
			dt_max = dt;
	}
	uint64_t held = xr__now_ns() - t_attached;
	CHECK(held >= 3 * IDLE_MS * MS);
	check_conn_slot(a, si, getpid(), geteuid());
	CHECK_EQ(a->infos[si].gen, gen); /* the same claim all along */
	CHECK_EQ(slots_taken(a), 1);
	uint64_t next = 0;
	for (int i = 0; i < N; i++)
		put_published(w);
	while (next < N) {
		int n = xr_reader_read(r, 1, N, 5 * (int64_t)SEC, &b);
		if (n <= 0)
			FAILF("the attached reader, after %u ms: read = %d (%s)",
			      3 * IDLE_MS, n, xr_strerror(n));
		xr_test_check_batch(&b, &next, true);
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	xr_reader_detach(r);
	CHECK_EQ(slots_taken(a), 0);
	server_survives(name, "idle connections");
	printf("idle_timeout: idle connections closed %.1f ms after connect at most (period "
	       "%u ms); a reader attached for %.0f ms kept reading\n", (double)dt_max / 1e6,
	       IDLE_MS, (double)held / 1e6);
	unserve(a, srv);
}

/* ======================================================================
 * 8. a blocking reader SIGKILLed: the server frees it on hangup
 * ====================================================================== */

static void reader_killed(void)
{
	char name[64];
	int go[2], ready[2], status;
	pid_t pid;
	char c;

	xr_test_name(name, sizeof(name), "rkill");
	CHECK(pipe(go) == 0 && pipe(ready) == 0);
	quiesce();
	if ((pid = fork()) == 0) {
		xr_reader_opts o = {.policy = XR_POLICY_LOSSLESS,
				    .transport = XR_TRANSPORT_CONTROL, .label = "victim"};
		xr_reader *r;
		xr_batch b;
		close(go[1]);
		close(ready[0]);
		if (read(go[0], &c, 1) != 1 || xr_reader_attach(name, &o, &r) < 0)
			_exit(2);
		if (write(ready[1], "a", 1) != 1)
			_exit(3);
		/* Take one batch and hold it; read nothing more. */
		if (xr_reader_read(r, 1, 4, 5 * (int64_t)SEC, &b) <= 0)
			_exit(4);
		if (write(ready[1], "h", 1) != 1)
			_exit(5);
		for (;;)
			pause();
	}
	CHECK(pid > 0);
	close(go[0]);
	close(ready[1]);
	xr_arena *a = make_arena(name, XR_POLICY_LOSSLESS, 64 << 10, 4);
	xr_writer *w = xr_test_writer(a);
	xr_server *srv = serve(a, NULL);
	CHECK(write(go[1], "g", 1) == 1);
	if (read_within(ready[0], &c, 1, 10000) < 0)
		FAILF("the reader process died before attaching");
	int si = slot_of(a, pid);
	check_conn_slot(a, si, pid, geteuid());
	for (int i = 0; i < 4; i++)
		CHECK_RC(xr_test_put(w, 1000), 0);
	xr_writer_publish(w);
	if (read_within(ready[0], &c, 1, 10000) < 0)
		FAILF("the reader process died before taking a batch");

	/* Fill the ring: the child's lease stops the lossless writer. */
	uint64_t put = 4;
	int rc;
	while ((rc = xr_test_put(w, 1000)) == 0)
		put++;
	CHECK_RC(rc, -EAGAIN);
	CHECK(put > 16);
	CHECK_RC(xr_test_put(w, 1000), -EAGAIN);
	CHECK_EQ(xr_load_acquire(&a->peers->slot[si].state), XR_SLOT_ACTIVE);

	/* Retry the reserve only: no xr_writer_wait(), nothing that looks
	 * for dead pids. The hangup of the child's connection is all. */
	uint64_t t0 = xr__now_ns(), tries = 0;
	CHECK(kill(pid, SIGKILL) == 0);
	while ((rc = xr_test_put(w, 1000)) == -EAGAIN) {
		tries++;
		if (xr__now_ns() - t0 > 5 * SEC)
			FAILF("the writer is still blocked 5 s after the reader's SIGKILL "
			      "(slot %d: engine %u, reader table %u)", si,
			      xr_load_acquire(&a->peers->slot[si].state),
			      xr_load_acquire(&a->infos[si].state));
	}
	uint64_t dt = xr__now_ns() - t0;
	CHECK_RC(rc, 0);
	xr_writer_publish(w);
	printf("reader_killed: %llu records held back by the reader; writer resumed %.2f ms "
	       "after its SIGKILL (%llu reserve retries)\n", (unsigned long long)put,
	       (double)dt / 1e6, (unsigned long long)tries);
	CHECK(dt < 100 * MS);
	/* The writer goes on as soon as the release starts; it ends a moment
	 * later. */
	wait_slot_free(a, (uint32_t)si, "the killed reader's slot");
	CHECK_EQ(slots_taken(a), 0);
	CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
	close(go[1]);
	close(ready[0]);
	unserve(a, srv);
}

/* ======================================================================
 * 9. the engine closing under a sleeping reader
 * ====================================================================== */

/* The engine closing its arena (close, stop, destroy, in this process)
 * under a sleeping reader: hung up on, it hands out what was published,
 * then XR_ECLOSED. */
struct closer {
	xr_arena *a;
	xr_server *srv;
	_Atomic uint32_t *sleep_gen; /* in the reader's page */
	pid_t tid;
	_Atomic uint64_t t_ns;
	bool asleep;
	int destroy_rc;
};

/* ======================================================================
 * held_back: a wait for records one's own held batch keeps out
 * ====================================================================== */

struct canceller {
	xr_reader *r;
	_Atomic uint32_t *sleep_gen;
	pid_t tid;
	bool slept;
};

/* Cancels the read once its thread sleeps (or after 5 s, when it never
 * does: the read's result says so). */
static void *canceller_main(void *p)
{
	struct canceller *c = p;
	uint64_t deadline = xr__now_ns() + 5 * SEC;

	while (!(c->slept = asleep(c->sleep_gen, c->tid)) && xr__now_ns() < deadline)
		sched_yield();
	xr_reader_cancel(c->r);
	return NULL;
}

/* Fills the ring until the lossless writer stops; the stop starts with
 * xr_writer_wait (which marks the ring blocked) and lasts. */
static uint64_t fill_until_stopped(xr_writer *w, const xr_arena *a, uint64_t *put)
{
	int rc;

	while ((rc = xr_test_put(w, 1000)) == 0)
		(*put)++;
	CHECK_RC(rc, -EAGAIN);
	CHECK_RC(xr_writer_wait(w, 1000, 0), -ETIMEDOUT);
	CHECK_EQ(xr_load_acquire(&a->hdr->rings[0].blocked), 1);
	return xr_load_relaxed(&a->hdr->rings[0].blocked_need);
}

static void held_back(void)
{
	char name[64];
	xr_batch held, b;
	uint64_t put = 0, next = 0;
	int n;

	xr_test_name(name, sizeof(name), "held");
	xr_arena *a = make_arena(name, XR_POLICY_LOSSLESS, 64 << 10, 4);
	xr_writer *w = xr_test_writer(a);
	xr_server *srv = serve(a, NULL);
	xr_reader *r = attach_ctl(name, "holder");

	/* Hold the first record; read and release everything after it. */
	CHECK_RC(xr_test_put(w, 1000), 0);
	put++;
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r, 1, 1, 0, &held), 1);
	uint64_t need = fill_until_stopped(w, a, &put);
	CHECK((int64_t)need > 0); /* past the held frame, at byte 0 */
	while ((n = xr_reader_read(r, 1, 64, 0, &b)) > 0)
		CHECK_RC(xr_batch_release(r, &b), 0);
	CHECK_RC(n, 0);

	/* Waiting for good is refused at once, and says what to do. */
	uint64_t t0 = xr__now_ns();
	n = xr_reader_read(r, 1, 16, -1, &b);
	CHECK_RC(n, -EDEADLK);
	CHECK(xr__now_ns() - t0 < 2 * SEC);
	if (!strstr(xr_last_reason(), "release"))
		FAILF("-EDEADLK's reason does not say what to do: \"%s\"", xr_last_reason());
	CHECK_RC(xr_reader_wait(r, 1, -1), -EDEADLK);
	CHECK_RC(xr_reader_arm(r, 1), -EDEADLK);
	/* With a deadline the wait ends there, as any. */
	CHECK_RC(xr_reader_read(r, 1, 16, 20 * 1000000, &b), 0);

	/* Released, the writer goes on and the reader reads what follows. */
	next = held.first->seq;
	xr_test_check_batch(&held, &next, true);
	CHECK_RC(xr_batch_release(r, &held), 0);
	CHECK_RC(xr_writer_wait(w, 1000, 5 * (int64_t)SEC), 0);
	CHECK_EQ(xr_load_acquire(&a->hdr->rings[0].blocked), 0);
	CHECK_RC(xr_test_put(w, 1000), 0);
	put++;
	xr_writer_publish(w);
	n = xr_reader_read(r, 1, 16, -1, &b);
	CHECK_RC(n, 1);
	CHECK_EQ(b.first->seq, put - 1);
	CHECK_RC(xr_batch_release(r, &b), 0);

	/* Another reader's lease in the way, ours past it: a wait with no
	 * deadline sleeps (it could end when the other reader moves). */
	xr_reader *lag = attach_ctl(name, "lagger"); /* its lease: the head */
	for (int i = 0; i < 2; i++)
		CHECK_RC(xr_test_put(w, 1000), 0);
	put += 2;
	xr_writer_publish(w);
	CHECK_RC(xr_reader_read(r, 1, 1, 0, &b), 1); /* the lagger's lease stays here */
	CHECK_RC(xr_batch_release(r, &b), 0);
	CHECK_RC(xr_reader_read(r, 1, 1, 0, &held), 1); /* ours: one frame on */
	need = fill_until_stopped(w, a, &put);
	CHECK(held.first->seq + 1 < put);
	while ((n = xr_reader_read(r, 1, 64, 0, &b)) > 0)
		CHECK_RC(xr_batch_release(r, &b), 0);
	CHECK_RC(n, 0);
	struct canceller c = {.r = r, .sleep_gen = &xr__reader_page(r)->sleep_gen,
			      .tid = gettid_()};
	pthread_t th;
	CHECK_RC(pthread_create(&th, NULL, canceller_main, &c), 0);
	n = xr_reader_read(r, 1, 16, -1, &b);
	pthread_join(th, NULL);
	if (!c.slept)
		FAILF("with another reader in the way, the read did not sleep (it returned %d)",
		      n);
	CHECK_RC(n, -EINTR);
	CHECK_RC(xr_batch_release(r, &held), 0);
	xr_reader_detach(lag);
	xr_reader_detach(r);
	unserve(a, srv);
	printf("held_back: -EDEADLK for a wait on itself (stop need %llu), a sleep otherwise\n",
	       (unsigned long long)need);
}

static void named_late(void)
{
	char name[64];
	struct stat st;
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSLESS, .ring_bytes = 64 << 10, .frame_align = 64};
	xr_reader *r;

	xr_test_name(name, sizeof(name), "late");
	xr_arena_spec spec = {.name = name, .streams = &ss, .n_streams = 1,
			      .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_DEFAULT,
			      .max_readers = 4};
	xr_arena *a, *b;
	CHECK_RC(xr__arena_create_unnamed(&spec, &a), 0);
	CHECK(stat(a->path, &st) < 0 && errno == ENOENT);
	/* A second engine of the name, started in the same moment: as far as
	 * its own file (the name was free for both). */
	CHECK_RC(xr__arena_create_unnamed(&spec, &b), 0);
	xr_arena *peek;
	CHECK_RC(xr__arena_open(name, 0, -1, &peek), -ENOENT);
	xr_server *srv = serve(a, NULL);
	CHECK_RC(xr__arena_publish(a), 0);
	CHECK(stat(a->path, &st) == 0);
	r = attach_ctl(name, "late");
	xr_reader_detach(r);

	/* The second is refused when it would take the name; the first keeps
	 * it. Once named, the name refuses a third at creation. */
	xr_arena *c;
	CHECK_RC(xr__arena_create_unnamed(&spec, &c), -EEXIST);
	char tmp[sizeof(b->pending_tmp)];
	snprintf(tmp, sizeof(tmp), "%s", b->pending_tmp);
	CHECK_RC(xr__arena_publish(b), -EEXIST);
	if (!strstr(xr_arena_last_note(), "already running"))
		FAILF("a second engine's publish: note \"%s\"", xr_arena_last_note());
	if (tmp[0])
		CHECK(stat(tmp, &st) < 0 && errno == ENOENT);
	CHECK_RC(xr_arena_destroy(b), 0);
	CHECK(stat(a->path, &st) == 0);
	r = attach_ctl(name, "late2");
	xr_reader_detach(r);
	unserve(a, srv);
	CHECK(stat(a->path, &st) < 0 && errno == ENOENT);
	printf("named_late: not findable before its server; a second engine refused at publish\n");
}

/* Two engines that found a name free link it in two places (hugetlbfs
 * and /dev/shm) at once: a link is atomic in one directory only. The one
 * that publishes second is refused, in either order of the places, and
 * leaves nothing under the name. Needs a hugetlbfs mount with free pages. */
static void named_in_two_places(void)
{
	struct xr_place pl[XR_MAX_CANDIDATES];
	char why[XR_NOTE_MAX], name[64];
	int n = xr__places(XR_HUGEPAGES_REQUIRE, pl, why, sizeof(why));

	if (n < 1 || xr__hugepages_free(pl[0].page_size) < 4) {
		printf("named_in_two_places: skipped, no hugetlbfs mount with free pages (%s)\n",
		       why);
		return;
	}
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSY, .ring_bytes = 64 << 10};
	for (int order = 0; order < 2; order++) {
		xr_test_name(name, sizeof(name), order ? "two-b" : "two-a");
		xr_arena_spec first = {.name = name, .streams = &ss, .n_streams = 1,
				       .numa_node = XR_NUMA_NONE, .max_readers = 2};
		xr_arena_spec second = first;
		first.hugepages = order ? XR_HUGEPAGES_OFF : XR_HUGEPAGES_REQUIRE;
		second.hugepages = order ? XR_HUGEPAGES_REQUIRE : XR_HUGEPAGES_OFF;
		xr_arena *late, *early, *peek;
		struct stat st;

		CHECK_RC(xr__arena_create_unnamed(&second, &late), 0);
		CHECK_RC(xr_arena_create(&first, &early), 0);
		CHECK(strcmp(early->path, late->path) != 0);
		CHECK_RC(xr__arena_publish(late), -EEXIST);
		if (!strstr(xr_arena_last_note(), "already running"))
			FAILF("publish in a second place: note \"%s\"", xr_arena_last_note());
		CHECK(stat(late->path, &st) < 0 && errno == ENOENT);
		CHECK(stat(early->path, &st) == 0);
		CHECK_RC(xr_arena_destroy(late), 0);
		CHECK(stat(early->path, &st) == 0);
		CHECK_RC(xr__arena_open(name, 0, -1, &peek), 0);
		CHECK(peek->hdr->writer_pid == early->hdr->writer_pid);
		CHECK(strcmp(peek->path, early->path) == 0);
		xr__arena_close(peek);
		CHECK_RC(xr_arena_destroy(early), 0);
	}
	printf("named_in_two_places: the second to publish is refused, hugetlbfs first or "
	       "/dev/shm first, and leaves nothing\n");
}

/* An engine whose name was taken over (removed by its user, then linked by
 * another engine of the same user, with another run directory) leaves the
 * new engine's name alone when it closes (formerly: it removed it, and the
 * running engine could no longer be found). */
static void close_leaves_anothers_name(void)
{
	char name[64];
	struct stat st;
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSY, .ring_bytes = 64 << 10};

	xr_test_name(name, sizeof(name), "takeover");
	xr_arena_spec spec = {.name = name, .streams = &ss, .n_streams = 1,
			      .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE,
			      .max_readers = 2};
	xr_arena *old, *now;
	CHECK_RC(xr_arena_create(&spec, &old), 0);
	CHECK(unlink(old->path) == 0);
	CHECK_RC(xr_arena_create(&spec, &now), 0);
	CHECK(strcmp(old->path, now->path) == 0);
	CHECK_RC(xr_arena_destroy(old), 0);
	if (stat(now->path, &st) < 0)
		FAILF("the old engine's close removed the name another engine holds");
	xr_arena *peek;
	CHECK_RC(xr__arena_open(name, 0, -1, &peek), 0);
	xr__arena_close(peek);
	CHECK_RC(xr_arena_destroy(now), 0);
	CHECK(stat(now->path, &st) < 0 && errno == ENOENT);
	printf("close_leaves_anothers_name: a name taken over stays with its new engine\n");
}

static void *closer_main(void *p)
{
	struct closer *k = p;
	uint64_t deadline = xr__now_ns() + 5 * SEC;

	while (!(k->asleep = asleep(k->sleep_gen, k->tid)) && xr__now_ns() < deadline)
		sched_yield();
	atomic_store(&k->t_ns, xr__now_ns());
	xr_arena_close(k->a);
	xr_server_stop(k->srv);
	k->destroy_rc = xr_arena_destroy(k->a);
	return NULL;
}

static void engine_closes(void)
{
	char name[64];
	pthread_t th;
	xr_batch b;
	uint64_t next = 0;

	xr_test_name(name, sizeof(name), "close");
	xr_arena *a = make_arena(name, XR_POLICY_LOSSLESS, 64 << 10, 4);
	xr_writer *w = xr_test_writer(a);
	xr_server *srv = serve(a, NULL);
	xr_reader *r = attach_ctl(name, "closing");
	for (int i = 0; i < 3; i++)
		put_published(w);
	/* The server holds the arena: destroy refuses, and leaves it as it
	 * was (open: the read below still has to sleep). */
	CHECK_RC(xr_arena_destroy(a), -EBUSY);
	CHECK_EQ(xr_load_acquire(&a->hdr->state), XR_ARENA_READY);
	CHECK_EQ(slots_taken(a), 1);
	/* Wants 4: sleeps on the 3 there are. */
	struct closer k = {.a = a, .srv = srv, .sleep_gen = &xr__reader_page(r)->sleep_gen,
			   .tid = gettid_(), .destroy_rc = 1};
	CHECK_RC(pthread_create(&th, NULL, closer_main, &k), 0);
	int n = xr_reader_read(r, 4, 16, 10 * (int64_t)SEC, &b);
	uint64_t t_end = xr__now_ns();
	pthread_join(th, NULL);
	CHECK(k.asleep);
	CHECK_RC(k.destroy_rc, 0);
	CHECK_RC(n, 3);
	xr_test_check_batch(&b, &next, true);
	CHECK_RC(xr_batch_release(r, &b), 0);
	CHECK_RC(xr_reader_read(r, 1, 16, 5 * (int64_t)SEC, &b), XR_ECLOSED);
	double ms = (double)(t_end - atomic_load(&k.t_ns)) / 1e6;
	printf("engine_closes: a sleeping reader got the last 3 records %.2f ms after the close, "
	       "then XR_ECLOSED\n", ms);
	CHECK(ms < 1000);
	xr_reader_detach(r);
}

/* ======================================================================
 * 10, 11. the engine SIGKILLed under a sleeping reader; then restarted
 * ====================================================================== */

#define ENGINE_RECORDS 5

/* An engine: on "go" (if go_fd >= 0) creates the arena and serves it, says
 * 'r', writes ENGINE_RECORDS once a reader is attached, says 'w', and runs
 * until the parent closes ctl_fd (or kills it). */
static void engine_child(const char *name, int go_fd, int ready_fd, int ctl_fd)
{
	char c;

	if (go_fd >= 0 && read(go_fd, &c, 1) != 1)
		_exit(2);
	xr_arena *a = make_arena(name, XR_POLICY_LOSSLESS, 256 << 10, 4);
	xr_writer *w = xr_test_writer(a);
	xr_server *srv;
	if (xr_server_start(a, NULL, &srv) < 0)
		_exit(3);
	if (write(ready_fd, "r", 1) != 1)
		_exit(4);
	/* A reader starts at the newest record: write once it has started.
	 * Its slot is ACTIVE before SUBSCRIBED goes out, so that says
	 * nothing yet; the lease a lossless reader stores in its page when it
	 * starts, after SUBSCRIBED, does. */
	uint64_t deadline = xr__now_ns() + 10 * SEC;
	for (;;) {
		bool started = false;
		for (uint32_t i = 0; i < a->lay.max_readers; i++)
			started |= xr_load_acquire(&a->peers->slot[i].state) == XR_SLOT_ACTIVE &&
				   xr_load_acquire(&a->peers->slot[i].page->cursors[0].lease) !=
					   XR_NO_LEASE;
		if (started)
			break;
		if (xr__now_ns() > deadline)
			_exit(5);
		sched_yield();
	}
	for (uint64_t i = 0; i < ENGINE_RECORDS; i++)
		if (xr_test_put(w, xr_stamp_len(i, MAXLEN)) < 0)
			_exit(6);
	xr_writer_publish(w);
	if (write(ready_fd, "w", 1) != 1)
		_exit(7);
	while (read(ctl_fd, &c, 1) < 0 && errno == EINTR)
		;
	/* The parent detached its reader before it let go: the slot is free
	 * (the server released it before its OK). */
	deadline = xr__now_ns() + 5 * SEC;
	while (xr__peers_taken(a) != 0) {
		if (xr__now_ns() > deadline)
			_exit(8);
		sched_yield();
	}
	xr_arena_close(a);
	xr_server_stop(srv);
	if (xr_arena_destroy(a) < 0)
		_exit(9);
	_exit(0);
}

static void read_engine_records(xr_reader *r, const char *when)
{
	uint64_t next = 0;
	xr_batch b;
	int n = xr_reader_read(r, ENGINE_RECORDS, ENGINE_RECORDS, 5 * (int64_t)SEC, &b);

	if (n != ENGINE_RECORDS)
		FAILF("%s: read = %d (%s), want %d records", when, n, n < 0 ? xr_strerror(n) : "",
		      ENGINE_RECORDS);
	xr_test_check_batch(&b, &next, true);
	CHECK_RC(xr_batch_release(r, &b), 0);
}

struct killer {
	_Atomic uint32_t *sleep_gen; /* in the reader's page, its own mapping */
	pid_t tid;                   /* the reading thread */
	pid_t engine;
	_Atomic uint64_t kill_ns;
	bool asleep;
};

static void *killer_main(void *p)
{
	struct killer *k = p;
	uint64_t deadline = xr__now_ns() + 5 * SEC;

	/* Once the reader sleeps (in ppoll on its control connection). */
	while (!(k->asleep = asleep(k->sleep_gen, k->tid)) && xr__now_ns() < deadline)
		sched_yield();
	atomic_store(&k->kill_ns, xr__now_ns());
	if (kill(k->engine, SIGKILL) < 0)
		FAILF("kill engine: %s", strerror(errno));
	return NULL;
}

static void engine_killed_then_reattach(void)
{
	char name[64];
	int ready[2], ctl[2], go[2], status;
	pid_t pid;
	char c;

	/* 10. */
	xr_test_name(name, sizeof(name), "ekill");
	CHECK(pipe(ready) == 0 && pipe(ctl) == 0);
	quiesce();
	if ((pid = fork()) == 0) {
		close(ready[0]);
		close(ctl[1]);
		engine_child(name, -1, ready[1], ctl[0]);
	}
	CHECK(pid > 0);
	close(ready[1]);
	close(ctl[0]);
	if (read_within(ready[0], &c, 1, 10000) < 0)
		FAILF("engine died before serving");
	xr_reader *r = attach_ctl(name, "survivor");
	CHECK(xr_reader_fd(r) >= 0);
	if (read_within(ready[0], &c, 1, 10000) < 0)
		FAILF("engine died before writing");
	read_engine_records(r, "first engine");

	struct killer k = {.sleep_gen = &xr__reader_page(r)->sleep_gen, .tid = gettid_(),
			   .engine = pid};
	pthread_t th;
	CHECK_RC(pthread_create(&th, NULL, killer_main, &k), 0);
	xr_batch b;
	int n = xr_reader_read(r, 1, 16, 10 * (int64_t)SEC, &b);
	uint64_t t_end = xr__now_ns();
	pthread_join(th, NULL);
	CHECK(k.asleep);
	CHECK_RC(n, XR_ECLOSED);
	double ms = (double)(t_end - atomic_load(&k.kill_ns)) / 1e6;
	printf("engine_killed: a reader asleep in xr_reader_read saw XR_ECLOSED %.2f ms after "
	       "its engine's SIGKILL\n", ms);
	CHECK(ms < 1000);
	CHECK_RC(xr_reader_read(r, 1, 16, 0, &b), XR_ECLOSED);
	CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
	close(ready[0]);
	close(ctl[1]);

	/* 11. A new engine of the same name, over the dead one's socket and
	 * arena files; told to start just as the reattach begins, so that the
	 * reattach likely has to wait for it. */
	CHECK(pipe(ready) == 0 && pipe(ctl) == 0 && pipe(go) == 0);
	quiesce();
	if ((pid = fork()) == 0) {
		close(ready[0]);
		close(ctl[1]);
		close(go[1]);
		engine_child(name, go[0], ready[1], ctl[0]);
	}
	CHECK(pid > 0);
	close(ready[1]);
	close(ctl[0]);
	close(go[0]);
	CHECK(write(go[1], "g", 1) == 1);
	uint64_t t0 = xr__now_ns();
	int rc = xr_reader_reattach(r, 5 * (int64_t)SEC);
	if (rc < 0)
		FAILF("reattach: %s (%s)", xr_strerror(rc), xr_last_reason());
	double ams = (double)(xr__now_ns() - t0) / 1e6;
	CHECK(xr_reader_fd(r) >= 0);
	if (read_within(ready[0], &c, 1, 10000) < 0 || read_within(ready[0], &c, 1, 10000) < 0)
		FAILF("new engine died before writing");
	read_engine_records(r, "restarted engine");
	xr_reader_stats rs;
	CHECK_RC(xr_reader_stats_get(r, &rs), 0);
	CHECK_EQ(rs.written, ENGINE_RECORDS);
	CHECK_EQ(rs.read, ENGINE_RECORDS);
	printf("reattach: back on the restarted engine after %.1f ms; read its %d records\n", ams,
	       ENGINE_RECORDS);
	xr_reader_detach(r);
	close(ctl[1]); /* the engine closes, stops, destroys and exits */
	CHECK(waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		FAILF("restarted engine: status 0x%x", status);
	close(ready[0]);
	close(go[1]);
}

/* ======================================================================
 * main
 * ====================================================================== */

static char run_dir[64];
static pid_t main_pid;

static void remove_run_dir(void)
{
	if (getpid() == main_pid && run_dir[0])
		rmdir(run_dir);
}

/* A run directory of this test's own, for the whole run (it overrides
 * ctest's): root's (or this user's), 0755, so that peer_creds' uid 65534
 * can reach its sockets and trusts it. */
static void make_run_dir(void)
{
	snprintf(run_dir, sizeof(run_dir), "/tmp/xrctl.XXXXXX");
	if (!mkdtemp(run_dir))
		FAILF("mkdtemp: %s", strerror(errno));
	CHECK(chmod(run_dir, 0755) == 0);
	CHECK(setenv("XRING_RUN_DIR", run_dir, 1) == 0);
	main_pid = getpid();
	atexit(remove_run_dir);
}

/*
 * per_poll_work. The control thread's work in one poll is bounded: one
 * message read per connection it polled, one accept; and it never spins,
 * every poll that returned before its timeout having acted on something
 * (a message, a hangup, a connection, an idle close). Counted by the
 * thread itself (xr__server_work) while peers flood it: connections that
 * send a burst of garbage and hang up, attached connections that send
 * requests past their rate, and attached readers that sit idle.
 */
struct flooder {
	const char *path;
	bool attach; /* attach, then requests past the rate; else garbage */
	atomic_bool *stop;
	uint64_t sent, conns;
};

static void *flooder_main(void *p)
{
	struct flooder *f = p;
	static const uint8_t junk[64] = {0xde, 0xad, 0xbe, 0xef};

	while (!atomic_load(f->stop)) {
		int s = raw_connect(f->path);
		f->conns++;
		CHECK(fcntl(s, F_SETFL, O_NONBLOCK) == 0);
		/* Its replies (and the arena fd) are never read: they go with
		 * the socket. */
		if (f->attach && msg_send(s, XR_CTL_ATTACH, 1, NULL, 0, NULL, 0) == 0)
			f->sent++;
		for (int i = 0; i < 256; i++) {
			int rc = f->attach ? msg_send(s, XR_CTL_DETACH + 100, 2 + (uint32_t)i, NULL, 0,
						      NULL, 0)
					   : raw_send(s, junk, sizeof(junk), NULL, 0);
			if (rc < 0)
				break; /* full, or hung up on */
			f->sent++;
		}
		close(s);
	}
	return NULL;
}

static void per_poll_work(void)
{
	char name[64];
	xr_server_opts o = {.max_requests_per_uid = 100000};
	struct xr_server_work w0, w;
	enum { FLOODERS = 4, IDLE = 16 };
	struct flooder f[FLOODERS];
	pthread_t th[FLOODERS];
	xr_reader *idle[IDLE];

	xr_test_name(name, sizeof(name), "perpoll");
	xr_arena *a = make_arena(name, XR_POLICY_LOSSY, 64 << 10, 32);
	quiesce();
	xr_server *srv = serve(a, &o);
	for (int i = 0; i < IDLE; i++)
		idle[i] = attach_ctl(name, "idle");
	xr__server_work(srv, &w0);
	atomic_bool stop = false;
	for (int i = 0; i < FLOODERS; i++) {
		f[i] = (struct flooder){.path = xr_server_path(srv), .attach = i % 2, .stop = &stop};
		CHECK(pthread_create(&th[i], NULL, flooder_main, &f[i]) == 0);
	}
	/* Until the thread has read 2,000 of their messages (a second here;
	 * longer under the sanitizers), 30 s at most. */
	uint64_t t0 = xr__now_ns();
	do {
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL); /* polling the counts: nothing to wait on */
		xr__server_work(srv, &w);
	} while (w.recvs - w0.recvs < 2000 && xr__now_ns() - t0 < 30 * SEC);
	atomic_store(&stop, true);
	double secs = (double)(xr__now_ns() - t0) / 1e9;
	uint64_t sent = 0, conns = 0;
	for (int i = 0; i < FLOODERS; i++) {
		pthread_join(th[i], NULL);
		sent += f[i].sent;
		conns += f[i].conns;
	}
	xr__server_work(srv, &w);
	for (int i = 0; i < IDLE; i++)
		xr_reader_detach(idle[i]);
	unserve(a, srv);
	uint64_t polls = w.polls - w0.polls, recvs = w.recvs - w0.recvs;
	uint64_t idle_polls = w.idle - w0.idle, timeouts = w.timeouts - w0.timeouts;
	printf("per_poll_work: %llu connections sent %llu messages in %.1f s beside %d idle readers: "
	       "%llu polls (%llu timeouts, %llu that acted on nothing), %llu messages read, at "
	       "most %u in a poll, %llu accepts, at most %u in a poll\n",
	       (unsigned long long)conns, (unsigned long long)sent, secs, IDLE,
	       (unsigned long long)polls, (unsigned long long)timeouts,
	       (unsigned long long)idle_polls, (unsigned long long)recvs, w.max_recvs,
	       (unsigned long long)(w.accepts - w0.accepts), w.max_accepts);
	if (w.max_recvs_over)
		FAILF("a poll read %u messages more than the connections it polled",
		      w.max_recvs_over);
	CHECK(w.max_accepts <= 1);
	/* A poll that finds something it cannot act on would find it again
	 * at once: a spin would be most of the polls. */
	if (idle_polls > polls / 100 + 10)
		FAILF("%llu of %llu polls acted on nothing: the control thread spins",
		      (unsigned long long)idle_polls, (unsigned long long)polls);
	CHECK(recvs >= 2000); /* the flood reached the thread */
}

static bool kernel_has_passrights(void)
{
	int sv[2], zero = 0;
	bool ok;

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	ok = setsockopt(sv[0], SOL_SOCKET, SO_PASSRIGHTS, &zero, sizeof(zero)) == 0;
	close(sv[0]);
	close(sv[1]);
	return ok;
}

int main(void)
{
	uint64_t t0 = xr__now_ns();

	signal(SIGPIPE, SIG_IGN);
	alarm(100);
	/* Lines in order with the FAIL messages on stderr, and nothing
	 * buffered for a forked child to print again. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	make_run_dir();
	kernel_passrights = kernel_has_passrights();
	printf("run dir %s; SO_PASSRIGHTS %s\n", run_dir,
	       kernel_passrights ? "known to this kernel" : "not known to this kernel");
	/* Every fork below happens while this process runs no other thread
	 * (quiesce()). */
	attach_ok();
	peer_creds();
	max_readers();
	detach_frees();
	malformed();
	conn_table_full();
	per_poll_work();
	idle_timeout();
	reader_killed();
	held_back();
	named_late();
	named_in_two_places();
	close_leaves_anothers_name();
	engine_closes();
	engine_killed_then_reattach();
	/* Every server removed its socket. */
	CHECK_EQ(count_dir(run_dir), 0);
	printf("control socket: passed in %.2f s\n", (double)(xr__now_ns() - t0) / 1e9);
	return 0;
}
