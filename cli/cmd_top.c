/* SPDX-License-Identifier: MIT */
/*
 * `xring top`: a live view of an engine (ncurses), one snapshot of its
 * stats region a second (shm/snapshot.h), rates from the difference of the
 * last two. Reads the arena only: it attaches nothing and asks the engine
 * nothing, so a thousand of them cost the engine nothing.
 */
#include <curses.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "shm/snapshot.h"
#include "util/clock.h"
#include "xring/reader.h"

static const char top_help[] =
	"usage: xring top NAME [--interval SEC]\n"
	"\n"
	"A live view of engine NAME, refreshed every SEC seconds (default: 1):\n"
	"its rings and shards (records/s, MiB/s, fill, writer stops, steps/s,\n"
	"CPU), readers (records/s, dropped, pending, lag) and agents (actions/s,\n"
	"fallbacks, waiting seats, round-trip percentiles) and replay tables\n"
	"(items, leases, trainers, inserts/s, samples/s). Run as the engine's\n"
	"user, in a terminal. Keys: s sorts the readers by the next column,\n"
	"r reverses the order, q quits.\n"
	"\n"
	"  --interval SEC   seconds between refreshes, 0.1..60 (default: 1)\n";

/* Readers' sort keys, in the order `s` cycles through them. */
enum { BY_RATE, BY_LAG, BY_PENDING, BY_DROPPED, BY_SLOT, N_KEYS };
static const char *const key_names[N_KEYS] = {"rec/s", "lag", "pending", "dropped", "slot"};

struct view {
	struct xr_snapshot now, prev;
	bool have_prev;
	int key;
	bool reverse;
	double dt;               /* seconds between prev and now */
};

/* A per-second rate of counter `cur` against `old` over v->dt. */
static double rate(const struct view *v, uint64_t cur, uint64_t old)
{
	return v->have_prev && v->dt > 0 && cur >= old ? (double)(cur - old) / v->dt : 0.0;
}

static const struct xr_snap_reader *prev_reader(const struct view *v,
						const struct xr_snap_reader *d)
{
	for (uint32_t i = 0; v->have_prev && i < v->prev.n_readers; i++) {
		const struct xr_snap_reader *p = &v->prev.readers[i];
		if (p->slot == d->slot && p->ring == d->ring && p->attach_ns == d->attach_ns)
			return p;
	}
	return NULL;
}

static double reader_rate(const struct view *v, const struct xr_snap_reader *d)
{
	const struct xr_snap_reader *p = prev_reader(v, d);

	return p ? rate(v, d->read, p->read) : 0.0;
}

/* A reader row to draw: its sort key and rate, worked out once per draw
 * (matching rows with the last snapshot is a scan: not in the comparison). */
struct row {
	double key, rate;
	const struct xr_snap_reader *d;
};

static bool reverse_order; /* qsort has no context argument */

static int by_key(const void *x, const void *y)
{
	const struct row *a = x, *b = y;
	int c = a->key < b->key ? 1 : a->key > b->key ? -1 : 0; /* largest first */

	return reverse_order ? -c : c;
}

static double key_of(const struct view *v, const struct xr_snap_reader *d, double r)
{
	switch (v->key) {
	case BY_RATE: return r;
	case BY_LAG: return (double)d->lag;
	case BY_PENDING: return (double)d->pending;
	case BY_DROPPED: return (double)d->dropped;
	}
	return -(double)(d->slot * XR_MAX_RINGS + d->ring);
}

/* One line at row, cut at the screen's width: ncurses wraps a longer one
 * into the next row (and some versions crash formatting a line longer than
 * a small window holds). */
