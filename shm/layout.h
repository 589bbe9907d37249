/* SPDX-License-Identifier: MIT */
#ifndef XR_SHM_LAYOUT_H
#define XR_SHM_LAYOUT_H

/*
 * The arena file, as every process maps it, and the one page each reader may
 * write. Plain fixed-width data, no pointers: valid at any mapping address and
 * in any process.
 *
 *   ARENA FILE (created by the engine, owned by its uid; peers get it by an
 *   O_RDONLY fd and map it read-only: nothing in it is theirs to write)
 *     offset 0         HEADER: struct xr_arena_hdr: identity, backing, sizes,
 *                        streams[], rings[] (producer indices and stats),
 *                        shards[] (shard stats), games[], engine
 *     hdr->tab_off     READER TABLE: written by the engine only
 *                        struct xr_reader_info infos[max_readers]
 *                        struct xr_cursor_view views[n_rings][max_readers]
 *                        struct xr_agent_info agents[XR_MAX_AGENTS]
 *                        struct xr_agent_counts counts[XR_MAX_AGENTS][n_rings]
 *                        struct xr_reader_figs figs[max_readers]
 *     rings[i].data_off RING DATA, one per ring (mapped twice, back to back)
 *
 *   PEER PAGE (one per reader: a sealed memfd the engine creates at
 *   SUBSCRIBE and hands to that reader alone; the engine maps it too)
 *     struct xr_peer_page: the reader's sleep word, and one cursor per ring
 *     (lease, position, counts, wake hints). Everything in it is untrusted
 *     input to the engine, and no other reader can see it.
 *
 * Who writes what, field by field, is in docs/shm-layout.md ("Who changes
 * what"): one file per piece of shared state.
 *
 * Each region of the arena starts on a backing page boundary (2 MiB on
 * hugetlbfs). The layout is frozen by the static asserts at the end of this
 * file; any change to them must bump XR_LAYOUT_VERSION. The build fingerprint
 * (shm/fingerprint.c) hashes the same sizes and offsets, so two builds that
 * disagree refuse to share an arena even if someone forgets the bump.
 */

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "util/llhist.h"
#include "xring/record.h"
#include "xring/types.h"

#define XR_MAGIC 0x31414e4552415258ull /* "XRARENA1" little-endian */
#define XR_LAYOUT_VERSION 12u

#define XR_CACHELINE 64
#define XR_MAX_STREAMS 8
#define XR_MAX_RINGS 32
#define XR_MAX_READERS_LIMIT 256
#define XR_PATH_MAX 192
#define XR_NOTE_MAX 160
#define XR_PEER_PAGE_SIZE 8192u

/* Arena lifecycle, hdr->state. */
enum {
	XR_ARENA_CREATING = 0,
	XR_ARENA_READY = 1,
	XR_ARENA_CLOSED = 2,
};

/* A reader slot as the reader table shows it, info->state. The engine's own
 * record of a slot (shm/peers.c) is the one that counts; this is its mirror,
 * for the reader to learn it was evicted and for tools. */
enum {
	XR_SLOT_FREE = 0,
	XR_SLOT_CLAIMED = 1, /* being handed out */
	XR_SLOT_ACTIVE = 2,  /* the writers honour its leases */
	XR_SLOT_EVICTED = 3, /* the writers stopped honouring it; see evict_reason */
};

/* Why the writer evicted a reader, info->evict_reason. */
enum {
	XR_EVICT_NONE = 0,
	XR_EVICT_CURSOR = 1, /* lease ahead of head: no reader can hold that */
	XR_EVICT_LEASE = 2,  /* a lossy reader held a batch in the writer's way
			      * longer than the lease timeout */
};

/* A lease value meaning "this reader holds nothing in this ring". */
#define XR_NO_LEASE UINT64_MAX

struct xr_stream_desc {
	char name[XR_STREAM_NAME_MAX + 1];
	uint32_t policy;       /* xr_policy: LOSSLESS or LOSSY */
	uint32_t n_rings;
	uint32_t first_ring;   /* rings[first_ring .. first_ring + n_rings) */
	uint32_t frame_align;  /* power of two, >= 16 */
	uint32_t record_kind;  /* xr_record_kind */
	uint32_t max_frame;    /* largest frame a writer may reserve */
	uint64_t ring_capacity;
	xr_exp_shape shape;    /* valid when record_kind == EXPERIENCE */
	uint32_t producers;    /* the last `producers` of its rings are for
				* external producers (xring/producer.h) */
	uint8_t pad_[12];
};

