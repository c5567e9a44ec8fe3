from marl_arena.algorithms.appo.appo import APPO
from marl_arena.algorithms.appo.appo_config import APPOConfig

__all__ = ["APPO", "APPOConfig"]
