"""Two module ids, two agents, one trunk: sub-networks shared between modules explicitly.

In tic-tac-toe self-play, seat 0 (x) plays module ``"x"`` and seat 1 (o) plays module
``"o"``. Each has its own policy and value heads, but both read the board through one
convolutional trunk: what one seat learns about the board, the other sees too.

The sharing is explicit: module ``"o"``'s config names ``trunk_from="x"``, and its
``share_submodules`` (which ``MultiRLModuleSpec.build`` calls once every module of the set
exists, in the learner and in every runner) replaces its own trunk with ``"x"``'s. Each
module keeps its own optimizer, so the shared trunk takes one step from each module's
loss per update; checkpoints hold the trunk under both ids, with the same values.

    python examples/shared_trunk_modules.py            # about half a minute
    python examples/shared_trunk_modules.py --smoke    # two tiny iterations
"""

from __future__ import annotations

import argparse
import dataclasses

import gymnasium as gym
import torch
from torch import nn

from marl_arena.algorithms import PPOConfig
from marl_arena.core import Columns, DefaultModelConfig, MultiRLModule, RLModule, RLModuleSpec
from marl_arena.core.actor_critic import apply_action_mask
from marl_arena.core.distributions import ActionDistribution, Categorical
from marl_arena.core.encoders import build_encoder
from marl_arena_envs.openspiel import ModulePolicy
from marl_arena_envs.openspiel.evaluation import play_both_seats_against_random

GAME = "tic_tac_toe"
SEAT_MODULES = {0: "x", 1: "o"}


@dataclasses.dataclass(kw_only=True)
class SharedTrunkConfig(DefaultModelConfig):
    """The default encoder fields (``conv_filters`` shapes the trunk) plus whose trunk to use."""

    trunk_from: str | None = None
    """Module id whose trunk this module uses instead of its own; None: it owns its trunk."""


class TrunkAndHeadsModule(RLModule):
    """The default encoder as a trunk, with a policy head and a value head on it."""

    model_config_class = SharedTrunkConfig

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 model_config: SharedTrunkConfig | dict | None = None, inference_only: bool = False):
        super().__init__(observation_space, action_space, model_config, inference_only)
        self.trunk = build_encoder(observation_space, self.model_config)
        self.pi = nn.Linear(self.trunk.output_dim, int(action_space.n))
        self.vf = nn.Linear(self.trunk.output_dim, 1)

    def share_submodules(self, modules: MultiRLModule) -> None:
        owner = self.model_config.trunk_from
        if owner is not None:
            self.trunk = modules[owner].trunk  # the same nn.Module object: one set of parameters

    def forward_inference(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {Columns.ACTION_DIST_INPUTS: apply_action_mask(self.pi(self.trunk(batch[Columns.OBS])), batch)}

    def forward_exploration(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.forward_inference(batch)

    def forward_train(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        features = self.trunk(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: apply_action_mask(self.pi(features), batch),
                Columns.VF_PREDS: self.vf(features).squeeze(-1)}

    def compute_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self.vf(self.trunk(obs)).squeeze(-1)

    def action_distribution(self, dist_inputs: torch.Tensor) -> ActionDistribution:
        return Categorical(dist_inputs)


def make_config(smoke: bool = False, seed: int = 0) -> PPOConfig:
    trunk = {"conv_filters": [[32, 3, 1]], "fcnet_hiddens": [64]}
    batch = 256 if smoke else 1024
    return (
        PPOConfig()
        .environment(f"open_spiel:{GAME}")
        .env_runners(num_envs_per_env_runner=8)
        .training(train_batch_size_per_learner=batch, minibatch_size=128, num_epochs=4, lr=1e-3)
        .multi_agent(
            policies={"x": RLModuleSpec(module_class=TrunkAndHeadsModule, model_config=trunk),
                      "o": RLModuleSpec(module_class=TrunkAndHeadsModule, model_config={**trunk, "trunk_from": "x"})},
            policy_mapping_fn=lambda agent_id, episode=None, **kw: SEAT_MODULES[agent_id],
        )
        .debugging(seed=seed)
    )


def evaluate(algo, games: int) -> dict[str, float]:
    """Win rate against random of each module in its own seat (x moves first)."""
    modules = {module_id: algo.get_module(module_id) for module_id in SEAT_MODULES.values()}
    policy = ModulePolicy(GAME, modules, player_to_module=SEAT_MODULES)
    both = play_both_seats_against_random(policy, GAME, games, seed=1)
    return {SEAT_MODULES[int(seat[-1])]: result["win"] for seat, result in both.items()}


def main(smoke: bool = False, iterations: int | None = None, games: int = 100) -> dict:
    """Train both seats by self-play; return the modules and their win rates against random before and after."""
    algo = make_config(smoke).build_algo()
    try:
        before = evaluate(algo, games)
        for _ in range(iterations if iterations is not None else (2 if smoke else 10)):
            algo.train()
        return {"modules": {mid: algo.get_module(mid) for mid in SEAT_MODULES.values()},
                "win_rate_before": before, "win_rate_after": evaluate(algo, games)}
    finally:
        algo.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="two tiny iterations")
    args = parser.parse_args()
    out = main(smoke=args.smoke)
    shared = out["modules"]["x"].trunk is out["modules"]["o"].trunk
    print(f"one trunk object for 'x' and 'o': {shared}; win rates against random "
          f"{out['win_rate_before']} -> {out['win_rate_after']}")