/* xr_ring_desc.writer */
enum xr_ring_writer {
	XR_RING_ENGINE = 0,         /* one of the engine's shards */
	XR_RING_PRODUCER_IDLE = 1,  /* a producer slot no producer holds yet */
	XR_RING_PRODUCER_LIVE = 2,  /* a producer writes it */
	XR_RING_PRODUCER_ENDED = 3, /* its producer went: nothing more comes
				     * until another producer takes the slot */
};

/*
 * One ring's producer side. Written only by the ring's writer; readers and
 * tools only load. Cache lines: constants; publication (head, written), which
 * every reader polls; reclamation (tail), touched once per chunk; stats.
 */
struct xr_ring_desc {
	uint64_t data_off;     /* file offset of the ring's bytes */
	uint64_t capacity;     /* bytes, a power of two, multiple of page size */
	uint32_t stream;
	uint32_t frame_align;
	uint32_t index;        /* this ring's index in rings[] */
	uint32_t record_len;   /* every record is exactly this long (an Experience
				* stream: its shape's record size), so every
				* frame is one size; 0: any length. The writer
				* refuses other lengths, which lets a reader
				* take a run of frames without a walk. */
	/* Who writes the ring (enum xr_ring_writer): a shard of the engine,
	 * or an external producer's slot, idle, live or ended. The engine
	 * stores it (release) when a producer comes or goes; readers load it
	 * (acquire) to hand out what an ended ring has left without waiting
	 * for more, and tools to show it. */
	_Atomic uint32_t writer;
	/* A producer slot's last holder (layout 11), for tools: its pid (0 in
	 * another PID namespace) and uid at PRODUCER_OPEN, stored (relaxed)
	 * before the release store of PRODUCER_LIVE. */
	_Atomic int32_t producer_pid;
	_Atomic uint32_t producer_uid;
	uint8_t pad1_[XR_CACHELINE - 44];

	/* publication */
	_Atomic uint64_t head;    /* bytes published, free-running */
	_Atomic uint64_t written; /* records produced = next seq (includes dropped) */
	_Atomic uint32_t blocked; /* lossless writer stopped for its readers (ring
				   * full, or past the high watermark): readers
				   * hand out partial batches instead of waiting */
	_Atomic uint32_t pub_gen; /* seqlock over (head, written): odd = updating */
	_Atomic uint64_t publish_ns; /* CLOCK_MONOTONIC of the last publish that
				      * woke a reader (0: none yet): what wakeup
				      * latency is measured from */
	_Atomic uint64_t blocked_need; /* while blocked (layout 8): the position
					* every lossless lease must have reached
					* for the writer to go on; a reader whose
					* own held batch starts before it would
					* wait for good (-EDEADLK) */
	uint8_t pad2_[XR_CACHELINE - 40];

	/* reclamation */
	_Atomic uint64_t tail;    /* oldest byte a new lease may start at */
	uint8_t pad3_[XR_CACHELINE - 8];

	/* stats, writer-written with relaxed stores */
	_Atomic uint64_t records;      /* records written (not dropped) */
	_Atomic uint64_t bytes;        /* frame bytes written */
	_Atomic uint64_t lease_stalls; /* lossy: records dropped at the writer */
	_Atomic uint64_t full_waits;   /* lossless: times the writer stopped for its
					* readers (no room, or past the high watermark) */
	_Atomic uint64_t wait_ns;      /* lossless: time spent stopped */
	_Atomic uint64_t evictions;    /* readers evicted from this ring */
	_Atomic uint64_t publishes;    /* head stores (batch commits) */
	_Atomic uint64_t wakeups;      /* wakeups sent to readers */
};

/* What a shard of the engine reports on its stats tick (engine/shard.c),
 * for tools; relaxed stores by that shard only. */
