/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "util/clock.h"
#include "util/fs.h"
#include "xring/error.h"
#include "xring/reader.h"
#include "xring/record.h"

static const char tail_help[] =
	"usage: xring tail NAME [options]\n"
	"\n"
	"Attaches to engine NAME as an ordinary reader and prints its records, one\n"
	"line each, until -n records, the engine stops, or SIGINT.\n"
	"\n"
	"  --stream S               stream to read (default: experience)\n"
	"  -n N                     stop after N records (default: no limit)\n"
	"  --json                   one JSON object per line: seq, t_ns, game_id,\n"
	"                           player_id, turn, action, reward, done, truncated,\n"
	"                           applied, applied_by, obs_dtype, obs_shape\n"
	"  --raw DIR                write each record's FlatBuffer bytes to DIR/<seq>.bin\n"
	"                           instead of printing it\n"
	"  --policy lossless|lossy  reader policy (default: the stream's)\n"
	"  --history N|all          start N records before the newest in each ring\n"
	"                           (one per shard), or at the oldest each still holds\n"
	"                           (default: at the newest)\n"
	"  --group NAME             join consumer group NAME of the stream: its members\n"
	"                           split the records, each to one of them\n"
	"  --timeout SEC            give up when no record arrives for SEC seconds\n"
	"                           (default: wait as long as the engine runs)\n"
	"  --stats                  print one line per second instead of records:\n"
	"                           experiences/s, GB/s, batches/s, distinct games,\n"
	"                           wakeups/s and wakeup latency (p50/p99 since attach),\n"
	"                           dropped, pending; every record is still verified\n"
	"  --seconds S              stop after S seconds\n"
	"  --spin                   spin while waiting instead of sleeping until woken\n"
	"  --engine-uid UID         also trust an engine run by this uid (default: only\n"
	"                           root's and this user's)\n"
	"filters (applied at subscribe time; the engine wakes this reader per batch\n"
	"of records that pass):\n"
	"  --games LIST             game ids, e.g. 0-99,512\n"
	"  --players LIST           player ids, e.g. 0 or 1-3\n"
	"  --min-turn N             turn >= N\n"
	"  --terminal only|none     only records with done/truncated, or only without\n"
	"  --reward LO:HI           LO <= reward <= HI\n"
	"  --sample RATE            keep this fraction, chosen by a hash (deterministic)\n";

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

enum {
	T_STREAM, T_N, T_JSON, T_RAW, T_POLICY, T_TIMEOUT, T_STATS, T_SECONDS, T_HELP, T_SPIN,
	T_GAMES, T_PLAYERS, T_MIN_TURN, T_TERMINAL, T_REWARD, T_SAMPLE, T_ENGINE_UID, T_HISTORY,
	T_GROUP,
};

static const struct xr_opt tail_opts[] = {
	[T_STREAM] = {"--stream", true}, [T_N] = {"-n", true},
	[T_JSON] = {"--json", false},    [T_RAW] = {"--raw", true},
	[T_POLICY] = {"--policy", true}, [T_TIMEOUT] = {"--timeout", true},
	[T_STATS] = {"--stats", false},  [T_SECONDS] = {"--seconds", true},
	[T_HELP] = {"--help", false},    [T_SPIN] = {"--spin", false},
	[T_GAMES] = {"--games", true},   [T_PLAYERS] = {"--players", true},
	[T_MIN_TURN] = {"--min-turn", true}, [T_TERMINAL] = {"--terminal", true},
	[T_REWARD] = {"--reward", true}, [T_SAMPLE] = {"--sample", true},
	[T_ENGINE_UID] = {"--engine-uid", true}, [T_HISTORY] = {"--history", true},
	[T_GROUP] = {"--group", true},
	{NULL, false},
};

