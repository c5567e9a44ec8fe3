"""The league dashboard's entry script: sidebar (league, live refresh) and the pages.

Run through ``marl-arena dashboard <league dir>``, which sets ``MARL_ARENA_LEAGUE_DIR``
(``MARL_ARENA_LEAGUE_DIR=<dir> streamlit run dashboard/app.py`` does the same), and
``MARL_ARENA_DASHBOARD_READ_ONLY=1`` for ``--read-only``, which leaves out the Play page;
``?live=off`` in the address opens a page with live refresh off.
"""

import streamlit as st

from marl_arena_dashboard import ui
from marl_arena_dashboard.data import league_directory, read_only

st.set_page_config(page_title="marl_arena league", page_icon=":trophy:", layout="wide")

pages = [
    st.Page("views/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:", default=True),
    st.Page("views/ratings.py", title="Ratings and training", icon=":material/show_chart:"),
    st.Page("views/payoff.py", title="Payoff", icon=":material/grid_on:"),
    st.Page("views/graph.py", title="League graph", icon=":material/hub:"),
    st.Page("views/matches.py", title="Matches", icon=":material/history:"),
]
if not read_only():  # Play is the one page that writes: it stores the person's games as matches
    pages.append(st.Page("views/play.py", title="Play", icon=":material/sports_esports:"))
navigation = st.navigation(pages)

with st.sidebar:
    st.caption(f"League: `{league_directory() or 'none given'}`" + (" (read-only)" if read_only() else ""))
    st.toggle("Live refresh", value=st.query_params.get("live") != "off", key=ui.LIVE_KEY,
              help="Rerun the page every few seconds while a league writes to the store (`?live=off` in the "
                   "address starts with it off).")
    st.slider("Refresh every (s)", 1, 60, ui.DEFAULT_REFRESH_S, key=ui.REFRESH_KEY,
              disabled=not st.session_state.get(ui.LIVE_KEY, True))

navigation.run()
