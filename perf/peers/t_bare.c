/* SPDX-License-Identifier: MIT */
/*
 * The bare ring: the least a cross-process ring can do, and the bound. The
 * same ring as bench_ring's baseline (copied, not shared, so that
 * bench_ring's behaviour stays as it is): one shared mapping made before the
 * fork, the control lines (head by the writer, tail by the reader, each on a
 * line of its own), then the ring, mapped once; frames as in xring
 * ({size, len, seq} + payload + padding to 16), a pad frame (len 0) before a
 * frame that would cross the end. No library call, no validation of what
 * the peer wrote beyond the frame size, no lease, no wakeup protocol.
 *
 * Blocking (latency runs only): the writer writes an eventfd after every
 * publish, and the reader, finding nothing, sleeps in read() on it. The
 * writer signals unconditionally, so no wakeup can be lost; a stale count
 * costs an extra look at head. Otherwise the reader spins, as in bench_ring.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "xring/types.h"
#include "peers.h"
#include "bench_util.h"

struct bare_ctl {
	_Alignas(64) _Atomic uint64_t head; /* bytes published, by the writer (R1) */
	_Atomic uint32_t closed;            /* by the writer, after its last head (R2) */
	_Alignas(64) _Atomic uint64_t tail; /* bytes consumed, by the reader (R3) */
	_Alignas(64) uint8_t pad_[64];
};

struct bare_frame {
	uint32_t size, len;
	uint64_t seq;
};

struct bare_state {
	struct bare_ctl *ctl;
	uint8_t *data;
	uint64_t cap;
	size_t map_len;
	int efd;
};

static uint64_t bare_frame_size(uint32_t size)
{
	return ((uint64_t)size + sizeof(struct bare_frame) + 15) & ~15ull;
}

