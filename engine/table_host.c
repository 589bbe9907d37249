/* SPDX-License-Identifier: MIT */
#include "table_host.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/closer.h"
#include "engine/service_base.h"
#include "control/proto.h"
#include "engine/table_service.h"
#include "engine/transitions.h"
#include "util/atomics.h"
#include "util/clock.h"
#include "xring/reader.h"


/* Tables a uid other than the engine's may create, and trainers it may
 * hold open (a quarter of them: the rest stay for others). */
#define XR_THOST_TABLES_PER_UID 4
#define XR_THOST_TRAINERS_PER_UID (XR_TSVC_CLIENTS_MAX / 4)
/* Items of one table a uid other than the engine's may ask for: its
 * bookkeeping is made on the control thread, at about 80 bytes an item. */
#define XR_THOST_ITEMS_PER_UID (1u << 22)
/* Items a uid other than the engine's may create tables of: a bucket of
 * two of its largest tables, refilling at that a minute. Making a table's
 * bookkeeping is the control thread's work (about 1 s at the largest), and
 * a table dropped (once its last trainer closes) frees its place among
 * XR_THOST_TABLES_PER_UID: without this budget a uid could create and drop
 * for ever, and the control thread would serve nobody else. */
#define XR_THOST_ITEMS_PER_UID_MINUTE (2ull << 22)
#define XR_THOST_BUDGET_UIDS 16
#define XR_THOST_MINUTE_NS 60000000000ull
/* Bytes of item store one table may take (its memfd is sparse, but inserts
 * fill it): 16 GiB. */
#define XR_THOST_STORE_MAX (16ull << 30)
/* After an answer the thread looks at the pages again for this long before
 * it sleeps: a trainer's next request is usually that close behind. */
#define XR_THOST_SPIN_NS 50000ull

struct trainer {
	bool live;
	uint64_t conn;
	uint32_t uid;
	int bell;          /* the service's end of the pair */
	bool deaf;         /* its end closed: out of the epoll set */
};

/* A table the engine feeds from one of its streams: the table thread is
 * an ordinary reader of it (attached through the engine's own socket, as
 * any reader: a slot, a lease, wakeups), each record an item. */
#define FEED_TAG 0x10000u /* epoll data of feed t's reader: FEED_TAG + t */
#define KICK_TAG 0x20000u /* epoll data of the kick eventfd */

struct feed {
	/* The table is fed: stored (release) by the control thread once the
	 * fields before `r` are filled; the table thread loads it (acquire)
	 * and owns everything from `r` on. */
	_Atomic bool want;
	/* Its table was dropped: stored (release) by the control thread
	 * under the mutex; the table thread, seeing it (acquire), tears the
	 * feed down and says so (xr__tsvc_feed_gone), after which the
	 * table's index may be another table's. */
	_Atomic bool quit;
	bool failed;                 /* attach or read failed: why; tried again at retry_at */
	uint64_t retry_at, backoff_ns;
	bool holding;                /* b is leased: records [done, count) wait */
	bool in_ep;                  /* the reader's descriptor is in the set */
	bool lossy;                  /* the stream's policy: drop what is refused */
	uint64_t dropped;            /* records the table refused and the feed dropped */
	uint64_t shown;              /* dropped, as the store's header shows it */
	char stream[XR_STREAM_NAME_MAX + 1];
	char label[48];
	double priority;
	xr_reader *r;
	xr_batch b;
	uint32_t done;
	const xr_frame *cur;         /* frame `done` of b */
	char why[160];
	/* Transitions (XR_CTL_TABLE_TRANSITION): the seats' last records, and
	 * the item record `done` made, waiting to go in when `built`. */
	struct xr_trans *trans;
	uint8_t *item;
	bool built;
};

/* A uid's bucket of items it may create tables of: `left` at `at`. */
struct budget {
	bool used;
	uint32_t uid;
	uint64_t at;
	double left;
};

