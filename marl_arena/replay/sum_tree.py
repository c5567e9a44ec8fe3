"""A sum tree over priorities: prioritized sampling in O(log N) per draw, batched in numpy.

Prioritized replay draws transition i with probability p_i / sum(p). A flat array makes
that O(N) per batch; a complete binary tree whose inner nodes hold the sums of their
children finds the transition under a prefix-sum value in one root-to-leaf walk, and an
update only recomputes the leaf's ancestors. A parallel min tree gives the smallest stored
priority, which prioritized replay needs for its largest importance weight.

The trees live in two flat arrays (node 1 is the root, node k's children are 2k and 2k+1,
leaves start at the first power of two >= capacity); every operation walks all queried
leaves level by level at once, so a batch costs log2(capacity) numpy calls, not a Python
loop per item.
"""

from __future__ import annotations

import numpy as np


class SumTree:
    """Fixed-capacity sum and min trees over non-negative float priorities.

    A leaf that was never updated has priority 0 in the sum tree (it is never drawn) and
    does not count towards ``min``.
    """

    def __init__(self, capacity: int):
        if not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"SumTree capacity must be a positive int, got {capacity!r}.")
        self.capacity = int(capacity)
        self._first_leaf = 1 << (self.capacity - 1).bit_length()
        self._sums = np.zeros(2 * self._first_leaf, dtype=np.float64)
        self._mins = np.full(2 * self._first_leaf, np.inf, dtype=np.float64)

    @property
    def total(self) -> float:
        """The sum of all priorities."""
        return float(self._sums[1])

    @property
    def min(self) -> float:
        """The smallest priority of the leaves ever updated; ``inf`` before the first update."""
        return float(self._mins[1])

    def __getitem__(self, indices: np.ndarray) -> np.ndarray:
        """The priorities of the leaves at ``indices`` (0 for a leaf never updated)."""
        return self._sums[self._check_indices(indices) + self._first_leaf]

    def update(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set the priorities of the leaves at ``indices``; a repeated index keeps its last value."""
        indices = self._check_indices(indices)
        priorities = np.asarray(priorities, dtype=np.float64).reshape(-1)
        if priorities.shape != indices.shape:
            raise ValueError(f"SumTree.update got {indices.size} indices but {priorities.size} priorities.")
        bad = priorities[~(np.isfinite(priorities) & (priorities >= 0))]
        if bad.size:
            raise ValueError(f"SumTree priorities must be finite and >= 0, got {bad[:5].tolist()}.")
        if indices.size == 0:
            return
        # Fancy assignment with repeated indices has no defined winner in numpy: keep the
        # last occurrence explicitly, as a loop of single updates would.
        _, last_from_end = np.unique(indices[::-1], return_index=True)
        keep = indices.size - 1 - last_from_end
        nodes = indices[keep] + self._first_leaf
        self._sums[nodes] = priorities[keep]
        self._mins[nodes] = priorities[keep]
        while nodes[0] > 1:  # all leaves sit at the same depth, so all nodes reach the root together
            nodes = np.unique(nodes >> 1)
            self._sums[nodes] = self._sums[2 * nodes] + self._sums[2 * nodes + 1]
            self._mins[nodes] = np.minimum(self._mins[2 * nodes], self._mins[2 * nodes + 1])

    def find_prefix_sum(self, values: np.ndarray) -> np.ndarray:
        """For each value v in [0, total], the leaf i with sum(p[:i]) <= v < sum(p[:i + 1]).

        Drawing v uniformly from [0, total) thus draws leaf i with probability p_i / total.
        The walk never enters a subtree whose sum is 0, so a leaf of priority 0 is never
        returned, even when rounding puts v at or just past a boundary.
        """
        values = np.array(values, dtype=np.float64).reshape(-1)
        total = self._sums[1]
        if total <= 0:
            raise ValueError("SumTree.find_prefix_sum needs a positive total priority; all priorities are 0.")
        if np.any(values < 0) or np.any(values > total):
            raise ValueError(f"SumTree.find_prefix_sum values must lie in [0, total={total}], "
                             f"got min {values.min()} and max {values.max()}.")
        nodes = np.ones(values.shape, dtype=np.int64)
        while nodes.size and nodes[0] < self._first_leaf:
            left = 2 * nodes
            left_sums = self._sums[left]
            go_right = (values >= left_sums) & (self._sums[left + 1] > 0)
            values = np.where(go_right, values - left_sums, values)
            nodes = left + go_right
        return nodes - self._first_leaf

    def _check_indices(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices).reshape(-1)
        if indices.size and not np.issubdtype(indices.dtype, np.integer):
            raise ValueError(f"SumTree indices must be integers, got dtype {indices.dtype}.")
        indices = indices.astype(np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= self.capacity):
            raise ValueError(f"SumTree indices must lie in [0, {self.capacity}), "
                             f"got min {indices.min()} and max {indices.max()}.")
        return indices
