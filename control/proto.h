/* SPDX-License-Identifier: MIT */
#ifndef XR_CONTROL_PROTO_H
#define XR_CONTROL_PROTO_H

/*
 * The control protocol between an engine and its readers: messages on a
 * SOCK_SEQPACKET Unix socket (one message per packet, so no framing), in
 * the host's byte order (the socket never leaves the machine). Every
 * message is a header and a fixed body per type; anything else is answered
 * with ERROR and the connection is closed. docs/control-protocol.md has the
 * same tables with the sequence of a session.
 *
 *   reader                              engine
 *   ATTACH            ------------>     checks SO_PEERCRED against the allow-list
 *                     <------------     ATTACHED + SCM_RIGHTS(arena fd)
 *   SUBSCRIBE         ------------>     claims a reader slot, keeps the eventfd
 *    + SCM_RIGHTS(eventfd)
 *                     <------------     SUBSCRIBED (slot)
 *   ... reads through shared memory; the engine writes the eventfd ...
 *   DETACH            ------------>     frees the slot, closes the eventfd
 *                     <------------     OK
 * Closing the socket (or dying) is a detach. The engine closing it means the
 * engine is gone.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shm/layout.h"
#include "xring/reader.h"

#define XR_CTL_MAGIC 0x31435258u /* "XRC1" */
#define XR_CTL_VERSION 1u

enum xr_ctl_type {
	XR_CTL_ATTACH = 1,
	XR_CTL_SUBSCRIBE = 2,
	XR_CTL_DETACH = 3,
	XR_CTL_OK = 0x81,
	XR_CTL_ATTACHED = 0x82,
	XR_CTL_SUBSCRIBED = 0x83,
	XR_CTL_ERROR = 0xff,
};

struct xr_ctl_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t len;    /* body bytes after this header */
	uint32_t id;     /* request id, echoed in the reply */
};

/* ATTACHED: what the reader needs to trust the fd that comes with it. */
struct xr_ctl_attached {
	uint32_t layout_version;
	uint32_t max_readers;
	uint64_t fingerprint;
	int32_t engine_pid;
	uint32_t pad_;
};

struct xr_ctl_filter {
	uint32_t n_games, n_players;
	uint32_t min_turn, terminal;
	uint32_t has_reward_range;
	float reward_min, reward_max;
	uint32_t pad_;
	double sample_rate;
	uint64_t sample_seed;
	xr_id_range games[XR_FILTER_RANGES_MAX];
	xr_id_range players[XR_FILTER_RANGES_MAX];
};

#define XR_CTL_SUB_EVENTFD 1u /* an eventfd comes with the message */

struct xr_ctl_subscribe {
	char stream[XR_STREAM_NAME_MAX + 1];
	uint32_t policy;  /* xr_policy; DEFAULT: the stream's */
	uint32_t flags;   /* XR_CTL_SUB_* */
	char label[16];
	struct xr_ctl_filter filter;
};

struct xr_ctl_subscribed {
	uint32_t slot;
	uint32_t stream;
	uint32_t policy;  /* in force */
	uint32_t pad_;
};

struct xr_ctl_detach {
	uint32_t slot;
	uint32_t pad_;
};

#define XR_CTL_REASON_MAX 200

struct xr_ctl_error {
	int32_t code;    /* negative errno or XR_E* */
	char reason[XR_CTL_REASON_MAX]; /* one line, NUL-terminated */
};

/* The largest message either side sends. */
#define XR_CTL_MSG_MAX (sizeof(struct xr_ctl_hdr) + sizeof(struct xr_ctl_subscribe))

/* control/wire.c */
void xr__ctl_filter_to_wire(struct xr_ctl_filter *w, const xr_filter *f);
/* Points f at w's arrays. -EINVAL if counts are out of range. */
int xr__ctl_filter_from_wire(xr_filter *f, const struct xr_ctl_filter *w);

/* Sends one message with up to 2 fds. 0 or -errno. */
int xr__ctl_send(int sock, uint16_t type, uint32_t id, const void *body, uint32_t len,
		 const int *fds, int n_fds);

/* Receives one message into buf[0..cap) and up to 2 fds (close-on-exec);
 * returns its length, 0 at end of connection, -EMSGSIZE if it was cut,
 * -ETOOMANYREFS if more fds came than the buffer holds (8; fds closed), or
 * -errno. Extra fds beyond 2 are closed. */
int xr__ctl_recv(int sock, void *buf, uint32_t cap, int *fds, int *n_fds, int flags);

/* The directory control sockets live in: $XRING_RUN_DIR if set, else
 * /run/xring, or /tmp/xring when /run is not writable (the engine's side:
 * creating = true makes it). Writes DIR/NAME.sock into path. 0, -EINVAL
 * for a bad name or too long a path, or -errno. k picks among candidates
 * for readers (0, 1, ...): -ERANGE past the last. */
int xr__ctl_path(char *path, size_t len, const char *name, int k, bool creating);

#endif
