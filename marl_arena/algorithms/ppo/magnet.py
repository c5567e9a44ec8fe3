"""Magnetic mirror descent (MMD) as a PPO learner: a KL pull towards a slowly moving magnet policy.

Self-play PPO with an entropy bonus settles, at best, on the entropy-regularised equilibrium
(a quantal response equilibrium): the bonus pulls every policy towards the uniform one, so
the final policy stays exploitable however long it trains. MMD (Sokota et al., "A Unified
Approach to Reinforcement Learning, Quantal Response Equilibria, and Two-Player Zero-Sum
Games", ICLR 2023) pulls towards a *magnet* policy instead. With the magnet held, the last
iterate converges to the magnet-regularised equilibrium; moving the magnet to the current
policy every so often starts each such equilibrium from the last one, and the sequence
approaches a Nash equilibrium with no average policy to keep (NFSP's and fictitious play's
answer to the same problem).

The loss is PPO's plus ``magnet_coeff * KL(pi || magnet)`` per row. The magnet is a frozen
copy of the module, moved towards it (``magnet_tau``) after every ``magnet_update_interval``
learner updates (train batches). A uniform magnet would make the term an entropy bonus, so
configs that use it usually set ``entropy_coeff=0``:

    config.training(entropy_coeff=0.0, learner_class=MagnetPPOLearner,
                    learner_config_dict={"magnet_coeff": 0.2, "magnet_update_interval": 5})

Recurrent modules are refused: the magnet would need its own memory along each sequence.
"""

from __future__ import annotations

from typing import Any

import torch

from marl_arena.algorithms.bounds import describe, within
from marl_arena.algorithms.ppo.ppo_learner import PPOLearner
from marl_arena.core.columns import Columns
from marl_arena.core.rl_module import RLModule
from marl_arena.learners.learner import TensorBatch
from marl_arena.learners.target_networks import FollowingCopies

MAGNET_DIST_INPUTS = "magnet_action_dist_inputs"
"""The batch column holding the magnet's action-distribution inputs for each row."""

DEFAULTS: dict[str, float] = {"magnet_coeff": 0.1, "magnet_update_interval": 10, "magnet_tau": 1.0}
"""``learner_config_dict`` keys and their defaults."""

_BOUNDS: dict[str, dict[str, Any]] = {
    "magnet_coeff": {"low": 0.0},
    "magnet_update_interval": {"low": 1},
    "magnet_tau": {"low": 0.0, "high": 1.0, "low_inclusive": False},
}


class MagnetPPOLearner(PPOLearner):
    """PPO's loss plus a KL pull towards a magnet that follows the policy every few updates."""

    def __init__(self, config, module_spec, device: str = "cpu"):
        super().__init__(config, module_spec, device)
        settings = {**DEFAULTS, **config.learner_config_dict}
        for key, bounds in _BOUNDS.items():
            integer = key == "magnet_update_interval"
            if not within(settings[key], **bounds) or (integer and settings[key] != int(settings[key])):
                raise ValueError(f"learner_config_dict[{key!r}]={settings[key]!r} is not allowed: it must be "
                                 f"{'an integer ' if integer else ''}{describe(**bounds)}.")
        self.magnet_coeff = float(settings["magnet_coeff"])
        stateful = [mid for mid in self.module_ids_to_train if self.module[mid].is_stateful()]
        if stateful:
            raise ValueError(f"MagnetPPOLearner does not train recurrent modules ({stateful}): the magnet "
                             "would need its own memory along each sequence.")
        self.magnets = FollowingCopies({mid: self.module[mid] for mid in self.module_ids_to_train},
                                       settings["magnet_update_interval"], settings["magnet_tau"])

    def prepare_batch(self, module_id: str, batch: TensorBatch) -> TensorBatch:
        with torch.no_grad():
            batch[MAGNET_DIST_INPUTS] = self.magnets[module_id].forward_train(batch)[Columns.ACTION_DIST_INPUTS]
        return super().prepare_batch(module_id, batch)

    def compute_loss_for_module(self, module_id: str, module: RLModule, batch: TensorBatch,
                                fwd_out: TensorBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total, stats = super().compute_loss_for_module(module_id, module, batch, fwd_out)
        policy = module.action_distribution(fwd_out[Columns.ACTION_DIST_INPUTS])
        magnet_kl = policy.kl(module.action_distribution(batch[MAGNET_DIST_INPUTS])).mean()
        total = total + self.magnet_coeff * magnet_kl
        stats.update(magnet_kl=magnet_kl.detach(), total_loss=total.detach())
        return total, stats

    def after_update(self, module_id: str, metrics: dict[str, float]) -> dict[str, float]:
        """Count the update; when due, move the magnet towards the module."""
        out = super().after_update(module_id, metrics)
        moved = self.magnets.count_update(module_id, self.module[module_id])
        return {**out, "magnet_updated": float(moved)}

    def reset_module(self, module_id: str) -> None:
        """A fresh module, its magnet equal to it."""
        super().reset_module(module_id)
        self.magnets.restart(module_id, self.module[module_id])

    def get_extra_state(self) -> dict[str, Any]:
        return {**super().get_extra_state(), "magnets": self.magnets.get_state(),
                "magnet_updates": dict(self.magnets.updates)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.magnets.set_state(state.get("magnets", {}), self.device)
        self.magnets.set_updates(state.get("magnet_updates", {}))
