"""Target networks: slowly moving copies of online networks (DQN's and SAC's critics, APPO's old
policy, the magnet of ``MagnetPPOLearner``)."""

from __future__ import annotations

import copy
from typing import Any, Iterator, Mapping

import torch
from torch import nn


@torch.no_grad()
def update_target(target: nn.Module, online: nn.Module, tau: float = 1.0) -> None:
    """theta' <- tau theta + (1 - tau) theta' over parameters; buffers are copied."""
    for target_param, param in zip(target.parameters(), online.parameters()):
        if tau >= 1.0:
            target_param.copy_(param)
        else:
            target_param.lerp_(param, tau)
    for target_buffer, buffer in zip(target.buffers(), online.buffers()):
        target_buffer.copy_(buffer)


class FrozenCopies:
    """A frozen copy of each of some networks, by module id: moved towards its network on demand
    (``update``) and saved with the learner's state (``get_state`` / ``set_state``)."""

    def __init__(self, networks: Mapping[str, nn.Module]):
        self._copies: dict[str, nn.Module] = {}
        for module_id, network in networks.items():
            frozen = copy.deepcopy(network)
            frozen.requires_grad_(False)
            self._copies[module_id] = frozen

    def __getitem__(self, module_id: str) -> nn.Module:
        return self._copies[module_id]

    def __iter__(self) -> Iterator[str]:
        """The module ids."""
        return iter(self._copies)

    def update(self, module_id: str, network: nn.Module, tau: float = 1.0) -> None:
        """``update_target`` of ``module_id``'s copy towards ``network``."""
        update_target(self._copies[module_id], network, tau)

    def get_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {module_id: {k: v.detach().to("cpu", copy=True) for k, v in frozen.state_dict().items()}
                for module_id, frozen in self._copies.items()}

    def set_state(self, state: Mapping[str, Mapping[str, Any]], device: str | torch.device) -> None:
        """Load the copies in ``state`` (those of module ids this object does not hold are ignored)."""
        for module_id, weights in state.items():
            if module_id in self._copies:
                self._copies[module_id].load_state_dict({k: v.to(device) for k, v in weights.items()})


class FollowingCopies(FrozenCopies):
    """Frozen copies that follow their networks every ``interval`` learner updates, by ``tau``
    (APPO's target policy, ``MagnetPPOLearner``'s magnet): the update count per module id lives
    here, so the learners that use it only say when an update happened."""

    def __init__(self, networks: Mapping[str, nn.Module], interval: int, tau: float = 1.0):
        super().__init__(networks)
        self.interval, self.tau = int(interval), float(tau)
        self.updates = {module_id: 0 for module_id in self}

    def count_update(self, module_id: str, network: nn.Module) -> bool:
        """Count one update of ``network``; when ``interval`` have passed, move the copy towards it.
        Returns whether it moved."""
        self.updates[module_id] += 1
        due = self.updates[module_id] % self.interval == 0
        if due:
            self.update(module_id, network, self.tau)
        return due

    def restart(self, module_id: str, network: nn.Module) -> None:
        """The copy equal to ``network`` and its count back at 0 (a module reset to fresh weights)."""
        self.update(module_id, network)
        self.updates[module_id] = 0

    def set_updates(self, updates: Mapping[str, int]) -> None:
        """Restore the update counts saved with a checkpoint (unknown module ids are ignored)."""
        self.updates.update({module_id: int(n) for module_id, n in updates.items() if module_id in self.updates})
