# SPDX-License-Identifier: MIT
"""Builds xring's Python package on its own, with the reader library compiled
in from the repository's sources (no installed libxring needed):

    pip install --no-build-isolation --no-index ./bindings/python

Needs Debian's python3-dev, python3-numpy, python3-setuptools, libnuma-dev,
libhugetlbfs-dev. The top-level CMake build makes the same module (target
xring_python) without pip.
"""

import os
import shutil

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

# The reader's side of the library: arena, rings, records, control client,
# the games API's client (client/games.c), the agent's (client/agent.c) and
# a trainer's of replay tables (client/table.c), a producer's
# (client/producer.c).
# (The engine's sources, games and io_uring, are not needed to read or act.)
LIB_SOURCES = [
    "util/error.c", "util/clock.c", "util/proc.c", "util/fs.c", "util/names.c",
    "record/experience.c", "record/verify.c", "record/filter.c", "record/transition.c",
    "shm/fingerprint.c", "shm/backing.c", "shm/map.c", "shm/arena.c", "shm/peers.c",
    "shm/ring_writer.c", "shm/ring_reader.c", "shm/wake.c", "shm/snapshot.c",
    "control/wire.c", "control/run_dir.c", "control/client.c",
    "client/reader.c", "client/games.c", "client/agent.c", "client/table.c", "client/group.c",
    "client/producer.c",
]

# The extension's own files (src/xring_py.h is their private header).
MODULE_SOURCES = ["module.c", "options.c", "reader.c", "batch.c", "dlpack.c", "games.c",
                  "agent.c", "errors.c", "table.c", "producer.c", "reattach.c"]


# A copy of the library's sources under build/, so that compiling them leaves
# nothing outside this directory's build/ (setuptools puts objects beside
# relative source paths, which '../..' would send up the tree).
SRC = os.path.join("build", "xring-src")


def copy_sources():
    for d in ("include", "util", "shm", "record", "control", "client"):
        dst = os.path.join(HERE, SRC, d)
        shutil.rmtree(dst, ignore_errors=True)
        # shutil.copy, not copy2: fresh mtimes, so that build_ext never
        # takes an old module for up to date with sources it lacks.
        shutil.copytree(os.path.join(ROOT, d), dst, copy_function=shutil.copy,
                        ignore=shutil.ignore_patterns("*.in", "*.o"))


copy_sources()

ext = Extension(
    "xring._xring",
    sources=[os.path.join("src", f) for f in MODULE_SOURCES]
    + [os.path.join(SRC, p) for p in LIB_SOURCES],
    include_dirs=[os.path.join(SRC, "include"), SRC, numpy.get_include()],
    define_macros=[("_GNU_SOURCE", None)],
    extra_compile_args=["-std=c11", "-O2", "-fvisibility=hidden"],
    libraries=["numa", "hugetlbfs", "pthread"],
)

class ParallelBuildExt(build_ext):
    """build_ext compiling on every CPU unless told otherwise (--parallel):
    some forty files, one at a time, were most of an install's time."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1


setup(
    name="xring",
    version="0.1.0",
    description="Zero-copy RL experience from an xring engine, as numpy arrays and torch tensors",
    packages=["xring"],
    ext_modules=[ext],
    cmdclass={"build_ext": ParallelBuildExt},
    python_requires=">=3.9",
)
