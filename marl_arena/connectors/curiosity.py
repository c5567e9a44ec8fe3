"""Count-based curiosity: an intrinsic reward ``beta / sqrt(N(s'))`` for reaching state ``s'``.

Sparse-reward tasks give a policy nothing to climb until it stumbles on the reward. A bonus
that shrinks with how often a state was reached (Strehl & Littman's count-based
exploration, in the ``1/sqrt(N)`` form of Bellemare et al., 2016) pays the policy to go
where it has not been, so it covers the state space and finds the sparse reward; the bonus
then fades and the extrinsic reward takes over.

States are counted as keys: each observation row is floored to ``resolution`` (continuous
observations; None keeps exact values, right for one-hot or board observations) and hashed
to 8 bytes (BLAKE2b, the same in every process, so restored counts keep their meaning).
Counts are kept per module id, in the learner, and saved with its checkpoint.

Each batch is counted first, then paid: a state seen k times in this batch and n times
before earns ``beta / sqrt(n + k)`` on each of its k rows, whatever their order, so the
bonus is one vectorised step and does not depend on how rows are shuffled or sharded.

Counts are of what the learner is given: with on-policy algorithms (PPO) each sampled step
once; off-policy learners see replayed rows again and count them again; data-parallel
learners (``num_learners > 1``) each count their own shard.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from marl_arena.connectors.learner_connector import LearnerConnector, TensorBatch
from marl_arena.core.columns import Columns


class CountBasedCuriosity(LearnerConnector):
    """Adds ``beta / sqrt(N(s'))`` to each row's reward, ``s'`` being the row's next observation.

    Args:
        beta: scale of the bonus (RLlib calls it ``intrinsic_reward_coeff``); > 0.
        resolution: observations are floored to multiples of it before counting; None
            counts exact values.
        module_ids: the modules that get a bonus (None: all).
    """

    def __init__(self, beta: float = 0.1, resolution: float | None = None, module_ids: list[str] | None = None):
        if not (isinstance(beta, (int, float)) and beta > 0 and np.isfinite(beta)):
            raise ValueError(f"CountBasedCuriosity: beta={beta!r} is not allowed: it must be a number > 0.")
        if resolution is not None and not (isinstance(resolution, (int, float)) and resolution > 0):
            raise ValueError(f"CountBasedCuriosity: resolution={resolution!r} is not allowed: it must be None "
                             "or a number > 0.")
        self.beta = float(beta)
        self.resolution = None if resolution is None else float(resolution)
        self.module_ids = None if module_ids is None else set(module_ids)
        self.counts: dict[str, dict[bytes, int]] = {}

    # ------------------------------------------------------------------ counting
    def state_keys(self, observations: np.ndarray) -> list[bytes]:
        """One 8-byte key per observation row (the leading axis)."""
        return [_hash(row) for row in self._rows(observations)]

    def _rows(self, observations: np.ndarray) -> np.ndarray:
        """Rows as fixed-width byte strings (numpy void), equal exactly when the states are equal."""
        rows = np.asarray(observations).reshape(len(observations), -1)
        if self.resolution is not None:
            rows = np.floor(rows / self.resolution).astype(np.int64)
        rows = np.ascontiguousarray(rows)
        return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).reshape(-1)

    def count(self, module_id: str, observations: np.ndarray) -> np.ndarray:
        """Add ``observations`` to the module's counts; returns each row's count after adding."""
        counts = self.counts.setdefault(module_id, {})
        if len(observations) == 0:
            return np.zeros(0, dtype=np.int64)
        unique, inverse, in_batch = np.unique(self._rows(observations), return_inverse=True, return_counts=True)
        totals = np.empty(len(unique), dtype=np.int64)
        for k, (row, seen) in enumerate(zip(unique, in_batch)):
            key = _hash(row)
            totals[k] = counts[key] = counts.get(key, 0) + int(seen)
        return totals[inverse.reshape(-1)]

    # ------------------------------------------------------------------ the connector
    def __call__(self, module_id: str, batch: TensorBatch) -> tuple[TensorBatch, dict[str, float]]:
        if self.module_ids is not None and module_id not in self.module_ids:
            return batch, {}
        rewards = batch[Columns.REWARDS]
        # The state the action led to; a batch without next observations (none here) counts its own.
        states = batch.get(Columns.NEXT_OBS, batch[Columns.OBS])
        # Rows may come as sequences ([B, T, ...]): one state per reward entry either way.
        states = states.detach().cpu().numpy().reshape(rewards.numel(), -1)
        visits = self.count(module_id, states)
        bonus = torch.as_tensor(self.beta / np.sqrt(visits), dtype=rewards.dtype, device=rewards.device)
        batch = dict(batch)
        batch[Columns.REWARDS] = rewards + bonus.reshape(rewards.shape)
        return batch, {"intrinsic_reward_mean": float(bonus.mean()) if len(bonus) else 0.0,
                       "curiosity_num_states": float(len(self.counts[module_id]))}

    def get_state(self) -> dict[str, Any]:
        return {"counts": {mid: dict(counts) for mid, counts in self.counts.items()}}

    def set_state(self, state: dict[str, Any]) -> None:
        self.counts = {mid: dict(counts) for mid, counts in state.get("counts", {}).items()}


def _hash(row: np.void) -> bytes:
    return hashlib.blake2b(row.tobytes(), digest_size=8).digest()
