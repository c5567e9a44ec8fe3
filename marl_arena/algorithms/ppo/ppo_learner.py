"""PPO's learner: GAE once per batch, then the clipped surrogate, clipped value loss,
entropy bonus and adaptive KL penalty per minibatch.

The advantages' standardisation and the KL adaptation use statistics of the whole batch,
summed over data-parallel learners (``sum_over_learners``): N learners on N shards then
update exactly as one learner on the whole batch, and keep one KL coefficient."""

from __future__ import annotations

from typing import Any

import torch

from marl_arena.algorithms.estimators import compute_gae, explained_variance
from marl_arena.core.columns import Columns
from marl_arena.core.rl_module import RLModule
from marl_arena.learners.learner import Learner, TensorBatch


def adapted_kl_coeff(coeff: float, kl: float, kl_target: float) -> float:
    """The KL penalty coefficient moved towards ``kl_target``: x1.5 above twice the target, x0.5 below half."""
    if kl > 2.0 * kl_target:
        return coeff * 1.5
    if kl < 0.5 * kl_target:
        return coeff * 0.5
    return coeff


class PPOLearner(Learner):
    def __init__(self, config, module_spec, device: str = "cpu"):
        super().__init__(config, module_spec, device)
        self.kl_coeffs = {mid: float(config.kl_coeff) for mid in self.module_ids_to_train}

    def prepare_batch(self, module_id: str, batch: TensorBatch) -> TensorBatch:
        module = self.module[module_id]
        with torch.no_grad():
            values = module.compute_values(batch[Columns.OBS])
            next_values = module.compute_values(batch[Columns.NEXT_OBS])
        advantages, targets = compute_gae(
            batch[Columns.REWARDS].cpu().numpy(), values.cpu().numpy(), next_values.cpu().numpy(),
            batch[Columns.TERMINATEDS].cpu().numpy(), batch[Columns.TRUNCATEDS].cpu().numpy(),
            self.config.gamma, self.config.lambda_,
        )
        self._explained_variance = explained_variance(targets, values.cpu().numpy())
        batch[Columns.ADVANTAGES] = self._standardize(torch.as_tensor(advantages, device=self.device))
        batch[Columns.VALUE_TARGETS] = torch.as_tensor(targets, device=self.device)
        batch[Columns.VF_PREDS] = values
        return batch

    def _standardize(self, advantages: torch.Tensor) -> torch.Tensor:
        """(A - mean) / std, both over every learner's rows (std with Bessel's correction)."""
        count, total = self.sum_over_learners(torch.stack([advantages.new_tensor(len(advantages)), advantages.sum()]))
        if count <= 1:
            return advantages
        mean = total / count
        variance = self.sum_over_learners(((advantages - mean) ** 2).sum()) / (count - 1)
        return (advantages - mean) / (variance.sqrt() + 1e-8)

    def compute_loss_for_module(self, module_id: str, module: RLModule, batch: TensorBatch,
                                fwd_out: TensorBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        config = self.config
        dist = module.action_distribution(fwd_out[Columns.ACTION_DIST_INPUTS])
        old_dist = module.action_distribution(batch[Columns.ACTION_DIST_INPUTS])
        logp = dist.logp(batch[Columns.ACTIONS])
        ratio = torch.exp(logp - batch[Columns.ACTION_LOGP])
        advantages = batch[Columns.ADVANTAGES]
        surrogate = torch.min(advantages * ratio,
                              advantages * ratio.clamp(1.0 - config.clip_param, 1.0 + config.clip_param))
        policy_loss = -surrogate.mean()

        values = fwd_out[Columns.VF_PREDS]
        old_values = batch[Columns.VF_PREDS]
        targets = batch[Columns.VALUE_TARGETS]
        clipped_values = old_values + (values - old_values).clamp(-config.vf_clip_param, config.vf_clip_param)
        vf_loss = 0.5 * torch.max((values - targets) ** 2, (clipped_values - targets) ** 2).mean()

        entropy = dist.entropy().mean()
        kl = old_dist.kl(dist).mean()
        total = policy_loss + config.vf_loss_coeff * vf_loss - config.entropy_coeff * entropy
        if config.use_kl_loss:
            total = total + self.kl_coeffs[module_id] * kl
        with torch.no_grad():
            clip_fraction = ((ratio - 1.0).abs() > config.clip_param).float().mean()
        return total, {
            "total_loss": total.detach(), "policy_loss": policy_loss.detach(), "vf_loss": vf_loss.detach(),
            "entropy": entropy.detach(), "mean_kl_loss": kl.detach(), "clip_fraction": clip_fraction,
        }

    def after_update(self, module_id: str, metrics: dict[str, float]) -> dict[str, float]:
        """Adapt the KL coefficient towards ``kl_target`` (doubling or halving band)."""
        if self.config.use_kl_loss:
            kl_sum, learners = self.sum_over_learners(
                torch.tensor([metrics.get("mean_kl_loss", 0.0), 1.0], dtype=torch.float64, device=self.device))
            self.kl_coeffs[module_id] = adapted_kl_coeff(self.kl_coeffs[module_id], float(kl_sum / learners),
                                                         self.config.kl_target)
        return {"curr_kl_coeff": self.kl_coeffs[module_id], "vf_explained_var": self._explained_variance}

    def reset_module(self, module_id: str) -> None:
        """A fresh module and optimizer, with the KL coefficient back at ``kl_coeff``."""
        super().reset_module(module_id)
        self.kl_coeffs[module_id] = float(self.config.kl_coeff)

    def get_extra_state(self) -> dict[str, Any]:
        return {"kl_coeffs": dict(self.kl_coeffs)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.kl_coeffs.update(state.get("kl_coeffs", {}))
