"""Action distributions built from a module's ``action_dist_inputs``.

A module outputs one flat tensor of distribution inputs per row; the distribution class
for an action space says how wide that tensor is and how to sample, score and compare.
Masking of illegal actions happens in the module (logits set to the dtype's minimum), so
every consumer of a Categorical sees legal actions only.
"""

from __future__ import annotations

import abc
import math

import gymnasium as gym
import numpy as np
import torch
from torch.distributions import Normal

_LOG_STD_MIN = -20.0
_LOG_STD_MAX = 2.0


class ActionDistribution(abc.ABC):
    """A batch of action distributions parameterised by ``action_dist_inputs``."""

    @staticmethod
    @abc.abstractmethod
    def required_input_dim(space: gym.Space) -> int:
        """Width of the ``action_dist_inputs`` tensor for ``space``."""

    @abc.abstractmethod
    def sample(self) -> torch.Tensor:
        """A random action per row."""

    @abc.abstractmethod
    def deterministic_sample(self) -> torch.Tensor:
        """The most likely action per row (used when ``explore=False``)."""

    @abc.abstractmethod
    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        """Log-probability of ``actions``, one value per row."""

    @abc.abstractmethod
    def entropy(self) -> torch.Tensor:
        """Entropy per row."""

    @abc.abstractmethod
    def kl(self, other: "ActionDistribution") -> torch.Tensor:
        """KL(self || other) per row."""


class Categorical(ActionDistribution):
    """Categorical over ``Discrete(n)``; inputs are logits (masked logits included)."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)

    @staticmethod
    def required_input_dim(space: gym.Space) -> int:
        return int(space.n)

    def sample(self) -> torch.Tensor:
        return torch.multinomial(self.logits.exp(), 1).squeeze(-1)

    def deterministic_sample(self) -> torch.Tensor:
        return self.logits.argmax(dim=-1)

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        return self.logits.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        probs = self.logits.exp()
        # Masked actions have probability 0; 0 * (-huge) must count as 0, not NaN.
        return -(probs * self.logits).nan_to_num(0.0).sum(-1)

    def kl(self, other: "Categorical") -> torch.Tensor:
        probs = self.logits.exp()
        return (probs * (self.logits - other.logits)).nan_to_num(0.0).sum(-1)


class DiagGaussian(ActionDistribution):
    """Independent Gaussians over a ``Box``; inputs are ``[mean, log_std]``.

    Samples are unbounded; the EnvRunner clips them to the space before they reach the env
    and keeps the unclipped value in the batch so log-probabilities stay exact.
    """

    def __init__(self, inputs: torch.Tensor):
        mean, log_std = inputs.chunk(2, dim=-1)
        self.mean = mean
        self.log_std = log_std.clamp(_LOG_STD_MIN, _LOG_STD_MAX)
        self._normal = Normal(mean, self.log_std.exp())

    @staticmethod
    def required_input_dim(space: gym.Space) -> int:
        return 2 * int(np.prod(space.shape))

    def sample(self) -> torch.Tensor:
        return self._normal.sample()

    def deterministic_sample(self) -> torch.Tensor:
        return self.mean

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        return self._normal.log_prob(actions).sum(-1)

    def entropy(self) -> torch.Tensor:
        return self._normal.entropy().sum(-1)

    def kl(self, other: "DiagGaussian") -> torch.Tensor:
        return torch.distributions.kl_divergence(self._normal, other._normal).sum(-1)


class SquashedGaussian(ActionDistribution):
    """Gaussian squashed by tanh into a bounded ``Box`` (SAC's policy).

    ``logp`` expects actions in the env's bounds and inverts the squashing, with the
    change-of-variables correction; entropy and KL have no closed form and are estimated
    from one reparameterised sample.
    """

    def __init__(self, inputs: torch.Tensor, low: torch.Tensor, high: torch.Tensor):
        mean, log_std = inputs.chunk(2, dim=-1)
        self.mean = mean
        self.log_std = log_std.clamp(_LOG_STD_MIN, _LOG_STD_MAX)
        self._normal = Normal(mean, self.log_std.exp())
        self._low = low
        self._high = high

    @staticmethod
    def required_input_dim(space: gym.Space) -> int:
        return 2 * int(np.prod(space.shape))

    def _squash(self, u: torch.Tensor) -> torch.Tensor:
        return self._low + (torch.tanh(u) + 1.0) * 0.5 * (self._high - self._low)

    def _unsquash(self, actions: torch.Tensor) -> torch.Tensor:
        unit = 2.0 * (actions - self._low) / (self._high - self._low) - 1.0
        return torch.atanh(unit.clamp(-1.0 + 1e-6, 1.0 - 1e-6))

    def _logp_pre_squash(self, u: torch.Tensor) -> torch.Tensor:
        log_det = 2.0 * (math.log(2.0) - u - torch.nn.functional.softplus(-2.0 * u))
        scale = torch.log(0.5 * (self._high - self._low))
        return (self._normal.log_prob(u) - log_det - scale).sum(-1)

    def rsample_with_logp(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised sample and its log-probability (SAC's actor loss needs both)."""
        u = self._normal.rsample()
        return self._squash(u), self._logp_pre_squash(u)

    def sample(self) -> torch.Tensor:
        return self._squash(self._normal.sample())

    def deterministic_sample(self) -> torch.Tensor:
        return self._squash(self.mean)

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        return self._logp_pre_squash(self._unsquash(actions))

    def entropy(self) -> torch.Tensor:
        return -self.rsample_with_logp()[1]

    def kl(self, other: "SquashedGaussian") -> torch.Tensor:
        u = self._normal.rsample()
        return self._logp_pre_squash(u) - other._logp_pre_squash(u)


def distribution_for_space(space: gym.Space, squashed: bool = False):
    """A factory ``inputs -> ActionDistribution`` for ``space``, and the input width.

    ``squashed=True`` picks the tanh-squashed Gaussian for bounded Boxes (SAC).
    """
    if isinstance(space, gym.spaces.Discrete):
        return Categorical, Categorical.required_input_dim(space)
    if isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.floating):
        if squashed:
            if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
                raise ValueError(f"A squashed Gaussian needs a bounded Box, got {space}.")
            low = torch.as_tensor(space.low.reshape(-1), dtype=torch.float32)
            high = torch.as_tensor(space.high.reshape(-1), dtype=torch.float32)
            return (
                lambda inputs: SquashedGaussian(inputs, low.to(inputs.device), high.to(inputs.device)),
                SquashedGaussian.required_input_dim(space),
            )
        return DiagGaussian, DiagGaussian.required_input_dim(space)
    raise ValueError(
        f"No action distribution for action space {space}: supported are Discrete and "
        "float Box spaces."
    )
