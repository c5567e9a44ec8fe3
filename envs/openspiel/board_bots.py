"""Scripted tic-tac-toe players that read the board from the observation (a ladder of known strength).

OpenSpiel's tic_tac_toe observation is the whole board (3x3 with planes empty, o, x), so a
module can rebuild the game state from it and play like a bot: ``TicTacToeGreedy`` wins
when it can and blocks when it must (one ply), ``TicTacToeMCTS`` runs OpenSpiel's MCTS. In a
league they rate as random < greedy < MCTS, which is how ratings are checked on a real game.
"""

from __future__ import annotations

import abc

import gymnasium as gym
import numpy as np
import pyspiel
import torch

from marl_arena.core.scripted import ScriptedModule
from marl_arena_envs.openspiel.opponents import mcts_bot

_GAME = pyspiel.load_game("tic_tac_toe")
_CELLS = 9
_O_PLANE, _X_PLANE = 1, 2
_LINES = [np.array(line) for line in ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8),
                                      (0, 4, 8), (2, 4, 6))]


def board_state(observation: np.ndarray) -> pyspiel.State:
    """The tic_tac_toe state whose board is ``observation`` (x moves first, so moves alternate)."""
    planes = np.moveaxis(np.asarray(observation).reshape(3, 3, -1), -1, 0).reshape(-1, _CELLS)
    xs, os_ = np.flatnonzero(planes[_X_PLANE]), np.flatnonzero(planes[_O_PLANE])
    state = _GAME.new_initial_state()
    for turn in range(len(xs) + len(os_)):
        state.apply_action(int((xs if turn % 2 == 0 else os_)[turn // 2]))
    return state


class _BoardBot(ScriptedModule):
    def __init__(self, observation_space: gym.Space, action_space: gym.Space, model_config=None,
                 inference_only: bool = True):
        super().__init__(observation_space, action_space, model_config, inference_only)
        if observation_space.shape != (3, 3, 3) or action_space.n != _CELLS:
            raise ValueError(f"{type(self).__name__} plays open_spiel:tic_tac_toe without seat_one_hot "
                             f"(3x3x3 observations, 9 actions); got {observation_space} and {action_space}.")

    def scripted_logits(self, obs: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(obs), _CELLS)
        for row, observation in enumerate(obs.numpy()):
            move = self.choose(board_state(observation))
            if move is not None:
                logits[row, move] = 1e9
        return logits

    @abc.abstractmethod
    def choose(self, state: pyspiel.State) -> int | None:
        """The move to play, or None to play at random among the legal moves."""


class TicTacToeGreedy(_BoardBot):
    """One ply: a winning move if there is one, else a move that blocks the opponent's, else random."""

    def choose(self, state: pyspiel.State) -> int | None:
        board = np.asarray(state.observation_tensor(0)).reshape(3, _CELLS) > 0
        x_to_move = board[_X_PLANE].sum() == board[_O_PLANE].sum()
        mine, theirs = (board[_X_PLANE], board[_O_PLANE]) if x_to_move else (board[_O_PLANE], board[_X_PLANE])
        empty = board[0]
        for owner in (mine, theirs):  # complete my line, else block theirs
            for line in _LINES:
                if owner[line].sum() == 2 and empty[line].sum() == 1:
                    return int(line[np.argmax(empty[line])])
        return None


class TicTacToeMCTS(_BoardBot):
    """OpenSpiel's MCTS (300 simulations, random rollouts) on the rebuilt state."""

    max_simulations = 300

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, model_config=None,
                 inference_only: bool = True):
        super().__init__(observation_space, action_space, model_config, inference_only)
        self._bot = mcts_bot(_GAME, seed=0, max_simulations=self.max_simulations)

    def choose(self, state: pyspiel.State) -> int | None:
        return int(self._bot.step(state))
