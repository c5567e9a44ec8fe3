"""The payoff table: results per ordered pair of players, exact and exponentially decayed.

Matchmakers, ratings and meta-solvers all read this one table; none of them writes it.
Exact counts feed the ratings; the decayed estimate (AlphaStar's) feeds matchmaking, where
what matters is how a *learning* player does now, not over its whole history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

SCORES = (0.0, 0.5, 1.0)
"""A game's score for its first player: loss, draw, win."""


class PairStats(NamedTuple):
    """Exact results of ``a`` against ``b``, from ``a``'s side."""

    wins: int
    draws: int
    losses: int

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses


@dataclass
class _Cell:
    """One ordered pair's counts; the decayed ones are discounted by ``decay`` per new game."""

    wins: int = 0
    draws: int = 0
    losses: int = 0
    decayed_wins: float = 0.0
    decayed_draws: float = 0.0
    decayed_games: float = 0.0

    def mirrored(self) -> _Cell:
        """The same results seen from the other player's side."""
        return _Cell(
            wins=self.losses,
            draws=self.draws,
            losses=self.wins,
            decayed_wins=self.decayed_games - self.decayed_wins - self.decayed_draws,
            decayed_draws=self.decayed_draws,
            decayed_games=self.decayed_games,
        )


_CELL_FIELDS = ("wins", "draws", "losses", "decayed_wins", "decayed_draws", "decayed_games")


