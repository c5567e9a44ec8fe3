"""MARWIL's learner: advantage-weighted log-likelihood plus a value loss (beta = 0: plain BC).

Value targets are discounted rewards-to-go of each agent's trajectory in the batch, computed
once per batch: GAE with lambda = 1 is exactly that sum, bootstrapped with V(new_obs) where
the batch cuts a trajectory. Per minibatch, A = target - V(s) with the current value head:
its square is the value loss, and exp(beta * A / sqrt(moving average of A^2)) weighs each
action's log-likelihood. The moving average spans every data-parallel learner's rows, so
all learners keep one value.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from marl_arena.algorithms.estimators import compute_gae, explained_variance
from marl_arena.core.columns import Columns
from marl_arena.core.rl_module import RLModule
from marl_arena.learners.learner import Learner, TensorBatch

MAX_WEIGHT_EXPONENT = math.log(20.0)
"""Where beta * A / norm is clipped: a weight of at most 20, as in AWR (Peng et al. 2019).
RLlib does not clip; then a few rows of high return (weights in the thousands with its
default norm) outweigh the rest of the batch, and exp() overflows float32 past 88."""


class MARWILLearner(Learner):
    def __init__(self, config, module_spec, device: str = "cpu"):
        super().__init__(config, module_spec, device)
        self.sqd_adv_norms = {mid: float(config.moving_average_sqd_adv_norm_start) for mid in self.module_ids_to_train}
        self._explained_variance = float("nan")

    @property
    def _imitates(self) -> bool:
        """beta = 0: behaviour cloning, which needs no values."""
        return self.config.beta == 0.0

    def prepare_batch(self, module_id: str, batch: TensorBatch) -> TensorBatch:
        if self._imitates:
            return batch
        module = self.module[module_id]
        with torch.no_grad():
            values = module.compute_values(batch[Columns.OBS])
            next_values = module.compute_values(batch[Columns.NEXT_OBS])
        _, targets = compute_gae(
            batch[Columns.REWARDS].cpu().numpy(), values.cpu().numpy(), next_values.cpu().numpy(),
            batch[Columns.TERMINATEDS].cpu().numpy(), batch[Columns.TRUNCATEDS].cpu().numpy(),
            self.config.gamma, 1.0,
        )
        self._explained_variance = explained_variance(targets, values.cpu().numpy())
        batch[Columns.VALUE_TARGETS] = torch.as_tensor(targets, device=self.device)
        return batch

    def compute_loss_for_module(self, module_id: str, module: RLModule, batch: TensorBatch,
                                fwd_out: TensorBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        config = self.config
        dist = module.action_distribution(fwd_out[Columns.ACTION_DIST_INPUTS])
        logp = dist.logp(batch[Columns.ACTIONS])
        if self._imitates:
            policy_loss = -logp.mean()
            return policy_loss, {"total_loss": policy_loss.detach(), "policy_loss": policy_loss.detach(),
                                 "entropy": dist.entropy().mean().detach()}
        advantages = batch[Columns.VALUE_TARGETS] - fwd_out[Columns.VF_PREDS]
        sqd_adv_mean = (advantages ** 2).mean()
        count, total = self.sum_over_learners(torch.stack([sqd_adv_mean.new_tensor(1.0), sqd_adv_mean.detach()]))
        norm = self.sqd_adv_norms[module_id]
        norm += config.moving_average_sqd_adv_norm_update_rate * (float(total / count) - norm)
        self.sqd_adv_norms[module_id] = norm
        exponent = (config.beta * advantages.detach() / (1e-8 + norm ** 0.5)).clamp(max=MAX_WEIGHT_EXPONENT)
        weights = torch.exp(exponent)
        policy_loss = -(weights * logp).mean()
        vf_loss = 0.5 * sqd_adv_mean
        total_loss = policy_loss + config.vf_coeff * vf_loss
        return total_loss, {
            "total_loss": total_loss.detach(), "policy_loss": policy_loss.detach(), "vf_loss": vf_loss.detach(),
            "entropy": dist.entropy().mean().detach(), "mean_advantage_weight": weights.mean(),
        }

    def after_update(self, module_id: str, metrics: dict[str, float]) -> dict[str, float]:
        if self._imitates:
            return {}
        return {"moving_avg_sqd_adv_norm": self.sqd_adv_norms[module_id], "vf_explained_var": self._explained_variance}

    def reset_module(self, module_id: str) -> None:
        """A fresh module and optimizer, with the advantage norm back at its start."""
        super().reset_module(module_id)
        self.sqd_adv_norms[module_id] = float(self.config.moving_average_sqd_adv_norm_start)

    def get_extra_state(self) -> dict[str, Any]:
        return {"sqd_adv_norms": dict(self.sqd_adv_norms)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.sqd_adv_norms.update(state.get("sqd_adv_norms", {}))
