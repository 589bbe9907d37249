#!/usr/bin/env bash
# `xring bench` (cli/cmd_bench.c): usage errors in one line; the part's
# program found and given --quick's and --json's arguments; a benchmark that
# reports a failed data check has its figures withheld and the command fails;
# and, where this build has perf/, a real short ring run whose JSON carries
# the bounds measured in the same run beside xring's figure.
# Usage: test_bench.sh XRING
set -uo pipefail
xring=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# run ARGS...: out/err/rc of `xring bench ARGS...`
run() {
  "$xring" bench "$@" >"$work/out" 2>"$work/err"
  rc=$?
}

run
[ "$rc" -eq 2 ] || fail "no part: exit $rc, want 2"
[ "$(wc -l <"$work/err")" -eq 1 ] || fail "no part: not one line: $(cat "$work/err")"
grep -q "say which part" "$work/err" || fail "no part: $(cat "$work/err")"
run nonesuch
[ "$rc" -eq 2 ] && grep -q "unknown part or option 'nonesuch'" "$work/err" ||
  fail "unknown part: exit $rc: $(cat "$work/err")"
run ring engine -- --x
[ "$rc" -eq 2 ] && grep -q "name one part" "$work/err" || fail "-- with two parts: exit $rc"
"$xring" bench --help | grep -q "peers" || fail "--help does not list the parts"

# Stand-ins for the programs: they print a figure and their arguments, and
# exit as $FAKE_RC says.
mkdir "$work/bin"
for p in bench_ring bench_engine; do
  printf '#!/bin/sh\necho "FIGURE 42 from %s: $*"\necho "progress of %s" >&2\n: >"$MARK_DIR/%s"\n' \
    "$p" "$p" "$p" >"$work/bin/$p"
  # With --json, what bench_ring prints (its results' fields plot.py draws).
  cat >>"$work/bin/$p" <<'FAKE'
[ -n "${HOLD:-}" ] && while [ ! -e "$HOLD" ]; do sleep 0.05; done
case " $* " in *" --json "*)
  echo '{"bench":"ring","results":[{"size":64,"gbps":1.5,"bare_gbps":2,"memcpy_gbps":8},{"size":4096,"gbps":4,"bare_gbps":4.5,"memcpy_gbps":8}]}'
  for g in 100 1000; do
    echo '{"benchmark":"bench_engine","games":'$g',"shards":2,"record_bytes":5376,"exp_per_s":2000000,"memcpy_gbps":10,"cpu_ns_per_exp":700,"game_ns_per_exp":650,"bound_ns_per_exp":1000,"rss_kib":'$((g * 7))'}'
  done;;
esac
exit "${FAKE_RC:-0}"
FAKE
  chmod +x "$work/bin/$p"
done
export XRING_BENCH_DIR=$work/bin MARK_DIR=$work
run ring --quick --json
[ "$rc" -eq 0 ] || fail "fake ring: exit $rc: $(cat "$work/err")"
grep -q "FIGURE 42 from bench_ring: --seconds 0.3 --rounds 3 .* --json" "$work/out" ||
  fail "fake ring: quick and json arguments not passed: $(cat "$work/out")"
grep -q "progress of bench_ring" "$work/err" || fail "fake ring: its stderr did not pass through"
run engine -- --games 7
grep -q "FIGURE 42 from bench_engine: --games 7" "$work/out" ||
  fail "arguments after -- not passed: $(cat "$work/out")"

FAKE_RC=1 run ring engine
[ "$rc" -eq 1 ] || fail "a failed data check: exit $rc, want 1"
grep -q FIGURE "$work/out" && fail "a failed data check: figures printed: $(cat "$work/out")"
[ "$(grep -c "a data check failed" "$work/err")" -eq 2 ] ||
  fail "a failed data check: not said for each part: $(cat "$work/err")"
FAKE_RC=3 run ring
[ "$rc" -eq 1 ] && grep -q "exited with status 3" "$work/err" && ! grep -q FIGURE "$work/out" ||
  fail "a benchmark that failed to run: exit $rc: $(cat "$work/err")"

# --plot: the part's JSON kept in DIR, and a chart drawn from it (where
# matplotlib is installed: scripts/deps.sh installs it).
run ring --plot "$work/plots"
if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  [ "$rc" -eq 0 ] || fail "--plot: exit $rc: $(cat "$work/err")"
  grep -q '"results"' "$work/plots/ring.json" || fail "--plot: no ring.json"
  [ "$(head -c 4 "$work/plots/ring_throughput.png" | tail -c 3)" = PNG ] ||
    fail "--plot: no PNG: $(ls "$work/plots"): $(cat "$work/err")"
  grep -q "ring_throughput.png" "$work/err" || fail "--plot: the chart's path not said"
else
  [ "$rc" -eq 1 ] && grep -q "python3-matplotlib" "$work/err" ||
    fail "--plot without matplotlib: exit $rc: $(cat "$work/err")"
