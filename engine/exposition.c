/* SPDX-License-Identifier: MIT */
/*
 * A snapshot of the stats region in the Prometheus text exposition format
 * (version 0.0.4): every family with its HELP and TYPE lines, base units
 * (seconds, bytes), counters ending in _total, histograms as cumulative
 * _bucket{le} series with _sum and _count. docs/operations.md lists the
 * families; the names are a contract with dashboards and alert rules
 * (docs/examples/), so a rename is a breaking change.
 *
 * Label values come from the snapshot, where peer-chosen strings were made
 * printable without '"' or '\\' (shm/snapshot.c), so they need no escaping.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/metrics.h"
#include "xring/reader.h"

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	for (int tries = 0; tries < 2 && !b->oom; tries++) {
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap + (size_t)n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *policy(uint32_t p)
{
	const char *n = xr_policy_name((xr_policy)p);

	return n ? n : "unknown";
}

/* Per-ring families: one line per ring, labelled with its stream and
 * index. `off` is the field's offset in struct xr_snap_ring; `scale`
 * turns ns into seconds where the family is in seconds. */
struct ring_family {
	const char *name, *type, *help;
	size_t off;
	double scale;
	bool shard; /* only rings a shard writes */
};

#define RF(n, t, h, f, sc, sh) {n, t, h, offsetof(struct xr_snap_ring, f), sc, sh}

static const struct ring_family ring_families[] = {
	RF("xring_ring_capacity_bytes", "gauge", "Bytes a ring holds.", capacity, 1, false),
	RF("xring_ring_fill_bytes", "gauge", "Bytes published and not yet reclaimed (head - tail).",
	   fill, 1, false),
	RF("xring_ring_records_total", "counter",
	   "Records the writer produced, dropped ones included (the next sequence number).",
	   written, 1, false),
	RF("xring_ring_bytes_total", "counter", "Frame bytes written.", bytes, 1, false),
	RF("xring_ring_publishes_total", "counter", "Batch commits (stores of head).", publishes, 1,
	   false),
	RF("xring_ring_wakeups_total", "counter", "Wakeups sent to sleeping readers.", wakeups, 1,
	   false),
	RF("xring_ring_writer_stops_total", "counter",
	   "Times a lossless writer stopped for its readers (ring full or past the high watermark).",
	   full_waits, 1, false),
	RF("xring_ring_writer_stopped_seconds_total", "counter",
	   "Time a lossless writer spent stopped for its readers.", wait_ns, 1e-9, false),
	RF("xring_ring_lease_stall_drops_total", "counter",
	   "Lossy: records dropped at the writer because a reader's lease was in the way.",
	   lease_stalls, 1, false),
	RF("xring_ring_evictions_total", "counter", "Readers evicted from this ring.", evictions, 1,
	   false),
	RF("xring_shard_games", "gauge", "Games the shard writing this ring hosts.", games, 1, true),
	RF("xring_shard_steps_total", "counter", "Game steps the shard played.", steps, 1, true),
	RF("xring_shard_episodes_total", "counter", "Episodes the shard finished.", episodes, 1,
	   true),
	RF("xring_shard_turns_late_total", "counter",
	   "With --tick-ms: turns played a tick or more late.", turns_late, 1, true),
	RF("xring_shard_cpu_seconds_total", "counter", "CPU time of the shard's thread.", cpu_ns,
	   1e-9, true),
	RF("xring_games_created_total", "counter", "Games created at runtime on this shard.",
	   created, 1, true),
	RF("xring_games_destroyed_total", "counter", "Games destroyed on this shard.", destroyed, 1,
	   true),
	RF("xring_games_resets_total", "counter", "Game resets taken by this shard.", resets, 1,
	   true),
	RF("xring_games_final_records_total", "counter",
	   "Truncated records of episodes cut short (destroy, reset, stop).", finals, 1, true),
	RF("xring_games_final_records_lost_total", "counter",
	   "Final records not written: the stop's drain timed out.", finals_lost, 1, true),
};

