# SPDX-License-Identifier: MIT
"""Games at runtime from Python (Engine.create_games, destroy_games,
reset_game, games, close): the records the games write, their ends,
ownership by the Engine's connection (closed, collected, or its process
killed), and the refusals, each with the exception a caller catches.

Every wait polls a condition with a deadline (xrtest.wait_for); none sleeps
in place of synchronisation. Seeds are fixed: a game's records depend on its
seed alone, so a seed's episodes are the same in every run (the reset and
destroy cases rely on it: see their comments).
"""
import collections
import errno
import gc
import json
import os
import pickle
import re
import signal
import subprocess
import textwrap
import threading
import time

import numpy as np
import pytest

import xring
from conftest import REPO
from xrtest import child_env, python, wait_for

ALL = [(0, 2**32 - 1)]   # a reader filter that lets every game through

# One record, as compared: everything but seq, t_ns and game_id.
Rec = collections.namedtuple(
    "Rec", "seq player turn action reward done truncated obs mask")


def content(r):
    return r[1:]


class Records:
    """A reader of an engine's games, and every record it got, by game id:
    fields copied out, obs and mask as bytes (compared bit for bit), the
    reward as its float32 bits."""

    def __init__(self, engine, games=ALL):
        self.r = engine.reader(games=games, batch=1024, max_wait=0.002)
        self.by_game = collections.defaultdict(list)
        self.last_seq = -1

    def poll(self, timeout=0.05):
        b = self.r.read(timeout=timeout)
        if b is None:
            return
        with b:
            seq, gid, pid, turn = (np.array(x) for x in (b.seq, b.game_id, b.player_id, b.turn))
            act, done, trunc = np.array(b.action), np.array(b.done), np.array(b.truncated)
            rew = np.array(b.reward).view(np.uint32)
            obs, mask = np.array(b.obs), np.array(b.mask)
        for i in range(len(seq)):
            self.by_game[int(gid[i])].append(Rec(
                int(seq[i]), int(pid[i]), int(turn[i]), int(act[i]), int(rew[i]),
                bool(done[i]), bool(trunc[i]), obs[i].tobytes(), mask[i].tobytes()))
        self.last_seq = max(self.last_seq, int(seq[-1]))

    def until(self, pred, timeout, what):
        """Reads until pred() holds (checked after each read)."""
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            self.poll()

    def close(self):
        self.r.close()


def cut_short(r):
    """The record that ends an episode cut short (destroy, reset)."""
    return r.truncated and not r.done and r.action == -1


@pytest.fixture
def board8(engines):
    """An engine hosting no games at start, 8x8 boards, a turn a ms."""
    return engines("--board", "8x8", "--tick-ms", "1", games=0)


def attach(e):
    return xring.attach(e.name, timeout=5)


def live_ids(engine):
    return {g["id"] for g in engine.games()}


# ---- records -------------------------------------------------------------

def test_created_games_write_records_with_their_ids(board8):
    with attach(board8) as eng:
        ids = eng.create_games(3, seed=100)
        assert len(ids) == 3 and ids == sorted(set(ids))
        other = eng.create_games(1, seed=5)
        rec = Records(eng, games=ids)
        rec.until(lambda: all(len(rec.by_game[g]) >= 20 for g in ids), 10,
                  "20 records of each created game")
        assert set(rec.by_game) == set(ids), "the filter let another game through"
        assert other[0] not in rec.by_game
        for g in ids:
            assert {r.player for r in rec.by_game[g]} == {0, 1}
        rec.close()


