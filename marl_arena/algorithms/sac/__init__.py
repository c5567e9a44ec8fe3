from marl_arena.algorithms.sac.sac import SAC
from marl_arena.algorithms.sac.sac_config import SACConfig

__all__ = ["SAC", "SACConfig"]
