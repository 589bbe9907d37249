/* SPDX-License-Identifier: MIT */
#ifndef XR_CONTROL_SERVER_H
#define XR_CONTROL_SERVER_H

/* The engine's side of the control protocol (control/proto.h); started by
 * xr_arena_serve(), stopped by xr_arena_destroy(). */

struct xr_ctl;

/* Hangs up on every reader, stops the thread, removes the socket. */
void xr__ctl_stop(struct xr_ctl *c);

#endif
