# SPDX-License-Identifier: MIT
"""Agents from Python (Engine.agent, Agent, ObsBatch): an agent playing every
seat of its games with its own numpy policy while a trainer reads the same
records, and each answer showing in the seat's next record; batches that are
views of the ring; answers refused before anything is sent; seat conflicts
naming the holder; the engine's counts of answers and timeouts; a killed agent
process (forked worker or not) whose seats go back to the policy and are
claimed again; Ctrl-C in recv().

Every wait polls a condition with a deadline (xrtest.wait_for, or a loop with
one); none sleeps in place of synchronisation.
"""
import collections
import contextlib
import io
import json
import os
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
from xrtest import child_env, python, row_digest, wait_blocked_in_read, wait_for

AGENT = xring.SOURCES.index("AGENT")
POLICY = xring.SOURCES.index("POLICY")
NONE = xring.SOURCES.index("NONE")
TIMEOUT = xring.SOURCES.index("TIMEOUT")

Rec = collections.namedtuple("Rec", "seq game player turn action applied applied_by done "
                                    "truncated t_ns obs")


def best(mask):
    """The policy: each record's highest legal action."""
    mask = np.asarray(mask)
    return (mask.shape[1] - 1 - np.argmax(mask[:, ::-1] != 0, axis=1)).astype(np.int32)


class Trainer:
    """A (lossless) reader of some games, and every record it read, by seat."""

    def __init__(self, eng, games):
        self.r = eng.reader(games=games, batch=4096, max_wait=0)
        self.by_seat = collections.defaultdict(list)
        self.n = 0
        self.by_source = collections.Counter()        # applied_by -> records
        self.agent_steps = collections.Counter()      # seat -> records applied_by AGENT

    def poll(self, timeout=0):
        b = self.r.read(timeout=timeout)
        if b is None:
            return
        with b:
            cols = [np.array(getattr(b, f)) for f in
                    ("seq", "game_id", "player_id", "turn", "action", "applied", "applied_by",
                     "done", "truncated", "t_ns")]
            obs = row_digest(b.obs)
        for i in range(len(cols[0])):
            r = Rec(*(c[i].item() for c in cols), int(obs[i]))
            self.by_seat[r.game, r.player].append(r)
            self.by_source[r.applied_by] += 1
            if r.applied_by == AGENT:
                self.agent_steps[r.game, r.player] += 1
        self.n += len(cols[0])

    def pairs(self):
        """(record, the next record of its seat) for consecutive turns."""
        for recs in self.by_seat.values():
            for r, n in zip(recs, recs[1:]):
                if not (r.done or r.truncated) and n.turn == r.turn + 1:
                    yield r, n

    def close(self):
        self.r.close()


def attach(e):
    return xring.attach(e.name, timeout=5)


def next_batch(agent, tr=None, timeout=10):
    """The agent's next batch, the trainer (lossless: the engine waits for
    it) reading meanwhile."""
    def got():
        if tr is not None:
            tr.poll()
        return agent.recv(timeout=0.01)
    return wait_for(got, timeout, "a batch of the agent's seats")


@pytest.fixture
def agents_engine(engines):
    """An engine of 8x8 grid games, none at start, whose games wait up to 5 s
    for their agents' answers (no timeout on a busy machine)."""
    return engines("--board", "8x8", games=0, action_timeout_ms=5000)


# ---- playing ---------------------------------------------------------------

def test_agent_plays_every_seat_while_a_trainer_reads(agents_engine):
    """An agent answers every seat of 64 games with the highest legal action
    of each record's mask; a trainer reads the same records. Each record of
    a held seat has action -1, and the seat's next record says the agent's
    answer was applied (applied, AGENT); records before the claim pair with
    the policy's draw; episodes start at -1/NONE. The agent saw the
    trainer's bytes."""
    with attach(agents_engine) as eng:
        ids = eng.create_games(64, seed=1)
        tr = Trainer(eng, [(ids[0], ids[-1])])
        wait_for(lambda: tr.poll(0.01) or tr.n >= 4 * 128, 10, "some of the policy's records")
        answers, seen = {}, {}
        with eng.agent(games=ids, label="best") as agent:
            assert agent.claims and len(agent.claims) == 1
            deadline = time.monotonic() + 60
            while True:
                b = agent.recv(timeout=0.01)
                if b is not None:
                    act = best(b.mask)
                    for s, a, d in zip(b.seq.tolist(), act.tolist(), row_digest(b.obs).tolist()):
                        answers[s], seen[s] = a, d
                    assert set(b.game_id.tolist()) <= set(ids)
                    agent.send(act)
                tr.poll()
                c = tr.agent_steps
                if len(c) == 128 and min(c.values()) >= 20:
                    break
                assert time.monotonic() < deadline, f"only {sum(c.values())} agent steps"
            st = agent.stats()
        tr.close()

    by = collections.Counter()
    for r, n in tr.pairs():
        if r.action == -1:
            assert r.seq in answers, f"record {r} of a held seat never reached the agent"
            assert (n.applied, n.applied_by) == (answers[r.seq], AGENT), (r, n)
            by["agent"] += 1
        else:
            assert (n.applied, n.applied_by) == (r.action, POLICY), (r, n)
            by["policy"] += 1
    starts = [r for recs in tr.by_seat.values() for r in recs if r.turn == 0]
    assert all((r.applied, r.applied_by) == (-1, NONE) for r in starts)
    assert by["agent"] >= 128 * 20 and by["policy"] > 0
    # What the agent received is the records the trainer read, byte for byte.
    both = [s for recs in tr.by_seat.values() for s in (r.seq for r in recs) if s in seen]
    assert len(both) >= 128 * 20
    obs_of = {r.seq: r.obs for recs in tr.by_seat.values() for r in recs}
    assert all(seen[s] == obs_of[s] for s in both)
    assert st["sent"] > 0 and st["records"] >= st["sent"] and st["claims"] == 1
    assert st["seats"] == 64 * 8       # every player a game may have (players=None)


