#!/bin/sh
# The full load tests of games at runtime (issue 10); the suite runs short
# variants of the same program (tests/engine.cmake):
#   ramp       0 -> 1,000 games created by 10 processes over 10 s
#   sustained  2,000 games, two lossless readers, 30 minutes
#   burst      500 creations and 500 destructions a second for 10 s
# Each asserts zero loss, every episode ended, the engine's threads, fds and
# RSS flat, and the stats equal to what was done; it prints the rates.
#
#   perf/games_load.sh                   all three
#   perf/games_load.sh burst             one of them
#   SUSTAINED_S=60 perf/games_load.sh    a shorter sustained run
#   BUILD_DIR=out perf/games_load.sh     another build tree (default: build)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
fi
cmake --build "$build" -j "$(nproc)" --target test_games_load_ramp xring_cli >&2
run_dir=$(mktemp -d /tmp/xring-load-XXXXXX)
trap 'rm -rf "$run_dir"' EXIT
export XRING_RUN_DIR="$run_dir"

status=0
for mode in ${1:-ramp sustained burst}; do
	case $mode in
	ramp) secs=10 ;;
	sustained) secs=${SUSTAINED_S:-1800} ;;
	burst) secs=10 ;;
	*) echo "games_load.sh: no test '$mode' (ramp, sustained, burst)" >&2; exit 2 ;;
	esac
	echo "games_load.sh: $mode, $secs s" >&2
	"$build/tests/test_games_load_ramp" "$build/xring" "$mode" "$secs" || status=$?
done
exit "$status"
