"""DQN's learner: n-step (double) Q targets from a target network, a PER-weighted Huber loss
(or, for C51, the cross-entropy to the projected target distribution), per-transition TD
errors for the replay's priorities (via OffPolicyLearner, which also keeps the target
networks), and the epsilon schedule."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from marl_arena.algorithms.schedules import value_at
from marl_arena.core.columns import Columns
from marl_arena.core.q_module import legal_mask
from marl_arena.core.rl_module import RLModule
from marl_arena.learners.learner import TensorBatch
from marl_arena.learners.off_policy_learner import OffPolicyLearner


def q_targets(rewards: torch.Tensor, terminateds: torch.Tensor, discounts: torch.Tensor,
              next_q_target: torch.Tensor, next_q_online: torch.Tensor | None = None,
              next_action_mask: torch.Tensor | None = None) -> torch.Tensor:
    """r + discount * Q_target(s', a*) per row, a* the best LEGAL next action.

    a* is the argmax of ``next_q_online`` (double Q) or of ``next_q_target`` (plain DQN).
    Terminal rows, and rows whose next state has no legal action, do not bootstrap; they
    are guarded with ``where`` (an all-zero mask would otherwise give 0 * -inf = NaN).
    ``discounts`` is gamma^m of an m-step transition (``Columns.N_STEP_DISCOUNT``).
    """
    best, bootstrap = best_next_actions(terminateds, next_q_target, next_q_online, next_action_mask)
    value = next_q_target.gather(-1, best).squeeze(-1)
    value = torch.where(bootstrap, value, torch.zeros_like(value))
    return rewards + discounts * value


def best_next_actions(terminateds: torch.Tensor, next_q_target: torch.Tensor, next_q_online: torch.Tensor | None,
                      next_action_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(a*, bootstrap): the best legal next action per row, shape (rows, 1), and whether the
    row bootstraps from it (not terminal, and some next action is legal).

    a* is the argmax of ``next_q_online`` (double Q) or of ``next_q_target`` (plain DQN).
    """
    legal = legal_mask(next_q_target, next_action_mask)
    selector = next_q_online if next_q_online is not None else next_q_target
    best = selector.masked_fill(~legal, float("-inf")).argmax(dim=-1, keepdim=True)
    return best, ~terminateds.bool() & legal.any(dim=-1)


def project_distribution(next_probs: torch.Tensor, rewards: torch.Tensor, discounts: torch.Tensor,
                         bootstrap: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """C51's projection of r + discount * Z(s', a*) onto the fixed ``support``.

    ``next_probs`` (rows, atoms) is the target network's distribution of the next best
    action; rows where ``bootstrap`` is False (terminal, or no legal next action) shift the
    whole mass to r. Each shifted atom, clipped to [v_min, v_max], splits its probability
    between the two support atoms around it in proportion to closeness (all of it to one
    atom when it lands exactly on it). Returns (rows, atoms), each row summing to 1.
    """
    v_min, v_max = float(support[0]), float(support[-1])
    delta = (v_max - v_min) / (support.numel() - 1)
    scale = torch.where(bootstrap, discounts, torch.zeros_like(discounts)).unsqueeze(-1)
    shifted = (rewards.unsqueeze(-1) + scale * support).clamp(v_min, v_max)
    position = (shifted - v_min) / delta
    lower, upper = position.floor(), position.ceil()
    lower_share = next_probs * (upper - position + (lower == upper).to(next_probs.dtype))
    upper_share = next_probs * (position - lower)
    projected = torch.zeros_like(next_probs)
    projected.scatter_add_(-1, lower.long(), lower_share)
    projected.scatter_add_(-1, upper.long().clamp_max(support.numel() - 1), upper_share)
    return projected


class DQNLearner(OffPolicyLearner):
    def __init__(self, config, module_spec, device: str = "cpu"):
        super().__init__(config, module_spec, device)
        self.set_epsilon(value_at(config.epsilon, 0))

    # ------------------------------------------------------------------ loss
    def prepare_batch(self, module_id: str, batch: TensorBatch) -> TensorBatch:
        """n-step (double) Q targets, or C51 target distributions, once per replayed batch."""
        module, target = self.module[module_id], self.target_modules[module_id]
        next_batch = {Columns.OBS: batch[Columns.NEXT_OBS]}
        discounts = batch.get(Columns.N_STEP_DISCOUNT)
        if discounts is None:
            discounts = torch.full_like(batch[Columns.REWARDS], self.config.gamma)
        rewards, discounts = batch[Columns.REWARDS].float(), discounts.float()
        with torch.no_grad():
            next_target = target.forward_train(next_batch)
            next_q_online = module.forward_train(next_batch)[Columns.QF_PREDS] if self.config.double_q else None
            next_mask = batch.get(Columns.NEXT_ACTION_MASK)
            if not module.distributional:
                batch[Columns.VALUE_TARGETS] = q_targets(rewards, batch[Columns.TERMINATEDS], discounts,
                                                         next_target[Columns.QF_PREDS], next_q_online, next_mask)
                return batch
            best, bootstrap = best_next_actions(batch[Columns.TERMINATEDS], next_target[Columns.QF_PREDS],
                                                next_q_online, next_mask)
            logits = next_target[Columns.QF_LOGITS]
            next_probs = logits.gather(1, best.unsqueeze(-1).expand(-1, 1, logits.shape[-1])).squeeze(1).softmax(-1)
            batch[Columns.QF_TARGET_PROBS] = project_distribution(next_probs, rewards, discounts, bootstrap,
                                                                  module.support)
        return batch

    def compute_loss_for_module(self, module_id: str, module: RLModule, batch: TensorBatch,
                                fwd_out: TensorBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        actions = batch[Columns.ACTIONS].long()
        q_selected = fwd_out[Columns.QF_PREDS].gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        if module.distributional:
            logits = fwd_out[Columns.QF_LOGITS]
            log_probs = logits.gather(1, actions.view(-1, 1, 1).expand(-1, 1, logits.shape[-1])).squeeze(1)
            target_probs = batch[Columns.QF_TARGET_PROBS]
            per_row = -(target_probs * log_probs.log_softmax(-1)).sum(-1)
            td_error = per_row.detach()  # Rainbow's priority: the cross-entropy to the target
            targets = (target_probs * module.support).sum(-1)
        else:
            targets = batch[Columns.VALUE_TARGETS]
            difference = q_selected - targets
            td_error = difference.detach()
            if self.config.td_error_loss_fn == "huber":
                per_row = F.smooth_l1_loss(q_selected, targets, reduction="none")
            else:
                per_row = 0.5 * difference ** 2
        weights = batch.get(Columns.WEIGHTS)
        loss = (per_row * weights).mean() if weights is not None else per_row.mean()
        self.record_td_errors(module_id, batch, td_error)
        return loss, {
            "qf_loss": loss.detach(), "qf_mean": q_selected.detach().mean(), "qf_max": q_selected.detach().max(),
            "qf_target_mean": targets.mean(), "td_error_mean": td_error.abs().mean(),
        }

    # ------------------------------------------------------------------ per training step
    def set_epsilon(self, epsilon: float) -> None:
        for mid in self.module_ids_to_train:
            self.module[mid].epsilon.fill_(epsilon)

    def reset_module(self, module_id: str) -> None:
        """A fresh Q module that explores with the schedule's current epsilon: the schedule follows
        the algorithm's sampled env steps, which a reset does not turn back."""
        epsilon = float(self.module[module_id].epsilon)
        super().reset_module(module_id)
        self.module[module_id].epsilon.fill_(epsilon)

    def after_training_step(self, num_env_steps_sampled_lifetime: int) -> dict[str, float]:
        """Set epsilon from the schedule; the base class updates the targets."""
        epsilon = value_at(self.config.epsilon, num_env_steps_sampled_lifetime)
        self.set_epsilon(epsilon)
        return {"epsilon": epsilon, **super().after_training_step(num_env_steps_sampled_lifetime)}
