/* SPDX-License-Identifier: MIT */
#ifndef XR_TESTS_TABLE_TRAINER_H
#define XR_TESTS_TABLE_TRAINER_H

/* A trainer the table-service tests play through its page (shm/
 * table_layout.h), against a service in the test's own process
 * (engine/table_service.h): the page mapped as a trainer maps it, requests
 * written and numbered as client/table.c does, the service polled once. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include "engine/table_service.h"
#include "ring_helpers.h"

struct trainer {
	uint32_t id;
	int fd;
	struct xr_tpage_req *req;
	struct xr_tpage_resp *resp;
	uint8_t *ins;
	uint32_t seq;
};

/* Opens table `table` as a trainer (admin: the engine's uid), its page
 * mapped as its own; *size gets the page's size. */
static inline void trainer_open(struct xr_tsvc *s, int table, bool admin, struct trainer *tr,
				uint64_t *size)
{
	CHECK_RC(xr__tsvc_open(s, table, admin, &tr->id, &tr->fd, size), 0);
	uint8_t *p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, tr->fd, 0);
	CHECK(p != MAP_FAILED);
	tr->req = (struct xr_tpage_req *)p;
	tr->resp = (struct xr_tpage_resp *)(p + XR_TPAGE_RESP_OFF);
	tr->ins = p + XR_TPAGE_INSERT_OFF;
	tr->seq = 0;
}

/* Whether the trainer's last request has its answer. */
static inline bool trainer_answered(const struct trainer *tr)
{
	return atomic_load_explicit(&tr->resp->seq, memory_order_acquire) == tr->seq;
}

/* Sends a request; polls the service once at `now`; returns whether an
 * answer came. */
static inline bool ask(struct xr_tsvc *s, struct trainer *tr, uint32_t op, uint32_t n,
		       uint64_t timeout, uint64_t now)
{
	tr->req->op = op;
	tr->req->n = n;
	tr->req->timeout_ns = timeout;
	atomic_store_explicit(&tr->req->seq, ++tr->seq, memory_order_release);
	xr__tsvc_poll(s, now, NULL, NULL);
	return trainer_answered(tr);
}

#endif