static void ring_labels(struct buf *b, const struct xr_snapshot *s, const struct xr_snap_ring *r)
{
	put(b, "stream=\"%s\",ring=\"%u\"", s->streams[r->stream].name, r->index);
}

/* A value: integers exactly, seconds as doubles. */
static void value(struct buf *b, uint64_t v, double scale)
{
	if (scale == 1)
		put(b, " %" PRIu64 "\n", v);
	else
		put(b, " %.9g\n", (double)v * scale);
}

/* A histogram's series. Its buckets are log-linear, four a power of two
 * (util/llhist.h); the exposition gives the cumulative counts at the powers
 * of two only (256 ns .. 2^36 ns, 29 bounds), which are exact sums of
 * whole buckets: what Prometheus needs for quantiles, at a quarter of the
 * series. `xring stat` keeps the fine buckets. */
static void hist_lines(struct buf *b, const char *name, const char *labels,
		       const struct xr_snap_hist *h)
{
	uint64_t cum = 0;

	for (uint32_t k = 0; k + 1 < XR_SNAP_BUCKETS; k++) {
		/* Saturating: a reader's own figures are what it wrote, and a
		 * cumulative series must not wrap and go down. */
		cum = h->b[k] > UINT64_MAX - cum ? UINT64_MAX : cum + h->b[k];
		if (k && (k - 1) % XR_LL_SUB != XR_LL_SUB - 1)
			continue; /* not at a power of two */
		put(b, "%s_bucket{%s%sle=\"%.9g\"} %" PRIu64 "\n", name, labels, *labels ? "," : "",
		    (double)xr__snap_bucket_le(k) * 1e-9, cum);
	}
	/* +Inf is the count: the buckets are read a moment apart from it, and
	 * a cumulative series must not go down. */
	uint64_t last = h->b[XR_SNAP_BUCKETS - 1];
	cum = last > UINT64_MAX - cum ? UINT64_MAX : cum + last;
	uint64_t count = h->count > cum ? h->count : cum;
	put(b, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, *labels ? "," : "", count);
	put(b, "%s_sum{%s} %.9g\n", name, labels, (double)h->sum_ns * 1e-9);
	put(b, "%s_count{%s} %" PRIu64 "\n", name, labels, count);
}

static void engine_families(struct buf *b, const struct xr_snapshot *s)
{
	family(b, "xring_engine_info", "gauge",
	       "The engine serving these metrics (always 1; its facts are labels).");
	put(b, "xring_engine_info{name=\"%s\",backing=\"%s\",pid=\"%d\",numa_node=\"%d\"} 1\n",
	    s->name, s->backing, s->pid, s->numa_node);
	family(b, "xring_engine_start_time_seconds", "gauge",
	       "When the engine created its arena, seconds since the Unix epoch.");
	put(b, "xring_engine_start_time_seconds %.3f\n", (double)s->created_ns * 1e-9);
	family(b, "xring_engine_uptime_seconds", "gauge", "Seconds since the engine started.");
	put(b, "xring_engine_uptime_seconds %.3f\n", s->uptime_s);
	family(b, "xring_engine_heartbeat_age_seconds", "gauge",
	       "Seconds since the engine's housekeeping last ran (10 times a second when well).");
	put(b, "xring_engine_heartbeat_age_seconds %.3f\n", s->heartbeat_age_s);
	family(b, "xring_arena_bytes", "gauge", "Size of the engine's arena file.");
	put(b, "xring_arena_bytes %" PRIu64 "\n", s->size);
	family(b, "xring_connections_accepted_total", "counter",
	       "Connections the control socket accepted.");
	put(b, "xring_connections_accepted_total %" PRIu64 "\n", s->connections);
	family(b, "xring_connections_open", "gauge", "Connections open on the control socket.");
	put(b, "xring_connections_open %" PRIu64 "\n", s->conns_open);
	family(b, "xring_refusals_total", "counter",
	       "Requests and connections the control socket refused, by reason.");
	for (uint32_t k = 0; k < XR_REFUSE_KINDS; k++)
		put(b, "xring_refusals_total{reason=\"%s\"} %" PRIu64 "\n", xr__snap_refusal_name(k),
		    s->refusals[k]);
}

