/* SPDX-License-Identifier: MIT */
/*
 * `xring stat`: one snapshot of an engine's stats region (shm/snapshot.h),
 * read from its arena without asking the engine, as text or JSON. The same
 * figures are what `xring top` draws and the engine's metrics endpoint
 * serves; docs/operations.md says what each one means.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "shm/snapshot.h"
#include "shm/table_layout.h"
#include "xring/reader.h"

static const char stat_help[] =
	"usage: xring stat NAME [--json]\n"
	"\n"
	"One snapshot of engine NAME's figures, read from its arena: the engine\n"
	"(uptime, connections, refusals by reason), each ring (written, fill,\n"
	"stops, evictions, wakeups) with its shard (games, steps/s, CPU) and its\n"
	"games, each reader (read, dropped, pending, lag) and each agent (actions,\n"
	"fallbacks by reason, round-trip percentiles), and each replay table\n"
	"(items, leases, trainers, inserts, samples, its feed). Run as the engine's\n"
	"user.\n"
	"\n"
	"  --json   one JSON object instead of text\n";

static const char *policy_name(uint32_t p)
{
	const char *n = xr_policy_name((xr_policy)p);

	return n ? n : "?";
}

static const char *slot_state(uint32_t s)
{
	switch (s) {
	case XR_SLOT_CLAIMED: return "attaching";
	case XR_SLOT_ACTIVE: return "active";
	case XR_SLOT_EVICTED: return "evicted";
	}
	return "free";
}

/* A bucket bound for people: "< 1.05 ms", ">= 4.29 s" (the last, open
 * bucket), "-" for an empty histogram. */
static const char *bound(uint64_t ns, char buf[32])
{
	if (!ns)
		snprintf(buf, 32, "-");
	else if (ns == UINT64_MAX)
		snprintf(buf, 32, ">= %.3g s", (double)xr__snap_bucket_le(XR_SNAP_BUCKETS - 2) / 1e9);
	else if (ns >= 1000000000ull)
		snprintf(buf, 32, "< %.3g s", (double)ns / 1e9);
	else if (ns >= 1000000ull)
		snprintf(buf, 32, "< %.3g ms", (double)ns / 1e6);
	else
		snprintf(buf, 32, "< %.3g us", (double)ns / 1e3);
	return buf;
}

/* A quantile for JSON: its bound in ns, null when empty or unbounded. */
static void json_q(const char *key, const struct xr_snap_hist *h, double q)
{
	uint64_t v = xr__snap_quantile(h, q);

	if (!v || v == UINT64_MAX)
		printf(",\"%s\":null", key);
	else
		printf(",\"%s\":%" PRIu64, key, v);
}