def test_obs_batch_is_a_view_of_the_ring(agents_engine):
    """An agent of every game of the engine: no other record lies between its
    seats', so each field is a strided view of the ring (the arrays share
    memory with ring_buffer()), read-only, the fields' types those of a
    Batch."""
    with attach(agents_engine) as eng:
        ids = eng.create_games(8, seed=3)
        with eng.reader(games=ids, batch=64) as r:       # a Batch's types, first
            rb = wait_for(lambda: r.read(timeout=0.05), 10, "a trainer batch")
            kinds = {f: (getattr(rb, f).dtype, getattr(rb, f).shape[1:]) for f in xring.FIELDS}
            rb.release()
        with eng.agent(games=range(ids[0], ids[-1] + 1)) as agent:
            # The first batches may hold records written before the claim
            # took effect: the policy's (action >= 0), answered by no one.
            b = next_batch(agent)
            for _ in range(10):
                if (b.action == -1).all():
                    break
                b = agent.step(best(b.mask), timeout=10)
            assert b.copied is None, b.copied
            assert len(b) == b.count > 0
            ring = agent.ring_buffer(b.ring)
            for f in xring.FIELDS:
                a = getattr(b, f)
                assert np.shares_memory(a, ring), f
                assert (a.dtype, a.shape[1:]) == kinds[f], f
                assert len(a) == len(b)
            assert not b.obs.flags.writeable
            frame = b.seq.strides[0]
            assert b.obs.strides[0] == frame > b.obs[0].nbytes
            del ring, a
            agent.send(best(b.mask))
        # Player 0's seats only: player 1's record lies between each two of
        # the agent's, every other frame, so the batch is still one view.
        with eng.agent(games=ids, players=[0]) as agent:
            def strided():
                b = agent.recv(timeout=0.05)
                if b is None:
                    return None
                if len(b) > 1 and (b.action == -1).all() and b.copied is None:
                    return b
                agent.send(best(b.mask))
            b = wait_for(strided, 10, "a batch of several records of player 0")
            assert (b.player_id == 0).all()
            assert b.obs.strides[0] == 2 * frame
            assert np.shares_memory(b.obs, agent.ring_buffer(b.ring))
            agent.send(best(b.mask))


def test_batch_with_other_records_between_is_copied(engines):
    """Player 0 of game 0 and both players of game 1: each round writes
    g0p0, g0p1 (the policy's), g1p0, g1p1, so the agent's records are not
    equally spaced; the fields are copied (copied says why), the batch stays
    held and the answers are applied.

    (The second claim attaches the agent's reader anew, and a record of the
    first claim's seat written meanwhile never reaches the agent: its game
    waits for the 200 ms deadline, and the next record says TIMEOUT. That
    is the C library's claim, xr_agent_claim; such records are counted.)"""
    e = engines("--board", "8x8", games=0, action_timeout_ms=200)
    with attach(e) as eng:
        ids = eng.create_games(2, seed=5)
        tr = Trainer(eng, ids)
        with eng.agent(games=ids[0], players=[0]) as agent:
            agent.claim(ids[1])
            answers, copied = {}, 0
            deadline = time.monotonic() + 30
            while copied < 20 or tr.by_source[AGENT] < 60:
                b = agent.recv(timeout=0.01)
                if b is not None:
                    if b.copied:
                        copied += 1
                        assert "other seats" in b.copied, b.copied
                        assert b.obs.flags.owndata and not b.released
                    assert {(g, p) for g, p in zip(b.game_id.tolist(), b.player_id.tolist())} <= \
                        {(ids[0], 0), (ids[1], 0), (ids[1], 1)}
                    act = best(b.mask)
                    answers.update(zip(b.seq.tolist(), act.tolist()))
                    agent.send(act)
                    assert b.released
                tr.poll()
                assert time.monotonic() < deadline
            assert agent.stats()["copies"] == copied
        tr.close()
    missed = 0
    for r, n in tr.pairs():
        if r.action == -1 and r.seq in answers:
            assert (n.applied, n.applied_by) == (answers[r.seq], AGENT)
        elif r.action == -1:
            assert n.applied_by == TIMEOUT
            missed += 1
        elif (r.game, r.player) == (ids[0], 1):
            assert (n.applied, n.applied_by) == (r.action, POLICY)
    assert missed <= 3, f"{missed} records of the agent's seats never reached it"


# ---- answers refused, batches released --------------------------------------

