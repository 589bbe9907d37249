/* SPDX-License-Identifier: MIT */
/*
 * iceoryx, through its C binding: a publisher and a subscriber of one
 * service per run, a chunk per record, lossless (the publisher waits for a
 * full subscriber queue: ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER with
 * QueueFullPolicy_BLOCK_PRODUCER, queue of 256, no history). The writer
 * loans a chunk, fills it in place and publishes it: zero-copy, as xring.
 * The reader takes each chunk, checks it in place and releases it; blocking,
 * it sleeps in a WaitSet on the subscriber's HAS_DATA state; spinning, it
 * polls iox_sub_take_chunk(). A chunk whose word 0 is PEERS_END ends the
 * stream; the writer then waits until the reader has unsubscribed.
 *
 * iceoryx needs its daemon, RouDi, for discovery and its shared memory: this
 * file starts iox-roudi once, with a mempool config for the run's record
 * sizes (the hard-coded default has no pool for 64 KiB chunks), waits for it
 * by watching its log for "RouDi is ready for clients" (polling the file
 * every millisecond, no fixed sleep), and stops it by its pid at the end or
 * when the benchmark is interrupted. RouDi is not on the data path.
 *
 * iceoryx's names are the machine's, not the run's: one RouDi at a time
 * (its management segment is /dev/shm/iceoryx_mgmt whoever starts it). So
 * a RouDi already running (another bench_peers, or a user's) leaves
 * iceoryx not measured, rather than a second one fighting over the names.
 * A RouDi that had to be killed, or whose clients were, leaves those
 * segments (some 70 MB) and its clients' sockets in /tmp until the next
 * RouDi starts: iox_stop() removes what is left of ours (ours: this uid's,
 * and no other RouDi running).
 *
 * Both sides run in children of their own: the runtime starts threads, and
 * unregisters from RouDi in a destructor that only exit() runs.
 */
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "iceoryx_binding_c/chunk.h"
#include "iceoryx_binding_c/enums.h"
#include "iceoryx_binding_c/log.h"
#include "iceoryx_binding_c/publisher.h"
#include "iceoryx_binding_c/runtime.h"
#include "iceoryx_binding_c/subscriber.h"
#include "iceoryx_binding_c/types.h"
#include "iceoryx_binding_c/wait_set.h"
#include "peers.h"
#include "bench_util.h"

#define IOX_SERVICE "bench_peers"
#define IOX_EVENT "records"
#define IOX_QUEUE 256  /* MAX_SUBSCRIBER_QUEUE_CAPACITY of the Debian build */
#define IOX_CHUNKS 512 /* per mempool: a full queue, loans in flight, spare */

static pid_t roudi_pid = -1;

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static bool on_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[512];

	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
		if (access(buf, X_OK) == 0)
			return true;
		path += n + (path[n] == ':');
	}
	return false;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* A mempool per record size, ascending (RouDi wants them so): the chunk
 * holds iceoryx's chunk header (40 bytes) and the payload. */
static int write_config(const char *file, const uint32_t *sizes, uint32_t n)
{
	uint32_t pool[32];
	FILE *f = fopen(file, "we");

	if (!f)
		return -errno;
	for (uint32_t i = 0; i < n && i < 32; i++)
		pool[i] = (sizes[i] + 128 + 63) & ~63u;
	qsort(pool, n, sizeof(pool[0]), cmp_u32);
	fprintf(f, "[general]\nversion = 1\n\n[[segment]]\n");
	for (uint32_t i = 0; i < n; i++)
		if (i == 0 || pool[i] != pool[i - 1])
			fprintf(f, "\n[[segment.mempool]]\nsize = %u\ncount = %u\n", pool[i],
				IOX_CHUNKS);
	return fclose(f) ? -errno : 0;
}

/* Whether RouDi's log says it is ready; the log's last line into why. */
static bool roudi_ready(const char *log, char *why, size_t len)
{
	char line[512];
	bool ready = false;
	FILE *f = fopen(log, "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "RouDi is ready for clients"))
			ready = true;
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(why, len, "iox-roudi: %s", line);
	}
	fclose(f);
	return ready;
}

