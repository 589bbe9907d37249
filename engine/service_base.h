/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_SERVICE_BASE_H
#define XR_ENGINE_SERVICE_BASE_H

/*
 * What the engine's two peer-serving threads share (the table thread,
 * engine/table_host.h, and the group thread, engine/group_host.h): an epoll
 * set with a stop and a kick eventfd, the mutex the control thread shares
 * with the thread, the closer for descriptors peers touched, and peers'
 * doorbells.
 *
 * Doorbells. A peer gets its end of a socket pair (SOCK_SEQPACKET): after
 * publishing a request in its page it sends one byte; after answering, the
 * thread sends one byte back. The thread only receives and sends with
 * MSG_DONTWAIT on its own end, a file description no peer holds, so no peer
 * can make those calls block (an eventfd, shared with the peer, could be
 * switched to blocking under the engine). A byte waits in the socket until
 * read, so no wakeup is lost on either side.
 *
 * The mutex. A mutex is not fair: a thread that unlocks and locks again at
 * once keeps it from a waiter for as long as it loops (a busy feed did,
 * seconds long, and the control thread's requests timed out). So the
 * control thread says it waits, and the serving thread lets it go first.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct xr_closer;

struct xr_svc_base {
	pthread_mutex_t mu;
	_Atomic uint32_t waiting; /* the control thread waits for mu */
	int ep;
	int stop_fd;       /* eventfd: the engine's own, never a peer's */
	int kick_fd;       /* eventfd: read by the thread */
	struct xr_closer *closer; /* closes what a peer may have made slow */
};

/* The epoll set with stop_fd (data stop_tag) and kick_fd (kick_tag) in it,
 * the mutex and the closer. 0 or -errno; on failure nothing is left. */
int xr__svc_init(struct xr_svc_base *b, uint32_t stop_tag, uint32_t kick_tag);
/* Closes them; the thread has stopped. */
void xr__svc_fini(struct xr_svc_base *b);

void xr__svc_control_lock(struct xr_svc_base *b);
void xr__svc_thread_lock(struct xr_svc_base *b);

/* Wakes the thread (kick), or makes it stop (the caller set its flag). */
void xr__svc_kick(struct xr_svc_base *b);
void xr__svc_stop(struct xr_svc_base *b);
/* Takes the kick's count (the thread, after epoll said kick_tag). */
void xr__svc_kicked(struct xr_svc_base *b);

/* A doorbell pair: pair[0] the engine's end (descriptors refused where the
 * kernel can), pair[1] the peer's. 0 or -errno. */
int xr__svc_bell_pair(int pair[2]);
/* Reads a few bytes of doorbell `bell` (a peer of `uid`); descriptors sent
 * on it go to the closer. Returns false when the peer closed its end or
 * the pair failed: the bell is then out of the epoll set (or epoll would
 * return at once for ever). */
bool xr__svc_bell_drain(struct xr_svc_base *b, int bell, uint32_t uid);
/* One byte on `bell`, never waiting. */
void xr__svc_bell_ring(int bell);
/* Closes a doorbell the thread may still look up: out of the set, shut
 * down, and closed by the closer (unread messages may carry descriptors
 * whose release the last close runs). */
void xr__svc_bell_close(struct xr_svc_base *b, int bell, uint32_t uid);

#endif
