/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_TABLE_SERVICE_H
#define XR_ENGINE_TABLE_SERVICE_H

/*
 * The engine's replay tables and the trainers that use them (docs/replay.md,
 * "The service"). One thread owns all of it: the tables' bookkeeping
 * (table/table.h, single-threaded), their item stores, and each trainer's
 * page and leases. A checkpoint alone is written by a thread of its own,
 * during which its table stands still and the others are served (see
 * "Checkpoints" below). Trainers ask through their pages (shm/table_layout.h);
 * the service reads each request once into its own memory and answers it.
 *
 * Trust. A trainer writes only its own page. What it writes there is
 * untrusted: an op or a count out of range, keys it does not hold, a
 * priority that is not a number, a sequence number that jumps, are each
 * answered with an error or counted as refused, and touch nothing else.
 * Leases are the service's own record, per trainer (keyed by the client
 * index the control thread holds for its connection, never by anything in
 * shared memory): a trainer can release only leases it holds, and
 * xr__tsvc_close() ends all of them. The work of one poll is bounded by
 * the number of trainers times one request each, whatever they write.
 *
 * Waiting. A sample the rate limiter does not allow yet, and an insert it
 * does not allow or that finds a full table of leased items, is parked,
 * retried at each poll, and answered -ETIMEDOUT at its deadline (at most
 * XR_TSVC_TIMEOUT_MAX_NS): nothing waits for ever. A sample larger than the
 * limiter could ever allow at once is refused at once (-EINVAL).
 *
 * Checkpoints. A trainer's CHECKPOINT starts a thread that writes the
 * file, and is answered by the first poll after it ends. Meanwhile nothing
 * of that table changes: its samples and inserts wait, parked (for at most
 * their timeouts, -EAGAIN without one), as do a CHECKPOINT or RESTORE of
 * it; the engine's inserts get -EAGAIN. Releases (a sample's too),
 * priority updates and a trainer's close are answered at once and done to
 * the table after the file is written; a drop frees the table after.
 * Every other table is served as before. A trainer's RESTORE is read by
 * a thread of its own the same way (refused at once while any trainer
 * holds a lease on the table): the table stands still, its priority
 * updates wait too (they name items of the table the restore makes), and
 * the table is replaced by the first poll after the thread ends, which
 * answers the RESTORE.
 */

#include <stdbool.h>
#include <stdint.h>

#include "shm/layout.h"
#include "shm/table_layout.h"
#include "table/table.h"

#define XR_TSVC_TABLES_MAX 16
#define XR_TSVC_CLIENTS_MAX 64 /* a bit each in xr__tsvc_poll's answered */
#define XR_TSVC_LEASES_MAX 65536u       /* leases one trainer may hold */
#define XR_TSVC_TIMEOUT_MAX_NS 3600000000000ull

struct xr_tsvc;

int xr__tsvc_create(struct xr_tsvc **out);
/* The clock a parked request's deadline is counted from (read when the
 * request is first seen); without one (tests), the now_ns of the poll. */
void xr__tsvc_set_clock(struct xr_tsvc *s, uint64_t (*clock)(void));
/* Called from a checkpoint's thread when it is done: the caller's loop
 * should poll again (the engine's host kicks its thread). Without one
 * (tests), the next poll sees it anyway. */
void xr__tsvc_set_waker(struct xr_tsvc *s, void (*wake)(void *), void *ctx);
/* Tests: hook(ctx) runs on each checkpoint's thread before it writes, so
 * a test can hold a checkpoint in flight. */
void xr__tsvc_set_job_hook(struct xr_tsvc *s, void (*hook)(void *), void *ctx);
/* The arena's table views (shm/layout.h) this service keeps up to date for
 * tools: entry i is table index i. Without (tests), none. */
void xr__tsvc_set_views(struct xr_tsvc *s, struct xr_table_view *views);
/* Says in `table`'s view that uid created it. */
void xr__tsvc_set_creator(struct xr_tsvc *s, int table, uint32_t uid);
/* Stops every checkpoint being written (its file removed), closes every
 * client and drops every table. -EBUSY: a checkpoint's thread did not stop
 * within 2 s (stuck in a write): nothing is freed, for it may still touch
 * any of it, and its file's name is removed; the caller leaves it to the
 * process's exit. Else 0. */
int xr__tsvc_destroy(struct xr_tsvc *s);

/* Makes table `name` (1..XR_TABLE_NAME_MAX of [A-Za-z0-9_.-]) with items
 * of item_size bytes (1..1 MiB). -EEXIST, -ENOSPC (XR_TSVC_TABLES_MAX),
 * -EINVAL with *why, -ENOMEM. */