def test_seeded_games_write_the_same_records(board8):
    """Two games of one seed write the same bytes from turn 0 (the reader is
    attached before they exist: a lossless stream shows every record)."""
    with attach(board8) as eng:
        rec = Records(eng)
        a = eng.create_games(1, seed=31)[0]
        b = eng.create_games(2, seed=30)       # seeds 30, 31
        rec.until(lambda: len(rec.by_game[a]) >= 100 and len(rec.by_game[b[1]]) >= 100, 10,
                  "100 records of both")
        ra, rb = rec.by_game[a][:100], rec.by_game[b[1]][:100]
        assert ra[0].turn == 0 and rb[0].turn == 0
        assert [content(r) for r in ra] == [content(r) for r in rb]
        # ...and another seed, other bytes.
        rc = rec.by_game[b[0]][:100]
        assert [content(r) for r in rc] != [content(r) for r in ra]
        rec.close()


def test_reset_game_replays_a_new_game_of_that_seed(board8):
    """After reset_game(x, S), x's next episode (from its turn 0) is, record
    for record and bit for bit, what a new game seeded S writes. The old
    episode ends first with a record of its own per player: truncated,
    action -1. (Seed 100's first episode lasts to the turn limit, 500: the
    reset, at turn 40 or so, always cuts it short.)"""
    K = 120
    with attach(board8) as eng:
        rec = Records(eng)
        x = eng.create_games(1, seed=100)[0]
        rec.until(lambda: len(rec.by_game[x]) >= 80, 10, "40 turns of x")
        before = rec.by_game[x][-1].seq
        eng.reset_game(x, 4242)
        y = eng.create_games(1, seed=4242)[0]
        assert {g["id"]: g["seed"] for g in eng.games()}[x] == 4242

        def after():
            return [r for r in rec.by_game[x] if r.seq > before]
        rec.until(lambda: len(rec.by_game[y]) >= K and sum(cut_short(r) for r in after()) == 2
                  and len(after()) >= K + 80, 10, f"{K} records of y and of x's new episode")
        old = [r for r in rec.by_game[x] if r.seq <= before]
        assert old[0].turn == 0 and not any(r.done or r.truncated for r in old)

        xs = after()
        finals = [i for i, r in enumerate(xs) if cut_short(r)]
        assert len(finals) == 2 and finals[1] == finals[0] + 1, finals
        assert {xs[i].player for i in finals} == {0, 1}
        # Nothing of the old episode after its finals; the new one starts at 0.
        new = xs[finals[1] + 1:]
        assert new[0].turn == 0 and new[1].turn == 0
        assert not any(cut_short(r) for r in xs[:finals[0]])

        ys = rec.by_game[y]
        assert ys[0].turn == 0
        assert [content(r) for r in new[:K]] == [content(r) for r in ys[:K]]
        assert new[K - 1].turn > 50  # compared well past turn 0
        rec.close()


def test_destroy_ends_episodes_then_no_more_records(board8):
    """Each player of a destroyed game gets a last record, truncated and
    action -1, and no record of the game comes after it, while the other
    games go on. (Seeds 200..203 play to turn 500 in their first episode:
    the destruction, at turn 30 or so, always finds one in flight.)"""
    with attach(board8) as eng:
        rec = Records(eng)
        keep = eng.create_games(1, seed=7)[0]
        gone = eng.create_games(4, seed=200)
        rec.until(lambda: all(len(rec.by_game[g]) >= 60 for g in gone), 10, "30 turns each")
        eng.destroy_games(gone)
        assert not live_ids(eng) & set(gone)

        def ended():
            return all(sum(cut_short(r) for r in rec.by_game[g]) == 2 for g in gone)
        rec.until(ended, 10, "the destroyed games' last records")
        last_final = max(r.seq for g in gone for r in rec.by_game[g])
        # The game left alive goes on for 100 more records: had the
        # destroyed games written more, the (one-shard, in-order) stream
        # would have shown them before these.
        rec.until(lambda: sum(r.seq > last_final for r in rec.by_game[keep]) >= 100, 10,
                  "100 more records of the game left alive")
        for g in gone:
            rs = rec.by_game[g]
            assert rs[0].turn == 0
            assert [cut_short(r) for r in rs[-2:]] == [True, True], rs[-3:]
            assert {r.player for r in rs[-2:]} == {0, 1}
            assert not any(cut_short(r) or r.done or r.truncated for r in rs[:-2])
            assert rs[-1].turn in (rs[-3].turn, rs[-3].turn + 1)
        # Destroyed ids are gone for good: never listed, never given again.
        with pytest.raises(xring.NoSuchGameError, match=f"no game {gone[0]} here .*destroyed"):
            eng.destroy_games(gone[0])
        assert min(eng.create_games(1)) > max(gone)
        rec.close()