def test_send_checks_the_answers_and_ends_the_batch(agents_engine):
    """A wrong length (or shape, or dtype, or an action past int32) raises
    before anything is written: the batch stays held and answerable, and
    the engine applies the answer sent after. Once sent, the batch and its
    arrays raise ReleasedError; sending again raises ValueError."""
    with attach(agents_engine) as eng:
        ids = eng.create_games(2, seed=7)
        tr = Trainer(eng, [(ids[0], ids[-1])])
        with eng.agent(games=ids) as agent:
            b = next_batch(agent, tr)
            while not (b.action == -1).any():   # records before the claim took effect
                b = agent.step(best(b.mask), timeout=10)
            obs, n = b.obs, len(b)
            right = best(b.mask)
            sent0 = agent.stats()["sent"]   # the steps above sent some
            for bad in (right[:-1], np.concatenate([right, right]), right.reshape(1, -1),
                        np.zeros(n + 1, np.int32)):
                with pytest.raises(ValueError, match="one per record"):
                    agent.send(bad)
            with pytest.raises(TypeError, match="integers"):
                agent.send(right.astype(np.float64))
            with pytest.raises(ValueError, match="int32"):
                agent.send(right.astype(np.int64) + (1 << 40))
            assert agent.stats()["sent"] == sent0
            assert not b.released and (b.obs == obs).all()
            seqs = b.seq.tolist()
            terminal = (b.done | b.truncated).tolist()
            b_action = b.action.copy()
            agent.send(right.astype(np.uint16))      # converted, not refused
            assert agent.stats()["sent"] == sent0 + n - sum(terminal)
            assert b.released
            with pytest.raises(xring.ReleasedError):
                b.obs
            with pytest.raises(xring.ReleasedError):
                obs.sum()
            with pytest.raises(ValueError, match="no batch is held"):
                agent.send(right)
            # The engine applied exactly what was sent.
            # (The first batch may hold records written before the claim took
            # effect, the policy's: answers to them are not asked for.)
            held = (b_action == -1).tolist()
            asked = [s for s, t, h in zip(seqs, terminal, held) if h and not t]
            assert asked

            def nexts():
                tr.poll(0.01)
                return {r.seq: nx for r, nx in tr.pairs() if r.seq in asked}
            got = wait_for(lambda: len(nexts()) == len(asked) and nexts(), 10,
                           "the answered seats' next records")
            for s in asked:
                assert (got[s].applied, got[s].applied_by) == (int(right[seqs.index(s)]), AGENT)
            # release() gives a batch up unanswered.
            b2 = next_batch(agent, tr)
            agent.release()
            assert b2.released
            with pytest.raises(ValueError, match="no batch is held"):
                agent.send(right)
        tr.close()


def test_step_sends_then_receives(agents_engine):
    with attach(agents_engine) as eng:
        ids = eng.create_games(4, seed=9)
        with eng.agent(games=ids, max_wait=5) as agent:
            assert agent.max_wait == 5 and agent.batch == 1024
            b = agent.recv()
            for _ in range(20):
                prev = b
                b = agent.step(best(b.mask))
                assert prev.released and b is not None and not b.released
            assert agent.stats()["sent"] >= 20


def test_answer_by_refs_after_the_batch_is_gone(agents_engine):
    """refs() copies what names each record of the held batch; answer(refs,
    actions) answers those records later, after recv() has released their
    batch: a policy that acts only once every seat's record is in, which
    takes several batches (batch=1 here: one record a batch). Each answer
    shows in its seat's next record (applied, AGENT); final records and
    rows of seats no longer held are skipped; bad shapes send nothing."""
    with attach(agents_engine) as eng:
        ids = eng.create_games(4, seed=5)
        tr = Trainer(eng, [(ids[0], ids[-1])])
        with eng.agent(games=ids, batch=1, max_wait=5) as agent:
            answered = {}
            for _round in range(10):
                pending, rows = {}, []
                deadline = time.monotonic() + 10
                while len(pending) < 8:                # a record of each of 8 seats
                    tr.poll()   # a lossless trainer that stopped reading would pause the engine
                    b = agent.recv(timeout=0.01)
                    if b is None:
                        assert time.monotonic() < deadline, f"records of {sorted(pending)} only"
                        continue
                    assert len(b) == 1
                    r = agent.refs()
                    assert r.shape == (1, 3) and r.dtype == np.uint64
                    if b.done[0] or b.truncated[0] or b.action[0] != -1:
                        continue   # a final record, or the policy's from before the claim
                    seat = (int(b.game_id[0]), int(b.player_id[0]))
                    assert seat not in pending, "a seat moved on without its answer"
                    pending[seat] = (int(b.seq[0]), int(best(b.mask)[0]))
                    rows.append(r)
                # recv() released every batch but the last: answer them all now.
                refs = np.concatenate(rows)
                acts = np.array([a for _s, a in pending.values()], np.int32)
                with pytest.raises(ValueError, match="one per record"):
                    agent.answer(refs, acts[:-1])
                with pytest.raises(ValueError, match=r"\(n, 3\)"):
                    agent.answer(refs[:, :2], acts)
                assert agent.answer(refs, acts) == 8
                answered.update(dict(pending.values()))
            agent.release()
            # A final record's row is skipped, as send() skips it.
            fin = np.array([[1, ids[0], 0]], np.uint64)
            fin[0, 2] = 1 << 32                        # turn 0, final
            assert agent.answer(fin, [3]) == 0
            # Every answered record's successor in, before the agent leaves:
            # a seat whose agent has gone is the policy's at its next step,
            # whatever its slot holds (a busy shard may not have stepped the
            # last round's games yet).
            deadline = time.monotonic() + 10
            while sum(1 for r, _n in tr.pairs() if r.seq in answered) < 80:
                tr.poll(0.01)
                assert time.monotonic() < deadline
        tr.poll(0.05)
        tr.close()
    applied = 0
    for r, n in tr.pairs():
        if r.seq in answered:
            assert (n.applied, n.applied_by) == (answered[r.seq], AGENT), (r, n)
            applied += 1
    assert applied >= 70   # the last round's answers may not have a next record read yet


