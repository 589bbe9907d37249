/* SPDX-License-Identifier: MIT */
#ifndef XR_UTIL_PROC_H
#define XR_UTIL_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The start time of process pid (field 22 of /proc/PID/stat, clock ticks
 * since boot), or 0 if it cannot be read. Together with the pid it names a
 * process uniquely: a recycled pid has a different start time. */
uint64_t xr__proc_start(pid_t pid);

/* Whether the process (pid, start) is still running. A start of 0 checks
 * the pid alone. */
bool xr__proc_alive(pid_t pid, uint64_t start);

/* This process's id without a system call (getpid() is one since glibc 2.25,
 * and a handle's "is this still my process" check runs on every agent
 * turn). Cached in a page the kernel wipes in a child of any fork
 * (MADV_WIPEONFORK), so a child's first call asks the kernel; a child made
 * with CLONE_VM (vfork) shares the cache and sees its parent's pid. The
 * check it serves (a forked child must not use its parent's handle)
 * guards against mistakes, not against a hostile process: such a child
 * shares the parent's memory and descriptors anyway. */
pid_t xr__self_pid(void);

#endif
