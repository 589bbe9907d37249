# SPDX-License-Identifier: MIT
"""The numpy replay buffers perf/bench_replay.py measures xring's tables
against (perf/python_baselines/replay.py) are correct, so that the
benchmark compares xring with working code: the sum tree's draws follow
priorities**alpha (a chi-square bound that a wrong tree fails, shown on
broken trees), the trees stay the sums and minima of their leaves through
inserts, wraps and updates, weights are (P(i)/P_min)^-beta, and the uniform
ring keeps the newest items and draws them evenly. numpy only."""
import math
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "perf"))
from python_baselines.replay import PrioritizedReplay, UniformReplay  # noqa: E402


def chi2(counts, p):
    """Pearson's statistic of counts against probabilities p (cells with
    p > 0), and its degrees of freedom."""
    live = p > 0
    expected = p[live] * counts.sum()
    return float((((counts[live] - expected) ** 2) / expected).sum()), int(live.sum()) - 1


def bound(dof):
    # Mean + 6 standard deviations of a chi-square of dof degrees of freedom
    # (p < 1e-8 for multinomial counts; stratified draws vary less, so less).
    return dof + 6 * math.sqrt(2 * dof)


def counts_of(buf, batch, rounds):
    c = np.zeros(buf.capacity)
    for _ in range(rounds):
        slots, items, w, prob = buf.sample(batch)
        np.add.at(c, slots, 1)
    return c


def expected_p(prio, alpha):
    w = np.where(prio > 0, prio ** alpha, 0.0)
    return w / w.sum()


def _items(n, size, first=0):
    a = np.zeros((n, size), np.uint8)
    a[:, :8] = np.arange(first, first + n, dtype=np.uint64).view(np.uint8).reshape(n, 8)
    return a


def _ids(rows):
    return np.ascontiguousarray(rows[:, :8]).view(np.uint64).reshape(-1)


def check_trees(buf):
    """Every inner node is the sum (min) of its children, exactly: the trees
    are recomputed from the leaves, never adjusted by differences."""
    s, m, c2 = buf.sum, buf.min, buf.cap2
    inner = np.arange(1, c2)
    assert np.array_equal(s[inner], s[2 * inner] + s[2 * inner + 1])
    assert np.array_equal(m[inner], np.minimum(m[2 * inner], m[2 * inner + 1]))
    leaves = s[c2:]
    assert np.array_equal(m[c2:], np.where(leaves > 0, leaves, np.inf))
    assert (leaves[buf.capacity:] == 0).all(), "padding leaves stay empty"


