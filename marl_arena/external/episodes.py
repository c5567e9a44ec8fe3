"""Finished episodes from an external client, turned into what a local EnvRunner hands a learner.

Each agent's lists are replayed through ``AgentTrajectory``, the same code that records a
local runner's episodes, so the segments have the same columns, dtypes and end markers
(terminal or truncated last row, ``new_obs`` from the final observation). What the client
did not send and the learner needs (``action_dist_inputs``, ``action_logp``) is computed
here with the server's copy of the module.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from marl_arena.core.columns import Columns
from marl_arena.core.distributions import distribution_for_space
from marl_arena.core.models import flat_dim
from marl_arena.core.rl_module import MultiRLModule
from marl_arena.env.episode import AgentTrajectory, MultiAgentEpisode
from marl_arena.runners.env_runner import EpisodeStats
from marl_arena.runners.module_specs import map_agent


class EpisodeError(ValueError):
    """A client's episode that does not fit the modules' spaces or the protocol's layout."""


@dataclasses.dataclass
class ConvertedEpisode:
    """One client episode as per-module segments, ready to queue for ``sample``."""

    segments: dict[str, list[dict[str, np.ndarray]]]
    stats: EpisodeStats
    env_steps: int
    agent_steps: int
    weights_version: int | None
    """The weights the client acted with (the oldest, if they changed mid-episode); None: not said."""


