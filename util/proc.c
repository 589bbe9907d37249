/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/atomics.h"
#include "util/proc.h"

/* 0 until the first call, and in a child until its first. Relaxed: each
 * thread stores the same value, and a thread that sees 0 asks the kernel.
 * After fork() the child has one thread, and the handler runs in it before
 * fork() returns there. */
static _Atomic int self_pid;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

static void forget_pid(void)
{
	xr_store_relaxed(&self_pid, 0);
}

static void watch_forks(void)
{
	/* Without the handler the cache would outlive a fork: ask every time. */
	if (pthread_atfork(NULL, NULL, forget_pid) != 0)
		xr_store_relaxed(&self_pid, -1);
}

pid_t xr__self_pid(void)
{
	int p = xr_load_relaxed(&self_pid);

	if (p > 0)
		return p;
	pthread_once(&self_once, watch_forks);
	if (xr_load_relaxed(&self_pid) < 0)
		return getpid();
	p = (int)getpid();
	xr_store_relaxed(&self_pid, p);
	return p;
}

/* Reads the state letter (field 3) and start time (field 22) of
 * /proc/PID/stat. Returns 0, or -1 if the process is gone or unreadable. */
static int proc_stat(pid_t pid, char *state, uint64_t *start)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* comm (field 2) may hold spaces and parentheses: the fields resume
	 * after the last ')', with a space before field 3. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -1;
	*state = p[2];
	p++; /* the space before field 3 */
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return -1;
	*start = strtoull(p + 1, NULL, 10);
	return 0;
}

uint64_t xr__proc_start(pid_t pid)
{
	char state;
	uint64_t start;

	return proc_stat(pid, &state, &start) == 0 ? start : 0;
}

bool xr__proc_alive(pid_t pid, uint64_t start)
{
	char state;
	uint64_t now;

	if (pid <= 0)
		return false;
	if (proc_stat(pid, &state, &now) < 0) {
		/* No /proc entry: trust kill() (a /proc-less sandbox). */
		return !(kill(pid, 0) < 0 && errno == ESRCH);
	}
	/* A zombie has released its mappings: as good as gone. */
	if (state == 'Z' || state == 'X')
		return false;
	return start == 0 || now == start;
}
