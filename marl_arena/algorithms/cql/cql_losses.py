"""CQL's conservative penalty as a plain function over tensors (tested by hand in tests/test_cql.py).

The penalty of Kumar et al. (2020, CQL(H)) pushes Q down on actions the policy or a
uniform proposal would pick, and up on the actions in the data:

    T * log sum_j exp((Q(s, a_j) - log mu(a_j | s)) / T)  -  Q(s, a_data)

averaged over rows, for each critic. ``mu`` is the density each candidate action a_j was
drawn from, so the sum is an importance-sampled estimate of the integral of exp(Q / T) over
actions (up to the constant log of the number of candidates, which neither the original
code nor RLlib subtracts; it shifts the penalty, not its gradient). Discrete actions need no
proposal: every legal action is a candidate once, with log mu = 0, and an illegal one is
passed as -inf, which the sum skips.
"""

from __future__ import annotations

import torch


def cql_penalty(q_data: torch.Tensor, q_candidates: torch.Tensor, temperature: float,
                log_proposal: torch.Tensor | None = None) -> torch.Tensor:
    """The conservative penalty per critic, shape ``(num_q,)``.

    ``q_data``: (num_q, rows), Q of the data's actions; ``q_candidates``: (num_q, rows, n),
    Q of n candidate actions per row (-inf for a candidate to leave out); ``log_proposal``:
    (rows, n) log-densities of the candidates, treated as constants (None: all 0).
    """
    if log_proposal is not None:
        q_candidates = q_candidates - log_proposal.detach()
    soft_max = temperature * torch.logsumexp(q_candidates / temperature, dim=-1)
    return (soft_max - q_data).mean(dim=-1)
