/* SPDX-License-Identifier: MIT */
/*
 * `xring info`: reads the arena's header and reader table directly (both are
 * in shared memory, and the engine's uid may open the file), without
 * attaching as a reader and without asking the engine anything. Reader
 * figures are the engine's copies of the readers' cursors, refreshed by its
 * housekeeping ten times a second.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "shm/arena_priv.h"
#include "shm/backing.h"
#include "shm/snapshot.h"
#include "util/atomics.h"
#include "util/clock.h"
#include "util/fs.h"
#include "xring/error.h"

static const char info_help[] =
	"usage: xring info NAME [--json]\n"
	"\n"
	"Shows engine NAME's arena: backing (path, page size, NUMA node), streams,\n"
	"rings (capacity, records written) and readers (read, dropped, pending, lag).\n"
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

struct rdr {
	uint32_t slot, ring;
	int32_t pid;
	uint32_t state, policy;
	uint64_t read, dropped, pending, lag;
	char label[sizeof(((struct xr_reader_info *)0)->label) + 1];
};

/* One reader's view of one ring, as the engine worked it out at its last
 * housekeeping tick (pending counts records that will turn out dropped for
 * a lossy reader too). Numbers a reader wrote, clamped: shown, never
 * followed. */
static void reader_ring(const struct xr_arena *a, uint32_t slot, uint32_t ring, struct rdr *o)
{
	const struct xr_cursor_view *c = xr__view(a, ring, slot);

	o->read = xr_load_relaxed(&c->read);
	o->dropped = xr_load_relaxed(&c->dropped);
	o->pending = xr_load_relaxed(&c->pending);
	o->lag = xr_load_relaxed(&c->lag);
}

/* NAME and --json; 0, an exit code, or -1 after --help. */
static int parse_args(int argc, char **argv, const char **name, bool *json)
{
	static const struct xr_opt opts[] = {{"--json", false}, {"--help", false}, {NULL, false}};
	const char *v;
	int i = 1, k;

	while (i < argc) {
		k = xr_next_opt("info", argc, argv, &i, opts, &v);
		if (k == -2)
			return XR_EXIT_USAGE;
		if (k == 1) {
			fputs(info_help, stdout);
			return -1;
		}
		if (k == 0)
			*json = true;
		if (k == -1 && *name) {
			xr_cli_err("info", "unexpected argument '%s'; see `xring info --help`", v);
			return XR_EXIT_USAGE;
		}
		if (k == -1)
			*name = v;
	}
	if (!*name) {
		xr_cli_err("info", "which engine? usage: xring info NAME [--json]");
		return XR_EXIT_USAGE;
	}
	return 0;
}

static void print_engine(const struct xr_arena *a, bool json)
{
	const struct xr_arena_hdr *h = a->hdr;
	uint64_t now = xr__now_ns(), hb = xr_load_relaxed(&h->heartbeat_ns);
	double hb_age = now > hb ? (double)(now - hb) / 1e9 : 0.0;

	if (json) {
		printf("{\"name\":\"%s\",\"path\":\"%s\",\"backing\":\"%s\",\"page_size\":%" PRIu64
		       ",\"numa_node\":%d,\"size\":%" PRIu64 ",\"writer_pid\":%d,"
		       "\"heartbeat_age_s\":%.3f,\"note\":\"",
		       a->lay.name, h->path, xr_backing_name((xr_backing)h->backing), a->lay.page_size,
		       h->numa_node, a->lay.total_size, a->lay.writer_pid, hb_age);
		for (const char *p = h->note; *p; p++)
			if (*p == '"' || *p == '\\')
				printf("\\%c", *p);
			else if ((unsigned char)*p >= 0x20)
				putchar(*p);
		printf("\",\"streams\":[");
		return;
	}
	printf("engine %s (pid %d, heartbeat %.1f s ago)\n", a->lay.name, a->lay.writer_pid, hb_age);
	printf("  backing  %s %s, %" PRIu64 " KiB pages, NUMA node %d, %.1f MiB\n",
	       xr_backing_name((xr_backing)h->backing), h->path, a->lay.page_size >> 10, h->numa_node,
	       (double)a->lay.total_size / 1048576.0);
	if (h->note[0])
		printf("  note     %s\n", h->note);
}

