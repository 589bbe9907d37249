/* SPDX-License-Identifier: MIT */
/*
 * `xring games NAME create|destroy|reset|list`: an engine's games at
 * runtime, through its control socket (xring/games.h). Games made here are
 * not owned: this process ends at once, and they live on until destroyed
 * or the engine stops.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "control/client.h"
#include "xring/error.h"
#include "xring/games.h"
#include "xring/reader.h"

static const char games_help[] =
	"usage: xring games NAME create N [options]\n"
	"       xring games NAME destroy ID[,ID|FIRST-LAST]...\n"
	"       xring games NAME reset ID SEED\n"
	"       xring games NAME list [--json]\n"
	"\n"
	"Creates, destroys, resets and lists the games of the running engine NAME.\n"
	"A created game joins the stream of its shape; its records carry its id.\n"
	"Games created here live until destroyed or the engine stops. Destroying\n"
	"or resetting a game ends its episode in flight with a truncated record.\n"
	"\n"
	"create options (left out: whatever the engine's streams carry):\n"
	"  --game NAME              grid, or the engine's plugin\n"
	"  --board HxW              board size\n"
	"  --players K              players per game\n"
	"  --obs-dtype u8|f32       observation element type\n"
	"  --turn-limit T           turns before an episode is truncated (default: the\n"
	"                           game's)\n"
	"  --seed X                 game j is seeded X + j (default: 0)\n"
	"all:\n"
	"  --engine-uid UID         also trust an engine run by this uid\n"
	"  --json                   list: one JSON object\n";

enum { G_GAME, G_BOARD, G_PLAYERS, G_DTYPE, G_TURNS, G_SEED, G_UID, G_JSON, G_HELP };

static const struct xr_opt games_opts[] = {
	[G_GAME] = {"--game", true},       [G_BOARD] = {"--board", true},
	[G_PLAYERS] = {"--players", true}, [G_DTYPE] = {"--obs-dtype", true},
	[G_TURNS] = {"--turn-limit", true}, [G_SEED] = {"--seed", true},
	[G_UID] = {"--engine-uid", true},  [G_JSON] = {"--json", false},
	[G_HELP] = {"--help", false},      {NULL, false},
};

#define XR_GAMES_ARGS_MAX 8

struct games_args {
	const char *pos[XR_GAMES_ARGS_MAX]; /* NAME, verb, its arguments */
	int n_pos;
	xr_game_spec spec;
	xr_games_opts go;
	bool json;
};

#define USAGE(...) do { xr_cli_err("games", __VA_ARGS__); return XR_EXIT_USAGE; } while (0)

static int parse_opt(int k, const char *v, struct games_args *ga)
{
	long n;
	uint64_t u;

	switch (k) {
	case G_GAME: ga->spec.game = v; return 0;
	case G_BOARD:
		if (!xr_parse_board(v, &ga->spec.board_h, &ga->spec.board_w))
			USAGE("--board '%s' is not HxW (e.g. 20x20)", v);
		return 0;
	case G_PLAYERS:
		if (!xr_parse_int(v, 1, 8, &n))
			USAGE("--players must be 1..8, not '%s'", v);
		ga->spec.players = (uint32_t)n;
		return 0;
	case G_DTYPE:
		if (xr_dtype_parse(v) != XR_DTYPE_U8 && xr_dtype_parse(v) != XR_DTYPE_F32)
			USAGE("--obs-dtype must be u8 or f32, not '%s'", v);
		ga->spec.obs_dtype = v;
		return 0;
	case G_TURNS:
		if (!xr_parse_int(v, 1, 100000000, &n))
			USAGE("--turn-limit must be 1..100000000, not '%s'", v);
		ga->spec.turn_limit = (uint32_t)n;
		return 0;
	case G_SEED:
		if (!xr_parse_count(v, &ga->spec.seed))
			USAGE("--seed '%s' is not a number", v);
		return 0;
	case G_UID:
		if (!xr_parse_count(v, &u) || u >= UINT32_MAX)
			USAGE("--engine-uid '%s' is not a uid", v);
		ga->go.engine_uid = (uint32_t)u;
		return 0;
	case G_JSON: ga->json = true; return 0;
	}
	return 1;
}

