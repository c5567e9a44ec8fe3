from marl_arena.algorithms.impala.impala import IMPALA
from marl_arena.algorithms.impala.impala_config import IMPALAConfig

__all__ = ["IMPALA", "IMPALAConfig"]