static void text_ring(const struct xr_snapshot *s, const struct xr_snap_ring *r, uint32_t ri)
{
	char a[32], b[32];

	printf("    ring %u: written %" PRIu64 " records (%" PRIu64 " MiB), fill %" PRIu64
	       " KiB of %" PRIu64 " KiB%s; publishes %" PRIu64 ", wakeups %" PRIu64
	       ", stops %" PRIu64 " (%.3f s), lease stalls %" PRIu64 ", evictions %" PRIu64 "\n",
	       r->index, r->written, r->bytes >> 20, r->fill >> 10, r->capacity >> 10,
	       r->blocked ? ", writer stopped for its readers" : "", r->publishes, r->wakeups,
	       r->full_waits, (double)r->wait_ns / 1e9, r->lease_stalls, r->evictions);
	if (r->has_shard) {
		printf("      shard: %" PRIu64 " games, %" PRIu64 " steps (%" PRIu64 "/s), %" PRIu64
		       " episodes, %" PRIu64 " turns late, %.2f s CPU\n",
		       r->games, r->steps, r->steps_per_s, r->episodes, r->turns_late,
		       (double)r->cpu_ns / 1e9);
		printf("      games: created %" PRIu64 ", destroyed %" PRIu64 ", reset %" PRIu64
		       ", final records %" PRIu64 " (lost %" PRIu64 "); creation p50 %s, p99 %s\n",
		       r->created, r->destroyed, r->resets, r->finals, r->finals_lost,
		       bound(xr__snap_quantile(&r->creation, 0.5), a),
		       bound(xr__snap_quantile(&r->creation, 0.99), b));
	}
	bool any = false;
	for (uint32_t i = 0; i < s->n_readers; i++) {
		const struct xr_snap_reader *d = &s->readers[i];
		if (d->ring != ri)
			continue;
		printf("      reader %u pid %d uid %u \"%s\" (%s, %s): read %" PRIu64 ", dropped %" PRIu64
		       ", pending %" PRIu64 ", lag %" PRIu64 " KiB\n",
		       d->slot, d->pid, d->uid, d->label, slot_state(d->state), policy_name(d->policy),
		       d->read, d->dropped, d->pending, d->lag >> 10);
		if (r->index == 0) {
			/* What the reader counts itself: once, on its first ring. */
			char a1[32], a2[32], w1[32], w2[32], f1[32], f2[32];
			printf("        its own count: %" PRIu64 " batches, %" PRIu64 " sleeps, %" PRIu64
			       " wakeups, %" PRIu64 " filtered, %" PRIu64 " copies; record age p50 %s"
			       ", p99 %s; wakeup p50 %s, p99 %s; batch fill p50 %s, p99 %s\n",
			       d->batches, d->sleeps, d->wakeups, d->filtered, d->copies,
			       bound(xr__snap_quantile(&d->age, 0.5), a1),
			       bound(xr__snap_quantile(&d->age, 0.99), a2),
			       bound(xr__snap_quantile(&d->wake, 0.5), w1),
			       bound(xr__snap_quantile(&d->wake, 0.99), w2),
			       bound(xr__snap_quantile(&d->fill, 0.5), f1),
			       bound(xr__snap_quantile(&d->fill, 0.99), f2));
		}
		any = true;
	}
	if (!any)
		printf("      no readers\n");
}

static void text(const struct xr_snapshot *s)
{
	char a[32], b[32], c[32];

	printf("engine %s: pid %d, uid %u, up %.1f s, heartbeat %.2f s ago%s\n", s->name, s->pid,
	       s->uid, s->uptime_s, s->heartbeat_age_s, s->open ? "" : ", CLOSED");
	printf("  backing %s %s, %" PRIu64 " KiB pages, NUMA node %d, %.1f MiB\n", s->backing,
	       s->path, s->page_size >> 10, s->numa_node, (double)s->size / 1048576.0);
	printf("  connections: %" PRIu64 " open, %" PRIu64 " accepted; refused:", s->conns_open,
	       s->connections);
	for (uint32_t k = 0; k < XR_REFUSE_KINDS; k++)
		printf("%s %s %" PRIu64, k ? "," : "", xr__snap_refusal_name(k), s->refusals[k]);
	printf("\n");
	for (uint32_t i = 0; i < s->n_streams; i++) {
		printf("  stream %s: %s, %u ring(s)\n", s->streams[i].name,
		       policy_name(s->streams[i].policy), s->streams[i].n_rings);
		for (uint32_t r = s->streams[i].first_ring;
		     r < s->streams[i].first_ring + s->streams[i].n_rings; r++)
			text_ring(s, &s->rings[r], r);
	}
	for (uint32_t i = 0; i < s->n_agents; i++) {
		const struct xr_snap_agent *g = &s->agents[i];
		printf("  agent %u pid %d uid %u \"%s\" (%s): %u claims, %" PRIu64 " seats; actions %" PRIu64
		       ", fallbacks %" PRIu64 " (timeouts %" PRIu64 ", late %" PRIu64
		       ", wrong turn %" PRIu64 ", out of range %" PRIu64 ", illegal %" PRIu64
		       "), waiting %" PRIu64 "; round trip p50 %s, p99 %s, p999 %s\n",
		       g->id, g->pid, g->uid, g->label, g->state == XR_AGENT_LIVE ? "live" : "gone",
		       g->claims, g->seats, g->actions, g->fallbacks, g->timeouts, g->late,
		       g->wrong_turn, g->out_of_range, g->illegal, g->waiting,
		       bound(xr__snap_quantile(&g->rtt, 0.5), a),
		       bound(xr__snap_quantile(&g->rtt, 0.99), b),
		       bound(xr__snap_quantile(&g->rtt, 0.999), c));
	}
	if (!s->n_agents)
		printf("  no agents\n");
	for (uint32_t i = 0; i < s->n_tables; i++) {
		const struct xr_snap_table *t = &s->tables[i];
		printf("  table %s (%s, creator uid %u): %s items of %u bytes, %s sampler, %s "
		       "remover; %" PRIu64 " of %u items, %" PRIu64 " leased, %u trainers; inserts %"
		       PRIu64 ", samples %" PRIu64 ", removes %" PRIu64 "; feed %s",
		       t->name, t->state == XR_TVIEW_DROPPED ? "dropped" : "live", t->creator_uid,
		       xr__snap_item_name(t->item_kind), t->item_size, xr__snap_sampler_name(t->sampler),
		       xr__snap_remover_name(t->remover), t->size, t->capacity, t->leases, t->trainers,
		       t->inserts, t->samples, t->removes, xr__snap_feed_name(t->feed));
		if (t->feed != XR_TFEED_NONE)
			printf(" (%" PRIu64 " records not inserted)", t->feed_dropped);
		printf("\n");
	}
	if (!s->n_tables)
		printf("  no tables\n");
}

