#!/usr/bin/env bash
# `xring top` in a pseudo-terminal (tmux), read off its screen: it shows the
# engine, its ring with a moving rate, the readers by label, the agent and
# the replay table the engine feeds; the ring's shard columns, a reader's
# drops, pending, lag and age p99; rows sorted by rec/s (the tail of every
# game's records above an agent's reader of 5 games), `r` reverses them, `s`
# changes the key, `q` quits with 0; the engine's end makes it
# say so in one line and exit 1; without a terminal it refuses in one line.
# Usage: test_top.sh XRING
set -uo pipefail
xring=$1
command -v tmux >/dev/null || { echo "SKIP: tmux is not installed (scripts/deps.sh)"; exit 77; }
name="t$$-top"
work=$(mktemp -d)
export XRING_RUN_DIR="$work/run"
mkdir -p "$XRING_RUN_DIR"
# A tmux server of this test's own, a new one for each session: a
# kill-server returns before its server is gone, and a session started on
# the same socket meanwhile dies with it ("server exited unexpectedly").
n_sock=0
sock=
next_server() { n_sock=$((n_sock + 1)); sock="$work/tmux.$n_sock.sock"; }
next_server
tm() { tmux -S "$sock" "$@"; }
fails=0
pids=()
cleanup() {
  for ((i = 1; i <= n_sock; i++)); do tmux -S "$work/tmux.$i.sock" kill-server 2>/dev/null; done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# until_screen PATTERN: polls the pane (up to 10 s) until it shows PATTERN.
until_screen() {
  local end=$((SECONDS + 10))
  while ((SECONDS < end)); do
    tm capture-pane -p -t top 2>/dev/null | grep -qE -- "$1" && return 0
    sleep 0.1
  done
  echo "--- screen:"; tm capture-pane -p -t top 2>/dev/null
  return 1
}

"$xring" engine --name "$name" --games 50 --quiet --table replay:1000:source=experience &
pids+=($!); engine=$!
end=$((SECONDS + 10))
until "$xring" stat "$name" >/dev/null 2>&1; do
  ((SECONDS < end)) || { echo "FAIL: the engine did not come up"; exit 1; }
  sleep 0.05
done
# The agent's reader first, so that it has the lower slot: sorted by rec/s
# the tail must come above it, which slot order would not give.
"$xring" agent "$name" --games 0-4 >/dev/null 2>&1 & pids+=($!)
end=$((SECONDS + 10))
until "$xring" stat "$name" --json 2>/dev/null | grep -q '"label":"xring-agent","state":"active"'; do
  ((SECONDS < end)) || { echo "FAIL: the agent's reader did not attach"; exit 1; }
  sleep 0.05
done
"$xring" tail "$name" >/dev/null & pids+=($!)

# No terminal: one line, and what to use instead.
out=$("$xring" top "$name" 2>&1 </dev/null); rc=$?
[ "$rc" -eq 2 ] || fail "top without a terminal exited $rc, want 2"
[ "$(wc -l <<<"$out")" -eq 1 ] && grep -q "needs a terminal.*xring stat $name" <<<"$out" ||
  fail "top without a terminal said: $out"

tm new-session -d -s top -x 150 -y 40 \
  "$xring top $name --interval 0.2; echo \"top exited \$?\" > $work/rc; sleep 60"
until_screen "xring top - engine $name" || fail "no title"
until_screen "^experience +0 +[1-9][0-9]* " || fail "no moving ring rate"
until_screen "xring-tail +lossless +active +[1-9]" || fail "the tail reader is not shown reading"
until_screen "xring-agent +live +40 " || fail "the agent (games 0-4, every player bit: 40 seats) is not shown"
until_screen "^replay +live +uniform +1000 +1000 +0 +0 .* on" ||
  fail "the fed table (full, no trainer) is not shown"
until_screen "RING +# +rec/s +MiB/s +fill% +stops +stopped +evict +games +steps/s +cpu%" ||
  fail "no ring header"
until_screen "^experience +0 +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+s +[0-9]+ +50 +[1-9][0-9]* +[0-9]+" ||
  fail "the ring's shard (50 games, steps/s) is not shown"
until_screen "xring-tail +lossless +active +[0-9]+ +0 +[0-9]+ +[0-9]+ +<[0-9.]+(us|ms|s)" ||
  fail "the tail reader's drops, pending, lag and age p99 are not shown"
until_screen "sorted by rec/s" || fail "default sort"
# row_of PATTERN: the pane's line number of the first row matching PATTERN.
row_of() { tm capture-pane -p -t top | grep -nE -- "$1" | head -1 | cut -d: -f1; }
# until_order lt|gt: polls (up to 10 s) until the tail's row (every record:
# 50 games') is above (lt) or below (gt) the agent's reader's (its 5 games').
until_order() {
  local end=$((SECONDS + 10)) tail agent
  while ((SECONDS < end)); do
    tail=$(row_of "xring-tail +lossless ") agent=$(row_of "xring-agent +lossy ")
    [ -n "$tail" ] && [ -n "$agent" ] && [ "$tail" "-$1" "$agent" ] && return 0
    sleep 0.1
  done
  echo "--- screen (tail row ${tail:-none}, agent's reader row ${agent:-none}):"
  tm capture-pane -p -t top
  return 1
}
until_order lt || fail "by rec/s, the tail (all games) is not above the agent's reader (5 games)"
tm send-keys -t top r
until_screen "sorted by rec/s, reversed" || fail "r did not reverse"
until_order gt || fail "reversed, the tail is not below the agent's reader"
tm send-keys -t top r
tm send-keys -t top s
until_screen "sorted by lag" || fail "s did not change the sort"
tm send-keys -t top q
end=$((SECONDS + 10))
until [ -s "$work/rc" ] || ((SECONDS >= end)); do sleep 0.05; done
[ "$(cat "$work/rc" 2>/dev/null)" = "top exited 0" ] || fail "q: $(cat "$work/rc" 2>/dev/null)"
tm kill-server 2>/dev/null
next_server

# A small terminal: lines are cut at its width, never wrapped onto the next
# row, and nothing crashes (ncurses 6.4 formatting a line longer than a
# 10x5 window held crashed before). Then q, exit 0.
rm -f "$work/rc"
tm new-session -d -s top -x 10 -y 5 \
  "$xring top $name --interval 0.2; echo \"top exited \$?\" > $work/rc; sleep 60"
until_screen "^xring top" || fail "no title in a 10x5 terminal"
tm resize-window -t top -x 80 -y 24 2>/dev/null || tm resize-pane -t top -x 80 -y 24
until_screen "^RING " || fail "no ring header after growing to 80x24"
tm capture-pane -p -t top | awk 'length($0) > 80 { bad = 1 } END { exit bad }' ||
  fail "a line wider than 80 columns"
tm send-keys -t top q
end=$((SECONDS + 10))
until [ -s "$work/rc" ] || ((SECONDS >= end)); do sleep 0.05; done
[ "$(cat "$work/rc" 2>/dev/null)" = "top exited 0" ] || fail "small terminal: $(cat "$work/rc" 2>/dev/null)"
tm kill-server 2>/dev/null
next_server

# The engine stops under it: one line, exit 1.
rm -f "$work/rc"
tm new-session -d -s top -x 150 -y 40 \
  "$xring top $name --interval 0.2 2>$work/err; echo \"top exited \$?\" > $work/rc; sleep 60"
until_screen "xring top - engine $name" || fail "no title (second run)"
kill "$engine"
end=$((SECONDS + 10))
until [ -s "$work/rc" ] || ((SECONDS >= end)); do sleep 0.05; done
[ "$(cat "$work/rc" 2>/dev/null)" = "top exited 1" ] || fail "engine gone: $(cat "$work/rc" 2>/dev/null)"
grep -q "engine '$name' has stopped" "$work/err" || fail "engine gone said: $(cat "$work/err")"
[ "$(wc -l <"$work/err")" -eq 1 ] || fail "engine gone: more than one line: $(cat "$work/err")"

((fails == 0)) && echo "test_top: ok" || echo "test_top: $fails failure(s)"
exit $((fails > 0))
