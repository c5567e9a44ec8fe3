"""Loading OpenSpiel games by name, with errors that say what went wrong.

``pyspiel.load_game`` raises a bare ``SpielError`` (and dumps the list of all 120-odd
games to stderr) for a misspelt name. Here the short name is checked against
``pyspiel.registered_names()`` first, so a typo gets a ``ValueError`` with the close
matches, and bad parameters get a ``ValueError`` that names the game and the parameters
it accepts.
"""

from __future__ import annotations

import difflib
from typing import Any, Mapping

import pyspiel



def game_label(game: pyspiel.Game) -> str:
    """The game as ``load_game`` would take it, parameters included: ``goofspiel(num_cards=4)``."""
    return str(game)


def _short_name(name: str) -> str:
    return name.split("(", 1)[0].strip()


def _parameter_spec(short_name: str) -> dict[str, Any]:
    for game_type in pyspiel.registered_games():
        if game_type.short_name == short_name:
            return dict(game_type.parameter_specification)
    return {}


def load_game(game: "str | pyspiel.Game", parameters: Mapping[str, Any] | None = None) -> pyspiel.Game:
    """A ``pyspiel.Game`` from a name (``"goofspiel(num_cards=4)"``), or the game itself.

    ``parameters`` are merged into the name's own parameters (they win on a clash).
    Raises ``ValueError`` naming the game for an unknown name (with close matches) or
    parameters the game rejects.
    """
    if isinstance(game, pyspiel.Game):
        if parameters:
            raise ValueError(
                f"game parameters {dict(parameters)} were given with an already loaded game "
                f"{game_label(game)!r}; pass the game's name instead, or load it with them."
            )
        return game
    if not isinstance(game, str) or not game.strip():
        raise ValueError(f"An OpenSpiel game must be a non-empty name or a pyspiel.Game, got {game!r}.")
    name = game.strip()
    short = _short_name(name)
    known = pyspiel.registered_names()
    if short not in known:
        close = difflib.get_close_matches(short, known, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"Unknown OpenSpiel game {short!r} (from {name!r}).{hint} "
            "pyspiel.registered_names() lists every game."
        )
    try:
        params = pyspiel.game_parameters_from_string(name)
        params.pop("name", None)
        params.update(parameters or {})
        _check_parameter_names(name, short, params)
        loaded = pyspiel.load_game(short, params)
    except pyspiel.SpielError as error:
        raise ValueError(_bad_parameters(name, short, str(error))) from error
    if loaded.num_players() < 1 or loaded.num_distinct_actions() < 1:
        raise ValueError(_bad_parameters(
            name, short,
            f"the game has {loaded.num_players()} players and {loaded.num_distinct_actions()} distinct actions",
        ))
    return loaded


def _check_parameter_names(name: str, short: str, params: Mapping[str, Any]) -> None:
    """Reject unknown parameter names before pyspiel does (it would also print to stderr)."""
    spec = _parameter_spec(short)
    unknown = sorted(set(params) - set(spec))
    if spec and unknown:
        raise ValueError(_bad_parameters(name, short, f"unknown parameter(s) {unknown}"))


def _bad_parameters(name: str, short: str, reason: str) -> str:
    spec = _parameter_spec(short)
    allowed = ", ".join(f"{k}={v!r}" for k, v in sorted(spec.items())) or "none"
    return (
        f"Bad parameters for OpenSpiel game {short!r} (from {name!r}): {reason.strip().rstrip('.')}. "
        f"Its parameters and their defaults: {allowed}."
    )
