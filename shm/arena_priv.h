/* SPDX-License-Identifier: MIT */
#ifndef XR_SHM_ARENA_PRIV_H
#define XR_SHM_ARENA_PRIV_H

/* The process-local handles behind xr_arena and xr_writer, and the internal
 * API the reader library, the control server and tools use to open an
 * existing arena. */

#include <stdbool.h>
#include <stdint.h>

#include "shm/layout.h"
#include "xring/arena.h"

/*
 * The layout as this process knows it: copied from the spec when the engine
 * creates an arena, and from a validated snapshot of the header when a
 * reader opens one. Everything that sizes a mapping, bounds a loop or
 * indexes an array is read from here, never again from shared memory, which
 * another process (or, for a reader, an engine that is not what it claims)
 * may change after it was checked.
 */
struct xr_ring_fixed {
	uint64_t data_off;
	uint64_t capacity;
	uint32_t stream;
	uint32_t frame_align;
	uint32_t record_len;
};

struct xr_layout {
	char name[XR_NAME_MAX + 1];
	uint64_t total_size;
	uint64_t page_size;
	uint64_t tab_off, tab_size;
	uint32_t n_streams;
	uint32_t n_rings;
	uint32_t max_readers;
	uint32_t writer_uid;
	int32_t writer_pid;
	uint64_t writer_start;
	struct xr_stream_desc streams[XR_MAX_STREAMS]; /* plain data, no atomics */
	struct xr_ring_fixed rings[XR_MAX_RINGS];
};

/* Watermark backpressure (xr_writer_set_watermarks): bytes unread past
 * which a lossless writer stops, and under which it goes on. */
struct xr_watermarks {
	uint64_t high;               /* 0: off */
	uint64_t low;
};

/* What one uid's lossy readers have cost a stream (ring_writer.c,
 * check_stall). */
struct xr_lease_clock {
	uint32_t uid;
	bool used;
	uint64_t drops2;             /* lossy: 2 for each record they had dropped... */
	uint64_t w0;                 /* ...since w->frames was this (its debt: drops2 less
				      * the frames written since) */
	uint64_t since;              /* lossy: when its debt last rose from 0 */
	uint64_t bucket;             /* lossless: blocked time owed, as of end */
	uint64_t end;                /* lossless: when its last stop ended */
};

/* Lease clocks per writer: more uids than any allow-list names; past that
 * many uids owing at once, they share one (the overflow). */
#define XR_LEASE_CLOCKS 1024

/* Evictions for leases of one uid lately: each halves its timeout. */
#define XR_STRIKE_UIDS 8
struct xr_strike {
	uint32_t uid, n;
	uint64_t at;                 /* the last, or the last decay */
};

struct xr_writer {
	struct xr_arena *arena;
	struct xr_ring_desc *rd;
	struct xr_peers *peers;      /* who holds leases: the engine's own table */
	uint8_t *data;               /* ring bytes, mapped twice back to back */
	uint64_t cap;
	uint64_t mask;
	uint64_t chunk;              /* how far tail advances at once */
	uint32_t ring;               /* index in the arena */
	uint32_t stream;
	uint32_t align;
	uint32_t max_frame;
	uint32_t record_len;         /* nonzero: the only length accepted */
	uint32_t max_readers;
	uint32_t policy;
	struct xr_watermarks wm;
	uint64_t lease_timeout_ns;   /* a lossy lease in the way this long: evicted */

	/* Writer-private state: only this thread touches it. */
	uint64_t head;               /* committed bytes (published or not) */
	uint64_t published;          /* last head stored to rd->head */
	uint64_t prev_published;     /* the one before: where this publish began */
	uint64_t seq;                /* next sequence number */
	uint64_t seq_published;
	uint64_t pub_frames;         /* frames in the last publish */
	uint64_t frames;             /* frames committed, ever */
	uint64_t frames_published;
	uint64_t tail;               /* last tail stored to rd->tail */
	uint64_t limit;              /* head + size <= limit: room, no scan */
	uint32_t reserved;           /* size of the reserved frame, 0 if none */
	bool paused;                 /* past the high watermark: waits until low */
	uint64_t stop_ns;            /* a stop for readers began (0: none) */
	uint64_t stop_acct;          /* ...and is counted in wait_ns up to here */
	_Atomic uint32_t cancel;     /* xr_writer_cancel(): end the next wait */
	uint64_t records;            /* not yet flushed to rd stats */
	uint64_t bytes;              /* head at the last stats flush */
	int blocker;                 /* slot that blocked the last make-room */
	/* Lease timeout (check_stall): what each slot's holder has cost the
	 * stream, and how often each uid was evicted for it lately. */
	struct xr_lease_clock lc[XR_LEASE_CLOCKS + 1]; /* by uid, + the shared overflow */
	struct xr_strike strikes[XR_STRIKE_UIDS];
	int stop_clock;              /* lossless: the lc[] the stop under way is charged to; -1 */
	int last_clock;              /* the lc[] the last look found: drops come in runs */
	uint64_t stop_start;
	/* Frame boundaries recorded every cap/32 bytes, so that advancing tail
	 * does not walk every frame. */
	uint64_t next_mark;
	uint32_t mark_first, mark_end;
	uint64_t marks[64];
	/* Waking sleeping readers after a publish (shm/wake.c). */
	struct xr_wake *wake;
	struct xr_wake_memo *memo;   /* [max_readers] */
	uint64_t wake_walked;        /* frames examined for wakeups, ever (tests) */
	uint64_t lease_scans;        /* scans of the leases (W3), ever (tests) */
};

