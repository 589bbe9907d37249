/* SPDX-License-Identifier: MIT */
#ifndef XR_SHM_SNAPSHOT_H
#define XR_SHM_SNAPSHOT_H

/*
 * One reading of everything an arena's stats region says (shm/layout.h):
 * the engine, its streams and rings, the shards writing them, their games,
 * the readers, the agents and the replay tables. `xring stat` prints it, `xring top` draws it
 * once a second, and the engine's metrics endpoint serves it to Prometheus
 * (engine/metrics.c), so that the three never disagree about a figure.
 *
 * Taken without asking the engine and without locks: each figure is one
 * relaxed load of a counter the engine stores, so figures of one snapshot
 * may be a housekeeping tick apart, never torn. Loops and indices come from
 * the arena's validated private layout (struct xr_layout), and strings a
 * peer chose (labels) are made printable here, once.
 */

#include <stdbool.h>
#include <stdint.h>

#include "shm/arena_priv.h"

/* A histogram as read from the arena (struct xr_hist: the log-linear
 * buckets of util/llhist.h). */
#define XR_SNAP_BUCKETS XR_LL_BUCKETS

struct xr_snap_hist {
	uint64_t count, sum_ns;
	uint64_t b[XR_SNAP_BUCKETS];
};

/* Adds arena histogram src into h (relaxed loads). */
void xr__snap_hist_add(struct xr_snap_hist *h, const struct xr_hist *src);
/* The upper bound in ns of bucket b (the last: UINT64_MAX, +Inf). */
uint64_t xr__snap_bucket_le(uint32_t b);
/* The upper bound in ns of the bucket holding quantile q of h; 0 when h is
 * empty; UINT64_MAX when it is in the last, unbounded, bucket. */
uint64_t xr__snap_quantile(const struct xr_snap_hist *h, double q);

struct xr_snap_ring {
	uint32_t stream, index;        /* its stream, and its index there */
	uint64_t capacity;
	uint64_t written;              /* records produced (dropped included) */
	uint64_t records, bytes;       /* written, not dropped */
	uint64_t fill;                 /* bytes between tail and head */
	bool blocked;                  /* a lossless writer stopped for readers */
	uint64_t lease_stalls, full_waits, wait_ns, evictions, publishes, wakeups;
	/* its shard (has_shard: one writes it) */
	bool has_shard;
	uint64_t games, steps, steps_per_s, episodes, turns_late, cpu_ns;
	/* its games at runtime */
	uint64_t created, destroyed, resets, finals, finals_lost;
	struct xr_snap_hist creation;  /* creation request -> first record */
};

struct xr_snap_reader {
	uint32_t slot, stream, ring;   /* ring: the arena's index */
	uint32_t state, policy, uid;   /* XR_SLOT_*, xr_policy */
	int32_t pid;
	uint64_t attach_ns;            /* CLOCK_REALTIME */
	char label[17];                /* printable (peer-chosen) */
	uint64_t read, dropped, pending, lag;
	/* What the reader counts itself (struct xr_reader_figs, mirrored by
	 * the engine; per reader, the same on each of its rings' rows). */
	uint64_t batches, sleeps, wakeups, filtered, copies;
	struct xr_snap_hist age, wake, fill;
};

struct xr_snap_agent {
	uint32_t id, state, uid, claims;   /* state: XR_AGENT_LIVE or _GONE */
	int32_t pid;
	uint64_t attach_ns;
	char label[17];
	uint64_t seats;
	uint64_t actions, timeouts, late, wrong_turn, out_of_range, illegal, fallbacks, waiting;
	struct xr_snap_hist rtt;       /* record written -> answer seen */
};

struct xr_snap_table {
	uint32_t index, state, creator_uid;  /* state: XR_TVIEW_LIVE or _DROPPED */
	char name[32];                 /* printable */
	uint32_t capacity, item_size;
	uint32_t item_kind;            /* 0 bytes; 1 + enum xr_table_item */
	uint32_t sampler, remover, feed; /* enum xr_table_sampler, _remover; XR_TFEED_* */
	uint64_t size, leases, inserts, samples, removes, feed_dropped;
	uint32_t trainers;
};

struct xr_snapshot {
	char name[XR_NAME_MAX + 1];
	char path[XR_PATH_MAX];
	const char *backing;           /* static string */
	int32_t pid, numa_node;
	uint32_t uid;
	uint64_t page_size, size;
	uint64_t created_ns;           /* CLOCK_REALTIME */
	uint64_t taken_ns;             /* CLOCK_REALTIME of this snapshot */
	uint64_t taken_mono_ns;        /* CLOCK_MONOTONIC of this snapshot */
	double uptime_s, heartbeat_age_s;
	bool open;                     /* the arena is READY (not closed) */
	uint64_t connections, conns_open;
	uint64_t refusals[XR_REFUSE_KINDS];
	uint32_t n_streams, n_rings, n_readers, n_agents, n_tables;
	struct {
		char name[XR_STREAM_NAME_MAX + 1];
		uint32_t policy, n_rings, first_ring;
		uint64_t ring_capacity;
	} streams[XR_MAX_STREAMS];
	struct xr_snap_ring rings[XR_MAX_RINGS];
	struct xr_snap_reader *readers;  /* [n_readers]: (slot, ring) pairs in use */
	struct xr_snap_agent agents[XR_MAX_AGENTS];
	struct xr_snap_table tables[XR_MAX_TABLES];
};

/* What tools call a table's sampler, remover, item kind (as in the view)
 * and feed state: "uniform", "fifo", "record", "on", ...; "?" out of range. */
const char *xr__snap_sampler_name(uint32_t v);
const char *xr__snap_remover_name(uint32_t v);
const char *xr__snap_item_name(uint32_t v);
const char *xr__snap_feed_name(uint32_t v);

/* What XR_REFUSE_* kind k is called in tools ("uid", "limit", ...). */
const char *xr__snap_refusal_name(uint32_t k);

/* Reads arena a into *s. 0 or -ENOMEM; free with xr__snap_free(). */
int xr__snap_take(const struct xr_arena *a, struct xr_snapshot *s);
void xr__snap_free(struct xr_snapshot *s);

#endif
