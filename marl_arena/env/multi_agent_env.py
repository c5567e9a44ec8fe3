"""The MultiAgentEnv API: dicts keyed by agent id.

``reset(seed=, options=) -> (obs, infos)`` and
``step(actions) -> (obs, rewards, terminateds, truncateds, infos)``.

* The keys of ``obs`` are the agents that must act next: one agent in a turn-based game,
  all live agents in a simultaneous-move game. An agent that is done at this step may also
  appear in ``obs`` with its final observation; it is not asked to act again.
* ``rewards`` may name agents that do not act next (the loser of a game that the winner's
  move ended).
* ``terminateds`` and ``truncateds`` carry ``"__all__"``, which ends the episode for everyone.
* Illegal actions are masked with a Dict observation ``{"observation": ..., "action_mask": ...}``.
"""

from __future__ import annotations

import abc
from typing import Any, Hashable

import gymnasium as gym

AgentID = Hashable
MultiAgentDict = dict[AgentID, Any]

ALL_AGENTS = "__all__"


class MultiAgentEnv(abc.ABC):
    """Base class for multi-agent environments.

    Subclasses set ``possible_agents``, ``observation_spaces`` and ``action_spaces`` (dicts
    keyed by agent id) in ``__init__``, and keep ``agents`` (the agents alive now) current.
    """

    # Set per instance by subclasses (no shared mutable defaults on the class).
    possible_agents: list[AgentID]
    agents: list[AgentID]
    observation_spaces: dict[AgentID, gym.Space]
    action_spaces: dict[AgentID, gym.Space]
    render_mode: str | None = None
    state_space: gym.Space | None = None
    """The space of ``state()``, for envs that offer a global state (PettingZoo's name); None otherwise."""

    @abc.abstractmethod
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[MultiAgentDict, MultiAgentDict]:
        """Start an episode; returns the observations of the agents to act first and infos."""

    @abc.abstractmethod
    def step(
        self, actions: MultiAgentDict
    ) -> tuple[MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict]:
        """Apply one action per acting agent."""

    def get_observation_space(self, agent_id: AgentID) -> gym.Space:
        return self.observation_spaces[agent_id]

    def get_action_space(self, agent_id: AgentID) -> gym.Space:
        return self.action_spaces[agent_id]

    def state(self) -> Any:
        """The global state (what a centralized critic may read), where ``state_space`` is set."""
        raise NotImplementedError(f"{type(self).__name__} offers no global state (its state_space is None).")

    def render(self) -> Any:
        return None

    def close(self) -> None:
        """Release resources; the default has none."""
