#!/usr/bin/env bash
# `xring setup`, in a mount namespace of its own (root): with no hugetlbfs
# mount it mounts one where asked (mode 1777) and says so, leaves
# vm.nr_hugepages alone when it has enough, finds an existing mount the
# second time rather than mount again, and an engine then uses huge pages
# from it; as another user it says what to run instead, one line each, and
# with --require exits non-zero. Usage: test_setup.sh XRING
set -uo pipefail
xring=$1
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (mount namespaces, sysctl)"; exit 77; }
command -v unshare >/dev/null || { echo "SKIP: no unshare"; exit 77; }
unshare -m --propagation private true 2>/dev/null || { echo "SKIP: no mount namespaces here"; exit 77; }
work=$(mktemp -d)
# vm.nr_hugepages is not namespaced: whatever setup changes, put back.
pages0=$(cat /proc/sys/vm/nr_hugepages)
trap 'echo "$pages0" > /proc/sys/vm/nr_hugepages; rm -rf "$work"' EXIT
export xring work
pages=$pages0
[ "$pages" -gt 0 ] || pages=64   # a machine with none yet: ask for a few
raised=$((pages0 < pages))
export pages raised

unshare -m --propagation private bash -s <<'INNER'
set -uo pipefail
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# No hugetlbfs mount in this namespace.
for m in $(awk '$3 == "hugetlbfs" { print $2 }' /proc/mounts); do umount "$m"; done
grep -q " hugetlbfs " /proc/mounts && fail "could not clear the hugetlbfs mounts"

# Another user: one line per thing it cannot do, and what to run instead.
out=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$xring" setup --pages "$pages" \
      --mount "$work/hp" --require 2>&1); rc=$?
[ "$rc" -ne 0 ] || fail "--require as uid 65534 with no mount exited 0"
grep -q "cannot mount hugetlbfs at $work/hp .*as root run \`mount -t hugetlbfs none $work/hp\`" <<<"$out" ||
  fail "uid 65534 was not told what to run: $out"
grep -q " hugetlbfs " /proc/mounts && fail "uid 65534 mounted something"

# Root: mounts it, mode 1777, and leaves enough pages alone.
out=$("$xring" setup --pages "$pages" --mount "$work/hp" --require 2>&1); rc=$?
[ "$rc" -eq 0 ] || fail "setup as root exited $rc: $out"
grep -q "mounted hugetlbfs at $work/hp" <<<"$out" || fail "no word of the mount: $out"
line=$(awk -v d="$work/hp" '$2 == d && $3 == "hugetlbfs"' /proc/mounts)
[ -n "$line" ] || fail "no hugetlbfs at $work/hp in /proc/mounts"
grep -q "mode=1777" <<<"$line" || fail "the mount's mode: $line"
[ "$(cat /proc/sys/vm/nr_hugepages)" -ge "$pages" ] || fail "vm.nr_hugepages below $pages"
if [ "$raised" -eq 0 ]; then
  grep -q "vm.nr_hugepages is [0-9]* (>= $pages): left as is" <<<"$out" ||
    fail "enough pages were not left as they were: $out"
fi

# Again: the mount is found, not made twice.
out=$("$xring" setup --pages "$pages" --mount "$work/hp2" 2>&1)
grep -q "hugetlbfs is mounted at $work/hp" <<<"$out" || fail "the second run: $out"
[ "$(awk '$3 == "hugetlbfs"' /proc/mounts | wc -l)" -eq 1 ] || fail "mounted twice"

# An engine in this namespace uses it.
if [ "$(awk '/HugePages_Free/ { print $2 }' /proc/meminfo)" -ge 64 ]; then
  export XRING_RUN_DIR="$work/run"
  "$xring" engine --name "t$$-setup" --hugepages require --ring-size 8M --games 4 --quiet &
  engine=$!
  for _ in $(seq 100); do "$xring" info "t$$-setup" >/dev/null 2>&1 && break; sleep 0.05; done
  info=$("$xring" info "t$$-setup" --json)
  grep -q "\"path\":\"$work/hp/xring-t$$-setup\"" <<<"$info" || fail "the engine's arena is not on the new mount: $info"
  kill "$engine"; wait "$engine"
else
  echo "fewer than 64 free huge pages: the engine part is left out"
fi
umount "$work/hp"
((fails == 0)) && echo "test_setup: ok" || echo "test_setup: $fails failure(s)"
exit $((fails > 0))
INNER
