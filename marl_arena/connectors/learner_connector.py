"""Learner connectors: transforms of one module's batch on the learner, before ``prepare_batch``.

An env-to-module connector (``ObservationConnector``) changes what a module sees while it
acts; a learner connector changes what the learner learns from, after sampling and before
the algorithm's own batch preparation (PPO's GAE, DQN's targets). Intrinsic rewards belong
here: the reward must change before advantages or targets are computed from it, and the
state a bonus needs (visit counts, a model of the dynamics) lives with the learner, is
checkpointed with it and never travels to the runners.

``config.training(learner_connector=factory)`` names a factory that each learner calls once,
as RLlib does, with an observation space and an action space: those of the module it trains,
or ``gym.spaces.Dict`` of them by module id when it trains several. Most connectors need
neither (``lambda *args: CountBasedCuriosity()``). It returns one connector or a list,
applied in order.
"""

from __future__ import annotations

import abc
from typing import Any, Mapping

import gymnasium as gym
import torch

TensorBatch = dict[str, torch.Tensor]


class LearnerConnector(abc.ABC):
    """Transforms one module's batch on the learner; may keep state that checkpoints save."""

    @abc.abstractmethod
    def __call__(self, module_id: str, batch: TensorBatch) -> tuple[TensorBatch, dict[str, float]]:
        """The transformed batch, and diagnostics that join the module's learner metrics."""

    def get_state(self) -> dict[str, Any]:
        """What a checkpoint must keep to continue (counts, running statistics); none here."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what ``get_state`` returned."""


def build_learner_connectors(config: Any, modules: Mapping[str, Any]) -> list[LearnerConnector]:
    """The config's learner connectors for a learner training ``modules`` (by module id); [] if none."""
    factory = getattr(config, "learner_connector", None)
    if factory is None:
        return []
    if len(modules) == 1:
        module = next(iter(modules.values()))
        built = factory(module.observation_space, module.action_space)
    else:
        built = factory(gym.spaces.Dict({mid: m.observation_space for mid, m in modules.items()}),
                        gym.spaces.Dict({mid: m.action_space for mid, m in modules.items()}))
    connectors = list(built) if isinstance(built, (list, tuple)) else [built]
    for connector in connectors:
        if not isinstance(connector, LearnerConnector):
            raise ValueError(f"learner_connector returned {connector!r}, which is not a LearnerConnector: the factory "
                             "must return a LearnerConnector or a list of them, e.g. lambda *args: CountBasedCuriosity().")
    return connectors