/* "0-99,512" into ranges. */
static bool parse_ranges(const char *v, xr_id_range *out, uint32_t *n)
{
	const char *p = v;

	*n = 0;
	while (*p) {
		char *end;
		unsigned long lo = strtoul(p, &end, 10), hi = lo;
		if (end == p || lo > UINT32_MAX || *n == XR_FILTER_RANGES_MAX)
			return false;
		p = end;
		if (*p == '-') {
			hi = strtoul(p + 1, &end, 10);
			if (end == p + 1 || hi > UINT32_MAX || hi < lo)
				return false;
			p = end;
		}
		out[(*n)++] = (xr_id_range){(uint32_t)lo, (uint32_t)hi};
		if (*p == ',')
			p++;
		else if (*p)
			return false;
	}
	return *n > 0;
}

static void print_shape(FILE *out, const xr_exp_view *v)
{
	fputc('[', out);
	for (uint32_t d = 0; d < v->obs_ndim; d++)
		fprintf(out, "%s%d", d ? "," : "", v->obs_dims[d]);
	fputc(']', out);
}

/* applied_by's name (the schema's ActionSource), or "?" for a value this
 * build does not know. */
static const char *source_name(uint32_t by)
{
	static const char *const names[] = {"none",       "policy",       "agent",   "timeout",
					    "wrong_turn", "out_of_range", "illegal", "delay"};

	return by < sizeof(names) / sizeof(names[0]) ? names[by] : "?";
}

static void print_record(FILE *out, const xr_exp_view *v, bool json)
{
	const xr_exp_fields *f = &v->f;
	const char *dt = v->obs ? xr_dtype_name(v->obs_dtype) : NULL;

	if (json) {
		fprintf(out,
			"{\"seq\":%" PRIu64 ",\"t_ns\":%" PRIu64 ",\"game_id\":%u,\"player_id\":%u,"
			"\"turn\":%u,\"action\":%d,\"reward\":%.9g,\"done\":%s,\"truncated\":%s,"
			"\"applied\":%d,\"applied_by\":%u,\"obs_dtype\":",
			f->seq, f->t_ns, f->game_id, f->player_id, f->turn, f->action,
			(double)f->reward, f->done ? "true" : "false", f->truncated ? "true" : "false",
			f->applied, (unsigned)f->applied_by);
		if (dt)
			fprintf(out, "\"%s\",\"obs_shape\":", dt);
		else
			fputs("null,\"obs_shape\":", out);
		if (v->obs)
			print_shape(out, v);
		else
			fputs("null", out);
		fputs("}\n", out);
		return;
	}
	fprintf(out, "seq=%" PRIu64 " game=%u player=%u turn=%u action=%d reward=%.3f done=%d%s "
		     "applied=%d by=%s obs=",
		f->seq, f->game_id, f->player_id, f->turn, f->action, (double)f->reward, f->done,
		f->truncated ? " truncated" : "", f->applied, source_name(f->applied_by));
	if (v->obs) {
		fputs(dt, out);
		print_shape(out, v);
	} else {
		fputs("none", out);
	}
	fputc('\n', out);
}

#define XR_TAIL_GAME_BITS (1u << 20) /* distinct games counted modulo this */

struct tail_stats {
	uint64_t last_ns, records, bytes, batches, wakeups;
	uint32_t games;
	uint8_t seen[XR_TAIL_GAME_BITS / 8];
};

static void saw_game(struct tail_stats *ts, uint32_t game)
{
	uint32_t g = game % XR_TAIL_GAME_BITS;
	uint8_t bit = (uint8_t)(1u << (g % 8));

	if (!(ts->seen[g / 8] & bit)) {
		ts->seen[g / 8] |= bit;
		ts->games++;
	}
}

