/* SPDX-License-Identifier: MIT */
/*
 * `xring engine`: parse the options (command line over config file), build
 * the record shape, create the host (arena + control server), run the games
 * or the synthetic writer until stopped or done, report. Each step is its
 * own function; the host (engine/host.c) owns the order of shutdown.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <numa.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "cli/table_spec.h"
#include "engine/host.h"
#include "engine/metrics.h"
#include "engine/shard.h"
#include "shm/backing.h"
#include "shm/layout.h"
#include "xring/agent.h"
#include "xring/arena.h"
#include "xring/error.h"
#include "xring/server.h"

static const char engine_help[] =
	"usage: xring engine --name NAME [options]\n"
	"\n"
	"Creates the arena NAME and writes Experience records into it until stopped\n"
	"(SIGINT/SIGTERM), or until --count records. The arena is removed on exit.\n"
	"\n"
	"  --name NAME              engine name readers attach by (required)\n"
	"  --stream NAME            stream name (default: experience)\n"
	"  --ring-size SIZE         ring bytes, e.g. 64M; rounded up to a power of two\n"
	"                           and to the page size (default: 64M)\n"
	"  --policy lossless|lossy  what happens when readers fall behind (default: lossless)\n"
	"  --hugepages require|prefer|off   memory backing (default: prefer)\n"
	"  --numa-node N            bind memory and the writer to node N\n"
	"                           (default: the node of the first allowed CPU)\n"
	"  --max-readers N          reader slots (default: 64)\n"
	"  --allow-uid LIST         also let these users attach (names or uids, comma-\n"
	"                           separated; the engine's own uid always may); makes\n"
	"                           the control socket mode 0666, the list being the gate\n"
	"  --allow-gid LIST         ...and members of these groups (the socket's group\n"
	"                           becomes the first); the socket is DIR/NAME.sock, DIR\n"
	"                           = $XRING_RUN_DIR, /run/xring or /tmp/xring-UID\n"
	"  --max-conns-per-uid N    connections one uid may hold (default: its reader\n"
	"                           slots + 8; the engine's own uid: the whole table)\n"
	"  --max-readers-per-uid N  reader slots one uid may hold (default: a quarter of\n"
	"                           --max-readers, at least 1; the engine's own uid: all)\n"
	"  --max-requests-per-uid N requests per second of one uid, all its connections\n"
	"                           (default: 256)\n"
	"  --lease-timeout SEC      a lossy reader holding a batch in the writer's way this\n"
	"                           long is evicted (default: 10; 0 = never)\n"
	"  --metrics-addr HOST:PORT serve the figures of `xring stat` to Prometheus at\n"
	"                           http://HOST:PORT/metrics; HOST on loopback (127.0.0.1),\n"
	"                           PORT 0 = any free one (default: no endpoint)\n"
	"games (the default source of records):\n"
	"  --game grid|PATH.so      the built-in grid game, or a game plugin (default: grid)\n"
	"  --games N                games at start (default: 1000); more are created,\n"
	"                           reset and destroyed at runtime (`xring games`)\n"
	"  --max-games N            games live at once, at start and created (default:\n"
	"                           100000, or --games if more)\n"
	"  --max-games-per-uid N    games one other uid may create (default: a quarter of\n"
	"                           --max-games; the engine's own uid: all)\n"
	"  --max-creates-per-uid N  game creations and resets a second of one uid, in\n"
	"                           bursts of twice that (default: 10000)\n"
	"  --shards S               writer threads, pinned to the node's CPUs, one ring\n"
	"                           each; games are spread evenly (default: 1)\n"
	"  --producers N            N more rings in each stream for external producers\n"
	"                           (processes writing records: docs/producers.md); with\n"
	"                           --games 0 an engine serves producers only (default: 0)\n"
	"  --board HxW              board size (default: the game's, 20x20 for grid)\n"
	"  --players K              players per game (default: 2)\n"
	"  --seed X                 seed of game 0's first episode (default: 1)\n"
	"  --turn-limit T           turns before an episode is truncated (default: the game's)\n"
	"  --obs-dtype u8|f32       observation element type (default: u8)\n"
	"  --observe all|subscribed records for every (game, player), or only for those\n"
	"                           some attached reader's filter selects (its games and\n"
	"                           players); the other games only step (default: all)\n"
	"  --shape LIST             more streams, one per shape of game created at\n"
	"                           runtime: NAME:HxW:K[:DTYPE[:GAME]],... (stream NAME\n"
	"                           carries GAME (default: --game) games of an HxW board,\n"
	"                           K players, DTYPE observations (default: u8)); the\n"
	"                           options above are the first stream's\n"
	"  --high-watermark F       lossless: pause the games past this fraction of the ring\n"
	"                           unread (default: 0.9; 0 = only when full)\n"
	"  --low-watermark F        ...and resume them below this fraction (default: 0.5)\n"
	"  --tick-ms T              each game takes a turn every T ms (timer wheel, io_uring);\n"
	"                           0 = as fast as the ring allows (default: 0)\n"
	"replay tables (docs/replay.md):\n"
	"  --table NAME:CAP[:K=V,...]  a table made at start, before the games play\n"
	"                           (repeatable): item_size, sampler, remover, alpha,\n"
	"                           beta, max_times_sampled, min_size, samples_per_insert,\n"
	"                           error_buffer, seed, source (a stream: fed by the\n"
	"                           engine), priority, item (record|transition),\n"
	"                           restore (a checkpoint file to start from), e.g.\n"
	"                           replay:100000:sampler=prioritized,source=experience\n"
	"agents (processes that act for seats: docs/agents.md):\n"
	"  --max-agents N           agents attached at once, 1..128 (default: 16)\n"
	"  --action-timeout-ms D    without --tick-ms, how long a game waits for its\n"
	"                           agents' actions before their fallbacks (default: 100)\n"
	"  --input-delay K          an action for turn t applies at turn t + K, 0..7\n"
	"                           (default: 0)\n"
	"  --fallback noop|repeat|policy  what a missing, late or bad action becomes:\n"
	"                           the game's no-op, the seat's last action, or the\n"
	"                           built-in policy's (default: noop)\n"
	"  --count N                records to write, 0 = forever (default: 0)\n"
	"synthetic writer instead of games (records whose bytes a reader can check):\n"
	"  --record-bytes N         observation bytes per record; selects the synthetic writer\n"
	"  --rate N                 records per second, 0 = as fast as possible (default: 0)\n"
	"  --quiet                  print nothing but errors\n"
	"  --config FILE            options from a YAML file, one key per long option without\n"
	"                           the dashes (games: 10000); flags given here win\n";

enum {
	O_NAME, O_STREAM, O_RING, O_POLICY, O_HUGE, O_NUMA, O_READERS, O_BYTES, O_COUNT,
	O_RATE, O_GAMES, O_QUIET, O_HELP, O_GAME, O_BOARD, O_PLAYERS, O_SEED, O_TURNS,
	O_DTYPE, O_TICK, O_SHARDS, O_CONFIG, O_HIGH, O_LOW, O_ALLOW_UID, O_ALLOW_GID,
	O_CONNS_UID, O_READERS_UID, O_REQS_UID, O_LEASE_TIMEOUT, O_MAX_GAMES, O_GAMES_UID,
	O_CREATES_UID, O_SHAPE, O_OBSERVE, O_MAX_AGENTS, O_ACTION_TIMEOUT, O_FALLBACK,
	O_INPUT_DELAY, O_METRICS, O_TABLE, O_PRODUCERS,
};

static const struct xr_opt engine_opts[] = {
	[O_NAME] = {"--name", true},         [O_STREAM] = {"--stream", true},
	[O_RING] = {"--ring-size", true},    [O_POLICY] = {"--policy", true},
	[O_HUGE] = {"--hugepages", true},    [O_NUMA] = {"--numa-node", true},
	[O_READERS] = {"--max-readers", true}, [O_BYTES] = {"--record-bytes", true},
	[O_COUNT] = {"--count", true},       [O_RATE] = {"--rate", true},
	[O_GAMES] = {"--games", true},       [O_QUIET] = {"--quiet", false},
	[O_HELP] = {"--help", false},        [O_GAME] = {"--game", true},
	[O_BOARD] = {"--board", true},       [O_PLAYERS] = {"--players", true},
	[O_SEED] = {"--seed", true},         [O_TURNS] = {"--turn-limit", true},
	[O_DTYPE] = {"--obs-dtype", true},   [O_TICK] = {"--tick-ms", true},
	[O_SHARDS] = {"--shards", true},     [O_CONFIG] = {"--config", true},
	[O_HIGH] = {"--high-watermark", true}, [O_LOW] = {"--low-watermark", true},
	[O_ALLOW_UID] = {"--allow-uid", true}, [O_ALLOW_GID] = {"--allow-gid", true},
	[O_CONNS_UID] = {"--max-conns-per-uid", true},
	[O_READERS_UID] = {"--max-readers-per-uid", true},
	[O_REQS_UID] = {"--max-requests-per-uid", true},
	[O_LEASE_TIMEOUT] = {"--lease-timeout", true},
	[O_MAX_GAMES] = {"--max-games", true},
	[O_GAMES_UID] = {"--max-games-per-uid", true},
	[O_CREATES_UID] = {"--max-creates-per-uid", true},
	[O_SHAPE] = {"--shape", true},
	[O_OBSERVE] = {"--observe", true},
	[O_MAX_AGENTS] = {"--max-agents", true},
	[O_ACTION_TIMEOUT] = {"--action-timeout-ms", true},
	[O_FALLBACK] = {"--fallback", true},
	[O_INPUT_DELAY] = {"--input-delay", true},
	[O_METRICS] = {"--metrics-addr", true},
	[O_TABLE] = {"--table", true},
	[O_PRODUCERS] = {"--producers", true},
	{NULL, false},
};

#define XR_ALLOW_MAX 32

/* Everything the options say. */
struct engine_args {
	xr_arena_spec spec;
	xr_stream_spec ss;
	xr_server_opts so;
	uint32_t allow_uid[XR_ALLOW_MAX], allow_gid[XR_ALLOW_MAX];
	struct xr_synth_opts synth;
	uint64_t record_bytes;          /* nonzero: the synthetic writer */
	bool quiet;
	const char *game;
	xr_game_config gcfg;
	xr_dtype obs_dtype;
	double tick_ms;
	uint32_t shards;
	uint32_t producers;          /* --producers: slots per stream */
	struct xr_cli_table tables[XR_CLI_TABLES_MAX]; /* --table, made at start */
	uint32_t n_tables;
	double high_wm, low_wm;
	double lease_timeout_s;
	uint32_t max_games, max_games_per_uid, creates_per_uid;
	bool observe_subscribed;
	uint32_t max_agents, fallback, input_delay;
	double action_timeout_ms;
	const char *metrics_addr;       /* --metrics-addr, or NULL */
	/* Streams 1.. (--shape); stream 0 is ss. */
	struct shape_arg {
		const char *stream, *game;
		uint32_t h, w, players;
		xr_dtype dtype;
	} shapes[XR_SHARD_STREAMS_MAX - 1];
	uint32_t n_shapes;
	char shape_text[1024];            /* what shapes[] point into */
	xr_stream_spec streams[XR_SHARD_STREAMS_MAX];
	xr_exp_template templates[XR_SHARD_STREAMS_MAX];
	const xr_game_vtable *vts[XR_SHARD_STREAMS_MAX];
};

