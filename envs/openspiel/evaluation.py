"""Score a policy the way people talk about board-game agents: its results against random play or a bot."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyspiel
from open_spiel.python import policy as os_policy

from marl_arena_envs.openspiel.env import OpenSpielEnv


def play_against(policy: os_policy.Policy, game: str, seat: int, games: int, opponent: Any, seed: int = 0,
                 env_config: dict | None = None) -> dict[str, float]:
    """Greedy ``policy`` (its most probable action) in ``seat`` against ``opponent`` (any opponent
    spec of ``OpenSpielEnv``: ``"random"``, ``{"bot": "mcts", "max_simulations": 200}``, a policy ...)
    over ``games`` games seeded ``seed, seed + 1, ...``: win, draw and loss rates."""
    env = OpenSpielEnv(game, opponents={1 - seat: opponent}, **(env_config or {}))
    outcomes = []
    for episode in range(games):
        obs, _ = env.reset(seed=seed + episode)
        while obs:
            probs = policy.action_probabilities(env.state, seat)
            obs, *_ = env.step({seat: max(probs, key=probs.get)})
        outcomes.append(env.state.returns()[seat])
    outcomes = np.asarray(outcomes)
    return {"win": float(np.mean(outcomes > 0)), "draw": float(np.mean(outcomes == 0)),
            "loss": float(np.mean(outcomes < 0)), "games": games}


def play_both_seats_against(policy: os_policy.Policy, game: str, games: int, opponent: Any, seed: int = 0,
                            env_config: dict | None = None) -> dict[str, dict[str, float]]:
    """``play_against`` from each seat, keyed ``"seat0"``, ``"seat1"``; seat ``s`` plays games seeded
    from ``seed * (s + 1)``, so the seats see different games."""
    return {f"seat{seat}": play_against(policy, game, seat, games, opponent, seed=seed * (seat + 1),
                                        env_config=env_config)
            for seat in (0, 1)}


def play_against_random(policy: os_policy.Policy, game: str, seat: int, games: int, seed: int = 0,
                        env_config: dict | None = None) -> dict[str, float]:
    """``play_against`` OpenSpiel's uniform random player."""
    return play_against(policy, game, seat, games, os_policy.UniformRandomPolicy(pyspiel.load_game(game)), seed,
                        env_config)


def play_both_seats_against_random(policy: os_policy.Policy, game: str, games: int, seed: int = 0,
                                   env_config: dict | None = None) -> dict[str, dict[str, float]]:
    """``play_both_seats_against`` uniform random: a self-play agent must beat random from both seats."""
    return play_both_seats_against(policy, game, games, os_policy.UniformRandomPolicy(pyspiel.load_game(game)),
                                   seed, env_config)
