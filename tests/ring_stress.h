/* SPDX-License-Identifier: MIT */
#ifndef XR_TESTS_RING_STRESS_H
#define XR_TESTS_RING_STRESS_H

/*
 * The stress scenario shared by test_ring_stress_proc (readers in other
 * processes) and test_ring_stress_threads (its threaded twin, for TSan).
 *
 * Phase 1, lossless stream: one writer, two lossless readers and one lossy
 * reader that stalls (sleeps without a lease, so it is overrun; sometimes
 * holds batches for a while, so the writer must wait). Every record is
 * stamped with its seq and random-looking contents of a random length.
 *   - each lossless reader sees every record exactly once, in order, intact
 *   - the lossy reader sees records in order, intact, and its
 *     written == read + dropped + pending holds exactly, checked while the
 *     writer runs and at the end, when read + dropped == records written
 *
 * Phase 2, lossy stream: one fast lossy reader and one that holds leases
 * long enough to make the writer drop (lease stalls). The writer never waits;
 * both readers see intact in-order records, and their accounting is exact
 * with every writer-side drop counted.
 */

#include <sched.h>
#include <stdbool.h>
#include <time.h>

#include "ring_helpers.h"
#include "util/clock.h"

#define STRESS_MAX_LEN 1024

/* Nonzero: every record is this long (a ring with a record_len, which
 * readers take without walking); 0: random lengths up to STRESS_MAX_LEN. */
static uint32_t stress_fixed_len;

static inline uint32_t stress_len(uint64_t seq)
{
	return stress_fixed_len ? stress_fixed_len : xr_stamp_len(seq, STRESS_MAX_LEN);
}

enum { ROLE_LOSSLESS, ROLE_LOSSLESS_HOLD2, ROLE_LOSSY_STALL, ROLE_LOSSY_FAST, ROLE_LOSSY_HOLD };

struct stress_result {
	uint64_t read, dropped, written, pending, batches, invariant_checks;
	int ok;
	char err[200];
};

static inline void stress_sleep_us(unsigned us)
{
	struct timespec ts = {0, (long)us * 1000};
	nanosleep(&ts, NULL);
}