static void json_hist(const char *key, const struct xr_snap_hist *h)
{
	printf(",\"%s\":{\"count\":%" PRIu64 ",\"le_ns\":[", key, h->count);
	for (uint32_t b = 0; b + 1 < XR_SNAP_BUCKETS; b++)
		printf("%s%" PRIu64, b ? "," : "", xr__snap_bucket_le(b));
	printf("],\"buckets\":[");
	for (uint32_t b = 0; b < XR_SNAP_BUCKETS; b++)
		printf("%s%" PRIu64, b ? "," : "", h->b[b]);
	printf("]}");
}

static void json(const struct xr_snapshot *s)
{
	printf("{\"name\":\"%s\",\"pid\":%d,\"uid\":%u,\"open\":%s,\"uptime_s\":%.3f,"
	       "\"heartbeat_age_s\":%.3f,\"backing\":\"%s\",\"path\":\"%s\",\"page_size\":%" PRIu64
	       ",\"numa_node\":%d,\"size\":%" PRIu64 ",\"connections\":%" PRIu64
	       ",\"connections_open\":%" PRIu64 ",\"refusals\":{",
	       s->name, s->pid, s->uid, s->open ? "true" : "false", s->uptime_s, s->heartbeat_age_s,
	       s->backing, s->path, s->page_size, s->numa_node, s->size, s->connections,
	       s->conns_open);
	for (uint32_t k = 0; k < XR_REFUSE_KINDS; k++)
		printf("%s\"%s\":%" PRIu64, k ? "," : "", xr__snap_refusal_name(k), s->refusals[k]);
	printf("},\"streams\":[");
	for (uint32_t i = 0; i < s->n_streams; i++)
		printf("%s{\"name\":\"%s\",\"policy\":\"%s\",\"rings\":%u,\"ring_capacity\":%" PRIu64 "}",
		       i ? "," : "", s->streams[i].name, policy_name(s->streams[i].policy),
		       s->streams[i].n_rings, s->streams[i].ring_capacity);
	printf("],\"rings\":[");
	for (uint32_t i = 0; i < s->n_rings; i++) {
		const struct xr_snap_ring *r = &s->rings[i];
		printf("%s{\"stream\":\"%s\",\"ring\":%u,\"capacity\":%" PRIu64 ",\"written\":%" PRIu64
		       ",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"fill\":%" PRIu64
		       ",\"blocked\":%s,\"publishes\":%" PRIu64 ",\"wakeups\":%" PRIu64
		       ",\"full_waits\":%" PRIu64 ",\"wait_ns\":%" PRIu64 ",\"lease_stalls\":%" PRIu64
		       ",\"evictions\":%" PRIu64,
		       i ? "," : "", s->streams[r->stream].name, r->index, r->capacity, r->written,
		       r->records, r->bytes, r->fill, r->blocked ? "true" : "false", r->publishes,
		       r->wakeups, r->full_waits, r->wait_ns, r->lease_stalls, r->evictions);
		if (r->has_shard) {
			printf(",\"shard\":{\"games\":%" PRIu64 ",\"steps\":%" PRIu64
			       ",\"steps_per_s\":%" PRIu64 ",\"episodes\":%" PRIu64
			       ",\"turns_late\":%" PRIu64 ",\"cpu_ns\":%" PRIu64 "}",
			       r->games, r->steps, r->steps_per_s, r->episodes, r->turns_late, r->cpu_ns);
			printf(",\"games\":{\"created\":%" PRIu64 ",\"destroyed\":%" PRIu64
			       ",\"resets\":%" PRIu64 ",\"finals\":%" PRIu64 ",\"finals_lost\":%" PRIu64,
			       r->created, r->destroyed, r->resets, r->finals, r->finals_lost);
			json_q("creation_p50_ns", &r->creation, 0.5);
			json_q("creation_p99_ns", &r->creation, 0.99);
			json_hist("creation_ns", &r->creation);
			printf("}");
		}
		printf("}");
	}
	printf("],\"readers\":[");
	for (uint32_t i = 0; i < s->n_readers; i++) {
		const struct xr_snap_reader *d = &s->readers[i];
		printf("%s{\"slot\":%u,\"stream\":\"%s\",\"ring\":%u,\"pid\":%d,\"uid\":%u,"
		       "\"label\":\"%s\",\"state\":\"%s\",\"policy\":\"%s\",\"read\":%" PRIu64
		       ",\"dropped\":%" PRIu64 ",\"pending\":%" PRIu64 ",\"lag_bytes\":%" PRIu64,
		       i ? "," : "", d->slot, s->streams[d->stream].name, s->rings[d->ring].index,
		       d->pid, d->uid, d->label, slot_state(d->state), policy_name(d->policy), d->read,
		       d->dropped, d->pending, d->lag);
		/* The reader's own figures, the same on each of its rings. */
		printf(",\"batches\":%" PRIu64 ",\"sleeps\":%" PRIu64 ",\"wakeups\":%" PRIu64
		       ",\"filtered\":%" PRIu64 ",\"copies\":%" PRIu64,
		       d->batches, d->sleeps, d->wakeups, d->filtered, d->copies);
		json_q("age_p50_ns", &d->age, 0.5);
		json_q("age_p99_ns", &d->age, 0.99);
		json_q("age_p999_ns", &d->age, 0.999);
		json_q("wake_p50_ns", &d->wake, 0.5);
		json_q("wake_p99_ns", &d->wake, 0.99);
		json_q("wake_p999_ns", &d->wake, 0.999);
		json_q("fill_p50_ns", &d->fill, 0.5);
		json_q("fill_p99_ns", &d->fill, 0.99);
		json_q("fill_p999_ns", &d->fill, 0.999);
		json_hist("age_ns", &d->age);
		json_hist("wake_ns", &d->wake);
		json_hist("fill_ns", &d->fill);
		printf("}");
	}
	printf("],\"agents\":[");
	for (uint32_t i = 0; i < s->n_agents; i++) {
		const struct xr_snap_agent *g = &s->agents[i];
		printf("%s{\"agent\":%u,\"state\":\"%s\",\"pid\":%d,\"uid\":%u,\"label\":\"%s\","
		       "\"claims\":%u,\"seats\":%" PRIu64 ",\"actions\":%" PRIu64
		       ",\"timeouts\":%" PRIu64 ",\"late\":%" PRIu64 ",\"wrong_turn\":%" PRIu64
		       ",\"out_of_range\":%" PRIu64 ",\"illegal\":%" PRIu64 ",\"fallbacks\":%" PRIu64
		       ",\"waiting\":%" PRIu64,
		       i ? "," : "", g->id, g->state == XR_AGENT_LIVE ? "live" : "gone", g->pid, g->uid,
		       g->label, g->claims, g->seats, g->actions, g->timeouts, g->late, g->wrong_turn,
		       g->out_of_range, g->illegal, g->fallbacks, g->waiting);
		json_q("rtt_p50_ns", &g->rtt, 0.5);
		json_q("rtt_p99_ns", &g->rtt, 0.99);
		json_q("rtt_p999_ns", &g->rtt, 0.999);
		json_hist("rtt_ns", &g->rtt);
		printf("}");
	}
	printf("],\"tables\":[");
	for (uint32_t i = 0; i < s->n_tables; i++) {
		const struct xr_snap_table *t = &s->tables[i];
		printf("%s{\"table\":%u,\"name\":\"%s\",\"state\":\"%s\",\"creator_uid\":%u,"
		       "\"item\":\"%s\",\"item_size\":%u,\"capacity\":%u,\"sampler\":\"%s\","
		       "\"remover\":\"%s\",\"size\":%" PRIu64 ",\"leases\":%" PRIu64
		       ",\"trainers\":%u,\"inserts\":%" PRIu64 ",\"samples\":%" PRIu64
		       ",\"removes\":%" PRIu64 ",\"feed\":\"%s\",\"feed_dropped\":%" PRIu64 "}",
		       i ? "," : "", t->index, t->name,
		       t->state == XR_TVIEW_DROPPED ? "dropped" : "live", t->creator_uid,
		       xr__snap_item_name(t->item_kind), t->item_size, t->capacity,
		       xr__snap_sampler_name(t->sampler), xr__snap_remover_name(t->remover), t->size,
		       t->leases, t->trainers, t->inserts, t->samples, t->removes,
		       xr__snap_feed_name(t->feed), t->feed_dropped);
	}
	printf("]}\n");
}

