"""simple_tag (mpe2): a team of three predators against one prey, each side with a main agent and its snapshots.

A team league (``LeagueConfig.sides``): the three adversaries play one shared module, the prey
its own, and the sides are asymmetric, so a predator team only meets prey teams and each side
has its own leaderboard. The predators' trainer gives their shared module a centralized critic
(MAPPO: the value reads every agent's observation, the policy only its own); the prey trains
plain PPO. A side wins an episode by ``caught``: the predators when they touch the prey at
least once, the prey when it escapes the whole episode. Both mains freeze a snapshot every
20k env steps and draw opponents by PFSP over the other side's snapshots.
"""

from collections.abc import Mapping

from marl_arena.algorithms import PPOConfig
from marl_arena.core import RLModuleSpec
from marl_arena.core.centralized_critic import CentralizedCriticModule
from marl_arena.league.league_config import LeagueConfig

ITERATIONS = 50

ENV = "mpe2:simple_tag_v3"
ENV_CONFIG = {"max_cycles": 25}
PREDATORS = ["adversary_0", "adversary_1", "adversary_2"]
PREY = ["agent_0"]
MODEL = {"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"}


def caught(side_returns: Mapping[str, float]) -> float:
    """The predators' score: 1 when they caught the prey (each catch pays every predator +10), else 0."""
    return 1.0 if side_returns["predators"] > 0 else 0.0


def trainer(train_batch: int = 2000, minibatch: int = 256, epochs: int = 5,
            centralized_critic: bool = False) -> PPOConfig:
    """PPO for one side; ``centralized_critic``: the value reads every agent's observation (MAPPO)."""
    spec = (RLModuleSpec(module_class=CentralizedCriticModule, model_config={**MODEL, "critic_input": "team_obs"})
            if centralized_critic else RLModuleSpec(model_config=MODEL))
    return (
        PPOConfig()
        .training(train_batch_size_per_learner=train_batch, minibatch_size=minibatch, num_epochs=epochs, lr=7e-4,
                  gamma=0.99, lambda_=0.95, entropy_coeff=0.01, grad_clip=10.0)
        .env_runners(num_envs_per_env_runner=8)
        .rl_module(rl_module_spec=spec)
    )


def make_config(directory: str, **trainer_options) -> LeagueConfig:
    return (
        LeagueConfig()
        .environment(ENV, env_config=ENV_CONFIG)
        .trainer(trainer(**trainer_options))
        .sides({"predators": PREDATORS, "prey": PREY}, outcome=caught,
               trainers={"predators": trainer(centralized_critic=True, **trainer_options)})
        .roster(main_agents=1)
        .matchmaking("pfsp", weighting="squared")
        .snapshots(win_rate=None, every_n_steps=20_000)
        .store(directory)
    )
