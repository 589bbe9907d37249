/* SPDX-License-Identifier: MIT */
#ifndef XR_PERF_PEERS_H
#define XR_PERF_PEERS_H

/*
 * bench_peers' seam: one interface, one file per transport (t_*.c). The
 * driver (bench_peers.c) forks the reader, runs the writer, and checks what
 * each side says; a transport only moves records. Every transport moves the
 * same records, written by fill_record() and checked by check_record(), so
 * the work at both ends is the same everywhere and only the way between
 * differs.
 */

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#define PEERS_STAMP_MUL 0x9E3779B97F4A7C15ull
#define PEERS_END UINT64_MAX /* w[0] of the end-of-stream record, where one is needed */

enum peer_mode {
	M_TP,        /* throughput: batched as the transport's users would batch */
	M_LAT_SPIN,  /* one record at a time, the reader never sleeps */
	M_LAT_BLOCK, /* one record at a time, the reader sleeps in the transport */
};

/* One measurement, as both sides see it. */
struct run {
	uint32_t size;            /* payload bytes, a multiple of 8, >= 16 */
	enum peer_mode mode;
	uint64_t write_ns;        /* M_TP: writing time, from the first record */
	uint64_t n;               /* M_LAT_*: records to send */
	uint64_t gap_min_ns, gap_max_ns; /* M_LAT_*: busy gap before each record */
	uint32_t publish_records; /* M_TP: publish at least every N records ... */
	uint32_t publish_bytes;   /* ... or every B payload bytes */
	uint32_t batch;           /* most records a reader takes at once */
	uint64_t ring_bytes;      /* xring and the bare ring */
	bool huge;                /* xring and the bare ring: prefer huge pages */
	uint64_t *lat;            /* M_LAT_*: n samples, shared, written by the reader */
	uint32_t tag;             /* distinct per run: names of arenas, services */
	const char *dir;          /* private temporary directory (mode 0700) */
};

/* What the writer saw. */
struct wres {
	int32_t rc;
	uint64_t records;
	uint64_t t0;    /* CLOCK_MONOTONIC before the first record */
	uint64_t t_end; /* after the last publish */
	char why[160];
};

/* What the reader saw; records are numbered from 0 and must arrive in order. */
struct rres {
	int32_t rc;
	uint64_t records;
	uint64_t bad;    /* records that failed the check */
	uint64_t t_last; /* CLOCK_MONOTONIC after the last record was checked */
	char why[200];   /* the first thing that went wrong */
};

/*
 * A transport. prepare() runs in the parent before the reader is forked and
 * may leave state in *st for both sides; read() runs in the reader's child,
 * and must write an int32 (0, or -errno if it cannot read) to ready_fd once
 * it is ready to receive: the start barrier. write() runs in the parent, or
 * in a child of its own when fork_writer is set (a library that starts
 * threads, which a later fork of the parent must not inherit). It returns
 * once the reader has been told that the stream ended. cleanup() runs in
 * the parent after both have finished. All return 0 or -errno.
 */
struct transport {
	const char *name;
	const char *absent;  /* non-NULL: not built; the Debian package(s) to install, as "package X" */
	bool fork_writer;
	int (*start)(const char *dir, const uint32_t *sizes, uint32_t n_sizes,
		     char *why, size_t why_len);  /* once, before any run (optional) */
	void (*stop)(void);                        /* once, at the end (optional) */
	int (*prepare)(const struct run *r, void **st);
	void (*read)(const struct run *r, void *st, int ready_fd, struct rres *res);
	void (*write)(const struct run *r, void *st, struct wres *res);
	void (*cleanup)(void *st);
	/* In a signal handler, the benchmark about to die in a run: removes
	 * what would outlive the process (files under names), with
	 * async-signal-safe calls only (optional). */
	void (*abandon)(void *st);
	/* In the parent, after it forked run r's reader (side 'r') or writer
	 * ('w') as pid (optional): for the names that child will make. */
	void (*forked)(const struct run *r, pid_t pid, char side);
};

/* Whether the benchmark is ending in its signal handler (stop() may then
 * use async-signal-safe calls only). */
bool peers_in_signal(void);

/* Every CPU the benchmark may use, before it pinned itself: for the
 * threads a library starts beside ours (ZeroMQ's I/O threads), which we
 * leave free to run where the scheduler likes. */
extern cpu_set_t peers_all_cpus;

extern const struct transport peers_xring, peers_bare, peers_pipe, peers_socket, peers_zmq,
	peers_iox;