static void put_line(int row, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put_line(int row, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (row < LINES)
		mvaddnstr(row, 0, buf, COLS);
}

static void us(char *buf, size_t n, uint64_t ns)
{
	if (!ns)
		snprintf(buf, n, "-");
	else if (ns == UINT64_MAX)
		snprintf(buf, n, ">=%.3gs", (double)xr__snap_bucket_le(XR_SNAP_BUCKETS - 2) / 1e9);
	else if (ns >= 1000000000ull)
		snprintf(buf, n, "<%.3gs", (double)ns / 1e9);
	else if (ns >= 1000000ull)
		snprintf(buf, n, "<%.3gms", (double)ns / 1e6);
	else
		snprintf(buf, n, "<%.3gus", (double)ns / 1e3);
}

static void draw(struct view *v)
{
	const struct xr_snapshot *s = &v->now;
	int row = 0, rows = LINES;
	uint64_t refused = 0;

	erase();
	for (uint32_t k = 0; k < XR_REFUSE_KINDS; k++)
		refused += s->refusals[k];
	attron(A_BOLD);
	put_line(row++, "xring top - engine %s  pid %d  up %.0f s  heartbeat %.2f s ago%s", s->name,
		 s->pid, s->uptime_s, s->heartbeat_age_s, s->open ? "" : "  CLOSED");
	attroff(A_BOLD);
	put_line(row++, "%s  %.0f MiB  connections %" PRIu64 " open, %" PRIu64
			   " accepted  refused %" PRIu64 "  readers %u  agents %u",
		 s->backing, (double)s->size / 1048576.0, s->conns_open, s->connections, refused,
		 s->n_readers, s->n_agents);
	row++;
	attron(A_REVERSE);
	put_line(row++, "%-12s %4s %11s %8s %6s %7s %8s %6s %6s %11s %5s", "RING", "#", "rec/s",
		 "MiB/s", "fill%", "stops", "stopped", "evict", "games", "steps/s", "cpu%");
	attroff(A_REVERSE);
	for (uint32_t i = 0; i < s->n_rings && row < rows - 1; i++) {
		const struct xr_snap_ring *r = &s->rings[i], *p = &v->prev.rings[i];
		put_line(row++, "%-12.12s %4u %11.0f %8.1f %6.1f %7" PRIu64 " %7.2fs %6" PRIu64
				   " %6" PRIu64 " %11" PRIu64 " %5.0f%s",
			 s->streams[r->stream].name, r->index, rate(v, r->written, p->written),
			 rate(v, r->bytes, p->bytes) / 1048576.0,
			 r->capacity ? 100.0 * (double)r->fill / (double)r->capacity : 0.0,
			 r->full_waits, (double)r->wait_ns / 1e9, r->evictions, r->games,
			 r->steps_per_s, rate(v, r->cpu_ns, p->cpu_ns) / 1e7,
			 r->blocked ? "  STOPPED" : "");
	}
	row++;
	if (row < rows - 1) {
		attron(A_REVERSE);
		put_line(row++, "%-5s %7s %-16s %-9s %-9s %11s %10s %10s %10s %9s  (sorted by %s%s)",
			 "SLOT", "PID", "READER", "POLICY", "STATE", "rec/s", "dropped", "pending",
			 "lag KiB", "age p99", key_names[v->key], v->reverse ? ", reversed" : "");
		attroff(A_REVERSE);
	}
	struct row *rs = calloc(s->n_readers ? s->n_readers : 1, sizeof(*rs));
	for (uint32_t i = 0; rs && i < s->n_readers; i++) {
		double r = reader_rate(v, &s->readers[i]);
		rs[i] = (struct row){.key = key_of(v, &s->readers[i], r), .rate = r,
				     .d = &s->readers[i]};
	}
	reverse_order = v->reverse;
	if (rs)
		qsort(rs, s->n_readers, sizeof(*rs), by_key);
	for (uint32_t i = 0; rs && i < s->n_readers && row < rows - 1; i++) {
		const struct xr_snap_reader *d = rs[i].d;
		const char *pol = xr_policy_name((xr_policy)d->policy);
		char age[16];
		us(age, sizeof(age), xr__snap_quantile(&d->age, 0.99));
		put_line(row++, "%-5u %7d %-16.16s %-9s %-9s %11.0f %10" PRIu64 " %10" PRIu64
				   " %10" PRIu64 " %9s",
			 d->slot, d->pid, d->label, pol ? pol : "?",
			 d->state == XR_SLOT_ACTIVE ? "active" : d->state == XR_SLOT_EVICTED ? "EVICTED"
											    : "attaching",
			 rs[i].rate, d->dropped, d->pending, d->lag >> 10, age);
	}
	free(rs);
	row++;
	if (row < rows - 1) {
		attron(A_REVERSE);
		put_line(row++, "%-5s %7s %-16s %-5s %8s %11s %9s %9s %8s %9s %9s %9s", "AGENT",
			 "PID", "LABEL", "STATE", "seats", "actions/s", "fallback", "timeout",
			 "waiting", "rtt p50", "rtt p99", "rtt p999");
		attroff(A_REVERSE);
	}
	for (uint32_t i = 0; i < s->n_agents && row < rows - 1; i++) {
		const struct xr_snap_agent *g = &s->agents[i];
		const struct xr_snap_agent *p = NULL;
		char q50[16], q99[16], q999[16];
		for (uint32_t k = 0; v->have_prev && k < v->prev.n_agents; k++)
			if (v->prev.agents[k].id == g->id && v->prev.agents[k].attach_ns == g->attach_ns)
				p = &v->prev.agents[k];
		us(q50, sizeof(q50), xr__snap_quantile(&g->rtt, 0.5));
		us(q99, sizeof(q99), xr__snap_quantile(&g->rtt, 0.99));
		us(q999, sizeof(q999), xr__snap_quantile(&g->rtt, 0.999));
		put_line(row++, "%-5u %7d %-16.16s %-5s %8" PRIu64 " %11.0f %9" PRIu64 " %9" PRIu64
				   " %8" PRIu64 " %9s %9s %9s",
			 g->id, g->pid, g->label, g->state == XR_AGENT_LIVE ? "live" : "gone", g->seats,
			 p ? rate(v, g->actions, p->actions) : 0.0, g->fallbacks, g->timeouts,
			 g->waiting, q50, q99, q999);
	}
	if (s->n_tables && row + 1 < rows - 1) {
		row++;
		attron(A_REVERSE);
		put_line(row++, "%-31s %-7s %-11s %10s %10s %8s %8s %10s %10s %-6s", "TABLE", "STATE",
			 "SAMPLER", "items", "capacity", "leased", "trainers", "inserts/s",
			 "samples/s", "FEED");
		attroff(A_REVERSE);
	}
	for (uint32_t i = 0; i < s->n_tables && row < rows - 1; i++) {
		const struct xr_snap_table *t = &s->tables[i];
		const struct xr_snap_table *p = NULL;
		for (uint32_t k = 0; v->have_prev && k < v->prev.n_tables; k++)
			if (v->prev.tables[k].index == t->index &&
			    !strcmp(v->prev.tables[k].name, t->name))
				p = &v->prev.tables[k];
		put_line(row++, "%-31.31s %-7s %-11s %10" PRIu64 " %10u %8" PRIu64 " %8u %10.0f %10.0f %-6s",
			 t->name, t->state == XR_TVIEW_DROPPED ? "dropped" : "live",
			 xr__snap_sampler_name(t->sampler), t->size, t->capacity, t->leases,
			 t->trainers, p ? rate(v, t->inserts, p->inserts) : 0.0,
			 p ? rate(v, t->samples, p->samples) : 0.0, xr__snap_feed_name(t->feed));
	}
	put_line(rows - 1, "q quit  s sort readers  r reverse");
	refresh();
}

/* NAME and --interval; 0, an exit code, or -1 after --help. */
static int parse_args(int argc, char **argv, const char **name, double *interval)
{
	static const struct xr_opt opts[] = {
		{"--interval", true}, {"--help", false}, {NULL, false}};
	const char *v;
	int i = 1, k;

	while (i < argc) {
		k = xr_next_opt("top", argc, argv, &i, opts, &v);
		if (k == -2)
			return XR_EXIT_USAGE;
		if (k == 1) {
			fputs(top_help, stdout);
			return -1;
		}
		if (k == 0 && (!xr_parse_seconds(v, interval) || *interval < 0.1 || *interval > 60)) {
			xr_cli_err("top", "--interval must be 0.1..60 seconds, not '%s'", v);
			return XR_EXIT_USAGE;
		}
		if (k == -1 && *name) {
			xr_cli_err("top", "unexpected argument '%s'; see `xring top --help`", v);
			return XR_EXIT_USAGE;
		}
		if (k == -1)
			*name = v;
	}
	if (!*name) {
		xr_cli_err("top", "which engine? usage: xring top NAME [--interval SEC]");
		return XR_EXIT_USAGE;
	}
	return 0;
}

/* Keys until the next refresh is due; false on q. */
static bool keys(struct view *v, double interval)
{
	uint64_t due = xr__now_ns() + (uint64_t)(interval * 1e9);

	for (;;) {
		uint64_t now = xr__now_ns();
		if (now >= due)
			return true;
		timeout((int)((due - now) / 1000000) + 1);
		int c = getch();
		if (c == 'q' || c == 'Q')
			return false;
		if (c == 's') {
			v->key = (v->key + 1) % N_KEYS;
			draw(v);
		} else if (c == 'r') {
			v->reverse = !v->reverse;
			draw(v);
		} else if (c == KEY_RESIZE) {
			draw(v);
		}
	}
}

int xr_cmd_top(int argc, char **argv)
{
	const char *name = NULL;
	double interval = 1.0;
	struct xr_arena *a;
	int rc = parse_args(argc, argv, &name, &interval);

	if (rc)
		return rc < 0 ? 0 : rc;
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		xr_cli_err("top", "needs a terminal; for one snapshot in a script use `xring stat %s "
				  "[--json]`",
			   name);
		return XR_EXIT_USAGE;
	}
	if ((rc = xr_cli_open_arena("top", name, &a)))
		return rc;
	struct view v = {0};
	if (xr__snap_take(a, &v.now) < 0) {
		xr__arena_close(a);
		xr_cli_err("top", "out of memory");
		return XR_EXIT_FAIL;
	}
	initscr();
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	const char *gone = NULL;
	for (;;) {
		draw(&v);
		if (!keys(&v, interval))
			break;
		if (!xr__arena_alive(a)) {
			gone = "has stopped";
			break;
		}
		xr__snap_free(&v.prev);
		v.prev = v.now;
		v.have_prev = true;
		if (xr__snap_take(a, &v.now) < 0) {
			v.now = v.prev;
			v.prev.readers = NULL;
			v.have_prev = false;
			gone = "could not be read (out of memory)";
			break;
		}
		v.dt = (double)(v.now.taken_mono_ns - v.prev.taken_mono_ns) / 1e9;
	}
	endwin();
	xr__snap_free(&v.now);
	xr__snap_free(&v.prev);
	xr__arena_close(a);
	if (gone) {
		xr_cli_err("top", "engine '%s' %s", name, gone);
		return XR_EXIT_FAIL;
	}
	return 0;
}