/* 0, an exit code, or -1 after --help. */
static int parse_args(int argc, char **argv, struct games_args *ga)
{
	const char *v;
	int i = 1;

	while (i < argc) {
		int k = xr_next_opt("games", argc, argv, &i, games_opts, &v);
		if (k == -2)
			return XR_EXIT_USAGE;
		if (k == G_HELP) {
			fputs(games_help, stdout);
			return -1;
		}
		if (k == -1) {
			if (ga->n_pos == XR_GAMES_ARGS_MAX)
				USAGE("too many arguments; see `xring games --help`");
			ga->pos[ga->n_pos++] = v;
			continue;
		}
		int rc = parse_opt(k, v, ga);
		if (rc)
			return rc;
	}
	if (ga->n_pos < 2)
		USAGE("say which engine and what to do: xring games NAME create|destroy|reset|list");
	return 0;
}

/* Says what went wrong talking to the engine, and what to do. */
static int fail(const char *what, const char *name, int rc)
{
	const char *why = xr_last_reason();

	if (rc == -ENOENT && strstr(why, "no engine"))
		xr_cli_err("games", "%s; start it with `xring engine --name %s`", why, name);
	else
		xr_cli_err("games", "%s: %s", what, why[0] ? why : xr_strerror(rc));
	return XR_EXIT_FAIL;
}

/* Creates N games, as many requests as it takes; a rate refusal is waited
 * out (as it says), up to 60 s in all: a command asked for N games. */
static int do_create(xr_games *c, struct games_args *ga)
{
	long n;
	uint32_t made = 0;
	uint64_t waited = 0;

	xr_parse_int(ga->pos[2], 1, 1000000, &n); /* checked in check_args */
	uint32_t *ids = malloc((size_t)n * sizeof(*ids));
	if (!ids) {
		xr_cli_err("games", "out of memory");
		return XR_EXIT_FAIL;
	}
	xr_game_spec spec = ga->spec;
	while (made < (uint32_t)n) {
		int rc = xr_games_create(c, &spec, (uint32_t)n - made, ids + made);
		if (rc > 0) {
			made += (uint32_t)rc;
			spec.seed += (uint32_t)rc;
			continue;
		}
		uint64_t wait = rc == -EAGAIN ? xr__reason_retry_ns() : 0;
		if (!wait || waited + wait > 60000000000ull) {
			if (made)
				printf("created %u game%s: ids %u..%u\n", made, made == 1 ? "" : "s",
				       ids[0], ids[made - 1]);
			free(ids);
			return fail(made ? "created fewer than asked" : "cannot create games",
				    ga->pos[0], rc);
		}
		struct timespec ts = {(time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull)};
		nanosleep(&ts, NULL); /* what the engine said to wait */
		waited += wait;
	}
	printf("created %u game%s: ids %u..%u\n", made, made == 1 ? "" : "s", ids[0],
	       ids[made - 1]);
	free(ids);
	return 0;
}

#define XR_GAMES_IDS_MAX 10000000u /* ids in one command */

/* "3,5,10-20" into *ids (grown as needed), appended to the *n there are.
 * 0, -EINVAL (not a list of ids), -E2BIG (more than XR_GAMES_IDS_MAX in
 * all) or -ENOMEM; on error *ids is freed and NULL. */
static int parse_ids(const char *s, uint32_t **ids, uint32_t *n)
{
	uint32_t cap = *n;
	const char *first = s;

	while (*s) {
		char *end;
		unsigned long lo = strtoul(s, &end, 10), hi = lo;
		if (end == s || lo >= UINT32_MAX)
			goto bad;
		if (*end == '-') {
			s = end + 1;
			hi = strtoul(s, &end, 10);
			if (end == s || hi >= UINT32_MAX || hi < lo)
				goto bad;
		}
		if (hi - lo >= XR_GAMES_IDS_MAX - *n) {
			free(*ids), *ids = NULL;
			return -E2BIG;
		}
		for (unsigned long id = lo; id <= hi; id++) {
			if (*n == cap) {
				cap = cap ? (2 * cap < XR_GAMES_IDS_MAX ? 2 * cap : XR_GAMES_IDS_MAX) : 64;
				uint32_t *p = realloc(*ids, cap * sizeof(*p));
				if (!p) {
					free(*ids), *ids = NULL;
					return -ENOMEM;
				}
				*ids = p;
			}
			(*ids)[(*n)++] = (uint32_t)id;
		}
		if (*end != ',' && *end)
			goto bad;
		s = *end ? end + 1 : end;
	}
	if (s != first)
		return 0;
bad:
	free(*ids), *ids = NULL;
	return -EINVAL;
}

