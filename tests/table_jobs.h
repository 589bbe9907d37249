/* SPDX-License-Identifier: MIT */
#ifndef XR_TESTS_TABLE_JOBS_H
#define XR_TESTS_TABLE_JOBS_H

/* A table service's jobs (checkpoints and restores on threads of their
 * own, engine/table_service.c) held by the test: the job hook tells the
 * test its thread started (a byte on entered) and waits for a byte on hold
 * while holding is set; the waker counts on an eventfd. */

#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "engine/table_service.h"
#include "table_trainer.h"

enum { ITEM = 32, ITEMS = 200 };

/* The hook holds the job: set while no job runs (a job's thread sees it
 * through pthread_create()). */
static bool holding = true;
static int hold[2];    /* the job hook reads a byte from hold[0] */
static int entered[2]; /* ...after writing one to entered[1] */
static int woken;      /* the waker's eventfd */
struct xr_tsvc *volatile xr_test_abandoned; /* a root LeakSanitizer sees */

static void hook(void *ctx)
{
	char b = 1;

	(void)ctx;
	if (!holding)
		return;
	CHECK(write(entered[1], &b, 1) == 1);
	CHECK(read(hold[0], &b, 1) == 1);
}

static void wake(void *ctx)
{
	uint64_t one = 1;

	(void)ctx;
	CHECK(write(woken, &one, sizeof(one)) == sizeof(one));
}

/* Waits up to 10 s for fd to be readable, and reads what it says. */
static void wait_fd(int fd, const char *what)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t v;

	if (poll(&p, 1, 10000) != 1)
		FAILF("no sign in 10 s that %s", what);
	CHECK(read(fd, &v, fd == woken ? sizeof(v) : 1) > 0);
}

static void open_trainer(struct xr_tsvc *s, int table, bool admin, struct trainer *tr)
{
	uint64_t size;

	trainer_open(s, table, admin, tr, &size);
	close(tr->fd);
}

/* Sets up hold, entered and the waker's eventfd. */
static void jobs_init(void)
{
	CHECK(pipe(hold) == 0 && pipe(entered) == 0);
	woken = eventfd(0, EFD_CLOEXEC);
	CHECK(woken >= 0);
}

/* A service whose jobs the test holds. */
static struct xr_tsvc *jobs_service(void)
{
	struct xr_tsvc *s;

	CHECK_RC(xr__tsvc_create(&s), 0);
	xr__tsvc_set_waker(s, wake, NULL);
	xr__tsvc_set_job_hook(s, hook, NULL);
	return s;
}

/* Lets the held job go on. */
static void let_go(void)
{
	char go = 1;

	CHECK(write(hold[1], &go, 1) == 1);
}

static int make(struct xr_tsvc *s, const char *name)
{
	const char *why = NULL;
	uint8_t bytes[ITEM];

	CHECK_RC(xr__tsvc_table_create(s, name,
				       &(struct xr_tb_cfg){.capacity = 1000,
							      .sampler = XR_SAMPLER_UNIFORM,
							      .remover = XR_REMOVER_FIFO, .seed = 1},
				       ITEM, &why),
		 0);
	int t = xr__tsvc_table_find(s, name);
	CHECK(t >= 0);
	for (int i = 0; i < ITEMS; i++) {
		memset(bytes, i, sizeof(bytes));
		CHECK_RC(xr__tsvc_insert(s, t, 1, bytes, ITEM), 0);
	}
	return t;
}

#endif
