/* SPDX-License-Identifier: MIT */
/*
 * `xring agent`: an agent from the command line, answering every record of
 * its seats with a random legal action (or the highest legal one), for
 * trying agents out, for load, and for scripts and tests that need one.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "util/clock.h"
#include "xring/agent.h"
#include "xring/error.h"
#include "xring/game.h"
#include "xring/record.h"

static const char agent_help[] =
	"usage: xring agent NAME --games LO-HI [options]\n"
	"\n"
	"Attaches to engine NAME as an agent, claims the seats of games LO..HI (the\n"
	"games of this uid and the engine's in it), and answers each record of them\n"
	"with a legal action until --seconds, SIGINT, or the engine stops. Prints a\n"
	"line a second: answers/s and the engine's counts for this agent (actions,\n"
	"fallbacks by reason, round trip from record to answer seen). docs/agents.md.\n"
	"\n"
	"  --games LO-HI            the games, by id (e.g. 0-99)\n"
	"  --players LIST           players, e.g. 0 or 0,2 (default: all)\n"
	"  --policy random|last     a random legal action, or the highest legal one\n"
	"                           (default: random)\n"
	"  --seconds S              stop after S seconds (default: until SIGINT)\n"
	"  --spin                   spin while waiting instead of sleeping until woken\n"
	"  --capacity N             games its page holds (default: the claim's)\n"
	"  --stream S               the stream of its games (default: experience)\n"
	"  --engine-uid UID         also trust an engine run by this uid\n"
	"  --quiet                  print only the summary at the end\n";

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

enum { A_GAMES, A_PLAYERS, A_POLICY, A_SECONDS, A_SPIN, A_CAPACITY, A_STREAM, A_UID, A_QUIET,
       A_HELP };

static const struct xr_opt agent_opts[] = {
	[A_GAMES] = {"--games", true},     [A_PLAYERS] = {"--players", true},
	[A_POLICY] = {"--policy", true},   [A_SECONDS] = {"--seconds", true},
	[A_SPIN] = {"--spin", false},      [A_CAPACITY] = {"--capacity", true},
	[A_STREAM] = {"--stream", true},   [A_UID] = {"--engine-uid", true},
	[A_QUIET] = {"--quiet", false},    [A_HELP] = {"--help", false},
	{NULL, false},
};

struct agent_args {
	const char *name, *stream;
	uint32_t lo, hi, players, capacity, engine_uid;
	bool last, spin, quiet, have_games;
	double seconds;
};

static bool parse_games(const char *v, uint32_t *lo, uint32_t *hi)
{
	char *end;
	unsigned long a = strtoul(v, &end, 10), b;

	if (end == v || a > UINT32_MAX)
		return false;
	if (*end != '-')
		return *end == '\0' && (*lo = *hi = (uint32_t)a, true);
	const char *p = end + 1;
	b = strtoul(p, &end, 10);
	if (end == p || *end || b > UINT32_MAX || b < a)
		return false;
	*lo = (uint32_t)a;
	*hi = (uint32_t)b;
	return true;
}

static bool parse_players(const char *v, uint32_t *mask)
{
	const char *p = v;

	*mask = 0;
	while (*p) {
		char *end;
		unsigned long x = strtoul(p, &end, 10);
		if (end == p || x >= XR_GAME_MAX_PLAYERS)
			return false;
		*mask |= 1u << x;
		p = end;
		if (*p == ',')
			p++;
		else if (*p)
			return false;
	}
	return *mask != 0;
}

static int parse_args(int argc, char **argv, struct agent_args *aa)
{
	int i = 1;
	const char *v;
	long n;

	while (i < argc) {
		int k = xr_next_opt("agent", argc, argv, &i, agent_opts, &v);
		if (k == -2)
			return XR_EXIT_USAGE;
		switch (k) {
		case -1:
			if (aa->name) {
				xr_cli_err("agent", "unexpected argument '%s'; see `xring agent --help`", v);
				return XR_EXIT_USAGE;
			}
			aa->name = v;
			break;
		case A_GAMES:
			if (!parse_games(v, &aa->lo, &aa->hi)) {
				xr_cli_err("agent", "--games must be LO-HI (game ids, LO <= HI), not '%s'", v);
				return XR_EXIT_USAGE;
			}
			aa->have_games = true;
			break;
		case A_PLAYERS:
			if (!parse_players(v, &aa->players)) {
				xr_cli_err("agent", "--players must be a list of 0..%u, not '%s'",
					   XR_GAME_MAX_PLAYERS - 1, v);
				return XR_EXIT_USAGE;
			}
			break;
		case A_POLICY:
			if (strcmp(v, "random") && strcmp(v, "last")) {
				xr_cli_err("agent", "--policy must be random or last, not '%s'", v);
				return XR_EXIT_USAGE;
			}
			aa->last = !strcmp(v, "last");
			break;
		case A_SECONDS:
			aa->seconds = strtod(v, NULL);
			if (!(aa->seconds > 0)) {
				xr_cli_err("agent", "--seconds must be a number above 0, not '%s'", v);
				return XR_EXIT_USAGE;
			}
			break;
		case A_SPIN: aa->spin = true; break;
		case A_QUIET: aa->quiet = true; break;
		case A_STREAM: aa->stream = v; break;
		case A_CAPACITY:
		case A_UID:
			if (!xr_parse_int(v, k == A_UID ? 0 : 1, k == A_UID ? 0x7fffffff : 8000000, &n)) {
				xr_cli_err("agent", "%s must be a number, not '%s'", agent_opts[k].name, v);
				return XR_EXIT_USAGE;
			}
			*(k == A_UID ? &aa->engine_uid : &aa->capacity) = (uint32_t)n;
			break;
		case A_HELP:
			fputs(agent_help, stdout);
			return -1;
		}
	}
	if (!aa->name) {
		xr_cli_err("agent", "which engine? usage: xring agent NAME --games LO-HI");
		return XR_EXIT_USAGE;
	}
	if (!aa->have_games) {
		xr_cli_err("agent", "which games? add --games LO-HI (their ids: `xring games %s list`)",
			   aa->name);
		return XR_EXIT_USAGE;
	}
	return 0;
}

static void print_line(const char *what, const xr_agent_stats *s, double answers_per_s)
{
	printf("%s %.0f answers/s; actions %" PRIu64 ", fallbacks %" PRIu64 " (timeouts %" PRIu64
	       ", late %" PRIu64 ", wrong turn %" PRIu64 ", out of range %" PRIu64
	       ", illegal %" PRIu64 "), waiting %" PRIu64 ", round trip p50 %.1f us p99 %.1f us\n",
	       what, answers_per_s, s->actions, s->fallbacks, s->timeouts, s->late, s->wrong_turn,
	       s->out_of_range, s->illegal, s->waiting, (double)s->rtt_p50_ns / 1e3,
	       (double)s->rtt_p99_ns / 1e3);
	fflush(stdout);
}

int xr_cmd_agent(int argc, char **argv)
{
	struct agent_args aa = {0};
	int rc = parse_args(argc, argv, &aa);
	xr_agent *a;

	if (rc)
		return rc < 0 ? 0 : rc;
	uint64_t games = (uint64_t)aa.hi - aa.lo + 1;
	xr_agent_opts o = {.stream = aa.stream, .label = "xring-agent",
			   .capacity = aa.capacity ? aa.capacity
				     : games < 8000000 ? (uint32_t)games : 8000000,
			   .wait = aa.spin ? XR_WAIT_SPIN : XR_WAIT_DEFAULT,
			   .engine_uid = aa.engine_uid};
	rc = xr_agent_attach(aa.name, &o, &a);
	if (rc < 0) {
		xr_cli_err("agent", "cannot attach to engine '%s' as an agent: %s%s%s", aa.name,
			   xr_strerror(rc), xr_last_reason()[0] ? ": " : "", xr_last_reason());
		return 1;
	}
	rc = xr_agent_claim(a, aa.lo, aa.hi, aa.players, NULL);
	if (rc < 0) {
		xr_cli_err("agent", "cannot claim games %u-%u: %s%s%s", aa.lo, aa.hi, xr_strerror(rc),
			   xr_last_reason()[0] ? ": " : "", xr_last_reason());
		xr_agent_detach(a);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	xr_stream_facts sf;
	xr_exp_template t;
	xr_reader_stream_facts(xr_agent_reader(a), &sf);
	if (xr_exp_template_init(&t, &sf.shape) < 0) {
		xr_cli_err("agent", "stream %s does not carry game records", sf.name);
		xr_agent_detach(a);
		return 1;
	}
	int32_t *act = malloc(sizeof(int32_t) * 4096);
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ xr__now_ns(), start = xr__now_ns(), last = start;
	uint64_t sent = 0, sent_then = 0;
	uint64_t end = aa.seconds > 0 ? start + (uint64_t)(aa.seconds * 1e9) : UINT64_MAX;
	xr_agent_stats st;
	while (act && !stop_flag && xr__now_ns() < end) {
		xr_obs_batch b;
		int n = xr_agent_recv(a, 1, 4096, 100000000, &b);
		if (n < 0) {
			if (n == -EINTR)
				continue;
			if (n == XR_ECLOSED)
				break;
			xr_cli_err("agent", "engine '%s': %s", aa.name, xr_strerror(n));
			rc = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			const uint8_t *d = xr_frame_data(b.frames[i]);
			act[i] = aa.last ? -1 : xr_policy_random_legal(d + t.off_mask,
								       t.shape.mask_len, &rng);
			for (uint32_t k = t.shape.mask_len; aa.last && k-- > 0;)
				if (d[t.off_mask + k]) {
					act[i] = (int32_t)k;
					break;
				}
		}
		if (n > 0 && xr_agent_send(a, &b, act) == 0)
			sent += (uint64_t)n;
		uint64_t now = xr__now_ns();
		if (!aa.quiet && now - last >= 1000000000ull) {
			xr_agent_stats_get(a, &st);
			print_line("xring agent:", &st, (double)(sent - sent_then) * 1e9 / (double)(now - last));
			last = now;
			sent_then = sent;
		}
	}
	xr_agent_stats_get(a, &st);
	double secs = (double)(xr__now_ns() - start) / 1e9;
	print_line("xring agent: done;", &st, secs > 0 ? (double)sent / secs : 0);
	free(act);
	xr_agent_detach(a);
	return rc;
}
