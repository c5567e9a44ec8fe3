"""What the dashboard shows, read from a league store: plain functions that return tables.

No Streamlit here. Functions of a store (``standings``, ``rating_lines``, ``match_log``, ...)
run on a read-only store through ``data.League.load``, cached on the store's last change;
functions of a ``PayoffTable`` (``payoff_frame``, ``beats``) work on the cached standings and
are cheap. The load benchmark times them directly. Ratings, the payoff table, the
leaderboard and cycles are ``marl_arena.league``'s own; this module only turns store rows
into their inputs and their results into DataFrames and graphs.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from marl_arena.league.cycles import beats_graph, strategic_cycles
from marl_arena.league.leaderboard import FIT_KEY, leaderboard, payoff_from_results
from marl_arena.league.payoff import PayoffTable
from marl_arena.league.players import PlayerInfo
from marl_arena.league.store import LeagueStore, MatchRecord

LEADERBOARD_COLUMNS = ["player", "kind", "parent", "status", "elo", "bt", "bt_low", "bt_high", "games",
                       "wins", "draws", "losses"]
MATCH_LOG_COLUMNS = ["id", "iteration", "first", "second", "winner", "returns", "length", "moves", "time"]


def overview(store: LeagueStore) -> dict[str, Any]:
    """Counts every page starts from: players by id and kind, matches, and the league's game."""
    players = store.players()
    game = store.game() or {}
    return {"players": [p.id for p in players], "kinds": {p.id: p.kind for p in players},
            "matches": store.count_matches(), "env": game.get("env"), "env_config": game.get("env_config"),
            "elo_k": game.get("elo_k")}


def payoff_table(store: LeagueStore) -> PayoffTable:
    """Exact results of every pair, from the store's summary table (no per-match rows are loaded).

    The table's decay is 1, so its "decayed" counts are the exact ones: the dashboard shows
    what happened, not the matchmakers' recency-weighted view.
    """
    seatings = ((a, b, 0, 0, w, d, l) for a, b, w, d, l in store.pair_results())  # versions summed in SQL
    return payoff_from_results([p.id for p in store.players()], seatings)


def _status(player: PlayerInfo) -> str:
    if player.trainable:
        return "training"
    return "person" if player.kind == "human" else "frozen"


@dataclasses.dataclass(frozen=True)
class Standings:
    """The leaderboard and the payoff table it was computed from: most pages start from these."""

    board: pd.DataFrame
    """``marl_arena.league.leaderboard`` rows, best calibrated rating first, with a ``status`` column."""
    payoff: PayoffTable

    def top(self, count: int) -> list[str]:
        """The ``count`` best players by calibrated rating: the default choice of pages that cannot show everyone."""
        return self.board["player"].head(count).tolist()


def standings(store: LeagueStore) -> Standings:
    """The leaderboard (calibrated rating with intervals, Elo, results) and the payoff table, in one pass."""
    players = {p.id: p for p in store.players()}
    results = store.versioned_results()
    payoff = payoff_table(store)
    rows = leaderboard(players, results, store.latest_ratings(), store.meta(FIT_KEY))
    board = pd.DataFrame(rows, columns=[c for c in LEADERBOARD_COLUMNS if c != "status"])
    board.insert(3, "status", [_status(players[pid]) for pid in board["player"]])
    if "teams" in (store.game() or {}):  # a team league: each player's side and members
        metadata = {pid: store.player_metadata(pid) for pid in board["player"]}
        board["side"] = [metadata[pid].get("side") or "either" for pid in board["player"]]
        board["members"] = [team_members(metadata[pid]) for pid in board["player"]]
    return Standings(board, payoff)


def team_members(metadata: dict[str, Any]) -> str:
    """A team player's members as ``agent: module`` pairs, one string for a table cell."""
    return ", ".join(f"{agent}: {module}" for agent, module in metadata.get("members", {}).items())


def team_sides(store: LeagueStore) -> dict[str, list[str]] | None:
    """A team league's sides (side -> agents) when they are asymmetric (a leaderboard each); else None."""
    teams = (store.game() or {}).get("teams")
    return None if not teams or teams["symmetric"] else teams["sides"]


