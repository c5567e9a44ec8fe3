"""SAC: the shared off-policy loop (``OffPolicyAlgorithm``) with SAC's module and learner.

Exploration is the policy's own sampling (no schedule); the target critics follow the
critics softly after every gradient step (``tau``).
"""

from __future__ import annotations

from marl_arena.algorithms.off_policy import OffPolicyAlgorithm
from marl_arena.algorithms.sac.sac_config import SACConfig
from marl_arena.algorithms.sac.sac_learner import SACLearner
from marl_arena.core.sac_module import SACModule, SingleQSACModule


class SAC(OffPolicyAlgorithm):
    config_class = SACConfig
    learner_class = SACLearner

    @classmethod
    def module_class_for(cls, config: SACConfig) -> type[SACModule]:
        return SACModule if config.twin_q else SingleQSACModule
