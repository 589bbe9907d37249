# SPDX-License-Identifier: MIT
"""Reader filters, checked record by record against an unfiltered reader of
the same lossless stream: a filtered reader gets exactly the records that
pass, with the same contents, copied out (batch.copied says why) when
records were skipped between them, and its accounting stays exact."""
import numpy as np
import pytest

import xring
from xrtest import check_accounting, own_engine, reader, record_table

N = 30000

# name -> (reader options, predicate on a record_table row)
#   row: (game, player, turn, action, reward, done, truncated, obs#, mask#,
#         applied, applied_by)
FILTERS = {
    "games": (dict(games=[3, (10, 12), range(50, 60)]),
              lambda row: row[0] == 3 or 10 <= row[0] <= 12 or 50 <= row[0] < 60),
    "players": (dict(players=[1]), lambda row: row[1] == 1),
    "min_turn": (dict(min_turn=30), lambda row: row[2] >= 30),
    "terminal": (dict(terminal=True), lambda row: row[5] or row[6]),
    "not_terminal": (dict(terminal=False), lambda row: not (row[5] or row[6])),
    "reward_win": (dict(reward_range=(0.5, 2.0)), lambda row: 0.5 <= row[4] <= 2.0),
    "reward_loss": (dict(reward_range=(-1.0, -1.0)), lambda row: row[4] == -1.0),
    "combined": (dict(players=[0], min_turn=10, terminal=False),
                 lambda row: row[1] == 0 and row[2] >= 10 and not (row[5] or row[6])),
}
SAMPLED = {
    "sample_a": dict(sample_rate=0.3, sample_seed=7),
    "sample_b": dict(sample_rate=0.3, sample_seed=7),
    "sample_other_seed": dict(sample_rate=0.3, sample_seed=8),
}


class Tap:
    """One reader and everything it got."""

    def __init__(self, r):
        self.r = r
        self.rows = {}
        self.batches = 0
        self.copied = 0
        self.closed = False
        self.problems = []

    def poll(self):
        try:
            b = self.r.read(timeout=0)
        except xring.EngineClosedError:
            self.closed = True
            return
        if b is None:
            return
        self.batches += 1
        seq = b.seq.copy()
        gaps = bool((np.diff(seq.astype(np.int64)) != 1).any())
        if gaps:
            self.copied += 1
            if not b.copied or "filtered" not in b.copied:
                self.problems.append(f"batch at {seq[0]} has gaps but copied={b.copied!r}")
        elif b.copied is not None:
            self.problems.append(f"contiguous batch at {seq[0]} copied: {b.copied!r}")
        if (np.diff(seq.astype(np.int64)) <= 0).any():
            self.problems.append(f"batch at {seq[0]} not in sequence order")
        self.rows.update(record_table(b))
        b.release()
        check_accounting(self.r.stats())


@pytest.fixture(scope="module")
def filtered_run():
    """One engine (4x4 boards, short episodes so that wins, losses and
    truncations are frequent), every filtered reader and then an unfiltered
    one, all read to the end of the stream."""
    with own_engine("--games", "100", "--ring-size", "8M", "--board", "4x4",
                    "--turn-limit", "40", "--tick-ms", "1", "--count", str(N)) as e:
        taps = {k: Tap(reader(e, batch=512, max_wait=0, **opts))
                for k, (opts, _) in FILTERS.items()}
        taps.update({k: Tap(reader(e, batch=512, max_wait=0, **opts))
                     for k, opts in SAMPLED.items()})
        # Attached last: everything from its first record on was seen by
        # every filtered reader too (lossless).
        all_tap = Tap(reader(e, batch=512, max_wait=0))
        everyone = list(taps.values()) + [all_tap]
        while not all(t.closed for t in everyone):
            for t in everyone:
                if not t.closed:
                    t.poll()
        stats = {k: t.r.stats() for k, t in taps.items()}
        stats["all"] = all_tap.r.stats()
        for t in everyone:
            t.r.close()
    return all_tap, taps, stats


def _window(all_tap):
    seqs = sorted(all_tap.rows)
    first = seqs[0]
    # The unfiltered reader saw every record from its first to the end.
    assert seqs == list(range(first, N)), "unfiltered reader missed records"
    assert first < N // 2
    return first


@pytest.mark.parametrize("name", list(FILTERS))
def test_filter_passes_exactly_the_matching_records(filtered_run, name):
    all_tap, taps, stats = filtered_run
    first = _window(all_tap)
    tap = taps[name]
    _, pred = FILTERS[name]
    expect = {s for s, row in all_tap.rows.items() if pred(row)}
    got = {s for s in tap.rows if s >= first}
    assert len(expect) > 10, f"too few records pass {name} to test it"
    assert got == expect, (f"{name}: {len(got - expect)} records that should not pass, "
                           f"{len(expect - got)} missing")
    # Every record, copied or viewed, has the contents of the original.
    for s in got:
        assert tap.rows[s] == all_tap.rows[s], f"{name}: record {s} differs"
    # And nothing before the window fails the predicate either.
    assert all(pred(row) for row in tap.rows.values())
    assert not tap.problems, tap.problems[:5]
    s = stats[name]
    check_accounting(s)
    assert s["read"] == len(tap.rows) and s["dropped"] == 0 and s["pending"] == 0
    assert s["batches"] == tap.batches
    assert s["copies"] == tap.copied


def test_filtered_readers_skip_and_copy(filtered_run):
    all_tap, taps, stats = filtered_run
    # Sparse filters skip records in place and copy the batches with gaps;
    # the unfiltered reader's batches are all views.
    assert stats["games"]["filtered"] > stats["games"]["read"]
    assert stats["games"]["copies"] > 0
    assert stats["all"]["copies"] == 0 and stats["all"]["filtered"] == 0
    assert not all_tap.problems
    # Each reader accounts for every record written since it attached.
    for name, s in stats.items():
        check_accounting(s)
        assert s["pending"] == 0 and s["dropped"] == 0, name
        assert s["read"] + s["filtered"] == s["written"], name


def test_sample_rate_is_deterministic(filtered_run):
    all_tap, taps, stats = filtered_run
    first = _window(all_tap)
    a = {s for s in taps["sample_a"].rows if s >= first}
    b = {s for s in taps["sample_b"].rows if s >= first}
    c = {s for s in taps["sample_other_seed"].rows if s >= first}
    total = N - first
    assert a == b, "two readers with the same seed and rate chose different records"
    assert 0.2 < len(a) / total < 0.4, len(a) / total
    assert 0.2 < len(c) / total < 0.4
    assert a != c, "another seed chose the same records"
    for s in a:
        assert taps["sample_a"].rows[s] == all_tap.rows[s]
    assert not taps["sample_a"].problems
    assert stats["sample_a"]["copies"] > 0


def test_filter_arguments_are_checked(engine):
    e = xring.attach(engine.name, timeout=5)
    bad = [dict(sample_rate=1.5), dict(sample_rate=-0.1), dict(reward_range=(1.0, 0.0)),
           dict(reward_range=(float("nan"), 1.0)), dict(games=[]), dict(games=range(5, 5)),
           dict(games=range(0, 10, 2)), dict(players=[(4, 2)]), dict(games=list(range(0, 200, 2)))]
    for kw in bad:
        with pytest.raises(ValueError):
            e.reader(**kw).close()
            pytest.fail(f"reader({kw}) was accepted")
