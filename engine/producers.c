/* SPDX-License-Identifier: MIT */
/*
 * The producer thread (producers.h): each live producer's staging ring
 * copied into its arena ring, one record at a time, each checked on the way.
 *
 * What a producer can do to us. Its staging ring is its to write while we
 * read it, so (shm/producer_layout.h) we load its head once per round and
 * trust nothing of it past the checks below; a frame's header is read once
 * into our memory; an Experience record is copied into our scratch buffer
 * and verified *there*, then built anew into the ring from the verified
 * copy with the stream's template (so every record in the ring has the
 * stream's layout, which readers view in place, and the ring's seq). Any
 * breach ends that producer (state FAULT, a reason in its header) and
 * never another's. Every loop is bounded: a round takes at most
 * XR_PROD_ROUND_RECORDS records or XR_PROD_ROUND_BYTES bytes of one
 * producer before the next producer's turn; a producer's ring that is full
 * (lossless) is looked at again each round without waiting (so one ring's
 * slow readers never hold another producer), and while any is full the
 * thread sleeps a millisecond at most between rounds.
 *
 * Memory ordering. Producer head: loaded with acquire (pairs with the
 * producer's release/seq_cst store of head after its frames), so the
 * frames below it are visible. Our tail: stored with release after we have
 * copied the frames below it, so the producer may reuse the room only once
 * we are done reading it. Sleep flags: the store-buffering handshake of
 * shm/producer_layout.h, seq_cst on both sides. The ring's `writer` word:
 * release when a producer takes the slot; at its end seq_cst, then every
 * sleeping reader kicked (xr__wake_all), against the readers' seq_cst
 * store of their sleep word then load of `writer` (go_to_sleep in
 * client/reader.c): either the kick finds the sleep or the reader sees the
 * end, and hands out what the ring has.
 */
#include "engine/producers.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/service_base.h"
#include "shm/arena_priv.h"
#include "shm/producer_layout.h"
#include "shm/wake.h"
#include "util/atomics.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/proc.h"
#include "xring/error.h"
#include "xring/record.h"
#include "xring/writer.h"

#define XR_PROD_ROUND_RECORDS 1024u
#define XR_PROD_ROUND_BYTES (4u << 20)
#define XR_PROD_STALL_MS 1             /* a sleep while a ring is full */
#define XR_PROD_IDLE_MS 100           /* the thread's sleep, at most */
#define XR_PROD_LIVENESS_NS 100000000ull /* openers looked at, this often */
#define XR_PROD_PER_UID 4             /* slots a uid other than the engine's may hold */
#define XR_PROD_STAGE_OTHERS (64u << 20) /* their staging rings' largest */

#define STOP_TAG 0xffff0000u
#define KICK_TAG 0xffff0001u

enum slot_state { FREE = 0, LIVE, DRAINING };

struct slot {
	enum slot_state st;
	uint32_t ring;        /* in the arena */
	uint32_t stream;
	xr_writer *w;
	const xr_exp_template *tpl; /* its stream's */
	/* The producer's, while not FREE. */
	uint64_t conn;
	uint32_t uid;
	pid_t pid;            /* its opener, and when that process started: */
	uint64_t pid_start;   /* its death ends the producer (see liveness()) */
	int bell;             /* our end */
	bool deaf;            /* its doorbell failed: no more wakeups from it */
	uint8_t *map;
	uint64_t map_bytes;
	struct xr_pstage_hdr *hdr;
	const uint8_t *data;
	/* Our own copies: never read back from the staging ring. */
	uint64_t cap, tail, drain_to;
	uint32_t max_len;
	uint64_t records, dropped;
	/* The slot's, across its producers: the last record's tag, and how
	 * many records it took (a bridge coming back resumes after them). */
	uint64_t last_tag, taken;
	bool stalled;         /* the ring had no room for the next record */
	uint32_t stall_len;
	uint8_t *scratch;     /* max_len bytes: an Experience record's copy */
};