struct xr_arena {
	int fd;
	bool owner;                  /* created it: writer side */
	uint64_t map_len;            /* writer: whole file mapped at hdr */
	struct xr_arena_hdr *hdr;    /* shared: read only its atomics from here */
	struct xr_layout lay;        /* private copy of every layout field */
	struct xr_reader_info *infos;     /* reader table */
	struct xr_cursor_view *views;     /* [n_rings][max_readers] */
	struct xr_agent_info *agents;     /* [XR_MAX_AGENTS] */
	struct xr_agent_counts *agent_stats; /* [XR_MAX_AGENTS][n_rings] */
	struct xr_reader_figs *figs;      /* [max_readers]: the readers' own, mirrored */
	uint8_t *ring_data[XR_MAX_RINGS];
	uint64_t tab_mapped;         /* reader: length of the table mapping */
	uint64_t hdr_mapped;         /* reader: length of the header mapping */
	bool served;                 /* reader: XR_OPEN_SERVED */
	struct xr_writer *writers;   /* owner only, [n_rings] */
	struct xr_peers *peers;      /* owner only: the slot table (shm/peers.c) */
	struct xr_wake *wake;        /* owner only: wake targets (shm/wake.c) */
	uint32_t holders;            /* owner only: what still uses the arena
				      * (a control server): destroy refuses */
	char path[XR_PATH_MAX];
	char note[XR_NOTE_MAX];
	/* Owner, created by xr__arena_create_unnamed: the name is not given
	 * yet; the file is pending_tmp (or, when that is empty, an O_TMPFILE
	 * reachable only through fd) until xr__arena_publish(). */
	_Atomic bool name_pending; /* read by the control thread: acquire */
	char pending_tmp[XR_PATH_MAX + 64];
};

/* How xr__arena_open maps things. */
enum {
	XR_OPEN_RINGS = 2,    /* map ring data (of stream `stream`, or all) */
	XR_OPEN_SERVED = 4,   /* the fd came from a server the caller is
			       * connected to: its liveness is the connection,
			       * not the writer's pid (which names a process in
			       * the engine's PID namespace, maybe not ours) */
};

/*
 * Opens the arena of engine `name` read-only (header, reader table, and with
 * XR_OPEN_RINGS the rings of stream index `stream`, or of every stream if
 * stream < 0). For tools run by the engine's uid: the file must be a regular
 * file owned by the caller's euid or by root; FIFOs and links are refused
 * without blocking.
 * Returns 0, -ENOENT (no such engine), XR_ENOTARENA, XR_ELAYOUT, XR_ECLOSED
 * (closed, or its engine is dead), XR_EUNTRUSTED (another user's file), or
 * -errno.
 */
int xr__arena_open(const char *name, int flags, int stream, struct xr_arena **out);
void xr__arena_close(struct xr_arena *a);

/* As xr_arena_create(), but the arena is not findable by its name until
 * xr__arena_publish(): the engine first opens its control socket, so that
 * whoever finds the arena can attach (a reader polling `xring info`, then
 * attaching). The name is checked free now; publishing checks again.
 * xr__arena_publish returns 0, or -EEXIST when another engine took the name
 * meanwhile (xr_arena_last_note() says so), or -errno. */
int xr__arena_create_unnamed(const xr_arena_spec *spec, struct xr_arena **out);
int xr__arena_publish(struct xr_arena *a);

/* The same, for an arena file already open on fd (handed over by the
 * engine's control socket). Takes ownership of fd, also on failure. */
int xr__arena_open_fd(int fd, int flags, int stream, struct xr_arena **out);

/* Checks a snapshot of a header against the size of its file: every offset,
 * size and ring range inside the file and consistent with each other, every
 * stream's rings its own. 0, XR_ENOTARENA or XR_ELAYOUT. (Exposed for the
 * fuzz test of the header.) */
int xr__arena_validate(const struct xr_arena_hdr *h, uint64_t file_size);

/* Whether the engine behind an opened arena has not closed, and (for one
 * opened by name) its writer's process still runs. */
bool xr__arena_alive(const struct xr_arena *a);

/*
 * Arenas of this uid whose engine is gone (closed, or its process dead):
 * what a killed engine leaves behind, holding its huge pages or /dev/shm
 * memory until an engine of the same name starts. Looks in every place an
 * arena may be (hugetlbfs, /dev/shm, XRING_DIR), calls found() for each
 * with its path and size, and unless dry_run removes it, if the file there
 * is still the one examined. Nothing of another uid, nothing that is not an
 * arena, no live engine's and no arena of another layout (whose liveness
 * cannot be read) is touched. With n_names > 0, only arenas of those engine
 * names. Returns how many were found, or -errno.
 */
int xr__arena_reap_stale(const char *const *names, int n_names, bool dry_run,
			 void (*found)(const char *path, uint64_t bytes, bool removed, void *ctx),
			 void *ctx);

/* An engine-side user of the arena (a control server) starts or stops
 * holding it: xr_arena_destroy() refuses while anything holds it. */
void xr__arena_hold(struct xr_arena *a);
void xr__arena_unhold(struct xr_arena *a);

/* Reader table entries, by slot, and one reader's view of one ring. */
static inline struct xr_cursor_view *xr__view(const struct xr_arena *a, uint32_t ring,
					      uint32_t slot)
{
	return &a->views[(uint64_t)ring * a->lay.max_readers + slot];
}

void xr__writer_init(struct xr_writer *w, struct xr_arena *a, uint32_t ring);

/* Where the shard writing w's ring reports its stats, for tools. */
struct xr_shard_stats *xr__writer_shard_stats(struct xr_writer *w);
/* The same for its games at runtime. */
struct xr_game_stats *xr__writer_game_stats(struct xr_writer *w);


#endif
