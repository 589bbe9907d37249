#!/usr/bin/env bash
# The README's C example: it is examples/c_reader.c verbatim, it builds
# against the library (done by CMake), and it reads records from a live
# engine. Usage: test_example_reader.sh XRING EXAMPLE README EXAMPLE_SRC
set -euo pipefail
xring=$1 example=$2 readme=$3 src=$4
name="t$$-example"

# The README's ```c block is the example file, byte for byte.
awk '/^```c$/{on=1;next} /^```$/{if(on){exit}} on' "$readme" > "${TMPDIR:-/tmp}/$name.c"
if ! diff -u "$src" "${TMPDIR:-/tmp}/$name.c"; then
  echo "FAIL: the C example in README.md differs from examples/c_reader.c"; exit 1
fi
rm -f "${TMPDIR:-/tmp}/$name.c"

# With no engine, a one-line error and a non-zero exit.
if out=$("$example" "$name" 2>&1); then echo "FAIL: example succeeded with no engine"; exit 1; fi
grep -q "attach $name: No such file or directory" <<<"$out" || { echo "FAIL: got '$out'"; exit 1; }

"$xring" engine --name "$name" --rate 20000 --record-bytes 64 --quiet &
engine=$!
trap 'kill $engine 2>/dev/null; wait $engine 2>/dev/null || true' EXIT
for _ in $(seq 100); do "$xring" info "$name" >/dev/null 2>&1 && break; sleep 0.05; done
out=$("$example" "$name")
lines=$(grep -c '^seq [0-9]* game [0-9]* turn [0-9]* reward -\?[0-9.]*$' <<<"$out")
[ "$lines" -ge 5 ] || { echo "FAIL: expected >= 5 records, got:"; echo "$out"; exit 1; }
echo "example reader printed $lines records"
