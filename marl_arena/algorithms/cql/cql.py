"""CQL: an offline algorithm (``OfflineAlgorithm``: batches from the offline reader, runners
only for ``evaluate()``) with SAC's module and a learner that adds the conservative penalty.

Every batch is one gradient step of every trained module; the target critics follow softly
after each (``tau``).
"""

from __future__ import annotations

from marl_arena.algorithms.cql.cql_config import CQLConfig
from marl_arena.algorithms.cql.cql_learner import CQLLearner
from marl_arena.algorithms.offline_algorithm import OfflineAlgorithm
from marl_arena.algorithms.sac.sac import SAC
from marl_arena.core.rl_module import RLModule


class CQL(OfflineAlgorithm):
    config_class = CQLConfig
    learner_class = CQLLearner

    @classmethod
    def module_class_for(cls, config: CQLConfig) -> type[RLModule]:
        """SAC's module: twin critics or one (``twin_q``)."""
        return SAC.module_class_for(config)
