"""Turning an env id into a MultiAgentEnv.

An id resolves, in this order, to: a creator registered with ``register_env``; a plugin
env ``"<scheme>:<name>"`` whose scheme is an entry point in the ``marl_arena.envs`` group
(plugins register there; the library never imports them); a gymnasium id. A class can be
given instead of an id: it is constructed with the env config.

gymnasium retires old versions of its envs (``Taxi-v3`` became ``Taxi-v4`` in 1.4), and
programs copied from documentation keep the old id. An id whose version gymnasium has
replaced resolves to the newest registered version, with a one-line warning naming both.
"""

from __future__ import annotations

import difflib
import logging
from importlib.metadata import entry_points
from typing import Any, Callable

import gymnasium as gym
from gymnasium.envs.registration import find_highest_version, get_env_id, parse_env_id

from marl_arena.env.multi_agent_env import MultiAgentEnv
from marl_arena.env.single_agent import SingleAgentEnvAdapter

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "marl_arena.envs"

EnvCreator = Callable[[dict], Any]

_REGISTRY: dict[str, EnvCreator] = {}


class EnvContext(dict):
    """The ``env_config`` dict, plus where this env copy lives (for seeding or sharding)."""

    def __init__(self, env_config: dict | None, worker_index: int = 0, vector_index: int = 0, num_workers: int = 0):
        super().__init__(env_config or {})
        self.worker_index = worker_index
        self.vector_index = vector_index
        self.num_workers = num_workers


def register_env(name: str, creator: EnvCreator) -> None:
    """Register ``creator(env_config) -> env`` under ``name`` (replacing an earlier one)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_env needs a non-empty string name, got {name!r}.")
    if not callable(creator):
        raise ValueError(f"register_env({name!r}, ...) needs a callable creator, got {type(creator).__name__}.")
    _REGISTRY[name] = creator


def registered_env_creator(name: str) -> EnvCreator | None:
    return _REGISTRY.get(name)


def _plugin_creator(env_id: str) -> EnvCreator | None:
    scheme, _, game = env_id.partition(":")
    if not game:
        return None
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == scheme:
            make = ep.load()
            return lambda cfg: make(game, cfg)
    return None


def gymnasium_id(env_id: str) -> str | None:
    """The registered gymnasium id for ``env_id``: itself, its successor if gymnasium replaced it, or None."""
    if env_id in gym.registry:
        return env_id
    try:
        namespace, name, version = parse_env_id(env_id)
    except gym.error.Error:
        return None
    latest = find_highest_version(namespace, name)
    if version is None or latest is None or latest <= version:
        return None
    successor = get_env_id(namespace, name, latest)
    logger.warning("gymnasium has replaced %r by %r; making %r.", env_id, successor, successor)
    return successor


def _unknown_env_error(env_id: str) -> ValueError:
    known = list(_REGISTRY) + list(gym.registry.keys())
    close = difflib.get_close_matches(env_id, known, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    plugins = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return ValueError(
        f"Unknown env id {env_id!r}: it is not registered with register_env(), not a plugin "
        f"env (installed plugin schemes: {plugins or 'none'}) and not a gymnasium id.{hint}"
    )


def env_creator_for(env: str | type | Callable) -> Callable[[dict], MultiAgentEnv]:
    """Resolve ``env`` once, in this process, to ``creator(env_config) -> MultiAgentEnv``.

    Resolving in the driver matters: Ray actors do not see ``register_env`` calls made in
    the driver, but they receive the resolved creator itself.
    """
    if isinstance(env, str):
        creator = registered_env_creator(env) or _plugin_creator(env)
        if creator is None:
            env_id = gymnasium_id(env)
            if env_id is None:
                raise _unknown_env_error(env)

            def creator(config: dict) -> Any:
                return gym.make(env_id, **config)
    elif callable(env):
        creator = env
    else:
        raise ValueError(f"An env must be an id string, a class or a creator callable, got {env!r}.")

    def create(env_config: dict | None = None) -> MultiAgentEnv:
        context = env_config if isinstance(env_config, EnvContext) else EnvContext(env_config)
        return as_multi_agent(creator(context), env)

    return create


def make_env(env: str | type | Callable, env_config: dict | None = None) -> MultiAgentEnv:
    """Build the env named by ``env`` and return it as a MultiAgentEnv."""
    return env_creator_for(env)(env_config)


def as_multi_agent(made: Any, source: Any) -> MultiAgentEnv:
    """Wrap a gymnasium env; pass a MultiAgentEnv through; reject anything else."""
    if isinstance(made, MultiAgentEnv):
        return made
    if isinstance(made, gym.Env):
        return SingleAgentEnvAdapter(made)
    raise ValueError(
        f"The env {source!r} created a {type(made).__name__}, which is neither a "
        "marl_arena MultiAgentEnv nor a gymnasium.Env."
    )
