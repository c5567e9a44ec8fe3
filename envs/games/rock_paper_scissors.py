"""Iterated rock-paper-scissors: the smallest simultaneous-move game with a strategic cycle.

Two players pick at once for ``num_rounds`` rounds; each sees both players' previous
picks. A round won pays +1, lost -1, drawn 0. The unique Nash equilibrium plays each move
with probability 1/3, so any learner that settles on one move is exploitable.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from marl_arena.core.scripted import ScriptedModule
from marl_arena.env import ALL_AGENTS, MultiAgentEnv

ROCK, PAPER, SCISSORS = 0, 1, 2
MOVES = ("rock", "paper", "scissors")
PLAYERS = ("player_0", "player_1")


def payoff(mine: int, theirs: int) -> int:
    """+1 if ``mine`` beats ``theirs``, -1 if it loses, 0 for a draw."""
    return 0 if mine == theirs else (1 if (mine - theirs) % 3 == 1 else -1)


class RockPaperScissors(MultiAgentEnv):
    """Both players act every step; observation: one-hot of both previous moves (4 slots each, slot 3 = none)."""

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        self.num_rounds = int(config.pop("num_rounds", 10))
        if config:
            raise ValueError(f"rock_paper_scissors: unknown env_config keys {sorted(config)}; allowed: ['num_rounds'].")
        if self.num_rounds < 1:
            raise ValueError(f"rock_paper_scissors: num_rounds must be >= 1, got {self.num_rounds}.")
        self.possible_agents = list(PLAYERS)
        self.observation_spaces = {p: gym.spaces.Box(0.0, 1.0, (8,), np.float32) for p in PLAYERS}
        self.action_spaces = {p: gym.spaces.Discrete(3) for p in PLAYERS}
        self._round = 0
        self._last = (3, 3)

    def _observe(self) -> dict:
        obs = {}
        for seat, player in enumerate(PLAYERS):
            vector = np.zeros(8, np.float32)
            vector[self._last[seat]] = 1.0
            vector[4 + self._last[1 - seat]] = 1.0
            obs[player] = vector
        return obs

    def reset(self, *, seed=None, options=None):
        self.agents = list(PLAYERS)
        self._round = 0
        self._last = (3, 3)
        return self._observe(), {p: {} for p in PLAYERS}

    def step(self, actions):
        missing = [p for p in PLAYERS if p not in actions]
        if missing:
            raise ValueError(f"rock_paper_scissors: both players move every round; no action for {missing}.")
        picks = tuple(int(actions[p]) for p in PLAYERS)
        for player, pick in zip(PLAYERS, picks):
            if pick not in (ROCK, PAPER, SCISSORS):
                raise ValueError(f"rock_paper_scissors: action {pick!r} of {player} is not 0, 1 or 2.")
        self._round += 1
        self._last = picks
        rewards = {PLAYERS[0]: float(payoff(*picks)), PLAYERS[1]: float(payoff(picks[1], picks[0]))}
        done = self._round >= self.num_rounds
        if done:
            self.agents = []
        return (
            self._observe(),
            rewards,
            {ALL_AGENTS: done},  # the last round ends the game: a terminal state, not a time limit
            {ALL_AGENTS: False},
            {p: {"moves": picks} for p in PLAYERS},
        )


class _ConstantMove(ScriptedModule):
    """A scripted player that always picks one move (the cycle's three members)."""

    move = ROCK

    def scripted_logits(self, obs: torch.Tensor) -> torch.Tensor:
        logits = torch.full((len(obs), 3), -1e9)
        logits[:, self.move] = 0.0
        return logits


class RockOnly(_ConstantMove):
    move = ROCK


class PaperOnly(_ConstantMove):
    move = PAPER


class ScissorsOnly(_ConstantMove):
    move = SCISSORS
