"""The leaderboard: players by a calibrated rating, with Elo and results, from a store or a live league.

A learner is not one fixed opponent: main_0 after its sixth snapshot beats what main_0 at
the start lost to. A Bradley-Terry fit that lumps all of a learner's games into one player
rates it by its average over training, and drags every frozen player it met along with
it. So the fit here is over *rated policies*: each player at each version (the number of
snapshots frozen from it before the game, which the store records with every result).
Frozen players and bots have one version; a learner has one per stretch between
snapshots, and the leaderboard shows its latest. A main agent's new version starts as the
snapshot just frozen from it, which the fit says with a few virtual draws between the two
(``LINK_DRAWS``); exploiters, which restart on a snapshot, get no such link.

The calibrated rating (``rating``, the fit on the Elo scale) sorts the leaderboard;
``calibration_report`` compares each pair's predicted and observed win rates.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from marl_arena.league.payoff import PayoffTable
from marl_arena.league.players import PlayerInfo
from marl_arena.league.ratings import BradleyTerryFit, bradley_terry_matrices, calibration
from marl_arena.league.store import LeagueStore, MatchRecord

INITIAL_ELO = 1500.0

LINK_DRAWS = 4
"""Virtual draws between a main agent's new version and the snapshot it starts as."""

FIT_KEY = "rating_fit"
"""The store's meta row with the last fit (rated policy -> rating), to warm-start the next."""

FIT_TOL = 1e-4
"""Newton stops when no rating moves by more than this in logistic units (0.02 Elo points)."""

Result = tuple[str, str, int, int, int, int, int]
"""``(seat 0, seat 1, seat 0's version, seat 1's version, wins, draws, losses)`` (``LeagueStore.versioned_results``)."""


def payoff_from_matches(players: Iterable[str], matches: Iterable[MatchRecord]) -> PayoffTable:
    """The payoff table of stored matches; self-play games (a player against itself) are not rated."""
    payoff = PayoffTable(players=list(players))
    for match in matches:
        if match.players[0] != match.players[1]:
            payoff.record(match.players[0], match.players[1], match.score)
    return payoff


def payoff_from_results(players: Iterable[str], results: Iterable[Result]) -> PayoffTable:
    """Exact results of every pair (versions summed, self-play left out), without loading matches.

    The table's decay is 1, so its "decayed" counts are the exact ones.
    """
    order = {pid: i for i, pid in enumerate(players)}
    cells: dict[tuple[str, str], list[int]] = {}
    for first, second, _, _, wins, draws, losses in results:
        if first == second:
            continue
        for pid in (first, second):
            order.setdefault(pid, len(order))  # a match of a player the players table lacks still counts
        if order[first] > order[second]:  # one cell per pair, seen from the player added first
            first, second, wins, losses = second, first, losses, wins
        cell = cells.setdefault((first, second), [0, 0, 0])
        for i, count in enumerate((wins, draws, losses)):
            cell[i] += count
    return _table(list(order), cells)


def _table(players: list[str], cells: Mapping[tuple[str, str], Sequence[float]]) -> PayoffTable:
    pairs = [{"a": a, "b": b, "wins": w, "draws": d, "losses": l, "decayed_wins": float(w),
              "decayed_draws": float(d), "decayed_games": float(w + d + l)} for (a, b), (w, d, l) in cells.items()]
    return PayoffTable.from_state({"decay": 1.0, "players": players, "pairs": pairs})


def policy_id(player: str, version: int) -> str:
    """The rated policy of ``player`` at ``version``; version 0 is the player itself."""
    return player if version == 0 else f"{player}@{version}"


