/* SPDX-License-Identifier: MIT */
/*
 * An admitted peer may write its own cursors and nothing else; its slot is
 * the engine's to give and take, keyed by its connection (defects 2, 3, 5
 * and 6 of the trust-boundary issue, played by hand):
 *
 *   arena_is_read_only   (root only) a peer of another uid gets the arena
 *                    O_RDONLY: it can map it neither writable nor reopen it
 *                    for writing through /proc; its own page it can write,
 *                    but not shrink or grow (sealed).
 *   engine_keeps_its_own_layout   the header scribbled over (stream, ring and
 *                    reader counts, ring offsets, capacities): the engine
 *                    writes, serves and subscribes by its private copy and
 *                    does not crash; readers refuse the scribbled arena
 *                    (XR_ENOTARENA), and attach again once it is whole.
 *   dead_connection_leases_ignored   a reader hangs up but lives on, writing a
 *                    lease at head into its page for ever (formerly: a ghost
 *                    slot, active, never reaped, holding a lossless ring for
 *                    good): its slot is freed at the hangup, and four laps of
 *                    the ring go through without a wait.
 *   slots_by_connection  (root only) two readers from outside the engine's
 *                    PID namespace, whom SO_PEERCRED shows as pid 0 (formerly:
 *                    given the same slot, sharing leases): different slots,
 *                    each reads every record. Then 300 hostile sessions
 *                    (hangups mid-subscribe, garbage): no descriptor leaks.
 *   limits_per_uid   (root only) one uid holding its --max-conns-per-uid is
 *                    refused a connection more, naming the limit, while
 *                    another uid attaches; --max-readers-per-uid and the
 *                    per-uid request rate are enforced over all of a uid's
 *                    connections, naming the limits.
 *   own_uid_keeps_its_share  (root only) with the default limits, other uids
 *                    hold a quarter of the reader slots each and three
 *                    quarters together; past that they are refused by name,
 *                    and the engine's own uid still attaches (formerly: one
 *                    admitted uid could take every slot and connection).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "client/reader_priv.h"
#include "peer_helpers.h"
#include "shm/arena_priv.h"
#include "shm/peers.h"
#include "util/atomics.h"

/* An arena of one opaque stream, served with o; its name into name (made
 * from tag, unless tag is NULL: name is given). */
/* This process with no server running: its main thread, and TSan's. */
static const int main_threads = 1 + XR_TEST_TSAN;

static xr_arena *served(const char *tag, char name[64], xr_policy policy,
			const xr_server_opts *o, xr_server **srv)
{
	xr_stream_spec ss = {.policy = policy, .ring_bytes = 256u << 10, .frame_align = 64};
	xr_arena_spec spec = {.name = name, .streams = &ss, .n_streams = 1,
			      .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE,
			      .max_readers = 16};
	xr_arena *a;

	if (tag)
		xr_test_name(name, 64, tag);
	CHECK_RC(xr_arena_create(&spec, &a), 0);
	int rc = xr_server_start(a, o, srv);
	if (rc < 0)
		FAILF("xr_server_start: %s (%s)", xr_strerror(rc), xr_server_last_note());
	return a;
}

static void unserve(xr_arena *a, xr_server *srv)
{
	xr_arena_close(a);
	xr_server_stop(srv);
	CHECK_RC(xr_arena_destroy(a), 0);
}

/* ---- arena_is_read_only ---- */

/* What a peer of another uid is given: the socket's path, and the inode
 * and slot of the page of a reader of the engine's uid. */
struct nobody_args {
	const char *path;
	ino_t root_pages;
	uint32_t root_slot;
};

