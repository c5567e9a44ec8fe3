"""RLModule (one policy's networks), MultiRLModule (modules by id) and their specs.

A module is a plain ``torch.nn.Module`` with three forward passes, each taking and
returning a dict of tensors keyed by ``Columns``. Specs are small picklable recipes, so a
module can be rebuilt inside a Ray actor from the spec alone.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Iterator, Mapping

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from marl_arena.core.distributions import ActionDistribution
from marl_arena.core.models import DefaultModelConfig

DEFAULT_MODULE_ID = "default_policy"

TensorDict = dict[str, torch.Tensor]


def weights_as_arrays(weights: Mapping[str, Any]) -> dict[str, Any]:
    """Weights (nested dicts of CPU tensors) with NumPy arrays for tensors, to put in Ray's object store.

    Ray ships NumPy arrays as out-of-band buffers and reads them back as views of the store,
    while a tensor goes through ``torch.save``: for a 256x256 MLP's weights the put is about 2x
    and the get 3-6x faster as arrays. Runners load them back with ``weights_as_tensors``.
    """
    return {key: weights_as_arrays(value) if isinstance(value, Mapping)
            else value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
            for key, value in weights.items()}


def weights_as_tensors(module_weights: Mapping[str, Any]) -> TensorDict:
    """One module's weights with tensors for NumPy arrays (copied: the arrays may be read-only views
    of Ray's object store), ready for ``load_state_dict``."""
    return {key: torch.tensor(value) if isinstance(value, np.ndarray) else value
            for key, value in module_weights.items()}


class RLModule(nn.Module, abc.ABC):
    """The networks of one policy.

    ``observation_space`` is the space after the env-to-module connector (a flat Box, or a
    rank-3 Box for image-like observations, whose rows may also arrive flattened);
    ``action_space`` is the env's. Action masks arrive as ``Columns.ACTION_MASK`` and must be
    honoured by every forward pass that outputs action distribution inputs.
    """

    model_config_class: type[DefaultModelConfig] = DefaultModelConfig
    """The model config this module reads; a module with extra settings names a subclass."""

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config: DefaultModelConfig | dict | None = None,
        inference_only: bool = False,
    ):
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        self.model_config = self.model_config_class.from_any(model_config)
        self.inference_only = inference_only

    @abc.abstractmethod
    def forward_inference(self, batch: TensorDict) -> TensorDict:
        """Outputs for greedy acting (evaluation, deployment)."""

    @abc.abstractmethod
    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        """Outputs for acting while collecting training data."""

    @abc.abstractmethod
    def forward_train(self, batch: TensorDict) -> TensorDict:
        """Outputs the loss needs."""

    @abc.abstractmethod
    def action_distribution(self, dist_inputs: torch.Tensor) -> ActionDistribution:
        """The action distribution that ``dist_inputs`` parameterise."""

    def get_initial_state(self) -> torch.Tensor | None:
        """The state of a new episode, one flat row, for a module with memory; None without.

        A stateful module takes ``Columns.STATE_IN`` (one row per batch row) in every forward
        pass and returns ``Columns.STATE_OUT``: the runners keep one state per agent and
        episode, starting from this one.
        """
        return None

    def is_stateful(self) -> bool:
        """Whether the module has memory (``get_initial_state`` is not None)."""
        return self.get_initial_state() is not None

    def share_submodules(self, modules: "MultiRLModule") -> None:
        """Take sub-networks from other modules of ``modules``; nothing by default.

        ``MultiRLModuleSpec.build`` calls it on every module once all are built, so a module
        can share another module id's trunk explicitly (``self.trunk = modules["a"].trunk``)
        in each process that builds the set: learners and runners alike.
        """


@dataclasses.dataclass
class RLModuleSpec:
    """How to build one RLModule: its class, spaces and model config."""

    module_class: type[RLModule] | None = None
    observation_space: gym.Space | None = None
    action_space: gym.Space | None = None
    model_config: DefaultModelConfig | dict | None = None
    inference_only: bool = False

    def build(self) -> RLModule:
        if self.module_class is None or self.observation_space is None or self.action_space is None:
            raise ValueError(
                "RLModuleSpec.build() needs module_class, observation_space and action_space; "
                f"got {self}."
            )
        return self.module_class(
            self.observation_space, self.action_space, self.model_config, self.inference_only
        )


@dataclasses.dataclass
class MultiRLModuleSpec:
    """Specs of every module, by module id."""

    rl_module_specs: dict[str, RLModuleSpec] = dataclasses.field(default_factory=dict)

    def build(self) -> "MultiRLModule":
        modules = MultiRLModule({mid: spec.build() for mid, spec in self.rl_module_specs.items()})
        for _, module in modules.items():
            module.share_submodules(modules)
        return modules


class MultiRLModule(nn.Module):
    """RLModules by module id. Agents mapped to one id share that module's parameters."""

    def __init__(self, modules: dict[str, RLModule] | None = None):
        super().__init__()
        self._modules_by_id = nn.ModuleDict()
        for module_id, module in (modules or {}).items():
            self.add_module_by_id(module_id, module)

    def add_module_by_id(self, module_id: str, module: RLModule) -> None:
        if not isinstance(module_id, str):
            raise ValueError(f"Module ids must be strings, got {module_id!r} ({type(module_id).__name__}).")
        if module_id in self._modules_by_id:
            raise ValueError(f"Module id {module_id!r} already exists.")
        self._modules_by_id[module_id] = module

    def remove_module_by_id(self, module_id: str) -> None:
        del self._modules_by_id[module_id]

    def __getitem__(self, module_id: str) -> RLModule:
        try:
            return self._modules_by_id[module_id]
        except KeyError:
            raise KeyError(
                f"No module {module_id!r}; this MultiRLModule has {sorted(self._modules_by_id)}."
            ) from None

    def __contains__(self, module_id: object) -> bool:
        return module_id in self._modules_by_id

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules_by_id)

    def keys(self) -> list[str]:
        return list(self._modules_by_id.keys())

    def items(self) -> list[tuple[str, RLModule]]:
        return list(self._modules_by_id.items())

    def get_state(self, module_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Weights of the given modules (all by default) as CPU tensors, by module id."""
        ids = self.keys() if module_ids is None else module_ids
        return {
            mid: {k: v.detach().to("cpu", copy=True) for k, v in self[mid].state_dict().items()}
            for mid in ids
        }

    def set_state(self, state: dict[str, dict[str, Any]]) -> None:
        """Load weights (tensors or NumPy arrays) for the modules named in ``state``; other modules keep theirs."""
        for mid, module_state in state.items():
            self[mid].load_state_dict(weights_as_tensors(module_state))
