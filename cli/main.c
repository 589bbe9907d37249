/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "xring/version.h"

static const char usage[] =
	"usage: xring <command> [options]\n"
	"\n"
	"commands:\n"
	"  engine   run an engine: its games, rings, replay tables and control socket\n"
	"  info     show an engine's arena: backing, streams, rings, readers\n"
	"  stat     one snapshot of an engine's figures (text or JSON)\n"
	"  top      a live view of an engine: rates, lag, drops, agents (a terminal)\n"
	"  tail     read records from an engine and print them\n"
	"  table    show a replay table of a running engine; checkpoint or restore it\n"
	"  bridge   carry a stream between hosts through NATS JetStream (out, in)\n"
	"  games    create, destroy, reset and list a running engine's games\n"
	"  agent    act for seats of a running engine's games (a random legal action)\n"
	"  setup    reserve huge pages and mount hugetlbfs (root), or say why not\n"
	"  clean    remove the arenas of this user's engines that are gone (killed)\n"
	"  bench    measure this machine: rings, engine, wakeups, peers, Python, agents\n"
	"  profile  where the time goes: perf record of the engine, a reader or a ring\n"
	"\n"
	"`xring <command> --help` describes each command's options.\n";

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{"engine", xr_cmd_engine},
		{"info", xr_cmd_info},
		{"stat", xr_cmd_stat},
		{"top", xr_cmd_top},
		{"tail", xr_cmd_tail},
		{"games", xr_cmd_games},
		{"agent", xr_cmd_agent},
		{"setup", xr_cmd_setup},
		{"clean", xr_cmd_clean},
		{"table", xr_cmd_table},
		{"bridge", xr_cmd_bridge},
		{"bench", xr_cmd_bench},
		{"profile", xr_cmd_profile},
	};

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? XR_EXIT_USAGE : 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("xring %s\n", XRING_VERSION_STRING);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "xring: unknown command '%s'; run `xring --help` for the list\n", argv[1]);
	return XR_EXIT_USAGE;
}
