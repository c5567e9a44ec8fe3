"""Iterated rock-paper-scissors: a main agent against three one-move bots, whose ratings form a cycle."""

from marl_arena.algorithms import PPOConfig
from marl_arena.league.league_config import LeagueConfig
from marl_arena_envs.games import PaperOnly, RockOnly, ScissorsOnly

ITERATIONS = 20


def make_config(directory: str) -> LeagueConfig:
    trainer = (
        PPOConfig()
        .training(train_batch_size_per_learner=1000, minibatch_size=128, num_epochs=5, gamma=0.9, lr=1e-3,
                  entropy_coeff=0.01)
        .env_runners(num_envs_per_env_runner=8)
        .rl_module(model_config={"fcnet_hiddens": [64, 64]})
    )
    return (
        LeagueConfig()
        .environment("games:rock_paper_scissors", env_config={"num_rounds": 10})
        .trainer(trainer)
        .roster(main_agents=1, scripted={"rock": RockOnly, "paper": PaperOnly, "scissors": ScissorsOnly})
        .matchmaking("uniform")
        .snapshots(win_rate=0.7, min_games=200)
        .store(directory)
    )