/* A quantile's bound as "< 1.05 ms", "< 2.1 s" or ">= 68.7 s" (the last
 * bucket's), into buf. */
static const char *ms_or_s(uint64_t ns, char buf[32])
{
	if (ns == UINT64_MAX)
		snprintf(buf, 32, ">= %.3g s", (double)xr__snap_bucket_le(XR_SNAP_BUCKETS - 2) / 1e9);
	else if (ns >= 1000000000ull)
		snprintf(buf, 32, "< %.3g s", (double)ns / 1e9);
	else
		snprintf(buf, 32, "< %.3g ms", (double)ns / 1e6);
	return buf;
}

static void print_games(const struct xr_game_stats *g, bool json)
{
	struct xr_snap_hist h = {0};

	xr__snap_hist_add(&h, &g->creation);
	uint64_t p50 = xr__snap_quantile(&h, 0.5), p99 = xr__snap_quantile(&h, 0.99);
	char a50[32], a99[32];

	if (json) {
		printf(",\"games\":{\"created\":%" PRIu64 ",\"destroyed\":%" PRIu64
		       ",\"resets\":%" PRIu64 ",\"finals\":%" PRIu64 ",\"finals_lost\":%" PRIu64
		       ",\"created_per_s\":%" PRIu64
		       ",\"destroyed_per_s\":%" PRIu64 ",\"resets_per_s\":%" PRIu64
		       ",\"creation_p50_ns\":%" PRIu64 ",\"creation_p99_ns\":%" PRIu64 "}",
		       xr_load_relaxed(&g->created), xr_load_relaxed(&g->destroyed),
		       xr_load_relaxed(&g->resets), xr_load_relaxed(&g->finals),
		       xr_load_relaxed(&g->finals_lost),
		       xr_load_relaxed(&g->created_per_s), xr_load_relaxed(&g->destroyed_per_s),
		       xr_load_relaxed(&g->resets_per_s), p50, p99);
		return;
	}
	printf("      games at runtime: created %" PRIu64 " (%" PRIu64 "/s), destroyed %" PRIu64
	       " (%" PRIu64 "/s), reset %" PRIu64 " (%" PRIu64 "/s), %" PRIu64
	       " truncated records of episodes cut short",
	       xr_load_relaxed(&g->created), xr_load_relaxed(&g->created_per_s),
	       xr_load_relaxed(&g->destroyed), xr_load_relaxed(&g->destroyed_per_s),
	       xr_load_relaxed(&g->resets), xr_load_relaxed(&g->resets_per_s),
	       xr_load_relaxed(&g->finals));
	if (xr_load_relaxed(&g->finals_lost))
		printf(" (%" PRIu64 " lost at stop)", xr_load_relaxed(&g->finals_lost));
	if (p50)
		printf("; first record after creation: p50 %s, p99 %s", ms_or_s(p50, a50),
		       ms_or_s(p99, a99));
	printf("\n");
}

/* Who writes ring r: the engine's words for it (xr_ring_desc.writer). */
static const char *writer_name(const struct xr_arena *a, uint32_t r)
{
	switch (xr_load_relaxed(&a->hdr->rings[r].writer)) {
	case XR_RING_ENGINE: return "shard";
	case XR_RING_PRODUCER_IDLE: return "producer slot, free";
	case XR_RING_PRODUCER_LIVE: return "producer";
	case XR_RING_PRODUCER_ENDED: return "producer slot, its producer ended";
	}
	return "?";
}

/* Whether ring r's writer is or was a producer, and then its (last)
 * holder. Acquire: pairs with the release store of PRODUCER_LIVE in
 * engine/producers.c, which publishes the pid and uid stored before it. */
static bool producer_of(const struct xr_ring_desc *rd, int32_t *pid, uint32_t *uid)
{
	uint32_t wr = xr_load_acquire(&rd->writer);

	if (wr != XR_RING_PRODUCER_LIVE && wr != XR_RING_PRODUCER_ENDED)
		return false;
	*pid = xr_load_relaxed(&rd->producer_pid);
	*uid = xr_load_relaxed(&rd->producer_uid);
	return true;
}