static void ring_and_shard_families(struct buf *b, const struct xr_snapshot *s)
{
	char labels[128];

	for (size_t f = 0; f < sizeof(ring_families) / sizeof(ring_families[0]); f++) {
		const struct ring_family *rf = &ring_families[f];
		family(b, rf->name, rf->type, rf->help);
		for (uint32_t i = 0; i < s->n_rings; i++) {
			const struct xr_snap_ring *r = &s->rings[i];
			if (rf->shard && !r->has_shard)
				continue;
			put(b, "%s{", rf->name);
			ring_labels(b, s, r);
			put(b, "}");
			value(b, *(const uint64_t *)((const char *)r + rf->off), rf->scale);
		}
	}
	family(b, "xring_ring_writer_stopped", "gauge",
	       "1 while a lossless writer is stopped for its readers.");
	for (uint32_t i = 0; i < s->n_rings; i++) {
		put(b, "xring_ring_writer_stopped{");
		ring_labels(b, s, &s->rings[i]);
		put(b, "} %d\n", s->rings[i].blocked ? 1 : 0);
	}
	family(b, "xring_game_creation_seconds", "histogram",
	       "From a creation request to the game's first record.");
	for (uint32_t i = 0; i < s->n_rings; i++) {
		const struct xr_snap_ring *r = &s->rings[i];
		if (!r->has_shard)
			continue;
		snprintf(labels, sizeof(labels), "stream=\"%s\",ring=\"%u\"",
			 s->streams[r->stream].name, r->index);
		hist_lines(b, "xring_game_creation_seconds", labels, &r->creation);
	}
}

static void reader_families(struct buf *b, const struct xr_snapshot *s)
{
	static const struct {
		const char *name, *type, *help;
		size_t off;
	} fams[] = {
		{"xring_reader_records_read_total", "counter", "Records handed to the reader.",
		 offsetof(struct xr_snap_reader, read)},
		{"xring_reader_records_dropped_total", "counter",
		 "Records the reader lost (lossy readers only).",
		 offsetof(struct xr_snap_reader, dropped)},
		{"xring_reader_records_pending", "gauge",
		 "Records written that the reader has not reached yet.",
		 offsetof(struct xr_snap_reader, pending)},
		{"xring_reader_lag_bytes", "gauge", "Bytes published that the reader has not read.",
		 offsetof(struct xr_snap_reader, lag)},
	};
	static const char *const states[] = {"free", "attaching", "active", "evicted"};

	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		family(b, fams[f].name, fams[f].type, fams[f].help);
		for (uint32_t i = 0; i < s->n_readers; i++) {
			const struct xr_snap_reader *d = &s->readers[i];
			put(b, "%s{stream=\"%s\",ring=\"%u\",slot=\"%u\",label=\"%s\",policy=\"%s\","
			       "state=\"%s\"} %" PRIu64 "\n",
			    fams[f].name, s->streams[d->stream].name, s->rings[d->ring].index, d->slot,
			    d->label, policy(d->policy), d->state < 4 ? states[d->state] : "unknown",
			    *(const uint64_t *)((const char *)d + fams[f].off));
		}
	}
}

/* The figures a reader counts itself: one series per reader (its first
 * ring's row carries them). */
