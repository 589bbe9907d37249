#!/bin/sh
# Builds the benchmarks if needed and runs each of them; results go to stdout,
# build output and notes to stderr.
#
#   perf/run.sh                    every benchmark with its defaults
#   perf/run.sh --json             one JSON object per line
#   perf/run.sh --sizes 64,64k     other options go to bench_ring
#   BUILD_DIR=out perf/run.sh      another build tree (default: build)
#
# bench_python.py and bench_replay.py (replay-table sampling from Python
# against numpy replay buffers, and 1, 2, 4 sampling processes on one table;
# about a minute) run after bench_engine.
#
# probe_coherence runs before and after bench_ring: it measures the machine
# (how fast cache lines move between the two CPUs), which on a VM drifts, so
# that bench_ring's numbers can be read against the state the machine was in.
# bench_wakeup (latency from publish to the reader's return, eventfd and spin)
# and bench_games (games created and destroyed while the engine runs flat
# out; memory per game) run next, with --json when given; bench_peers (the
# same records through xring, the bare ring, a pipe, a Unix socket, ZeroMQ
# and iceoryx; about a minute; it starts and stops iceoryx's RouDi itself)
# runs last, likewise.
#
# Exit status: 0 when every benchmark measured (a missed target is still 0),
# otherwise the first non-zero status (1: a data check failed).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}

if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
fi
cmake --build "$build" -j "$(nproc)" --target benchmarks >&2

free=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo 2>/dev/null || true)
if [ "${free:-0}" -lt 16 ]; then
	echo "run.sh: only ${free:-0} free huge pages; rings fall back to /dev/shm" \
	     "(raise vm.nr_hugepages, e.g. scripts/hugepages.sh)" >&2
fi

json=
for a in "$@"; do
	[ "$a" = "--json" ] && json=--json
done

status=0
run() {
	echo "run.sh: $*" >&2
	rc=0
	"$build/perf/$@" || rc=$?
	if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then
		status=$rc
	fi
}
run probe_coherence $json
run bench_ring "$@"
run probe_coherence $json
run bench_engine
cmake --build "$build" -j "$(nproc)" --target xring_cli xring_python >&2 && echo "run.sh: bench_python.py $json" >&2 && "$root/perf/bench_python.py" --build "$build" $json || { rc=$?; [ "$status" -ne 0 ] || status=$rc; }
echo "run.sh: bench_replay.py $json" >&2 && "$root/perf/bench_replay.py" --build "$build" $json || { rc=$?; [ "$status" -ne 0 ] || status=$rc; }
run bench_wakeup $json
run bench_games $json
run bench_peers $json
exit "$status"
