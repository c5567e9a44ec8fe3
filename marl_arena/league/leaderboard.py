"""The leaderboard: players by Elo with Bradley-Terry ratings and results, from a store or a live league."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from marl_arena.league.payoff import PayoffTable
from marl_arena.league.players import PlayerInfo
from marl_arena.league.ratings import bradley_terry
from marl_arena.league.store import LeagueStore, MatchRecord

INITIAL_ELO = 1500.0


def payoff_from_matches(players: Iterable[str], matches: Iterable[MatchRecord]) -> PayoffTable:
    """The payoff table of stored matches; self-play games (a player against itself) are not rated."""
    payoff = PayoffTable(players=list(players))
    for match in matches:
        if match.players[0] != match.players[1]:
            payoff.record(match.players[0], match.players[1], match.score)
    return payoff


def _results(payoff: PayoffTable, pid: str, players: Iterable[str]) -> tuple[int, int, int]:
    wins = draws = losses = 0
    for other in players:
        if other != pid:
            stats = payoff.stats(pid, other)
            wins, draws, losses = wins + stats.wins, draws + stats.draws, losses + stats.losses
    return wins, draws, losses


def leaderboard(players: Mapping[str, PlayerInfo], payoff: PayoffTable, elo: Mapping[str, float]) -> list[dict[str, Any]]:
    """Rows sorted by Elo: kind, parent, Elo, Bradley-Terry rating and interval, games and results.

    Bradley-Terry is fitted over players that have played: an unplayed one would only widen
    every interval (the ratings are anchored on their mean).
    """
    totals = {pid: _results(payoff, pid, players) for pid in players}
    played = [pid for pid, results in totals.items() if sum(results)]
    fit = bradley_terry(payoff, played) if len(played) > 1 else None
    nan = float("nan")
    rows = []
    for pid, player in players.items():
        wins, draws, losses = totals[pid]
        rated = fit is not None and pid in played
        low, high = fit.interval(pid) if rated else (nan, nan)
        rows.append({"player": pid, "kind": player.kind, "parent": player.parent,
                     "elo": elo.get(pid, INITIAL_ELO), "bt": fit.rating(pid) if rated else nan,
                     "bt_low": low, "bt_high": high, "games": wins + draws + losses,
                     "wins": wins, "draws": draws, "losses": losses, "frozen": player.frozen})
    return sorted(rows, key=lambda row: -row["elo"])


def store_leaderboard(store: LeagueStore) -> list[dict[str, Any]]:
    """The leaderboard of a stored league (read-only: no trainer is built)."""
    players = {p.id: p for p in store.players()}
    return leaderboard(players, payoff_from_matches(players, store.matches()), store.latest_ratings())


def format_leaderboard(rows: list[dict[str, Any]], limit: int | None = None) -> str:
    """A fixed-width text table for terminals."""
    header = f"{'player':<22}{'kind':<18}{'elo':>8}{'bt':>8}{'bt 95%':>16}{'games':>8}{'W':>7}{'D':>6}{'L':>7}"
    lines = [header, "-" * len(header)]
    for row in rows[:limit]:
        interval = f"{row['bt_low']:.0f}..{row['bt_high']:.0f}" if row["bt"] == row["bt"] else "-"
        bt = f"{row['bt']:.0f}" if row["bt"] == row["bt"] else "-"
        lines.append(f"{row['player']:<22}{row['kind']:<18}{row['elo']:>8.0f}{bt:>8}{interval:>16}"
                     f"{row['games']:>8}{row['wins']:>7}{row['draws']:>6}{row['losses']:>7}")
    return "\n".join(lines)
