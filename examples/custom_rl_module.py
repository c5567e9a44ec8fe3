"""A user-written RLModule: a residual CNN whose trunk feeds both the policy and the value head.

The default modules cover MLPs and plain CNNs (``conv_filters``); any other architecture is a
``RLModule`` subclass. PPO needs three things of it: ``forward_train`` returning action
distribution inputs and value predictions, ``compute_values`` for GAE, and
``action_distribution``. Extra settings live in a ``DefaultModelConfig`` subclass, so
``.rl_module(rl_module_spec=RLModuleSpec(module_class=..., model_config={...}))`` checks them
like the default fields.

Here the module learns tic-tac-toe (3x3 board planes) against OpenSpiel's random player; a
greedy untrained policy wins a little over half its games moving first:

    python examples/custom_rl_module.py            # about half a minute
    python examples/custom_rl_module.py --smoke    # two tiny iterations: it runs, it does not learn much
"""

from __future__ import annotations

import argparse
import dataclasses

import gymnasium as gym
import torch
from torch import nn

from marl_arena.algorithms import PPOConfig
from marl_arena.core import Columns, DefaultModelConfig, RLModule, RLModuleSpec
from marl_arena.core.actor_critic import apply_action_mask
from marl_arena.core.distributions import ActionDistribution, Categorical
from marl_arena_envs.openspiel import ModulePolicy
from marl_arena_envs.openspiel.evaluation import play_against_random

GAME = "tic_tac_toe"


@dataclasses.dataclass(kw_only=True)
class ResidualCNNConfig(DefaultModelConfig):
    """The default fields plus the residual tower's shape."""

    channels: int = 32
    """Feature planes in every layer of the tower."""
    num_blocks: int = 2
    """Residual blocks after the first convolution."""

    def __post_init__(self):
        super().__post_init__()
        if self.channels < 1 or self.num_blocks < 0:
            raise ValueError(f"ResidualCNNConfig needs channels >= 1 and num_blocks >= 0, got "
                             f"channels={self.channels}, num_blocks={self.num_blocks}.")


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions and a skip connection (He et al., 2016)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


class ResidualCNNModule(RLModule):
    """A residual tower over HxWxC board planes; the policy and value heads share it."""

    model_config_class = ResidualCNNConfig

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 model_config: ResidualCNNConfig | dict | None = None, inference_only: bool = False):
        super().__init__(observation_space, action_space, model_config, inference_only)
        if len(observation_space.shape) != 3 or not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(f"ResidualCNNModule reads HxWxC planes and picks Discrete actions; got "
                             f"{observation_space} and {action_space}.")
        height, width, planes = observation_space.shape
        cfg = self.model_config
        self.trunk = nn.Sequential(nn.Conv2d(planes, cfg.channels, 3, padding=1), nn.ReLU(),
                                   *(ResidualBlock(cfg.channels) for _ in range(cfg.num_blocks)), nn.Flatten())
        features = cfg.channels * height * width
        self.pi = nn.Linear(features, int(action_space.n))
        self.vf = nn.Linear(features, 1)

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        # Rows may arrive flattened (offline files, ONNX); the trunk wants NCHW.
        return self.trunk(obs.reshape(-1, *self.observation_space.shape).permute(0, 3, 1, 2))

    def forward_inference(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {Columns.ACTION_DIST_INPUTS: apply_action_mask(self.pi(self._features(batch[Columns.OBS])), batch)}

    def forward_exploration(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.forward_inference(batch)

    def forward_train(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        features = self._features(batch[Columns.OBS])  # one trunk pass for both heads
        return {Columns.ACTION_DIST_INPUTS: apply_action_mask(self.pi(features), batch),
                Columns.VF_PREDS: self.vf(features).squeeze(-1)}

    def compute_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self.vf(self._features(obs)).squeeze(-1)

    def action_distribution(self, dist_inputs: torch.Tensor) -> ActionDistribution:
        return Categorical(dist_inputs)


def make_config(smoke: bool = False, seed: int = 0) -> PPOConfig:
    batch = 256 if smoke else 512
    return (
        PPOConfig()
        .environment(f"open_spiel:{GAME}", env_config={"opponents": {1: "random"}})
        .env_runners(num_envs_per_env_runner=8)
        .training(train_batch_size_per_learner=batch, minibatch_size=128, num_epochs=4, lr=1e-3)
        .rl_module(rl_module_spec=RLModuleSpec(module_class=ResidualCNNModule,
                                               model_config={"channels": 16 if smoke else 32, "num_blocks": 2}))
        .debugging(seed=seed)
    )


def main(smoke: bool = False, iterations: int | None = None, games: int = 100) -> dict:
    """Train, and return the win rate against random (moving first) before and after."""
    algo = make_config(smoke).build_algo()
    try:
        before = play_against_random(ModulePolicy.from_algorithm(algo), GAME, seat=0, games=games)
        for _ in range(iterations if iterations is not None else (2 if smoke else 10)):
            result = algo.train()
        after = play_against_random(ModulePolicy.from_algorithm(algo), GAME, seat=0, games=games)
        return {"module": algo.get_module(), "win_rate_before": before["win"], "win_rate_after": after["win"],
                "env_steps": result["num_env_steps_sampled_lifetime"]}
    finally:
        algo.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="two tiny iterations")
    args = parser.parse_args()
    out = main(smoke=args.smoke)
    print(f"{type(out['module']).__name__}: win rate against random {out['win_rate_before']:.2f} -> "
          f"{out['win_rate_after']:.2f} after {out['env_steps']} env steps")
