#!/usr/bin/env bash
# `cmake --install` gives a program outside the tree all it needs: it builds
# with pkg-config and with find_package(xring), and runs.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
libdir=$(ls -d "$work"/prefix/lib*/ | head -n1)
test -f "$work/prefix/include/xring/xring.h"
test -f "$work/prefix/include/xring/version.h"
test -x "$work/prefix/bin/xring"
ls "$libdir"/libxring.so.0 "$libdir"/libxring.a >/dev/null
# Only the API leaves the shared library.
if nm -D --defined-only "$libdir/libxring.so" | awk '{print $3}' | grep -v '^xr_' | grep -v '^XRING' | grep .; then
  echo "FAIL: libxring.so exports symbols outside xr_*"; exit 1
fi

cat > "$work/outside.c" <<'C'
#include <stdio.h>
#include <xring/xring.h>
int main(void)
{
	xr_reader *r;
	int rc = xr_reader_attach("no-such-engine-here", NULL, &r);
	printf("xring %s: %s\n", XRING_VERSION_STRING, xr_err_name(rc));
	return rc == -ENOENT ? 0 : 1;
}
C
# pkg-config
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c11 -o "$work/pc" "$work/outside.c" $(pkg-config --cflags --libs xring)
LD_LIBRARY_PATH="$libdir" "$work/pc" | grep -q "ENOENT"

# Each public header stands on its own: what its comments tell a caller to
# call is declared by including it alone (games.h: xr_last_reason()).
cat > "$work/games_only.c" <<'C'
#include <stdio.h>
#include <xring/games.h>
int main(void)
{
	xr_games *c;
	int rc = xr_games_open("no-such-engine-here", NULL, &c);
	printf("%d %s\n", rc, xr_last_reason());
	return rc == -ENOENT ? 0 : 1;
}
C
cc -std=c11 -Werror=implicit-function-declaration -o "$work/games_only" "$work/games_only.c" \
  $(pkg-config --cflags --libs xring)
LD_LIBRARY_PATH="$libdir" "$work/games_only" | grep -q "no engine"

# find_package
mkdir -p "$work/proj"
cp "$work/outside.c" "$work/proj/"
cat > "$work/proj/CMakeLists.txt" <<'C'
cmake_minimum_required(VERSION 3.20)
project(outside C)
find_package(xring 0.1 REQUIRED)
add_executable(outside outside.c)
target_link_libraries(outside PRIVATE xring::xring)
C
cmake -S "$work/proj" -B "$work/proj/build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/proj/build" >/dev/null
"$work/proj/build/outside" | grep -q "ENOENT"
# The installed xring finds its benchmarks under its own prefix, wherever
# that is (formerly: only under the prefix the build was configured for).
if [ -x "$work/prefix/libexec/xring/bench_ring" ]; then
  # Into a file, bounded: a pipe into grep -q would close on the first
  # match, and a CI run once spent the test's whole 300 s here without
  # saying where.
  rc=0
  env -u XRING_BENCH_DIR timeout 120 "$work/prefix/bin/xring" bench ring -- --sizes 4k \
    --rounds 1 --seconds 0.05 --memcpy-seconds 0.05 --no-pin >"$work/bench.out" 2>&1 || rc=$?
  grep -q "bare" "$work/bench.out" ||
    { echo "FAIL: the installed xring bench did not run its bench_ring (exit $rc):"
      tail -20 "$work/bench.out"; exit 1; }
  test -r "$work/prefix/share/xring/plot.py"
  test -r "$work/prefix/share/xring/profile.py"
fi
echo "install: pkg-config and find_package builds both run"