static int nobody_writes(void *p)
{
	const struct nobody_args *na = p;
	char proc[64];
	int afd, pfd, s = peer_connect(na->path);

	if (s < 0)
		return 10;
	uint32_t slot = peer_subscribe(s, 0, NULL, &afd, &pfd);
	if ((fcntl(afd, F_GETFL) & O_ACCMODE) != O_RDONLY)
		return 11; /* handed over writable */
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, afd, 0);
	if (m != MAP_FAILED || errno != EACCES)
		return 12; /* mapped writable */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", afd);
	int rw = open(proc, O_RDWR);
	if (rw >= 0 || errno != EACCES)
		return 13; /* reopened writable */
	/* Its own page: writable, in a memfd of one size for good. */
	struct stat st;
	struct xr_peer_page *pg = mmap(NULL, XR_PEER_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
				       pfd, (off_t)slot * XR_PEER_PAGE_SIZE);
	if (pg == MAP_FAILED || fstat(pfd, &st) < 0)
		return 14;
	xr_store_relaxed(&pg->cursors[0].pos, 12345);
	if (ftruncate(pfd, 0) == 0 || ftruncate(pfd, st.st_size + XR_PEER_PAGE_SIZE) == 0)
		return 15; /* could shrink (the engine's loads would fault) or grow */
	/* Not the memfd of the other reader's page: what it writes at the
	 * other reader's offset lands in its own memfd. */
	if (st.st_ino == na->root_pages)
		return 16;
	pg = mmap(NULL, XR_PEER_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, pfd,
		  (off_t)na->root_slot * XR_PEER_PAGE_SIZE);
	if (pg == MAP_FAILED)
		return 17;
	xr_store_relaxed(&pg->cursors[0].pos, 666);
	return 0;
}

static void arena_is_read_only(void)
{
	char name[64];
	uint32_t uid = NOBODY;
	xr_server_opts o = {.allow_uid = &uid, .n_allow_uid = 1};
	xr_server *srv;
	xr_arena *a = served("readonly", name, XR_POLICY_LOSSLESS, &o, &srv);
	struct nobody_args na = {.path = xr_server_path(srv)};
	struct stat st;
	int afd, pfd, s = peer_connect(na.path);

	/* A reader of the engine's uid, first. */
	CHECK(s >= 0);
	na.root_slot = peer_subscribe(s, 0, NULL, &afd, &pfd);
	CHECK(fstat(pfd, &st) == 0);
	na.root_pages = st.st_ino;
	struct xr_peer_page *mine = mmap(NULL, XR_PEER_PAGE_SIZE, PROT_READ, MAP_SHARED, pfd,
					 (off_t)na.root_slot * XR_PEER_PAGE_SIZE);
	CHECK(mine != MAP_FAILED);
	int rc = run_as(NOBODY, NOBODY, nobody_writes, &na);
	if (rc)
		FAILF("a peer of uid %u got write access to what is not its own (check %d)", NOBODY,
		      rc);
	CHECK_EQ(xr_load_relaxed(&mine->cursors[0].pos), 0);
	CHECK_EQ(xr_load_relaxed(&a->peers->slot[na.root_slot].page->cursors[0].pos), 0);

	/* A second reader of the same uid, another peer: a memfd of its own
	 * too, and what it writes at the first one's offset stays there. */
	int afd2, pfd2, s2 = peer_connect(na.path);
	CHECK(s2 >= 0);
	uint32_t slot2 = peer_subscribe(s2, 0, NULL, &afd2, &pfd2);
	CHECK(slot2 != na.root_slot);
	struct stat st2;
	CHECK(fstat(pfd2, &st2) == 0 && st2.st_ino != st.st_ino);
	struct xr_peer_page *theirs = mmap(NULL, XR_PEER_PAGE_SIZE, PROT_READ | PROT_WRITE,
					   MAP_SHARED, pfd2,
					   (off_t)na.root_slot * XR_PEER_PAGE_SIZE);
	CHECK(theirs != MAP_FAILED);
	xr_store_relaxed(&theirs->cursors[0].pos, 777);
	CHECK_EQ(xr_load_relaxed(&mine->cursors[0].pos), 0);
	CHECK_EQ(xr_load_relaxed(&a->peers->slot[na.root_slot].page->cursors[0].pos), 0);
	munmap(theirs, XR_PEER_PAGE_SIZE);
	close(afd2);
	close(pfd2);
	close(s2);

	munmap(mine, XR_PEER_PAGE_SIZE);
	close(afd);
	close(pfd);
	close(s);
	unserve(a, srv);
	printf("arena_is_read_only: uid %u: arena fd O_RDONLY, no writable mapping, no writable "
	       "reopen; its page writable and sealed, in a memfd of its own; so has another "
	       "reader of uid %u\n", NOBODY, (unsigned)getuid());
}

