#!/usr/bin/env bash
# Configures and builds xring: scripts/build.sh [BUILD_DIR [cmake -D options...]]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DXRING_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null
echo "build: $dir ready"
