# SPDX-License-Identifier: MIT
"""Replay buffers as a Python trainer would write them in one process: the
baselines perf/bench_replay.py measures xring's replay tables against.

UniformReplay      a fixed-capacity ring of fixed-size items in one numpy
                   array; sample(batch) draws indices with rng.integers and
                   gathers them with one fancy index.
PrioritizedReplay  the usual prioritized experience replay (Schaul et al.;
                   the layout of OpenAI baselines' segment trees), with every
                   loop over the batch done by numpy: a binary sum tree and a
                   min tree in flat float64 arrays (root at 1, leaves at
                   cap2 + slot, cap2 the capacity rounded up to a power of
                   two), stratified prefix sums (the batch's draws are one
                   each from `batch` equal segments of the total), the
                   descent made for the whole batch level by level,
                   update_priorities setting leaves and recomputing their
                   ancestors level by level, importance weights
                   (N P(i))^-beta normalised by their largest.

Both follow xring's tables where the two could differ, so that the figures
compare the same work: items are rows of item_size bytes (uint8), a full
buffer overwrites its oldest item (xring's "fifo" remover), the probability
of item i is p_i^alpha / sum_j p_j^alpha, an item of priority 0 is never
drawn, and weights are normalised over the items that can be drawn.
"""
import numpy as np


