/* SPDX-License-Identifier: MIT */
/*
 * A restore in flight (engine/table_service.h, "Checkpoints"): read by a
 * thread of its own, so that a large checkpoint, or a file system that
 * does not answer, holds up no other table. The test holds the restore's
 * thread (the job hook) and plays the trainers. While table A is being
 * restored:
 *   - table B is served: samples, the engine's inserts
 *   - nothing of A changes: the engine's inserts are -EAGAIN, a trainer's
 *     sample -EAGAIN without a timeout, a priority update waits (it names
 *     an item of the table the restore makes), the restore's own request
 *     is not answered, and a restore through the control path is -EBUSY
 * and once the thread is let go and says so (the waker):
 *   - the restore is answered with the checkpoint's item count, A is the
 *     checkpoint's table, and the waiting update is applied to it
 * Also: a restore while a trainer holds leases is refused at once; a file
 * that is no checkpoint leaves A as it was; a table dropped during its
 * restore answers -EIDRM at once and is freed after; a service destroyed
 * with a restore in flight joins its thread (ASan: nothing leaked), and one
 * whose restore is stuck gives up on it after 2 s (-EBUSY).
 * Labelled threads: TSan runs it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/table_service.h"
#include "table_helpers.h"
#include "table_jobs.h"
#include "table_trainer.h"

/* Has admin trainer tr ask for op (checkpoint or restore) of its table
 * with path at now; held: waits for its thread to reach the hook. */
static bool ask_path(struct xr_tsvc *s, struct trainer *tr, uint32_t op, const char *path,
		     uint64_t now)
{
	char p[XR_TPAGE_PATH_MAX] = {0};

	snprintf(p, sizeof(p), "%s", path);
	memcpy(tr->req->path, p, sizeof(p));
	bool answered = ask(s, tr, op, 1, 0, now);
	if (!answered && holding)
		wait_fd(entered[0], "a job's thread started");
	return answered;
}

/* Lets a job end (held or not) and polls until tr is answered. */
static void job_done(struct xr_tsvc *s, struct trainer *tr, uint64_t now)
{
	wait_fd(woken, "the job's thread ended");
	for (int i = 0; i < 3 && !trainer_answered(tr); i++)
		xr__tsvc_poll(s, now, NULL, NULL);
	CHECK(trainer_answered(tr));
}

