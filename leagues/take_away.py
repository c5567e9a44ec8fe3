"""The smallest league: single-pile Nim, one main agent against its snapshots and a random bot.

It takes about a minute on two cores; the main agent learns the known optimal strategy
(leave a multiple of four) and climbs past the random bot and its own early snapshots.
"""

from marl_arena.algorithms import PPOConfig
from marl_arena.core.scripted import RandomModule
from marl_arena.league.league_config import LeagueConfig

ITERATIONS = 40


def make_config(directory: str) -> LeagueConfig:
    trainer = (
        PPOConfig()
        .training(train_batch_size_per_learner=1000, minibatch_size=128, num_epochs=5, gamma=1.0,
                  entropy_coeff=0.01, lr=1e-3)
        .env_runners(num_envs_per_env_runner=8)
        .rl_module(model_config={"fcnet_hiddens": [64, 64]})
    )
    return (
        LeagueConfig()
        .environment("games:take_away", env_config={"pile": 21})
        .trainer(trainer)
        .roster(main_agents=1, scripted={"random": RandomModule})
        .matchmaking("pfsp", weighting="hard")
        .snapshots(win_rate=0.7, min_games=200)
        .rating(k=16)
        .store(directory)
    )
