"""Algorithm configs and algorithms.

The names below are imported on first use (PEP 562), so that importing one light module of
this package (the registry, for the CLI's ``--algo`` choices) does not import torch, Ray
and every algorithm.
"""

import importlib

_EXPORTS = {
    "Algorithm": "algorithm", "AlgorithmConfig": "algorithm_config", "CheckpointError": "checkpoints",
    "APPO": "appo", "APPOConfig": "appo", "BC": "bc", "BCConfig": "bc", "CQL": "cql", "CQLConfig": "cql",
    "DQN": "dqn", "DQNConfig": "dqn", "DreamerV3": "dreamerv3", "DreamerV3Config": "dreamerv3",
    "IMPALA": "impala", "IMPALAConfig": "impala",
    "MARWIL": "marwil", "MARWILConfig": "marwil", "PPO": "ppo", "PPOConfig": "ppo", "SAC": "sac", "SACConfig": "sac",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
