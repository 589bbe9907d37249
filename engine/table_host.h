/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_TABLE_HOST_H
#define XR_ENGINE_TABLE_HOST_H

/*
 * The thread that runs the engine's table service (engine/table_service.h)
 * and what the control thread asks of it: create a table, open one for a
 * trainer, forget a connection's trainers.
 *
 * Doorbells. A trainer gets its end of a socket pair with its page, as
 * engine/service_base.h describes. A trainer that fills its socket only
 * fills its own: the service drains at most a few bytes per doorbell per
 * round, and serves at most one request per trainer per round.
 *
 * Locking. The service's state is the table thread's; the control thread
 * takes the host's mutex to create tables and open or close trainers, which
 * the thread holds only while it polls the pages: engine-private, never
 * shared with a peer, never held across a system call that waits.
 */

#include <stddef.h>
#include <stdint.h>

#include "control/proto.h"
#include "control/server.h"
#include "shm/layout.h"
#include "xring/record.h"

struct xr_thost;

/* Starts the table thread, of engine `engine` (NULL: it feeds no tables:
 * feeds attach to the engine by its name, as readers), keeping the tables'
 * figures in `views` (the arena's, XR_MAX_TABLES of them, for tools; NULL:
 * none). 0, or -errno with why. */
int xr__thost_create(const char *engine, struct xr_table_view *views, struct xr_thost **out,
		     char *why, size_t len);
/* Stops the thread; closes every trainer and table. */
void xr__thost_destroy(struct xr_thost *h);
/* Feeds attach from here on: the engine's control socket serves. Tables
 * made before (the engine's declared ones, which exist before anyone can
 * connect) start being fed now. */
void xr__thost_serve(struct xr_thost *h);
/* Replaces table `table` by the checkpoint at path, as the engine's own
 * request (at start: a declared table's restore=). The items restored, or
 * -errno with why. */
int xr__thost_table_restore(struct xr_thost *h, uint32_t table, const char *path, char *why,
			    size_t len);

/* The control thread's verbs (control/server.h's table hooks). */
/* shape: the fed stream's records' shape when it is an Experience stream
 * (the feed makes transitions of them with XR_CTL_TABLE_TRANSITION), else
 * NULL. */
int xr__thost_table_create(struct xr_thost *h, const struct xr_ctl_caller *who,
			   const struct xr_ctl_table_create *m, const xr_exp_shape *trans,
			   struct xr_ctl_table_created *r, char *why, size_t len);
int xr__thost_table_open(struct xr_thost *h, const struct xr_ctl_caller *who,
			 const struct xr_ctl_table_open *m, struct xr_ctl_table_opened *r, int fds[3],
			 char *why, size_t len);
/* Drops table m->name (the engine's uid, or the uid that created it;
 * -EPERM for others, -ENOENT): its name is free at once; its trainers'
 * requests fail -EIDRM from the thread's next round, its feed's reader
 * detaches, and its memory goes with its last trainer
 * (engine/table_service.h). */
int xr__thost_table_drop(struct xr_thost *h, const struct xr_ctl_caller *who,
			 const struct xr_ctl_table_open *m, char *why, size_t len);
/* Connection conn ended: its trainers are closed (their leases end). */
void xr__thost_gone(struct xr_thost *h, uint64_t conn);

#endif
