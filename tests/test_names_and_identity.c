/* SPDX-License-Identifier: MIT */
/*
 * Names and identity: what another local user can plant in the places an
 * engine and its readers share (/dev/shm, /dev/hugepages, /tmp), and what
 * each side checks before it trusts a name (defects 8, 9 and 11 of the
 * trust-boundary issue). Root only: the other user is uid 65534.
 *
 *   squatted_name_refused   another user's file, or a FIFO, or a link, under
 *                    the engine's name: the engine refuses the name at once,
 *                    naming what holds it and whose it is; nothing blocks in
 *                    open() (formerly: a FIFO hung the engine and `xring
 *                    info`); a tool opening the name refuses another user's
 *                    file (XR_EUNTRUSTED).
 *   run_dir_checked  a run directory of another user, one anybody may write,
 *                    and a link: the server refuses each, saying why.
 *   reader_refuses_impostor   a server of uid 65534 in its own directory, one
 *                    that listens as 65534 in a trusted directory, and one
 *                    that hands over a file of 65534's: the reader refuses
 *                    each with XR_EUNTRUSTED and a reason naming the uid; told
 *                    to expect uid 65534 (engine_uid), it reads from the
 *                    first (formerly: a reader read whatever answered).
 *   unreachable_socket_reason   a reader that cannot reach the socket's
 *                    directory is told so, with the path (formerly: EACCES
 *                    and an empty reason).
 */
#include <grp.h>
#include <sys/stat.h>

#include "peer_helpers.h"
#include "shm/arena_priv.h"
#include "shm/backing.h"

static xr_arena_spec spec_of(const char *name, xr_stream_spec *ss)
{
	*ss = (xr_stream_spec){.policy = XR_POLICY_LOSSLESS, .ring_bytes = 64u << 10};
	return (xr_arena_spec){.name = name, .streams = ss, .n_streams = 1,
			       .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE};
}

/* ---- squatted_name_refused ---- */

struct squat {
	char path[128];
	int kind; /* 0 FIFO, 1 a file that looks like an arena */
};

