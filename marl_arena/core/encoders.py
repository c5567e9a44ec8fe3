"""Encoders: observation in, one feature vector per row out; the default modules' heads sit on them.

``build_encoder`` picks the network from the observation space and ``DefaultModelConfig``:
a CNN (``conv_filters``) followed by the ``fcnet_hiddens`` MLP for image-like observations
(a rank-3 Box), else an MLP over the flattened observation. Every encoder accepts rows in the
observation's own shape or flattened, because flat rows still arrive from places that store
vectors (offline Parquet files, external clients, the ONNX graph's ``obs`` input), and the
same module must read both.
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from torch import nn

from marl_arena.core.models import DefaultModelConfig, activation, conv_layer_spec, flat_dim, mlp, output_width


class MLPEncoder(nn.Sequential):
    """``mlp`` over the flattened observation.

    A ``Sequential`` itself (not wrapping one), so its parameters keep the names that
    checkpoints written before the CNN encoder existed use.
    """

    def __init__(self, in_dim: int, hiddens, activation_name: str):
        super().__init__(*mlp(in_dim, hiddens, activation_name))
        self.output_dim = output_width(in_dim, hiddens)
        """Width of the feature vector."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return super().forward(obs.flatten(1))


class CNNEncoder(nn.Module):
    """Conv layers over an image-like observation, then the ``fcnet_hiddens`` MLP over their flattened output."""

    def __init__(self, observation_space: gym.spaces.Box, cfg: DefaultModelConfig):
        super().__init__()
        self.obs_shape = tuple(int(d) for d in observation_space.shape)
        self.channels_last = cfg.conv_data_format == "channels_last"
        if self.channels_last:
            height, width, channels = self.obs_shape
        else:
            channels, height, width = self.obs_shape
        layers: list[nn.Module] = []
        for index, layer in enumerate(cfg.conv_filters):
            out_channels, kernel, stride, padding = conv_layer_spec(index, layer)
            size = (height, width)
            conv_padding = (0, 0)
            if padding == "same":
                out_size = tuple(math.ceil(n / s) for n, s in zip(size, stride))
                # TF/RLlib-style "same" for any stride: pad so that out = ceil(in / stride),
                # the odd pixel going to the bottom/right; the conv pads itself when it is even.
                pads = [max((o - 1) * s + k - n, 0) for o, s, k, n in zip(out_size, stride, kernel, size)]
                if pads[0] % 2 == 0 and pads[1] % 2 == 0:
                    conv_padding = (pads[0] // 2, pads[1] // 2)
                else:
                    top, left = pads[0] // 2, pads[1] // 2
                    layers.append(nn.ZeroPad2d((left, pads[1] - left, top, pads[0] - top)))
            else:
                if kernel[0] > height or kernel[1] > width:
                    raise ValueError(
                        f"DefaultModelConfig.conv_filters[{index}]={list(layer)!r}: its {kernel[0]}x{kernel[1]} kernel "
                        f"is larger than its {height}x{width} input (observation shape {self.obs_shape}, "
                        f"{cfg.conv_data_format}) with 'valid' padding; use a smaller kernel, fewer layers "
                        "before it, or 'same' padding."
                    )
                out_size = tuple((n - k) // s + 1 for n, k, s in zip(size, kernel, stride))
            layers += [nn.Conv2d(channels, out_channels, kernel, stride, conv_padding), activation(cfg.conv_activation)]
            channels, (height, width) = out_channels, out_size
        self.conv = nn.Sequential(*layers)
        conv_dim = channels * height * width
        self.head = mlp(conv_dim, cfg.fcnet_hiddens, cfg.fcnet_activation)
        self.output_dim = output_width(conv_dim, cfg.fcnet_hiddens)
        """Width of the feature vector."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        images = obs.reshape(-1, *self.obs_shape)  # flat rows too (see the module docstring)
        if self.channels_last:
            images = images.permute(0, 3, 1, 2)
        return self.head(self.conv(images).flatten(1))


def is_image_space(space: gym.Space) -> bool:
    """Whether ``conv_filters`` applies: a Box of rank 3 (HxWxC or CxHxW)."""
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 3


def build_encoder(observation_space: gym.Space, model_config: DefaultModelConfig) -> MLPEncoder | CNNEncoder:
    """The encoder ``model_config`` asks for on ``observation_space``; its ``output_dim`` is the feature width.

    ``conv_filters`` applies to rank-3 Box observations only and is ignored for others, as
    RLlib does, so one model config can serve the modules of a league whose agents see
    differently shaped observations.
    """
    if model_config.conv_filters is not None and is_image_space(observation_space):
        return CNNEncoder(observation_space, model_config)
    return MLPEncoder(flat_dim(observation_space), model_config.fcnet_hiddens, model_config.fcnet_activation)
