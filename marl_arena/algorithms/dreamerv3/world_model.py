"""DreamerV3's world model: encoder, RSSM, decoder, reward and continue heads.

The RSSM carries a deterministic GRU state ``h`` and a stochastic state ``z`` of
``num_latents`` categoricals with ``num_classes`` classes each, sampled with straight-through
gradients from probabilities with 1% uniform mixed in. One step:

    h_t = GRU(h_{t-1}, [z_{t-1}, a_{t-1}])       prior  p(z_t | h_t)
    z_t ~ posterior q(z_t | h_t, embed(x_t))     (observing)  or  z_t ~ prior  (imagining)

``is_first`` resets ``h``, ``z`` and the previous action to zero, so sequences that start
a new episode begin from the same state the acting runner starts from.

Vector observations go through symlog and MLPs; image observations (rank 3) through a CNN
and a transposed-CNN decoder on pixels scaled to [-0.5, 0.5].
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from marl_arena.algorithms.dreamerv3.dreamer_math import symlog, symlog_bins, unimix


@dataclasses.dataclass(frozen=True)
class ModelSize:
    """Widths of one named DreamerV3 model size."""

    deter: int
    """Units of the GRU (the deterministic state h)."""
    units: int
    """Hidden units of every MLP layer."""
    layers: int
    """Hidden layers of the encoder, decoder, heads, actor and critic MLPs."""
    cnn_depth: int
    """Channels of the first conv layer (doubled at every further layer)."""
    num_latents: int = 32
    num_classes: int = 32


MODEL_SIZES: dict[str, ModelSize] = {
    # For tests and toy tasks only: the named sizes below keep the paper's 32 x 32 latents.
    "nano": ModelSize(deter=64, units=64, layers=1, cnn_depth=8, num_latents=8, num_classes=8),
    "XS": ModelSize(deter=256, units=256, layers=1, cnn_depth=16),
    "S": ModelSize(deter=512, units=512, layers=2, cnn_depth=32),
    "M": ModelSize(deter=1024, units=640, layers=3, cnn_depth=48),
    "L": ModelSize(deter=2048, units=768, layers=4, cnn_depth=64),
    "XL": ModelSize(deter=4096, units=1024, layers=5, cnn_depth=96),
}

UNIMIX = 0.01
NUM_BINS = 255


def dense_stack(in_dim: int, units: int, layers: int) -> nn.Sequential:
    """``layers`` x (Linear without bias, LayerNorm, SiLU): Dreamer's normalised MLP trunk."""
    modules: list[nn.Module] = []
    width = in_dim
    for _ in range(layers):
        modules += [nn.Linear(width, units, bias=False), nn.LayerNorm(units), nn.SiLU()]
        width = units
    return nn.Sequential(*modules)


def head(in_dim: int, size: ModelSize, out_dim: int, zero_init: bool = False) -> nn.Sequential:
    """A trunk of ``size.layers`` and a linear output; ``zero_init`` starts predicting the bins' middle
    (0 for reward and value heads), which keeps early imagined returns from exploding."""
    out = nn.Linear(size.units if size.layers else in_dim, out_dim)
    if zero_init:
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
    return nn.Sequential(dense_stack(in_dim, size.units, size.layers), out)


