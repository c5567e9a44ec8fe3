"""Episodes: what each agent saw and did, with rewards attributed to the right action.

In a turn-based game an agent's action is answered by the opponents' moves before the agent
sees the board again, so the reward of a transition is everything that reached the agent
between two of its own turns. When the game ends on someone else's move, every agent still
gets its terminal reward and a terminal transition. ``AgentTrajectory`` gets this right in
one place; the EnvRunner only feeds it env outputs in order:

    add_env_reset / add_env_step  ->  add_observations  ->  add_actions  ->  (env.step) ...
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np

from marl_arena.core.columns import Columns
from marl_arena.env.multi_agent_env import ALL_AGENTS, AgentID

_episode_ids = itertools.count()

Observation = tuple[np.ndarray, "np.ndarray | None"]  # (row the module reads, action mask)


class AgentTrajectory:
    """One agent's transitions in one episode, plus the action still awaiting its outcome."""

    def __init__(self, module_id: str):
        self.module_id = module_id
        self.episode_return = 0.0
        self.num_actions = 0
        self.done = False
        self._obs: list[np.ndarray] = []
        self._masks: list[np.ndarray] = []
        self._actions: list[Any] = []
        self._rewards: list[float] = []
        self._extras: dict[str, list] = {}
        self._terminated = False
        self._final_next_obs: Observation | None = None
        self._pending: tuple[Observation, Any, dict] | None = None
        self._pending_reward = 0.0
        self.last_obs: Observation | None = None
        # A centralized critic's input (Columns.CRITIC_OBS) for the last observation, and for
        # the next observation of the last completed transition; None for other modules.
        self._last_critic: np.ndarray | None = None
        self._final_next_critic: np.ndarray | None = None
        self.state: np.ndarray | None = None
        """A recurrent module's state after this agent's last action (None: its initial state).
        Per agent and per episode, so every agent, opponents' too, starts each episode afresh."""

    @property
    def num_completed(self) -> int:
        return len(self._actions)

    @property
    def has_pending_action(self) -> bool:
        return self._pending is not None

    def add_reward(self, reward: float) -> None:
        """Credit ``reward`` to the pending action (and the return); ignored once done.

        A reward that reaches the agent before its first action counts in the episode
        return but belongs to no transition: there is no action of the agent to credit.
        """
        if self.done:
            return
        self.episode_return += reward
        if self._pending is not None:
            self._pending_reward += reward

    def observe(self, obs: np.ndarray, mask: np.ndarray | None = None, critic_obs: np.ndarray | None = None) -> None:
        """The agent must act next on ``obs``: its previous action's transition is complete.

        ``critic_obs``: what a centralized critic reads at this step, kept as the transition's
        ``Columns.CRITIC_OBS`` (and the previous one's ``NEXT_CRITIC_OBS``).
        """
        if self._pending is not None:
            self._complete(next_obs=(obs, mask), terminated=False, next_critic=critic_obs)
        self.last_obs = (obs, mask)
        self._last_critic = critic_obs

    def act(self, action: Any, extras: dict[str, Any]) -> None:
        """The agent takes ``action`` on its last observation."""
        if self.last_obs is None or self._pending is not None:
            raise RuntimeError("AgentTrajectory.act() needs a fresh observation first.")
        if self._last_critic is not None:
            extras = {**extras, Columns.CRITIC_OBS: self._last_critic}
        self._pending = (self.last_obs, action, extras)
        self._pending_reward = 0.0
        self.last_obs = None
        self.num_actions += 1

    def finish(self, terminated: bool, final_obs: np.ndarray | None = None, final_mask: np.ndarray | None = None,
               final_critic: np.ndarray | None = None) -> None:
        """The agent is done; its pending action (if any) gets a terminal or truncated end.

        Without a final observation a truncated transition bootstraps from the observation
        its action was taken on, the best estimate left.
        """
        if self.done:
            return
        if self._pending is not None:
            final = (final_obs, final_mask) if final_obs is not None else self._pending[0]
            self._complete(next_obs=final, terminated=terminated,
                           next_critic=final_critic if final_obs is not None else None)
        self.done = True

    def _complete(self, next_obs: Observation, terminated: bool, next_critic: np.ndarray | None = None) -> None:
        (obs, mask), action, extras = self._pending
        # Without a next critic input (no final observation) the critic input of the action's own step.
        self._final_next_critic = next_critic if next_critic is not None else extras.get(Columns.CRITIC_OBS)
        self._obs.append(obs)
        if mask is not None:
            self._masks.append(mask)
        self._actions.append(action)
        self._rewards.append(self._pending_reward)
        for key, value in extras.items():
            self._extras.setdefault(key, []).append(value)
        self._terminated = terminated
        self._final_next_obs = next_obs
        self._pending = None
        self._pending_reward = 0.0

    def take_completed(self, lookahead: int = 0) -> dict[str, np.ndarray] | None:
        """Completed transitions as one segment of arrays (and forget them), or None.

        The last transition of the segment is terminal if the agent's game ended there;
        otherwise it is marked truncated, so learners bootstrap from its next observation.

        ``lookahead > 0`` (n-step returns, n = lookahead + 1): while the agent is not done,
        the last ``lookahead`` transitions are marked ``Columns.LOOKAHEAD`` and kept, so the
        next segment starts with them again; the rows before them see n steps ahead even
        when the sample ends mid-episode.
        """
        n = len(self._actions)
        if n == 0:
            return None
        held = 0 if self.done else min(lookahead, n)
        obs = np.stack(self._obs)
        terminateds = np.zeros(n, dtype=bool)
        truncateds = np.zeros(n, dtype=bool)
        if self._terminated:
            terminateds[-1] = True
        else:
            truncateds[-1] = True
        final_obs, final_mask = self._final_next_obs
        segment = {
            Columns.OBS: obs,
            Columns.NEXT_OBS: np.concatenate([obs[1:], final_obs[None]], axis=0),
            Columns.ACTIONS: np.asarray(self._actions),
            Columns.REWARDS: np.asarray(self._rewards, dtype=np.float32),
            Columns.TERMINATEDS: terminateds,
            Columns.TRUNCATEDS: truncateds,
        }
        if self._masks:
            masks = np.stack(self._masks)
            segment[Columns.ACTION_MASK] = masks
            next_mask = final_mask if final_mask is not None else np.ones_like(masks[-1])
            segment[Columns.NEXT_ACTION_MASK] = np.concatenate([masks[1:], next_mask[None]], axis=0)
        for key, values in self._extras.items():
            segment[key] = np.stack(values) if isinstance(values[0], np.ndarray) else np.asarray(values)
        critic = segment.get(Columns.CRITIC_OBS)
        if critic is not None:
            segment[Columns.NEXT_CRITIC_OBS] = np.concatenate([critic[1:], self._final_next_critic[None]], axis=0)
        if lookahead:
            segment[Columns.LOOKAHEAD] = np.arange(n) >= n - held
        keep = slice(n - held, n)
        self._obs, self._masks, self._actions, self._rewards = (
            self._obs[keep], self._masks[keep], self._actions[keep], self._rewards[keep])
        self._extras = {key: values[keep] for key, values in self._extras.items()} if held else {}
        self._terminated = False
        return segment


