"""Payoff heatmap: win rate of each row player against each column player, games on hover."""

import altair as alt
import streamlit as st

from marl_arena_dashboard import queries, ui


def body(league, overview):
    shown = ui.player_count(st, "Best players shown (by rating)", len(overview["players"]), 20, "payoff_count")
    standings = league.load(queries.standings)
    players = standings.top(shown)
    cells = queries.payoff_frame(standings.payoff, players)
    if cells["games"].sum() == 0:
        st.info("These players have no rated games against each other yet.")
        return
    chart = alt.Chart(cells, height=max(150, 26 * len(players))).mark_rect().encode(
        x=alt.X("opponent:N", sort=players, title="column player"),
        y=alt.Y("player:N", sort=players, title="row player"),
        color=alt.Color("win_rate:Q", title="win rate", scale=alt.Scale(scheme="redblue", domain=[0, 1])),
        tooltip=["player:N", "opponent:N", alt.Tooltip("win_rate:Q", format=".2f"), "games:Q", "wins:Q", "draws:Q",
                 "losses:Q"],
    )
    st.altair_chart(chart, width="stretch")
    st.caption("Win rate of the row player against the column player, draws counting half; hover for games.")
    with st.expander("As a table"):
        st.dataframe(cells.pivot(index="player", columns="opponent", values="win_rate").reindex(
            index=players, columns=players), key="payoff_table")


ui.page("Payoff", body, min_players=2)