/* The handlers stand before the arena exists: a SIGINT or SIGTERM that
 * came between its creation and their installation ended the process by
 * default, and left the arena file and its huge pages behind. One that
 * comes before the host runs is kept in stop_asked, looked at once the
 * host is there (and the handler stops a host already there itself:
 * xr_host_stop is a flag and an eventfd write, async-signal-safe and
 * idempotent). */
static struct xr_host *volatile running_host;
static volatile sig_atomic_t stop_asked;

static void on_signal(int sig)
{
	(void)sig;
	stop_asked = 1;
	if (running_host)
		xr_host_stop(running_host);
}

#define USAGE(...) do { xr_cli_err("engine", __VA_ARGS__); return XR_EXIT_USAGE; } while (0)

/* "alice,1001,bob" into ids, by name (passwd/group) or number. */
static bool parse_ids(const char *v, bool groups, uint32_t *ids, uint32_t *n)
{
	char buf[1024], *save = NULL;

	if (strlen(v) >= sizeof(buf))
		return false;
	strcpy(buf, v);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		long id;
		if (*n == XR_ALLOW_MAX)
			return false;
		if (xr_parse_int(tok, 0, UINT32_MAX - 1, &id)) {
			ids[(*n)++] = (uint32_t)id;
		} else if (groups) {
			struct group *g = getgrnam(tok);
			if (!g)
				return false;
			ids[(*n)++] = g->gr_gid;
		} else {
			struct passwd *pw = getpwnam(tok);
			if (!pw)
				return false;
			ids[(*n)++] = pw->pw_uid;
		}
	}
	return *n > 0;
}

