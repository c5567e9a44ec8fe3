"""League graphs as Graphviz DOT text, which ``st.graphviz_chart`` draws in the browser.

The graphs themselves are networkx graphs made elsewhere (lineage in ``queries``, the beats
graph in ``marl_arena.league.cycles``); this module only says how they look: a colour per
player kind, and edges of strategic cycles in red.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import networkx as nx

KIND_COLOURS = {"main_agent": "#9ecae1", "main_exploiter": "#fcae91", "league_exploiter": "#cbc9e2",
                "snapshot": "#e0e0e0", "scripted": "#a1d99b", "human": "#fdd0a2"}
CYCLE_COLOUR = "#d62728"


def cycle_edges(cycles: Iterable[list[str]]) -> set[tuple[str, str]]:
    """The "beats" edges that close each cycle ``[a, b, ..., z]``: a->b, ..., z->a."""
    return {(cycle[i], cycle[(i + 1) % len(cycle)]) for cycle in cycles for i in range(len(cycle))}


def to_dot(graph: nx.DiGraph, kinds: Mapping[str, str], *, highlight: set[tuple[str, str]] = frozenset(),
           edge_label: str | None = None, rankdir: str = "LR") -> str:
    """DOT text: nodes filled by kind, ``highlight`` edges thick and red, ``edge_label`` an edge attribute."""
    lines = ["digraph {", f"rankdir={rankdir};", "bgcolor=transparent;",
             'node [shape=box, style="rounded,filled", fontname="sans-serif", fontsize=10];',
             'edge [fontname="sans-serif", fontsize=8, color="#888888"];']
    for node in graph.nodes:
        colour = KIND_COLOURS.get(kinds.get(node, ""), "#ffffff")
        lines.append(f'{json.dumps(node)} [fillcolor="{colour}", tooltip={json.dumps(kinds.get(node, ""))}];')
    for a, b, attributes in graph.edges(data=True):
        style = [f'color="{CYCLE_COLOUR}"', "penwidth=2.5"] if (a, b) in highlight else []
        if edge_label is not None and edge_label in attributes:
            style.append(f'label="{attributes[edge_label]:.2f}"')
        lines.append(f'{json.dumps(a)} -> {json.dumps(b)} [{", ".join(style)}];')
    lines.append("}")
    return "\n".join(lines)