@dataclasses.dataclass
class StepOutcome:
    """What the runner must do after an env step: who acts next, who ends now."""

    acting: list[AgentID]
    ending: dict[AgentID, bool]  # agent id -> terminated (False means truncated)


class MultiAgentEpisode:
    """Per-agent trajectories of one episode of one env copy.

    The runner adds an agent (``add_agent``, with the module id that the policy mapping
    function gives it) the first time the agent appears, so the mapping function is called
    once per agent per episode.
    """

    def __init__(self):
        self.id_ = next(_episode_ids)
        self.env_steps = 0
        self.agents: dict[AgentID, AgentTrajectory] = {}
        self.is_done = False
        self.moves: list[tuple[AgentID, Any]] = []  # (agent, env action) as the env applied them: for replays

    def trajectory(self, agent_id: AgentID) -> AgentTrajectory:
        return self.agents[agent_id]

    def add_agent(self, agent_id: AgentID, module_id: str) -> None:
        self.agents[agent_id] = AgentTrajectory(module_id)

    def add_env_reset(self, obs: dict) -> StepOutcome:
        return StepOutcome(acting=list(obs), ending={})

    def add_env_step(self, obs: dict, rewards: dict, terminateds: dict, truncateds: dict) -> StepOutcome:
        """Credit ``rewards`` and work out who acts next and who is done.

        Agents unseen so far must be added with ``add_agent`` before ``add_observations``.
        """
        self.env_steps += 1
        for agent_id, reward in rewards.items():
            trajectory = self.agents.get(agent_id)
            if trajectory is not None:
                trajectory.add_reward(float(reward))
        all_done = bool(terminateds.get(ALL_AGENTS) or truncateds.get(ALL_AGENTS))
        ending: dict[AgentID, bool] = {}
        for agent_id, trajectory in self.agents.items():
            if trajectory.done:
                continue
            if terminateds.get(agent_id):
                ending[agent_id] = True
            elif truncateds.get(agent_id):
                ending[agent_id] = False
            elif all_done:
                ending[agent_id] = bool(terminateds.get(ALL_AGENTS))
        self.is_done = all_done
        acting = [] if all_done else [a for a in obs if a not in ending and not self._is_agent_done(a)]
        return StepOutcome(acting=acting, ending=ending)

    def _is_agent_done(self, agent_id: AgentID) -> bool:
        trajectory = self.agents.get(agent_id)
        return trajectory is not None and trajectory.done

    def add_observations(self, outcome: StepOutcome, processed_obs: dict[AgentID, Observation],
                         critic_obs: dict[AgentID, np.ndarray] | None = None) -> None:
        """Close the transitions of ending agents, then give acting agents their observation.

        ``processed_obs`` maps agent ids to ``(row, action mask or None)``; ``critic_obs`` the
        agents of centralized-critic modules to their critic input at this step.
        """
        critic_obs = critic_obs or {}
        for agent_id, terminated in outcome.ending.items():
            self.agents[agent_id].finish(terminated, *processed_obs.get(agent_id, (None, None)),
                                         critic_obs.get(agent_id))
        for agent_id in outcome.acting:
            self.agents[agent_id].observe(*processed_obs[agent_id], critic_obs.get(agent_id))

    def add_actions(self, agent_id: AgentID, action: Any, extras: dict[str, Any]) -> None:
        self.agents[agent_id].act(action, extras)

    def add_moves(self, actions: dict[AgentID, Any]) -> None:
        """The env actions of one step, once the env has taken them."""
        self.moves.extend(actions.items())

    def take_completed(self, lookahead: int = 0) -> dict[AgentID, dict[str, np.ndarray]]:
        """Completed segments per agent (see ``AgentTrajectory.take_completed``)."""
        segments = {}
        for agent_id, trajectory in self.agents.items():
            segment = trajectory.take_completed(lookahead)
            if segment is not None:
                segments[agent_id] = segment
        return segments

    @property
    def agent_returns(self) -> dict[AgentID, float]:
        return {a: t.episode_return for a, t in self.agents.items()}

    @property
    def agent_modules(self) -> dict[AgentID, str]:
        return {a: t.module_id for a, t in self.agents.items()}

    @property
    def module_returns(self) -> dict[str, float]:
        returns: dict[str, float] = {}
        for trajectory in self.agents.values():
            returns[trajectory.module_id] = returns.get(trajectory.module_id, 0.0) + trajectory.episode_return
        return returns

    @property
    def episode_return(self) -> float:
        return float(sum(t.episode_return for t in self.agents.values()))