/* --stats: one line a second, from this reader's own counters. */
static void stats_tick(xr_reader *r, struct tail_stats *ts, const xr_batch *b)
{
	uint64_t now = xr__now_ns();
	xr_reader_stats s;

	if (b) {
		ts->records += b->count;
		/* Filtered batches span skipped frames too: count what passed. */
		if (b->frames)
			for (uint32_t i = 0; i < b->count; i++)
				ts->bytes += b->frames[i]->size;
		else
			ts->bytes += b->bytes;
		ts->batches++;
	}
	if (now - ts->last_ns < 1000000000ull)
		return;
	double dt = (double)(now - ts->last_ns) / 1e9;
	if (xr_reader_stats_get(r, &s) == 0) {
		printf("%10.0f exp/s  %6.3f GB/s  %7.0f batches/s (avg %5.1f)  %6u games  "
		       "%6.0f wakeups/s  wake p50 %5.1f us p99 %6.1f us  read %" PRIu64
		       "  dropped %" PRIu64 "  pending %" PRIu64 "\n",
		       (double)ts->records / dt, (double)ts->bytes / dt / 1e9,
		       (double)ts->batches / dt,
		       ts->batches ? (double)ts->records / (double)ts->batches : 0.0, ts->games,
		       (double)(s.wakeups - ts->wakeups) / dt, (double)s.wake_ns_p50 / 1e3,
		       (double)s.wake_ns_p99 / 1e3, s.read, s.dropped, s.pending);
		ts->wakeups = s.wakeups;
	}
	fflush(stdout);
	ts->last_ns = now;
	ts->records = ts->bytes = ts->batches = 0;
	ts->games = 0;
	memset(ts->seen, 0, sizeof(ts->seen));
}

/*
 * Record seq into dirfd (the --raw directory, opened once). The names are
 * predictable, so whoever may write there could plant DIR/<seq>.bin as a
 * link to a file of their choosing and have a root tail overwrite it:
 * O_EXCL creates a new file or fails, never following a link at the name
 * (O_NOFOLLOW says so too) nor truncating what is there. -EEXIST when the
 * name is taken, whatever by.
 */
static int write_raw(int dirfd, uint64_t seq, const void *p, uint32_t len)
{
	char name[32];
	int fd;
	ssize_t n;

	snprintf(name, sizeof(name), "%" PRIu64 ".bin", seq);
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	n = write(fd, p, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

/*
 * Opens --raw DIR once, for write_raw's openat(): what was checked is what
 * is written into, even if the name is pointed elsewhere later. DIR must be
 * the directory itself (not a link), owned by this user or root, writable by
 * no one else: the rule of xr__check_dir (util/fs.c), read here off the
 * open descriptor. Another user who may write DIR could not make tail write
 * through a link (O_EXCL), but could still take the names of the records to
 * come or swap files under them. The fd, or an exit code (as a negative
 * number) after one line saying why.
 */
static int open_raw_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd < 0) {
		int err = errno;
		/* A link there fails O_DIRECTORY | O_NOFOLLOW with ENOTDIR on Linux
		 * (ELOOP elsewhere): lstat tells it from a file, for the message. */
		if (err == ELOOP || (err == ENOTDIR && lstat(dir, &st) == 0 && S_ISLNK(st.st_mode))) {
			xr_cli_err("tail", "--raw %s is a symbolic link; give --raw the directory "
					   "itself", dir);
			return -XR_EXIT_USAGE;
		}
		if (err == ENOENT || err == ENOTDIR) {
			xr_cli_err("tail", "--raw %s: not a directory; create it first", dir);
			return -XR_EXIT_USAGE;
		}
		xr_cli_err("tail", "--raw %s: %s", dir, strerror(err));
		return -XR_EXIT_FAIL;
	}
	if (fstat(fd, &st) < 0 || !xr__trusted_uid(NULL, st.st_uid) ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		if (!xr__trusted_uid(NULL, st.st_uid))
			xr_cli_err("tail", "--raw %s belongs to uid %u, not to this user or root, "
					   "who could plant files there; give --raw a directory of "
					   "this user's that no other user may write",
				   dir, (unsigned)st.st_uid);
		else
			xr_cli_err("tail", "--raw %s is writable by %s (mode %04o), who could plant "
					   "files there; give --raw a directory of this user's that no "
					   "other user may write",
				   dir, st.st_mode & S_IWOTH ? "every user" : "its group",
				   (unsigned)(st.st_mode & 07777));
		close(fd);
		return -XR_EXIT_FAIL;
	}
	return fd;
}

