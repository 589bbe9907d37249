#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, builds,
# prepares huge pages (root) and runs
#   1. every C test through ctest, release build with -Werror
#   2. the Python tests through pytest (Debian's /usr/bin/python3)
#   3. every C test again under ASan+UBSan, and the Python extension's tests
#      with the extension built under ASan+UBSan (the sanitizers preloaded
#      into Debian's python3)
#   4. the tests labelled threads under TSan
#   5. every libFuzzer harness for a short bounded time (clang; the same
#      harnesses' corpus replays ran in 1 and 3): docs/fuzzing.md
# Long soaks and benchmarks live in perf/, not here.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
# Each step's start, in seconds since this script's: where the time goes.
step() { echo "== $* (at $((SECONDS - t0)) s)"; }

scripts/deps.sh
scripts/build.sh build
scripts/hugepages.sh build/xring

step "1. ctest (release)"
# Two tests at a time, as in 3 and 4: the stress tests (and so the soak) run
# alone (RUN_SERIAL, tests/CMakeLists.txt); the rest mostly wait on each
# other's processes and sockets. The instruction counts of test_icount do
# not depend on what else runs.
ctest --test-dir build --output-on-failure -j2 -LE interop

# pytest: three tests at a time (pytest-xdist), then those marked solo (they
# bound a time or a rate) one at a time: tests/python/conftest.py. Three on
# two CPUs, because most of these tests wait (on engines that tick every 10
# or 20 ms, on nats-server, on child processes): two at a time left a CPU
# idle much of the step. Measured on one machine: 102 s with two, 88 s with
# three; under ASan 69 s with two, 53 s with three. Four were faster still,
# but on a loaded machine made the busiest tests late.
pytest_some_then_solo() {
  /usr/bin/python3 -m pytest -q -p no:cacheprovider -n 3 -m "not solo" "$@"
  /usr/bin/python3 -m pytest -q -p no:cacheprovider -m solo "$@"
}

step "2. pytest"
XRING_BUILD_DIR="$PWD/build" PYTHONDONTWRITEBYTECODE=1 \
  pytest_some_then_solo --durations=15 tests/python

step "3. ctest under ASan+UBSan"
scripts/build.sh build-asan -DXRING_ASAN=ON -DXRING_UBSAN=ON -DXRING_PERF=OFF
# Two tests at a time (the stress tests alone: RUN_SERIAL): most wait on
# each other's processes and sockets more than they compute.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j2 -LE "interop|soak|model|rates"

step "3b. the Python extension under ASan+UBSan (pytest)"
# CPython itself is not built with ASan, so the runtime is preloaded; Python's
# own allocations at exit are not ours to chase (detect_leaks=0): leaks are
# bounded by the tests' tracemalloc checks and by the RSS checks of step 2.
# Two tests that exercise packaging and pure-Python examples, not the
# extension's memory, are left to step 2: under the preloaded sanitizers they
# took 170 of this step's 335 s.
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  XRING_BUILD_DIR="$PWD/build-asan" PYTHONDONTWRITEBYTECODE=1 \
  pytest_some_then_solo --durations=5 tests/python/bindings \
    --deselect tests/python/bindings/test_pip_install.py::test_pip_install_offline \
    --deselect tests/python/bindings/test_gym.py::test_docs_examples_run

step "4. threaded ring tests under TSan"
# Only what those tests run is built (a test's program is the target of its
# name, where there is one: test_agents_red_rates runs test_agents_red; some
# run the CLI): the whole tree under TSan took a minute more.
cmake -S . -B build-tsan -DXRING_WERROR=ON -DXRING_TSAN=ON -DXRING_PERF=OFF -DXRING_PYTHON=OFF \
  >/dev/null
tsan_targets=$(grep -Fxf \
  <(cmake --build build-tsan --target help | awk '/^\.\.\. / { print $2 }') \
  <(ctest --test-dir build-tsan -N -L threads | awk '/Test +#[0-9]+:/ { print $3 }'))
cmake --build build-tsan -j"$(nproc)" --target xring_cli $tsan_targets >/dev/null
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -j2 -L threads
# bridge in's two threads (bridge/in.c: the fetcher and its taker) under
# TSan: the TSan CLI beside the release build's Python package, through the
# bridge tests that pause, stop, kill and cut it. A race ends the bridge
# (exit 66), which each of those tests sees.
hyb=$(mktemp -d)
ln -s "$PWD/build/python" "$hyb/python"
ln -s "$PWD/build-tsan/xring" "$hyb/xring"
TSAN_OPTIONS=halt_on_error=1:exitcode=66 XRING_BUILD_DIR="$hyb" PYTHONDONTWRITEBYTECODE=1 \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python/bindings/test_bridge.py \
  -k "gives_way or deleted or lost_on_the_way or killed_bridge_in or as_they_were"
rm -rf "$hyb"

step "5. libFuzzer harnesses (clang), bounded"
# Only the fuzz targets are built here (the rest of the tree is the gcc
# builds' job); clang warns of casts gcc accepts (-Wcast-align), so no -Werror.
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DXRING_LIBFUZZER=ON -DXRING_PERF=OFF \
  -DXRING_PYTHON=OFF -DXRING_LTO=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzzers >/dev/null
# Two at a time: each harness runs for its seconds (tests/fuzz/fuzz.cmake),
# on one CPU, however many others run.
ctest --test-dir build-fuzz --output-on-failure -j2 -L libfuzzer

step "all suites passed"