static void reader_own_families(struct buf *b, const struct xr_snapshot *s)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} fams[] = {
		{"xring_reader_batches_total", "Batches the reader took.",
		 offsetof(struct xr_snap_reader, batches)},
		{"xring_reader_sleeps_total", "Times the reader slept waiting for a batch.",
		 offsetof(struct xr_snap_reader, sleeps)},
		{"xring_reader_wakeups_total", "Of those, the times a writer woke it.",
		 offsetof(struct xr_snap_reader, wakeups)},
		{"xring_reader_records_filtered_total", "Records the reader's filter skipped.",
		 offsetof(struct xr_snap_reader, filtered)},
		{"xring_reader_copies_total",
		 "Batches copied out of the ring rather than viewed (bindings that copy).",
		 offsetof(struct xr_snap_reader, copies)},
	};
	static const struct {
		const char *name, *help;
		size_t off;
	} hists[] = {
		{"xring_reader_record_age_seconds",
		 "Age of each batch's oldest record when the reader took it (t_ns to the read).",
		 offsetof(struct xr_snap_reader, age)},
		{"xring_reader_wakeup_latency_seconds",
		 "From the publish that woke the reader to the reader running again.",
		 offsetof(struct xr_snap_reader, wake)},
		{"xring_reader_batch_fill_seconds",
		 "From a batch's first record's writing to its last's (t_ns).",
		 offsetof(struct xr_snap_reader, fill)},
	};
	char labels[128];

	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		family(b, fams[f].name, "counter", fams[f].help);
		for (uint32_t i = 0; i < s->n_readers; i++) {
			const struct xr_snap_reader *d = &s->readers[i];
			if (s->rings[d->ring].index != 0)
				continue;
			put(b, "%s{stream=\"%s\",slot=\"%u\",label=\"%s\"} %" PRIu64 "\n", fams[f].name,
			    s->streams[d->stream].name, d->slot, d->label,
			    *(const uint64_t *)((const char *)d + fams[f].off));
		}
	}
	for (size_t f = 0; f < sizeof(hists) / sizeof(hists[0]); f++) {
		family(b, hists[f].name, "histogram", hists[f].help);
		for (uint32_t i = 0; i < s->n_readers; i++) {
			const struct xr_snap_reader *d = &s->readers[i];
			if (s->rings[d->ring].index != 0)
				continue;
			snprintf(labels, sizeof(labels), "stream=\"%s\",slot=\"%u\",label=\"%s\"",
				 s->streams[d->stream].name, d->slot, d->label);
			hist_lines(b, hists[f].name, labels,
				   (const struct xr_snap_hist *)((const char *)d + hists[f].off));
		}
	}
}

static void agent_families(struct buf *b, const struct xr_snapshot *s)
{
	char labels[96];

	family(b, "xring_agent_seats", "gauge", "Seats (game, player) the agent's claims cover.");
	for (uint32_t i = 0; i < s->n_agents; i++)
		put(b, "xring_agent_seats{agent=\"%u\",label=\"%s\",state=\"%s\"} %" PRIu64 "\n",
		    s->agents[i].id, s->agents[i].label,
		    s->agents[i].state == XR_AGENT_LIVE ? "live" : "gone", s->agents[i].seats);
	family(b, "xring_agent_actions_total", "counter",
	       "Answers taken: for the turn, in range, legal.");
	for (uint32_t i = 0; i < s->n_agents; i++)
		put(b, "xring_agent_actions_total{agent=\"%u\",label=\"%s\"} %" PRIu64 "\n",
		    s->agents[i].id, s->agents[i].label, s->agents[i].actions);
	family(b, "xring_agent_fallbacks_total", "counter",
	       "Turns of the agent's seats that got the fallback action, by reason.");
	for (uint32_t i = 0; i < s->n_agents; i++) {
		const struct xr_snap_agent *g = &s->agents[i];
		const struct {
			const char *why;
			uint64_t n;
		} r[] = {{"timeout", g->timeouts},
			 {"wrong_turn", g->wrong_turn},
			 {"out_of_range", g->out_of_range},
			 {"illegal", g->illegal}};
		for (size_t k = 0; k < 4; k++)
			put(b, "xring_agent_fallbacks_total{agent=\"%u\",label=\"%s\",reason=\"%s\"} %" PRIu64
			       "\n",
			    g->id, g->label, r[k].why, r[k].n);
	}
	family(b, "xring_agent_late_answers_total", "counter",
	       "Timeouts whose answer came after the deadline.");
	for (uint32_t i = 0; i < s->n_agents; i++)
		put(b, "xring_agent_late_answers_total{agent=\"%u\",label=\"%s\"} %" PRIu64 "\n",
		    s->agents[i].id, s->agents[i].label, s->agents[i].late);
	family(b, "xring_agent_waiting_seats", "gauge",
	       "Seats whose record waits for the agent's answer now.");
	for (uint32_t i = 0; i < s->n_agents; i++)
		put(b, "xring_agent_waiting_seats{agent=\"%u\",label=\"%s\"} %" PRIu64 "\n",
		    s->agents[i].id, s->agents[i].label, s->agents[i].waiting);
	family(b, "xring_agent_round_trip_seconds", "histogram",
	       "From a record's writing to the shard seeing the agent's answer.");
	for (uint32_t i = 0; i < s->n_agents; i++) {
		snprintf(labels, sizeof(labels), "agent=\"%u\",label=\"%s\"", s->agents[i].id,
			 s->agents[i].label);
		hist_lines(b, "xring_agent_round_trip_seconds", labels, &s->agents[i].rtt);
	}
}

