/* SPDX-License-Identifier: MIT */
/*
 * xring bench: the benchmarks of perf/, found and run for the user, each
 * printing its figures beside the bounds it measured in the same run.
 *
 * The programs are looked for in $XRING_BENCH_DIR, then in the build tree
 * this xring came from (<its directory>/perf), then where `cmake --install`
 * puts them (<libexecdir>/xring). The parts that drive Python scripts
 * (python, agents) run from a build tree only: the scripts stay in the
 * source tree, whose path the build knows.
 *
 * A benchmark's standard output is held until it exits: when it says a data
 * check failed (or dies), its figures are withheld, since a throughput of
 * wrong bytes is no figure at all, and `xring bench` exits 1. Standard error
 * (progress, notes) passes straight through.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/paths.h"
#include "util/fs.h"

#define MAX_ARGS 48

/* A SIGINT or SIGTERM to xring bench: the part running ends (SIGTERM is
 * passed on to it; a terminal's Ctrl-C reaches it directly, and a second
 * one would cut its own cleanup short), and no further part starts. */
static volatile sig_atomic_t stop_sig;
static volatile pid_t running;

static void on_stop(int sig)
{
	stop_sig = sig;
	if (sig == SIGTERM && running > 0)
		kill(running, SIGTERM);
}

/* One part: its program (in the benchmark directory, or a script in the
 * source tree), the arguments --quick adds, and whether it knows --json. */
struct part {
	const char *name;
	const char *prog;
	bool script;             /* a Python script of perf/, run by /usr/bin/python3 */
	bool json;
	const char *quick[10];
	const char *what;
};

static const struct part parts[] = {
	{"ring", "bench_ring", false, true,
	 {"--seconds", "0.3", "--rounds", "3", "--sizes", "64,1k,16k,64k", "--memcpy-seconds",
	  "0.2"},
	 "ring throughput by record size, writer and reader in two processes, against memcpy "
	 "and a bare shared-memory ring"},
	{"engine", "bench_engine", false, true, {"--games", "100,1000", "--seconds", "1"},
	 "experiences/s from grid games to a verifying reader, CPU per experience, against "
	 "memcpy of the same bytes"},
	{"wakeup", "bench_wakeup", false, true, {"--records", "2000", "--rounds", "3"},
	 "publish-to-return latency of a sleeping and a spinning reader, against a bare eventfd "
	 "wakeup and a bare spinning reader"},
	{"fanout", "bench_fanout", false, true, {"--quick", "--readers", "1,10,50"},
	 "wakeup latency against the number of sleeping readers (1 to 100), against a bare "
	 "eventfd per reader"},
	{"games", "bench_games", false, true, {"--seconds", "1", "--games", "10000"},
	 "games created and destroyed a second while the engine runs, memory per game"},
	{"peers", "bench_peers", false, true, {"--quick"},
	 "the same records through xring, a bare ring, a pipe, a Unix socket, ZeroMQ and "
	 "iceoryx"},
	{"python", "bench_python.py", true, true, {"--quick"},
	 "records/s into numpy by batch size, against a gRPC stream of the same records"},
	{"agents", "bench_agents", false, true,
	 {"--seconds", "1", "--rounds", "1", "--games", "100,1000", "--no-python",
	  "--no-baselines"},
	 "steps/s of a C agent for every seat, and the action round trip, against a bare "
	 "eventfd ping-pong"},
};

static const char usage[] =
	"usage: xring bench PART... [--quick] [--json] [--plot DIR] [-- ARGS...]\n"
	"\n"
	"Runs benchmarks of perf/ on this machine; each prints its figures beside the bound\n"
	"it measured in the same run (memcpy, a bare ring, a bare eventfd) and the ratio.\n"
	"\n"
	"parts (or `all`):\n"
	"%s"
	"\n"
	"  --quick    a short run of each part (the figures are noisier)\n"
	"  --json     the parts' machine-readable output (one JSON object per line)\n"
	"  --plot DIR also keep each part's JSON in DIR/PART.json and draw PNG charts\n"
	"             there (throughput by record size, latency, engine, Python; needs\n"
	"             python3-matplotlib); implies --json\n"
	"  -- ARGS    passed to the part's program (one part only; see its --help)\n"
	"\n"
	"Programs are looked for in $XRING_BENCH_DIR, the build tree of this xring\n"
	"(<dir>/perf), then <prefix>/" XR_LIBEXEC_REL " beside this program's bin/,\n"
	"then " XR_LIBEXEC_ABS ".\n"
	"Exit status: 0 when every part measured, 1 when a part failed or a data check\n"
	"failed (its figures are withheld), 2 on a usage error.\n";

