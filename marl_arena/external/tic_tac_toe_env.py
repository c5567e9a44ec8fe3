"""The match server's tic-tac-toe as an in-process ``MultiAgentEnv``, and its score against random play.

A league whose games are played by ``marl_arena.external.tic_tac_toe`` still needs the game
in the trainer process: its seats, its spaces (the modules are built from them), and a way
to score the main agent. This env runs the same ``TicTacToe`` rules, so the module sees the
same observations here as from the match server.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from marl_arena.core.columns import Columns
from marl_arena.core.rl_module import RLModule
from marl_arena.env import ALL_AGENTS, MultiAgentEnv
from marl_arena.external.tic_tac_toe import NUM_CELLS, OBS_SIZE, SEATS, TicTacToe


class TicTacToeEnv(MultiAgentEnv):
    """Turn-based: only the seat to move appears in the observations; action k marks cell k."""

    def __init__(self, config: dict | None = None):
        if config:
            raise ValueError(f"TicTacToeEnv takes no env_config, got keys {sorted(config)}.")
        space = gym.spaces.Dict({
            "observation": gym.spaces.Box(0.0, 1.0, (OBS_SIZE,), np.float32),
            "action_mask": gym.spaces.Box(0.0, 1.0, (NUM_CELLS,), np.float32),
        })
        self.possible_agents = list(SEATS)
        self.observation_spaces = {seat: space for seat in SEATS}
        self.action_spaces = {seat: gym.spaces.Discrete(NUM_CELLS) for seat in SEATS}
        self.game = TicTacToe()

    def _observe(self) -> dict:
        seat = self.game.to_move
        return {SEATS[seat]: {"observation": self.game.observation(seat), "action_mask": self.game.legal_mask()}}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.game.reset()
        return self._observe(), {}

    def step(self, actions: dict):
        mover = SEATS[self.game.to_move]
        if set(actions) != {mover}:
            raise ValueError(f"tic-tac-toe: it is {mover}'s turn; got actions for {sorted(actions)}.")
        self.game.play(int(actions[mover]))
        if self.game.done:
            returns = dict(zip(SEATS, self.game.returns()))
            return {}, returns, {ALL_AGENTS: True}, {ALL_AGENTS: False}, {}
        return self._observe(), {mover: 0.0}, {ALL_AGENTS: False}, {ALL_AGENTS: False}, {}


def score_against_random(module: RLModule, seat: int, games: int, seed: int = 0) -> dict[str, Any]:
    """Greedy ``module`` in ``seat`` against uniformly random legal moves: win, draw and loss rates."""
    rng = np.random.default_rng(seed)
    game = TicTacToe()
    outcomes = []
    for _ in range(games):
        game.reset()
        while not game.done:
            mask = game.legal_mask()
            if game.to_move == seat:
                batch = {Columns.OBS: torch.from_numpy(game.observation(seat)[None]),
                         Columns.ACTION_MASK: torch.from_numpy(mask[None])}
                with torch.inference_mode():
                    logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS][0]
                game.play(int(torch.argmax(logits)))
            else:
                game.play(int(rng.choice(np.flatnonzero(mask))))
        outcomes.append(game.returns()[seat])
    outcomes = np.asarray(outcomes)
    return {"win": float(np.mean(outcomes > 0)), "draw": float(np.mean(outcomes == 0)),
            "loss": float(np.mean(outcomes < 0)), "win_or_draw": float(np.mean(outcomes >= 0)), "games": games}
