"""Finding an mpe2 game by name; building goes through the PettingZoo plugin.

mpe2 does not register its games with PettingZoo's registry: each game is a module
``mpe2/<game>_vN.py`` with ``env`` and ``parallel_env`` constructors. Those modules are found
on disk without importing them, so listing the games costs nothing and a game's own module
(with its pygame import) loads only when it is built.
"""

from __future__ import annotations

import difflib
import pkgutil
from collections.abc import Mapping
from functools import lru_cache

from marl_arena.env.multi_agent_env import MultiAgentEnv
from marl_arena_envs.pettingzoo.catalog import GameEntry, build

FAMILY = "mpe2"


def _package():
    try:
        import mpe2
    except ImportError as error:
        raise ImportError(
            f"The 'mpe2:' env ids need the mpe2 package ({error}): pip install 'marl-arena[mpe2]'."
        ) from error
    return mpe2


@lru_cache(maxsize=1)
def available_games() -> dict[str, GameEntry]:
    """Every mpe2 game installed here, keyed by ``<game>_vN``."""
    games = {}
    for module in pkgutil.iter_modules(_package().__path__):
        name, _, version = module.name.rpartition("_v")
        if module.ispkg or not name or not version.isdigit():
            continue
        path = f"{FAMILY}.{module.name}"
        entry = GameEntry(FAMILY, name, int(version), f"{path}:env", f"{path}:parallel_env")
        games[entry.game_id] = entry
    return games


def resolve(name: str) -> GameEntry:
    """The game called ``name``: ``simple_spread_v3``, or ``simple_spread`` for its newest version."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"An mpe2 game name must be a non-empty string such as 'simple_spread_v3', got {name!r}.")
    games = available_games()
    name = name.strip()
    if name in games:
        return games[name]
    same_name = [entry for entry in games.values() if entry.name == name]
    if same_name:
        return max(same_name, key=lambda entry: entry.version)
    close = difflib.get_close_matches(name, sorted(games), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"Unknown mpe2 game {name!r}.{hint} mpe2 here has: {', '.join(sorted(games))}.")


def make(name: str, env_config: Mapping | None = None) -> MultiAgentEnv:
    """Build mpe2 game ``name`` (Parallel API) with ``env_config`` as its keyword arguments.

    The ``marl_arena.envs`` entry point behind ``"mpe2:<name>"``; e.g.
    ``make("simple_spread_v3", {"N": 3, "local_ratio": 0.5, "max_cycles": 25})``.
    """
    return build(resolve(name), env_config)
