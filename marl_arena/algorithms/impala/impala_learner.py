"""IMPALA's learner: V-trace targets once per batch, then the importance-weighted policy
gradient, value and entropy losses.

V-trace runs over the batch's trajectory segments with the learner's current values; the
target policy is the learner's current policy here, an older copy in APPO
(``vtrace_policy_inputs``). Gradients are clipped by global norm at ``grad_clip``.

A recurrent module (``use_lstm``) is evaluated over its chunks (``learners.sequences``),
V-trace runs over the rows as for any module, and the updates see whole chunks."""

from __future__ import annotations

import torch

from marl_arena.algorithms.estimators import compute_vtrace, explained_variance
from marl_arena.core.columns import Columns
from marl_arena.core.rl_module import RLModule
from marl_arena.learners.bootstrap import bootstrap_values
from marl_arena.learners.learner import Learner, TensorBatch
from marl_arena.learners.sequences import forward_train_rows, real_steps, recurrent_values, sequence_layout


class IMPALALearner(Learner):
    def vtrace_policy_inputs(self, module_id: str, batch: TensorBatch, fwd_out: TensorBatch) -> torch.Tensor:
        """Action-distribution inputs of the policy V-trace evaluates: the current one."""
        return fwd_out[Columns.ACTION_DIST_INPUTS]

    def prepare_batch(self, module_id: str, batch: TensorBatch) -> TensorBatch:
        module = self.module[module_id]
        layout = sequence_layout(module, batch)
        with torch.no_grad():
            fwd_out = forward_train_rows(module, batch, layout)
            if layout is None:
                values = fwd_out[Columns.VF_PREDS]
                next_values = bootstrap_values(module, values, batch[Columns.OBS], batch[Columns.NEXT_OBS],
                                               batch[Columns.TERMINATEDS])
            else:
                values, next_values = recurrent_values(module, layout, batch[Columns.OBS], batch[Columns.NEXT_OBS],
                                                       batch[Columns.STATE_IN])
            dist = module.action_distribution(self.vtrace_policy_inputs(module_id, batch, fwd_out))
            target_logp = dist.logp(batch[Columns.ACTIONS])
        behaviour_logp = batch[Columns.ACTION_LOGP].cpu().numpy()
        target_logp = target_logp.cpu().numpy() if self.config.vtrace else behaviour_logp
        values_np = values.cpu().numpy()
        targets, advantages = compute_vtrace(
            behaviour_logp, target_logp, batch[Columns.REWARDS].cpu().numpy(), values_np,
            next_values.cpu().numpy(), batch[Columns.TERMINATEDS].cpu().numpy(),
            batch[Columns.TRUNCATEDS].cpu().numpy(), self.config.gamma,
            self.config.vtrace_clip_rho_threshold, self.config.vtrace_clip_pg_rho_threshold,
        )
        self._explained_variance = explained_variance(targets, values_np)
        batch[Columns.ADVANTAGES] = torch.as_tensor(advantages, device=self.device)
        batch[Columns.VALUE_TARGETS] = torch.as_tensor(targets, device=self.device)
        return batch if layout is None else layout.to_sequences(batch)

    def compute_loss_for_module(self, module_id: str, module: RLModule, batch: TensorBatch,
                                fwd_out: TensorBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        config = self.config
        batch, fwd_out = real_steps(batch, fwd_out)  # a recurrent module's padded sequences: their real steps
        dist = module.action_distribution(fwd_out[Columns.ACTION_DIST_INPUTS])
        logp = dist.logp(batch[Columns.ACTIONS])
        policy_loss = -(logp * batch[Columns.ADVANTAGES]).mean()
        vf_loss, entropy = self.value_and_entropy(dist, batch, fwd_out)
        total = policy_loss + config.vf_loss_coeff * vf_loss - self.scheduled("entropy_coeff") * entropy
        return total, {"total_loss": total.detach(), "policy_loss": policy_loss.detach(),
                       "vf_loss": vf_loss.detach(), "entropy": entropy.detach()}

    @staticmethod
    def value_and_entropy(dist, batch: TensorBatch, fwd_out: TensorBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Half the squared error to the V-trace targets, and the policy's mean entropy."""
        vf_loss = 0.5 * ((fwd_out[Columns.VF_PREDS] - batch[Columns.VALUE_TARGETS]) ** 2).mean()
        return vf_loss, dist.entropy().mean()

    def after_update(self, module_id: str, metrics: dict[str, float]) -> dict[str, float]:
        return {"vf_explained_var": self._explained_variance, **self.schedule_metrics()}
