"""MARWIL (and BC): an offline algorithm (``OfflineAlgorithm``: each training step draws
batches from the offline reader, not the runners) with MARWIL's learner."""

from __future__ import annotations

from marl_arena.algorithms.marwil.marwil_config import MARWILConfig
from marl_arena.algorithms.marwil.marwil_learner import MARWILLearner
from marl_arena.algorithms.offline_algorithm import OfflineAlgorithm


class MARWIL(OfflineAlgorithm):
    config_class = MARWILConfig
    learner_class = MARWILLearner
