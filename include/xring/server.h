/* SPDX-License-Identifier: MIT */
#ifndef XRING_SERVER_H
#define XRING_SERVER_H

/*
 * The control server: the Unix socket through which readers attach to an
 * arena (docs/control-protocol.md). One thread per server, whatever the
 * number of readers. It checks who connects (SO_PEERCRED against the
 * allow-lists), hands each admitted reader the arena read-only and a page of
 * its own to write its cursors in, wakes sleeping readers through their
 * connection, and frees a reader's slot the moment its connection ends.
 *
 * The server holds its arena: stop the server before destroying the arena
 * (xr_arena_destroy() returns -EBUSY until then). Nothing a peer does can
 * block or stall the server's thread or the arena's writers
 * (docs/threat-model.md).
 */

#include <stdint.h>

#include "xring/arena.h"
#include "xring/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xr_server xr_server;

/* Who may attach, and how much each may take. Zero fields take the
 * defaults. */
typedef struct xr_server_opts {
	const uint32_t *allow_uid;   /* peers with one of these uids, */
	uint32_t n_allow_uid;
	const uint32_t *allow_gid;   /* or one of these among their groups, */
	uint32_t n_allow_gid;        /* may attach; the engine's own uid always may */
	uint32_t idle_timeout_ms;    /* a connection must ATTACH within this; 0: 5000 */
	uint32_t max_conns_per_uid;  /* open connections of one uid; 0: max_readers + 8
				      * (the table holds 2 * max_readers + 16 in all) */
	uint32_t max_readers_per_uid; /* reader slots one uid may hold; 0: max_readers */
	uint32_t max_requests_per_uid; /* requests per second over all of one uid's
					* connections, in bursts of up to twice that;
					* 0: 256. Each connection alone: 16/s, bursts
					* of 32 */
} xr_server_opts;

/*
 * Starts serving arena a (its creator's handle) at DIR/NAME.sock, DIR being
 * $XRING_RUN_DIR if set, else /run/xring, else /tmp/xring-UID for an engine
 * that cannot use /run/xring. The directory must be a real directory owned
 * by this uid or root and writable by nobody else; it is made (0755) if
 * missing. The socket's mode is 0660 with allow_gid[0] as its group, or 0666
 * when allow_uid names users (the allow-list, checked at connect, is then
 * the gate).
 *
 * Returns 0 and the server in *out, or -EINVAL (also a relative
 * XRING_RUN_DIR), -ENAMETOOLONG (the socket's path would be longer than a
 * Unix socket address holds, 107 bytes), -EADDRINUSE (another process
 * serves that name), XR_EUNTRUSTED (the directory belongs to another user
 * or others may write it), or -errno; xr_server_last_note() then says what
 * is wrong and what to do.
 */
XR_API int xr_server_start(xr_arena *a, const xr_server_opts *o, xr_server **out);

/* Why the last xr_server_start() in this thread failed, or "". */
XR_API const char *xr_server_last_note(void);

/* The socket's path (valid until xr_server_stop()). */
XR_API const char *xr_server_path(const xr_server *s);

/*
 * Stops the server: removes the socket, hangs up on every reader (each sees
 * it at once) and frees their slots, so that the arena can be destroyed.
 * Call xr_arena_close() first for readers to see a clean stop (XR_ECLOSED
 * after the last record) rather than a lost engine. Never waits on a peer.
 * NULL is ignored.
 */
XR_API void xr_server_stop(xr_server *s);

#ifdef __cplusplus
}
#endif
#endif