# ---- ownership -----------------------------------------------------------

def test_owned_games_go_with_engine_close(board8):
    watcher = attach(board8)
    eng = attach(board8)
    owned = eng.create_games(3, seed=1)
    kept = eng.create_games(2, seed=9, owned=False)
    listed = {g["id"]: g for g in watcher.games()}
    assert all(listed[i]["owned"] and not listed[i]["mine"] for i in owned)
    assert all(not listed[i]["owned"] for i in kept)
    mine = {g["id"]: g["mine"] for g in eng.games()}
    assert all(mine[i] for i in owned) and not any(mine[i] for i in kept)

    eng.close()
    assert eng.closed
    wait_for(lambda: not live_ids(watcher) & set(owned), 5, "the owned games to go")
    assert set(kept) <= live_ids(watcher)
    with pytest.raises(ValueError, match="closed"):
        eng.games()
    with pytest.raises(ValueError, match="closed"):
        eng.create_games(1)
    eng.close()                                  # twice: nothing
    watcher.destroy_games(kept)
    assert not live_ids(watcher)
    watcher.close()


def test_owned_games_go_with_the_with_block_and_collection(board8):
    watcher = attach(board8)
    with attach(board8) as eng:
        a = eng.create_games(2)
    wait_for(lambda: not live_ids(watcher) & set(a), 5, "the with block's games to go")

    eng = attach(board8)
    b = eng.create_games(2)
    assert set(b) <= live_ids(watcher)
    del eng
    gc.collect()
    wait_for(lambda: not live_ids(watcher) & set(b), 5, "a collected Engine's games to go")
    watcher.close()


OWNER_CHILD = textwrap.dedent("""
    import json, sys
    import xring
    eng = xring.attach(sys.argv[1], timeout=5)
    owned = eng.create_games(3, seed=1)
    kept = eng.create_games(1, seed=9, owned=False)
    print(json.dumps({"owned": owned, "kept": kept}), flush=True)
    sys.stdin.read()                 # until killed
""")


