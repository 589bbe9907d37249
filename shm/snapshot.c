/* SPDX-License-Identifier: MIT */
/*
 * Reads the stats region into a struct xr_snapshot (shm/snapshot.h). The
 * only acquire loads are of the entries' states, which publish the identity
 * fields stored before them (PI1 in shm/peers.c for readers, the agent
 * table's release of LIVE in engine/seats.c); every counter is a relaxed
 * load of a value its one writer stores relaxed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm/snapshot.h"
#include "util/atomics.h"
#include "util/clock.h"

static const char *const refusal_names[XR_REFUSE_KINDS] = {
	[XR_REFUSE_UID] = "uid", [XR_REFUSE_LIMIT] = "limit", [XR_REFUSE_RATE] = "rate",
	[XR_REFUSE_MALFORMED] = "malformed", [XR_REFUSE_TIMEOUT] = "timeout",
	[XR_REFUSE_OTHER] = "other",
};

const char *xr__snap_refusal_name(uint32_t k)
{
	return k < XR_REFUSE_KINDS ? refusal_names[k] : "?";
}

uint64_t xr__snap_bucket_le(uint32_t b)
{
	return xr_ll_upper(b);
}

/* Saturating: a reader's own histograms are numbers it wrote. */
static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

void xr__snap_hist_add(struct xr_snap_hist *h, const struct xr_hist *src)
{
	h->count = sat_add(h->count, xr_load_relaxed(&src->count));
	h->sum_ns = sat_add(h->sum_ns, xr_load_relaxed(&src->sum_ns));
	for (uint32_t b = 0; b < XR_SNAP_BUCKETS; b++)
		h->b[b] = sat_add(h->b[b], xr_load_relaxed(&src->b[b]));
}

uint64_t xr__snap_quantile(const struct xr_snap_hist *h, double q)
{
	uint64_t seen = 0;

	if (!h->count)
		return 0;
	for (uint32_t b = 0; b < XR_SNAP_BUCKETS; b++) {
		seen = sat_add(seen, h->b[b]);
		if ((double)seen >= q * (double)h->count)
			return xr__snap_bucket_le(b);
	}
	return UINT64_MAX; /* the buckets were read a moment after the count */
}

/* A label a peer chose, made safe to print anywhere: each byte below 0x20,
 * from 0x7f up (DEL, and the C1 controls of 8-bit terminals, 0x9b being
 * CSI), or that JSON or the Prometheus format would need escaped, becomes
 * '?', so that no label can move a terminal's cursor or break a format. */
static void printable(char *dst, const char *src, size_t n)
{
	size_t i;

	for (i = 0; i < n && src[i]; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = c < 0x20 || c >= 0x7f || c == '"' || c == '\\' ? '?' : (char)c;
	}
	dst[i] = '\0';
}

/* printable() of a label or name its owner may be writing meanwhile (a
 * reader's, an agent's, a table's): read a byte at a time, relaxed. */
static void printable_label(char *dst, const _Atomic char *src, size_t n)
{
	char raw[64];

	if (n > sizeof(raw))
		n = sizeof(raw);
	xr__label_get(raw, src, n);
	printable(dst, raw, n);
}

static void take_ring(const struct xr_arena *a, uint32_t r, struct xr_snap_ring *o)
{
	const struct xr_ring_desc *rd = &a->hdr->rings[r];
	const struct xr_shard_stats *ss = &a->hdr->shards[r];
	const struct xr_game_stats *g = &a->hdr->games[r];
	const struct xr_stream_desc *sd = &a->lay.streams[a->lay.rings[r].stream];
	uint64_t head = xr_load_relaxed(&rd->head), tail = xr_load_relaxed(&rd->tail);

	o->stream = a->lay.rings[r].stream;
	o->index = r - sd->first_ring;
	o->capacity = a->lay.rings[r].capacity;
	o->written = xr_load_relaxed(&rd->written);
	o->records = xr_load_relaxed(&rd->records);
	o->bytes = xr_load_relaxed(&rd->bytes);
	/* Two loads, not one moment: clamped to what a ring can hold. */
	o->fill = head > tail ? head - tail : 0;
	if (o->fill > o->capacity)
		o->fill = o->capacity;
	o->blocked = xr_load_relaxed(&rd->blocked) != 0;
	o->lease_stalls = xr_load_relaxed(&rd->lease_stalls);
	o->full_waits = xr_load_relaxed(&rd->full_waits);
	o->wait_ns = xr_load_relaxed(&rd->wait_ns);
	o->evictions = xr_load_relaxed(&rd->evictions);
	o->publishes = xr_load_relaxed(&rd->publishes);
	o->wakeups = xr_load_relaxed(&rd->wakeups);
	o->has_shard = xr_load_relaxed(&ss->tick_ns) != 0;
	o->games = xr_load_relaxed(&ss->games);
	o->steps = xr_load_relaxed(&ss->steps);
	o->steps_per_s = xr_load_relaxed(&ss->steps_per_s);
	o->episodes = xr_load_relaxed(&ss->episodes);
	o->turns_late = xr_load_relaxed(&ss->turns_late);
	o->cpu_ns = xr_load_relaxed(&ss->cpu_ns);
	o->created = xr_load_relaxed(&g->created);
	o->destroyed = xr_load_relaxed(&g->destroyed);
	o->resets = xr_load_relaxed(&g->resets);
	o->finals = xr_load_relaxed(&g->finals);
	o->finals_lost = xr_load_relaxed(&g->finals_lost);
	xr__snap_hist_add(&o->creation, &g->creation);
}

