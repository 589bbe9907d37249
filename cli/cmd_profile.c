/* SPDX-License-Identifier: MIT */
/*
 * xring profile: where the time goes, by `perf record` of a workload, the
 * top symbols of the writer, the reader and the engine grouped by xring
 * module. The work is perf/profile.py's (run by Debian's /usr/bin/python3):
 * this command finds it, with this xring and bench_ring, in the build tree
 * this xring came from or where `cmake --install` put them.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/paths.h"

static const char usage[] =
	"usage: xring profile engine|reader|ring [--games N] [--seconds S] [--size B]\n"
	"                     [--top K]\n"
	"\n"
	"Runs a workload under `perf record` (the cpu-clock software event; hardware\n"
	"counters are often missing in VMs, and the run says whether they are here)\n"
	"and prints the top symbols per thread or process, grouped by xring module\n"
	"(the source directory of the function: shm/, engine/, record/, game/, ...).\n"
	"\n"
	"  engine    an engine of --games grid games (default 10000) with a verifying\n"
	"            reader; the engine's threads (shards: the writers) are sampled\n"
	"  reader    the same; the reader's process is sampled\n"
	"  ring      bench_ring at --size bytes (default 1024): writer and reader\n"
	"  --seconds S   how long to sample (default 5)\n"
	"  --top K       symbols per thread (default 12)\n"
	"\n"
	"Needs perf (Debian: linux-perf) and root or kernel.perf_event_paranoid <= 1.\n"
	"docs/benchmarks.md (Profiling) says how to read the output.\n";

int xr_cmd_profile(int argc, char **argv)
{
	char exe[PATH_MAX], script[2 * PATH_MAX], bench[2 * PATH_MAX];
	const char *args[32];
	int n = 0;

	if (argc < 2) {
		xr_cli_err("profile", "say what to profile: engine, reader or ring (`xring profile "
				      "--help`)");
		return XR_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(argv[1], "engine") && strcmp(argv[1], "reader") && strcmp(argv[1], "ring")) {
		xr_cli_err("profile", "unknown workload '%s': engine, reader or ring", argv[1]);
		return XR_EXIT_USAGE;
	}
	if (argc > 20) {
		xr_cli_err("profile", "too many arguments");
		return XR_EXIT_USAGE;
	}
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0) {
		xr_cli_err("profile", "cannot find this program (/proc/self/exe): %s",
			   strerror(errno));
		return XR_EXIT_FAIL;
	}
	exe[len] = '\0';
	if (xr_cli_from_build()) {
		snprintf(script, sizeof(script), "%s", XR_BENCH_SOURCE_DIR "/profile.py");
		snprintf(bench, sizeof(bench), "%s", XR_BENCH_BUILD_ROOT "/perf/bench_ring");
	} else {
		xr_cli_installed(false, "profile.py", script, sizeof(script));
		xr_cli_installed(true, "bench_ring", bench, sizeof(bench));
	}
	if (access(script, R_OK) != 0) {
		xr_cli_err("profile", "no %s (reinstall xring, or run the xring of a build tree)",
			   script);
		return XR_EXIT_FAIL;
	}
	args[n++] = "python3";
	args[n++] = script;
	args[n++] = argv[1];
	args[n++] = "--xring";
	args[n++] = exe;
	args[n++] = "--bench";
	args[n++] = bench;
	args[n++] = "--source-root";
	args[n++] = XR_SOURCE_ROOT;
	for (int i = 2; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	execv("/usr/bin/python3", (char *const *)args);
	xr_cli_err("profile", "cannot run /usr/bin/python3: %s (install Debian's python3)",
		   strerror(errno));
	return XR_EXIT_FAIL;
}