static void print_ring(const struct xr_arena *a, uint32_t r, bool json)
{
	int32_t ppid;
	uint32_t puid;

	const struct xr_stream_desc *sd = &a->lay.streams[a->lay.rings[r].stream];
	const struct xr_ring_desc *rd = &a->hdr->rings[r];
	const struct xr_shard_stats *ss = &a->hdr->shards[r];
	uint64_t written = xr_load_acquire(&rd->written), cpu = xr_load_relaxed(&ss->cpu_ns);

	if (json) {
		printf("%s{\"ring\":%u,\"capacity\":%" PRIu64 ",\"written\":%" PRIu64
		       ",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"lease_stalls\":%" PRIu64
		       ",\"full_waits\":%" PRIu64 ",\"wait_ns\":%" PRIu64 ",\"evictions\":%" PRIu64
		       ",\"wakeups\":%" PRIu64 ",\"blocked\":%s,\"writer\":\"%s\"",
		       r == sd->first_ring ? "" : ",", r - sd->first_ring, a->lay.rings[r].capacity,
		       written, xr_load_relaxed(&rd->records), xr_load_relaxed(&rd->bytes),
		       xr_load_relaxed(&rd->lease_stalls), xr_load_relaxed(&rd->full_waits),
		       xr_load_relaxed(&rd->wait_ns), xr_load_relaxed(&rd->evictions),
		       xr_load_relaxed(&rd->wakeups),
		       xr_load_relaxed(&rd->blocked) ? "true" : "false", writer_name(a, r));
		if (producer_of(rd, &ppid, &puid))
			printf(",\"producer\":{\"pid\":%d,\"uid\":%u}", ppid, puid);
		/* A producer slot has no shard and no games: null, not zeros
		 * that read as an idle shard's. */
		if (xr_load_relaxed(&rd->writer) == XR_RING_ENGINE) {
			printf(",\"shard\":{\"games\":%" PRIu64 ",\"steps\":%" PRIu64
			       ",\"episodes\":%" PRIu64 ",\"turns_late\":%" PRIu64
			       ",\"cpu_ns\":%" PRIu64 "}",
			       xr_load_relaxed(&ss->games), xr_load_relaxed(&ss->steps),
			       xr_load_relaxed(&ss->episodes), xr_load_relaxed(&ss->turns_late), cpu);
			print_games(&a->hdr->games[r], true);
		} else {
			printf(",\"shard\":null,\"games\":null");
		}
		printf(",\"readers\":[");
		return;
	}
	char who[96];
	if (!producer_of(rd, &ppid, &puid))
		snprintf(who, sizeof(who), "%s", writer_name(a, r));
	else if (xr_load_relaxed(&rd->writer) == XR_RING_PRODUCER_LIVE)
		snprintf(who, sizeof(who), "producer pid %d uid %u", ppid, puid);
	else
		snprintf(who, sizeof(who), "producer slot, its producer (pid %d uid %u) ended", ppid,
			 puid);
	printf("    ring %u (%s): written %" PRIu64 " (%" PRIu64 " MiB), lease stalls %" PRIu64
	       ", full %" PRIu64 " times (%.3f s), evictions %" PRIu64 ", wakeups sent %" PRIu64
	       "%s\n",
	       r - sd->first_ring, who, written, xr_load_relaxed(&rd->bytes) >> 20,
	       xr_load_relaxed(&rd->lease_stalls), xr_load_relaxed(&rd->full_waits),
	       (double)xr_load_relaxed(&rd->wait_ns) / 1e9, xr_load_relaxed(&rd->evictions),
	       xr_load_relaxed(&rd->wakeups),
	       xr_load_relaxed(&rd->blocked) ? "; stopped for its readers now" : "");
	if (xr_load_relaxed(&ss->tick_ns))
		printf("      shard: %" PRIu64 " games, %" PRIu64 " steps, %" PRIu64 " episodes, %" PRIu64
		       " turns late, %.2f s CPU (%.0f ns per record)\n",
		       xr_load_relaxed(&ss->games), xr_load_relaxed(&ss->steps),
		       xr_load_relaxed(&ss->episodes), xr_load_relaxed(&ss->turns_late),
		       (double)cpu / 1e9, written ? (double)cpu / (double)written : 0.0);
	if (xr_load_relaxed(&ss->tick_ns))
		print_games(&a->hdr->games[r], false);
}

