"""Kuhn poker (OpenSpiel): self-play PPO with a frozen snapshot every 20k env steps.

The settings are those benchmarks/league_exploitability.py found best on two cores: the
Nash mixture of its snapshot pool (``League.pool_mixture``) is far less exploitable and
steadier than the main agent itself, which keeps oscillating (the README's benchmark table
has the measured figures). AlphaStar's matchmaking with exploiters
(``.roster(main_exploiters=1).matchmaking("alphastar")``) did worse there.

``make_psro_config`` is PSRO on the same game (``marl_arena.league.psro``): the same PPO
trainer as the oracle, with a faster learning rate and a smaller entropy bonus so that
each epoch's policy comes closer to a best response; benchmarks/league_psro.py measures it
against OpenSpiel's psro_v2 and NFSP.
"""

from marl_arena.algorithms import PPOConfig
from marl_arena.league.league_config import LeagueConfig

ITERATIONS = 100


def make_config(directory: str) -> LeagueConfig:
    return poker_league("open_spiel:kuhn_poker", directory, entropy_coeff=0.1)


def make_psro_config(directory: str, meta_solver: str = "nash") -> LeagueConfig:
    """PSRO with a PPO oracle: one policy joins the pool every 5 iterations (20k env steps)."""
    config = poker_league("open_spiel:kuhn_poker", directory, entropy_coeff=0.02)
    config.trainer_config.training(lr=1e-3)
    return (config.matchmaking("psro", meta_solver=meta_solver, oracle_iterations=5)
            .snapshots(win_rate=None, every_n_steps=None))


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