static int plant(void *p)
{
	const struct squat *q = p;

	if (q->kind == 0)
		return mkfifo(q->path, 0666) == 0 ? 0 : 1;
	int fd = open(q->path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	struct xr_arena_hdr h = {.magic = XR_MAGIC, .layout_version = XR_LAYOUT_VERSION,
				 .hdr_size = sizeof(h), .fingerprint = xr__layout_fingerprint()};
	h.writer_pid = 1; /* "alive" */
	return fd >= 0 && write(fd, &h, sizeof(h)) == (ssize_t)sizeof(h) ? 0 : 1;
}

/* Creating name is refused at once (no hang: alarm() guards the test)
 * with a note containing want. */
static void refused(const char *name, const char *want)
{
	xr_stream_spec ss;
	xr_arena_spec spec = spec_of(name, &ss);
	xr_arena *a;
	uint64_t t0 = xr__now_ns();

	CHECK_RC(xr_arena_create(&spec, &a), -EEXIST);
	if (!strstr(xr_arena_last_note(), want))
		FAILF("refusal of %s: \"%s\" does not say \"%s\"", name, xr_arena_last_note(), want);
	CHECK(xr__now_ns() - t0 < SEC);
}

static void squatted_name_refused(void)
{
	char name[64], uid_note[64];
	struct squat q;
	struct xr_arena *ro;

	snprintf(uid_note, sizeof(uid_note), "of uid %u", NOBODY);
	for (int kind = 0; kind < 2; kind++) {
		xr_test_name(name, sizeof(name), kind ? "squat-file" : "squat-fifo");
		CHECK_RC(xr__arena_path(q.path, sizeof(q.path), "/dev/shm", name), 0);
		q.kind = kind;
		CHECK_EQ(run_as(NOBODY, NOBODY, plant, &q), 0);
		refused(name, uid_note);
		/* A tool (the engine's own uid) refuses another user's file. */
		CHECK_RC(xr__arena_open(name, 0, -1, &ro), XR_EUNTRUSTED);
		CHECK(unlink(q.path) == 0);
	}
	/* Our own FIFO, and our own link: not regular files, not followed,
	 * not opened for real. */
	xr_test_name(name, sizeof(name), "squat-own");
	CHECK_RC(xr__arena_path(q.path, sizeof(q.path), "/dev/shm", name), 0);
	CHECK(mkfifo(q.path, 0600) == 0);
	refused(name, "not a regular file");
	CHECK_RC(xr__arena_open(name, 0, -1, &ro), XR_ENOTARENA);
	CHECK(unlink(q.path) == 0);
	CHECK(symlink("/etc/passwd", q.path) == 0);
	refused(name, "symbolic link");
	CHECK(unlink(q.path) == 0);
	printf("squatted_name_refused: a FIFO and an arena-like file of uid %u, our own FIFO and "
	       "a link: each refused at once, by what and whose it is\n", NOBODY);
}

/* ---- run_dir_checked ---- */

static void server_refuses_dir(const char *dir, const char *want)
{
	char name[64];
	xr_stream_spec ss;
	xr_test_name(name, sizeof(name), "rundir");
	xr_arena_spec spec = spec_of(name, &ss);
	xr_arena *a;
	xr_server *srv;

	CHECK_RC(setenv("XRING_RUN_DIR", dir, 1), 0);
	CHECK_RC(xr_arena_create(&spec, &a), 0);
	CHECK_RC(xr_server_start(a, NULL, &srv), XR_EUNTRUSTED);
	if (!strstr(xr_server_last_note(), want))
		FAILF("run dir %s: \"%s\" does not say \"%s\"", dir, xr_server_last_note(), want);
	CHECK_RC(xr_arena_destroy(a), 0);
}

static void run_dir_checked(const char *good)
{
	char other[64], open_dir[64], link_dir[64], want[64];

	snprintf(other, sizeof(other), "/tmp/xr-other-%d", (int)getpid());
	snprintf(open_dir, sizeof(open_dir), "/tmp/xr-open-%d", (int)getpid());
	snprintf(link_dir, sizeof(link_dir), "/tmp/xr-link-%d", (int)getpid());
	CHECK(mkdir(other, 0755) == 0 && chown(other, NOBODY, NOBODY) == 0);
	CHECK(mkdir(open_dir, 0755) == 0 && chmod(open_dir, 0777) == 0);
	CHECK(symlink(good, link_dir) == 0);
	snprintf(want, sizeof(want), "belongs to uid %u", NOBODY);
	server_refuses_dir(other, want);
	server_refuses_dir(open_dir, "writable by every user");
	server_refuses_dir(link_dir, "symbolic link");
	rmdir(other);
	rmdir(open_dir);
	unlink(link_dir);
	CHECK_RC(setenv("XRING_RUN_DIR", good, 1), 0);
	printf("run_dir_checked: another user's directory, a world-writable one and a link: "
	       "each refused, saying why\n");
}

/* ---- reader_refuses_impostor ---- */

/* An engine of uid 65534 in a directory of its own, serving root too. */
static int nobody_engine(void *p)
{
	int *pipes = p; /* ready write end, stop read end */
	char dir[64], name[64];
	uint32_t root = 0;
	xr_server_opts o = {.allow_uid = &root, .n_allow_uid = 1};
	xr_stream_spec ss;
	xr_arena *a;
	xr_server *srv;

	snprintf(dir, sizeof(dir), "/tmp/xr-imp-%d", (int)getppid());
	snprintf(name, sizeof(name), "imp-%d", (int)getppid());
	if (mkdir(dir, 0755) < 0 || setenv("XRING_RUN_DIR", dir, 1) < 0)
		return 1;
	xr_arena_spec spec = spec_of(name, &ss);
	if (xr_arena_create(&spec, &a) < 0 || xr_server_start(a, &o, &srv) < 0)
		return 2;
	xr_writer *w;
	xr_arena_writer(a, 0, 0, &w);
	if (write(pipes[0], "r", 1) != 1)
		return 3;
	char c;
	if (read(pipes[1], &c, 1) != 1) /* the reader attached: write one */
		return 4;
	if (xr_test_put(w, 100) < 0)
		return 5;
	xr_writer_publish(w);
	if (read(pipes[1], &c, 1) < 0)
		return 6;
	xr_arena_close(a);
	xr_server_stop(srv);
	xr_arena_destroy(a);
	rmdir(dir);
	return 0;
}

/* A server at path that is not an engine: it listens (after binding as
 * root) as uid 65534 (listen_as_nobody), or listens as root and hands over
 * a file of 65534's. Serves one ATTACH. */
static void fake_server(const char *path, bool listen_as_nobody, int ready_fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	char file[64];

	strcpy(sa.sun_path, path);
	unlink(path);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0)
		_exit(2);
	if (!listen_as_nobody && listen(l, 4) < 0)
		_exit(3);
	snprintf(file, sizeof(file), "/tmp/xr-fake-%d", (int)getpid());
	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
		_exit(4);
	if (listen_as_nobody && listen(l, 4) < 0)
		_exit(5);
	int f = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (f < 0 || ftruncate(f, 1 << 20) < 0 || write(ready_fd, "f", 1) != 1)
		_exit(6);
	int s = accept(l, NULL, NULL);
	char buf[512];
	if (s >= 0 && recv(s, buf, sizeof(buf), 0) > 0) {
		struct xr_ctl_attached at = {.layout_version = XR_LAYOUT_VERSION,
					     .fingerprint = xr__layout_fingerprint(),
					     .max_readers = 1};
		peer_send(s, XR_CTL_ATTACHED, ((struct xr_ctl_hdr *)buf)->id, &at, sizeof(at), &f, 1);
		recv(s, buf, sizeof(buf), 0); /* until the reader hangs up */
	}
	unlink(file);
	_exit(0);
}