/* The arena's and the server's options. 0, XR_EXIT_USAGE, or 1 when k is
 * not one of theirs. */
/* --lease-timeout's seconds as the writer takes them: 0 means never. */
static uint64_t lease_ns(double s)
{
	return s > 0 ? (uint64_t)(s * 1e9) : UINT64_MAX;
}

static int parse_arena_opt(int k, const char *v, struct engine_args *ea)
{
	long n;

	switch (k) {
	case O_NAME: ea->spec.name = v; return 0;
	case O_STREAM: ea->ss.name = v; return 0;
	case O_RING:
		if (!xr_parse_size(v, &ea->ss.ring_bytes) || ea->ss.ring_bytes < 4096 ||
		    ea->ss.ring_bytes > (1ull << 36))
			USAGE("--ring-size '%s' is not a size between 4K and 64G", v);
		return 0;
	case O_POLICY:
		if (xr_policy_parse(v, &ea->ss.policy) < 0)
			USAGE("--policy must be lossless or lossy, not '%s'", v);
		return 0;
	case O_HUGE:
		if (xr_hugepages_parse(v, &ea->spec.hugepages) < 0)
			USAGE("--hugepages must be require, prefer or off, not '%s'", v);
		return 0;
	case O_NUMA:
		if (!xr_parse_int(v, 0, 1023, &n))
			USAGE("--numa-node '%s' is not a node number", v);
		ea->spec.numa_node = (int)n;
		return 0;
	case O_READERS:
		if (!xr_parse_int(v, 1, XR_MAX_READERS_LIMIT, &n))
			USAGE("--max-readers must be 1..%d, not '%s'", XR_MAX_READERS_LIMIT, v);
		ea->spec.max_readers = (uint32_t)n;
		return 0;
	case O_ALLOW_UID:
	case O_ALLOW_GID:
		if (!parse_ids(v, k == O_ALLOW_GID, k == O_ALLOW_GID ? ea->allow_gid : ea->allow_uid,
			       k == O_ALLOW_GID ? &ea->so.n_allow_gid : &ea->so.n_allow_uid))
			USAGE("%s '%s': not a comma-separated list of known %s or numeric ids (at most "
			      "%d)",
			      engine_opts[k].name, v, k == O_ALLOW_GID ? "groups" : "users", XR_ALLOW_MAX);
		return 0;
	case O_CONNS_UID:
	case O_READERS_UID:
	case O_REQS_UID: {
		uint32_t *dst = k == O_CONNS_UID	 ? &ea->so.max_conns_per_uid
				: k == O_READERS_UID ? &ea->so.max_readers_per_uid
						     : &ea->so.max_requests_per_uid;
		if (!xr_parse_int(v, 1, 1000000, &n))
			USAGE("%s must be 1..1000000, not '%s'", engine_opts[k].name, v);
		*dst = (uint32_t)n;
		return 0;
	}
	}
	return 1;
}

/* --shape's "NAME:HxW:K[:DTYPE[:GAME]],...", appended to ea->shapes. 0 or
 * XR_EXIT_USAGE. */
static int parse_shapes(const char *v, struct engine_args *ea)
{
	size_t used = strlen(ea->shape_text);
	char *save = NULL, *buf = ea->shape_text + used + (used ? 1 : 0);

	if (used + 1 + strlen(v) + 1 > sizeof(ea->shape_text))
		USAGE("--shape '%s': too long", v);
	strcpy(buf, v);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *f[6] = {0}, *save2 = NULL;
		int n = 0;
		uint32_t h, w;
		long k;
		for (char *p = strtok_r(tok, ":", &save2); p && n < 6; p = strtok_r(NULL, ":", &save2))
			f[n++] = p;
		if (ea->n_shapes == XR_SHARD_STREAMS_MAX - 1)
			USAGE("--shape: at most %d streams besides the first", XR_SHARD_STREAMS_MAX - 1);
		if (n < 3 || n > 5 || xr__check_name(f[0], XR_STREAM_NAME_MAX) < 0 ||
		    !xr_parse_board(f[1], &h, &w) || !xr_parse_int(f[2], 1, XR_GAME_MAX_PLAYERS, &k) ||
		    (n > 3 && xr_dtype_parse(f[3]) != XR_DTYPE_U8 &&
		     xr_dtype_parse(f[3]) != XR_DTYPE_F32))
			USAGE("--shape '%s' is not NAME:HxW:PLAYERS[:u8|f32[:GAME]] (e.g. "
			      "small:8x8:2:u8)",
			      v);
		ea->shapes[ea->n_shapes++] = (struct shape_arg){
			.stream = f[0], .h = h, .w = w, .players = (uint32_t)k,
			.dtype = n > 3 ? (xr_dtype)xr_dtype_parse(f[3]) : XR_DTYPE_U8,
			.game = n > 4 ? f[4] : NULL};
	}
	return 0;
}

