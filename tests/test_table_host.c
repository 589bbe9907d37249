/* SPDX-License-Identifier: MIT */
/*
 * The table host (engine/table_host.h): its thread and doorbells, with this
 * test as the control thread and as a trainer holding the descriptors a
 * TABLE_OPEN hands out:
 *   - a request rung on the doorbell is answered, and the answer rung back
 *   - descriptors a trainer sends on its doorbell are closed by the
 *     closer, not kept and not closed by the table thread (a socket whose
 *     last close lingers would stall it), and service goes on
 *   - a trainer that closes its doorbell leaves the epoll set (its hangup
 *     would wake the thread for ever), is served when others wake it
 *   - the end of its connection (gone) ends its leases
 *   - the trainers a uid other than the engine's may hold are capped
 *   - drops: only by the table's creator or the engine's uid; a trainer of
 *     a dropped table gets -EIDRM; creations of other uids budgeted by the
 *     minute (creating and dropping cannot keep the control thread)
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/table_host.h"
#include "peer_helpers.h"
#include "shm/table_layout.h"
#include "table_helpers.h"

struct trainer {
	int fds[3];
	struct xr_tpage_req *req;
	struct xr_tpage_resp *resp;
	const struct xr_tstore_hdr *hdr;
	uint32_t seq;
};

static void open_trainer_named(struct xr_thost *h, uint64_t conn, uint32_t uid,
			       const char *name, struct trainer *t)
{
	struct xr_ctl_caller who = {.conn = conn, .uid = uid};
	struct xr_ctl_table_open m = {0};
	struct xr_ctl_table_opened r;
	char why[256];

	snprintf(m.name, sizeof(m.name), "%s", name);
	int rc = xr__thost_table_open(h, &who, &m, &r, t->fds, why, sizeof(why));
	if (rc < 0)
		FAILF("open: %s", why);
	uint8_t *p = mmap(NULL, r.page_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, t->fds[1], 0);
	const uint8_t *st = mmap(NULL, r.store_bytes, PROT_READ, MAP_SHARED, t->fds[0], 0);
	CHECK(p != MAP_FAILED && st != MAP_FAILED);
	t->req = (struct xr_tpage_req *)p;
	t->resp = (struct xr_tpage_resp *)(p + XR_TPAGE_RESP_OFF);
	t->hdr = (const struct xr_tstore_hdr *)st;
	t->seq = 0;
}

static void open_trainer(struct xr_thost *h, uint64_t conn, uint32_t uid, struct trainer *t)
{
	open_trainer_named(h, conn, uid, "t", t);
}

/* A request, rung; waits for the answer's ring (or, deaf, for the answer). */
static int call(struct trainer *t, uint32_t op, uint32_t n, bool ring)
{
	char b = 1;

	t->req->op = op;
	t->req->n = n;
	t->req->timeout_ns = 0;
	atomic_store_explicit(&t->req->seq, ++t->seq, memory_order_release);
	if (ring) {
		CHECK(send(t->fds[2], &b, 1, MSG_NOSIGNAL) == 1);
		struct pollfd pf = {.fd = t->fds[2], .events = POLLIN};
		CHECK(poll(&pf, 1, 5000) == 1);
		CHECK(recv(t->fds[2], &b, 1, 0) == 1);
	} else {
		/* Deaf: the others' rounds and the thread's own polls serve it. */
		uint64_t until = xr__now_ns() + 5 * SEC;
		while (atomic_load_explicit(&t->resp->seq, memory_order_acquire) != t->seq &&
		       xr__now_ns() < until)
			xr__sleep_ns(100000);
	}
	CHECK_EQ(atomic_load_explicit(&t->resp->seq, memory_order_acquire), t->seq);
	return t->resp->rc;
}

