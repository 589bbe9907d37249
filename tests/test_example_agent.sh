#!/usr/bin/env bash
# docs/agents.md's C example: it is examples/c_agent.c verbatim, it builds
# against the library (done by CMake), and it plays its games on a live
# engine. Usage: test_example_agent.sh XRING EXAMPLE DOC EXAMPLE_SRC
set -euo pipefail
xring=$1 example=$2 doc=$3 src=$4
name="t$$-agentex"
export XRING_RUN_DIR=$(mktemp -d)
trap 'rm -rf "$XRING_RUN_DIR"' EXIT

awk '/^```c$/{on=1;next} /^```$/{if(on){exit}} on' "$doc" > "$XRING_RUN_DIR/ex.c"
if ! diff -u "$src" "$XRING_RUN_DIR/ex.c"; then
  echo "FAIL: the C example in docs/agents.md differs from examples/c_agent.c"; exit 1
fi

if out=$("$example" "$name" 2>&1); then echo "FAIL: example succeeded with no engine"; exit 1; fi
grep -q "^$name: No such file or directory" <<<"$out" || { echo "FAIL: got '$out'"; exit 1; }

"$xring" engine --name "$name" --games 0 --board 8x8 --ring-size 4M --hugepages off --quiet &
engine=$!
trap 'kill $engine 2>/dev/null; wait $engine 2>/dev/null || true; rm -rf "$XRING_RUN_DIR"' EXIT
for _ in $(seq 100); do "$xring" info "$name" >/dev/null 2>&1 && break; sleep 0.05; done
out=$("$example" "$name")
grep -qE "^answered [0-9]{4,} records of $name's 16 games$" <<<"$out" \
  || { echo "FAIL: got '$out'"; exit 1; }
# Its games went with it.
"$xring" games "$name" list | tail -n 1 | grep -qx "0 games live" \
  || { echo "FAIL: the example's games outlived it"; exit 1; }
echo "example agent: $out"
