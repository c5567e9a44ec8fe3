"""Finding a PettingZoo game by name and building it with the env config as its arguments.

``"pettingzoo:connect_four_v3"`` should work without user code, so names resolve against
everything PettingZoo ships: its registry (PettingZoo >= 1.27, which also holds games that
users ``pettingzoo.register``) or, in older releases, the ``<family>/<game>_vN`` modules on
disk (found without importing them). A game's own module is imported only when it is built,
so a family with missing extras (Atari without its ROMs, say) costs nothing until asked for.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import logging
import os
import pkgutil
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Callable

import pettingzoo

from marl_arena.env.multi_agent_env import MultiAgentEnv
from marl_arena_envs.pettingzoo.aec import PettingZooEnv
from marl_arena_envs.pettingzoo.parallel import ParallelPettingZooEnv

logger = logging.getLogger(__name__)

API_KEY = "pettingzoo_api"
"""The one env_config key the plugin keeps for itself: ``"aec"`` or ``"parallel"``."""

APIS = ("aec", "parallel")

_NAME = re.compile(r"(?:(?P<family>[\w.-]+)/)?(?P<name>[\w.]+?)(?:[_-]v(?P<version>\d+))?")
_MODULE_NAME = re.compile(r"(?P<name>[a-z][a-z0-9_]*?)_v(?P<version>\d+)")
_NOT_FAMILIES = {"utils", "test", "env_registry"}
_UNEXPECTED_KEYWORD = re.compile(r"unexpected keyword argument '(\w+)'")

Source = Any
"""Where a constructor lives: a PettingZoo ``EnvSpec`` (with its default arguments), a
``"module:attribute"`` string or a callable."""


@dataclasses.dataclass(frozen=True)
class GameEntry:
    """One PettingZoo game: where its AEC and (if any) Parallel constructors live."""

    family: str
    name: str
    version: int | None
    aec: Source | None
    parallel: Source | None

    @property
    def game_id(self) -> str:
        """The name PettingZoo users know, e.g. ``connect_four_v3``."""
        return self.name if self.version is None else f"{self.name}_v{self.version}"

    @property
    def full_id(self) -> str:
        return f"{self.family}/{self.game_id}" if self.family else self.game_id


def available_games() -> dict[str, GameEntry]:
    """Every game PettingZoo offers here, keyed by ``family/game_vN``."""
    aec_registry = getattr(pettingzoo, "aec_registry", None)
    if aec_registry is None:
        return dict(_games_on_disk())
    parallel_registry = getattr(pettingzoo, "parallel_registry", {})
    games = {}
    for spec_id, spec in aec_registry.items():
        parallel = parallel_registry.get(spec_id)
        entry = GameEntry(spec.namespace or "", spec.name, spec.version, spec, parallel)
        games[entry.full_id] = entry
    for spec_id, spec in parallel_registry.items():  # parallel-only games
        entry = GameEntry(spec.namespace or "", spec.name, spec.version, None, spec)
        games.setdefault(entry.full_id, entry)
    return games


@lru_cache(maxsize=1)
def _games_on_disk() -> dict[str, GameEntry]:
    """PettingZoo < 1.27: the ``pettingzoo/<family>/<game>_vN.py`` modules."""
    games = {}
    for root in pettingzoo.__path__:
        for family in pkgutil.iter_modules([root]):
            if not family.ispkg or family.name in _NOT_FAMILIES:
                continue
            for module in pkgutil.iter_modules([os.path.join(root, family.name)]):
                match = _MODULE_NAME.fullmatch(module.name)
                if match and not module.ispkg:
                    path = f"pettingzoo.{family.name}.{module.name}"
                    entry = GameEntry(family.name, match["name"], int(match["version"]), f"{path}:env",
                                      f"{path}:parallel_env")
                    games[entry.full_id] = entry
    return games


def resolve(name: str) -> GameEntry:
    """The game called ``name``: ``connect_four_v3``, ``classic/connect_four_v3``, or without
    a version (``connect_four``) for the newest one. Raises ValueError naming close matches."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"A PettingZoo game name must be a non-empty string such as 'connect_four_v3', got {name!r}.")
    games = available_games()
    parsed = _NAME.fullmatch(name.strip())
    if parsed is None:
        raise _unknown_game(name, games, same_name=[])
    family, base = parsed["family"], parsed["name"]
    version = None if parsed["version"] is None else int(parsed["version"])
    same_name = [e for e in games.values() if e.name == base and (family is None or e.family == family)]
    if version is not None:
        found = [e for e in same_name if e.version == version]
    else:  # newest version in each family
        newest: dict[str, GameEntry] = {}
        for entry in same_name:
            if entry.family not in newest or (entry.version or -1) > (newest[entry.family].version or -1):
                newest[entry.family] = entry
        found = list(newest.values())
        if found:
            logger.info("PettingZoo game %r resolved to %s (the newest version).", name,
                        ", ".join(e.full_id for e in found))
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ValueError(
            f"PettingZoo game name {name!r} is ambiguous: {sorted(e.full_id for e in found)}; "
            "name it with its family, e.g. 'pettingzoo:classic/connect_four_v3'."
        )
    # Name known in another family or version: say where it is.
    raise _unknown_game(name, games, [e for e in games.values() if e.name == base])