class RatingFit:
    """The Bradley-Terry fit over rated policies, and which policy is each player's current one."""

    def __init__(self, players: Mapping[str, PlayerInfo], results: Iterable[Result],
                 initial: Mapping[str, float] | None = None):
        self.players = dict(players)
        rows = [(policy_id(a, va), policy_id(b, vb), a, b, va, vb, w, d, l)
                for a, b, va, vb, w, d, l in results if a != b]  # self-play, in any versions, is not rated
        self.owner = {policy: player for row in rows for policy, player in ((row[0], row[2]), (row[1], row[3]))}
        """The player each rated policy is a version of."""
        latest: dict[str, int] = {}
        for _, _, a, b, va, vb, *_ in rows:
            latest[a] = max(latest.get(a, 0), va)
            latest[b] = max(latest.get(b, 0), vb)
        self.current = {pid: policy_id(pid, version) for pid, version in latest.items()}
        self.policies = tuple(sorted({x for x, *_ in rows} | {y for _, y, *_ in rows}))
        index = {pid: i for i, pid in enumerate(self.policies)}
        n = len(self.policies)
        self.wins, self.draws, self.losses = np.zeros((n, n)), np.zeros((n, n)), np.zeros((n, n))
        """Real results per ordered pair of rated policies, from the row's side."""
        if rows:
            i = np.array([index[x] for x, *_ in rows])
            j = np.array([index[y] for _, y, *_ in rows])
            counts = np.array([row[6:] for row in rows], dtype=float)
            for matrix, column in ((self.wins, 0), (self.draws, 1), (self.losses, 2)):
                np.add.at(matrix, (i, j), counts[:, column])
            self.wins, self.losses = self.wins + self.losses.T, self.losses + self.wins.T
            self.draws = self.draws + self.draws.T
        games = self.wins + self.draws + self.losses
        scores = self.wins + 0.5 * self.draws
        for parent, version, snapshot in self._snapshots_by_parent():
            pid = policy_id(parent, version)
            if pid in index and snapshot in index:
                a, b = index[pid], index[snapshot]
                for x, y in ((a, b), (b, a)):
                    games[x, y] += LINK_DRAWS
                    scores[x, y] += 0.5 * LINK_DRAWS
        self.fit: BradleyTerryFit | None = (
            bradley_terry_matrices(self.policies, scores, games, initial=initial, tol=FIT_TOL) if n > 1 else None)

    @property
    def table(self) -> PayoffTable:
        """The real results per pair of rated policies as a payoff table."""
        cells = {(a, b): (self.wins[i, j], self.draws[i, j], self.losses[i, j])
                 for i, a in enumerate(self.policies) for j, b in enumerate(self.policies)
                 if i < j and self.wins[i, j] + self.draws[i, j] + self.losses[i, j] > 0}
        return _table(list(self.policies), cells)

    def _snapshots_by_parent(self) -> list[tuple[str, int, str]]:
        """``(main agent, version it starts at, snapshot)``: version k starts as its k-th snapshot."""
        by_parent: dict[str, list[PlayerInfo]] = {}
        for player in self.players.values():
            if player.kind == "snapshot" and player.parent is not None:
                by_parent.setdefault(player.parent, []).append(player)
        links = []
        for parent, snapshots in by_parent.items():
            if parent in self.players and self.players[parent].kind == "main_agent":
                ordered = sorted(snapshots, key=lambda p: (p.created, p.id))
                links += [(parent, k, s.id) for k, s in enumerate(ordered, start=1)]
        return links

    def player_totals(self) -> dict[str, list[int]]:
        """Each player's wins, draws and losses over all its versions (self-play left out)."""
        names = [self.owner[policy] for policy in self.policies]
        sums = np.stack([self.wins.sum(1), self.draws.sum(1), self.losses.sum(1)], axis=1)
        totals: dict[str, list[int]] = {}
        for name, row in zip(names, sums):
            total = totals.setdefault(name, [0, 0, 0])
            for i in range(3):
                total[i] += int(round(row[i]))
        return totals

    def ratings(self) -> dict[str, float]:
        """Every rated policy's rating."""
        return self.fit.as_dict() if self.fit is not None else {}

    def player_ratings(self) -> dict[str, float]:
        """Each player's current rating (its latest rated policy's)."""
        ratings = self.ratings()
        return {pid: ratings[policy] for pid, policy in self.current.items() if policy in ratings}

    def interval(self, player: str) -> tuple[float, float]:
        return self.fit.interval(self.current[player])

    def intervals(self) -> dict[str, tuple[float, float]]:
        """Each rated player's interval (its current policy's)."""
        if self.fit is None:
            return {}
        position = {pid: i for i, pid in enumerate(self.fit.players)}
        lower, upper = self.fit.lower, self.fit.upper
        return {pid: (float(lower[position[p]]), float(upper[position[p]]))
                for pid, p in self.current.items() if p in position}