/* Every id of the command, in requests of up to XR_GAMES_REQUEST_MAX, each
 * all or nothing: so a command of that many ids at most, however many
 * arguments carry them, destroys all or none; past that, a refusal says
 * how many went before it (no longer one request per argument, which
 * destroyed the earlier arguments' games and then said only "cannot"). */
static int do_destroy(xr_games *c, struct games_args *ga)
{
	uint32_t *ids = NULL, n = 0, done = 0;

	for (int i = 2; i < ga->n_pos; i++)
		if (parse_ids(ga->pos[i], &ids, &n) < 0) { /* checked in check_args */
			xr_cli_err("games", "out of memory");
			return XR_EXIT_FAIL;
		}
	while (done < n) {
		uint32_t k = n - done < XR_GAMES_REQUEST_MAX ? n - done : XR_GAMES_REQUEST_MAX;
		int rc = xr_games_destroy(c, ids + done, k);
		if (rc < 0) {
			free(ids);
			if (!done)
				return fail("cannot destroy games", ga->pos[0], rc);
			char what[128];
			snprintf(what, sizeof(what),
				 "destroyed %u of the %u games, then could not destroy the next %u", done,
				 n, k);
			return fail(what, ga->pos[0], rc);
		}
		done += k;
	}
	free(ids);
	printf("destroyed %u game%s\n", n, n == 1 ? "" : "s");
	return 0;
}

static int do_reset(xr_games *c, struct games_args *ga)
{
	long id;
	uint64_t seed;

	xr_parse_int(ga->pos[2], 0, UINT32_MAX - 1, &id); /* checked in check_args */
	xr_parse_count(ga->pos[3], &seed);
	int rc = xr_games_reset(c, (uint32_t)id, seed);
	if (rc < 0)
		return fail("cannot reset the game", ga->pos[0], rc);
	printf("game %ld reset to seed %llu\n", id, (unsigned long long)seed);
	return 0;
}

static void print_game(const xr_game_info *g, bool json, bool first)
{
	if (json) {
		printf("%s{\"id\":%u,\"game\":\"%s\",\"board\":[%u,%u],\"players\":%u,"
		       "\"obs_dtype\":\"%s\",\"turn_limit\":%u,\"seed\":%llu,\"stream\":%u,"
		       "\"shard\":%u,\"turn\":%u,\"episodes\":%llu,\"owner_uid\":%u,\"owner_pid\":%d,"
		       "\"owned\":%s}",
		       first ? "" : ",", g->id, g->game, g->board_h, g->board_w, g->players,
		       g->obs_dtype, g->turn_limit, (unsigned long long)g->seed, g->stream, g->shard,
		       g->turn, (unsigned long long)g->episodes, g->owner_uid, g->owner_pid,
		       g->owned ? "true" : "false");
		return;
	}
	printf("%8u  %-6s %4ux%-4u %7u  %-4s %10u %20llu %6u %5u %8u %9llu %9u%s\n", g->id, g->game,
	       g->board_h, g->board_w, g->players, g->obs_dtype, g->turn_limit,
	       (unsigned long long)g->seed, g->stream, g->shard, g->turn,
	       (unsigned long long)g->episodes, g->owner_uid, g->owned ? "  owned" : "");
}

