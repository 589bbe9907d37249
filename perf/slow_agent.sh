#!/bin/sh
# The slow-agent measurement of issue 12 (examples/slow_agent.py, full
# size): 1,000 games, a slow agent thinking 200 ms per batch on 1 % of them
# beside a fast agent on the rest, 3 rounds of 3 s alone and beside,
# alternating. Target: the fast agent's answers a second beside the slow
# one >= 0.9 of its rate alone (printed with the ratio of each round); the
# slow seats' fallbacks counted exactly (the example exits 1 otherwise).
# docs/ecosystem.md has the results.
#
#   perf/slow_agent.sh                 text
#   perf/slow_agent.sh --json          one JSON object
#   BUILD_DIR=out perf/slow_agent.sh   another build tree (default: build)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
fi
cmake --build "$build" -j "$(nproc)" --target xring_cli xring_python >&2
PYTHONPATH="$build/python" XRING_BIN="$build/xring" \
	/usr/bin/python3 "$root/examples/slow_agent.py" --games 1000 --think-ms 200 \
	--seconds 3 --rounds 3 "$@" > /tmp/slow_agent.$$.out
cat /tmp/slow_agent.$$.out
if grep -q '^{' /tmp/slow_agent.$$.out; then
	r=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read())["ratio_median"])' /tmp/slow_agent.$$.out)
else
	r=$(sed -n 's/.*: \([0-9.]*\) x (rounds.*/\1/p' /tmp/slow_agent.$$.out)
fi
rm -f /tmp/slow_agent.$$.out
/usr/bin/python3 -c "import sys; r=float(sys.argv[1]); print(f'target: fast agent beside the slow one >= 0.90 of its rate alone: {r:.2f} ({\"met\" if r >= 0.9 else \"NOT met\"})')" "$r" >&2