struct xr_shard_stats {
	_Atomic uint64_t games;       /* games it hosts */
	_Atomic uint64_t steps;       /* game steps so far */
	_Atomic uint64_t episodes;    /* episodes finished */
	_Atomic uint64_t turns_late;  /* --tick-ms: turns played a tick or more late */
	_Atomic uint64_t cpu_ns;      /* the shard thread's CPU time */
	_Atomic uint64_t tick_ns;     /* CLOCK_MONOTONIC of this update; 0: no shard */
	_Atomic uint64_t ticks;       /* stats ticks so far */
	_Atomic uint64_t steps_per_s; /* over the last stats period (layout 7) */
};

/* A latency histogram (layout 7): XR_LL_BUCKETS log-linear buckets
 * (util/llhist.h), their count and the sum of what they counted. One
 * writer stores each field relaxed; a tool reading them a moment apart may
 * see count and buckets differ by what came in between. */
struct xr_hist {
	_Atomic uint64_t count;
	_Atomic uint64_t sum_ns;
	_Atomic uint64_t b[XR_LL_BUCKETS];
	uint8_t pad_[32];
};

/* A shard's games at runtime (engine/shard.c, on its stats tick; relaxed
 * stores by that shard only): lifecycle orders it took, and how long each
 * creation took from the request to the game's first record. */
struct xr_game_stats {
	_Atomic uint64_t created;
	_Atomic uint64_t destroyed;
	_Atomic uint64_t resets;
	_Atomic uint64_t finals;        /* truncated records of episodes cut short
					 * (destroy, reset, stop): one per player */
	_Atomic uint64_t finals_lost;   /* ...not written: the stop's drain timed out */
	_Atomic uint64_t created_per_s; /* over the last stats period */
	_Atomic uint64_t destroyed_per_s;
	_Atomic uint64_t resets_per_s;
	struct xr_hist creation;        /* request -> the game's first record */
};

/* Why the control socket refused a request or a connection (the counts of
 * struct xr_engine_stats; control/server.c counts each error it sends by
 * its code). */
enum {
	XR_REFUSE_UID = 0,       /* -EACCES: the uid or gid is not allowed */
	XR_REFUSE_LIMIT = 1,     /* -EBUSY: a limit (connections, readers, slots) */
	XR_REFUSE_RATE = 2,      /* -EAGAIN: a rate (requests, game creations) */
	XR_REFUSE_MALFORMED = 3, /* -EPROTO: a message the protocol does not allow */
	XR_REFUSE_TIMEOUT = 4,   /* -ETIMEDOUT: no ATTACH in time */
	XR_REFUSE_OTHER = 5,     /* anything else: bad arguments, unknown ids */
	XR_REFUSE_KINDS = 6,
};

/* The engine as a whole, for tools (layout 7). The control thread alone
 * writes it, with relaxed stores: figures to show, never to act on. */
struct xr_engine_stats {
	_Atomic uint64_t connections;  /* accepted, ever */
	_Atomic uint64_t open;         /* connections open now */
	_Atomic uint64_t refusals[XR_REFUSE_KINDS];
};

/* Replay tables an engine hosts (engine/table_service.h), as tools see them
 * (layout 11): entry i is table index i. The table service alone writes
 * them, under its host's mutex (the control thread at a create or a drop,
 * the table thread after each of its rounds): name, capacity, item_size, sampler and remover while state is FREE,
 * before the release store of LIVE that publishes them (a tool reading an
 * entry being reused may see a torn name: figures to show, never to act
 * on); the atomics with relaxed stores, as in the table's own store header
 * (shm/table_layout.h). */
#define XR_MAX_TABLES 16

enum { XR_TVIEW_FREE = 0, XR_TVIEW_LIVE = 1, XR_TVIEW_DROPPED = 2 };

struct xr_table_view {
	_Atomic uint32_t state;      /* XR_TVIEW_*: DROPPED until its last trainer closes */
	_Atomic uint32_t creator_uid;
	_Atomic uint32_t capacity, item_size; /* atomics: the metrics snapshot reads them */
	_Atomic uint32_t item_kind;  /* 0: bytes its trainers insert; fed by the
				      * engine: 1 + enum xr_table_item */
	_Atomic uint32_t sampler, remover; /* enum xr_table_sampler, xr_table_remover */
	_Atomic uint32_t feed;       /* XR_TFEED_* */
	_Atomic char name[32];       /* NUL-terminated, [A-Za-z0-9_.-]; byte-wise
				      * atomic: xr__label_put(), xr__label_get() */
	_Atomic uint64_t size, leases;
	_Atomic uint64_t inserts, samples, removes;
	_Atomic uint64_t feed_dropped;
	_Atomic uint32_t trainers;
	uint32_t pad_;
	uint8_t pad1_[64 - 56];
};

