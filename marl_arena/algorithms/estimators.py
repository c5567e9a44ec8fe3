"""Advantage and return estimators: plain functions over one module's batch.

Batches are concatenations of trajectory segments. A row's ``terminateds`` says its next
state is terminal (no bootstrap); ``truncateds`` says the segment stops there without a
terminal state (bootstrap from the next observation's value). Either one ends the
backward recursion at that row.
"""

from __future__ import annotations

import numpy as np


def compute_gae(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray,
                terminateds: np.ndarray, truncateds: np.ndarray, gamma: float,
                lambda_: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimates and value targets (advantages + values)."""
    not_terminal = 1.0 - terminateds.astype(np.float32)
    continues = 1.0 - (terminateds | truncateds).astype(np.float32)
    deltas = rewards + gamma * next_values * not_terminal - values
    decay = gamma * lambda_ * continues
    advantages = np.empty_like(deltas)
    running = 0.0
    for t in range(len(deltas) - 1, -1, -1):
        running = deltas[t] + decay[t] * running
        advantages[t] = running
    return advantages, advantages + values


def explained_variance(targets: np.ndarray, predictions: np.ndarray) -> float:
    """1 - Var(targets - predictions) / Var(targets); -1 when the targets do not vary."""
    variance = np.var(targets)
    if variance == 0:
        return -1.0
    return float(max(-1.0, 1.0 - np.var(targets - predictions) / variance))
