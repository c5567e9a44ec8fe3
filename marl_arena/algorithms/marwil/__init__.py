from marl_arena.algorithms.marwil.marwil import MARWIL
from marl_arena.algorithms.marwil.marwil_config import MARWILConfig

__all__ = ["MARWIL", "MARWILConfig"]
