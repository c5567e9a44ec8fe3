"""SAC's targets and losses as plain functions over tensors (tested by hand in tests/test_sac.py).

Shapes: ``rows`` transitions, ``num_q`` critics (1 or 2), ``actions`` discrete actions.
Discrete SAC takes exact expectations over the policy's action probabilities; an illegal
action has probability 0 and contributes nothing, whatever its Q value or log-probability
(both can be huge: masked logits sit at the dtype's minimum).
"""

from __future__ import annotations

import torch


def soft_q_targets(rewards: torch.Tensor, terminateds: torch.Tensor, discounts: torch.Tensor,
                   next_values: torch.Tensor) -> torch.Tensor:
    """r + discount * V_soft(s') per row; terminal rows do not bootstrap.

    ``next_values`` is the soft value of the next state, min_i Q'_i(s', a') - alpha log pi(a'|s')
    (sampled a' for Box actions, the expectation over a' for discrete ones);
    ``discounts`` is gamma^m of an m-step transition.
    """
    bootstrap = torch.where(terminateds.bool(), torch.zeros_like(next_values), next_values)
    return rewards + discounts * bootstrap


def _policy_expectation(log_probs: torch.Tensor, values: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    """sum_a pi(a) values(a) over the legal actions, per row (0 for a row with none); illegal
    entries are replaced, not multiplied by 0, since they may be infinite."""
    probs = torch.where(legal, log_probs.exp(), torch.zeros_like(log_probs))
    return (probs * torch.where(legal, values, torch.zeros_like(values))).sum(-1)


def expected_soft_value(log_probs: torch.Tensor, q_values: torch.Tensor, alpha: torch.Tensor | float,
                        legal: torch.Tensor) -> torch.Tensor:
    """sum_a pi(a) (Q(a) - alpha log pi(a)) over the legal actions, per row; 0 for a row with none.

    ``log_probs`` and ``q_values`` are (rows, actions), ``legal`` a boolean of that shape.
    """
    return _policy_expectation(log_probs, q_values - alpha * log_probs, legal)


def discrete_entropy(log_probs: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    """-sum_a pi(a) log pi(a) over the legal actions, per row."""
    return -_policy_expectation(log_probs, log_probs, legal)


def critic_loss(q_taken: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """sum over critics of mean_rows w * 0.5 (Q_i(s, a) - y)^2; ``q_taken`` is (num_q, rows)."""
    per_row = 0.5 * (q_taken - targets) ** 2
    if weights is not None:
        per_row = per_row * weights
    return per_row.mean(-1).sum()


def temperature_loss(log_alpha: torch.Tensor, entropy: torch.Tensor,
                     target_entropy: torch.Tensor | float) -> torch.Tensor:
    """mean of log_alpha (H - H_target): descending it raises alpha while the policy's entropy H
    is below the target and lowers it while above (``entropy`` is treated as a constant)."""
    return (log_alpha * (entropy - target_entropy).detach()).mean()


def auto_discrete_target_entropy(legal: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale`` times the entropy of the uniform policy over each row's legal actions, log(n_legal).

    Per row, so that a board position with few legal moves is not asked for more entropy
    than it can have (a fixed ``scale log|A|`` would push alpha up forever there).
    """
    return scale * legal.sum(-1).clamp_min(1).to(torch.float32).log()


def auto_continuous_target_entropy(action_dim: int) -> float:
    """-dim(A), the usual heuristic for squashed Gaussian policies (Haarnoja et al., 2018)."""
    return -float(action_dim)

