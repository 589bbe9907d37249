#!/usr/bin/env bash
# The include graph keeps to its layers (scripts/check_layers.sh): the real
# tree passes, a small fake tree that obeys the rules passes, and each planted
# violation -- a lower layer reaching up, two peers in one layer, a layer
# reaching two up -- fails naming the file and the include.
# Usage: test_layers.sh ROOT
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
check=$root/scripts/check_layers.sh
work=$(mktemp -d)
fails=0
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# 1. The real tree. Its report is shown, since it says what to fix.
out=$("$check" "$root" 2>&1); rc=$?
if [ "$rc" -ne 0 ]; then
  printf '%s\n' "$out" | grep -v '^layers: [0-9]* violation'
  fail "the real tree breaks its layers (exit $rc)"
fi

# 2. A fake tree that keeps to the rules: own directory (by path and bare),
# lower layers, public headers, and tests/ which may include anything.
clean=$work/clean
mkdir -p "$clean"/{util,record,shm,control,client,engine,cli,include/xring,tests}
add() { printf '%s\n' "${@:2}" >"$clean/$1"; }
add util/clock.h      '#pragma once'
add util/clock.c      '#include "util/clock.h"' '#include <stdint.h>'
add record/filter.h   '#pragma once' '#include "util/clock.h"'
add shm/map.h         '#pragma once' '#include "record/filter.h"'
add shm/map.c         '#include "map.h"' '#include "shm/map.h"' '#include "util/clock.h"'
add control/server.h  '#pragma once' '#include "shm/map.h"'
add control/server.c  '#include "control/server.h"' '#include "xring/reader.h"'
add client/reader.c   '#include "control/server.h"' '#include <xring/reader.h>'
add engine/engine.h   '#pragma once' '#include "shm/map.h"'
add engine/engine.c   '#include "engine/engine.h"' '#include "control/server.h"'
add cli/args.h        '#pragma once'
add cli/main.c        '#include "cli/args.h"' '#include "engine/engine.h"'
add include/xring/reader.h '#pragma once'
add tests/test_all.c  '#include "cli/args.h"' '#include "engine/engine.h"'

out=$("$check" "$clean" 2>&1); rc=$?
[ "$rc" -eq 0 ] || fail "clean fake tree: exit $rc, want 0 ($out)"

# 3. One violation at a time, each in a fresh copy of the clean tree.
# plant FILE INCLUDE FROM LF TO LT: FILE gains '#include "INCLUDE"'; the check
# must exit 1 with exactly that line.
n=0
plant() {
  local file=$1 inc=$2 want tree out rc
  want="layers: $file includes $inc: $3 (layer $4) may not include $5 (layer $6)"
  n=$((n + 1)) tree=$work/bad$n
  cp -R "$clean" "$tree"
  printf '#include "%s"\n' "$inc" >>"$tree/$file"
  out=$("$check" "$tree" 2>&1); rc=$?
  [ "$rc" -eq 1 ] || fail "$file including $inc: exit $rc, want 1"
  grep -qxF -- "$want" <<<"$out" || fail "$file including $inc: no line '$want' in: $out"
}
plant shm/map.c       control/server.h shm    2 control 3
plant util/clock.c    record/filter.h  util   0 record  1
plant client/reader.c engine/engine.h  client 4 engine  4
plant engine/engine.h cli/args.h       engine 4 cli     5

[ "$fails" -eq 0 ] || exit 1
echo "ok: layers hold in the real tree and $n planted violations are caught"
