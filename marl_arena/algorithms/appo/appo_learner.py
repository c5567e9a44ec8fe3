"""APPO's learner: IMPALA's V-trace against a target (old) policy, PPO's clipped surrogate.

Each trained module has a target copy. V-trace evaluates the target policy; the surrogate's
ratio is pi / pi_target, written as ``min(pi_behaviour / pi_target, target_worker_clipping)
* pi / pi_behaviour`` as in IMPACT. Every ``APPOConfig.target_update_interval`` updates the
target follows the module (``tau``) and, with ``use_kl_loss``, the KL coefficient adapts
as PPO's does.
"""

from __future__ import annotations

from typing import Any

import torch

from marl_arena.algorithms.impala.impala_learner import IMPALALearner
from marl_arena.algorithms.ppo.ppo_learner import adapted_kl_coeff
from marl_arena.core.columns import Columns
from marl_arena.core.rl_module import RLModule
from marl_arena.learners.learner import TensorBatch
from marl_arena.learners.sequences import forward_train_rows, real_steps, sequence_layout
from marl_arena.learners.target_networks import FollowingCopies


class APPOLearner(IMPALALearner):
    def __init__(self, config, module_spec, device: str = "cpu"):
        super().__init__(config, module_spec, device)
        self.target_modules = FollowingCopies({mid: self.module[mid] for mid in self.module_ids_to_train},
                                              config.target_update_interval, config.tau)
        self.kl_coeffs = {mid: float(config.kl_coeff) for mid in self.module_ids_to_train}

    def prepare_batch(self, module_id: str, batch: TensorBatch) -> TensorBatch:
        target = self.target_modules[module_id]
        with torch.no_grad():
            batch[Columns.TARGET_NETWORK_ACTION_DIST_INPUTS] = \
                forward_train_rows(target, batch, sequence_layout(target, batch))[Columns.ACTION_DIST_INPUTS]
        return super().prepare_batch(module_id, batch)

    def vtrace_policy_inputs(self, module_id: str, batch: TensorBatch, fwd_out: TensorBatch) -> torch.Tensor:
        """V-trace evaluates the target policy."""
        return batch[Columns.TARGET_NETWORK_ACTION_DIST_INPUTS]

    def compute_loss_for_module(self, module_id: str, module: RLModule, batch: TensorBatch,
                                fwd_out: TensorBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        config = self.config
        batch, fwd_out = real_steps(batch, fwd_out)  # a recurrent module's padded sequences: their real steps
        dist = module.action_distribution(fwd_out[Columns.ACTION_DIST_INPUTS])
        target_dist = module.action_distribution(batch[Columns.TARGET_NETWORK_ACTION_DIST_INPUTS])
        actions, behaviour_logp = batch[Columns.ACTIONS], batch[Columns.ACTION_LOGP]
        is_ratio = torch.exp(behaviour_logp - target_dist.logp(actions)).clamp(0.0, config.target_worker_clipping)
        ratio = is_ratio * torch.exp(dist.logp(actions) - behaviour_logp)
        advantages = batch[Columns.ADVANTAGES]
        surrogate = torch.min(advantages * ratio,
                              advantages * ratio.clamp(1.0 - config.clip_param, 1.0 + config.clip_param))
        policy_loss = -surrogate.mean()
        vf_loss, entropy = self.value_and_entropy(dist, batch, fwd_out)
        kl = target_dist.kl(dist).mean()
        total = policy_loss + config.vf_loss_coeff * vf_loss - self.scheduled("entropy_coeff") * entropy
        if config.use_kl_loss:
            total = total + self.kl_coeffs[module_id] * kl
        with torch.no_grad():
            clip_fraction = ((ratio - 1.0).abs() > config.clip_param).float().mean()
        return total, {"total_loss": total.detach(), "policy_loss": policy_loss.detach(), "vf_loss": vf_loss.detach(),
                       "entropy": entropy.detach(), "mean_kl_loss": kl.detach(), "clip_fraction": clip_fraction}

    def after_update(self, module_id: str, metrics: dict[str, float]) -> dict[str, float]:
        """Count the update; when due, move the target towards the module and adapt the KL coefficient."""
        out = super().after_update(module_id, metrics)
        target_updated = self.target_modules.count_update(module_id, self.module[module_id])
        if target_updated and self.config.use_kl_loss:
            kl_sum, learners = self.sum_over_learners(
                torch.tensor([metrics.get("mean_kl_loss", 0.0), 1.0], dtype=torch.float64, device=self.device))
            self.kl_coeffs[module_id] = adapted_kl_coeff(self.kl_coeffs[module_id], float(kl_sum / learners),
                                                         self.config.kl_target)
        return {**out, "curr_kl_coeff": self.kl_coeffs[module_id], "target_updated": float(target_updated)}

    def reset_module(self, module_id: str) -> None:
        """A fresh module and optimizer, its target equal to it, the KL coefficient back at ``kl_coeff``."""
        super().reset_module(module_id)
        self.target_modules.restart(module_id, self.module[module_id])
        self.kl_coeffs[module_id] = float(self.config.kl_coeff)

    def get_extra_state(self) -> dict[str, Any]:
        return {
            "target_modules": self.target_modules.get_state(),
            "kl_coeffs": dict(self.kl_coeffs),
            "updates": dict(self.target_modules.updates),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.target_modules.set_state(state.get("target_modules", {}), self.device)
        self.kl_coeffs.update(state.get("kl_coeffs", {}))
        self.target_modules.set_updates(state.get("updates", {}))
