"""The multi-particle environments of ``mpe2`` (PettingZoo's successor package for MPE) as
marl_arena MultiAgentEnvs: the ``"mpe2:<game>"`` env ids.

``make(name, env_config)`` is the ``marl_arena.envs`` entry point: ``"mpe2:simple_spread_v3"``
(or ``"mpe2:simple_spread"`` for the newest version) builds
``mpe2.simple_spread_v3.parallel_env(**env_config)`` and wraps it in the PettingZoo plugin's
``ParallelPettingZooEnv``, so mpe2 games get the same action checks, argument checks and
global ``state()`` as every PettingZoo game. ``env_config={"pettingzoo_api": "aec"}`` gives the
turn-based AEC version instead.
"""

from marl_arena_envs.mpe2.catalog import available_games, make, resolve

__all__ = ["available_games", "make", "resolve"]
