/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/atomics.h"
#include "util/proc.h"

/*
 * The cached pid lives in a page of its own marked MADV_WIPEONFORK: the
 * kernel hands a child of any fork (fork(), _Fork(), a raw fork or clone
 * system call without CLONE_VM, none of which need run atfork handlers) a
 * zeroed copy, so the child finds 0 and asks the kernel. 0 until the first
 * call too. Relaxed: each thread stores the same value, and a thread that
 * sees 0 asks the kernel. Where the page cannot be had (a kernel before
 * 4.14, no memory), `cache` stays NULL and every call asks the kernel.
 * A child made with CLONE_VM shares the parent's memory, this page
 * included, and sees its parent's pid: such a child (vfork's) may not call
 * into xring before it execs anyway.
 */
static _Atomic int *cache;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void make_cache(void)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	if (p == MAP_FAILED)
		return;
	if (madvise(p, (size_t)page, MADV_WIPEONFORK) < 0) {
		munmap(p, (size_t)page);
		return;
	}
	cache = p;
}

pid_t xr__self_pid(void)
{
	pthread_once(&cache_once, make_cache);
	if (!cache)
		return getpid();
	int p = xr_load_relaxed(cache);
	if (p > 0)
		return p;
	p = (int)getpid();
	xr_store_relaxed(cache, p);
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
