#!/bin/sh
# check_layers.sh [ROOT] -- the include graph of xring's sources keeps to its layers.
#
# Lowest first (docs/architecture.md draws the same picture):
#   0  util/                  clocks, process helpers: depend on nothing of ours
#   1  record/ schema/        the record format: plain bytes, no shared memory
#      table/                 replay tables' bookkeeping: samplers, removers,
#                             rate limiter, checkpoints; private memory
#   2  shm/                   arena, ring, wake: the shared-memory core
#   3  control/               the control socket, which hands out shm objects
#   4  client/ engine/        the two ends (reader library, writer engine);
#                             peers, so neither includes the other
#   5  cli/ bindings/python/src/   programs built on top of the ends
#
# Why: ownership runs downwards only. A lower layer that reaches up (the arena
# stopping the control server) makes its lifetime depend on objects it cannot
# see, and the layers can no longer be built, tested or reasoned about one at
# a time. Two peers in one layer stay apart so the reader library never drags
# in the engine, nor the engine the reader.
#
# The rule: a file under a layer directory may include (with "...") headers of
# its own directory, of any lower layer, and the public "xring/..." headers.
# A bare "foo.h" counts as its own directory; a quoted path whose first part is
# not a layer directory (xring/, a system header) is not checked, nor are <...>
# includes. tests/, perf/, examples/ and include/ are not checked as includers.
#
# Prints one line per violation and a summary; exits 0 if clean, 1 if any
# violation, 2 on a usage error.

# The layer table, the one place the layers are written down: directory, layer.
LAYERS='
util                 0
record               1
schema               1
table                1
shm                  2
control              3
client               4
engine               4
bridge               4
cli                  5
bindings/python/src  5
'

set -u

if [ $# -gt 1 ]; then
  echo "usage: check_layers.sh [ROOT]" >&2
  exit 2
fi
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" 2>/dev/null || { echo "layers: cannot enter '$root'" >&2; exit 2; }

dirs=
for d in $(printf '%s\n' "$LAYERS" | awk 'NF { print $1 }'); do
  [ -d "$d" ] && dirs="$dirs $d"
done
if [ -z "$dirs" ]; then
  echo "layers: no layer directories under '$root'" >&2
  exit 2
fi

# find and grep collect the quoted includes of the whole tree (sorted, so the
# report reads file by file); awk does the judging.
# shellcheck disable=SC2086 # $dirs is a list of plain directory names
nfiles=$(find $dirs -type f \( -name '*.c' -o -name '*.h' \) | wc -l)
# shellcheck disable=SC2086
find $dirs -type f \( -name '*.c' -o -name '*.h' \) \
  -exec grep -HnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' {} + |
sort -t: -k1,1 -k2,2n |
LAYERS=$LAYERS awk -v nfiles="$nfiles" '
  BEGIN {
    n = split(ENVIRON["LAYERS"], lines, "\n")
    for (i = 1; i <= n; i++)
      if (split(lines[i], f, " ") == 2) layer[f[1]] = f[2]
  }
  # The layer directory holding path p ("" if none); the longest match wins,
  # so bindings/python/src/x.c is in bindings/python/src, not bindings.
  function dir_of(p,   d, best) {
    best = ""
    for (d in layer)
      if (index(p, d "/") == 1 && length(d) > length(best)) best = d
    return best
  }
  {
    # path:line:#include "target"
    file = $0; sub(/:.*/, "", file)
    target = $0; sub(/^[^"]*"/, "", target); sub(/".*/, "", target)
    from = dir_of(file)
    to = (index(target, "/") == 0) ? from : dir_of(target)
    if (to == "" || to == from || layer[to] < layer[from]) next
    printf "layers: %s includes %s: %s (layer %d) may not include %s (layer %d)\n",
      file, target, from, layer[from], to, layer[to]
    nbad++
  }
  END {
    if (nbad) {
      printf "layers: %d violation%s in %d files\n", nbad, nbad == 1 ? "" : "s", nfiles
      exit 1
    }
    printf "layers: ok, %d files keep to their layers\n", nfiles
  }
'
