#!/usr/bin/env bash
# Resources missing when an engine is created (issue 13, fault tests): each
# gives exit 1 and one line on stderr naming the problem and what to do,
# and leaves no arena file or socket behind.
#
#   no huge pages left   a hugetlbfs mount (XRING_DIR) of 4 MiB, an arena of
#                        20: the mmap's reservation fails though the
#                        machine's free count is high (the count itself
#                        short: test_cli's --ring-size 64G case); with
#                        --hugepages prefer and /dev/hugepages so full, the
#                        engine falls back to /dev/shm and says why
#   /dev/shm full        a 1 MiB tmpfs over /dev/shm (and as XRING_DIR)
#   run dir not writable XRING_RUN_DIR a read-only tmpfs (root) or a 0555
#                        directory (others), and a directory to be made in it
#   no such NUMA node    test_cli (--numa-node 999), not repeated here
#
# The mounts are made in a private mount namespace (unshare -m): nothing
# else on the machine sees them. They need root; without it only the
# run-directory cases run, and the test exits 77 (skipped) after them.
# Usage: test_resources.sh XRING
set -uo pipefail
xring=$1
name="t$$-res"
work=$(mktemp -d)
fails=0
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect_err PATTERN -- command...: exit 1, exactly one line matching PATTERN.
expect_err() {
  local pat=$1; shift 2
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  [ "$rc" -eq 1 ] || fail "'$*' exited $rc, want 1 ($out)"
  [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "'$*' printed more than one line: $out"
  grep -qE -- "$pat" <<<"$out" || fail "'$*' said '$out', want /$pat/"
  echo "  $out"
}

# nothing_left DIR...: no file of this test's engines in DIR.
nothing_left() {
  for d in "$@"; do
    if ls -A "$d" 2>/dev/null | grep -q -- "$name"; then
      fail "left behind in $d: $(ls -A "$d" | grep -- "$name" | tr '\n' ' ')"
    fi
  done
}

run_dir="$work/run"
mkdir -m 0700 "$run_dir"
export XRING_RUN_DIR="$run_dir"
engine=("$xring" engine --count 10 --quiet --games 10)

# in_ns SETUP -- command...: runs command in a private mount namespace after
# the shell commands SETUP; its stdout to $work/out, its stderr to
# $work/err, its exit code in $ns_rc. said: replays them for expect_err.
in_ns() {
  local setup=$1; shift 2
  unshare -m bash -c "set -u; $setup || exit 99; \"\$@\"" _ "$@" >"$work/out" 2>"$work/err"
  ns_rc=$?
  [ $ns_rc -ne 99 ] || fail "setup failed: $setup"
}
said() { cat "$work/err" >&2; return "$ns_rc"; }

echo "run directory not writable"
if [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
  # Root writes through any mode: a read-only filesystem stops it.
  mkdir "$work/ro"
  in_ns "mount -t tmpfs -o ro,mode=0755 none $work/ro" -- \
    env XRING_RUN_DIR="$work/ro" "${engine[@]}" --name "$name-ro" --hugepages off
  expect_err "^xring engine: cannot start engine '$name-ro': $work/ro is not writable by this user; set XRING_RUN_DIR to a directory this user owns with mode 0700$" -- said
  in_ns "mount -t tmpfs -o ro,mode=0755 none $work/ro" -- \
    env XRING_RUN_DIR="$work/ro/sub" "${engine[@]}" --name "$name-ro" --hugepages off
  expect_err "^xring engine: cannot start engine '$name-ro': cannot make $work/ro/sub: Read-only file system; set XRING_RUN_DIR to a directory this user owns with mode 0700$" -- said
elif [ "$(id -u)" -ne 0 ]; then
  mkdir -m 0555 "$work/ro"
  expect_err "^xring engine: cannot start engine '$name-ro': $work/ro is not writable by this user; set XRING_RUN_DIR to a directory this user owns with mode 0700$" \
    -- env XRING_RUN_DIR="$work/ro" "${engine[@]}" --name "$name-ro" --hugepages off
  expect_err "^xring engine: cannot start engine '$name-ro': cannot make $work/ro/sub: Permission denied; set XRING_RUN_DIR to a directory this user owns with mode 0700$" \
    -- env XRING_RUN_DIR="$work/ro/sub" "${engine[@]}" --name "$name-ro" --hugepages off
fi
nothing_left /dev/shm /dev/hugepages "$run_dir"

if [ "$(id -u)" -ne 0 ]; then
  [ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
  echo "skipped: the huge page and /dev/shm cases mount filesystems (root)"
  exit 77
fi
if ! unshare -m true 2>/dev/null; then
  [ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
  echo "skipped: no private mount namespace here (unshare -m)"
  exit 77
fi

mkdir "$work/mnt"
big=(--ring-size 16M)
echo "no huge pages left"
if grep -q hugetlbfs /proc/filesystems; then
  in_ns "mount -t hugetlbfs -o size=4M none $work/mnt" -- \
    env XRING_DIR="$work/mnt" "${engine[@]}" --name "$name-huge" --hugepages require "${big[@]}"
  expect_err "^xring engine: --hugepages require: no huge pages left in $work/mnt for [0-9]+ MiB \(raise vm.nr_hugepages\)$" -- said
  # prefer: the shortage said, and /dev/shm taken instead.
  in_ns "mount -t hugetlbfs -o size=2M none /dev/hugepages" -- \
    "$xring" engine --count 10 --games 10 --name "$name-prefer" --hugepages prefer "${big[@]}"
  [ $ns_rc -eq 0 ] || fail "--hugepages prefer with no huge pages left exited $ns_rc: $(cat "$work/err")"
  grep -q "^xring engine '$name-prefer': shm /dev/shm/xring-$name-prefer" "$work/out" ||
    fail "--hugepages prefer did not fall back to /dev/shm: $(cat "$work/out")"
  grep -q "^xring engine: note: no huge pages left in /dev/hugepages for [0-9]* MiB" "$work/out" ||
    fail "--hugepages prefer did not say why it fell back: $(cat "$work/out")"
  echo "  prefer: $(grep 'note:' "$work/out")"
else
  echo "  (no hugetlbfs in this kernel: cases skipped)"
fi
nothing_left /dev/shm /dev/hugepages "$run_dir"

echo "/dev/shm full"
in_ns "mount -t tmpfs -o size=1M none /dev/shm" -- \
  "${engine[@]}" --name "$name-shm" --hugepages off "${big[@]}"
expect_err "^xring engine: cannot start engine '$name-shm': huge pages off by request; /dev/shm is full: [0-9]+ MiB needed, [01] free \(free some or lower --ring-size\)$" -- said
# Both places short: one line, both reasons.
if grep -q hugetlbfs /proc/filesystems; then
  in_ns "mount -t tmpfs -o size=1M none /dev/shm && mount -t hugetlbfs -o size=2M none /dev/hugepages" -- \
    "${engine[@]}" --name "$name-both" --hugepages prefer "${big[@]}"
  expect_err "^xring engine: cannot start engine '$name-both': no huge pages left in /dev/hugepages for [0-9]+ MiB \(raise vm.nr_hugepages\); /dev/shm is full: [0-9]+ MiB needed, [01] free \(free some or lower --ring-size\)$" -- said
fi
in_ns "mount -t tmpfs -o size=1M none $work/mnt" -- \
  env XRING_DIR="$work/mnt" "${engine[@]}" --name "$name-dir" --hugepages off "${big[@]}"
expect_err "^xring engine: cannot start engine '$name-dir': XRING_DIR is not on hugetlbfs: base pages; $work/mnt is full: [0-9]+ MiB needed, [01] free \(free some or lower --ring-size\)$" -- said
nothing_left /dev/shm /dev/hugepages "$run_dir"

echo "(no such NUMA node: test_cli)"
[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "ok"
