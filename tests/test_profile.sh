#!/usr/bin/env bash
# `xring profile` (cli/cmd_profile.c, perf/profile.py): usage errors in one
# line, and a real second of the engine under perf: the shard thread by its
# name, its time by module with the engine's own code on top, and the note
# on hardware counters. Skipped (77) without perf (Debian: linux-perf, which
# scripts/deps.sh installs) or when this user may not sample.
# Usage: test_profile.sh XRING
set -uo pipefail
xring=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

"$xring" profile >"$work/out" 2>"$work/err"
rc=$?
[ "$rc" -eq 2 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -q "engine, reader or ring" "$work/err" ||
  fail "no workload: exit $rc: $(cat "$work/err")"
"$xring" profile nonesuch >"$work/out" 2>"$work/err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "unknown workload 'nonesuch'" "$work/err" || fail "bad workload: exit $rc"
"$xring" profile --help | grep -q "perf record" || fail "--help"
if [ -n "${XR_SANITIZED:-}" ]; then
  # A sanitizer build (tests/CMakeLists.txt): the usage errors above only.
  [ "$fails" -eq 0 ] && echo "test_profile: usage checked; perf runs in the release pass"
  exit $((fails > 0))
fi

command -v perf >/dev/null || { echo "SKIP: no perf (Debian: linux-perf)"; exit 77; }
# Another user samples only user space (kernel.perf_event_paranoid 2): the
# shares below are root's.
[ "$(id -u)" -eq 0 ] || { echo "SKIP: not root (the figures checked include the kernel's)"; exit 77; }
perf record -q -e cpu-clock -o "$work/probe.data" -- true >/dev/null 2>&1 ||
  { echo "SKIP: perf may not sample here (kernel.perf_event_paranoid)"; exit 77; }

XRING_RUN_DIR=$work "$xring" profile engine --seconds 1 --games 200 --top 5 >"$work/out" 2>"$work/err"
rc=$?
[ "$rc" -eq 0 ] || fail "profile engine: exit $rc: $(tail -5 "$work/err")"
grep -q "^hardware counters: " "$work/out" || fail "no word on hardware counters"
grep -q "^workload: engine of 200 games, a verifying reader: .*exp/s" "$work/out" ||
  fail "no workload line: $(head -5 "$work/out")"
# The shard's thread, by name, with most samples; its time mostly in the
# engine's modules (the game, the policy, the record).
awk '/^== thread xr-shard0: / { s = $4 } END { exit !(s > 50) }' "$work/out" ||
  fail "the shard's thread has not most samples: $(grep '^==' "$work/out")"
awk '/^== thread xr-shard0/ { on = 1; next } /^== / { on = 0 }
     on && /%  engine\/$/ { if ($1 + 0 > 30) ok = 1 } END { exit !ok }' "$work/out" ||
  fail "the shard's time is not mostly engine/: $(cat "$work/out")"
grep -Eq '^ +[0-9.]+ %  (grid_observe|xr_policy_random_legal|grid_legal_actions|play_turn) ' "$work/out" ||
  fail "none of the game's functions among the top symbols: $(cat "$work/out")"

# After the signal $2 to profile $1 (a label for messages): exit 130 with
# its line, and none of the workload's processes left.
stopped_cleanly() {
  local what=$1 pid=$2 rc
  wait "$pid"
  rc=$?
  [ "$rc" -eq 130 ] && grep -q "stopped; the workload was ended" "$work/err" ||
    fail "$what: exit $rc: $(cat "$work/err")"
  for _ in $(seq 100); do pgrep -f -- "prof-$pid" >/dev/null || break; sleep 0.05; done
  pgrep -af -- "prof-$pid" && fail "$what: the workload's processes are still running"
}

# SIGTERM mid-run: the engine, the reader and perf are ended and the
# work directory removed (formerly: the engine ran on, orphaned).
"$xring" profile engine --seconds 5 --games 100 >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 200); do pgrep -f -- "--name prof-$pid " >/dev/null && break; sleep 0.05; done
pgrep -f -- "--name prof-$pid " >/dev/null || fail "SIGTERM: the engine never started"
kill -TERM "$pid"
stopped_cleanly SIGTERM "$pid"

# SIGINT while perf records: to the whole process group (a terminal's
# Ctrl-C) and to the profile alone (`kill -INT`). The same, and no new
# /tmp/perf-vdso.so-XXXXXX (formerly perf was SIGKILLed 0.25 s after the
# profile's KeyboardInterrupt, and when that fell in its final write of the
# build-ids it left the file; the test cannot aim at that instant).
# Job control on: a background job then has its own process group, as a
# terminal's foreground job does, and SIGINT is not ignored in it (without
# it bash starts background jobs with SIGINT ignored, and Python keeps that).
for to in group alone; do
  before=$(ls /tmp/perf-vdso.so-* 2>/dev/null | sort)
  set -m
  "$xring" profile engine --seconds 5 --games 100 >"$work/out" 2>"$work/err" &
  pid=$!
  set +m
  for _ in $(seq 300); do pgrep -P "$pid" -f "^perf record" >/dev/null && break; sleep 0.05; done
  pgrep -P "$pid" -f "^perf record" >/dev/null || fail "SIGINT ($to): perf never started recording"
  if [ "$to" = group ]; then kill -INT -- -"$pid"; else kill -INT "$pid"; fi
  stopped_cleanly "SIGINT ($to)" "$pid"
  after=$(ls /tmp/perf-vdso.so-* 2>/dev/null | sort)
  left=$(comm -13 <(echo "$before") <(echo "$after"))
  [ -z "$left" ] || fail "SIGINT ($to): perf's temporary files left: $left"
done

[ "$fails" -eq 0 ] && echo "test_profile: ok"
[ "$fails" -eq 0 ]