/* The games' options. 0, XR_EXIT_USAGE, or 1 when k is not one of theirs. */
static int parse_game_opt(int k, const char *v, struct engine_args *ea)
{
	long n;

	switch (k) {
	case O_GAME: ea->game = v; return 0;
	case O_GAMES:
		if (!xr_parse_int(v, 0, 8000000, &n))
			USAGE("--games must be 0..8000000, not '%s'", v);
		ea->synth.games = (uint32_t)n;
		return 0;
	case O_SHAPE:
		return parse_shapes(v, ea);
	case O_OBSERVE:
		if (strcmp(v, "all") && strcmp(v, "subscribed"))
			USAGE("--observe must be all or subscribed, not '%s'", v);
		ea->observe_subscribed = !strcmp(v, "subscribed");
		return 0;
	case O_MAX_AGENTS:
		if (!xr_parse_int(v, 1, XR_MAX_AGENTS, &n))
			USAGE("--max-agents must be 1..%d, not '%s'", XR_MAX_AGENTS, v);
		ea->max_agents = (uint32_t)n;
		return 0;
	case O_ACTION_TIMEOUT: {
		char *end;
		errno = 0;
		double d = strtod(v, &end);
		if (errno || end == v || *end || !(d > 0 && d <= 3600000))
			USAGE("--action-timeout-ms must be a number of ms, above 0 and at most "
			      "3600000, not '%s'",
			      v);
		ea->action_timeout_ms = d;
		return 0;
	}
	case O_METRICS: {
		uint32_t ip;
		uint16_t port;
		char why[160];
		if (xr__metrics_parse_addr(v, &ip, &port, why, sizeof(why)) < 0)
			USAGE("--metrics-addr %s", why);
		ea->metrics_addr = v;
		return 0;
	}
	case O_TABLE: {
		char why[200];
		if (ea->n_tables == XR_CLI_TABLES_MAX)
			USAGE("--table: at most %d tables", XR_CLI_TABLES_MAX);
		if (xr_cli_table_parse(v, &ea->tables[ea->n_tables], why, sizeof(why)) < 0)
			USAGE("--table '%s': %s (NAME:CAPACITY[:KEY=VALUE,...]; see docs/replay.md)",
			      v, why);
		ea->n_tables++;
		return 0;
	}
	case O_INPUT_DELAY:
		if (!xr_parse_int(v, 0, XR_SEAT_DEPTH_MAX - 1, &n))
			USAGE("--input-delay must be 0..%u turns, not '%s'", XR_SEAT_DEPTH_MAX - 1, v);
		ea->input_delay = (uint32_t)n;
		return 0;
	case O_FALLBACK:
		if (xr_fallback_parse(v, &ea->fallback) < 0)
			USAGE("--fallback must be noop, repeat or policy, not '%s'", v);
		return 0;
	case O_MAX_GAMES:
	case O_GAMES_UID:
	case O_CREATES_UID: {
		uint32_t *dst = k == O_MAX_GAMES ? &ea->max_games
				: k == O_GAMES_UID ? &ea->max_games_per_uid
						   : &ea->creates_per_uid;
		if (!xr_parse_int(v, 1, k == O_CREATES_UID ? 10000000 : 8000000, &n))
			USAGE("%s must be 1..%d, not '%s'", engine_opts[k].name,
			      k == O_CREATES_UID ? 10000000 : 8000000, v);
		*dst = (uint32_t)n;
		return 0;
	}
	case O_BOARD:
		if (!xr_parse_board(v, &ea->gcfg.board_h, &ea->gcfg.board_w))
			USAGE("--board '%s' is not HxW (e.g. 20x20)", v);
		return 0;
	case O_PLAYERS:
		if (!xr_parse_int(v, 1, XR_GAME_MAX_PLAYERS, &n))
			USAGE("--players must be 1..%u, not '%s'", XR_GAME_MAX_PLAYERS, v);
		ea->gcfg.players = (uint32_t)n;
		return 0;
	case O_SEED:
		if (!xr_parse_count(v, &ea->gcfg.seed))
			USAGE("--seed '%s' is not a number", v);
		return 0;
	case O_TURNS:
		if (!xr_parse_int(v, 1, 100000000, &n))
			USAGE("--turn-limit must be 1..100000000, not '%s'", v);
		ea->gcfg.turn_limit = (uint32_t)n;
		return 0;
	case O_PRODUCERS:
		if (!xr_parse_int(v, 0, XR_MAX_RINGS - 1, &n))
			USAGE("--producers must be 0..%d, not '%s'", XR_MAX_RINGS - 1, v);
		ea->producers = (uint32_t)n;
		return 0;
	case O_SHARDS:
		if (!xr_parse_int(v, 1, XR_MAX_RINGS, &n))
			USAGE("--shards must be 1..%d, not '%s'", XR_MAX_RINGS, v);
		ea->shards = (uint32_t)n;
		return 0;
	case O_TICK:
		if (!xr_parse_seconds(v, &ea->tick_ms) || ea->tick_ms > 3600000)
			USAGE("--tick-ms '%s' is not a number of milliseconds", v);
		return 0;
	case O_DTYPE:
		if (xr_dtype_parse(v) < 0 || (xr_dtype_parse(v) != XR_DTYPE_U8 &&
					      xr_dtype_parse(v) != XR_DTYPE_F32))
			USAGE("--obs-dtype must be u8 or f32, not '%s'", v);
		ea->obs_dtype = (xr_dtype)xr_dtype_parse(v);
		return 0;
	case O_LEASE_TIMEOUT:
		if (!xr_parse_seconds(v, &ea->lease_timeout_s) || ea->lease_timeout_s > 1e6)
			USAGE("--lease-timeout '%s' is not a number of seconds", v);
		if (ea->lease_timeout_s > 0 && ea->lease_timeout_s < 1e-3)
			USAGE("--lease-timeout must be 0 (never) or at least 0.001 s, not '%s'", v);
		ea->synth.lease_timeout_ns = lease_ns(ea->lease_timeout_s);
		return 0;
	case O_HIGH:
	case O_LOW: {
		double *dst = k == O_HIGH ? &ea->high_wm : &ea->low_wm;
		if (!xr_parse_seconds(v, dst) || *dst > 1)
			USAGE("%s must be a fraction between 0 and 1, not '%s'", engine_opts[k].name, v);
		return 0;
	}
	}
	return 1;
}

