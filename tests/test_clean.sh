#!/usr/bin/env bash
# `xring clean` (cli/cmd_clean.c): the arena of an engine killed outright
# is removed, and nothing else: not a live engine's, not a file of ours that
# is not an arena, not a link (nor what it points to), not another user's
# file. --dry-run removes nothing. The engines here keep their arenas in a
# directory of the test's own (XRING_DIR), and every clean names them, so
# that nothing of a test running beside this one is touched.
# Usage: test_clean.sh XRING
set -uo pipefail
xring=$1
work=$(mktemp -d)
name="t$$-clean"
export XRING_DIR=$work/a XRING_RUN_DIR=$work/run
mkdir -m 0700 "$XRING_DIR"
live=
cleanup() { [ -n "$live" ] && kill -KILL "$live" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# Until `xring info NAME` answers (polling: the engine says nothing else).
up() {
  for _ in $(seq 200); do "$xring" info "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}

"$xring" engine --name "$name-dead" --games 10 --quiet &
dead=$!
up "$name-dead" || fail "the engine to kill never came up"
kill -KILL "$dead"; wait "$dead" 2>/dev/null
[ -f "$XRING_DIR/xring-$name-dead" ] || fail "an engine killed outright left no arena: nothing to clean"
"$xring" engine --name "$name-live" --games 10 --quiet &
live=$!
up "$name-live" || fail "the live engine never came up"
echo "not an arena" >"$XRING_DIR/xring-$name-text"
echo "keep me" >"$work/target"
ln -s "$work/target" "$XRING_DIR/xring-$name-link"
others=
if [ "$(id -u)" -eq 0 ]; then
  # Another user's arena-looking file: a copy of the dead arena, as uid 65534.
  cp "$XRING_DIR/xring-$name-dead" "$XRING_DIR/xring-$name-other"
  chown 65534 "$XRING_DIR/xring-$name-other"
  others=$name-other
fi
all=("$name-dead" "$name-live" "$name-text" "$name-link" $others)

out=$("$xring" clean --dry-run "${all[@]}")
rc=$?
[ "$rc" -eq 0 ] || fail "--dry-run: exit $rc: $out"
[ "$(grep -c "^would remove" <<<"$out")" -eq 1 ] &&
  grep -q "^would remove $XRING_DIR/xring-$name-dead (.* MiB): its engine is gone" <<<"$out" ||
  fail "--dry-run did not name the dead engine's arena alone: $out"
[ -f "$XRING_DIR/xring-$name-dead" ] || fail "--dry-run removed the arena"

out=$("$xring" clean "${all[@]}")
rc=$?
[ "$rc" -eq 0 ] && grep -q "^removed $XRING_DIR/xring-$name-dead" <<<"$out" &&
  grep -q "^xring clean: removed 1 arena(s)" <<<"$out" || fail "clean: exit $rc: $out"
[ -e "$XRING_DIR/xring-$name-dead" ] && fail "the dead engine's arena is still there"
for n in live text link $([ -n "$others" ] && echo other); do
  [ -e "$XRING_DIR/xring-$name-$n" ] || [ -L "$XRING_DIR/xring-$name-$n" ] ||
    fail "clean removed xring-$name-$n"
done
[ "$(cat "$work/target")" = "keep me" ] || fail "clean wrote through the link"
"$xring" info "$name-live" >/dev/null || fail "the live engine no longer answers"

out=$("$xring" clean "$name-dead")
grep -q "^xring clean: no arena of an engine that is gone" <<<"$out" || fail "clean again: $out"
out=$("$xring" clean "no/such" 2>&1 >/dev/null)
rc=$?
[ "$rc" -eq 2 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -q "is not an engine name" <<<"$out" ||
  fail "a bad name: exit $rc: $out"
# The dead engine's name is free again.
"$xring" engine --name "$name-dead" --games 10 --count 100 --quiet || fail "the name did not come free"

kill -TERM "$live"; wait "$live"; live=
[ "$fails" -eq 0 ] && echo "test_clean: ok"
[ "$fails" -eq 0 ]