/* Everything the options say. */
struct tail_args {
	xr_reader_opts ro;
	xr_id_range games[XR_FILTER_RANGES_MAX], players[XR_FILTER_RANGES_MAX];
	xr_filter flt;
	bool filtered;
	const char *name, *raw;
	int raw_fd; /* raw, opened by open_raw_dir(); -1 without --raw */
	uint64_t limit;
	double timeout, seconds;
	bool json, stats;
};

#define USAGE(...) do { xr_cli_err("tail", __VA_ARGS__); return XR_EXIT_USAGE; } while (0)

/* A filter option. 0, XR_EXIT_USAGE, or 1 when k is not one. */
static int parse_filter_opt(int k, const char *v, struct tail_args *ta)
{
	xr_filter *f = &ta->flt;
	long n;
	char *end;

	switch (k) {
	case T_GAMES:
	case T_PLAYERS:
		if (!parse_ranges(v, k == T_GAMES ? ta->games : ta->players,
				  k == T_GAMES ? &f->n_games : &f->n_players))
			USAGE("%s '%s' is not a list of ids and ranges like 0-9,42 (at most %d)",
			      tail_opts[k].name, v, XR_FILTER_RANGES_MAX);
		break;
	case T_MIN_TURN:
		if (!xr_parse_int(v, 0, UINT32_MAX, &n))
			USAGE("--min-turn '%s' is not a turn number", v);
		f->min_turn = (uint32_t)n;
		break;
	case T_TERMINAL:
		if (!strcmp(v, "only"))
			f->terminal = XR_TERMINAL_ONLY;
		else if (!strcmp(v, "none"))
			f->terminal = XR_TERMINAL_NONE;
		else
			USAGE("--terminal must be only or none, not '%s'", v);
		break;
	case T_REWARD:
		f->reward_min = strtof(v, &end);
		if (end == v || *end != ':' || (f->reward_max = strtof(end + 1, &end), *end) ||
		    !(f->reward_min <= f->reward_max))
			USAGE("--reward '%s' is not LO:HI with LO <= HI", v);
		f->has_reward_range = 1;
		break;
	case T_SAMPLE:
		if (!xr_parse_seconds(v, &f->sample_rate) || f->sample_rate <= 0 || f->sample_rate > 1)
			USAGE("--sample must be a fraction in (0, 1], not '%s'", v);
		break;
	default:
		return 1;
	}
	ta->filtered = true;
	return 0;
}

/* Any other option. 0 or XR_EXIT_USAGE. */
static int parse_read_opt(int k, const char *v, struct tail_args *ta)
{
	long uid;

	switch (k) {
	case T_STREAM: ta->ro.stream = v; break;
	case T_N:
		if (!xr_parse_count(v, &ta->limit) || ta->limit == 0)
			USAGE("-n '%s' is not a positive count", v);
		break;
	case T_JSON: ta->json = true; break;
	case T_RAW: ta->raw = v; break;
	case T_POLICY:
		if (xr_policy_parse(v, &ta->ro.policy) < 0)
			USAGE("--policy must be lossless or lossy, not '%s'", v);
		break;
	case T_ENGINE_UID:
		if (!xr_parse_int(v, 0, UINT32_MAX - 1, &uid))
			USAGE("--engine-uid '%s' is not a uid", v);
		ta->ro.engine_uid = (uint32_t)uid;
		break;
	case T_HISTORY:
		if (!strcmp(v, "all"))
			ta->ro.history = XR_HISTORY_ALL;
		else if (!xr_parse_count(v, &ta->ro.history) || ta->ro.history == XR_HISTORY_ALL)
			USAGE("--history must be a count of records or all, not '%s'", v);
		break;
	case T_GROUP: ta->ro.group = v; break;
	case T_STATS: ta->stats = true; break;
	case T_SPIN: ta->ro.wait = XR_WAIT_SPIN; break;
	case T_SECONDS:
		if (!xr_parse_seconds(v, &ta->seconds))
			USAGE("--seconds '%s' is not a number of seconds", v);
		break;
	case T_TIMEOUT:
		if (!xr_parse_seconds(v, &ta->timeout))
			USAGE("--timeout '%s' is not a number of seconds", v);
		break;
	}
	return 0;
}