class EpisodeConverter:
    """Checks client episodes against the modules and builds their segments."""

    def __init__(self, config, module: MultiRLModule, module_lock: threading.Lock, modules_to_train: set[str]):
        self._config = config
        self._module = module
        self._lock = module_lock
        self._modules_to_train = modules_to_train

    def convert(self, episode: Any, plan: dict[Any, str] | None = None) -> ConvertedEpisode:
        """Check and replay one episode; ``plan`` (agent -> module id, from ``start_episode``) replaces
        the policy mapping, which then is not called."""
        if not isinstance(episode, dict) or not isinstance(episode.get("agents"), list) or not episode["agents"]:
            raise EpisodeError("an episode must be a map with a non-empty list 'agents'.")
        probe = MultiAgentEpisode()
        segments: dict[str, list[dict[str, np.ndarray]]] = {}
        returns, modules, lengths = {}, {}, []
        for entry in episode["agents"]:
            agent_id, module_id, trajectory = self._replay(entry, probe, plan)
            returns[agent_id] = trajectory.episode_return
            modules[agent_id] = module_id
            lengths.append(trajectory.num_actions)
            segment = trajectory.take_completed()
            if segment is not None and module_id in self._modules_to_train:
                segments.setdefault(module_id, []).append(segment)
        # A turn-based game must say how many env steps it took; simultaneous moves take the longest agent's.
        env_steps = episode.get("env_steps", max(lengths))
        if not isinstance(env_steps, int) or isinstance(env_steps, bool) or env_steps < max(lengths):
            raise EpisodeError(f"env_steps={env_steps!r} must be an integer of at least {max(lengths)}.")
        module_returns: dict[str, float] = {}
        for agent_id, module_id in modules.items():
            module_returns[module_id] = module_returns.get(module_id, 0.0) + returns[agent_id]
        version = episode.get("weights_version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise EpisodeError(f"weights_version={version!r} must be an integer.")
        stats = EpisodeStats(float(sum(returns.values())), env_steps, returns, module_returns, modules)
        return ConvertedEpisode(segments, stats, env_steps, sum(lengths), version)

    def _replay(self, entry: Any, probe: MultiAgentEpisode,
                plan: dict[Any, str] | None) -> tuple[Any, str, AgentTrajectory]:
        if not isinstance(entry, dict):
            raise EpisodeError("each entry of 'agents' must be a map.")
        agent_id = entry.get("agent_id")
        if not isinstance(agent_id, (str, int)) or isinstance(agent_id, bool) or agent_id in probe.agents:
            raise EpisodeError(f"agent_id {agent_id!r} must be a string or integer, once per episode.")
        if plan is not None:
            if agent_id not in plan:
                raise EpisodeError(f"agent {agent_id!r} is not one of the agents {list(plan)} its episode was "
                                   "started with.")
            module_id = plan[agent_id]
        else:
            try:
                module_id = map_agent(self._config, agent_id, probe)
            except ValueError as error:
                raise EpisodeError(str(error)) from None
        probe.add_agent(agent_id, module_id)
        if module_id not in self._module:
            raise EpisodeError(f"agent {agent_id!r} maps to module {module_id!r}, which this server does not hold.")
        rl_module = self._module[module_id]
        obs, actions, rewards, masks = self._arrays(entry, rl_module.observation_space, rl_module.action_space)
        n = len(actions)
        extras = self._extras(entry, module_id, obs[:n], actions, None if masks is None else masks[:n])
        terminated = entry.get("terminated")
        if not isinstance(terminated, bool) or not isinstance(entry.get("truncated"), bool):
            raise EpisodeError(f"agent {agent_id!r}: 'terminated' and 'truncated' must be booleans.")
        trajectory = AgentTrajectory(module_id)
        for t in range(n):
            trajectory.observe(obs[t], None if masks is None else masks[t])
            trajectory.act(actions[t], {key: values[t] for key, values in extras.items()})
            trajectory.add_reward(float(rewards[t]))
        final_obs = obs[n] if len(obs) > n else None
        final_mask = masks[n] if masks is not None and len(masks) > n else None
        trajectory.finish(terminated, final_obs, final_mask)
        return agent_id, module_id, trajectory

    def _arrays(self, entry: dict, obs_space: gym.Space, action_space: gym.Space):
        obs = _array(entry, "obs", np.float32)
        actions = _array(entry, "actions", np.int64 if isinstance(action_space, gym.spaces.Discrete) else np.float32)
        rewards = _array(entry, "rewards", np.float32)
        n = len(actions)
        width = flat_dim(obs_space)
        if obs.ndim != 2 or obs.shape[1] != width or len(obs) not in (n, n + 1):
            raise EpisodeError(f"'obs' has shape {obs.shape}; it must be ({n} or {n + 1}, {width}): one flat "
                               "observation per action, plus the final one if there is one.")
        if rewards.shape != (n,):
            raise EpisodeError(f"'rewards' has shape {rewards.shape}; it must be ({n},), one per action.")
        if isinstance(action_space, gym.spaces.Discrete):
            if actions.ndim != 1 or (n and (actions.min() < 0 or actions.max() >= action_space.n)):
                raise EpisodeError(f"'actions' must be a 1-d array of integers in [0, {action_space.n}).")
        elif actions.shape[1:] != (int(np.prod(action_space.shape)),):
            raise EpisodeError(f"'actions' has shape {actions.shape}; it must be ({n}, {int(np.prod(action_space.shape))}).")
        if not (np.all(np.isfinite(obs)) and np.all(np.isfinite(rewards))):
            raise EpisodeError("'obs' and 'rewards' must be finite.")
        masks = None
        if entry.get("action_mask") is not None:
            masks = _array(entry, "action_mask", np.float32)
            if masks.ndim != 2 or len(masks) != len(obs) or masks.shape[1] != getattr(action_space, "n", -1):
                raise EpisodeError(f"'action_mask' has shape {masks.shape}; it must have one row per observation "
                                   "and one column per action of a Discrete space.")
        return obs, actions, rewards, masks

    def _extras(self, entry: dict, module_id: str, obs: np.ndarray, actions: np.ndarray,
                masks: np.ndarray | None) -> dict[str, np.ndarray]:
        """The client's ``action_logp``/``action_dist_inputs`` where sent; the module's where not."""
        n = len(actions)
        given = {key: _array(entry, key, np.float32) for key in (Columns.ACTION_LOGP, Columns.ACTION_DIST_INPUTS)
                 if entry.get(key) is not None}
        if Columns.ACTION_LOGP in given and given[Columns.ACTION_LOGP].shape != (n,):
            raise EpisodeError(f"'action_logp' has shape {given[Columns.ACTION_LOGP].shape}; it must be ({n},).")
        width = distribution_for_space(self._module[module_id].action_space)[1]
        if Columns.ACTION_DIST_INPUTS in given and given[Columns.ACTION_DIST_INPUTS].shape != (n, width):
            raise EpisodeError(f"'action_dist_inputs' has shape {given[Columns.ACTION_DIST_INPUTS].shape}; it must "
                               f"be ({n}, {width}).")
        if len(given) == 2 or n == 0:
            return given
        batch = {Columns.OBS: torch.from_numpy(obs)}
        if masks is not None:
            batch[Columns.ACTION_MASK] = torch.from_numpy(masks)
        with self._lock, torch.inference_mode():
            module = self._module[module_id]
            dist_inputs = given.get(Columns.ACTION_DIST_INPUTS)
            if dist_inputs is None:
                dist_inputs = module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS].numpy()
            logp = module.action_distribution(torch.from_numpy(dist_inputs)).logp(torch.from_numpy(actions)).numpy()
        return {Columns.ACTION_DIST_INPUTS: dist_inputs, Columns.ACTION_LOGP: given.get(Columns.ACTION_LOGP, logp)}


def _array(entry: dict, key: str, dtype: type) -> np.ndarray:
    value = entry.get(key)
    if isinstance(value, list):
        try:
            value = np.asarray(value)
        except ValueError:
            raise EpisodeError(f"'{key}' is a ragged list.") from None
    if not isinstance(value, np.ndarray) or value.dtype == object:
        raise EpisodeError(f"'{key}' must be an array (or a list of numbers), got {type(value).__name__}.")
    return value.astype(dtype, copy=False)
