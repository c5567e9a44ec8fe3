"""A turn-based PettingZoo AEC env as a marl_arena MultiAgentEnv.

PettingZoo's AEC loop (``for agent in env.agent_iter(): env.last(); env.step(...)``) asks
every agent in turn, including agents that are already done, which must be stepped with
``None`` so the env can remove them. marl_arena's contract is different: ``obs`` holds only
the agent to move, ``rewards`` carries everything that reached any agent since the last
step (the loser of a game that the winner's move ended included), and done agents are
announced once and never asked again. ``PettingZooEnv`` translates between the two: it
steps done agents with ``None`` itself, and sums PettingZoo's per-step ``rewards`` over
those inner steps, which is exactly what ``last()`` would have reported to each agent.
"""

from __future__ import annotations

import logging
from typing import Any

from pettingzoo.utils.env import AECEnv, ParallelEnv
from pettingzoo.utils.wrappers import (
    AssertOutOfBoundsWrapper,
    BaseWrapper,
    CaptureStdoutWrapper,
    ClipOutOfBoundsWrapper,
    OrderEnforcingWrapper,
    TerminateIllegalWrapper,
)

from marl_arena.env.multi_agent_env import ALL_AGENTS, AgentID, MultiAgentDict
from marl_arena_envs.pettingzoo.base import PettingZooAdapter
from marl_arena_envs.pettingzoo.actions import (
    MASK_KEY,
    _Rejected,
    illegal_action,
    mask_violation,
)

logger = logging.getLogger(__name__)

# PettingZoo's own wrappers forward ``rewards``, ``terminations``, ``truncations``, ``infos``
# and ``agent_selection`` untouched, so those can be read from the unwrapped env, skipping a
# ``__getattr__`` chain per read. Any other wrapper might change them and is read through.
_TRANSPARENT_WRAPPERS = (
    OrderEnforcingWrapper,
    AssertOutOfBoundsWrapper,
    TerminateIllegalWrapper,
    ClipOutOfBoundsWrapper,
    CaptureStdoutWrapper,
)


def _state_holder(env: AECEnv) -> AECEnv:
    """The object to read the env's bookkeeping dicts from (see ``_TRANSPARENT_WRAPPERS``)."""
    inner = env
    while isinstance(inner, BaseWrapper):
        if type(inner) not in _TRANSPARENT_WRAPPERS:
            return env
        inner = inner.env
    return inner