def test_arrays_kept_past_their_batch_object_still_end_with_it(agents_engine):
    """An ObsBatch dropped while arrays of it are kept: the next recv()
    releases the records all the same, and the kept arrays raise from then
    on (they would otherwise read whatever the ring holds there later)."""
    with attach(agents_engine) as eng:
        ids = eng.create_games(2, seed=4)
        with eng.agent(games=ids, max_wait=5) as agent:
            kept = agent.recv().obs
            assert np.asarray(kept).shape[0] >= 1      # readable while held
            b = agent.recv()                          # the ObsBatch of `kept` is gone
            assert b is not None
            with pytest.raises(xring.ReleasedError):
                kept.sum()
            mask = b.mask
            del b
            agent.release()
            with pytest.raises(xring.ReleasedError):
                mask.sum()


def test_a_player_out_before_its_game_ends_is_not_waited_for(engines):
    """3 players on a 4x4 board, every seat held: a player eliminated while
    the others play on gets a done record that asks nothing (send() skips
    it, as it skips every final record), so its game does not wait for an
    answer to it: no timeout in the engine's counts, over games with such
    eliminations."""
    e = engines("--board", "4x4", "--players", "3", games=0, action_timeout_ms=1000)
    with attach(e) as eng:
        ids = eng.create_games(8, seed=21)
        early = asked = 0
        rng = np.random.default_rng(8)
        with eng.agent(games=ids, max_wait=5) as agent:
            deadline = time.monotonic() + 60
            while early < 10:
                b = agent.recv()
                assert b is not None
                done, trunc, turn = np.array(b.done), np.array(b.truncated), np.array(b.turn)
                act, seats = np.array(b.action), len(b)
                # A done record whose game goes on: others of the game later.
                early += int(np.count_nonzero(done & (act == -1) & (turn > 0)))
                asked += int(np.count_nonzero(~done & ~trunc & (act == -1)))
                mask = np.array(b.mask)
                agent.send((rng.random(mask.shape) * mask).argmax(axis=1))
                assert time.monotonic() < deadline, f"{early} eliminations only"
            # The engine's counts (published twice a second) of every answer sent.
            wait_for(lambda: agent.stats()["actions"] >= asked, 10, "the engine's counts")
            st = agent.stats()
        assert seats > 0 and st["timeouts"] == 0, st


def test_claim_refuses_while_arrays_live_and_close_waits_for_them(agents_engine):
    """claim() maps the ring anew: it refuses while arrays of the agent's
    batches live. close() with arrays alive detaches when they go."""
    with attach(agents_engine) as eng:
        ids = eng.create_games(2, seed=11)
        agent = eng.agent(games=ids)
        b = next_batch(agent)
        assert b.copied is None     # the engine's only games: views
        obs = b.obs
        more = eng.create_games(2, seed=12)
        with pytest.raises(RuntimeError, match="still alive"):
            agent.claim(more)
        assert b.released           # the claim released the held batch first
        del obs
        assert agent.claim(more) in agent.claims
        ids += more
        b = wait_for(lambda: agent.recv(timeout=0.05), 10, "a batch")
        obs = b.obs
        agent.close()
        assert agent.closed and b.released
        with pytest.raises(ValueError, match="closed"):
            agent.recv(timeout=0)
        # Still attached (the seats held) until the array goes.
        with pytest.raises(xring.SeatTakenError):
            eng.agent(games=ids[:1])
        del obs, b

        def claimed():      # the engine sees the old agent's connection end
            try:
                return eng.agent(games=ids)
            except xring.SeatTakenError:
                return None
        wait_for(claimed, 5, "the closed agent's seats").close()


def test_games_as_ranges_pairs_and_ids(agents_engine):
    with attach(agents_engine) as eng:
        ids = eng.create_games(40, seed=13)
        lo = ids[0]
        with eng.agent(games=(lo, lo + 4), players=[0, 1]) as a:   # (lo, hi) inclusive
            assert a.stats()["seats"] == 5 * 2
            c = a.claim([lo + 10, lo + 11, lo + 12, range(lo + 13, lo + 15), (lo + 20, lo + 21)],
                        players=1)
            assert isinstance(c, tuple) and len(c) == 2      # 10..14 and 20..21
            assert a.stats()["seats"] == 5 * 2 + 7 and len(a.claims) == 3
            a.release_claim(c)
            assert a.stats()["seats"] == 5 * 2 and len(a.claims) == 1
            with pytest.raises(LookupError):
                a.release_claim(12345)
            with pytest.raises(ValueError, match="at most 16"):
                a.claim([lo + 2 * k for k in range(3, 20)])
            with pytest.raises(ValueError, match="players are 0..7"):
                a.claim([lo + 30], players=[8])
            with pytest.raises(ValueError, match="capacity|fit"):
                with eng.agent(capacity=4) as small:
                    small.claim((lo + 30, lo + 39))


