"""DQN's learner: n-step (double) Q targets from a target network, a PER-weighted Huber loss,
per-transition TD errors kept for the replay's priorities, and target/epsilon updates."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from marl_arena.algorithms.dqn.dqn_config import epsilon_at
from marl_arena.core.columns import Columns
from marl_arena.core.rl_module import RLModule
from marl_arena.learners.learner import Learner, TensorBatch


def q_targets(rewards: torch.Tensor, terminateds: torch.Tensor, discounts: torch.Tensor,
              next_q_target: torch.Tensor, next_q_online: torch.Tensor | None = None,
              next_action_mask: torch.Tensor | None = None) -> torch.Tensor:
    """r + discount * Q_target(s', a*) per row, a* the best LEGAL next action.

    a* is the argmax of ``next_q_online`` (double Q) or of ``next_q_target`` (plain DQN).
    Terminal rows, and rows whose next state has no legal action, do not bootstrap; they
    are guarded with ``where`` (an all-zero mask would otherwise give 0 * -inf = NaN).
    ``discounts`` is gamma^m of an m-step transition (``Columns.N_STEP_DISCOUNT``).
    """
    if next_action_mask is None:
        legal = torch.ones_like(next_q_target, dtype=torch.bool)
    else:
        legal = next_action_mask > 0
    selector = next_q_online if next_q_online is not None else next_q_target
    best = selector.masked_fill(~legal, float("-inf")).argmax(dim=-1, keepdim=True)
    value = next_q_target.gather(-1, best).squeeze(-1)
    no_bootstrap = terminateds.bool() | ~legal.any(dim=-1)
    value = torch.where(no_bootstrap, torch.zeros_like(value), value)
    return rewards + discounts * value


@torch.no_grad()
def update_target(target: torch.nn.Module, online: torch.nn.Module, tau: float = 1.0) -> None:
    """theta' <- tau theta + (1 - tau) theta' over parameters; buffers are copied."""
    for target_param, param in zip(target.parameters(), online.parameters()):
        if tau >= 1.0:
            target_param.copy_(param)
        else:
            target_param.mul_(1.0 - tau).add_(param, alpha=tau)
    for target_buffer, buffer in zip(target.buffers(), online.buffers()):
        target_buffer.copy_(buffer)


class DQNLearner(Learner):
    def __init__(self, config, module_spec, device: str = "cpu"):
        super().__init__(config, module_spec, device)
        self.target_modules: dict[str, RLModule] = {}
        for mid in self.module_ids_to_train:
            target = copy.deepcopy(self.module[mid])
            target.requires_grad_(False)
            self.target_modules[mid] = target
        self._last_target_update = 0
        self._td_errors: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.set_epsilon(epsilon_at(config.epsilon, 0))

    # ------------------------------------------------------------------ loss
    def prepare_batch(self, module_id: str, batch: TensorBatch) -> TensorBatch:
        """n-step (double) Q targets once per replayed batch, from the target network."""
        next_batch = {Columns.OBS: batch[Columns.NEXT_OBS]}
        with torch.no_grad():
            next_q_target = self.target_modules[module_id].forward_train(next_batch)[Columns.QF_PREDS]
            next_q_online = None
            if self.config.double_q:
                next_q_online = self.module[module_id].forward_train(next_batch)[Columns.QF_PREDS]
            discounts = batch.get(Columns.N_STEP_DISCOUNT)
            if discounts is None:
                discounts = torch.full_like(batch[Columns.REWARDS], self.config.gamma)
            batch[Columns.VALUE_TARGETS] = q_targets(
                batch[Columns.REWARDS].float(), batch[Columns.TERMINATEDS], discounts.float(), next_q_target,
                next_q_online, batch.get(Columns.NEXT_ACTION_MASK),
            )
        return batch

    def compute_loss_for_module(self, module_id: str, module: RLModule, batch: TensorBatch,
                                fwd_out: TensorBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        q_selected = fwd_out[Columns.QF_PREDS].gather(-1, batch[Columns.ACTIONS].long().unsqueeze(-1)).squeeze(-1)
        targets = batch[Columns.VALUE_TARGETS]
        td_error = q_selected - targets
        if self.config.td_error_loss_fn == "huber":
            per_row = F.smooth_l1_loss(q_selected, targets, reduction="none")
        else:
            per_row = 0.5 * td_error ** 2
        weights = batch.get(Columns.WEIGHTS)
        loss = (per_row * weights).mean() if weights is not None else per_row.mean()
        if Columns.BATCH_INDEXES in batch:
            self._td_errors.setdefault(module_id, []).append(
                (batch[Columns.BATCH_INDEXES].cpu().numpy(), td_error.detach().cpu().numpy())
            )
        return loss, {
            "qf_loss": loss.detach(), "qf_mean": q_selected.detach().mean(), "qf_max": q_selected.detach().max(),
            "qf_target_mean": targets.mean(), "td_error_mean": td_error.detach().abs().mean(),
        }

    def pop_td_errors(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(replay slots, TD errors) of the rows updated since the last call, by module id."""
        out = {mid: (np.concatenate([i for i, _ in parts]), np.concatenate([t for _, t in parts]))
               for mid, parts in self._td_errors.items() if parts}
        self._td_errors = {}
        return out

    # ------------------------------------------------------------------ per training step
    def set_epsilon(self, epsilon: float) -> None:
        for mid in self.module_ids_to_train:
            self.module[mid].epsilon.fill_(epsilon)

    def after_training_step(self, num_env_steps_sampled_lifetime: int) -> dict[str, float]:
        """Set epsilon from the schedule; update the targets (soft with tau, else by period)."""
        epsilon = epsilon_at(self.config.epsilon, num_env_steps_sampled_lifetime)
        self.set_epsilon(epsilon)
        updated = False
        if self.config.tau is not None:
            for mid, target in self.target_modules.items():
                update_target(target, self.module[mid], self.config.tau)
            updated = True
        elif num_env_steps_sampled_lifetime - self._last_target_update >= self.config.target_network_update_freq:
            for mid, target in self.target_modules.items():
                update_target(target, self.module[mid], 1.0)
            self._last_target_update = num_env_steps_sampled_lifetime
            updated = True
        return {"epsilon": epsilon, "target_updated": float(updated)}

    # ------------------------------------------------------------------ checkpoints
    def get_extra_state(self) -> dict[str, Any]:
        return {
            "target_modules": {mid: {k: v.detach().to("cpu", copy=True) for k, v in t.state_dict().items()}
                               for mid, t in self.target_modules.items()},
            "last_target_update": self._last_target_update,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        for mid, target_state in state.get("target_modules", {}).items():
            if mid in self.target_modules:
                self.target_modules[mid].load_state_dict({k: v.to(self.device) for k, v in target_state.items()})
        self._last_target_update = int(state.get("last_target_update", 0))
