from marl_arena.algorithms.dreamerv3.dreamerv3 import DreamerV3
from marl_arena.algorithms.dreamerv3.dreamerv3_config import DreamerV3Config

__all__ = ["DreamerV3", "DreamerV3Config"]