struct xr_arena_hdr {
	/* identity: written once while CREATING, then read-only */
	uint64_t magic;
	uint32_t layout_version;
	uint32_t hdr_size;
	uint64_t fingerprint;
	uint64_t total_size;
	uint64_t page_size;
	uint64_t tab_off;        /* the reader table */
	uint64_t tab_size;
	uint64_t created_ns;     /* CLOCK_REALTIME */
	uint64_t writer_start;   /* writer's start time (/proc/PID/stat field 22) */
	int32_t writer_pid;
	int32_t numa_node;       /* node the memory is bound to, -1 = unbound */
	uint32_t backing;        /* xr_backing */
	uint32_t n_streams;
	uint32_t n_rings;
	uint32_t max_readers;
	char name[XR_NAME_MAX + 1];
	char path[XR_PATH_MAX];
	char note[XR_NOTE_MAX];  /* what backing choice was made and why */
	uint32_t writer_uid;     /* the engine's effective uid */
	uint8_t pad0_[12];

	/* liveness */
	_Atomic uint32_t state;         /* XR_ARENA_* */
	uint32_t pad1_;
	_Atomic uint64_t heartbeat_ns;  /* CLOCK_MONOTONIC, engine housekeeping */
	uint64_t reserved1_;
	uint8_t pad2_[XR_CACHELINE - 24];

	struct xr_stream_desc streams[XR_MAX_STREAMS];
	struct xr_ring_desc rings[XR_MAX_RINGS];
	struct xr_shard_stats shards[XR_MAX_RINGS]; /* the shard writing ring i */
	struct xr_game_stats games[XR_MAX_RINGS];   /* ...and its games */
	struct xr_engine_stats engine;
	struct xr_table_view tables[XR_MAX_TABLES];
};

/*
 * A reader slot as tools and its reader see it, in the reader table. Written
 * by the engine only (shm/peers.c): the identity fields while the slot is
 * FREE, before the release store of CLAIMED/ACTIVE that publishes them; state
 * and evict_reason at every transition. Readers map it read-only.
 */
struct xr_reader_info {
	_Atomic uint32_t state;        /* XR_SLOT_* */
	_Atomic uint32_t evict_reason; /* XR_EVICT_* */
	/* The identity fields are atomic (plain C accesses of them are
	 * atomic too): a thread of the engine's process (a shard's writer,
	 * the metrics snapshot) may read them while the control thread
	 * claims the slot again; what it reads may be the next occupant's,
	 * which the state and gen let it tell, but no read races a write. */
	_Atomic uint32_t stream;
	_Atomic uint32_t policy;       /* LOSSLESS or LOSSY */
	_Atomic int32_t pid;           /* SO_PEERCRED at SUBSCRIBE: informational
					* (0 when the peer is in another PID
					* namespace); nothing is keyed by it */
	_Atomic uint32_t uid;
	_Atomic uint32_t gen;          /* bumped at every claim */
	/* Nonzero: the reader joined a consumer group (docs/groups.md): its
	 * records come through its group, and its own cursors say nothing.
	 * Stored (relaxed) by the control thread at the join, zeroed with the
	 * slot's other fields at the next claim: for tools to show. */
	_Atomic uint32_t group_member;
	_Atomic uint64_t attach_ns;    /* CLOCK_REALTIME */
	_Atomic char label[16];        /* byte-wise atomic: xr__label_put/get() */
	uint8_t pad1_[8];
};

/*
 * One reader's progress in one ring as tools see it, worked out by the
 * engine's housekeeping (xr__peers_mirror) ten times a second from what the
 * reader wrote in its page and the ring's head at that moment. Numbers to
 * show, never to act on.
 */
struct xr_cursor_view {
	_Atomic uint64_t read;     /* records handed to the reader */
	_Atomic uint64_t dropped;  /* records it lost */
	_Atomic uint64_t pending;  /* records written it has not reached yet */
	_Atomic uint64_t lag;      /* bytes published it has not read yet */
};

