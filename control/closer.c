/* SPDX-License-Identifier: MIT */
/*
 * The closing thread (control/closer.h says why). A queue under a mutex and
 * a condition variable: the control thread appends, the closer takes one
 * entry, drops the mutex, closes, and takes the mutex again only to count
 * the close done. Neither holds the mutex across a system call that a peer
 * could make slow, so the control thread's append never waits for a close.
 *
 * Shutdown detaches the thread: it closes what remains and frees the queue
 * itself, so the engine's exit never waits on a lingering socket, and the
 * process's exit ends the thread wherever it is.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "control/closer.h"

struct entry {
	struct entry *next;
	int fd;
	uint32_t tag;
};

struct tag_count {
	uint32_t tag, n;
};

struct xr_closer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	struct entry *head, *tail;
	bool stopping;
	/* Pending per tag: a short list, since only tags with pending
	 * descriptors are in it. */
	struct tag_count *counts;
	uint32_t n_counts, cap_counts;
};

static struct tag_count *count_of(struct xr_closer *c, uint32_t tag, bool add)
{
	for (uint32_t i = 0; i < c->n_counts; i++)
		if (c->counts[i].tag == tag)
			return &c->counts[i];
	if (!add)
		return NULL;
	if (c->n_counts == c->cap_counts) {
		uint32_t cap = c->cap_counts ? 2 * c->cap_counts : 16;
		struct tag_count *p = realloc(c->counts, cap * sizeof(*p));
		if (!p)
			return NULL;
		c->counts = p;
		c->cap_counts = cap;
	}
	c->counts[c->n_counts] = (struct tag_count){.tag = tag};
	return &c->counts[c->n_counts++];
}

static void count_done(struct xr_closer *c, uint32_t tag)
{
	struct tag_count *t = count_of(c, tag, false);

	if (t && --t->n == 0)
		*t = c->counts[--c->n_counts];
}

static void *closer_main(void *p)
{
	struct xr_closer *c = p;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct entry *e = c->head;
		if (!e) {
			if (c->stopping)
				break;
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		c->head = e->next;
		if (!c->head)
			c->tail = NULL;
		pthread_mutex_unlock(&c->mu);
		close(e->fd); /* may take as long as the peer arranged */
		pthread_mutex_lock(&c->mu);
		count_done(c, e->tag);
		free(e);
	}
	pthread_mutex_unlock(&c->mu);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c->counts);
	free(c);
	return NULL;
}

int xr__closer_start(struct xr_closer **out)
{
	struct xr_closer *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	rc = pthread_create(&c->th, NULL, closer_main, c);
	if (rc) {
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		free(c);
		return -rc;
	}
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
	struct tag_count *t = e ? count_of(c, tag, true) : NULL;
	if (!t) {
		pthread_mutex_unlock(&c->mu);
		free(e);
		close(fd); /* out of memory: the one close done here */
		return;
	}
	t->n++;
	*e = (struct entry){.fd = fd, .tag = tag};
	if (c->tail)
		c->tail->next = e;
	else
		c->head = e;
	c->tail = e;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

uint32_t xr__closer_pending(struct xr_closer *c, uint32_t tag)
{
	pthread_mutex_lock(&c->mu);
	struct tag_count *t = count_of(c, tag, false);
	uint32_t n = t ? t->n : 0;
	pthread_mutex_unlock(&c->mu);
	return n;
}

void xr__closer_stop(struct xr_closer *c)
{
	if (!c)
		return;
	/* Detached first: once it sees `stopping` the thread may free c at
	 * any moment, c->th with it. */
	pthread_detach(c->th);
	pthread_mutex_lock(&c->mu);
	c->stopping = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}