int xr_cmd_stat(int argc, char **argv)
{
	static const struct xr_opt opts[] = {{"--json", false}, {"--help", false}, {NULL, false}};
	const char *name = NULL, *v;
	bool as_json = false;
	int i = 1, k, rc;

	while (i < argc) {
		k = xr_next_opt("stat", argc, argv, &i, opts, &v);
		if (k == -2)
			return XR_EXIT_USAGE;
		if (k == 1) {
			fputs(stat_help, stdout);
			return 0;
		}
		if (k == 0)
			as_json = true;
		if (k == -1 && name) {
			xr_cli_err("stat", "unexpected argument '%s'; see `xring stat --help`", v);
			return XR_EXIT_USAGE;
		}
		if (k == -1)
			name = v;
	}
	if (!name) {
		xr_cli_err("stat", "which engine? usage: xring stat NAME [--json]");
		return XR_EXIT_USAGE;
	}
	struct xr_arena *a;
	if ((rc = xr_cli_open_arena("stat", name, &a)))
		return rc;
	struct xr_snapshot s;
	rc = xr__snap_take(a, &s);
	xr__arena_close(a);
	if (rc < 0) {
		xr_cli_err("stat", "out of memory reading engine '%s'", name);
		return XR_EXIT_FAIL;
	}
	if (as_json)
		json(&s);
	else
		text(&s);
	xr__snap_free(&s);
	return 0;
}
