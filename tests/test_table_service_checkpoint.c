/* SPDX-License-Identifier: MIT */
/*
 * A checkpoint in flight (engine/table_service.h, "Checkpoints"): the test
 * holds the checkpoint's thread (the job hook) and plays the trainers.
 * While table A's file is being written:
 *   - table B is served: samples, the engine's inserts
 *   - nothing of A changes: the engine's inserts are -EAGAIN; a trainer's
 *     sample is -EAGAIN without a timeout, -ETIMEDOUT at its deadline with
 *     one; the checkpoint's own request is not answered
 *   - what must not wait is answered at once and done to A after: a
 *     release, a refused sample's releases, priority updates (checked at
 *     once: one naming no item is refused), a trainer's close (its slot
 *     free at once, its leases ended after)
 * and once the thread is let go and says so (the waker):
 *   - the checkpoint is answered with A's item count, and the file
 *     restores into a table of the same shape with those items
 *   - the leases taken are ended and the updates applied
 *   - a table dropped during its checkpoint answers -EIDRM at once, and is
 *     freed after it
 * Then a service destroyed with a checkpoint in flight stops it and joins
 * its thread (ASan: nothing leaked), and one whose checkpoint is stuck in
 * a write gives up on it after 2 s (-EBUSY), its file's name removed.
 * Labelled threads: TSan runs it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/table_service.h"
#include "table_helpers.h"
#include "table_jobs.h"
#include "table_trainer.h"

/* Has admin trainer tr ask for a checkpoint of its table to dir/file at
 * now, and waits for its thread to reach the hook (held there). */
static void checkpoint_held(struct xr_tsvc *s, struct trainer *tr, const char *dir,
			    const char *file, uint64_t now, char path[XR_TPAGE_PATH_MAX])
{
	snprintf(path, XR_TPAGE_PATH_MAX, "%s/%s", dir, file);
	memcpy(tr->req->path, path, XR_TPAGE_PATH_MAX);
	CHECK(!ask(s, tr, XR_TOP_CHECKPOINT, 1, 0, now));
	wait_fd(entered[0], "a checkpoint's thread started");
}

