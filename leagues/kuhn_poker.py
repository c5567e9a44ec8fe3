"""Kuhn poker (OpenSpiel): self-play PPO with a frozen snapshot every 20k env steps.

The settings are those benchmarks/league_exploitability.py found best on two cores: the
Nash mixture of its snapshot pool (``League.pool_mixture``) is far less exploitable and
steadier than the main agent itself, which keeps oscillating (the README's benchmark table
has the measured figures). AlphaStar's matchmaking with exploiters
(``.roster(main_exploiters=1).matchmaking("alphastar")``) did worse there.
"""

from marl_arena.algorithms import PPOConfig
from marl_arena.league.league_config import LeagueConfig

ITERATIONS = 100


def make_config(directory: str) -> LeagueConfig:
    return poker_league("open_spiel:kuhn_poker", directory, entropy_coeff=0.1)


def poker_league(game: str, directory: str, entropy_coeff: float) -> LeagueConfig:
    """The poker leagues' shared set-up (kuhn and leduc differ in the game and the entropy bonus)."""
    trainer = (
        PPOConfig()
        .training(train_batch_size_per_learner=4000, minibatch_size=256, num_epochs=10, gamma=1.0, lr=3e-4,
                  entropy_coeff=entropy_coeff, lambda_=1.0)
        .env_runners(num_envs_per_env_runner=8)
        .rl_module(model_config={"fcnet_hiddens": [64, 64]})
    )
    return (
        LeagueConfig()
        .environment(game)
        .trainer(trainer)
        .roster(main_agents=1)
        .matchmaking("self_play")
        .snapshots(win_rate=None, every_n_steps=20_000)
        .store(directory)
    )