fi
# The engine's chart: its three panels from what bench_engine prints.
run engine --plot "$work/plots3"
if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  [ "$rc" -eq 0 ] && [ "$(head -c 4 "$work/plots3/engine.png" | tail -c 3)" = PNG ] ||
    fail "--plot engine: exit $rc, no PNG: $(ls "$work/plots3"): $(cat "$work/err")"
fi
# --plot into a directory another user may write (a link planted there
# would be written through) or into a file: refused, one line, exit 2.
mkdir -m 1777 "$work/shared"
run ring --plot "$work/shared"
[ "$rc" -eq 2 ] && grep -q "writable by every user" "$work/err" && [ ! -e "$work/shared/ring.json" ] ||
  fail "--plot into a directory of mode 1777: exit $rc: $(cat "$work/err")"
: >"$work/afile"
run ring --plot "$work/afile"
[ "$rc" -eq 2 ] && grep -q "not a directory" "$work/err" || fail "--plot into a file: exit $rc"
FAKE_RC=1 run ring --plot "$work/plots2"
[ "$rc" -eq 1 ] && [ ! -e "$work/plots2/ring.json" ] && [ ! -e "$work/plots2/ring_throughput.png" ] ||
  fail "--plot of a failed data check: exit $rc, $(ls "$work/plots2")"

# Careless arguments: --plot with no directory (the next option is not
# one), too many arguments after --.
run ring --plot --quick
[ "$rc" -eq 2 ] && grep -q "needs a directory" "$work/err" && [ ! -e ./--quick ] ||
  fail "--plot --quick: exit $rc: $(cat "$work/err")"
run ring -- $(seq 1 60)
[ "$rc" -eq 2 ] && grep -q "too many arguments after --" "$work/err" ||
  fail "60 arguments after --: exit $rc: $(cat "$work/err")"

# SIGTERM while a part runs: passed on to it, no figures, no further part,
# exit 128+15. (The stand-in waits for a file that never comes, so it
# stays running until the signal ends it.)
rm -f "$work/bench_ring" "$work/bench_engine"
HOLD=$work/never "$xring" bench ring engine >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 200); do [ -e "$work/bench_ring" ] && break; sleep 0.05; done
[ -e "$work/bench_ring" ] || fail "SIGTERM: the part never started"
kill -TERM "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 143 ] || fail "SIGTERM: exit $rc, want 143: $(cat "$work/err")"
[ -e "$work/bench_engine" ] && fail "SIGTERM: the next part ran"
grep -q "stopped by signal 15" "$work/err" || fail "SIGTERM: not said: $(cat "$work/err")"
grep -q FIGURE "$work/out" && fail "SIGTERM: figures printed"

# A part whose program is nowhere (a copy of xring away from its build's
# perf/): one line saying where it looked and what to build.
mkdir "$work/x" && cp "$xring" "$work/x/xring"
real=$xring xring=$work/x/xring
run wakeup
xring=$real
[ "$rc" -eq 1 ] && grep -q "no benchmark program (looked for $work/bin/bench_wakeup" "$work/err" &&
  grep -q "target benchmarks" "$work/err" || fail "missing program: exit $rc: $(cat "$work/err")"
unset XRING_BENCH_DIR

# The real thing, from this build tree's perf/ (not built with XRING_PERF=OFF).
if [ -x "$(dirname "$xring")/perf/bench_ring" ]; then
  run ring --json -- --sizes 4k --rounds 1 --seconds 0.2 --memcpy-seconds 0.1 --no-pin
  if [ "$rc" -ne 0 ]; then
    fail "bench ring: exit $rc: $(tail -5 "$work/err")"
  else
    /usr/bin/python3 - "$work/out" <<'EOF' || fail "bench ring --json: $(cat "$work/out")"
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for o in objs for r in o.get("results", []) if r.get("size") == 4096]
assert len(rows) == 1, objs
r = rows[0]
# xring's figure, and the bounds of the same run beside it, as ratios
assert r["data_ok"] is True and r["gbps"] > 0, r
assert r["memcpy_gbps"] > 0 and abs(r["ratio"] - r["gbps"] / r["memcpy_gbps"]) < 0.01 + 0.02 * r["ratio"], r
assert r["bare_gbps"] > 0 and r["vs_bare"] > 0, r
EOF
  fi
  echo "bench ring: a real 4 KiB run from this build's perf/"
else
  echo "bench ring: no perf/ in this build (XRING_PERF=OFF): the real run skipped"
fi

