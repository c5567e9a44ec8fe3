"""PPO's learner: GAE once per batch, then the clipped surrogate, the value loss, the
entropy bonus and the adaptive KL penalty per minibatch, with RLlib's semantics: the
value loss is the squared error capped at ``vf_clip_param`` per row.

The advantages' standardisation and the KL adaptation use statistics of the whole batch,
summed over data-parallel learners (``sum_over_learners``): N learners on N shards then
update exactly as one learner on the whole batch, and keep one KL coefficient.

A recurrent module (``use_lstm``) trains on sequences (``learners.sequences``): values and
bootstrap values come from one recurrent pass over each chunk, GAE runs over the rows as
for any module, and the epochs shuffle whole chunks.

With ``normalize_value_targets`` the value head learns standardised targets
(``learners.value_norm``, on-policy's ValueNorm): its outputs are mapped back to returns
for GAE, and the targets of the value loss are the returns normalised by the running
moments that include this batch."""

from __future__ import annotations

from typing import Any

import torch

from marl_arena.algorithms.estimators import compute_gae, explained_variance
from marl_arena.core.columns import Columns
from marl_arena.core.rl_module import RLModule
from marl_arena.learners.bootstrap import bootstrap_values
from marl_arena.learners.learner import Learner, TensorBatch
from marl_arena.learners.sequences import real_steps, recurrent_values, sequence_layout
from marl_arena.learners.value_norm import ValueNormalizer


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
        self.value_normalizers = {mid: self._new_value_normalizer() for mid in self.module_ids_to_train
                                  if config.normalize_value_targets}

    def _new_value_normalizer(self) -> ValueNormalizer:
        return ValueNormalizer(self.config.value_norm_decay, self.device)

    def prepare_batch(self, module_id: str, batch: TensorBatch) -> TensorBatch:
        """GAE over the batch; the columns only GAE needs leave the batch, so the epochs do not shuffle them."""
        module = self.module[module_id]
        layout = sequence_layout(module, batch)
        terminateds = batch.pop(Columns.TERMINATEDS)
        truncateds = batch.pop(Columns.TRUNCATEDS)
        if layout is not None:
            with torch.no_grad():
                values, next_values = recurrent_values(module, layout, batch[Columns.OBS], batch.pop(Columns.NEXT_OBS),
                                                       batch[Columns.STATE_IN])
        else:
            # A centralized critic's value reads the critic column and bootstraps from the next one.
            critic = Columns.CRITIC_OBS in batch
            next_obs = batch.pop(Columns.NEXT_OBS)
            value_in = batch[Columns.CRITIC_OBS] if critic else batch[Columns.OBS]
            next_in = batch.pop(Columns.NEXT_CRITIC_OBS) if critic else next_obs
            with torch.no_grad():
                values = module.compute_values(value_in)
                next_values = bootstrap_values(module, values, value_in, next_in, terminateds)
        normalizer = self.value_normalizers.get(module_id)
        if normalizer is not None:  # the head's outputs as returns (GAE ignores a terminal row's next value)
            values, next_values = normalizer.denormalize(values), normalizer.denormalize(next_values)
        advantages, targets = compute_gae(
            batch.pop(Columns.REWARDS).cpu().numpy(), values.cpu().numpy(), next_values.cpu().numpy(),
            terminateds.cpu().numpy(), truncateds.cpu().numpy(), self.config.gamma, self.config.lambda_,
        )
        batch.pop(Columns.NEXT_ACTION_MASK, None)
        self._explained_variance = explained_variance(targets, values.cpu().numpy())
        batch[Columns.ADVANTAGES] = self._standardize(torch.as_tensor(advantages, device=self.device))
        batch[Columns.VALUE_TARGETS] = self._value_targets(module_id, torch.as_tensor(targets, device=self.device))
        return batch if layout is None else layout.to_sequences(batch)

    def _value_targets(self, module_id: str, targets: torch.Tensor) -> torch.Tensor:
        """The targets of the value loss: the returns themselves, or, with a value normaliser, the
        returns normalised after folding this batch's moments (over every learner's rows) into it."""
        normalizer = self.value_normalizers.get(module_id)
        if normalizer is None:
            return targets
        wide = targets.to(torch.float64)
        count, total, total_sq = self.sum_over_learners(
            torch.stack([wide.new_tensor(len(wide)), wide.sum(), (wide ** 2).sum()]))
        if count > 0:
            normalizer.update(total / count, total_sq / count)
        return normalizer.normalize(targets)

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
        batch, fwd_out = real_steps(batch, fwd_out)  # a recurrent module's padded sequences: their real steps
        dist = module.action_distribution(fwd_out[Columns.ACTION_DIST_INPUTS])
        old_dist = module.action_distribution(batch[Columns.ACTION_DIST_INPUTS])
        logp = dist.logp(batch[Columns.ACTIONS])
        ratio = torch.exp(logp - batch[Columns.ACTION_LOGP])
        advantages = batch[Columns.ADVANTAGES]
        surrogate = torch.min(advantages * ratio,
                              advantages * ratio.clamp(1.0 - config.clip_param, 1.0 + config.clip_param))
        policy_loss = -surrogate.mean()

        # RLlib's value loss: each row's squared error, capped at vf_clip_param (a row beyond
        # the cap gives the value function no gradient), with no factor 1/2.
        squared_error = (fwd_out[Columns.VF_PREDS] - batch[Columns.VALUE_TARGETS]) ** 2
        vf_loss = squared_error.clamp(max=config.vf_clip_param).mean()

        entropy = dist.entropy().mean()
        kl = old_dist.kl(dist).mean()
        entropy_coeff = self.scheduled("entropy_coeff")
        total = policy_loss + config.vf_loss_coeff * vf_loss - entropy_coeff * entropy
        if config.use_kl_loss:
            total = total + self.kl_coeffs[module_id] * kl
        with torch.no_grad():
            clip_fraction = ((ratio - 1.0).abs() > config.clip_param).float().mean()
        return total, {
            "total_loss": total.detach(), "policy_loss": policy_loss.detach(), "vf_loss": vf_loss.detach(),
            "vf_loss_unclipped": squared_error.detach().mean(),
            "entropy": entropy.detach(), "mean_kl_loss": kl.detach(), "clip_fraction": clip_fraction,
        }

    def after_update(self, module_id: str, metrics: dict[str, float]) -> dict[str, float]:
        """Adapt the KL coefficient towards ``kl_target`` (doubling or halving band)."""
        if self.config.use_kl_loss:
            kl_sum, learners = self.sum_over_learners(
                torch.tensor([metrics.get("mean_kl_loss", 0.0), 1.0], dtype=torch.float64, device=self.device))
            self.kl_coeffs[module_id] = adapted_kl_coeff(self.kl_coeffs[module_id], float(kl_sum / learners),
                                                         self.config.kl_target)
        extra = {"curr_kl_coeff": self.kl_coeffs[module_id], "vf_explained_var": self._explained_variance,
                 **self.schedule_metrics()}
        normalizer = self.value_normalizers.get(module_id)
        if normalizer is not None:
            mean, std = normalizer.mean_std()
            extra.update(value_norm_mean=float(mean), value_norm_std=float(std))
        return extra

    def reset_module(self, module_id: str) -> None:
        """A fresh module and optimizer, with the KL coefficient back at ``kl_coeff``."""
        super().reset_module(module_id)
        self.kl_coeffs[module_id] = float(self.config.kl_coeff)
        if module_id in self.value_normalizers:
            self.value_normalizers[module_id] = self._new_value_normalizer()

    def get_extra_state(self) -> dict[str, Any]:
        return {"kl_coeffs": dict(self.kl_coeffs),
                "value_normalizers": {mid: norm.get_state() for mid, norm in self.value_normalizers.items()}}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.kl_coeffs.update(state.get("kl_coeffs", {}))
        for module_id, norm_state in state.get("value_normalizers", {}).items():
            if module_id in self.value_normalizers:
                self.value_normalizers[module_id].set_state(norm_state)
