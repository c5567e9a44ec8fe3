"""The learner side's circular buffer of train batches (IMPACT's, as RLlib's APPO keeps it).

At most ``num_batches`` train batches are held; each may be drawn
``iterations_per_batch`` times before it leaves, and adding to a full buffer evicts the
oldest batch however often it was drawn. With ``iterations_per_batch=1`` this is a plain
queue of ``num_batches`` batches in which each batch is learned from once (IMPALA).
"""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np


@dataclasses.dataclass
class TrainBatch:
    """One train batch: per-module columns, and the weights version its fragments were drawn with."""

    batches: dict[str, dict[str, np.ndarray]]
    weights_version: float
    """Mean over its fragments, weighted by env steps."""
    env_steps: int
    uses_left: int = 0


class CircularBuffer:
    """Train batches, each drawn at most ``iterations_per_batch`` times, in random order."""

    def __init__(self, num_batches: int, iterations_per_batch: int, seed: int | None = None):
        self.num_batches = num_batches
        self.iterations_per_batch = iterations_per_batch
        self._batches: deque[TrainBatch] = deque()
        self._rng = np.random.default_rng(seed)
        self.num_evicted = 0
        """Batches pushed out by newer ones before they were drawn ``iterations_per_batch`` times."""

    def __len__(self) -> int:
        return len(self._batches)

    def add(self, batch: TrainBatch) -> None:
        batch.uses_left = self.iterations_per_batch
        if len(self._batches) == self.num_batches:
            self._batches.popleft()
            self.num_evicted += 1
        self._batches.append(batch)

    def sample(self) -> TrainBatch | None:
        """A random held batch (None when empty); it leaves once drawn ``iterations_per_batch`` times."""
        if not self._batches:
            return None
        index = int(self._rng.integers(len(self._batches)))
        batch = self._batches[index]
        batch.uses_left -= 1
        if batch.uses_left == 0:
            del self._batches[index]
        return batch

    def drop_module(self, module_id: str) -> None:
        """Forget one module's rows in every held batch (a module restarted as a new player)."""
        for batch in self._batches:
            batch.batches.pop(module_id, None)