/* The clock and the spin hint are bench_util.h's. */
#define peers_now now_ns
#define peers_relax cpu_relax

static inline uint64_t peers_stamp(uint64_t seq, uint32_t size)
{
	return seq * PEERS_STAMP_MUL + size;
}

/*
 * The writer's work per record: store every payload word. Word 0 is the
 * sequence number, word 1 the CLOCK_MONOTONIC time the writer began this
 * record (latency runs; in throughput runs it is pattern like the rest),
 * word i >= 2 is stamp(seq) + i: a record in the wrong place, from the
 * wrong lap, torn or shifted does not pass.
 */
static inline void fill_record(uint64_t *p, uint64_t seq, uint32_t size, uint64_t t0, bool lat)
{
	const uint64_t st = peers_stamp(seq, size);

	p[0] = seq;
	p[1] = lat ? t0 : st + 1;
	fill_words(p + 2, st + 2, size / 8 - 2); /* sizes are at least 16 */
}

/* Word i of a record. Records may lie at any address (a ZeroMQ message
 * inside its receive buffer): memcpy, which compiles to a plain load. */
static inline uint64_t peers_word(const void *p, size_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)p + 8 * i, sizeof(v));
	return v;
}

/*
 * The reader's work per record: load every payload word and compare it
 * with what it must be (no sum that two errors could cancel). The record
 * must be the next in sequence (res->records). Returns 0, or -EBADMSG with
 * the first failure described in res->why.
 */
static inline int check_record(const void *w, size_t len, uint32_t size, bool lat,
			       struct rres *res)
{
	const uint64_t seq = res->records, st = peers_stamp(seq, size);
	const size_t n = size / 8;
	uint64_t diff = 0, w0;

	if (len != size) {
		if (!res->bad++)
			snprintf(res->why, sizeof(res->why),
				 "record %llu is %zu bytes, not %u",
				 (unsigned long long)seq, len, size);
		return -EBADMSG;
	}
	if (!lat)
		diff = peers_word(w, 1) ^ (st + 1);
	for (size_t i = 2; i < n; i++)
		diff |= peers_word(w, i) ^ (st + i);
	w0 = peers_word(w, 0);
	if (w0 == seq && !diff)
		return 0;
	if (!res->bad++) {
		if (w0 != seq)
			snprintf(res->why, sizeof(res->why),
				 "record %llu carries sequence number %llu",
				 (unsigned long long)seq, (unsigned long long)w0);
		else
			snprintf(res->why, sizeof(res->why),
				 "record %llu: payload differs from the pattern",
				 (unsigned long long)seq);
	}
	return -EBADMSG;
}

/*
 * The reader's step after each record: check it, time it (latency runs:
 * now minus the writer's stamp in word 1; the clock is the same for every
 * process on the machine), count it. Returns check_record()'s verdict.
 */
static inline int take_record(const struct run *r, const void *w, size_t len, struct rres *res)
{
	const bool lat = r->mode != M_TP;
	int rc = check_record(w, len, r->size, lat, res);
	uint64_t t = peers_now();

	if (lat && rc == 0 && res->records < r->n)
		r->lat[res->records] = t - peers_word(w, 1);
	res->records++;
	res->t_last = t;
	return rc;
}

/* Latency runs: the writer busy-waits a random gap (xorshift, uniform in
 * [gap_min, gap_max]) before each record, so that a blocking reader has
 * gone to sleep when it comes, and records never queue behind each other. */
static inline void peers_gap(const struct run *r, uint64_t *rng)
{
	uint64_t x = *rng, span = r->gap_max_ns - r->gap_min_ns + 1;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*rng = x;
	uint64_t until = peers_now() + r->gap_min_ns + x % span;
	while (peers_now() < until)
		peers_relax();
}

/* Throughput runs: publish now? (the rule of bench_ring: every
 * publish_records records or publish_bytes bytes, whichever comes first) */
static inline bool peers_publish_due(const struct run *r, uint32_t *pend, uint32_t *pend_bytes)
{
	*pend_bytes += r->size;
	if (++*pend < r->publish_records && *pend_bytes < r->publish_bytes)
		return false;
	*pend = *pend_bytes = 0;
	return true;
}

#define peers_fail(res, rc_, ...)                                           \
	do {                                                                \
		(res)->rc = (rc_);                                          \
		if (!(res)->why[0])                                         \
			snprintf((res)->why, sizeof((res)->why), __VA_ARGS__); \
	} while (0)

#endif