/* The pid of an iox-roudi other than ours, or 0. */
static pid_t other_roudi(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		char path[64], comm[32] = "";
		pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
		if (pid <= 0 || pid == roudi_pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strcmp(comm, "iox-roudi\n"))
			found = pid;
		fclose(f);
	}
	closedir(d);
	return found;
}

/* Removes path if it is this uid's and of the kind asked for (lstat: a
 * link is never followed, and someone else's file never removed).
 * Async-signal-safe: lstat(2), geteuid(2), unlink(2). */
static void remove_ours(const char *path, mode_t kind)
{
	struct stat st;

	if (path[0] && lstat(path, &st) == 0 && st.st_uid == geteuid() &&
	    (st.st_mode & S_IFMT) == kind)
		unlink(path);
}

/* The names a RouDi that did not end cleanly leaves, worked out before
 * anything may need them in a signal handler: its segments (the user's is
 * named after the user), and its clients' sockets and locks in /tmp, named
 * after our children (iox_forked()), never matched by a pattern. */
#define IOX_CLIENTS 64
static char user_seg[300];
static char clients[IOX_CLIENTS][2][48]; /* socket, lock */
static unsigned n_clients;

static void iox_forked(const struct run *r, pid_t pid, char side)
{
	char (*c)[48] = clients[n_clients++ % IOX_CLIENTS];

	snprintf(c[0], sizeof(c[0]), "/tmp/bench_peers_%c%d_%u", side, (int)pid, r->tag);
	snprintf(c[1], sizeof(c[1]), "/tmp/bench_peers_%c%d_%u.lock", side, (int)pid, r->tag);
}

static void remove_leftovers(void)
{
	/* Out of a signal handler, a RouDi that started since ours ended may
	 * hold the names now (in one, ours ran until a moment ago and held
	 * them: /proc is not read there, which is not async-signal-safe). */
	if (!peers_in_signal() && other_roudi())
		return;
	remove_ours("/dev/shm/iceoryx_mgmt", S_IFREG);
	remove_ours(user_seg, S_IFREG);
	remove_ours("/tmp/roudi", S_IFSOCK);
	remove_ours("/tmp/roudi.lock", S_IFREG);
	remove_ours("/tmp/iox-unique-roudi.lock", S_IFREG);
	for (unsigned i = 0; i < IOX_CLIENTS; i++) {
		remove_ours(clients[i][0], S_IFSOCK);
		remove_ours(clients[i][1], S_IFREG);
	}
}

static void iox_stop(void)
{
	int st;

	if (roudi_pid <= 0)
		return;
	kill(roudi_pid, SIGTERM);
	for (int i = 0; i < 5000; i++) {
		if (waitpid(roudi_pid, &st, WNOHANG) != 0)
			goto done;
		nap_ms(1);
	}
	kill(roudi_pid, SIGKILL);
	waitpid(roudi_pid, &st, 0);
done:
	roudi_pid = -1;
	remove_leftovers();
}