static void take_readers(const struct xr_arena *a, struct xr_snapshot *s)
{
	s->n_readers = 0;
	for (uint32_t slot = 0; slot < a->lay.max_readers; slot++) {
		const struct xr_reader_info *f = &a->infos[slot];
		const struct xr_reader_figs *g = &a->figs[slot];
		/* Pairs with PI1 (shm/peers.c): the entry's identity fields. */
		uint32_t state = xr_load_acquire(&f->state);
		if (state == XR_SLOT_FREE || f->stream >= a->lay.n_streams)
			continue;
		const struct xr_stream_desc *sd = &a->lay.streams[f->stream];
		for (uint32_t r = sd->first_ring; r < sd->first_ring + sd->n_rings; r++) {
			const struct xr_cursor_view *v = xr__view(a, r, slot);
			struct xr_snap_reader *o = &s->readers[s->n_readers++];
			*o = (struct xr_snap_reader){
				.slot = slot, .stream = f->stream, .ring = r, .state = state,
				.policy = f->policy, .uid = f->uid, .pid = f->pid,
				.attach_ns = f->attach_ns,
				.read = xr_load_relaxed(&v->read), .dropped = xr_load_relaxed(&v->dropped),
				.pending = xr_load_relaxed(&v->pending), .lag = xr_load_relaxed(&v->lag)};
			printable_label(o->label, f->label, sizeof(f->label));
			o->batches = xr_load_relaxed(&g->batches);
			o->sleeps = xr_load_relaxed(&g->sleeps);
			o->wakeups = xr_load_relaxed(&g->wakeups);
			o->filtered = xr_load_relaxed(&g->filtered);
			o->copies = xr_load_relaxed(&g->copies);
			xr__snap_hist_add(&o->age, &g->age);
			xr__snap_hist_add(&o->wake, &g->wake);
			xr__snap_hist_add(&o->fill, &g->fill);
		}
	}
}

static void take_agents(const struct xr_arena *a, struct xr_snapshot *s)
{
	s->n_agents = 0;
	if (!a->agents)
		return;
	for (uint32_t i = 0; i < XR_MAX_AGENTS; i++) {
		const struct xr_agent_info *f = &a->agents[i];
		/* Pairs with the release of the entry's state (engine/seats.c). */
		uint32_t state = xr_load_acquire(&f->state);
		if (state == XR_AGENT_FREE)
			continue;
		struct xr_snap_agent *o = &s->agents[s->n_agents++];
		*o = (struct xr_snap_agent){.id = i, .state = state, .uid = f->uid, .pid = f->pid,
					    .attach_ns = f->attach_ns,
					    .claims = xr_load_relaxed(&f->claims),
					    .seats = xr_load_relaxed(&f->seats)};
		printable_label(o->label, f->label, sizeof(f->label));
		/* Summed over the shards: each counts the turns it played. */
		for (uint32_t r = 0; r < a->lay.n_rings; r++) {
			const struct xr_agent_counts *k = &a->agent_stats[(size_t)i * a->lay.n_rings + r];
			o->actions += xr_load_relaxed(&k->actions);
			o->timeouts += xr_load_relaxed(&k->timeouts);
			o->late += xr_load_relaxed(&k->late);
			o->wrong_turn += xr_load_relaxed(&k->wrong_turn);
			o->out_of_range += xr_load_relaxed(&k->out_of_range);
			o->illegal += xr_load_relaxed(&k->illegal);
			o->fallbacks += xr_load_relaxed(&k->fallbacks);
			o->waiting += xr_load_relaxed(&k->waiting);
			xr__snap_hist_add(&o->rtt, &k->rtt);
		}
	}
}