static int do_list(xr_games *c, struct games_args *ga)
{
	xr_game_info page[256];
	uint32_t from = 0, total = 0, shown = 0;
	int n;

	/* The first page before anything is printed: a refusal prints one
	 * line, nothing else. */
	n = xr_games_list(c, from, page, 256, &total);
	bool begun = n >= 0;
	if (n >= 0 && ga->json)
		printf("{\"engine\":\"%s\",\"games\":[", ga->pos[0]);
	else if (n >= 0)
		printf("%8s  %-6s %9s %7s  %-4s %10s %20s %6s %5s %8s %9s %9s\n", "id", "game", "board",
		       "players", "obs", "turn_limit", "seed", "stream", "shard", "turn", "episodes",
		       "owner_uid");
	while (n > 0) {
		for (int i = 0; i < n; i++)
			print_game(&page[i], ga->json, shown++ == 0);
		from = page[n - 1].id + 1;
		n = xr_games_list(c, from, page, 256, &total);
	}
	if (n < 0) {
		if (begun && ga->json)
			printf("]}\n"); /* what was printed stays JSON */
		return fail("cannot list games", ga->pos[0], n);
	}
	if (ga->json)
		printf("],\"live\":%u}\n", total);
	else
		printf("%u game%s live\n", total, total == 1 ? "" : "s");
	return 0;
}

/* The verb's arguments, before the engine is asked anything: usage errors
 * are the same whether or not it runs. 0 or XR_EXIT_USAGE. */
static int check_args(int (*fn)(xr_games *, struct games_args *), const struct games_args *ga)
{
	long n;
	uint64_t u;

	if (fn == do_create && (ga->n_pos != 3 || !xr_parse_int(ga->pos[2], 1, 1000000, &n)))
		USAGE("create takes a count of games, 1..1000000: xring games NAME create N");
	/* Game j is seeded X + j: no seed may wrap past 2^64 - 1 (to 0, a seed
	 * another call may have used), as the Python API refuses too. */
	if (fn == do_create && ga->spec.seed > UINT64_MAX - (uint64_t)(n - 1))
		USAGE("--seed %llu: the seeds of %ld games, %llu + 0..%ld, pass 2^64 - 1",
		      (unsigned long long)ga->spec.seed, n, (unsigned long long)ga->spec.seed, n - 1);
	if (fn == do_destroy && ga->n_pos < 3)
		USAGE("destroy takes game ids: xring games NAME destroy 3,5,10-20");
	if (fn == do_reset && (ga->n_pos != 4 || !xr_parse_int(ga->pos[2], 0, UINT32_MAX - 1, &n) ||
			       !xr_parse_count(ga->pos[3], &u)))
		USAGE("reset takes a game id and a seed: xring games NAME reset ID SEED");
	if (fn == do_list && ga->n_pos != 2)
		USAGE("list takes no arguments but --json");
	uint32_t *ids = NULL, k = 0;
	for (int i = 2; fn == do_destroy && i < ga->n_pos; i++) {
		int bad = parse_ids(ga->pos[i], &ids, &k);
		if (bad == -E2BIG)
			USAGE("more than %u game ids: destroy them in several commands",
			      XR_GAMES_IDS_MAX);
		if (bad == -ENOMEM) {
			xr_cli_err("games", "out of memory");
			return XR_EXIT_FAIL;
		}
		if (bad)
			USAGE("'%s' is not a list of game ids (e.g. 3,5,10-20)", ga->pos[i]);
	}
	free(ids);
	return 0;
}

int xr_cmd_games(int argc, char **argv)
{
	struct games_args ga = {0};
	xr_games *c;
	int rc = parse_args(argc, argv, &ga);

	if (rc)
		return rc < 0 ? 0 : rc;
	const char *verb = ga.pos[1];
	int (*fn)(xr_games *, struct games_args *) =
		!strcmp(verb, "create")	   ? do_create
		: !strcmp(verb, "destroy") ? do_destroy
		: !strcmp(verb, "reset")   ? do_reset
		: !strcmp(verb, "list")	   ? do_list
					   : NULL;
	if (!fn)
		USAGE("unknown verb '%s': create, destroy, reset or list", verb);
	if (ga.json && fn != do_list)
		USAGE("--json is for list");
	rc = check_args(fn, &ga);
	if (rc)
		return rc;
	rc = xr_games_open(ga.pos[0], &ga.go, &c);
	if (rc < 0)
		return fail("cannot reach the engine", ga.pos[0], rc);
	rc = fn(c, &ga);
	xr_games_close(c);
	return rc;
}