class PayoffTable:
    """Wins, draws and losses per ordered pair of players, plus a decayed win-rate estimate.

    Results are symmetric by construction: recording ``a`` beating ``b`` also records ``b``
    losing to ``a``. The decayed estimate follows AlphaStar: each new result of a pair first
    multiplies that pair's decayed counts by ``decay``, so the decayed win rate is
    ``sum(decay**age * score) / sum(decay**age)`` over the pair's games, newest age 0.
    Players may be added at any time; a pair that never played has win rate 0.5 (no
    evidence either way), and so does a player against itself.
    """

    def __init__(self, decay: float = 0.99, players: Sequence[str] = ()) -> None:
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"PayoffTable decay must be in (0, 1], got {decay!r}.")
        self.decay = float(decay)
        self._index: dict[str, int] = {}
        self._cells: dict[tuple[str, str], _Cell] = {}
        for player in players:
            self.add_player(player)

    @property
    def players(self) -> tuple[str, ...]:
        """Player ids in the order they were added."""
        return tuple(self._index)

    def __contains__(self, player: object) -> bool:
        return player in self._index

    def __len__(self) -> int:
        return len(self._index)

    def add_player(self, player: str) -> None:
        """Add ``player`` with no games; adding a known player again changes nothing."""
        if not isinstance(player, str) or not player:
            raise ValueError(f"A player id must be a non-empty string, got {player!r}.")
        self._index.setdefault(player, len(self._index))

    def record(self, a: str, b: str, score: float) -> None:
        """Record one game of ``a`` against ``b``; ``score`` is a's: 1 win, 0.5 draw, 0 loss.

        Unknown players are added. A player against itself is refused: a self-play game
        says nothing about relative strength, and its win rate is 0.5 by definition.
        """
        if score not in SCORES:
            raise ValueError(f"A game's score must be one of {SCORES} (loss, draw, win), got {score!r}.")
        if a == b:
            raise ValueError(f"Cannot record {a!r} against itself: self-play games carry no payoff information.")
        self.add_player(a)
        self.add_player(b)
        cell = self._cells.setdefault((a, b), _Cell())
        cell.decayed_wins *= self.decay
        cell.decayed_draws *= self.decay
        cell.decayed_games *= self.decay
        cell.decayed_games += 1.0
        if score == 1.0:
            cell.wins += 1
            cell.decayed_wins += 1.0
        elif score == 0.5:
            cell.draws += 1
            cell.decayed_draws += 1.0
        else:
            cell.losses += 1
        self._cells[(b, a)] = cell.mirrored()

    def stats(self, a: str, b: str) -> PairStats:
        """Exact wins, draws and losses of ``a`` against ``b``."""
        cell = self._cell(a, b)
        return PairStats(cell.wins, cell.draws, cell.losses)

    def win_rate(self, a: str, b: str, *, decayed: bool = False) -> float:
        """Win rate of ``a`` against ``b``, draws counting half; 0.5 without games."""
        cell = self._cell(a, b)
        games = _games(cell, decayed)
        return _score(cell, decayed) / games if games > 0 else 0.5

    def score_matrix(self, players: Sequence[str] | None = None, *, decayed: bool = False) -> np.ndarray:
        """``S[i, j]``: wins plus half the draws of player i against player j."""
        return self._matrix(players, _score, decayed)

    def games_matrix(self, players: Sequence[str] | None = None, *, decayed: bool = False) -> np.ndarray:
        """``N[i, j]``: games between players i and j (symmetric, zero diagonal)."""
        return self._matrix(players, _games, decayed)

    def win_rate_matrix(self, players: Sequence[str] | None = None, *, decayed: bool = False) -> np.ndarray:
        """``W[i, j]``: win rate of i against j; 0.5 where they never met and on the diagonal.

        ``W + W.T == 1``: this is the constant-sum meta-game that the meta-solvers take.
        """
        scores = self.score_matrix(players, decayed=decayed)
        games = self.games_matrix(players, decayed=decayed)
        rates = np.full_like(scores, 0.5)
        np.divide(scores, games, out=rates, where=games > 0)
        return rates

    def state(self) -> dict[str, Any]:
        """Plain, JSON-ready state: decay, players in order, and each pair once."""
        pairs = []
        for (a, b), cell in self._cells.items():
            if self._index[a] < self._index[b]:
                pairs.append({"a": a, "b": b, **{name: getattr(cell, name) for name in _CELL_FIELDS}})
        return {"decay": self.decay, "players": list(self._index), "pairs": pairs}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PayoffTable:
        """Rebuild a table from ``state()``."""
        table = cls(decay=state["decay"], players=state["players"])
        for pair in state["pairs"]:
            a, b = pair["a"], pair["b"]
            if a not in table or b not in table or a == b:
                raise ValueError(f"PayoffTable state has a pair ({a!r}, {b!r}) of unknown or identical players.")
            cell = _Cell(**{name: pair[name] for name in _CELL_FIELDS})
            table._cells[(a, b)] = cell
            table._cells[(b, a)] = cell.mirrored()
        return table

    def _cell(self, a: str, b: str) -> _Cell:
        for player in (a, b):
            if player not in self._index:
                raise ValueError(f"Unknown player {player!r}; the payoff table has {len(self)} players.")
        return self._cells.get((a, b), _Cell())

    def _matrix(
        self, players: Sequence[str] | None, value: Callable[[_Cell, bool], float], decayed: bool
    ) -> np.ndarray:
        ids = self.players if players is None else tuple(players)
        unknown = [pid for pid in ids if pid not in self._index]
        if unknown:
            raise ValueError(f"Unknown players {unknown}; the payoff table has {len(self)} players.")
        position = {pid: i for i, pid in enumerate(ids)}
        out = np.zeros((len(ids), len(ids)))
        # Only pairs that met have a cell: a pool of many players has far fewer cells than pairs.
        for (a, b), cell in self._cells.items():
            if a in position and b in position:
                out[position[a], position[b]] = value(cell, decayed)
        return out


def _score(cell: _Cell, decayed: bool) -> float:
    """Wins plus half the draws, exact or decayed."""
    return cell.decayed_wins + 0.5 * cell.decayed_draws if decayed else cell.wins + 0.5 * cell.draws


def _games(cell: _Cell, decayed: bool) -> float:
    """Games played, exact or decayed."""
    return cell.decayed_games if decayed else cell.wins + cell.draws + cell.losses
