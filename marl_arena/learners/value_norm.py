"""Running normalisation of value targets (on-policy's ``use_valuenorm``, Yu et al. 2022).

A value function whose returns drift in scale over training (MPE's episode returns start near
-80 and shrink as agents learn) chases a moving target with a fixed output scale. Here the
value head learns the targets standardised by a running mean and standard deviation of the
returns seen so far, and its outputs are mapped back to returns wherever returns are needed
(GAE, bootstrapping, explained variance). The normaliser belongs to the learner, next to the
module it serves, so it works for any module whose value head is read through
``compute_values`` (the default module and the centralized critic alike) and acting never
needs it.

The moments are exponential moving averages of each batch's mean and mean square with a
debiasing term, as in on-policy's ``ValueNorm``: with the default decay close to 1 they are
close to the plain average over every batch so far, and the first batch is not shrunk towards
the zero the averages start from. The variance has a floor (``VARIANCE_FLOOR``) so that
near-constant returns do not blow up the normalised targets.
"""

from __future__ import annotations

from typing import Any

import torch

VARIANCE_FLOOR = 1e-2
"""Smallest variance used to normalise (a standard deviation of at least 0.1)."""
DEBIAS_EPSILON = 1e-5
"""Floor of the debiasing term, so that the moments are defined before the first update."""


class ValueNormalizer:
    """Running mean and variance of value targets; ``normalize`` and ``denormalize`` map between
    returns and the value head's output scale."""

    def __init__(self, decay: float = 0.99999, device: torch.device | str = "cpu"):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ValueNormalizer decay={decay!r} must be in [0, 1).")
        self.decay = float(decay)
        self.device = torch.device(device)
        # float64: with a decay this close to 1 the per-update increments are tiny.
        self._mean = torch.zeros((), dtype=torch.float64, device=self.device)
        self._mean_sq = torch.zeros((), dtype=torch.float64, device=self.device)
        self._debias = torch.zeros((), dtype=torch.float64, device=self.device)

    @torch.no_grad()
    def update(self, batch_mean: torch.Tensor | float, batch_mean_sq: torch.Tensor | float) -> None:
        """Fold one batch's mean and mean square into the running moments.

        Taking moments rather than values lets data-parallel learners sum them over their
        shards first, so every learner holds the same normaliser."""
        keep = self.decay
        self._mean.mul_(keep).add_((1.0 - keep) * torch.as_tensor(batch_mean, dtype=torch.float64, device=self.device))
        self._mean_sq.mul_(keep).add_(
            (1.0 - keep) * torch.as_tensor(batch_mean_sq, dtype=torch.float64, device=self.device))
        self._debias.mul_(keep).add_(1.0 - keep)

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The debiased running mean and standard deviation (float64 scalars)."""
        debias = self._debias.clamp(min=DEBIAS_EPSILON)
        mean = self._mean / debias
        variance = (self._mean_sq / debias - mean ** 2).clamp(min=VARIANCE_FLOOR)
        return mean, variance.sqrt()

    def normalize(self, values: torch.Tensor) -> torch.Tensor:
        """Returns on the value head's scale: ``(values - mean) / std``."""
        mean, std = self.mean_std()
        return ((values - mean.to(values.device)) / std.to(values.device)).to(values.dtype)

    def denormalize(self, values: torch.Tensor) -> torch.Tensor:
        """The value head's outputs as returns: ``values * std + mean``."""
        mean, std = self.mean_std()
        return (values * std.to(values.device) + mean.to(values.device)).to(values.dtype)

    def get_state(self) -> dict[str, Any]:
        return {"mean": float(self._mean), "mean_sq": float(self._mean_sq), "debias": float(self._debias)}

    def set_state(self, state: dict[str, Any]) -> None:
        self._mean.fill_(state["mean"])
        self._mean_sq.fill_(state["mean_sq"])
        self._debias.fill_(state["debias"])
