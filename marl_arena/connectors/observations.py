"""Env-to-module observation transforms.

A connector maps a list of raw observations of one agent space to a float32 batch the
module reads, and says what space that batch has. The EnvRunner splits PettingZoo-style
``{"observation", "action_mask"}`` dicts before a connector sees them, so connectors only
ever transform the observation proper.
"""

from __future__ import annotations

import abc
from typing import Sequence

import gymnasium as gym
import numpy as np


class ObservationConnector(abc.ABC):
    """Transforms batches of observations of one space."""

    @abc.abstractmethod
    def transform_space(self, space: gym.Space) -> gym.Space:
        """The space of the transformed observations."""

    @abc.abstractmethod
    def transform_batch(self, space: gym.Space, observations: Sequence) -> np.ndarray:
        """``observations`` (raw, from ``space``) as one float32 array, a row each."""


def _flat_size(space: gym.Space) -> int:
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    if isinstance(space, (gym.spaces.Box, gym.spaces.MultiBinary)):
        return int(np.prod(space.shape))
    if isinstance(space, gym.spaces.Dict):
        return sum(_flat_size(s) for s in space.spaces.values())
    if isinstance(space, gym.spaces.Tuple):
        return sum(_flat_size(s) for s in space.spaces)
    raise ValueError(f"FlattenObservations cannot flatten a {type(space).__name__} space ({space}).")


def _flatten(space: gym.Space, observations: Sequence) -> np.ndarray:
    n = len(observations)
    if isinstance(space, gym.spaces.Discrete):
        out = np.zeros((n, space.n), dtype=np.float32)
        out[np.arange(n), np.asarray(observations, dtype=np.int64) - int(space.start)] = 1.0
        return out
    if isinstance(space, gym.spaces.MultiDiscrete):
        values = np.asarray(observations, dtype=np.int64).reshape(n, -1) - space.start.reshape(-1)
        nvec = space.nvec.reshape(-1)
        offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
        out = np.zeros((n, int(nvec.sum())), dtype=np.float32)
        out[np.arange(n)[:, None], offsets + values] = 1.0
        return out
    if isinstance(space, (gym.spaces.Box, gym.spaces.MultiBinary)):
        return np.asarray(observations, dtype=np.float32).reshape(n, -1)
    if isinstance(space, gym.spaces.Dict):
        return np.concatenate([_flatten(sub, [o[key] for o in observations]) for key, sub in space.spaces.items()], axis=1)
    if isinstance(space, gym.spaces.Tuple):
        return np.concatenate([_flatten(sub, [o[i] for o in observations]) for i, sub in enumerate(space.spaces)], axis=1)
    raise ValueError(f"FlattenObservations cannot flatten a {type(space).__name__} space ({space}).")


class FlattenObservations(ObservationConnector):
    """One-hot Discrete and MultiDiscrete parts, flatten Box, Dict and Tuple into one vector."""

    def transform_space(self, space: gym.Space) -> gym.Space:
        return gym.spaces.Box(-np.inf, np.inf, shape=(_flat_size(space),), dtype=np.float32)

    def transform_batch(self, space: gym.Space, observations: Sequence) -> np.ndarray:
        return _flatten(space, observations)


def reads_as_is(space: gym.Space) -> bool:
    """Whether the default models read ``space`` without a connector.

    A flat Box (the MLP's input) or an image-like rank-3 Box (HxWxC or CxHxW), which keeps
    its shape so that a CNN encoder sees rows, columns and planes; MLP encoders flatten it.
    """
    return isinstance(space, gym.spaces.Box) and len(space.shape) in (1, 3)