struct xr_thost {
	pthread_t th;
	struct xr_svc_base b;
	struct xr_tsvc *svc;
	_Atomic bool stop;
	_Atomic bool serving;        /* the control socket answers: feeds may attach */
	uint32_t owner_uid[XR_TSVC_TABLES_MAX];
	bool created[XR_TSVC_TABLES_MAX];
	uint32_t engine_uid;
	char engine[XR_NAME_MAX + 1]; /* its name: feeds attach to it */
	struct feed feeds[XR_TSVC_TABLES_MAX];
	struct trainer tr[XR_TSVC_CLIENTS_MAX];
	/* Token buckets of uids other than the engine's creations
	 * (control thread, under the mutex). */
	struct budget budget[XR_THOST_BUDGET_UIDS];
};

/* Whether uid may create a table of `items` now; if so takes them from its
 * bucket, else *wait_s says when it may. A uid not in the table takes a
 * free entry or the one looked at longest ago, full: a uid could refill
 * its bucket that way only among more than XR_THOST_BUDGET_UIDS others
 * creating at once, which the allow-list bounds. */
static bool budget_take(struct xr_thost *h, uint32_t uid, uint64_t items, uint64_t now,
			double *wait_s)
{
	const double cap = (double)XR_THOST_ITEMS_PER_UID_MINUTE;
	const double per_ns = cap / (double)XR_THOST_MINUTE_NS;
	uint32_t pick = 0;
	bool found = false;

	for (uint32_t i = 0; i < XR_THOST_BUDGET_UIDS && !found; i++) {
		if (h->budget[i].used && h->budget[i].uid == uid) {
			pick = i;
			found = true;
		} else if (!h->budget[i].used ||
			   (h->budget[pick].used && h->budget[i].at < h->budget[pick].at)) {
			pick = i;
		}
	}
	if (!found)
		h->budget[pick] = (struct budget){.used = true, .uid = uid, .at = now,
						  .left = cap};
	double left = h->budget[pick].left + (double)(now - h->budget[pick].at) * per_ns;
	h->budget[pick].left = left < cap ? left : cap;
	h->budget[pick].at = now;
	double want = items ? (double)items : 1.0;
	if (h->budget[pick].left < want) {
		*wait_s = (want - h->budget[pick].left) / per_ns / 1e9;
		return false;
	}
	h->budget[pick].left -= want;
	return true;
}

/* Rings the trainers answered (under the lock: a bell closed meanwhile is
 * not ours to send on, and its number may be another file's by now). */
static void ring(struct xr_thost *h, uint64_t answered)
{
	for (uint32_t c = 0; answered; c++, answered >>= 1)
		if ((answered & 1) && h->tr[c].live && !h->tr[c].deaf)
			xr__svc_bell_ring(h->tr[c].bell);
}

/* Reads a few doorbell bytes of trainer c (engine/service_base.h). */
static void drain(struct xr_thost *h, uint32_t c)
{
	if (!xr__svc_bell_drain(&h->b, h->tr[c].bell, h->tr[c].uid))
		h->tr[c].deaf = true;
}

/* Takes feed t's reader as far as it can this round; returns whether it
 * moved (records read or inserted: come back at once). The reader is
 * attached here, on the table thread, never on the control thread that
 * created the table: attaching is a request that thread must answer. */
/* A feed that can read no more (the engine stops, an eviction, a
 * malformed ring): out of the epoll set (a hung-up descriptor would wake
 * the thread for ever), its batch released and its reader detached (a
 * lossless reader that never moves would hold the stream). */
static void feed_detach(struct xr_thost *h, struct feed *f)
{
	if (f->r) {
		if (f->in_ep)
			epoll_ctl(h->b.ep, EPOLL_CTL_DEL, xr_reader_fd(f->r), NULL);
		if (f->holding)
			xr_batch_release(f->r, &f->b);
		xr_reader_detach(f->r);
	}
}

