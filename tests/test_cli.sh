#!/usr/bin/env bash
# The CLI contract of issue 2: spellings, --help everywhere, one-line errors
# with a non-zero exit, tail's --json and --raw output (decoded by Debian's
# flatc), --hugepages require failing clearly, SIGTERM removing the arena.
# Usage: test_cli.sh XRING SCHEMA
set -uo pipefail
xring=$1 schema=$2
name="t$$-cli"
work=$(mktemp -d)
fails=0
engine=
cleanup() { [ -n "$engine" ] && kill "$engine" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect_err CODE PATTERN -- command...: exits CODE, prints exactly one line matching PATTERN
expect_err() {
  local code=$1 pat=$2; shift 3
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  [ "$rc" -eq "$code" ] || fail "'$*' exited $rc, want $code ($out)"
  [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "'$*' printed more than one line: $out"
  grep -qE -- "$pat" <<<"$out" || fail "'$*' said '$out', want /$pat/"
}

for cmd in engine info tail setup games; do
  # Not piped: grep -q leaving early would SIGPIPE a long help (pipefail).
  grep -q "usage: xring $cmd" <<<"$("$xring" "$cmd" --help)" || fail "$cmd --help"
done
"$xring" --help | grep -q "commands:" || fail "xring --help"
expect_err 2 "unknown command 'bogus'" -- "$xring" bogus
expect_err 2 "unknown option '--bogus'" -- "$xring" engine --name x --bogus
expect_err 2 "--name is required" -- "$xring" engine
expect_err 2 "--policy must be lossless or lossy" -- "$xring" engine --name x --policy sometimes
expect_err 2 "--hugepages must be require, prefer or off" -- "$xring" engine --name x --hugepages maybe
expect_err 2 "--ring-size 'lots' is not a size" -- "$xring" engine --name x --ring-size lots
expect_err 2 "--record-bytes must be" -- "$xring" engine --name x --record-bytes 0
expect_err 2 "--numa-node 'x' is not a node number" -- "$xring" engine --name x --numa-node x
expect_err 2 "--count needs a value" -- "$xring" engine --name x --count
expect_err 2 "--name 'a b': use 1-47 characters" -- "$xring" engine --name "a b"
expect_err 2 "--stream '.s': use 1-31 characters" -- "$xring" engine --name x --stream .s
expect_err 1 "NUMA node 999 does not exist" -- "$xring" engine --name "$name-numa" --numa-node 999
expect_err 1 "no engine '$name-none' .*is running" -- "$xring" tail "$name-none"
expect_err 1 "no engine '$name-none' is running" -- "$xring" info "$name-none"
expect_err 2 "-n '0' is not a positive count" -- "$xring" tail x -n 0

# info on an arena file of another user: whose it is and what to do, in one
# line. As root: a file of uid 65534 (not trusted); as uid 65534: root's
# (mode 0600, not readable). Needs root, and an xring that uid 65534 may run.
if [ "$(id -u)" -eq 0 ]; then
  mkdir -p "$work/other" "$work/rootd"
  : > "$work/other/xring-$name-oth"
  chown 65534 "$work/other/xring-$name-oth"
  expect_err 1 "arena of engine '$name-oth' \($work/other/xring-$name-oth\) belongs to user nobody \(uid 65534\).*run \`sudo -u nobody env XRING_DIR=$work/other xring info $name-oth\`" \
    -- env XRING_DIR="$work/other" "$xring" info "$name-oth"
  install -m 0600 /dev/null "$work/rootd/xring-$name-root"
  chmod 0711 "$work"; chmod 0755 "$work/rootd"
  # A copy uid 65534 can run wherever the checkout lives (under /root,
  # mode 0700, it could not reach the build's).
  install -m 0755 "$xring" "$work/xring-nobody"
  if setpriv --reuid=65534 --regid=65534 --clear-groups env "$work/xring-nobody" --help >/dev/null 2>&1; then
    expect_err 1 "arena of engine '$name-root' .* belongs to user root \(uid 0\).*run \`sudo env XRING_DIR=$work/rootd xring info $name-root\`" \
      -- setpriv --reuid=65534 --regid=65534 --clear-groups env XRING_DIR="$work/rootd" "$work/xring-nobody" info "$name-root"
  else
    fail "uid 65534 cannot run a copy of xring in $work"
  fi
  chmod 0700 "$work"
fi

# XRING_RUN_DIR: a relative one would name another directory in each working
# directory, so engine and readers refuse it; one too long for a Unix socket
# address (107 bytes, NUL aside) is refused with the limit named; one that
# others may write is refused with what to use instead.
expect_err 1 "cannot start engine '$name-rel': XRING_RUN_DIR must be an absolute path, not 'rel'" \
  -- env -C "$work" XRING_RUN_DIR=rel "$xring" engine --name "$name-rel" --count 10 --quiet
[ ! -e "$work/rel" ] || fail "a relative XRING_RUN_DIR was made"
expect_err 1 "cannot attach to '$name-rel': XRING_RUN_DIR must be an absolute path, not 'rel'" \
  -- env -C "$work" XRING_RUN_DIR=rel "$xring" tail "$name-rel"
long="$work/$(printf 'd%.0s' $(seq 90))"
mkdir -m 0700 "$long"
tail_len=$(( ${#name} + 5 + 6 ))  # "/$name-long.sock"
expect_err 1 "cannot start engine '$name-long': set XRING_RUN_DIR to a directory path of at most $((107 - tail_len)) bytes: a Unix socket address holds 107, and the control socket path would be $(( ${#long} + tail_len )): $long/$name-long.sock" \
  -- env XRING_RUN_DIR="$long" "$xring" engine --name "$name-long" --count 10 --quiet
expect_err 1 "cannot attach to '$name-long': set XRING_RUN_DIR to a directory path of at most $((107 - tail_len)) bytes: a Unix socket address holds 107, and the control socket path would be $(( ${#long} + tail_len )): $long/$name-long.sock" \
  -- env XRING_RUN_DIR="$long" "$xring" tail "$name-long"
# Past the 127 bytes the reader once copied the directory into.
expect_err 1 "cannot attach to '$name-long': set XRING_RUN_DIR to a directory path of at most [0-9]+ bytes: .*: $long$long/" \
  -- env XRING_RUN_DIR="$long$long" "$xring" tail "$name-long"
mkdir -m 0777 "$work/open"; chmod 0777 "$work/open"
expect_err 1 "cannot start engine '$name-open': .*$work/open is writable by every user \(mode 0777\).*; set XRING_RUN_DIR to a directory this user owns with mode 0700" \
  -- env XRING_RUN_DIR="$work/open" "$xring" engine --name "$name-open" --count 10 --quiet
expect_err 1 "cannot attach to '$name-open': $work/open is writable by every user \(mode 0777\).*; set XRING_RUN_DIR, for engine and readers alike, to a directory" \
  -- env XRING_RUN_DIR="$work/open" "$xring" tail "$name-open"
expect_err 2 "which engine" -- "$xring" tail
expect_err 2 "--raw $work/nodir: not a directory; create it first" -- "$xring" tail "$name-none" --raw "$work/nodir"
ln -s "$work" "$work/rawlink"
expect_err 2 "--raw $work/rawlink is a symbolic link; give --raw the directory itself" -- "$xring" tail "$name-none" --raw "$work/rawlink"
# require, where no hugetlbfs can be had: a directory on another file system.
mkdir -p "$work/plain"
expect_err 1 "--hugepages require: .*not on hugetlbfs" -- env XRING_DIR="$work/plain" "$xring" engine --name "$name-req" --hugepages require

# require, with far more huge pages wanted than any machine here has free.
expect_err 1 "--hugepages require: .*(too few free .* huge pages \(need [0-9]+, have [0-9]+|no hugetlbfs mount)" -- "$xring" engine --name "$name-big" --hugepages require --ring-size 64G

# A running engine: tail prints the fields, --json parses, --raw is FlatBuffers.
"$xring" engine --name "$name" --record-bytes 400 --rate 5000 --quiet &
engine=$!
for _ in $(seq 100); do "$xring" info "$name" >/dev/null 2>&1 && break; sleep 0.05; done
expect_err 1 "already running" -- "$xring" engine --name "$name"
"$xring" tail "$name" -n 3 | grep -cE '^seq=[0-9]+ game=[0-9]+ player=[0-9]+ turn=[0-9]+ action=-?[0-9]+ reward=-?[0-9.]+ done=[01] applied=-?[0-9]+ by=[a-z_]+ obs=u8\[400\]$' \
  | grep -qx 3 || fail "tail text lines"
"$xring" tail "$name" -n 4 --json > "$work/j"
/usr/bin/python3 - "$work/j" <<'PY' || fail "tail --json"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 4, rows
keys = {"seq", "t_ns", "game_id", "player_id", "turn", "action", "reward", "done",
        "truncated", "obs_dtype", "obs_shape"}
for r in rows:
    assert keys <= set(r), r
    assert r["obs_dtype"] == "u8" and r["obs_shape"] == [400], r
assert [r["seq"] for r in rows] == list(range(rows[0]["seq"], rows[0]["seq"] + 4)), rows
PY
mkdir -p "$work/raw"
"$xring" tail "$name" -n 2 --raw "$work/raw" || fail "tail --raw"
[ "$(ls "$work/raw" | wc -l)" -eq 2 ] || fail "tail --raw wrote $(ls "$work/raw")"
for f in "$work"/raw/*.bin; do
  seq=$(basename "$f" .bin)
  flatc --json --strict-json --raw-binary -o "$work/raw" "$schema" -- "$f" || fail "flatc $f"
  grep -q "\"seq\": $seq" "$work/raw/$seq.json" || fail "flatc decoded $f without seq $seq"
done
"$xring" info "$name" --json | /usr/bin/python3 -c '
import json, sys
i = json.load(sys.stdin)
assert i["backing"] in ("hugetlbfs", "shm", "shm+thp"), i
r = i["streams"][0]["rings"][0]
assert i["streams"][0]["name"] == "experience" and r["written"] > 0, i
' || fail "info --json"
path=$("$xring" info "$name" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
[ -e "$path" ] || fail "arena file $path missing while running"
kill -TERM "$engine"; wait "$engine"; rc=$?; engine=
[ "$rc" -eq 0 ] || fail "engine exit status $rc after SIGTERM"
[ ! -e "$path" ] || fail "arena $path left behind after SIGTERM"

# --raw DIR writes DIR/<seq>.bin, names anyone can predict (seq from the
# ring's head, which info gives as "records"). A root tail into a directory
# where uid 65534 planted those names as links to a file of root's must not
# write that file: a directory another user may write, or owns, is refused
# before anything is read; in a directory of root's, a name that is taken
# is an error (O_EXCL), not a link followed.
if [ "$(id -u)" -eq 0 ]; then
  "$xring" engine --name "$name-raw" --record-bytes 100 --rate 20 --quiet &
  engine=$!
  for _ in $(seq 100); do "$xring" info "$name-raw" >/dev/null 2>&1 && break; sleep 0.05; done
  printf 'victim\n' > "$work/victim"
  plant() {  # plant DIR: DIR/<seq>.bin -> $work/victim, of uid 65534, for the next 200 seqs
    "$xring" info "$name-raw" --json | /usr/bin/python3 -c '
import json, os, sys
w = json.load(sys.stdin)["streams"][0]["rings"][0]["records"]
for s in range(w, w + 200):
    p = "%s/%d.bin" % (sys.argv[1], s)
    os.symlink(sys.argv[2], p)
    os.lchown(p, 65534, 65534)
' "$1" "$work/victim" || fail "planting links in $1"
  }
  mkdir -m 1777 "$work/rawopen"; chmod 1777 "$work/rawopen"; plant "$work/rawopen"
  expect_err 1 "^xring tail: --raw $work/rawopen is writable by every user \(mode 1777\), who could plant files there; give --raw a directory of this user's that no other user may write$" \
    -- "$xring" tail "$name-raw" -n 1 --timeout 5 --raw "$work/rawopen"
  mkdir -m 0755 "$work/rawnobody"; chown 65534 "$work/rawnobody"; plant "$work/rawnobody"
  expect_err 1 "^xring tail: --raw $work/rawnobody belongs to uid 65534, not to this user or root, who could plant files there; give --raw a directory of this user's that no other user may write$" \
    -- "$xring" tail "$name-raw" -n 1 --timeout 5 --raw "$work/rawnobody"
  mkdir -m 0755 "$work/rawlinks"; plant "$work/rawlinks"
  expect_err 1 "^xring tail: --raw $work/rawlinks/[0-9]+\.bin already exists \(tail overwrites nothing\); give --raw an empty directory$" \
    -- "$xring" tail "$name-raw" -n 1 --timeout 5 --raw "$work/rawlinks"
  [ "$(cat "$work/victim")" = victim ] || fail "tail --raw wrote through a planted link: $(head -c 40 "$work/victim" | od -c | head -1)"
  [ -z "$(find "$work/rawlinks" -type f)" ] || fail "tail --raw wrote into $work/rawlinks"
  kill -TERM "$engine"; wait "$engine"; engine=
fi

# One name, one engine, across backings; a stale file left on hugetlbfs by a
# killed engine does not hide a live engine of that name on /dev/shm.
if "$xring" setup --help >/dev/null && [ -d /dev/hugepages ] && grep -q hugetlbfs /proc/mounts; then
  "$xring" engine --name "$name-x" --rate 1000 --quiet &
  e1=$!
  for _ in $(seq 100); do "$xring" info "$name-x" >/dev/null 2>&1 && break; sleep 0.05; done
  if "$xring" info "$name-x" | grep -q hugetlbfs; then
    expect_err 1 "already running" -- "$xring" engine --name "$name-x" --hugepages off
    kill -KILL "$e1"; wait "$e1" 2>/dev/null
    expect_err 1 "has stopped" -- "$xring" info "$name-x"
    "$xring" engine --name "$name-x" --hugepages off --rate 1000 --quiet &
    engine=$!
    for _ in $(seq 100); do "$xring" info "$name-x" >/dev/null 2>&1 && break; sleep 0.05; done
    "$xring" info "$name-x" | grep -q "backing  shm /dev/shm/xring-$name-x" || fail "live /dev/shm engine hidden by a stale file"
    "$xring" tail "$name-x" -n 1 --timeout 5 >/dev/null || fail "tail of the live engine behind a stale file"
    kill -TERM "$engine"; wait "$engine"; engine=
    rm -f "/dev/hugepages/xring-$name-x"
  else
    kill -TERM "$e1"; wait "$e1"
  fi
fi

# The built-in game: shapes from --board, experiences flow, bad values refused.
expect_err 2 "--board '0x5' is not HxW" -- "$xring" engine --name x --board 0x5
expect_err 2 "--obs-dtype must be u8 or f32" -- "$xring" engine --name x --obs-dtype f64
expect_err 2 "--players must be 1..8" -- "$xring" engine --name x --players 9
expect_err 2 "--tick-ms 'soon' is not a number of milliseconds" -- "$xring" engine --name x --tick-ms soon
expect_err 1 "--game $work/nope.so: " -- "$xring" engine --name x --game "$work/nope.so"
"$xring" engine --name "$name-game" --games 20 --board 10x12 --players 3 --obs-dtype f32 --quiet &
engine=$!
for _ in $(seq 100); do "$xring" info "$name-game" >/dev/null 2>&1 && break; sleep 0.05; done
"$xring" tail "$name-game" -n 6 --json > "$work/g" || fail "tail of a game engine"
/usr/bin/python3 - "$work/g" <<'PY' || fail "game records: shapes, players"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 6, rows
for r in rows:
    assert r["obs_dtype"] == "f32" and r["obs_shape"] == [9, 10, 12], r
    assert 0 <= r["player_id"] < 3 and r["action"] >= 0, r
PY
kill -TERM "$engine"; wait "$engine"; engine=

# Shards: one ring each, all of them read.
expect_err 2 "--shards must be 1..32" -- "$xring" engine --name x --shards 0
expect_err 2 "--lease-timeout must be 0 \(never\) or at least 0.001 s, not .0.0000001." -- "$xring" engine --name x --lease-timeout 0.0000001
expect_err 2 "--high-watermark must be a fraction between 0 and 1, not '2'" -- "$xring" engine --name x --high-watermark 2
expect_err 2 "--low-watermark 0.95 must be below --high-watermark 0.90" -- "$xring" engine --name x --low-watermark 0.95
expect_err 2 "--games 5 is more than --max-games 4" -- "$xring" engine --name x --games 5 --max-games 4
expect_err 2 "--max-agents 100 is more than --max-readers 64 \\(each agent reads through a reader slot\\): raise --max-readers" \
  -- "$xring" engine --name x --max-agents 100
expect_err 2 "--max-agents 100 is more than --max-readers 80" -- "$xring" engine --name x --max-agents 100 --max-readers 80
"$xring" engine --name "$name-sh" --games 9 --shards 3 --board 8x8 --quiet &
engine=$!
for _ in $(seq 100); do "$xring" info "$name-sh" >/dev/null 2>&1 && break; sleep 0.05; done
"$xring" info "$name-sh" --json | /usr/bin/python3 -c '
import json, sys
rings = json.load(sys.stdin)["streams"][0]["rings"]
assert len(rings) == 3, rings
' || fail "3 shards, 3 rings"
# Until every game was seen: which shard runs first, and for how long, is
# the scheduler's (3000 records could all come from two of them). The reader
# hanging up ends tail (EPIPE), hence the || true.
{ "$xring" tail "$name-sh" -n 1000000 --json 2>/dev/null || true; } | /usr/bin/python3 -c '
import json, sys
games = set()
for l in sys.stdin:
    games.add(json.loads(l)["game_id"])
    if games == set(range(9)):
        sys.exit(0)
sys.exit("only games %s in a million records" % sorted(games))
' || fail "records from every shard's games"
kill -TERM "$engine"; wait "$engine"; engine=

# SIGTERM while the engine sleeps on its io_uring tick: a clean exit, 0.
"$xring" engine --name "$name-tick" --games 50 --tick-ms 50 --quiet &
engine=$!
for _ in $(seq 100); do "$xring" info "$name-tick" >/dev/null 2>&1 && break; sleep 0.05; done
"$xring" tail "$name-tick" -n 1 >/dev/null || fail "tail of a ticking engine"
kill -TERM "$engine"; wait "$engine"; rc=$?; engine=
[ "$rc" -eq 0 ] || fail "ticking engine exited $rc after SIGTERM"

# --config: every long option is a key, nothing else is; the command line wins.
for opt in $("$xring" engine --help | grep -oE '^  --[a-z-]+' | sed 's/^  --//' | sort -u); do
  case "$opt" in name|config|help) continue ;; esac
  printf '%s: 1\n' "$opt" > "$work/k.yaml"
  out=$("$xring" engine --config "$work/k.yaml" 2>&1)
  grep -q "unknown key" <<<"$out" && fail "config key '$opt' refused: $out"
done
printf 'name: %s\ngames: 30\nboard: 8x8\nquiet: true\nbogus-key: 3\n' "$name-cfg" > "$work/bad.yaml"
expect_err 2 "--config .*bad.yaml: line 5: unknown key 'bogus-key'" -- "$xring" engine --config "$work/bad.yaml"
printf 'name: [a, b]\n' > "$work/list.yaml"
expect_err 2 "'name' must be a plain value, not a list" -- "$xring" engine --config "$work/list.yaml"
printf 'quiet: maybe\n' > "$work/bool.yaml"
expect_err 2 "'quiet' takes true or false, not 'maybe'" -- "$xring" engine --config "$work/bool.yaml"
expect_err 1 "--config $work/none.yaml: No such file" -- "$xring" engine --config "$work/none.yaml"
printf 'name: %s\ngames: 30\nboard: 8x8\nquiet: true\n' "$name-cfg" > "$work/ok.yaml"
"$xring" engine --config "$work/ok.yaml" --games 40 &
engine=$!
for _ in $(seq 100); do "$xring" info "$name-cfg" >/dev/null 2>&1 && break; sleep 0.05; done
"$xring" tail "$name-cfg" -n 400 --json | /usr/bin/python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert rows[0]["obs_shape"] == [9, 8, 8], rows[0]
assert {r["game_id"] for r in rows} == set(range(40)), "the command line --games 40 must win"
' || fail "engine from --config"
kill -TERM "$engine"; wait "$engine"; engine=

# Games at runtime: create, list (--json), reset, destroy; a --shape stream
# its games join; one-line refusals naming the cap, the shapes, the id.
expect_err 2 "--shape 'x:8' is not NAME:HxW:PLAYERS" -- "$xring" engine --name x --shape x:8
expect_err 2 "--shape small: a stream of that name is declared already" -- "$xring" engine --name x --shape small:8x8:2,small:6x6:2
expect_err 2 "--shape is for games" -- "$xring" engine --name x --record-bytes 100 --shape s:8x8:2
expect_err 2 "--shape a: stream experience carries that shape already" -- "$xring" engine --name x --board 8x8 --shape a:8x8:2
expect_err 2 "5 streams x 8 shards make 40 rings; an arena holds at most 32" -- "$xring" engine --name x --shards 8 --shape a:8x8:2,b:6x6:2,c:5x5:2,d:4x4:2
expect_err 2 "make 34 rings; an arena holds at most 32: fewer --shape, --shards or --producers" -- "$xring" engine --name x --shards 8 --producers 9 --shape a:8x8:2
expect_err 2 "--producers must be 0..31, not '40'" -- "$xring" engine --name x --producers 40
expect_err 2 "takes no producers" -- "$xring" engine --name x --producers 1 --record-bytes 64
expect_err 2 "say out or in" -- "$xring" bridge sideways x --nats nats://127.0.0.1:1 --subject a
expect_err 2 "name the engine, --nats and --subject" -- "$xring" bridge out x --subject a
expect_err 2 "must be a NATS subject: tokens of printable characters" -- "$xring" bridge in x --nats nats://127.0.0.1:1 --subject "a.>" --unauthenticated
expect_err 2 "--zstd must be a level 1..19" -- "$xring" bridge out x --nats nats://127.0.0.1:1 --subject a --zstd 30
expect_err 2 "give --key-file PATH" -- "$xring" bridge out x --nats nats://127.0.0.1:1 --subject a
expect_err 2 "not both" -- "$xring" bridge out x --nats nats://127.0.0.1:1 --subject a --unauthenticated --key-file /nonexistent
expect_err 2 "cannot open key file /nonexistent" -- "$xring" bridge out x --nats nats://127.0.0.1:1 --subject a --key-file /nonexistent
expect_err 1 "cannot connect to NATS at nats://127.0.0.1:1" -- "$xring" bridge out x --nats nats://127.0.0.1:1 --subject a --unauthenticated
expect_err 2 "--obs-dtype must be u8 or f32, not 'i8'" -- "$xring" games x create 1 --obs-dtype i8
expect_err 2 "unknown verb 'make'" -- "$xring" games x make 3
expect_err 2 "create takes a count" -- "$xring" games x create
expect_err 1 "no engine '$name-none' is running" -- "$xring" games "$name-none" list
"$xring" engine --name "$name-g" --games 3 --board 8x8 --shape small:6x6:2:u8 --max-games 10 \
  --tick-ms 20 --ring-size 1M --hugepages off --quiet &
engine=$!
for _ in $(seq 100); do "$xring" games "$name-g" list >/dev/null 2>&1 && break; sleep 0.05; done
"$xring" games "$name-g" create 2 --board 6x6 --seed 40 | grep -qx "created 2 games: ids 3..4" \
  || fail "games create"
"$xring" games "$name-g" list --json | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
g = {x["id"]: x for x in j["games"]}
assert j["live"] == 5 and sorted(g) == [0, 1, 2, 3, 4], j
assert g[3]["board"] == [6, 6] and g[3]["seed"] == 40 and g[3]["stream"] == 1, g[3]
assert g[0]["board"] == [8, 8] and g[0]["stream"] == 0 and not g[0]["owned"], g[0]
' || fail "games list --json"
"$xring" tail "$name-g" --stream small -n 4 | grep -cE '^seq=[0-9]+ game=[34] ' | grep -qx 4 \
  || fail "tail of the created games' stream"
"$xring" games "$name-g" reset 3 7 | grep -q "game 3 reset to seed 7" || fail "games reset"
expect_err 1 "the engine hosts 5 games and --max-games is 10: 6 more do not fit" -- "$xring" games "$name-g" create 6
expect_err 1 "no stream of this engine carries such games; its shapes: grid 8x8 2 players u8 \(stream experience\), grid 6x6 2 players u8 \(stream small\)" -- "$xring" games "$name-g" create 1 --board 5x5
"$xring" games "$name-g" destroy 0,3-4 >/dev/null || fail "games destroy"
expect_err 1 "no game 3 here \(it was destroyed\)" -- "$xring" games "$name-g" reset 3 1
expect_err 2 "'3-x' is not a list of game ids" -- "$xring" games "$name-g" destroy 3-x
# One command's ids are one all-or-nothing request (up to 1024): game 1 stays,
# where each argument was a request of its own, game 1 destroyed before the
# refusal of 99, which said only that it could not.
expect_err 1 "cannot destroy games: .*no game 99 here" -- "$xring" games "$name-g" destroy 1 99
"$xring" games "$name-g" list --json | /usr/bin/python3 -c '
import json, sys
assert 1 in {g["id"] for g in json.load(sys.stdin)["games"]}, "game 1 destroyed by a refused command"
' || fail "games destroy of a command refused destroys nothing"
expect_err 2 "more than 10000000 game ids" -- "$xring" games "$name-g" destroy 0-5000000 5000000-9999999
expect_err 1 "no game 0 here" -- "$xring" games "$name-g" destroy 0-9999999
# Seeds past 2^64 - 1 are refused, not wrapped to 0.
expect_err 2 "--seed 18446744073709551615: the seeds of 2 games" -- "$xring" games "$name-g" create 2 --seed 18446744073709551615
[ "$("$xring" games "$name-g" list | tail -n 1)" = "2 games live" ] || fail "games list after destroy"
kill -TERM "$engine"; wait "$engine"; rc=$?; engine=
[ "$rc" -eq 0 ] || fail "engine with games exit status $rc after SIGTERM"

# Agents: `xring agent` acts for seats; xring info shows it; a second agent's
# claim of a held seat is refused naming the holder; usage errors.
expect_err 2 "which games\? add --games LO-HI" -- "$xring" agent x
expect_err 2 "--games must be LO-HI" -- "$xring" agent x --games 9-3
expect_err 2 "--players must be a list of 0..7" -- "$xring" agent x --games 0-1 --players 9
expect_err 2 "--fallback must be noop, repeat or policy" -- "$xring" engine --name x --fallback maybe
expect_err 2 "--input-delay must be 0..7 turns" -- "$xring" engine --name x --input-delay 8
expect_err 1 "no engine '$name-none' is running" -- "$xring" agent "$name-none" --games 0-1
"$xring" engine --name "$name-ag" --games 8 --board 8x8 --action-timeout-ms 50 --fallback repeat \
  --ring-size 1M --hugepages off --quiet &
engine=$!
for _ in $(seq 100); do "$xring" games "$name-ag" list >/dev/null 2>&1 && break; sleep 0.05; done
# Until told to stop: a first agent that had ended on a timer before the
# second one's claim (a slow run: ASan, a busy machine) let that claim
# succeed, and the second agent then ran for ever.
"$xring" agent "$name-ag" --games 0-3 --seconds 300 > "$work/agent.out" &
agent=$!
# Until the agent's answers are counted (the shards publish twice a second).
ok=
for _ in $(seq 100); do
  "$xring" info "$name-ag" --json | /usr/bin/python3 -c '
import json, sys
a = [x for x in json.load(sys.stdin)["agents"] if x["state"] == "live"]
assert a and a[0]["label"] == "xring-agent" and a[0]["actions"] > 0, a
' 2>/dev/null && { ok=1; break; }
  sleep 0.05
done
[ -n "$ok" ] || fail "xring info --json shows no live agent with actions"
"$xring" info "$name-ag" | grep -qE "agent +0 pid [0-9]+ xring-agent \(live\): 1 claims" \
  || fail "xring info shows the agent"
expect_err 1 "cannot claim games 2-5: .*seat \(game 2, player 0\) is held by agent 0 \(\"xring-agent\"" \
  -- "$xring" agent "$name-ag" --games 2-5 --seconds 10
kill -INT "$agent"
wait "$agent" || fail "xring agent exit status"
grep -qE "^xring agent: done; [0-9]+ answers/s; actions [1-9][0-9]*, fallbacks" "$work/agent.out" \
  || fail "xring agent summary: $(cat "$work/agent.out")"
kill -TERM "$engine"; wait "$engine"; rc=$?; engine=
[ "$rc" -eq 0 ] || fail "engine with agents exit status $rc after SIGTERM"

# --count: the engine writes N and exits by itself.
"$xring" engine --name "$name-count" --count 1000 --quiet || fail "engine --count"
"$xring" engine --name "$name-count" --record-bytes 100 --count 1000 --quiet || fail "synthetic --count"

[ "$fails" -eq 0 ] && echo "cli: all checks passed" || { echo "cli: $fails failed"; exit 1; }