/* ---- engine_keeps_its_own_layout ---- */

static void engine_keeps_its_own_layout(void)
{
	char name[64];
	xr_server *srv;
	xr_arena *a = served("scribble", name, XR_POLICY_LOSSLESS, NULL, &srv);
	xr_writer *w = xr_test_writer(a);
	struct xr_arena_hdr saved = *a->hdr;
	xr_reader *r;
	int afd, pfd;

	/* What a peer with write access to the header would write. */
	a->hdr->n_streams = 0x7fffffff;
	a->hdr->n_rings = 1000;
	a->hdr->max_readers = 100000;
	a->hdr->streams[0].first_ring = 31;
	a->hdr->streams[0].n_rings = 1000;
	a->hdr->rings[0].capacity = 1;
	a->hdr->rings[0].data_off = 1ull << 60;
	a->hdr->rings[0].frame_align = 0;

	/* The engine goes on by its own copy: writes, wraps, serves. */
	int s = peer_connect(xr_server_path(srv));
	CHECK(s >= 0);
	peer_subscribe(s, XR_CTL_SUB_WAKE, NULL, &afd, &pfd);
	close(afd);
	close(pfd);
	close(s);
	for (int i = 0; i < 20000; i++) {
		int rc = xr_test_put(w, 100);
		if (rc == -EAGAIN) {
			CHECK_RC(xr_writer_wait(w, 100, 5 * SEC), 0);
			rc = xr_test_put(w, 100);
		}
		CHECK_RC(rc, 0);
	}
	xr_writer_publish(w);
	/* A reader refuses the arena as it is now... */
	CHECK_RC(xr_reader_attach(name, NULL, &r), XR_ENOTARENA);
	/* ...and takes it once it is whole again. */
	memcpy(a->hdr, &saved, offsetof(struct xr_arena_hdr, state));
	a->hdr->rings[0].capacity = saved.rings[0].capacity;
	a->hdr->rings[0].data_off = saved.rings[0].data_off;
	a->hdr->rings[0].frame_align = saved.rings[0].frame_align;
	a->hdr->streams[0] = saved.streams[0];
	CHECK_RC(xr_reader_attach(name, NULL, &r), 0);
	CHECK_RC(xr_test_put(w, 100), 0);
	xr_writer_publish(w);
	xr_batch b;
	CHECK_RC(xr_reader_read(r, 1, 10, SEC, &b), 1);
	CHECK_RC(xr_batch_release(r, &b), 0);
	xr_reader_detach(r);
	unserve(a, srv);
	printf("engine_keeps_its_own_layout: 20000 records written and a peer served under a "
	       "scribbled header; readers refused it, then read once it was whole\n");
}

/* ---- dead_connection_leases_ignored ---- */