/* A failed feed is tried again (a new reader, from the stream's newest
 * record), after 100 ms, then twice as long each time up to 5 s: what
 * failed may pass (every reader slot taken when the table was made, an
 * eviction), and a table fed once should not stay unfed for good. What it
 * missed meanwhile is missed, as for any reader that comes back. */
#define FEED_RETRY_FIRST_NS 100000000ull
#define FEED_RETRY_MAX_NS 5000000000ull

static void feed_fail(struct xr_thost *h, struct feed *f, const char *what)
{
	snprintf(f->why, sizeof(f->why), "stream %s: %s", f->stream, what);
	feed_detach(h, f);
	f->r = NULL;
	f->in_ep = f->holding = false;
	f->built = false;
	f->failed = true;
	f->backoff_ns = !f->backoff_ns ? FEED_RETRY_FIRST_NS
		      : f->backoff_ns >= FEED_RETRY_MAX_NS / 2 ? FEED_RETRY_MAX_NS
							  : 2 * f->backoff_ns;
	f->retry_at = xr__now_ns() + f->backoff_ns;
	xr__tsvc_show_feed(h->svc, (int)(f - h->feeds), XR_TFEED_FAILED, f->dropped);
}

static bool feed_step(struct xr_thost *h, uint32_t t)
{
	struct feed *f = &h->feeds[t];
	bool moved = false;
	int rc;

	if (!f->r) {
		xr_reader_opts o = {.stream = f->stream, .label = f->label};
		rc = xr_reader_attach(h->engine, &o, &f->r);
		if (rc < 0) {
			f->r = NULL;
			feed_fail(h, f, xr_last_reason());
			return false;
		}
		xr_stream_facts facts;
		xr_reader_stream_facts(f->r, &facts);
		f->lossy = facts.policy == XR_POLICY_LOSSY;
		if (f->failed) { /* attached again, after a gap */
			f->failed = false;
			xr__trans_forget(f->trans);
			xr__tsvc_show_feed(h->svc, (int)t, XR_TFEED_ON, f->dropped);
		}
	}
	if (!f->holding) {
		rc = xr_reader_read(f->r, 1, XR_TABLE_BATCH_MAX, 0, &f->b);
		if (rc == 0) {
			/* Nothing now: armed, its descriptor wakes us. */
			rc = xr_reader_arm(f->r, 1);
			if (rc == 1)
				return true;
			int fd = xr_reader_fd(f->r);
			if (rc == 0 && fd >= 0 && !f->in_ep) {
				struct epoll_event e = {.events = EPOLLIN, .data.u32 = FEED_TAG + t};
				f->in_ep = epoll_ctl(h->b.ep, EPOLL_CTL_ADD, fd, &e) == 0;
			}
			if (rc >= 0)
				return false;
		}
		if (rc < 0) {
			/* Closed (the engine stops) or evicted: no more records. */
			feed_fail(h, f, xr_last_reason());
			return false;
		}
		f->holding = true;
		f->done = 0;
		f->cur = f->b.first;
		f->backoff_ns = 0; /* it reads: the next failure waits 100 ms again */
	}
	xr__svc_thread_lock(&h->b);
	while (f->done < f->b.count) {
		const xr_frame *fr = f->b.frames ? f->b.frames[f->done] : f->cur;
		if (f->trans && !f->built) {
			/* A record makes a transition with its seat's last, or
			 * none: then it is only kept, as the seat's last. */
			rc = xr__trans_feed(f->trans, xr_frame_data(fr), fr->len, f->item);
			f->built = rc == 1;
			if (rc < 0)
				f->dropped++;
			if (rc != 1) {
				f->done++;
				if (!f->b.frames && f->done < f->b.count)
					f->cur = xr_frame_next(f->cur);
				moved = true;
				continue;
			}
		}
		rc = f->trans ? xr__tsvc_insert(h->svc, (int)t, f->priority, f->item,
						xr__tsvc_item_size(h->svc, (int)t))
			      : xr__tsvc_insert(h->svc, (int)t, f->priority, xr_frame_data(fr),
						fr->len);
		/* -EAGAIN, the rate limiter: wait, as its creator (the
		 * engine's uid) asked; samples move it on, and no trainer can
		 * take its inserts (trainers do not insert into a fed table).
		 * -EBUSY, every item the remover looked at is leased: leases
		 * are any trainer's, of any uid, and must not stop the games,
		 * so the record is dropped, and counted. -EINVAL: a record
		 * longer than the items: skipped, and counted. */
		if (rc == -EAGAIN)
			break;
		if (rc < 0)
			f->dropped++;
		f->built = false;
		f->done++;
		if (!f->b.frames && f->done < f->b.count)
			f->cur = xr_frame_next(f->cur);
		moved = true;
	}
	pthread_mutex_unlock(&h->b.mu);
	/* A lossy stream's reader may not hold a batch the table refuses (it
	 * would be evicted at its lease timeout): the rest of it is dropped,
	 * as the stream drops records for readers too slow for it. */
	if (f->lossy && f->done < f->b.count) {
		f->dropped += f->b.count - f->done;
		f->done = f->b.count;
		f->built = false;
	}
	if (f->dropped != f->shown) {
		f->shown = f->dropped;
		xr__tsvc_show_feed(h->svc, (int)t, XR_TFEED_ON, f->dropped);
	}
	if (f->done == f->b.count) {
		xr_batch_release(f->r, &f->b);
		f->holding = false;
		moved = true;
	} else if (f->in_ep) {
		/* Blocked by the table: the reader's wakeups could only make
		 * the loop spin; samples (doorbells) are what moves it now. */
		epoll_ctl(h->b.ep, EPOLL_CTL_DEL, xr_reader_fd(f->r), NULL);
		f->in_ep = false;
	}
	return moved;
}

