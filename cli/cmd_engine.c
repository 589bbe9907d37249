/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <numa.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "engine/engine.h"
#include "engine/shard.h"
#include "shm/layout.h"
#include "engine/synthetic.h"
#include "shm/backing.h"
#include "xring/arena.h"
#include "xring/error.h"
#include "xring/writer.h"

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
	"                           = $XRING_RUN_DIR, /run/xring or /tmp/xring\n"
	"games (the default source of records):\n"
	"  --game grid|PATH.so      the built-in grid game, or a game plugin (default: grid)\n"
	"  --games N                concurrent games (default: 1000)\n"
	"  --shards S               writer threads, pinned to the node's CPUs, one ring\n"
	"                           each; games are spread evenly (default: 1)\n"
	"  --board HxW              board size (default: the game's, 20x20 for grid)\n"
	"  --players K              players per game (default: 2)\n"
	"  --seed X                 seed of game 0's first episode (default: 1)\n"
	"  --turn-limit T           turns before an episode is truncated (default: the game's)\n"
	"  --obs-dtype u8|f32       observation element type (default: u8)\n"
	"  --high-watermark F       lossless: pause the games past this fraction of the ring\n"
	"                           unread (default: 0.9; 0 = only when full)\n"
	"  --low-watermark F        ...and resume them below this fraction (default: 0.5)\n"
	"  --tick-ms T              each game takes a turn every T ms (timer wheel, io_uring);\n"
	"                           0 = as fast as the ring allows (default: 0)\n"
	"  --count N                records to write, 0 = forever (default: 0)\n"
	"synthetic writer instead of games (records whose bytes a reader can check):\n"
	"  --record-bytes N         observation bytes per record; selects the synthetic writer\n"
	"  --rate N                 records per second, 0 = as fast as possible (default: 0)\n"
	"  --quiet                  print nothing but errors\n"
	"  --config FILE            options from a YAML file, one key per long option without\n"
	"                           the dashes (games: 10000); flags given here win\n";

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

enum {
	O_NAME, O_STREAM, O_RING, O_POLICY, O_HUGE, O_NUMA, O_READERS, O_BYTES, O_COUNT,
	O_RATE, O_GAMES, O_QUIET, O_HELP, O_GAME, O_BOARD, O_PLAYERS, O_SEED, O_TURNS, O_DTYPE, O_TICK, O_SHARDS, O_CONFIG, O_HIGH, O_LOW,
	O_ALLOW_UID, O_ALLOW_GID,
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
	[O_ALLOW_UID] = {"--allow-uid", true},
	[O_ALLOW_GID] = {"--allow-gid", true},
	{NULL, false},
};

#define XR_ALLOW_MAX 32

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

