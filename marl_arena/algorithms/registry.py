"""Algorithms by name, for the CLI and for league trainers chosen in config files."""

from __future__ import annotations

from marl_arena.algorithms.algorithm_config import AlgorithmConfig
from marl_arena.algorithms.appo import APPOConfig
from marl_arena.algorithms.bc import BCConfig
from marl_arena.algorithms.cql import CQLConfig
from marl_arena.algorithms.dqn import DQNConfig
from marl_arena.algorithms.impala import IMPALAConfig
from marl_arena.algorithms.marwil import MARWILConfig
from marl_arena.algorithms.ppo import PPOConfig
from marl_arena.algorithms.sac import SACConfig

ALGORITHM_CONFIGS: dict[str, type[AlgorithmConfig]] = {"ppo": PPOConfig, "dqn": DQNConfig, "sac": SACConfig,
                                                       "impala": IMPALAConfig, "appo": APPOConfig,
                                                       "bc": BCConfig, "marwil": MARWILConfig, "cql": CQLConfig}


def config_for(name: str) -> AlgorithmConfig:
    """A fresh default config of the algorithm called ``name`` (case-insensitive)."""
    try:
        return ALGORITHM_CONFIGS[name.lower()]()
    except KeyError:
        raise ValueError(f"Unknown algorithm {name!r}; available: {sorted(ALGORITHM_CONFIGS)}.") from None