int xr__tsvc_table_create(struct xr_tsvc *s, const char *name, const struct xr_tb_cfg *cfg,
			  uint32_t item_size, const char **why);
/* The table's index, or -ENOENT (dropped tables have no name). */
int xr__tsvc_table_find(const struct xr_tsvc *s, const char *name);
/* Drops `table`: its name is free at once (a new table may take it), and
 * every request of its trainers but a release, new or parked, is answered
 * -EIDRM from the next poll on; their leases and mappings stay theirs until they
 * close. The table itself, bookkeeping and store, goes when its last
 * trainer closes and, for a fed table, once xr__tsvc_feed_gone() says its
 * feed is torn down (until then its index is not reused). 0, -ENOENT. */
int xr__tsvc_table_drop(struct xr_tsvc *s, int table);
/* The feed of dropped `table` is torn down (its reader detached). */
void xr__tsvc_feed_gone(struct xr_tsvc *s, int table);
/* Whether index `table` holds a table, dropped or not. */
bool xr__tsvc_table_live(const struct xr_tsvc *s, int table);
/* Whether `table` was dropped (its index not yet reused). */
bool xr__tsvc_table_dropped(const struct xr_tsvc *s, int table);
/* Its bookkeeping, for stats and checkpoints (service thread only). */
struct xr_tb *xr__tsvc_table(struct xr_tsvc *s, int table);
uint32_t xr__tsvc_item_size(const struct xr_tsvc *s, int table);
/* The engine feeds `table`: trainers' inserts are refused (-EPERM), so no
 * trainer can take the rate limiter's room for inserts from the feed. */
void xr__tsvc_set_fed(struct xr_tsvc *s, int table);
/* Shows the feed's state (XR_TFEED_*) and drops in the store's header. */
void xr__tsvc_show_feed(struct xr_tsvc *s, int table, uint32_t state, uint64_t dropped);
/* Says in the store's header what `table`'s items are (enum
 * xr_table_item): Experience records of shape sh, or transitions of them
 * (xring/table.h). */
void xr__tsvc_set_item(struct xr_tsvc *s, int table, uint32_t kind, const xr_exp_shape *sh);
/* Replaces `table` by the checkpoint at path now, on the caller's thread
 * (the engine's own start: no trainer is served meanwhile). Returns the
 * items restored, or -errno with why (as a trainer's RESTORE; -EBUSY
 * while a checkpoint or a restore of it runs). */
int xr__tsvc_restore(struct xr_tsvc *s, int table, const char *path, char *why, size_t len);
/* Its item store: the memfd to hand out (read-only: writable mappings are
 * sealed off once the service's own is made) and its size. */
int xr__tsvc_store_fd(const struct xr_tsvc *s, int table, uint64_t *size);

/* A trainer opens table `table`: a client index, the memfd of its page
 * (read-write, sealed against resizing) and the page's size. The caller
 * owns the fd it hands out and closes its copy. With admin (the engine's
 * own uid), it may also checkpoint and restore the table: files the engine
 * writes and reads as its uid, at paths the trainer names. -ENOSPC,
 * -ENOENT, -ENOMEM. */
int xr__tsvc_open(struct xr_tsvc *s, int table, bool admin, uint32_t *client, int *page_fd,
		  uint64_t *page_size);
/* The trainer is gone: its leases end, a parked request is dropped (its
 * leases after its table's checkpoint, while one is being written). */
void xr__tsvc_close(struct xr_tsvc *s, uint32_t client);
/* The service's mapping of a client's page (tests play trainers with it). */
void *xr__tsvc_page(struct xr_tsvc *s, uint32_t client);
/* Leases client holds now. */
uint64_t xr__tsvc_leases(const struct xr_tsvc *s, uint32_t client);

/* Serves every new request and every parked one that may go now, and
 * answers the parked ones whose deadline passed. Returns the number of
 * answers given; *next_ns (when not NULL) is the earliest deadline still
 * parked, or UINT64_MAX; *answered (when not NULL) gets bit c set for each
 * client c answered. The figures in each store's header are brought up to
 * date. */
int xr__tsvc_poll(struct xr_tsvc *s, uint64_t now_ns, uint64_t *next_ns, uint64_t *answered);

/* The engine's own insert (a table fed from a stream): len bytes (at most
 * the item size; the rest of the slot is zeroed) at priority p. Returns 0,
 * or the table's -EAGAIN / -EBUSY / -EINVAL (xr__tb_insert); -EAGAIN too
 * while its checkpoint is being written. */
int xr__tsvc_insert(struct xr_tsvc *s, int table, double p, const void *bytes, uint32_t len);

#endif