/*
 * The agent table (engine/seats.h), after the cursor views in the reader
 * table's region: XR_MAX_AGENTS entries, then each agent's counts on each
 * ring's shard, [XR_MAX_AGENTS][n_rings]. Written by the engine only: the
 * entries by the control thread (identity fields before the release store
 * of state LIVE), the counts by each shard on its stats tick (relaxed).
 */
/* 128 since layout 12 (64 before): issue 13 asks for 100 agents on one engine. */
#define XR_MAX_AGENTS 128

enum {
	XR_AGENT_FREE = 0,
	XR_AGENT_LIVE = 1,
	XR_AGENT_GONE = 2, /* its seats are the policy's; its counts stay */
};

struct xr_agent_info {
	/* Atomics, as the reader table's identity fields: the metrics
	 * snapshot reads them while the control thread opens the entry. */
	_Atomic uint32_t state;        /* XR_AGENT_* */
	_Atomic uint32_t uid;
	_Atomic int32_t pid;           /* SO_PEERCRED: informational */
	_Atomic uint32_t claims;
	_Atomic uint32_t capacity;     /* games its page holds */
	_Atomic uint32_t gen;          /* bumped at every open of this entry */
	_Atomic uint64_t attach_ns;    /* CLOCK_REALTIME */
	_Atomic uint64_t seats;        /* (game, player) pairs its claims cover */
	_Atomic char label[16];        /* byte-wise atomic: xr__label_put/get() */
	uint8_t pad_[8];
};

/* One agent's turns on one shard. A seat's turn is taken from the agent
 * (actions) or falls back, for one of four reasons. */
struct xr_agent_counts {
	_Atomic uint64_t actions;      /* answers for the turn, in range, legal */
	_Atomic uint64_t timeouts;     /* no answer for the turn by its deadline */
	_Atomic uint64_t late;         /* ...of which the answer came afterwards */
	_Atomic uint64_t wrong_turn;   /* an answer tagged for no turn of the seat's */
	_Atomic uint64_t out_of_range; /* an action past the game's actions */
	_Atomic uint64_t illegal;      /* an action the mask forbade */
	_Atomic uint64_t fallbacks;    /* all but actions */
	_Atomic uint64_t waiting;      /* seats whose records wait for an answer now */
	struct xr_hist rtt;            /* answers timed: record written -> seen */
};

/*
 * An agent's page (engine/seats.h): a sealed memfd of capacity blocks of
 * XR_SEAT_BLOCK bytes (times K + 1 with --input-delay K), one per game it
 * may hold seats of, in each one 64-bit action slot per player. The agent writes a slot with one store
 * of (xr_seat_tag(seq of the record it answers) << 32 | (uint32_t)action);
 * the engine reads it as untrusted input.
 */
#define XR_SEAT_BLOCK 64u
#define XR_SEAT_CLAIMS_MAX 16u /* claims one agent holds at once */
/* With --input-delay K, a game's block is K + 1 of these, one for each turn
 * mod K + 1 (an answer for turn t applies at turn t + K, and the answers
 * for turns t + 1 .. t + K are written meanwhile): the slot of player p of
 * the record of turn t is word 8 * (block * (K + 1) + t % (K + 1)) + p. */
#define XR_SEAT_DEPTH_MAX 8u

static inline uint32_t xr_seat_tag(uint64_t seq)
{
	/* +1: a slot never written (0) answers no record. */
	return (uint32_t)seq + 1u;
}
_Static_assert(XR_SEAT_BLOCK / sizeof(uint64_t) >= 8, "a block holds a slot per player");

/* One reader's position in one ring, in its peer page. The reader writes
 * every field; the writer loads `lease`, and the wake hints while the reader
 * sleeps, and treats them all as untrusted. */
