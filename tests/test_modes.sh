#!/usr/bin/env bash
# The modes and owners of what an engine creates, as docs/operations.md
# ("Permissions") says them, and what another user can plant where a
# non-root engine makes its run directory (/tmp/xring-UID): a directory of
# someone else's, a link, a directory anyone may write. Root only: the
# non-root engine runs as uid 65534 (setpriv), from a copy of xring it may
# execute.
# Usage: test_modes.sh XRING
set -uo pipefail
xring=$1
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (runs an engine as uid 65534)"; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: no setpriv"; exit 77; }
name="t$$-modes"
work=$(mktemp -d)
chmod 0755 "$work"
fails=0
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work" "/tmp/xring-65534"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# mode_of PATH -> "octal-mode owner-uid group-gid type"
mode_of() { stat -c '%a %u %g %F' "$1"; }

# until_file PATH: waits (10 s at most) until PATH exists.
until_file() {
  local end=$((SECONDS + 10))
  until [ -e "$1" ] || ((SECONDS >= end)); do sleep 0.05; done
  [ -e "$1" ]
}

# The arena file: mode 0600, the engine's; wherever the backing put it.
arena_of() { "$xring" stat "$1" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])'; }

# 1. A root engine, XRING_RUN_DIR not there yet: the engine makes it 0755.
export XRING_RUN_DIR="$work/run"
"$xring" engine --name "$name" --games 4 --quiet & pids+=($!)
until_file "$XRING_RUN_DIR/$name.sock" || fail "no socket in $XRING_RUN_DIR"
[ "$(mode_of "$XRING_RUN_DIR")" = "755 0 0 directory" ] || fail "run dir: $(mode_of "$XRING_RUN_DIR")"
[ "$(mode_of "$XRING_RUN_DIR/$name.sock")" = "660 0 0 socket" ] ||
  fail "socket without an allow-list: $(mode_of "$XRING_RUN_DIR/$name.sock"), want 660 root root"
end=$((SECONDS + 10))
until arena=$(arena_of "$name" 2>/dev/null) || ((SECONDS >= end)); do sleep 0.05; done
[ "$(mode_of "$arena")" = "600 0 0 regular file" ] || fail "arena $arena: $(mode_of "$arena")"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null
[ ! -e "$arena" ] || fail "the arena $arena outlived its engine"
[ ! -e "$XRING_RUN_DIR/$name.sock" ] || fail "the socket outlived its engine"

# 2. --allow-uid: the socket 0666 (the allow-list is the gate); --allow-gid:
#    the socket's group is the first listed.
"$xring" engine --name "$name-u" --games 4 --quiet --allow-uid 65534 & pids+=($!)
until_file "$XRING_RUN_DIR/$name-u.sock" || fail "no socket (allow-uid)"
[ "$(mode_of "$XRING_RUN_DIR/$name-u.sock")" = "666 0 0 socket" ] ||
  fail "socket with --allow-uid: $(mode_of "$XRING_RUN_DIR/$name-u.sock")"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null
"$xring" engine --name "$name-g" --games 4 --quiet --allow-gid 65534 & pids+=($!)
until_file "$XRING_RUN_DIR/$name-g.sock" || fail "no socket (allow-gid)"
[ "$(mode_of "$XRING_RUN_DIR/$name-g.sock")" = "660 0 65534 socket" ] ||
  fail "socket with --allow-gid 65534: $(mode_of "$XRING_RUN_DIR/$name-g.sock")"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null

# 3. A non-root engine with no XRING_RUN_DIR serves /tmp/xring-UID, which it
#    makes 0755, its own; its arena is its own, 0600.
unset XRING_RUN_DIR
install -m 0755 "$xring" "$work/xring"
# exec: in the background, $! is then the engine itself.
as_nobody() { exec setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
rm -rf /tmp/xring-65534
(as_nobody "$work/xring" engine --name "$name-n" --games 4 --quiet --hugepages off) & pids+=($!)
until_file "/tmp/xring-65534/$name-n.sock" || fail "no socket in /tmp/xring-65534"
[ "$(mode_of /tmp/xring-65534)" = "755 65534 65534 directory" ] ||
  fail "/tmp/xring-65534: $(mode_of /tmp/xring-65534)"
end=$((SECONDS + 10))
until arena=$( (as_nobody "$work/xring" stat "$name-n" --json) 2>/dev/null |
              /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])') ||
      ((SECONDS >= end)); do sleep 0.05; done
[ "$(mode_of "$arena")" = "600 65534 65534 regular file" ] || fail "non-root arena $arena: $(mode_of "$arena")"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null

# 4. What another user plants at /tmp/xring-65534 before the engine runs:
#    each refused in one line that says what to do, and nothing is created
#    through it.
planted() {
  local what=$1 want=$2 out rc
  out=$( (as_nobody "$work/xring" engine --name "$name-p" --games 4 --quiet --hugepages off) 2>&1 >/dev/null)
  rc=$?
  [ "$rc" -eq 1 ] || fail "$what: the engine exited $rc, want 1 ($out)"
  [ "$(wc -l <<<"$out")" -eq 1 ] || fail "$what: more than one line: $out"
  grep -qE -- "$want" <<<"$out" || fail "$what: said '$out', want /$want/"
}
rm -rf /tmp/xring-65534
mkdir -m 0755 /tmp/xring-65534                     # root's: not the engine's user's
planted "a directory of another user" "xring-65534.*(not writable by this user|owned by|belongs to)"
rm -rf /tmp/xring-65534
mkdir -p "$work/elsewhere"; chown 65534 "$work/elsewhere"
ln -s "$work/elsewhere" /tmp/xring-65534           # a link to a place of its choosing
planted "a link" "xring-65534.*link"
[ -z "$(ls -A "$work/elsewhere")" ] || fail "the engine created something through the link"
rm -f /tmp/xring-65534
mkdir -m 0777 /tmp/xring-65534; chown 65534 /tmp/xring-65534   # anyone may write
chmod 0777 /tmp/xring-65534
planted "a directory anyone may write" "xring-65534.*(write|mode)"
rm -rf /tmp/xring-65534

# 5. Names that would become other paths are refused before any path is made.
for bad in "../x" "a/b" ".hidden" "$(printf 'a\nb')" "$(head -c 60 /dev/zero | tr '\0' a)"; do
  out=$("$xring" engine --name "$bad" --games 1 2>&1 >/dev/null); rc=$?
  [ "$rc" -eq 2 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -q -- "--name" <<<"$out" ||
    fail "engine --name '$bad': exit $rc: $out"
  out=$("$xring" stat "$bad" 2>&1 >/dev/null); rc=$?
  [ "$rc" -ne 0 ] && [ "$(wc -l <<<"$out")" -eq 1 ] || fail "stat '$bad': exit $rc: $out"
done

((fails == 0)) && echo "test_modes: ok" || echo "test_modes: $fails failure(s)"
exit $((fails > 0))
