"""Leaderboard: every player with kind, lineage, Elo, Bradley-Terry rating and interval, results."""

import streamlit as st

from marl_arena_dashboard import queries, ui


def body(league, overview):
    board = league.load(queries.standings).board
    kinds = sorted(board["kind"].unique())
    chosen = st.multiselect("Kinds", kinds, default=kinds, key="leaderboard_kinds")
    shown = board[board["kind"].isin(chosen)]
    left, middle, right = st.columns(3)
    left.metric("Players", len(board))
    middle.metric("Matches", overview["matches"])
    right.metric("Leader", board["player"].iloc[0])
    columns = {
        "elo": st.column_config.NumberColumn("Elo", format="%.0f"),
        "bt": st.column_config.NumberColumn("Rating (Bradley-Terry)", format="%.0f"),
        "bt_low": st.column_config.NumberColumn("BT 95% low", format="%.0f"),
        "bt_high": st.column_config.NumberColumn("BT 95% high", format="%.0f"),
    }
    sides = league.load(queries.team_sides)
    if sides is None:
        st.dataframe(shown, hide_index=True, key="leaderboard_table", column_config=columns)
    else:  # asymmetric sides: a team is only rated against the other side, so one board per side
        for side, agents in sides.items():
            st.subheader(f"Side {side}: {', '.join(agents)}")
            st.dataframe(shown[shown["side"] == side], hide_index=True, key=f"leaderboard_table_{side}",
                         column_config=columns)
    st.caption("Sorted by the rating: a Bradley-Terry fit of every rated game (self-play excluded) in which "
               "a learner counts as a new player after each of its snapshots, so the rating is its current "
               "strength; anchored on the mean, the interval is 95%. Elo is re-anchored on it every "
               "iteration. Click a column header to sort.")


ui.page("Leaderboard", body)