static void print_usage(FILE *f)
{
	char list[2048];
	size_t n = 0;

	list[0] = '\0';
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "  %-8s %s\n", parts[i].name,
				      parts[i].what);
	fprintf(f, usage, list);
}

/* path = a/b[/c]; false when it does not fit. */
static bool join(char *path, size_t len, const char *a, const char *b, const char *c)
{
	int n = c ? snprintf(path, len, "%s/%s/%s", a, b, c) : snprintf(path, len, "%s/%s", a, b);

	return n > 0 && (size_t)n < len;
}

/* Where part p's program is: 0 and its path, or -ENOENT with where it was
 * looked for in tried. */
static int find_prog(const struct part *p, char *path, size_t len, char *tried, size_t tried_len)
{
	char dir[PATH_MAX];
	const char *env = getenv("XRING_BENCH_DIR");
	size_t used = 0;

	tried[0] = '\0';
	if (p->script) {
		/* The scripts stay in the source tree, found only from its build. */
		if (xr_cli_from_build()) {
			if (join(path, len, XR_BENCH_SOURCE_DIR, p->prog, NULL) &&
			    access(path, R_OK) == 0)
				return 0;
		}
		snprintf(tried, tried_len, "%s/%s, which runs from a build tree's xring only",
			 XR_BENCH_SOURCE_DIR, p->prog);
		return -ENOENT;
	}
	if (env && *env) {
		if (join(path, len, env, p->prog, NULL) && xr_cli_usable(path, true))
			return 0;
		used += (size_t)snprintf(tried + used, tried_len - used, "%s, ", path);
	}
	if (xr_cli_exe_dir(dir, sizeof(dir)) == 0) {
		if (join(path, len, dir, "perf", p->prog) && xr_cli_usable(path, true))
			return 0;
		used += (size_t)snprintf(tried + used, tried_len - used, "%s, ", path);
	}
	/* bench_agents drives scripts of perf/: not installed. */
	if (strcmp(p->name, "agents") == 0) {
		if (used >= 2 && used < tried_len)
			tried[used - 2] = '\0';
		return -ENOENT;
	}
	if (xr_cli_installed(true, p->prog, path, len) == 0)
		return 0;
	if (used < tried_len)
		snprintf(tried + used, tried_len - used, "%s", path);
	return -ENOENT;
}

/* Runs one part; its standard output is held in a temporary file and
 * printed only when it exits 0. Returns the exit code for the part. */