/* A reader's label, which that reader chose: shown, never obeyed. Each byte
 * below 0x20, from 0x7f up (DEL, and the C1 controls of 8-bit terminals,
 * 0x9b being CSI), or that JSON would need escaped, becomes '?', so that
 * no label can move the cursor, retitle the terminal or break the JSON.
 * dst holds n + 1 bytes. */
static void printable_label(char *dst, const _Atomic char *src, size_t n)
{
	char raw[64];
	size_t i;

	if (n > sizeof(raw))
		n = sizeof(raw);
	xr__label_get(raw, src, n); /* a byte at a time: the engine may write it */
	for (i = 0; i < n && raw[i]; i++) {
		unsigned char c = (unsigned char)raw[i];
		dst[i] = c < 0x20 || c >= 0x7f || c == '"' || c == '\\' ? '?' : (char)c;
	}
	dst[i] = '\0';
}

/* The readers of stream s in ring r. */
static void print_readers(const struct xr_arena *a, uint32_t s, uint32_t r, bool json)
{
	bool first = true;

	for (uint32_t slot = 0; slot < a->lay.max_readers; slot++) {
		const struct xr_reader_info *sl = &a->infos[slot];
		struct rdr o = {.slot = slot, .ring = r};

		/* Pairs with PI1 (shm/peers.c): the entry's fields. */
		o.state = xr_load_acquire(&sl->state);
		if (o.state == XR_SLOT_FREE || sl->stream != s)
			continue;
		o.pid = sl->pid;
		o.policy = sl->policy;
		printable_label(o.label, sl->label, sizeof(sl->label));
		reader_ring(a, slot, r, &o);
		bool member = xr_load_relaxed(&sl->group_member) != 0;
		if (member) {
			/* Its records come through its group's reader. */
			if (json)
				printf("%s{\"slot\":%u,\"pid\":%d,\"label\":\"%s\",\"state\":\"%s\","
				       "\"group_member\":true}",
				       first ? "" : ",", slot, o.pid, o.label, slot_state(o.state));
			else
				printf("      reader %u pid %d %s (%s, group member): reads through "
				       "its group's reader\n",
				       slot, o.pid, o.label, slot_state(o.state));
			first = false;
			continue;
		}
		if (json)
			printf("%s{\"slot\":%u,\"pid\":%d,\"label\":\"%s\",\"state\":\"%s\",\"policy\":"
			       "\"%s\",\"read\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"pending\":%" PRIu64
			       ",\"lag_bytes\":%" PRIu64 "}",
			       first ? "" : ",", slot, o.pid, o.label, slot_state(o.state),
			       policy_name(o.policy), o.read, o.dropped, o.pending, o.lag);
		else
			printf("      reader %u pid %d %s (%s, %s): read %" PRIu64 ", dropped %" PRIu64
			       ", pending %" PRIu64 ", lag %" PRIu64 " KiB\n",
			       slot, o.pid, o.label, slot_state(o.state), policy_name(o.policy), o.read,
			       o.dropped, o.pending, o.lag >> 10);
		first = false;
	}
	if (json)
		printf("]}");
	else if (first)
		printf("      no readers\n");
}

/* The agents the engine has had (live, or gone with their counts), each
 * summed over the rings' shards. */
