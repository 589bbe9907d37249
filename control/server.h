/* SPDX-License-Identifier: MIT */
#ifndef XR_CONTROL_SERVER_H
#define XR_CONTROL_SERVER_H

/* The engine's side of the control protocol: the public API is
 * xring/server.h; this is what tests may reach in addition. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/proto.h"
#include "record/filter.h"
#include "xring/server.h"

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

/* What the control thread did, counted since it started (tests: the bound
 * on its work per poll, docs/invariants.md). A poll "acted" when it took a
 * message, a hangup, a connection or a refusal to accept, or closed an idle
 * connection; a poll that returned with nothing of that kind and was not a
 * timeout is one a peer could make the thread spin on. */
struct xr_server_work {
	uint64_t polls;           /* poll(2) calls returned */
	uint64_t timeouts;        /* ...of them, with nothing ready */
	uint64_t idle;            /* ...of the rest, that acted on nothing */
	uint64_t recvs;           /* messages read (one recv(2) each) */
	uint64_t accepts;         /* accept4(2) calls */
	uint32_t max_recvs;       /* most messages read in one poll */
	uint32_t max_recvs_over;  /* most by which one poll's reads passed the
				   * connections it polled (0: never) */
	uint32_t max_accepts;     /* most accept4(2) calls in one poll */
};

/* A snapshot of c's counts; the thread stores them with relaxed atomics
 * (figures, they order nothing). */
void xr__server_work(const struct xr_server *c, struct xr_server_work *out);

/* Who sent a request: its connection (the owner of what it creates, never
 * reused), and SO_PEERCRED's uid and pid at connect. */
struct xr_ctl_caller {
	uint64_t conn;
	uint32_t uid;
	int32_t pid;
};

/*
 * The game verbs, served by the engine's game directory (engine/games.c)
 * when it sets them: the server checks the message (length, type, NUL
 * termination, counts in range, ATTACH first) and the rates of the
 * connection and uid; the hooks decide and act. Each returns 0 or a
 * negative errno with a one-line reason in why[0..len). Called on the
 * control thread only, never concurrently with xr__server_set_games().
 */
struct xr_server_games {
	int (*create)(void *ctx, const struct xr_ctl_caller *who,
		      const struct xr_ctl_games_create *m, struct xr_ctl_games_created *r,
		      char *why, size_t len);
	int (*destroy)(void *ctx, const struct xr_ctl_caller *who, const uint32_t *ids,
		       uint32_t n, char *why, size_t len);
	int (*reset)(void *ctx, const struct xr_ctl_caller *who, uint32_t id, uint64_t seed,
		     char *why, size_t len);
	/* Fills r (r->n entries from m->from_id on); never fails. */
	void (*list)(void *ctx, const struct xr_ctl_caller *who, uint32_t from_id, uint32_t max,
		     struct xr_ctl_games *r);
	/* A connection ended: what it owns goes. */
	void (*gone)(void *ctx, uint64_t conn);
	/* The reader in slot now reads stream through filter f (f NULL: the
	 * slot is free again): for the records the engine builds. */
	void (*reader)(void *ctx, uint32_t slot, uint32_t stream, const struct xr_filt *f);
	/* Agents (engine/seats.h). agent_open gives a descriptor of the
	 * agent's page in *fd, which the server sends and closes. NULL:
	 * refused ("this engine takes no agents"). */
	int (*agent_open)(void *ctx, const struct xr_ctl_caller *who,
			  const struct xr_ctl_agent_open *m, struct xr_ctl_agent_opened *r, int *fd,
			  char *why, size_t len);
	int (*seats_claim)(void *ctx, const struct xr_ctl_caller *who,
			   const struct xr_ctl_seats_claim *m, struct xr_ctl_seats_claimed *r,
			   char *why, size_t len);
	int (*seats_release)(void *ctx, const struct xr_ctl_caller *who, uint32_t claim,
			     char *why, size_t len);
	/* Replay tables (engine/table_host.h). table_open gives three
	 * descriptors in fds[] (store, page, doorbell), which the server sends
	 * and closes. NULL: refused ("this engine hosts no tables"). */
	int (*table_create)(void *ctx, const struct xr_ctl_caller *who,
			    const struct xr_ctl_table_create *m, struct xr_ctl_table_created *r,
			    char *why, size_t len);
	int (*table_open)(void *ctx, const struct xr_ctl_caller *who,
			  const struct xr_ctl_table_open *m, struct xr_ctl_table_opened *r, int fds[3],
			  char *why, size_t len);
	/* Drops table m->name; answered OK. */
	int (*table_drop)(void *ctx, const struct xr_ctl_caller *who,
			  const struct xr_ctl_table_open *m, char *why, size_t len);
	/* Consumer groups (engine/group_host.h): the connection's reader,
	 * subscribed to `stream` (of policy stream_policy), joins group m->group.
	 * Gives two descriptors in fds[] (page, doorbell), which the server
	 * sends and closes. NULL: refused ("this engine hosts no groups"). */
	int (*group_join)(void *ctx, const struct xr_ctl_caller *who, const char *stream,
			  uint32_t stream_policy, const struct xr_ctl_group_join *m,
			  struct xr_ctl_group_joined *r, int fds[2], char *why, size_t len);
	/* The connection's reader detached: its group membership ends. */
	void (*group_leave)(void *ctx, uint64_t conn);
	/* PRODUCER_OPEN: a producer slot of stream m->stream for the caller's
	 * connection; fds[0] its staging ring, fds[1] its doorbell's end. Its
	 * end is the connection's (gone). */
	int (*producer_open)(void *ctx, const struct xr_ctl_caller *who,
			     const struct xr_ctl_producer_open *m,
			     struct xr_ctl_producer_opened *r, int fds[2], char *why, size_t len);
};

/* xr_server_start(), serving the game verbs through ops from the first
 * connection on (ops NULL: as xr_server_start()). */
int xr__server_start_games(xr_arena *a, const xr_server_opts *o, const struct xr_server_games *ops,
			   void *ctx, xr_server **out);

/* Serves the game verbs through ops (NULL: refuse them: "this engine
 * hosts no games"). Waits for a request being served to finish, so that
 * after it returns with NULL the old ctx is no longer used. */
void xr__server_set_games(struct xr_server *c, const struct xr_server_games *ops, void *ctx);

#endif