static int run_part(const struct part *p, bool quick, bool json, const char *plot_dir,
		    int n_extra, char **extra)
{
	char path[PATH_MAX], tried[3 * PATH_MAX], build_arg[PATH_MAX];
	const char *argv[MAX_ARGS];
	int argc = 0;

	int found = find_prog(p, path, sizeof(path), tried, sizeof(tried));
	if (found < 0 && p->script) {
		xr_cli_err("bench", "%s: no %s; run the xring of a build tree (BUILD/xring bench "
				    "%s)",
			   p->name, tried, p->name);
		return XR_EXIT_FAIL;
	}
	if (found < 0) {
		xr_cli_err("bench", "%s: no benchmark program (looked for %s); build the "
				    "`benchmarks` target (cmake --build BUILD --target benchmarks) or "
				    "set XRING_BENCH_DIR",
			   p->name, tried);
		return XR_EXIT_FAIL;
	}
	if (p->script) {
		argv[argc++] = "/usr/bin/python3";
		argv[argc++] = path;
		argv[argc++] = "--build";
		snprintf(build_arg, sizeof(build_arg), "%s", XR_BENCH_BUILD_ROOT);
		argv[argc++] = build_arg;
	} else {
		argv[argc++] = path;
	}
	for (int i = 0; quick && i < 10 && p->quick[i]; i++)
		argv[argc++] = p->quick[i];
	if (json)
		argv[argc++] = "--json";
	if (argc + n_extra > MAX_ARGS - 1) {
		xr_cli_err("bench", "%s: too many arguments after -- (%d; at most %d)", p->name,
			   n_extra, MAX_ARGS - 1 - argc);
		return XR_EXIT_USAGE;
	}
	for (int i = 0; i < n_extra; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;

	FILE *out = tmpfile();
	if (!out) {
		xr_cli_err("bench", "%s: no temporary file for its output: %s", p->name,
			   strerror(errno));
		return XR_EXIT_FAIL;
	}
	if (!json)
		fprintf(stderr, "== xring bench %s: %s\n", p->name, p->what);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		xr_cli_err("bench", "%s: fork: %s", p->name, strerror(errno));
		fclose(out);
		return XR_EXIT_FAIL;
	}
	if (pid == 0) {
		char self[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n > 0) {
			self[n] = '\0';
			setenv("XRING_BIN", self, 1); /* the engine the benchmarks start */
		}
		dup2(fileno(out), STDOUT_FILENO);
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "xring bench: %s: cannot run %s: %s\n", p->name, argv[0],
			strerror(errno));
		_exit(127);
	}
	/* The benchmark cleans up on a signal (its rings, RouDi): we wait for
	 * it, then report. */
	running = pid;
	if (stop_sig == SIGTERM)
		kill(pid, SIGTERM); /* came before it was running */
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	running = 0;
	if (stop_sig) {
		fclose(out);
		return 128 + stop_sig;
	}

	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		if (WIFSIGNALED(st))
			xr_cli_err("bench", "%s: %s was killed by signal %d; no figures reported",
				   p->name, argv[0], WTERMSIG(st));
		else if (WEXITSTATUS(st) == 1)
			xr_cli_err("bench", "%s: a data check failed (see above); its figures are "
					    "withheld, as they would not measure a correct transfer",
				   p->name);
		else
			xr_cli_err("bench", "%s: %s exited with status %d (see above); no figures "
					    "reported",
				   p->name, argv[0], WEXITSTATUS(st));
		fclose(out);
		return XR_EXIT_FAIL;
	}
	char buf[8192], keep[PATH_MAX];
	size_t n;
	FILE *kept = NULL;
	if (plot_dir) {
		if (!join(keep, sizeof(keep), plot_dir, p->name, NULL) ||
		    strlen(keep) + 6 > sizeof(keep)) {
			xr_cli_err("bench", "--plot %s: path too long", plot_dir);
			fclose(out);
			return XR_EXIT_FAIL;
		}
		strcat(keep, ".json");
		/* DIR is checked to be ours alone (main); no link followed even so. */
		int kfd = open(keep, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
		kept = kfd >= 0 ? fdopen(kfd, "w") : NULL;
		if (!kept) {
			if (kfd >= 0)
				close(kfd);
			xr_cli_err("bench", "%s: cannot write %s: %s", p->name, keep,
				   strerror(errno));
			fclose(out);
			return XR_EXIT_FAIL;
		}
	}
	rewind(out);
	while ((n = fread(buf, 1, sizeof(buf), out)) > 0) {
		fwrite(buf, 1, n, stdout);
		if (kept)
			fwrite(buf, 1, n, kept);
	}
	fclose(out);
	fflush(stdout);
	if (kept && fclose(kept) != 0) {
		xr_cli_err("bench", "%s: writing %s: %s", p->name, keep, strerror(errno));
		return XR_EXIT_FAIL;
	}
	return 0;
}

/* Charts of what the parts left in dir: perf/plot.py (from a build tree)
 * or its installed copy. */
static int plot(const char *dir)
{
	char script[2 * PATH_MAX];

	if (xr_cli_from_build())
		snprintf(script, sizeof(script), "%s", XR_BENCH_SOURCE_DIR "/plot.py");
	else
		xr_cli_installed(false, "plot.py", script, sizeof(script));
	if (access(script, R_OK) != 0) {
		xr_cli_err("bench", "--plot: no %s (reinstall xring, or run the xring of a build "
				    "tree); the JSON is in %s",
			   script, dir);
		return XR_EXIT_FAIL;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		xr_cli_err("bench", "--plot: fork: %s", strerror(errno));
		return XR_EXIT_FAIL;
	}
	if (pid == 0) {
		/* Its standard output (the PNGs' paths) goes to our stderr: stdout
		 * carries the parts' JSON. */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execl("/usr/bin/python3", "python3", script, dir, (char *)NULL);
		fprintf(stderr, "xring bench: --plot: cannot run /usr/bin/python3: %s\n",
			strerror(errno));
		_exit(127);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		xr_cli_err("bench", "--plot: %s failed (see above; it needs Debian's "
				    "python3-matplotlib); the JSON is in %s",
			   script, dir);
		return XR_EXIT_FAIL;
	}
	return 0;
}

