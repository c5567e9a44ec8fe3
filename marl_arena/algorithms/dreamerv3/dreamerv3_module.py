"""DreamerV3Module: world model, actor, critic and slow critic in one RLModule.

Acting is recurrent through the runners' state contract (``get_initial_state``,
``Columns.STATE_IN``/``STATE_OUT``): the state row is [h, z, previous action, started], kept by
the runner per agent and episode. A forward pass without a state acts from the initial
state, as on an episode's first step.

The actor and critic read the features [h, z]; the critic and the slow critic predict
two-hot symlog value bins. The slow critic and the return-percentile EMAs are buffers, so
checkpoints and snapshots carry them.
"""

from __future__ import annotations

import copy
import dataclasses

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from marl_arena.algorithms.dreamerv3.dreamer_math import unimix
from marl_arena.algorithms.dreamerv3.world_model import MODEL_SIZES, UNIMIX, NUM_BINS, WorldModel, head
from marl_arena.core.columns import Columns
from marl_arena.core.distributions import ActionDistribution, distribution_for_space
from marl_arena.core.models import DefaultModelConfig
from marl_arena.core.rl_module import RLModule, TensorDict

_MIN_STD, _MAX_STD = 0.1, 1.0


@dataclasses.dataclass(kw_only=True)
class DreamerModelConfig(DefaultModelConfig):
    """The default model fields plus DreamerV3's named size; ``DreamerV3Config`` fills it from ``model_size``."""

    model_size: str = "XS"
    """One of ``MODEL_SIZES``: the widths of the GRU, the MLPs and the CNN."""

    def __post_init__(self):
        super().__post_init__()
        if self.model_size not in MODEL_SIZES:
            raise ValueError(f"DreamerModelConfig.model_size={self.model_size!r} is not one of {list(MODEL_SIZES)}.")


