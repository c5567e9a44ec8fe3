"""DreamerV3's learner: one update trains the world model on replayed (B, T) sequences, then the
actor and critic on a ``horizon_H``-step imagination rolled out from every replayed state.

Three optimizers, each over its own parameters and stepped by its own loss (the base
Learner's named-optimizer seam): the world model's prediction and KL losses, the actor's
REINFORCE loss with normalised advantages and an entropy bonus, and the critic's two-hot
loss towards lambda-returns plus its slow-EMA regulariser. The imagination runs without
gradients: DreamerV3's actor learns from REINFORCE for discrete and continuous actions alike,
so nothing needs to flow back through the world model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from marl_arena.algorithms.dreamerv3.dreamer_math import (
    kl_balanced_loss,
    lambda_returns,
    percentile_scale,
    two_hot_decode,
    two_hot_loss,
)
from marl_arena.algorithms.dreamerv3.dreamerv3_module import DreamerV3Module
from marl_arena.core.columns import Columns
from marl_arena.learners.learner import Learner, TensorBatch, adam


class DreamerV3Learner(Learner):
    def configure_optimizers_for_module(self, module_id: str, module: DreamerV3Module) -> dict[str, torch.optim.Optimizer]:
        config = self.config
        lrs = {"world_model": config.world_model_lr, "actor": config.actor_lr, "critic": config.critic_lr}
        return {name: adam(params, lr=lrs[name]) for name, params in module.parameter_groups().items()}

    def compute_loss_for_module(self, module_id: str, module: DreamerV3Module, batch: TensorBatch,
                                fwd_out: TensorBatch):
        wm_loss, wm_stats = self._world_model_loss(module, batch, fwd_out)
        actor_loss, critic_loss, ac_stats = self._actor_critic_loss(module, batch, fwd_out)
        stats = {**wm_stats, **ac_stats, "world_model_loss": wm_loss.detach(), "actor_loss": actor_loss.detach(),
                 "critic_loss": critic_loss.detach()}
        return {"world_model": wm_loss, "actor": actor_loss, "critic": critic_loss}, stats

    # ------------------------------------------------------------------ world model
    def _world_model_loss(self, module: DreamerV3Module, batch: TensorBatch, out: TensorBatch):
        config = self.config
        wm = module.world_model
        obs = batch[Columns.OBS]
        batch_size, length = obs.shape[:2]
        features = wm.features(out["h"], out["z"])
        flat = features.reshape(batch_size * length, -1)
        target = wm.preprocess(obs.reshape(batch_size * length, *obs.shape[2:]))
        decoded = wm.decoder(flat)
        decoder = (decoded - target).pow(2).reshape(batch_size * length, -1).sum(-1)
        reward = two_hot_loss(wm.reward_head(flat), batch[Columns.REWARDS].reshape(-1).float(), wm.bins)
        continues = 1.0 - batch[Columns.IS_TERMINAL].reshape(-1).float()
        cont = F.binary_cross_entropy_with_logits(wm.continue_head(flat).squeeze(-1), continues, reduction="none")
        prediction = decoder + reward + cont
        stats = {}
        if wm.mask_head is not None and Columns.ACTION_MASK in batch:
            mask = batch[Columns.ACTION_MASK].reshape(batch_size * length, -1).float()
            mask_loss = F.binary_cross_entropy_with_logits(wm.mask_head(flat), mask, reduction="none").sum(-1)
            prediction = prediction + mask_loss
            module.learns_action_mask.fill_(True)
            stats["action_mask_loss"] = mask_loss.mean().detach()
        kl, dyn, rep = kl_balanced_loss(out["post_logits"], out["prior_logits"], config.free_nats,
                                        config.kl_dynamics_scale, config.kl_representation_scale)
        loss = prediction.mean() + kl.mean()
        stats.update({"decoder_loss": decoder.mean().detach(), "reward_loss": reward.mean().detach(),
                      "continue_loss": cont.mean().detach(), "kl_dynamics": dyn.mean().detach(),
                      "kl_representation": rep.mean().detach()})
        return loss, stats

    # ------------------------------------------------------------------ imagination
    @torch.no_grad()
    def imagine(self, module: DreamerV3Module, h: torch.Tensor, z_index: torch.Tensor) -> dict[str, torch.Tensor]:
        """``horizon_H`` prior steps from N starting states: h (H+1, N, deter), z as class indices
        (H+1, N, latents), the actions taken (H, N, ...) and the predicted legal actions they were
        drawn under (None without masks)."""
        wm = module.world_model
        hs, zs, actions, legals = [h], [z_index], [], []
        for _ in range(self.config.horizon_H):
            legal = self._legal(module, h, z_index)
            inputs = module.policy_from_actor_out(wm.head_on_index(module.actor, h, z_index), legal)
            action = module.action_distribution(inputs).sample()
            h = wm.img_step_index(h, z_index, module.encode_actions(action))
            z_index = wm.sample_z_index(wm.prior_logits(h))
            hs.append(h)
            zs.append(z_index)
            actions.append(action)
            legals.append(legal)
        return {"h": torch.stack(hs), "z": torch.stack(zs), "actions": torch.stack(actions),
                "legal": None if legals[0] is None else torch.stack(legals)}

    @staticmethod
    def _legal(module: DreamerV3Module, h: torch.Tensor, z_index: torch.Tensor) -> torch.Tensor | None:
        wm = module.world_model
        if wm.mask_head is None or not bool(module.learns_action_mask):
            return None
        return wm.legal_actions(wm.head_on_index(wm.mask_head, h, z_index))

    def _actor_critic_loss(self, module: DreamerV3Module, batch: TensorBatch, out: TensorBatch):
        config = self.config
        wm = module.world_model
        size = wm.size
        start_h = out["h"].detach().reshape(-1, size.deter)
        start_z = out["z"].detach().reshape(-1, size.num_latents, size.num_classes).argmax(-1)
        start_continue = 1.0 - batch[Columns.IS_TERMINAL].reshape(1, -1).float()
        starts = config.imagination_starts
        if starts is not None and starts < len(start_h):
            chosen = torch.randperm(len(start_h), device=start_h.device)[:starts]
            start_h, start_z, start_continue = start_h[chosen], start_z[chosen], start_continue[:, chosen]
        traj = self.imagine(module, start_h, start_z)
        steps, rows = traj["h"].shape[:2]
        h_all = traj["h"].reshape(steps * rows, -1)
        z_all = traj["z"].reshape(steps * rows, -1)

        def on_states(net):
            return wm.head_on_index(net, h_all, z_all).reshape(steps, rows, -1)

        with torch.no_grad():
            rewards = two_hot_decode(on_states(wm.reward_head)[1:], wm.bins)
            continues = torch.sigmoid(on_states(wm.continue_head)[1:].squeeze(-1))
            values = two_hot_decode(on_states(module.critic), wm.bins)
            slow_values = two_hot_decode(on_states(module.slow_critic)[:-1], wm.bins)
            returns = lambda_returns(rewards, continues, values, config.gamma, config.gae_lambda)
            weight = torch.cumprod(torch.cat([start_continue, continues[:-1]], 0), 0)
            scale, low, high = percentile_scale(returns, module.return_low, module.return_high,
                                                config.return_normalization_decay,
                                                first=not bool(module.return_stats_ready))
            module.return_low.copy_(low)
            module.return_high.copy_(high)
            module.return_stats_ready.fill_(True)
            advantages = (returns - values[:-1]) / scale
        horizon = steps - 1
        h_act, z_act = h_all[:horizon * rows], z_all[:horizon * rows]
        legal = None if traj["legal"] is None else traj["legal"].reshape(horizon * rows, -1)
        actor_out = wm.head_on_index(module.actor, h_act, z_act)
        dist = module.action_distribution(module.policy_from_actor_out(actor_out, legal))
        actions = traj["actions"].reshape(horizon * rows, *traj["actions"].shape[2:])
        logp = dist.logp(actions).reshape(horizon, rows)
        entropy = dist.entropy().reshape(horizon, rows)
        actor_loss = -(weight * (logp * advantages + config.entropy_scale * entropy)).mean()
        critic_logits = wm.head_on_index(module.critic, h_act, z_act)
        critic = two_hot_loss(critic_logits, returns.reshape(-1), wm.bins) \
            + config.critic_ema_regularizer * two_hot_loss(critic_logits, slow_values.reshape(-1), wm.bins)
        critic_loss = (weight.reshape(-1) * critic).mean()
        stats = {"actor_entropy": entropy.mean().detach(), "return_scale": scale,
                 "imagined_return_mean": returns.mean(), "imagined_reward_mean": rewards.mean(),
                 "imagined_value_mean": values.mean(), "imagined_continue_mean": continues.mean()}
        return actor_loss, critic_loss, stats

    # ------------------------------------------------------------------ after each update
    def after_update(self, module_id: str, metrics: dict[str, float]) -> dict[str, float]:
        """Move the slow critic towards the critic (an EMA of its weights)."""
        module: DreamerV3Module = self.module[module_id]
        decay = self.config.critic_ema_decay
        with torch.no_grad():
            for slow, fast in zip(module.slow_critic.parameters(), module.critic.parameters()):
                slow.lerp_(fast, 1.0 - decay)
        return {}
