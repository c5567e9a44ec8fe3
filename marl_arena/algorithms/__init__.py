"""Algorithm configs and algorithms."""

from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.algorithms.algorithm_config import AlgorithmConfig
from marl_arena.algorithms.appo import APPO, APPOConfig
from marl_arena.algorithms.bc import BC, BCConfig
from marl_arena.algorithms.checkpoints import CheckpointError
from marl_arena.algorithms.cql import CQL, CQLConfig
from marl_arena.algorithms.dqn import DQN, DQNConfig
from marl_arena.algorithms.impala import IMPALA, IMPALAConfig
from marl_arena.algorithms.marwil import MARWIL, MARWILConfig
from marl_arena.algorithms.ppo import PPO, PPOConfig
from marl_arena.algorithms.sac import SAC, SACConfig

__all__ = ["APPO", "APPOConfig", "Algorithm", "AlgorithmConfig", "BC", "BCConfig", "CheckpointError", "CQL",
           "CQLConfig", "DQN", "DQNConfig", "IMPALA", "IMPALAConfig", "MARWIL", "MARWILConfig", "PPO", "PPOConfig",
           "SAC", "SACConfig"]