int xr_cmd_engine(int argc, char **argv)
{
	uint32_t allow_uid[XR_ALLOW_MAX], allow_gid[XR_ALLOW_MAX];
	xr_control_opts co = {.allow_uid = allow_uid, .allow_gid = allow_gid};
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSLESS, .n_rings = 1,
			     .ring_bytes = 64ull << 20, .kind = XR_RECORD_EXPERIENCE};
	xr_arena_spec spec = {.streams = &ss, .n_streams = 1, .hugepages = XR_HUGEPAGES_PREFER,
			      .numa_node = XR_NUMA_DEFAULT};
	struct xr_synth_opts so = {.games = 1000, .stop = &stop_flag};
	uint64_t record_bytes = 0;
	bool quiet = false;
	const char *game = "grid";
	xr_game_config gcfg = {.players = 2, .seed = 1};
	xr_dtype obs_dtype = XR_DTYPE_U8;
	double tick_ms = 0;
	uint32_t shards = 1;
	double high_wm = 0.9, low_wm = 0.5;
	const char *v;
	long n;
	int i = 1, k;

	/* A config file's options go before the command line's, so that the
	 * command line wins. */
	char **args = NULL;
	int nargs = 0;
	for (int j = 1; j < argc; j++) {
		const char *path = NULL;
		if (!strcmp(argv[j], "--config") && j + 1 < argc)
			path = argv[j + 1];
		else if (!strncmp(argv[j], "--config=", 9))
			path = argv[j] + 9;
		if (!path)
			continue;
		int crc = xr_config_load("engine", path, engine_opts, &args, &nargs);
		if (crc) {
			xr_config_free(args, nargs);
			return crc;
		}
	}
	if (args) {
		char **merged = calloc((size_t)(argc + nargs + 1), sizeof(char *));
		if (!merged) {
			xr_config_free(args, nargs);
			xr_cli_err("engine", "out of memory");
			return XR_EXIT_FAIL;
		}
		merged[0] = argv[0];
		memcpy(merged + 1, args, (size_t)nargs * sizeof(char *));
		memcpy(merged + 1 + nargs, argv + 1, (size_t)(argc - 1) * sizeof(char *));
		argv = merged; /* lives until exit: the strings back spec fields */
		argc += nargs;
	}

	while (i < argc) {
		k = xr_next_opt("engine", argc, argv, &i, engine_opts, &v);
		switch (k) {
		case -2:
			return XR_EXIT_USAGE;
		case -1:
			xr_cli_err("engine", "unexpected argument '%s'; see `xring engine --help`", v);
			return XR_EXIT_USAGE;
		case O_HELP:
			fputs(engine_help, stdout);
			return 0;
		case O_NAME: spec.name = v; break;
		case O_STREAM: ss.name = v; break;
		case O_RING:
			if (!xr_parse_size(v, &ss.ring_bytes) || ss.ring_bytes < 4096 ||
			    ss.ring_bytes > (1ull << 36)) {
				xr_cli_err("engine", "--ring-size '%s' is not a size between 4K and 64G", v);
				return XR_EXIT_USAGE;
			}
			break;
		case O_POLICY:
			if (!strcmp(v, "lossless")) ss.policy = XR_POLICY_LOSSLESS;
			else if (!strcmp(v, "lossy")) ss.policy = XR_POLICY_LOSSY;
			else {
				xr_cli_err("engine", "--policy must be lossless or lossy, not '%s'", v);
				return XR_EXIT_USAGE;
			}
			break;
		case O_HUGE:
			if (!strcmp(v, "prefer")) spec.hugepages = XR_HUGEPAGES_PREFER;
			else if (!strcmp(v, "require")) spec.hugepages = XR_HUGEPAGES_REQUIRE;
			else if (!strcmp(v, "off")) spec.hugepages = XR_HUGEPAGES_OFF;
			else {
				xr_cli_err("engine", "--hugepages must be require, prefer or off, not '%s'", v);
				return XR_EXIT_USAGE;
			}
			break;
		case O_NUMA:
			if (!xr_parse_int(v, 0, 1023, &n)) {
				xr_cli_err("engine", "--numa-node '%s' is not a node number", v);
				return XR_EXIT_USAGE;
			}
			spec.numa_node = (int)n;
			break;
		case O_READERS:
			if (!xr_parse_int(v, 1, 256, &n)) {
				xr_cli_err("engine", "--max-readers must be 1..256, not '%s'", v);
				return XR_EXIT_USAGE;
			}
			spec.max_readers = (uint32_t)n;
			break;
		case O_BYTES:
			if (!xr_parse_size(v, &record_bytes) || record_bytes < 1 ||
			    record_bytes > (256ull << 20)) {
				xr_cli_err("engine", "--record-bytes must be 1..256M, not '%s'", v);
				return XR_EXIT_USAGE;
			}
			break;
		case O_COUNT:
			if (!xr_parse_count(v, &so.count)) {
				xr_cli_err("engine", "--count '%s' is not a count", v);
				return XR_EXIT_USAGE;
			}
			break;
		case O_RATE:
			if (!xr_parse_count(v, &so.rate)) {
				xr_cli_err("engine", "--rate '%s' is not records per second", v);
				return XR_EXIT_USAGE;
			}
			break;
		case O_GAMES:
			if (!xr_parse_int(v, 1, 100000000, &n)) {
				xr_cli_err("engine", "--games must be 1..100000000, not '%s'", v);
				return XR_EXIT_USAGE;
			}
			so.games = (uint32_t)n;
			break;
		case O_QUIET: quiet = true; break;
		case O_GAME: game = v; break;
		case O_BOARD: {
			unsigned h, w2;
			char extra;
			if (sscanf(v, "%ux%u%c", &h, &w2, &extra) != 2 || h < 1 || w2 < 1 || h > 4096 ||
			    w2 > 4096) {
				xr_cli_err("engine", "--board '%s' is not HxW (e.g. 20x20)", v);
				return XR_EXIT_USAGE;
			}
			gcfg.board_h = h;
			gcfg.board_w = w2;
			break;
		}
		case O_PLAYERS:
			if (!xr_parse_int(v, 1, XR_GAME_MAX_PLAYERS, &n)) {
				xr_cli_err("engine", "--players must be 1..%u, not '%s'", XR_GAME_MAX_PLAYERS, v);
				return XR_EXIT_USAGE;
			}
			gcfg.players = (uint32_t)n;
			break;
		case O_SEED:
			if (!xr_parse_count(v, &gcfg.seed)) {
				xr_cli_err("engine", "--seed '%s' is not a number", v);
				return XR_EXIT_USAGE;
			}
			break;
		case O_TURNS:
			if (!xr_parse_int(v, 1, 100000000, &n)) {
				xr_cli_err("engine", "--turn-limit must be 1..100000000, not '%s'", v);
				return XR_EXIT_USAGE;
			}
			gcfg.turn_limit = (uint32_t)n;
			break;
		case O_CONFIG: break; /* read above */
		case O_ALLOW_UID:
		case O_ALLOW_GID:
			if (!parse_ids(v, k == O_ALLOW_GID, k == O_ALLOW_GID ? allow_gid : allow_uid,
				       k == O_ALLOW_GID ? &co.n_allow_gid : &co.n_allow_uid)) {
				xr_cli_err("engine", "%s '%s': not a comma-separated list of known %s "
					   "or numeric ids (at most %d)",
					   engine_opts[k].name, v, k == O_ALLOW_GID ? "groups" : "users",
					   XR_ALLOW_MAX);
				return XR_EXIT_USAGE;
			}
			break;
		case O_HIGH:
		case O_LOW: {
			double *dst = k == O_HIGH ? &high_wm : &low_wm;
			if (!xr_parse_seconds(v, dst) || *dst > 1) {
				xr_cli_err("engine", "%s must be a fraction between 0 and 1, not '%s'",
					   engine_opts[k].name, v);
				return XR_EXIT_USAGE;
			}
			break;
		}
		case O_SHARDS:
			if (!xr_parse_int(v, 1, XR_MAX_RINGS, &n)) {
				xr_cli_err("engine", "--shards must be 1..%d, not '%s'", XR_MAX_RINGS, v);
				return XR_EXIT_USAGE;
			}
			shards = (uint32_t)n;
			break;
		case O_TICK:
			if (!xr_parse_seconds(v, &tick_ms) || tick_ms > 3600000) {
				xr_cli_err("engine", "--tick-ms '%s' is not a number of milliseconds", v);
				return XR_EXIT_USAGE;
			}
			break;
		case O_DTYPE:
			if (!strcmp(v, "u8")) obs_dtype = XR_DTYPE_U8;
			else if (!strcmp(v, "f32")) obs_dtype = XR_DTYPE_F32;
			else {
				xr_cli_err("engine", "--obs-dtype must be u8 or f32, not '%s'", v);
				return XR_EXIT_USAGE;
			}
			break;
		}
	}
	if (!spec.name) {
		xr_cli_err("engine", "--name is required; see `xring engine --help`");
		return XR_EXIT_USAGE;
	}
	if (xr__check_name(spec.name, XR_NAME_MAX) < 0) {
		xr_cli_err("engine", "--name '%s': use 1-%d characters of A-Z a-z 0-9 _ . - "
			   "(not starting with '.')", spec.name, XR_NAME_MAX);
		return XR_EXIT_USAGE;
	}
	if (ss.name && xr__check_name(ss.name, XR_STREAM_NAME_MAX) < 0) {
		xr_cli_err("engine", "--stream '%s': use 1-%d characters of A-Z a-z 0-9 _ . - "
			   "(not starting with '.')", ss.name, XR_STREAM_NAME_MAX);
		return XR_EXIT_USAGE;
	}

	if (high_wm > 0 && low_wm >= high_wm) {
		xr_cli_err("engine", "--low-watermark %.2f must be below --high-watermark %.2f", low_wm,
			   high_wm);
		return XR_EXIT_USAGE;
	}
	if (shards > 1 && record_bytes) {
		xr_cli_err("engine", "--shards is for games; the synthetic writer (--record-bytes) has one");
		return XR_EXIT_USAGE;
	}
	if (shards > so.games) {
		xr_cli_err("engine", "--shards %u needs at least as many --games", shards);
		return XR_EXIT_USAGE;
	}
	ss.n_rings = shards;
	xr_exp_template t;
	const xr_game_vtable *vt = NULL;
	int rc;
	if (record_bytes) {
		ss.shape = (xr_exp_shape){.obs_dtype = XR_DTYPE_U8, .obs_ndim = 1,
					  .obs_dims = {(int32_t)record_bytes}, .mask_len = 16};
	} else {
		if (!strcmp(game, "grid") || !strcmp(game, "builtin")) {
			vt = xr_game_builtin_grid();
		} else if ((rc = xr_game_load(game, &vt)) < 0) {
			xr_cli_err("engine", "--game %s: %s", game,
				   xr_game_last_note()[0] ? xr_game_last_note() : xr_strerror(rc));
			return XR_EXIT_FAIL;
		}
		rc = xr_shard_shape(vt, &gcfg, obs_dtype, &ss.shape);
		if (rc < 0) {
			xr_cli_err("engine", "game '%s' refuses this configuration (--board, --players, "
				   "--turn-limit): %s", vt->name, xr_strerror(rc));
			return XR_EXIT_USAGE;
		}
	}
	rc = xr_exp_template_init(&t, &ss.shape);
	if (rc < 0) {
		xr_cli_err("engine", "these shapes give no valid record layout (observation too large?)");
		return XR_EXIT_USAGE;
	}
	if ((uint64_t)t.size * 2 + 64 > ss.ring_bytes) {
		xr_cli_err("engine", "--ring-size must hold at least two %u-byte records; raise it",
			   t.size);
		return XR_EXIT_USAGE;
	}

	xr_arena *a;
	rc = xr_arena_create(&spec, &a);
	if (rc < 0) {
		const char *note = xr_arena_last_note();
		if (rc == -EEXIST)
			xr_cli_err("engine", "%s; pick another --name",
				   note[0] ? note : "an engine of that name is already running");
		else if (rc == XR_ENOHUGE)
			xr_cli_err("engine", "--hugepages require: %s", note[0] ? note : xr_strerror(rc));
		else if (rc == -EINVAL && note[0])
			xr_cli_err("engine", "%s; check --numa-node", note);
		else
			xr_cli_err("engine", "cannot create arena '%s': %s%s%s", spec.name,
				   xr_strerror(rc), note[0] ? " — " : "", note);
		return XR_EXIT_FAIL;
	}

	rc = xr_arena_serve(a, &co);
	if (rc < 0) {
		xr_cli_err("engine", "cannot serve the control socket: %s; %s", xr_strerror(rc),
			   rc == -EADDRINUSE ? "another engine serves that name; pick another --name"
					     : "check XRING_RUN_DIR and the directory's permissions");
		xr_arena_destroy(a);
		return XR_EXIT_FAIL;
	}

	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	xr_arena_facts f;
	xr_arena_facts_get(a, &f);
	if (!quiet) {
		printf("xring engine '%s': %s %s, %llu KiB pages, node %d, %llu MiB; stream %s %s, "
		       "%u-byte records\n",
		       spec.name, xr_backing_name(f.backing), f.path,
		       (unsigned long long)(f.page_size >> 10), f.numa_node,
		       (unsigned long long)(f.total_size >> 20), ss.name ? ss.name : XR_DEFAULT_STREAM,
		       ss.policy == XR_POLICY_LOSSY ? "lossy" : "lossless", t.size);
		if (f.note[0])
			printf("xring engine: note: %s\n", f.note);
		printf("xring engine: control socket %s\n", xr_arena_control_path(a));
		fflush(stdout);
	}

	/* The writer runs where its memory is: pin to the arena's node. */
	if (f.numa_node >= 0 && numa_run_on_node(f.numa_node) < 0 && !quiet)
		printf("xring engine: note: could not pin the writer to node %d\n", f.numa_node);

	xr_writer *w;
	xr_arena_writer(a, 0, 0, &w);
	struct xr_synth_result res;
	if (vt) {
		struct xr_engine_opts eo = {
			.shard = {.vt = vt, .cfg = gcfg, .games = so.games, .obs_dtype = obs_dtype,
				  .count = so.count, .stop = &stop_flag,
				  .tick_ns = (uint64_t)(tick_ms * 1e6),
				  .high_watermark = high_wm, .low_watermark = low_wm},
			.shards = shards,
			.numa_node = f.numa_node,
		};
		struct xr_shard_result sr;
		if (!quiet) {
			printf("xring engine: %u %s games on %u shard(s), %u players, obs %s[%d,%d,%d], "
			       "%u actions\n",
			       so.games, vt->name, shards, gcfg.players, xr_dtype_name(obs_dtype),
			       ss.shape.obs_dims[0], ss.shape.obs_dims[1], ss.shape.obs_dims[2],
			       ss.shape.mask_len);
			fflush(stdout);
		}
		rc = xr_engine_run(a, &t, &eo, &sr);
		xr_arena_destroy(a);
		if (rc < 0) {
			xr_cli_err("engine", "games failed: %s", xr_strerror(rc));
			return XR_EXIT_FAIL;
		}
		if (!quiet) {
			double s = (double)sr.elapsed_ns / 1e9;
			printf("xring engine '%s': %llu experiences from %llu game steps, %llu episodes, in "
			       "%.2f s (%.0f/s); dropped %llu, ring full %llu times, paused %llu times "
			       "(%.2f s)\n",
			       spec.name, (unsigned long long)sr.records, (unsigned long long)sr.steps,
			       (unsigned long long)sr.episodes, s, s > 0 ? (double)sr.records / s : 0.0,
			       (unsigned long long)sr.dropped, (unsigned long long)sr.waits,
			       (unsigned long long)sr.pauses, (double)sr.paused_ns / 1e9);
		}
		return 0;
	}
	rc = xr_synth_run(a, w, &t, &so, &res);
	xr_arena_destroy(a);
	if (rc < 0) {
		xr_cli_err("engine", "writer failed: %s", xr_strerror(rc));
		return XR_EXIT_FAIL;
	}
	if (!quiet) {
		double s = (double)res.elapsed_ns / 1e9;
		printf("xring engine '%s': wrote %llu records in %.2f s (%.0f/s), dropped %llu, "
		       "ring full %llu times\n",
		       spec.name, (unsigned long long)res.written, s,
		       s > 0 ? (double)res.written / s : 0.0, (unsigned long long)res.dropped,
		       (unsigned long long)res.waits);
	}
	return 0;
}