static int bare_prepare(const struct run *r, void **out)
{
	struct bare_state *s = calloc(1, sizeof(*s));
	void *m = MAP_FAILED;

	if (!s)
		return -ENOMEM;
	s->cap = r->ring_bytes;
	/* The ring's memory like the arena's: huge pages when we may, shared,
	 * prefaulted; ring data page-aligned. */
	s->map_len = (r->ring_bytes + sizeof(struct bare_ctl) + (2u << 20) - 1) & ~((2ull << 20) - 1);
	if (r->huge)
		m = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
	if (m == MAP_FAILED)
		m = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (m == MAP_FAILED) {
		int rc = -errno;
		free(s);
		return rc;
	}
	memset(m, 0, s->map_len);
	s->ctl = m;
	s->data = (uint8_t *)m + (s->map_len - r->ring_bytes);
	s->efd = eventfd(0, EFD_CLOEXEC);
	if (s->efd < 0) {
		int rc = -errno;
		munmap(m, s->map_len);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

static void bare_read(const struct run *r, void *st, int ready_fd, struct rres *res)
{
	struct bare_state *s = st;
	const uint64_t mask = s->cap - 1;
	const bool block = r->mode == M_LAT_BLOCK;
	uint64_t pos = 0;
	int32_t ok = 0;

	write_all(ready_fd, &ok, sizeof(ok));
	for (;;) {
		/* A1 pairs with R1: the frames before head are whole. */
		uint64_t head = atomic_load_explicit(&s->ctl->head, memory_order_acquire);
		uint32_t n = 0;

		if (head == pos) {
			/* A2 pairs with R2; head again, since closed follows it. */
			if (atomic_load_explicit(&s->ctl->closed, memory_order_acquire)) {
				head = atomic_load_explicit(&s->ctl->head, memory_order_acquire);
				if (head == pos)
					break;
			} else if (block) {
				uint64_t v;
				if (read(s->efd, &v, sizeof(v)) < 0 && errno != EINTR) {
					peers_fail(res, -errno, "eventfd read: %s", strerror(errno));
					return;
				}
				continue;
			} else {
				peers_relax();
				continue;
			}
		}
		while (pos != head && n < r->batch) {
			const struct bare_frame *f = (const void *)(s->data + (pos & mask));
			uint32_t fs = f->size;

			if (fs < sizeof(*f) || fs > head - pos) {
				peers_fail(res, -EPROTO, "frame of %u bytes at %llu", fs,
					   (unsigned long long)pos);
				return;
			}
			if (f->len) { /* len 0: the pad before the wrap */
				if (f->seq != res->records && !res->bad++)
					snprintf(res->why, sizeof(res->why),
						 "record %llu in frame of seq %llu",
						 (unsigned long long)res->records,
						 (unsigned long long)f->seq);
				take_record(r, f + 1, f->len, res);
				n++;
			}
			pos += fs;
		}
		/* R3, paired with the writer's A3: it may reuse up to pos. */
		atomic_store_explicit(&s->ctl->tail, pos, memory_order_release);
	}
}

static void bare_publish(struct bare_state *s, uint64_t head, bool signal)
{
	static const uint64_t one = 1;

	/* R1, paired with A1. */
	atomic_store_explicit(&s->ctl->head, head, memory_order_release);
	if (signal && write(s->efd, &one, sizeof(one)) < 0)
		return; /* cannot fail on a counter this far from its limit */
}

static void bare_write(const struct run *r, void *st, struct wres *res)
{
	struct bare_state *s = st;
	const bool lat = r->mode != M_TP, signal = r->mode == M_LAT_BLOCK;
	const uint64_t fs = bare_frame_size(r->size), cap = s->cap, mask = cap - 1;
	uint64_t head = 0, tail = 0, seq = 0, t0 = 0, rng = 0x2545F4914F6CDD1Dull ^ r->tag;
	uint32_t pend = 0, pend_bytes = 0;

	res->t0 = peers_now();
	const uint64_t stop = res->t0 + r->write_ns;
	for (;;) {
		if (lat) {
			if (seq == r->n)
				break;
			peers_gap(r, &rng);
			t0 = peers_now();
		}
		uint64_t off = head & mask, to_end = cap - off;
		uint64_t need = fs <= to_end ? fs : to_end + fs;

		if (head + need - tail > cap) {
			/* A3 pairs with R3: the reader is done with what lies before tail. */
			tail = atomic_load_explicit(&s->ctl->tail, memory_order_acquire);
			if (head + need - tail > cap) {
				bare_publish(s, head, signal);
				do {
					peers_relax();
					tail = atomic_load_explicit(&s->ctl->tail,
								    memory_order_acquire);
				} while (head + need - tail > cap);
			}
		}
		if (fs > to_end) {
			struct bare_frame *pad = (void *)(s->data + off);
			pad->size = (uint32_t)to_end;
			pad->len = 0;
			pad->seq = seq;
			head += to_end;
			off = 0;
		}
		struct bare_frame *f = (void *)(s->data + off);
		f->size = (uint32_t)fs;
		f->len = r->size;
		f->seq = seq;
		fill_record((uint64_t *)(f + 1), seq, r->size, t0, lat);
		head += fs;
		seq++;
		if (lat || peers_publish_due(r, &pend, &pend_bytes)) {
			bare_publish(s, head, signal);
			if (!lat && peers_now() >= stop)
				break;
		}
	}
	bare_publish(s, head, false);
	res->t_end = peers_now();
	res->records = seq;
	/* R2, paired with A2; then one more signal for a sleeping reader. */
	atomic_store_explicit(&s->ctl->closed, 1, memory_order_release);
	bare_publish(s, head, signal);
}

static void bare_cleanup(void *st)
{
	struct bare_state *s = st;

	close(s->efd);
	munmap(s->ctl, s->map_len);
	free(s);
}

const struct transport peers_bare = {
	.name = "bare ring",
	.prepare = bare_prepare,
	.read = bare_read,
	.write = bare_write,
	.cleanup = bare_cleanup,
};
