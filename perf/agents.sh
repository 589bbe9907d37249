#!/bin/sh
# Builds bench_agents and its baselines if needed and runs it (issue 11):
# steps/s of a C agent against the built-in policy at 100, 1,000 and 10,000
# games, the action round trip of one game against a bare eventfd
# ping-pong, a Python agent (perf/python_agent.py) against the C agent, and
# the pipe-per-environment and gRPC baselines at 1,000 games, all in one run. Results go to stdout, build output and progress to stderr;
# docs/benchmarks.md ("Agents") has the results and how to read them.
#
#   perf/agents.sh                     the whole benchmark, text
#   perf/agents.sh --json              one JSON object
#   perf/agents.sh --shards 2          other options go to bench_agents
#   RUNS=3 perf/agents.sh              three runs, one after the other (the
#                                      machine is shared: report ranges)
#   BUILD_DIR=out perf/agents.sh       another build tree (default: build)
#
# The Python agent and the gRPC baseline run with Debian's /usr/bin/python3
# (python3-numpy; python3-grpcio for gRPC); without them they are reported
# absent, not skipped.
#
# Exit status: 0 when it measured (a missed target is still 0), otherwise
# bench_agents' status (1: a check failed).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
fi
cmake --build "$build" -j "$(nproc)" --target bench_agents >&2

if ! /usr/bin/python3 -c 'import grpc, numpy' 2>/dev/null; then
	echo "agents.sh: /usr/bin/python3 cannot import grpc and numpy: the gRPC baseline" \
	     "will be reported absent (Debian: apt-get install python3-grpcio python3-numpy)" >&2
fi

status=0
i=1
while [ "$i" -le "${RUNS:-1}" ]; do
	echo "agents.sh: run $i, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
	"$build/perf/bench_agents" "$@" || { status=$?; break; }
	i=$((i + 1))
done
exit "$status"
