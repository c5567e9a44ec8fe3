"""BC: behaviour cloning, MARWIL with beta = 0 (as in RLlib); only the config differs."""

from __future__ import annotations

from marl_arena.algorithms.bc.bc_config import BCConfig
from marl_arena.algorithms.marwil.marwil import MARWIL


class BC(MARWIL):
    config_class = BCConfig
