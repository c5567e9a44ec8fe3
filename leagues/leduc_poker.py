"""Leduc poker (OpenSpiel): the kuhn league's set-up on a bigger game."""

from marl_arena.league.league_config import LeagueConfig
from marl_arena_leagues.kuhn_poker import poker_league

ITERATIONS = 100


def make_config(directory: str) -> LeagueConfig:
    return poker_league("open_spiel:leduc_poker", directory)