int main(void)
{
	char dir[] = "/tmp/xring-restore-XXXXXX", path[XR_TPAGE_PATH_MAX], junk[XR_TPAGE_PATH_MAX];
	struct trainer adm, ta, tb, t2;
	struct xr_tsvc *s;
	uint8_t bytes[ITEM] = {0};
	char why[160];

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/a.ckpt", dir);
	snprintf(junk, sizeof(junk), "%s/junk", dir);
	jobs_init();
	s = jobs_service();
	int a = make(s, "a"), b = make(s, "b");
	struct xr_tb *at = xr__tsvc_table(s, a);
	open_trainer(s, a, true, &adm);
	open_trainer(s, a, false, &ta);
	open_trainer(s, a, false, &t2);
	open_trainer(s, b, false, &tb);

	/* A key of an item the checkpoint will hold, its lease ended. */
	CHECK(ask(s, &ta, XR_TOP_SAMPLE, 1, 0, 1) && ta.resp->rc == 1);
	uint64_t k0 = ta.resp->keys[0];
	ta.req->keys[0] = k0;
	CHECK(ask(s, &ta, XR_TOP_RELEASE, 1, 0, 1) && ta.resp->rc == 1);

	/* The checkpoint (not held), then 50 items more. */
	holding = false;
	CHECK(!ask_path(s, &adm, XR_TOP_CHECKPOINT, path, 2));
	job_done(s, &adm, 3);
	CHECK_RC(adm.resp->rc, ITEMS);
	for (int i = 0; i < 50; i++)
		CHECK_RC(xr__tsvc_insert(s, a, 1, bytes, ITEM), 0);
	CHECK_EQ(at->size, ITEMS + 50);

	/* Refused at once while a trainer holds leases on A. */
	CHECK(ask(s, &ta, XR_TOP_SAMPLE, 3, 0, 4) && ta.resp->rc == 3);
	CHECK(ask_path(s, &adm, XR_TOP_RESTORE, path, 4));
	CHECK_RC(adm.resp->rc, -EBUSY);
	CHECK(strstr(adm.resp->why, "leases"));
	memcpy(ta.req->keys, ta.resp->keys, 3 * sizeof(uint64_t));
	CHECK(ask(s, &ta, XR_TOP_RELEASE, 3, 0, 4) && ta.resp->rc == 3);

	/* The restore starts, and is held. */
	holding = true;
	CHECK(!ask_path(s, &adm, XR_TOP_RESTORE, path, 5));
	/* B is served. */
	CHECK(ask(s, &tb, XR_TOP_SAMPLE, 7, 0, 6));
	CHECK_RC(tb.resp->rc, 7);
	CHECK_RC(xr__tsvc_insert(s, b, 1, bytes, ITEM), 0);
	/* A stands still. */
	CHECK_RC(xr__tsvc_insert(s, a, 1, bytes, ITEM), -EAGAIN);
	CHECK(ask(s, &t2, XR_TOP_SAMPLE, 1, 0, 7));
	CHECK_RC(t2.resp->rc, -EAGAIN);
	CHECK(strstr(t2.resp->why, "restore"));
	ta.req->keys[0] = k0;
	ta.req->prio[0] = 5;
	CHECK(!ask(s, &ta, XR_TOP_UPDATE, 1, 0, 8)); /* waits */
	CHECK_RC(xr__tsvc_restore(s, a, path, why, sizeof(why)), -EBUSY);
	CHECK(strstr(why, "restore of the table is under way"));
	CHECK_EQ(at->size, ITEMS + 50);
	CHECK(!trainer_answered(&adm));

	/* Let go: answered with the checkpoint's items; the update waited
	 * for the table the restore made, whose k0 is the same item. */
	let_go();
	job_done(s, &adm, 9);
	CHECK_RC(adm.resp->rc, ITEMS);
	CHECK_EQ(at->size, ITEMS);
	for (int i = 0; i < 3 && !trainer_answered(&ta); i++)
		xr__tsvc_poll(s, 10, NULL, NULL);
	CHECK(trainer_answered(&ta));
	CHECK_RC(ta.resp->rc, 1);
	CHECK(at->prio[(uint32_t)k0] == 5);
	CHECK_RC(xr__tsvc_insert(s, a, 1, bytes, ITEM), 0);

	/* A file that is no checkpoint leaves A as it was. */
	int fd = open(junk, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, "not a checkpoint at all", 23) == 23);
	close(fd);
	holding = false;
	CHECK(!ask_path(s, &adm, XR_TOP_RESTORE, junk, 11));
	job_done(s, &adm, 12);
	CHECK(adm.resp->rc < 0);
	CHECK(strstr(adm.resp->why, "not restored"));
	CHECK_EQ(at->size, ITEMS + 1);

	/* A table dropped during its restore answers -EIDRM at once, and
	 * goes after it. */
	holding = true;
	CHECK(!ask_path(s, &adm, XR_TOP_RESTORE, path, 13));
	CHECK_RC(xr__tsvc_table_drop(s, a), 0);
	CHECK(ask(s, &t2, XR_TOP_SAMPLE, 1, 1000, 14));
	CHECK_RC(t2.resp->rc, -EIDRM);
	xr__tsvc_close(s, t2.id);
	xr__tsvc_close(s, ta.id);
	CHECK(xr__tsvc_table_live(s, a)); /* the job still writes its store */
	let_go();
	job_done(s, &adm, 15);
	CHECK_RC(adm.resp->rc, ITEMS);
	xr__tsvc_close(s, adm.id);
	CHECK(!xr__tsvc_table_live(s, a)); /* freed with its last trainer */

	/* Destroyed with a restore in flight: its thread joined. */
	memcpy(tb.req->keys, tb.resp->keys, 7 * sizeof(uint64_t));
	CHECK(ask(s, &tb, XR_TOP_RELEASE, 7, 0, 16) && tb.resp->rc == 7);
	struct trainer adm2;
	open_trainer(s, b, true, &adm2);
	CHECK(!ask_path(s, &adm2, XR_TOP_RESTORE, path, 16));
	let_go();
	CHECK_RC(xr__tsvc_destroy(s), 0);
	wait_fd(woken, "the destroyed restore's thread ended");

	/* One stuck (the hook does not return till let go): given up after
	 * 2 s; let go, its first read finds it cancelled. */
	s = jobs_service();
	int e = make(s, "e");
	struct trainer adm3;
	open_trainer(s, e, true, &adm3);
	CHECK(!ask_path(s, &adm3, XR_TOP_RESTORE, path, 1));
	CHECK_RC(xr__tsvc_destroy(s), -EBUSY);
	xr_test_abandoned = s; /* still the thread's: kept reachable (LeakSanitizer) */
	let_go();
	wait_fd(woken, "the stuck restore's thread ended");

	CHECK(unlink(path) == 0 && unlink(junk) == 0);
	CHECK(rmdir(dir) == 0);
	printf("a restore in flight: the other table served, its own held still, answered "
	       "after\n");
	return 0;
}
