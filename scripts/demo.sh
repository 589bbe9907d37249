#!/usr/bin/env bash
# From a fresh machine: installs, builds, prepares huge pages (root), starts an
# engine playing 10,000 games of the built-in grid game (20x20, 2 players,
# random legal moves) on 2 pinned shards, and reads its experience through
# the control socket, printing what flows: experiences/s, games, batches,
# wakeups and wakeup latency, live.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh build
scripts/hugepages.sh build/xring

xring=build/xring
name="demo-$$"
seconds=${XRING_DEMO_SECONDS:-5}

"$xring" engine --name "$name" --games "${XRING_DEMO_GAMES:-10000}" \
	--shards "${XRING_DEMO_SHARDS:-2}" &
engine=$!
trap 'kill "$engine" 2>/dev/null; wait "$engine" 2>/dev/null || true' EXIT
for _ in $(seq 100); do "$xring" info "$name" >/dev/null 2>&1 && break; sleep 0.05; done

echo "== five records, as a trainer sees them (xring tail $name -n 5)"
"$xring" tail "$name" -n 5
echo "== game 7's records only: a filter the engine knows, so it wakes this reader per batch"
"$xring" tail "$name" --games 7 -n 4
echo "== everything, for ${seconds} s: a lossless reader verifying every record, asleep on"
echo "   until the engine wakes it, between batches (xring tail --stats)"
"$xring" tail "$name" --stats --seconds "$seconds"
echo "== the arena (xring info $name)"
"$xring" info "$name"
kill -TERM "$engine"
wait "$engine"
trap - EXIT
