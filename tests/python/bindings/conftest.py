# SPDX-License-Identifier: MIT
"""Fixtures for the tests of the Python package (bindings/python).

The package comes from the CMake build ($XRING_BUILD_DIR/python, the build
directory defaulting to <repo>/build), engines from the xring program of the
same build. Each test gets its own control-socket directory (XRING_RUN_DIR)
and engine names, so tests do not see each other's engines. A missing build
fails the tests with what to build; nothing is skipped silently.
"""
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

import pytest

# A suite started in the background by a non-interactive shell (`cmd &`, as
# CI may) inherits SIGINT ignored, and so would every Python child of a
# Ctrl-C test: Python installs no KeyboardInterrupt handler for an ignored
# SIGINT. A handler of our own is reset to the default at exec, so the
# children start as from a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = pathlib.Path(__file__).resolve().parents[3]
BUILD = pathlib.Path(os.environ.get("XRING_BUILD_DIR") or REPO / "build")
PYDIR = BUILD / "python"
XRING_BIN = BUILD / "xring"

if not (PYDIR / "xring" / "__init__.py").is_file() or not list((PYDIR / "xring").glob("_xring*.so")):
    pytest.exit(f"the Python extension is not built in {PYDIR}: run "
                f"'cmake -S {REPO} -B {BUILD} && cmake --build {BUILD}'", returncode=1)
sys.path.insert(0, str(PYDIR))
# The engines xring.gym and xring.pettingzoo start come from the same build.
os.environ.setdefault("XRING_BIN", str(XRING_BIN))
# Gymnasium and PettingZoo, for their conformance checkers: not in Debian,
# their released sources are in ../shared/thirdparty/python (its README).
# Where that folder is absent, the tests that need them skip, saying so.
THIRDPARTY = REPO.parent / "shared" / "thirdparty" / "python"
if THIRDPARTY.is_dir():
    sys.path.insert(1, str(THIRDPARTY))


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """A control-socket directory of this test's own (short: sun_path is 108)."""
    d = pathlib.Path("/tmp") / f"xr-{uuid.uuid4().hex[:10]}"
    d.mkdir()
    monkeypatch.setenv("XRING_RUN_DIR", str(d))
    yield d
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


class Engine:
    """An `xring engine` process."""

    def __init__(self, name, args, env):
        self.name = name
        self.args = args
        self.env = env
        self.proc = None

    def start(self, timeout=10):
        self.proc = subprocess.Popen(
            [str(XRING_BIN), "engine", "--name", self.name, "--quiet"] + self.args,
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        import xring
        # Up means answering: the socket's file appears at bind(), a moment
        # before listen(), and a connect in between is refused.
        # And named: the engine gives its arena its name just after its
        # socket listens, and `xring info`/`stat` find it by that name.
        deadline = time.monotonic() + timeout
        while not (self._answers(xring) and self._named()):
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine {self.name} exited: "
                                   f"{self.proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"engine {self.name} did not come up in {timeout} s")
            time.sleep(0.01)
        return self

    def _named(self):
        with open("/proc/mounts") as f:
            dirs = [line.split()[1] for line in f if line.split()[2] == "hugetlbfs"]
        return any(os.path.exists(os.path.join(d, f"xring-{self.name}"))
                   for d in dirs + ["/dev/shm"])

    def _answers(self, xring):
        old = os.environ.get("XRING_RUN_DIR")
        os.environ["XRING_RUN_DIR"] = self.env["XRING_RUN_DIR"]
        try:
            return xring.control_path(self.name) is not None
        finally:
            if old is None:
                del os.environ["XRING_RUN_DIR"]
            else:
                os.environ["XRING_RUN_DIR"] = old

    def stop(self, sig=None, timeout=10):
        import signal
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig or signal.SIGTERM)
            self.proc.wait(timeout)
        return self.proc.returncode if self.proc else None

    def kill(self):
        import signal
        return self.stop(signal.SIGKILL)


@pytest.fixture
def engines(run_dir):
    """engines(*args, games=100, name=None, action_timeout_ms=None,
    fallback=None, max_agents=None) starts an engine (stopped at the end of
    the test); the keywords after games are the agents' flags
    (--action-timeout-ms, --fallback noop|repeat|policy, --max-agents)."""
    started = []
    env = dict(os.environ, XRING_RUN_DIR=str(run_dir))

    def make(*args, name=None, games=100, ring_size="16M", start=True,
             action_timeout_ms=None, fallback=None, max_agents=None):
        name = name or f"py-{uuid.uuid4().hex[:8]}"
        agents = []
        if action_timeout_ms is not None:
            agents += ["--action-timeout-ms", str(action_timeout_ms)]
        if fallback is not None:
            agents += ["--fallback", str(fallback)]
        if max_agents is not None:
            agents += ["--max-agents", str(max_agents)]
        e = Engine(name, ["--games", str(games), "--ring-size", ring_size] + list(args) + agents,
                   env)
        started.append(e)
        return e.start() if start else e

    yield make
    for e in started:
        e.stop()


@pytest.fixture
def engine(engines):
    """One engine playing 100 grid games as fast as its readers allow."""
    return engines()
