/* SPDX-License-Identifier: MIT */
/*
 * Games at runtime, the caller's side (xring/games.h): one control
 * connection, ATTACHed (the engine checks who we are, we check who it is),
 * over which each call is requests and replies. The arena descriptor
 * ATTACHED brings is closed at once: game requests do not read rings.
 */
#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control/client.h"
#include "control/proto.h"
#include "util/proc.h"
#include "xring/error.h"
#include "xring/games.h"
#include "xring/record.h"

/* How long a list retries a page the engine's request rate refused,
 * waiting as long as it is told to each time (a long list is many pages;
 * the other calls return the refusal, with its retry time, to the caller). */
#define XR_GAMES_RETRY_NS 30000000000ull

struct xr_games {
	int sock;
	pid_t pid; /* the process that opened it: the only one that uses it */
};

/* A forked child holds a copy of its parent's socket: requests of both
 * would mix on one connection, and the child's copy keeps the connection
 * (and the parent's owned games) alive after the parent closes it. So a
 * handle is the opener's alone: other processes get -EINVAL. */
static int mine(const xr_games *c)
{
	if (c->pid == xr__self_pid())
		return 0;
	xr__set_last_reason("this games handle was opened by process %d: a forked child opens "
			    "its own",
			    (int)c->pid);
	return -EINVAL;
}

