"""Default network shapes, configured with RLlib's ``DefaultModelConfig`` field names.

``conv_filters`` entries are ``[out_channels, kernel, stride]`` or ``[out_channels, kernel,
stride, padding]`` as in RLlib: kernel and stride an int or an ``[h, w]`` pair, padding
``"same"`` (the default: the output is ``ceil(input / stride)``) or ``"valid"``.
``encoders.build_encoder`` turns a config and an observation space into the encoder.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import torch
from torch import nn

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU, "swish": nn.SiLU, "elu": nn.ELU, "linear": nn.Identity}
CONV_DATA_FORMATS = ("channels_last", "channels_first")
CONV_PADDINGS = ("same", "valid")


@dataclasses.dataclass(kw_only=True)
class DefaultModelConfig:
    """Shape of the default models: an encoder (MLP, or CNN then MLP) and MLP heads."""

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
    conv_filters: Sequence[Sequence] | None = None
    """CNN layers ``[[out_channels, kernel, stride(, padding)], ...]`` for image-like (rank-3 Box)
    observations, followed by the ``fcnet_hiddens`` MLP; None: an MLP over the flattened
    observation. Ignored, as in RLlib, for observations that are not rank 3."""
    conv_activation: str = "relu"
    """Activation after each conv layer: tanh, relu, silu (swish), elu or linear."""
    conv_data_format: str = "channels_last"
    """Axis order of rank-3 observations: ``channels_last`` (HxWxC, gymnasium's and PettingZoo's
    images, the OpenSpiel plugin's planes) or ``channels_first`` (CxHxW)."""
    use_lstm: bool = False
    """An LSTM after the encoder (``core.recurrent``): the module keeps a state per agent and
    episode, and the learners that support it (PPO, APPO, IMPALA) train on sequences of
    ``max_seq_len`` steps; other algorithms refuse it."""
    lstm_cell_size: int = 256
    """Width of the LSTM's hidden and cell state."""
    max_seq_len: int = 20
    """Steps per training sequence: the learner cuts each agent's trajectory into chunks of at
    most this many steps, each starting from the state the runner recorded at its first step."""

    def __post_init__(self):
        for name in ("fcnet_activation", "conv_activation"):
            if getattr(self, name) not in _ACTIVATIONS:
                raise ValueError(
                    f"DefaultModelConfig.{name}={getattr(self, name)!r} is not one of {sorted(_ACTIVATIONS)}."
                )
        if self.conv_data_format not in CONV_DATA_FORMATS:
            raise ValueError(f"DefaultModelConfig.conv_data_format={self.conv_data_format!r} is not one of "
                             f"{list(CONV_DATA_FORMATS)} (HxWxC or CxHxW).")
        if self.conv_filters is not None:
            if not isinstance(self.conv_filters, (list, tuple)):
                raise ValueError(f"DefaultModelConfig.conv_filters={self.conv_filters!r} must be a list of "
                                 "[out_channels, kernel, stride] layers, or None for an MLP.")
            for i, layer in enumerate(self.conv_filters):
                conv_layer_spec(i, layer)
            if not len(self.conv_filters):
                raise ValueError("DefaultModelConfig.conv_filters=[] has no layer; give at least one "
                                 "[out_channels, kernel, stride] or None for an MLP.")
        if not isinstance(self.use_lstm, bool):
            raise ValueError(f"DefaultModelConfig.use_lstm={self.use_lstm!r} must be True or False.")
        for name in ("lstm_cell_size", "max_seq_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DefaultModelConfig.{name}={value!r} must be a positive int.")
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


def _pair(value, what: str, index: int, layer) -> tuple[int, int]:
    pair = list(value) if isinstance(value, (list, tuple)) else [value, value]
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair):
        raise ValueError(f"DefaultModelConfig.conv_filters[{index}]={layer!r}: the {what} must be a positive int "
                         f"or an [h, w] pair of them, got {value!r}.")
    return int(pair[0]), int(pair[1])


def conv_layer_spec(index: int, layer) -> tuple[int, tuple[int, int], tuple[int, int], str]:
    """``(out_channels, (kh, kw), (sh, sw), padding)`` of ``conv_filters[index]``, or a ValueError naming it."""
    if not isinstance(layer, (list, tuple)) or len(layer) not in (3, 4):
        raise ValueError(f"DefaultModelConfig.conv_filters[{index}]={layer!r} must be [out_channels, kernel, stride] "
                         "or [out_channels, kernel, stride, padding].")
    out = layer[0]
    if not isinstance(out, int) or isinstance(out, bool) or out <= 0:
        raise ValueError(f"DefaultModelConfig.conv_filters[{index}]={layer!r}: out_channels must be a positive int.")
    padding = layer[3] if len(layer) == 4 else "same"
    if padding not in CONV_PADDINGS:
        raise ValueError(f"DefaultModelConfig.conv_filters[{index}]={layer!r}: padding {padding!r} is not one of "
                         f"{list(CONV_PADDINGS)}.")
    return out, _pair(layer[1], "kernel", index, layer), _pair(layer[2], "stride", index, layer), padding


def activation(name: str) -> nn.Module:
    """A new activation layer by its config name."""
    return _ACTIVATIONS[name]()


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
    """Number of scalars in a Box observation (its width once flattened)."""
    return int(torch.Size(space.shape).numel())
