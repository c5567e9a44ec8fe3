"""Episode metrics: means over a sliding window of finished episodes, by agent and module."""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any, Iterable

import numpy as np

from marl_arena.runners.env_runner import EpisodeStats


def summarize_episodes(episodes: Iterable[EpisodeStats]) -> dict[str, Any]:
    """Return/length statistics of ``episodes`` under RLlib's metric names (NaN when none)."""
    episodes = list(episodes)
    if not episodes:
        nan = float("nan")
        return {"episode_return_mean": nan, "episode_return_max": nan, "episode_return_min": nan,
                "episode_len_mean": nan, "agent_episode_returns_mean": {}, "module_episode_returns_mean": {}}
    returns = np.array([e.episode_return for e in episodes])
    by_agent: dict[Any, list[float]] = defaultdict(list)
    by_module: dict[str, list[float]] = defaultdict(list)
    for episode in episodes:
        for agent_id, value in episode.agent_returns.items():
            by_agent[agent_id].append(value)
        for module_id, value in episode.module_returns.items():
            by_module[module_id].append(value)
    return {
        "episode_return_mean": float(returns.mean()),
        "episode_return_max": float(returns.max()),
        "episode_return_min": float(returns.min()),
        "episode_len_mean": float(np.mean([e.length for e in episodes])),
        "agent_episode_returns_mean": {a: float(np.mean(v)) for a, v in by_agent.items()},
        "module_episode_returns_mean": {m: float(np.mean(v)) for m, v in by_module.items()},
    }


class EpisodeWindow:
    """The last ``size`` finished episodes, for smoothed training metrics."""

    def __init__(self, size: int):
        self._episodes: deque[EpisodeStats] = deque(maxlen=size)

    def extend(self, episodes: Iterable[EpisodeStats]) -> None:
        self._episodes.extend(episodes)

    def summary(self) -> dict[str, Any]:
        return summarize_episodes(self._episodes)