# ---- seats ----------------------------------------------------------------

def test_seat_conflict_names_the_holder_then_release_lets_another_claim(agents_engine):
    with attach(agents_engine) as eng:
        ids = eng.create_games(10, seed=15)
        alice = eng.agent(games=ids, players=[0], label="alice")
        cid = alice.claims[0]
        with pytest.raises(xring.SeatTakenError) as ex:
            eng.agent(games=ids[5:], label="bob")
        msg = str(ex.value)
        assert f"game {ids[5]}, player 0" in msg and "alice" in msg and f"pid {os.getpid()}" in msg
        assert ex.value.code == -16    # -EBUSY
        bob = eng.agent(games=ids, players=[1], label="bob")    # self-play: the other seats
        with pytest.raises(xring.SeatTakenError, match="alice"):
            bob.claim(ids[:1], players=[0])
        alice.release_claim(cid)
        assert alice.claims == ()
        bob.claim(ids, players=[0])
        assert bob.stats()["seats"] == 20
        alice.close()
        bob.close()


def test_too_many_agents(engines):
    e = engines("--board", "8x8", games=0, max_agents=1)
    with attach(e) as eng:
        with eng.agent():
            with pytest.raises(xring.TooManyAgentsError, match="max-agents"):
                eng.agent()


# ---- the engine's counts --------------------------------------------------

def test_stats_count_actions(agents_engine):
    """Every answer an agent sends to a record that asked for one is taken:
    once the shards publish their counts (twice a second), actions equals
    the answers sent, each timed, and no fallback was counted."""
    with attach(agents_engine) as eng:
        ids = eng.create_games(4, seed=17)
        agent = eng.agent(games=ids, max_wait=5)
        held = 0     # answers to records that asked for one (not the policy's before the claim)
        b = agent.recv()
        for _ in range(50):
            held += int(((b.action == -1) & ~b.done & ~b.truncated).sum())
            b = agent.step(best(b.mask))
        # The records of b wait (5 s) while the counts catch up.
        wait_for(lambda: agent.stats()["actions"] == held, 5,
                 f"the engine's count of the {held} answers")
        st = agent.stats()
        assert held >= 50 * 4 and st["sent"] >= held and st["records"] >= st["sent"]
        assert st["timeouts"] == st["wrong_turn"] == st["illegal"] == st["out_of_range"] == 0
        assert st["fallbacks"] == 0 and st["rtt_count"] == held
        assert 0 < st["rtt_p50_ns"] <= st["rtt_p99_ns"] <= st["rtt_p999_ns"]
        assert st["waiting"] == 8 and st["dropped"] == 0 and st["claims"] == 1
        agent.close()


def test_silent_agent_gets_timeouts(engines):
    """An agent that never answers: timeouts at the 20 ms deadline, counted,
    and each of its seats' next records says TIMEOUT, the fallback (the no-op,
    -1) applied; the games go on."""
    e = engines("--board", "8x8", games=0, action_timeout_ms=20)
    with attach(e) as eng:
        ids = eng.create_games(4, seed=18)
        tr = Trainer(eng, ids)
        silent = eng.agent(games=ids, label="silent")

        def timed_out():
            silent.recv(timeout=0)      # takes and drops: never answers
            tr.poll(0.005)
            return silent.stats()["timeouts"] >= 50 and tr.by_source[TIMEOUT] >= 50
        wait_for(timed_out, 20, "50 timeouts of the silent agent")
        st = silent.stats()
        assert st["actions"] == st["sent"] == 0
        assert st["fallbacks"] == st["timeouts"] >= 50
        held = [(r, n) for r, n in tr.pairs() if r.action == -1]
        assert held and all((n.applied, n.applied_by) == (-1, TIMEOUT) for r, n in held)
        silent.close()
        tr.close()


