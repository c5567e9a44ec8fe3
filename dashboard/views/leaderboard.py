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
    right.metric("Leader (Elo)", board["player"].iloc[0])
    st.dataframe(
        shown, hide_index=True, key="leaderboard_table",
        column_config={
            "elo": st.column_config.NumberColumn("Elo", format="%.0f"),
            "bt": st.column_config.NumberColumn("Bradley-Terry", format="%.0f"),
            "bt_low": st.column_config.NumberColumn("BT 95% low", format="%.0f"),
            "bt_high": st.column_config.NumberColumn("BT 95% high", format="%.0f"),
        },
    )
    st.caption("Click a column header to sort. Bradley-Terry is fitted over every rated game (self-play "
               "excluded), anchored on the mean of the players who played; the interval is 95%.")


ui.page("Leaderboard", body)
