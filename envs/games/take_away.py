"""Take-away (single-pile Nim): a turn-based game whose optimal play is known exactly.

A pile of ``pile`` stones; players alternate removing 1 to ``max_take`` stones; whoever
takes the last stone wins (+1, the other -1). A position is lost for the player to move
exactly when the pile is a multiple of ``max_take + 1``, so the optimal move is to leave
such a multiple (``optimal_take``). Illegal takes (more than the pile) are masked.
"""

from __future__ import annotations

import abc

import gymnasium as gym
import numpy as np
import torch

from marl_arena.core.scripted import ScriptedModule
from marl_arena.env import ALL_AGENTS, MultiAgentEnv

PLAYERS = ("player_0", "player_1")


def optimal_take(pile: int, max_take: int) -> int | None:
    """Stones to take that leave a lost position for the opponent; None if every move loses."""
    take = pile % (max_take + 1)
    return take or None


class TakeAway(MultiAgentEnv):
    """Only the player to move appears in the observations; action k takes k + 1 stones."""

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        self.start_pile = int(config.pop("pile", 21))
        self.max_take = int(config.pop("max_take", 3))
        if config:
            raise ValueError(f"take_away: unknown env_config keys {sorted(config)}; allowed: ['max_take', 'pile'].")
        if self.start_pile < 1 or self.max_take < 1:
            raise ValueError(f"take_away: pile and max_take must be >= 1, got {self.start_pile} and {self.max_take}.")
        space = gym.spaces.Dict({
            "observation": gym.spaces.Box(0.0, 1.0, (self.start_pile + 1,), np.float32),
            "action_mask": gym.spaces.Box(0.0, 1.0, (self.max_take,), np.float32),
        })
        self.possible_agents = list(PLAYERS)
        self.observation_spaces = {p: space for p in PLAYERS}
        self.action_spaces = {p: gym.spaces.Discrete(self.max_take) for p in PLAYERS}
        self.pile = self.start_pile
        self.to_move = 0

    def _observe(self) -> dict:
        board = np.zeros(self.start_pile + 1, np.float32)
        board[self.pile] = 1.0
        mask = (np.arange(1, self.max_take + 1) <= self.pile).astype(np.float32)
        return {PLAYERS[self.to_move]: {"observation": board, "action_mask": mask}}

    def reset(self, *, seed=None, options=None):
        self.agents = list(PLAYERS)
        self.pile = self.start_pile
        self.to_move = 0
        return self._observe(), {}

    def step(self, actions):
        mover = PLAYERS[self.to_move]
        if set(actions) != {mover}:
            raise ValueError(f"take_away: it is {mover}'s turn; got actions for {sorted(actions)}.")
        take = int(actions[mover]) + 1
        if not 1 <= take <= min(self.max_take, self.pile):
            raise ValueError(
                f"take_away: {mover} cannot take {take} stone(s) from a pile of {self.pile} "
                f"(legal: 1..{min(self.max_take, self.pile)})."
            )
        self.pile -= take
        if self.pile == 0:
            self.agents = []
            other = PLAYERS[1 - self.to_move]
            return {}, {mover: 1.0, other: -1.0}, {ALL_AGENTS: True}, {ALL_AGENTS: False}, {}
        self.to_move = 1 - self.to_move
        return self._observe(), {mover: 0.0}, {ALL_AGENTS: False}, {ALL_AGENTS: False}, {}


class _PileReader(ScriptedModule):
    """Scripted take-away players read the pile from the one-hot board (max_take = the action count)."""

    def scripted_logits(self, obs: torch.Tensor) -> torch.Tensor:
        piles = obs.argmax(dim=-1)
        takes = self.choose(piles)  # stones to take, 0 for "no preference"
        logits = torch.zeros(len(obs), self.num_actions)
        chosen = takes > 0
        logits[chosen, takes[chosen] - 1] = 1e9
        return logits

    @abc.abstractmethod
    def choose(self, piles: torch.Tensor) -> torch.Tensor:
        """Stones to take per pile; 0 where the player has no preference (then it plays at random)."""


class GreedyTaker(_PileReader):
    """One-ply greedy: takes the last stones when it can, otherwise plays at random."""

    def choose(self, piles: torch.Tensor) -> torch.Tensor:
        return torch.where(piles <= self.num_actions, piles, torch.zeros_like(piles))


class OptimalTaker(_PileReader):
    """Perfect play: leaves a multiple of max_take + 1 whenever it can (random when it cannot)."""

    def choose(self, piles: torch.Tensor) -> torch.Tensor:
        return piles % (self.num_actions + 1)