/* Feed t's table was dropped: its reader detached (a lossless one would
 * hold the stream for ever), its memory freed, and the table told. */
static void feed_teardown(struct xr_thost *h, uint32_t t)
{
	struct feed *f = &h->feeds[t];

	feed_detach(h, f);
	xr__trans_destroy(f->trans);
	free(f->item);
	xr__svc_thread_lock(&h->b);
	memset(f, 0, sizeof(*f));
	xr__tsvc_feed_gone(h->svc, (int)t);
	pthread_mutex_unlock(&h->b.mu);
}

/* One round of every feed; *retry_at (when not NULL) gets the earliest
 * time a failed one is to be tried again, or UINT64_MAX. */
static bool feed_round(struct xr_thost *h, uint64_t now, uint64_t *retry_at)
{
	bool moved = false;

	*retry_at = UINT64_MAX;
	/* Relaxed: a flag the thread looks at each round (the kick that
	 * follows its store wakes it). */
	if (!xr_load_relaxed(&h->serving))
		return false;
	for (uint32_t t = 0; t < XR_TSVC_TABLES_MAX; t++) {
		struct feed *f = &h->feeds[t];
		if (!xr_load_acquire(&f->want))
			continue;
		if (xr_load_acquire(&f->quit)) {
			feed_teardown(h, t);
			continue;
		}
		if (!f->failed || now >= f->retry_at)
			moved |= feed_step(h, t);
		if (f->failed && f->retry_at < *retry_at)
			*retry_at = f->retry_at;
	}
	return moved;
}

