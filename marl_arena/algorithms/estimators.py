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
    advantages = discounted_reverse_sum(deltas, gamma * lambda_ * continues)
    return advantages, advantages + values


def discounted_reverse_sum(deltas: np.ndarray, decay: np.ndarray) -> np.ndarray:
    """x_t = deltas_t + decay_t * x_{t+1}, from the last row back (x past the end is 0).

    GAE's advantages (decay gamma * lambda) and V-trace's corrections (decay gamma * c) are
    both this sum; a decay of 0 where a segment ends keeps it from crossing segments.
    """
    out = np.empty_like(deltas)
    running = 0.0
    for t in range(len(deltas) - 1, -1, -1):
        running = deltas[t] + decay[t] * running
        out[t] = running
    return out


def explained_variance(targets: np.ndarray, predictions: np.ndarray) -> float:
    """1 - Var(targets - predictions) / Var(targets); -1 when the targets do not vary."""
    variance = np.var(targets)
    if variance == 0:
        return -1.0
    return float(max(-1.0, 1.0 - np.var(targets - predictions) / variance))


def compute_vtrace(behaviour_logp: np.ndarray, target_logp: np.ndarray, rewards: np.ndarray,
                   values: np.ndarray, next_values: np.ndarray, terminateds: np.ndarray,
                   truncateds: np.ndarray, gamma: float, clip_rho_threshold: float | None = 1.0,
                   clip_pg_rho_threshold: float | None = 1.0,
                   clip_c_threshold: float | None = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """V-trace value targets ``vs`` and policy-gradient advantages (Espeholt et al. 2018, eq. 1).

    ``behaviour_logp`` is the log-probability of each action under the policy that acted,
    ``target_logp`` under the policy being evaluated; their ratio rho is clipped at
    ``clip_rho_threshold`` in the TD errors, at ``clip_c_threshold`` in the trace and at
    ``clip_pg_rho_threshold`` in the advantages (None: no clipping). The advantage of a row
    is ``rho_pg * (r + gamma * vs_next - V)``, where ``vs_next`` is the next row's target
    inside a segment, ``next_values`` at a truncated end and 0 at a terminal one.
    With equal policies (rho = 1) the targets are the lambda = 1 GAE returns.
    """
    rhos = np.exp(target_logp.astype(np.float64) - behaviour_logp.astype(np.float64))
    clipped_rhos = _clip_above(rhos, clip_rho_threshold)
    cs = _clip_above(rhos, clip_c_threshold)
    not_terminal = 1.0 - terminateds.astype(np.float64)
    continues = 1.0 - (terminateds | truncateds).astype(np.float64)
    deltas = clipped_rhos * (rewards + gamma * next_values * not_terminal - values)
    vs = values + discounted_reverse_sum(deltas, gamma * cs * continues)
    # The next row's target where the segment goes on; the bootstrap value where it ends.
    following = np.append(vs[1:], 0.0)
    next_vs = np.where(continues > 0, following, next_values * not_terminal)
    advantages = _clip_above(rhos, clip_pg_rho_threshold) * (rewards + gamma * next_vs - values)
    return vs.astype(np.float32), advantages.astype(np.float32)


def _clip_above(x: np.ndarray, threshold: float | None) -> np.ndarray:
    return x if threshold is None else np.minimum(x, threshold)