def leaderboard(players: Mapping[str, PlayerInfo], results: PayoffTable | Iterable[Result],
                elo: Mapping[str, float], initial: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """Rows sorted by the calibrated rating (``bt``): kind, parent, Elo, the rating and its interval, results.

    ``results`` are the store's versioned results, or a ``PayoffTable`` (every player one
    version). ``bt`` is the player's current version's Bradley-Terry rating; games, wins,
    draws and losses count every version. Players without rated games come last, by Elo.
    """
    if isinstance(results, PayoffTable):
        table = results
        results = [(a, b, 0, 0, *table.stats(a, b)) for i, a in enumerate(table.players)
                   for b in table.players[i + 1:] if table.stats(a, b).games]
    results = list(results)
    fit = RatingFit(players, results, initial)
    ratings = fit.player_ratings()
    intervals = fit.intervals()
    totals = {pid: [0, 0, 0] for pid in players} | fit.player_totals()
    nan = float("nan")
    rows = []
    for pid, player in players.items():
        wins, draws, losses = totals[pid]
        rated = pid in ratings
        low, high = intervals[pid] if rated else (nan, nan)
        rows.append({"player": pid, "kind": player.kind, "parent": player.parent,
                     "elo": elo.get(pid, INITIAL_ELO), "bt": ratings.get(pid, nan),
                     "bt_low": low, "bt_high": high, "games": wins + draws + losses,
                     "wins": wins, "draws": draws, "losses": losses, "frozen": player.frozen})
    return sorted(rows, key=lambda row: (math.isnan(row["bt"]), -(row["elo"] if math.isnan(row["bt"]) else row["bt"])))


def store_leaderboard(store: LeagueStore) -> list[dict[str, Any]]:
    """The leaderboard of a stored league (read-only: no trainer is built, no match is loaded)."""
    players = {p.id: p for p in store.players()}
    return leaderboard(players, store.versioned_results(), store.latest_ratings(), store.meta(FIT_KEY))


def calibration_report(players: Mapping[str, PlayerInfo], results: Iterable[Result], elo: Mapping[str, float],
                       *, min_games: int = 100) -> dict[str, Any]:
    """Predicted against observed win rates for pairs with ``min_games`` games, for each rating.

    ``bradley_terry``: every pair of rated policies (a learner's versions apart). ``elo``:
    pairs of players in their current versions, the ones Elo rates. ``*_whole_history``:
    the same ratings against each pair's results over all versions, the comparison that
    mistakes a learner's average over training for its current strength.
    """
    results = list(results)
    fit = RatingFit(players, results)
    current = {policy: pid for pid, policy in fit.current.items()}
    elo_by_policy = {policy: elo[pid] for policy, pid in current.items() if pid in elo}
    whole = payoff_from_results(players, results)
    return {
        "bradley_terry": calibration(fit.table, fit.ratings(), min_games=min_games),
        "elo": calibration(fit.table, elo_by_policy, min_games=min_games),
        "bradley_terry_whole_history": calibration(whole, fit.player_ratings(), min_games=min_games),
        "elo_whole_history": calibration(whole, dict(elo), min_games=min_games),
    }


def format_leaderboard(rows: list[dict[str, Any]], limit: int | None = None) -> str:
    """A fixed-width text table for terminals."""
    header = f"{'player':<22}{'kind':<18}{'bt':>8}{'bt 95%':>16}{'elo':>8}{'games':>8}{'W':>7}{'D':>6}{'L':>7}"
    lines = [header, "-" * len(header)]
    for row in rows[:limit]:
        interval = f"{row['bt_low']:.0f}..{row['bt_high']:.0f}" if row["bt"] == row["bt"] else "-"
        bt = f"{row['bt']:.0f}" if row["bt"] == row["bt"] else "-"
        lines.append(f"{row['player']:<22}{row['kind']:<18}{bt:>8}{interval:>16}{row['elo']:>8.0f}"
                     f"{row['games']:>8}{row['wins']:>7}{row['draws']:>6}{row['losses']:>7}")
    return "\n".join(lines)
