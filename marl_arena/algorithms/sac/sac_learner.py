"""SAC's learner: soft Q targets from the target critics, then actor, critic and temperature
losses, each stepped by its own optimizer (``actor_lr``, ``critic_lr``, ``alpha_lr``).

Box actions use one reparameterised sample per row (a' for the target, a~ for the actor
loss); discrete actions take exact expectations over the policy's probabilities, legal
actions only (Christodoulou 2019).
"""

from __future__ import annotations

import math

import torch

from marl_arena.algorithms.sac.sac_losses import (
    auto_continuous_target_entropy,
    auto_discrete_target_entropy,
    critic_loss,
    discrete_entropy,
    expected_soft_value,
    soft_q_targets,
    temperature_loss,
)
from marl_arena.core.columns import Columns
from marl_arena.core.models import flat_dim
from marl_arena.core.rl_module import RLModule
from marl_arena.core.sac_module import SACModule
from marl_arena.learners.learner import TensorBatch, adam
from marl_arena.learners.off_policy_learner import OffPolicyLearner


def _legal(batch: TensorBatch, mask_key: str, like: torch.Tensor) -> torch.Tensor:
    mask = batch.get(mask_key)
    return torch.ones_like(like, dtype=torch.bool) if mask is None else mask > 0


class SACLearner(OffPolicyLearner):
    def __init__(self, config, module_spec, device: str = "cpu"):
        super().__init__(config, module_spec, device)
        for mid in self.module_ids_to_train:
            self._reset_temperature(mid)

    @torch.no_grad()
    def _reset_temperature(self, module_id: str) -> None:
        self.module[module_id].log_alpha.fill_(math.log(self.config.initial_alpha))

    def reset_module(self, module_id: str) -> None:
        """A fresh module, optimizers and target critics, with the temperature back at ``initial_alpha``."""
        super().reset_module(module_id)
        self._reset_temperature(module_id)

    def target_source(self, module_id: str) -> torch.nn.Module:
        """Only the critics have target copies; the policy acts on the next state directly."""
        return self.module[module_id].critic

    def configure_optimizers_for_module(self, module_id: str, module: SACModule) -> dict[str, torch.optim.Optimizer]:
        lrs = {"actor": self.config.actor_lr, "critic": self.config.critic_lr, "alpha": self.config.alpha_lr}
        return {name: adam(params, lr=lrs[name]) for name, params in module.parameter_groups().items()}

    # ------------------------------------------------------------------ targets
    def prepare_batch(self, module_id: str, batch: TensorBatch) -> TensorBatch:
        """Soft n-step targets once per replayed batch: r + gamma^m V_soft(s') under the target critics."""
        module: SACModule = self.module[module_id]
        next_batch = {Columns.OBS: batch[Columns.NEXT_OBS]}
        if Columns.NEXT_ACTION_MASK in batch:
            next_batch[Columns.ACTION_MASK] = batch[Columns.NEXT_ACTION_MASK]
        with torch.no_grad():
            alpha = self.backup_alpha(module)
            dist = module.action_distribution(module.policy_inputs(next_batch))
            target_critic = self.target_modules[module_id]
            if module.discrete:
                next_q = target_critic(batch[Columns.NEXT_OBS]).min(dim=0).values
                legal = _legal(batch, Columns.NEXT_ACTION_MASK, next_q)
                next_values = expected_soft_value(dist.logits, next_q, alpha, legal)
            else:
                next_actions, next_logp = dist.rsample_with_logp()
                next_values = target_critic(batch[Columns.NEXT_OBS], next_actions).min(dim=0).values - alpha * next_logp
            discounts = batch.get(Columns.N_STEP_DISCOUNT)
            if discounts is None:
                discounts = torch.full_like(next_values, self.config.gamma)
            batch[Columns.VALUE_TARGETS] = soft_q_targets(batch[Columns.REWARDS].float(), batch[Columns.TERMINATEDS],
                                                          discounts.float(), next_values)
        return batch

    def backup_alpha(self, module: SACModule) -> torch.Tensor:
        """The weight of the next state's entropy in the targets: alpha (CQL may drop the term)."""
        return module.log_alpha.exp()

    # ------------------------------------------------------------------ losses
    def compute_loss_for_module(self, module_id: str, module: RLModule, batch: TensorBatch,
                                fwd_out: TensorBatch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        targets = batch[Columns.VALUE_TARGETS]
        q_all = torch.stack([fwd_out[k] for k in (Columns.QF_PREDS, Columns.QF_TWIN_PREDS) if k in fwd_out])
        if module.discrete:
            taken = batch[Columns.ACTIONS].long().view(1, -1, 1).expand(len(q_all), -1, 1)
            q_taken = q_all.gather(-1, taken).squeeze(-1)
        else:
            q_taken = q_all
        loss_critic = critic_loss(q_taken, targets, batch.get(Columns.WEIGHTS))
        td_errors = (q_taken.detach() - targets).abs().mean(dim=0)
        self.record_td_errors(module_id, batch, td_errors)

        alpha = module.log_alpha.exp().detach()
        dist = module.action_distribution(fwd_out[Columns.ACTION_DIST_INPUTS])
        if module.discrete:
            legal = _legal(batch, Columns.ACTION_MASK, dist.logits)
            # E_a~pi [alpha log pi(a) - min_i Q_i(s, a)], exactly; the critics are constants here.
            loss_actor = -expected_soft_value(dist.logits, q_all.detach().min(dim=0).values, alpha, legal).mean()
            entropy = discrete_entropy(dist.logits, legal).detach()
            target_entropy = self._target_entropy(module, legal)
        else:
            actions, logp = dist.rsample_with_logp()
            loss_actor = (alpha * logp - module.critic(batch[Columns.OBS], actions).min(dim=0).values).mean()
            entropy = -logp.detach()
            target_entropy = self._target_entropy(module, None)
        loss_alpha = temperature_loss(module.log_alpha, entropy, target_entropy)
        losses = {"actor": loss_actor, "critic": loss_critic, "alpha": loss_alpha}
        stats = {
            "actor_loss": loss_actor.detach(), "critic_loss": loss_critic.detach(), "alpha_loss": loss_alpha.detach(),
            "alpha_value": alpha, "entropy": entropy.mean(),
            "target_entropy": torch.as_tensor(target_entropy, dtype=torch.float32).mean(),
            "qf_mean": q_taken.detach().mean(), "qf_max": q_taken.detach().max(), "qf_min": q_taken.detach().min(),
            "qf_target_mean": targets.mean(), "td_error_mean": td_errors.mean(),
        }
        return losses, stats

    def _target_entropy(self, module: SACModule, legal: torch.Tensor | None) -> torch.Tensor | float:
        """The configured number, or "auto": -dim(A) for Box actions, a share of log(n_legal) per row for discrete."""
        target = self.config.target_entropy
        if target != "auto":
            return float(target)
        if module.discrete:
            return auto_discrete_target_entropy(legal, self.config.target_entropy_scale)
        return auto_continuous_target_entropy(flat_dim(module.action_space))
