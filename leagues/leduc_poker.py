"""Leduc poker (OpenSpiel): the kuhn league's set-up with a larger entropy bonus.

benchmarks/league_exploitability.py measures the exploitability of its final main agent and
of its pool's Nash mixture (uniform play: 2.37); the README's benchmark table has the figures.
"""

from marl_arena.league.league_config import LeagueConfig
from marl_arena_leagues.kuhn_poker import poker_league

ITERATIONS = 200


def make_config(directory: str) -> LeagueConfig:
    return poker_league("open_spiel:leduc_poker", directory, entropy_coeff=0.2)