static void *run(void *arg)
{
	struct xr_thost *h = arg;
	struct epoll_event ev[16];
	uint64_t spin_until = 0;

	while (!xr_load_acquire(&h->stop)) {
		uint64_t next, answered, now = xr__now_ns();
		int n;

		xr__svc_thread_lock(&h->b);
		n = xr__tsvc_poll(h->svc, now, &next, &answered);
		ring(h, answered);
		pthread_mutex_unlock(&h->b.mu);
		if (n > 0)
			spin_until = now + XR_THOST_SPIN_NS;
		uint64_t retry;
		if (feed_round(h, now, &retry))
			continue; /* records moved: look again before sleeping */
		if (now < spin_until)
			continue;
		if (retry < next)
			next = retry; /* a failed feed's next try */
		int timeout = -1;
		if (next != UINT64_MAX)
			timeout = next <= now ? 0 : (int)((next - now + 999999) / 1000000);
		int k = epoll_wait(h->b.ep, ev, 16, timeout);
		if (k <= 0)
			continue;
		/* Under the lock: a trainer closed meanwhile has its bell
		 * closed and its fd number perhaps reused; the table says
		 * which bell index c is now, or that c is gone. A few bytes
		 * at most per bell: one per request honestly; the rest wait
		 * for the next round, and epoll returns at once for them. */
		xr__svc_thread_lock(&h->b);
		for (int i = 0; i < k; i++) {
			uint32_t c = ev[i].data.u32;
			if (c < XR_TSVC_CLIENTS_MAX && h->tr[c].live && !h->tr[c].deaf)
				drain(h, c);
			/* A feed's reader: the next round reads it. */
			if (c == KICK_TAG)
				xr__svc_kicked(&h->b);
		}
		pthread_mutex_unlock(&h->b.mu);
	}
	return NULL;
}

/* A checkpoint's thread is done (table_service.c): the next round answers
 * it, and lets the table's waiting requests and feed go on. */
static void wake(void *ctx)
{
	xr__svc_kick(&((struct xr_thost *)ctx)->b);
}

int xr__thost_create(const char *engine, struct xr_table_view *views, struct xr_thost **out,
		     char *why, size_t len)
{
	struct xr_thost *h = calloc(1, sizeof(*h));
	int rc;

	if (!h) {
		snprintf(why, len, "out of memory for the table service");
		return -ENOMEM;
	}
	if (engine)
		snprintf(h->engine, sizeof(h->engine), "%s", engine);
	h->engine_uid = (uint32_t)geteuid();
	rc = xr__svc_init(&h->b, UINT32_MAX, KICK_TAG);
	if (rc < 0) {
		free(h);
		snprintf(why, len, "cannot start the table service: %s", strerror(-rc));
		return rc;
	}
	rc = xr__tsvc_create(&h->svc);
	if (rc == 0) {
		xr__tsvc_set_clock(h->svc, xr__now_ns);
		xr__tsvc_set_views(h->svc, views);
		xr__tsvc_set_waker(h->svc, wake, h);
		rc = -pthread_create(&h->th, NULL, run, h);
	}
	if (rc < 0) {
		snprintf(why, len, "cannot start the table service: %s", strerror(-rc));
		xr__tsvc_destroy(h->svc);
		xr__svc_fini(&h->b);
		free(h);
		return rc;
	}
	*out = h;
	return 0;
}

void xr__thost_serve(struct xr_thost *h)
{
	xr_store_relaxed(&h->serving, true);
	xr__svc_kick(&h->b);
}

int xr__thost_table_restore(struct xr_thost *h, uint32_t table, const char *path, char *why,
			    size_t len)
{
	xr__svc_control_lock(&h->b);
	int rc = xr__tsvc_restore(h->svc, (int)table, path, why, len);
	pthread_mutex_unlock(&h->b.mu);
	return rc;
}

