/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "control/limits.h"

void xr__bucket_init(struct xr_bucket *b, double burst, uint64_t now)
{
	b->tokens = burst;
	b->last_ns = now;
}

bool xr__bucket_take_n(struct xr_bucket *b, double n, double rate, double burst, uint64_t now)
{
	if (now > b->last_ns)
		b->tokens += (double)(now - b->last_ns) * rate / 1e9;
	if (b->tokens > burst)
		b->tokens = burst;
	b->last_ns = now;
	if (b->tokens < n)
		return false;
	b->tokens -= n;
	return true;
}

bool xr__bucket_take(struct xr_bucket *b, double rate, double burst, uint64_t now)
{
	return xr__bucket_take_n(b, 1, rate, burst, now);
}

uint32_t xr__bucket_retry_n_ms(const struct xr_bucket *b, double n, double rate)
{
	double missing = n - b->tokens;

	return missing <= 0 || rate <= 0 ? 0 : (uint32_t)(missing / rate * 1000 + 1);
}

uint32_t xr__bucket_retry_ms(const struct xr_bucket *b, double rate)
{
	return xr__bucket_retry_n_ms(b, 1, rate);
}

struct xr_uid_use *xr__limits_uid(struct xr_limits *l, uint32_t uid, uint64_t now)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (l->use[i].uid == uid)
			return &l->use[i];
	if (l->n == l->cap) {
		uint32_t cap = l->cap ? 2 * l->cap : 8;
		struct xr_uid_use *p = realloc(l->use, cap * sizeof(*p));
		if (!p)
			return NULL;
		l->use = p;
		l->cap = cap;
	}
	struct xr_uid_use *u = &l->use[l->n++];
	*u = (struct xr_uid_use){.uid = uid};
	xr__bucket_init(&u->bucket, l->uid_burst, now);
	xr__bucket_init(&u->games, l->games_burst, now);
	return u;
}

void xr__limits_free(struct xr_limits *l)
{
	free(l->use);
	l->use = NULL;
	l->n = l->cap = 0;
}

void xr__limits_init(struct xr_limits *l, uint32_t conns, uint32_t readers,
		     uint32_t conns_per_uid, uint32_t readers_per_uid, uint32_t requests_per_uid)
{
	uint32_t share = readers / 4 ? readers / 4 : 1;

	l->own_uid = (uint32_t)geteuid();
	l->readers_per_uid = readers_per_uid ? readers_per_uid : share;
	l->conns_per_uid = conns_per_uid ? conns_per_uid : l->readers_per_uid + 8;
	/* The engine's uid: only the tables' own sizes, which the server
	 * checks and names, unless a limit is given. */
	l->own_readers = readers_per_uid ? readers_per_uid : UINT32_MAX;
	l->own_conns = conns_per_uid ? conns_per_uid : UINT32_MAX;
	/* The engine's uid keeps a quarter of each table to itself. */
	l->others_readers_max = readers > share ? readers - share : 0;
	l->others_conns_max = conns - conns / 4;
	l->uid_rate = requests_per_uid ? requests_per_uid : 256;
	l->uid_burst = 2 * l->uid_rate;
	l->conn_rate = 16;
	l->conn_burst = 32;
	/* Game requests (create, destroy, reset, list) come in streams (a
	 * trainer resetting its games, listing many pages): a rate of their
	 * own, per uid over all its connections, which each request's bounded
	 * cost (control/server.c, engine/games.c) makes safe to set high. */
	l->games_rate = XR_CTL_GAME_REQS_PER_UID;
	l->games_burst = 2 * l->games_rate;
}

int xr__limits_add_conn(struct xr_limits *l, uint32_t uid, char *why, size_t len)
{
	struct xr_uid_use *u = xr__limits_uid(l, uid, 0);
	bool own = uid == l->own_uid;
	uint32_t max = own ? l->own_conns : l->conns_per_uid;

	if (!u || u->conns >= max) {
		snprintf(why, len, "uid %u has %u connections, its limit (--max-conns-per-uid %u)",
			 (unsigned)uid, u ? u->conns : 0, max);
		return -EBUSY;
	}
	if (!own && l->others_conns >= l->others_conns_max) {
		snprintf(why, len,
			 "uids other than the engine's hold %u connections, all they may (the rest "
			 "is the engine's uid's)",
			 l->others_conns);
		return -EBUSY;
	}
	u->conns++;
	l->others_conns += !own;
	return 0;
}

int xr__limits_add_reader(struct xr_limits *l, uint32_t uid, char *why, size_t len)
{
	struct xr_uid_use *u = xr__limits_uid(l, uid, 0);
	bool own = uid == l->own_uid;
	uint32_t max = own ? l->own_readers : l->readers_per_uid;

	if (!u || u->readers >= max) {
		snprintf(why, len, "uid %u holds %u readers, its limit (--max-readers-per-uid %u)",
			 (unsigned)uid, u ? u->readers : 0, max);
		return -EBUSY;
	}
	if (!own && l->others_readers >= l->others_readers_max) {
		snprintf(why, len,
			 "uids other than the engine's hold %u readers, all they may (the rest is "
			 "the engine's uid's)",
			 l->others_readers);
		return -EBUSY;
	}
	u->readers++;
	l->others_readers += !own;
	return 0;
}

void xr__limits_drop_conn(struct xr_limits *l, uint32_t uid)
{
	struct xr_uid_use *u = xr__limits_uid(l, uid, 0);

	if (u && u->conns) {
		u->conns--;
		l->others_conns -= uid != l->own_uid;
	}
}

void xr__limits_drop_reader(struct xr_limits *l, uint32_t uid)
{
	struct xr_uid_use *u = xr__limits_uid(l, uid, 0);

	if (u && u->readers) {
		u->readers--;
		l->others_readers -= uid != l->own_uid;
	}
}