static void ghost(const char *name, int ready_fd, int stop_fd)
{
	xr_reader_opts o = {.policy = XR_POLICY_LOSSLESS, .label = "ghost"};
	xr_reader *r;
	xr_batch b;

	if (xr_reader_attach(name, &o, &r) < 0 || write(ready_fd, "a", 1) != 1)
		_exit(2);
	int n = xr_reader_read(r, 1, 1, 5 * SEC, &b);
	if (n != 1) {
		fprintf(stderr, "ghost: read %d (%s)\n", n, xr_strerror(n));
		_exit(3);
	}
	struct xr_peer_page *pg = xr__reader_page(r);
	uint64_t at = xr_load_relaxed(&pg->cursors[0].pos);
	/* Hang up, but live on, holding the page and the read-only arena. */
	shutdown(xr__reader_sock(r), SHUT_RDWR);
	if (write(ready_fd, "g", 1) != 1)
		_exit(4);
	/* A lease at the record after the one it read: honoured, it would
	 * stop the writer one lap on. */
	struct pollfd pf = {.fd = stop_fd, .events = POLLIN};
	while (poll(&pf, 1, 0) == 0)
		xr_store_sc(&pg->cursors[0].lease, at);
	_exit(0);
}

static void dead_connection_leases_ignored(void)
{
	char name[64];
	int ready[2], stop[2];
	xr_server *srv;
	xr_arena *a = served("ghost", name, XR_POLICY_LOSSLESS, NULL, &srv);
	xr_writer *w = xr_test_writer(a);

	CHECK(pipe(ready) == 0 && pipe(stop) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		ghost(name, ready[1], stop[0]);
	char c;
	close(ready[1]);
	CHECK(read(ready[0], &c, 1) == 1 && c == 'a'); /* attached */
	CHECK_RC(xr_test_put(w, 100), 0);
	xr_writer_publish(w);
	if (read(ready[0], &c, 1) != 1) {
		int st;
		waitpid(pid, &st, 0);
		FAILF("the ghost reader failed before hanging up (status %#x)", st);
	}
	/* The hangup frees the slot, whatever the page says from now on. */
	CHECK(WAIT_UNTIL(xr__peers_taken(a) == 0, 5000));
	uint64_t cap = a->lay.rings[0].capacity;
	for (uint64_t i = 0; i < 4 * cap / 1024; i++)
		CHECK_RC(xr_test_put(w, 1000), 0); /* never -EAGAIN: nobody may hold it */
	xr_writer_publish(w);
	CHECK(write(stop[1], "s", 1) == 1);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	unserve(a, srv);
	printf("dead_connection_leases_ignored: a reader that hung up and wrote leases on: slot "
	       "freed, 4 laps written without a wait\n");
}

/* ---- slots_by_connection ---- */

/* The engine, in a PID namespace of its own (as pid 1): N records to two
 * lossless readers outside it. */
static void ns_engine(char name[64], int ready_fd, int go_fd, uint64_t n)
{
	char c;
	xr_server *srv;
	xr_arena *a = served(NULL, name, XR_POLICY_LOSSLESS, NULL, &srv);
	xr_writer *w = xr_test_writer(a);

	if (write(ready_fd, name, strlen(name) + 1) < 0 || read(go_fd, &c, 1) != 1)
		_exit(2);
	for (uint64_t i = 0; i < n; i++) {
		int rc = xr_test_put(w, xr_stamp_len(i, 400));
		if (rc == -EAGAIN) {
			if (xr_writer_wait(w, 400, 10 * SEC) < 0)
				_exit(3);
			rc = xr_test_put(w, xr_stamp_len(i, 400));
		}
		if (rc < 0)
			_exit(4);
		if ((i & 63) == 63)
			xr_writer_publish(w);
	}
	unserve(a, srv);
	_exit(0);
}

static bool pid_namespaces(void)
{
	int ready[2], go[2];
	uint64_t n = 50000;
	char made[64];

	/* Named here: inside its namespace the engine is pid 1. */
	xr_test_name(made, sizeof(made), "pidns");
	CHECK(pipe(ready) == 0 && pipe(go) == 0);
	wait_threads(main_threads); /* the child starts an engine's threads */
	pid_t outer = fork();
	CHECK(outer >= 0);
	if (outer == 0) {
		if (unshare(CLONE_NEWPID) < 0)
			_exit(77);
		pid_t inner = fork();
		if (inner == 0)
			ns_engine(made, ready[1], go[0], n);
		int st;
		_exit(inner > 0 && waitpid(inner, &st, 0) == inner && WIFEXITED(st) ? WEXITSTATUS(st)
										       : 5);
	}
	close(ready[1]);
	char name[64] = "";
	ssize_t got = read(ready[0], name, sizeof(name));
	if (got <= 0) {
		int st;
		CHECK(waitpid(outer, &st, 0) == outer);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
			return false; /* no PID namespaces here */
		FAILF("the engine in its own PID namespace did not start (status %#x)", st);
	}
	xr_reader *r[2];
	for (int i = 0; i < 2; i++)
		CHECK_RC(xr_reader_attach(name, NULL, &r[i]), 0);
	/* SO_PEERCRED cannot name us inside the engine's namespace. */
	CHECK_EQ(xr__reader_info(r[0])->pid, 0);
	CHECK_EQ(xr__reader_info(r[1])->pid, 0);
	CHECK(xr__reader_slot(r[0]) != xr__reader_slot(r[1]));
	CHECK(write(go[1], "g", 1) == 1);
	uint64_t next[2] = {0, 0};
	bool done[2] = {false, false};
	while (!done[0] || !done[1]) {
		for (int i = 0; i < 2; i++) {
			xr_batch b;
			int k = done[i] ? 0 : xr_reader_read(r[i], 1, 256, 0, &b);
			if (k == XR_ECLOSED)
				done[i] = true;
			else if (k < 0)
				FAILF("reader %d: %s", i, xr_strerror(k));
			else if (k > 0) {
				xr_test_check_batch(&b, &next[i], true);
				CHECK_RC(xr_batch_release(r[i], &b), 0);
			}
		}
	}
	CHECK_EQ(next[0], n);
	CHECK_EQ(next[1], n);
	int st;
	CHECK(waitpid(outer, &st, 0) == outer && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	xr_reader_detach(r[0]);
	xr_reader_detach(r[1]);
	close(ready[0]);
	close(go[0]);
	close(go[1]);
	return true;
}

static void no_fd_leaks(void)
{
	char name[64];
	xr_server *srv;
	xr_server_opts o = {.max_requests_per_uid = 1000000};
	xr_arena *a = served("fdleak", name, XR_POLICY_LOSSLESS, &o, &srv);
	const char *path = xr_server_path(srv);
	int afd, pfd, kept = -1, before = count_fds();
	struct xr_peer_page *kept_pg = NULL;
	ino_t last = 0;

	for (int i = 0; i < 300; i++) {
		int s = peer_connect(path);
		CHECK(s >= 0);
		switch (i % 3) {
		case 0: /* subscribed, then gone without a word */ {
			uint32_t slot = peer_subscribe(s, XR_CTL_SUB_WAKE, NULL, &afd, &pfd);
			/* A new memfd each time. The first is kept, mapped,
			 * as a churning peer would keep them all. */
			struct stat st;
			CHECK(fstat(pfd, &st) == 0 && st.st_ino != last);
			last = st.st_ino;
			close(afd);
			if (kept < 0) {
				kept = pfd;
				kept_pg = mmap(NULL, XR_PEER_PAGE_SIZE, PROT_READ, MAP_SHARED, pfd,
					       (off_t)slot * XR_PEER_PAGE_SIZE);
				CHECK(kept_pg != MAP_FAILED);
				CHECK_EQ(xr_load_relaxed(&kept_pg->cursors[0].lease), XR_NO_LEASE);
			} else {
				close(pfd);
			}
			break;
		}
		case 1: /* garbage */
			CHECK(send(s, "garbage!", 8, MSG_NOSIGNAL) == 8);
			break;
		default: /* attached, gone before subscribing */
			CHECK_RC(peer_send(s, XR_CTL_ATTACH, 1, NULL, 0, NULL, 0), 0);
			break;
		}
		close(s);
	}
	/* What the kept memfd still holds of the engine's: nothing. Its page
	 * was punched out at release (reads zeros, no blocks). */
	struct stat st;
	CHECK(WAIT_UNTIL(xr__peers_taken(a) == 0, 5000));
	CHECK(fstat(kept, &st) == 0);
	CHECK_EQ(st.st_blocks, 0);
	CHECK_EQ(xr_load_relaxed(&kept_pg->cursors[0].lease), 0);
	munmap(kept_pg, XR_PEER_PAGE_SIZE);
	close(kept);
	/* The closer closes in the background: wait for it, bounded. */
	CHECK(WAIT_UNTIL(count_fds() <= before && xr__peers_taken(a) == 0, 5000));
	unserve(a, srv);
	printf("slots_by_connection: 300 hostile sessions, a memfd each, descriptors back to %d; "
	       "a page kept mapped holds no block of the engine's\n", before);
}

static void slots_by_connection(void)
{
	if (pid_namespaces())
		printf("slots_by_connection: two readers seen as pid 0 from the engine's PID "
		       "namespace: two slots, every record to each\n");
	else
		printf("slots_by_connection: no PID namespaces here: that part skipped\n");
	no_fd_leaks();
}

/* ---- limits_per_uid ---- */

/* One request on s, the next in its connection's ATTACH, SUBSCRIBE,
 * DETACH, SUBSCRIBE, ... (*slot: -2 not attached, -1 no reader, else the
 * reader's slot). Returns *sent if the uid's request limit refused it,
 * else 0. */
static int spread_request(int s, int *slot, const struct xr_ctl_subscribe *m, int *sent)
{
	struct xr_ctl_detach d = {.slot = (uint32_t)*slot};
	char buf[512];
	int afd;

	CHECK_RC(*slot == -2   ? peer_send(s, XR_CTL_ATTACH, 1, NULL, 0, NULL, 0)
		 : *slot == -1 ? peer_send(s, XR_CTL_SUBSCRIBE, 2, m, sizeof(*m), NULL, 0)
			       : peer_send(s, XR_CTL_DETACH, 3, &d, sizeof(d), NULL, 0),
		 0);
	(*sent)++;
	int n = peer_recv(s, buf, sizeof(buf), &afd, 5000);
	if (afd >= 0)
		close(afd);
	const struct xr_ctl_hdr *h = (const void *)buf;
	CHECK(n >= (int)sizeof(*h));
	if (h->type == XR_CTL_ERROR) {
		const struct xr_ctl_error *e = (const void *)(h + 1);
		CHECK_RC(e->code, -EAGAIN);
		CHECK(strstr(e->reason, "over all its connections"));
		return *sent;
	}
	if (h->type == XR_CTL_SUBSCRIBED)
		*slot = (int)((const struct xr_ctl_subscribed *)(h + 1))->slot;
	else if (h->type == XR_CTL_ATTACHED || h->type == XR_CTL_OK)
		*slot = -1;
	else
		FAILF("reply type 0x%x", h->type);
	return 0;
}

static int nobody_attaches(void *p)
{
	xr_reader *r;

	return xr_reader_attach(p, NULL, &r) == 0 ? 0 : 1;
}

static void limits_per_uid(void)
{
	char name[64], why[XR_CTL_REASON_MAX];
	uint32_t uid = NOBODY;
	xr_server_opts o = {.allow_uid = &uid, .n_allow_uid = 1, .max_conns_per_uid = 4,
			    .max_readers_per_uid = 2, .max_requests_per_uid = 10};
	xr_server *srv;
	xr_arena *a = served("limits", name, XR_POLICY_LOSSY, &o, &srv);
	const char *path = xr_server_path(srv);
	int s[5], afd, pfd;

	/* Connections: four of root's held, the fifth refused by name... */
	for (int i = 0; i < 4; i++)
		CHECK((s[i] = peer_connect(path)) >= 0);
	CHECK_RC(peer_send(s[0], XR_CTL_ATTACH, 9, NULL, 0, NULL, 0), 0);
	CHECK(peer_recv(s[0], why, sizeof(why), &afd, 5000) > 0 && afd >= 0);
	close(afd); /* all four are in the server's table now */
	CHECK((s[4] = peer_connect(path)) >= 0);
	CHECK_RC(peer_error(s[4], why, sizeof(why)), -EBUSY);
	CHECK(strstr(why, "--max-conns-per-uid 4"));
	close(s[4]);
	/* ...while another uid gets in. */
	CHECK_EQ(run_as(NOBODY, NOBODY, nobody_attaches, name), 0);
	for (int i = 0; i < 4; i++)
		close(s[i]);
	CHECK(WAIT_UNTIL(xr__peers_taken(a) == 0, 5000));

	/* Readers: two of root's, the third refused by name. */
	for (int i = 0; i < 3; i++)
		CHECK((s[i] = peer_connect(path)) >= 0);
	for (int i = 0; i < 2; i++) {
		peer_subscribe(s[i], 0, NULL, &afd, &pfd);
		close(afd);
		close(pfd);
	}
	CHECK_RC(peer_send(s[2], XR_CTL_ATTACH, 1, NULL, 0, NULL, 0), 0);
	CHECK(peer_recv(s[2], why, sizeof(why), &afd, 5000) > 0 && afd >= 0);
	close(afd);
	struct xr_ctl_subscribe m = {0};
	strcpy(m.stream, XR_DEFAULT_STREAM);
	CHECK_RC(peer_send(s[2], XR_CTL_SUBSCRIBE, 2, &m, sizeof(m), NULL, 0), 0);
	CHECK_RC(peer_error(s[2], why, sizeof(why)), -EBUSY);
	CHECK(strstr(why, "--max-readers-per-uid 2"));
	for (int i = 0; i < 3; i++)
		close(s[i]);

	/* Requests: within each connection's own rate (16/s, bursts of 32),
	 * over the uid's when spread over four connections (10/s, bursts of
	 * 20). Each connection ATTACHes once, then SUBSCRIBEs and DETACHes in
	 * turn (one reader at a time, under the uid's two). */
	int refused = 0, sent = 0, slot[4] = {-2, -2, -2, -2}; /* -2: not attached */
	for (int i = 0; i < 4; i++)
		CHECK((s[i] = peer_connect(path)) >= 0);
	for (int round = 0; round < 30 && !refused; round++)
		for (int i = 0; i < 4 && !refused; i++)
			do /* a SUBSCRIBE's DETACH follows at once */
				refused = spread_request(s[i], &slot[i], &m, &sent);
			while (slot[i] >= 0 && !refused);
	if (!refused || refused <= 10)
		FAILF("the uid's request limit did not cut in (sent %d, refused at %d): a uid "
		      "may not get more than its rate by spreading requests",
		      sent, refused);
	for (int i = 0; i < 4; i++)
		close(s[i]);
	unserve(a, srv);
	printf("limits_per_uid: connections (4), readers (2) and requests (cut at the %dth, "
	       "spread over 4 connections) limited per uid, by name; another uid served\n",
	       refused);
}

/* ---- the engine's own uid keeps its share ---- */

struct holder {
	const char *path;
	int n;              /* readers to hold */
	int ready_fd, quit_fd;
};

/* Holds h->n readers (as whatever uid it runs as) until told to quit;
 * reports on ready_fd 'k' when all are held, or 'b' with the refusal's
 * text when one is refused (and holds those it got). */
static int hold_readers(void *p)
{
	const struct holder *h = p;
	int socks[16], afd;
	char c;

	for (int i = 0; i < h->n; i++) {
		char buf[512];
		struct xr_ctl_subscribe m = {0};
		socks[i] = peer_connect(h->path);
		if (socks[i] < 0 || peer_send(socks[i], XR_CTL_ATTACH, 1, NULL, 0, NULL, 0) < 0 ||
		    peer_recv(socks[i], buf, sizeof(buf), &afd, 5000) <= 0 || afd < 0)
			return 1;
		close(afd);
		strcpy(m.stream, XR_DEFAULT_STREAM);
		if (peer_send(socks[i], XR_CTL_SUBSCRIBE, 2, &m, sizeof(m), NULL, 0) < 0)
			return 2;
		int n = peer_recv(socks[i], buf, sizeof(buf), &afd, 5000);
		const struct xr_ctl_hdr *hd = (const void *)buf;
		if (afd >= 0)
			close(afd);
		if (n >= (int)sizeof(*hd) && hd->type == XR_CTL_ERROR) {
			const struct xr_ctl_error *e = (const void *)(hd + 1);
			char msg[300];
			int len = snprintf(msg, sizeof(msg), "b%s", e->reason);
			if (write(h->ready_fd, msg, (size_t)len + 1) <= 0)
				return 3;
			return read(h->quit_fd, &c, 1) < 0 ? 5 : 0;
		}
	}
	if (write(h->ready_fd, "k", 2) != 2 || read(h->quit_fd, &c, 1) < 0)
		return 4;
	return 0;
}

static void own_uid_keeps_its_share(void)
{
	char name[64], msg[300];
	uint32_t uids[4] = {NOBODY, NOBODY - 1, NOBODY - 2, NOBODY - 3};
	xr_server_opts o = {.allow_uid = uids, .n_allow_uid = 4};
	xr_server *srv;
	xr_arena *a = served("share", name, XR_POLICY_LOSSY, &o, &srv);
	int ready[2], quit[2];
	pid_t kids[4];

	CHECK(pipe(ready) == 0 && pipe(quit) == 0);
	/* 16 slots: each other uid may hold 4, all of them together 12. */
	for (int i = 0; i < 4; i++) {
		struct holder h = {.path = xr_server_path(srv), .n = i == 0 ? 5 : 4,
				   .ready_fd = ready[1], .quit_fd = quit[0]};
		kids[i] = fork();
		CHECK(kids[i] >= 0);
		if (kids[i] == 0) {
			close(quit[1]); /* EOF on quit is the parent's word */
			if (setgroups(0, NULL) < 0 || setgid(uids[i]) < 0 || setuid(uids[i]) < 0)
				_exit(99);
			_exit(hold_readers(&h));
		}
		CHECK(read(ready[0], msg, sizeof(msg)) > 0);
		if (i == 0) /* the fifth of one uid */
			CHECK(msg[0] == 'b' && strstr(msg, "--max-readers-per-uid 4"));
		else if (i < 3)
			CHECK_EQ(msg[0], 'k');
		else /* the fourth uid: others hold 12 */
			CHECK(msg[0] == 'b' && strstr(msg, "other than the engine's"));
	}
	/* ...and the engine's own uid still gets in. */
	xr_reader *r;
	CHECK_RC(xr_reader_attach(name, NULL, &r), 0);
	xr_reader_detach(r);
	close(quit[1]);
	for (int i = 0; i < 4; i++) {
		int st;
		CHECK(waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	close(ready[0]);
	close(ready[1]);
	close(quit[0]);
	unserve(a, srv);
	printf("own_uid_keeps_its_share: other uids held their quarter each and three quarters "
	       "together, refused by name past that; the engine's uid attached\n");
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0); /* nothing buffered to copy into a fork */
	alarm(120);
	engine_keeps_its_own_layout();
	dead_connection_leases_ignored();
	if (geteuid() != 0) {
		printf("not root: the cases with other uids and namespaces are skipped\n");
		return 77;
	}
	arena_is_read_only();
	slots_by_connection();
	limits_per_uid();
	own_uid_keeps_its_share();
	return 0;
}
