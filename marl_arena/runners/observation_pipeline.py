"""From an agent's raw observations to what its module reads.

Two steps, per agent space: split off a PettingZoo-style action mask, then apply the
env-to-module connector (``FlattenObservations`` automatically where the space is neither a
flat Box nor an image-like rank-3 Box, so Discrete-observation envs such as Taxi work out of
the box). Rank-3 Box observations (board planes, images) keep their shape: a CNN encoder
needs it, and the MLP encoders flatten inside.
"""

from __future__ import annotations

import logging
from typing import Sequence

import gymnasium as gym
import numpy as np

from marl_arena.connectors.observations import FlattenObservations, ObservationConnector, reads_as_is

logger = logging.getLogger(__name__)

MASK_KEY = "action_mask"
OBS_KEY = "observation"


def has_action_mask(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Dict) and MASK_KEY in space.spaces


class ObservationPipeline:
    """Mask splitting plus connector for one agent observation space."""

    def __init__(self, raw_space: gym.Space, connector: ObservationConnector | None):
        self.raw_space = raw_space
        self.masked = has_action_mask(raw_space)
        if self.masked:
            rest = {k: v for k, v in raw_space.spaces.items() if k != MASK_KEY}
            inner = rest[OBS_KEY] if set(rest) == {OBS_KEY} else gym.spaces.Dict(rest)
        else:
            inner = raw_space
        self._inner_space = inner
        if connector is None and not reads_as_is(inner):
            connector = FlattenObservations()
        self.connector = connector
        self.observation_space = connector.transform_space(inner) if connector is not None else inner

    def process(self, observations: Sequence) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows the module reads (float32, shaped ``(n, *observation_space.shape)``), and the action
        masks (None when the space has none)."""
        masks = None
        if self.masked:
            masks = np.asarray([o[MASK_KEY] for o in observations], dtype=np.float32)
            if isinstance(self._inner_space, gym.spaces.Dict):
                observations = [{k: v for k, v in o.items() if k != MASK_KEY} for o in observations]
            else:
                observations = [o[OBS_KEY] for o in observations]
        if self.connector is not None:
            rows = self.connector.transform_batch(self._inner_space, observations)
        else:
            rows = np.asarray(observations, dtype=np.float32).reshape(len(observations), *self.observation_space.shape)
        return rows, masks


def make_connector(factory, env) -> ObservationConnector | None:
    """Call the config's ``env_to_module_connector(env)`` and check what it returns."""
    if factory is None:
        return None
    connector = factory(env)
    if connector is None or isinstance(connector, ObservationConnector):
        return connector
    raise ValueError(
        f"env_to_module_connector returned {connector!r}; it must return an ObservationConnector "
        "such as FlattenObservations()."
    )
