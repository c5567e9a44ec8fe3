"""A simultaneous-move PettingZoo Parallel env as a marl_arena MultiAgentEnv.

PettingZoo's Parallel API is already close to marl_arena's: dicts keyed by agent id, done
agents leave ``env.agents``. What the adapter adds is ``"__all__"`` in ``terminateds`` and
``truncateds``, a check that every live agent (and only those) gets an action, and a check
of each action against its space and action mask, so a bad action is reported by name
instead of crashing deep inside the env or being silently clipped.
"""

from __future__ import annotations

import logging
from typing import Any

from pettingzoo.utils.env import AECEnv, ParallelEnv

from marl_arena.env.multi_agent_env import ALL_AGENTS, AgentID, MultiAgentDict
from marl_arena_envs.pettingzoo.actions import (
    MASK_KEY,
    _Rejected,
    illegal_action,
    mask_violation,
)
from marl_arena_envs.pettingzoo.base import PettingZooAdapter

logger = logging.getLogger(__name__)


class ParallelPettingZooEnv(PettingZooAdapter):
    """Wraps a PettingZoo ``ParallelEnv`` (simultaneous: every live agent acts each step).

    ``obs`` holds every agent that took part in the step; agents that are done there get
    their final observation once, and leave. Actions are checked against the action space
    and the action mask (``IllegalActionError``, a ValueError, names the game, the agent and
    the action).

    Args:
        env: the Parallel env, e.g. ``pettingzoo.sisl.multiwalker_v9.parallel_env()``.
        name: the game's name in error messages (default: ``env.metadata["name"]``).
    """

    def __init__(self, env: ParallelEnv, *, name: str | None = None):
        if isinstance(env, AECEnv):
            raise ValueError(
                f"ParallelPettingZooEnv wraps Parallel envs, but {type(env).__name__} is a PettingZoo AECEnv; "
                "wrap it in PettingZooEnv instead (or convert it with pettingzoo.utils.conversions.aec_to_parallel)."
            )
        if not all(hasattr(env, attr) for attr in ("reset", "step", "possible_agents", "action_space")):
            raise ValueError(f"ParallelPettingZooEnv needs a PettingZoo ParallelEnv, got {type(env).__name__}.")
        super().__init__(env, name)
        self._live: list[AgentID] = []
        self._last_obs: dict = {}
        self._last_infos: dict = {}

    @property
    def agents(self) -> list[AgentID]:  # type: ignore[override]
        """The agents still in the game (empty before the first reset and after the end)."""
        return list(self._live)

    # ------------------------------------------------------------------ API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[MultiAgentDict, MultiAgentDict]:
        obs, infos = self.env.reset(seed=seed, options=options)
        if seed is not None:
            for i, agent in enumerate(self.possible_agents):
                self.action_spaces[agent].seed(seed + i)
        self._live = list(self.env.agents)
        self._last_obs, self._last_infos = obs, infos
        return obs, infos

    def step(
        self, actions: MultiAgentDict
    ) -> tuple[MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict]:
        live = self._live
        if not isinstance(actions, dict) or len(actions) != len(live) or not all(a in actions for a in live):
            raise self._bad_actions(actions)
        checked = {agent: self._checked_action(agent, action) for agent, action in actions.items()}
        obs, rewards, terminations, truncations, infos = self.env.step(checked)
        terminateds = dict(terminations)
        truncateds = dict(truncations)
        self._live = live = [a for a in self.env.agents if not (terminateds.get(a) or truncateds.get(a))]
        if live:
            terminateds[ALL_AGENTS] = truncateds[ALL_AGENTS] = False
        else:
            # Each agent's own flag says how it ended; "__all__" says that everyone has.
            truncated = any(truncations.values()) and not all(terminations.values())
            terminateds[ALL_AGENTS] = not truncated
            truncateds[ALL_AGENTS] = truncated
        self._last_obs, self._last_infos = obs, infos
        return obs, {a: float(r) for a, r in rewards.items()}, terminateds, truncateds, infos

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    # ------------------------------------------------------------------ internals
    def _checked_action(self, agent: AgentID, action: Any) -> Any:
        try:
            checked = self._checks[agent](action)
        except _Rejected as why:
            raise illegal_action(self.name, agent, action, str(why)) from None
        start = self._starts[agent]
        if start is not None:
            if agent in self._masked:
                mask = self._last_obs[agent][MASK_KEY]
            else:
                info = self._last_infos.get(agent)
                mask = info.get(MASK_KEY) if isinstance(info, dict) else None
            if mask is not None:
                why = mask_violation(mask, checked - start)
                if why is not None:
                    raise illegal_action(self.name, agent, action, why)
        return checked

    def _bad_actions(self, actions: Any) -> Exception:
        if not self._live:
            return RuntimeError(f"PettingZoo game {self.name!r}: the episode is over (or never started); call reset().")
        if not isinstance(actions, dict):
            return ValueError(
                f"PettingZoo game {self.name!r}: step() takes a dict of actions keyed by agent id, "
                f"got {type(actions).__name__}."
            )
        missing = [a for a in self._live if a not in actions]
        extra = [a for a in actions if a not in self._live]
        parts = []
        if missing:
            parts.append(f"no action for live agents {missing}")
        if extra:
            parts.append(f"actions for agents that are not in the game {extra}")
        return ValueError(
            f"PettingZoo game {self.name!r} is simultaneous: step() takes one action for every live agent "
            f"{self._live}; got {' and '.join(parts)}."
        )
