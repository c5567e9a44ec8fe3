"""Kuhn poker (OpenSpiel): self-play PPO pulled towards a moving magnet (MMD), a frozen snapshot every 8k env steps.

Self-play PPO at a fixed rate keeps circling the equilibrium, so its final policy is as
exploitable as wherever the circle happens to be when training stops. An entropy bonus
held throughout shrinks the circle around the entropy-regularised equilibrium, whose
exploitability then stays (0.066-0.072 for the main agent with entropy 0.2). The learner
here is ``MagnetPPOLearner`` (``marl_arena.algorithms.ppo.magnet``, magnetic mirror descent):
the bonus becomes a KL pull towards a magnet policy that moves to the current policy every
10 learner updates (40k env steps), so the regularised equilibrium it settles on moves
towards a Nash equilibrium. The learning rate anneals (``TRAINING``, RLlib-style schedules
over sampled env steps, ``marl_arena.algorithms.schedules``). benchmarks/league_exploitability.py
measures the main agent and its pool's Nash mixture (``League.pool_mixture``) on the same
run, and records the runs that chose these values; the README's benchmark table has the
figures. AlphaStar's matchmaking with exploiters
(``.roster(main_exploiters=1).matchmaking("alphastar")``) did worse there.

``make_psro_config`` is PSRO on the same game (``marl_arena.league.psro``): the same PPO
trainer as the oracle, with a faster learning rate and a small entropy bonus instead of the
magnet, so that each epoch's policy comes closer to a best response; benchmarks/league_psro.py
measures it against OpenSpiel's psro_v2 and NFSP.
"""

from marl_arena.algorithms import PPOConfig
from marl_arena.algorithms.ppo.magnet import MagnetPPOLearner
from marl_arena.algorithms.schedules import Schedule
from marl_arena.league.league_config import LeagueConfig

ITERATIONS = 125
TRAINING = {"lr": [[0, 1e-3], [80_000, 1e-4], [400_000, 2e-5]], "entropy_coeff": 0.0}
"""The learning rate from 1e-3 to 1e-4 over the first 80k env steps (20 iterations), then to 2e-5 at 400k."""
MAGNET = {"magnet_coeff": 0.3, "magnet_update_interval": 10}
"""``MagnetPPOLearner``'s settings: the KL pull's weight, and learner updates between the magnet's moves."""


def make_config(directory: str) -> LeagueConfig:
    return (poker_league("open_spiel:kuhn_poker", directory, **TRAINING, magnet=MAGNET)
            .snapshots(win_rate=None, every_n_steps=8_000))


def make_psro_config(directory: str, meta_solver: str = "nash") -> LeagueConfig:
    """PSRO with a PPO oracle: one policy joins the pool every 5 iterations (20k env steps)."""
    config = poker_league("open_spiel:kuhn_poker", directory, lr=1e-3, entropy_coeff=0.02)
    return (config.matchmaking("psro", meta_solver=meta_solver, oracle_iterations=5)
            .snapshots(win_rate=None, every_n_steps=None))


def poker_league(game: str, directory: str, lr: Schedule, entropy_coeff: Schedule,
                 magnet: dict | None = None) -> LeagueConfig:
    """The poker leagues' shared set-up (they differ in the game, the learning rate, the entropy bonus and
    ``magnet``: ``MagnetPPOLearner``'s ``learner_config_dict``, or None for plain PPO)."""
    trainer = (
        PPOConfig()
        .training(train_batch_size_per_learner=4000, minibatch_size=256, num_epochs=10, gamma=1.0, lr=lr,
                  entropy_coeff=entropy_coeff, lambda_=1.0)
        .env_runners(num_envs_per_env_runner=8)
        .rl_module(model_config={"fcnet_hiddens": [64, 64]})
    )
    if magnet is not None:
        trainer.training(learner_class=MagnetPPOLearner, learner_config_dict=magnet)
    return (
        LeagueConfig()
        .environment(game)
        .trainer(trainer)
        .roster(main_agents=1)
        .matchmaking("self_play")
        .snapshots(win_rate=None, every_n_steps=20_000)
        .store(directory)
    )
