from marl_arena.algorithms.bc.bc import BC
from marl_arena.algorithms.bc.bc_config import BCConfig

__all__ = ["BC", "BCConfig"]
