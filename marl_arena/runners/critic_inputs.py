"""Assembling centralized critics' inputs on the sampling side (``Columns.CRITIC_OBS``).

After every env step (and reset) the EnvRunner asks ``CriticInputs.rows`` for the critic row
of each observed agent whose module is a centralized critic's
(``marl_arena.core.centralized_critic``); the episode stores it next to the agent's
observation, so each transition carries its critic input and the one of the next step, as
it carries ``obs`` and ``new_obs``.

``"team_obs"`` rows are the agent's own (processed) observation followed by its teammates' in
team order. A teammate that has no observation at that step (it is done before its
teammates, or a turn-based game did not ask it) fills its slot with zeros, so the row keeps
its width and the critic sees the teammate as absent. ``"state"`` rows are the env's
``state()`` after the step, read once per sub-env and step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

import gymnasium as gym
import numpy as np

from marl_arena.core.centralized_critic import CentralizedCriticConfig, critic_config
from marl_arena.core.models import flat_dim
from marl_arena.core.rl_module import MultiRLModule, MultiRLModuleSpec


def critic_team(config: CentralizedCriticConfig, env: Any) -> tuple:
    """The agents whose observations ``"team_obs"`` reads (every possible agent without a ``team``)."""
    team = tuple(env.possible_agents if config.team is None else config.team)
    unknown = [agent for agent in team if agent not in env.possible_agents]
    if unknown:
        raise ValueError(f"CentralizedCriticConfig.team names agents {unknown} that the env does not have; its "
                         f"agents are {list(env.possible_agents)}.")
    return team


def critic_obs_width(config: CentralizedCriticConfig, env: Any, agent_spaces: dict[Any, gym.Space]) -> int:
    """Width of the critic input ``config`` asks for, on ``env`` whose agents' processed
    observations have ``agent_spaces``."""
    if config.critic_input == "state":
        space = getattr(env, "state_space", None)
        if space is None:
            raise ValueError(
                f"model_config critic_input='state' needs an env with a global state (state_space and state()); "
                f"{type(env).__name__} has none. Use critic_input='team_obs' (the team's observations) instead."
            )
        return flat_dim(space)
    return sum(flat_dim(agent_spaces[agent]) for agent in critic_team(config, env))


def fill_critic_widths(spec: MultiRLModuleSpec, env: Any, agent_spaces: dict[Any, gym.Space]) -> MultiRLModuleSpec:
    """Set ``critic_obs_dim`` in the model config of every centralized-critic module spec that lacks it."""
    for module_id, module_spec in spec.rl_module_specs.items():
        config_class = getattr(module_spec.module_class, "model_config_class", None)
        if not (isinstance(config_class, type) and issubclass(config_class, CentralizedCriticConfig)):
            continue
        config = config_class.from_any(module_spec.model_config)
        if config.critic_obs_dim is None:
            try:
                width = critic_obs_width(config, env, agent_spaces)
            except ValueError as error:
                raise ValueError(f"Module {module_id!r}: {error}") from None
            config = dataclasses.replace(config, critic_obs_dim=width)
        module_spec.model_config = config
    return spec


class CriticInputs:
    """Critic rows for the agents of the modules that train with a centralized critic."""

    def __init__(self, configs: dict[str, CentralizedCriticConfig], env: Any, agent_spaces: dict[Any, gym.Space]):
        self._configs = configs
        self._teams = {mid: critic_team(config, env) for mid, config in configs.items()}
        self._zeros = {agent: np.zeros(flat_dim(space), dtype=np.float32) for agent, space in agent_spaces.items()}
        for module_id, config in configs.items():
            width = critic_obs_width(config, env, agent_spaces)
            if width != config.critic_obs_dim:
                raise ValueError(f"Module {module_id!r} has critic_obs_dim={config.critic_obs_dim}, but its critic "
                                 f"input ({config.critic_input!r}) on this env has width {width}.")

    @classmethod
    def for_modules(cls, module: MultiRLModule, module_ids: Iterable[str], env: Any,
                    agent_spaces: dict[Any, gym.Space]) -> "CriticInputs | None":
        """Inputs for those of ``module_ids`` with a centralized critic; None when there are none."""
        configs = {mid: config for mid in module_ids if (config := critic_config(module[mid])) is not None}
        return cls(configs, env, agent_spaces) if configs else None

    def rows(self, env: Any, agent_modules: dict[Any, str], processed: dict[Any, tuple]) -> dict[Any, np.ndarray]:
        """Critic rows of the observed agents (``processed``: agent -> (row, mask)) whose module
        (``agent_modules``) has a centralized critic, after one step of ``env``."""
        rows: dict[Any, np.ndarray] = {}
        state = None
        for agent_id in processed:
            module_id = agent_modules.get(agent_id)
            config = self._configs.get(module_id)
            if config is None:
                continue
            if config.critic_input == "state":
                if state is None:
                    state = np.asarray(env.state(), dtype=np.float32).reshape(-1)
                rows[agent_id] = state
                continue
            team = self._teams[module_id]
            if agent_id not in team:
                raise ValueError(f"Agent {agent_id!r} plays module {module_id!r}, whose critic reads the team "
                                 f"{list(team)}; add the agent to model_config['team'].")
            parts = [processed[agent_id][0].reshape(-1)]
            for member in team:
                if member != agent_id:
                    parts.append(processed[member][0].reshape(-1) if member in processed else self._zeros[member])
            rows[agent_id] = np.concatenate(parts).astype(np.float32, copy=False)
        return rows
