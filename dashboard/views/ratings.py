"""Ratings over time (one line per player, snapshots marked) and each trainable player's training curves."""

import altair as alt
import streamlit as st

from marl_arena.league.players import TRAINABLE_KINDS
from marl_arena_dashboard import queries, ui


def ratings(league, overview):
    players = st.multiselect("Players", overview["players"], default=league.load(queries.standings).top(8),
                             key="rating_players")
    if not players:
        st.info("Choose players to draw their ratings.")
        return
    data = league.load(queries.rating_lines, players)
    lines = alt.Chart(data["lines"]).mark_line().encode(
        x=alt.X("match:Q", title="match"), y=alt.Y("elo:Q", title="Elo", scale=alt.Scale(zero=False)),
        color="player:N", tooltip=["player:N", "match:Q", alt.Tooltip("elo:Q", format=".0f")])
    marks = alt.Chart(data["snapshots"]).mark_point(shape="diamond", size=90, filled=True, color="black").encode(
        x="match:Q", y="elo:Q", tooltip=["snapshot:N", "parent:N", "match:Q", alt.Tooltip("elo:Q", format=".0f")])
    st.altair_chart(lines + marks, width="stretch")
    st.caption("Online Elo after each rated match; diamonds mark snapshots, where they were frozen.")


def training(league, overview):
    trainable = [pid for pid in overview["players"] if overview["kinds"][pid] in TRAINABLE_KINDS]
    if not trainable:
        st.info("No trainable player in this league.")
        return
    player = st.selectbox("Trainable player", trainable, key="training_player")
    curves = league.load(queries.training_frame, player)
    if len(curves) == 0:
        st.info(f"`{player}` has not finished a training iteration yet.")
        return
    losses = [c for c in curves.columns if c.startswith("learner/") and "loss" in c]
    for title, columns in (("Episode return (mean)", ["episode_return_mean"]), ("Losses", losses),
                           ("Env steps per second", ["env_steps_per_s"])):
        present = [c for c in columns if c in curves.columns]
        if present:
            st.markdown(f"**{title}**")
            st.line_chart(curves, x="iteration", y=present)


def body(league, overview):
    st.subheader("Ratings over time")
    ratings(league, overview)
    st.subheader("Training curves")
    training(league, overview)


ui.page("Ratings and training", body)