static void print_agents(const struct xr_arena *a, bool json)
{
	bool first = true;

	if (json)
		printf(",\"agents\":[");
	for (uint32_t i = 0; i < XR_MAX_AGENTS; i++) {
		const struct xr_agent_info *f = &a->agents[i];
		uint32_t state = xr_load_acquire(&f->state);
		if (state == XR_AGENT_FREE)
			continue;
		uint64_t c[8] = {0};
		struct xr_snap_hist rtt = {0};
		for (uint32_t r = 0; r < a->lay.n_rings; r++) {
			const struct xr_agent_counts *k = &a->agent_stats[(size_t)i * a->lay.n_rings + r];
			c[0] += xr_load_relaxed(&k->actions);
			c[1] += xr_load_relaxed(&k->timeouts);
			c[2] += xr_load_relaxed(&k->late);
			c[3] += xr_load_relaxed(&k->wrong_turn);
			c[4] += xr_load_relaxed(&k->out_of_range);
			c[5] += xr_load_relaxed(&k->illegal);
			c[6] += xr_load_relaxed(&k->fallbacks);
			c[7] += xr_load_relaxed(&k->waiting);
			xr__snap_hist_add(&rtt, &k->rtt);
		}
		char label[sizeof(f->label) + 1];
		printable_label(label, f->label, sizeof(f->label));
		uint64_t p50 = xr__snap_quantile(&rtt, 0.5), p99 = xr__snap_quantile(&rtt, 0.99),
			 p999 = xr__snap_quantile(&rtt, 0.999);
		const char *st = state == XR_AGENT_LIVE ? "live" : "gone";
		if (json)
			printf("%s{\"agent\":%u,\"state\":\"%s\",\"pid\":%d,\"uid\":%u,\"label\":"
			       "\"%s\",\"claims\":%u,\"seats\":%" PRIu64 ",\"actions\":%" PRIu64
			       ",\"timeouts\":%" PRIu64 ",\"late\":%" PRIu64 ",\"wrong_turn\":%" PRIu64
			       ",\"out_of_range\":%" PRIu64 ",\"illegal\":%" PRIu64
			       ",\"fallbacks\":%" PRIu64 ",\"waiting\":%" PRIu64
			       ",\"rtt_p50_ns\":%" PRIu64 ",\"rtt_p99_ns\":%" PRIu64
			       ",\"rtt_p999_ns\":%" PRIu64 "}",
			       first ? "" : ",", i, st, f->pid, f->uid, label,
			       xr_load_relaxed(&f->claims), xr_load_relaxed(&f->seats), c[0], c[1], c[2],
			       c[3], c[4], c[5], c[6], c[7], p50, p99, p999);
		else
			printf("  agent    %u pid %d %s (%s): %u claims, %" PRIu64 " seats; actions %" PRIu64
			       ", fallbacks %" PRIu64 " (timeouts %" PRIu64 ", late %" PRIu64
			       ", wrong turn %" PRIu64 ", out of range %" PRIu64 ", illegal %" PRIu64
			       "), waiting %" PRIu64 "; round trip p50 %.1f us, p99 %.1f us, p999 %.1f us"
			       " (bucket bounds)\n",
			       i, f->pid, label, st, xr_load_relaxed(&f->claims),
			       xr_load_relaxed(&f->seats), c[0], c[6], c[1], c[2], c[3], c[4], c[5], c[7],
			       (double)p50 / 1e3, (double)p99 / 1e3, (double)p999 / 1e3);
		first = false;
	}
	if (json)
		printf("]");
}

int xr_cmd_info(int argc, char **argv)
{
	const char *name = NULL;
	bool json = false;
	struct xr_arena *a;
	int rc = parse_args(argc, argv, &name, &json);

	if (rc)
		return rc < 0 ? 0 : rc;
	rc = xr_cli_open_arena("info", name, &a);
	if (rc)
		return rc;
	print_engine(a, json);
	/* Loops and indices from the validated private copy of the layout. */
	for (uint32_t s = 0; s < a->lay.n_streams; s++) {
		const struct xr_stream_desc *sd = &a->lay.streams[s];

		if (json)
			printf("%s{\"name\":\"%s\",\"policy\":\"%s\",\"rings\":[", s ? "," : "", sd->name,
			       policy_name(sd->policy));
		else
			printf("  stream   %s: %s, %u ring(s) of %" PRIu64 " KiB, frames aligned to %u\n",
			       sd->name, policy_name(sd->policy), sd->n_rings, sd->ring_capacity >> 10,
			       sd->frame_align);
		for (uint32_t r = sd->first_ring; r < sd->first_ring + sd->n_rings; r++) {
			print_ring(a, r, json);
			print_readers(a, s, r, json);
		}
		if (json)
			printf("]}");
	}
	if (json)
		printf("]");
	print_agents(a, json);
	if (json)
		printf("}\n");
	xr__arena_close(a);
	return 0;
}