struct xr_cursor {
	_Atomic uint64_t lease;    /* writer may not overwrite at or past this */
	_Atomic uint64_t pos;      /* next byte the reader will read */
	_Atomic uint64_t next_seq; /* seq the reader expects next */
	_Atomic uint64_t read;     /* records handed to the reader */
	_Atomic uint64_t dropped;  /* records the reader lost */
	/* While the reader sleeps (sleep_gen != 0): what would make a batch in
	 * this ring. The reader has walked up to wake_pos (the head it saw)
	 * and needs wake_need more records that pass its filter. Hints only: a
	 * wrong value costs the reader a late or early wakeup, never the
	 * writer more than one publish's worth of work (shm/wake.c). */
	_Atomic uint64_t wake_pos;
	_Atomic uint32_t wake_need;
	uint32_t pad_[3];
};

/*
 * The page one reader may write. The engine creates it (memfd, sealed so
 * that it cannot shrink or grow under the engine's mapping), initialises it,
 * and passes it to that reader only; a slot's next reader gets a new page.
 */
/*
 * What a reader counts of its own reading (layout 7): written by the
 * reader alone into its page (relaxed), copied by the engine's
 * housekeeping into the reader table (struct xr_reader_figs there too,
 * after the agents) for tools, as numbers to show, never to act on.
 */
struct xr_reader_figs {
	_Atomic uint64_t batches;   /* batches taken */
	_Atomic uint64_t sleeps;    /* times it slept waiting for a batch */
	_Atomic uint64_t wakeups;   /* ...and a writer woke it */
	_Atomic uint64_t filtered;  /* records its filter skipped */
	_Atomic uint64_t copies;    /* batches copied out (bindings that copy) */
	uint64_t pad_[3];
	struct xr_hist age;         /* a batch's oldest record's age when taken */
	struct xr_hist wake;        /* the publish that woke it -> running again */
	struct xr_hist fill;        /* a batch's first record -> its last (t_ns) */
};

struct xr_peer_page {
	/* Sleep/wake (shm/wake.c): nonzero while the reader sleeps, a
	 * generation the reader picks; a writer that wakes it swaps it back to
	 * 0, so one sleep gets one wakeup however many rings fill. */
	_Atomic uint32_t sleep_gen;
	uint32_t pad0_;
	uint8_t pad1_[XR_CACHELINE - 8];
	struct xr_cursor cursors[XR_MAX_RINGS]; /* by ring index in the arena */
	uint8_t pad2_[XR_CACHELINE];            /* figs on its own lines */
	struct xr_reader_figs figs;             /* layout 7 */
};

/* ---- the frozen layout ---- */
_Static_assert(sizeof(_Atomic uint64_t) == 8 && _Alignof(_Atomic uint64_t) == 8,
	       "_Atomic uint64_t must be a plain 8-byte word to live in shared memory");
_Static_assert(sizeof(_Atomic uint32_t) == 4, "_Atomic uint32_t must be 4 bytes");
_Static_assert(sizeof(xr_frame) == XR_FRAME_HDR, "frame header is 16 bytes");

/* The frame a record of len bytes takes: header + record, rounded up to the
 * ring's alignment (a power of two). 64-bit, so no len can wrap it. */
static inline uint64_t xr__frame_size(uint64_t len, uint64_t align)
{
	return (len + XR_FRAME_HDR + align - 1) & ~(align - 1);
}
_Static_assert(offsetof(xr_frame, seq) == 8, "frame seq at 8");
_Static_assert(sizeof(xr_exp_shape) == 48, "xr_exp_shape is 48 bytes");
_Static_assert(sizeof(struct xr_stream_desc) == 128, "stream desc size");
_Static_assert(offsetof(struct xr_stream_desc, ring_capacity) == 56, "stream desc");
_Static_assert(offsetof(struct xr_stream_desc, shape) == 64, "stream desc");
_Static_assert(sizeof(struct xr_ring_desc) == 4 * XR_CACHELINE, "ring desc is 4 lines");
_Static_assert(offsetof(struct xr_ring_desc, record_len) == 28,
	       "ring record_len in what was padding: older engines leave it 0");
