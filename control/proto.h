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
 *   (checks the socket's peer: SO_PEERCRED uid trusted)
 *   ATTACH            ------------>     checks SO_PEERCRED against the allow-list
 *                     <------------     ATTACHED + SCM_RIGHTS(arena fd, O_RDONLY)
 *   (checks the file: regular, owned by the peer's uid)
 *   SUBSCRIBE         ------------>     claims a reader slot with a new page
 *                     <------------     SUBSCRIBED + SCM_RIGHTS(page memfd)
 *   ... reads through shared memory, writes only its page ...
 *                     <------------     WAKE (when the batch it sleeps for is there)
 *   DETACH            ------------>     frees the slot
 *                     <------------     OK
 * Closing the socket (or dying) is a detach. The engine closing it means the
 * engine is gone. The engine takes no file descriptors from a peer: the
 * socket refuses them where the kernel can (SO_PASSRIGHTS), and a message
 * that brings any is an error.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shm/layout.h"
#include "xring/reader.h"

#define XR_CTL_MAGIC 0x31435258u /* "XRC1" */
#define XR_CTL_VERSION 2u

enum xr_ctl_type {
	XR_CTL_ATTACH = 1,
	XR_CTL_SUBSCRIBE = 2,
	XR_CTL_DETACH = 3,
	XR_CTL_GAMES_CREATE = 4,
	XR_CTL_GAMES_DESTROY = 5,
	XR_CTL_GAME_RESET = 6,
	XR_CTL_GAMES_LIST = 7,
	XR_CTL_AGENT_OPEN = 8,
	XR_CTL_SEATS_CLAIM = 9,
	XR_CTL_SEATS_RELEASE = 10,
	XR_CTL_TABLE_CREATE = 11,
	XR_CTL_TABLE_OPEN = 12,
	XR_CTL_GROUP_JOIN = 13,
	XR_CTL_PRODUCER_OPEN = 14,
	XR_CTL_TABLE_DROP = 15,      /* body: struct xr_ctl_table_open (the name) */
	XR_CTL_OK = 0x81,
	XR_CTL_ATTACHED = 0x82,
	XR_CTL_SUBSCRIBED = 0x83,
	XR_CTL_WAKE = 0x84,     /* unsolicited, no body: a sleep's batch is there */
	XR_CTL_GAMES_CREATED = 0x85,
	XR_CTL_GAMES = 0x86,
	XR_CTL_AGENT_OPENED = 0x87,
	XR_CTL_SEATS_CLAIMED = 0x88,
	XR_CTL_TABLE_CREATED = 0x89,
	XR_CTL_TABLE_OPENED = 0x8a,
	XR_CTL_GROUP_JOINED = 0x8b,
	XR_CTL_PRODUCER_OPENED = 0x8c,
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

#define XR_CTL_SUB_WAKE 1u /* send WAKE messages when this reader sleeps */
#define XR_CTL_SUB_SHORT_LEASE 2u /* evict this reader after XR_SHORT_LEASE_NS of
				   * holding the writer up, not --lease-timeout:
				   * an agent's reader, whose seats fall back
				   * meanwhile (shm/ring_writer.c, check_stall) */
#define XR_SHORT_LEASE_NS 100000000ull

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
	uint32_t gen;     /* the slot's claim count, as the reader table shows it */
};

struct xr_ctl_detach {
	uint32_t slot;
	uint32_t pad_;
};

/*
 * Games at runtime (docs/control-protocol.md, "Games"). After ATTACH, a
 * peer may create games, destroy and reset those of its uid (the engine's
 * uid: any), and list them all. Ids are the engine's, never reused.
 */
#define XR_CTL_KIND_MAX 32       /* a game kind's name, with its NUL */
#define XR_CTL_CREATE_MAX 1024u  /* games per GAMES_CREATE */
#define XR_CTL_GAME_UNIT 1024u   /* cells x players a creation token pays for */
#define XR_CTL_CREATE_UNITS 1024u /* tokens one GAMES_CREATE may spend */
#define XR_CTL_DESTROY_MAX 1024u /* ids per GAMES_DESTROY */
#define XR_CTL_LIST_MAX 128u     /* entries per GAMES reply */

#define XR_CTL_GAMES_OWNED 1u    /* destroyed when this connection ends */
#define XR_CTL_GAME_MINE 2u      /* (list) owned by the asking connection */

struct xr_ctl_games_create {
	char kind[XR_CTL_KIND_MAX]; /* "grid", a plugin's name; "": any */
	uint32_t count;             /* 1..XR_CTL_CREATE_MAX */
	uint32_t flags;             /* XR_CTL_GAMES_OWNED */
	uint32_t board_h, board_w;  /* 0: any the streams carry */
	uint32_t players;           /* 0: any */
	uint32_t turn_limit;        /* 0: the game's default */
	uint32_t obs_dtype;         /* 0: any; else 1 + xr_dtype */
	uint32_t pad_;
	uint64_t seed;              /* game j of the request: seed + j */
};

/*
 * What creating or resetting one game of a shape costs, in tokens of the
 * uid's bucket: building a game is linear in its cells times its players,
 * and the control thread (creation) or a shard (reset) does it while
 * everyone else waits, so a big board pays for its size. A GAMES_CREATE
 * spends at most XR_CTL_CREATE_UNITS tokens: of a shape costing c, it
 * creates min(count, max(1, XR_CTL_CREATE_UNITS / c)) games and says how
 * many; the client asks again for the rest.
 */
static inline uint32_t xr__ctl_game_cost(uint32_t board_h, uint32_t board_w, uint32_t players)
{
	uint64_t cells = (uint64_t)board_h * board_w * (players ? players : 1);
	uint64_t c = (cells + XR_CTL_GAME_UNIT - 1) / XR_CTL_GAME_UNIT;
	return c == 0 ? 1u : c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
}

struct xr_ctl_games_created {
	uint32_t first_id;          /* ids first_id .. first_id + count - 1 */
	uint32_t count;             /* 1..the request's: see xr__ctl_game_cost */
	uint32_t stream;            /* the stream their records go to */
	uint32_t pad_;
};

struct xr_ctl_games_destroy {
	uint32_t count;             /* 1..XR_CTL_DESTROY_MAX */
	uint32_t pad_;
	uint32_t ids[XR_CTL_DESTROY_MAX];
};

struct xr_ctl_game_reset {
	uint32_t id;
	uint32_t pad_;
	uint64_t seed;
};

struct xr_ctl_games_list {
	uint32_t from_id;           /* entries with id >= this, in id order */
	uint32_t max;               /* 1..XR_CTL_LIST_MAX */
};

struct xr_ctl_game_info {
	uint32_t id, shard, stream, players;
	uint32_t board_h, board_w, turn_limit, turn;
	uint64_t seed;              /* of its creation or last reset */
	uint64_t episodes;          /* ended or cut short */
	uint32_t owner_uid;         /* who created it (the engine's: at start) */
	int32_t owner_pid;          /* informational */
	uint32_t flags;             /* XR_CTL_GAMES_OWNED, XR_CTL_GAME_MINE */
	uint32_t obs_dtype;         /* xr_dtype */
	char kind[XR_CTL_KIND_MAX];
};

/* GAMES: `n` entries follow (the message is that long); `total` games
 * live; `next_id` is where the next page starts (0 once there is none). */
struct xr_ctl_games {
	uint32_t n, total;
	uint32_t next_id, pad_;
	struct xr_ctl_game_info games[XR_CTL_LIST_MAX];
};

/*
 * Agents (docs/agents.md). After ATTACH, a connection may become an agent
 * (AGENT_OPEN: the engine answers with the agent's page of action slots,
 * a sealed memfd, writable), claim seats of games by id range and player
 * mask, and release its claims. Its records it reads as a reader of the
 * same connection (SUBSCRIBE). Its end ends the agent: its seats go back
 * to the built-in policy.
 */
#define XR_CTL_AGENT_LABEL 16

struct xr_ctl_agent_open {
	uint32_t capacity;           /* games its page has room for, 1..--max-games */
	uint32_t flags;              /* none yet: 0 */
	char label[XR_CTL_AGENT_LABEL]; /* NUL-terminated; shown by xring info */
};

struct xr_ctl_agent_opened {
	uint32_t agent;              /* its index, as the arena's agent table shows it */
	uint32_t capacity;
	uint64_t page_bytes;         /* capacity x XR_SEAT_BLOCK */
	uint64_t timeout_ns;         /* a turn waits this long for its seats' actions
				      * (--action-timeout-ms); 0 with a tick */
	uint64_t tick_ns;            /* --tick-ms: actions are taken at each tick */
	uint32_t fallback;           /* enum xr_fallback */
	uint32_t block;              /* bytes of slots per game (64) */
};

struct xr_ctl_seats_claim {
	uint32_t lo, hi;             /* game ids lo..hi */
	uint32_t players;            /* bit p: player p; 0: all */
	uint32_t pad_;
};

struct xr_ctl_seats_claimed {
	uint32_t claim;              /* its id, for SEATS_RELEASE */
	uint32_t base;               /* game lo's block in the page */
	uint32_t lo, hi, players;
	uint32_t pad_;
};

struct xr_ctl_seats_release {
	uint32_t claim;
	uint32_t pad_;
};

/*
 * Replay tables (docs/replay.md). After ATTACH, a peer may create a table
 * (it lives until the engine stops) and open one as a trainer: the engine
 * answers with three descriptors, the table's item store (read-only), the
 * trainer's page (read-write) and its end of a socket pair, the doorbell
 * both ways (a byte each: request there, answer here). The connection's
 * end closes its trainers: their leases end.
 */
#define XR_CTL_TABLE_NAME 32         /* with its NUL */

struct xr_ctl_table_create {
	char name[XR_CTL_TABLE_NAME];
	uint32_t capacity;           /* items */
	uint32_t item_size;          /* bytes */
	uint32_t sampler;            /* enum xr_sampler */
	uint32_t remover;            /* enum xr_remover */
	uint32_t max_times_sampled;  /* 0: no limit */
	uint32_t flags;              /* none yet: 0 */
	double alpha, beta;
	double samples_per_insert, error_buffer;
	uint64_t min_size;
	uint64_t seed;
	double priority;             /* fed: each record's (finite, >= 0) */
	char source[XR_STREAM_NAME_MAX + 1]; /* fed: the stream, NUL-terminated */
};

#define XR_CTL_TABLE_FED 1u          /* the engine feeds it from `source` */
#define XR_CTL_TABLE_TRANSITION 2u   /* ...with transitions (xring/table.h): FED
				      * too, item_size 0 */

struct xr_ctl_table_created {
	uint32_t table;              /* its index in the engine */
	uint32_t pad_;
};

struct xr_ctl_table_open {
	char name[XR_CTL_TABLE_NAME];
};

struct xr_ctl_table_opened {
	uint32_t table, client;
	uint32_t capacity, item_size;
	uint64_t store_bytes, page_bytes;
};

/*
 * Consumer groups (docs/groups.md). A peer subscribed to a stream (its
 * connection holds a reader slot) joins a group of that stream: the engine
 * answers with two descriptors, the member's page (read-write) and its end
 * of a socket pair, its doorbell. The connection's end ends the membership:
 * what the member held goes back to the group.
 */
#define XR_CTL_GROUP_NAME 32         /* with its NUL */

struct xr_ctl_group_join {
	char group[XR_CTL_GROUP_NAME];
	uint32_t policy;             /* for a new group: xr_policy (0: the stream's) */
	uint32_t flags;              /* none yet: 0 */
};

struct xr_ctl_group_joined {
	uint32_t member;             /* its index in the engine */
	uint32_t policy;             /* the group's */
	uint64_t page_bytes;
};

/*
 * External producers (docs/producers.md). A peer takes a producer slot of a
 * stream (a ring no shard writes): the engine answers with two descriptors,
 * the producer's staging ring (read-write, shm/producer_layout.h) and its
 * end of a socket pair, its doorbell. The connection's end ends the
 * producer: what it had published is taken, then its ring is marked ended.
 */
struct xr_ctl_producer_open {
	char stream[XR_STREAM_NAME_MAX + 1];
	uint64_t stage_bytes;        /* 0: the default; else a power of two in
				      * [XR_PSTAGE_MIN, XR_PSTAGE_MAX] */
	uint32_t flags;              /* none yet: 0 */
	uint32_t ring;               /* 0: the first free slot; else the slot of
				      * the stream's ring `ring` (ring 0 is
				      * always a shard's) */
};

struct xr_ctl_producer_opened {
	uint32_t slot;               /* the engine's producer slot */
	uint32_t ring;               /* the arena ring it writes */
	uint32_t ring_in_stream;     /* ...as the stream's rings count */
	uint32_t record_kind;        /* the stream's xr_record_kind */
	uint64_t stage_bytes;        /* the memfd's size (header page included) */
	uint64_t last_tag;           /* the tag of the last record the engine took
				      * from the slot's earlier producers (0:
				      * none) */
	uint64_t taken;              /* how many records it took from them */
	xr_exp_shape shape;          /* the stream's, when EXPERIENCE */
};

#define XR_CTL_REASON_MAX 256

struct xr_ctl_error {
	int32_t code;    /* negative errno or XR_E* */
	char reason[XR_CTL_REASON_MAX]; /* one line, NUL-terminated */
};

/* The largest request a peer sends, and the largest reply. */
#define XR_CTL_MSG_MAX (sizeof(struct xr_ctl_hdr) + sizeof(struct xr_ctl_games_destroy))
#define XR_CTL_REPLY_MAX (sizeof(struct xr_ctl_hdr) + sizeof(struct xr_ctl_games))
_Static_assert(sizeof(struct xr_ctl_games_destroy) >= sizeof(struct xr_ctl_subscribe),
	       "the largest request");
_Static_assert(sizeof(struct xr_ctl_game_info) == 96, "game info");
_Static_assert(sizeof(struct xr_ctl_table_create) == 144, "table create");
_Static_assert(offsetof(struct xr_ctl_table_create, source) == 112, "table create source");
_Static_assert(sizeof(struct xr_ctl_table_created) == 8, "table created");
_Static_assert(sizeof(struct xr_ctl_table_open) == 32, "table open");
_Static_assert(sizeof(struct xr_ctl_table_opened) == 32, "table opened");
_Static_assert(sizeof(struct xr_ctl_group_join) == 40, "group join");
_Static_assert(sizeof(struct xr_ctl_group_joined) == 16, "group joined");
_Static_assert(sizeof(struct xr_ctl_producer_open) == 48, "producer open");
_Static_assert(sizeof(struct xr_ctl_producer_opened) == 40 + sizeof(xr_exp_shape),
	       "producer opened");

/* control/wire.c */
void xr__ctl_filter_to_wire(struct xr_ctl_filter *w, const xr_filter *f);
/* The TABLE_CREATE message for table `name` of o (xring/table.h): 0, or
 * -EINVAL with why (a bad name, source or item). */
struct xr_table_opts;
int xr__ctl_table_to_wire(const char *name, const struct xr_table_opts *o,
			  struct xr_ctl_table_create *m, char *why, size_t len);
/* Points f at w's arrays. -EINVAL if counts are out of range. */
int xr__ctl_filter_from_wire(xr_filter *f, const struct xr_ctl_filter *w);

/* Sends one message with up to 3 fds. 0 or -errno. */
int xr__ctl_send(int sock, uint16_t type, uint32_t id, const void *body, uint32_t len,
		 const int *fds, int n_fds);

/* Receives one message into buf[0..cap), and every fd that came with it
 * (close-on-exec) into fds[0..*n_fds), up to XR_CTL_FDS_MAX: the kernel's
 * own limit per message, so none is ever left for the kernel to close
 * here. The caller owns them all. Returns its length, 0 at end of
 * connection, -EMSGSIZE if it was cut, or -errno. */
#define XR_CTL_FDS_MAX 253
int xr__ctl_recv(int sock, void *buf, uint32_t cap, int *fds, int *n_fds, int flags);

#endif