/* The writer's options: how many records, and the synthetic writer's. */
static int parse_writer_opt(int k, const char *v, struct engine_args *ea)
{
	switch (k) {
	case O_BYTES:
		if (!xr_parse_size(v, &ea->record_bytes) || ea->record_bytes < 1 ||
		    ea->record_bytes > (256ull << 20))
			USAGE("--record-bytes must be 1..256M, not '%s'", v);
		return 0;
	case O_COUNT:
		if (!xr_parse_count(v, &ea->synth.count))
			USAGE("--count '%s' is not a count", v);
		return 0;
	case O_RATE:
		if (!xr_parse_count(v, &ea->synth.rate))
			USAGE("--rate '%s' is not records per second", v);
		return 0;
	case O_QUIET: ea->quiet = true; return 0;
	case O_CONFIG: return 0; /* read before the command line */
	}
	return 1;
}

/* What a config file added to the command line (merge_config). */
static char **config_args, **config_merged;
static int config_n;

/* A config file's options go before the command line's, so that the
 * command line wins. *argv then lives until xr_cmd_engine() returns: its
 * strings back the spec's fields. 0 or an exit code. */
static int merge_config(int *argc, char ***argv)
{
	char **args = NULL;
	int nargs = 0;

	for (int j = 1; j < *argc; j++) {
		const char *path = NULL;
		if (!strcmp((*argv)[j], "--config") && j + 1 < *argc)
			path = (*argv)[j + 1];
		else if (!strncmp((*argv)[j], "--config=", 9))
			path = (*argv)[j] + 9;
		if (!path)
			continue;
		int rc = xr_config_load("engine", path, engine_opts, &args, &nargs);
		if (rc) {
			xr_config_free(args, nargs);
			return rc;
		}
	}
	if (!args)
		return 0;
	char **merged = calloc((size_t)(*argc + nargs + 1), sizeof(char *));
	if (!merged) {
		xr_config_free(args, nargs);
		xr_cli_err("engine", "out of memory");
		return XR_EXIT_FAIL;
	}
	merged[0] = (*argv)[0];
	memcpy(merged + 1, args, (size_t)nargs * sizeof(char *));
	memcpy(merged + 1 + nargs, *argv + 1, (size_t)(*argc - 1) * sizeof(char *));
	*argv = merged;
	*argc += nargs;
	/* The options' values point into them for the whole run: freed by
	 * xr_cmd_engine() on its way out. */
	config_args = args;
	config_n = nargs;
	config_merged = merged;
	return 0;
}

/* What the options together must make sense as. 0 or XR_EXIT_USAGE. */
static int check_args(const struct engine_args *ea)
{
	if (!ea->spec.name)
		USAGE("--name is required; see `xring engine --help`");
	if (xr__check_name(ea->spec.name, XR_NAME_MAX) < 0)
		USAGE("--name '%s': use 1-%d characters of A-Z a-z 0-9 _ . - (not starting with '.')",
		      ea->spec.name, XR_NAME_MAX);
	if (ea->ss.name && xr__check_name(ea->ss.name, XR_STREAM_NAME_MAX) < 0)
		USAGE("--stream '%s': use 1-%d characters of A-Z a-z 0-9 _ . - (not starting with "
		      "'.')",
		      ea->ss.name, XR_STREAM_NAME_MAX);
	if (ea->high_wm > 0 && ea->low_wm >= ea->high_wm)
		USAGE("--low-watermark %.2f must be below --high-watermark %.2f", ea->low_wm,
		      ea->high_wm);
	if (ea->shards > 1 && ea->record_bytes)
		USAGE("--shards is for games; the synthetic writer (--record-bytes) has one");
	if (ea->max_games && ea->synth.games > ea->max_games)
		USAGE("--games %u is more than --max-games %u", ea->synth.games, ea->max_games);
	/* An agent reads its seats' records through a reader slot: agents
	 * past the slots would attach and never act. */
	uint32_t readers = ea->spec.max_readers ? ea->spec.max_readers : 64;
	if (ea->max_agents > readers)
		USAGE("--max-agents %u is more than --max-readers %u (each agent reads through a "
		      "reader slot): raise --max-readers",
		      ea->max_agents, readers);
	if (ea->n_tables && ea->record_bytes)
		USAGE("--table is for engines of games; the synthetic writer (--record-bytes) "
		      "hosts no tables");
	if (ea->producers && ea->record_bytes)
		USAGE("--producers is for engines of games (or of none: --games 0); the synthetic "
		      "writer (--record-bytes) takes no producers");
	return 0;
}

/* Parses argv into ea. 0, an exit code, or -1 after --help. */
static int parse_args(int argc, char **argv, struct engine_args *ea)
{
	const char *v;
	int i = 1, k, rc = merge_config(&argc, &argv);

	if (rc)
		return rc;
	while (i < argc) {
		k = xr_next_opt("engine", argc, argv, &i, engine_opts, &v);
		if (k == -2)
			return XR_EXIT_USAGE;
		if (k == -1)
			USAGE("unexpected argument '%s'; see `xring engine --help`", v);
		if (k == O_HELP) {
			fputs(engine_help, stdout);
			return -1;
		}
		rc = parse_arena_opt(k, v, ea);
		if (rc == 1)
			rc = parse_game_opt(k, v, ea);
		if (rc == 1)
			rc = parse_writer_opt(k, v, ea);
		if (rc)
			return rc;
	}
	ea->ss.n_rings = ea->shards + ea->producers;
	ea->ss.producers = ea->producers;
	return check_args(ea);
}

/* The first stream's board: --board's, or the game's default, which is
 * the observation's (C, H, W) (dim 1: H, 2: W). */
static uint32_t board_of(const struct engine_args *ea, int dim)
{
	uint32_t b = dim == 1 ? ea->gcfg.board_h : ea->gcfg.board_w;

	return b ? b : (uint32_t)ea->ss.shape.obs_dims[dim];
}

/* Stream 1 + i, of --shape i: its game (grid, or the --game plugin by
 * name), record shape and template. 0 or an exit code. */
