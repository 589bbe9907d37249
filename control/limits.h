/* SPDX-License-Identifier: MIT */
#ifndef XR_CONTROL_LIMITS_H
#define XR_CONTROL_LIMITS_H

/*
 * What one peer may take of the control server: per connection, a request
 * rate; per uid (all of its connections together), connections, readers and
 * a request rate; and all uids but the engine's together, no more than three
 * quarters of the connection table and of the reader slots, so that no
 * admitted uid, nor any group of them, can lock the engine's own uid out.
 * Defaults give each other uid a quarter of the slots (and 8 connections
 * more than its slots); the engine's uid may use them all. Options, when
 * given, apply to every uid. Control thread only. A refusal names the limit
 * and, for rates, when to retry.
 */

#include <stdbool.h>
#include <stdint.h>

/* Game requests a second of one uid, over all its connections. */
#define XR_CTL_GAME_REQS_PER_UID 4096

/* Token bucket: `rate` tokens a second, at most `burst` saved up. */
struct xr_bucket {
	double tokens;
	uint64_t last_ns;
};

void xr__bucket_init(struct xr_bucket *b, double burst, uint64_t now);
/* Takes a token if there is one. */
bool xr__bucket_take(struct xr_bucket *b, double rate, double burst, uint64_t now);
/* Takes n tokens if there are n (n <= burst, or never). */
bool xr__bucket_take_n(struct xr_bucket *b, double n, double rate, double burst, uint64_t now);
/* Milliseconds until the next token (after a refused take), or until n. */
uint32_t xr__bucket_retry_ms(const struct xr_bucket *b, double rate);
uint32_t xr__bucket_retry_n_ms(const struct xr_bucket *b, double n, double rate);

/* One uid's use of the server. */
struct xr_uid_use {
	uint32_t uid;
	uint32_t conns;          /* connections open */
	uint32_t readers;        /* reader slots held */
	struct xr_bucket bucket; /* requests over all its connections */
	struct xr_bucket games;  /* game requests over all its connections */
};

struct xr_limits {
	uint32_t own_uid;                    /* the engine's */
	uint32_t conns_per_uid, readers_per_uid;         /* other uids */
	uint32_t own_conns, own_readers;                 /* the engine's uid */
	uint32_t others_conns_max, others_readers_max;   /* all other uids */
	uint32_t others_conns, others_readers;           /* ...held now */
	double uid_rate, uid_burst;
	double conn_rate, conn_burst;
	double games_rate, games_burst;  /* game requests, per uid */
	uint32_t n, cap;
	struct xr_uid_use *use;
};

/* Sets the limits for a table of `conns` connections and `readers` slots,
 * from the options (0: default). */
void xr__limits_init(struct xr_limits *l, uint32_t conns, uint32_t readers,
		     uint32_t conns_per_uid, uint32_t readers_per_uid, uint32_t requests_per_uid);

/* Whether uid may open one more connection, or hold one more reader: 0 and
 * counted, or -EBUSY with the refusal (naming the limit) in why. The
 * connection table's and the reader table's own sizes are the caller's to
 * check. */
int xr__limits_add_conn(struct xr_limits *l, uint32_t uid, char *why, size_t len);
int xr__limits_add_reader(struct xr_limits *l, uint32_t uid, char *why, size_t len);
void xr__limits_drop_conn(struct xr_limits *l, uint32_t uid);
void xr__limits_drop_reader(struct xr_limits *l, uint32_t uid);

/* The entry of uid, made on first use; NULL when out of memory. Entries
 * live as long as the server: a uid's bucket survives its reconnecting. */
struct xr_uid_use *xr__limits_uid(struct xr_limits *l, uint32_t uid, uint64_t now);
void xr__limits_free(struct xr_limits *l);

#endif