int main(void)
{
	char dir[] = "/tmp/xring-ckpt-XXXXXX", path[XR_TPAGE_PATH_MAX];
	struct trainer adm, ta, tc, td, tb;
	struct xr_tsvc *s;
	uint8_t bytes[ITEM] = {0};

	CHECK(mkdtemp(dir) != NULL);
	jobs_init();
	s = jobs_service();
	int a = make(s, "a"), b = make(s, "b");
	struct xr_tb *ta_tab = xr__tsvc_table(s, a);
	open_trainer(s, a, true, &adm);
	open_trainer(s, a, false, &ta);
	open_trainer(s, a, false, &tc);
	open_trainer(s, a, false, &td);
	open_trainer(s, b, false, &tb);
	/* Leases on A from before: ta's to release during the checkpoint,
	 * tc's to hold when it closes during it. */
	CHECK(ask(s, &ta, XR_TOP_SAMPLE, 10, 0, 1) && ta.resp->rc == 10);
	CHECK(ask(s, &tc, XR_TOP_SAMPLE, 5, 0, 1) && tc.resp->rc == 5);
	CHECK(ask(s, &td, XR_TOP_SAMPLE, 4, 0, 1) && td.resp->rc == 4);
	CHECK_EQ(ta_tab->leases, 19);

	/* The checkpoint starts, and is held. */
	checkpoint_held(s, &adm, dir, "a.ckpt", 2, path);

	/* B is served. */
	CHECK(ask(s, &tb, XR_TOP_SAMPLE, 7, 0, 3));
	CHECK_RC(tb.resp->rc, 7);
	CHECK_RC(xr__tsvc_insert(s, b, 1, bytes, ITEM), 0);

	/* A stands still: the engine's inserts wait; a sample is -EAGAIN
	 * without a timeout, -ETIMEDOUT at its deadline with one. */
	CHECK_RC(xr__tsvc_insert(s, a, 1, bytes, ITEM), -EAGAIN);
	uint64_t samples = ta_tab->lim.samples;
	struct trainer t2;
	open_trainer(s, a, false, &t2);
	CHECK(ask(s, &t2, XR_TOP_SAMPLE, 1, 0, 4));
	CHECK_RC(t2.resp->rc, -EAGAIN);
	CHECK(strstr(t2.resp->why, "checkpoint"));
	CHECK(!ask(s, &t2, XR_TOP_SAMPLE, 1, 1000, 5));
	uint64_t next;
	CHECK(xr__tsvc_poll(s, 1004, &next, NULL) == 0);
	CHECK_EQ(next, 1005);
	CHECK(xr__tsvc_poll(s, 1005, NULL, NULL) == 1);
	CHECK_RC(t2.resp->rc, -ETIMEDOUT);
	/* What must not wait is answered now and done after: a release; a
	 * sample's releases (the sample itself refused); updates, checked
	 * now (one names no item); a close, whose slot is free at once. */
	uint64_t ta_keys[10], td_keys[4];
	memcpy(ta_keys, ta.resp->keys, sizeof(ta_keys));
	memcpy(td_keys, td.resp->keys, sizeof(td_keys));
	memcpy(ta.req->keys, ta_keys, sizeof(ta_keys));
	CHECK(ask(s, &ta, XR_TOP_RELEASE, 10, 0, 6));
	CHECK_RC(ta.resp->rc, 10);
	ta.req->keys[0] = ta_keys[0];
	ta.req->keys[1] = ta_keys[1];
	ta.req->keys[2] = 12345; /* no item's key */
	for (int i = 0; i < 3; i++)
		ta.req->prio[i] = 5;
	CHECK(ask(s, &ta, XR_TOP_UPDATE, 3, 0, 7));
	CHECK_RC(ta.resp->rc, 2);
	CHECK_EQ(ta.resp->refused, 1);
	memcpy(td.req->keys, td_keys, sizeof(td_keys));
	td.req->n_release = 4;
	CHECK(ask(s, &td, XR_TOP_SAMPLE, 1, 0, 8));
	CHECK_RC(td.resp->rc, -EAGAIN);
	CHECK_EQ(xr__tsvc_leases(s, td.id), 0);
	uint32_t tc_id = tc.id;
	xr__tsvc_close(s, tc.id);
	struct trainer t4;
	open_trainer(s, a, false, &t4);
	CHECK_EQ(t4.id, tc_id);
	/* ...and none of it has touched the table the thread is reading. */
	CHECK_EQ(ta_tab->leases, 10 + 5 + 4);
	CHECK_EQ(ta_tab->lim.samples, samples);
	CHECK_EQ(ta_tab->size, ITEMS);
	CHECK(ta_tab->prio[(uint32_t)ta_keys[0]] == 1);
	CHECK(!trainer_answered(&adm));

	/* Let go: the waker says it is done, the next poll answers, and
	 * what was taken is done. */
	let_go();
	wait_fd(woken, "the checkpoint's thread ended");
	CHECK(xr__tsvc_poll(s, UINT64_MAX / 2, NULL, NULL) == 1);
	CHECK(trainer_answered(&adm));
	CHECK_RC(adm.resp->rc, ITEMS);
	CHECK_EQ(ta_tab->leases, 0);
	CHECK(ta_tab->prio[(uint32_t)ta_keys[0]] == 5 && ta_tab->prio[(uint32_t)ta_keys[1]] == 5);
	CHECK(ta_tab->prio[(uint32_t)ta_keys[2]] == 1);
	CHECK_RC(xr__tsvc_insert(s, a, 1, bytes, ITEM), 0);

	/* The file is A as it stood: a table of its shape restores from it. */
	char why[160];
	int c = make(s, "c");
	CHECK_RC(xr__tsvc_restore(s, c, path, why, sizeof(why)), ITEMS);

	/* A table dropped while its checkpoint is written goes after it. */
	checkpoint_held(s, &adm, dir, "a2.ckpt", 7, path);
	CHECK_RC(xr__tsvc_table_drop(s, a), 0);
	CHECK(ask(s, &t2, XR_TOP_SAMPLE, 1, 1000, 9)); /* at once */
	CHECK_RC(t2.resp->rc, -EIDRM);
	xr__tsvc_poll(s, 20, NULL, NULL);
	CHECK(!trainer_answered(&adm)); /* its file is still being written */
	xr__tsvc_close(s, t4.id);
	xr__tsvc_close(s, td.id);
	xr__tsvc_close(s, ta.id);
	xr__tsvc_close(s, t2.id);
	CHECK(xr__tsvc_table_live(s, a)); /* the job still reads it */
	let_go();
	wait_fd(woken, "the second checkpoint's thread ended");
	CHECK(xr__tsvc_poll(s, 21, NULL, NULL) == 1);
	CHECK(trainer_answered(&adm));
	CHECK_RC(adm.resp->rc, ITEMS + 1);
	CHECK(access(path, F_OK) == 0);
	unlink(path);
	xr__tsvc_close(s, adm.id);
	CHECK(!xr__tsvc_table_live(s, a)); /* freed with its last trainer */

	/* The trainer that asked closes while it is written: its slot is
	 * another's at once, and the checkpoint's answer goes to nobody (not
	 * to the new trainer, whose first request has the same number). */
	struct trainer adm4, tn;
	open_trainer(s, b, true, &adm4);
	checkpoint_held(s, &adm4, dir, "b2.ckpt", 22, path);
	uint32_t asked = adm4.id;
	xr__tsvc_close(s, adm4.id);
	const char *cwhy = NULL;
	CHECK_RC(xr__tsvc_table_create(s, "empty", &(struct xr_tb_cfg){.capacity = 8, .seed = 1},
				       ITEM, &cwhy),
		 0);
	open_trainer(s, xr__tsvc_table_find(s, "empty"), false, &tn);
	CHECK_EQ(tn.id, asked);
	CHECK(!ask(s, &tn, XR_TOP_SAMPLE, 1, 1000, 23)); /* parked: nothing to sample */
	let_go();
	wait_fd(woken, "the fourth checkpoint's thread ended");
	CHECK(xr__tsvc_poll(s, 24, NULL, NULL) == 0);
	CHECK(!trainer_answered(&tn));
	CHECK(xr__tsvc_poll(s, 1023, NULL, NULL) == 1);
	CHECK_RC(tn.resp->rc, -ETIMEDOUT);
	CHECK(access(path, F_OK) == 0); /* written all the same */
	unlink(path);

	/* Destroyed with a checkpoint in flight: it is stopped, its thread
	 * joined, and its file either whole or gone. */
	struct trainer adm2;
	open_trainer(s, b, true, &adm2);
	checkpoint_held(s, &adm2, dir, "b.ckpt", 8, path);
	let_go();
	xr__tsvc_destroy(s);
	/* Joined, so its waker has run: taken here, not by the next wait. */
	wait_fd(woken, "the destroyed checkpoint's thread ended");
	if (access(path, F_OK) == 0) {
		CHECK_RC(xr__tsvc_create(&s), 0);
		int d = make(s, "d");
		CHECK_RC(xr__tsvc_restore(s, d, path, why, sizeof(why)), ITEMS + 1);
		xr__tsvc_destroy(s);
		unlink(path);
	}
	/* One stuck (the hook does not return till let go): the service
	 * gives up on it after 2 s and frees nothing it may touch; let go, it
	 * finds itself cancelled and leaves no file. */
	s = jobs_service();
	int e = make(s, "e");
	struct trainer adm3;
	open_trainer(s, e, true, &adm3);
	checkpoint_held(s, &adm3, dir, "e.ckpt", 1, path);
	CHECK_RC(xr__tsvc_destroy(s), -EBUSY);
	xr_test_abandoned = s; /* still the thread's: kept reachable (LeakSanitizer) */
	let_go(); /* its first write fails: cancelled */
	wait_fd(woken, "the stuck checkpoint's thread ended");
	CHECK(access(path, F_OK) < 0);

	snprintf(path, sizeof(path), "%s/a.ckpt", dir);
	CHECK(unlink(path) == 0);
	CHECK(rmdir(dir) == 0);
	printf("a checkpoint in flight: the other table served, its own held still, answered "
	       "after\n");
	return 0;
}