class UniformReplay:
    """A ring of `capacity` items of `item_size` bytes; draws with replacement."""

    def __init__(self, capacity, item_size, seed=0):
        if capacity < 1 or item_size < 1:
            raise ValueError("capacity and item_size must be >= 1")
        self.capacity = int(capacity)
        self.items = np.zeros((self.capacity, int(item_size)), np.uint8)
        self.size = 0
        self.pos = 0            # the slot the next item goes to
        self.rng = np.random.default_rng(seed)

    def add(self, items):
        """Appends rows of items (n x item_size); a full buffer overwrites its
        oldest. Returns the slots written (the last capacity rows only, when
        n > capacity, as a ring would keep them)."""
        items = np.asarray(items, np.uint8).reshape(-1, self.items.shape[1])
        n = len(items)
        if n > self.capacity:
            self.pos = (self.pos + n - self.capacity) % self.capacity
            items = items[n - self.capacity:]
            n = self.capacity
        slots = (self.pos + np.arange(n)) % self.capacity
        self.items[slots] = items
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        return slots

    def draw(self, batch):
        """`batch` slots drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("sample from an empty buffer")
        return self.rng.integers(0, self.size, batch)

    def sample(self, batch):
        """(slots, items): draw(batch), and the items gathered (a copy, as any
        batch needs)."""
        idx = self.draw(batch)
        return idx, self.items[idx]


class PrioritizedReplay:
    """A ring of items with priorities; draws item i with probability
    p_i^alpha / sum_j p_j^alpha, with replacement, stratified over the batch."""

    def __init__(self, capacity, item_size, alpha=0.6, seed=0):
        if capacity < 1 or item_size < 1:
            raise ValueError("capacity and item_size must be >= 1")
        if not alpha >= 0:
            raise ValueError("alpha must be >= 0")
        self.capacity = int(capacity)
        self.alpha = float(alpha)
        self.cap2 = 1 << max(0, (self.capacity - 1).bit_length())
        self.depth = self.cap2.bit_length() - 1          # levels below the root
        self.sum = np.zeros(2 * self.cap2, np.float64)
        self.min = np.full(2 * self.cap2, np.inf)        # over positive leaves only
        self.items = np.zeros((self.capacity, int(item_size)), np.uint8)
        self.size = 0
        self.pos = 0
        self.max_priority = 1.0                          # raw, before alpha
        self.rng = np.random.default_rng(seed)

    # -- the trees --------------------------------------------------------

    def _set_leaves(self, slots, weights):
        """Leaves at slots take weights (p^alpha); their ancestors are
        recomputed from their children, level by level. A slot given twice
        keeps the last of its weights (numpy's assignment order), and the
        sums stay those of the leaves, whatever the order."""
        node = slots + self.cap2
        self.sum[node] = weights
        self.min[node] = np.where(weights > 0, weights, np.inf)
        if len(node) > self.cap2 // 8:
            self._rebuild()
            return
        for _ in range(self.depth):
            node >>= 1
            # Duplicates in node write the same value: no np.unique needed.
            left = node << 1
            self.sum[node] = self.sum[left] + self.sum[left + 1]
            self.min[node] = np.minimum(self.min[left], self.min[left + 1])

    def _rebuild(self):
        """Every inner node from the leaves: one pass a level, cheaper than
        the per-leaf walk up when a large part of the leaves changed."""
        lo = self.cap2
        while lo > 1:
            hi, lo = lo, lo >> 1
            self.sum[lo:hi] = self.sum[2 * lo:2 * hi:2] + self.sum[2 * lo + 1:2 * hi:2]
            np.minimum(self.min[2 * lo:2 * hi:2], self.min[2 * lo + 1:2 * hi:2],
                       out=self.min[lo:hi])

    def _weight(self, p):
        """p^alpha, and 0 for priority 0 (also when alpha is 0)."""
        return np.where(p > 0, p ** self.alpha, 0.0)

    @property
    def total(self):
        return self.sum[1]

    # -- the buffer -------------------------------------------------------

    def add(self, items, priorities=None):
        """Appends rows of items at priorities (one each, one for all, or None:
        the largest priority seen so far, as PER gives new items); a full
        buffer overwrites its oldest. Returns the slots written."""
        items = np.asarray(items, np.uint8).reshape(-1, self.items.shape[1])
        n = len(items)
        p = np.broadcast_to(np.asarray(self.max_priority if priorities is None else priorities,
                                       np.float64), (n,))
        if not (np.isfinite(p).all() and (p >= 0).all()):
            raise ValueError("priorities must be finite and >= 0")
        if n > self.capacity:
            self.pos = (self.pos + n - self.capacity) % self.capacity
            items, p, n = items[n - self.capacity:], p[n - self.capacity:], self.capacity
        slots = (self.pos + np.arange(n)) % self.capacity
        self.items[slots] = items
        self._set_leaves(slots, self._weight(p))
        if n:
            self.max_priority = max(self.max_priority, float(p.max()))
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        return slots

    def update_priorities(self, slots, priorities):
        """Sets priorities (raw, before alpha) on slots."""
        slots = np.asarray(slots, np.int64).reshape(-1)
        p = np.broadcast_to(np.asarray(priorities, np.float64), slots.shape)
        if not (np.isfinite(p).all() and (p >= 0).all()):
            raise ValueError("priorities must be finite and >= 0")
        if ((slots < 0) | (slots >= self.size)).any():
            raise IndexError("a slot out of the buffer")
        self._set_leaves(slots, self._weight(p))
        if len(p):
            self.max_priority = max(self.max_priority, float(p.max()))

    def draw(self, batch):
        """`batch` slots, stratified: draw j is the item whose prefix-sum
        interval holds u_j = (j + U[0,1)) * total / batch. The descent is
        made for the whole batch at once, one level at a time."""
        total = self.sum[1]
        if self.size == 0 or not total > 0:
            raise ValueError("sample from a buffer with no positive priority")
        u = (np.arange(batch) + self.rng.random(batch)) * (total / batch)
        np.minimum(u, np.nextafter(total, 0), out=u)
        idx = np.ones(batch, np.int64)
        s = self.sum
        for _ in range(self.depth):
            idx <<= 1                       # the left child
            lv = s[idx]
            # Right when u is past the left subtree; never into a subtree of
            # sum 0 (rounding can put u at the very end of the left one).
            go = (u >= lv) & (s[idx + 1] > 0)
            np.subtract(u, lv, out=u, where=go)
            idx += go
        return idx - self.cap2

    def draw_weighted(self, batch, beta=0.4):
        """(slots, weights, probabilities) of `batch` draws; weights are
        (N P(i))^-beta / max_j (N P(j))^-beta = (P(i) / P_min)^-beta."""
        slots = self.draw(batch)
        w = self.sum[slots + self.cap2]
        prob = w / self.sum[1]
        weights = (w / self.min[1]) ** -beta
        return slots, weights, prob

    def sample(self, batch, beta=0.4):
        """(slots, items, weights, probabilities): draw_weighted(), and the
        items gathered."""
        slots, weights, prob = self.draw_weighted(batch, beta)
        return slots, self.items[slots], weights, prob