def test_silent_agent_with_the_policy_fallback(engines):
    """--fallback policy: a silent agent's seats are played by the built-in
    policy at each deadline. Each next record says TIMEOUT, and what it
    applied is a real action, legal under the mask of the record it answers,
    not the no-op; and the deadline is kept (no record of a held seat comes
    more than a second after the one before, with a 20 ms timeout)."""
    e = engines("--board", "8x8", games=0, action_timeout_ms=20, fallback="policy")
    with attach(e) as eng:
        ids = eng.create_games(4, seed=19)
        r = eng.reader(games=ids, batch=4096, max_wait=0)
        silent = eng.agent(games=ids, label="silent")
        last = {}                                  # seat -> (turn, mask, t_ns)
        held = set()                               # seats whose fallbacks began
        checked, noop, gap_max = 0, 0, 0

        def enough():
            nonlocal checked, noop, gap_max
            silent.recv(timeout=0)                 # takes and drops: never answers
            b = r.read(timeout=0.005)
            if b is None:
                return False
            with b:
                cols = [np.array(getattr(b, f)) for f in
                        ("game_id", "player_id", "turn", "applied", "applied_by", "done",
                         "truncated", "t_ns")]
                mask = np.array(b.mask)
            for i in range(len(cols[0])):
                g, p, t, applied, by, done, trunc, t_ns = (c[i].item() for c in cols)
                prev = last.get((g, p))
                if by == TIMEOUT:
                    held.add((g, p))               # the claim has reached the shard
                if prev is not None and t == prev[0] + 1 and (g, p) in held:
                    assert by == TIMEOUT, (g, p, t, by)
                    assert 0 <= applied < mask.shape[1], applied
                    assert prev[1][applied] == 1, f"seat {(g, p)} turn {t}: {applied} illegal"
                    noop += applied == mask.shape[1] - 1
                    gap_max = max(gap_max, t_ns - prev[2])
                    checked += 1
                last[(g, p)] = (-2 if done or trunc else t, mask[i].copy(), t_ns)
            return checked >= 100 and silent.stats()["timeouts"] >= 100
        wait_for(enough, 30, "100 turns of the silent agent's seats played by the policy")
        st = silent.stats()
        assert st["fallbacks"] == st["timeouts"] >= 100 and st["actions"] == 0, " ".join(f"{k}={v}" for k, v in sorted(st.items()) if not isinstance(v, (list, dict)))
        assert noop < checked, "every fallback was the no-op: the policy did not play"
        assert gap_max < 1_000_000_000, f"a held seat waited {gap_max / 1e9:.2f} s"
        silent.close()
        r.close()


# ---- a killed agent ---------------------------------------------------------

AGENT_CHILD = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import xring
    eng = xring.attach(sys.argv[1], timeout=10)
    lo, hi = int(sys.argv[2]), int(sys.argv[3])
    agent = eng.agent(games=(lo, hi), label="doomed")
    if sys.argv[4] == "fork":
        pid = os.fork()
        if pid == 0:                    # a worker that lives on
            try:
                agent.recv(timeout=0)
                os.write(1, b"worker used the parent's agent\\n")
            except ValueError:
                os.write(1, b"worker refused\\n")
            time.sleep(600)
            os._exit(0)
        os.write(1, f"worker {pid}\\n".encode())   # one write: the worker writes too
    said = False
    while True:
        b = agent.recv(timeout=1)
        if b is None:
            continue
        m = np.asarray(b.mask)
        agent.send((m.shape[1] - 1 - np.argmax(m[:, ::-1] != 0, axis=1)).astype(np.int32))
        if not said:
            os.write(1, b"playing\\n")   # one write: print() may write the newline apart
            said = True
""")


@pytest.mark.parametrize("fork", ["plain", "fork"])
def test_killed_agent_seats_go_back_to_the_policy(engines, run_dir, fork):
    """An agent process (with a forked worker alive, or not) plays its games,
    then is SIGKILLed: its seats' later records say POLICY, the games go on,
    and a new agent claims the seats in one call and plays them."""
    e = engines("--board", "8x8", games=0, action_timeout_ms=50)
    eng = attach(e)
    ids = eng.create_games(8, seed=21)
    tr = Trainer(eng, [(ids[0], ids[-1])])
    child = subprocess.Popen([python(), "-c", AGENT_CHILD, e.name, str(ids[0]), str(ids[-1]),
                              fork], env=child_env(run_dir), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    worker = None
    lines = []
    out = threading.Thread(target=lambda: lines.extend(iter(child.stdout.readline, "")),
                           daemon=True)
    out.start()
    try:
        want = {"playing"} | ({"worker refused"} if fork == "fork" else set())

        def started():
            nonlocal worker
            tr.poll(0.01)           # lossless: the games wait for the trainer
            assert child.poll() is None, f"the agent exited: {lines}"
            said = {ln.strip() for ln in lines}
            for ln in said:
                if ln.startswith("worker ") and ln.split()[1].isdigit():
                    worker = int(ln.split()[1])
            return want <= said
        try:
            wait_for(started, 20, "the child agent to play")
        except AssertionError as ex:
            raise AssertionError(f"{ex}: it said {lines}") from None
        assert not any("used the parent" in ln for ln in lines), lines
        wait_for(lambda: tr.poll(0.01) or sum(n.applied_by == AGENT for _, n in tr.pairs())
                 >= 100, 20, "the child agent's steps")
        killed_ns = time.monotonic_ns()
        child.send_signal(signal.SIGKILL)
        child.wait(10)

        def back():
            return all(any(r.applied_by == POLICY and r.t_ns > killed_ns
                           for r in tr.by_seat[g, p]) for g in ids for p in (0, 1))
        wait_for(lambda: tr.poll(0.01) or back(), 10, "every seat played by the policy again")
        first = min(r.t_ns for recs in tr.by_seat.values() for r in recs
                    if r.applied_by == POLICY and r.t_ns > killed_ns)
        print(f"policy again {(first - killed_ns) / 1e6:.1f} ms after the kill")
        assert first - killed_ns < 2e9
        if worker:
            os.kill(worker, 0)      # the worker lives, and held nothing up
        # A new agent claims them in one call, and its answers are applied.
        before = max(r.seq for recs in tr.by_seat.values() for r in recs)
        with eng.agent(games=ids, label="reborn") as agent:
            def plays():
                b = agent.recv(timeout=0.01)
                if b is not None:
                    agent.send(best(b.mask))
                tr.poll()
                return sum(n.applied_by == AGENT and n.seq > before for _, n in tr.pairs()) >= 50
            wait_for(plays, 20, "the new agent's steps")
    finally:
        for ln in list(lines):
            if ln.startswith("worker ") and ln.split()[1].isdigit():
                worker = int(ln.split()[1])
        if worker:
            try:
                os.kill(worker, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if child.poll() is None:
            child.kill()
            child.wait(10)
        out.join(10)                # EOF once the child and the worker are gone
        if not out.is_alive():      # (closing under a readline would wait for it)
            child.stdout.close()
        child.stderr.close()
        tr.close()
        eng.close()


# ---- waiting ----------------------------------------------------------------

RECV_CHILD = textwrap.dedent("""
    import sys, xring
    agent = xring.attach(sys.argv[1], timeout=10).agent(
        games=(1000000, 1000010), spin=sys.argv[2] == "spin")    # games not made yet
    print("waiting", flush=True)
    agent.recv(timeout=30)
    print("returned", flush=True)
