"""Score a policy the way people talk about board-game agents: its results against random play."""

from __future__ import annotations

import numpy as np
import pyspiel
from open_spiel.python import policy as os_policy

from marl_arena_envs.openspiel.env import OpenSpielEnv


def play_against_random(policy: os_policy.Policy, game: str, seat: int, games: int, seed: int = 0,
                        env_config: dict | None = None) -> dict[str, float]:
    """Greedy ``policy`` (its most probable action) in ``seat`` against OpenSpiel's uniform
    random player, over ``games`` games seeded ``seed, seed + 1, ...``: win, draw and loss rates."""
    opponent = os_policy.UniformRandomPolicy(pyspiel.load_game(game))
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


def play_both_seats_against_random(policy: os_policy.Policy, game: str, games: int, seed: int = 0,
                                   env_config: dict | None = None) -> dict[str, dict[str, float]]:
    """``play_against_random`` from each seat, keyed ``"seat0"``, ``"seat1"``: a self-play agent
    must beat random from both; seat ``s`` plays games seeded from ``seed * (s + 1)``, so the
    seats see different games."""
    return {f"seat{seat}": play_against_random(policy, game, seat, games, seed=seed * (seat + 1),
                                               env_config=env_config)
            for seat in (0, 1)}
