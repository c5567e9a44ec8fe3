"""CQL's learner: SAC's learner, with the conservative penalty added to the critic loss and a
behaviour-cloning actor loss for the first ``bc_iters`` updates.

Box actions: the penalty's candidates per row are ``num_actions`` uniform actions, and as
many from the current policy at s and at s' (each scored by Q at s, as in the paper's code),
with their log-densities as importance weights. Discrete actions: every legal action, exactly.

With ``lagrangian=True`` the penalty's weight is alpha' * min_q_weight, and alpha' is learned
by its own optimizer (at ``critic_lr``) to hold the penalty at ``lagrangian_thresh``. alpha'
is learner state, not module state: it never acts, so runners, snapshots and SAC (which can
start from a CQL checkpoint's weights) never see it; checkpoints carry it as extra state.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from marl_arena.algorithms.cql.cql_losses import cql_penalty
from marl_arena.algorithms.sac.sac_learner import SACLearner, _legal
from marl_arena.algorithms.sac.sac_losses import discrete_entropy
from marl_arena.core.columns import Columns
from marl_arena.core.rl_module import RLModule
from marl_arena.core.sac_module import SACModule
from marl_arena.learners.learner import TensorBatch

MAX_LOG_ALPHA_PRIME = math.log(1e6)
"""alpha' is clipped at 1e6, as in the paper's code."""


class CQLLearner(SACLearner):
    def __init__(self, config, module_spec, device: str = "cpu"):
        # configure_optimizers_for_module (called by the base class) creates each module's alpha'.
        self.log_alpha_primes: dict[str, nn.Parameter] = {}
        super().__init__(config, module_spec, device)
        self.num_updates = {mid: 0 for mid in self.module_ids_to_train}
        """Gradient steps per module so far: the first ``bc_iters`` clone the data's actions."""

    def configure_optimizers_for_module(self, module_id: str, module: SACModule) -> dict[str, torch.optim.Optimizer]:
        """SAC's three optimizers, and with ``lagrangian`` a fourth for log(alpha') starting at alpha' = 1."""
        optimizers = super().configure_optimizers_for_module(module_id, module)
        if self.config.lagrangian:
            log_alpha_prime = nn.Parameter(torch.zeros((), device=self.device))
            self.log_alpha_primes[module_id] = log_alpha_prime
            optimizers["alpha_prime"] = torch.optim.Adam([log_alpha_prime], lr=self.config.critic_lr)
        return optimizers

    def backup_alpha(self, module: SACModule) -> torch.Tensor:
        """0 with ``deterministic_backup``: targets without the next state's entropy term."""
        alpha = module.log_alpha.exp()
        return torch.zeros_like(alpha) if self.config.deterministic_backup else alpha

    # ------------------------------------------------------------------ losses
    def compute_loss_for_module(self, module_id: str, module: RLModule, batch: TensorBatch,
                                fwd_out: TensorBatch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        config = self.config
        losses, stats = super().compute_loss_for_module(module_id, module, batch, fwd_out)
        q_all = torch.stack([fwd_out[k] for k in (Columns.QF_PREDS, Columns.QF_TWIN_PREDS) if k in fwd_out])
        if module.discrete:
            q_data = q_all.gather(-1, batch[Columns.ACTIONS].long().view(1, -1, 1).expand(len(q_all), -1, 1))
            legal = _legal(batch, Columns.ACTION_MASK, q_all[0])
            penalty = cql_penalty(q_data.squeeze(-1), q_all.masked_fill(~legal, float("-inf")), config.temperature)
        else:
            q_candidates, log_proposal = self._sampled_candidates(module, batch)
            penalty = cql_penalty(q_all, q_candidates, config.temperature, log_proposal)
        weighted = config.min_q_weight * penalty
        if config.lagrangian:
            alpha_prime = self.log_alpha_primes[module_id].clamp(max=MAX_LOG_ALPHA_PRIME).exp()
            # The gap is averaged over data-parallel learners, so that their alpha' stay equal.
            count, total = self.sum_over_learners(torch.stack([weighted.new_tensor(1.0), weighted.detach().mean()]))
            losses["alpha_prime"] = -alpha_prime * (total / count - config.lagrangian_thresh)
            losses["critic"] = losses["critic"] + (alpha_prime.detach() * (weighted - config.lagrangian_thresh)).sum()
            stats.update(alpha_prime_value=alpha_prime.detach(), alpha_prime_loss=losses["alpha_prime"].detach())
        else:
            losses["critic"] = losses["critic"] + weighted.sum()
        cloning = self.num_updates[module_id] < config.bc_iters
        if cloning:
            losses["actor"] = self._cloning_loss(module, batch, fwd_out)
        self.num_updates[module_id] += 1
        stats.update(cql_penalty=penalty.detach().mean(), actor_loss=losses["actor"].detach(),
                     critic_loss=losses["critic"].detach(), bc_phase=torch.tensor(float(cloning)))
        return losses, stats

    @torch.no_grad()
    def _sampled_candidates(self, module: SACModule, batch: TensorBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Q of the Box penalty's candidates, (num_q, rows, 3 n), and their log-densities, (rows, 3 n).

        Only the critics learn from the penalty, so the candidates are sampled without gradients;
        only Q of them is computed with gradients (``enable_grad``).
        """
        obs = batch[Columns.OBS]
        rows, n = len(obs), self.config.num_actions
        space: gym.spaces.Box = module.action_space
        low = torch.as_tensor(space.low.reshape(-1), dtype=obs.dtype, device=obs.device)
        high = torch.as_tensor(space.high.reshape(-1), dtype=obs.dtype, device=obs.device)
        uniform = low + (high - low) * torch.rand(rows, n, len(low), device=obs.device, dtype=obs.dtype)
        log_uniform = -torch.log(high - low).sum().expand(rows, n)
        actions, log_densities = [uniform], [log_uniform]
        for states in (obs, batch[Columns.NEXT_OBS]):
            dist = module.action_distribution(module.policy_inputs({Columns.OBS: states.repeat_interleave(n, dim=0)}))
            sampled, logp = dist.rsample_with_logp()
            actions.append(sampled.view(rows, n, -1))
            log_densities.append(logp.view(rows, n))
        candidates = torch.cat(actions, dim=1)
        with torch.enable_grad():  # also for the view: under no_grad it would cut the graph
            q_values = module.critic(obs.repeat_interleave(3 * n, dim=0), candidates.reshape(rows * 3 * n, -1))
            q_values = q_values.view(len(q_values), rows, 3 * n)
        return q_values, torch.cat(log_densities, dim=1)

    def _cloning_loss(self, module: SACModule, batch: TensorBatch, fwd_out: TensorBatch) -> torch.Tensor:
        """mean of -log pi(a_data|s) - alpha H(pi(.|s)): the data's actions made likely, entropy kept."""
        alpha = module.log_alpha.exp().detach()
        dist = module.action_distribution(fwd_out[Columns.ACTION_DIST_INPUTS])
        data_logp = dist.logp(batch[Columns.ACTIONS])
        if module.discrete:
            entropy = discrete_entropy(dist.logits, _legal(batch, Columns.ACTION_MASK, dist.logits))
            return (-data_logp - alpha * entropy).mean()
        _, logp = dist.rsample_with_logp()
        return (alpha * logp - data_logp).mean()

    # ------------------------------------------------------------------ restarts and checkpoints
    def reset_module(self, module_id: str) -> None:
        """SAC's reset (which also gives alpha' a fresh start), and the cloning phase again."""
        super().reset_module(module_id)
        self.num_updates[module_id] = 0

    def get_extra_state(self) -> dict[str, Any]:
        return {**super().get_extra_state(), "num_updates": dict(self.num_updates),
                "log_alpha_primes": {mid: p.detach().cpu().clone() for mid, p in self.log_alpha_primes.items()}}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.num_updates.update(state.get("num_updates", {}))
        with torch.no_grad():
            for mid, value in state.get("log_alpha_primes", {}).items():
                if mid in self.log_alpha_primes:
                    self.log_alpha_primes[mid].copy_(value.to(self.device))