# bench_engine: a bad option is one line and exit 2, never figures of
# something else; SIGTERM mid-run (as `xring bench` passes it on) leaves no
# arena, socket or reader behind (their names carry the pid: nothing would
# ever reuse them).
eng=$(dirname "$xring")/perf/bench_engine
if [ -x "$eng" ]; then
  for bad in "--games 0" "--games abc" "--games ,," "--shards 0" "--seconds inf"; do
    out=$("$eng" $bad 2>&1 >/dev/null)
    rc=$?
    [ "$rc" -eq 2 ] && [ "$(wc -l <<<"$out")" -eq 1 ] || fail "bench_engine $bad: exit $rc: $out"
  done
  mkdir -m 0700 "$work/arenas"
  XRING_DIR=$work/arenas XRING_RUN_DIR=$work/arenas "$eng" --games 100 --seconds 30 \
    >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 200); do compgen -G "$work/arenas/xring-bench-engine-$pid-*" >/dev/null && break
    sleep 0.05; done
  compgen -G "$work/arenas/xring-bench-engine-$pid-*" >/dev/null || fail "bench_engine: no arena"
  kill -TERM "$pid"; wait "$pid"
  for _ in $(seq 100); do pgrep -f "^$eng" >/dev/null || break; sleep 0.05; done
  left=$(ls -A "$work/arenas")
  [ -z "$left" ] || fail "bench_engine ended by SIGTERM left: $left"
  pgrep -af "^$eng" && fail "bench_engine ended by SIGTERM left its reader running"
  echo "bench_engine: bad options refused; SIGTERM mid-run leaves nothing behind"
fi

# bench_peers: a peer that hangs is reported as not measured and the others'
# figures stand (exit 0); xring hanging fails the run (exit 2). The hook makes
# the named transport's reader hang as a stuck transport's would.
peers=$(dirname "$xring")/perf/bench_peers
if [ -x "$peers" ]; then
  XR_PEERS_TEST_STALL=pipe "$peers" --quick --sizes 64 --only xring,bare,pipe --timeout 2 \
    --no-pin >"$work/out" 2>"$work/err"
  rc=$?
  [ "$rc" -eq 0 ] && grep -q "pipe .*not measured: the reader did not finish within 2 s (timed out)" \
    "$work/out" && grep -qE "^  xring +[0-9]+ " "$work/out" ||
    fail "bench_peers, a peer that hangs: exit $rc: $(cat "$work/out" "$work/err")"
  XR_PEERS_TEST_STALL=xring "$peers" --quick --sizes 64 --only xring,bare --timeout 2 \
    --no-pin >"$work/out" 2>"$work/err"
  rc=$?
  [ "$rc" -eq 2 ] && grep -q "xring .*not measured: .*timed out" "$work/out" ||
    fail "bench_peers, xring hanging: exit $rc, want 2: $(cat "$work/out" "$work/err")"
  echo "bench_peers: a peer that hangs is not measured, the rest stand; xring hanging fails"
  # iceoryx (where bench_peers has it and iox-roudi is installed): one RouDi
  # a machine, so one already running leaves iceoryx not measured, and the
  # rest stand; a run ended by a signal leaves none of RouDi's segments nor
  # its clients' sockets behind.
  if command -v iox-roudi >/dev/null && ! grep -q "^  iceoryx *absent" <<<"$(
      "$peers" --only iceoryx --sizes 64 --records 10 --seconds 0.01 --rounds 1 2>&1)"; then
    iox-roudi >"$work/roudi.log" 2>&1 &
    roudi=$!
    for _ in $(seq 300); do grep -q "RouDi is ready" "$work/roudi.log" && break; sleep 0.05; done
    "$peers" --quick --sizes 64 --only xring,iceoryx --no-pin >"$work/out" 2>"$work/err"
    rc=$?
    kill -TERM "$roudi"; wait "$roudi"
    [ "$rc" -eq 0 ] && grep -q "iceoryx .*not measured: an iox-roudi is running already (pid $roudi" \
      "$work/out" && grep -qE "^  xring +[0-9]+ " "$work/out" ||
      fail "bench_peers beside a RouDi: exit $rc: $(cat "$work/out" "$work/err")"
    # What is there before (another user's files, say) is not this run's.
    iox_files() { ls -d /dev/shm/iceoryx_mgmt /tmp/roudi /tmp/bench_peers_[rw]* 2>/dev/null | sort; }
    before=$(iox_files)
    new_files() { comm -13 <(echo "$before") <(iox_files) | grep bench_peers_; }
    "$peers" --sizes 64 --only iceoryx --seconds 5 --no-pin >"$work/out" 2>"$work/err" &
    pid=$!
    # Until its reader or writer is an iceoryx client (its socket in /tmp).
    for _ in $(seq 300); do
      new_files >/dev/null && break; sleep 0.05
    done
    new_files >/dev/null || fail "bench_peers: no iceoryx client started"
    kill -TERM "$pid"; wait "$pid"
    left=$(comm -13 <(echo "$before") <(iox_files))
    [ -z "$left" ] || fail "bench_peers ended by SIGTERM left: $left"
    pgrep -x iox-roudi >/dev/null && fail "bench_peers ended by SIGTERM left iox-roudi running"
    echo "bench_peers: iceoryx beside another RouDi is not measured; SIGTERM leaves nothing of it"
  fi
fi

[ "$fails" -eq 0 ] && echo "test_bench: ok"
[ "$fails" -eq 0 ]