static void impostor_in(const char *dir, bool listen_as_nobody, const char *want)
{
	char name[64], path[128];
	int ready[2];
	xr_reader *r;

	xr_test_name(name, sizeof(name), listen_as_nobody ? "imp-listen" : "imp-file");
	snprintf(path, sizeof(path), "%s/%s.sock", dir, name);
	CHECK(pipe(ready) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		fake_server(path, listen_as_nobody, ready[1]);
	char c;
	CHECK(read(ready[0], &c, 1) == 1);
	CHECK_RC(xr_reader_attach(name, NULL, &r), XR_EUNTRUSTED);
	if (!strstr(xr_last_reason(), want))
		FAILF("impostor: \"%s\" does not say \"%s\"", xr_last_reason(), want);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	unlink(path);
	close(ready[0]);
	close(ready[1]);
}

static void reader_refuses_impostor(const char *good)
{
	int ready[2], stop[2];
	char dir[64], name[64], want[64];
	xr_reader *r;

	/* 1. An engine of 65534's, in its own directory. */
	CHECK(pipe(ready) == 0 && pipe(stop) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int p[2] = {ready[1], stop[0]};
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(99);
		_exit(nobody_engine(p));
	}
	char c;
	CHECK(read(ready[0], &c, 1) == 1);
	snprintf(dir, sizeof(dir), "/tmp/xr-imp-%d", (int)getpid());
	snprintf(name, sizeof(name), "imp-%d", (int)getpid());
	CHECK_RC(setenv("XRING_RUN_DIR", dir, 1), 0);
	CHECK_RC(xr_reader_attach(name, NULL, &r), XR_EUNTRUSTED);
	snprintf(want, sizeof(want), "belongs to uid %u", NOBODY);
	if (!strstr(xr_last_reason(), want))
		FAILF("engine of uid %u: \"%s\" does not say \"%s\"", NOBODY, xr_last_reason(), want);
	/* Expected, it is trusted: its records are read. */
	xr_reader_opts o = {.engine_uid = NOBODY};
	CHECK_RC(xr_reader_attach(name, &o, &r), 0);
	CHECK(write(stop[1], "a", 1) == 1);
	xr_batch b;
	CHECK_RC(xr_reader_read(r, 1, 1, 5 * SEC, &b), 1);
	CHECK_RC(xr_batch_release(r, &b), 0);
	CHECK(write(stop[1], "s", 1) == 1);
	CHECK_RC(xr_reader_read(r, 1, 1, 5 * SEC, &b), XR_ECLOSED);
	xr_reader_detach(r);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_RC(setenv("XRING_RUN_DIR", good, 1), 0);

	/* 2. In a trusted directory, a socket that listens as 65534; 3. one
	 * that hands over a file of 65534's. */
	snprintf(want, sizeof(want), "served by uid %u", NOBODY);
	impostor_in(good, true, want);
	impostor_in(good, false, "not its own arena file");
	printf("reader_refuses_impostor: an engine of uid %u (read once expected), a socket "
	       "listening as %u, and a foreign file handed over: each refused by name\n",
	       NOBODY, NOBODY);
}

/* ---- unreachable_socket_reason ---- */

static int nobody_reaches(void *p)
{
	xr_reader *r;
	int rc = xr_reader_attach(p, NULL, &r);

	if (rc != -EACCES)
		return 1;
	const char *dir = getenv("XRING_RUN_DIR");
	return strstr(xr_last_reason(), dir) && strstr(xr_last_reason(), "cannot reach") ? 0 : 2;
}

static void unreachable_socket_reason(const char *good)
{
	char dir[64], name[64];
	xr_stream_spec ss;
	xr_arena *a;
	xr_server *srv;

	snprintf(dir, sizeof(dir), "/tmp/xr-priv-%d", (int)getpid());
	CHECK(mkdir(dir, 0700) == 0);
	CHECK_RC(setenv("XRING_RUN_DIR", dir, 1), 0);
	xr_test_name(name, sizeof(name), "unreach");
	xr_arena_spec spec = spec_of(name, &ss);
	uint32_t uid = NOBODY;
	xr_server_opts o = {.allow_uid = &uid, .n_allow_uid = 1};
	CHECK_RC(xr_arena_create(&spec, &a), 0);
	CHECK_RC(xr_server_start(a, &o, &srv), 0);
	int st = run_as(NOBODY, NOBODY, nobody_reaches, name);
	if (st)
		FAILF("a reader that cannot reach %s was not told so with the path (check %d)", dir,
		      st);
	xr_arena_close(a);
	xr_server_stop(srv);
	CHECK_RC(xr_arena_destroy(a), 0);
	rmdir(dir);
	CHECK_RC(setenv("XRING_RUN_DIR", good, 1), 0);
	printf("unreachable_socket_reason: uid %u told it cannot reach %s\n", NOBODY, dir);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0); /* nothing buffered to copy into a fork */
	alarm(60);
	if (geteuid() != 0) {
		printf("not root: no other uid to play\n");
		return 77;
	}
	/* A run directory uid 65534 can enter, whatever ctest gave us. */
	char good[64];
	snprintf(good, sizeof(good), "/tmp/xr-names-%d", (int)getpid());
	CHECK(mkdir(good, 0755) == 0);
	CHECK_RC(setenv("XRING_RUN_DIR", good, 1), 0);

	squatted_name_refused();
	run_dir_checked(good);
	reader_refuses_impostor(good);
	unreachable_socket_reason(good);
	rmdir(good);
	return 0;
}