def is_image_space(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 3


def sample_classes(probs: torch.Tensor) -> torch.Tensor:
    """One class per row of ``probs`` (..., classes), by inverse CDF: one uniform draw per row, which
    is several times cheaper than ``torch.multinomial`` on many small rows."""
    cumulative = probs.cumsum(-1)
    draws = torch.rand(probs.shape[:-1] + (1,), device=probs.device, dtype=probs.dtype) * cumulative[..., -1:]
    return (cumulative <= draws).sum(-1).clamp(max=probs.shape[-1] - 1)


class ImageEncoder(nn.Module):
    """Stride-2 convs (kernel 4), channels doubling from ``cnn_depth``, until the map is at most 6x6."""

    def __init__(self, shape: tuple[int, int, int], depth: int, channels_last: bool):
        super().__init__()
        self.channels_last = channels_last
        height, width, channels = shape if channels_last else (shape[1], shape[2], shape[0])
        layers: list[nn.Module] = []
        c = channels
        out = depth
        while height > 6 or width > 6:
            layers += [nn.Conv2d(c, out, 4, 2, 1), nn.GroupNorm(1, out), nn.SiLU()]
            c, out = out, out * 2
            height, width = (height + 1) // 2, (width + 1) // 2
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.map_shape = (c, height, width)
        self.out_dim = c * height * width

    def to_chw(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.permute(0, 3, 1, 2) if self.channels_last else obs

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(self.to_chw(obs))


class ImageDecoder(nn.Module):
    """The encoder's mirror: a linear map to its last feature map, then stride-2 transposed convs,
    resized to the image at the end (for sizes that are not powers of two)."""

    def __init__(self, in_dim: int, encoder: ImageEncoder, shape: tuple[int, int, int]):
        super().__init__()
        self.encoder_shape = encoder.map_shape
        self.channels_last = encoder.channels_last
        height, width, channels = shape if self.channels_last else (shape[1], shape[2], shape[0])
        self.image_hw = (height, width)
        self.linear = nn.Linear(in_dim, int(np.prod(encoder.map_shape)))
        c = encoder.map_shape[0]
        layers: list[nn.Module] = []
        num = sum(1 for m in encoder.net if isinstance(m, nn.Conv2d))
        for k in range(num):
            last = k == num - 1
            out = channels if last else c // 2
            layers.append(nn.ConvTranspose2d(c, out, 4, 2, 1))
            if not last:
                layers += [nn.GroupNorm(1, out), nn.SiLU()]
            c = out
        if num == 0:
            layers.append(nn.Conv2d(c, channels, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.linear(features).reshape(-1, *self.encoder_shape)
        x = self.net(x)
        if tuple(x.shape[-2:]) != self.image_hw:
            x = F.interpolate(x, size=self.image_hw, mode="bilinear", align_corners=False)
        return x.permute(0, 2, 3, 1) if self.channels_last else x


class WorldModel(nn.Module):
    """Encoder, RSSM, decoder and heads of one module; acting and learning both step it."""

    def __init__(self, observation_space: gym.Space, action_dim: int, size: ModelSize, mask_dim: int,
                 channels_last: bool = True):
        super().__init__()
        self.size = size
        self.action_dim = action_dim
        self.stoch_dim = size.num_latents * size.num_classes
        self.feature_dim = size.deter + self.stoch_dim
        self.image = is_image_space(observation_space)
        if self.image:
            shape = tuple(observation_space.shape)
            self.pixel_obs = np.issubdtype(observation_space.dtype, np.integer)
            self.encoder = ImageEncoder(shape, size.cnn_depth, channels_last)
            embed_dim = self.encoder.out_dim
            self.decoder: nn.Module = ImageDecoder(self.feature_dim, self.encoder, shape)
        else:
            obs_dim = int(np.prod(observation_space.shape))
            self.encoder = dense_stack(obs_dim, size.units, max(1, size.layers))
            embed_dim = size.units
            self.decoder = head(self.feature_dim, size, obs_dim)
        self.img_in = dense_stack(self.stoch_dim + action_dim, size.units, 1)
        self.gru = nn.GRUCell(size.units, size.deter)
        self.prior = head(size.deter, size, self.stoch_dim)
        # The posterior reads [h, embed]; its first layer is split so the embed half runs once per
        # sequence, outside the time loop.
        self.post_h = nn.Linear(size.deter, size.units, bias=False)
        self.post_e = nn.Linear(embed_dim, size.units, bias=False)
        self.post_out = nn.Sequential(nn.LayerNorm(size.units), nn.SiLU(), nn.Linear(size.units, self.stoch_dim))
        self.reward_head = head(self.feature_dim, size, NUM_BINS, zero_init=True)
        self.continue_head = head(self.feature_dim, size, 1)
        self.mask_dim = mask_dim
        self.mask_head = head(self.feature_dim, size, mask_dim) if mask_dim else None
        self.register_buffer("bins", symlog_bins(NUM_BINS), persistent=False)
        self.register_buffer("class_offsets", torch.arange(size.num_latents) * size.num_classes, persistent=False)

    # ------------------------------------------------------------------ pieces
    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        """Pixels of an integer image space to [-0.5, 0.5]; vectors through symlog."""
        if self.image:
            obs = obs.float()
            return obs / 255.0 - 0.5 if self.pixel_obs else obs
        return symlog(obs.reshape(obs.shape[0], -1).float())

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.preprocess(obs))

    def logits(self, flat_logits: torch.Tensor) -> torch.Tensor:
        """(..., stoch_dim) -> (..., latents, classes), with the 1% uniform mix."""
        return unimix(flat_logits.reshape(*flat_logits.shape[:-1], self.size.num_latents, self.size.num_classes), UNIMIX)

    def sample_z(self, logits: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """One-hot latents (flattened) with straight-through gradients of the probabilities."""
        probs = logits.softmax(-1)
        index = sample_classes(probs) if sample else probs.argmax(-1)
        one_hot = F.one_hot(index, probs.shape[-1]).to(probs.dtype)
        return (one_hot + probs - probs.detach()).reshape(*probs.shape[:-2], -1)

    def sample_z_index(self, logits: torch.Tensor) -> torch.Tensor:
        """Latent classes (rows, latents) drawn from ``logits``: imagination keeps z as indices."""
        return sample_classes(logits.softmax(-1))

    def z_columns(self, index: torch.Tensor) -> torch.Tensor:
        """Column of each latent's class in the flat one-hot z: latent l, class c -> l * classes + c."""
        return index + self.class_offsets

    def initial(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.zeros(batch, self.size.deter, device=device), torch.zeros(batch, self.stoch_dim, device=device))

    def img_step(self, h: torch.Tensor, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The next deterministic state from the last (h, z) and the action taken there."""
        return self.gru(self.img_in(torch.cat([z, action], -1)), h)

    def posterior_logits(self, h: torch.Tensor, embed_part: torch.Tensor) -> torch.Tensor:
        """``embed_part`` is ``post_e(embed)``, computed outside any time loop."""
        return self.logits(self.post_out(self.post_h(h) + embed_part))

    def prior_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.logits(self.prior(h))

    # ------------------------------------------------------------------ acting
    def observe_step(self, h: torch.Tensor, z: torch.Tensor, prev_action: torch.Tensor, is_first: torch.Tensor,
                     obs: torch.Tensor, sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """One acting step: reset where ``is_first``, advance the GRU, and infer z from the observation."""
        keep = (~is_first).float().unsqueeze(-1)
        h = self.img_step(h * keep, z * keep, prev_action * keep)
        z = self.sample_z(self.posterior_logits(h, self.post_e(self.embed(obs))), sample)
        return h, z

    # ------------------------------------------------------------------ learning
    def observe(self, obs: torch.Tensor, prev_actions: torch.Tensor, is_first: torch.Tensor) -> dict[str, torch.Tensor]:
        """Posterior states along (B, T) sequences: h, z, and the posterior and prior logits."""
        batch, length = is_first.shape
        embed = self.embed(obs.reshape(batch * length, *obs.shape[2:]))
        embed_part = self.post_e(embed).reshape(batch, length, -1)
        keep = (~is_first).float().unsqueeze(-1)
        h, z = self.initial(batch, obs.device)
        hs, zs, post = [], [], []
        for t in range(length):
            h = self.img_step(h * keep[:, t], z * keep[:, t], prev_actions[:, t] * keep[:, t])
            logits = self.posterior_logits(h, embed_part[:, t])
            z = self.sample_z(logits)
            hs.append(h)
            zs.append(z)
            post.append(logits)
        h_all = torch.stack(hs, 1)
        return {"h": h_all, "z": torch.stack(zs, 1), "post_logits": torch.stack(post, 1),
                "prior_logits": self.prior_logits(h_all)}

    # ------------------------------------------------------------------ imagination on z as indices
    def img_step_index(self, h: torch.Tensor, z_index: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``img_step`` with z given as class indices: the one-hot half of the input layer is a sum
        of weight columns (an embedding bag), 32 lookups instead of a 1024-wide product."""
        first, rest = self.img_in[0], self.img_in[1:]
        weight = first.weight
        x = F.embedding_bag(self.z_columns(z_index), weight[:, :self.stoch_dim].t().contiguous(), mode="sum") \
            + F.linear(action, weight[:, self.stoch_dim:])
        return self.gru(rest(x), h)

    def head_on_index(self, net: nn.Sequential, h: torch.Tensor, z_index: torch.Tensor) -> torch.Tensor:
        """``net([h, one_hot(z)])`` for a ``head`` (a dense stack, then its output layer), z as indices."""
        trunk, out = net[0], net[1]
        first = trunk[0]
        x = F.linear(h, first.weight[:, :self.size.deter]) \
            + F.embedding_bag(self.z_columns(z_index), first.weight[:, self.size.deter:].t().contiguous(), mode="sum")
        return out(trunk[1:](x))

    def features(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([h, z], -1)

    def legal_actions(self, mask_logits: torch.Tensor | None) -> torch.Tensor | None:
        """Predicted action mask from the mask head's logits (at least one legal action per row);
        None for a world model without masks."""
        if mask_logits is None:
            return None
        legal = mask_logits > 0.0
        return legal | ~legal.any(-1, keepdim=True)