""")


@pytest.mark.solo
@pytest.mark.parametrize("mode", ["sleep", "spin"])
def test_ctrl_c_interrupts_recv(agents_engine, run_dir, mode):
    p = subprocess.Popen([python(), "-c", RECV_CHILD, agents_engine.name, mode],
                         env=child_env(run_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "waiting", p.stderr.read()
        if mode == "sleep":
            wait_blocked_in_read(p.pid, p.pid)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        p.wait(timeout=10)
        elapsed = time.monotonic() - t0
        out, err = p.stdout.read(), p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()
    assert "KeyboardInterrupt" in err, err
    assert "returned" not in out
    assert elapsed < 1, elapsed


def test_recv_releases_the_gil_and_times_out(agents_engine):
    with attach(agents_engine) as eng:
        agent = eng.agent(games=(1000000, 1000010))
        ticks = []
        stop = threading.Event()

        def count():
            while not stop.is_set():
                ticks.append(time.monotonic())
                stop.wait(0.01)
        t = threading.Thread(target=count)
        t.start()
        try:
            t0 = time.monotonic()
            assert agent.recv(timeout=0.5) is None
            t1 = time.monotonic()
        finally:
            stop.set()
            t.join()
        assert t1 - t0 >= 0.45
        assert sum(t0 < s < t1 for s in ticks) >= 10
        # Another thread's call while one waits in recv() is refused.
        errors = []

        def waiter():
            agent.recv(timeout=2)
        w = threading.Thread(target=waiter)
        w.start()
        try:
            def refused():
                try:
                    agent.stats()
                except RuntimeError as ex:
                    errors.append(ex)
                    return True
                return False
            wait_for(refused, 5, "a call during recv() to be refused")
        finally:
            w.join()
        assert "one thread at a time" in str(errors[0])
        agent.close()


def test_forked_child_cannot_use_the_parents_agent(agents_engine):
    with attach(agents_engine) as eng:
        ids = eng.create_games(2, seed=23)
        agent = eng.agent(games=ids)
        rd, wr = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(rd)
                try:
                    agent.recv(timeout=0)
                    msg = "used"
                except ValueError as ex:
                    msg = str(ex)
                os.write(wr, json.dumps({"msg": msg, "closed": agent.closed}).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(wr)
        with os.fdopen(rd) as f:
            res = json.loads(f.read())
        assert os.waitpid(pid, 0)[1] == 0
        assert "forked child" in res["msg"] and res["closed"]
        # The parent's agent goes on.
        b = wait_for(lambda: agent.recv(timeout=0.05), 10, "a batch in the parent")
        agent.send(best(b.mask))
        agent.close()


# ---- the docs' example -------------------------------------------------------

def test_docs_agent_example_runs(engines):
    """docs/python.md's agent example, exactly as written there (the engine's
    name "demo" replaced by this test's), against the engine it names."""
    text = (REPO / "docs" / "python.md").read_text()
    section = text[text.index("### Agents"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'xring.attach("demo")' in code and "agent.step(" in code
    e = engines("--board", "8x8", games=0)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.replace('"demo"', repr(e.name)), "docs/python.md", "exec"),
             {"__name__": "docs"})
    sent = int(out.getvalue().split()[0])
    assert sent >= 64 * 2 * 100, out.getvalue()


