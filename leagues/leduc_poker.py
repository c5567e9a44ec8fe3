"""Leduc poker (OpenSpiel): the kuhn league's set-up, with a slower annealing of the learning rate.

The constants that did best in 120 s runs (lr 3e-4, entropy 0.2; benchmarks/
league_exploitability.py's tuning notes) for the first iterations, then the rate falls
towards 1e-4 over 400k env steps, as on kuhn, to shrink self-play's circling of the
equilibrium. benchmarks/league_exploitability.py measures the exploitability of its final
main agent and of its pool's Nash mixture (uniform play: 2.37); the README's benchmark
table has the figures.
"""

from marl_arena.league.league_config import LeagueConfig
from marl_arena_leagues.kuhn_poker import poker_league

ITERATIONS = 200
TRAINING = {"lr": [[0, 3e-4], [400_000, 1e-4]], "entropy_coeff": 0.2}
"""The learning rate from 3e-4 to 1e-4 over the first 400k env steps (100 iterations), then held."""


def make_config(directory: str) -> LeagueConfig:
    return poker_league("open_spiel:leduc_poker", directory, **TRAINING)
