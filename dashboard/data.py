"""The dashboard's one way to read a league: a read-only store, queries cached on its last change.

Each render asks the store for its last-change marker (one cheap query) and passes it to
the cached queries, so results are reused until the league writes something: a live page
that refreshes every few seconds costs one marker query while nothing changes. Every
read opens the store read-only and reads one consistent state, while the league writes.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import sqlite3
from typing import Any, Callable

import streamlit as st

from marl_arena.core.rl_module import RLModule
from marl_arena.league.module_specs import load_player_module
from marl_arena.league.store import DB_NAME, LeagueStore, StoreError
from marl_arena_dashboard import LEAGUE_DIR_ENV, READ_ONLY_ENV, queries


class LeagueUnavailable(Exception):
    """There is no league to show at the given place; the message tells the person what to do."""


@dataclasses.dataclass(frozen=True)
class League:
    """A league directory as of one change of its store."""

    directory: str
    marker: tuple[int, ...]

    def load(self, query: Callable[..., Any], *args: Any) -> Any:
        """``query(store, *args)`` for a function of ``queries``, cached until the store changes.

        The result is shared with every other page and session: read it, never modify it.
        """
        return _cached(query.__name__, self.directory, self.marker, args)


def league_directory() -> str | None:
    return os.environ.get(LEAGUE_DIR_ENV) or None


def read_only() -> bool:
    """Whether the app was started with ``--read-only``: then no page may write to the store."""
    return os.environ.get(READ_ONLY_ENV) == "1"


def open_league(directory: str | None) -> League:
    """The league at ``directory`` as of now, or ``LeagueUnavailable`` saying why there is none."""
    if not directory:
        raise LeagueUnavailable("No league directory was given. Start the dashboard with "
                                "`marl-arena dashboard <league dir>`.")
    path = pathlib.Path(directory)
    if not path.exists():
        raise LeagueUnavailable(f"There is no league directory at `{path}`. Check the path, or start a league "
                                f"there with `marl-arena league run <name> --dir {path}`.")
    if not (path / DB_NAME).exists():
        raise LeagueUnavailable(f"`{path}` holds no league store yet (no {DB_NAME}). It appears when a league "
                                "starts there; with live refresh on, this page picks it up.")
    try:
        store = LeagueStore(path, read_only=True)
        try:
            marker = store.last_change()
        finally:
            store.close()
    except (StoreError, sqlite3.Error) as error:
        raise LeagueUnavailable(f"The league store in `{path}` cannot be read: {error}") from error
    return League(str(path.resolve()), marker)


# A resource cache, not a data cache: results are shared, not copied, because copying the
# standings (a 200-player payoff table) costs more than computing a page. Pages only read them.
@st.cache_resource(max_entries=256, show_spinner=False)
def _cached(query_name: str, directory: str, marker: tuple[int, ...], args: tuple) -> Any:
    store = LeagueStore(directory, read_only=True)
    try:
        with store.reading():
            return getattr(queries, query_name)(store, *args)
    finally:
        store.close()


def player_module(directory: str, player_id: str) -> RLModule:
    """A stored player's module, built once for its weights (a league started afresh in the same place
    has new weights under the same player ids, so they are part of the key)."""
    store = LeagueStore(directory, read_only=True)
    try:
        digest = store.player_snapshot(player_id)
    finally:
        store.close()
    return _player_module(directory, player_id, digest)


@st.cache_resource(max_entries=32, show_spinner=False)
def _player_module(directory: str, player_id: str, digest: str | None) -> RLModule:
    store = LeagueStore(directory, read_only=True)
    try:
        return load_player_module(store, player_id)
    finally:
        store.close()
