/* SPDX-License-Identifier: MIT */
#ifndef XR_CONTROL_SERVER_H
#define XR_CONTROL_SERVER_H

/* The engine's side of the control protocol: the public API is
 * xring/server.h; this is what tests may reach in addition. */

#include <stdbool.h>

/* Tests: whether servers started from now on ask the kernel to refuse
 * descriptors from peers (SO_PASSRIGHTS, Linux 6.16). Off, the server's own
 * refusal and the closing thread are what stand between a peer's
 * descriptors and the control thread: the path older kernels take. */
void xr__server_test_passrights(bool on);

#endif
