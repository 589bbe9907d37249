#!/usr/bin/env bash
# From a fresh machine: installs, builds, prepares huge pages (root), starts an
# engine playing 1,000 games of the built-in grid game (20x20, 2 players,
# random legal moves) and reads its experience, printing what flows.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh build
scripts/hugepages.sh build/xring

xring=build/xring
name="demo-$$"
seconds=${XRING_DEMO_SECONDS:-5}

"$xring" engine --name "$name" --games "${XRING_DEMO_GAMES:-1000}" &
engine=$!
trap 'kill "$engine" 2>/dev/null; wait "$engine" 2>/dev/null || true' EXIT
for _ in $(seq 100); do "$xring" info "$name" >/dev/null 2>&1 && break; sleep 0.05; done

echo "== five records, as a trainer sees them (xring tail $name -n 5)"
"$xring" tail "$name" -n 5
echo "== everything, for ${seconds} s: a lossless reader verifying every record (xring tail --stats)"
"$xring" tail "$name" --stats --seconds "$seconds"
echo "== the arena (xring info $name)"
"$xring" info "$name"
kill -TERM "$engine"
wait "$engine"
trap - EXIT
