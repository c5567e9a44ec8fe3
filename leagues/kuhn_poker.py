"""Kuhn poker (OpenSpiel): self-play PPO with a frozen snapshot every 8k env steps.

The learning rate anneals (``TRAINING``, an RLlib-style schedule over sampled env steps,
``marl_arena.algorithms.schedules``): self-play PPO at a fixed rate keeps circling the
equilibrium, so its final policy is as exploitable as wherever the circle happens to be
when training stops (0.075-0.145 after 120 s at lr 3e-4 and entropy 0.1, on three seeds).
Large steps early, then small ones, shrink the circle; a large entropy bonus held
throughout keeps the circle's centre (the entropy-regularised equilibrium) stable: letting
it fall with the rate left the policy at 0.05-0.13. benchmarks/league_exploitability.py
measures the main agent and its pool's Nash mixture (``League.pool_mixture``) on the same
run, and records the runs that chose these values; the README's benchmark table has the
figures. AlphaStar's matchmaking with exploiters
(``.roster(main_exploiters=1).matchmaking("alphastar")``) did worse there.

``make_psro_config`` is PSRO on the same game (``marl_arena.league.psro``): the same PPO
trainer as the oracle, with a faster learning rate and a smaller entropy bonus so that
each epoch's policy comes closer to a best response; benchmarks/league_psro.py measures it
against OpenSpiel's psro_v2 and NFSP.
"""

from marl_arena.algorithms import PPOConfig
from marl_arena.algorithms.schedules import Schedule
from marl_arena.league.league_config import LeagueConfig

ITERATIONS = 100
TRAINING = {"lr": [[0, 1e-3], [80_000, 1e-4]], "entropy_coeff": 0.2}
"""The learning rate from 1e-3 to 1e-4 over the first 80k env steps (20 iterations), then held."""


def make_config(directory: str) -> LeagueConfig:
    return poker_league("open_spiel:kuhn_poker", directory, **TRAINING).snapshots(win_rate=None, every_n_steps=8_000)


def make_psro_config(directory: str, meta_solver: str = "nash") -> LeagueConfig:
    """PSRO with a PPO oracle: one policy joins the pool every 5 iterations (20k env steps)."""
    config = poker_league("open_spiel:kuhn_poker", directory, lr=1e-3, entropy_coeff=0.02)
    return (config.matchmaking("psro", meta_solver=meta_solver, oracle_iterations=5)
            .snapshots(win_rate=None, every_n_steps=None))


def poker_league(game: str, directory: str, lr: Schedule, entropy_coeff: Schedule) -> LeagueConfig:
    """The poker leagues' shared set-up (kuhn and leduc differ in the game, the learning rate and the entropy bonus)."""
    trainer = (
        PPOConfig()
        .training(train_batch_size_per_learner=4000, minibatch_size=256, num_epochs=10, gamma=1.0, lr=lr,
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
