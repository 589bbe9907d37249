#!/usr/bin/env bash
# Prepares huge pages through `xring setup` (root), or says why it cannot:
# xring then runs on /dev/shm with base pages, slower, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
xring=${1:-build/xring}
if [ "$(id -u)" -eq 0 ]; then
  "$xring" setup --pages "${XRING_HUGEPAGES:-1024}"
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo "$xring" setup --pages "${XRING_HUGEPAGES:-1024}"
else
  echo "hugepages: not root and no sudo: skipping setup; xring falls back to /dev/shm (slower)"
fi
