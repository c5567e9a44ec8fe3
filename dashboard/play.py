"""A person against a league player at a board game, and the finished game stored as a match.

The league player acts greedily with its own module (a scripted bot keeps its own way of
choosing), on the observation its env gave it in training (``BoardGame.observe``). The
result goes into the store as a match of the player ``human``, added the first time, with
Elo updated the way the league updates it, so the person shows on the leaderboard. That
is the dashboard's only write: one short transaction on a store opened just for it (the
store is in WAL mode, so a running league keeps writing meanwhile).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time

import numpy as np
import pyspiel
import torch

from marl_arena.core.columns import Columns
from marl_arena.core.recurrent import state_after
from marl_arena.core.rl_module import RLModule
from marl_arena.league.leaderboard import INITIAL_ELO
from marl_arena.league.players import PlayerInfo
from marl_arena.league.ratings import elo_update
from marl_arena.league.store import LeagueStore, MatchRecord
from marl_arena_dashboard.boards import BoardGame

HUMAN = "human"
"""The player id every person's games are stored under."""

DEFAULT_ELO_K = 16.0
"""Elo's K where the league recorded none (LeagueConfig's default)."""


def module_move(module: RLModule, board: BoardGame, state: pyspiel.State) -> int:
    """The move ``module`` plays at ``state``: its greedy choice among the legal moves."""
    player = state.current_player()
    batch = {Columns.OBS: torch.as_tensor(board.observe(state, player)[None]),
             Columns.ACTION_MASK: torch.as_tensor(board.mask(state)[None])}
    if module.is_stateful():  # memory of its own earlier moves in this game, as the runners keep it
        earlier = [board.observe(s, player) for s in board.states(state.history())[:-1] if s.current_player() == player]
        batch[Columns.STATE_IN] = state_after(module, earlier)
    with torch.inference_mode():
        inputs = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
        action = int(module.action_distribution(inputs).deterministic_sample()[0])
    if action not in state.legal_actions():  # a module that ignores the mask must not break the game
        action = int(np.flatnonzero(board.mask(state))[0])
    return action


@dataclasses.dataclass
class HumanGame:
    """A game between a person and a league player, as the page keeps it between reruns."""

    directory: str
    env: str
    """The league's env id, stored with the match."""
    opponent: str
    seat: int
    """The person's seat: 0 moves first."""
    elo_k: float = DEFAULT_ELO_K
    moves: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    match_id: int | None = None
    """The stored match, once the game has ended."""

    def state(self, board: BoardGame) -> pyspiel.State:
        return board.states([action for _, action in self.moves])[-1]

    def play(self, board: BoardGame, module: RLModule, action: int | None = None) -> None:
        """The person's ``action`` (None to let the league player open), its replies, and the record at the end."""
        state = self.state(board)
        if action is not None:
            if state.is_terminal() or state.current_player() != self.seat or action not in state.legal_actions():
                raise ValueError(f"Move {action} is not the person's to play now.")
            self.moves.append((self.seat, action))
            state.apply_action(action)
        while not state.is_terminal() and state.current_player() != self.seat:
            reply = module_move(module, board, state)
            self.moves.append((state.current_player(), reply))
            state.apply_action(reply)
        if state.is_terminal() and self.match_id is None:
            players = (HUMAN, self.opponent) if self.seat == 0 else (self.opponent, HUMAN)
            self.match_id = record_human_match(self.directory, self.env, players, state, self.moves, self.elo_k)


def record_human_match(directory: str, env: str, players: tuple[str, str], state: pyspiel.State,
                       moves: list[tuple[int, int]], elo_k: float = DEFAULT_ELO_K) -> int:
    """Store a finished game of ``HUMAN`` (seated as in ``players``) and the Elo it moves; returns its id."""
    if not state.is_terminal():
        raise ValueError("Only a finished game is recorded.")
    match = MatchRecord(env=env, players=players, returns=tuple(float(r) for r in state.returns()),
                        length=len(moves), moves=tuple(moves))
    store = LeagueStore(directory)
    try:
        if HUMAN not in {p.id for p in store.players()}:
            try:
                store.add_player(PlayerInfo(HUMAN, "human", created=time.time()))
            except sqlite3.IntegrityError:
                pass  # another page added the person a moment ago
        elo = store.latest_ratings()
        first, second = players
        ratings = elo_update(elo.get(first, INITIAL_ELO), elo.get(second, INITIAL_ELO), match.score, elo_k)
        return store.record_match(match, dict(zip(players, ratings)))
    finally:
        store.close()
