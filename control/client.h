/* SPDX-License-Identifier: MIT */
#ifndef XR_CONTROL_CLIENT_H
#define XR_CONTROL_CLIENT_H

/* The reader's side of the control protocol (control/proto.h). Each call
 * is one request and its reply; a refusal's reason goes to xr_last_reason(). */

#include <stdbool.h>
#include <sys/socket.h>

#include "control/proto.h"
#include "util/fs.h"

/* Connects to engine name's control socket, looking only in directories t
 * trusts, and checks who answers: *peer has its credentials. Returns the
 * socket; -ENOENT when no engine of that name serves one (no socket, or a
 * stale one nobody answers on); XR_EUNTRUSTED when the only one found is
 * served by, or lives in a directory of, a uid t does not trust; -EACCES
 * when this user may not reach it; or -errno. The reason, naming the path,
 * is in xr_last_reason(). */
int xr__ctl_connect(const char *name, const struct xr_trust *t, struct ucred *peer);

/* The same, and the socket's path into where[0..where_len). */
int xr__ctl_connect_at(const char *name, const struct xr_trust *t, struct ucred *peer,
		       char *where, size_t where_len);

/* Sends a request and waits for its reply of type ok_type into reply,
 * and an fd with it when fd_out is given. The reply's body must be
 * reply_len bytes long, or with got, at most that (its length into *got).
 * WAKE messages met on the way are dropped: they only say a batch may be
 * ready. Returns 0, the engine's error code (reason saved), or -errno. */
int xr__ctl_request(int sock, uint16_t type, const void *body, uint32_t len, uint16_t ok_type,
		    void *reply, uint32_t reply_len, uint32_t *got, int *fd_out);

/* The same with `want` descriptors (up to 3) into fds_out[]: the reply
 * must bring exactly that many, or it is a protocol error. */
int xr__ctl_request_fds(int sock, uint16_t type, const void *body, uint32_t len, uint16_t ok_type,
			void *reply, uint32_t reply_len, uint32_t *got, int *fds_out, int want);

/* ATTACH: on success *arena_fd is the engine's arena, ours to close. */
int xr__ctl_attach(int sock, int *arena_fd, struct xr_ctl_attached *out);

/* SUBSCRIBE: on success *page_fd is this reader's peer page, ours to close. */
int xr__ctl_subscribe(int sock, const struct xr_ctl_subscribe *m, int *page_fd,
		      struct xr_ctl_subscribed *out);

/* DETACH slot; waits for the engine's OK (so that the slot is free when
 * this returns). */
int xr__ctl_detach(int sock, uint32_t slot);

/* Reads and drops every WAKE waiting on sock without blocking. Returns
 * whether the engine hung up. */
bool xr__ctl_drain(int sock);

void xr__set_last_reason(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The wait a rate refusal's reason names ("... retry in N ms"), in ns, or
 * 0 when xr_last_reason() names none. */
uint64_t xr__reason_retry_ns(void);

#endif
