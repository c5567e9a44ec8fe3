"""Kuhn poker (OpenSpiel): a main agent, a main exploiter, AlphaStar matchmaking."""

from marl_arena.algorithms import PPOConfig
from marl_arena.core.scripted import RandomModule
from marl_arena.league.league_config import LeagueConfig

ITERATIONS = 50


def make_config(directory: str) -> LeagueConfig:
    return poker_league("open_spiel:kuhn_poker", directory)


def poker_league(game: str, directory: str) -> LeagueConfig:
    """The poker leagues' shared set-up (kuhn and leduc differ only in the game)."""
    trainer = (
        PPOConfig()
        .training(train_batch_size_per_learner=4000, minibatch_size=256, num_epochs=10, gamma=1.0, lr=3e-4,
                  entropy_coeff=0.2, lambda_=1.0)
        .env_runners(num_envs_per_env_runner=8)
        .rl_module(model_config={"fcnet_hiddens": [64, 64]})
    )
    return (
        LeagueConfig()
        .environment(game)
        .trainer(trainer)
        .roster(main_agents=1, main_exploiters=1, scripted={"random": RandomModule})
        .matchmaking("alphastar")
        .snapshots(win_rate=0.7, min_games=2000, every_n_steps=200_000)
        .store(directory)
    )
