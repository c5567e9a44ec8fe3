"""Algorithm configs and algorithms."""

from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.algorithms.algorithm_config import AlgorithmConfig
from marl_arena.algorithms.checkpoints import CheckpointError
from marl_arena.algorithms.dqn import DQN, DQNConfig
from marl_arena.algorithms.ppo import PPO, PPOConfig
from marl_arena.algorithms.sac import SAC, SACConfig

__all__ = ["Algorithm", "AlgorithmConfig", "CheckpointError", "DQN", "DQNConfig", "PPO", "PPOConfig", "SAC",
           "SACConfig"]