/* 0, an exit code, or -1 after --help. */
static int parse_args(int argc, char **argv, struct tail_args *ta)
{
	const char *v;
	int i = 1, k, rc;

	while (i < argc) {
		k = xr_next_opt("tail", argc, argv, &i, tail_opts, &v);
		if (k == -2)
			return XR_EXIT_USAGE;
		if (k == -1) {
			if (ta->name)
				USAGE("unexpected argument '%s'; see `xring tail --help`", v);
			ta->name = v;
			continue;
		}
		if (k == T_HELP) {
			fputs(tail_help, stdout);
			return -1;
		}
		rc = parse_filter_opt(k, v, ta);
		if (rc == 1)
			rc = parse_read_opt(k, v, ta);
		if (rc)
			return rc;
	}
	if (!ta->name)
		USAGE("which engine? usage: xring tail NAME (see --help)");
	if (ta->raw) {
		ta->raw_fd = open_raw_dir(ta->raw);
		if (ta->raw_fd < 0)
			return -ta->raw_fd;
	}
	if (ta->filtered)
		ta->ro.filter = &ta->flt;
	return 0;
}

/* Attaches, or says in one line why not. */
static int attach(struct tail_args *ta, xr_reader **r)
{
	int rc = xr_reader_attach(ta->name, &ta->ro, r);

	if (rc == 0)
		return 0;
	if (xr_last_reason()[0])
		xr_cli_err("tail", "cannot attach to '%s': %s", ta->name, xr_last_reason());
	else if (rc == -ENOENT)
		xr_cli_err("tail", "no engine '%s' (or no stream '%s') is running; start one with "
				   "`xring engine --name %s`",
			   ta->name, ta->ro.stream ? ta->ro.stream : XR_DEFAULT_STREAM, ta->name);
	else if (rc == XR_ELAYOUT)
		xr_cli_err("tail", "engine '%s' runs an incompatible xring version; use the xring "
				   "that built it",
			   ta->name);
	else
		xr_cli_err("tail", "cannot attach to '%s': %s", ta->name, xr_strerror(rc));
	return XR_EXIT_FAIL;
}

/*
 * Record j of b, prev being record j - 1. A batch with a stride is a run of
 * frames of one size of which the reader checked only the first and the last
 * (take_fixed in shm/ring_reader.c): it is stepped by that stride, never by
 * the size field of a frame in between, so that a size written there cannot
 * send the walk elsewhere. Other unfiltered batches were walked frame by
 * frame by the reader; they are stepped by each frame's size, kept inside
 * b->bytes. NULL: the batch is not what it claims to be.
 */
static const xr_frame *batch_frame(const xr_batch *b, const xr_frame *prev, uint32_t j)
{
	if (b->frames)
		return b->frames[j];
	if (j == 0)
		return b->first;
	if (b->stride)
		return (const xr_frame *)((const uint8_t *)b->first + (uint64_t)j * b->stride);
	uint64_t at = (uint64_t)((const uint8_t *)prev - (const uint8_t *)b->first) + prev->size;
	if (prev->size < XR_FRAME_HDR || at + XR_FRAME_HDR > b->bytes)
		return NULL;
	return xr_frame_next(prev);
}

/* The length of record f of b: the batch's own when all have one (the frames
 * between the first and last of a strided run were not checked), else the
 * frame's, which the reader checked. */
static uint32_t batch_len(const xr_batch *b, const xr_frame *f)
{
	if (b->len)
		return b->len;
	if (b->stride && f->len > b->stride - XR_FRAME_HDR)
		return b->stride - XR_FRAME_HDR;
	return f->len;
}

