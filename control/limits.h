/* SPDX-License-Identifier: MIT */
#ifndef XR_CONTROL_LIMITS_H
#define XR_CONTROL_LIMITS_H

/*
 * What one peer may take of the control server: per connection, a request
 * rate; per uid (all of its connections together), connections, readers and
 * a request rate. Control thread only. A refusal names the limit and, for
 * rates, when to retry.
 */

#include <stdbool.h>
#include <stdint.h>

/* Token bucket: `rate` tokens a second, at most `burst` saved up. */
struct xr_bucket {
	double tokens;
	uint64_t last_ns;
};

void xr__bucket_init(struct xr_bucket *b, double burst, uint64_t now);
/* Takes a token if there is one. */
bool xr__bucket_take(struct xr_bucket *b, double rate, double burst, uint64_t now);
/* Milliseconds until the next token (after a refused take). */
uint32_t xr__bucket_retry_ms(const struct xr_bucket *b, double rate);

/* One uid's use of the server. */
struct xr_uid_use {
	uint32_t uid;
	uint32_t conns;          /* connections open */
	uint32_t readers;        /* reader slots held */
	struct xr_bucket bucket; /* requests over all its connections */
};

struct xr_limits {
	uint32_t conns_per_uid;
	uint32_t readers_per_uid;
	double uid_rate, uid_burst;
	double conn_rate, conn_burst;
	uint32_t n, cap;
	struct xr_uid_use *use;
};

/* The entry of uid, made on first use; NULL when out of memory. Entries
 * live as long as the server: a uid's bucket survives its reconnecting. */
struct xr_uid_use *xr__limits_uid(struct xr_limits *l, uint32_t uid, uint64_t now);
void xr__limits_free(struct xr_limits *l);

#endif
