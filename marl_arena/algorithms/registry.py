"""Algorithms by name, for the CLI and for league trainers chosen in config files.

Names map to import paths, not classes, so that naming the algorithms (the CLI's
``--algo`` choices) imports none of them: ``marl-arena league status`` reads a store
without paying for torch and Ray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from marl_arena.algorithms.algorithm_config import AlgorithmConfig

_CONFIG_PATHS: dict[str, str] = {
    "ppo": "marl_arena.algorithms.ppo:PPOConfig",
    "dqn": "marl_arena.algorithms.dqn:DQNConfig",
    "sac": "marl_arena.algorithms.sac:SACConfig",
    "impala": "marl_arena.algorithms.impala:IMPALAConfig",
    "appo": "marl_arena.algorithms.appo:APPOConfig",
    "bc": "marl_arena.algorithms.bc:BCConfig",
    "marwil": "marl_arena.algorithms.marwil:MARWILConfig",
    "cql": "marl_arena.algorithms.cql:CQLConfig",
    "dreamerv3": "marl_arena.algorithms.dreamerv3:DreamerV3Config",
}

ALGORITHM_NAMES: tuple[str, ...] = tuple(sorted(_CONFIG_PATHS))
"""The names ``config_for`` accepts (lower case)."""


def config_class(name: str) -> type[AlgorithmConfig]:
    """The config class of the algorithm called ``name`` (case-insensitive), imported on demand."""
    try:
        module_name, _, class_name = _CONFIG_PATHS[name.lower()].partition(":")
    except KeyError:
        raise ValueError(f"Unknown algorithm {name!r}; available: {list(ALGORITHM_NAMES)}.") from None
    return getattr(importlib.import_module(module_name), class_name)


def config_for(name: str) -> AlgorithmConfig:
    """A fresh default config of the algorithm called ``name`` (case-insensitive)."""
    return config_class(name)()