void xr__thost_destroy(struct xr_thost *h)
{
	if (!h)
		return;
	xr_store_release(&h->stop, true);
	xr__svc_stop(&h->b);
	pthread_join(h->th, NULL);
	for (uint32_t t = 0; t < XR_TSVC_TABLES_MAX; t++) {
		if (h->feeds[t].r)
			xr_reader_detach(h->feeds[t].r); /* its held batch with it */
		xr__trans_destroy(h->feeds[t].trans);
		free(h->feeds[t].item);
	}
	for (uint32_t c = 0; c < XR_TSVC_CLIENTS_MAX; c++)
		if (h->tr[c].live)
			xr__closer_put(h->b.closer, h->tr[c].bell, h->tr[c].uid);
	if (xr__tsvc_destroy(h->svc) == -EBUSY) {
		/* Its thread may still kick us: the service's memory and ours
		 * stay for the process's exit. */
		fprintf(stderr, "xring engine: a table checkpoint is stuck in a write (its file "
				"system does not answer); stopping without it, its file cut short\n");
		return;
	}
	xr__svc_fini(&h->b);
	free(h);
}

int xr__thost_table_create(struct xr_thost *h, const struct xr_ctl_caller *who,
			   const struct xr_ctl_table_create *m, const xr_exp_shape *shape,
			   struct xr_ctl_table_created *r, char *why, size_t len)
{
	const xr_exp_shape *trans = (m->flags & XR_CTL_TABLE_TRANSITION) ? shape : NULL;
	struct xr_tb_cfg cfg = {
		.capacity = m->capacity, .sampler = (enum xr_table_sampler)m->sampler,
		.remover = (enum xr_table_remover)m->remover, .alpha = m->alpha, .beta = m->beta,
		.max_times_sampled = m->max_times_sampled, .min_size = m->min_size,
		.samples_per_insert = m->samples_per_insert, .error_buffer = m->error_buffer,
		.seed = m->seed};
	const char *w = NULL;
	int rc, mine = 0;