_Static_assert(offsetof(struct xr_ring_desc, head) == 1 * XR_CACHELINE, "ring head line");
_Static_assert(offsetof(struct xr_ring_desc, producer_uid) == 40, "ring producer uid");
_Static_assert(offsetof(struct xr_ring_desc, tail) == 2 * XR_CACHELINE, "ring tail line");
_Static_assert(offsetof(struct xr_ring_desc, records) == 3 * XR_CACHELINE, "ring stats line");
_Static_assert(offsetof(struct xr_arena_hdr, name) == 96, "hdr name");
_Static_assert(offsetof(struct xr_arena_hdr, state) == 512, "hdr state line");
_Static_assert(offsetof(struct xr_arena_hdr, streams) == 576, "hdr streams");
_Static_assert(offsetof(struct xr_arena_hdr, rings) % XR_CACHELINE == 0, "rings aligned");
_Static_assert(sizeof(struct xr_shard_stats) == XR_CACHELINE, "shard stats are one line");
_Static_assert(sizeof(struct xr_hist) == 15 * XR_CACHELINE, "a histogram is 15 lines");
_Static_assert(sizeof(struct xr_game_stats) == 16 * XR_CACHELINE, "game stats are 16 lines");
_Static_assert(offsetof(struct xr_game_stats, finals_lost) == 32, "game stats finals_lost");
_Static_assert(offsetof(struct xr_game_stats, creation) == 64, "game stats creation");
_Static_assert(offsetof(struct xr_arena_hdr, games) ==
		       576 + XR_MAX_STREAMS * 128 + XR_MAX_RINGS * 5 * XR_CACHELINE,
	       "hdr games");
_Static_assert(offsetof(struct xr_arena_hdr, engine) ==
		       576 + XR_MAX_STREAMS * 128 + XR_MAX_RINGS * 21 * XR_CACHELINE,
	       "hdr engine");
_Static_assert(sizeof(struct xr_engine_stats) == XR_CACHELINE, "engine stats are one line");
_Static_assert(sizeof(struct xr_table_view) == 2 * XR_CACHELINE, "a table view is 2 lines");
_Static_assert(offsetof(struct xr_table_view, size) == 64, "table view counts");
_Static_assert(sizeof(struct xr_arena_hdr) ==
		       576 + XR_MAX_STREAMS * 128 + XR_MAX_RINGS * 21 * XR_CACHELINE + XR_CACHELINE +
			       XR_MAX_TABLES * 2 * XR_CACHELINE,
	       "hdr size");
_Static_assert(offsetof(struct xr_arena_hdr, writer_uid) == 496, "hdr writer_uid");
_Static_assert(sizeof(struct xr_reader_info) == 64, "reader info is one line");
_Static_assert(offsetof(struct xr_reader_info, label) == 40, "reader info label");
_Static_assert(sizeof(struct xr_cursor_view) == 32, "cursor view is half a line");
_Static_assert(sizeof(struct xr_cursor) == XR_CACHELINE, "cursor is one line");
_Static_assert(sizeof(struct xr_agent_info) == XR_CACHELINE, "agent info is one line");
_Static_assert(offsetof(struct xr_agent_info, seats) == 32, "agent info seats");
_Static_assert(sizeof(struct xr_agent_counts) == 16 * XR_CACHELINE, "agent stats are 16 lines");
_Static_assert(offsetof(struct xr_agent_counts, rtt) == 64, "agent stats rtt");
_Static_assert(sizeof(struct xr_reader_figs) == 46 * XR_CACHELINE, "reader figures are 46 lines");
_Static_assert(offsetof(struct xr_cursor, wake_pos) == 40, "cursor wake hints");
_Static_assert(offsetof(struct xr_peer_page, cursors) == XR_CACHELINE, "peer page cursors");
_Static_assert(sizeof(struct xr_peer_page) <= XR_PEER_PAGE_SIZE, "a peer page fits one page");

uint64_t xr__layout_fingerprint(void);

/* A label or name in the arena, a byte at a time with relaxed atomics:
 * the engine's threads read them (the metrics snapshot) while the one that
 * owns the entry writes them. put: src's first n - 1 bytes at most, the
 * rest zeros; get: all n bytes. */
static inline void xr__label_put(_Atomic char *dst, const char *src, size_t n)
{
	size_t i = 0;

	for (; src && i + 1 < n && src[i]; i++)
		atomic_store_explicit(&dst[i], src[i], memory_order_relaxed);
	for (; i < n; i++)
		atomic_store_explicit(&dst[i], 0, memory_order_relaxed);
}

static inline void xr__label_get(char *dst, const _Atomic char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = atomic_load_explicit((_Atomic char *)&src[i], memory_order_relaxed);
}

#endif
