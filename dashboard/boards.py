"""The board games the dashboard can draw and play: OpenSpiel's tic_tac_toe and connect_four.

A league may have played them as ``open_spiel:`` envs or as PettingZoo's ``tictactoe_v3`` and
``connect_four_v3``. Either way the dashboard keeps the game in a pyspiel state, replays
stored moves on it and draws it with ``str(state)``; for a person to play against a league
player, the state must be shown to that player's module exactly as its env showed it in
training. ``BoardGame.observe`` does that: OpenSpiel envs through their own
``ObservationEncoder``, PettingZoo envs by rebuilding PettingZoo's planes (the mover's
pieces, then the opponent's). Actions are the same numbers in both libraries: a column in
connect four, a cell in tic-tac-toe (PettingZoo's cell ``i`` is taken as OpenSpiel's cell
``i``, a transpose of PettingZoo's picture that changes no game).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pyspiel

from marl_arena_envs.openspiel.env import env_options
from marl_arena_envs.openspiel.games import load_game
from marl_arena_envs.openspiel.observations import ObservationEncoder

GAMES = ("tic_tac_toe", "connect_four")
"""OpenSpiel names of the games the dashboard plays."""

_PETTINGZOO_GAMES = {"tictactoe_v3": "tic_tac_toe", "connect_four_v3": "connect_four"}

Observe = Callable[[pyspiel.State, int], np.ndarray]


@dataclasses.dataclass(frozen=True)
class BoardGame:
    """A league's board game as a pyspiel game, plus what a league module reads at a state."""

    name: str
    """OpenSpiel's short name: one of ``GAMES``."""
    game: pyspiel.Game
    observe: Observe
    """The float32 row a league module reads for ``(state, player)``."""

    def states(self, actions: Sequence[int]) -> list[pyspiel.State]:
        """The state before any move and after each of ``actions``; ValueError at an illegal one."""
        state = self.game.new_initial_state()
        states = [state.clone()]
        for number, action in enumerate(actions, start=1):
            if state.is_terminal() or action not in state.legal_actions():
                raise ValueError(f"Move {number} ({action}) is not legal in {self.name} after "
                                 f"{list(actions[:number - 1])}.")
            state.apply_action(int(action))
            states.append(state.clone())
        return states

    def mask(self, state: pyspiel.State) -> np.ndarray:
        """1.0 at the legal moves of the player to move."""
        return np.asarray(state.legal_actions_mask(state.current_player()), dtype=np.float32)


def board_game(env: str, env_config: Mapping[str, Any] | None = None) -> BoardGame | None:
    """The board game a league env plays, or None when the dashboard cannot draw it."""
    scheme, _, name = str(env).partition(":")
    if scheme == "open_spiel":
        options = env_options(env_config, name)
        try:
            game = load_game(name, options.get("game_parameters"))
        except ValueError:
            return None
        short = game.get_type().short_name
        if short not in GAMES or options.get("opponents"):
            return None  # bots seated inside the env play moves the league never saw
        encoder = ObservationEncoder(game, options.get("observation_type", "auto"), options.get("seat_one_hot", False))
        return BoardGame(short, game, encoder.vector)
    if scheme == "pettingzoo" and name in _PETTINGZOO_GAMES and not env_config:
        short = _PETTINGZOO_GAMES[name]
        game = pyspiel.load_game(short)
        observe = _pettingzoo_tic_tac_toe if short == "tic_tac_toe" else _pettingzoo_connect_four
        return BoardGame(short, game, observe)
    return None


def _pettingzoo_tic_tac_toe(state: pyspiel.State, player: int) -> np.ndarray:
    """PettingZoo's (3, 3, 2) planes: the player's marks, then the opponent's.

    OpenSpiel's planes are (empty, o, x) and player 0 plays x.
    """
    planes = np.asarray(state.observation_tensor(0), dtype=np.float32).reshape(3, 3, 3)
    mine, theirs = (planes[2], planes[1]) if player == 0 else (planes[1], planes[2])
    return np.stack([mine, theirs], axis=-1)


def _pettingzoo_connect_four(state: pyspiel.State, player: int) -> np.ndarray:
    """PettingZoo's (6, 7, 2) planes: the player's pieces, then the opponent's.

    OpenSpiel's planes are (player 0, player 1, empty) with the bottom row first; PettingZoo's
    top row comes first.
    """
    planes = np.asarray(state.observation_tensor(0), dtype=np.float32).reshape(3, 6, 7)
    return np.stack([planes[player][::-1], planes[1 - player][::-1]], axis=-1)


def render(state: pyspiel.State) -> str:
    """The board as OpenSpiel draws it, with column numbers under a connect four board."""
    text = str(state).rstrip("\n")
    if state.get_game().get_type().short_name == "connect_four":
        width = len(text.splitlines()[0])
        text += "\n" + "".join(str(column + 1) for column in range(width))
    return text
