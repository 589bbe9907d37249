/* SPDX-License-Identifier: MIT */
#ifndef XR_CONTROL_CLIENT_H
#define XR_CONTROL_CLIENT_H

/* The reader's side of the control protocol (control/proto.h). Each call
 * is one request and its reply; a refusal's reason goes to xr_last_reason(). */

#include "control/proto.h"

/* Connects to engine name's control socket. Returns the socket, -ENOENT
 * when no engine of that name serves one (no socket, or a stale one
 * nobody answers on), or -errno (-EACCES: the socket's mode refused us). */
int xr__ctl_connect(const char *name);

/* ATTACH: on success *arena_fd is the engine's arena, ours to close. */
int xr__ctl_attach(int sock, int *arena_fd, struct xr_ctl_attached *out);

/* SUBSCRIBE, passing efd (or -1). */
int xr__ctl_subscribe(int sock, const struct xr_ctl_subscribe *m, int efd,
		      struct xr_ctl_subscribed *out);

/* DETACH slot; waits for the engine's OK (so that the slot is free when
 * this returns). */
int xr__ctl_detach(int sock, uint32_t slot);

void xr__set_last_reason(const char *fmt, ...);

#endif