/* Prints, saves or counts the records of b. 0 or an exit code. */
static int take_batch(const struct tail_args *ta, struct tail_stats *ts, const xr_batch *b,
		      uint64_t *bad)
{
	const xr_frame *f = NULL;

	for (uint32_t j = 0; j < b->count; j++) {
		xr_exp_view ev;
		f = batch_frame(b, f, j);
		if (!f) {
			xr_cli_err("tail", "batch of %u records from '%s' ends after %u: its frames "
					   "do not add up (a bug or corruption in the engine)",
				   b->count, ta->name, j);
			return XR_EXIT_FAIL;
		}
		uint32_t len = batch_len(b, f);
		if (ta->stats) {
			if (xr_exp_view_init(&ev, xr_frame_data(f), len) < 0)
				(*bad)++;
			else
				saw_game(ts, ev.f.game_id);
		} else if (ta->raw) {
			int e = write_raw(ta->raw_fd, f->seq, xr_frame_data(f), len);
			if (e == -EEXIST) {
				xr_cli_err("tail", "--raw %s/%" PRIu64 ".bin already exists (tail "
						   "overwrites nothing); give --raw an empty directory",
					   ta->raw, f->seq);
				return XR_EXIT_FAIL;
			}
			if (e < 0) {
				xr_cli_err("tail", "--raw %s: %s", ta->raw, strerror(-e));
				return XR_EXIT_FAIL;
			}
		} else if (xr_exp_view_init(&ev, xr_frame_data(f), len) == 0) {
			print_record(stdout, &ev, ta->json);
		} else {
			(*bad)++;
			fprintf(stderr, "xring tail: record seq %" PRIu64 " is malformed (%u bytes); "
					"skipped\n",
				f->seq, len);
		}
	}
	return 0;
}

/* Reads until -n, --seconds, the engine's end or a signal. */
static int run(const struct tail_args *ta, xr_reader *r)
{
	int64_t wait_ns = ta->timeout < 0 ? 100000000 : (int64_t)(ta->timeout * 1e9);
	static struct tail_stats ts;
	uint64_t got = 0, bad = 0, t0 = xr__now_ns();
	uint64_t end = ta->seconds < 0 ? UINT64_MAX : t0 + (uint64_t)(ta->seconds * 1e9);
	int status = 0;

	ts.last_ns = t0;
	while (!stop_flag && (!ta->limit || got < ta->limit) && xr__now_ns() < end) {
		xr_batch b;
		uint32_t want = ta->limit && ta->limit - got < 256 ? (uint32_t)(ta->limit - got) : 256;
		int rc = xr_reader_read(r, 1, want, wait_ns, &b);

		if (ta->stats)
			stats_tick(r, &ts, rc > 0 ? &b : NULL);
		if (rc == 0 && ta->timeout >= 0) {
			xr_cli_err("tail", "no record from '%s' in %.3g s; is its writer running?",
				   ta->name, ta->timeout);
			return XR_EXIT_FAIL;
		}
		if (rc == 0 || rc == -EINTR)
			continue;
		if (rc == XR_ECLOSED)
			break; /* the engine finished: not an error for tail */
		if (rc < 0) {
			xr_cli_err("tail", "reading '%s' failed: %s", ta->name, xr_strerror(rc));
			return XR_EXIT_FAIL;
		}
		status = take_batch(ta, &ts, &b, &bad);
		got += b.count;
		xr_batch_release(r, &b);
		if (status)
			return status;
	}
	return bad ? XR_EXIT_FAIL : 0;
}

int xr_cmd_tail(int argc, char **argv)
{
	static struct tail_args ta = {.ro = {.label = "xring-tail"}, .timeout = -1,
				      .seconds = -1, .raw_fd = -1};
	xr_reader *r;
	int rc;

	ta.flt = (xr_filter){.games = ta.games, .players = ta.players};
	rc = parse_args(argc, argv, &ta);
	if (rc)
		return rc < 0 ? 0 : rc;
	rc = attach(&ta, &r);
	if (rc) {
		if (ta.raw_fd >= 0)
			close(ta.raw_fd);
		return rc;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = run(&ta, r);
	fflush(stdout);
	xr_reader_detach(r);
	if (ta.raw_fd >= 0)
		close(ta.raw_fd);
	return rc;
}
