"""OffPolicyLearner: target networks and TD errors, what every replay-based learner needs.

Target networks are frozen copies of the part of each module that bootstraps
(``target_source``: the whole Q module for DQN, the twin critic for SAC). With
``config.tau`` set they follow the online networks softly after every gradient step
(Polyak averaging, as SAC defines it); without it they are copied every
``target_network_update_freq`` sampled env steps. TD errors that the loss records per
replayed row go back to prioritized replay through ``pop_td_errors``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from marl_arena.core.columns import Columns
from marl_arena.learners.learner import Learner, TensorBatch
from marl_arena.learners.target_networks import FrozenCopies


class OffPolicyLearner(Learner):
    """A Learner with a target network per trained module and TD errors for prioritized replay."""

    def __init__(self, config, module_spec, device: str = "cpu"):
        super().__init__(config, module_spec, device)
        self.target_modules = FrozenCopies({mid: self.target_source(mid) for mid in self.module_ids_to_train})
        self._last_target_update = 0
        self._td_errors: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    def target_source(self, module_id: str) -> nn.Module:
        """The online network that the target network of ``module_id`` follows (the whole module here)."""
        return self.module[module_id]

    # ------------------------------------------------------------------ TD errors
    def record_td_errors(self, module_id: str, batch: TensorBatch, td_errors: torch.Tensor) -> None:
        """Keep each replayed row's TD error for ``pop_td_errors`` (rows without replay slots are skipped)."""
        if Columns.BATCH_INDEXES in batch:
            self._td_errors.setdefault(module_id, []).append(
                (batch[Columns.BATCH_INDEXES].cpu().numpy(), td_errors.detach().cpu().numpy())
            )

    def pop_td_errors(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(replay slots, TD errors) of the rows updated since the last call, by module id."""
        out = {mid: (np.concatenate([i for i, _ in parts]), np.concatenate([t for _, t in parts]))
               for mid, parts in self._td_errors.items() if parts}
        self._td_errors = {}
        return out

    # ------------------------------------------------------------------ target networks
    def after_update(self, module_id: str, metrics: dict[str, float]) -> dict[str, float]:
        """A soft target update after each gradient step, when ``tau`` is set."""
        if self.config.tau is not None:
            self.target_modules.update(module_id, self.target_source(module_id), self.config.tau)
        return {}

    def after_training_step(self, num_env_steps_sampled_lifetime: int) -> dict[str, float]:
        """Without ``tau``: copy the targets every ``target_network_update_freq`` sampled env steps."""
        if self.config.tau is not None:
            return {}
        if num_env_steps_sampled_lifetime - self._last_target_update < self.config.target_network_update_freq:
            return {"target_updated": 0.0}
        for mid in self.target_modules:
            self.target_modules.update(mid, self.target_source(mid))
        self._last_target_update = num_env_steps_sampled_lifetime
        return {"target_updated": 1.0}

    def reset_module(self, module_id: str) -> None:
        """A fresh module and optimizers, a target equal to the fresh online network, and no TD
        errors of the old player (they name replay slots that the algorithm clears with it)."""
        super().reset_module(module_id)
        self.target_modules.update(module_id, self.target_source(module_id))
        self._td_errors.pop(module_id, None)

    # ------------------------------------------------------------------ checkpoints
    def get_extra_state(self) -> dict[str, Any]:
        return {
            "target_modules": self.target_modules.get_state(),
            "last_target_update": self._last_target_update,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.target_modules.set_state(state.get("target_modules", {}), self.device)
        self._last_target_update = int(state.get("last_target_update", 0))
