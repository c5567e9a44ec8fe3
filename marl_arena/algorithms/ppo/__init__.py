from marl_arena.algorithms.ppo.ppo import PPO
from marl_arena.algorithms.ppo.ppo_config import PPOConfig

__all__ = ["PPO", "PPOConfig"]