int xr_games_open(const char *engine, const xr_games_opts *opts, xr_games **out)
{
	struct xr_trust trust = {.extra = opts && opts->engine_uid ? opts->engine_uid : (uid_t)-1};
	struct xr_ctl_attached att;
	struct ucred peer;
	xr_games *c;
	int afd, rc;

	if (!engine || !out)
		return -EINVAL;
	xr__set_last_reason("%s", "");
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->pid = xr__self_pid();
	c->sock = xr__ctl_connect(engine, &trust, &peer);
	if (c->sock < 0) {
		rc = c->sock;
		if (rc == -ENOENT)
			xr__set_last_reason("no engine '%s' is running (no control socket)", engine);
		free(c);
		return rc;
	}
	rc = xr__ctl_attach(c->sock, &afd, &att);
	if (rc < 0) {
		xr_games_close(c);
		return rc;
	}
	close(afd);
	*out = c;
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One page of a list, retried while the engine says how long to wait (a
 * rate limit: the connection stays), for up to XR_GAMES_RETRY_NS. */
static int list_page(xr_games *c, uint16_t type, const void *body, uint32_t len, uint16_t ok_type,
		void *reply, uint32_t reply_len, uint32_t *got)
{
	uint64_t end = now_ns() + XR_GAMES_RETRY_NS;

	for (;;) {
		int rc = xr__ctl_request(c->sock, type, body, len, ok_type, reply, reply_len, got,
					 NULL);
		uint64_t wait = rc == -EAGAIN ? xr__reason_retry_ns() : 0;
		if (!wait || now_ns() + wait > end)
			return rc;
		struct timespec ts = {(time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull)};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

static int spec_to_wire(const xr_game_spec *s, struct xr_ctl_games_create *m)
{
	memset(m, 0, sizeof(*m));
	if (s->game && strlen(s->game) >= sizeof(m->kind)) {
		xr__set_last_reason("game name '%s' is too long", s->game);
		return -EINVAL;
	}
	if (s->game)
		strcpy(m->kind, s->game);
	if (s->obs_dtype) {
		int dt = xr_dtype_parse(s->obs_dtype);
		if (dt < 0) {
			xr__set_last_reason("obs_dtype '%s' is not a dtype (u8, f32, ...)", s->obs_dtype);
			return -EINVAL;
		}
		m->obs_dtype = 1u + (uint32_t)dt;
	}
	m->board_h = s->board_h;
	m->board_w = s->board_w;
	m->players = s->players;
	m->turn_limit = s->turn_limit;
	m->flags = s->owned ? XR_CTL_GAMES_OWNED : 0;
	return 0;
}

int xr_games_create(xr_games *c, const xr_game_spec *spec, uint32_t n, uint32_t *ids)
{
	struct xr_ctl_games_create m;
	uint32_t made = 0;
	int rc;

	if (!c || !spec || (n && !ids))
		return -EINVAL;
	if ((rc = mine(c)) < 0)
		return rc;
	rc = spec_to_wire(spec, &m);
	if (rc < 0)
		return rc;
	while (made < n) {
		struct xr_ctl_games_created r;
		m.count = n - made < XR_CTL_CREATE_MAX ? n - made : XR_CTL_CREATE_MAX;
		m.seed = spec->seed + made;
		rc = xr__ctl_request(c->sock, XR_CTL_GAMES_CREATE, &m, sizeof(m),
				     XR_CTL_GAMES_CREATED, &r, sizeof(r), NULL, NULL);
		if (rc < 0)
			return made ? (int)made : rc;
		/* Fewer than asked: the engine builds a bounded cost of games a
		 * request (xr__ctl_game_cost); the rest go in the next. */
		if (r.count == 0 || r.count > m.count || (uint64_t)r.first_id + r.count > UINT32_MAX) {
			xr__set_last_reason("the engine's reply is not the xring control protocol");
			return made ? (int)made : -EPROTO;
		}
		for (uint32_t j = 0; j < r.count; j++)
			ids[made + j] = r.first_id + j;
		made += r.count;
	}
	return (int)made;
}

int xr_games_destroy(xr_games *c, const uint32_t *ids, uint32_t n)
{
	struct xr_ctl_games_destroy m;

	if (!c || (n && !ids))
		return -EINVAL;
	if (mine(c) < 0)
		return -EINVAL;
	for (uint32_t done = 0; done < n;) {
		memset(&m, 0, sizeof(m));
		m.count = n - done < XR_CTL_DESTROY_MAX ? n - done : XR_CTL_DESTROY_MAX;
		memcpy(m.ids, ids + done, m.count * sizeof(*ids));
		int rc = xr__ctl_request(c->sock, XR_CTL_GAMES_DESTROY, &m, sizeof(m), XR_CTL_OK,
					 NULL, 0, NULL, NULL);
		if (rc < 0)
			return rc;
		done += m.count;
	}
	return 0;
}

int xr_games_reset(xr_games *c, uint32_t id, uint64_t seed)
{
	struct xr_ctl_game_reset m = {.id = id, .seed = seed};

	if (!c)
		return -EINVAL;
	if (mine(c) < 0)
		return -EINVAL;
	return xr__ctl_request(c->sock, XR_CTL_GAME_RESET, &m, sizeof(m), XR_CTL_OK, NULL, 0, NULL,
			       NULL);
}

static void info_from_wire(xr_game_info *o, const struct xr_ctl_game_info *g)
{
	const char *dt = xr_dtype_name((xr_dtype)g->obs_dtype);

	*o = (xr_game_info){
		.id = g->id, .shard = g->shard, .stream = g->stream, .players = g->players,
		.board_h = g->board_h, .board_w = g->board_w, .turn_limit = g->turn_limit,
		.turn = g->turn, .seed = g->seed, .episodes = g->episodes,
		.owner_uid = g->owner_uid, .owner_pid = g->owner_pid,
		.owned = (g->flags & XR_CTL_GAMES_OWNED) != 0,
		.mine = (g->flags & XR_CTL_GAME_MINE) != 0,
	};
	/* The engine's bytes, kept to what a game's name may be ([a-z0-9_],
	 * xring/game.h), so that no caller prints anything else. */
	size_t i;
	for (i = 0; i < sizeof(o->game) - 1 && g->kind[i]; i++) {
		char ch = g->kind[i];
		o->game[i] = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ? ch : '?';
	}
	o->game[i] = '\0';
	snprintf(o->obs_dtype, sizeof(o->obs_dtype), "%s", dt ? dt : "?");
}

int xr_games_list(xr_games *c, uint32_t from_id, xr_game_info *out, uint32_t cap,
		  uint32_t *total)
{
	struct xr_ctl_games_list m;
	struct xr_ctl_games *r;
	uint32_t n = 0, got;
	int rc = 0;

	if (!c || (cap && !out))
		return -EINVAL;
	if (mine(c) < 0)
		return -EINVAL;
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	do {
		m = (struct xr_ctl_games_list){.from_id = from_id, .max = XR_CTL_LIST_MAX};
		if (cap - n < m.max)
			m.max = cap - n ? cap - n : 1; /* cap 0: the total only */
		rc = list_page(c, XR_CTL_GAMES_LIST, &m, sizeof(m), XR_CTL_GAMES, r, sizeof(*r), &got);
		if (rc < 0)
			break;
		if (got < offsetof(struct xr_ctl_games, games) || r->n > m.max ||
		    got != offsetof(struct xr_ctl_games, games) + r->n * sizeof(r->games[0])) {
			xr__set_last_reason("the engine's reply is not the xring control protocol");
			rc = -EPROTO;
			break;
		}
		if (total)
			*total = r->total;
		for (uint32_t i = 0; i < r->n && n < cap; i++)
			info_from_wire(&out[n++], &r->games[i]);
		if (!r->next_id || r->next_id <= from_id)
			break;
		from_id = r->next_id;
	} while (n < cap);
	free(r);
	return rc < 0 ? rc : (int)n;
}

void xr_games_close(xr_games *c)
{
	if (!c)
		return;
	/* Closing our descriptor ends the connection only if no other
	 * process holds a copy (a forked child's, until it exits or execs):
	 * the opener shuts it down, so that the engine sees the end now and
	 * destroys the games it owns, as promised. A child closes only its
	 * copy, leaving its parent's connection alone. */
	if (c->sock >= 0 && c->pid == xr__self_pid())
		shutdown(c->sock, SHUT_RDWR);
	if (c->sock >= 0)
		close(c->sock);
	free(c);
}
