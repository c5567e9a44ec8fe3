"""Small built-in games for tests and demos, by name: ``"games:rock_paper_scissors"``, ``"games:take_away"``."""

from __future__ import annotations

import difflib

from marl_arena_envs.games.rock_paper_scissors import PaperOnly, RockOnly, RockPaperScissors, ScissorsOnly
from marl_arena_envs.games.take_away import GreedyTaker, OptimalTaker, TakeAway, optimal_take

GAMES = {"rock_paper_scissors": RockPaperScissors, "take_away": TakeAway}


def make(name: str, env_config: dict):
    """The entry point of the ``games`` scheme."""
    game = GAMES.get(name)
    if game is None:
        close = difflib.get_close_matches(name, GAMES, n=2)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown built-in game {name!r}; available: {sorted(GAMES)}.{hint}")
    return game(env_config)


__all__ = ["GAMES", "GreedyTaker", "OptimalTaker", "PaperOnly", "RockOnly", "RockPaperScissors", "ScissorsOnly", "TakeAway", "make", "optimal_take"]