int main(void)
{
	struct xr_thost *h;
	char why[256];
	uint32_t me = (uint32_t)geteuid();

	CHECK_RC(xr__thost_create(NULL, NULL, &h, why, sizeof(why)), 0);
	struct xr_ctl_caller engine = {.conn = 1, .uid = me};
	struct xr_ctl_table_create m = {.name = "t", .capacity = 100, .item_size = 16, .seed = 1};
	struct xr_ctl_table_created cr;
	CHECK_RC(xr__thost_table_create(h, &engine, &m, NULL, &cr, why, sizeof(why)), 0);

	struct trainer a, b;
	open_trainer(h, 10, me, &a);
	open_trainer(h, 11, me, &b);
	for (int i = 0; i < 50; i++)
		a.req->prio[i] = 1;
	CHECK_RC(call(&a, XR_TOP_INSERT, 50, true), 50);
	CHECK_RC(call(&a, XR_TOP_SAMPLE, 10, true), 10);
	CHECK_EQ(a.hdr->leases, 10);

	/* Descriptors on the doorbell: a pipe's read end, ours closed. When
	 * the engine has closed its copy, our write end sees EPIPE. */
	int pp[2];
	CHECK(pipe(pp) == 0);
	char one = 1;
	struct iovec iov = {&one, 1};
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	memset(&cm, 0, sizeof(cm));
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &pp[0], sizeof(int));
	ssize_t sent = sendmsg(b.fds[2], &msg, MSG_NOSIGNAL);
	close(pp[0]);
	if (sent == 1) {
		/* The kernel let it through (no SO_PASSRIGHTS): the engine must
		 * not keep it. */
		signal(SIGPIPE, SIG_IGN);
		uint64_t until = xr__now_ns() + 2 * SEC;
		bool closed = false;
		while (!closed && xr__now_ns() < until) {
			closed = write(pp[1], "x", 1) < 0 && errno == EPIPE;
			if (!closed)
				xr__sleep_ns(1000000);
		}
		CHECK(closed);
		printf("a descriptor sent on a doorbell was closed by the engine's closer\n");
	} else {
		CHECK(errno == EPERM); /* SO_PASSRIGHTS: refused at our end */
		printf("the kernel refused a descriptor on the doorbell (SO_PASSRIGHTS)\n");
	}
	close(pp[1]);
	CHECK_RC(call(&b, XR_TOP_SAMPLE, 5, true), 5); /* served on */

	/* b closes its doorbell: the engine takes it out of its set (or its
	 * hangup would wake the thread for ever); a is served on. b's requests
	 * are served only when something else wakes the thread: a's. */
	close(b.fds[2]);
	CHECK_RC(call(&a, XR_TOP_SAMPLE, 5, true), 5);
	b.req->op = XR_TOP_SAMPLE;
	b.req->n = 5;
	b.req->timeout_ns = 0;
	atomic_store_explicit(&b.req->seq, ++b.seq, memory_order_release);
	CHECK_RC(call(&a, XR_TOP_SAMPLE, 5, true), 5); /* a's round serves b too */
	CHECK_EQ(atomic_load_explicit(&b.resp->seq, memory_order_acquire), b.seq);
	CHECK_RC(b.resp->rc, 5);
	CHECK_EQ(a.hdr->leases, 10 + 5 + 5 + 5 + 5); /* a: 10 + 5 + 5, b: 5 + 5 */

	/* b's connection ends: its 10 leases end, a's 20 stay. */
	xr__thost_gone(h, 11);
	CHECK_EQ(a.hdr->leases, 20);
	CHECK_EQ(a.hdr->trainers, 1);

	/* Another uid's trainers: at most a quarter of the service's. */
	uint32_t other = me == 0 ? 65534 : 0, opened = 0;
	struct xr_ctl_caller them = {.conn = 20, .uid = other};
	struct xr_ctl_table_open om = {.name = "t"};
	struct xr_ctl_table_opened r;
	int fds[3], rc;
	while ((rc = xr__thost_table_open(h, &them, &om, &r, fds, why, sizeof(why))) == 0) {
		opened++;
		for (int i = 0; i < 3; i++)
			close(fds[i]);
	}
	CHECK_RC(rc, -EDQUOT);
	CHECK_EQ(opened, 16);
	CHECK(strstr(why, "its most"));
	xr__thost_gone(h, 20);

	/* Drops: another uid may drop only what it created; a uid's creations
	 * are budgeted by the minute, so that creating and dropping cannot
	 * keep the control thread (which makes the bookkeeping) for ever. */
	struct xr_ctl_table_open dm = {.name = "t"};
	CHECK_RC(xr__thost_table_drop(h, &them, &dm, why, sizeof(why)), -EPERM);
	CHECK(strstr(why, "only the uid that created it"));
	struct xr_ctl_table_open nosuch = {.name = "nosuch"};
	CHECK_RC(xr__thost_table_drop(h, &engine, &nosuch, why, sizeof(why)), -ENOENT);
	struct xr_ctl_table_create big = {.name = "big", .capacity = 1u << 22, .item_size = 8,
					  .seed = 2};
	struct xr_ctl_table_open bm = {.name = "big"};
	for (int i = 0; i < 2; i++) {
		CHECK_RC(xr__thost_table_create(h, &them, &big, NULL, &cr, why, sizeof(why)), 0);
		CHECK_RC(xr__thost_table_drop(h, &them, &bm, why, sizeof(why)), 0);
	}
	CHECK_RC(xr__thost_table_create(h, &them, &big, NULL, &cr, why, sizeof(why)), -EAGAIN);
	CHECK(strstr(why, "a minute; this one's 4194304 fit in"));
	CHECK_RC(xr__thost_table_create(h, &engine, &big, NULL, &cr, why, sizeof(why)), 0);
	CHECK_RC(xr__thost_table_drop(h, &engine, &bm, why, sizeof(why)), 0);
	/* A table dropped while a trainer has it open keeps its place among
	 * its creator's 4 until that trainer goes: a uid cannot fill the
	 * engine's 16 by dropping what it keeps open. */
	struct trainer keep[4];
	for (int i = 0; i < 4; i++) {
		struct xr_ctl_table_create sm = {.capacity = 1, .item_size = 8, .seed = 3};
		snprintf(sm.name, sizeof(sm.name), "kept%d", i);
		CHECK_RC(xr__thost_table_create(h, &them, &sm, NULL, &cr, why, sizeof(why)), 0);
		struct xr_ctl_table_open km = {0};
		memcpy(km.name, sm.name, sizeof(km.name));
		open_trainer_named(h, 30, other, km.name, &keep[i]);
		CHECK_RC(xr__thost_table_drop(h, &them, &km, why, sizeof(why)), 0);
	}
	struct xr_ctl_table_create fifth = {.name = "fifth", .capacity = 1, .item_size = 8};
	CHECK_RC(xr__thost_table_create(h, &them, &fifth, NULL, &cr, why, sizeof(why)), -EDQUOT);
	xr__thost_gone(h, 30);
	CHECK_RC(xr__thost_table_create(h, &them, &fifth, NULL, &cr, why, sizeof(why)), 0);

	/* The engine drops "t" under a: a's requests fail -EIDRM, its leases
	 * and the store as they were. */
	CHECK_RC(xr__thost_table_drop(h, &engine, &dm, why, sizeof(why)), 0);
	CHECK_RC(call(&a, XR_TOP_SAMPLE, 1, true), -EIDRM);
	CHECK_EQ(a.hdr->dropped, 1);
	CHECK_EQ(a.hdr->leases, 20);
	CHECK_RC(xr__thost_table_drop(h, &engine, &dm, why, sizeof(why)), -ENOENT);

	xr__thost_destroy(h);
	printf("ok\n");
	return 0;
}
