"""Strategic cycles: who beats whom, and where "beats" stops being a ranking.

A league whose "beats" graph has cycles (rock beats scissors beats paper beats rock) cannot
be ranked by any single rating; that is when a mixture over the pool (a meta-solver) matters
more than the top rating.
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx

from marl_arena.league.payoff import PayoffTable


def beats_graph(
    payoff: PayoffTable, players: Sequence[str] | None = None, *, min_games: int = 1, decayed: bool = False
) -> nx.DiGraph:
    """Directed graph with an edge ``a -> b`` when a's win rate against b exceeds 0.5.

    Only pairs with at least ``min_games`` games count, so a single lucky game does not
    make an edge. Edges carry ``win_rate`` and ``games``; every player is a node.
    """
    if min_games < 1:
        raise ValueError(f"beats_graph min_games must be at least 1, got {min_games!r}.")
    ids = tuple(payoff.players if players is None else players)
    graph = nx.DiGraph()
    graph.add_nodes_from(ids)
    for a in ids:
        for b in ids:
            if a == b:
                continue
            games = payoff.stats(a, b).games
            rate = payoff.win_rate(a, b, decayed=decayed)
            if games >= min_games and rate > 0.5:
                graph.add_edge(a, b, win_rate=rate, games=games)
    return graph


def strategic_cycles(
    payoff: PayoffTable,
    players: Sequence[str] | None = None,
    *,
    min_games: int = 1,
    max_length: int | None = None,
    decayed: bool = False,
) -> list[list[str]]:
    """Every simple cycle of the beats graph (``networkx.simple_cycles``), deterministic order.

    Each cycle starts at its player added earliest to the table and follows the "beats"
    edges; cycles are sorted by length, then by player order. Rock, paper and scissors
    bots give one 3-cycle; a transitive league gives none. The number of cycles can grow
    exponentially with the pool: ``max_length`` bounds the cycle length searched.
    """
    graph = beats_graph(payoff, players, min_games=min_games, decayed=decayed)
    order = {player: i for i, player in enumerate(payoff.players)}
    cycles = []
    for cycle in nx.simple_cycles(graph, length_bound=max_length):
        start = min(range(len(cycle)), key=lambda i: order[cycle[i]])
        cycles.append(cycle[start:] + cycle[:start])
    return sorted(cycles, key=lambda cycle: (len(cycle), [order[p] for p in cycle]))
