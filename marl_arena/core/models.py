"""Default network shapes, configured with RLlib's ``DefaultModelConfig`` field names."""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import torch
from torch import nn

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU, "swish": nn.SiLU, "elu": nn.ELU, "linear": nn.Identity}


@dataclasses.dataclass(kw_only=True)
class DefaultModelConfig:
    """Shape of the default MLP models."""

    fcnet_hiddens: Sequence[int] = (256, 256)
    """Hidden layer sizes of the encoder MLP."""
    fcnet_activation: str = "tanh"
    """Activation between hidden layers: tanh, relu, silu (swish), elu or linear."""
    vf_share_layers: bool = False
    """Whether the value head sits on the policy's encoder (True) or has its own trunk."""
    head_fcnet_hiddens: Sequence[int] = ()
    """Extra hidden layers inside each head, after the encoder."""
    free_log_std: bool = False
    """Continuous actions: a learned state-independent log std instead of an output."""

    def __post_init__(self):
        if self.fcnet_activation not in _ACTIVATIONS:
            raise ValueError(
                f"DefaultModelConfig.fcnet_activation={self.fcnet_activation!r} is not one of "
                f"{sorted(_ACTIVATIONS)}."
            )
        if any(int(h) <= 0 for h in list(self.fcnet_hiddens) + list(self.head_fcnet_hiddens)):
            raise ValueError(
                f"DefaultModelConfig layer sizes must be positive, got fcnet_hiddens="
                f"{list(self.fcnet_hiddens)}, head_fcnet_hiddens={list(self.head_fcnet_hiddens)}."
            )

    @classmethod
    def from_any(cls, value: "DefaultModelConfig | dict | None") -> "DefaultModelConfig":
        """Accept a DefaultModelConfig (of this class or a base), an RLlib-style dict of its fields, or None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, DefaultModelConfig):  # a base config given to a module with extra settings
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        if isinstance(value, dict):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise ValueError(f"Unknown model_config keys {unknown}; allowed are {sorted(known)}.")
            return cls(**value)
        raise ValueError(f"model_config must be a DefaultModelConfig or a dict, got {type(value).__name__}.")


def mlp(in_dim: int, hiddens: Sequence[int], activation: str, out_dim: int | None = None,
        linear: Callable[[int, int], nn.Module] = nn.Linear) -> nn.Sequential:
    """``linear`` layers with ``activation`` between them; a linear output layer if ``out_dim``."""
    layers: list[nn.Module] = []
    width = in_dim
    for size in hiddens:
        layers += [linear(width, int(size)), _ACTIVATIONS[activation]()]
        width = int(size)
    if out_dim is not None:
        layers.append(linear(width, out_dim))
    return nn.Sequential(*layers)


def output_width(in_dim: int, hiddens: Sequence[int]) -> int:
    """Width of the last hidden layer of an MLP (``in_dim`` when it has none)."""
    return int(hiddens[-1]) if len(hiddens) else in_dim


def init_output_layer(layer: nn.Linear, gain: float) -> None:
    """Orthogonal init with a small gain, which keeps early policies near uniform."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)


def flat_dim(space) -> int:
    """Number of scalars in a flat Box observation."""
    return int(torch.Size(space.shape).numel())
