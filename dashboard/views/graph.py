"""League graph: lineage (snapshot -> parent) and who beats whom, strategic cycles in red."""

import streamlit as st

from marl_arena_dashboard import graphs, queries, ui


def body(league, overview):
    st.subheader("Lineage")
    st.graphviz_chart(graphs.to_dot(league.load(queries.lineage_graph), overview["kinds"], rankdir="RL"))
    st.caption("An arrow from each snapshot to the player it was frozen from.")

    st.subheader("Who beats whom")
    left, middle, right = st.columns(3)
    # Cycles grow exponentially with players and length: both are bounded so the page stays quick.
    shown = ui.player_count(left, "Best players (by rating)", min(len(overview["players"]), 30), 15, "beats_count")
    min_games = middle.number_input("Games a pair needs", 1, 10_000, 10, key="beats_min_games")
    max_length = right.slider("Longest cycle searched", 2, 4, 3, key="beats_max_length")
    standings = league.load(queries.standings)
    result = queries.beats(standings.payoff, standings.top(shown), int(min_games), max_length)
    cycles = result["cycles"]
    st.graphviz_chart(graphs.to_dot(result["graph"], overview["kinds"], highlight=graphs.cycle_edges(cycles),
                                    edge_label="win_rate"))
    st.caption("An arrow a -> b when a's win rate against b is above 0.5 (labelled) over enough games.")
    if cycles:
        st.warning(f"{len(cycles)} strategic cycle(s): no single rating orders these players.")
        st.markdown("\n".join(f"- {' -> '.join(cycle + cycle[:1])}" for cycle in cycles[:50]))
    else:
        st.success("No strategic cycle among these players: the beats graph is a ranking.")


ui.page("League graph", body, min_players=2)
