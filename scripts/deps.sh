#!/usr/bin/env bash
# Installs what xring builds, runs and tests with, from Debian's archive.
# Idempotent: a machine that has everything makes no network call.
# (python3-cloudpickle and python3-typing-extensions: what the Gymnasium and
# PettingZoo sources of ../shared/thirdparty/python need, for the tests;
# libopenblas0-pthread: the BLAS under python3-torch, which otherwise gets
# the reference BLAS, 5x slower for examples/ppo_grid.py. clang and
# libclang-rt-14-dev: libFuzzer for the fuzz label; spin: the checked
# protocol model; prometheus: promtool and a real scraper for the metrics
# endpoint's tests; tmux: the pseudo-terminal `xring top` is tested in;
# libncurses-dev: `xring top`; valgrind: the instruction-count gate,
# perf/icount.py, and its callgrind.h; libzmq3-dev, iceoryx and
# libiceoryx-binding-c-dev: the transports perf/peers/bench_peers measures
# xring against, ZeroMQ and iceoryx with its RouDi daemon; libzstd-dev,
# libnats-dev, libssl-dev and nats-server: the bridge between hosts, its
# compressed messages, NATS JetStream's C client, its messages' MACs and the
# server its tests start.)
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  liburing-dev libhugetlbfs-dev libhugetlbfs-bin libnuma-dev numactl libyaml-dev
  flatbuffers-compiler python3-flatbuffers
  python3 python3-numpy python3-pytest python3-pytest-xdist
  python3-dev python3-setuptools python3-pip python3-venv python3-torch python3-grpcio
  python3-cloudpickle python3-typing-extensions libopenblas0-pthread
  clang libclang-rt-14-dev spin prometheus tmux libncurses-dev valgrind
  libzmq3-dev iceoryx libiceoryx-binding-c-dev python3-matplotlib linux-perf
  libzstd-dev libnats-dev libssl-dev nats-server
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
echo "deps: all ${#PKGS[@]} Debian packages present"