static int make_more_shape(struct engine_args *ea, const xr_game_vtable *vt, uint32_t i)
{
	const struct shape_arg *sa = &ea->shapes[i];
	xr_game_config cfg = {.board_h = sa->h, .board_w = sa->w, .players = sa->players,
			      .seed = 1, .params = ea->gcfg.params};
	xr_stream_spec *ss = &ea->streams[1 + i];
	int rc;

	if (sa->game && !strcmp(sa->game, "grid"))
		vt = xr_game_builtin_grid();
	else if (sa->game && strcmp(sa->game, vt->name))
		USAGE("--shape %s: game '%s' is neither grid nor --game's (%s)", sa->stream, sa->game,
		      vt->name);
	for (uint32_t j = 0; j < 1 + i; j++) {
		const char *other = ea->streams[j].name ? ea->streams[j].name : XR_DEFAULT_STREAM;
		bool same_shape = vt == ea->vts[j] && sa->players == (j ? ea->shapes[j - 1].players
									  : ea->gcfg.players) &&
				  sa->dtype == (j ? ea->shapes[j - 1].dtype : ea->obs_dtype) &&
				  sa->h == (j ? ea->shapes[j - 1].h : board_of(ea, 1)) &&
				  sa->w == (j ? ea->shapes[j - 1].w : board_of(ea, 2));
		if (!strcmp(sa->stream, other))
			USAGE("--shape %s: a stream of that name is declared already", sa->stream);
		if (same_shape)
			USAGE("--shape %s: stream %s carries that shape already (a game joins the "
			      "stream of its shape: one stream per shape)",
			      sa->stream, other);
	}
	*ss = ea->ss;
	ss->name = sa->stream;
	rc = xr_shard_shape(vt, &cfg, sa->dtype, &ss->shape);
	if (rc < 0)
		USAGE("--shape %s: game '%s' refuses a %ux%u board with %u players: %s", sa->stream,
		      vt->name, sa->h, sa->w, sa->players, xr_strerror(rc));
	if (xr_exp_template_init(&ea->templates[1 + i], &ss->shape) < 0)
		USAGE("--shape %s gives no valid record layout (observation too large?)", sa->stream);
	if ((uint64_t)ea->templates[1 + i].size * 2 + 64 > ss->ring_bytes)
		USAGE("--ring-size must hold at least two %u-byte records of --shape %s; raise it",
		      ea->templates[1 + i].size, sa->stream);
	ea->vts[1 + i] = vt;
	return 0;
}

/* The record shape and its template: the synthetic writer's, or the
 * game's (*vt). 0 or an exit code. */
static int make_shape(struct engine_args *ea, const xr_game_vtable **vt, xr_exp_template *t)
{
	int rc;

	*vt = NULL;
	if (ea->record_bytes) {
		if (ea->n_shapes)
			USAGE("--shape is for games; the synthetic writer (--record-bytes) writes one "
			      "stream");
		ea->ss.shape = (xr_exp_shape){.obs_dtype = XR_DTYPE_U8, .obs_ndim = 1,
					      .obs_dims = {(int32_t)ea->record_bytes},
					      .mask_len = 16};
	} else {
		if (!strcmp(ea->game, "grid") || !strcmp(ea->game, "builtin")) {
			*vt = xr_game_builtin_grid();
		} else if ((rc = xr_game_load(ea->game, vt)) < 0) {
			xr_cli_err("engine", "--game %s: %s", ea->game,
				   xr_game_last_note()[0] ? xr_game_last_note() : xr_strerror(rc));
			return XR_EXIT_FAIL;
		}
		rc = xr_shard_shape(*vt, &ea->gcfg, ea->obs_dtype, &ea->ss.shape);
		if (rc < 0) {
			xr_cli_err("engine", "game '%s' refuses this configuration (--board, --players, "
					     "--turn-limit): %s",
				   (*vt)->name, xr_strerror(rc));
			return XR_EXIT_USAGE;
		}
	}
	if (xr_exp_template_init(t, &ea->ss.shape) < 0)
		USAGE("these shapes give no valid record layout (observation too large?)");
	if ((uint64_t)t->size * 2 + 64 > ea->ss.ring_bytes)
		USAGE("--ring-size must hold at least two %u-byte records; raise it", t->size);
	ea->streams[0] = ea->ss;
	ea->templates[0] = *t;
	ea->vts[0] = *vt;
	for (uint32_t i = 0; i < ea->n_shapes; i++)
		if ((rc = make_more_shape(ea, *vt, i)))
			return rc;
	uint32_t per = ea->shards + ea->producers;
	if ((1 + ea->n_shapes) * per > XR_MAX_RINGS && !ea->producers)
		USAGE("%u streams x %u shards make %u rings; an arena holds at most %d: fewer --shape "
		      "or --shards",
		      1 + ea->n_shapes, ea->shards, (1 + ea->n_shapes) * per, XR_MAX_RINGS);
	if ((1 + ea->n_shapes) * per > XR_MAX_RINGS)
		USAGE("%u streams x (%u shards + %u producer slots) make %u rings; an arena holds at "
		      "most %d: fewer --shape, --shards or --producers",
		      1 + ea->n_shapes, ea->shards, ea->producers, (1 + ea->n_shapes) * per,
		      XR_MAX_RINGS);
	ea->spec.streams = ea->streams;
	ea->spec.n_streams = 1 + ea->n_shapes;
	return 0;
}

/* The game directory's options: the one shape this engine's stream
 * carries (a board left to the game's default is the observation's
 * (C, H, W)), the limits, the games at start. */
static void games_opts(const struct engine_args *ea, struct xr_gdir_shape *shapes,
		       struct xr_gdir_table *gtables, struct xr_gdir_opts *go)
{
	uint32_t max_games = ea->max_games;

