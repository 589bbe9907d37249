/* SPDX-License-Identifier: MIT */
/* Moving control messages and fds over the socket, for both sides. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/proto.h"
#include "xring/table.h"

void xr__ctl_filter_to_wire(struct xr_ctl_filter *w, const xr_filter *f)
{
	memset(w, 0, sizeof(*w));
	if (!f)
		return;
	w->n_games = f->n_games;
	w->n_players = f->n_players;
	w->min_turn = f->min_turn;
	w->terminal = f->terminal;
	w->has_reward_range = f->has_reward_range != 0;
	w->reward_min = f->reward_min;
	w->reward_max = f->reward_max;
	w->sample_rate = f->sample_rate;
	w->sample_seed = f->sample_seed;
	if (f->n_games <= XR_FILTER_RANGES_MAX && f->games)
		memcpy(w->games, f->games, f->n_games * sizeof(*w->games));
	if (f->n_players <= XR_FILTER_RANGES_MAX && f->players)
		memcpy(w->players, f->players, f->n_players * sizeof(*w->players));
}

int xr__ctl_filter_from_wire(xr_filter *f, const struct xr_ctl_filter *w)
{
	if (w->n_games > XR_FILTER_RANGES_MAX || w->n_players > XR_FILTER_RANGES_MAX)
		return -EINVAL;
	*f = (xr_filter){
		.games = w->games,
		.n_games = w->n_games,
		.players = w->players,
		.n_players = w->n_players,
		.min_turn = w->min_turn,
		.terminal = w->terminal,
		.has_reward_range = (int)w->has_reward_range,
		.reward_min = w->reward_min,
		.reward_max = w->reward_max,
		.sample_rate = w->sample_rate,
		.sample_seed = w->sample_seed,
	};
	return 0;
}

int xr__ctl_send(int sock, uint16_t type, uint32_t id, const void *body, uint32_t len,
		 const int *fds, int n_fds)
{
	struct xr_ctl_hdr h = {XR_CTL_MAGIC, XR_CTL_VERSION, type, len, id};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)body, len}};
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(3 * sizeof(int))];
	} cm;
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};

	if (n_fds > 3)
		return -EINVAL;
	if (n_fds > 0) {
		memset(&cm, 0, sizeof(cm));
		m.msg_control = cm.buf;
		m.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, n_fds * sizeof(int));
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &m, MSG_NOSIGNAL);
		if (n >= 0)
			return n == (ssize_t)(sizeof(h) + len) ? 0 : -EMSGSIZE;
		if (errno != EINTR)
			return -errno;
	}
}

int xr__ctl_recv(int sock, void *buf, uint32_t cap, int *fds, int *n_fds, int flags)
{
	/* Room for the most the kernel puts in one message, so that it never
	 * truncates the list and closes the rest itself, in this thread. */
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(XR_CTL_FDS_MAX * sizeof(int))];
	} cm;
	struct iovec iov = {buf, cap};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			   .msg_controllen = sizeof(cm.buf)};
	ssize_t n;

	*n_fds = 0;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | flags);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k && *n_fds < XR_CTL_FDS_MAX; i++)
			memcpy(&fds[(*n_fds)++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	if (m.msg_flags & MSG_TRUNC)
		return -EMSGSIZE;
	return (int)n;
}

int xr__ctl_table_to_wire(const char *name, const xr_table_opts *o, struct xr_ctl_table_create *m,
			  char *why, size_t len)
{
	memset(m, 0, sizeof(*m));
	if (!name || !*name || strlen(name) >= XR_CTL_TABLE_NAME) {
		snprintf(why, len, "a table's name is 1 to %d characters", XR_CTL_TABLE_NAME - 1);
		return -EINVAL;
	}
	memcpy(m->name, name, strlen(name));
	m->capacity = o->capacity;
	m->item_size = o->item_size;
	m->sampler = o->sampler;
	m->remover = o->remover;
	m->max_times_sampled = o->max_times_sampled;
	m->alpha = o->alpha;
	m->beta = o->beta;
	m->samples_per_insert = o->samples_per_insert;
	m->error_buffer = o->error_buffer;
	m->min_size = o->min_size;
	m->seed = o->seed;
	if (o->source) {
		if (!*o->source || strlen(o->source) > XR_STREAM_NAME_MAX) {
			snprintf(why, len, "a stream's name is 1 to %d characters", XR_STREAM_NAME_MAX);
			return -EINVAL;
		}
		memcpy(m->source, o->source, strlen(o->source));
		m->flags |= XR_CTL_TABLE_FED;
		m->priority = o->priority;
	}
	if (o->item > XR_ITEM_TRANSITION ||
	    (o->item == XR_ITEM_TRANSITION && (!o->source || o->item_size))) {
		snprintf(why, len, "transitions are of a stream (source), sized by the engine "
			 "(item_size 0)");
		return -EINVAL;
	}
	if (o->item == XR_ITEM_TRANSITION)
		m->flags |= XR_CTL_TABLE_TRANSITION;
	return 0;
}