	if (m->sampler > XR_SAMPLER_LIFO || m->remover > XR_REMOVER_LOWEST) {
		snprintf(why, len, "table %s: no such sampler or remover", m->name);
		return -EINVAL;
	}
	if (who->uid != h->engine_uid && m->capacity > XR_THOST_ITEMS_PER_UID) {
		snprintf(why, len, "table %s: at most %u items a table for uid %u (the engine's uid "
			 "may ask for more)", m->name, XR_THOST_ITEMS_PER_UID, who->uid);
		return -E2BIG;
	}
	if ((uint64_t)m->capacity * (((uint64_t)m->item_size + 63) & ~63ull) > XR_THOST_STORE_MAX) {
		snprintf(why, len, "table %s: capacity x item size is over 16 GiB", m->name);
		return -E2BIG;
	}
	xr__svc_control_lock(&h->b);
	if (who->uid != h->engine_uid) {
		/* Its tables dropped but still open count: each keeps its
		 * place among the engine's 16 until its last trainer goes. */
		for (int i = 0; i < XR_TSVC_TABLES_MAX; i++)
			if (h->created[i] && h->owner_uid[i] == who->uid &&
			    xr__tsvc_table_live(h->svc, i))
				mine++;
		if (mine >= XR_THOST_TABLES_PER_UID) {
			pthread_mutex_unlock(&h->b.mu);
			snprintf(why, len, "uid %u has created %d tables, its most", who->uid, mine);
			return -EDQUOT;
		}
		double wait_s;
		if (!budget_take(h, who->uid, m->capacity, xr__now_ns(), &wait_s)) {
			pthread_mutex_unlock(&h->b.mu);
			snprintf(why, len, "uid %u may create tables of %llu items a minute; this "
				 "one's %u fit in %.1f s", who->uid,
				 (unsigned long long)XR_THOST_ITEMS_PER_UID_MINUTE, m->capacity,
				 wait_s < 0.1 ? 0.1 : wait_s);
			return -EAGAIN;
		}
	}
	/* The feed reads as the engine's own uid, whose lossless readers may
	 * hold the games as long as they like: a table whose limiter never
	 * lets a record in would be another uid's way to stop the engine. */
	if ((m->flags & XR_CTL_TABLE_FED) && who->uid != h->engine_uid) {
		pthread_mutex_unlock(&h->b.mu);
		snprintf(why, len, "table %s: only the engine's own uid may have it feed a table",
			 m->name);
		return -EPERM;
	}
	if ((m->flags & XR_CTL_TABLE_FED) && !h->engine[0]) {
		pthread_mutex_unlock(&h->b.mu);
		snprintf(why, len, "table %s: this engine feeds no tables", m->name);
		return -ENOTSUP;
	}
	if ((m->flags & XR_CTL_TABLE_FED) &&
	    (!isfinite(m->priority) || m->priority < 0 ||
	     (m->sampler == XR_SAMPLER_PRIORITIZED &&
	      !(pow(m->priority, m->alpha) <= DBL_MAX / (2.0 * (m->capacity ? m->capacity : 1)))))) {
		pthread_mutex_unlock(&h->b.mu);
		snprintf(why, len, "table %s: the fed items' priority must be a finite number >= 0",
			 m->name);
		return -EINVAL;
	}
	struct xr_trans *tr = NULL;
	uint8_t *item = NULL;
	if (trans) {
		rc = xr__trans_create(trans, &tr);
		item = rc == 0 ? malloc(m->item_size) : NULL;
		if (!item) {
			xr__trans_destroy(tr);
			pthread_mutex_unlock(&h->b.mu);
			snprintf(why, len, "table %s: out of memory", m->name);
			return -ENOMEM;
		}
	}
	rc = xr__tsvc_table_create(h->svc, m->name, &cfg, m->item_size, &w);
	if (rc < 0) {
		xr__trans_destroy(tr);
		free(item);
	}
	if (rc == 0) {
		int t = xr__tsvc_table_find(h->svc, m->name);
		h->owner_uid[t] = who->uid;
		h->created[t] = true;
		xr__tsvc_set_creator(h->svc, t, who->uid);
		if (shape)
			xr__tsvc_set_item(h->svc, t,
					  trans ? XR_ITEM_TRANSITION : XR_ITEM_RECORD, shape);
		if (m->flags & XR_CTL_TABLE_FED) {
			struct feed *f = &h->feeds[t];
			f->trans = tr;
			f->item = item;
			xr__tsvc_set_fed(h->svc, t);
			f->priority = m->priority;
			snprintf(f->stream, sizeof(f->stream), "%s", m->source);
			snprintf(f->label, sizeof(f->label), "table %s", m->name);
			xr_store_release(&f->want, true);
			/* The thread may be asleep: its next round attaches. */
			xr__svc_kick(&h->b);
		}
		r->table = (uint32_t)t;
		r->pad_ = 0;
	}
	pthread_mutex_unlock(&h->b.mu);
	if (rc < 0)
		snprintf(why, len, "table %s: %s", m->name, w ? w : strerror(-rc));
	return rc;
}