struct xr_prods {
	struct xr_svc_base b;
	struct xr_arena *a;
	struct xr_prod_opts o;
	uint64_t looked_ns;   /* the last liveness() */
	pthread_t th;
	_Atomic bool stop;
	uint32_t n;
	struct slot *s;
	uint32_t *stuck;      /* [n]: the thread's list of its slots stalled */
	xr_exp_template tpl[XR_MAX_STREAMS];
};

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Ends slot s's producer: it may not write more, and says why. */
static void fault(struct slot *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fault(struct slot *s, int code, const char *fmt, ...)
{
	va_list ap;

	if (s->st == FREE)
		return;
	s->hdr->fault = code;
	va_start(ap, fmt);
	vsnprintf(s->hdr->reason, sizeof(s->hdr->reason), fmt, ap);
	va_end(ap);
	/* Release: the reason above is visible to the producer's acquire
	 * load that sees FAULT. */
	xr_store_release(&s->hdr->state, XR_PSTAGE_FAULT);
	/* It takes nothing more: drained. */
	s->drain_to = s->tail;
	s->st = DRAINING;
	if (!s->deaf)
		xr__svc_bell_ring(s->bell);
}

/* One record of len bytes at src (the staging ring: hostile) into the
 * ring. 0, -EAGAIN (no room: try again later), XR_EDROPPED (a lossy ring
 * dropped it: done with it), or -EPROTO after fault(). */
static int copy_one(struct slot *s, const uint8_t *src, uint32_t len)
{
	void *dst;
	int rc;

	/* Room first: a full ring costs a look, not a copy and a check of
	 * the record each time. The reservation is not committed unless the
	 * record passes (the next reserve takes the same room). */
	const xr_exp_template *t = s->tpl;
	uint64_t seq = xr_writer_next_seq(s->w);
	rc = xr_writer_reserve(s->w, t->size, &dst);
	if (rc < 0)
		return rc == -EAGAIN || rc == XR_EDROPPED ? rc : (fault(s, rc,
			"the ring cannot take a record (%s)", xr_strerror(rc)), -EPROTO);
	/* Verified in our copy: the producer may rewrite src meanwhile. */
	xr_exp_view v;
	memcpy(s->scratch, src, len);
	if (xr_exp_view_init(&v, s->scratch, len) < 0) {
		fault(s, XR_EBADREC, "record %llu is not a well-formed Experience record",
		      (unsigned long long)s->records + s->dropped);
		return -EPROTO;
	}
	bool same = v.obs && v.obs_dtype == t->shape.obs_dtype && v.obs_ndim == t->shape.obs_ndim &&
		    v.obs_bytes == t->obs_bytes && v.mask_len == t->shape.mask_len &&
		    v.extras_len == t->shape.extras_len;
	for (uint32_t d = 0; same && d < v.obs_ndim; d++)
		same = v.obs_dims[d] == t->shape.obs_dims[d];
	if (!same) {
		fault(s, XR_EBADREC, "record %llu is not of the stream's shape (observation, "
		      "mask and extras)", (unsigned long long)s->records + s->dropped);
		return -EPROTO;
	}
	xr_exp_fields f = v.f;
	xr_exp_slots sl;
	f.seq = seq; /* the ring's: readers find a record's seq in both places */
	xr_exp_build(t, dst, &f, &sl);
	memcpy(sl.obs, v.obs, v.obs_bytes);
	if (v.mask_len)
		memcpy(sl.mask, v.mask, v.mask_len);
	if (v.extras_len)
		memcpy(sl.extras, v.extras, v.extras_len);
	xr_writer_commit(s->w);
	return 0;
}

/* What slot s's producer published, up to a round's worth, into its ring.
 * Returns true when it has more to give now (the round's budget ran out). */
static bool pump(struct xr_prods *p, struct slot *s)
{
	uint64_t head, n = 0, bytes = 0;
	bool more = false;

	(void)p;
	s->stalled = false;
	/* A producer that went: what it had published when it did, and no
	 * further (a forked child with the mapping could go on for ever, or
	 * move its head back and keep the slot draining). */
	head = s->st == DRAINING ? s->drain_to : xr_load_acquire(&s->hdr->head);
	if (head - s->tail > s->cap || head % XR_PFRAME_ALIGN) {
		fault(s, -EPROTO, "its head %llu is not a frame position ahead of the engine's "
		      "tail %llu by at most a lap", (unsigned long long)head,
		      (unsigned long long)s->tail);
		return false;
	}
	while (s->tail != head) {
		if (n == XR_PROD_ROUND_RECORDS || bytes >= XR_PROD_ROUND_BYTES) {
			more = true;
			break;
		}
		uint64_t pos = s->tail & (s->cap - 1), left = head - s->tail;
		struct xr_pframe fh;
		memcpy(&fh, s->data + pos, sizeof(fh));
		if (fh.kind == XR_PFRAME_PAD) {
			if (s->cap - pos > left) {
				fault(s, -EPROTO, "a pad frame at %llu past its head",
				      (unsigned long long)s->tail);
				break;
			}
			s->tail += s->cap - pos;
			continue;
		}
		uint64_t flen = round_up(XR_PFRAME_HDR + (uint64_t)fh.len, XR_PFRAME_ALIGN);
		if (fh.kind != XR_PFRAME_RECORD || fh.len == 0 || fh.len > s->max_len ||
		    flen > s->cap - pos || flen > left) {
			fault(s, -EPROTO, "a bad frame at %llu (kind %u, %u bytes; records are 1 to "
			      "%u bytes, frames within the lap and the head)",
			      (unsigned long long)s->tail, fh.kind, fh.len, s->max_len);
			break;
		}
		int rc = copy_one(s, s->data + pos + XR_PFRAME_HDR, fh.len);
		if (rc == -EAGAIN) {
			s->stalled = true;
			s->stall_len = s->tpl->size;
			break;
		}
		if (rc == -EPROTO)
			break;
		if (rc == XR_EDROPPED)
			s->dropped++;
		else
			s->records++;
		s->last_tag = fh.tag;
		s->taken++;
		s->tail += flen;
		n++;
		bytes += flen;
	}
	xr_writer_publish(s->w);
	/* Release: we are done reading the room below tail. */
	xr_store_release(&s->hdr->tail, s->tail);
	xr_store_relaxed(&s->hdr->records, s->records);
	xr_store_relaxed(&s->hdr->dropped, s->dropped);
	/* The handshake: tail stored, then its flag loaded (seq_cst both). */
	if (n && xr_load_sc(&s->hdr->waiting) && !s->deaf)
		xr__svc_bell_ring(s->bell);
	return more;
}

/* The slot's producer is gone and drained (or faulted): the ring says
 * ended, and the slot is free for the next. Under the lock. */
static void end_slot(struct xr_prods *p, struct slot *s)
{
	struct xr_ring_desc *rd = &p->a->hdr->rings[s->ring];

	/* seq_cst: everything it wrote is published (pump) before readers
	 * see the end; and the store comes before the kicks' loads of the
	 * readers' sleep words, so a reader going to sleep meanwhile either
	 * is woken or sees the end itself (client/reader.c, go_to_sleep). */
	xr_store_sc(&rd->writer, XR_RING_PRODUCER_ENDED);
	xr__wake_all(s->w);
	xr__svc_bell_close(&p->b, s->bell, s->uid);
	munmap(s->map, s->map_bytes);
	free(s->scratch);
	s->st = FREE;
	s->map = NULL;
	s->hdr = NULL;
	s->data = NULL;
	s->scratch = NULL;
	s->bell = -1;
}

/* A producer's end is its connection's; but a child forked after the open
 * holds the connection too, and would keep the slot for as long as it
 * lives, the ring never ended. So the opener's death ends the producer as
 * well: looked at every XR_PROD_LIVENESS_NS (a read of /proc/PID/stat
 * each, the start time telling a recycled pid). Under the lock. */
static void liveness(struct xr_prods *p, uint64_t now)
{
	if (now - p->looked_ns < XR_PROD_LIVENESS_NS)
		return;
	p->looked_ns = now;
	for (uint32_t i = 0; i < p->n; i++) {
		struct slot *s = &p->s[i];
		if (s->st != LIVE || !s->pid || xr__proc_alive(s->pid, s->pid_start))
			continue;
		/* As xr__prods_gone(): what it had published, at most a lap. */
		uint64_t head = xr_load_acquire(&s->hdr->head);
		s->drain_to = head - s->tail <= s->cap ? head : s->tail;
		s->st = DRAINING;
	}
}

static void *run(void *arg)
{
	struct xr_prods *p = arg;
	struct epoll_event ev[16];

	while (!xr_load_acquire(&p->stop)) {
		bool more = false, stalled = false;
		uint32_t n_stuck = 0;

		xr__svc_thread_lock(&p->b);
		liveness(p, xr__now_ns());
		for (uint32_t i = 0; i < p->n; i++) {
			struct slot *s = &p->s[i];
			if (s->st == FREE)
				continue;
			more |= pump(p, s);
			if (s->st == DRAINING && s->tail == s->drain_to && !s->stalled)
				end_slot(p, s);
			else if (s->stalled)
				p->stuck[n_stuck++] = i;
		}
		pthread_mutex_unlock(&p->b.mu);
		if (more)
			continue;
		/* Each full ring looked at again, without waiting: a look is what
		 * ends a writer's pause at its high watermark once its readers
		 * are below the low one (shm/ring_writer.c), and what marks the
		 * ring blocked for its readers. One ring's readers never hold
		 * another's producer. No lock: the slots are those listed under
		 * it just now, and what is read of them here (the writer, the
		 * length stalled on) only this thread writes; the control thread
		 * may meanwhile mark one DRAINING, but frees none (this thread
		 * does) and so opens none of these. Their state is not read
		 * here: the control thread writes it (TSan saw that read). */
		for (uint32_t k = 0; k < n_stuck; k++) {
			struct slot *s = &p->s[p->stuck[k]];
			if (xr_writer_wait(s->w, s->stall_len, 0) == 0)
				more = true;
			else
				stalled = true;
		}
		if (more)
			continue;
		/* To sleep: each producer told to ring, then its head looked at
		 * again (the handshake's other half). With a ring full, a short
		 * sleep: its readers' releases ring no doorbell of ours. */
		bool news = false;
		xr__svc_thread_lock(&p->b);
		for (uint32_t i = 0; i < p->n; i++) {
			struct slot *s = &p->s[i];
			if (s->st == FREE)
				continue;
			xr_store_sc(&s->hdr->sleeping, 1);
			news |= (xr_load_sc(&s->hdr->head) != s->tail && !s->stalled) ||
				(s->st == DRAINING && !s->stalled);
		}
		pthread_mutex_unlock(&p->b.mu);
		int ms = stalled ? XR_PROD_STALL_MS : XR_PROD_IDLE_MS;
		int k = news ? 0 : epoll_wait(p->b.ep, ev, 16, ms);
		xr__svc_thread_lock(&p->b);
		for (int i = 0; i < k; i++) {
			uint32_t tag = ev[i].data.u32;
			if (tag == KICK_TAG) {
				xr__svc_kicked(&p->b);
			} else if (tag < p->n && p->s[tag].st != FREE && !p->s[tag].deaf) {
				struct slot *s = &p->s[tag];
				s->deaf = !xr__svc_bell_drain(&p->b, s->bell, s->uid);
			}
		}
		for (uint32_t i = 0; i < p->n; i++)
			if (p->s[i].st != FREE)
				xr_store_relaxed(&p->s[i].hdr->sleeping, 0);
		pthread_mutex_unlock(&p->b.mu);
	}
	return NULL;
}

int xr__prods_create(struct xr_arena *a, const struct xr_prod_opts *o, struct xr_prods **out,
		     char *why, size_t len)
{
	uint32_t n = 0;
	int rc = 0;

	*out = NULL;
	for (uint32_t i = 0; i < a->lay.n_streams; i++)
		n += a->lay.streams[i].producers;
	if (!n)
		return 0;
	struct xr_prods *p = calloc(1, sizeof(*p));
	if (!p || !(p->s = calloc(n, sizeof(*p->s))) || !(p->stuck = calloc(n, sizeof(*p->stuck)))) {
		if (p)
			free(p->s);
		free(p);
		snprintf(why, len, "out of memory for producer slots");
		return -ENOMEM;
	}
	p->a = a;
	p->o = *o;
	for (uint32_t i = 0; i < a->lay.n_streams && rc == 0; i++) {
		const struct xr_stream_desc *sd = &a->lay.streams[i];
		/* Producers write Experience records (the engine's streams
		 * are of them): the stream's template builds each anew. */
		if (sd->record_kind != XR_RECORD_EXPERIENCE)
			continue;
		xr_exp_template_init(&p->tpl[i], &sd->shape); /* the arena's: checked */
		for (uint32_t k = sd->n_rings - sd->producers; k < sd->n_rings && rc == 0; k++) {
			struct slot *s = &p->s[p->n++];
			s->ring = sd->first_ring + k;
			s->stream = i;
			s->bell = -1;
			s->tpl = &p->tpl[i];
			rc = xr_arena_writer(a, i, k, &s->w);
			if (rc == 0 && (o->high_watermark > 0))
				rc = xr_writer_set_watermarks(s->w, o->high_watermark,
							      o->low_watermark);
			if (rc == 0 && o->lease_timeout_ns)
				rc = xr_writer_set_lease_timeout(s->w, o->lease_timeout_ns);
		}
	}
	if (rc == 0)
		rc = xr__svc_init(&p->b, STOP_TAG, KICK_TAG);
	if (rc == 0) {
		rc = -pthread_create(&p->th, NULL, run, p);
		if (rc < 0)
			xr__svc_fini(&p->b);
	}
	if (rc < 0) {
		snprintf(why, len, "cannot start the producer thread: %s", xr_strerror(rc));
		free(p->s);
		free(p->stuck);
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void xr__prods_destroy(struct xr_prods *p)
{
	if (!p)
		return;
	xr_store_release(&p->stop, true);
	for (uint32_t i = 0; i < p->n; i++)
		xr_writer_cancel(p->s[i].w);
	xr__svc_stop(&p->b);
	pthread_join(p->th, NULL);
	for (uint32_t i = 0; i < p->n; i++) {
		struct slot *s = &p->s[i];
		if (s->st == FREE)
			continue;
		/* What it published and we had not taken stays untaken. */
		xr_store_release(&s->hdr->state, XR_PSTAGE_CLOSED);
		end_slot(p, s);
	}
	xr__svc_fini(&p->b);
	free(p->s);
	free(p->stuck);
	free(p);
}

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

int xr__prods_open(struct xr_prods *p, const struct xr_ctl_caller *who,
		   const struct xr_ctl_producer_open *m, struct xr_ctl_producer_opened *r,
		   int fds[2], char *why, size_t len)
{
	int pair[2] = {-1, -1}, fd = -1, si = -1, rc, stream = -1;
	uint32_t mine = 0;
	uint8_t *map = NULL;
	bool other = who->uid != p->o.engine_uid;
	uint64_t cap = m->stage_bytes ? m->stage_bytes : XR_PSTAGE_DEFAULT;

	for (uint32_t i = 0; i < p->a->lay.n_streams; i++)
		if (!strcmp(p->a->lay.streams[i].name, m->stream))
			stream = (int)i;
	if (stream < 0) {
		snprintf(why, len, "no stream '%s'", m->stream);
		return -ENOENT;
	}
	if (!p->a->lay.streams[stream].producers ||
	    p->a->lay.streams[stream].record_kind != XR_RECORD_EXPERIENCE) {
		snprintf(why, len, "stream %s has no producer slots (start the engine with "
			 "--producers N)", m->stream);
		return -ENOTSUP;
	}
	if (!pow2(cap) || cap < XR_PSTAGE_MIN || cap > XR_PSTAGE_MAX ||
	    (other && cap > XR_PROD_STAGE_OTHERS)) {
		snprintf(why, len, "a staging ring is a power of two of %u KiB to %u MiB (%u MiB "
			 "for uids other than the engine's), not %llu bytes", XR_PSTAGE_MIN >> 10,
			 XR_PSTAGE_MAX >> 20, XR_PROD_STAGE_OTHERS >> 20, (unsigned long long)cap);
		return -EINVAL;
	}
	uint64_t bytes = XR_PSTAGE_HDR + cap;
	rc = xr__memfd_map("xring-producer", bytes, false, &fd, &map);
	if (rc == 0)
		rc = xr__svc_bell_pair(pair);
	if (rc < 0) {
		snprintf(why, len, "cannot make a staging ring: %s", xr_strerror(rc));
		goto fail;
	}
	xr__svc_control_lock(&p->b);
	for (uint32_t i = 0; i < p->n; i++) {
		struct slot *s = &p->s[i];
		if (s->st != FREE) {
			mine += s->uid == who->uid;
			if (s->conn == who->conn) {
				snprintf(why, len, "this connection is a producer already");
				rc = -EEXIST;
				goto unlock;
			}
		} else if (si < 0 && s->stream == (uint32_t)stream &&
			   (!m->ring || s->ring == p->a->lay.streams[stream].first_ring + m->ring)) {
			si = (int)i;
		}
	}
	if (si < 0 && m->ring) {
		snprintf(why, len, "ring %u of stream %s is not a free producer slot (its slots: "
			 "rings %u to %u)", m->ring, m->stream,
			 p->a->lay.streams[stream].n_rings - p->a->lay.streams[stream].producers,
			 p->a->lay.streams[stream].n_rings - 1);
		rc = -EBUSY;
		goto unlock;
	}
	if (si < 0) {
		snprintf(why, len, "every producer slot of stream %s is taken (%u)", m->stream,
			 p->a->lay.streams[stream].producers);
		rc = -EBUSY;
		goto unlock;
	}
	if (other && mine >= XR_PROD_PER_UID) {
		snprintf(why, len, "uid %u holds %u producer slots, its most", who->uid, mine);
		rc = -EDQUOT;
		goto unlock;
	}
	struct slot *s = &p->s[si];
	struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)si};
	if (epoll_ctl(p->b.ep, EPOLL_CTL_ADD, pair[0], &e) < 0) {
		rc = -errno;
		snprintf(why, len, "cannot watch a doorbell: %s", xr_strerror(rc));
		goto unlock;
	}
	const struct xr_stream_desc *sd = &p->a->lay.streams[stream];
	/* Room for another builder's larger vtables and padding; a staging
	 * ring too small for that refuses the producer. */
	uint64_t max = 2ull * s->tpl->size + 4096;
	if (max > cap / 4) {
		epoll_ctl(p->b.ep, EPOLL_CTL_DEL, pair[0], NULL);
		snprintf(why, len, "a staging ring of %llu bytes is too small for stream %s's records "
			 "of %u bytes: give at least %llu", (unsigned long long)cap, m->stream,
			 s->tpl->size, (unsigned long long)(4 * max));
		rc = -EINVAL;
		goto unlock;
	}
	s->scratch = malloc(max);
	if (!s->scratch) {
		epoll_ctl(p->b.ep, EPOLL_CTL_DEL, pair[0], NULL);
		snprintf(why, len, "out of memory");
		rc = -ENOMEM;
		goto unlock;
	}
	struct xr_pstage_hdr *h = (struct xr_pstage_hdr *)map;
	h->magic = XR_PSTAGE_MAGIC;
	h->version = 1;
	h->ring = s->ring;
	h->capacity = cap;
	h->record_len = 0;
	h->max_len = (uint32_t)max;
	h->state = XR_PSTAGE_LIVE;
	*s = (struct slot){.st = LIVE, .ring = s->ring, .stream = s->stream, .w = s->w,
			   .tpl = s->tpl, .conn = who->conn, .uid = who->uid, .pid = who->pid,
			   .pid_start = who->pid > 0 ? xr__proc_start(who->pid) : 0, .bell = pair[0],
			   .map = map, .map_bytes = bytes, .hdr = h, .data = map + XR_PSTAGE_HDR,
			   .cap = cap, .max_len = (uint32_t)max, .scratch = s->scratch,
			   .last_tag = s->last_tag, .taken = s->taken};
	/* The staging ring starts where the last producer's frames ended: a
	 * fresh memfd, so at 0. The ring goes on from its own head. */
	xr_store_relaxed(&p->a->hdr->rings[s->ring].producer_pid, (int32_t)who->pid);
	xr_store_relaxed(&p->a->hdr->rings[s->ring].producer_uid, who->uid);
	/* Release: publishes the holder above with the state, for tools;
	 * pairs with the acquire load in cli/cmd_info.c (producer_of). */
	xr_store_release(&p->a->hdr->rings[s->ring].writer, XR_RING_PRODUCER_LIVE);
	*r = (struct xr_ctl_producer_opened){
		.slot = (uint32_t)si, .ring = s->ring, .ring_in_stream = s->ring - sd->first_ring,
		.record_kind = sd->record_kind, .stage_bytes = bytes, .last_tag = s->last_tag,
		.taken = s->taken, .shape = sd->shape};
	pthread_mutex_unlock(&p->b.mu);
	xr__svc_kick(&p->b);
	fds[0] = fd;
	fds[1] = pair[1];
	return 0;
unlock:
	pthread_mutex_unlock(&p->b.mu);
fail:
	for (int i = 0; i < 2; i++)
		if (pair[i] >= 0)
			close(pair[i]);
	if (fd >= 0)
		close(fd);
	if (map)
		munmap(map, bytes);
	return rc;
}

void xr__prods_gone(struct xr_prods *p, uint64_t conn)
{
	bool kicked = false;

	xr__svc_control_lock(&p->b);
	for (uint32_t i = 0; i < p->n; i++) {
		struct slot *s = &p->s[i];
		if (s->st != LIVE || s->conn != conn)
			continue;
		/* What it had published by now, at most a lap: its head is
		 * checked like any (a bad one faults the slot, which ends it). */
		uint64_t head = xr_load_acquire(&s->hdr->head);
		s->drain_to = head - s->tail <= s->cap ? head : s->tail;
		s->st = DRAINING;
		kicked = true;
	}
	pthread_mutex_unlock(&p->b.mu);
	if (kicked)
		xr__svc_kick(&p->b);
}