def _unknown_game(name: str, games: dict[str, GameEntry], same_name: list[GameEntry]) -> ValueError:
    if same_name:
        hint = f" PettingZoo has {', '.join(sorted(e.full_id for e in same_name))} instead."
    else:
        candidates = sorted(set(games) | {e.game_id for e in games.values()})
        close = difflib.get_close_matches(str(name).strip(), candidates, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    families = sorted({e.family for e in games.values()})
    return ValueError(
        f"Unknown PettingZoo game {name!r}.{hint} Games are named like 'connect_four_v3' or "
        f"'sisl/pursuit_v5' (families here: {', '.join(families)}); "
        "marl_arena_envs.pettingzoo.available_games() lists them all."
    )


def _spec_defaults(source: Source) -> dict[str, Any]:
    """Default arguments a registry spec adds (as ``pettingzoo.make`` would); none otherwise."""
    defaults = dict(getattr(source, "kwargs", None) or {})
    max_cycles = getattr(source, "max_cycles", None)
    if max_cycles is not None and max_cycles != -1:
        defaults["max_cycles"] = max_cycles
    return defaults


def _load(entry: GameEntry, source: Source) -> tuple[Callable | None, Any]:
    """The constructor ``source`` names and the module it lives in (None if missing)."""
    entry_point = getattr(source, "entry_point", source)
    if callable(entry_point):
        return entry_point, inspect.getmodule(entry_point)
    module_name, _, attribute = str(entry_point).partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        extra = entry.family or "all"
        raise ImportError(
            f"PettingZoo game {entry.full_id!r} cannot be imported ({error}); it may need extra "
            f"dependencies: pip install 'pettingzoo[{extra}]'."
        ) from error
    return getattr(module, attribute, None), module


def known_arguments(constructor: Callable, module: Any) -> list[str] | None:
    """The keyword arguments a game takes, or None where its signature does not say.

    PettingZoo's ``env(**kwargs)`` forwards to ``raw_env``, whose ``__init__`` usually names
    them; some games (SISL) forward ``**kwargs`` once more, and then only building tells.
    """
    for candidate in (constructor, getattr(module, "raw_env", None)):
        if candidate is None:
            continue
        try:
            parameters = inspect.signature(candidate).parameters.values()
        except (TypeError, ValueError):
            continue
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            continue
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return [p.name for p in parameters if p.kind in kinds]
    return None


def _bad_arguments(game: str, bad: list[str], known: list[str] | None) -> ValueError:
    message = (
        f"PettingZoo game {game!r} has no argument{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))} "
        "(env_config entries are passed to the game as keyword arguments)."
    )
    if known is not None:
        message += f" Its arguments are: {known or 'none'}."
        close = [m for b in bad for m in difflib.get_close_matches(b, known, n=1)]
        if close:
            message += f" Did you mean {', '.join(map(repr, close))}?"
    return ValueError(message)


def make(name: str, env_config: Mapping | None = None) -> MultiAgentEnv:
    """Build PettingZoo game ``name`` with ``env_config`` as its keyword arguments.

    This is the ``marl_arena.envs`` entry point behind ``"pettingzoo:<name>"``. Games with a
    Parallel API (SISL, Butterfly, Atari, ``rps_v2``) come as ``ParallelPettingZooEnv``, the
    others (turn-based classic games) as ``PettingZooEnv``; ``env_config["pettingzoo_api"]``
    (``"aec"`` or ``"parallel"``) picks one explicitly and is not passed to the game.
    """
    return build(resolve(name), env_config)


def build(entry: GameEntry, env_config: Mapping | None = None) -> MultiAgentEnv:
    """Build the game ``entry`` names with ``env_config`` as its keyword arguments (see ``make``).

    Other plugins whose games are PettingZoo envs (``mpe2``) describe them as a ``GameEntry``
    and build them here, so every PettingZoo-API game goes through one adapter and one
    argument check.
    """
    if env_config is not None and not isinstance(env_config, Mapping):
        raise ValueError(f"The env_config of PettingZoo game {entry.game_id!r} must be a dict, got {env_config!r}.")
    kwargs = dict(env_config or {})
    api = kwargs.pop(API_KEY, None)
    constructor, module, api, defaults = _constructor(entry, api)
    game = entry.game_id
    known = known_arguments(constructor, module)
    if known is not None:
        bad = [key for key in kwargs if key not in known]
        if bad:
            raise _bad_arguments(game, bad, known)
    try:
        env = constructor(**{**defaults, **kwargs})
    except TypeError as error:
        unexpected = _UNEXPECTED_KEYWORD.search(str(error))
        if unexpected and unexpected[1] in kwargs:
            raise _bad_arguments(game, [unexpected[1]], known) from error
        raise ValueError(f"PettingZoo game {game!r} could not be built with env_config {kwargs!r}: {error}") from error
    except ImportError:
        raise
    except Exception as error:
        raise ValueError(
            f"PettingZoo game {game!r} could not be built with env_config {kwargs!r}: {type(error).__name__}: {error}"
        ) from error
    logger.debug("Built PettingZoo game %s (%s API) with %s.", entry.full_id, api, kwargs)
    adapter = ParallelPettingZooEnv if api == "parallel" else PettingZooEnv
    return adapter(env, name=game)


def _constructor(entry: GameEntry, api: str | None) -> tuple[Callable, Any, str, dict[str, Any]]:
    """The constructor for ``api`` (None: the Parallel one where the game has it), its module,
    the API and the default arguments of its registry spec."""
    if api is not None and api not in APIS:
        raise ValueError(
            f"PettingZoo game {entry.game_id!r}: env_config[{API_KEY!r}]={api!r} is not allowed; "
            "use 'aec' or 'parallel'."
        )
    if api in (None, "parallel") and entry.parallel is not None:
        constructor, module = _load(entry, entry.parallel)
        if constructor is not None:
            return constructor, module, "parallel", _spec_defaults(entry.parallel)
    if api == "parallel":
        raise ValueError(
            f"PettingZoo game {entry.game_id!r} has no Parallel API (it is turn-based); drop "
            f"env_config[{API_KEY!r}] or set it to 'aec'."
        )
    if entry.aec is None:
        raise ValueError(
            f"PettingZoo game {entry.game_id!r} has only a Parallel API; set env_config[{API_KEY!r}] to 'parallel'."
        )
    constructor, module = _load(entry, entry.aec)
    if constructor is None:
        raise ValueError(f"PettingZoo game {entry.full_id!r} has no AEC constructor at {entry.aec!r}.")
    return constructor, module, "aec", _spec_defaults(entry.aec)
