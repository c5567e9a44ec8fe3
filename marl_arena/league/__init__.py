"""The league: players, payoff table, ratings, cycles, matchmakers, meta-solvers, and the store.

Everything but the store is plain Python over a ``PayoffTable``: no I/O, no Ray, no global
state. The store (SQLite + content-hashed snapshot files) is what a League persists to.
"""

from marl_arena.league.cycles import beats_graph, strategic_cycles
from marl_arena.league.matchmaking import (
    MATCHMAKERS,
    PFSP_WEIGHTINGS,
    Distribution,
    Matchmaker,
    alphastar,
    alphastar_league_exploiter,
    alphastar_main_agent,
    alphastar_main_exploiter,
    get_matchmaker,
    pfsp,
    pfsp_weights,
    sample_opponent,
    self_play,
    uniform_fsp,
)
from marl_arena.league.meta_solvers import (
    META_SOLVERS,
    MetaSolver,
    alpharank_mixture,
    get_meta_solver,
    nash_mixture,
    uniform_mixture,
)
from marl_arena.league.payoff import PairStats, PayoffTable
from marl_arena.league.players import FROZEN_KINDS, PLAYER_KINDS, TRAINABLE_KINDS, PlayerInfo, resets_on_snapshot
from marl_arena.league.store import LeagueStore, MatchRecord, StoreError
from marl_arena.league.ratings import (
    ELO_SCALE,
    BradleyTerryFit,
    bradley_terry,
    elo_expected,
    elo_ratings,
    elo_update,
)

__all__ = [
    "BradleyTerryFit",
    "LeagueStore",
    "MatchRecord",
    "StoreError",
    "Distribution",
    "ELO_SCALE",
    "FROZEN_KINDS",
    "MATCHMAKERS",
    "META_SOLVERS",
    "Matchmaker",
    "MetaSolver",
    "PFSP_WEIGHTINGS",
    "PLAYER_KINDS",
    "PairStats",
    "PayoffTable",
    "PlayerInfo",
    "TRAINABLE_KINDS",
    "alpharank_mixture",
    "alphastar",
    "alphastar_league_exploiter",
    "alphastar_main_agent",
    "alphastar_main_exploiter",
    "beats_graph",
    "bradley_terry",
    "elo_expected",
    "elo_ratings",
    "elo_update",
    "get_matchmaker",
    "get_meta_solver",
    "nash_mixture",
    "pfsp",
    "pfsp_weights",
    "resets_on_snapshot",
    "sample_opponent",
    "self_play",
    "strategic_cycles",
    "uniform_fsp",
    "uniform_mixture",
]