def rating_lines(store: LeagueStore, players: list[str], max_points: int = 400) -> dict[str, pd.DataFrame]:
    """Elo against match number for ``players`` (``lines``), and where snapshots were taken (``snapshots``).

    A snapshot is marked where its rating line starts: the match at which it was frozen,
    at its parent's rating then. Long lines are thinned to ``max_points`` evenly spaced
    points (first and last kept), which a chart cannot tell apart from the full line.
    """
    snapshots = [p for p in store.players() if p.kind == "snapshot" and (p.id in players or p.parent in players)]
    series = store.rating_series(sorted(set(players) | {p.id for p in snapshots}))
    lines = []
    for pid in players:
        points = series.get(pid, [])
        if len(points) > max_points:
            keep = np.unique(np.linspace(0, len(points) - 1, max_points).round().astype(int))
            points = [points[i] for i in keep]
        lines += [(pid, at, rating) for at, rating in points]
    marks = [(p.id, p.parent, *series[p.id][0]) for p in snapshots if series.get(p.id)]
    return {"lines": pd.DataFrame(lines, columns=["player", "match", "elo"]),
            "snapshots": pd.DataFrame(marks, columns=["snapshot", "parent", "match", "elo"])}


def training_frame(store: LeagueStore, player: str) -> pd.DataFrame:
    """One row per training iteration of ``player``: return, env steps per second, learner losses."""
    rows = [{"iteration": iteration, **data} for iteration, data in store.metrics(player)]
    return pd.DataFrame(rows, columns=None if rows else ["iteration"])


def payoff_frame(payoff: PayoffTable, players: list[str]) -> pd.DataFrame:
    """Win rate (draws half) of each row player against each column player, with the game counts."""
    rows = []
    for row in players:
        for column in players:
            if row == column or row not in payoff or column not in payoff:
                continue
            stats = payoff.stats(row, column)
            rate = payoff.win_rate(row, column) if stats.games else float("nan")
            rows.append((row, column, rate, stats.games, stats.wins, stats.draws, stats.losses))
    return pd.DataFrame(rows, columns=["player", "opponent", "win_rate", "games", "wins", "draws", "losses"])


def lineage_graph(store: LeagueStore) -> nx.DiGraph:
    """Every player as a node (with its kind); an edge from each snapshot to the player it was frozen from."""
    graph = nx.DiGraph()
    for player in store.players():
        graph.add_node(player.id, kind=player.kind)
    for player in store.players():
        if player.parent is not None:
            graph.add_edge(player.id, player.parent)
    return graph


def beats(payoff: PayoffTable, players: list[str], min_games: int, max_length: int) -> dict[str, Any]:
    """The "beats" graph over ``players`` and its strategic cycles (``marl_arena.league.cycles``)."""
    pool = [pid for pid in players if pid in payoff]
    return {"graph": beats_graph(payoff, pool, min_games=min_games),
            "cycles": strategic_cycles(payoff, pool, min_games=min_games, max_length=max_length)}


def _winner(match: MatchRecord) -> str:
    return match.players[0] if match.score == 1.0 else match.players[1] if match.score == 0.0 else "draw"


def match_log(store: LeagueStore, limit: int, player: str | None = None, opponent: str | None = None,
              outcome: str | None = None) -> pd.DataFrame:
    """The newest matches, filtered (``LeagueStore.recent_matches``), one row each."""
    rows = [(match_id, m.iteration, m.players[0], m.players[1], _winner(m),
             " : ".join(f"{r:g}" for r in m.returns), m.length, None if m.moves is None else len(m.moves),
             datetime.datetime.fromtimestamp(m.created))
            for match_id, m in store.recent_matches(limit, player, opponent, outcome)]
    return pd.DataFrame(rows, columns=MATCH_LOG_COLUMNS)


def match(store: LeagueStore, match_id: int) -> MatchRecord:
    return store.match(match_id)


def playable_players(store: LeagueStore) -> list[str]:
    """Players a person can play against: scripted bots and players whose weights are stored."""
    return [p.id for p in store.players()
            if p.kind == "scripted" or (p.kind != "human" and store.player_snapshot(p.id) is not None)]
