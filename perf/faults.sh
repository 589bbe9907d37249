#!/bin/sh
# The long variant of the fault tests (issue 13; the suite runs the short
# ones, tests/faults.cmake): readers and agents SIGKILLed 1,000 times at
# random points of attach, read, release, claim and send while an honest
# lossless reader and agent go on (test_faults kill_storm), then the
# engine SIGKILLed and restarted 10 times under load (test_faults_engine).
# Each asserts what the suite's variant does and prints its measurements
# (kills by phase, the blocked writer's SIGKILL -> slot free -> next record
# times, each peer's XR_ECLOSED latency).
#
#   perf/faults.sh                        1,000 kills, 10 engine kills
#   KILLS=5000 ENGINE_KILLS=30 perf/faults.sh
#   BUILD_DIR=out perf/faults.sh          another build tree (default: build)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
fi
cmake --build "$build" -j "$(nproc)" --target test_faults test_faults_engine xring_cli >&2
run_dir=$(mktemp -d /tmp/xring-faults-XXXXXX)
trap 'rm -rf "$run_dir"' EXIT
export XRING_RUN_DIR="$run_dir"

status=0
echo "faults.sh: kill_storm, ${KILLS:-1000} kills" >&2
XR_FAULT_KILLS=${KILLS:-1000} "$build/tests/test_faults" kill_storm || status=$?
echo "faults.sh: the engine killed ${ENGINE_KILLS:-10} times" >&2
"$build/tests/test_faults_engine" "$build/xring" "${ENGINE_KILLS:-10}" || status=$?
exit "$status"