	if (!max_games)
		max_games = ea->synth.games > 100000 ? ea->synth.games : 100000;
	for (uint32_t i = 0; i <= ea->n_shapes; i++) {
		const xr_stream_spec *ss = &ea->streams[i];
		const struct shape_arg *sa = i ? &ea->shapes[i - 1] : NULL;
		shapes[i] = (struct xr_gdir_shape){
			.vt = ea->vts[i],
			.board_h = sa ? sa->h : board_of(ea, 1),
			.board_w = sa ? sa->w : board_of(ea, 2),
			.players = sa ? sa->players : ea->gcfg.players,
			.obs_dtype = sa ? sa->dtype : ea->obs_dtype,
			.stream = i,
			.stream_name = ss->name ? ss->name : XR_DEFAULT_STREAM,
		};
	}
	*go = (struct xr_gdir_opts){
		.shards = ea->shards,
		.max_games = max_games,
		.max_games_per_uid = ea->max_games_per_uid,
		.creates_per_uid = ea->creates_per_uid,
		.shapes = shapes,
		.n_shapes = 1 + ea->n_shapes,
		.params = ea->gcfg.params,
		.lease_timeout_ns = lease_ns(ea->lease_timeout_s),
		.start = ea->synth.games,
		.start_seed = ea->gcfg.seed,
		.start_turn_limit = ea->gcfg.turn_limit,
		.observe_subscribed = ea->observe_subscribed,
		.max_agents = ea->max_agents,
		.fallback = ea->fallback,
		.action_timeout_ns = (uint64_t)(ea->action_timeout_ms * 1e6),
		.tick_ns = (uint64_t)(ea->tick_ms * 1e6),
		.input_delay = ea->input_delay,
		.max_readers = ea->spec.max_readers ? ea->spec.max_readers : 64, /* xr_arena_create()'s default */
		.high_watermark = ea->high_wm,
		.low_watermark = ea->low_wm,
		.tables = gtables,
		.n_tables = ea->n_tables,
	};
	for (uint32_t i = 0; i < ea->n_tables; i++)
		gtables[i] = (struct xr_gdir_table){.name = ea->tables[i].name,
						    .opts = ea->tables[i].opts,
						    .restore = ea->tables[i].restore};
}

/* The host: arena and control server. 0 or an exit code. */
static int make_host(struct engine_args *ea, const struct xr_gdir_opts *go, struct xr_host **h)
{
	char why[512]; /* as long as the server's note */
	int rc = xr_host_create(&ea->spec, &ea->so, go, h, why, sizeof(why));

	if (rc == 0)
		return 0;
	if (!strncmp(why, "--table ", 8))
		xr_cli_err("engine", "%s", why); /* a declared table (or its restore) */
	else if (rc == -EEXIST)
		xr_cli_err("engine", "%s; pick another --name",
			   why[0] ? why : "an engine of that name is already running");
	else if (rc == XR_ENOHUGE)
		xr_cli_err("engine", "--hugepages require: %s", why[0] ? why : xr_strerror(rc));
	else if (rc == -EINVAL && strncmp(why, "NUMA node", 9) == 0)
		/* -EINVAL with a reason is also a relative XRING_RUN_DIR. */
		xr_cli_err("engine", "%s; check --numa-node", why);
	else if (rc == -EADDRINUSE)
		xr_cli_err("engine", "cannot serve the control socket: %s; pick another --name", why);
	else if (why[0])
		xr_cli_err("engine", "cannot start engine '%s': %s", ea->spec.name, why);
	else
		xr_cli_err("engine", "cannot start engine '%s': %s", ea->spec.name, xr_strerror(rc));
	return XR_EXIT_FAIL;
}

static void say_started(const struct engine_args *ea, struct xr_host *h,
			const xr_exp_template *t, const xr_game_vtable *vt)
{
	xr_arena_facts f;

	xr_arena_facts_get(xr_host_arena(h), &f);
	printf("xring engine '%s': %s %s, %llu KiB pages, node %d, %llu MiB; stream %s %s, "
	       "%u-byte records\n",
	       ea->spec.name, xr_backing_name(f.backing), f.path,
	       (unsigned long long)(f.page_size >> 10), f.numa_node,
	       (unsigned long long)(f.total_size >> 20), ea->ss.name ? ea->ss.name : XR_DEFAULT_STREAM,
	       xr_policy_name(ea->ss.policy), t->size);
	if (f.note[0])
		printf("xring engine: note: %s\n", f.note);
	printf("xring engine: control socket %s\n", xr_host_socket(h));
	if (vt)
		printf("xring engine: %u %s games on %u shard(s), %u players, obs %s[%d,%d,%d], %u "
		       "actions\n",
		       ea->synth.games, vt->name, ea->shards, ea->gcfg.players,
		       xr_dtype_name(ea->obs_dtype), ea->ss.shape.obs_dims[0], ea->ss.shape.obs_dims[1],
		       ea->ss.shape.obs_dims[2], ea->ss.shape.mask_len);
	for (uint32_t i = 0; i < ea->n_shapes; i++) {
		const xr_exp_shape *sh = &ea->streams[1 + i].shape;
		printf("xring engine: stream %s: %s games %ux%u, %u players, obs %s[%d,%d,%d], "
		       "%u-byte records (created at runtime)\n",
		       ea->shapes[i].stream, ea->vts[1 + i]->name, ea->shapes[i].h, ea->shapes[i].w,
		       ea->shapes[i].players, xr_dtype_name(ea->shapes[i].dtype), sh->obs_dims[0],
		       sh->obs_dims[1], sh->obs_dims[2], ea->templates[1 + i].size);
	}
	fflush(stdout);
}

static int run_games(const struct engine_args *ea, struct xr_host *h, const xr_exp_template *t,
		     const xr_game_vtable *vt)
{
	xr_arena_facts f;
	struct xr_shard_result sr;

	xr_arena_facts_get(xr_host_arena(h), &f);
	struct xr_engine_opts eo = {
		.shard = {.vt = vt, .cfg = ea->gcfg, .games = ea->synth.games,
			  .obs_dtype = ea->obs_dtype, .count = ea->synth.count,
			  .tick_ns = (uint64_t)(ea->tick_ms * 1e6), .high_watermark = ea->high_wm,
			  .low_watermark = ea->low_wm,
			  .lease_timeout_ns = lease_ns(ea->lease_timeout_s)},
		.shards = ea->shards,
		.numa_node = f.numa_node,
		.n_more = ea->n_shapes,
	};
	for (uint32_t i = 0; i < ea->n_shapes; i++) {
		eo.more_t[i] = &ea->templates[1 + i];
		eo.more_dtype[i] = ea->shapes[i].dtype;
	}
	int rc = xr_host_run_games(h, t, &eo, &sr);
	if (rc < 0) {
		xr_cli_err("engine", "games failed: %s", xr_strerror(rc));
		return XR_EXIT_FAIL;
	}
	if (!ea->quiet) {
		double s = (double)sr.elapsed_ns / 1e9;
		char lost[96] = "";
		if (sr.finals_lost)
			snprintf(lost, sizeof(lost), " (%llu not written: readers did not read them "
				 "within the 2 s drain)", (unsigned long long)sr.finals_lost);
		printf("xring engine '%s': %llu experiences from %llu game steps, %llu episodes, in "
		       "%.2f s (%.0f/s); dropped %llu, paused for readers %llu times (%.2f s); "
		       "%llu truncated records ended episodes cut short%s\n",
		       ea->spec.name, (unsigned long long)sr.records, (unsigned long long)sr.steps,
		       (unsigned long long)sr.episodes, s, s > 0 ? (double)sr.records / s : 0.0,
		       (unsigned long long)sr.dropped, (unsigned long long)sr.pauses,
		       (double)sr.paused_ns / 1e9, (unsigned long long)sr.finals, lost);
	}
	return 0;
}

