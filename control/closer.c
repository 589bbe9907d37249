/* SPDX-License-Identifier: MIT */
/*
 * The closing threads (control/closer.h says why). One queue per tag (uid)
 * under one mutex, and while a tag's queue is not empty one detached thread
 * of its own that closes them in order. A close that blocks, for as long as
 * the peer that arranged it likes, so holds up only that peer's uid: every
 * other uid's descriptors are closed by their own thread, and their
 * connections are not refused for someone else's lingering socket. The
 * threads are as many as the uids with descriptors still closing, which the
 * server bounds (it takes no connection from a uid with too many pending,
 * and reads nothing more from one).
 *
 * The control thread appends under the mutex; a closing thread takes an
 * entry, drops the mutex, closes, and takes the mutex again only to count
 * the close done. Neither holds the mutex across a system call that a peer
 * could make slow, so the control thread's append never waits for a close.
 *
 * Shutdown never waits either: the closer is freed by whoever is last of
 * the owner (xr__closer_stop) and the threads still closing, and the
 * process's exit ends the threads wherever they are.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "control/closer.h"
#include "util/clock.h"

struct entry {
	struct entry *next;
	int fd;
	uint64_t at; /* when it was put */
};

/* A tag's queue: n counts those queued and the one being closed. */
struct tag_queue {
	uint32_t tag, n;
	struct entry *head, *tail;
	bool running;      /* a thread is closing for this tag */
	uint64_t since_ns; /* when the entry being closed was put; 0: none */
};

struct xr_closer {
	pthread_mutex_t mu;
	/* Only tags with descriptors pending are here: a short list. */
	struct tag_queue *q;
	uint32_t n_q, cap_q;
	uint32_t threads; /* running */
	uint32_t total;   /* descriptors queued or being closed, all tags */
	bool stopped;     /* the owner let go: the last thread frees */
};

struct job {
	struct xr_closer *c;
	uint32_t tag;
};

static struct tag_queue *queue_of(struct xr_closer *c, uint32_t tag, bool add)
{
	for (uint32_t i = 0; i < c->n_q; i++)
		if (c->q[i].tag == tag)
			return &c->q[i];
	if (!add)
		return NULL;
	if (c->n_q == c->cap_q) {
		uint32_t cap = c->cap_q ? 2 * c->cap_q : 16;
		struct tag_queue *p = realloc(c->q, cap * sizeof(*p));
		if (!p)
			return NULL;
		c->q = p;
		c->cap_q = cap;
	}
	c->q[c->n_q] = (struct tag_queue){.tag = tag};
	return &c->q[c->n_q++];
}

static void free_closer(struct xr_closer *c)
{
	pthread_mutex_destroy(&c->mu);
	free(c->q);
	free(c);
}

/* Closes tag's queue until it is empty. The queue is looked up by tag at
 * each turn: the array moves when another tag's queue is added. */
static void *closer_main(void *p)
{
	struct job j = *(struct job *)p;
	struct xr_closer *c = j.c;

	pthread_setname_np(pthread_self(), "xr-closer");
	free(p);
	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct tag_queue *q = queue_of(c, j.tag, false);
		struct entry *e = q->head;
		if (!e) {
			*q = c->q[--c->n_q]; /* n is 0: nothing pending */
			break;
		}
		q->head = e->next;
		if (!q->head)
			q->tail = NULL;
		q->since_ns = e->at; /* waited, and closing: one delay */
		pthread_mutex_unlock(&c->mu);
		close(e->fd); /* may take as long as the peer arranged */
		free(e);
		pthread_mutex_lock(&c->mu);
		q = queue_of(c, j.tag, false);
		q->n--;
		q->since_ns = 0;
		c->total--;
	}
	bool last = --c->threads == 0 && c->stopped;
	pthread_mutex_unlock(&c->mu);
	if (last)
		free_closer(c);
	return NULL;
}

/* Starts tag's thread, with c->mu held. On failure the queue stays, not
 * running, for the next put to try again. */
static void start_thread(struct xr_closer *c, struct tag_queue *q)
{
	struct job *j = malloc(sizeof(*j));
	pthread_attr_t at;
	pthread_t th;

	if (!j)
		return;
	*j = (struct job){.c = c, .tag = q->tag};
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	/* Closing needs little stack. */
	pthread_attr_setstacksize(&at, 64 << 10);
	if (pthread_create(&th, &at, closer_main, j) == 0) {
		q->running = true;
		c->threads++;
	} else {
		free(j);
	}
	pthread_attr_destroy(&at);
}

int xr__closer_start(struct xr_closer **out)
{
	struct xr_closer *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return 0;
}

void xr__closer_put(struct xr_closer *c, int fd, uint32_t tag)
{
	struct entry *e;

	if (fd < 0)
		return;
	e = malloc(sizeof(*e));
	pthread_mutex_lock(&c->mu);
	struct tag_queue *q = e ? queue_of(c, tag, true) : NULL;
	if (!q) {
		/* Out of memory. Not closed here: the close could block the
		 * caller for as long as a peer likes. Left open (a leak, in a
		 * process out of memory) until the process ends. */
		pthread_mutex_unlock(&c->mu);
		free(e);
		return;
	}
	*e = (struct entry){.fd = fd, .at = xr__now_ns()};
	if (q->tail)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	q->n++;
	c->total++;
	if (!q->running)
		start_thread(c, q);
	pthread_mutex_unlock(&c->mu);
}

uint32_t xr__closer_stuck(struct xr_closer *c, uint32_t tag)
{
	uint64_t now = xr__now_ns();

	pthread_mutex_lock(&c->mu);
	struct tag_queue *q = queue_of(c, tag, false);
	bool stuck = q && ((q->since_ns && now - q->since_ns > XR_CLOSER_SLOW_NS) ||
			   (!q->running && q->n));
	uint32_t n = stuck ? q->n : 0;
	pthread_mutex_unlock(&c->mu);
	return n;
}

uint32_t xr__closer_total(struct xr_closer *c)
{
	pthread_mutex_lock(&c->mu);
	uint32_t n = c->total;
	pthread_mutex_unlock(&c->mu);
	return n;
}

void xr__closer_stop(struct xr_closer *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stopped = true;
	/* Queues whose thread could not be started: one more try. Should
	 * that fail too, their descriptors are left open, never closed here
	 * (the close could make the stop wait as long as a peer likes): the
	 * process's exit closes them. */
	for (uint32_t i = 0; i < c->n_q; i++) {
		if (c->q[i].running)
			continue;
		start_thread(c, &c->q[i]);
		if (c->q[i].running)
			continue;
		for (struct entry *e = c->q[i].head, *next; e; e = next) {
			next = e->next;
			free(e);
		}
		c->total -= c->q[i].n;
		c->q[i--] = c->q[--c->n_q];
	}
	bool last = c->threads == 0;
	pthread_mutex_unlock(&c->mu);
	if (last)
		free_closer(c);
}