int xr__thost_table_open(struct xr_thost *h, const struct xr_ctl_caller *who,
			 const struct xr_ctl_table_open *m, struct xr_ctl_table_opened *r, int fds[3],
			 char *why, size_t len)
{
	int pair[2] = {-1, -1}, store = -1, page = -1, rc;
	uint32_t client;
	uint64_t store_bytes, page_bytes;

	xr__svc_control_lock(&h->b);
	int t = xr__tsvc_table_find(h->svc, m->name);
	if (t < 0) {
		pthread_mutex_unlock(&h->b.mu);
		snprintf(why, len, "no table %s (create it first)", m->name);
		return -ENOENT;
	}
	if (who->uid != h->engine_uid) {
		uint32_t mine = 0;
		for (uint32_t c = 0; c < XR_TSVC_CLIENTS_MAX; c++)
			mine += h->tr[c].live && h->tr[c].uid == who->uid;
		if (mine >= XR_THOST_TRAINERS_PER_UID) {
			pthread_mutex_unlock(&h->b.mu);
			snprintf(why, len, "uid %u holds %u trainers open, its most", who->uid, mine);
			return -EDQUOT;
		}
	}
	rc = xr__svc_bell_pair(pair);
	if (rc < 0)
		goto fail;
	store = xr__tsvc_store_fd(h->svc, t, &store_bytes);
	if (store < 0) {
		rc = store;
		goto fail;
	}
	rc = xr__tsvc_open(h->svc, t, who->uid == h->engine_uid, &client, &page, &page_bytes);
	if (rc < 0)
		goto fail;
	struct epoll_event e = {.events = EPOLLIN, .data.u32 = client};
	if (epoll_ctl(h->b.ep, EPOLL_CTL_ADD, pair[0], &e) < 0) {
		rc = -errno;
		xr__tsvc_close(h->svc, client);
		goto fail;
	}
	h->tr[client] = (struct trainer){.live = true, .conn = who->conn, .uid = who->uid,
					 .bell = pair[0]};
	struct xr_tb *tb = xr__tsvc_table(h->svc, t);
	*r = (struct xr_ctl_table_opened){.table = (uint32_t)t, .client = client,
					  .capacity = tb->cfg.capacity,
					  .item_size = xr__tsvc_item_size(h->svc, t),
					  .store_bytes = store_bytes, .page_bytes = page_bytes};
	pthread_mutex_unlock(&h->b.mu);
	fds[0] = store;
	fds[1] = page;
	fds[2] = pair[1];
	return 0;
fail:
	pthread_mutex_unlock(&h->b.mu);
	for (int i = 0; i < 2; i++)
		if (pair[i] >= 0)
			close(pair[i]);
	if (store >= 0)
		close(store);
	if (page >= 0)
		close(page);
	snprintf(why, len, "cannot open table %s: %s", m->name, strerror(-rc));
	return rc;
}

int xr__thost_table_drop(struct xr_thost *h, const struct xr_ctl_caller *who,
			 const struct xr_ctl_table_open *m, char *why, size_t len)
{
	xr__svc_control_lock(&h->b);
	int t = xr__tsvc_table_find(h->svc, m->name);
	if (t < 0) {
		pthread_mutex_unlock(&h->b.mu);
		snprintf(why, len, "no table %s", m->name);
		return -ENOENT;
	}
	if (who->uid != h->engine_uid && !(h->created[t] && h->owner_uid[t] == who->uid)) {
		pthread_mutex_unlock(&h->b.mu);
		snprintf(why, len, "table %s: only the uid that created it or the engine's may drop it",
			 m->name);
		return -EPERM;
	}
	xr__tsvc_table_drop(h->svc, t); /* its creator's count keeps it until freed */
	if (xr_load_relaxed(&h->feeds[t].want))
		xr_store_release(&h->feeds[t].quit, true);
	pthread_mutex_unlock(&h->b.mu);
	/* Its trainers' parked requests are answered, and its feed torn
	 * down, on the thread's next round. */
	xr__svc_kick(&h->b);
	return 0;
}

void xr__thost_gone(struct xr_thost *h, uint64_t conn)
{
	bool kicked = false;

	xr__svc_control_lock(&h->b);
	for (uint32_t c = 0; c < XR_TSVC_CLIENTS_MAX; c++) {
		if (!h->tr[c].live || h->tr[c].conn != conn)
			continue;
		xr__tsvc_close(h->svc, c);
		/* Closing the bell takes it out of the epoll set; the thread
		 * looks a bell up by index under the lock, so it never uses
		 * this fd number again for trainer c. */
		h->tr[c].live = false;
		xr__svc_bell_close(&h->b, h->tr[c].bell, h->tr[c].uid);
		kicked = true;
	}
	pthread_mutex_unlock(&h->b.mu);
	/* Leases ended: a feed or parked request they held back may go now,
	 * and the thread may be asleep with nothing else to wake it. */
	if (kicked)
		xr__svc_kick(&h->b);
}
