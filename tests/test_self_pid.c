/* SPDX-License-Identifier: MIT */
/*
 * xr__self_pid() (util/proc.c), the pid the client's handles compare with
 * their opener's to refuse a forked child: right in the process, and right
 * in a child of every kind of fork that copies the address space: fork(),
 * _Fork() and a raw fork system call, the last two of which run no atfork
 * handler (a cache refreshed by one alone let such a child use its
 * parent's table, agent and games handles: the red team of 2026-12-07).
 */
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ring_helpers.h"
#include "util/proc.h"

/* In the child: its own pid, twice (the first call fills the cache). */
static int child_sees_itself(void)
{
	return xr__self_pid() == getpid() && xr__self_pid() == getpid() ? 0 : 1;
}

static void check_child(pid_t pid, const char *how)
{
	int st;

	if (pid < 0)
		FAILF("%s: %s", how, strerror(errno));
	CHECK(waitpid(pid, &st, 0) == pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAILF("%s: the child's xr__self_pid() was not its own pid", how);
}

int main(void)
{
	pid_t me = getpid(), pid;

	CHECK_EQ(xr__self_pid(), me);
	CHECK_EQ(xr__self_pid(), me); /* from the cache */

	if ((pid = fork()) == 0)
		_exit(child_sees_itself());
	check_child(pid, "fork()");
	if ((pid = _Fork()) == 0)
		_exit(child_sees_itself());
	check_child(pid, "_Fork()");
	if ((pid = (pid_t)syscall(SYS_fork)) == 0)
		_exit(child_sees_itself());
	check_child(pid, "syscall(SYS_fork)");
	/* A child's child too: the cache a child filled is wiped in its own. */
	if ((pid = fork()) == 0) {
		if (xr__self_pid() != getpid())
			_exit(1);
		pid_t g = (pid_t)syscall(SYS_fork);
		if (g == 0)
			_exit(child_sees_itself());
		int st;
		_exit(g > 0 && waitpid(g, &st, 0) == g && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0
												: 1);
	}
	check_child(pid, "a child's raw fork");
	CHECK_EQ(xr__self_pid(), me); /* the parent's cache is its own */
	printf("test_self_pid: ok\n");
	return 0;
}