class DreamerV3Module(RLModule):
    """World model, actor and critics over the RSSM features; Discrete (masked) or Box actions."""

    model_config_class = DreamerModelConfig

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 model_config: DreamerModelConfig | dict | None = None, inference_only: bool = False):
        super().__init__(observation_space, action_space, model_config, inference_only)
        size = MODEL_SIZES[self.model_config.model_size]
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if not self.discrete and not (isinstance(action_space, gym.spaces.Box)
                                      and np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise ValueError(f"DreamerV3 needs a Discrete or a bounded Box action space, got {action_space}.")
        self.action_dim = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        mask_dim = self.action_dim if self.discrete else 0
        self.world_model = WorldModel(observation_space, self.action_dim, size, mask_dim,
                                      self.model_config.conv_data_format == "channels_last")
        features = self.world_model.feature_dim
        self.actor = head(features, size, self.action_dim if self.discrete else 2 * self.action_dim)
        self.critic = head(features, size, NUM_BINS, zero_init=True)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.register_buffer("return_low", torch.zeros(()))
        self.register_buffer("return_high", torch.zeros(()))
        self.register_buffer("return_stats_ready", torch.zeros((), dtype=torch.bool))
        # Whether replayed data carried action masks: only then is the mask head trained, and only
        # then do imagined states draw actions under its predicted mask.
        self.register_buffer("learns_action_mask", torch.zeros((), dtype=torch.bool))
        self._dist, _ = distribution_for_space(action_space, squashed=not self.discrete)
        if not self.discrete:
            self.register_buffer("action_low", torch.as_tensor(action_space.low.reshape(-1), dtype=torch.float32))
            self.register_buffer("action_high", torch.as_tensor(action_space.high.reshape(-1), dtype=torch.float32))

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """What each optimizer steps (the slow critic is an EMA of the critic, never trained)."""
        return {"world_model": list(self.world_model.parameters()), "actor": list(self.actor.parameters()),
                "critic": list(self.critic.parameters())}

    # ------------------------------------------------------------------ actions
    def encode_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions as the world model reads them: one-hot, or a Box scaled to [-1, 1]."""
        if self.discrete:
            return nn.functional.one_hot(actions.long(), self.action_dim).float()
        actions = actions.reshape(actions.shape[0], -1).float()
        return 2.0 * (actions - self.action_low) / (self.action_high - self.action_low) - 1.0

    def policy_inputs(self, features: torch.Tensor, legal: torch.Tensor | None) -> torch.Tensor:
        """Action distribution inputs at ``features``: logits with 1% unimix, illegal ones at the
        dtype's minimum; or a squashed Gaussian's mean and log std, std in [0.1, 1]."""
        return self.policy_from_actor_out(self.actor(features), legal)

    def policy_from_actor_out(self, out: torch.Tensor, legal: torch.Tensor | None) -> torch.Tensor:
        """``policy_inputs`` from the actor network's raw output."""
        if self.discrete:
            logits = unimix(out, UNIMIX)
            if legal is not None:
                logits = logits.masked_fill(~legal, torch.finfo(logits.dtype).min)
            return logits
        mean, raw_std = out.chunk(2, -1)
        std = _MIN_STD + (_MAX_STD - _MIN_STD) * torch.sigmoid(raw_std + 2.0)
        return torch.cat([mean, std.log()], -1)

    def action_distribution(self, dist_inputs: torch.Tensor) -> ActionDistribution:
        return self._dist(dist_inputs)

    # ------------------------------------------------------------------ forward passes
    def get_initial_state(self) -> torch.Tensor:
        """[h, z, previous action, started]: all zero, so the first step resets the RSSM."""
        wm = self.world_model
        return torch.zeros(wm.size.deter + wm.stoch_dim + self.action_dim + 1)

    def _act(self, batch: TensorDict, sample: bool) -> TensorDict:
        """One recurrent step: advance the RSSM with the observation, then choose the action here.

        The next step's GRU input needs this step's action, which the state must carry, so
        the module draws it itself and hands the runner a point mass on it (a one-hot of
        logits, or a squashed Gaussian of negligible width); the runner's draw then
        returns the same action.
        """
        obs = batch[Columns.OBS]
        state = batch.get(Columns.STATE_IN)
        if state is None:
            state = self.get_initial_state().expand(obs.shape[0], -1)
        wm = self.world_model
        h, z, prev_action, started = state.split([wm.size.deter, wm.stoch_dim, self.action_dim, 1], -1)
        h, z = wm.observe_step(h, z, prev_action, started.squeeze(-1) < 0.5, obs, sample)
        mask = batch.get(Columns.ACTION_MASK)
        inputs = self.policy_inputs(wm.features(h, z), None if mask is None else mask > 0)
        dist = self.action_distribution(inputs)
        actions = dist.sample() if sample else dist.deterministic_sample()
        encoded = self.encode_actions(actions)
        if self.discrete:
            point = torch.full_like(inputs, torch.finfo(inputs.dtype).min).masked_fill(encoded > 0, 0.0)
        else:
            point = torch.cat([torch.atanh(encoded.clamp(-1 + 1e-6, 1 - 1e-6)), torch.full_like(encoded, -20.0)], -1)
        return {Columns.ACTION_DIST_INPUTS: point,
                Columns.STATE_OUT: torch.cat([h, z, encoded, torch.ones_like(started)], -1)}

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        return self._act(batch, sample=True)

    def forward_inference(self, batch: TensorDict) -> TensorDict:
        return self._act(batch, sample=False)

    def forward_train(self, batch: TensorDict) -> TensorDict:
        """Posterior states of replayed (B, T) sequences; the learner imagines from them."""
        prev = batch[Columns.PREV_ACTIONS]
        batch_size, length = prev.shape[:2]
        encoded = self.encode_actions(prev.reshape(batch_size * length, *prev.shape[2:])).reshape(batch_size, length, -1)
        return self.world_model.observe(batch[Columns.OBS], encoded, batch[Columns.IS_FIRST])