@pytest.mark.parametrize("batch", [1, 256])
def test_prioritized_frequencies_follow_priorities(batch):
    rng = np.random.default_rng(5)
    cap, alpha = 1000, 0.6                # not a power of two: padding leaves
    prio = rng.uniform(0.01, 10.0, cap)
    prio[::97] = 0.0                       # never drawn
    buf = PrioritizedReplay(cap, 16, alpha=alpha, seed=11)
    buf.add(_items(cap, 16), prio)
    check_trees(buf)
    counts = counts_of(buf, batch, (120_000 if batch > 1 else 30_000) // batch)
    p = expected_p(prio, alpha)
    assert counts[prio == 0].sum() == 0, "an item of priority 0 was drawn"
    stat, dof = chi2(counts, p)
    assert stat < bound(dof), f"chi2 {stat:.0f} with {dof} degrees of freedom"
    # The bound has the power to see a wrong law: the same counts against
    # priorities without alpha are far outside it.
    wrong, _ = chi2(counts, expected_p(prio, 1.0))
    assert wrong > 1.5 * bound(dof), f"chi2 against the wrong law only {wrong:.0f}"


class _NoSubtract(PrioritizedReplay):
    """A broken descent: u is not reduced by the left subtree's sum when it
    goes right (a classic sum-tree bug)."""

    def draw(self, batch):
        total = self.sum[1]
        u = (np.arange(batch) + self.rng.random(batch)) * (total / batch)
        idx = np.ones(batch, np.int64)
        for _ in range(self.depth):
            idx <<= 1
            go = (u >= self.sum[idx]) & (self.sum[idx + 1] > 0)
            idx += go
        return idx - self.cap2


class _StaleParents(PrioritizedReplay):
    """A broken update: leaves change but only their parents are
    recomputed, not the ancestors above them."""

    def _set_leaves(self, slots, weights):
        if len(slots) > self.cap2 // 8:
            return super()._set_leaves(slots, weights)
        node = slots + self.cap2
        self.sum[node] = weights
        self.min[node] = np.where(weights > 0, weights, np.inf)
        node >>= 1
        self.sum[node] = self.sum[2 * node] + self.sum[2 * node + 1]


@pytest.mark.parametrize("broken", [_NoSubtract, _StaleParents])
def test_the_frequency_check_fails_for_a_wrong_tree(broken):
    rng = np.random.default_rng(6)
    cap, alpha = 1000, 0.6
    prio = rng.uniform(0.01, 10.0, cap)
    buf = broken(cap, 16, alpha=alpha, seed=11)
    buf.add(_items(cap, 16), prio)
    new = rng.uniform(0.01, 10.0, 100)
    buf.update_priorities(np.arange(100), new)
    prio[:100] = new
    counts = counts_of(buf, 256, 400)
    stat, dof = chi2(counts, expected_p(prio, alpha))
    assert stat > bound(dof), f"a broken tree passed: chi2 {stat:.0f}, dof {dof}"


def test_updates_wraps_and_weights():
    rng = np.random.default_rng(7)
    cap, alpha, beta = 300, 0.7, 0.5
    buf = PrioritizedReplay(cap, 16, alpha=alpha, seed=3)
    prio = np.zeros(cap)
    first = 0
    for n in (100, 150, 120, 200):        # wraps twice; the last add overwrites
        p = rng.uniform(0.1, 5.0, n)
        slots = buf.add(_items(n, 16, first), p)
        assert np.array_equal(slots, (np.arange(first, first + n)) % cap)
        prio[slots] = p
        first += n
        check_trees(buf)
    assert buf.size == cap
    # Each slot holds the newest item written to it.
    assert np.array_equal(_ids(buf.items), np.arange(first - cap, first)[np.argsort(
        np.arange(first - cap, first) % cap)])
    # Updates, with a repeated slot (the last of its values stands) and a 0.
    slots = np.array([5, 17, 5, 250, 299])
    newp = np.array([9.0, 0.0, 2.5, 7.0, 0.3])
    buf.update_priorities(slots, newp)
    prio[[5, 17, 250, 299]] = [2.5, 0.0, 7.0, 0.3]
    check_trees(buf)
    p = expected_p(prio, alpha)
    np.testing.assert_allclose(buf.total, (prio[prio > 0] ** alpha).sum(), rtol=1e-12)
    s, items, w, prob = buf.sample(1024, beta=beta)
    assert (prio[s] > 0).all()
    np.testing.assert_allclose(prob, p[s], rtol=1e-12)
    np.testing.assert_allclose(w, (p[s] / p[p > 0].min()) ** -beta, rtol=1e-12)
    assert w.max() <= 1.0 and np.array_equal(items, buf.items[s])
    counts = counts_of(buf, 256, 400)
    stat, dof = chi2(counts, p)
    assert counts[17] == 0 and stat < bound(dof), f"chi2 {stat:.0f}, dof {dof}"


def test_extreme_priorities_never_draw_an_empty_leaf():
    # Sums of very unequal weights round; the descent must still end on a
    # live leaf (never a padding leaf, never a 0).
    rng = np.random.default_rng(8)
    cap = 5000
    prio = 10.0 ** rng.uniform(-8, 8, cap)
    prio[rng.random(cap) < 0.3] = 0.0
    buf = PrioritizedReplay(cap, 8, alpha=1.0, seed=9)
    buf.add(_items(cap, 8), prio)
    for _ in range(200):
        s = buf.draw(1024)
        assert (s < cap).all() and (prio[s] > 0).all()


def test_uniform_ring():
    buf = UniformReplay(1000, 16, seed=4)
    buf.add(_items(600, 16))
    s, items = buf.sample(4096)
    assert (s < 600).all() and np.array_equal(_ids(items), s)
    buf.add(_items(700, 16, 600))          # wraps: items 300..1299 remain
    assert buf.size == 1000
    ids = _ids(buf.items)
    assert np.array_equal(np.sort(ids), np.arange(300, 1300))
    counts = np.zeros(1000)
    for _ in range(400):
        s, items = buf.sample(256)
        np.add.at(counts, s, 1)
    assert np.array_equal(_ids(items), ids[s])
    stat, dof = chi2(counts, np.full(1000, 1e-3))
    assert stat < bound(dof), f"chi2 {stat:.0f}, dof {dof}"
    big = UniformReplay(10, 8)
    big.add(_items(25, 8))                 # more than the capacity at once
    assert np.array_equal(np.sort(_ids(big.items)), np.arange(15, 25))