static void take_tables(const struct xr_arena *a, struct xr_snapshot *s)
{
	s->n_tables = 0;
	for (uint32_t i = 0; i < XR_MAX_TABLES; i++) {
		const struct xr_table_view *v = &a->hdr->tables[i];
		/* Pairs with the release of LIVE (engine/table_service.c). */
		uint32_t state = xr_load_acquire(&v->state);
		if (state != XR_TVIEW_LIVE && state != XR_TVIEW_DROPPED)
			continue;
		struct xr_snap_table *o = &s->tables[s->n_tables++];
		*o = (struct xr_snap_table){
			.index = i, .state = state,
			.creator_uid = xr_load_relaxed(&v->creator_uid),
			.capacity = v->capacity, .item_size = v->item_size,
			.item_kind = xr_load_relaxed(&v->item_kind),
			.sampler = v->sampler, .remover = v->remover,
			.feed = xr_load_relaxed(&v->feed),
			.size = xr_load_relaxed(&v->size), .leases = xr_load_relaxed(&v->leases),
			.inserts = xr_load_relaxed(&v->inserts),
			.samples = xr_load_relaxed(&v->samples),
			.removes = xr_load_relaxed(&v->removes),
			.feed_dropped = xr_load_relaxed(&v->feed_dropped),
			.trainers = xr_load_relaxed(&v->trainers)};
		printable_label(o->name, v->name, sizeof(v->name) - 1);
	}
}

static const char *name_of(const char *const *names, uint32_t n, uint32_t v)
{
	return v < n ? names[v] : "?";
}

const char *xr__snap_sampler_name(uint32_t v)
{
	static const char *const n[] = {"uniform", "prioritized", "fifo", "lifo"};
	return name_of(n, 4, v);
}

const char *xr__snap_remover_name(uint32_t v)
{
	static const char *const n[] = {"fifo", "lifo", "lowest-priority"};
	return name_of(n, 3, v);
}

const char *xr__snap_item_name(uint32_t v)
{
	static const char *const n[] = {"bytes", "record", "transition"};
	return name_of(n, 3, v);
}

const char *xr__snap_feed_name(uint32_t v)
{
	static const char *const n[] = {"none", "on", "failed"};
	return name_of(n, 3, v);
}

int xr__snap_take(const struct xr_arena *a, struct xr_snapshot *s)
{
	const struct xr_arena_hdr *h = a->hdr;
	uint64_t now = xr__now_ns(), hb = xr_load_relaxed(&h->heartbeat_ns);
	size_t cap = (size_t)a->lay.max_readers * (a->lay.n_rings ? a->lay.n_rings : 1);
	struct xr_snap_reader *readers = calloc(cap ? cap : 1, sizeof(*readers));

	if (!readers)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	s->readers = readers;
	snprintf(s->name, sizeof(s->name), "%s", a->lay.name);
	printable(s->path, h->path, sizeof(s->path) - 1);
	s->backing = xr_backing_name((xr_backing)h->backing);
	if (!s->backing)
		s->backing = "?";
	s->pid = a->lay.writer_pid;
	s->uid = a->lay.writer_uid;
	s->numa_node = h->numa_node;
	s->page_size = a->lay.page_size;
	s->size = a->lay.total_size;
	s->created_ns = h->created_ns;
	s->taken_ns = xr__wall_ns();
	s->taken_mono_ns = now;
	s->uptime_s = s->taken_ns > s->created_ns ? (double)(s->taken_ns - s->created_ns) / 1e9 : 0;
	s->heartbeat_age_s = now > hb ? (double)(now - hb) / 1e9 : 0.0;
	s->open = xr_load_acquire(&h->state) == XR_ARENA_READY;
	s->connections = xr_load_relaxed(&h->engine.connections);
	s->conns_open = xr_load_relaxed(&h->engine.open);
	for (uint32_t k = 0; k < XR_REFUSE_KINDS; k++)
		s->refusals[k] = xr_load_relaxed(&h->engine.refusals[k]);
	s->n_streams = a->lay.n_streams;
	for (uint32_t i = 0; i < s->n_streams; i++) {
		const struct xr_stream_desc *sd = &a->lay.streams[i];
		printable(s->streams[i].name, sd->name, XR_STREAM_NAME_MAX);
		s->streams[i].policy = sd->policy;
		s->streams[i].n_rings = sd->n_rings;
		s->streams[i].first_ring = sd->first_ring;
		s->streams[i].ring_capacity = sd->ring_capacity;
	}
	s->n_rings = a->lay.n_rings;
	for (uint32_t r = 0; r < s->n_rings; r++)
		take_ring(a, r, &s->rings[r]);
	take_readers(a, s);
	take_agents(a, s);
	take_tables(a, s);
	return 0;
}

void xr__snap_free(struct xr_snapshot *s)
{
	free(s->readers);
	s->readers = NULL;
}