class PettingZooEnv(PettingZooAdapter):
    """Wraps a PettingZoo ``AECEnv`` (turn-based: one agent acts per step).

    ``obs`` holds the agent to move (``env.agent_selection``); an agent that is done at a
    step also appears once with its final observation, next to its ``terminateds`` or
    ``truncateds`` flag. Actions are checked against the action space and the action mask
    (``IllegalActionError``, a ValueError, names the game, the agent and the action).

    Args:
        env: the AEC env, e.g. ``pettingzoo.classic.connect_four_v3.env()``.
        name: the game's name in error messages (default: ``env.metadata["name"]``).
    """

    def __init__(self, env: AECEnv, *, name: str | None = None):
        if isinstance(env, ParallelEnv):
            raise ValueError(
                f"PettingZooEnv wraps AEC envs, but {type(env).__name__} is a PettingZoo ParallelEnv; "
                "wrap it in ParallelPettingZooEnv instead."
            )
        if not all(hasattr(env, attr) for attr in ("observe", "last", "step", "possible_agents")):
            raise ValueError(f"PettingZooEnv needs a PettingZoo AECEnv, got {type(env).__name__}.")
        super().__init__(env, name)
        self._state = _state_holder(env)
        self._acting: AgentID | None = None
        self._last_obs: Any = None
        self._last_info: dict = {}
        self._announced: set = set()  # agents reported done this episode

    @property
    def agents(self) -> list[AgentID]:  # type: ignore[override]
        """The agents still in the game (empty before the first reset and after the end)."""
        return list(self._state.agents) if self._acting is not None else []

    # ------------------------------------------------------------------ API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[MultiAgentDict, MultiAgentDict]:
        env = self.env
        env.reset(seed=seed, options=options)
        if seed is not None:
            for i, agent in enumerate(self.possible_agents):
                self.action_spaces[agent].seed(seed + i)
        self._announced = set()
        state = self._state
        # An agent that starts the episode done (unusual) is removed without being reported.
        for _ in range(len(state.agents)):
            if not (state.terminations[state.agent_selection] or state.truncations[state.agent_selection]):
                break
            env.step(None)
        if not state.agents or state.terminations[state.agent_selection] or state.truncations[state.agent_selection]:
            raise RuntimeError(f"PettingZoo game {self.name!r} has no agent left to act right after reset().")
        agent = self._acting = state.agent_selection
        obs = self._last_obs = env.observe(agent)
        info = self._last_info = state.infos[agent]
        return {agent: obs}, {agent: info}

    def step(
        self, actions: MultiAgentDict
    ) -> tuple[MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict]:
        agent = self._acting
        if agent is None or not isinstance(actions, dict) or len(actions) != 1 or agent not in actions:
            raise self._bad_actions(actions)
        action = self._checked_action(agent, actions[agent])
        env = self.env
        state = self._state
        env.step(action)
        rewards = {a: float(r) for a, r in state.rewards.items()}
        terminations, truncations = state.terminations, state.truncations
        if any(terminations.values()) or any(truncations.values()):
            return self._step_done_agents(rewards)
        # The common case: nobody is done; the next agent moves.
        agent = self._acting = state.agent_selection
        obs = self._last_obs = env.observe(agent)
        info = self._last_info = state.infos[agent]
        return (
            {agent: obs},
            rewards,
            {agent: False, ALL_AGENTS: False},
            {agent: False, ALL_AGENTS: False},
            {agent: info},
        )

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    # ------------------------------------------------------------------ internals
    def _step_done_agents(
        self, rewards: dict
    ) -> tuple[MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict]:
        """Announce agents that became done, step them with ``None``, find who moves next.

        The rewards of those ``None`` steps are added too (PettingZoo normally clears them,
        but an env may hand out rewards there).
        """
        env, state, announced = self.env, self._state, self._announced
        obs: dict = {}
        infos: dict = {}
        terminateds: dict = {}
        truncateds: dict = {}

        def announce(done_agent: AgentID) -> None:
            announced.add(done_agent)
            terminateds[done_agent] = bool(state.terminations[done_agent])
            truncateds[done_agent] = bool(state.truncations[done_agent])
            obs[done_agent] = env.observe(done_agent)
            infos[done_agent] = state.infos[done_agent]

        for _ in range(len(state.agents)):  # each None step removes one agent
            selected = state.agent_selection
            if not (state.terminations[selected] or state.truncations[selected]):
                break
            if selected not in announced:
                announce(selected)
            env.step(None)
            for other, reward in state.rewards.items():
                rewards[other] = rewards.get(other, 0.0) + float(reward)
        # Done agents that PettingZoo has not selected yet: announce now, remove when selected.
        for other in state.agents:
            if other not in announced and (state.terminations[other] or state.truncations[other]):
                announce(other)

        live = [a for a in state.agents if a not in announced]
        if live:
            agent = self._acting = state.agent_selection
            if agent in announced:
                raise RuntimeError(
                    f"PettingZoo game {self.name!r} still selects agent {agent!r}, which is done, after "
                    "stepping it with None; the env does not follow PettingZoo's AEC protocol."
                )
            obs[agent] = self._last_obs = env.observe(agent)
            infos[agent] = self._last_info = state.infos[agent]
            terminateds[agent] = truncateds[agent] = False
            terminateds[ALL_AGENTS] = truncateds[ALL_AGENTS] = False
        else:
            self._acting = None
            # Each agent's own flag says how it ended; "__all__" says that everyone has.
            truncated = any(truncateds.values()) and not all(terminateds.values())
            terminateds[ALL_AGENTS] = not truncated
            truncateds[ALL_AGENTS] = truncated
        return obs, rewards, terminateds, truncateds, infos

    def _checked_action(self, agent: AgentID, action: Any) -> Any:
        try:
            checked = self._checks[agent](action)
        except _Rejected as why:
            raise illegal_action(self.name, agent, action, str(why)) from None
        start = self._starts[agent]
        if start is not None:
            if agent in self._masked:
                mask = self._last_obs[MASK_KEY]
            else:
                mask = self._last_info.get(MASK_KEY) if isinstance(self._last_info, dict) else None
            if mask is not None:
                why = mask_violation(mask, checked - start)
                if why is not None:
                    raise illegal_action(self.name, agent, action, why)
        return checked

    def _bad_actions(self, actions: Any) -> Exception:
        if self._acting is None:
            return RuntimeError(f"PettingZoo game {self.name!r}: the episode is over (or never started); call reset().")
        if not isinstance(actions, dict):
            return ValueError(
                f"PettingZoo game {self.name!r}: step() takes a dict of actions keyed by agent id, "
                f"got {type(actions).__name__}."
            )
        return ValueError(
            f"PettingZoo game {self.name!r} is turn-based: step() takes exactly one action, for "
            f"{self._acting!r} (the agent to move), but got actions for {list(actions)}."
        )
