"""Values of next observations for the return estimators (GAE, V-trace), at the cost of the few rows that need them."""

from __future__ import annotations

import torch

from marl_arena.core.rl_module import RLModule


def bootstrap_values(module: RLModule, values: torch.Tensor, obs: torch.Tensor, next_obs: torch.Tensor,
                     terminateds: torch.Tensor) -> torch.Tensor:
    """V(next_obs) per row, with a value forward only where it is not already in ``values``.

    Inside a trajectory segment a row's next observation is the following row's
    observation, whose value ``values`` holds; only the last row of a segment (found by
    comparing the two columns, so no segment layout is assumed) needs a forward of its
    own, and a terminal row needs none (its next value is never used: 0 here).
    """
    next_values = torch.zeros_like(values)
    if len(values) == 0:
        return next_values
    next_values[:-1] = values[1:]
    follows = torch.zeros(len(values), dtype=torch.bool, device=values.device)
    follows[:-1] = (next_obs[:-1] == obs[1:]).reshape(len(values) - 1, -1).all(dim=1)
    terminal = terminateds.bool()
    next_values[terminal] = 0.0
    own = (~follows & ~terminal).nonzero().squeeze(-1)
    if len(own):
        next_values[own] = module.compute_values(next_obs[own])
    return next_values
