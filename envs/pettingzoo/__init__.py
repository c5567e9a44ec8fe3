"""PettingZoo games as marl_arena MultiAgentEnvs (the ``"pettingzoo:<game>"`` env ids).

``make(name, env_config)`` is the ``marl_arena.envs`` entry point: ``"pettingzoo:connect_four_v3"``
or ``"pettingzoo:sisl/pursuit_v5"`` resolve with no user code. ``PettingZooEnv`` wraps an AEC
env (turn-based), ``ParallelPettingZooEnv`` a Parallel env (simultaneous moves); both check
actions against the action space and mask and raise ``IllegalActionError`` (a ValueError).
"""

from marl_arena_envs.pettingzoo.actions import IllegalActionError
from marl_arena_envs.pettingzoo.aec import PettingZooEnv
from marl_arena_envs.pettingzoo.catalog import API_KEY, GameEntry, available_games, make, resolve
from marl_arena_envs.pettingzoo.parallel import ParallelPettingZooEnv

__all__ = [
    "API_KEY",
    "GameEntry",
    "IllegalActionError",
    "ParallelPettingZooEnv",
    "PettingZooEnv",
    "available_games",
    "make",
    "resolve",
]