def test_owned_games_go_when_their_process_is_killed(board8, run_dir):
    watcher = attach(board8)
    child = subprocess.Popen([python(), "-c", OWNER_CHILD, board8.name], env=child_env(run_dir),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line, child.stderr.read()
        made = json.loads(line)
        listed = {g["id"]: g for g in watcher.games()}
        for i in made["owned"] + made["kept"]:
            assert listed[i]["owner_pid"] == child.pid and listed[i]["owner_uid"] == os.getuid()
        assert all(listed[i]["owned"] for i in made["owned"])
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        wait_for(lambda: not live_ids(watcher) & set(made["owned"]), 5,
                 "the killed process's owned games to go")
        assert set(made["kept"]) <= live_ids(watcher)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        child.stdin.close()
        child.stdout.close()
        child.stderr.close()
    watcher.close()


def test_forked_child_and_pickled_copy_open_their_own_connection(board8):
    """A forked child's Engine drops the parent's connection it inherited
    (requests of both would mix on it) and opens its own: the child's owned
    games go when it exits, the parent's stay. A pickled copy has no
    connection until it needs one."""
    with attach(board8) as eng:
        ours = eng.create_games(2)
        rd, wr = os.pipe()
        pid = os.fork()
        if pid == 0:                             # the child
            code = 1
            try:
                os.close(rd)
                g = {d["id"]: d for d in eng.games()}
                made = eng.create_games(1)
                os.write(wr, json.dumps({"made": made, "parent_mine": [
                    g[i]["mine"] for i in ours]}).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(wr)
        with os.fdopen(rd) as f:
            out = f.read()
        assert os.waitpid(pid, 0)[1] == 0
        res = json.loads(out)
        assert res["parent_mine"] == [False, False], "the child used the parent's connection"
        wait_for(lambda: not live_ids(eng) & set(res["made"]), 5, "the child's games to go")
        assert set(ours) <= live_ids(eng)
        assert all(g["mine"] for g in eng.games() if g["id"] in ours)

        copy = pickle.loads(pickle.dumps(eng))
        assert (copy.name, copy.engine_uid, copy._games) == (eng.name, eng.engine_uid, None)
        assert {g["id"] for g in copy.games()} == set(ours)
        copy.close()
        assert set(ours) <= live_ids(eng)



FORKING_OWNER = textwrap.dedent("""
    import json, os, sys, time
    import xring
    eng = xring.attach(sys.argv[1], timeout=5)
    owned = eng.create_games(3, seed=1)
    pid = os.fork()
    if pid == 0:                      # a worker that never touches the Engine
        time.sleep(60)
        os._exit(0)
    print(json.dumps({"owned": owned, "worker": pid}), flush=True)
    if sys.argv[2] == "close":
        eng.close()
    sys.stdin.read()                  # until killed
""")


@pytest.mark.parametrize("how", ["close", "kill"])
def test_owned_games_go_while_a_forked_worker_lives(board8, run_dir, how):
    """A process forks a worker (a DataLoader's, say) after creating owned
    games, then closes its Engine or is killed: its games go, though the
    worker, which inherited the socket, lives on."""
    watcher = attach(board8)
    child = subprocess.Popen([python(), "-c", FORKING_OWNER, board8.name, how],
                             env=child_env(run_dir), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = None
    try:
        line = child.stdout.readline()
        assert line, child.stderr.read()
        made = json.loads(line)
        worker = made["worker"]
        if how == "kill":
            assert set(made["owned"]) <= live_ids(watcher)
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        wait_for(lambda: not live_ids(watcher) & set(made["owned"]), 5,
                 f"the owned games to go ({how}) while the forked worker lives")
        os.kill(worker, 0)                       # it does
    finally:
        if worker:
            try:
                os.kill(worker, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if child.poll() is None:
            child.kill()
            child.wait(10)
        child.stdin.close()
        child.stdout.close()
        child.stderr.close()
    watcher.close()


def test_fork_while_another_thread_uses_the_engine(board8):
    """Another thread is inside the Engine (holding its lock, as it does
    while it finds its connection) when the main thread forks: the child's
    Engine works all the same, on a connection of its own, instead of
    waiting for ever for a lock no thread of the child will release."""
    with attach(board8) as eng:
        ours = eng.create_games(1)
        held, done = threading.Event(), threading.Event()

        def inside():
            with eng._lock:
                held.set()
                done.wait(30)

        t = threading.Thread(target=inside)
        t.start()
        try:
            assert held.wait(10)
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    signal.alarm(10)
                    mine = [g["id"] for g in eng.games() if g["mine"]]
                    code = 0 if ours[0] not in mine else 2
                finally:
                    os._exit(code)
            _, st = os.waitpid(pid, 0)
            assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, \
                f"the forked child hung or failed (status {st:#x})"
        finally:
            done.set()
            t.join()
        assert ours[0] in live_ids(eng)

# ---- what games() says ---------------------------------------------------

def test_games_lists_config_owner_turn_episodes_shard(engines):
    e = engines("--board", "8x8", "--tick-ms", "1", "--shards", "2", games=1)
    with attach(e) as eng:
        ids = eng.create_games(2, seed=77, turn_limit=20)
        g0 = eng.games()
        assert [g["id"] for g in g0] == [0] + ids
        start = g0[0]
        assert (start["seed"], start["turn_limit"], start["owner_uid"], start["owner_pid"],
                start["owned"], start["mine"]) == (1, 0, os.geteuid(), 0, False, False)
        for j, g in enumerate(g0[1:]):
            assert g["game"] == "grid" and g["board"] == (8, 8) and g["players"] == 2
            assert g["obs_dtype"] == "uint8" and g["turn_limit"] == 20 and g["stream"] == 0
            assert g["seed"] == 77 + j
            assert (g["owner_uid"], g["owner_pid"]) == (os.getuid(), os.getpid())
            assert g["owned"] and g["mine"]
        # The least-loaded shard: the start game's shard 0, then 1, then 0.
        assert [g["shard"] for g in g0] == [0, 1, 0]

        def played():
            gs = {g["id"]: g for g in eng.games()}
            return all(gs[i]["episodes"] >= 3 for i in ids) and gs
        gs = wait_for(played, 10, "three 20-turn episodes of each")
        assert all(0 <= gs[i]["turn"] <= 20 for i in ids)
        eng.reset_game(ids[0], 5)
        assert {g["id"]: g["seed"] for g in eng.games()}[ids[0]] == 5


def test_games_from_threads(board8):
    """One Engine, its connection shared by threads: every request served,
    every id distinct."""
    with attach(board8) as eng:
        got, errors = [], []

        def work():
            try:
                for _ in range(5):
                    got.extend(eng.create_games(4))
                    eng.games()
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)
        ts = [threading.Thread(target=work) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert not errors, errors
        assert len(got) == len(set(got)) == 80
        assert live_ids(eng) == set(got)
        eng.destroy_games(range(min(got), max(got) + 1))
        assert not live_ids(eng)


# ---- refusals ------------------------------------------------------------

def test_destroy_or_reset_an_unknown_id(board8):
    with attach(board8) as eng:
        ids = eng.create_games(2)
        with pytest.raises(xring.NoSuchGameError) as ei:
            eng.destroy_games([ids[0], 12345])
        assert isinstance(ei.value, LookupError) and ei.value.code == -errno.ENOENT
        assert "12345" in str(ei.value) and "never created" in str(ei.value)
        assert live_ids(eng) == set(ids), "a refused request destroyed something"
        with pytest.raises(xring.NoSuchGameError, match="no game 999 here"):
            eng.reset_game(999, 1)


def test_create_a_shape_no_stream_carries(board8):
    with attach(board8) as eng:
        for kw in (dict(board=(5, 5)), dict(players=3), dict(obs_dtype="f32"),
                   dict(game="chess")):
            with pytest.raises(xring.NoSuchGameError) as ei:
                eng.create_games(2, **kw)
            msg = str(ei.value)
            assert "its shapes: grid 8x8 2 players u8 (stream experience)" in msg, msg
        assert not live_ids(eng)
        # What it carries, said in full or in part.
        assert len(eng.create_games(1, game="grid", board=(8, 8), players=2,
                                    obs_dtype=np.uint8)) == 1


def _create_or_retry(eng, n, **kw):
    """create_games, or None when the engine says to retry: at the cap, a
    destroyed game's slot is given again once its shard has taken the
    destruction (between two of its rounds)."""
    try:
        return eng.create_games(n, **kw)
    except xring.GameLimitError as e:
        assert e.code == -errno.EAGAIN and "retry in a moment" in str(e), e
        return None


def test_max_games_cap(engines):
    e = engines("--board", "8x8", "--tick-ms", "10", "--policy", "lossy", "--max-games", "5",
                games=2)
    with attach(e) as eng:
        assert len(eng.create_games(3)) == 3
        with pytest.raises(xring.GameLimitError) as ei:
            eng.create_games(1)
        assert ei.value.code == -errno.EBUSY
        assert "hosts 5 games and --max-games is 5" in str(ei.value)
        assert len(eng.games()) == 5
        eng.destroy_games(0)
        assert len(eng.games()) == 4

        # The destroyed game's slot is free again once its shard has taken
        # the order (within a tick); until then the engine says to retry.
        assert len(wait_for(lambda: _create_or_retry(eng, 1), 5, "a slot again")) == 1
        assert len(eng.games()) == 5


def test_large_create_is_all_or_nothing(engines):
    """2000 games are two requests (1024 + 976): when the engine refuses the
    second, the first's games are destroyed again before the error."""
    e = engines("--board", "4x4", "--tick-ms", "100", "--policy", "lossy", "--max-games",
                "1500", games=0)
    with attach(e) as eng:
        with pytest.raises(xring.GameLimitError) as ei:
            eng.create_games(2000, owned=False)
        assert "--max-games is 1500" in str(ei.value) and "hosts 1024 games" in str(ei.value)
        assert ei.value.created == []
        assert eng.games() == []
        # All 1500 fit once the shard has freed the slots of the 1024.
        made = wait_for(lambda: _create_or_retry(eng, 1500, owned=False), 10,
                        "the slots of the destroyed games")
        assert len(made) == len(set(made)) == 1500


def test_bad_arguments_never_reach_the_engine(run_dir):
    """Checked before any connection: an Engine of no engine raises
    ValueError/TypeError, not NoEngineError."""
    eng = xring.Engine("no-such-engine")
    bad = [
        (ValueError, dict(n=0)), (ValueError, dict(n=-3)), (ValueError, dict(n=10**8)),
        (TypeError, dict(n=2.0)), (TypeError, dict(n=True)), (TypeError, dict(n="2")),
        (ValueError, dict(n=1, board=(8, 100000))), (ValueError, dict(n=1, board=(0, 8))),
        (TypeError, dict(n=1, board=8)), (TypeError, dict(n=1, board="8x8")),
        (ValueError, dict(n=1, players=9)), (ValueError, dict(n=1, players=0)),
        (ValueError, dict(n=1, obs_dtype="i32")), (ValueError, dict(n=1, obs_dtype=np.int64)),
        (ValueError, dict(n=1, turn_limit=-1)), (ValueError, dict(n=1, seed=-1)),
        (ValueError, dict(n=2, seed=2**64 - 1)), (TypeError, dict(n=1, game=3)),
    ]
    for exc, kw in bad:
        with pytest.raises(exc):
            eng.create_games(**kw)
    for exc, ids in [(ValueError, [-1]), (ValueError, [2**32]), (TypeError, ["3"]),
                     (TypeError, 2.5), (TypeError, [None])]:
        with pytest.raises(exc):
            eng.destroy_games(ids)
    for exc, args in [(ValueError, (-1, 0)), (ValueError, (1, -1)), (ValueError, (1, 2**64)),
                      (TypeError, (1.0, 0))]:
        with pytest.raises(exc):
            eng.reset_game(*args)
    # Good arguments do reach it.
    with pytest.raises(xring.NoEngineError, match="no-such-engine"):
        eng.create_games(1)


def test_games_type_checks_its_arguments(board8):
    """The extension type on its own (what Engine uses) checks ranges too."""
    g = xring._xring.Games(board8.name)
    with pytest.raises(ValueError, match="n must be"):
        g.create(0)
    with pytest.raises(ValueError, match="board_h must be"):
        g.create(1, board_h=5000)
    with pytest.raises(TypeError, match="n must be an int"):
        g.create(1.5)
    with pytest.raises(ValueError, match="game .* too long"):
        g.create(1, game="x" * 40)
    with pytest.raises(TypeError):
        g.destroy(5)                             # an iterable of ids, not one
    g.destroy([])                                # nothing to do
    ids = g.create(2, seed=3, owned=True)
    assert [d["id"] for d in g.list()] == ids
    g.close()
    assert g.closed
    with pytest.raises(ValueError, match="closed"):
        g.list()


NOBODY_CHILD = textwrap.dedent("""
    import json, sys
    import xring
    eng = xring.attach(sys.argv[1], timeout=5)
    out = {}
    try:
        eng.destroy_games(int(sys.argv[2]))
    except xring.XringError as e:
        out["destroy"] = [type(e).__name__, isinstance(e, PermissionError), str(e)]
    out["mine"] = eng.create_games(2, owned=False)
    try:
        eng.create_games(1)
    except xring.XringError as e:
        out["third"] = [type(e).__name__, e.code, str(e)]
    out["owners"] = {g["id"]: g["owner_uid"] for g in eng.games()}
    print(json.dumps(out))
""")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a child as uid 65534")
def test_other_uid_may_not_touch_our_games(engines, run_dir):
    e = engines("--board", "8x8", "--tick-ms", "10", "--allow-uid", "65534",
                "--max-games-per-uid", "2", games=0)
    with attach(e) as eng:
        ours = eng.create_games(1, owned=False)[0]
        out = subprocess.run([python(), "-c", NOBODY_CHILD, e.name, str(ours)],
                             env=child_env(run_dir), user=65534, group=0, extra_groups=[],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        res = json.loads(out.stdout)
        cls, is_perm, msg = res["destroy"]
        assert cls == "PermissionRefusedError" and is_perm
        assert f"game {ours} belongs to uid 0" in msg
        cls, code, msg = res["third"]
        assert cls == "GameLimitError" and code == -errno.EBUSY
        assert "uid 65534 has 2 games and may have 2 (--max-games-per-uid)" in msg
        assert res["owners"] == {str(ours): 0, **{str(i): 65534 for i in res["mine"]}}
        # The engine's uid may destroy any game.
        eng.destroy_games(res["mine"])
        assert live_ids(eng) == {ours}


def test_engine_stopped(engines):
    e = engines("--board", "8x8", "--tick-ms", "10", games=1)
    eng = attach(e)
    assert len(eng.create_games(2)) == 2
    e.stop()
    for call in (eng.games, lambda: eng.create_games(1), lambda: eng.destroy_games(0),
                 lambda: eng.reset_game(0, 1)):
        with pytest.raises(xring.EngineClosedError) as ei:
            call()
        assert ei.value.code == -errno.ECONNRESET
    eng.close()
    with pytest.raises(xring.NoEngineError, match=e.name):
        xring.Engine(e.name).games()


def test_docs_example_runs(board8):
    """docs/python.md's Games at runtime example, as written there (the
    engine's name replaced): afterwards none of its games is left."""
    text = (REPO / "docs" / "python.md").read_text()
    section = text.split("### Games at runtime", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'xring.attach("demo")' in code and "create_games" in code
    ns = {"__name__": "docs"}
    exec(compile(code.replace('"demo"', repr(board8.name)), "python.md", "exec"), ns)
    assert len(ns["ids"]) == 8 and ns["engine"].closed
    with attach(board8) as watcher:
        wait_for(lambda: not watcher.games(), 5, "the example's games to go")


def test_creation_rate_refusal_says_when_then_succeeds(engines):
    """--max-creates-per-uid 4: bursts of 8 creations and resets, then 4 a
    second. Past that the engine refuses with GameLimitError (-EAGAIN)
    naming the retry time, and changes nothing; after that time the same
    call succeeds."""
    e = engines("--board", "8x8", "--tick-ms", "5", "--max-creates-per-uid", "4", games=0)
    with attach(e) as eng:
        ids = eng.create_games(4, seed=10)
        for i in range(4):
            eng.reset_game(ids[i], 100 + i)
        with pytest.raises(xring.GameLimitError) as ei:
            eng.reset_game(ids[0], 7)
        assert ei.value.code == -errno.EAGAIN
        m = re.search(r"retry in (\d+) ms", str(ei.value))
        assert m, ei.value
        assert [g["seed"] for g in eng.games()] == [100, 101, 102, 103]
        assert 0 < int(m.group(1)) <= 1000, m.group(0)

        def again():
            try:
                eng.reset_game(ids[0], 7)
                return True
            except xring.GameLimitError:
                return False
        # Refilled at 4 a second: the call goes through within the second.
        wait_for(again, 5, "the bucket to refill")
        assert eng.games()[0]["seed"] == 7
