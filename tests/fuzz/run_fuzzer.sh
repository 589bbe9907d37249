#!/bin/sh
# Runs one libFuzzer harness for a bounded time, for ctest (tests/fuzz/fuzz.cmake):
#   run_fuzzer.sh FUZZER SECONDS MAX_LEN WORKDIR CORPUS_DIR...
# New inputs go to WORKDIR/corpus (never into the source tree), a crash's
# input to WORKDIR/artifacts/. Exits nonzero on any crash, sanitizer report,
# leak or timeout (an input that runs 20 s: a hang). docs/fuzzing.md says
# how to run one longer by hand.
set -eu
fz=$1 secs=$2 max_len=$3 work=$4
shift 4
mkdir -p "$work/corpus" "$work/artifacts"
# The seed corpus must be there; a harness without regressions has no
# directory of them (git keeps no empty directory).
[ -d "$1" ] || { echo "run_fuzzer.sh: no corpus $1" >&2; exit 1; }
dirs="$work/corpus"
for d in "$@"; do
  [ -d "$d" ] && dirs="$dirs $d"
done
# shellcheck disable=SC2086
exec "$fz" -max_total_time="$secs" -max_len="$max_len" -timeout=20 -rss_limit_mb=3072 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" $dirs
