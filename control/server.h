/* SPDX-License-Identifier: MIT */
#ifndef XR_CONTROL_SERVER_H
#define XR_CONTROL_SERVER_H

/* The engine's side of the control protocol: the public API is
 * xring/server.h; this is what tests may reach in addition. */

#include <stdbool.h>
#include <stdint.h>

/* Tests: whether servers started from now on ask the kernel to refuse
 * descriptors from peers (SO_PASSRIGHTS, Linux 6.16). Off, the server's own
 * refusal and the closing thread are what stand between a peer's
 * descriptors and the control thread: the path older kernels take. */
void xr__server_test_passrights(bool on);

/* Tests: how many descriptors of all uids may wait to be closed before
 * the server stops accepting for a while (0: the default, 1024). */
void xr__server_test_closing_cap(uint32_t n);

struct xr_server;

/* Tests: how many of uid's descriptors wait behind a stuck close (see
 * xr__closer_stuck): what the server refuses the uid for at 64. */
uint32_t xr__server_closing_stuck(struct xr_server *c, uint32_t uid);

#endif