int xr_cmd_bench(int argc, char **argv)
{
	bool quick = false, json = false;
	const char *plot_dir = NULL;
	bool want[sizeof(parts) / sizeof(parts[0])] = {false};
	int n_want = 0, n_extra = 0;
	char **extra = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			print_usage(stdout);
			return 0;
		} else if (!strcmp(a, "--quick")) {
			quick = true;
		} else if (!strcmp(a, "--json")) {
			json = true;
		} else if (!strcmp(a, "--plot") || !strncmp(a, "--plot=", 7)) {
			if (a[6] == '=')
				plot_dir = a + 7;
			else if (i + 1 < argc)
				plot_dir = argv[++i];
			if (!plot_dir || !plot_dir[0] || plot_dir[0] == '-') {
				xr_cli_err("bench", "--plot needs a directory for the charts "
						    "(--plot DIR; ./DIR for a name that starts with -)");
				return XR_EXIT_USAGE;
			}
		} else if (!strcmp(a, "--")) {
			extra = argv + i + 1;
			n_extra = argc - i - 1;
			break;
		} else if (!strcmp(a, "all")) {
			for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++)
				n_want += !want[k], want[k] = true;
		} else {
			size_t k = 0;
			while (k < sizeof(parts) / sizeof(parts[0]) && strcmp(a, parts[k].name))
				k++;
			if (k == sizeof(parts) / sizeof(parts[0])) {
				xr_cli_err("bench", "unknown part or option '%s'; run `xring bench "
						    "--help` for the list",
					   a);
				return XR_EXIT_USAGE;
			}
			n_want += !want[k];
			want[k] = true;
		}
	}
	if (n_want == 0) {
		xr_cli_err("bench", "say which part to run (ring, engine, wakeup, fanout, games, peers, "
				    "python, agents, or all); `xring bench --help` says what each "
				    "measures");
		return XR_EXIT_USAGE;
	}
	if (n_extra > 0 && n_want > 1) {
		xr_cli_err("bench", "arguments after -- go to one part's program; name one part");
		return XR_EXIT_USAGE;
	}
	if (plot_dir) {
		struct stat st;
		if (mkdir(plot_dir, 0755) < 0 && errno != EEXIST) {
			xr_cli_err("bench", "--plot %s: %s", plot_dir, strerror(errno));
			return XR_EXIT_FAIL;
		}
		if (stat(plot_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			xr_cli_err("bench", "--plot %s: not a directory", plot_dir);
			return XR_EXIT_USAGE;
		}
		/* The JSON and the charts are written by name: in a directory
		 * another user may write (--plot /tmp), a link planted there
		 * would have them written wherever it points. */
		char why[512];
		if (xr__check_dir(plot_dir, NULL, why, sizeof(why)) < 0) {
			xr_cli_err("bench", "--plot: %s; give --plot a directory of this user's that "
					    "no other user may write", why);
			return XR_EXIT_USAGE;
		}
		json = true; /* the charts are drawn from the parts' JSON */
	}
	struct sigaction sa = {.sa_handler = on_stop}; /* no SA_RESTART: waitpid sees it */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int rc = 0, made = 0;
	for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
		if (!want[k])
			continue;
		int prc = run_part(&parts[k], quick, json, plot_dir, n_extra, extra);
		if (stop_sig) {
			xr_cli_err("bench", "%s: stopped by signal %d; no figures reported and no "
					    "further part run",
				   parts[k].name, (int)stop_sig);
			return 128 + stop_sig;
		}
		if (prc == XR_EXIT_USAGE)
			return prc;
		if (prc != 0)
			rc = XR_EXIT_FAIL;
		else
			made++;
	}
	if (plot_dir && made > 0 && plot(plot_dir) != 0)
		rc = XR_EXIT_FAIL;
	return rc;
}
