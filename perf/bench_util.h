/* SPDX-License-Identifier: MIT */
#ifndef XR_PERF_BENCH_UTIL_H
#define XR_PERF_BENCH_UTIL_H

/* Small helpers the two-process benchmarks share: pinning, whole reads
 * and writes on their control pipes, the CPU model for their headers, the
 * clock, the spin hint and JSON strings. */

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* CLOCK_MONOTONIC in ns: one clock for every process on the machine. */
static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The CPU's spin-wait hint. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* The writer's work per record: store every payload word, word i being
 * st + i (so a record in the wrong place, lap or order does not check). */
static inline void fill_words(uint64_t *p, uint64_t st, size_t n)
{
	size_t i = 0;

	for (; i + 4 <= n; i += 4) {
		p[i] = st + i;
		p[i + 1] = st + i + 1;
		p[i + 2] = st + i + 2;
		p[i + 3] = st + i + 3;
	}
	for (; i < n; i++)
		p[i] = st + i;
}

/* qsort's comparison of uint64_t. */
static inline int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile q of sorted ns values v[0..n), in us (0 if n is 0). */
static inline double pct_us(const uint64_t *v, size_t n, double q)
{
	if (!n)
		return 0;
	size_t k = (size_t)(q * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1e3;
}

/* s as a JSON string, quotes and escapes included, on stdout. */
static inline void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static inline int pin_to(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

/* The first two CPUs this process may run on: *writer and *reader (the
 * two sides of a two-process benchmark), both -1 if there are fewer than
 * two. Returns how many CPUs are allowed (0 if that cannot be known). */
static inline int two_cpus(int *writer, int *reader)
{
	cpu_set_t allowed;
	int n = 0;

	*writer = *reader = -1;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		return 0;
	for (int i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &allowed))
			continue;
		if (n == 0)
			*writer = i;
		else if (n == 1)
			*reader = i;
		n++;
	}
	if (n < 2)
		*writer = *reader = -1;
	return n;
}

static inline int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static inline int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -EPIPE : -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The CPU's model name from /proc/cpuinfo, or "unknown". */
static inline void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[256];

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "model name", 10)) {
			char *p = strchr(line, ':');
			if (p) {
				p++;
				while (*p == ' ')
					p++;
				p[strcspn(p, "\n")] = '\0';
				snprintf(buf, len, "%s", p);
			}
			break;
		}
	}
	fclose(f);
}

/* ---- what a signal must not leave behind ----
 *
 * A benchmark ended by SIGINT (Ctrl-C), SIGTERM (`xring bench` passes it
 * on) or SIGHUP between xr_arena_create() and xr_arena_destroy() left its
 * arena, and the huge pages or /dev/shm memory under it: its name carries
 * the pid, so no later engine reuses it (a run of `xring bench engine`
 * stopped that way kept 66 huge pages). The files named here are removed
 * by the handler (unlink(2) is async-signal-safe) before the signal ends
 * the process as it would have; only by the process that named them
 * (forked readers inherit the handler, not the files). */
#define BENCH_LEFT_MAX 8
static char bench_left[BENCH_LEFT_MAX][256];
static volatile pid_t bench_left_pid;

static inline void bench_on_signal(int sig)
{
	if (getpid() == bench_left_pid)
		for (int i = 0; i < BENCH_LEFT_MAX; i++)
			if (bench_left[i][0])
				unlink(bench_left[i]);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Holds back the signals that would end the process (they stay pending)
 * until bench_release_signals(): made before an arena or socket is made and
 * released once bench_remove_on_signal() knows it, so no signal falls between
 * the making and the knowing. */
static inline void bench_hold_signals(sigset_t *was)
{
	sigset_t ends;

	sigemptyset(&ends);
	sigaddset(&ends, SIGINT);
	sigaddset(&ends, SIGTERM);
	sigaddset(&ends, SIGHUP);
	sigprocmask(SIG_BLOCK, &ends, was);
}

static inline void bench_release_signals(const sigset_t *was)
{
	sigprocmask(SIG_SETMASK, was, NULL);
}

/* path (an arena, a control socket) is removed should a signal end the
 * process before bench_keep_all(); NULL or "" is ignored. */
static inline void bench_remove_on_signal(const char *path)
{
	sigset_t all, old;

	if (!path || !path[0] || strlen(path) >= sizeof(bench_left[0]))
		return;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old); /* the handler never sees half a path */
	if (bench_left_pid != getpid()) {
		struct sigaction sa = {.sa_handler = bench_on_signal};
		sigemptyset(&sa.sa_mask);
		memset(bench_left, 0, sizeof(bench_left));
		bench_left_pid = getpid();
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
	}
	for (int i = 0; i < BENCH_LEFT_MAX; i++)
		if (!bench_left[i][0]) {
			memcpy(bench_left[i], path, strlen(path) + 1);
			break;
		}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/* Nothing named is left for a signal to remove (the arena destroyed as
 * usual). */
static inline void bench_keep_all(void)
{
	sigset_t all, old;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	memset(bench_left, 0, sizeof(bench_left));
	sigprocmask(SIG_SETMASK, &old, NULL);
}

#endif
