/* SPDX-License-Identifier: MIT */
/*
 * The engine's table service (engine/table_service.h), with this test
 * playing the trainers through their pages:
 *   - a sample round trip: keys, slots, probabilities, weights, the items'
 *     bytes in the store where the slots say; leases counted per trainer
 *   - the store is handed out read-only: no writable mapping of it can be made
 *   - hostile requests: an unknown op, counts of 0 and past the batch,
 *     releases of keys the trainer does not hold (another trainer's, made
 *     up, 0), priorities that are not numbers: each refused or counted, and
 *     nobody else's leases touched
 *   - a trainer closed with leases: every lease ends
 *   - waiting: a sample the limiter refuses is -EAGAIN without a timeout,
 *     parked with one, served by the poll after the inserts it waited for,
 *     -ETIMEDOUT at its deadline; a sample larger than the limiter can ever
 *     allow is refused at once
 *   - trainer inserts: bytes and priorities from the page, partial when the
 *     limiter stops them part way
 *   - one trainer holds at most XR_TSVC_LEASES_MAX leases
 *   - a table dropped with trainers on it: its name free at once, their
 *     requests (a parked one too) answered -EIDRM, their leases theirs, its
 *     index reused only once the last has closed (and a fed table's feed
 *     is gone)
 * Time is the poll's argument: no clock, no sleep.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/table_service.h"
#include "table_helpers.h"
#include "table_trainer.h"

enum { ITEM = 40 };

static void open_trainer(struct xr_tsvc *s, int table, struct trainer *tr)
{
	uint64_t size;

	trainer_open(s, table, false, tr, &size);
	CHECK_EQ(size, xr_tpage_size(ITEM));
}

static uint64_t seen_at_20000(void)
{
	return 20000;
}

static int call(struct xr_tsvc *s, struct trainer *tr, uint32_t op, uint32_t n)
{
	if (!ask(s, tr, op, n, 0, 1))
		FAILF("no answer to op %u", op);
	return tr->resp->rc;
}

static void item_bytes(uint8_t *b, uint64_t tag)
{
	for (int i = 0; i < ITEM; i++)
		b[i] = (uint8_t)(tag * 7 + (uint64_t)i);
}

int main(void)
{
	struct xr_tsvc *s;
	const char *why = NULL;
	struct trainer a, b;
	uint8_t bytes[ITEM];

	/* The arena's views for tools (shm/layout.h), as an engine gives them. */
	static struct xr_table_view views[XR_MAX_TABLES];

	CHECK_RC(xr__tsvc_create(&s), 0);
	xr__tsvc_set_views(s, views);
	CHECK_RC(xr__tsvc_table_create(s, "bad name!", &(struct xr_tb_cfg){.capacity = 4}, ITEM,
				       &why),
		 -EINVAL);
	CHECK_RC(xr__tsvc_table_create(s, "replay",
				       &(struct xr_tb_cfg){.capacity = 100,
							      .sampler = XR_SAMPLER_PRIORITIZED,
							      .alpha = 1, .beta = 1,
							      .remover = XR_REMOVER_FIFO,
							      .min_size = 10,
							      .samples_per_insert = 4,
							      .error_buffer = 200, .seed = 1},
				       ITEM, &why),
		 0);
	CHECK_RC(xr__tsvc_table_create(s, "replay", &(struct xr_tb_cfg){.capacity = 4}, ITEM,
				       &why),
		 -EEXIST);
	int t = xr__tsvc_table_find(s, "replay");
	CHECK(t >= 0);
	struct xr_tb *tab = xr__tsvc_table(s, t);

	/* The store, as a trainer maps it: read-only, and only read-only. */
	uint64_t store_size;
	int sfd = xr__tsvc_store_fd(s, t, &store_size);
	CHECK(sfd >= 0);
	CHECK(mmap(NULL, store_size, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0) == MAP_FAILED);
	uint8_t *store = mmap(NULL, store_size, PROT_READ, MAP_SHARED, sfd, 0);
	CHECK(store != MAP_FAILED);
	CHECK(mprotect(store, 4096, PROT_READ | PROT_WRITE) < 0);
	/* Nor reopened for writing through /proc: the store is sealed against
	 * every write but the service's own mapping. */
	{
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", sfd);
		int wfd = open(proc, O_RDWR);
		if (wfd >= 0) {
			CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, wfd, 0) ==
			      MAP_FAILED);
			CHECK(pwrite(wfd, "x", 1, 0) < 0);
			close(wfd);
		}
	}
	const struct xr_tstore_hdr *h = (const void *)store;
	CHECK_EQ(h->magic, XR_TSTORE_MAGIC);
	CHECK_EQ(h->capacity, 100);
	CHECK_EQ(h->item_size, ITEM);
	const uint64_t *skeys = (const uint64_t *)(store + h->keys_off);

	open_trainer(s, t, &a);
	open_trainer(s, t, &b);

	/* Waiting: nothing in the table yet. */
	CHECK_RC(call(s, &a, XR_TOP_SAMPLE, 8), -EAGAIN);
	CHECK(strstr(a.resp->why, "limiter"));
	CHECK(!ask(s, &a, XR_TOP_SAMPLE, 8, 1000000000, 100)); /* parked until 1e9 + 100 */
	for (int i = 0; i < 10; i++) {
		item_bytes(bytes, (uint64_t)i);
		CHECK(xr__tsvc_poll(s, 200, NULL, NULL) == 0); /* still parked */
		CHECK_RC(xr__tsvc_insert(s, t, 1.0 + i, bytes, ITEM), 0);
	}
	uint64_t mask;
	CHECK(xr__tsvc_poll(s, 300, NULL, &mask) == 1);
	CHECK_EQ(mask, 1ull << a.id);
	CHECK_EQ(h->size, 10);       /* the figures trainers and tools read */
	CHECK_EQ(h->leases, 8);
	CHECK_EQ(h->inserts, 10);
	CHECK_EQ(h->samples, 8);
	CHECK_EQ(h->trainers, 2);
	{	/* The same figures in the table's view, and what the table is. */
		const struct xr_table_view *v = &views[t];
		CHECK_EQ(v->state, XR_TVIEW_LIVE);
		char vn[sizeof(v->name)];
		xr__label_get(vn, v->name, sizeof(vn));
		CHECK(!strcmp(vn, "replay"));
		CHECK_EQ(v->capacity, 100);
		CHECK_EQ(v->item_size, ITEM);
		CHECK_EQ(v->sampler, XR_SAMPLER_PRIORITIZED);
		CHECK_EQ(v->remover, XR_REMOVER_FIFO);
		CHECK_EQ(v->item_kind, 0);
		CHECK_EQ(v->size, 10);
		CHECK_EQ(v->leases, 8);
		CHECK_EQ(v->inserts, 10);
		CHECK_EQ(v->samples, 8);
		CHECK_EQ(v->trainers, 2);
		for (int i = 0; i < XR_MAX_TABLES; i++)
			CHECK(i == t || views[i].state == XR_TVIEW_FREE);
	}
	CHECK_EQ(a.resp->seq, a.seq);
	CHECK_RC(a.resp->rc, 8);
	CHECK_EQ(xr__tsvc_leases(s, a.id), 8);
	double total = 0;
	for (int i = 0; i < 10; i++)
		total += 1.0 + i;
	for (int i = 0; i < 8; i++) {
		uint32_t slot = a.resp->slots[i];
		uint64_t key = a.resp->keys[i];
		CHECK_EQ(slot, (uint32_t)key);
		CHECK_EQ(skeys[slot], key);
		/* Inserted in order into slots 0..9, item i at priority 1 + i. */
		item_bytes(bytes, slot);
		CHECK(memcmp(store + h->items_off + slot * h->stride, bytes, ITEM) == 0);
		CHECK(fabs(a.resp->prob[i] - (1.0 + slot) / total) < 1e-12);
		CHECK(fabs(a.resp->weight[i] - 1.0 / (1.0 + slot)) < 1e-12);
	}
	uint64_t held[8];
	memcpy(held, a.resp->keys, sizeof(held));

	/* A batch the limiter could never allow at once (window 2 * 200 - 4):
	 * refused now rather than parked for ever. */
	CHECK_RC(call(s, &b, XR_TOP_SAMPLE, 1000), -EINVAL); /* > 2 * 200 - 4 */
	CHECK(strstr(b.resp->why, "at once"));

	/* Hostile requests from b. */
	CHECK_RC(call(s, &b, 99, 1), -EINVAL);
	CHECK_RC(call(s, &b, XR_TOP_SAMPLE, 0), -EINVAL);
	CHECK_RC(call(s, &b, XR_TOP_RELEASE, XR_TABLE_BATCH_MAX + 1), -EINVAL);
	memcpy(b.req->keys, held, sizeof(held)); /* a's leases */
	b.req->keys[8] = 0;
	b.req->keys[9] = ~0ull;
	CHECK_RC(call(s, &b, XR_TOP_RELEASE, 10), 0);
	CHECK_EQ(b.resp->refused, 10);
	CHECK_EQ(xr__tsvc_leases(s, a.id), 8);
	CHECK_EQ(tab->leases, 8);
	b.req->keys[0] = held[0];
	b.req->prio[0] = NAN;
	b.req->keys[1] = held[1];
	b.req->prio[1] = -1;
	b.req->keys[2] = 12345;
	b.req->prio[2] = 1;
	b.req->keys[3] = held[3];
	b.req->prio[3] = 2.5; /* anyone may update a priority */
	CHECK_RC(call(s, &b, XR_TOP_UPDATE, 4), 1);
	CHECK_EQ(b.resp->refused, 3);
	CHECK(tab->prio[(uint32_t)held[3]] == 2.5);
	b.req->prio[0] = INFINITY;
	CHECK_RC(call(s, &b, XR_TOP_INSERT, 1), -EINVAL);
	CHECK(strstr(b.resp->why, "priority"));

	/* Checkpoints are the engine's uid's alone: files written as it. */
	snprintf(b.req->path, sizeof(b.req->path), "/tmp/xring-test-ckpt-%d", (int)getpid());
	CHECK_RC(call(s, &b, XR_TOP_CHECKPOINT, 1), -EPERM);
	CHECK_RC(call(s, &b, XR_TOP_RESTORE, 1), -EPERM);
	CHECK(access(b.req->path, F_OK) < 0);

	/* A request sent again under the same seq is not served twice. */
	CHECK(xr__tsvc_poll(s, 400, NULL, NULL) == 0);

	/* a releases its batch (once: a second time it holds none); samples
	 * again, as does b; a is closed holding its second batch. */
	memcpy(a.req->keys, held, sizeof(held));
	CHECK_RC(call(s, &a, XR_TOP_RELEASE, 8), 8);
	CHECK_RC(call(s, &a, XR_TOP_RELEASE, 8), 0);
	CHECK_EQ(a.resp->refused, 8);
	CHECK_EQ(tab->leases, 0);
	CHECK_RC(call(s, &a, XR_TOP_SAMPLE, 4), 4);
	CHECK_RC(call(s, &b, XR_TOP_SAMPLE, 5), 5);
	CHECK_EQ(tab->leases, 4 + 5);
	xr__tsvc_close(s, a.id);
	CHECK_EQ(tab->leases, 5);
	CHECK_EQ(xr__tsvc_leases(s, b.id), 5);
	memcpy(b.req->keys, b.resp->keys, 5 * sizeof(uint64_t));
	CHECK_RC(call(s, &b, XR_TOP_RELEASE, 5), 5);
	CHECK_EQ(tab->leases, 0);

	/* Trainer inserts, bytes from the page: the limiter (max_diff = 240)
	 * stops them part way. D = inserts * 4 - samples. */
	for (uint32_t i = 0; i < 64; i++) {
		item_bytes(b.ins + i * ITEM, 1000 + i);
		b.req->prio[i] = 1;
	}
	double d = xr_limiter_diff(&tab->lim);
	uint32_t room = (uint32_t)floor((240 - d) / 4);
	CHECK(room > 0 && room < 64);
	CHECK_RC(call(s, &b, XR_TOP_INSERT, 64), room);
	for (uint32_t i = 0; i < room; i++) {
		uint32_t slot = b.resp->slots[i];
		item_bytes(bytes, 1000 + i);
		CHECK(memcmp(store + h->items_off + slot * h->stride, bytes, ITEM) == 0);
		CHECK_EQ(skeys[slot], b.resp->keys[i]);
	}
	/* Now none may go: -EAGAIN at once, or parked and timed out. */
	CHECK_RC(call(s, &b, XR_TOP_INSERT, 1), -EAGAIN);
	CHECK(!ask(s, &b, XR_TOP_INSERT, 1, 5000, 10000));
	uint64_t next;
	CHECK(xr__tsvc_poll(s, 14999, &next, NULL) == 0);
	CHECK_EQ(next, 15000);
	CHECK(xr__tsvc_poll(s, 15000, &next, NULL) == 1);
	CHECK_RC(b.resp->rc, -ETIMEDOUT);
	CHECK_EQ(next, UINT64_MAX);
	/* The deadline counts from when the request was seen (the clock),
	 * not from a poll's now that may be older than the request. */
	xr__tsvc_set_clock(s, seen_at_20000);
	CHECK(!ask(s, &b, XR_TOP_INSERT, 1, 5000, 10000));
	CHECK(xr__tsvc_poll(s, 15000, &next, NULL) == 0);
	CHECK_EQ(next, 25000);
	CHECK(xr__tsvc_poll(s, 25000, &next, NULL) == 1);
	CHECK_RC(b.resp->rc, -ETIMEDOUT);
	xr__tsvc_set_clock(s, NULL);

	/* The lease cap: 64 batches of 1024 and no more. */
	xr__tsvc_close(s, b.id);
	CHECK_RC(xr__tsvc_table_create(s, "big",
				       &(struct xr_tb_cfg){.capacity = 1000, .seed = 2}, ITEM,
				       &why),
		 0);
	int t2 = xr__tsvc_table_find(s, "big");
	for (int i = 0; i < 1000; i++)
		CHECK_RC(xr__tsvc_insert(s, t2, 1, bytes, ITEM), 0);
	open_trainer(s, t2, &a);
	for (int i = 0; i < 64; i++)
		CHECK_RC(call(s, &a, XR_TOP_SAMPLE, 1024), 1024);
	CHECK_RC(call(s, &a, XR_TOP_SAMPLE, 1), -ENOBUFS);
	CHECK_EQ(xr__tsvc_leases(s, a.id), XR_TSVC_LEASES_MAX);
	CHECK_EQ(xr__tsvc_table(s, t2)->leases, XR_TSVC_LEASES_MAX);
	xr__tsvc_close(s, a.id);
	CHECK_EQ(xr__tsvc_table(s, t2)->leases, 0);

	/* Dropping a table while two trainers have it open, one holding
	 * leases and one parked: the name is free at once (a new table of it
	 * takes another index), both get -EIDRM (the parked one at the next
	 * poll), what the first holds stays as it was, and the old index is
	 * reused only once both have closed. Its limiter (D = I - S within
	 * [-2, 2]) parks a sample of 3 once 2 items are in and 2 sampled. */
	CHECK_RC(xr__tsvc_table_create(s, "gone",
				       &(struct xr_tb_cfg){.capacity = 100, .samples_per_insert = 1,
							      .error_buffer = 2, .seed = 5},
				       ITEM, &why),
		 0);
	int tg = xr__tsvc_table_find(s, "gone");
	CHECK(tg >= 0);
	for (int i = 0; i < 2; i++)
		CHECK_RC(xr__tsvc_insert(s, tg, 1, bytes, ITEM), 0);
	open_trainer(s, tg, &a);
	open_trainer(s, tg, &b);
	CHECK_RC(call(s, &a, XR_TOP_SAMPLE, 2), 2);
	uint64_t gk = a.resp->keys[0];
	CHECK(!ask(s, &b, XR_TOP_SAMPLE, 3, 1000000, 100));
	CHECK(xr__tsvc_poll(s, 150, NULL, NULL) == 0); /* parked */
	CHECK_EQ(views[tg].state, XR_TVIEW_LIVE);
	CHECK_RC(xr__tsvc_table_drop(s, tg), 0);
	CHECK(xr__tsvc_table_dropped(s, tg));
	CHECK_EQ(views[tg].state, XR_TVIEW_DROPPED); /* shown until its last close */
	CHECK_RC(xr__tsvc_table_drop(s, tg), -ENOENT);
	CHECK_RC(xr__tsvc_table_find(s, "gone"), -ENOENT);
	CHECK_RC(xr__tsvc_insert(s, tg, 1, bytes, ITEM), -EIDRM); /* a feed's, were it fed */
	CHECK(xr__tsvc_poll(s, 200, NULL, &mask) == 1);        /* b's parked sample */
	CHECK_EQ(mask, 1ull << b.id);
	CHECK_RC(b.resp->rc, -EIDRM);
	CHECK(strstr(b.resp->why, "dropped"));
	CHECK_RC(call(s, &a, XR_TOP_SAMPLE, 1), -EIDRM);
	CHECK_EQ(xr__tsvc_leases(s, a.id), 2);
	a.req->keys[0] = gk; /* releases still end leases */
	CHECK_RC(call(s, &a, XR_TOP_RELEASE, 1), 1);
	CHECK_EQ(xr__tsvc_leases(s, a.id), 1);
	{
		uint32_t cl;
		int pfd;
		uint64_t psz;
		CHECK_RC(xr__tsvc_open(s, tg, false, &cl, &pfd, &psz), -ENOENT);
	}
	CHECK_RC(xr__tsvc_table_create(s, "gone", &(struct xr_tb_cfg){.capacity = 8, .seed = 3},
				       ITEM, &why),
		 0);
	int t3 = xr__tsvc_table_find(s, "gone");
	CHECK(t3 >= 0 && t3 != tg);
	xr__tsvc_close(s, b.id);
	CHECK(xr__tsvc_table_dropped(s, tg)); /* a has it still */
	CHECK_EQ(views[tg].state, XR_TVIEW_DROPPED);
	xr__tsvc_close(s, a.id);
	CHECK(!xr__tsvc_table_dropped(s, tg)); /* gone: its index free */
	CHECK_EQ(views[tg].state, XR_TVIEW_FREE);
	CHECK_RC(xr__tsvc_table_create(s, "again", &(struct xr_tb_cfg){.capacity = 8, .seed = 4},
				       ITEM, &why),
		 0);
	CHECK_EQ(xr__tsvc_table_find(s, "again"), tg);
	CHECK_EQ(views[tg].state, XR_TVIEW_LIVE);
	char vn[sizeof(views[tg].name)];
	xr__label_get(vn, views[tg].name, sizeof(vn));
	CHECK(!strcmp(vn, "again"));
	CHECK_EQ(views[tg].capacity, 8);
	CHECK_EQ(views[tg].size, 0); /* the old table's figures are not the new one's */
	/* A fed table waits for its feed too: dropped with no trainer, its
	 * index is not reused before xr__tsvc_feed_gone(). */
	xr__tsvc_set_fed(s, t3);
	CHECK_EQ(views[t3].feed, XR_TFEED_ON);
	CHECK_RC(xr__tsvc_table_drop(s, t3), 0);
	CHECK(xr__tsvc_table_dropped(s, t3));
	xr__tsvc_feed_gone(s, t3);
	CHECK(!xr__tsvc_table_dropped(s, t3));
	/* The first store is dropped too, mapped here still: unchanged. */
	CHECK_RC(xr__tsvc_table_drop(s, t), 0);
	CHECK_EQ(h->dropped, 1);
	CHECK_EQ(h->magic, XR_TSTORE_MAGIC);

	munmap(store, store_size);
	close(sfd);
	xr__tsvc_destroy(s);
	printf("ok\n");
	return 0;
}