static int stress_fail(struct stress_result *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int stress_fail(struct stress_result *res, const char *fmt, ...)
{
	va_list ap;

	res->ok = 0;
	va_start(ap, fmt);
	vsnprintf(res->err, sizeof(res->err), fmt, ap);
	va_end(ap);
	return -1;
}

#define ULL(x) ((unsigned long long)(x))

static inline int stress_check_stats(xr_reader *r, struct stress_result *res)
{
	xr_reader_stats s;
	int rc = xr_reader_stats_get(r, &s);

	if (rc < 0)
		return stress_fail(res, "stats failed: %s", xr_strerror(rc));
	res->invariant_checks++;
	if (s.written != s.read + s.dropped + s.pending)
		return stress_fail(res, "written %llu != read %llu + dropped %llu + pending %llu",
				   ULL(s.written), ULL(s.read), ULL(s.dropped), ULL(s.pending));
	res->read = s.read;
	res->dropped = s.dropped;
	res->written = s.written;
	res->pending = s.pending;
	return 0;
}

/* Invariant 3: a held batch is never overwritten. Checked again at its
 * release, after the writer went on (and, for a lossy reader, dropped
 * records rather than pass the lease) while it was held. */
static inline int stress_recheck(struct stress_result *res, const xr_batch *b)
{
	const xr_frame *f = b->first;

	for (uint32_t i = 0; i < b->count; i++, f = xr_frame_next(f)) {
		const char *bad = xr_stamp_check(xr_frame_data(f), f->len, f->seq);
		if (bad || f->len != stress_len(f->seq))
			return stress_fail(res, "held batch overwritten: seq %llu (len %u): %s",
					   ULL(f->seq), f->len, bad ? bad : "length changed");
	}
	return 0;
}

/*
 * One reader's whole life: attach (already done by the caller, who passes
 * r), read until it has accounted for `total` records, verify everything.
 * `total` is the number of seqs the writer will produce in the phase.
 */
static inline int stress_read(xr_reader *r, int role, uint64_t total, struct stress_result *res)
{
	uint64_t next = 0, read = 0, dropped = 0, rng = (uint64_t)role * 7919 + 1;
	bool lossless = role == ROLE_LOSSLESS || role == ROLE_LOSSLESS_HOLD2;
	xr_batch held[2];
	int n_held = 0;

	memset(res, 0, sizeof(*res));
	res->ok = 1;
	for (;;) {
		xr_batch b;
		rng = xr_mix(rng);
		uint32_t max = 1 + (uint32_t)(rng % 300);
		int n = xr_reader_read(r, 1, max, 200000000, &b);

		if (n < 0)
			return stress_fail(res, "read failed: %s", xr_strerror(n));
		if (n == 0) {
			/* Nothing for 200 ms: everything accounted for? */
			xr_reader_stats s;
			if (xr_reader_stats_get(r, &s) == 0 && s.written == total && s.pending == 0)
				break;
			if (lossless && next == total)
				break;
			continue;
		}
		res->batches++;
		if (stress_fixed_len && (b.len != stress_fixed_len || b.stride != b.first->size))
			return stress_fail(res, "fixed-length batch says len %u stride %u (frame %u)",
					   b.len, b.stride, b.first->size);
		if (b.first_seq < next)
			return stress_fail(res, "batch starts at seq %llu, expected >= %llu",
					   ULL(b.first_seq), ULL(next));
		const xr_frame *f = b.first;
		for (uint32_t i = 0; i < b.count; i++, f = xr_frame_next(f)) {
			const char *bad = xr_stamp_check(xr_frame_data(f), f->len, f->seq);
			if (bad)
				return stress_fail(res, "seq %llu (len %u): %s", ULL(f->seq), f->len, bad);
			if (f->len != stress_len(f->seq))
				return stress_fail(res, "seq %llu has length %u", ULL(f->seq), f->len);
			if (f->seq < next || (lossless && f->seq != next))
				return stress_fail(res, "seq %llu where %llu was expected%s", ULL(f->seq),
						   ULL(next), lossless ? " (lossless reader missed records)" : "");
			dropped += f->seq - next;
			next = f->seq + 1;
		}
		read += b.count;
		if (b.dropped != 0 && lossless)
			return stress_fail(res, "lossless batch reports %u dropped", b.dropped);

		switch (role) {
		case ROLE_LOSSLESS_HOLD2:
			/* Keep two batches, release the older first sometimes, the newer
			 * first other times. */
			held[n_held++] = b;
			if (n_held == 2) {
				int first = (rng >> 20) & 1;
				if (stress_recheck(res, &held[0]) < 0 || stress_recheck(res, &held[1]) < 0)
					return -1;
				xr_batch_release(r, &held[first]);
				xr_batch_release(r, &held[!first]);
				n_held = 0;
			}
			break;
		case ROLE_LOSSY_STALL:
			if ((rng >> 8) % 64 == 0)
				stress_sleep_us(300); /* holding: the writer waits */
			if (stress_recheck(res, &b) < 0)
				return -1;
			xr_batch_release(r, &b);
			if ((rng >> 16) % 32 == 0)
				stress_sleep_us(2000); /* not holding: overrun */
			break;
		case ROLE_LOSSY_HOLD:
			if ((rng >> 8) % 8 == 0)
				stress_sleep_us(1000); /* long lease: writer drops */
			if (stress_recheck(res, &b) < 0)
				return -1;
			xr_batch_release(r, &b);
			break;
		default:
			xr_batch_release(r, &b);
		}
		if (!lossless && res->batches % 512 == 0 && stress_check_stats(r, res) < 0)
			return -1;
		if (lossless && next == total && n_held == 0)
			break;
	}
	for (int i = 0; i < n_held; i++)
		xr_batch_release(r, &held[i]);
	if (stress_check_stats(r, res) < 0)
		return -1;
	if (res->read != read || res->dropped < dropped)
		return stress_fail(res, "stats read %llu vs counted %llu", ULL(res->read), ULL(read));
	if (res->written != total || res->pending != 0 || res->read + res->dropped != total)
		return stress_fail(res, "end: written %llu, read+dropped %llu, pending %llu (want %llu, %llu, 0)",
				   ULL(res->written), ULL(res->read + res->dropped), ULL(res->pending),
				   ULL(total), ULL(total));
	if (lossless && (res->dropped || res->read != total))
		return stress_fail(res, "lossless reader read %llu of %llu", ULL(res->read), ULL(total));
	return 0;
}

struct stress_writer_result {
	uint64_t written, dropped, waits;
};

/* Writes `total` stamped records; lossless streams wait when full. */
static inline int stress_write(xr_writer *w, uint64_t total, struct stress_writer_result *res)
{
	uint64_t since_publish = 0;

	memset(res, 0, sizeof(*res));
	while (res->written + res->dropped < total) {
		uint64_t seq = xr_writer_next_seq(w);
		uint32_t len = stress_len(seq);
		int rc = xr_test_put(w, len);

		if (rc == -EAGAIN) {
			res->waits++;
			rc = xr_writer_wait(w, len, 20000000000ll);
			if (rc < 0) {
				fprintf(stderr, "writer: waited 20 s for room at seq %llu: %s\n",
					(unsigned long long)seq, xr_strerror(rc));
				return rc;
			}
			continue;
		}
		if (rc == XR_EDROPPED)
			res->dropped++;
		else if (rc < 0)
			return rc;
		else
			res->written++;
		if (++since_publish == 32) {
			xr_writer_publish(w);
			since_publish = 0;
		}
	}
	xr_writer_publish(w);
	return 0;
}

#endif