static int run_synth(struct engine_args *ea, struct xr_host *h, const xr_exp_template *t)
{
	struct xr_synth_result res;
	int rc = xr_host_run_synth(h, t, &ea->synth, &res);

	if (rc < 0) {
		xr_cli_err("engine", "writer failed: %s", xr_strerror(rc));
		return XR_EXIT_FAIL;
	}
	if (!ea->quiet) {
		double s = (double)res.elapsed_ns / 1e9;
		printf("xring engine '%s': wrote %llu records in %.2f s (%.0f/s), dropped %llu, "
		       "waited for readers %llu times\n",
		       ea->spec.name, (unsigned long long)res.written, s,
		       s > 0 ? (double)res.written / s : 0.0, (unsigned long long)res.dropped,
		       (unsigned long long)res.waits);
	}
	return 0;
}

/* --table: made by the engine before its control socket serves (restored
 * too, with restore=), so no trainer sees one before it is whole; said
 * here. */
static void say_tables(const struct engine_args *ea)
{
	for (uint32_t i = 0; i < ea->n_tables && !ea->quiet; i++) {
		const struct xr_cli_table *ct = &ea->tables[i];
		printf("xring engine: table %s, %u items%s%s%s%s\n", ct->name, ct->opts.capacity,
		       ct->opts.source ? ", fed from " : "", ct->opts.source ? ct->opts.source : "",
		       ct->restore ? ", restored from " : "", ct->restore ? ct->restore : "");
	}
	fflush(stdout);
}

static int engine_main(int argc, char **argv)
{
	struct engine_args ea = {
		.ss = {.policy = XR_POLICY_LOSSLESS, .n_rings = 1, .ring_bytes = 64ull << 20,
		       .kind = XR_RECORD_EXPERIENCE},
		.spec = {.n_streams = 1, .hugepages = XR_HUGEPAGES_PREFER,
			 .numa_node = XR_NUMA_DEFAULT},
		.synth = {.games = 1000},
		.game = "grid",
		.gcfg = {.players = 2, .seed = 1},
		.obs_dtype = XR_DTYPE_U8,
		.shards = 1,
		.high_wm = 0.9,
		.low_wm = 0.5,
		.lease_timeout_s = 10,
	};
	const xr_game_vtable *vt;
	xr_exp_template t;
	struct xr_host *h;
	int rc;

	ea.spec.streams = ea.streams;
	ea.so.allow_uid = ea.allow_uid;
	ea.so.allow_gid = ea.allow_gid;
	rc = parse_args(argc, argv, &ea);
	if (rc)
		return rc < 0 ? 0 : rc;
	rc = make_shape(&ea, &vt, &t);
	if (rc)
		return rc;
	struct xr_gdir_shape shapes[XR_SHARD_STREAMS_MAX];
	struct xr_gdir_table gtables[XR_CLI_TABLES_MAX];
	struct xr_gdir_opts go;
	if (vt)
		games_opts(&ea, shapes, gtables, &go);
	/* The endpoint listens before the control socket answers: whoever
	 * sees the engine up may scrape it. */
	struct xr_metrics *m = NULL;
	char why[256];
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (ea.metrics_addr && xr__metrics_open(ea.metrics_addr, &m, why, sizeof(why)) < 0) {
		xr_cli_err("engine", "--metrics-addr: %s", why);
		return XR_EXIT_FAIL;
	}
	uint16_t port = m ? xr__metrics_port(m) : 0;
	/* The host's threads start with SIGINT and SIGTERM blocked (they
	 * inherit this thread's mask), so that the handler only ever runs
	 * here: never beside the host's destruction below. One that comes
	 * meanwhile waits for the unblocking. */
	sigset_t stops;
	sigemptyset(&stops);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stops, NULL);
	rc = make_host(&ea, vt ? &go : NULL, &h);
	pthread_sigmask(SIG_UNBLOCK, &stops, NULL);
	if (rc) {
		xr__metrics_close(m);
		return rc;
	}
	if (m)
		xr_host_serve_metrics(h, m);
	running_host = h;
	if (stop_asked)
		xr_host_stop(h);
	if (!ea.quiet)
		say_started(&ea, h, &t, vt);
	if (ea.metrics_addr) {
		/* Always said, --quiet or not: a test or a script asking for
		 * port 0 learns the port here. */
		printf("xring engine: metrics at http://%.*s:%u/metrics\n",
		       (int)(strrchr(ea.metrics_addr, ':') - ea.metrics_addr), ea.metrics_addr,
		       (unsigned)port);
		fflush(stdout);
	}
	say_tables(&ea);
	rc = vt ? run_games(&ea, h, &t, vt) : run_synth(&ea, h, &t);
	/* The handler must not reach the host once it is freed: it runs on
	 * this thread only (the host's threads block its signals), and with
	 * them blocked while the pointer goes, either before, on a live host,
	 * or after, on none. */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	running_host = NULL;
	sigprocmask(SIG_SETMASK, &old, NULL);
	xr_host_destroy(h);
	return rc;
}

int xr_cmd_engine(int argc, char **argv)
{
	int rc = engine_main(argc, argv);

	xr_config_free(config_args, config_n);
	free(config_merged);
	return rc;
}