def test_reattach_after_the_engine_was_killed_claims_the_same_seats(engines):
    """issue 13: an agent of an engine SIGKILLed gets EngineClosedError,
    and reattach() brings it back, in one call, on the engine restarted
    under the same name: attached again, the same games claimed (new claim
    ids), and playing them. Without an engine, reattach times out and the
    agent says it is detached until a reattach succeeds."""
    e = engines("--board", "8x8", "--tick-ms", "0", games=8, action_timeout_ms=5000)
    eng = attach(e)
    with eng.agent(games=range(2, 6), max_wait=5) as agent:
        b = next_batch(agent)
        assert set(np.unique(b.game_id)) <= {2, 3, 4, 5}
        agent.send(best(b.mask))
        before = agent.stats()
        e.stop(signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(xring.EngineClosedError):
            for _ in range(100000):
                agent.recv(timeout=5)
                agent.release()
        assert time.monotonic() - t0 < 1.0
        with pytest.raises(TimeoutError):
            agent.reattach(timeout=0.2)
        assert agent.claims == ()
        with pytest.raises(xring.EngineClosedError):
            agent.recv(timeout=0.1)
        e.start()
        agent.reattach(timeout=10)
        assert len(agent.claims) == 1
        after = agent.stats()
        assert after["seats"] == before["seats"] and after["claims"] == 1
        games = set()
        for _ in range(20):
            b = next_batch(agent)
            games |= set(np.unique(b.game_id).tolist())
            agent.send(best(b.mask))
        assert games <= {2, 3, 4, 5} and games, games
        # The new engine took its answers: its records say so.
        wait_for(lambda: agent.stats()["actions"] > 0, 10, "the engine to take its answers")


@pytest.mark.parametrize("what", ["agent", "reader"])
def test_reattach_waits_in_slices_ctrl_c_ends_it(engines, what):
    """With its engine gone and none coming, reattach() waits out its
    timeout (5 s here; None is for ever), the GIL released in 50 ms slices:
    a SIGINT ends it with KeyboardInterrupt at once, not at the timeout. A
    NaN timeout is refused (it was for ever)."""
    e = engines("--board", "8x8", "--tick-ms", "5", games=4)
    eng = attach(e)
    peer = eng.agent(games=range(0, 2)) if what == "agent" else eng.reader(batch=8)
    with peer:
        e.stop(signal.SIGKILL)
        with pytest.raises(xring.EngineClosedError):
            for _ in range(100000):
                if what == "agent":
                    peer.recv(timeout=5)
                    peer.release()
                else:
                    b = peer.read(timeout=5)
                    if b is not None:
                        b.release()
        with pytest.raises(ValueError):
            peer.reattach(timeout=float("nan"))
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        t0 = time.monotonic()
        try:
            with pytest.raises(KeyboardInterrupt):
                peer.reattach(timeout=5)
        finally:
            timer.cancel()
        assert time.monotonic() - t0 < 2.0


def test_many_agents_reattach_with_every_claim_under_the_request_rate(engines):
    """20 agents of one uid, 16 claims each (single games), then the engine
    restarted: their reattaches come at once, more claims than the uid's
    request rate lets through in a second. Each reattach waits out the
    refusals for the rate and comes back with all 16 claims, the same
    seats (a refused claim once ended the reattach and lost the rest)."""
    n_agents, per = 20, 16
    e = engines("--board", "4x4", "--tick-ms", "50", games=n_agents * per * 2,
                max_agents=n_agents + 4)
    eng = attach(e)

    def with_rate(f):
        end = time.monotonic() + 60
        while True:
            try:
                return f()
            except xring.TooManyRequestsError:
                assert time.monotonic() < end, "the request rate never let it through"
                # An agent's 16 claims are some 60 requests (each claim
                # moves its reader): let the uid's bucket fill again.
                time.sleep(0.3)

    agents = []
    try:
        for k in range(n_agents):
            games = [k * per * 2 + 2 * j for j in range(per)]   # 16 ranges of one game
            agents.append(with_rate(lambda: eng.agent(games=games, label=f"a{k}")))
        seats = [a.stats()["seats"] for a in agents]
        assert all(len(a.claims) == per for a in agents)
        e.stop(signal.SIGKILL)
        e.start()
        for a in agents:
            a.reattach(timeout=60)
        assert [len(a.claims) for a in agents] == [per] * n_agents
        assert [a.stats()["seats"] for a in agents] == seats
    finally:
        for a in agents:
            a.close()


def test_a_reattach_refused_a_seat_goes_on_from_there(engines):
    """After a restart another agent takes one of its seats first: the
    reattach says so (SeatTakenError), the agent keeps the claims made
    before it, and a claim it makes meanwhile of a seat still to be made
    again stands for that one. Once the other agent goes, the next
    reattach makes the rest, without dropping what it holds."""
    e = engines("--board", "4x4", "--tick-ms", "20", games=16)
    eng = attach(e)
    with eng.agent(games=[0, 2, 4, 6]) as a:
        assert len(a.claims) == 4
        seats = a.stats()["seats"]
        e.stop(signal.SIGKILL)
        e.start()
        eng2 = attach(e)
        with eng2.agent(games=[2]) as other:
            with pytest.raises(xring.SeatTakenError):
                a.reattach(timeout=10)
            assert len(a.claims) == 1                 # game 0's, made before
            held = a.claims[0]
            a.claim([4])                              # one still to be made again
            assert len(a.claims) == 2

        def reattached():
            # The other agent's seats are free once the engine has seen
            # it go (its connection's end, a moment after close()).
            try:
                a.reattach(timeout=10)
                return True
            except xring.SeatTakenError:
                return False
        wait_for(reattached, 10, "the other agent's seat to be free")
        assert len(a.claims) == 4 and held in a.claims
        assert a.stats()["seats"] == seats