static void table_families(struct buf *b, const struct xr_snapshot *s)
{
	static const struct {
		const char *name, *type, *help;
		size_t off;
	} f[] = {
		{"xring_table_items", "gauge", "Items in the replay table.",
		 offsetof(struct xr_snap_table, size)},
		{"xring_table_leases", "gauge", "Leases its trainers hold on its items.",
		 offsetof(struct xr_snap_table, leases)},
		{"xring_table_inserts_total", "counter", "Items inserted (the rate limiter's count).",
		 offsetof(struct xr_snap_table, inserts)},
		{"xring_table_samples_total", "counter", "Items sampled (the rate limiter's count).",
		 offsetof(struct xr_snap_table, samples)},
		{"xring_table_removes_total", "counter", "Items removed to make room, or spent.",
		 offsetof(struct xr_snap_table, removes)},
		{"xring_table_feed_dropped_total", "counter",
		 "Records of its stream the engine's feed could not insert.",
		 offsetof(struct xr_snap_table, feed_dropped)},
	};

	/* Labels table and index: a dropped table still open and a new one
	 * of its name are two tables at once, at two indices. */
	family(b, "xring_table_capacity", "gauge", "The replay table's capacity, in items.");
	for (uint32_t i = 0; i < s->n_tables; i++)
		put(b, "xring_table_capacity{table=\"%s\",index=\"%u\",state=\"%s\",sampler=\"%s\"} "
		       "%u\n",
		    s->tables[i].name, s->tables[i].index,
		    s->tables[i].state == XR_TVIEW_DROPPED ? "dropped" : "live",
		    xr__snap_sampler_name(s->tables[i].sampler), s->tables[i].capacity);
	family(b, "xring_table_trainers", "gauge", "Trainers that have the table open.");
	for (uint32_t i = 0; i < s->n_tables; i++)
		put(b, "xring_table_trainers{table=\"%s\",index=\"%u\"} %u\n", s->tables[i].name,
		    s->tables[i].index, s->tables[i].trainers);
	for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
		family(b, f[k].name, f[k].type, f[k].help);
		for (uint32_t i = 0; i < s->n_tables; i++) {
			uint64_t v;
			memcpy(&v, (const char *)&s->tables[i] + f[k].off, sizeof(v));
			put(b, "%s{table=\"%s\",index=\"%u\"} %" PRIu64 "\n", f[k].name,
			    s->tables[i].name, s->tables[i].index, v);
		}
	}
}

int xr__metrics_render(const struct xr_snapshot *s, char **out, size_t *len)
{
	struct buf b = {.cap = 16384};

	if (!(b.p = malloc(b.cap)))
		return -ENOMEM;
	engine_families(&b, s);
	ring_and_shard_families(&b, s);
	reader_families(&b, s);
	reader_own_families(&b, s);
	agent_families(&b, s);
	table_families(&b, s);
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}
