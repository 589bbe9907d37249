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

#endif