static int iox_start(const char *dir, const uint32_t *sizes, uint32_t n, char *why, size_t len)
{
	char cfg[256], log[256];
	int rc, st;

	if (!on_path("iox-roudi")) {
		snprintf(why, len, "absent (install Debian package iceoryx: iox-roudi)");
		return -ENOENT;
	}
	struct passwd *pw = getpwuid(geteuid());
	if (pw && !strchr(pw->pw_name, '/'))
		snprintf(user_seg, sizeof(user_seg), "/dev/shm/%s", pw->pw_name);
	/* RouDi opens its lock and socket by name and removes its segments
	 * by name: where another user planted one of them (a link, say), it
	 * would follow it or remove it as this user. */
	static const char *const fixed[] = {"/tmp/roudi.lock", "/tmp/roudi",
					    "/tmp/iox-unique-roudi.lock", "/dev/shm/iceoryx_mgmt"};
	for (size_t i = 0; i <= sizeof(fixed) / sizeof(fixed[0]); i++) {
		const char *p = i < sizeof(fixed) / sizeof(fixed[0]) ? fixed[i] : user_seg;
		struct stat ps;
		if (p[0] && lstat(p, &ps) == 0 && (S_ISLNK(ps.st_mode) || ps.st_uid != geteuid())) {
			snprintf(why, len, "%s is %s: RouDi, run by this user, would follow it or "
				 "remove it; remove it, then run again", p,
				 S_ISLNK(ps.st_mode) ? "a symbolic link" : "another user's");
			return -EBUSY;
		}
	}
	pid_t other = other_roudi();
	if (other) {
		snprintf(why, len,
			 "an iox-roudi is running already (pid %d; another bench_peers?), and "
			 "iceoryx allows one a machine: run again when it has gone",
			 (int)other);
		return -EBUSY;
	}
	snprintf(cfg, sizeof(cfg), "%s/roudi.toml", dir);
	snprintf(log, sizeof(log), "%s/roudi.log", dir);
	rc = write_config(cfg, sizes, n);
	if (rc < 0) {
		snprintf(why, len, "RouDi config: %s", strerror(-rc));
		return rc;
	}
	fflush(NULL);
	roudi_pid = fork();
	if (roudi_pid < 0) {
		rc = -errno;
		snprintf(why, len, "fork: %s", strerror(errno));
		return rc;
	}
	if (roudi_pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		/* Its own process group: a Ctrl-C reaches us, and we stop it;
		 * and should we be killed outright, it goes with us. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("iox-roudi", "iox-roudi", "-c", cfg, "-l", "info", (char *)NULL);
		_exit(127);
	}
	/* Ready when it says so; dead if it exits first; 15 s at most. */
	for (int i = 0; i < 15000; i++) {
		if (roudi_ready(log, why, len)) {
			why[0] = '\0';
			return 0;
		}
		if (waitpid(roudi_pid, &st, WNOHANG) == roudi_pid) {
			roudi_pid = -1;
			/* Another run's RouDi, started in the same moment, won
			 * the names: not measured, as if it had been first. */
			if ((other = other_roudi())) {
				snprintf(why, len,
					 "an iox-roudi started at the same moment (pid %d; another "
					 "bench_peers?), and iceoryx allows one a machine: run again "
					 "when it has gone", (int)other);
				return -EBUSY;
			}
			roudi_ready(log, why, len); /* its last words */
			if (!why[0])
				snprintf(why, len, "iox-roudi exited (status %d)", st);
			return -ECHILD;
		}
		nap_ms(1);
	}
	iox_stop();
	snprintf(why, len, "iox-roudi not ready after 15 s");
	return -ETIMEDOUT;
}

struct iox_state {
	char instance[32];
};

static int iox_prepare(const struct run *r, void **out)
{
	struct iox_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	/* A service of its own per run: nothing of an earlier run connects. */
	snprintf(s->instance, sizeof(s->instance), "run%u", r->tag);
	*out = s;
	return 0;
}

static void iox_read(const struct run *r, void *st, int ready_fd, struct rres *res)
{
	struct iox_state *s = st;
	const bool block = r->mode != M_LAT_SPIN;
	char name[64];
	iox_sub_options_t o;
	iox_sub_storage_t sub_st;
	iox_ws_storage_t ws_st;
	iox_ws_t ws = NULL;
	int32_t ok = 0;

	snprintf(name, sizeof(name), "bench_peers_r%d_%u", (int)getpid(), r->tag);
	iox_set_loglevel(Iceoryx_LogLevel_Warn); /* not a line per runtime on our stderr */
	iox_runtime_init(name);
	iox_sub_options_init(&o);
	o.queueCapacity = IOX_QUEUE;
	o.historyRequest = 0;
	o.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
	o.subscribeOnCreate = true;
	iox_sub_t sub = iox_sub_init(&sub_st, IOX_SERVICE, s->instance, IOX_EVENT, &o);
	if (block) {
		ws = iox_ws_init(&ws_st);
		if (iox_ws_attach_subscriber_state(ws, sub, SubscriberState_HAS_DATA, 0, NULL) !=
		    WaitSetResult_SUCCESS)
			ok = -EIO;
	}
	write_all(ready_fd, &ok, sizeof(ok));
	if (ok < 0) {
		peers_fail(res, ok, "WaitSet attach failed");
		goto out;
	}
	for (;;) {
		const void *p;
		enum iox_ChunkReceiveResult rc = iox_sub_take_chunk(sub, &p);

		if (rc == ChunkReceiveResult_NO_CHUNK_AVAILABLE) {
			if (block) {
				iox_notification_info_t info[1];
				uint64_t missed = 0;
				iox_ws_wait(ws, info, 1, &missed);
			} else {
				peers_relax();
			}
			continue;
		}
		if (rc != ChunkReceiveResult_SUCCESS) {
			peers_fail(res, -EIO, "iox_sub_take_chunk: result %d", (int)rc);
			break;
		}
		/* The C binding of 2.0 does not tell a chunk's payload size:
		 * the check of every word stands for the length check. */
		if (peers_word(p, 0) == PEERS_END) {
			iox_sub_release_chunk(sub, p);
			break;
		}
		take_record(r, p, r->size, res);
		iox_sub_release_chunk(sub, p);
	}
out:
	if (ws) {
		iox_ws_detach_subscriber_state(ws, sub, SubscriberState_HAS_DATA);
		iox_ws_deinit(ws);
	}
	iox_sub_deinit(sub); /* unsubscribes: the writer's cue to go */
}

static void iox_write(const struct run *r, void *st, struct wres *res)
{
	struct iox_state *s = st;
	const bool lat = r->mode != M_TP;
	char name[64];
	iox_pub_options_t o;
	iox_pub_storage_t pub_st;
	uint64_t seq = 0, t0 = 0, rng = 0x2545F4914F6CDD1Dull ^ r->tag;
	uint32_t pend = 0, pend_bytes = 0;
	void *p;

	snprintf(name, sizeof(name), "bench_peers_w%d_%u", (int)getpid(), r->tag);
	iox_set_loglevel(Iceoryx_LogLevel_Warn);
	iox_runtime_init(name);
	iox_pub_options_init(&o);
	o.historyCapacity = 0;
	o.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
	o.offerOnCreate = true;
	iox_pub_t pub = iox_pub_init(&pub_st, IOX_SERVICE, s->instance, IOX_EVENT, &o);

	/* The start barrier's second half: the subscriber is connected
	 * (discovery goes through RouDi, asynchronously). */
	for (int i = 0; !iox_pub_has_subscribers(pub); i++) {
		if (i == 10000) {
			peers_fail(res, -ETIMEDOUT, "no subscriber after 10 s");
			goto out;
		}
		nap_ms(1);
	}
	res->t0 = peers_now();
	const uint64_t stop = res->t0 + r->write_ns;
	for (;;) {
		enum iox_AllocationResult a;

		if (lat) {
			if (seq == r->n)
				break;
			peers_gap(r, &rng);
			t0 = peers_now();
		}
		a = iox_pub_loan_chunk(pub, &p, r->size);
		if (a != AllocationResult_SUCCESS) {
			peers_fail(res, -ENOMEM, "iox_pub_loan_chunk: result %d", (int)a);
			goto out;
		}
		fill_record(p, seq, r->size, t0, lat);
		iox_pub_publish_chunk(pub, p);
		seq++;
		if (!lat && peers_publish_due(r, &pend, &pend_bytes) && peers_now() >= stop)
			break;
	}
	res->t_end = peers_now();
	if (iox_pub_loan_chunk(pub, &p, r->size) != AllocationResult_SUCCESS) {
		peers_fail(res, -ENOMEM, "iox_pub_loan_chunk (end)");
		goto out;
	}
	memset(p, 0xff, 8); /* PEERS_END */
	iox_pub_publish_chunk(pub, p);
	/* Stay until the reader has taken it all and unsubscribed. */
	while (iox_pub_has_subscribers(pub))
		nap_ms(1);
out:
	res->records = seq;
	iox_pub_deinit(pub);
}

static void iox_cleanup(void *st)
{
	free(st);
}

const struct transport peers_iox = {
	.name = "iceoryx",
	.fork_writer = true,
	.start = iox_start,
	.stop = iox_stop,
	.forked = iox_forked,
	.prepare = iox_prepare,
	.read = iox_read,
	.write = iox_write,
	.cleanup = iox_cleanup,
};
