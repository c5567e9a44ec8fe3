"""A centralized critic (MAPPO, Yu et al. 2022): the actor reads its agent's own observation, the
value function reads more than that agent can see.

What the value function reads is an explicit batch column, ``Columns.CRITIC_OBS`` (and
``Columns.NEXT_CRITIC_OBS`` for bootstrapping), which the EnvRunner assembles after every env
step (``marl_arena.runners.critic_inputs``). Learners only read columns, so the module works
the same with local or Ray runners and with any number of learners, and acting never needs
anything but the agent's own observation: execution stays decentralized.

Configured the way an RLlib user configures a custom model, with a module class and its model
config in an ``RLModuleSpec``::

    RLModuleSpec(module_class=CentralizedCriticModule,
                 model_config={"critic_input": "team_obs", "team": ["agent_0", "agent_1", "agent_2"]})

A module class rather than a flag on the default module, because the critic needs an input
the default module's contract does not have (its value reads ``obs``), and its width comes
from the env (``critic_obs_dim`` is filled in when the specs are built from the env).
Members of a team that have their own policy modules can share one critic network with
``critic_from`` (``RLModule.share_submodules``).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import gymnasium as gym
import numpy as np
import torch

from marl_arena.core.actor_critic import ActorCriticModule
from marl_arena.core.columns import Columns
from marl_arena.core.encoders import build_encoder
from marl_arena.core.models import DefaultModelConfig, init_output_layer, mlp
from marl_arena.core.rl_module import MultiRLModule, TensorDict

CRITIC_INPUTS = ("team_obs", "state")


@dataclasses.dataclass(kw_only=True)
class CentralizedCriticConfig(DefaultModelConfig):
    """The default model fields plus what the value function reads."""

    critic_input: str = "team_obs"
    """``"team_obs"``: the agent's own observation, then each teammate's in ``team`` order (a
    teammate without an observation at that step, because it is done or has not appeared yet,
    fills its slot with zeros); own first, so one critic shared by the team still knows whose
    value it estimates. ``"state"``: the env's global ``state()`` (PettingZoo's), the same for
    every agent."""
    team: Sequence | None = None
    """Agent ids whose observations ``"team_obs"`` reads; None: every possible agent of the env."""
    critic_obs_dim: int | None = None
    """Width of the critic input; None: taken from the env when the module specs are built."""
    critic_from: str | None = None
    """Module id whose critic (value trunk and head) this module uses instead of its own, so
    team members with their own policies learn one value function; None: its own critic."""

    def __post_init__(self):
        super().__post_init__()
        if self.critic_input not in CRITIC_INPUTS:
            raise ValueError(f"CentralizedCriticConfig.critic_input={self.critic_input!r} is not one of "
                             f"{list(CRITIC_INPUTS)}.")
        if self.vf_share_layers:
            raise ValueError("CentralizedCriticConfig.vf_share_layers=True cannot hold: the centralized critic "
                             "reads another input than the policy, so it needs its own trunk.")
        if getattr(self, "use_lstm", False):
            raise ValueError("CentralizedCriticConfig.use_lstm=True is not supported: the centralized critic "
                             "module is feed-forward.")
        if self.team is not None:
            if isinstance(self.team, (str, bytes)) or not isinstance(self.team, Sequence) or not self.team:
                raise ValueError(f"CentralizedCriticConfig.team={self.team!r} must be a non-empty list of agent "
                                 "ids, or None for every agent of the env.")
            if len(set(self.team)) != len(self.team):
                raise ValueError(f"CentralizedCriticConfig.team={list(self.team)!r} names an agent twice.")
        if self.critic_obs_dim is not None and (
                isinstance(self.critic_obs_dim, bool) or not isinstance(self.critic_obs_dim, int)
                or self.critic_obs_dim < 1):
            raise ValueError(f"CentralizedCriticConfig.critic_obs_dim={self.critic_obs_dim!r} must be a positive "
                             "int, or None to take it from the env.")


def critic_config(module: object) -> CentralizedCriticConfig | None:
    """The centralized-critic config of ``module``, or None for a module whose value reads ``obs``."""
    config = getattr(module, "model_config", None)
    return config if isinstance(config, CentralizedCriticConfig) else None


class CentralizedCriticModule(ActorCriticModule):
    """The default policy on the agent's observation, and a value function on ``Columns.CRITIC_OBS``.

    ``compute_values`` takes critic inputs, not observations; PPO's learner passes it the
    ``CRITIC_OBS`` column whenever a batch has one.
    """

    model_config_class = CentralizedCriticConfig

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 model_config: CentralizedCriticConfig | dict | None = None, inference_only: bool = False):
        super().__init__(observation_space, action_space, model_config, inference_only)
        cfg = self.model_config
        if inference_only:
            return
        if cfg.critic_obs_dim is None:
            raise ValueError(
                "CentralizedCriticModule needs model_config critic_obs_dim (the width of the critic input); it is "
                "filled in when the algorithm builds its module specs from the env. Without an env to probe "
                "(external simulators), set it in the model config."
            )
        critic_space = gym.spaces.Box(-np.inf, np.inf, shape=(cfg.critic_obs_dim,), dtype=np.float32)
        # Replaces the value trunk that ActorCriticModule built on the observation.
        self.vf_encoder = build_encoder(critic_space, cfg)
        self.vf = mlp(self.vf_encoder.output_dim, cfg.head_fcnet_hiddens, cfg.fcnet_activation, 1)
        init_output_layer(self.vf[-1], 1.0)

    def share_submodules(self, modules: MultiRLModule) -> None:
        owner = self.model_config.critic_from
        if owner is None or self.inference_only:
            return
        other = modules[owner]
        other_config = critic_config(other)
        if other_config is None or other.inference_only:
            raise ValueError(f"critic_from={owner!r}: module {owner!r} is a {type(other).__name__} without a "
                             "centralized critic; name a CentralizedCriticModule.")
        if other_config.critic_obs_dim != self.model_config.critic_obs_dim:
            raise ValueError(f"critic_from={owner!r}: its critic reads {other_config.critic_obs_dim} values, this "
                             f"module's critic input has {self.model_config.critic_obs_dim}.")
        self.vf_encoder = other.vf_encoder  # the same nn.Module objects: one set of parameters
        self.vf = other.vf

    def forward_train(self, batch: TensorDict) -> TensorDict:
        critic_obs = batch.get(Columns.CRITIC_OBS)
        if critic_obs is None:
            raise ValueError(
                f"CentralizedCriticModule's training batch has no {Columns.CRITIC_OBS!r} column; EnvRunners add it "
                f"for modules of this class (batch columns: {sorted(batch)})."
            )
        return {
            Columns.ACTION_DIST_INPUTS: self._dist_inputs(self.encoder(batch[Columns.OBS]), batch),
            Columns.VF_PREDS: self.compute_values(critic_obs),
        }

    def compute_values(self, critic_obs: torch.Tensor) -> torch.Tensor:
        """State values from critic inputs (``Columns.CRITIC_OBS`` rows), one per row."""
        self._require_value_head()
        width = self.model_config.critic_obs_dim
        if critic_obs.reshape(len(critic_obs), -1).shape[1] != width:
            raise ValueError(
                f"CentralizedCriticModule.compute_values reads critic inputs ({Columns.CRITIC_OBS!r}) of width "
                f"{width}, got rows of shape {tuple(critic_obs.shape[1:])}: observations instead? Only learners "
                "that read the critic column (PPO) train this module."
            )
        return self.vf(self.vf_encoder(critic_obs)).squeeze(-1)
