"""What every page shares: opening the league with a clear message when there is none, live refresh.

A page is a title and a body ``body(league, overview)``. ``page`` opens the league, says in
plain words why there is nothing to show (no directory, no store yet, no players, one
player where a page compares players) instead of a traceback, and runs the body as a
fragment that reruns every few seconds while the sidebar's live toggle is on: only the
body reruns, and cached queries make a rerun with no new data cost one marker query.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import streamlit as st

from marl_arena.league.store import StoreError
from marl_arena_dashboard import queries
from marl_arena_dashboard.data import League, LeagueUnavailable, league_directory, open_league

LIVE_KEY = "live"
REFRESH_KEY = "refresh_s"
DEFAULT_REFRESH_S = 5

Body = Callable[[League, dict[str, Any]], None]


def page(title: str, body: Body, *, min_players: int = 1, live: bool = True) -> None:
    """Render one page: ``title``, then ``body`` once the league has ``min_players`` players."""
    st.title(title)
    every = st.session_state.get(REFRESH_KEY, DEFAULT_REFRESH_S) if live and st.session_state.get(LIVE_KEY) else None
    st.fragment(lambda: _guarded(body, min_players), run_every=every)()


def _guarded(body: Body, min_players: int) -> None:
    try:
        league = open_league(league_directory())
        overview = league.load(queries.overview)
    except LeagueUnavailable as error:
        st.info(str(error))
        return
    players = overview["players"]
    if not players:
        st.info(f"The league in `{league.directory}` has no players yet. This page fills in once the league "
                "starts (turn on live refresh in the sidebar to watch).")
        return
    if len(players) < min_players:
        st.info(f"The league has one player so far (`{players[0]}`); this page compares players, so it needs "
                f"at least {min_players}. It fills in as the league adds snapshots and opponents.")
        return
    try:
        body(league, overview)
    except (StoreError, sqlite3.Error) as error:  # a store damaged or replaced while the page is open
        st.error(f"The league store in `{league.directory}` could not be read: {error}")


def player_count(container: Any, label: str, available: int, default: int, key: str) -> int:
    """How many of the best players to show: a slider from 2, or simply all when there are only 2."""
    if available <= 2:
        return available
    return container.slider(label, 2, available, min(default, available), key=key)

