from marl_arena.algorithms.dqn.dqn import DQN
from marl_arena.algorithms.dqn.dqn_config import DQNConfig

__all__ = ["DQN", "DQNConfig"]
