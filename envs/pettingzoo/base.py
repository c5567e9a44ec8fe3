"""What both PettingZoo adapters share: the wrapped env's agents, spaces and action checks."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from marl_arena.env.multi_agent_env import AgentID, MultiAgentEnv
from marl_arena_envs.pettingzoo.actions import action_check, discrete_start, masked_agents


def game_name(env: Any, name: str | None) -> str:
    """``name``, else the env's ``metadata["name"]``, else its class name (for error messages)."""
    if name:
        return name
    metadata = getattr(env, "metadata", None) or {}
    return str(metadata.get("name") or type(getattr(env, "unwrapped", env)).__name__)


class PettingZooAdapter(MultiAgentEnv):
    """Adopts a PettingZoo env's agents and spaces and prepares the per-agent action checks."""

    def __init__(self, env: Any, name: str | None):
        self.env = env
        self.name = game_name(env, name)
        self.possible_agents = list(env.possible_agents)
        self.observation_spaces: dict[AgentID, gym.Space] = {a: env.observation_space(a) for a in self.possible_agents}
        self.action_spaces: dict[AgentID, gym.Space] = {a: env.action_space(a) for a in self.possible_agents}
        self.render_mode = getattr(env, "render_mode", None)
        self._checks = {a: action_check(space) for a, space in self.action_spaces.items()}
        self._starts = {a: discrete_start(space) for a, space in self.action_spaces.items()}
        self._masked = masked_agents(self.observation_spaces)
        self.state_space = _state_space(env)

    def state(self) -> Any:
        """The game's global state (PettingZoo's ``state()``)."""
        if self.state_space is None:
            raise NotImplementedError(f"PettingZoo game {self.name!r} offers no global state (it has no state_space).")
        return self.env.state()


def _state_space(env: Any) -> gym.Space | None:
    """The env's ``state_space``, or None where it has none (most classic games)."""
    try:
        space = getattr(env, "state_space", None)
    except Exception:  # wrappers may raise on attributes the inner env lacks
        return None
    return space if isinstance(space, gym.Space) else None
