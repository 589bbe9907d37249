/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "control/limits.h"

void xr__bucket_init(struct xr_bucket *b, double burst, uint64_t now)
{
	b->tokens = burst;
	b->last_ns = now;
}

bool xr__bucket_take(struct xr_bucket *b, double rate, double burst, uint64_t now)
{
	if (now > b->last_ns)
		b->tokens += (double)(now - b->last_ns) * rate / 1e9;
	if (b->tokens > burst)
		b->tokens = burst;
	b->last_ns = now;
	if (b->tokens < 1)
		return false;
	b->tokens -= 1;
	return true;
}

uint32_t xr__bucket_retry_ms(const struct xr_bucket *b, double rate)
{
	double missing = 1 - b->tokens;

	return missing <= 0 || rate <= 0 ? 0 : (uint32_t)(missing / rate * 1000 + 1);
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
	return u;
}

void xr__limits_free(struct xr_limits *l)
{
	free(l->use);
	l->use = NULL;
	l->n = l->cap = 0;
}
